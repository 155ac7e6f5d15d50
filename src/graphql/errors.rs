//! The GraphQL adapter's error table: the `extensions.code` of each domain error (and the
//! extension it carries besides), the argument name of each domain field, the codes of errors
//! that arise in the adapter itself, and the code of a refusal the HTTP layer makes.

use axum::http::StatusCode;

use crate::error::{AppError, Field};

/// A document that does not parse.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// A document that does not fit the schema or the server's limits, or a request whose
/// variables or operation name do not fit its document.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// An input the client can correct: a value that fails the domain's rules, or an argument
/// value that does not coerce to its type; `extensions.field` names it.
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
/// A persisted query's hash the server does not know (Apollo's code).
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// No valid credentials.
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// A right password of an account that signs in with a second factor too;
/// `extensions.mfaToken` is the token to complete it with (`loginSecondFactor`).
pub const MFA_REQUIRED: &str = "MFA_REQUIRED";
/// Anything the client cannot act on; the message reveals nothing.
pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";
/// An HTTP request that holds no GraphQL request to run (or one sent by the wrong method).
pub const BAD_REQUEST: &str = "BAD_REQUEST";

/// The `extensions.code` of a domain error.
pub fn code(err: &AppError) -> &'static str {
    match err {
        AppError::Unauthenticated(_) => UNAUTHENTICATED,
        AppError::MfaRequired(_) => MFA_REQUIRED,
        AppError::Forbidden(_) | AppError::Refused { .. } => "FORBIDDEN",
        AppError::NotFound(_) => "NOT_FOUND",
        AppError::Conflict(_) => "CONFLICT",
        AppError::Validation { .. } => BAD_USER_INPUT,
        AppError::RateLimited { .. } => "RATE_LIMITED",
        AppError::Unavailable { .. } => "SERVICE_UNAVAILABLE",
        AppError::Internal(_) => INTERNAL,
    }
}

/// The extension a domain error carries besides its code, as (name, value): the argument a
/// validation error is about, the seconds a rate-limited client should wait, the token that
/// completes a sign-in awaiting its second factor.
pub fn detail(err: &AppError) -> Option<(&'static str, async_graphql::Value)> {
    match err {
        AppError::Validation { field, .. } => Some(("field", argument(*field).into())),
        AppError::RateLimited { retry_after } => Some(("retryAfter", (*retry_after).into())),
        AppError::Refused { reason, .. } => Some(("reason", reason.as_str().into())),
        AppError::MfaRequired(challenge) => Some(("mfaToken", challenge.0.clone().into())),
        _ => None,
    }
}

/// The argument (or input field) a domain field is, as the schema spells it: the
/// `extensions.field` of a `BAD_USER_INPUT`.
pub fn argument(field: Field) -> &'static str {
    match field {
        Field::Username => "username",
        Field::Email => "email",
        Field::Password => "password",
        Field::CurrentPassword => "currentPassword",
        Field::NewPassword => "newPassword",
        Field::PageSize => "first",
        Field::Cursor => "after",
        Field::Id => "id",
        Field::Ids => "ids",
        Field::UsernamePrefix => "usernamePrefix",
        Field::EmailPrefix => "emailPrefix",
        Field::Code => "code",
        Field::MfaToken => "mfaToken",
    }
}

/// The `extensions.code` of a request the HTTP layer refused with `status` before any
/// operation ran (a body too large, a method `/graphql` does not serve).
pub fn refusal_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        s if s.is_server_error() => INTERNAL,
        _ => BAD_REQUEST,
    }
}
