//! `POST /users/refresh`: a refresh token buys a new access token and a new refresh token.

use axum::Json;
use axum::extract::State;

use super::error::{RestError, ValidationErrorBody};
use super::extract::JsonBody;
use super::types::{RefreshRequest, Token};
use crate::signins::SignInContext;
use crate::state::AppState;
use crate::web::errors::ErrorBody;

/// Exchanges a refresh token for a new token pair.
///
/// The refresh token presented stops working, and so does the access token issued with it.
/// Presenting an already-exchanged refresh token ends that whole sign-in (401), except within
/// a few seconds (`REFRESH_REUSE_GRACE`) of the exchange, when it returns the same new pair, so
/// that two browser tabs refreshing at once both stay signed in.
#[utoipa::path(
    post,
    path = "/users/refresh",
    tag = "users",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair", body = Token),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 422, description = "`refresh_token` is missing", body = ValidationErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    context: SignInContext,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<Token>, RestError> {
    let session = state
        .sign_ins
        .refresh(&body.refresh_token, &context)
        .await?;
    Ok(Json(session.into()))
}
