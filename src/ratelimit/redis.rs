//! Rate limits counted in Redis, shared by every replica, with the sliding window of
//! [`window`](super::window): one counter per fixed window of the period.
//!
//! One round trip per attempt: `INCR` the current window, `PEXPIRE` it (two periods, so it
//! can serve as the previous window) and `GET` the previous one, pipelined in a transaction.
//! A refused attempt is taken back with a `DECR`, so hammering does not extend a lock-out, and
//! an attempt that turned out not to count (a correct password) is taken back the same way.
//! Keys are `<REDIS_KEY_PREFIX>ratelimit:{<scope>:<key>}:<window>`; the braces keep both
//! windows of a key in one Redis Cluster slot.

use std::time::Duration;

use super::window::{self, Slot};
use super::{Counted, Scope};
use crate::config::Rate;
use crate::error::AppError;
use crate::infra::redis::{self as connections, Redis, RedisConnection};

/// Decrements a counter that is still above zero: a window's key may have expired (or a
/// release may come twice), and a negative count would hand out extra attempts.
const DECREMENT_IF_POSITIVE: &str = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') \
     if v > 0 then return redis.call('DECR', KEYS[1]) end return 0";

/// Rate-limit counters in Redis.
pub(super) struct RedisLimiter {
    pool: Redis,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Counters in the Redis of `pool`, under `prefix`.
    pub(super) fn new(pool: Redis, prefix: &str, timeout: Duration) -> Self {
        RedisLimiter {
            pool,
            prefix: prefix.to_owned(),
            timeout,
        }
    }

    fn key(&self, scope: Scope, key: &str, window: u64) -> String {
        format!(
            "{}ratelimit:{{{}:{key}}}:{window}",
            self.prefix,
            scope.name()
        )
    }

    /// Counts an attempt; `Ok(Err(wait))` when refused, `Err` when Redis cannot be reached.
    pub(super) async fn hit(
        &self,
        scope: Scope,
        rate: Rate,
        key: &str,
    ) -> Result<Result<Counted, Duration>, AppError> {
        let slot = Slot::now(rate);
        let current = self.key(scope, key, slot.window);
        let previous = self.key(scope, key, slot.window.saturating_sub(1));
        let (count, earlier): (u64, Option<u64>) = self
            .query(
                redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&current)
                    .cmd("PEXPIRE")
                    .arg(&current)
                    .arg(slot.period_ms.saturating_mul(2))
                    .ignore()
                    .cmd("GET")
                    .arg(&previous),
            )
            .await?;
        let earlier = earlier.unwrap_or(0);
        let before = count.saturating_sub(1);
        match window::admit(rate, slot.elapsed, earlier, before) {
            None => Ok(Ok(Counted {
                window: slot.window,
                prior: window::estimate(rate, slot.elapsed, earlier, before),
            })),
            Some(wait) => {
                // Take the refused attempt back, so only allowed attempts count.
                self.decrement(&current).await?;
                Ok(Err(wait))
            }
        }
    }

    /// Takes back an attempt counted in `window`.
    pub(super) async fn release(
        &self,
        scope: Scope,
        key: &str,
        window: u64,
    ) -> Result<(), AppError> {
        self.decrement(&self.key(scope, key, window)).await
    }

    async fn decrement(&self, key: &str) -> Result<(), AppError> {
        self.run(async |c| {
            redis::cmd("EVAL")
                .arg(DECREMENT_IF_POSITIVE)
                .arg(1)
                .arg(key)
                .query_async::<()>(c)
                .await
        })
        .await
    }

    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, AppError> {
        connections::query(&self.pool, self.timeout, pipe)
            .await
            .map_err(unavailable)
    }

    async fn run<T, F>(&self, op: F) -> Result<T, AppError>
    where
        F: AsyncFnOnce(&mut RedisConnection) -> redis::RedisResult<T>,
    {
        connections::run(&self.pool, self.timeout, op)
            .await
            .map_err(unavailable)
    }
}

fn unavailable(source: anyhow::Error) -> AppError {
    AppError::Unavailable {
        what: "the rate-limit store",
        source,
    }
}
