//! `POST /users/refresh`: a refresh token buys a new access token and a new refresh token.
//! `POST /users/login/mfa`: the second step of a login with two-step sign-in on.

use axum::Json;
use axum::extract::State;

use super::error::{RestError, ValidationErrorBody};
use super::extract::JsonBody;
use super::responses::TooManyAttempts;
use super::types::{MfaLoginRequest, RefreshRequest, Token};
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

/// Completes a login that answered 401 with `mfa_required`.
///
/// `mfa_token` is the token of that answer (valid 5 minutes, for at most 5 codes); `code` is
/// the 6 digits the authenticator app shows, or one of the recovery codes (each works once).
/// Answers like a login. Codes count against the login limits (429).
#[utoipa::path(
    post,
    path = "/users/login/mfa",
    tag = "users",
    request_body = MfaLoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Token),
        (status = 401, description = "Wrong code; or an unknown, used, expired or exhausted `mfa_token` (sign in again)", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The account was disabled in the instant between the two steps (`reason`: `ACCOUNT_DISABLED`); disabling ends waiting sign-ins, so afterwards it is 401", body = ErrorBody),
        (status = 422, description = "A field is missing, or `code` is neither 6 digits nor a recovery code", body = ValidationErrorBody),
        TooManyAttempts,
    )
)]
pub async fn login_mfa(
    State(state): State<AppState>,
    context: SignInContext,
    JsonBody(body): JsonBody<MfaLoginRequest>,
) -> Result<Json<Token>, RestError> {
    let session = state
        .mfa
        .login_second_factor(&body.mfa_token, &body.code, &context)
        .await?;
    Ok(Json(session.into()))
}
