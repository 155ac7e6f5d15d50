//! Sessions in Redis: one key per session whose TTL is the token's remaining life, plus a sorted
//! set per user (scored by expiry) listing that user's sessions for revoke-all. A user's keys
//! share the Redis Cluster hash tag `{<user id>}`, so they live in one slot.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use chrono::Utc;
use redis::aio::MultiplexedConnection;

use super::{NewSession, SessionStore};
use crate::db::checked::{CheckedConn, CheckedPool};
use crate::error::AppError;

/// The Redis pool: few connections, each multiplexing many requests.
pub type RedisPool = CheckedPool<RedisConnectionManager>;

/// Sessions kept in Redis.
#[derive(Clone)]
pub struct RedisSessions {
    pool: RedisPool,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// A store on `url` whose keys start with `prefix`. Does not connect yet.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let manager = RedisConnectionManager::new(url)
            .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        let builder = bb8::Pool::builder()
            .max_size(cores.max(2))
            .connection_timeout(timeout)
            .retry_connection(false)
            .test_on_check_out(false);
        let pool = CheckedPool::build(builder, manager);
        Ok(RedisSessions {
            pool,
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    /// Connections in use and idle, and the pool's size.
    pub fn pool_state(&self) -> (bb8::State, u32) {
        (self.pool.state(), self.pool.max_size())
    }

    fn session_key(&self, user_id: &str, session_id: &str) -> String {
        format!("{}session:{{{user_id}}}:{session_id}", self.prefix)
    }

    fn index_key(&self, user_id: &str) -> String {
        format!("{}sessions:{{{user_id}}}", self.prefix)
    }

    /// Runs `op` on a pooled connection within the time-out; a connection that failed at the
    /// transport level is dropped from the pool.
    async fn run<T, F>(&self, op: F) -> Result<T, AppError>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    {
        let work = async {
            let mut guard = self
                .pool
                .get()
                .await
                .map_err(AppError::sessions_unavailable)?;
            let conn: &mut CheckedConn<MultiplexedConnection> = &mut guard;
            let result = op(&mut conn.conn).await;
            if let Err(e) = &result
                && (e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                    || e.is_timeout())
            {
                conn.mark_broken();
            }
            result.map_err(AppError::sessions_unavailable)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                AppError::sessions_unavailable(anyhow::anyhow!("redis did not answer in time"))
            })?
    }
}

impl SessionStore for RedisSessions {
    async fn create(&self, session: &NewSession) -> Result<(), AppError> {
        let key = self.session_key(&session.user_id, &session.id);
        let index = self.index_key(&session.user_id);
        let now = Utc::now().timestamp();
        let expires = session.expires_at.timestamp();
        let ttl = (expires - now).max(1);
        self.run(async |c| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(session.created_at.timestamp())
                .arg("EX")
                .arg(ttl)
                .ignore()
                .cmd("ZADD")
                .arg(&index)
                .arg(expires)
                .arg(&session.id)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(now)
                .ignore()
                // The index lives as long as its longest-lived session: NX sets a TTL on a new
                // index, GT extends an existing one.
                .cmd("EXPIRE")
                .arg(&index)
                .arg(ttl)
                .arg("NX")
                .ignore()
                .cmd("EXPIRE")
                .arg(&index)
                .arg(ttl)
                .arg("GT")
                .ignore()
                .query_async::<()>(c)
                .await
        })
        .await
    }

    async fn is_active(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        let key = self.session_key(user_id, session_id);
        self.run(async |c| redis::cmd("EXISTS").arg(&key).query_async::<bool>(c).await)
            .await
    }

    async fn revoke(&self, user_id: &str, session_id: &str) -> Result<(), AppError> {
        let key = self.session_key(user_id, session_id);
        let index = self.index_key(user_id);
        self.run(async |c| {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .cmd("ZREM")
                .arg(&index)
                .arg(session_id)
                .ignore()
                .query_async::<()>(c)
                .await
        })
        .await
    }

    async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<(), AppError> {
        let index = self.index_key(user_id);
        let ids: Vec<String> = self
            .run(async |c| {
                redis::cmd("ZRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(-1)
                    .query_async(c)
                    .await
            })
            .await?;
        let doomed: Vec<&String> = ids.iter().filter(|id| Some(id.as_str()) != keep).collect();
        if doomed.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = doomed
            .iter()
            .map(|id| self.session_key(user_id, id))
            .collect();
        self.run(async |c| {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&keys)
                .ignore()
                .cmd("ZREM")
                .arg(&index)
                .arg(&doomed)
                .ignore()
                .query_async::<()>(c)
                .await
        })
        .await
    }

    async fn ping(&self) -> Result<(), AppError> {
        self.run(async |c| redis::cmd("PING").query_async::<String>(c).await)
            .await
            .map(|_| ())
    }
}
