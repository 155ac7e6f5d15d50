//! Redis connections: one small pool of multiplexed connections per Redis, shared by every
//! service that keeps state there (the session store, the rate limiter), and [`run`], the one
//! way to send it a command: bounded in time, and dropping a connection that broke.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;

use super::pool::{self, CheckedPool};

/// The Redis pool: few connections, each multiplexing many requests.
pub type RedisPool = CheckedPool<RedisConnectionManager>;

/// A pool on `url` (a `redis://` or `rediss://` URL) whose checkouts wait at most `timeout`.
/// Does not connect yet.
pub fn connect(url: &str, timeout: Duration) -> anyhow::Result<RedisPool> {
    let manager =
        RedisConnectionManager::new(url).map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    Ok(CheckedPool::build(
        pool::builder(cores.max(2), timeout),
        manager,
    ))
}

/// Runs `op` on a connection of `pool` within `timeout`. A connection that failed at the
/// transport level is dropped from the pool. Every failure (no connection, a command error,
/// no answer in time) is returned as the cause for the caller to name.
pub async fn run<T, F>(pool: &RedisPool, timeout: Duration, op: F) -> anyhow::Result<T>
where
    F: AsyncFnOnce(&mut MultiplexedConnection) -> redis::RedisResult<T>,
{
    let work = async {
        // A multiplexed connection pipelines the commands of every request that holds a clone
        // of it, so none is held exclusively: requests would otherwise queue for the pool's
        // few connections (bench/RESULTS.md has the measurement).
        let (mut conn, broken) = pool.get_shared().await?;
        let result = op(&mut conn).await;
        if let Err(e) = &result
            && (e.is_io_error()
                || e.is_connection_dropped()
                || e.is_unrecoverable_error()
                || e.is_timeout())
        {
            broken.mark();
        }
        Ok(result?)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow::anyhow!("redis did not answer in time"))?
}
