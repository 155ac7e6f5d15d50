//! Refusals: answers to requests that fail before any operation runs, in the shape of a
//! GraphQL response (errors and no `data`) and in the negotiated media type.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::negotiate::{MediaType, negotiate_accept};
use super::request::Unreadable;
use crate::graphql::errors;
use crate::graphql::limits::LimitExceeded;
use crate::graphql::persisted::PersistedError;

/// What a refusal answers for: one request (an object), or a batch of this many (an array with
/// the refusal in each entry's place, so that a batching client, Apollo's persisted-query
/// link among them, finds an answer for each of its operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    One,
    Batch(usize),
}

impl Shape {
    /// The shape of the answer to `count` requests, `batched` or not.
    pub(super) fn of(batched: bool, count: usize) -> Self {
        if batched {
            Shape::Batch(count)
        } else {
            Shape::One
        }
    }
}

/// A request-level failure (before execution), in the shape of a GraphQL response.
pub(super) fn request_error(
    status: StatusCode,
    media: MediaType,
    code: &str,
    message: &str,
) -> Response {
    refused(status, media, Shape::One, code, message)
}

/// The answer to one request, refused with `code` and `message`: an error and no `data`.
fn refusal_answer(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]})
}

/// The answer, in a batch, to an entry whose persisted-query hash is unknown.
pub(super) fn persisted_not_found_answer() -> String {
    refusal_answer(errors::PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_FOUND).to_string()
}

/// The message of an unknown persisted-query hash, as Apollo's clients look for it.
const PERSISTED_QUERY_NOT_FOUND: &str = "PersistedQueryNotFound";

/// A refusal of every request in `shape`: each answer has this error and no `data`.
fn refused(
    status: StatusCode,
    media: MediaType,
    shape: Shape,
    code: &str,
    message: &str,
) -> Response {
    let answer = refusal_answer(code, message);
    let body = match shape {
        Shape::One => answer.to_string(),
        Shape::Batch(count) => serde_json::Value::Array(vec![answer; count]).to_string(),
    };
    (status, [(header::CONTENT_TYPE, media.as_str())], body).into_response()
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
pub(super) fn limit_error(media: MediaType, shape: Shape, exceeded: LimitExceeded) -> Response {
    refused(
        invalid_status(media, shape),
        media,
        shape,
        errors::VALIDATION_FAILED,
        &exceeded.0,
    )
}

/// The status of a request refused as invalid: 400, but 200 for a single request answered as
/// `application/json`, as the GraphQL-over-HTTP spec asks.
fn invalid_status(media: MediaType, shape: Shape) -> StatusCode {
    if shape != Shape::One || media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// A persisted query that cannot be run: `PersistedQueryNotFound` (code
/// `PERSISTED_QUERY_NOT_FOUND`, 200 as Apollo's clients expect, so that they send the document
/// with its hash), or a malformed extension or a hash that is not the document's
/// (`BAD_USER_INPUT`, status as for a document over a limit).
pub(super) fn persisted_error(media: MediaType, shape: Shape, error: PersistedError) -> Response {
    match error {
        PersistedError::NotFound => refused(
            StatusCode::OK,
            media,
            shape,
            errors::PERSISTED_QUERY_NOT_FOUND,
            PERSISTED_QUERY_NOT_FOUND,
        ),
        PersistedError::Invalid(message) => refused(
            invalid_status(media, shape),
            media,
            shape,
            errors::BAD_USER_INPUT,
            message,
        ),
    }
}

/// A dependency the request needs before any operation runs (Redis, for a persisted query)
/// did not answer: 503, as any outage.
pub(super) fn unavailable(media: MediaType, shape: Shape, cause: anyhow::Error) -> Response {
    tracing::warn!(error = %cause, "persisted queries unavailable");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        media,
        shape,
        errors::refusal_code(StatusCode::SERVICE_UNAVAILABLE),
        "a service the server depends on is unavailable; retry shortly",
    )
}
