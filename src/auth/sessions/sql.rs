//! Sessions in the `sessions` table, for deployments without Redis.

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;

use super::{NewSession, SessionStore};
use crate::db::DbPool;
use crate::db::schema::sessions;
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
    pub async fn purge_expired(&self) -> Result<usize, AppError> {
        let now = Utc::now().naive_utc();
        let query = diesel::delete(sessions::table.filter(sessions::expires_at.le(now)));
        with_conn!(&self.db, |c| query.execute(c).await)
    }
}

/// Maps every database failure of the session store to "the session store is unavailable":
/// a token must not pass unchecked, and the client should retry.
fn store_error(err: AppError) -> AppError {
    match err {
        AppError::Unavailable { source, .. } | AppError::Internal(source) => {
            AppError::sessions_unavailable(source)
        }
        other => other,
    }
}

impl SessionStore for SqlSessions {
    async fn create(&self, session: &NewSession) -> Result<(), AppError> {
        let now = Utc::now().naive_utc();
        let row = (
            sessions::id.eq(&session.id),
            sessions::user_id.eq(&session.user_id),
            sessions::created_at.eq(session.created_at.naive_utc()),
            sessions::expires_at.eq(session.expires_at.naive_utc()),
        );
        // Keep the user's rows tidy on every login; the periodic purge covers the rest.
        let purge = diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(&session.user_id))
                .filter(sessions::expires_at.le(now)),
        );
        let insert = diesel::insert_into(sessions::table).values(row);
        with_conn!(&self.db, |c| {
            match purge.execute(c).await {
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

    async fn revoke(&self, user_id: &str, session_id: &str) -> Result<(), AppError> {
        let query = diesel::delete(
            sessions::table
                .filter(sessions::id.eq(session_id))
                .filter(sessions::user_id.eq(user_id)),
        );
        with_conn!(&self.db, |c| query.execute(c).await)
            .map(|_| ())
            .map_err(store_error)
    }

    async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<(), AppError> {
        let keep = keep.unwrap_or("");
        let query = diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep)),
        );
        with_conn!(&self.db, |c| query.execute(c).await)
            .map(|_| ())
            .map_err(store_error)
    }

    async fn ping(&self) -> Result<(), AppError> {
        self.db.ping().await.map_err(store_error)
    }
}
