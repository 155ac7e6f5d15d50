//! Query resolvers: thin adapters over the `users` and `signins` services.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object, Result};

use super::types::{SessionObject, UserFilter, UserObject};
use super::{state, viewer};
use crate::accounts::model::UserView;
use crate::error::{AppError, Field};
use crate::users::{DEFAULT_PAGE, PageRequest, UserKey};

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
                return Err(AppError::validation(
                    Field::Id,
                    "give either id or username, not both",
                )
                .into());
            }
            (None, None) => {
                return Err(AppError::validation(Field::Id, "give one of id and username").into());
            }
        };
        Ok(state(ctx)?
            .users
            .find(viewer, key)
            .await?
            .map(UserObject::from))
    }

    /// Users in registration order, as a Relay connection: `first` is 1 to 100, `after` a cursor
    /// from a previous page of the same filter. `filter` narrows the list (and with a prefix,
    /// orders it by that field; see `UserFilter`). Needs a token.
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilter>,
    ) -> Result<Connection<String, UserObject>> {
        let viewer = viewer(ctx).await?;
        let request = PageRequest {
            // An explicit null asks for the default too.
            size: first.map_or(DEFAULT_PAGE, i64::from),
            after: after.clone(),
            filter: filter.map(Into::into).unwrap_or_default(),
        };
        let page = state(ctx)?.users.list(viewer, request).await?;
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
        Ok(state(ctx)?
            .sign_ins
            .list_sessions(viewer)
            .await?
            .into_iter()
            .map(SessionObject::from)
            .collect())
    }
}
