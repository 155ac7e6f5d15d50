//! Admin routes: `DELETE /users/{id}` and `PUT /users/{id}/disabled`. (Setting roles is
//! GraphQL's `setRole`, or the `promote` subcommand.)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::error::{RestError, ValidationErrorBody};
use super::extract::{CurrentUser, JsonBody, UserId};
use super::responses::NoValidToken;
use super::types::{DisabledRequest, User};
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

/// Disables or enables a user (admins only).
///
/// A disabled user cannot sign in or refresh (403 with `"reason": "ACCOUNT_DISABLED"`), and
/// disabling ends all their sessions at once; enabling lets them sign in again. Either way is
/// idempotent. The last enabled admin cannot be disabled (403).
#[utoipa::path(
    put,
    path = "/users/{id}/disabled",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = DisabledRequest,
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "The user, as changed", body = User),
        NoValidToken,
        (status = 403, description = "The caller is not an admin, or the user is the last enabled admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "`disabled` is missing or not a boolean", body = ValidationErrorBody),
    )
)]
pub async fn set_user_disabled(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
    UserId(id): UserId,
    JsonBody(body): JsonBody<DisabledRequest>,
) -> Result<Json<User>, RestError> {
    let user = state
        .users
        .set_disabled(&viewer, &id, body.disabled)
        .await?;
    Ok(Json(user.into()))
}
