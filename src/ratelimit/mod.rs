//! Rate limits on the attempts that guess or flood: logins per username and per client
//! address, registrations per client address, token refreshes per session.
//!
//! One [`RateLimiter`], used by `users::service`, so GraphQL and REST share every limit. It
//! counts in Redis when `REDIS_URL` is set, so every replica sees the same counts, and in
//! process otherwise (a keyed GCRA limiter from the governor crate). When Redis cannot be
//! reached the limited operations fail with 503 rather than run unlimited: they need Redis
//! for their session anyway.

mod memory;
mod redis;

use std::time::Duration;

use crate::auth::sessions::RedisPool;
use crate::client::ClientInfo;
use crate::config::{Rate, RateLimitConfig};
use crate::error::AppError;

use self::memory::MemoryLimiter;
use self::redis::RedisLimiter;

/// What a limit counts attempts of, and per what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Logins naming one username (in any letter case).
    LoginPerUsername,
    /// Logins from one client address.
    LoginPerIp,
    /// Registrations from one client address.
    RegisterPerIp,
    /// Token refreshes of one session.
    RefreshPerSession,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 4] = [
        Scope::LoginPerUsername,
        Scope::LoginPerIp,
        Scope::RegisterPerIp,
        Scope::RefreshPerSession,
    ];

    /// The scope's name in keys and logs.
    pub fn name(self) -> &'static str {
        match self {
            Scope::LoginPerUsername => "login-user",
            Scope::LoginPerIp => "login-ip",
            Scope::RegisterPerIp => "register-ip",
            Scope::RefreshPerSession => "refresh-session",
        }
    }

    /// The configured rate of this scope, `None` when it is off.
    fn rate(self, config: &RateLimitConfig) -> Option<Rate> {
        match self {
            Scope::LoginPerUsername => config.login_per_username.0,
            Scope::LoginPerIp => config.login_per_ip.0,
            Scope::RegisterPerIp => config.register_per_ip.0,
            Scope::RefreshPerSession => config.refresh_per_session.0,
        }
    }
}

/// The rate limits of the server, counted in Redis or in process.
#[derive(Debug)]
pub struct RateLimiter {
    rates: Vec<(Scope, Rate)>,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Memory(MemoryLimiter),
    Redis(RedisLimiter),
}

impl RateLimiter {
    /// Limits counted in this process only (one replica, or no Redis).
    pub fn in_memory(config: &RateLimitConfig) -> Self {
        let rates = Self::rates(config);
        RateLimiter {
            backend: Backend::Memory(MemoryLimiter::new(&rates)),
            rates,
        }
    }

    /// Limits counted in Redis through `pool`, under keys starting with `prefix`, shared by
    /// every replica using the same Redis and prefix. A Redis call that takes longer than
    /// `timeout` counts as Redis being down.
    pub fn redis(
        config: &RateLimitConfig,
        pool: RedisPool,
        prefix: &str,
        timeout: Duration,
    ) -> Self {
        RateLimiter {
            rates: Self::rates(config),
            backend: Backend::Redis(RedisLimiter::new(pool, prefix, timeout)),
        }
    }

    fn rates(config: &RateLimitConfig) -> Vec<(Scope, Rate)> {
        Scope::ALL
            .into_iter()
            .filter_map(|scope| scope.rate(config).map(|rate| (scope, rate)))
            .collect()
    }

    /// Where the counts are kept, for logs.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Counts one attempt under `scope` and `key`; `RateLimited` (with the whole seconds until
    /// an attempt would be allowed, at least 1) when over the limit, `Unavailable` when the
    /// counts cannot be reached. A refused attempt does not count against later ones.
    pub async fn check(&self, scope: Scope, key: &str) -> Result<(), AppError> {
        let Some(rate) = self
            .rates
            .iter()
            .find(|(s, _)| *s == scope)
            .map(|(_, rate)| *rate)
        else {
            return Ok(());
        };
        let outcome = match &self.backend {
            Backend::Memory(limiter) => limiter.check(scope, key),
            Backend::Redis(limiter) => limiter.check(scope, rate, key).await?,
        };
        outcome.map_err(|wait| {
            tracing::debug!(limit = scope.name(), "rate limit reached");
            AppError::RateLimited {
                retry_after: whole_seconds(wait),
            }
        })
    }

    /// A login attempt: counted per client address, then per username. The caller passes
    /// the username lower-cased, and only one that passes validation: any other names no
    /// account, so only the address limit applies to it (and it never becomes a key).
    pub async fn check_login(
        &self,
        username: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), AppError> {
        self.check(Scope::LoginPerIp, &client.rate_key()).await?;
        if let Some(username) = username {
            self.check(Scope::LoginPerUsername, username).await?;
        }
        Ok(())
    }

    /// A registration attempt, counted per client address.
    pub async fn check_register(&self, client: &ClientInfo) -> Result<(), AppError> {
        self.check(Scope::RegisterPerIp, &client.rate_key()).await
    }

    /// A token refresh, counted per session (the token's `jti`).
    pub async fn check_refresh(&self, session_id: &str) -> Result<(), AppError> {
        self.check(Scope::RefreshPerSession, session_id).await
    }
}

/// `Retry-After` takes whole seconds; rounding up means a client that waits that long is
/// let through, and a client is never told to retry at once.
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
    }
}
