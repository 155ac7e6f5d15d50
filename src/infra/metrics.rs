//! Prometheus metrics, in a registry of the application's own (no global recorder): requests
//! and latency per REST route and per GraphQL operation, pool usage, session-store errors, and
//! the mail outbox.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Distinct GraphQL operation names tracked before further names count as `other`: the names
/// come from clients, and every label value costs memory for the life of the process.
const MAX_OPERATION_NAMES: usize = 200;

/// Latency buckets, in seconds: sub-millisecond reads up to slow argon2 queues.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The application's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    graphql_operations: IntCounterVec,
    graphql_duration: HistogramVec,
    /// Session-store calls that failed because the store could not be reached.
    pub session_store_errors: IntCounter,
    db_pool: IntGaugeVec,
    redis_pool: IntGaugeVec,
    /// Each tracked operation's series, resolved once: looking a series up by its label values
    /// hashes them every time, a visible share of a small GraphQL request's work.
    operations: Mutex<HashMap<String, OperationSeries>>,
    /// The series of operations without a name.
    anonymous: OperationSeries,
    /// The mail outbox and its delivery.
    pub mail: MailMetrics,
    /// Account events.
    pub events: EventMetrics,
    /// WebSocket connections open now (GraphQL subscriptions).
    pub ws_connections: IntGauge,
    /// The database's read replicas.
    pub replicas: ReplicaMetrics,
    replica_pools: IntGaugeVec,
}

/// The database replicas' figures.
#[derive(Debug, Clone)]
pub struct ReplicaMetrics {
    /// 1 while a replica serves reads, 0 while it is skipped; by replica.
    pub up: IntGaugeVec,
    /// A replica's lag at its last check, in milliseconds (-1 unknown); by replica.
    pub lag: IntGaugeVec,
    /// Reads that tolerate lag, by where they ran (`replica`, `primary`).
    pub reads: IntCounterVec,
}

/// The account events' counters, for this process.
#[derive(Debug, Clone)]
pub struct EventMetrics {
    /// Events published.
    pub published: IntCounter,
    /// Events that could not be sent to Redis, and losses of the relay's connection.
    pub relay_failures: IntCounter,
}

/// The mail outbox's figures: the gauges count rows in the shared outbox (every replica
/// reports the same), the counters this process's deliveries.
#[derive(Debug, Clone)]
pub struct MailMetrics {
    /// Mails waiting for delivery (due or backing off).
    pub pending: IntGauge,
    /// Mails whose attempts ran out.
    pub failed: IntGauge,
    /// Mails this process handed to the SMTP server (or wrote as files).
    pub sent: IntCounter,
    /// Delivery attempts of this process that failed.
    pub attempt_failures: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let graphql_operations = IntCounterVec::new(
            Opts::new(
                "graphql_operations_total",
                "GraphQL operations by operation name and outcome",
            ),
            &["operation", "outcome"],
        )?;
        let graphql_duration = HistogramVec::new(
            HistogramOpts::new(
                "graphql_operation_duration_seconds",
                "GraphQL operation latency by operation name",
            )
            .buckets(BUCKETS.to_vec()),
            &["operation"],
        )?;
        let session_store_errors = IntCounter::new(
            "session_store_errors_total",
            "Session-store calls that failed to reach the store",
        )?;
        let db_pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database pool connections by state (idle, in_use, max)",
            ),
            &["state"],
        )?;
        let redis_pool = IntGaugeVec::new(
            Opts::new(
                "redis_pool_connections",
                "Redis pool connections by state (idle, in_use, max)",
            ),
            &["state"],
        )?;
        let mail = MailMetrics {
            pending: IntGauge::new("mail_pending", "Mails in the outbox waiting for delivery")?,
            failed: IntGauge::new(
                "mail_failed",
                "Mails in the outbox whose delivery attempts ran out",
            )?,
            sent: IntCounter::new(
                "mail_sent_total",
                "Mails this process delivered to the SMTP server",
            )?,
            attempt_failures: IntCounter::new(
                "mail_delivery_failures_total",
                "Mail delivery attempts of this process that failed",
            )?,
        };
        let events = EventMetrics {
            published: IntCounter::new(
                "account_events_published_total",
                "Account events this process published",
            )?,
            relay_failures: IntCounter::new(
                "account_event_relay_failures_total",
                "Account events that did not reach Redis, and losses of the relay's connection",
            )?,
        };
        let ws_connections = IntGauge::new(
            "ws_connections",
            "WebSocket connections open (GraphQL subscriptions)",
        )?;
        let replicas = ReplicaMetrics {
            up: IntGaugeVec::new(
                Opts::new(
                    "db_replica_up",
                    "1 while a database replica serves reads, 0 while it is skipped",
                ),
                &["replica"],
            )?,
            lag: IntGaugeVec::new(
                Opts::new(
                    "db_replica_lag_milliseconds",
                    "A database replica's lag behind the primary at its last check (-1 unknown)",
                ),
                &["replica"],
            )?,
            reads: IntCounterVec::new(
                Opts::new(
                    "db_lagging_reads_total",
                    "Reads that tolerate lag, by where they ran (replica, primary)",
                ),
                &["target"],
            )?,
        };
        let replica_pools = IntGaugeVec::new(
            Opts::new(
                "db_replica_pool_connections",
                "Database replica pool connections by replica and state (idle, in_use, max)",
            ),
            &["replica", "state"],
        )?;
        registry.register(Box::new(replicas.up.clone()))?;
        registry.register(Box::new(replicas.lag.clone()))?;
        registry.register(Box::new(replicas.reads.clone()))?;
        registry.register(Box::new(replica_pools.clone()))?;
        registry.register(Box::new(events.published.clone()))?;
        registry.register(Box::new(events.relay_failures.clone()))?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(mail.pending.clone()))?;
        registry.register(Box::new(mail.failed.clone()))?;
        registry.register(Box::new(mail.sent.clone()))?;
        registry.register(Box::new(mail.attempt_failures.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(graphql_operations.clone()))?;
        registry.register(Box::new(graphql_duration.clone()))?;
        registry.register(Box::new(session_store_errors.clone()))?;
        registry.register(Box::new(db_pool.clone()))?;
        registry.register(Box::new(redis_pool.clone()))?;
        let anonymous = OperationSeries::of("anonymous", &graphql_operations, &graphql_duration);
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            graphql_operations,
            graphql_duration,
            session_store_errors,
            db_pool,
            redis_pool,
            anonymous,
            operations: Mutex::new(HashMap::new()),
            mail,
            events,
            ws_connections,
            replicas,
            replica_pools,
        })
    }

    /// Records one GraphQL operation.
    pub fn observe_graphql(&self, operation: Option<&str>, ok: bool, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        let Some(name) = operation else {
            self.anonymous.observe(ok, seconds);
            return;
        };
        let series = {
            let Ok(mut known) = self.operations.lock() else {
                return;
            };
            match known.get(name) {
                Some(series) => series.clone(),
                None => {
                    let label = if known.len() < MAX_OPERATION_NAMES {
                        name
                    } else {
                        "other"
                    };
                    let series = OperationSeries::of(
                        label,
                        &self.graphql_operations,
                        &self.graphql_duration,
                    );
                    if label == name {
                        known.insert(name.to_owned(), series.clone());
                    }
                    series
                }
            }
        };
        series.observe(ok, seconds);
    }
}

/// One GraphQL operation's series: its outcomes and its latency.
#[derive(Debug, Clone)]
struct OperationSeries {
    ok: IntCounter,
    error: IntCounter,
    duration: Histogram,
}

impl OperationSeries {
    fn of(label: &str, operations: &IntCounterVec, duration: &HistogramVec) -> Self {
        OperationSeries {
            ok: operations.with_label_values(&[label, "ok"]),
            error: operations.with_label_values(&[label, "error"]),
            duration: duration.with_label_values(&[label]),
        }
    }

    fn observe(&self, ok: bool, seconds: f64) {
        if ok { &self.ok } else { &self.error }.inc();
        self.duration.observe(seconds);
    }
}

fn set_pool(gauge: &IntGaugeVec, state: bb8::State, max: u32) {
    gauge
        .with_label_values(&["idle"])
        .set(i64::from(state.idle_connections));
    gauge
        .with_label_values(&["in_use"])
        .set(i64::from(state.connections - state.idle_connections));
    gauge.with_label_values(&["max"]).set(i64::from(max));
}

/// The label of an HTTP method: itself if standard, else `OTHER`.
fn method_label(method: &str) -> &str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    if STANDARD.contains(&method) {
        method
    } else {
        "OTHER"
    }
}

impl Metrics {
    /// Records one HTTP request to `route` (the matched pattern, not the path). A method
    /// outside the standard ones is labelled `OTHER`: HTTP lets a client invent any token as
    /// a method, and each new label value would be a series kept for good.
    pub fn observe_http(&self, route: &str, method: &str, status: &str, started: Instant) {
        let method = method_label(method);
        self.http_requests
            .with_label_values(&[route, method, status])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Every metric in the Prometheus text format, with the pools' gauges as `db`, each of
    /// `replicas` (by name) and `redis` (state and size) report them now.
    pub fn render(
        &self,
        db: (bb8::State, u32),
        replicas: &[(&str, bb8::State, u32)],
        redis: Option<(bb8::State, u32)>,
    ) -> anyhow::Result<Vec<u8>> {
        set_pool(&self.db_pool, db.0, db.1);
        for (name, state, max) in replicas {
            let gauge = |which: &str, value: u32| {
                self.replica_pools
                    .with_label_values(&[name, which])
                    .set(i64::from(value));
            };
            gauge("idle", state.idle_connections);
            gauge("in_use", state.connections - state.idle_connections);
            gauge("max", *max);
        }
        if let Some((state, max)) = redis {
            set_pool(&self.redis_pool, state, max);
        }
        let mut body = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut body)?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use prometheus::core::Collector as _;

    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        let metrics = Metrics::new().unwrap();
        for i in 0..20 {
            metrics.observe_http("/users", &format!("FOO{i}"), "405", Instant::now());
        }
        metrics.observe_http("/users", "GET", "200", Instant::now());
        let other = metrics
            .http_requests
            .with_label_values(&["/users", "OTHER", "405"])
            .get();
        assert_eq!(other, 20);
        let series: usize = metrics
            .http_requests
            .collect()
            .iter()
            .map(|family| family.get_metric().len())
            .sum();
        assert_eq!(
            series, 2,
            "one series for every invented method, one for GET"
        );
    }
}
