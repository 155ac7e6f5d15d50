//! The one domain error type, with its HTTP status and its GraphQL `extensions.code`, each
//! mapped here and nowhere else; and its REST response (FastAPI-style `{"detail": …}` bodies).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

/// Where a REST client put the input that a validation error is about: the first element of
/// the error's `loc` in a 422 body. GraphQL has no such notion and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputLocation {
    /// The request body (JSON or form); the default.
    Body,
    /// The query string, e.g. `?limit=`.
    Query,
}

impl InputLocation {
    /// The spelling in `loc`.
    pub fn as_str(self) -> &'static str {
        match self {
            InputLocation::Body => "body",
            InputLocation::Query => "query",
        }
    }
}

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
        /// Where a REST client sent it.
        location: InputLocation,
    },
    /// The request body cannot be read as the route expects (REST): not JSON, not an object.
    #[error("{0}")]
    MalformedBody(String),
    /// The request body has a media type the route does not read (REST).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// The request body is larger than the server accepts.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// No route has this path.
    #[error("Not Found")]
    RouteNotFound,
    /// The path exists, but not with this method; the router adds the `Allow` header.
    #[error("Method Not Allowed")]
    MethodNotAllowed,
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
            location: InputLocation::Body,
        }
    }

    /// The same error, but about a query-string parameter (REST reports where the bad input
    /// was); any other error is returned unchanged.
    pub fn in_query(self) -> Self {
        match self {
            AppError::Validation { field, message, .. } => AppError::Validation {
                field,
                message,
                location: InputLocation::Query,
            },
            other => other,
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
            AppError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RouteNotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
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
            // Only the REST adapter raises these; GraphQL reports its own request errors.
            AppError::MalformedBody(_)
            | AppError::UnsupportedMediaType(_)
            | AppError::PayloadTooLarge
            | AppError::MethodNotAllowed => "BAD_REQUEST",
            AppError::RouteNotFound => "NOT_FOUND",
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

/// A REST error body: `{"detail": "<message>"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    #[schema(example = "invalid username or password")]
    pub detail: String,
}

/// A REST validation error body (422), as FastAPI writes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    /// One entry per invalid input.
    pub detail: Vec<ValidationIssue>,
}

/// One invalid input of a 422.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationIssue {
    /// Where the input was and its name, e.g. `["body", "email"]` or `["query", "limit"]`.
    #[schema(example = json!(["body", "email"]))]
    pub loc: Vec<&'static str>,
    /// What is wrong with it.
    #[schema(example = "email is not a valid address")]
    pub msg: String,
    /// Always `value_error`.
    #[serde(rename = "type")]
    #[schema(example = "value_error")]
    pub kind: &'static str,
}

/// The REST response of an error: its status, a `{"detail": …}` body, and the headers the
/// contract asks for (`WWW-Authenticate` on 401, `Retry-After` on 429). Server-side failures
/// are logged here, where they become responses.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let mut response = match &self {
            AppError::Validation {
                field,
                message,
                location,
            } => {
                let body = ValidationErrorBody {
                    detail: vec![ValidationIssue {
                        loc: vec![location.as_str(), field],
                        msg: message.clone(),
                        kind: "value_error",
                    }],
                };
                (status, Json(body)).into_response()
            }
            other => {
                let body = ErrorBody {
                    detail: other.to_string(),
                };
                (status, Json(body)).into_response()
            }
        };
        match &self {
            AppError::Unauthenticated(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AppError::RateLimited { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
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

    async fn rest_reply(err: AppError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = err.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn rest_bodies_follow_the_contract() {
        let (status, _, body) = rest_reply(AppError::validation("email", "bad email")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            serde_json::json!({"detail": [{"loc": ["body", "email"], "msg": "bad email", "type": "value_error"}]})
        );
        let (_, _, body) = rest_reply(AppError::validation("limit", "too big").in_query()).await;
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["query", "limit"])
        );

        let (status, headers, body) = rest_reply(AppError::Unauthenticated("no token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body, serde_json::json!({"detail": "no token"}));

        let (status, headers, _) = rest_reply(AppError::RateLimited { retry_after: 42 }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "42");

        let (status, _, body) =
            rest_reply(AppError::internal(anyhow::anyhow!("secret detail"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, serde_json::json!({"detail": "internal server error"}));
    }

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
