//! Serving the router on a TCP listener with hyper's HTTP/1.1 server, with the limits a
//! public listener needs and `axum::serve` does not set: a deadline for each request head and
//! a cap on its size.
//!
//! hyper's HTTP/1.1 builder is used directly rather than hyper-util's `auto` builder. The
//! server speaks only HTTP/1.1 (HTTP/2 is not compiled in), and the `auto` builder first reads
//! the opening bytes to tell the versions apart, with no deadline of its own: a client that
//! connects and sends nothing would keep its connection for ever, before hyper's header timer
//! even starts. hyper-util's `GracefulShutdown` cannot watch an HTTP/1.1 connection with
//! upgrades, so connections are drained here with a watch channel instead.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::config::HttpConfig;

/// The largest request head (request line and headers) accepted; a larger one is answered
/// 431 and its connection closed. Real heads are a few hundred bytes; this bounds what a
/// client can make the server read and parse before any route runs.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// hyper's read buffer per connection. A head still incomplete when it is full is refused
/// (431), so a client cannot make the server buffer more than this while it trickles a head.
const MAX_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets each
/// connection finish the request it is serving (idle ones close at once), and returns when
/// all are closed.
///
/// Each request carries its peer address as `ConnectInfo<SocketAddr>`, which per-address
/// rate limits key on. Connections may be upgraded (WebSocket). A client gets
/// `HTTP_HEADER_TIMEOUT` seconds to send each request head, including the wait for the next
/// request on a keep-alive connection, after which its connection is closed.
pub async fn serve<F>(mut listener: TcpListener, router: Router, config: &HttpConfig, shutdown: F)
where
    F: Future<Output = ()>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_timeout))
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_READ_BUFFER_BYTES);
    let (drain, _) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            // axum's accept loop: it retries after the errors a busy server meets (too many
            // open files, a connection reset before it was accepted).
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut draining = drain.subscribe();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = draining.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                // A client that times out, hangs up or sends garbage: routine, not an error
                // of the server.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
        // Reap finished connections as new ones arrive, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = drain.send(());
    while connections.join_next().await.is_some() {}
}
