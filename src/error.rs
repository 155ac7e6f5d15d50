//! The domain's error: what an operation can fail with that a client can act on, plus
//! `Internal`. It knows no transport: the REST adapter maps it to HTTP statuses and bodies
//! (`rest::error`), the GraphQL adapter to `extensions.code` (`graphql::errors`), each in one
//! table.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::db::DbError;

/// An input the domain checks, named as the domain knows it; each adapter spells it its own
/// way (`first` in GraphQL is `limit` in the REST query string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A username.
    Username,
    /// An email address.
    Email,
    /// A new password.
    Password,
    /// The current password, proving a password change.
    CurrentPassword,
    /// The new password of a password reset.
    NewPassword,
    /// How many items a page holds.
    PageSize,
    /// Where a page starts.
    Cursor,
    /// A user's id.
    Id,
    /// A list of ids fetched at once.
    Ids,
    /// The start of the usernames a list is filtered to.
    UsernamePrefix,
    /// The start of the email addresses a list is filtered to.
    EmailPrefix,
    /// A second-factor code: a TOTP code or a recovery code.
    Code,
    /// The token a right password earned while the second factor is awaited.
    MfaToken,
}

/// Why an authenticated (or credential-proving) caller is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An admin disabled the account.
    AccountDisabled,
    /// `REQUIRE_EMAIL_VERIFICATION` is on and the address is not verified yet.
    EmailNotVerified,
}

impl Refusal {
    /// The name clients see (`extensions.reason`, REST's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::AccountDisabled => "ACCOUNT_DISABLED",
            Refusal::EmailNotVerified => "EMAIL_NOT_VERIFIED",
        }
    }
}

/// The token of a sign-in awaiting its second factor, handed to the client inside
/// [`AppError::MfaRequired`]. Its `Debug` hides it: errors reach logs.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaChallenge(pub String);

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaChallenge([redacted])")
    }
}

/// Everything an operation can fail with that a client can act on, plus `Internal`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No, invalid, expired or revoked token; or wrong credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Not allowed for a reason the client can act on or show: `reason` names it for
    /// machines (`ACCOUNT_DISABLED`, `EMAIL_NOT_VERIFIED`).
    #[error("{message}")]
    Refused {
        /// Why, as a machine-readable name.
        reason: Refusal,
        /// Why, in words.
        message: &'static str,
    },
    /// The addressed resource does not exist.
    #[error("{0}")]
    NotFound(&'static str),
    /// A unique value (username, email) is already taken.
    #[error("{0}")]
    Conflict(&'static str),
    /// The password was right, but the account signs in with a second factor too: complete
    /// the sign-in with the challenge's token and a code.
    #[error(
        "a second factor is required: send a code from the authenticator app (or a recovery code) with the mfa token"
    )]
    MfaRequired(MfaChallenge),
    /// An input failed validation.
    #[error("{message}")]
    Validation {
        /// Which input.
        field: Field,
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
    /// The same error about `field` instead, for a rule checked under another input's name
    /// (a reset's new password follows the password rules); any other error as it is.
    pub fn on_field(self, field: Field) -> Self {
        match self {
            AppError::Validation { message, .. } => AppError::Validation { field, message },
            other => other,
        }
    }

    /// The account is disabled.
    pub const ACCOUNT_DISABLED: AppError = AppError::Refused {
        reason: Refusal::AccountDisabled,
        message: "this account is disabled",
    };

    /// The caller must verify their email first.
    pub const EMAIL_NOT_VERIFIED: AppError = AppError::Refused {
        reason: Refusal::EmailNotVerified,
        message: "verify your email address first",
    };

    /// A validation error on `field`.
    pub fn validation(field: Field, message: impl Into<String>) -> Self {
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

    /// The cause of a failure of the server's own (an outage, a bug), for the one log line
    /// that records it; `None` for an error that is the client's to act on.
    pub fn server_fault(&self) -> Option<ServerFault> {
        match self {
            AppError::Unavailable { what, source } => Some(ServerFault {
                outage: true,
                what: format!("{what} is unavailable"),
                cause: format!("{source:#}"),
            }),
            AppError::Internal(source) => Some(ServerFault {
                outage: false,
                what: "internal error".to_owned(),
                cause: format!("{source:#}"),
            }),
            _ => None,
        }
    }
}

/// A failure of the server's own, described for its log: adapters attach it to the response
/// they make of the error, and the web edge logs it once, in the request's span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFault {
    /// A dependency was down (logged as a warning), rather than a bug (an error).
    pub outage: bool,
    /// What failed.
    pub what: String,
    /// Why, with its chain of causes; never shown to clients.
    pub cause: String,
}

/// How storage failures read to the domain: a missing row is `NotFound`, a taken unique
/// value `Conflict`, a database that cannot be reached (or a connection found dead)
/// `Unavailable`, anything else `Internal`.
impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Checkout(source) => AppError::database_unavailable(source),
            DbError::Query(DieselError::NotFound) => AppError::NotFound("not found"),
            DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                AppError::Conflict("username or email already taken")
            }
            DbError::Query(query) if crate::db::is_transient(&query) => {
                AppError::database_unavailable(query)
            }
            DbError::Query(query) => AppError::internal(query),
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
        let fault = err.server_fault().unwrap();
        assert!(fault.outage);
        assert!(fault.cause.contains("root"));
        assert!(AppError::NotFound("x").server_fault().is_none());
    }

    #[test]
    fn storage_failures_are_classified() {
        let unique = DbError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(String::from("Duplicate entry")),
        ));
        assert!(matches!(AppError::from(unique), AppError::Conflict(_)));
        let closed = DbError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(String::from("gone")),
        ));
        assert!(matches!(
            AppError::from(closed),
            AppError::Unavailable { .. }
        ));
        let bug = DbError::Query(DieselError::DeserializationError("bad".into()));
        assert!(matches!(AppError::from(bug), AppError::Internal(_)));
        assert!(matches!(
            AppError::from(DbError::Query(DieselError::NotFound)),
            AppError::NotFound(_)
        ));
    }
}
