//! The REST adapter's errors: the domain's, mapped to HTTP statuses and FastAPI-style bodies in
//! one table ([`RestError::status`], [`Location::of`]), and the adapter's own (a body that is
//! not JSON, a route that does not exist).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{AppError, Field};
use crate::web::access_log::Faults;
use crate::web::errors::ErrorBody;

/// Where a REST client put an input: the first element of a 422's `loc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The request body (JSON or form).
    Body,
    /// The query string, e.g. `?limit=`.
    Query,
    /// The path, e.g. `/users/{id}`.
    Path,
}

impl Location {
    /// The spelling in `loc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Body => "body",
            Location::Query => "query",
            Location::Path => "path",
        }
    }

    /// Where a domain field travels in the REST routes, and its name there.
    pub fn of(field: Field) -> (Location, &'static str) {
        match field {
            Field::Username => (Location::Body, "username"),
            Field::Email => (Location::Body, "email"),
            Field::Password => (Location::Body, "password"),
            Field::CurrentPassword => (Location::Body, "current_password"),
            Field::NewPassword => (Location::Body, "new_password"),
            Field::PageSize => (Location::Query, "limit"),
            Field::Cursor => (Location::Query, "after"),
            Field::Id => (Location::Path, "id"),
            // No REST route takes a list of ids; the body is the nearest place to name.
            Field::Ids => (Location::Body, "ids"),
            Field::UsernamePrefix => (Location::Query, "username_prefix"),
            Field::EmailPrefix => (Location::Query, "email_prefix"),
            Field::Code => (Location::Body, "code"),
            Field::MfaToken => (Location::Body, "mfa_token"),
        }
    }
}

/// Everything a REST route can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// What the domain refused (or failed at).
    #[error(transparent)]
    Domain(#[from] AppError),
    /// An input the adapter itself reads failed: missing, of the wrong type.
    #[error("{message}")]
    Invalid {
        /// Where it was.
        location: Location,
        /// Its name there.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The request body cannot be read as the route expects: not JSON, not an object.
    #[error("{0}")]
    MalformedBody(String),
    /// The request body has a media type the route does not read.
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
}

impl RestError {
    /// A 422 about the body field `name`.
    pub fn invalid_body(name: &'static str, message: impl Into<String>) -> Self {
        RestError::Invalid {
            location: Location::Body,
            name,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            RestError::Domain(err) => match err {
                AppError::Unauthenticated(_) | AppError::MfaRequired(_) => StatusCode::UNAUTHORIZED,
                AppError::Forbidden(_) | AppError::Refused { .. } => StatusCode::FORBIDDEN,
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                AppError::Conflict(_) => StatusCode::CONFLICT,
                AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            RestError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            RestError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            RestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RestError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RestError::RouteNotFound => StatusCode::NOT_FOUND,
            RestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The `loc` and message of a 422, `None` for any other error.
    fn invalid_input(&self) -> Option<(Location, &'static str, String)> {
        match self {
            RestError::Domain(AppError::Validation { field, message }) => {
                let (location, name) = Location::of(*field);
                Some((location, name, message.clone()))
            }
            RestError::Invalid {
                location,
                name,
                message,
            } => Some((*location, name, message.clone())),
            _ => None,
        }
    }
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

/// The response: the status, a `{"detail": …}` body, and the headers the contract asks for
/// (`WWW-Authenticate` on 401, `Retry-After` on 429). A server-side failure travels with it
/// for the web edge to log.
impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match self.invalid_input() {
            Some((location, name, msg)) => {
                let body = ValidationErrorBody {
                    detail: vec![ValidationIssue {
                        loc: vec![location.as_str(), name],
                        msg,
                        kind: "value_error",
                    }],
                };
                (status, Json(body)).into_response()
            }
            None => {
                let reason = match &self {
                    RestError::Domain(AppError::Refused { reason, .. }) => Some(reason.as_str()),
                    _ => None,
                };
                let mfa_token = match &self {
                    RestError::Domain(AppError::MfaRequired(challenge)) => {
                        Some(challenge.0.clone())
                    }
                    _ => None,
                };
                let body = ErrorBody {
                    detail: self.to_string(),
                    reason,
                    mfa_required: mfa_token.is_some().then_some(true),
                    mfa_token,
                };
                (status, Json(body)).into_response()
            }
        };
        if let RestError::Domain(err) = &self {
            match err {
                AppError::Unauthenticated(_) | AppError::MfaRequired(_) => {
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
            if let Some(fault) = err.server_fault() {
                Faults::attach(&mut response, fault);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn reply(
        err: impl Into<RestError>,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = err.into().into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies_follow_the_contract() {
        let (status, _, body) = reply(AppError::validation(Field::Email, "bad email")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body,
            serde_json::json!({"detail": [{"loc": ["body", "email"], "msg": "bad email", "type": "value_error"}]})
        );
        let (_, _, body) = reply(AppError::validation(Field::PageSize, "too big")).await;
        assert_eq!(
            body["detail"][0]["loc"],
            serde_json::json!(["query", "limit"])
        );

        let (status, headers, body) = reply(AppError::Unauthenticated("no token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body, serde_json::json!({"detail": "no token"}));

        let (status, headers, _) = reply(AppError::RateLimited { retry_after: 42 }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "42");

        let (status, _, body) = reply(AppError::internal(anyhow::anyhow!("secret detail"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, serde_json::json!({"detail": "internal server error"}));

        let (status, _, body) = reply(RestError::RouteNotFound).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, serde_json::json!({"detail": "Not Found"}));
    }

    #[test]
    fn server_faults_travel_with_the_response() {
        let response =
            RestError::from(AppError::database_unavailable(anyhow::anyhow!("db01 down")))
                .into_response();
        let faults = response.extensions().get::<Faults>().unwrap();
        assert!(faults.0[0].outage);
        assert!(faults.0[0].cause.contains("db01"));
        let response = RestError::from(AppError::NotFound("x")).into_response();
        assert!(response.extensions().get::<Faults>().is_none());
    }
}
