//! Sessions in the `sessions` table, for deployments without Redis.

use chrono::{NaiveDateTime, Utc};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;

use super::{NewSession, SessionInfo, SessionStore};
use crate::db::prepared::CachedBySql;
use crate::db::schema::sessions;
use crate::db::{DbError, DbPool};
use crate::error::AppError;
use crate::with_conn;

/// Sessions kept in the database.
#[derive(Debug, Clone)]
pub struct SqlSessions {
    db: DbPool,
}

impl SqlSessions {
    /// A store on `db`.
    pub fn new(db: DbPool) -> Self {
        SqlSessions { db }
    }

    /// Deletes every expired row; run periodically. Returns how many went.
    pub async fn purge_expired(&self) -> Result<usize, DbError> {
        let now = Utc::now().naive_utc();
        let query = diesel::delete(sessions::table.filter(sessions::expires_at.le(now)));
        with_conn!(&self.db, |c| query.clone().execute(c).await)
    }
}

/// Maps every database failure of the session store to "the session store is unavailable":
/// a token must not pass unchecked, and the client should retry.
fn store_error(err: DbError) -> AppError {
    AppError::sessions_unavailable(err)
}

impl SessionStore for SqlSessions {
    async fn create(&self, session: &NewSession) -> Result<(), AppError> {
        let now = Utc::now().naive_utc();
        let row = (
            sessions::id.eq(&session.id),
            sessions::user_id.eq(&session.user_id),
            sessions::created_at.eq(session.created_at.naive_utc()),
            sessions::expires_at.eq(session.expires_at.naive_utc()),
            sessions::user_agent.eq(&session.user_agent),
        );
        // Keep the user's rows tidy on every login; the periodic purge covers the rest.
        let purge = diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(&session.user_id))
                .filter(sessions::expires_at.le(now)),
        );
        let insert = CachedBySql(diesel::insert_into(sessions::table).values(row));
        with_conn!(&self.db, |c| {
            match purge.clone().execute(c).await {
                Ok(_) => insert.execute(c).await,
                Err(e) => Err(e),
            }
        })
        .map(|_| ())
        .map_err(store_error)
    }

    async fn is_active(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        let now = Utc::now().naive_utc();
        let query = diesel::select(diesel::dsl::exists(
            sessions::table
                .filter(sessions::id.eq(session_id))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::expires_at.gt(now)),
        ));
        with_conn!(&self.db, |c| query.get_result::<bool>(c).await).map_err(store_error)
    }

    async fn revoke(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        // An expired row that the purge has not reached yet is not live: it stays for the
        // purge, and the answer is "was not live", as Redis (where it is already gone) says.
        let now = Utc::now().naive_utc();
        let query = diesel::delete(
            sessions::table
                .filter(sessions::id.eq(session_id))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::expires_at.gt(now)),
        );
        with_conn!(&self.db, |c| query.clone().execute(c).await)
            .map(|n| n > 0)
            .map_err(store_error)
    }

    async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<(), AppError> {
        let keep = keep.unwrap_or("");
        let query = diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep)),
        );
        with_conn!(&self.db, |c| query.clone().execute(c).await)
            .map(|_| ())
            .map_err(store_error)
    }

    async fn ping(&self) -> Result<(), AppError> {
        self.db.ping().await.map_err(store_error)
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>, AppError> {
        let now = Utc::now().naive_utc();
        let query = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now))
            .order((sessions::created_at.asc(), sessions::id.asc()))
            .select((
                sessions::id,
                sessions::created_at,
                sessions::expires_at,
                sessions::user_agent,
            ));
        let rows = with_conn!(&self.db, |c| {
            query
                .load::<(String, NaiveDateTime, NaiveDateTime, Option<String>)>(c)
                .await
        })
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(id, created_at, expires_at, user_agent)| SessionInfo {
                id,
                created_at: created_at.and_utc(),
                expires_at: expires_at.and_utc(),
                user_agent,
            })
            .collect())
    }
}
