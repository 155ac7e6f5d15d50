//! The one domain error type, with its HTTP status and its GraphQL `extensions.code`, each
//! mapped here and nowhere else.

use axum::http::StatusCode;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Everything a request can fail with that a client can act on, plus `Internal`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No, invalid, expired or revoked token; or wrong credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The addressed resource does not exist.
    #[error("{0}")]
    NotFound(&'static str),
    /// A unique value (username, email) is already taken.
    #[error("{0}")]
    Conflict(&'static str),
    /// An input field failed validation; `field` is its name as the schema spells it.
    #[error("{message}")]
    Validation {
        /// The argument or input field, e.g. `email`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Too many attempts.
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// A dependency (the database or the session store) cannot be reached.
    #[error("{what} is unavailable; try again shortly")]
    Unavailable {
        /// Which dependency, in words a client may see.
        what: &'static str,
        /// The cause, logged but never shown.
        #[source]
        source: anyhow::Error,
    },
    /// Anything else. The message is fixed; the cause is logged where it becomes a response.
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    /// A validation error on `field`.
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field,
            message: message.into(),
        }
    }

    /// The database could not be reached.
    pub fn database_unavailable(source: impl Into<anyhow::Error>) -> Self {
        AppError::Unavailable {
            what: "the database",
            source: source.into(),
        }
    }

    /// The session store could not be reached.
    pub fn sessions_unavailable(source: impl Into<anyhow::Error>) -> Self {
        AppError::Unavailable {
            what: "the session store",
            source: source.into(),
        }
    }

    /// An unexpected failure.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(source.into())
    }

    /// The REST status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
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

    /// Logs the cause of a server-side failure; called once, where the error becomes a response.
    pub fn log(&self) {
        match self {
            AppError::Unavailable { what, source } => {
                tracing::warn!(error = format!("{source:#}"), "{what} is unavailable");
            }
            AppError::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "internal error")
            }
            _ => {}
        }
    }
}

impl From<DieselError> for AppError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => AppError::NotFound("not found"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::Conflict("username or email already taken")
            }
            // The drivers report lost connections, lock time-outs and "database is locked" as
            // these kinds: all are outages a retry can cure, not bugs.
            DieselError::DatabaseError(
                DatabaseErrorKind::Unknown
                | DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure,
                _,
            ) => AppError::database_unavailable(err),
            other => AppError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_reveal_nothing() {
        let err = AppError::internal(anyhow::anyhow!("password=hunter2 at db01"));
        assert_eq!(err.to_string(), "internal server error");
        let err = AppError::database_unavailable(anyhow::anyhow!("Access denied for user 'root'"));
        assert!(!err.to_string().contains("root"));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn unique_violation_is_conflict() {
        let err: AppError = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(String::from("Duplicate entry")),
        )
        .into();
        assert_eq!(err.code(), "CONFLICT");
        assert_eq!(err.status(), StatusCode::CONFLICT);
    }
}
