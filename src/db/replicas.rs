//! Read replicas of the MySQL primary (`DATABASE_REPLICA_URLS`). Reads that tolerate lag go to
//! a replica that answers and is at most `REPLICA_MAX_LAG` behind, taken in turn; with no such
//! replica, to the primary. Which reads those are is the services' decision.
//!
//! A check every [`CHECK_EVERY`] stamps a heartbeat row on the primary with the primary's
//! clock, then reads on each replica the age of the newest stamp it has applied, by the
//! replica's clock: its lag, overstated by at most one check interval, with the servers'
//! clocks in step (NTP). Unlike `SHOW REPLICA STATUS` this needs no privilege beyond the
//! server's own tables, reads the same on MySQL 8 and MariaDB, and counts a replica whose
//! replication stopped as falling behind (its `Seconds_Behind_Source` would be NULL). The check
//! also refuses a "replica" that is the primary itself (same server id, host name and port).
//!
//! A replica leaves the rotation at the first failed check or failed read (the read then runs
//! on the primary), and comes back at the first check that finds it up and caught up.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use tokio::task::JoinHandle;

use super::{DbError, DbPool, mysql_pool};
use crate::config::{DatabaseConfig, without_credentials};
use crate::infra::metrics::ReplicaMetrics;

/// How often the replicas are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The longest a check waits for one server.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A replica's state, as the last check (or a failed read) left it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet: not used until it is.
    Unchecked,
    /// Up and at most `REPLICA_MAX_LAG` behind: serving reads.
    Ok {
        /// Its lag when checked.
        lag_seconds: f64,
    },
    /// Up but further behind than `REPLICA_MAX_LAG`, or without a heartbeat: skipped.
    Lagging {
        /// Its lag when checked; `None` when it holds no heartbeat at all.
        lag_seconds: Option<f64>,
    },
    /// Not answering: skipped.
    Down {
        /// Why, without credentials.
        error: String,
    },
    /// The primary itself under another name: never used.
    NotAReplica {
        /// What gave it away.
        reason: String,
    },
}

/// One replica and its state.
#[derive(Debug)]
struct Replica {
    /// `host:port/database`, for probes, metrics and logs.
    name: String,
    pool: DbPool,
    health: Mutex<Health>,
    /// Whether reads may go to it: `health` is `Ok`.
    usable: AtomicBool,
}

impl Replica {
    fn set(&self, health: Health, metrics: &ReplicaMetrics) {
        let usable = matches!(health, Health::Ok { .. });
        let lag = match &health {
            Health::Ok { lag_seconds } => Some(*lag_seconds),
            Health::Lagging { lag_seconds } => *lag_seconds,
            _ => None,
        };
        let mut current = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::discriminant(&*current) != std::mem::discriminant(&health) {
            match &health {
                Health::Ok { .. } => tracing::info!(replica = %self.name, "replica serving reads"),
                Health::Unchecked => {}
                other => tracing::warn!(replica = %self.name, state = ?other, "replica skipped"),
            }
        }
        *current = health;
        self.usable.store(usable, Ordering::Release);
        metrics
            .up
            .with_label_values(&[&self.name])
            .set(i64::from(usable));
        // Milliseconds in an integer gauge; -1 when unknown.
        metrics
            .lag
            .with_label_values(&[&self.name])
            .set(lag.map_or(-1, |s| (s * 1000.0) as i64));
    }
}

/// The primary and its replicas: where each read goes.
#[derive(Debug)]
pub struct Replicas {
    primary: DbPool,
    members: Vec<Replica>,
    /// Which replica the next read tries first.
    next: AtomicUsize,
    max_lag: Duration,
    metrics: ReplicaMetrics,
}

/// One replica as a probe reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicaReport {
    /// `host:port/database`.
    pub replica: String,
    /// Its state.
    #[serde(flatten)]
    pub health: Health,
}

#[derive(QueryableByName)]
struct Identity {
    #[diesel(sql_type = Text)]
    identity: String,
}

#[derive(QueryableByName)]
struct ReplicaView {
    #[diesel(sql_type = Text)]
    identity: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    lag_micros: Option<i64>,
}

/// What tells two MySQL servers apart: a replica has its own server id, and servers that share
/// one (a misconfiguration) still differ in host name or port.
const IDENTITY: &str = "CONCAT(@@server_id, ' ', @@hostname, ':', @@port)";

impl Replicas {
    /// The replicas of `config` beside `primary`, none connected yet and none used before its
    /// first check.
    pub fn new(primary: DbPool, config: &DatabaseConfig, metrics: ReplicaMetrics) -> Self {
        let members = config
            .replica_urls
            .0
            .iter()
            .map(|url| Replica {
                name: without_credentials(url).to_owned(),
                pool: mysql_pool(url, config),
                health: Mutex::new(Health::Unchecked),
                usable: AtomicBool::new(false),
            })
            .collect();
        Replicas {
            primary,
            members,
            next: AtomicUsize::new(0),
            max_lag: config.replica_max_lag,
            metrics,
        }
    }

    /// Whether any replica is configured.
    pub fn any(&self) -> bool {
        !self.members.is_empty()
    }

    /// Runs `read` where reads that tolerate lag go: a usable replica, else the primary. A
    /// replica that fails to answer leaves the rotation and `read` runs again on the primary;
    /// so does a read the replica refused for a dead connection.
    pub async fn lagging_read<T, F, Fut>(&self, read: F) -> Result<T, DbError>
    where
        F: Fn(DbPool) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        if let Some(replica) = self.pick() {
            match read(replica.pool.clone()).await {
                Err(e) if is_outage(&e) => {
                    replica.set(
                        Health::Down {
                            error: e.to_string(),
                        },
                        &self.metrics,
                    );
                }
                done => {
                    self.metrics.reads.with_label_values(&["replica"]).inc();
                    return done;
                }
            }
        }
        self.metrics.reads.with_label_values(&["primary"]).inc();
        read(self.primary.clone()).await
    }

    /// The next usable replica, in turn.
    fn pick(&self) -> Option<&Replica> {
        let count = self.members.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| &self.members[(start + i) % count])
            .find(|r| r.usable.load(Ordering::Acquire))
    }

    /// Each replica and its state.
    pub fn report(&self) -> Vec<ReplicaReport> {
        self.members
            .iter()
            .map(|r| ReplicaReport {
                replica: r.name.clone(),
                health: r.health.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            })
            .collect()
    }

    /// Each replica's pool state and size, by name.
    pub fn pools(&self) -> Vec<(&str, bb8::State, u32)> {
        self.members
            .iter()
            .map(|r| (r.name.as_str(), r.pool.state(), r.pool.max_size()))
            .collect()
    }

    /// One check: stamps the heartbeat on the primary, then asks every replica its identity
    /// and lag. Without an answer from the primary the replicas are still checked, against
    /// the identity it had at the last check.
    pub async fn check(&self, primary_identity: &mut Option<String>) {
        match tokio::time::timeout(CHECK_TIMEOUT, self.beat()).await {
            Ok(Ok(identity)) => *primary_identity = Some(identity),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot stamp the replicas' heartbeat"),
            Err(_) => tracing::warn!("cannot stamp the replicas' heartbeat: no answer"),
        }
        let checks = self.members.iter().map(|replica| async {
            let health = match tokio::time::timeout(CHECK_TIMEOUT, view(&replica.pool)).await {
                Err(_) => Health::Down {
                    error: format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
                },
                Ok(Err(e)) => Health::Down {
                    error: e.to_string(),
                },
                Ok(Ok(view)) => self.judge(&view, primary_identity.as_deref()),
            };
            replica.set(health, &self.metrics);
        });
        futures_util::future::join_all(checks).await;
    }

    fn judge(&self, view: &ReplicaView, primary_identity: Option<&str>) -> Health {
        if primary_identity == Some(view.identity.as_str()) {
            return Health::NotAReplica {
                reason: format!(
                    "the same server as DATABASE_URL (server id, host and port {})",
                    view.identity
                ),
            };
        }
        // A stamp from the future (clocks out of step) counts as no lag.
        let lag = view
            .lag_micros
            .map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0)));
        match lag {
            Some(lag) if lag <= self.max_lag => Health::Ok {
                lag_seconds: lag.as_secs_f64(),
            },
            lag => Health::Lagging {
                lag_seconds: lag.map(|l| l.as_secs_f64()),
            },
        }
    }

    /// Stamps the heartbeat row with the primary's clock; answers the primary's identity.
    async fn beat(&self) -> Result<String, DbError> {
        use diesel_async::RunQueryDsl as _;
        crate::with_conn!(&self.primary, |c| {
            let stamp = diesel::sql_query(
                "UPDATE replica_heartbeat SET beat = UTC_TIMESTAMP(6) WHERE id = 1",
            );
            match stamp.execute(c).await {
                Ok(_) => {
                    diesel::sql_query(format!("SELECT {IDENTITY} AS identity"))
                        .get_result::<Identity>(c)
                        .await
                }
                Err(e) => Err(e),
            }
        })
        .map(|row| row.identity)
    }

    /// Checks the replicas every [`CHECK_EVERY`] until aborted; the first check runs at once.
    pub fn spawn_checks(self: Arc<Self>) -> Option<JoinHandle<()>> {
        if !self.any() {
            return None;
        }
        Some(tokio::spawn(async move {
            let mut primary_identity = None;
            let mut every = tokio::time::interval(CHECK_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                self.check(&mut primary_identity).await;
            }
        }))
    }
}

/// A replica's identity and the age of the newest heartbeat it holds (by its own clock).
async fn view(pool: &DbPool) -> Result<ReplicaView, DbError> {
    use diesel_async::RunQueryDsl as _;
    crate::with_conn!(pool, |c| {
        diesel::sql_query(format!(
            "SELECT {IDENTITY} AS identity, \
             (SELECT CAST(TIMESTAMPDIFF(MICROSECOND, beat, UTC_TIMESTAMP(6)) AS SIGNED) \
              FROM replica_heartbeat WHERE id = 1) AS lag_micros"
        ))
        .get_result::<ReplicaView>(c)
        .await
    })
}

/// Whether `err` says the server did not answer (rather than refusing the statement).
fn is_outage(err: &DbError) -> bool {
    match err {
        DbError::Checkout(_) => true,
        DbError::Query(e) => super::is_transient(e),
    }
}
