//! What a new session records about the client that opened it, read from the request by the
//! adapters and handed to the service: today the `User-Agent`, shown in the `sessions` list so a
//! user can tell their devices apart.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

/// Longest user agent kept, in characters; real ones are far shorter, and the column is sized
/// to match.
pub const MAX_USER_AGENT_CHARS: usize = 255;

/// Details of the client opening (or refreshing) a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionMeta {
    /// The request's `User-Agent`: control characters dropped, cut to
    /// [`MAX_USER_AGENT_CHARS`]; `None` when absent or blank.
    pub user_agent: Option<String>,
}

impl SessionMeta {
    /// Details from a raw user agent, cleaned as [`SessionMeta::user_agent`] describes.
    pub fn new(user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .filter(|ua| !ua.is_empty());
        SessionMeta { user_agent }
    }

    /// Details from request headers. A header that is not valid UTF-8 is read lossily rather
    /// than dropped: it is only ever displayed back to its owner.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let raw = headers
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        SessionMeta::new(raw.as_deref())
    }
}

/// REST handlers take the details as an extractor; it never fails.
impl<S: Send + Sync> FromRequestParts<S> for SessionMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(SessionMeta::from_headers(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cleaned() {
        assert_eq!(SessionMeta::new(None).user_agent, None);
        assert_eq!(SessionMeta::new(Some("  ")).user_agent, None);
        assert_eq!(
            SessionMeta::new(Some("curl/8.5\u{7}"))
                .user_agent
                .as_deref(),
            Some("curl/8.5")
        );
        let long = "é".repeat(400);
        let kept = SessionMeta::new(Some(&long)).user_agent.unwrap();
        assert_eq!(kept.chars().count(), MAX_USER_AGENT_CHARS);
    }
}
