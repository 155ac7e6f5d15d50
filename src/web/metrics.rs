//! `GET /metrics`: the registry's metrics in the Prometheus text format (the requests are
//! counted by [`access_log`](super::access_log)).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /metrics`: every metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let dependencies = &state.dependencies;
    let replicas = dependencies.replicas().pools();
    match state.metrics.render(
        dependencies.database_pool(),
        &replicas,
        dependencies.redis_pool(),
    ) {
        Ok(body) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
