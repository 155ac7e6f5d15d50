//! Account events: what happened to an account (a sign-in started or ended, its password,
//! email, verification, role or two-step sign-in changed, it was disabled or deleted),
//! published by the services as it happens, for whoever listens to that account (the GraphQL
//! subscription `accountEvents`).
//!
//! Listeners of one process share one channel per account ([`local`]). With Redis, events also
//! cross processes on one sharded pub/sub channel per account ([`relay`]): a process listens
//! only on the channels of accounts it has listeners for, and hears its own events at once,
//! not back from Redis.
//!
//! Delivery is best-effort and bounded: a publisher never waits for a listener, and a listener
//! that falls behind (or a relay that lost Redis for a while) is told it missed events
//! ([`Notice::Missed`]) rather than being waited for.

pub mod local;
pub mod relay;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use self::local::{Listening, Registry};
use self::relay::Relay;
use crate::error::AppError;
use crate::infra::metrics::EventMetrics;
use crate::infra::redis::Redis;

/// What happened to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountEventKind {
    /// A sign-in began (login or registration); `session_id` is its session.
    SessionStarted,
    /// A sign-in ended (logout, revoked): `session_id` is its session, or `None` for every
    /// sign-in of the account (logoutAll).
    SessionEnded,
    /// The password changed: every sign-in but `session_id`'s ended (all, when `None`: a reset
    /// by mail).
    PasswordChanged,
    /// The email address changed.
    EmailChanged,
    /// The email address was verified.
    EmailVerified,
    /// An admin changed the account's role.
    RoleChanged,
    /// An admin disabled the account; every sign-in ended.
    AccountDisabled,
    /// The account was deleted; every sign-in ended.
    AccountDeleted,
    /// Two-step sign-in was turned on.
    MfaEnabled,
    /// Two-step sign-in was turned off (by the user, or reset by an admin).
    MfaDisabled,
    /// A recovery code stood in for a TOTP code (and no longer works).
    RecoveryCodeUsed,
}

/// One event of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// What happened.
    pub kind: AccountEventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The session it concerns, where one does (see [`AccountEventKind`]).
    pub session_id: Option<String>,
}

impl AccountEvent {
    /// An event of `kind` happening now.
    pub fn now(kind: AccountEventKind, session_id: Option<&str>) -> Self {
        AccountEvent {
            kind,
            at: Utc::now(),
            session_id: session_id.map(str::to_owned),
        }
    }

    /// Whether this event ended the session `session_id` of its account.
    pub fn ends_session(&self, session_id: &str) -> bool {
        let this_one = self.session_id.as_deref().is_none_or(|s| s == session_id);
        match self.kind {
            AccountEventKind::SessionEnded => this_one,
            // Both end every sign-in but the one that made the change (its session id).
            AccountEventKind::PasswordChanged | AccountEventKind::MfaEnabled => {
                self.session_id.as_deref() != Some(session_id)
            }
            AccountEventKind::AccountDisabled | AccountEventKind::AccountDeleted => true,
            AccountEventKind::SessionStarted
            | AccountEventKind::EmailChanged
            | AccountEventKind::EmailVerified
            | AccountEventKind::RoleChanged
            | AccountEventKind::MfaDisabled
            | AccountEventKind::RecoveryCodeUsed => false,
        }
    }
}

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An event of the account.
    Event(AccountEvent),
    /// Events may have been missed: the relay lost Redis and found it again. Whatever the
    /// listener keeps of the account's state should be checked.
    Missed,
    /// The listener did not keep up: more than [`local::BUFFERED`] events waited for it, and
    /// the oldest were dropped.
    FellBehind,
}

/// The account-events service: publishing and listening, in-process or across processes.
#[derive(Debug, Clone)]
pub struct AccountEvents {
    registry: Arc<Registry>,
    relay: Option<Relay>,
    published: IntCounter,
}

impl AccountEvents {
    /// Events within this process only.
    pub fn in_process(metrics: EventMetrics) -> Self {
        AccountEvents {
            registry: Arc::new(Registry::default()),
            relay: None,
            published: metrics.published,
        }
    }

    /// Events across every process sharing the Redis at `url` (and `pool`, for publishing),
    /// on channels under `prefix`. Connects lazily: the relay's task starts with the first
    /// listener, and a Redis outage fails the listeners that start during it, never a
    /// publisher.
    pub fn over_redis(
        url: &str,
        pool: Redis,
        prefix: &str,
        timeout: std::time::Duration,
        metrics: EventMetrics,
    ) -> anyhow::Result<Self> {
        let registry = Arc::new(Registry::default());
        let relay = Relay::new(
            url,
            pool,
            prefix,
            timeout,
            registry.clone(),
            metrics.relay_failures,
        )?;
        Ok(AccountEvents {
            registry,
            relay: Some(relay),
            published: metrics.published,
        })
    }

    /// Tells every listener of `user_id`, here and (with Redis) in every other process, that
    /// `kind` happened now (about `session_id`, where it concerns one). Never fails: an event
    /// that cannot cross to other processes is logged and counted.
    pub async fn publish(&self, user_id: &str, kind: AccountEventKind, session_id: Option<&str>) {
        let event = AccountEvent::now(kind, session_id);
        self.published.inc();
        self.registry
            .dispatch(user_id, Notice::Event(event.clone()));
        if let Some(relay) = &self.relay {
            relay.publish(user_id, &event).await;
        }
    }

    /// Starts listening to the events of `user_id`. With Redis, returns once this process is
    /// subscribed to the account's channel (so nothing published afterwards is missed), or
    /// `Unavailable` when Redis cannot be reached.
    pub async fn listen(&self, user_id: &str) -> Result<Listener, AppError> {
        let (listening, receiver) = self.registry.listen(user_id, self.relay.clone());
        if let Some(relay) = &self.relay {
            listening.ready(relay).await?;
        }
        Ok(Listener {
            receiver,
            _listening: listening,
        })
    }

    /// How many accounts this process listens to, for the tests.
    pub fn accounts_listened_to(&self) -> usize {
        self.registry.len()
    }
}

/// One listener of one account: each listener hears every event published after it started
/// (up to [`local::BUFFERED`] waiting, after which it hears [`Notice::FellBehind`]).
#[derive(Debug)]
pub struct Listener {
    receiver: broadcast::Receiver<Notice>,
    // Declared after the receiver, so dropped after it: the account's channel is let go once
    // its last receiver is gone.
    _listening: Listening,
}

impl Listener {
    /// The next notice; `None` once the service is gone.
    pub async fn next(&mut self) -> Option<Notice> {
        match self.receiver.recv().await {
            Ok(notice) => Some(notice),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Notice::FellBehind),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
