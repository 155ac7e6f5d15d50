//! Rate limits counted in this process, with the same sliding window as Redis (see
//! [`window`](super::window)), so a limit means the same with or without Redis, and an attempt
//! can be taken back once it turned out not to count (a correct password).
//!
//! Keys (usernames, addresses) come from clients, so the map is swept of keys whose windows
//! have both passed: at least once a minute, and as often as once a second while it holds
//! many keys. That bounds memory by the keys used within about two periods plus a minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::window::{self, Slot};
use super::{Counted, Scope};
use crate::config::Rate;

/// How often stale keys are swept at the least.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Above this many keys in all, sweeps may run as often as [`SWEEP_BUSY_EVERY`].
const BUSY_KEYS: usize = 100_000;
/// Shortest time between two sweeps.
const SWEEP_BUSY_EVERY: Duration = Duration::from_secs(1);

/// The two windows' counts of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    window: u64,
    current: u64,
    previous: u64,
}

impl Counts {
    /// Moves the counts to `window`: the current window becomes the previous one, or both
    /// are forgotten when more than a window has passed.
    fn roll(&mut self, window: u64) {
        if window == self.window {
            return;
        }
        self.previous = if window == self.window.saturating_add(1) {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.window = window;
    }
}

/// Attempts counted in process, per scope and key.
pub(super) struct MemoryLimiter {
    counts: Mutex<HashMap<(Scope, String), Counts>>,
    rates: Vec<(Scope, Rate)>,
    started: Instant,
    /// Milliseconds after `started` of the last sweep.
    last_sweep: AtomicU64,
}

impl std::fmt::Debug for MemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("scopes", &self.rates.len())
            .finish_non_exhaustive()
    }
}

impl MemoryLimiter {
    /// Counters for `rates`.
    pub(super) fn new(rates: &[(Scope, Rate)]) -> Self {
        MemoryLimiter {
            counts: Mutex::new(HashMap::new()),
            rates: rates.to_vec(),
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(Scope, String), Counts>> {
        // The map holds plain counters: whatever a panicking holder left is still usable.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an attempt; `Err(wait)` when refused (a refused attempt is not counted).
    pub(super) fn hit(&self, scope: Scope, rate: Rate, key: &str) -> Result<Counted, Duration> {
        self.sweep_if_due();
        let slot = Slot::now(rate);
        let mut map = self.lock();
        let counts = map.entry((scope, key.to_owned())).or_default();
        counts.roll(slot.window);
        if let Some(wait) = window::admit(rate, slot.elapsed, counts.previous, counts.current) {
            return Err(wait);
        }
        let prior = window::estimate(rate, slot.elapsed, counts.previous, counts.current);
        counts.current += 1;
        Ok(Counted {
            window: slot.window,
            prior,
        })
    }

    /// Takes back an attempt counted in `window`.
    pub(super) fn release(&self, scope: Scope, rate: Rate, key: &str, window: u64) {
        let slot = Slot::now(rate);
        let mut map = self.lock();
        let Some(counts) = map.get_mut(&(scope, key.to_owned())) else {
            return;
        };
        counts.roll(slot.window);
        if window == counts.window {
            counts.current = counts.current.saturating_sub(1);
        } else if window.saturating_add(1) == counts.window {
            counts.previous = counts.previous.saturating_sub(1);
        }
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

    /// Drops the keys whose two windows have both passed.
    fn sweep(&self) {
        let windows: Vec<(Scope, u64)> = self
            .rates
            .iter()
            .map(|(scope, rate)| (*scope, Slot::now(*rate).window))
            .collect();
        let mut map = self.lock();
        map.retain(|(scope, _), counts| {
            windows
                .iter()
                .find(|(s, _)| s == scope)
                .is_some_and(|(_, now)| counts.window.saturating_add(1) >= *now)
        });
        map.shrink_to_fit();
    }

    /// Keys held in all.
    fn keys(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn rate(count: u32, period: Duration) -> Rate {
        Rate {
            count: NonZeroU32::new(count).unwrap(),
            period,
        }
    }

    fn limiter(rate: Rate) -> MemoryLimiter {
        MemoryLimiter::new(&[(Scope::LoginPerIp, rate)])
    }

    #[test]
    fn allows_the_count_then_refuses_with_a_wait() {
        let r = rate(3, Duration::from_secs(60));
        let limiter = limiter(r);
        let mut priors = Vec::new();
        for _ in 0..3 {
            priors.push(limiter.hit(Scope::LoginPerIp, r, "a").unwrap().prior);
        }
        assert_eq!(priors[0], 0.0, "a fresh key had no attempts");
        assert!(priors[2] >= 2.0);
        let wait = limiter.hit(Scope::LoginPerIp, r, "a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        // Other keys are not affected.
        assert!(limiter.hit(Scope::LoginPerIp, r, "b").is_ok());
    }

    #[test]
    fn refused_attempts_do_not_count_and_released_ones_come_back() {
        let r = rate(2, Duration::from_secs(60));
        let limiter = limiter(r);
        let first = limiter.hit(Scope::LoginPerIp, r, "a").unwrap();
        assert!(limiter.hit(Scope::LoginPerIp, r, "a").is_ok());
        for _ in 0..20 {
            assert!(limiter.hit(Scope::LoginPerIp, r, "a").is_err());
        }
        limiter.release(Scope::LoginPerIp, r, "a", first.window);
        assert!(limiter.hit(Scope::LoginPerIp, r, "a").is_ok());
        assert!(limiter.hit(Scope::LoginPerIp, r, "a").is_err());
    }

    #[test]
    fn sweeps_drop_passed_keys_only() {
        let r = rate(1, Duration::from_secs(1));
        let limiter = limiter(r);
        for i in 0..50 {
            assert!(limiter.hit(Scope::LoginPerIp, r, &format!("k{i}")).is_ok());
        }
        limiter.sweep();
        assert_eq!(limiter.keys(), 50, "keys within their windows stay");
        // Two windows later both of their windows have passed.
        std::thread::sleep(Duration::from_millis(2100));
        assert!(limiter.hit(Scope::LoginPerIp, r, "recent").is_ok());
        limiter.sweep();
        assert_eq!(limiter.keys(), 1, "only the recent key is left");
    }
}
