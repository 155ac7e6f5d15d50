//! Error bodies in each route's convention, whoever wrote them. Handlers answer errors as
//! JSON already; but axum's extractors, tower-http's layers and the bundled Swagger UI answer
//! some in plain text (a body over the size limit: 413 "length limit exceeded") or with no
//! body at all, where clients expect JSON. This middleware rewrites those: `/graphql` answers
//! in the shape of a GraphQL response, everything else `{"detail": "…"}`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A REST error body: `{"detail": "<message>"}`, as FastAPI writes it.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    #[schema(example = "invalid username or password")]
    pub detail: String,
    /// Why a 403 refused, for machines: `ACCOUNT_DISABLED` or `EMAIL_NOT_VERIFIED`; absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ACCOUNT_DISABLED")]
    pub reason: Option<&'static str>,
    /// `true` on the 401 of a login whose password was right for an account that signs in
    /// with a second factor too; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_required: Option<bool>,
    /// With `mfa_required`: the token to complete the sign-in with at `/users/login/mfa`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
}

/// How the edge writes an error for the GraphQL endpoint, whose errors are GraphQL responses
/// rather than REST's `{"detail": …}`. The GraphQL adapter provides it (`lib.rs` wires it in),
/// so the edge needs to know nothing of GraphQL but its path.
#[derive(Debug, Clone, Copy)]
pub struct GraphqlErrors {
    /// The endpoint's path.
    pub path: &'static str,
    /// A refusal with this status and message, in the media type the `Accept` header asks for.
    pub refusal: fn(Option<&HeaderValue>, StatusCode, &str) -> Response,
    /// A refusal of the request's credentials, before it was read.
    pub unauthenticated: fn(Option<&HeaderValue>, &str) -> Response,
}

/// The longest plain-text error message passed on to the client; a longer body is replaced
/// by the status's reason phrase.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Middleware: passes every response through unless it is an error (4xx, 5xx) whose body is
/// not JSON; such a body is replaced by the route's JSON error shape, keeping the status and
/// the other headers (`Allow`, `Retry-After`, CORS).
pub async fn json_errors(
    State(graphql): State<GraphqlErrors>,
    request: Request,
    next: Next,
) -> Response {
    // Only the Accept header of a GraphQL request is kept: its error is answered in the
    // GraphQL media type the client asked for.
    let graphql_accept = (request.uri().path() == graphql.path)
        .then(|| request.headers().get(header::ACCEPT).cloned());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let message = message(status, &parts.headers, body).await;
    let rewritten = match graphql_accept {
        Some(accept) => (graphql.refusal)(accept.as_ref(), status, &message),
        None => (
            status,
            Json(ErrorBody {
                detail: message,
                ..ErrorBody::default()
            }),
        )
            .into_response(),
    };
    let (rewritten, body) = rewritten.into_parts();
    // The old headers that described the old body go; the rest stay.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.extend(rewritten.headers);
    Response::from_parts(parts, body)
}

/// Whether a response's body is JSON (`application/json` or a `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    super::media::content_type(headers).is_some_and(|essence| super::media::is_json(&essence))
}

/// The message of the rewritten error: a short plain-text body as it was (axum's rejections
/// say what was wrong with the request), else the status's reason phrase. A server error's
/// text is never passed on, since it could describe the server's insides.
async fn message(status: StatusCode, headers: &HeaderMap, body: Body) -> String {
    let reason = || status.canonical_reason().unwrap_or("error").to_owned();
    let plain_text = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if status.is_server_error() || !plain_text {
        return reason();
    }
    match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => match std::str::from_utf8(&bytes).map(str::trim) {
            Ok(text) if !text.is_empty() => text.to_owned(),
            _ => reason(),
        },
        Err(_) => reason(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn typed(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_types() {
        assert!(is_json(&typed("application/json")));
        assert!(is_json(&typed(
            "application/graphql-response+json; charset=utf-8"
        )));
        assert!(is_json(&typed("Application/Problem+JSON")));
        assert!(!is_json(&typed("text/plain; charset=utf-8")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn messages() {
        let text = typed("text/plain; charset=utf-8");
        let message = message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &text,
            Body::from("length limit exceeded"),
        )
        .await;
        assert_eq!(message, "length limit exceeded");
        let message = super::message(StatusCode::NOT_FOUND, &HeaderMap::new(), Body::empty()).await;
        assert_eq!(message, "Not Found");
        let message = super::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &text,
            Body::from("db01 is down"),
        )
        .await;
        assert_eq!(message, "Internal Server Error");
        let long = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let message = super::message(StatusCode::BAD_REQUEST, &text, Body::from(long)).await;
        assert_eq!(message, "Bad Request");
    }
}
