//! Query resolvers: thin adapters over `users::service`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object, Result};

use super::types::{SessionObject, UserObject};
use super::{state, viewer};
use crate::error::AppError;
use crate::users::model::UserView;
use crate::users::service::{self, UserKey};

/// Read operations.
#[derive(Debug, Default)]
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The caller's own account. Needs a token.
    async fn me(&self, ctx: &Context<'_>) -> Result<UserObject> {
        let viewer = viewer(ctx).await?;
        Ok(UserView::own(viewer.user.clone()).into())
    }

    /// One user, by exactly one of `id` and `username` (any letter case); null when there is no
    /// such user. Needs a token.
    async fn user(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        username: Option<String>,
    ) -> Result<Option<UserObject>> {
        let viewer = viewer(ctx).await?;
        let key = match (id, username) {
            (Some(id), None) => UserKey::Id(id.0),
            (None, Some(username)) => UserKey::Username(username),
            (Some(_), Some(_)) => {
                return Err(
                    AppError::validation("id", "give either id or username, not both").into(),
                );
            }
            (None, None) => {
                return Err(AppError::validation("id", "give one of id and username").into());
            }
        };
        Ok(service::find_user(state(ctx)?, viewer, key)
            .await?
            .map(UserObject::from))
    }

    /// Users in registration order, as a Relay connection: `first` is 1 to 100, `after` a cursor
    /// from a previous page. Needs a token.
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, UserObject>> {
        let viewer = viewer(ctx).await?;
        let page = service::list_users(
            state(ctx)?,
            viewer,
            // An explicit null asks for the default too.
            first.unwrap_or(service::DEFAULT_PAGE as i32).into(),
            after.as_deref(),
            ("first", "after"),
        )
        .await?;
        let mut connection = Connection::new(after.is_some(), page.has_next);
        connection.edges.extend(
            page.users
                .into_iter()
                .map(|(cursor, user)| Edge::new(cursor, user.into())),
        );
        Ok(connection)
    }

    /// The caller's sessions, oldest first: one per sign-in that can still be used or
    /// refreshed. Needs a token.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionObject>> {
        let viewer = viewer(ctx).await?;
        Ok(service::list_sessions(state(ctx)?, viewer)
            .await?
            .into_iter()
            .map(SessionObject::from)
            .collect())
    }
}
