//! One middleware that sees every routed request end: it counts and times it in the metrics,
//! writes the access log line (method, route, status, duration; the request id comes from the
//! request's span), and logs the server-side failures the adapters reported — once, here,
//! rather than wherever an error was made.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ServerFault;
use crate::state::AppState;

/// The server-side failures behind a response, attached by the adapter that wrote it (a
/// GraphQL batch may carry several).
#[derive(Debug, Clone, Default)]
pub struct Faults(pub Vec<ServerFault>);

impl Faults {
    /// Adds `fault` to the faults `response` carries.
    pub fn attach(response: &mut Response, fault: ServerFault) {
        let extensions = response.extensions_mut();
        match extensions.get_mut::<Faults>() {
            Some(faults) => faults.0.push(fault),
            None => {
                extensions.insert(Faults(vec![fault]));
            }
        }
    }
}

/// Middleware: metrics, the access log line, and the faults' log lines of each request.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let status = response.status();
    state
        .metrics
        .observe_http(&route, method.as_str(), status.as_str(), started);
    if let Some(Faults(faults)) = response.extensions_mut().remove::<Faults>() {
        for fault in faults {
            if fault.outage {
                tracing::warn!(error = %fault.cause, "{}", fault.what);
            } else {
                tracing::error!(error = %fault.cause, "{}", fault.what);
            }
        }
    }
    tracing::info!(
        method = %method,
        route = %route,
        status = status.as_u16(),
        duration_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}
