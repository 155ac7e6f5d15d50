//! Subscription resolvers, served over WebSocket only (`graphql::live`).

use async_graphql::{Context, Subscription};
use futures_util::Stream;

use super::types::AccountEvent;
use crate::events;

/// The event a subscription runs for. A WebSocket connection keeps each subscription's
/// request, not a running stream, and runs it once for each event of its account with the
/// event in the request's data: ten thousand idle subscriptions then hold ten thousand small
/// requests rather than ten thousand executions in progress.
#[derive(Debug, Clone)]
pub struct LiveEvent(pub events::AccountEvent);

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
    async fn account_events(&self, ctx: &Context<'_>) -> impl Stream<Item = AccountEvent> + use<> {
        // One run answers one event. Without one (the run that checks a new subscription)
        // it answers nothing.
        let event = ctx
            .data_opt::<LiveEvent>()
            .map(|live| AccountEvent::from(live.0.clone()));
        futures_util::stream::iter(event)
    }
}
