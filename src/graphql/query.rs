//! Query resolvers: thin adapters over the `users` and `signins` services.

use async_graphql::connection::{
    Connection, DefaultConnectionName, DefaultEdgeName, Edge, EmptyFields,
};
use async_graphql::{Context, ID, Object, Result};

use super::types::{Node, SessionObject, UserFilter, UserObject};
use super::{freshness, state, viewer};
use crate::accounts::model::UserView;
use crate::error::{AppError, Field};
use crate::users::{self, DEFAULT_PAGE, PageRequest, UserKey};

/// A page of users: Relay's connection, with the list's total.
pub type UserConnection = Connection<
    String,
    UserObject,
    UserListFields,
    EmptyFields,
    DefaultConnectionName,
    DefaultEdgeName,
>;

/// What a list of users tells beside its page.
#[derive(Debug)]
pub struct UserListFields {
    filter: users::UserFilter,
}

#[Object]
impl UserListFields {
    /// How many users the list holds, every page together (the filter's, if any): counted
    /// at most a few seconds ago, so it may lag changes by that much.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?.users.count(viewer, &self.filter).await?)
    }
}

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
            .find(viewer, key, freshness(ctx))
            .await?
            .map(UserObject::from))
    }

    /// The object with this id (Relay's object identification), as `user(id:)` shows it;
    /// null when there is none. Needs a token.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?
            .users
            .find(viewer, UserKey::Id(id.0), freshness(ctx))
            .await?
            .map(|u| Node::User(u.into())))
    }

    /// The objects with these ids, in the same order, null where there is none; at most 100
    /// ids, fetched in one query. Needs a token.
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Node>>> {
        let viewer = viewer(ctx).await?;
        let ids: Vec<String> = ids.into_iter().map(|id| id.0).collect();
        Ok(state(ctx)?
            .users
            .find_many(viewer, &ids, freshness(ctx))
            .await?
            .into_iter()
            .map(|u| u.map(|u| Node::User(u.into())))
            .collect())
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
    ) -> Result<UserConnection> {
        let viewer = viewer(ctx).await?;
        let filter: users::UserFilter = filter.map(Into::into).unwrap_or_default();
        let request = PageRequest {
            // An explicit null asks for the default too.
            size: first.map_or(DEFAULT_PAGE, i64::from),
            after: after.clone(),
            filter: filter.clone(),
        };
        let page = state(ctx)?
            .users
            .list(viewer, request, freshness(ctx))
            .await?;
        let mut connection = Connection::with_additional_fields(
            after.is_some(),
            page.has_next,
            UserListFields { filter },
        );
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
