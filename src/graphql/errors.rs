//! The GraphQL adapter's error table: the `extensions.code` of each domain error, the
//! argument name of each domain field, and the code of a refusal the HTTP layer makes.

use axum::http::StatusCode;

use crate::error::{AppError, Field};

/// The `extensions.code` of a domain error.
pub fn code(err: &AppError) -> &'static str {
    match err {
        AppError::Unauthenticated(_) => "UNAUTHENTICATED",
        AppError::Forbidden(_) => "FORBIDDEN",
        AppError::NotFound(_) => "NOT_FOUND",
        AppError::Conflict(_) => "CONFLICT",
        AppError::Validation { .. } => "BAD_USER_INPUT",
        AppError::RateLimited { .. } => "RATE_LIMITED",
        AppError::Unavailable { .. } => "SERVICE_UNAVAILABLE",
        AppError::Internal(_) => "INTERNAL_SERVER_ERROR",
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
        Field::PageSize => "first",
        Field::Cursor => "after",
        Field::Id => "id",
    }
}

/// The `extensions.code` of a request the HTTP layer refused with `status` before any
/// operation ran (a body too large, a method `/graphql` does not serve).
pub fn refusal_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        s if s.is_server_error() => "INTERNAL_SERVER_ERROR",
        _ => "BAD_REQUEST",
    }
}
