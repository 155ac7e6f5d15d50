//! The HTTP edge: how connections are served, and what every request and response goes
//! through whichever route it is for — the client's address, the request id, the access log,
//! metrics, security headers, the `Authorization` cap, JSON error bodies, health probes.

pub mod access_log;
pub mod authorization;
pub mod client;
pub mod errors;
pub mod headers;
pub mod health;
pub mod media;
pub mod metrics;
pub mod serve;

use axum::http::{HeaderName, HeaderValue};

/// The request-id header: set on each request (or an incoming one kept), carried by every
/// log line of the request, echoed on the response, and exposed to browsers by CORS.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A header's value as text; bytes that are not UTF-8 are replaced (`U+FFFD`) rather than
/// refused. Valid text, nearly every header, is checked by `str::from_utf8` (word-at-a-time
/// over ASCII) and copied, several times cheaper than the lossy decoder's walk.
pub fn header_text(value: &HeaderValue) -> String {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
    }
}
