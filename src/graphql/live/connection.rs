//! One WebSocket connection, from `connection_init` to its close. One task reads the client's
//! messages, runs its subscriptions, hears its account's events and keeps the connection
//! alive; it is the only writer, and every write is bounded in time.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ClientMessage;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::Utc;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::counts::{Counted, Counts};
use super::protocol::{Dialect, close, errors};
use super::{INIT_TIMEOUT, MAX_SUBSCRIPTIONS, WRITE_TIMEOUT};
use crate::error::AppError;
use crate::events::{AccountEvent, AccountEventKind, Notice};
use crate::graphql::errors::{BAD_REQUEST, PARSE_FAILED, VALIDATION_FAILED};
use crate::graphql::limits::DocumentStats;
use crate::graphql::subscription::LiveEvent;
use crate::graphql::{ApiSchema, KeptRequest};
use crate::signins::Watch;
use crate::state::AppState;
use crate::web::authorization::bearer_token;

/// The longest close reason RFC 6455 allows, in bytes.
const MAX_REASON_BYTES: usize = 123;

/// What a connection needs, for as long as it lasts.
pub(super) struct Connection {
    pub(super) schema: ApiSchema,
    pub(super) validated_schema: ApiSchema,
    pub(super) state: AppState,
    /// The signed-in connections of each account in this process.
    pub(super) per_account: Arc<Counts>,
    /// This connection's place among its account's, once signed in; given back when the
    /// connection is dropped, after its close frame went out.
    pub(super) account: Option<Counted>,
    pub(super) keepalive: Duration,
    pub(super) stopping: watch::Receiver<bool>,
}

/// How a connection ends: closed by the server with a code and a reason, or gone (the client
/// left, or stopped reading).
enum End {
    Close(u16, String),
    Gone,
}

fn close_with(code: u16, reason: impl Into<String>) -> End {
    End::Close(code, reason.into())
}

/// The writing half, every write bounded by [`WRITE_TIMEOUT`].
struct Writer(SplitSink<WebSocket, Message>);

impl Writer {
    async fn send(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.0.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    async fn text(&mut self, text: impl Into<String>) -> Result<(), End> {
        self.send(Message::Text(text.into().into())).await
    }

    async fn close(mut self, code: u16, mut reason: String) {
        if reason.len() > MAX_REASON_BYTES {
            let mut end = MAX_REASON_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.send(Message::Close(Some(frame))).await;
    }
}

/// A running subscription: its id, and what the client asked, run again for each event.
struct Subscription {
    id: String,
    asked: KeptRequest,
}

impl Connection {
    /// Serves the connection until it ends, then closes it.
    /// `awaiting` counts it among its address's connections that have not sent
    /// `connection_init`, until it has.
    pub(super) async fn run(
        mut self,
        socket: WebSocket,
        dialect: Option<Dialect>,
        awaiting: Counted,
    ) {
        let (sink, mut reader) = socket.split();
        let mut writer = Writer(sink);
        let end = match dialect {
            None => close_with(close::BAD_SUBPROTOCOL, "Subprotocol not acceptable"),
            Some(dialect) => match self
                .serve(&mut writer, &mut reader, dialect, awaiting)
                .await
            {
                Ok(()) => End::Gone,
                Err(end) => end,
            },
        };
        if let End::Close(code, reason) = end {
            writer.close(code, reason).await;
        }
    }

    async fn serve(
        &mut self,
        writer: &mut Writer,
        reader: &mut SplitStream<WebSocket>,
        dialect: Dialect,
        awaiting: Counted,
    ) -> Result<(), End> {
        let init = self.await_init(writer, reader).await;
        drop(awaiting);
        // Only the token is kept of the payload.
        let token = token_of(&init?).ok_or_else(|| {
            close_with(
                close::FORBIDDEN,
                r#"connection_init's payload must be {"Authorization": "Bearer <access token>"}"#,
            )
        })?;
        // Boxed: its state would otherwise stay in every connection's task for its lifetime.
        let watch = match Box::pin(self.state.sign_ins.watch(&token)).await {
            Ok(watch) => watch,
            Err(e @ AppError::Unavailable { .. }) => {
                return Err(close_with(close::TRY_LATER, e.to_string()));
            }
            Err(e) => return Err(close_with(close::FORBIDDEN, e.to_string())),
        };
        // Counted until the connection ends.
        self.account = Counts::enter(&self.per_account, watch.viewer.user.id.clone());
        if self.account.is_none() {
            return Err(close_with(
                close::TOO_MANY_CONNECTIONS,
                format!(
                    "this account has {} connections open already",
                    self.per_account.limit()
                ),
            ));
        }
        writer.text(Dialect::ack()).await?;
        self.signed_in(writer, reader, dialect, watch, token).await
    }

    /// Waits for `connection_init` (answering pings meanwhile); returns its payload.
    async fn await_init(
        &mut self,
        writer: &mut Writer,
        reader: &mut SplitStream<WebSocket>,
    ) -> Result<Value, End> {
        let deadline = Instant::now() + INIT_TIMEOUT;
        loop {
            let message = tokio::select! {
                message = reader.next() => message,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(close_with(close::INIT_TIMEOUT, "Connection initialisation timeout"));
                }
                _ = self.stopping.changed() => {
                    return Err(close_with(close::RESTART, "the server is restarting"));
                }
            };
            match read(message)? {
                None => {}
                Some(ClientMessage::ConnectionInit { payload }) => {
                    return Ok(payload.unwrap_or_default());
                }
                Some(ClientMessage::Ping { .. }) => writer.text(Dialect::pong()).await?,
                Some(ClientMessage::Pong { .. }) => {}
                Some(ClientMessage::Start { .. }) => {
                    return Err(close_with(close::UNAUTHORIZED, "Unauthorized"));
                }
                Some(ClientMessage::Stop { .. } | ClientMessage::ConnectionTerminate) => {
                    return Err(close_with(1000, ""));
                }
            }
        }
    }

    /// Serves a signed-in connection until it ends.
    async fn signed_in(
        &mut self,
        writer: &mut Writer,
        reader: &mut SplitStream<WebSocket>,
        dialect: Dialect,
        watch: Watch,
        token: String,
    ) -> Result<(), End> {
        let Watch {
            viewer,
            mut events,
            expires_at,
        } = watch;
        // The session's id is all the connection keeps of its caller: ten thousand idle
        // connections need not hold ten thousand accounts.
        let session_id = viewer.session_id.clone();
        drop(viewer);
        let lifetime = (expires_at - Utc::now()).to_std().unwrap_or_default();
        let expiry = Instant::now() + lifetime;
        // In the order they started, which is the order each event's answers go out in.
        let mut running: Vec<Subscription> = Vec::new();
        let mut keepalive =
            tokio::time::interval_at(Instant::now() + self.keepalive, self.keepalive);
        let mut last_heard = Instant::now();
        let (ending, last) = loop {
            tokio::select! {
                message = reader.next() => {
                    let message = read(message)?;
                    last_heard = Instant::now();
                    match message {
                        None | Some(ClientMessage::Pong { .. }) => {}
                        Some(ClientMessage::ConnectionInit { .. }) => {
                            return Err(close_with(close::TOO_MANY_INITS, "Too many initialisation requests"));
                        }
                        Some(ClientMessage::Start { id, payload }) => {
                            if running.iter().any(|s| s.id == id) {
                                return Err(close_with(close::DUPLICATE_ID, format!("Subscriber for {id} already exists")));
                            }
                            // Boxed: kept inline, its state would make every idle
                            // connection's task larger.
                            if let Some(subscription) = Box::pin(self.start(writer, dialect, id, payload, running.len())).await? {
                                running.push(subscription);
                            }
                        }
                        Some(ClientMessage::Stop { id }) => {
                            if let Some(at) = running.iter().position(|s| s.id == id) {
                                running.remove(at);
                                // The older dialect confirms a stop; the newer one does not.
                                if dialect == Dialect::Legacy {
                                    writer.text(Dialect::complete(&id)).await?;
                                }
                            }
                        }
                        Some(ClientMessage::ConnectionTerminate) => return Err(close_with(1000, "")),
                        Some(ClientMessage::Ping { .. }) => writer.text(Dialect::pong()).await?,
                    }
                }
                notice = events.next() => match notice {
                    Some(Notice::Event(event)) => {
                        if event.ends_session(&session_id) {
                            break ("the session ended", Some(event));
                        }
                        Box::pin(self.answer(writer, dialect, &running, event)).await?;
                    }
                    // Whatever ended the session may be among what was missed.
                    // Boxed: kept inline, this rare call's state would make every idle
                    // connection's task larger.
                    Some(Notice::Missed) => match Box::pin(self.state.sign_ins.authenticate(Some(&token))).await {
                        Ok(_) | Err(AppError::Unavailable { .. }) => {}
                        Err(_) => break ("the session ended", None),
                    },
                    Some(Notice::FellBehind) => {
                        return Err(close_with(close::TRY_LATER, "the client fell behind its events; connect again"));
                    }
                    None => return Err(close_with(close::TRY_LATER, "account events are unavailable")),
                },
                () = tokio::time::sleep_until(expiry) => {
                    let ended = AccountEvent::now(AccountEventKind::SessionEnded, Some(&session_id));
                    break ("the token expired", Some(ended));
                }
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > self.keepalive * 3 {
                        return Err(End::Gone);
                    }
                    writer.text(dialect.keep_alive()).await?;
                    // Browsers answer a ping frame by themselves, whatever the dialect.
                    writer.send(Message::Ping(Default::default())).await?;
                }
                _ = self.stopping.changed() => {
                    return Err(close_with(close::RESTART, "the server is restarting"));
                }
            }
        };
        // The event that ended the session goes out before the close.
        if let Some(event) = last {
            Box::pin(self.answer(writer, dialect, &running, event)).await?;
        }
        Err(close_with(close::FORBIDDEN, ending))
    }

    /// Starts subscription `id`: checks it ([`Connection::check`]), then runs it once without
    /// an event, with full validation, which answers nothing unless its document, variables or
    /// operation name are wrong. Returns it when it runs; answers why not otherwise.
    async fn start(
        &self,
        writer: &mut Writer,
        dialect: Dialect,
        id: String,
        request: async_graphql::Request,
        running: usize,
    ) -> Result<Option<Subscription>, End> {
        let request = match self.check(request, running) {
            Ok(request) => request,
            Err(errors) => {
                writer.text(dialect.error(&id, errors)).await?;
                return Ok(None);
            }
        };
        let subscription = Subscription {
            asked: KeptRequest::of(&request),
            id,
        };
        match self.schema.execute_stream(request).next().await {
            None => Ok(Some(subscription)),
            Some(refused) => {
                // Its document parsed (`check`): what is wrong is what validation found, in
                // the document or the variables. The protocol answers that with `error`,
                // which ends the subscription.
                let errors: Vec<_> = refused
                    .errors
                    .into_iter()
                    .map(|mut error| {
                        error
                            .extensions
                            .get_or_insert_with(Default::default)
                            .set("code", VALIDATION_FAILED);
                        error
                    })
                    .collect();
                writer
                    .text(dialect.error(&subscription.id, json!(errors)))
                    .await?;
                Ok(None)
            }
        }
    }

    /// Runs each subscription for `event`, and sends its answer.
    async fn answer(
        &self,
        writer: &mut Writer,
        dialect: Dialect,
        running: &[Subscription],
        event: AccountEvent,
    ) -> Result<(), End> {
        for subscription in running {
            let request = subscription.asked.request().data(LiveEvent(event.clone()));
            if let Some(answer) = self.validated_schema.execute_stream(request).next().await {
                writer.text(dialect.next(&subscription.id, &answer)).await?;
            }
        }
        Ok(())
    }

    /// Checks a subscription before it runs: the connection's cap, the document's syntax,
    /// that it is a subscription (queries and mutations go over HTTP, with its limits), and
    /// the document limits every HTTP request passes. Returns the errors to answer otherwise.
    fn check(
        &self,
        request: async_graphql::Request,
        running: usize,
    ) -> Result<async_graphql::Request, Value> {
        if running >= MAX_SUBSCRIPTIONS {
            return Err(errors(
                BAD_REQUEST,
                &format!("at most {MAX_SUBSCRIPTIONS} subscriptions run at once on one connection"),
            ));
        }
        let document = async_graphql::parser::parse_query(&request.query)
            .map_err(|e| errors(PARSE_FAILED, &e.to_string()))?;
        let name = request.operation_name.as_deref();
        if operation_type(&document, name) != Some(OperationType::Subscription) {
            return Err(errors(
                BAD_REQUEST,
                "only subscriptions are served over WebSocket; send queries and mutations to /graphql over HTTP",
            ));
        }
        DocumentStats::measure(&document, name, &self.state.config.graphql)
            .map_err(|exceeded| errors(VALIDATION_FAILED, &exceeded.0))?;
        Ok(request)
    }
}

/// Reads one frame: `None` for what carries no protocol message (pings and pongs, which the
/// socket answers itself); the connection's end when the client left or sent what the
/// protocol does not allow.
fn read(message: Option<Result<Message, axum::Error>>) -> Result<Option<ClientMessage>, End> {
    match message {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(End::Gone),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
        Some(Ok(Message::Binary(_))) => Err(close_with(
            close::BAD_MESSAGE,
            "binary messages are not part of the protocol",
        )),
        Some(Ok(Message::Text(text))) => serde_json::from_str::<ClientMessage>(text.as_str())
            .map(Some)
            .map_err(|_| close_with(close::BAD_MESSAGE, "Invalid message received")),
    }
}

/// The bearer token of a `connection_init` payload: `{"Authorization": "Bearer …"}`, the
/// header's name in any letter case (GraphiQL sends its header editor's headers there).
fn token_of(payload: &Value) -> Option<String> {
    let object = payload.as_object()?;
    let value = object
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))?
        .1
        .as_str()?;
    bearer_token(value).map(str::to_owned)
}

/// The type of the operation `name` selects (the only one, without a name).
fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    crate::graphql::selected_operation_type(document, name)
}
