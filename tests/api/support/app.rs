//! The app harness: [`TestApp`] runs the real router (built by the production builder) on an
//! ephemeral port, against its own database and Redis key prefix, and [`TestAppBuilder`] sets,
//! as typed values, whatever a test changes from the defaults.
//!
//! Backends: `Sqlite` (a temp-file database with sessions in it) always runs; `MysqlRedis`
//! runs when `TEST_DATABASE_URL` (a `mysql://` URL of a server; a fresh `test_<uuid>` database
//! is created and dropped) and `TEST_REDIS_URL` are set, and skips otherwise — unless
//! `REQUIRE_SERVICES=1`, when it fails. `MysqlCluster` is the same with the Redis Cluster of
//! `TEST_REDIS_CLUSTER_URL` (a `redis+cluster://` URL) instead, required by
//! `REQUIRE_CLUSTER=1`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::ops::Deref;
use std::sync::Once;
use std::time::Duration;

use diesel_async::{AsyncConnection as _, AsyncMysqlConnection, RunQueryDsl as _};
use ipnet::IpNet;
use secrecy::{ExposeSecret as _, SecretString};
use tracing_subscriber::EnvFilter;
use user_api::config::{Config, DatabaseUrl, Rate, RateLimit, SmtpUrl, TrustedProxies};
use user_api::{AppState, app, db};

use super::client::ApiClient;
use super::mailbox::Mailbox;
use super::replicas;
use super::tokens::random_secret;

/// Which stores a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, sessions in the database.
    Sqlite,
    /// MySQL (MariaDB here) and Redis.
    MysqlRedis,
    /// MySQL and a Redis Cluster.
    MysqlCluster,
}

impl Backend {
    /// Whether tests can run on this backend here: SQLite always, MySQL + Redis when their
    /// URLs are set. Panics when they are not but `REQUIRE_SERVICES=1` says they must be.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::MysqlCluster => {
                let available = Services::from_env(self).is_some();
                if !available {
                    assert!(
                        !std::env::var("REQUIRE_CLUSTER").is_ok_and(|v| v == "1"),
                        "REQUIRE_CLUSTER=1 but TEST_DATABASE_URL or TEST_REDIS_CLUSTER_URL is unset"
                    );
                    eprintln!(
                        "skipped: set TEST_DATABASE_URL and TEST_REDIS_CLUSTER_URL to run the MySQL + Redis Cluster third"
                    );
                }
                available
            }
            Backend::MysqlRedis => {
                let available = Services::from_env(self).is_some();
                if !available {
                    assert!(
                        !services_required(),
                        "REQUIRE_SERVICES=1 but TEST_DATABASE_URL or TEST_REDIS_URL is unset"
                    );
                    eprintln!(
                        "skipped: set TEST_DATABASE_URL and TEST_REDIS_URL to run the MySQL + Redis half"
                    );
                }
                available
            }
        }
    }

    /// Whether the backend keeps sessions, limits and events in Redis.
    pub fn has_redis(self) -> bool {
        matches!(self, Backend::MysqlRedis | Backend::MysqlCluster)
    }
}

/// Where the MySQL + Redis backends' services are.
struct Services {
    /// The MySQL server's URL without a database name: each test creates its own.
    mysql: String,
    redis: String,
}

impl Services {
    /// The services of `backend`: its Redis is `TEST_REDIS_CLUSTER_URL` for the cluster
    /// backend, `TEST_REDIS_URL` otherwise.
    fn from_env(backend: Backend) -> Option<Services> {
        let redis_variable = match backend {
            Backend::MysqlCluster => "TEST_REDIS_CLUSTER_URL",
            Backend::Sqlite | Backend::MysqlRedis => "TEST_REDIS_URL",
        };
        let (Ok(database), Ok(redis)) = (
            std::env::var("TEST_DATABASE_URL"),
            std::env::var(redis_variable),
        ) else {
            return None;
        };
        // The server part of the URL: any database name in it is replaced by the test's own.
        let after_scheme = database
            .strip_prefix("mysql://")
            .expect("TEST_DATABASE_URL must be a mysql:// URL");
        let mysql = match after_scheme.find('/') {
            Some(i) => format!("mysql://{}", &after_scheme[..i]),
            None => database.clone(),
        };
        Some(Services { mysql, redis })
    }
}

fn services_required() -> bool {
    std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// At most `count` attempts a minute, as a rate limit setting.
pub fn per_minute(count: u32) -> RateLimit {
    rate(count, Duration::from_secs(60))
}

/// At most `count` attempts an hour, as a rate limit setting.
pub fn per_hour(count: u32) -> RateLimit {
    rate(count, Duration::from_secs(3600))
}

/// A rate limit switched off (`off` in the configuration).
pub const NO_LIMIT: RateLimit = RateLimit(None);

fn rate(count: u32, period: Duration) -> RateLimit {
    let count = NonZeroU32::new(count).expect("a rate allows at least one attempt");
    RateLimit(Some(Rate { count, period }))
}

/// Which Redis a server's session store and rate limits use.
#[derive(Debug, Clone)]
enum Redis {
    /// The backend's own: none with SQLite; with MySQL, `TEST_REDIS_URL` under the test's
    /// own key prefix.
    Own,
    /// A URL nothing listens on.
    Unreachable,
    /// A Redis Cluster URL whose nodes nothing listens on.
    UnreachableCluster,
    /// `TEST_REDIS_URL` under another server's key prefix (MySQL + Redis only).
    SharedPrefix(String),
}

/// The settings of a test server, each with a typed setter; what a test does not set is the
/// production default, except where [`TestApp::builder`] says otherwise.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until it spawns a server"]
pub struct TestAppBuilder {
    config: Config,
    redis: Redis,
    /// Another server's database, shared like two replicas share theirs.
    shared_database: Option<DatabaseUrl>,
    /// Another server's SMTP server, to deliver to instead of one of its own.
    smtp_url: Option<String>,
    /// Another server's `JWT_SECRET`, to accept its tokens.
    secret: Option<String>,
    /// Read replicas: the test's database goes on the replicated primary of
    /// [`replicas::primary`], and these servers' copies of it become `DATABASE_REPLICA_URLS`.
    replica_servers: Option<Vec<String>>,
}

impl TestAppBuilder {
    /// `DB_POOL_SIZE`: connections in the database pool.
    pub fn db_pool_size(mut self, size: u32) -> Self {
        self.config.database.pool_size = Some(size);
        self
    }

    /// Read replicas (MySQL + Redis only, with [`replicas::available`]): the test's database is
    /// created on `TEST_DATABASE_PRIMARY_URL`, and its copy on each of `servers` (`mysql://`
    /// URLs without a database: those of `TEST_DATABASE_REPLICA_URLS`, or a proxy before one)
    /// is a replica. The server starts once every real replica holds the database's tables.
    pub fn read_replicas(mut self, servers: Vec<String>) -> Self {
        self.replica_servers = Some(servers);
        self
    }

    /// `REPLICA_MAX_LAG`: how far behind a replica may be and still serve reads.
    pub fn replica_max_lag(mut self, lag: Duration) -> Self {
        self.config.database.replica_max_lag = lag;
        self
    }

    /// `REDIS_REVOCATION_REPLICAS`: Redis replicas that must confirm each revocation.
    pub fn redis_revocation_replicas(mut self, replicas: u32) -> Self {
        self.config.redis.revocation_replicas = Some(replicas);
        self
    }

    /// `ACCESS_TOKEN_TTL`: how long an access token lives.
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.config.auth.access_token_ttl = ttl.as_secs();
        self
    }

    /// `REFRESH_TOKEN_TTL`: how long a refresh token lives.
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.config.refresh.token_ttl = ttl.as_secs();
        self
    }

    /// `REFRESH_REUSE_GRACE`: how long a rotated refresh token may be presented again.
    pub fn refresh_reuse_grace(mut self, grace: Duration) -> Self {
        self.config.refresh.reuse_grace = grace.as_secs();
        self
    }

    /// `HTTP_HEADER_TIMEOUT`: how long a client has to send a request head.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.config.http.header_timeout = timeout.as_secs();
        self
    }

    /// `MAX_BODY_BYTES`: the largest request body accepted.
    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.config.http.max_body_bytes = bytes;
        self
    }

    /// `SWAGGER_PERSIST_AUTHORIZATION`: whether Swagger UI keeps its token across page loads.
    pub fn swagger_persist_authorization(mut self, persist: bool) -> Self {
        self.config.http.swagger_persist_authorization = persist;
        self
    }

    /// `TRUSTED_PROXIES`: the proxies whose `X-Forwarded-For` names the client.
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpNet>) -> Self {
        self.config.rate_limit.trusted_proxies = TrustedProxies(proxies.into_iter().collect());
        self
    }

    /// `RATE_LIMIT_LOGIN_PER_USERNAME`.
    pub fn login_per_username(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.login_per_username = limit;
        self
    }

    /// `RATE_LIMIT_MFA_FAILURES_PER_USER`.
    pub fn mfa_failures_per_user(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.mfa_failures_per_user = limit;
        self
    }

    /// `RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME`.
    pub fn login_failures_per_username(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.login_failures_per_username = limit;
        self
    }

    /// `RATE_LIMIT_LOGIN_PER_IP`.
    pub fn login_per_ip(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.login_per_ip = limit;
        self
    }

    /// `RATE_LIMIT_REGISTER_PER_IP`.
    pub fn register_per_ip(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.register_per_ip = limit;
        self
    }

    /// `RATE_LIMIT_REFRESH_PER_SESSION`.
    pub fn refresh_per_session(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.refresh_per_session = limit;
        self
    }

    /// `RATE_LIMIT_EMAIL_CHANGE_PER_USER`.
    pub fn email_change_per_user(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.email_change_per_user = limit;
        self
    }

    /// `RATE_LIMIT_PASSWORD_RESET_PER_EMAIL`.
    pub fn password_reset_per_email(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.password_reset_per_email = limit;
        self
    }

    /// `RATE_LIMIT_VERIFICATION_PER_USER`.
    pub fn verification_per_user(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.verification_per_user = limit;
        self
    }

    /// `RATE_LIMIT_PERSISTED_QUERIES_PER_IP`.
    pub fn persisted_queries_per_ip(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit.persisted_queries_per_ip = limit;
        self
    }

    /// `REQUIRE_EMAIL_VERIFICATION`.
    pub fn require_email_verification(mut self, required: bool) -> Self {
        self.config.lifecycle.require_email_verification = required;
        self
    }

    /// `MAIL_MAX_ATTEMPTS`.
    pub fn mail_max_attempts(mut self, attempts: u32) -> Self {
        self.config.mail.max_attempts = attempts;
        self
    }

    /// `EMAIL_LINK_BASE`: where links in mails point.
    pub fn email_link_base(mut self, base: &str) -> Self {
        self.config.lifecycle.email_link_base = Some(base.to_owned());
        self
    }

    /// Uses `other`'s database, as a second replica of it would (the first server to go
    /// removes it). Each server keeps its own Redis key prefix.
    pub fn sharing_database_with(mut self, other: &TestApp) -> Self {
        self.shared_database = Some(other.state.config.database.url.clone());
        self
    }

    /// A second replica of `other`: its database, its Redis key prefix (with MySQL + Redis)
    /// and its `JWT_SECRET`, so that a token of either server works on both.
    pub fn replica_of(mut self, other: &TestApp) -> Self {
        self.shared_database = Some(other.state.config.database.url.clone());
        if other.backend.has_redis() {
            self.redis = Redis::SharedPrefix(other.state.config.redis.key_prefix.clone());
        }
        self.secret =
            Some(String::from_utf8(other.jwt_secret()).expect("the harness's secrets are text"));
        self
    }

    /// `WS_KEEPALIVE`.
    pub fn ws_keepalive(mut self, every: Duration) -> Self {
        self.config.graphql.ws_keepalive = every.as_secs();
        self
    }

    /// `WS_MAX_CONNECTIONS`.
    pub fn ws_max_connections(mut self, max: u32) -> Self {
        self.config.graphql.ws_max_connections = max;
        self
    }

    /// `WS_MAX_CONNECTIONS_PER_ACCOUNT`.
    pub fn ws_max_connections_per_account(mut self, max: u32) -> Self {
        self.config.graphql.ws_max_connections_per_account = max;
        self
    }

    /// Delivers mail to `other`'s SMTP server rather than to one of its own.
    pub fn delivering_to(mut self, other: &TestApp) -> Self {
        self.smtp_url = Some(other.mailbox.server.url());
        self
    }

    /// `GRAPHQL_MAX_DEPTH`.
    pub fn graphql_max_depth(mut self, depth: u16) -> Self {
        self.config.graphql.max_depth = depth;
        self
    }

    /// `GRAPHQL_MAX_COMPLEXITY`.
    pub fn graphql_max_complexity(mut self, complexity: u32) -> Self {
        self.config.graphql.max_complexity = complexity;
        self
    }

    /// `GRAPHQL_MAX_ALIASES`.
    pub fn graphql_max_aliases(mut self, aliases: u32) -> Self {
        self.config.graphql.max_aliases = aliases;
        self
    }

    /// `GRAPHQL_MAX_BATCH`.
    pub fn graphql_max_batch(mut self, batch: u16) -> Self {
        self.config.graphql.max_batch = batch;
        self
    }

    /// `GRAPHQL_MAX_AUTH_FIELDS`.
    pub fn graphql_max_auth_fields(mut self, fields: u16) -> Self {
        self.config.graphql.max_auth_fields = fields;
        self
    }

    /// `GRAPHQL_INTROSPECTION`.
    pub fn graphql_introspection(mut self, enabled: bool) -> Self {
        self.config.graphql.introspection = enabled;
        self
    }

    /// Sessions and rate-limit counts in a Redis nothing listens on (beside the backend's own
    /// database), to see the server fail closed.
    pub fn unreachable_redis(mut self) -> Self {
        self.redis = Redis::Unreachable;
        self
    }

    /// As [`TestAppBuilder::unreachable_redis`], with a Redis Cluster URL.
    pub fn unreachable_redis_cluster(mut self) -> Self {
        self.redis = Redis::UnreachableCluster;
        self
    }

    /// Keeps Redis state under `other`'s key prefix, so that the two servers share it like two
    /// replicas (MySQL + Redis; with SQLite there is no Redis to share). Each server still has
    /// a database of its own.
    pub fn sharing_redis_with(mut self, other: &TestApp) -> Self {
        self.redis = Redis::SharedPrefix(other.state.config.redis.key_prefix.clone());
        self
    }

    /// Starts a server with these settings on `backend`, which must be
    /// [available](Backend::is_available).
    pub async fn spawn(self, backend: Backend) -> TestApp {
        init_logging();
        let TestAppBuilder {
            mut config,
            redis,
            shared_database,
            smtp_url,
            secret,
            replica_servers,
        } = self;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let own_prefix = format!("test:{id}:");
        config.auth.jwt_secret = Some(SecretString::from(secret.unwrap_or_else(random_secret)));
        let mut cleanup = Cleanup {
            _dir: None,
            mysql: None,
            redis: None,
        };
        match backend {
            _ if shared_database.is_some() => {
                config.database.url = shared_database.clone().expect("checked");
                if backend.has_redis() {
                    let services = Services::from_env(backend)
                        .expect("TEST_DATABASE_URL and TEST_REDIS_URL name the services");
                    let prefix = match &redis {
                        Redis::SharedPrefix(prefix) => prefix.clone(),
                        Redis::Own | Redis::Unreachable | Redis::UnreachableCluster => {
                            own_prefix.clone()
                        }
                    };
                    cleanup.redis = Some((services.redis.clone(), prefix.clone()));
                    config.redis.url = Some(services.redis);
                    config.redis.key_prefix = prefix;
                }
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("users.db");
                config.database.url = DatabaseUrl::Sqlite(path.display().to_string());
                cleanup._dir = Some(dir);
            }
            Backend::MysqlRedis | Backend::MysqlCluster => {
                let mut services = Services::from_env(backend)
                    .expect("TEST_DATABASE_URL and TEST_REDIS_URL name the services");
                let name = format!("test_{id}");
                if let Some(servers) = &replica_servers {
                    services.mysql = replicas::primary().expect("TEST_DATABASE_PRIMARY_URL");
                    config.database.replica_urls = user_api::config::ReplicaUrls(
                        servers
                            .iter()
                            .map(|s| match s.split_once('?') {
                                Some((server, options)) => format!("{server}/{name}?{options}"),
                                None => format!("{s}/{name}"),
                            })
                            .collect(),
                    );
                }
                let mut conn = AsyncMysqlConnection::establish(&services.mysql)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
                diesel::sql_query(format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .execute(&mut conn)
                .await
                .expect("create test database");
                config.database.url = DatabaseUrl::Mysql(format!("{}/{name}", services.mysql));
                cleanup.mysql = Some((services.mysql, name));
                // A shared prefix is cleaned up all the same, by whichever server goes first.
                let prefix = match &redis {
                    Redis::SharedPrefix(prefix) => prefix.clone(),
                    Redis::Own | Redis::Unreachable | Redis::UnreachableCluster => {
                        own_prefix.clone()
                    }
                };
                cleanup.redis = Some((services.redis.clone(), prefix.clone()));
                config.redis.url = Some(services.redis);
                config.redis.key_prefix = prefix;
            }
        }
        match redis {
            Redis::Unreachable => {
                config.redis.url = Some("redis://127.0.0.1:1".into());
                config.redis.key_prefix = own_prefix;
            }
            Redis::UnreachableCluster => {
                config.redis.url = Some("redis+cluster://127.0.0.1:1,127.0.0.1:2".into());
                config.redis.key_prefix = own_prefix;
            }
            Redis::Own | Redis::SharedPrefix(_) => {}
        }
        // Mail goes over real SMTP to a server of the test's own.
        let mailbox = Mailbox::spawn().await;
        let smtp_url = smtp_url.unwrap_or_else(|| mailbox.server.url());
        config.mail.smtp_url = Some(SmtpUrl::parse(&smtp_url).expect("SMTP URL"));
        db::migrations::run(&config.database.url)
            .await
            .expect("migrations");
        if replica_servers.is_some()
            && let DatabaseUrl::Mysql(url) = &config.database.url
        {
            let name = url.rsplit('/').next().expect("a database name");
            replicas::wait_for_tables(name).await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        // Links in mails point to this server, at the port it really listens on.
        if config.lifecycle.public_url.is_none() {
            config.lifecycle.public_url = Some(format!("http://{addr}"));
        }
        let state = AppState::build(config).await.expect("state");
        let background = state.spawn_background();
        let router = app(state.clone());
        // Served as `main` serves it, with the same limits; the task is aborted on drop.
        let http = state.config.http.clone();
        let server = tokio::spawn(async move {
            user_api::serve(listener, router, &http, std::future::pending()).await;
        });
        TestApp {
            api: ApiClient::new(format!("http://{addr}")),
            addr,
            state,
            backend,
            mailbox,
            _cleanup: cleanup,
            server,
            background,
        }
    }
}

/// Sends what the servers log (warnings and errors, or what `RUST_LOG` asks for) to the output
/// of the test whose server logged it, which libtest shows when that test fails: a client sees
/// a 503 or a 500 without its cause, and the server logs the cause once, where it makes the
/// response.
fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        // Another subscriber already installed is fine: its output goes where it goes.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A running server, and a client of it: a `TestApp` derefs to the [`ApiClient`] that calls
/// its server, so `app.register(…)` and `app.client.get(app.url(…))` both work.
pub struct TestApp {
    api: ApiClient,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server's state, for tests that need to reach behind the API (e.g. to sign tokens).
    pub state: AppState,
    /// The backend.
    pub backend: Backend,
    /// The SMTP server it delivers mail to, and what it received.
    pub mailbox: Mailbox,
    _cleanup: Cleanup,
    server: tokio::task::JoinHandle<()>,
    /// Purges and the mail delivery worker.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// The settings of a test server: the production defaults, except that the database pool
    /// times out after 2 s and every rate limit allows 1000 attempts a minute. The suite
    /// registers and logs in far more often from 127.0.0.1 than the production limits allow;
    /// tests of the limits set the ones they test.
    pub fn builder() -> TestAppBuilder {
        let mut config = Config::try_from_args(["user-api"]).expect("default configuration");
        config.database.pool_timeout = Duration::from_secs(2);
        // Failed deliveries are retried within the test's patience.
        config.mail.retry_base = Duration::from_millis(200);
        config.mail.smtp_timeout = Duration::from_secs(5);
        let limits = &mut config.rate_limit;
        for limit in [
            &mut limits.login_per_username,
            &mut limits.login_failures_per_username,
            &mut limits.mfa_failures_per_user,
            &mut limits.login_per_ip,
            &mut limits.register_per_ip,
            &mut limits.refresh_per_session,
            &mut limits.email_change_per_user,
            &mut limits.password_reset_per_ip,
            &mut limits.password_reset_per_email,
            &mut limits.verification_per_user,
            &mut limits.persisted_queries_per_ip,
        ] {
            *limit = per_minute(1000);
        }
        TestAppBuilder {
            config,
            redis: Redis::Own,
            shared_database: None,
            smtp_url: None,
            secret: None,
            replica_servers: None,
        }
    }

    /// Starts a server with the test settings on `backend`, which must be
    /// [available](Backend::is_available).
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::builder().spawn(backend).await
    }

    /// The server's `JWT_SECRET` (the harness always sets one), for tests that sign tokens the
    /// server must judge on their claims alone.
    pub fn jwt_secret(&self) -> Vec<u8> {
        self.state
            .config
            .auth
            .jwt_secret
            .as_ref()
            .expect("the harness sets JWT_SECRET")
            .expose_secret()
            .as_bytes()
            .to_vec()
    }
}

impl Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl TestApp {
    /// Stops the server and its background work at once, as a killed process stops: no
    /// shutdown, nothing finished. What it stored stays (its database lives until it is
    /// dropped).
    pub fn kill(&self) {
        self.server.abort();
        for task in &self.background {
            task.abort();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a test server leaves behind, removed when it goes: its temp folder, its MySQL
/// database and its Redis keys.
struct Cleanup {
    _dir: Option<tempfile::TempDir>,
    mysql: Option<(String, String)>,
    redis: Option<(String, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mysql = self.mysql.take();
        let redis = self.redis.take();
        if mysql.is_none() && redis.is_none() {
            return;
        }
        // Drop cannot await, and may run inside the test's runtime: clean up on a thread of
        // its own with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Some((server, name)) = mysql
                    && let Ok(mut conn) = AsyncMysqlConnection::establish(&server).await
                {
                    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{name}`"))
                        .execute(&mut conn)
                        .await;
                }
                if let Some((url, prefix)) = redis {
                    let _ = delete_redis_prefix(&url, &prefix).await;
                }
            });
        })
        .join();
    }
}

async fn delete_redis_prefix(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let mut conn = redis_connection(url).await?;
    // On a cluster, KEYS goes to every master and their answers are joined.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    // One key per command: on a cluster the keys live in many slots.
    for key in keys {
        redis::cmd("DEL")
            .arg(key)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

/// A connection to the Redis (or Redis Cluster) of a server's `REDIS_URL`, for tests that look
/// at what the server keeps there.
pub async fn redis_connection(
    url: &str,
) -> redis::RedisResult<user_api::infra::redis::RedisConnection> {
    use user_api::infra::redis::RedisConnection;
    match user_api::config::cluster_nodes(url) {
        Some(nodes) => {
            let nodes = nodes.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "cluster URL", e))
            })?;
            let client = redis::cluster::ClusterClient::new(nodes)?;
            Ok(RedisConnection::Cluster(
                client.get_async_connection().await?,
            ))
        }
        None => Ok(RedisConnection::Single(
            redis::Client::open(url)?
                .get_multiplexed_async_connection()
                .await?,
        )),
    }
}
