//! Prometheus metrics, in a registry of the application's own (no global recorder): requests
//! and latency per REST route and per GraphQL operation, pool usage, session-store errors, and
//! the mail outbox.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
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
    operation_names: Mutex<HashSet<String>>,
    /// The mail outbox and its delivery.
    pub mail: MailMetrics,
    /// Account events.
    pub events: EventMetrics,
    /// WebSocket connections open now (GraphQL subscriptions).
    pub ws_connections: IntGauge,
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
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            graphql_operations,
            graphql_duration,
            session_store_errors,
            db_pool,
            redis_pool,
            operation_names: Mutex::new(HashSet::new()),
            mail,
            events,
            ws_connections,
        })
    }

    /// Records one GraphQL operation.
    pub fn observe_graphql(&self, operation: Option<&str>, ok: bool, started: Instant) {
        let name = self.operation_label(operation);
        let outcome = if ok { "ok" } else { "error" };
        self.graphql_operations
            .with_label_values(&[name.as_str(), outcome])
            .inc();
        self.graphql_duration
            .with_label_values(&[name.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }

    fn operation_label(&self, operation: Option<&str>) -> String {
        let Some(name) = operation else {
            return "anonymous".to_owned();
        };
        let Ok(mut seen) = self.operation_names.lock() else {
            return "other".to_owned();
        };
        if seen.contains(name) {
            return name.to_owned();
        }
        if seen.len() < MAX_OPERATION_NAMES {
            seen.insert(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
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

impl Metrics {
    /// Records one HTTP request to `route` (the matched pattern, not the path).
    pub fn observe_http(&self, route: &str, method: &str, status: &str, started: Instant) {
        self.http_requests
            .with_label_values(&[route, method, status])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Every metric in the Prometheus text format, with the pools' gauges as `db` and `redis`
    /// (state and size) report them now.
    pub fn render(
        &self,
        db: (bb8::State, u32),
        redis: Option<(bb8::State, u32)>,
    ) -> anyhow::Result<Vec<u8>> {
        set_pool(&self.db_pool, db.0, db.1);
        if let Some((state, max)) = redis {
            set_pool(&self.redis_pool, state, max);
        }
        let mut body = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut body)?;
        Ok(body)
    }
}
