//! The two GraphQL-over-WebSocket dialects: what the server sends in each, and the close codes
//! of `graphql-transport-ws` (the `graphql-ws` library's protocol), which both use here.
//! What clients send is read with async-graphql's `ClientMessage`, which knows both.

use async_graphql::Response;
use axum::http::HeaderValue;
use serde_json::{Value, json};

/// `graphql-transport-ws`: the protocol of the `graphql-ws` library.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// `graphql-ws`: the older protocol of `subscriptions-transport-ws` (Apollo).
pub const LEGACY_WS: &str = "graphql-ws";

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `graphql-transport-ws`.
    Transport,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Dialect {
    /// The dialect of the subprotocol the handshake settled on.
    pub fn of(protocol: Option<&HeaderValue>) -> Option<Dialect> {
        match protocol?.to_str().ok()? {
            TRANSPORT_WS => Some(Dialect::Transport),
            LEGACY_WS => Some(Dialect::Legacy),
            _ => None,
        }
    }

    /// An answer (`next`; `data` in the older dialect) of subscription `id`.
    pub fn next(self, id: &str, payload: &Response) -> String {
        let kind = match self {
            Dialect::Transport => "next",
            Dialect::Legacy => "data",
        };
        json!({"type": kind, "id": id, "payload": payload}).to_string()
    }

    /// Subscription `id` failed before it started: `errors` are GraphQL errors.
    pub fn error(self, id: &str, errors: Value) -> String {
        json!({"type": "error", "id": id, "payload": errors}).to_string()
    }

    /// Subscription `id` ended.
    pub fn complete(id: &str) -> String {
        json!({"type": "complete", "id": id}).to_string()
    }

    /// The keep-alive message: a `ping` the client answers with a `pong`, or the older
    /// dialect's `ka`, which it does not answer.
    pub fn keep_alive(self) -> &'static str {
        match self {
            Dialect::Transport => r#"{"type":"ping"}"#,
            Dialect::Legacy => r#"{"type":"ka"}"#,
        }
    }

    /// The answer to a client's `ping`.
    pub fn pong() -> &'static str {
        r#"{"type":"pong"}"#
    }

    /// The acknowledgement of a `connection_init`.
    pub fn ack() -> &'static str {
        r#"{"type":"connection_ack"}"#
    }
}

/// One GraphQL error with its code, as the payload of an `error` message.
pub fn errors(code: &str, message: &str) -> Value {
    json!([{"message": message, "extensions": {"code": code}}])
}

/// Close codes (`graphql-transport-ws`'s own, and RFC 6455's).
pub mod close {
    /// A message that is not one of the protocol's, or not valid JSON.
    pub const BAD_MESSAGE: u16 = 4400;
    /// A subscription before the connection was acknowledged.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The token was refused, or the connection's session ended or expired.
    pub const FORBIDDEN: u16 = 4403;
    /// The client offered no subprotocol this server speaks.
    pub const BAD_SUBPROTOCOL: u16 = 4406;
    /// No `connection_init` in time.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// A second subscription with the id of a running one.
    pub const DUPLICATE_ID: u16 = 4409;
    /// A second `connection_init`.
    pub const TOO_MANY_INITS: u16 = 4429;
    /// The account holds as many connections as it may: "too many" too, and as final to
    /// `graphql-ws` clients, which do not retry it.
    pub const TOO_MANY_CONNECTIONS: u16 = 4429;
    /// The server stops (or restarts): connect again.
    pub const RESTART: u16 = 1012;
    /// A dependency is out, or the client fell behind: connect again later.
    pub const TRY_LATER: u16 = 1013;
}
