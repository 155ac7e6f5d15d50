//! How many users a list holds (`UserConnection.totalCount`): counted by the database, and
//! kept a few seconds per filter so that a busy list page costs one count per filter per few
//! seconds, however many clients ask. Over a million users an unfiltered count scans an
//! index of them all (measured: 0.3–1.2 s on MariaDB, 55–70 ms on SQLite); a prefix or role
//! count scans only what it keeps (5–25 ms for a few thousand users).

use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::time::Instant;

use super::search::{Search, UserFilter};
use super::{Users, Viewer};
use crate::accounts::model::Role;
use crate::accounts::repo;
use crate::error::AppError;

/// How long a count is served before it is counted again: the most a total may lag.
pub const COUNT_FRESH_FOR: Duration = Duration::from_secs(5);
/// How many filters' counts are kept; the least used go first.
const FILTERS_KEPT: usize = 1024;

/// The kept counts, by filter and by the [`COUNT_FRESH_FOR`]-long period they were counted in.
#[derive(Debug)]
pub(super) struct Counts {
    cache: Cache<(String, u64), i64>,
    since: Instant,
}

impl Counts {
    pub(super) fn new() -> Self {
        Counts {
            cache: Cache::new(FILTERS_KEPT),
            since: Instant::now(),
        }
    }

    /// The current period: a count made in an earlier one is not used again (and ages out).
    fn period(&self) -> u64 {
        self.since.elapsed().as_secs() / COUNT_FRESH_FOR.as_secs()
    }
}

impl Users {
    /// How many users the list of `filter` holds, as counted at most [`COUNT_FRESH_FOR`] ago.
    /// The filter's rules are those of [`Users::list`] (FORBIDDEN, BAD_USER_INPUT). Callers
    /// asking at once for a count that is not kept share one query.
    pub async fn count(&self, viewer: &Viewer, filter: &UserFilter) -> Result<i64, AppError> {
        viewer.require_verified()?;
        let search = Search::new(filter, viewer.user.role == Role::Admin)?;
        let query = search.query(None)?;
        let key = (search.count_key(), self.counts.period());
        self.counts
            .cache
            .get_or_insert_async(&key, async {
                repo::count_filtered(&self.db, &query)
                    .await
                    .map_err(AppError::from)
            })
            .await
    }
}
