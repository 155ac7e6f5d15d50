//! Rate limits counted in this process: one keyed GCRA limiter (governor) per scope. A rate of
//! N per period allows a burst of N, then one attempt every period / N.
//!
//! Keys (usernames, addresses) come from clients, so the maps are swept of keys whose state
//! is back to fresh: at least once a minute, and as often as once a second while they hold
//! many keys. That bounds memory by the keys used within about one period plus a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::Scope;
use crate::config::Rate;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// How often stale keys are swept at the least.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Above this many keys in all, sweeps may run as often as [`SWEEP_BUSY_EVERY`].
const BUSY_KEYS: usize = 100_000;
/// Shortest time between two sweeps.
const SWEEP_BUSY_EVERY: Duration = Duration::from_secs(1);

/// The in-process limiters, one per limited scope.
pub(super) struct MemoryLimiter {
    limiters: Vec<(Scope, Keyed)>,
    started: Instant,
    /// Milliseconds after `started` of the last sweep.
    last_sweep: AtomicU64,
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("scopes", &self.limiters.len())
            .finish_non_exhaustive()
    }
}

impl MemoryLimiter {
    /// Limiters for `rates`.
    pub(super) fn new(rates: &[(Scope, Rate)]) -> Self {
        let limiters = rates
            .iter()
            .filter_map(|(scope, rate)| {
                // `period / count` is never zero: the period is at least 1 s and the count at
                // most 1,000,000 (see config).
                let quota = Quota::with_period(rate.period / rate.count.get())?;
                Some((*scope, RateLimiter::keyed(quota.allow_burst(rate.count))))
            })
            .collect();
        MemoryLimiter {
            limiters,
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Counts an attempt; `Err(wait)` when refused (a refused attempt is not counted).
    pub(super) fn check(&self, scope: Scope, key: &str) -> Result<(), Duration> {
        self.sweep_if_due();
        let Some((_, limiter)) = self.limiters.iter().find(|(s, _)| *s == scope) else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Sweeps when a sweep is due; the request that finds it due does the sweep, so no
    /// background task is needed.
    fn sweep_if_due(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep.load(Ordering::Relaxed);
        let since = Duration::from_millis(now.saturating_sub(last));
        let due = since >= SWEEP_EVERY || (since >= SWEEP_BUSY_EVERY && self.keys() > BUSY_KEYS);
        if due
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep();
        }
    }

    /// Drops the keys whose state is back to fresh (no attempt within their period).
    fn sweep(&self) {
        for (_, limiter) in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys held in all.
    fn keys(&self) -> usize {
        self.limiters.iter().map(|(_, l)| l.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn limiter(count: u32, period: Duration) -> MemoryLimiter {
        MemoryLimiter::new(&[(
            Scope::LoginPerIp,
            Rate {
                count: NonZeroU32::new(count).unwrap(),
                period,
            },
        )])
    }

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let limiter = limiter(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check(Scope::LoginPerIp, "a").is_ok());
        }
        let wait = limiter.check(Scope::LoginPerIp, "a").unwrap_err();
        // One attempt comes back every 20 s.
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Other keys and unlimited scopes are not affected.
        assert!(limiter.check(Scope::LoginPerIp, "b").is_ok());
        assert!(limiter.check(Scope::RegisterPerIp, "a").is_ok());
    }

    #[test]
    fn refused_attempts_do_not_count() {
        let limiter = limiter(2, Duration::from_millis(1000));
        assert!(limiter.check(Scope::LoginPerIp, "a").is_ok());
        assert!(limiter.check(Scope::LoginPerIp, "a").is_ok());
        for _ in 0..20 {
            assert!(limiter.check(Scope::LoginPerIp, "a").is_err());
        }
        std::thread::sleep(Duration::from_millis(550));
        assert!(limiter.check(Scope::LoginPerIp, "a").is_ok());
    }

    #[test]
    fn sweeps_drop_fresh_keys_only() {
        let limiter = limiter(1, Duration::from_millis(300));
        for i in 0..50 {
            assert!(limiter.check(Scope::LoginPerIp, &format!("k{i}")).is_ok());
        }
        limiter.sweep();
        assert_eq!(limiter.keys(), 50, "keys within their period stay");
        // governor keeps a key until one emission interval after its state is fresh again.
        std::thread::sleep(Duration::from_millis(700));
        assert!(limiter.check(Scope::LoginPerIp, "recent").is_ok());
        limiter.sweep();
        assert_eq!(limiter.keys(), 1, "only the recent key is left");
    }
}
