//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database and the session store answer; 503 naming what is down. It
/// also lists each database replica with its state and lag, and on a Redis Cluster each node
/// with its role and state.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (db, sessions, cluster) = tokio::join!(
        state.dependencies.ping_database(),
        state.sign_ins.ping_store(),
        state.dependencies.redis_cluster_state()
    );
    let word = |ok: bool| if ok { "ok" } else { "down" };
    let ready = db.is_ok() && sessions.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "database": word(db.is_ok()),
        "sessions": word(sessions.is_ok()),
        "session_store": state.sign_ins.store_kind(),
    });
    // On a Redis Cluster, each node as the cluster sees it: a replica down leaves the server
    // ready (its master serves), and says so here.
    // Each read replica and its state: one down or behind leaves the server ready (reads go
    // to the primary), and says so here.
    let replicas = state.dependencies.replicas();
    if replicas.any() {
        body["database_replicas"] = json!(replicas.report());
    }
    if let Some(nodes) = cluster {
        body["redis_nodes"] = match nodes {
            Ok(nodes) => json!(nodes),
            Err(_) => json!("unknown: no node answered"),
        };
    }
    (status, Json(body))
}

/// The `healthcheck` subcommand: asks the server listening on `bind` for `/readyz` and
/// succeeds on 200. Lets a container image without curl check itself.
pub async fn probe(bind: std::net::SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await?;
        head.truncate(n);
        anyhow::Ok(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {addr} within 5 s"))??;
    let status_line = String::from_utf8_lossy(&head);
    if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        anyhow::bail!(
            "{addr} is not ready: {}",
            status_line.lines().next().unwrap_or("")
        )
    }
}
