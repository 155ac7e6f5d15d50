//! Connections counted per key (a client address, an account) against a cap, each counted
//! until its guard is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// How many connections each key holds, each at most `limit`.
#[derive(Debug)]
pub(super) struct Counts {
    limit: usize,
    held: Mutex<HashMap<String, usize>>,
}

impl Counts {
    /// Counts that allow each key `limit` connections.
    pub(super) fn new(limit: usize) -> Self {
        Counts {
            limit,
            held: Mutex::default(),
        }
    }

    /// How many connections each key may hold.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    /// Counts one more connection of `key`, unless it holds the limit already.
    pub(super) fn enter(this: &Arc<Self>, key: String) -> Option<Counted> {
        // A panic elsewhere while counting leaves the counts as they were: still usable.
        let mut held = this.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key.clone()).or_default();
        if *count >= this.limit {
            return None;
        }
        *count += 1;
        Some(Counted {
            counts: Arc::clone(this),
            key,
        })
    }
}

/// One connection counted under its key until dropped.
#[derive(Debug)]
pub(super) struct Counted {
    counts: Arc<Counts>,
    key: String,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut held = self
            .counts
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_holds_at_most_the_limit_until_its_guards_drop() {
        let counts = Arc::new(Counts::new(2));
        let a1 = Counts::enter(&counts, "a".into());
        let a2 = Counts::enter(&counts, "a".into());
        assert!(a1.is_some() && a2.is_some());
        assert!(Counts::enter(&counts, "a".into()).is_none());
        assert!(Counts::enter(&counts, "b".into()).is_some());
        drop(a1);
        let a3 = Counts::enter(&counts, "a".into());
        assert!(a3.is_some());
        drop((a2, a3));
        assert!(counts.held.lock().unwrap().is_empty(), "no key left behind");
    }
}
