//! A cap on the `Authorization` header. An access token here is well under 1 KiB; a header
//! many times longer is no credential, only work (copying, parsing, a signature check) that
//! a client could make the server do at will. It is refused before any route reads it.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::{ErrorBody, GraphqlErrors};

/// The longest `Authorization` header accepted, in bytes.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

const TOO_LONG: &str = "the Authorization header is too long";

/// Middleware: a request with an `Authorization` header over [`MAX_AUTHORIZATION_BYTES`] is
/// refused as unauthenticated, whatever its route: 401 with `WWW-Authenticate: Bearer` (REST
/// shape), or `UNAUTHENTICATED` on `/graphql`.
pub async fn refuse_oversized(
    State(graphql): State<GraphqlErrors>,
    request: Request,
    next: Next,
) -> Response {
    let oversized = request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .any(|value| value.len() > MAX_AUTHORIZATION_BYTES);
    if !oversized {
        return next.run(request).await;
    }
    if request.uri().path() == graphql.path {
        (graphql.unauthenticated)(request.headers().get(header::ACCEPT), TOO_LONG)
    } else {
        unauthorized(TOO_LONG)
    }
}

/// A REST refusal of the request's credentials: 401, `WWW-Authenticate: Bearer`, and
/// `{"detail": …}`.
pub fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
        Json(ErrorBody {
            detail: message.to_owned(),
            ..ErrorBody::default()
        }),
    )
        .into_response()
}

/// The token in an `Authorization` header value: `Bearer <token>` (scheme name in any case)
/// or, for legacy callers, the bare token; `None` when the value is neither.
pub fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => value,
    };
    // `Bearer` alone is a scheme without a token, not a bare token.
    if token.is_empty()
        || token.contains(char::is_whitespace)
        || token.eq_ignore_ascii_case("bearer")
    {
        return None;
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_bare_tokens_are_accepted() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
        assert_eq!(bearer_token("abc.def.ghi"), Some("abc.def.ghi"));
        assert!(bearer_token("Basic dXNlcjpwYXNz").is_none());
        assert!(bearer_token("Bearer ").is_none());
        assert!(bearer_token("").is_none());
    }
}
