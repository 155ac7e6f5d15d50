//! Events across processes: one sharded pub/sub channel per account in Redis
//! (`SPUBLISH`/`SSUBSCRIBE`, which a Redis Cluster serves from the account's shard alone).
//!
//! Publishing goes through the shared pool. Listening needs a connection of its own, which
//! receives what Redis pushes (RESP3): one task owns it, subscribes to the channels of the
//! accounts this process has listeners for, and hands what arrives to them. When the
//! connection is lost, the task connects again, subscribes again, and tells every listener it
//! may have missed events. A message carries the id of the process that sent it, so a process
//! skips its own (its listeners heard them when they were published).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo as _, ProtocolVersion, PushInfo, PushKind};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::AccountEvent;
use super::Notice;
use super::local::Registry;
use crate::error::AppError;
use crate::infra::redis::{self as redis_infra, Redis};

/// The longest wait between two attempts to connect again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The first wait after a failed attempt.
const MIN_BACKOFF: Duration = Duration::from_millis(200);

/// What travels on a channel.
#[derive(Debug, Serialize, Deserialize)]
struct Message<'a> {
    /// The process that published it.
    origin: &'a str,
    /// The account.
    user: &'a str,
    /// Borrowed when sent, owned when read.
    event: Cow<'a, AccountEvent>,
}

/// The handle the service and the listeners use; the task does the work.
#[derive(Debug, Clone)]
pub(super) struct Relay(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    pool: Redis,
    prefix: String,
    origin: String,
    timeout: Duration,
    failures: IntCounter,
}

#[derive(Debug)]
enum Command {
    Listen(String, oneshot::Sender<Result<(), AppError>>),
    LetGo(String),
}

/// Redis, as the relay needs it, cannot be reached.
fn unavailable(source: impl Into<anyhow::Error>) -> AppError {
    AppError::Unavailable {
        what: "the event relay",
        source: source.into(),
    }
}

/// The name of the relay's connection in `CLIENT LIST`: `{prefix}events-relay`, with what a
/// client name cannot hold (spaces, controls) as `_`.
pub fn client_name(prefix: &str) -> String {
    format!("{prefix}events-relay")
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

/// The channel of `user_id`'s events: the account's hash tag, as its keys have.
fn channel(prefix: &str, user_id: &str) -> String {
    format!("{prefix}events:{{{user_id}}}")
}

impl Relay {
    /// The relay over the Redis (or Redis Cluster) at `url`; its task starts now and connects
    /// with the first listener.
    pub(super) fn new(
        url: &str,
        pool: Redis,
        prefix: &str,
        timeout: Duration,
        registry: Arc<Registry>,
        failures: IntCounter,
    ) -> anyhow::Result<Self> {
        let client = Target::of(url, timeout)?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let origin = uuid::Uuid::new_v4().to_string();
        let task = Task {
            client,
            registry,
            prefix: prefix.to_owned(),
            origin: origin.clone(),
            timeout,
            failures: failures.clone(),
            connection: None,
            subscribed: HashSet::new(),
        };
        tokio::spawn(task.run(receiver));
        Ok(Relay(Arc::new(Inner {
            commands,
            pool,
            prefix: prefix.to_owned(),
            origin,
            timeout,
            failures,
        })))
    }

    /// Sends `event` of `user_id` to the other processes; a failure is logged and counted.
    pub(super) async fn publish(&self, user_id: &str, event: &AccountEvent) {
        let inner = &self.0;
        let message = Message {
            origin: &inner.origin,
            user: user_id,
            event: Cow::Borrowed(event),
        };
        let Ok(payload) = serde_json::to_string(&message) else {
            return;
        };
        let channel = channel(&inner.prefix, user_id);
        let sent = redis_infra::run(&inner.pool, inner.timeout, async |c| {
            redis::cmd("SPUBLISH")
                .arg(&channel)
                .arg(&payload)
                .query_async::<i64>(c)
                .await
        })
        .await;
        if let Err(e) = sent {
            inner.failures.inc();
            tracing::warn!(error = %e, kind = ?event.kind, "an account event did not reach Redis; other processes miss it");
        }
    }

    /// Has the task listen to `user_id`'s channel; returns once Redis confirmed it.
    pub(super) async fn listen(&self, user_id: &str) -> Result<(), AppError> {
        let (reply, answer) = oneshot::channel();
        let unavailable = || unavailable(anyhow::anyhow!("the event relay stopped"));
        self.0
            .commands
            .send(Command::Listen(user_id.to_owned(), reply))
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    /// Tells the task that this process no longer listens to `user_id`.
    pub(super) fn let_go(&self, user_id: &str) {
        let _ = self.0.commands.send(Command::LetGo(user_id.to_owned()));
    }
}

/// Where the relay listens: one server, or a cluster (whose connection sends each
/// `SSUBSCRIBE` to the shard serving the channel's slot).
enum Target {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

impl Target {
    /// The target of `url`, speaking RESP3, the protocol in which Redis pushes messages on a
    /// connection that also takes commands.
    fn of(url: &str, timeout: Duration) -> anyhow::Result<Target> {
        let invalid = |e: &dyn std::fmt::Display| anyhow::anyhow!("invalid REDIS_URL: {e}");
        if let Some(nodes) = crate::config::cluster_nodes(url) {
            let nodes = nodes.map_err(|e| invalid(&e))?;
            let client = redis_infra::cluster_client(nodes, timeout, ProtocolVersion::RESP3)?;
            return Ok(Target::Cluster(Box::new(client)));
        }
        let info = url.into_connection_info().map_err(|e| invalid(&e))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(|e| invalid(&e))?;
        Ok(Target::Single(client))
    }
}

/// The listening connection.
#[derive(Clone)]
enum Listening {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Listening {
    /// Subscribes to `channel` (sharded pub/sub), or unsubscribes from it.
    async fn follow(&mut self, channel: String, follow: bool) -> redis::RedisResult<()> {
        match self {
            // One channel per command: Redis confirms each channel separately, and one
            // confirmation is what answers one command.
            Listening::Single(c) => {
                redis::cmd(if follow { "SSUBSCRIBE" } else { "SUNSUBSCRIBE" })
                    .arg(channel)
                    .query_async::<redis::Value>(c)
                    .await?;
                Ok(())
            }
            Listening::Cluster(c) if follow => c.ssubscribe(channel).await,
            Listening::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }
}

/// The relay's task and what it owns.
struct Task {
    client: Target,
    registry: Arc<Registry>,
    prefix: String,
    origin: String,
    timeout: Duration,
    failures: IntCounter,
    /// The listening connection and what Redis pushes on it.
    connection: Option<(Listening, mpsc::UnboundedReceiver<PushInfo>)>,
    /// The accounts subscribed to on this connection.
    subscribed: HashSet<String>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut backoff = MIN_BACKOFF;
        // When the connection was lost with listeners waiting: when to try again.
        let mut retry_at: Option<Instant> = None;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Listen(user_id, reply)) => {
                        let result = self.subscribe(&user_id).await;
                        if result.is_ok() {
                            backoff = MIN_BACKOFF;
                            retry_at = None;
                        }
                        let _ = reply.send(result);
                    }
                    Some(Command::LetGo(user_id)) => self.unsubscribe(&user_id).await,
                },
                push = next_push(&mut self.connection) => {
                    let open = push.is_some_and(|push| self.received(push));
                    if !open {
                        self.lost();
                        retry_at = Some(Instant::now());
                    }
                }
                () = sleep_until(retry_at) => {
                    retry_at = None;
                    if self.registry.len() == 0 {
                        continue;
                    }
                    match self.resubscribe().await {
                        Ok(()) => {
                            backoff = MIN_BACKOFF;
                            tracing::info!("the event relay is back on Redis");
                            // Whatever was published meanwhile never reached this process.
                            self.registry.dispatch_all(&Notice::Missed);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "the event relay cannot reach Redis");
                            retry_at = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            }
        }
    }

    /// The connection, made now if there is none.
    async fn connection(&mut self) -> Result<Listening, AppError> {
        if let Some((connection, _)) = &self.connection {
            return Ok(connection.clone());
        }
        let (sender, pushes) = mpsc::unbounded_channel();
        // Named, so that an operator (or a test) can tell it in CLIENT LIST; a server that
        // refuses the name changes nothing.
        let mut name = redis::cmd("CLIENT");
        name.arg("SETNAME").arg(client_name(&self.prefix));
        let connection = match &self.client {
            Target::Single(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_push_sender(sender)
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let mut connection = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(unavailable)?;
                let _ = name.query_async::<()>(&mut connection).await;
                Listening::Single(connection)
            }
            Target::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new().set_push_sender(sender);
                let mut connection = client
                    .get_async_connection_with_config(config)
                    .await
                    .map_err(unavailable)?;
                let _ = name.query_async::<()>(&mut connection).await;
                Listening::Cluster(connection)
            }
        };
        self.subscribed.clear();
        self.connection = Some((connection.clone(), pushes));
        Ok(connection)
    }

    /// Subscribes to `user_id`'s channel, unless it is already.
    async fn subscribe(&mut self, user_id: &str) -> Result<(), AppError> {
        if self.subscribed.contains(user_id) {
            return Ok(());
        }
        let mut connection = self.connection().await?;
        let confirmed = connection
            .follow(channel(&self.prefix, user_id), true)
            .await;
        match confirmed {
            Ok(_) => {
                self.subscribed.insert(user_id.to_owned());
                Ok(())
            }
            Err(e) => {
                self.lost();
                Err(unavailable(e))
            }
        }
    }

    /// Unsubscribes from `user_id`'s channel, unless a new listener came meanwhile.
    async fn unsubscribe(&mut self, user_id: &str) {
        if self.registry.has(user_id) || !self.subscribed.remove(user_id) {
            return;
        }
        if let Some((connection, _)) = &self.connection {
            let mut connection = connection.clone();
            let result = connection
                .follow(channel(&self.prefix, user_id), false)
                .await;
            if result.is_err() {
                self.lost();
            }
        }
    }

    /// After a lost connection: a new one, subscribed to every account listened to.
    async fn resubscribe(&mut self) -> Result<(), AppError> {
        for user_id in self.registry.accounts() {
            self.subscribe(&user_id).await?;
        }
        Ok(())
    }

    /// Forgets a connection that failed.
    fn lost(&mut self) {
        if self.connection.take().is_some() {
            self.failures.inc();
            tracing::warn!("the event relay lost its Redis connection");
        }
        self.subscribed.clear();
    }

    /// Hands a message pushed by Redis to the listeners of its account; `false` when the push
    /// says the connection is closed.
    fn received(&mut self, push: PushInfo) -> bool {
        match push.kind {
            PushKind::SMessage => {
                let Some(redis::Value::BulkString(payload)) = push.data.get(1) else {
                    return true;
                };
                match serde_json::from_slice::<Message<'_>>(payload) {
                    Ok(message) if message.origin != self.origin => {
                        self.registry
                            .dispatch(message.user, Notice::Event(message.event.into_owned()));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "an unreadable account event on Redis"),
                }
            }
            PushKind::Disconnection => return false,
            _ => {}
        }
        true
    }
}

/// The next push of the connection; `None` when it is closed. Never ready without one.
async fn next_push(
    connection: &mut Option<(Listening, mpsc::UnboundedReceiver<PushInfo>)>,
) -> Option<PushInfo> {
    match connection {
        Some((_, pushes)) => pushes.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
