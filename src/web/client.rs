//! Who is calling: the client's IP address, from the TCP peer or, when the peer is a trusted
//! reverse proxy, from `X-Forwarded-For`. Per-address rate limits key on it, so a header a
//! client can write itself is believed only when a configured proxy passed it on.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::config::TrustedProxies;
use crate::signins::SignInContext;
use crate::state::AppState;

/// The header reverse proxies append the address they received a request from to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address, as [`attach`] resolved it; `None` when the server was not given the
/// peer address (it always is when served by `main` or the test harness).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    /// The caller of a request that came from `peer` with `headers`.
    pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Self {
        ClientIp(peer.map(|peer| client_ip(peer, headers, trusted)))
    }
}

/// What a sign-in records about the client of a request: its address and its `User-Agent`.
/// A header that is not valid UTF-8 is read lossily rather than dropped: it is only ever
/// displayed back to its owner.
pub fn sign_in_context(parts: &Parts) -> SignInContext {
    let ip = parts
        .extensions
        .get::<ClientIp>()
        .copied()
        .unwrap_or_default();
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .map(super::header_text);
    SignInContext::new(ip.0, agent.as_deref())
}

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Walks `X-Forwarded-For` from the right (the entry the nearest proxy wrote) while each hop
/// is a trusted proxy; the first address that is not one is the client. Entries further left
/// were written by the client or by proxies nobody vouches for, so they are never believed.
fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    let entries: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded_ip(entry) else {
            // Garbage where a trusted proxy should have written an address: the last address
            // known for certain (a proxy's) is the best key left.
            return client;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5678`,
/// `[::1]:5678`), as some proxies write it.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

/// Middleware: resolves the caller's address once per request and stores it in the request's
/// extensions, where the extractors find it.
pub async fn attach(State(state): State<AppState>, mut request: Request) -> Request {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let client = ClientIp::resolve(
        peer,
        request.headers(),
        &state.config.rate_limit.trusted_proxies,
    );
    request.extensions_mut().insert(client);
    request
}

/// The client of a request, for the sign-ins and password checks it asks for: never fails.
impl<S: Send + Sync> FromRequestParts<S> for SignInContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(sign_in_context(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let none = proxies(&[]);
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &none),
            ip("198.51.100.1")
        );
        let other = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &headers, &other),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client forged the first entry; the trusted proxy appended the real address.
        let headers = forwarded(&["1.1.1.1, 203.0.113.9, 10.1.2.3"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // Several header lines are one list, in order.
        let headers = forwarded(&["1.1.1.1", "203.0.113.9:4711"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Every hop trusted: the left-most.
        let headers = forwarded(&["10.9.9.9, 10.8.8.8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("10.9.9.9")
        );
        // Garbage behind a trusted hop: stop at the last certain address.
        let headers = forwarded(&["203.0.113.9, unknown, 10.8.8.8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("10.8.8.8")
        );
        let headers = forwarded(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn mapped_addresses_are_canonical() {
        let trusted = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            client_ip(
                ip("::ffff:127.0.0.1"),
                &forwarded(&["::ffff:203.0.113.9"]),
                &trusted
            ),
            ip("203.0.113.9")
        );
    }
}
