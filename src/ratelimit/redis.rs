//! Rate limits counted in Redis, shared by every replica: a sliding-window counter. Each key
//! has one counter per fixed window of the period; an attempt is allowed while
//! `previous × (share of the previous window still inside the sliding period) + current`
//! stays within the count. That avoids the double burst a plain fixed window lets through at
//! a window boundary, at the cost of two small keys per limited key.
//!
//! One round trip per attempt: `INCR` the current window, `PEXPIRE` it (two periods, so it
//! can serve as the previous window) and `GET` the previous one, pipelined in a transaction.
//! A refused attempt is taken back with a `DECR`, so hammering does not extend a lock-out.
//! Keys are `<REDIS_KEY_PREFIX>ratelimit:{<scope>:<key>}:<window>`; the braces keep both
//! windows of a key in one Redis Cluster slot.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;

use super::Scope;
use crate::auth::sessions::RedisPool;
use crate::config::Rate;
use crate::error::AppError;

/// Rate-limit counters in Redis.
pub(super) struct RedisLimiter {
    pool: RedisPool,
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
    pub(super) fn new(pool: RedisPool, prefix: &str, timeout: Duration) -> Self {
        RedisLimiter {
            pool,
            prefix: prefix.to_owned(),
            timeout,
        }
    }

    /// Counts an attempt; `Ok(Err(wait))` when refused, `Err` when Redis cannot be reached.
    pub(super) async fn check(
        &self,
        scope: Scope,
        rate: Rate,
        key: &str,
    ) -> Result<Result<(), Duration>, AppError> {
        // Whole milliseconds: the period is at least a second, so this is never zero.
        let period_ms = u64::try_from(rate.period.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let window = now_ms / period_ms;
        let elapsed = Duration::from_millis(now_ms % period_ms);
        let base = format!("{}ratelimit:{{{}:{key}}}:", self.prefix, scope.name());
        let current = format!("{base}{window}");
        let previous = format!("{base}{}", window.saturating_sub(1));
        let (count, earlier): (u64, Option<u64>) = self
            .run(async |c| {
                redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&current)
                    .cmd("PEXPIRE")
                    .arg(&current)
                    .arg(period_ms.saturating_mul(2))
                    .ignore()
                    .cmd("GET")
                    .arg(&previous)
                    .query_async(c)
                    .await
            })
            .await?;
        let earlier = earlier.unwrap_or(0);
        if estimate(rate, elapsed, earlier, count) <= f64::from(rate.count.get()) {
            return Ok(Ok(()));
        }
        // Take the refused attempt back, so only allowed attempts count.
        self.run(async |c| redis::cmd("DECR").arg(&current).query_async::<()>(c).await)
            .await?;
        Ok(Err(retry_after(
            rate,
            elapsed,
            earlier,
            count.saturating_sub(1),
        )))
    }

    async fn run<T, F>(&self, op: F) -> Result<T, AppError>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
    {
        crate::auth::sessions::run_redis(&self.pool, self.timeout, unavailable, op).await
    }
}

fn unavailable(source: anyhow::Error) -> AppError {
    AppError::Unavailable {
        what: "the rate-limit store",
        source,
    }
}

/// The sliding-window count: all of the current window, plus the previous window weighted by
/// how much of it the sliding period still covers.
fn estimate(rate: Rate, elapsed: Duration, previous: u64, current: u64) -> f64 {
    let remaining = 1.0 - (elapsed.as_secs_f64() / rate.period.as_secs_f64()).min(1.0);
    previous as f64 * remaining + current as f64
}

/// How long until one more attempt fits, given the counts without the refused attempt. The
/// previous window's weight falls linearly, so within the current window the answer is
/// where `previous × (1 − t/P) + current + 1` reaches the count; if that is past the window's
/// end, the current window becomes the previous one and the same holds from zero.
fn retry_after(rate: Rate, elapsed: Duration, previous: u64, current: u64) -> Duration {
    let count = f64::from(rate.count.get());
    let period = rate.period.as_secs_f64();
    let elapsed = elapsed.as_secs_f64().min(period);
    let current_f = current as f64;
    if current_f + 1.0 <= count && previous > 0 {
        let at = period * (1.0 - (count - current_f - 1.0) / previous as f64);
        if at < period {
            return Duration::from_secs_f64((at - elapsed).max(0.0));
        }
    }
    let next = if current_f + 1.0 <= count {
        0.0
    } else {
        period * (1.0 - (count - 1.0) / current_f)
    };
    Duration::from_secs_f64(period - elapsed + next)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn rate(count: u32, secs: u64) -> Rate {
        Rate {
            count: NonZeroU32::new(count).unwrap(),
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_previous_window_weighs_less_as_it_slides_away() {
        let r = rate(10, 60);
        assert_eq!(estimate(r, Duration::ZERO, 10, 1), 11.0);
        assert_eq!(estimate(r, Duration::from_secs(30), 10, 1), 6.0);
        assert_eq!(estimate(r, Duration::from_secs(60), 10, 1), 1.0);
    }

    #[test]
    fn retry_after_finds_the_first_moment_that_fits() {
        let r = rate(10, 60);
        // Ten in this window already: wait for the next one, then until the ten weigh ≤ 9.
        let wait = retry_after(r, Duration::from_secs(5), 0, 10);
        assert!((wait.as_secs_f64() - 61.0).abs() < 1e-6, "{wait:?}");
        // Five here, ten before: the previous window must weigh ≤ 4, at 36 s.
        let wait = retry_after(r, Duration::from_secs(30), 10, 5);
        assert!((wait.as_secs_f64() - 6.0).abs() < 1e-6, "{wait:?}");
        // Nine here, ten before: only the next window helps, and then nine weigh ≤ 9 at once.
        let wait = retry_after(r, Duration::from_secs(50), 10, 9);
        assert!((wait.as_secs_f64() - 10.0).abs() < 1e-6, "{wait:?}");
        // One per period: a full window must pass entirely.
        let wait = retry_after(rate(1, 60), Duration::from_secs(20), 0, 1);
        assert!((wait.as_secs_f64() - 100.0).abs() < 1e-6, "{wait:?}");
        // The answer really fits.
        let at = Duration::from_secs(36);
        assert!(estimate(r, at, 10, 5 + 1) <= 10.0);
    }
}
