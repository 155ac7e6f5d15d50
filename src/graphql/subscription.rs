//! Subscription resolvers, served over WebSocket only (`graphql::live`).

use async_graphql::{Context, Result, Subscription};
use futures_util::Stream;
use tokio::sync::broadcast;

use super::types::AccountEvent;
use crate::error::AppError;
use crate::events;

/// What a WebSocket connection gives its subscriptions: the events of the account it signed
/// in as, fed by the connection (which also watches them for the end of its own session).
#[derive(Debug, Clone)]
pub struct LiveFeed(pub broadcast::Sender<events::AccountEvent>);

/// Subscriptions.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// The caller's own account's events, from the moment the subscription starts: sign-ins
    /// started and ended, password, email, verification, role, disabling, deletion. Over
    /// WebSocket at `/graphql`, with the token in `connection_init`'s payload as
    /// `{"Authorization": "Bearer …"}`. When the connection's own session ends (or its token
    /// expires), the event comes first, then the server closes the socket with 4403.
    async fn account_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = AccountEvent> + use<>> {
        let feed = ctx.data_opt::<LiveFeed>().ok_or(AppError::Unauthenticated(
            "subscriptions are served over WebSocket, signed in by connection_init",
        ))?;
        let receiver = feed.0.subscribe();
        Ok(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) => return Some((AccountEvent::from(event), receiver)),
                        // The connection closes itself when its own feed overflows.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}
