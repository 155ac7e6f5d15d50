//! GraphQL over WebSocket at `/graphql`: subscriptions (`accountEvents`) in the
//! `graphql-transport-ws` protocol (the `graphql-ws` library's) and the older `graphql-ws`
//! one (subscriptions-transport-ws).
//!
//! Written here rather than with async-graphql's WebSocket engine, which has no time limit on
//! `connection_init`, no cap on subscriptions per connection, no way to close a socket from
//! the server with a code of its choosing (4403 when its session ends), and sends no
//! keep-alive pings. async-graphql still reads the client's messages and runs each
//! subscription: once when it starts, with full validation, then once per event of the
//! account (see [`super::subscription::LiveEvent`]).
//!
//! `protocol` holds the two dialects and the close codes; `connection` runs one connection.

mod connection;
mod counts;
pub mod protocol;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prometheus::IntGauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use self::connection::Connection;
use self::counts::Counts;
use self::protocol::{Dialect, LEGACY_WS, TRANSPORT_WS};
use super::ApiSchema;
use crate::ratelimit::address_key;
use crate::state::AppState;

/// Time a client has to send `connection_init` once connected.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections one client address (an IPv4 address, an IPv6 /64) may hold while they
/// wait for `connection_init`. A real client sends it within milliseconds of connecting, so
/// this is never reached by one; without it, one address could hold every one of
/// `WS_MAX_CONNECTIONS` for [`INIT_TIMEOUT`] at a time without a token.
pub const MAX_AWAITING_INIT_PER_ADDRESS: usize = 16;
/// Most subscriptions one connection runs at once.
pub const MAX_SUBSCRIPTIONS: usize = 10;
/// Time a write to a client may take; a client that reads nothing for this long is dropped,
/// so it holds no more than its socket's buffers.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message a client may send (a subscription document and its variables).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Buffers of one connection: a client sends small messages (a pong is 15 bytes, a
/// subscription rarely 200), and a larger one grows the buffer while it is read, in reads of
/// this size; writes go out as they are made. Ten thousand idle connections hold ten
/// thousand read buffers.
const READ_BUFFER_BYTES: usize = 256;
const WRITE_BUFFER_BYTES: usize = 0;

/// The WebSocket side of the GraphQL endpoint: its limits, and the signal that closes every
/// connection (1012, "service restart") when the server stops ([`AppState::stop`]).
pub struct Live {
    schema: ApiSchema,
    validated_schema: ApiSchema,
    slots: Arc<Semaphore>,
    awaiting_init: Arc<Counts>,
    per_account: Arc<Counts>,
    keepalive: Duration,
    open: IntGauge,
    stopping: watch::Receiver<bool>,
}

impl Live {
    /// The limits configured in `state`. A subscription is validated with `schema` when it
    /// starts, then run for each event with `validated_schema`, the same schema without the
    /// spec's validation rules (its document, variables and operation do not change).
    pub fn new(state: &AppState, schema: ApiSchema, validated_schema: ApiSchema) -> Self {
        let limits = &state.config.graphql;
        Live {
            schema,
            validated_schema,
            slots: Arc::new(Semaphore::new(limits.ws_max_connections as usize)),
            awaiting_init: Arc::new(Counts::new(MAX_AWAITING_INIT_PER_ADDRESS)),
            // A person has a few devices and tabs; without a cap, anyone who can register
            // could take every one of `WS_MAX_CONNECTIONS` with one account.
            per_account: Arc::new(Counts::new(limits.ws_max_connections_per_account as usize)),
            keepalive: Duration::from_secs(limits.ws_keepalive),
            open: state.metrics.ws_connections.clone(),
            stopping: state.stopping(),
        }
    }

    /// Accepts a WebSocket upgrade of `/graphql` from the client at `client`: 503 when the
    /// process holds `WS_MAX_CONNECTIONS` already, 429 when that client's address holds
    /// [`MAX_AWAITING_INIT_PER_ADDRESS`] connections that have not sent `connection_init` yet.
    /// A client offering none of the two subprotocols is upgraded and closed at once with
    /// 4406, as `graphql-ws` servers do.
    pub fn upgrade(
        self: &Arc<Self>,
        upgrade: WebSocketUpgrade,
        client: Option<IpAddr>,
        state: AppState,
    ) -> Response {
        let Some(awaiting) = Counts::enter(&self.awaiting_init, address_key(client)) else {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    axum::http::header::RETRY_AFTER,
                    INIT_TIMEOUT.as_secs().to_string(),
                )],
                "too many WebSocket connections from this address await connection_init",
            )
                .into_response();
        };
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "5")],
                "too many WebSocket connections; try again shortly",
            )
                .into_response();
        };
        let upgrade = upgrade
            .protocols([TRANSPORT_WS, LEGACY_WS])
            .max_message_size(MAX_MESSAGE_BYTES)
            .max_frame_size(MAX_MESSAGE_BYTES)
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES);
        let dialect = Dialect::of(upgrade.selected_protocol());
        let live = self.clone();
        upgrade.on_upgrade(move |socket| async move {
            let _open = OpenConnection::new(&live.open, slot);
            let connection = Connection {
                schema: live.schema.clone(),
                validated_schema: live.validated_schema.clone(),
                state,
                per_account: live.per_account.clone(),
                account: None,
                keepalive: live.keepalive,
                stopping: live.stopping.clone(),
            };
            connection.run(socket, dialect, awaiting).await;
        })
    }
}

/// Counts a connection as open, and holds its slot, until it is dropped.
struct OpenConnection<'a> {
    gauge: &'a IntGauge,
    _slot: OwnedSemaphorePermit,
}

impl<'a> OpenConnection<'a> {
    fn new(gauge: &'a IntGauge, slot: OwnedSemaphorePermit) -> Self {
        gauge.inc();
        OpenConnection { gauge, _slot: slot }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
