//! Queries on the `refresh_tokens` table, each written once for both backends.

use chrono::NaiveDateTime;
use diesel::{
    ExpressionMethods as _, Insertable, OptionalExtension as _, QueryDsl as _, Queryable,
    Selectable, SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};

use crate::db::DbError;
use crate::db::DbPool;
use crate::db::prepared::CachedBySql;
use crate::db::schema::refresh_tokens;
use crate::with_conn;

/// A row of `refresh_tokens`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshRow {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The sign-in (family) the token belongs to.
    pub family_id: String,
    /// Owner.
    pub user_id: String,
    /// The access session issued with the token.
    pub session_id: String,
    /// The `User-Agent` of the request that obtained it.
    pub user_agent: Option<String>,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub expires_at: NaiveDateTime,
    /// UTC; `None` while the token is its family's live one.
    pub rotated_at: Option<NaiveDateTime>,
    /// Hash of the token that replaced it.
    pub successor_hash: Option<String>,
    /// The user's credentials version when the sign-in began: a token whose value is older
    /// than the user's is refused, as a password change or logoutAll came after it.
    pub credentials_version: i64,
}

/// Stores a new token.
pub async fn create(db: &DbPool, row: &RefreshRow) -> Result<(), DbError> {
    let query = CachedBySql(diesel::insert_into(refresh_tokens::table).values(row));
    with_conn!(db, |c| query.execute(c).await).map(|_| ())
}

/// The token with this hash.
pub async fn find(db: &DbPool, token_hash: &str) -> Result<Option<RefreshRow>, DbError> {
    with_conn!(db, |c| refresh_tokens::table
        .find(token_hash)
        .select(RefreshRow::as_select())
        .first(c)
        .await
        .optional())
}

/// Marks the token `old_hash` rotated and stores `successor`, both or neither. Returns `false`
/// (and changes nothing) when the token was already rotated: the update only matches an
/// unrotated row, so of two requests rotating the same token at once exactly one wins (the
/// other waits for the row lock on MySQL, for the write lock on SQLite, then matches nothing).
pub async fn rotate(
    db: &DbPool,
    old_hash: &str,
    rotated_at: NaiveDateTime,
    successor: &RefreshRow,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            let marked = CachedBySql(
                diesel::update(
                    refresh_tokens::table
                        .find(old_hash)
                        .filter(refresh_tokens::rotated_at.is_null()),
                )
                .set((
                    refresh_tokens::rotated_at.eq(rotated_at),
                    refresh_tokens::successor_hash.eq(&successor.token_hash),
                )),
            )
            .execute(c)
            .await?;
            if marked == 0 {
                return Ok(false);
            }
            CachedBySql(diesel::insert_into(refresh_tokens::table).values(successor))
                .execute(c)
                .await?;
            Ok(true)
        })
        .await
    })
}

/// The user's live tokens (unrotated, unexpired): one per sign-in that can still refresh.
pub async fn find_live(
    db: &DbPool,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<RefreshRow>, DbError> {
    with_conn!(db, |c| refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::rotated_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now))
        .select(RefreshRow::as_select())
        .load(c)
        .await)
}

/// The family that issued access session `session_id` of the user, if any.
pub async fn find_family_of_session(
    db: &DbPool,
    user_id: &str,
    session_id: &str,
) -> Result<Option<String>, DbError> {
    with_conn!(db, |c| refresh_tokens::table
        .filter(refresh_tokens::session_id.eq(session_id))
        .filter(refresh_tokens::user_id.eq(user_id))
        .select(refresh_tokens::family_id)
        .first::<String>(c)
        .await
        .optional())
}

/// The access sessions of a family's unrotated tokens: the only ones of the family that can
/// still be live, as rotation ends the predecessor's session.
pub async fn find_family_sessions(db: &DbPool, family_id: &str) -> Result<Vec<String>, DbError> {
    with_conn!(db, |c| refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::rotated_at.is_null())
        .select(refresh_tokens::session_id)
        .load::<String>(c)
        .await)
}

/// Marks every token of a family as issued under credentials version `version`: the sign-in
/// that changed the password keeps working under the new one.
pub async fn update_family_version(
    db: &DbPool,
    family_id: &str,
    version: i64,
) -> Result<usize, DbError> {
    let query = CachedBySql(
        diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)))
            .set(refresh_tokens::credentials_version.eq(version)),
    );
    with_conn!(db, |c| query.clone().execute(c).await)
}

/// Deletes every token of a family and returns the sessions of its unrotated tokens, in one
/// transaction that first locks the family's rows (a no-op UPDATE): a rotation of one of them
/// either committed before, and its successor's session is among those returned, or waits and
/// then finds its token gone (and withdraws the session it made). Read and deleted in two
/// calls, a rotation committing between them would leave a live session no token leads to.
pub async fn take_family(db: &DbPool, family_id: &str) -> Result<Vec<String>, DbError> {
    let lock =
        diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)))
            .set(refresh_tokens::family_id.eq(refresh_tokens::family_id));
    let sessions = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::rotated_at.is_null())
        .select(refresh_tokens::session_id);
    let delete =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::family_id.eq(family_id)));
    with_conn!(db, |c| {
        c.transaction::<Vec<String>, diesel::result::Error, _>(async |c| {
            if lock.clone().execute(c).await? == 0 {
                return Ok(Vec::new());
            }
            let found = sessions.load::<String>(c).await?;
            delete.clone().execute(c).await?;
            Ok(found)
        })
        .await
    })
}

/// Deletes every token of the user except those of family `keep`; returns how many went.
pub async fn delete_for_user(
    db: &DbPool,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, DbError> {
    // No family id is empty, so "" keeps nothing.
    let keep = keep.unwrap_or("");
    let query = diesel::delete(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::family_id.ne(keep)),
    );
    with_conn!(db, |c| query.clone().execute(c).await)
}

/// Deletes expired tokens (of one user, or of everyone); returns how many went. A rotated token
/// is kept until it expires, so that its reuse is recognised for as long as it would have
/// worked.
pub async fn purge_expired(
    db: &DbPool,
    user_id: Option<&str>,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    match user_id {
        Some(user_id) => {
            let query = diesel::delete(
                refresh_tokens::table
                    .filter(refresh_tokens::user_id.eq(user_id))
                    .filter(refresh_tokens::expires_at.le(now)),
            );
            with_conn!(db, |c| query.clone().execute(c).await)
        }
        None => {
            let query =
                diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.le(now)));
            with_conn!(db, |c| query.clone().execute(c).await)
        }
    }
}
