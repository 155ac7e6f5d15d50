//! The listeners of this process: one bounded broadcast channel per account listened to,
//! created with its first listener and dropped with its last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OnceCell, broadcast};

use super::Notice;
use super::relay::Relay;
use crate::error::AppError;

/// How many notices wait for a listener before it is told it missed some: a listener that
/// keeps up never has more than one or two waiting (an account sees a few events a minute).
pub const BUFFERED: usize = 32;

/// The accounts listened to in this process.
#[derive(Debug, Default)]
pub(super) struct Registry {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

/// One account's channel.
#[derive(Debug)]
pub(super) struct Topic {
    sender: broadcast::Sender<Notice>,
    /// Set once the relay listens to the account's channel in Redis.
    relayed: OnceCell<()>,
}

impl Registry {
    fn topics(&self) -> MutexGuard<'_, HashMap<String, Arc<Topic>>> {
        // Every critical section leaves the map whole, so a poisoned lock holds a valid map.
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new listener of `user_id`: the guard that lets its channel go, and its receiver.
    pub(super) fn listen(
        self: &Arc<Self>,
        user_id: &str,
        relay: Option<Relay>,
    ) -> (Listening, broadcast::Receiver<Notice>) {
        let mut topics = self.topics();
        let topic = topics
            .entry(user_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Topic {
                    sender: broadcast::channel(BUFFERED).0,
                    relayed: OnceCell::new(),
                })
            })
            .clone();
        let receiver = topic.sender.subscribe();
        let listening = Listening {
            registry: self.clone(),
            user_id: user_id.to_owned(),
            topic,
            relay,
        };
        (listening, receiver)
    }

    /// Hands `notice` to every listener of `user_id` in this process; never waits.
    pub(super) fn dispatch(&self, user_id: &str, notice: Notice) {
        if let Some(topic) = self.topics().get(user_id) {
            // An error only means the last listener left meanwhile.
            let _ = topic.sender.send(notice);
        }
    }

    /// Hands `notice` to every listener of every account.
    pub(super) fn dispatch_all(&self, notice: &Notice) {
        for topic in self.topics().values() {
            let _ = topic.sender.send(notice.clone());
        }
    }

    /// The accounts listened to.
    pub(super) fn accounts(&self) -> Vec<String> {
        self.topics().keys().cloned().collect()
    }

    /// Whether anyone listens to `user_id`.
    pub(super) fn has(&self, user_id: &str) -> bool {
        self.topics().contains_key(user_id)
    }

    /// How many accounts are listened to.
    pub(super) fn len(&self) -> usize {
        self.topics().len()
    }
}

/// Held by a listener: when the last listener of an account drops its own, the account's
/// channel goes (and the relay stops listening to it in Redis).
#[derive(Debug)]
pub(super) struct Listening {
    registry: Arc<Registry>,
    user_id: String,
    topic: Arc<Topic>,
    relay: Option<Relay>,
}

impl Listening {
    /// Waits until the relay listens to the account in Redis (at once when it already did,
    /// for an earlier listener of this account).
    pub(super) async fn ready(&self, relay: &Relay) -> Result<(), AppError> {
        self.topic
            .relayed
            .get_or_try_init(|| relay.listen(&self.user_id))
            .await
            .map(|_| ())
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut topics = self.registry.topics();
        // The receiver went first (see `Listener`); a listener arriving now takes the lock
        // and finds either this topic (still counted) or none.
        if self.topic.sender.receiver_count() > 0 {
            return;
        }
        if topics
            .get(&self.user_id)
            .is_some_and(|t| Arc::ptr_eq(t, &self.topic))
        {
            topics.remove(&self.user_id);
            drop(topics);
            if let Some(relay) = &self.relay {
                relay.let_go(&self.user_id);
            }
        }
    }
}
