//! The account-lifecycle routes (API.md section 7): password reset and email verification.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::error::{RestError, ValidationErrorBody};
use super::extract::{CurrentUser, JsonBody};
use super::responses::{NoValidToken, TooManyAttempts};
use super::types::{PasswordResetConfirm, PasswordResetRequest, UserData, VerifyEmailRequest};
use crate::signins::SignInContext;
use crate::state::AppState;
use crate::web::errors::ErrorBody;

/// Mails a password-reset link to the account with this address, if there is one.
///
/// The answer is the same (202), in about the same time, whether or not the address is
/// registered. Limited per client address and per address asked for (429).
#[utoipa::path(
    post,
    path = "/users/password-reset",
    tag = "users",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "A link is on its way if the address is registered"),
        (status = 422, description = "`email` is missing or not an address", body = ValidationErrorBody),
        TooManyAttempts,
    )
)]
pub async fn request_password_reset(
    State(state): State<AppState>,
    context: SignInContext,
    JsonBody(body): JsonBody<PasswordResetRequest>,
) -> Result<StatusCode, RestError> {
    state
        .users
        .request_password_reset(&body.email, &context)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with the token of a reset mail.
///
/// The token works once; every session and refresh token of the user ends; the address is
/// marked verified. A bad, used or expired token is 401, the same for each.
#[utoipa::path(
    post,
    path = "/users/password-reset/confirm",
    tag = "users",
    request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "The password is changed; sign in with it"),
        (status = 401, description = "Bad, used or expired token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 422, description = "The new password fails validation", body = ValidationErrorBody),
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PasswordResetConfirm>,
) -> Result<StatusCode, RestError> {
    state
        .users
        .reset_password(&body.token, body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verifies the address a verification mail was sent to.
///
/// Needs no token: the link may be opened anywhere. A bad, used or expired verification
/// token (or one for an address the account no longer has) is 401.
#[utoipa::path(
    post,
    path = "/users/verify-email",
    tag = "users",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The address is verified", body = UserData),
        (status = 401, description = "Bad, used or expired token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 422, description = "`token` is missing", body = ValidationErrorBody),
    )
)]
pub async fn verify_email(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<VerifyEmailRequest>,
) -> Result<Json<UserData>, RestError> {
    let user = state.users.verify_email(&body.token).await?;
    Ok(Json(user.into()))
}

/// Sends a new verification mail to the caller's address.
///
/// An earlier link stops working. An address already verified gets no mail; the answer is the
/// same. Limited per user (429).
#[utoipa::path(
    post,
    path = "/users/verify-email/resend",
    tag = "users",
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 202, description = "A mail is on its way"),
        NoValidToken,
        TooManyAttempts,
    )
)]
pub async fn resend_verification(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
) -> Result<StatusCode, RestError> {
    state.users.send_verification_email(&viewer).await?;
    Ok(StatusCode::ACCEPTED)
}
