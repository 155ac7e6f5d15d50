//! How many users a list holds (`UserConnection.totalCount`): counted by the database, and
//! kept per filter so that a busy list page costs one count per filter every few seconds,
//! however many clients ask. Over a million users an unfiltered count scans an index of them
//! all (measured in the databases: 110–290 ms on MariaDB, 10 ms on SQLite); a prefix or role
//! count scans only what it keeps (under 1 ms for a few thousand users).
//!
//! A kept count older than [`COUNT_FRESH_FOR`] is still answered while one recount runs
//! beside the requests (stale-while-revalidate), so no request waits for a slow count once a
//! filter has been counted. Only the first count of a filter, or one whose recounts kept
//! failing for [`COUNT_STALE_AT_MOST`], is waited for; callers asking at once share it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::time::Instant;

use super::search::{Search, UserFilter};
use super::{Users, Viewer};
use crate::accounts::model::Role;
use crate::accounts::repo;
use crate::db::replicas::Replicas;
use crate::error::AppError;

/// How long a count is answered before a recount starts: how far a total usually lags.
pub const COUNT_FRESH_FOR: Duration = Duration::from_secs(5);
/// The oldest count answered while a recount runs; an older one (the recounts failed) is
/// counted again while the caller waits, which answers the database's error if it persists.
pub const COUNT_STALE_AT_MOST: Duration = Duration::from_secs(60);
/// How many filters' counts are kept; the least used go first.
const FILTERS_KEPT: usize = 1024;

/// The kept counts, by filter.
#[derive(Debug)]
pub(super) struct Counts {
    slots: Cache<String, Arc<Slot>>,
}

/// One filter's count: the last one made, and whether a recount is running.
#[derive(Debug, Default)]
struct Slot {
    kept: Mutex<Option<(Instant, i64)>>,
    recounting: AtomicBool,
    /// Held while a caller counts and others wait for that count.
    counting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn kept(&self) -> Option<(Instant, i64)> {
        *self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keep(&self, count: i64) {
        *self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), count));
    }
}

impl Counts {
    pub(super) fn new() -> Self {
        Counts {
            slots: Cache::new(FILTERS_KEPT),
        }
    }
}

/// Counts what `search` selects, on a read replica when one is up and caught up: a count is
/// kept for seconds anyway, and over many users it is the costliest read there is.
async fn count_now(replicas: &Replicas, search: &Search) -> Result<i64, AppError> {
    let query = &search.query(None)?;
    Ok(replicas
        .lagging_read(|db| async move { repo::count_filtered(&db, query).await })
        .await?)
}

impl Users {
    /// How many users the list of `filter` holds, as counted about [`COUNT_FRESH_FOR`] ago at
    /// most (see the module's text). The filter's rules are those of [`Users::list`]
    /// (FORBIDDEN, BAD_USER_INPUT).
    pub async fn count(&self, viewer: &Viewer, filter: &UserFilter) -> Result<i64, AppError> {
        viewer.require_verified()?;
        let search = Search::new(filter, viewer.user.role == Role::Admin)?;
        // Checked here, so that a recount beside the request cannot meet an error of input.
        search.query(None)?;
        let slot = self
            .counts
            .slots
            .get_or_insert_with(&search.count_key(), || {
                Ok::<_, std::convert::Infallible>(Arc::default())
            })
            .unwrap_or_else(|never| match never {});
        if let Some((at, count)) = slot.kept() {
            let age = at.elapsed();
            if age < COUNT_FRESH_FOR {
                return Ok(count);
            }
            if age < COUNT_STALE_AT_MOST {
                self.recount_beside(&slot, search);
                return Ok(count);
            }
        }
        let _counting = slot.counting.lock().await;
        // Whoever held the lock before may have just counted.
        if let Some((at, count)) = slot.kept()
            && at.elapsed() < COUNT_FRESH_FOR
        {
            return Ok(count);
        }
        let count = count_now(&self.replicas, &search).await?;
        slot.keep(count);
        Ok(count)
    }

    /// Starts one recount of `slot` beside the requests, unless one runs already. A failed
    /// recount leaves the old count in place (and is logged); the next caller tries again.
    fn recount_beside(&self, slot: &Arc<Slot>, search: Search) {
        if slot.recounting.swap(true, Ordering::AcqRel) {
            return;
        }
        let slot = slot.clone();
        let replicas = self.replicas.clone();
        tokio::spawn(async move {
            match count_now(&replicas, &search).await {
                Ok(count) => slot.keep(count),
                Err(e) => tracing::warn!(error = %e, "recounting a list's users failed"),
            }
            slot.recounting.store(false, Ordering::Release);
        });
    }
}
