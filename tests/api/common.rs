//! The test harness: `TestApp` runs the real router (built by the production builder) on an
//! ephemeral port, against its own database and Redis key prefix, and speaks HTTP to it.
//!
//! Backends: `Sqlite` (a temp-file database with sessions in it) always runs; `MysqlRedis`
//! runs when `TEST_DATABASE_URL` (a `mysql://` URL of a server; a fresh `test_<uuid>` database
//! is created and dropped) and `TEST_REDIS_URL` are set, and skips otherwise — unless
//! `REQUIRE_SERVICES=1`, when it fails.

#![allow(dead_code)]

use std::net::SocketAddr;

use diesel_async::{AsyncConnection as _, AsyncMysqlConnection, RunQueryDsl as _};
use serde_json::{Value, json};
use user_api::config::Config;
use user_api::{AppState, app, db};

/// Which stores a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, sessions in the database.
    Sqlite,
    /// MySQL (MariaDB here) and Redis.
    MysqlRedis,
}

/// Runs each test body once per backend: `name::sqlite` and `name::mysql_redis`.
#[macro_export]
macro_rules! backend_tests {
    ($($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await;
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql_redis() {
                    let Some($app) = $crate::common::TestApp::try_spawn($crate::common::Backend::MysqlRedis).await else {
                        return;
                    };
                    $body
                }
            }
        )*
    };
}

/// Extra settings for one test's server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra command-line arguments, e.g. `["--access-token-ttl", "2"]`.
    pub args: Vec<String>,
    /// Replace the session store's Redis URL (e.g. with one nothing listens on).
    pub redis_url: Option<String>,
    /// Use this Redis key prefix instead of the test's own (MySQL + Redis only), so that
    /// two servers share their Redis state like two replicas. The prefix is cleaned up all
    /// the same.
    pub redis_key_prefix: Option<String>,
}

/// Rate limits of test servers, unless a test sets its own: the suite registers and logs in
/// far more often from 127.0.0.1 than the production defaults allow. Tests of the limits
/// pass the flags they test.
const TEST_RATE_LIMITS: [(&str, &str); 6] = [
    ("--rate-limit-login-per-username", "1000/min"),
    ("--rate-limit-login-failures-per-username", "1000/min"),
    ("--rate-limit-login-per-ip", "1000/min"),
    ("--rate-limit-register-per-ip", "1000/min"),
    ("--rate-limit-refresh-per-session", "1000/min"),
    ("--rate-limit-email-change-per-user", "1000/min"),
];

/// A running server and a client for it.
pub struct TestApp {
    /// e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Shared HTTP client (no redirects followed).
    pub client: reqwest::Client,
    /// The server's state, for tests that need to reach behind the API (e.g. to sign tokens).
    pub state: AppState,
    /// The backend.
    pub backend: Backend,
    cleanup: Cleanup,
    server: tokio::task::JoinHandle<()>,
}

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
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}

fn services_required() -> bool {
    std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A secret of the required length, different for every test.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl TestApp {
    /// Spawns a server on `backend`; panics when it cannot.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::try_spawn(backend)
            .await
            .expect("backend not configured")
    }

    /// Spawns a server on `backend`; `None` when the backend is not configured (and not
    /// required).
    pub async fn try_spawn(backend: Backend) -> Option<TestApp> {
        TestApp::try_spawn_with(backend, Options::default()).await
    }

    /// Spawns with extra settings; `None` when the backend is not configured (and not
    /// required).
    pub async fn try_spawn_with(backend: Backend, options: Options) -> Option<TestApp> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut args: Vec<String> = vec!["user-api".into(), "--jwt-secret".into(), random_secret()];
        let mut cleanup = Cleanup {
            _dir: None,
            mysql: None,
            redis: None,
        };
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("users.db");
                args.extend([
                    "--database-url".into(),
                    format!("sqlite://{}", path.display()),
                ]);
                cleanup._dir = Some(dir);
            }
            Backend::MysqlRedis => {
                let (Ok(db_url), Ok(redis_url)) = (
                    std::env::var("TEST_DATABASE_URL"),
                    std::env::var("TEST_REDIS_URL"),
                ) else {
                    assert!(
                        !services_required(),
                        "REQUIRE_SERVICES=1 but TEST_DATABASE_URL or TEST_REDIS_URL is unset"
                    );
                    eprintln!(
                        "skipped: set TEST_DATABASE_URL and TEST_REDIS_URL to run the MySQL + Redis half"
                    );
                    return None;
                };
                // The server part of the URL: any database name in it is replaced by the test's own.
                let after_scheme = db_url
                    .strip_prefix("mysql://")
                    .expect("TEST_DATABASE_URL must be a mysql:// URL");
                let server = match after_scheme.find('/') {
                    Some(i) => format!("mysql://{}", &after_scheme[..i]),
                    None => db_url.clone(),
                };
                let name = format!("test_{id}");
                let mut conn = AsyncMysqlConnection::establish(&server)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
                diesel::sql_query(format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .execute(&mut conn)
                .await
                .expect("create test database");
                cleanup.mysql = Some((server.clone(), name.clone()));
                let prefix = options
                    .redis_key_prefix
                    .clone()
                    .unwrap_or_else(|| format!("test:{id}:"));
                cleanup.redis = Some((redis_url.clone(), prefix.clone()));
                args.extend([
                    "--database-url".into(),
                    format!("{server}/{name}"),
                    "--redis-url".into(),
                    redis_url,
                    "--redis-key-prefix".into(),
                    prefix,
                ]);
            }
        }
        if let Some(url) = options.redis_url {
            args.extend([
                "--redis-url".into(),
                url,
                "--redis-key-prefix".into(),
                format!("test:{id}:"),
            ]);
        }
        args.extend(["--pool-timeout".into(), "2".into()]);
        for (flag, value) in TEST_RATE_LIMITS {
            if !options.args.iter().any(|a| a == flag) {
                args.extend([flag.into(), value.into()]);
            }
        }
        args.extend(options.args);
        let config = Config::try_from_args(&args).expect("test configuration");
        db::migrations::run(&config.database.url)
            .await
            .expect("migrations");
        let state = AppState::build(config).await.expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let router = app(state.clone());
        // Served as `main` serves it, with the same limits; the task is aborted on drop.
        let http = state.config.http.clone();
        let server = tokio::spawn(async move {
            user_api::serve(listener, router, &http, std::future::pending()).await;
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Some(TestApp {
            base: format!("http://{addr}"),
            addr,
            client,
            state,
            backend,
            cleanup,
            server,
        })
    }

    /// The server's `JWT_SECRET` (the harness always passes one), for tests that sign tokens
    /// the server must judge on their claims alone.
    pub fn jwt_secret(&self) -> Vec<u8> {
        use secrecy::ExposeSecret as _;
        self.state
            .config
            .auth
            .jwt_secret
            .as_ref()
            .expect("the harness passes --jwt-secret")
            .expose_secret()
            .as_bytes()
            .to_vec()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a GraphQL request as JSON and returns the HTTP response.
    pub async fn gql_response(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send().await.expect("request")
    }

    /// POSTs a GraphQL request and returns the JSON body (asserting HTTP 200).
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let response = self.gql_response(query, variables, token).await;
        assert_eq!(
            response.status(),
            200,
            "GraphQL over application/json answers 200"
        );
        response.json().await.expect("JSON body")
    }

    /// Registers a user through GraphQL; returns (access token, user id). Email is
    /// `<username>@example.com`.
    pub async fn register(&self, username: &str, password: &str) -> (String, String) {
        let body = self
            .gql(
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
                json!({"i": {"username": username, "email": format!("{username}@example.com"), "password": password}}),
                None,
            )
            .await;
        let payload = &body["data"]["register"];
        assert!(payload.is_object(), "register failed: {body}");
        (
            payload["accessToken"].as_str().expect("token").to_owned(),
            payload["user"]["id"].as_str().expect("id").to_owned(),
        )
    }

    /// Logs in through GraphQL; returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let body = self
            .gql(
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
                json!({"u": username, "p": password}),
                None,
            )
            .await;
        body["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {body}"))
            .to_owned()
    }

    /// The `me { id }` of a token, or the error code it got.
    pub async fn me(&self, token: &str) -> Result<String, String> {
        let body = self.gql("{ me { id } }", json!({}), Some(token)).await;
        match body["data"]["me"]["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(error_code(&body).unwrap_or_default()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `errors[0].extensions.code` of a GraphQL response.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// `errors[0].extensions.field` of a GraphQL response.
pub fn error_field(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .map(str::to_owned)
}
