//! A cap on the `Authorization` header. An access token here is well under 1 KiB; a header
//! many times longer is no credential, only work (copying, parsing, a signature check) that
//! a client could make the server do at will. It is refused before any route reads it.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::graphql::http::{GRAPHQL_PATH, unauthenticated};

/// The longest `Authorization` header accepted, in bytes.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

const TOO_LONG: &str = "the Authorization header is too long";

/// Middleware: a request with an `Authorization` header over [`MAX_AUTHORIZATION_BYTES`] is
/// refused as unauthenticated, whatever its route: 401 with `WWW-Authenticate: Bearer` (REST
/// shape), or `UNAUTHENTICATED` on `/graphql`.
pub async fn refuse_oversized(request: Request, next: Next) -> Response {
    let oversized = request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .any(|value| value.len() > MAX_AUTHORIZATION_BYTES);
    if !oversized {
        return next.run(request).await;
    }
    if request.uri().path() == GRAPHQL_PATH {
        unauthenticated(request.headers().get(header::ACCEPT), TOO_LONG)
    } else {
        AppError::Unauthenticated(TOO_LONG).into_response()
    }
}
