//! A GraphQL-over-WebSocket client for the subscription tests: a real WebSocket
//! (tokio-tungstenite) speaking either dialect, reading what the server sends frame by frame.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// The subscription every test runs.
pub const ACCOUNT_EVENTS: &str = "subscription { accountEvents { kind at sessionId } }";

/// How long a test waits for a frame it expects.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A protocol message.
    Text(Value),
    /// A close frame: its code and reason.
    Close(u16, String),
    /// The connection ended without a close frame.
    Gone,
}

/// One connection to `/graphql`.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Skip keep-alive messages (`ping`, `ka`) when reading.
    pub skip_keepalive: bool,
}

impl WsClient {
    /// Connects to `app`'s `/graphql` offering `protocols` (comma-separated; none when
    /// empty).
    pub async fn connect(app: &TestApp, protocols: &str) -> WsClient {
        Self::try_connect(app, protocols)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake failed: {e}"))
    }

    /// Connects, or the handshake's error (e.g. an HTTP status instead of 101).
    pub async fn try_connect(
        app: &TestApp,
        protocols: &str,
    ) -> Result<WsClient, tungstenite::Error> {
        let mut request = format!("ws://{}/graphql", app.addr)
            .into_client_request()
            .expect("a WebSocket request");
        if !protocols.is_empty() {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(protocols).expect("a header value"),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(WsClient {
            socket,
            skip_keepalive: true,
        })
    }

    /// Connects in `graphql-transport-ws`, signs in with `token` and checks the ack.
    pub async fn signed_in(app: &TestApp, token: &str) -> WsClient {
        let mut client = Self::connect(app, "graphql-transport-ws").await;
        client.init(token).await;
        client
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// Sends a text frame as it is.
    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("the socket takes a message");
    }

    /// Signs in with `token` and checks the ack.
    pub async fn init(&mut self, token: &str) {
        self.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
            .await;
        assert_eq!(
            self.recv().await,
            Frame::Text(json!({"type": "connection_ack"}))
        );
    }

    /// Starts the subscription `query` as `id` (`subscribe`; `start` in the older dialect).
    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({"type": "subscribe", "id": id, "payload": {"query": query}}))
            .await;
    }

    /// The next frame (keep-alive messages skipped unless asked); `Gone` after
    /// [`PATIENCE`] without one is a failure.
    pub async fn recv(&mut self) -> Frame {
        self.recv_within(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("nothing arrived within {PATIENCE:?}"))
    }

    /// The next frame within `wait`, or `None`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            let frame = match message {
                None | Some(Err(_)) => Frame::Gone,
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON text");
                    let keepalive = matches!(value["type"].as_str(), Some("ping" | "ka"));
                    if keepalive && self.skip_keepalive {
                        continue;
                    }
                    Frame::Text(value)
                }
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(frame) => Frame::Close(u16::from(frame.code), frame.reason.to_string()),
                    None => Frame::Close(u16::from(CloseCode::Status), String::new()),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary frame"),
            };
            return Some(frame);
        }
    }

    /// The next account event of subscription `id` (`next`, or `data` in the older dialect).
    pub async fn event(&mut self, id: &str) -> Value {
        match self.recv().await {
            Frame::Text(message)
                if matches!(message["type"].as_str(), Some("next" | "data"))
                    && message["id"] == id =>
            {
                message["payload"]["data"]["accountEvents"].clone()
            }
            other => panic!("expected an event of {id}, got {other:?}"),
        }
    }

    /// Waits for the server to close the connection; its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        match self.recv().await {
            Frame::Close(code, reason) => (code, reason),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
