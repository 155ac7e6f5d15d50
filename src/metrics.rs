//! Prometheus metrics, in a registry of the application's own (no global recorder): requests
//! and latency per REST route and per GraphQL operation, pool usage, session-store errors.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry,
};

use crate::state::AppState;

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

/// `GET /metrics`: every metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    set_pool(&metrics.db_pool, state.db.state(), state.db.max_size());
    if let Some((pool_state, max)) = state.sessions.redis_pool_state() {
        set_pool(&metrics.redis_pool, pool_state, max);
    }
    let encoder = prometheus::TextEncoder::new();
    let mut body = Vec::new();
    if let Err(e) = encoder.encode(&metrics.registry.gather(), &mut body) {
        tracing::error!(error = %e, "cannot encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
}

/// Middleware counting requests and timing them by matched route.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
