//! Sessions in Redis: one key per session whose TTL is the token's remaining life, plus a sorted
//! set per user (scored by expiry) listing that user's sessions for revoke-all. A user's keys
//! share the Redis Cluster hash tag `{<user id>}`, so they live in one slot. A session key's
//! value is a small JSON object (creation and expiry times, user agent) for the owner's list of
//! sessions; checking a token only asks whether the key exists.

use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use super::{NewSession, SessionInfo, SessionStore};
use crate::error::AppError;
use crate::infra::redis::{self as connections, Redis, RedisConnection};

/// How long a revocation waits for its replicas.
const REPLICA_WAIT: Duration = Duration::from_secs(1);

/// Sessions kept in Redis.
#[derive(Clone)]
pub struct RedisSessions {
    pool: Redis,
    prefix: String,
    timeout: Duration,
    /// Replicas that must hold a revocation before it is acknowledged.
    replicas: u32,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// A store in the Redis of `pool` whose keys start with `prefix`; a call that takes
    /// longer than `timeout` counts as Redis being down. A revocation is acknowledged once
    /// `replicas` replicas hold it.
    pub fn new(pool: Redis, prefix: &str, timeout: Duration, replicas: u32) -> Self {
        RedisSessions {
            pool,
            prefix: prefix.to_owned(),
            timeout,
            replicas,
        }
    }

    /// A transaction of `commands` (MULTI … EXEC, whose answer is the commands' answers),
    /// followed, when revocations must reach replicas, by a `WAIT` for them on the same
    /// connection. One pipeline, so that on a Redis Cluster all of it goes to the node
    /// serving the user's slot, where the writes were made; an atomic pipeline cannot
    /// carry the `WAIT`, which means nothing inside a transaction.
    fn revocation(&self, commands: &redis::Pipeline) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.cmd("MULTI").ignore();
        for command in commands.cmd_iter() {
            pipe.add_command(command.clone()).ignore();
        }
        pipe.cmd("EXEC");
        if self.replicas > 0 {
            pipe.cmd("WAIT")
                .arg(self.replicas)
                .arg(REPLICA_WAIT.as_millis() as u64);
        }
        pipe
    }

    /// Runs a revocation's transaction; its answers once enough replicas hold it, 503 when
    /// they did not confirm in time (the writes stand: retrying is safe).
    async fn revoke_durably<T: redis::FromRedisValue>(
        &self,
        commands: &redis::Pipeline,
    ) -> Result<T, AppError> {
        let pipe = self.revocation(commands);
        let answers: Vec<redis::Value> = self.query(&pipe).await?;
        let mut answers = answers.into_iter();
        let done = answers
            .next()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("EXEC answered nothing")))?;
        if self.replicas > 0 {
            let confirmed: i64 = answers
                .next()
                .map(redis::from_redis_value)
                .transpose()
                .map_err(AppError::internal)?
                .unwrap_or(0);
            if confirmed < i64::from(self.replicas) {
                return Err(AppError::sessions_unavailable(anyhow::anyhow!(
                    "{confirmed} of {} Redis replicas confirmed a revocation within {REPLICA_WAIT:?}",
                    self.replicas
                )));
            }
        }
        redis::from_redis_value(done).map_err(AppError::internal)
    }

    fn session_key(&self, user_id: &str, session_id: &str) -> String {
        format!("{}session:{{{user_id}}}:{session_id}", self.prefix)
    }

    fn index_key(&self, user_id: &str) -> String {
        format!("{}sessions:{{{user_id}}}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, AppError> {
        connections::query(&self.pool, self.timeout, pipe)
            .await
            .map_err(AppError::sessions_unavailable)
    }

    async fn run<T, F>(&self, op: F) -> Result<T, AppError>
    where
        F: AsyncFnOnce(&mut RedisConnection) -> redis::RedisResult<T>,
    {
        connections::run(&self.pool, self.timeout, op)
            .await
            .map_err(AppError::sessions_unavailable)
    }
}

impl SessionStore for RedisSessions {
    async fn create(&self, session: &NewSession) -> Result<(), AppError> {
        let key = self.session_key(&session.user_id, &session.id);
        let index = self.index_key(&session.user_id);
        let now = Utc::now().timestamp();
        let expires = session.expires_at.timestamp();
        let ttl = (expires - now).max(1);
        let value = serde_json::to_string(&StoredSession {
            created_at: session.created_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent.clone(),
        })
        .map_err(AppError::internal)?;
        self.query(
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&key)
                .arg(&value)
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
                .ignore(),
        )
        .await
    }

    async fn is_active(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        let key = self.session_key(user_id, session_id);
        self.run(async |c| redis::cmd("EXISTS").arg(&key).query_async::<bool>(c).await)
            .await
    }

    async fn revoke(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        let key = self.session_key(user_id, session_id);
        let index = self.index_key(user_id);
        let mut commands = redis::pipe();
        commands
            .cmd("DEL")
            .arg(&key)
            .cmd("ZREM")
            .arg(&index)
            .arg(session_id);
        let (deleted, _): (i64, i64) = self.revoke_durably(&commands).await?;
        Ok(deleted > 0)
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
        let mut commands = redis::pipe();
        commands
            .cmd("DEL")
            .arg(&keys)
            .cmd("ZREM")
            .arg(&index)
            .arg(&doomed);
        let _: (i64, i64) = self.revoke_durably(&commands).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), AppError> {
        self.run(async |c| redis::cmd("PING").query_async::<String>(c).await)
            .await
            .map(|_| ())
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>, AppError> {
        let index = self.index_key(user_id);
        let now = Utc::now().timestamp();
        // The index is scored by expiry: what scores above now has not expired.
        let entries: Vec<(String, i64)> = self
            .run(async |c| {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&index)
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .arg("WITHSCORES")
                    .query_async(c)
                    .await
            })
            .await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = entries
            .iter()
            .map(|(id, _)| self.session_key(user_id, id))
            .collect();
        let values: Vec<Option<String>> = self
            .run(async |c| redis::cmd("MGET").arg(&keys).query_async(c).await)
            .await?;
        let mut sessions: Vec<SessionInfo> = entries
            .into_iter()
            .zip(values)
            // A key gone since the index was read was revoked (or expired) meanwhile.
            .filter_map(|((id, expires), value)| {
                value.map(|value| StoredSession::parse(&value, expires).into_info(id))
            })
            .collect();
        sessions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(sessions)
    }
}

/// The value of a session key. Times are RFC 3339 with their fraction, so that sessions
/// opened within one second still list in order.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSession {
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

impl StoredSession {
    /// Reads a value; keys written before values were JSON hold only the creation time (in
    /// seconds since the epoch), and take their expiry from the index.
    fn parse(value: &str, expires_at: i64) -> StoredSession {
        let time = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
        serde_json::from_str(value).unwrap_or_else(|_| StoredSession {
            created_at: time(value.trim().parse().unwrap_or(0)),
            expires_at: time(expires_at),
            user_agent: None,
        })
    }

    fn into_info(self, id: String) -> SessionInfo {
        SessionInfo {
            id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            user_agent: self.user_agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_legacy_values_still_read() {
        let created = DateTime::from_timestamp(1_800_000_000, 123_456_000).unwrap();
        let expires = DateTime::from_timestamp(1_800_001_800, 0).unwrap();
        let json = serde_json::to_string(&StoredSession {
            created_at: created,
            expires_at: expires,
            user_agent: Some("curl/8".into()),
        })
        .unwrap();
        let info = StoredSession::parse(&json, 0).into_info("s".into());
        assert_eq!(
            info,
            SessionInfo {
                id: "s".into(),
                created_at: created,
                expires_at: expires,
                user_agent: Some("curl/8".into()),
            }
        );
        // Written before values were JSON: only the creation time; expiry from the index.
        let info = StoredSession::parse("1800000000", 1_800_001_800).into_info("s".into());
        assert_eq!(info.created_at.timestamp(), 1_800_000_000);
        assert_eq!(info.expires_at, expires);
        assert_eq!(info.user_agent, None);
    }
}
