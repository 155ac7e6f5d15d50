//! Admin routes: `DELETE /users/{id}`. (Setting roles is GraphQL's `setRole`, or the
//! `promote` subcommand.)

use axum::extract::State;
use axum::http::StatusCode;

use super::error::RestError;
use super::extract::{CurrentUser, UserId};
use super::responses::NoValidToken;
use crate::state::AppState;
use crate::web::errors::ErrorBody;

/// Deletes any user (admins only).
///
/// Every session and refresh token of the user ends with the account. The last admin cannot
/// be deleted (403).
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 204, description = "Deleted; every token of the account is revoked"),
        NoValidToken,
        (status = 403, description = "The caller is not an admin, or the user is the last admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
    UserId(id): UserId,
) -> Result<StatusCode, RestError> {
    state.users.delete_user(&viewer, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
