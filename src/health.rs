//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::sessions::SessionStore as _;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database and the session store answer; 503 naming what is down.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, sessions) = tokio::join!(state.db.ping(), state.sessions.ping());
    let word = |ok: bool| if ok { "ok" } else { "down" };
    let ready = db.is_ok() && sessions.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "database": word(db.is_ok()),
        "sessions": word(sessions.is_ok()),
        "session_store": state.sessions.kind(),
    });
    (status, Json(body))
}
