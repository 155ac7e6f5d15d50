//! A MySQL primary with a real replica, for the read-replica tests: `TEST_DATABASE_PRIMARY_URL`
//! (a `mysql://` server with binary logging) and `TEST_DATABASE_REPLICA_URLS` (its replicas,
//! comma-separated), both without a database name. `.ci/cluster/mariadb` starts such a pair;
//! `REQUIRE_REPLICAS=1` makes a test that cannot have them fail instead of skipping.
//!
//! Also what those tests do to a replica behind the server's back: write into its copy of the
//! test database, stop its replication, or cut it off through a [`Proxy`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncMysqlConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Whether the replica tests can run here; panics when they cannot but `REQUIRE_REPLICAS=1`.
pub fn available() -> bool {
    let available = primary().is_some() && !servers().is_empty();
    if !available {
        assert!(
            !std::env::var("REQUIRE_REPLICAS").is_ok_and(|v| v == "1"),
            "REQUIRE_REPLICAS=1 but TEST_DATABASE_PRIMARY_URL or TEST_DATABASE_REPLICA_URLS is unset"
        );
        eprintln!(
            "skipped: set TEST_DATABASE_PRIMARY_URL and TEST_DATABASE_REPLICA_URLS to run the read-replica tests"
        );
    }
    available
}

/// The replicated primary's server URL.
pub fn primary() -> Option<String> {
    std::env::var("TEST_DATABASE_PRIMARY_URL").ok()
}

/// The replicas' server URLs.
pub fn servers() -> Vec<String> {
    std::env::var("TEST_DATABASE_REPLICA_URLS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Held by a test that changes a replica for every test (stopping its replication): such
/// tests, and those that depend on the replica following, take turns.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

async fn connect(server: &str) -> AsyncMysqlConnection {
    AsyncMysqlConnection::establish(server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the replica test server {server}: {e}"))
}

/// Waits until every replica holds database `name`'s tables, as the primary's migrations made
/// them.
pub async fn wait_for_tables(name: &str) {
    use diesel_async::RunQueryDsl as _;
    for server in servers() {
        let mut conn = connect(&server).await;
        let probe = format!("SELECT id FROM `{name}`.replica_heartbeat");
        let mut tries = 0;
        while diesel::sql_query(&probe).execute(&mut conn).await.is_err() {
            tries += 1;
            assert!(
                tries < 300,
                "{server} did not replicate database {name} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs `statements` on the first replica itself, kept out of its binary log (the server's
/// copy then differs from the primary's, which is how a test tells where a read ran).
pub async fn on_replica(statements: &[String]) {
    use diesel_async::RunQueryDsl as _;
    let server = servers().into_iter().next().expect("a replica");
    let mut conn = connect(&server).await;
    diesel::sql_query("SET SESSION sql_log_bin = 0")
        .execute(&mut conn)
        .await
        .expect("sql_log_bin");
    for statement in statements {
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Stops (`false`) or restarts (`true`) the first replica's replication.
pub async fn replicate(on: bool) {
    let statement = if on { "START SLAVE" } else { "STOP SLAVE" };
    on_replica(&[statement.to_owned()]).await;
}

/// A row of any query, for counting them.
#[derive(diesel::QueryableByName)]
struct AnyRow {}

/// Waits until `statement` returns a row on the first replica: what the primary wrote has
/// arrived.
pub async fn wait_for_row(statement: &str) {
    use diesel_async::RunQueryDsl as _;
    let server = servers().into_iter().next().expect("a replica");
    let mut conn = connect(&server).await;
    for _ in 0..300 {
        // `execute` counts the rows a statement changed, not those it selected.
        if diesel::sql_query(statement)
            .load::<AnyRow>(&mut conn)
            .await
            .is_ok_and(|rows| !rows.is_empty())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no row on the replica within 30 s: {statement}");
}

/// A TCP proxy before a replica that a test can cut off (every connection closed, new ones
/// refused at once) and let through again, as a replica that goes down and comes back.
pub struct Proxy {
    /// `mysql://…?prefer_socket=false` of the server, through the proxy.
    pub url: String,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    /// Connections through the proxy still open.
    live: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy before the first replica, letting connections through.
    pub async fn before_replica() -> Proxy {
        Proxy::before(&servers().into_iter().next().expect("a replica")).await
    }

    /// A proxy before `server` (a `mysql://` URL without a database), letting connections
    /// through; its [`Proxy::url`] has the same credentials.
    pub async fn before(server: &str) -> Proxy {
        let upstream = user_api::config::without_credentials(server).to_owned();
        let credentials = server
            .strip_prefix("mysql://")
            .and_then(|rest| rest.rsplit_once('@'))
            .map(|(credentials, _)| format!("{credentials}@"))
            .unwrap_or_default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let live = Arc::new(AtomicUsize::new(0));
        let task = {
            let open = open.clone();
            let cut = cut.clone();
            let live = live.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !open.load(Ordering::Acquire) {
                        continue; // dropped: closed at once
                    }
                    let upstream = upstream.clone();
                    let mut cut = cut.subscribe();
                    live.fetch_add(1, Ordering::AcqRel);
                    let live = live.clone();
                    tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.changed() => {}
                            }
                        }
                        live.fetch_sub(1, Ordering::AcqRel);
                    });
                }
            })
        };
        Proxy {
            // Else the MySQL client, finding the server on this host, would leave the proxy
            // for the server's Unix socket.
            url: format!("mysql://{credentials}{addr}?prefer_socket=false"),
            open,
            cut,
            live,
            task,
        }
    }

    /// Cuts the replica off (`false`: returns once every connection through the proxy is
    /// closed) or lets it through again (`true`).
    pub async fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Release);
        if !open {
            self.cut.send_modify(|n| *n += 1);
            while self.live.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
