//! What a sign-in knows about the client that asks for it: its address (for the per-address
//! limits) and its `User-Agent` (shown in the `sessions` list so a user can tell their
//! devices apart). The web layer reads both from the request; the domain sees plain values.

use std::net::IpAddr;

/// Longest user agent kept, in characters; real ones are far shorter, and the column is sized
/// to match.
pub const MAX_USER_AGENT_CHARS: usize = 255;

/// The client opening (or refreshing) a sign-in, or proving a password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInContext {
    /// The client's address; `None` when the server was not told the peer's address (it
    /// always is when served by `main` or the test harness).
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`: control characters dropped, cut to
    /// [`MAX_USER_AGENT_CHARS`]; `None` when absent or blank.
    pub user_agent: Option<String>,
}

impl SignInContext {
    /// The context of a client at `ip` that sent `user_agent`, cleaned as
    /// [`SignInContext::user_agent`] describes.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
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
        SignInContext { ip, user_agent }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_cleaned() {
        let agent = |ua: Option<&str>| SignInContext::new(None, ua).user_agent;
        assert_eq!(agent(None), None);
        assert_eq!(agent(Some("  ")), None);
        assert_eq!(agent(Some("curl/8.5\u{7}")).as_deref(), Some("curl/8.5"));
        let long = "é".repeat(400);
        let kept = agent(Some(&long)).unwrap();
        assert_eq!(kept.chars().count(), MAX_USER_AGENT_CHARS);
    }
}
