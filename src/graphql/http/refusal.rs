//! Refusals: answers to requests that fail before any operation runs, in the shape of a
//! GraphQL response (errors and no `data`) and in the negotiated media type.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::negotiate::{MediaType, negotiate_accept};
use super::request::Unreadable;
use crate::graphql::errors;
use crate::graphql::limits::LimitExceeded;
use crate::graphql::persisted::PersistedError;

/// A request-level failure (before execution), in the shape of a GraphQL response.
pub(super) fn request_error(
    status: StatusCode,
    media: MediaType,
    code: &str,
    message: &str,
) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (
        status,
        [(header::CONTENT_TYPE, media.as_str())],
        body.to_string(),
    )
        .into_response()
}

/// A refusal made outside the GraphQL handler (an error of the HTTP layer, a method
/// `/graphql` does not serve), in the shape of a GraphQL response and in the JSON type that
/// `accept` (the request's `Accept` header) asks for; `application/json` when it names
/// neither, as the answer is an error either way.
pub fn refusal(accept: Option<&HeaderValue>, status: StatusCode, message: &str) -> Response {
    let media = negotiate_accept(accept).unwrap_or(MediaType::Json);
    request_error(status, media, errors::refusal_code(status), message)
}

/// A request refused for its credentials before it was read (see `web::authorization`):
/// `UNAUTHENTICATED` without `data`. With `application/json` that is 200, as for any
/// well-formed request; with `application/graphql-response+json`, an answer without `data` is
/// 401 (with `WWW-Authenticate: Bearer`), as the GraphQL-over-HTTP spec asks.
pub fn unauthenticated(accept: Option<&HeaderValue>, message: &str) -> Response {
    let media = negotiate_accept(accept).unwrap_or(MediaType::Json);
    if media == MediaType::Json {
        return request_error(StatusCode::OK, media, errors::UNAUTHENTICATED, message);
    }
    let mut response = request_error(
        StatusCode::UNAUTHORIZED,
        media,
        errors::UNAUTHENTICATED,
        message,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Any other method on `/graphql`: 405 in the shape of a GraphQL response (the router adds
/// `Allow`).
pub async fn method_not_allowed(headers: HeaderMap) -> Response {
    refusal(
        headers.get(header::ACCEPT),
        StatusCode::METHOD_NOT_ALLOWED,
        "GraphQL requests are sent with GET or POST",
    )
}

/// An HTTP request that holds no GraphQL request to run.
pub(super) fn unreadable_request(media: MediaType, unreadable: &Unreadable) -> Response {
    request_error(
        unreadable.status,
        media,
        errors::BAD_REQUEST,
        &unreadable.message,
    )
}

/// A mutation sent by GET: 405, allowing POST.
pub(super) fn mutation_by_get(media: MediaType) -> Response {
    let mut response = request_error(
        StatusCode::METHOD_NOT_ALLOWED,
        media,
        errors::BAD_REQUEST,
        "mutations must be sent with POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// A request over a document limit is refused like a document that fails validation (it is
/// one, of the server's own rules): 400 with `application/graphql-response+json`, 200 with
/// `application/json` as the GraphQL-over-HTTP spec asks. A batch is refused whole with 400.
pub(super) fn limit_error(media: MediaType, batched: bool, exceeded: LimitExceeded) -> Response {
    let status = if batched || media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    request_error(status, media, errors::VALIDATION_FAILED, &exceeded.0)
}

/// A persisted query that cannot be run: `PersistedQueryNotFound` (code
/// `PERSISTED_QUERY_NOT_FOUND`, 200 as Apollo's clients expect, so that they send the document
/// with its hash), or a malformed extension or a hash that is not the document's
/// (`BAD_USER_INPUT`, status as for a document over a limit).
pub(super) fn persisted_error(media: MediaType, batched: bool, error: PersistedError) -> Response {
    match error {
        PersistedError::NotFound => request_error(
            StatusCode::OK,
            media,
            errors::PERSISTED_QUERY_NOT_FOUND,
            "PersistedQueryNotFound",
        ),
        PersistedError::Invalid(message) => {
            let status = if batched || media == MediaType::GraphqlResponse {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            request_error(status, media, errors::BAD_USER_INPUT, message)
        }
    }
}

/// A dependency the request needs before any operation runs (Redis, for a persisted query)
/// did not answer: 503, as any outage.
pub(super) fn unavailable(media: MediaType, cause: anyhow::Error) -> Response {
    tracing::warn!(error = %cause, "persisted queries unavailable");
    request_error(
        StatusCode::SERVICE_UNAVAILABLE,
        media,
        errors::refusal_code(StatusCode::SERVICE_UNAVAILABLE),
        "a service the server depends on is unavailable; retry shortly",
    )
}
