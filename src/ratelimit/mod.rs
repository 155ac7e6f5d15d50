//! Rate limits on the attempts that guess or flood: password checks per client address and
//! failed ones per username, second-factor codes per client address and wrong ones per user,
//! registrations per client address, token refreshes per sign-in,
//! email changes per user, password-reset requests per client address and per address asked
//! for, verification mails per user, persisted-query documents kept per client address.
//!
//! One [`RateLimiter`], used by the `signins` and `users` services, so GraphQL and REST
//! share every limit. It
//! counts in Redis when `REDIS_URL` is set, so every replica sees the same counts, and in
//! process otherwise; both with the same sliding window ([`window`]). When Redis cannot be
//! reached the limited operations fail with 503 rather than run unlimited: they need Redis
//! for their session anyway.
//!
//! Password checks follow OWASP's advice against both guessing and locking a victim out:
//! every check counts per client address; a *failed* check counts per username from that
//! address (so ten wrong guesses from elsewhere do not refuse the owner's right password), and
//! per username from anywhere against a looser ceiling; once an account is past that ceiling,
//! only addresses with no recent failures for it may still try. Attempts are counted before
//! the hash is spent and taken back when the password was right, so parallel guesses cannot
//! slip past a count that has not been written yet.

mod memory;
mod redis;
mod window;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::Ipv6Net;

use crate::config::{Rate, RateLimitConfig};
use crate::error::AppError;
use crate::infra::redis::Redis;

use self::memory::MemoryLimiter;
use self::redis::RedisLimiter;

/// What a limit counts attempts of, and per what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Password checks (sign-ins, password changes) from one client address.
    LoginPerIp,
    /// Failed password checks naming one username (in any letter case) from one address.
    LoginFailuresPerUsernameAndIp,
    /// Failed password checks naming one username, from anywhere.
    LoginFailuresPerUsername,
    /// Failed password checks naming one username past [`Scope::LoginFailuresPerUsername`],
    /// from addresses with no failures for it: a second ceiling (at the same rate) that no
    /// address escapes, as one client can hold many clean addresses (an IPv6 /48 holds 65,536
    /// of the /64s addresses are counted by).
    LoginExemptFailuresPerUsername,
    /// Wrong second-factor codes of one user, from anywhere, with no address exempt.
    MfaFailuresPerUser,
    /// Registrations from one client address.
    RegisterPerIp,
    /// Token refreshes of one sign-in.
    RefreshPerSession,
    /// Email changes of one user.
    EmailChangePerUser,
    /// Password-reset requests from one client address.
    PasswordResetPerIp,
    /// Password-reset requests naming one address (lower-cased), registered or not.
    PasswordResetPerEmail,
    /// Verification mails one user asked for.
    VerificationPerUser,
    /// Documents one client address had kept as persisted queries.
    PersistedQueriesPerIp,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 12] = [
        Scope::LoginPerIp,
        Scope::LoginFailuresPerUsernameAndIp,
        Scope::LoginFailuresPerUsername,
        Scope::LoginExemptFailuresPerUsername,
        Scope::MfaFailuresPerUser,
        Scope::RegisterPerIp,
        Scope::RefreshPerSession,
        Scope::EmailChangePerUser,
        Scope::PasswordResetPerIp,
        Scope::PasswordResetPerEmail,
        Scope::VerificationPerUser,
        Scope::PersistedQueriesPerIp,
    ];

    /// The scope's name in keys and logs.
    pub fn name(self) -> &'static str {
        match self {
            Scope::LoginPerIp => "login-ip",
            Scope::LoginFailuresPerUsernameAndIp => "login-user-ip",
            Scope::LoginFailuresPerUsername => "login-user",
            Scope::LoginExemptFailuresPerUsername => "login-user-exempt",
            Scope::MfaFailuresPerUser => "mfa-user",
            Scope::RegisterPerIp => "register-ip",
            Scope::RefreshPerSession => "refresh-session",
            Scope::EmailChangePerUser => "email-change-user",
            Scope::PasswordResetPerIp => "reset-ip",
            Scope::PasswordResetPerEmail => "reset-email",
            Scope::VerificationPerUser => "verification-user",
            Scope::PersistedQueriesPerIp => "persisted-ip",
        }
    }

    /// The configured rate of this scope, `None` when it is off.
    fn rate(self, config: &RateLimitConfig) -> Option<Rate> {
        match self {
            Scope::LoginPerIp => config.login_per_ip.0,
            Scope::LoginFailuresPerUsernameAndIp => config.login_per_username.0,
            Scope::LoginFailuresPerUsername | Scope::LoginExemptFailuresPerUsername => {
                config.login_failures_per_username.0
            }
            Scope::MfaFailuresPerUser => config.mfa_failures_per_user.0,
            Scope::RegisterPerIp => config.register_per_ip.0,
            Scope::RefreshPerSession => config.refresh_per_session.0,
            Scope::EmailChangePerUser => config.email_change_per_user.0,
            Scope::PasswordResetPerIp => config.password_reset_per_ip.0,
            Scope::PasswordResetPerEmail => config.password_reset_per_email.0,
            Scope::VerificationPerUser => config.verification_per_user.0,
            Scope::PersistedQueriesPerIp => config.persisted_queries_per_ip.0,
        }
    }
}

/// Where an allowed attempt was counted, to take it back later.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counted {
    /// The window it was counted in.
    window: u64,
    /// The sliding count of the key before it.
    prior: f64,
}

/// A password check under way, counted against the login limits: hand it to
/// [`RateLimiter::password_was_right`] when the password turned out right, so that only
/// failures stay counted; dropped, it stays counted as a failure.
#[derive(Debug, Default)]
#[must_use = "a right password must be reported, or it counts as a failure"]
pub struct PasswordCheck {
    counted: Vec<(Scope, String, u64)>,
}

impl PasswordCheck {
    /// Remembers where an attempt was counted, to take it back if the password is right.
    fn record(&mut self, scope: Scope, key: &str, counted: Counted) {
        self.counted.push((scope, key.to_owned(), counted.window));
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
    pub fn redis(config: &RateLimitConfig, pool: Redis, prefix: &str, timeout: Duration) -> Self {
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

    fn rate(&self, scope: Scope) -> Option<Rate> {
        self.rates
            .iter()
            .find(|(s, _)| *s == scope)
            .map(|(_, rate)| *rate)
    }

    /// Where the counts are kept, for logs.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Counts one attempt under `scope` and `key`: `None` when the scope is off, `Err(wait)`
    /// when refused (and not counted); `Unavailable` when the counts cannot be reached.
    async fn hit(
        &self,
        scope: Scope,
        key: &str,
    ) -> Result<Option<Result<Counted, Duration>>, AppError> {
        let Some(rate) = self.rate(scope) else {
            return Ok(None);
        };
        let outcome = match &self.backend {
            Backend::Memory(limiter) => limiter.hit(scope, rate, key),
            Backend::Redis(limiter) => limiter.hit(scope, rate, key).await?,
        };
        if outcome.is_err() {
            tracing::debug!(limit = scope.name(), "rate limit reached");
        }
        Ok(Some(outcome))
    }

    /// Takes back an attempt counted under `scope` and `key` in `window`.
    async fn release(&self, scope: Scope, key: &str, window: u64) -> Result<(), AppError> {
        let Some(rate) = self.rate(scope) else {
            return Ok(());
        };
        match &self.backend {
            Backend::Memory(limiter) => {
                limiter.release(scope, rate, key, window);
                Ok(())
            }
            Backend::Redis(limiter) => limiter.release(scope, key, window).await,
        }
    }

    /// Counts one attempt under `scope` and `key`; `RateLimited` (with the whole seconds until
    /// an attempt would be allowed, at least 1) when over the limit, `Unavailable` when the
    /// counts cannot be reached. A refused attempt does not count against later ones.
    pub async fn check(&self, scope: Scope, key: &str) -> Result<(), AppError> {
        match self.hit(scope, key).await? {
            Some(Err(wait)) => Err(rate_limited(wait)),
            _ => Ok(()),
        }
    }

    /// Begins a check of a password (a sign-in, or a password change proving the current
    /// one), before any hash is spent. The caller passes the username lower-cased, and only
    /// one that passes validation: any other names no account, so only the address limit
    /// applies to it (and it never becomes a key).
    ///
    /// Counted per client address (every check), then as a failure per username from this
    /// address, and per username from anywhere. Past the per-username ceiling, an address
    /// with no recent failures for that username may still try: the owner typing the right
    /// password from their usual device is not locked out by someone else's guesses. Those
    /// tries have a ceiling of their own, as many again, which no address escapes.
    pub async fn begin_password_check(
        &self,
        username: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<PasswordCheck, AppError> {
        self.check_login_address(client).await?;
        self.begin_username_check(username, client).await
    }

    /// Counts a password or second-factor check against the client address's limit: before
    /// anything else of the check is looked up.
    pub async fn check_login_address(&self, client: Option<IpAddr>) -> Result<(), AppError> {
        self.check(Scope::LoginPerIp, &address_key(client)).await
    }

    /// Begins a check of a second-factor code of the user `user_id`, whose client address was
    /// counted already ([`RateLimiter::check_login_address`]): counted as a failure per user
    /// against [`Scope::MfaFailuresPerUser`], which no address escapes, until the code is
    /// found right. Whoever sends codes knew the password: the clean-address exception of the
    /// per-username password limits would let them guess codes from address after address,
    /// so codes are held to this limit instead of those.
    pub async fn begin_code_check(&self, user_id: &str) -> Result<PasswordCheck, AppError> {
        let mut check = PasswordCheck::default();
        match self.hit(Scope::MfaFailuresPerUser, user_id).await? {
            Some(Ok(counted)) => {
                check.record(Scope::MfaFailuresPerUser, user_id, counted);
                Ok(check)
            }
            None => Ok(check),
            Some(Err(wait)) => Err(rate_limited(wait)),
        }
    }

    /// The per-username part of [`RateLimiter::begin_password_check`].
    async fn begin_username_check(
        &self,
        username: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<PasswordCheck, AppError> {
        let address = address_key(client);
        let mut check = PasswordCheck::default();
        let Some(username) = username else {
            return Ok(check);
        };
        // `|` cannot occur in a username, so the pair key is unambiguous.
        let pair = format!("{username}|{address}");
        let clean = match self
            .hit(Scope::LoginFailuresPerUsernameAndIp, &pair)
            .await?
        {
            Some(Err(wait)) => return Err(rate_limited(wait)),
            Some(Ok(counted)) => {
                check.record(Scope::LoginFailuresPerUsernameAndIp, &pair, counted);
                counted.prior == 0.0
            }
            // Nothing says which addresses failed before: none counts as clean.
            None => false,
        };
        let over_ceiling = match self.hit(Scope::LoginFailuresPerUsername, username).await? {
            Some(Ok(counted)) => {
                check.record(Scope::LoginFailuresPerUsername, username, counted);
                None
            }
            Some(Err(wait)) => Some(wait),
            None => None,
        };
        if let Some(wait) = over_ceiling {
            // Past the ceiling only a clean address may try, within the ceiling of such tries.
            let exempt = if clean {
                self.hit(Scope::LoginExemptFailuresPerUsername, username)
                    .await?
            } else {
                Some(Err(wait))
            };
            match exempt {
                Some(Ok(counted)) => {
                    tracing::debug!(
                        "an address with no recent failures tries an account under attack"
                    );
                    check.record(Scope::LoginExemptFailuresPerUsername, username, counted);
                }
                None => {}
                Some(Err(_)) => {
                    // The attempt does not happen: it must not count as this address's failure.
                    self.password_was_right(check).await;
                    return Err(rate_limited(wait));
                }
            }
        }
        Ok(check)
    }

    /// Takes back the failure counts of a password check whose password was right. A failure
    /// to reach the counts is logged, not returned: the sign-in itself is sound, and the
    /// counts only err towards refusing sooner.
    pub async fn password_was_right(&self, check: PasswordCheck) {
        for (scope, key, window) in check.counted {
            if let Err(e) = self.release(scope, &key, window).await {
                tracing::warn!(error = %e, limit = scope.name(), "could not take back a right password's count");
            }
        }
    }

    /// A registration attempt, counted per client address.
    pub async fn check_register(&self, client: Option<IpAddr>) -> Result<(), AppError> {
        self.check(Scope::RegisterPerIp, &address_key(client)).await
    }

    /// A token refresh, counted per sign-in (its refresh-token family).
    pub async fn check_refresh(&self, family_id: &str) -> Result<(), AppError> {
        self.check(Scope::RefreshPerSession, family_id).await
    }

    /// An attempt to change a user's email, counted per user: each attempt tells whether an
    /// address is registered, so probing through it must be as slow as through `register`.
    pub async fn check_email_change(&self, user_id: &str) -> Result<(), AppError> {
        self.check(Scope::EmailChangePerUser, user_id).await
    }

    /// A password-reset request, counted per client address and per address asked for
    /// (lower-cased), whether or not it is registered, so the limit reveals nothing either.
    pub async fn check_password_reset(
        &self,
        client: Option<IpAddr>,
        email_lower: &str,
    ) -> Result<(), AppError> {
        self.check(Scope::PasswordResetPerIp, &address_key(client))
            .await?;
        self.check(Scope::PasswordResetPerEmail, email_lower).await
    }

    /// A request for a verification mail, counted per user.
    pub async fn check_verification(&self, user_id: &str) -> Result<(), AppError> {
        self.check(Scope::VerificationPerUser, user_id).await
    }
}

/// The key per-address limits count under: the IPv4 address, or the IPv6 /64 network,
/// since one subscriber commonly holds a whole /64 and could otherwise step through it.
/// Requests whose address is unknown share one key rather than escaping the limit.
pub fn address_key(client: Option<IpAddr>) -> String {
    match client {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match Ipv6Net::new(v6, 64) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
        None => "unknown".to_owned(),
    }
}

fn rate_limited(wait: Duration) -> AppError {
    AppError::RateLimited {
        retry_after: whole_seconds(wait),
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
    fn address_keys() {
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(key("203.0.113.9"), "203.0.113.9");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff::1"), key("2001:db8:1:2::9"));
        assert_eq!(address_key(None), "unknown");
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
    }
}
