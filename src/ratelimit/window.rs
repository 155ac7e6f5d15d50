//! The sliding-window count both stores keep: each key has one counter per fixed window of the
//! period, and an attempt is allowed while
//! `previous × (share of the previous window still inside the sliding period) + current`
//! stays within the count. That avoids the double burst a plain fixed window lets through at
//! a window boundary, at the cost of two small counters per key. Redis and the in-process
//! store run the same arithmetic, so a limit means the same with or without Redis.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Rate;

/// Where in time an attempt falls for a given rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    /// The index of the fixed window the attempt falls in.
    pub window: u64,
    /// How far into that window it falls.
    pub elapsed: Duration,
    /// The period, in whole milliseconds (at least 1).
    pub period_ms: u64,
}

impl Slot {
    /// The slot of an attempt made now.
    pub fn now(rate: Rate) -> Slot {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Slot::at(rate, now_ms)
    }

    /// The slot of an attempt made `now_ms` milliseconds after the epoch.
    pub fn at(rate: Rate, now_ms: u64) -> Slot {
        // Whole milliseconds: the period is at least a second, so this is never zero.
        let period_ms = u64::try_from(rate.period.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Slot {
            window: now_ms / period_ms,
            elapsed: Duration::from_millis(now_ms % period_ms),
            period_ms,
        }
    }
}

/// The sliding-window count: all of the current window, plus the previous window weighted by
/// how much of it the sliding period still covers.
pub(super) fn estimate(rate: Rate, elapsed: Duration, previous: u64, current: u64) -> f64 {
    let remaining = 1.0 - (elapsed.as_secs_f64() / rate.period.as_secs_f64()).min(1.0);
    previous as f64 * remaining + current as f64
}

/// Whether one more attempt fits beside `previous` and `current` (which do not include it);
/// when not, how long until one would.
pub(super) fn admit(
    rate: Rate,
    elapsed: Duration,
    previous: u64,
    current: u64,
) -> Option<Duration> {
    if estimate(rate, elapsed, previous, current.saturating_add(1)) <= f64::from(rate.count.get()) {
        None
    } else {
        Some(retry_after(rate, elapsed, previous, current))
    }
}

/// How long until one more attempt fits, given the counts without the refused attempt. The
/// previous window's weight falls linearly, so within the current window the answer is
/// where `previous × (1 − t/P) + current + 1` reaches the count; if that is past the window's
/// end, the current window becomes the previous one and the same holds from zero.
pub(super) fn retry_after(rate: Rate, elapsed: Duration, previous: u64, current: u64) -> Duration {
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
    fn slots_split_time_into_windows_of_the_period() {
        let slot = Slot::at(rate(1, 60), 125_000);
        assert_eq!(slot.window, 2);
        assert_eq!(slot.elapsed, Duration::from_secs(5));
        assert_eq!(slot.period_ms, 60_000);
    }

    #[test]
    fn the_previous_window_weighs_less_as_it_slides_away() {
        let r = rate(10, 60);
        assert_eq!(estimate(r, Duration::ZERO, 10, 1), 11.0);
        assert_eq!(estimate(r, Duration::from_secs(30), 10, 1), 6.0);
        assert_eq!(estimate(r, Duration::from_secs(60), 10, 1), 1.0);
        assert!(admit(r, Duration::from_secs(30), 10, 4).is_none());
        assert!(admit(r, Duration::from_secs(30), 10, 5).is_some());
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
