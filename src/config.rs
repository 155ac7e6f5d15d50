//! Configuration: command-line flags with environment-variable fallbacks (and a `.env` file,
//! read by `main` in development). A bad value stops start-up with a line naming the variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use self::parsers::Hidden;

/// Command line of the `user-api` binary.
#[derive(Debug, Parser)]
#[command(
    name = "user-api",
    version,
    about = "User-management API server: GraphQL first, with REST compatibility routes"
)]
pub struct Cli {
    /// What to do; without a subcommand the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands of the binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations, then run the server.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) to standard output.
    PrintSchema,
    /// Exit 0 if the server at BIND answers /readyz with 200 (for container health checks).
    Healthcheck,
    /// Print the OpenAPI document of the REST routes (JSON) to standard output.
    Openapi,
    /// Make an existing user an ADMIN (applies pending migrations first).
    Promote {
        /// The user's username, in any letter case.
        username: String,
    },
}

/// Every setting of the server, grouped by concern.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where users (and, without Redis, sessions) are kept.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// The session store.
    #[command(flatten)]
    pub redis: RedisConfig,
    /// Access tokens.
    #[command(flatten)]
    pub auth: AuthConfig,
    /// The HTTP listener.
    #[command(flatten)]
    pub http: HttpConfig,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
    /// Rate limits and the trusted proxies that decide whose address they count.
    #[command(flatten)]
    pub rate_limit: RateLimitConfig,
    /// GraphQL document and request limits.
    #[command(flatten)]
    pub graphql: GraphqlLimitsConfig,
    /// Refresh tokens.
    #[command(flatten)]
    pub refresh: RefreshConfig,
    /// Mail delivery and composition.
    #[command(flatten)]
    pub mail: MailConfig,
    /// Email verification and password reset.
    #[command(flatten)]
    pub lifecycle: LifecycleConfig,
}

/// Database settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// DATABASE_URL: `mysql://user:pass@host/db` or `sqlite://path` (the embedded default).
    #[arg(id = "database-url", long = "database-url", env = "DATABASE_URL", value_name = "DATABASE_URL", default_value = "sqlite://data/users.db", value_parser = Hidden(parse_database_url))]
    pub url: DatabaseUrl,
    /// DB_POOL_SIZE: connections in the database pool (default: 8).
    #[arg(id = "db-pool-size", long = "db-pool-size", env = "DB_POOL_SIZE", value_name = "DB_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pool_size: Option<u32>,
    /// POOL_TIMEOUT: seconds a request waits for a database or Redis connection before it gets 503.
    #[arg(id = "pool-timeout", long = "pool-timeout", env = "POOL_TIMEOUT", value_name = "POOL_TIMEOUT", default_value = "5", value_parser = parse_seconds)]
    pub pool_timeout: Duration,
    /// DATABASE_REPLICA_URLS: comma-separated `mysql://…` URLs of read replicas of the MySQL
    /// primary; they serve reads of other users, which tolerate lag. Empty = none.
    #[arg(id = "database-replica-urls", long = "database-replica-urls", env = "DATABASE_REPLICA_URLS", value_name = "DATABASE_REPLICA_URLS", default_value = "", hide_env_values = true, value_parser = Hidden(parse_replica_urls))]
    pub replica_urls: ReplicaUrls,
    /// REPLICA_MAX_LAG: seconds a replica may lag behind the primary and still serve reads.
    #[arg(id = "replica-max-lag", long = "replica-max-lag", env = "REPLICA_MAX_LAG", value_name = "REPLICA_MAX_LAG", default_value = "5", value_parser = parse_seconds)]
    pub replica_max_lag: Duration,
}

impl DatabaseConfig {
    /// Checks what no single setting can: replicas need a MySQL primary, and none may be the
    /// primary's own URL.
    pub fn check(&self) -> Result<(), String> {
        let replicas = &self.replica_urls.0;
        match &self.url {
            _ if replicas.is_empty() => Ok(()),
            DatabaseUrl::Sqlite(_) => Err(
                "DATABASE_REPLICA_URLS needs a MySQL primary in DATABASE_URL; the embedded SQLite \
                 file has no replicas"
                    .into(),
            ),
            DatabaseUrl::Mysql(primary) => match replicas.iter().find(|r| *r == primary) {
                Some(same) => Err(format!(
                    "DATABASE_REPLICA_URLS names the primary itself ({})",
                    without_credentials(same)
                )),
                None => Ok(()),
            },
        }
    }
}

/// The URLs of `DATABASE_REPLICA_URLS`, each a `mysql://…` URL.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ReplicaUrls(pub Vec<String>);

impl std::fmt::Debug for ReplicaUrls {
    // Without credentials: the configuration is logged at start-up.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|url| without_credentials(url)))
            .finish()
    }
}

fn parse_replica_urls(s: &str) -> Result<ReplicaUrls, String> {
    let urls: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    for url in &urls {
        if !url.starts_with("mysql://") {
            return Err(format!(
                "`{}` is not a mysql://… URL; each replica is a MySQL server",
                without_credentials(url)
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = urls.iter().find(|url| !seen.insert(*url)) {
        return Err(format!("{} is named twice", without_credentials(twice)));
    }
    Ok(ReplicaUrls(urls))
}

/// Session-store settings.
#[derive(Debug, Clone, Args)]
pub struct RedisConfig {
    /// REDIS_URL: `redis://host:port/db`; when unset, sessions live in the database.
    #[arg(id = "redis-url", long = "redis-url", env = "REDIS_URL", value_name = "REDIS_URL", value_parser = Hidden(parse_redis_url))]
    pub url: Option<String>,
    /// REDIS_KEY_PREFIX: prefix of every Redis key this server writes.
    #[arg(id = "redis-key-prefix", long = "redis-key-prefix", env = "REDIS_KEY_PREFIX", value_name = "REDIS_KEY_PREFIX", default_value = "user-api:", value_parser = parse_key_prefix)]
    pub key_prefix: String,
    /// REDIS_REVOCATION_REPLICAS: how many Redis replicas must hold a revocation (logout, a
    /// revoked or ended session) before it is acknowledged, so that a failover cannot bring the
    /// session back (Redis `WAIT`, up to 1 s; fewer confirmations answer 503). Default: 1 with a
    /// Redis Cluster, 0 with one server.
    #[arg(
        id = "redis-revocation-replicas",
        long = "redis-revocation-replicas",
        env = "REDIS_REVOCATION_REPLICAS",
        value_name = "REDIS_REVOCATION_REPLICAS"
    )]
    pub revocation_replicas: Option<u32>,
}

impl RedisConfig {
    /// Replicas that must confirm each revocation: REDIS_REVOCATION_REPLICAS, or its default.
    pub fn revocation_replicas(&self) -> u32 {
        let cluster = self.url.as_deref().and_then(cluster_nodes).is_some();
        self.revocation_replicas.unwrap_or(u32::from(cluster))
    }
}

/// Token settings.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// JWT_SECRET: HS256 key of access tokens. Required with MySQL; with SQLite it is generated
    /// once and kept beside the database file when unset.
    #[arg(id = "jwt-secret", long = "jwt-secret", env = "JWT_SECRET", value_name = "JWT_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub jwt_secret: Option<SecretString>,
    /// JWT_ISSUER: the `iss` claim written into and required of every token.
    #[arg(id = "jwt-issuer", long = "jwt-issuer", env = "JWT_ISSUER", value_name = "JWT_ISSUER", default_value = "user-api", value_parser = parse_non_empty)]
    pub jwt_issuer: String,
    /// ACCESS_TOKEN_TTL: lifetime of an access token, in seconds.
    #[arg(id = "access-token-ttl", long = "access-token-ttl", env = "ACCESS_TOKEN_TTL", value_name = "ACCESS_TOKEN_TTL", default_value = "1800", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub access_token_ttl: u64,
    /// HASH_CONCURRENCY: password hashes computed at once (default: the number of cores).
    #[arg(id = "hash-concurrency", long = "hash-concurrency", env = "HASH_CONCURRENCY", value_name = "HASH_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub hash_concurrency: Option<u32>,
    /// MFA_ENCRYPTION_KEY: the key TOTP secrets are encrypted under (AES-256-GCM), 32 bytes as
    /// 64 hex digits or base64. Unset, it is derived from JWT_SECRET, so changing that secret
    /// would leave every enrolled authenticator unreadable: set this one in production.
    #[arg(id = "mfa-encryption-key", long = "mfa-encryption-key", env = "MFA_ENCRYPTION_KEY", value_name = "MFA_ENCRYPTION_KEY", hide_env_values = true, value_parser = Hidden(parse_encryption_key))]
    pub mfa_encryption_key: Option<EncryptionKey>,
}

/// A 256-bit key, as configured; its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// The key's bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key of these bytes, for the unit tests.
    #[cfg(test)]
    pub fn for_tests(bytes: [u8; 32]) -> Self {
        EncryptionKey(bytes)
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

/// 32 bytes, as 64 hex digits or as base64 (standard or URL-safe, padded or not).
fn parse_encryption_key(s: &str) -> Result<EncryptionKey, String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::GeneralPurpose;
    use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| e.to_string())?
    } else {
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT)
            .decode(s)
            .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT).decode(s))
            .map_err(|_| {
                "expected 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)"
                    .to_owned()
            })?
    };
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(EncryptionKey)
        .map_err(|_| {
            format!(
                "expected 32 bytes (64 hex digits or base64, e.g. `openssl rand -hex 32`), got {}",
                bytes.len()
            )
        })
}

/// HTTP settings.
#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// BIND: address and port to listen on.
    #[arg(
        id = "bind",
        long = "bind",
        env = "BIND",
        value_name = "BIND",
        default_value = "127.0.0.1:8000"
    )]
    pub bind: SocketAddr,
    /// CORS_ALLOWED_ORIGINS: comma-separated origins browsers may call from, or `*`; empty = none.
    #[arg(id = "cors-allowed-origins", long = "cors-allowed-origins", env = "CORS_ALLOWED_ORIGINS", value_name = "CORS_ALLOWED_ORIGINS", default_value = "", value_parser = parse_origins)]
    pub cors_allowed_origins: CorsOrigins,
    /// MAX_BODY_BYTES: largest request body accepted, in bytes.
    #[arg(id = "max-body-bytes", long = "max-body-bytes", env = "MAX_BODY_BYTES", value_name = "MAX_BODY_BYTES", default_value = "65536", value_parser = clap::value_parser!(u64).range(1024..=16_777_216))]
    pub max_body_bytes: u64,
    /// SWAGGER_PERSIST_AUTHORIZATION: `true` lets Swagger UI at /docs keep the token it was
    /// given in the browser's local storage across reloads; by default it forgets it with the
    /// page, as a stored token outlives the tab and any script on the origin can read it.
    #[arg(id = "swagger-persist-authorization", long = "swagger-persist-authorization", env = "SWAGGER_PERSIST_AUTHORIZATION", value_name = "SWAGGER_PERSIST_AUTHORIZATION", default_value = "false", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = limits::parse_bool)]
    pub swagger_persist_authorization: bool,
    /// HTTP_HEADER_TIMEOUT: seconds a client has to send a request's head (request line and
    /// headers) once the server starts waiting for it. The same clock runs while a keep-alive
    /// connection waits for its next request, so an idle connection is closed after this long.
    #[arg(id = "http-header-timeout", long = "http-header-timeout", env = "HTTP_HEADER_TIMEOUT", value_name = "HTTP_HEADER_TIMEOUT", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout: u64,
}

/// Logging settings.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// RUST_LOG: log filter, e.g. `info` or `user_api=debug,tower_http=debug`.
    #[arg(
        id = "log",
        long = "log",
        env = "RUST_LOG",
        value_name = "RUST_LOG",
        default_value = "info"
    )]
    pub filter: String,
    /// LOG_FORMAT: `text` or `json`.
    #[arg(
        id = "log-format",
        long = "log-format",
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        default_value = "text"
    )]
    pub format: LogFormat,
}

/// Refresh-token settings.
#[derive(Debug, Clone, Args)]
pub struct RefreshConfig {
    /// REFRESH_TOKEN_TTL: lifetime of a refresh token, in seconds; each refresh issues a new one.
    #[arg(id = "refresh-token-ttl", long = "refresh-token-ttl", env = "REFRESH_TOKEN_TTL", value_name = "REFRESH_TOKEN_TTL", default_value = "2592000", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub token_ttl: u64,
    /// REFRESH_REUSE_GRACE: seconds after a refresh during which the old refresh token still
    /// returns the same new pair (tabs refreshing at once); later reuse ends the sign-in. 0 = none.
    #[arg(id = "refresh-reuse-grace", long = "refresh-reuse-grace", env = "REFRESH_REUSE_GRACE", value_name = "REFRESH_REUSE_GRACE", default_value = "10", value_parser = clap::value_parser!(u64).range(0..=300))]
    pub reuse_grace: u64,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A parsed `DATABASE_URL`: the scheme picks the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `mysql://…`, passed to the driver as given.
    Mysql(String),
    /// `sqlite://path`; a relative path is relative to the working directory.
    Sqlite(String),
}

impl DatabaseUrl {
    /// The folder that holds the SQLite file, where generated secrets are kept too.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        match self {
            DatabaseUrl::Sqlite(path) => Some(
                PathBuf::from(path)
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_default(),
            ),
            _ => None,
        }
    }

    /// Where the database is, for a log line: the SQLite file, or the MySQL server and
    /// database, never the credentials.
    pub fn describe(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("SQLite file {path}"),
            DatabaseUrl::Mysql(url) => format!("MySQL at {}", without_credentials(url)),
        }
    }
}

/// A `scheme://user:password@host:port/path?query` URL as `host:port/path`: what an operator
/// needs to tell which server is meant, and nothing a log must not hold. The host starts after
/// the last `@`, since a password may hold one.
pub fn without_credentials(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    rest.rsplit_once('@').map_or(rest, |(_, host)| host)
}

/// Allowed CORS origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access.
    None,
    /// Any origin, never with credentials.
    Any,
    /// These origins exactly.
    List(Vec<String>),
}

fn parse_database_url(s: &str) -> Result<DatabaseUrl, String> {
    if s.starts_with("mysql://") {
        Ok(DatabaseUrl::Mysql(s.to_owned()))
    } else if let Some(path) = s
        .strip_prefix("sqlite://")
        .or_else(|| s.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err("a sqlite URL needs a file path, e.g. sqlite://data/users.db".into());
        }
        // Each connection would get its own empty in-memory database, and every user would
        // be lost at exit: not a mode a user-management server should offer.
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Err("an in-memory database is not supported; give a file path".into());
        }
        Ok(DatabaseUrl::Sqlite(path.to_owned()))
    } else {
        Err("expected a mysql://… or sqlite://… URL".into())
    }
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    if let Some(nodes) = cluster_nodes(s) {
        return nodes.map(|_| s.to_owned());
    }
    if !(s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("redis+unix://"))
    {
        return Err("expected a redis://… URL, or redis+cluster://… for a Redis Cluster".into());
    }
    if s.contains(',') {
        return Err(
            "a redis:// URL names one server; for a Redis Cluster write redis+cluster://host:port,host:port"
                .into(),
        );
    }
    Ok(s.to_owned())
}

/// The scheme of a Redis Cluster URL (`rediss+cluster://` with TLS).
pub const REDIS_CLUSTER_SCHEME: &str = "redis+cluster://";
/// The scheme of a Redis Cluster URL over TLS.
pub const REDIS_CLUSTER_TLS_SCHEME: &str = "rediss+cluster://";

/// The nodes of a cluster URL (`redis+cluster://[user:password@]host:port,host:port[/?…]`) as
/// plain node URLs carrying the same credentials and parameters; `None` for a URL of one
/// server. Fails on a cluster URL without nodes, or with a scheme among its nodes.
pub fn cluster_nodes(url: &str) -> Option<Result<Vec<String>, String>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix(REDIS_CLUSTER_SCHEME) {
        ("redis://", rest)
    } else if let Some(rest) = url.strip_prefix(REDIS_CLUSTER_TLS_SCHEME) {
        ("rediss://", rest)
    } else {
        return None;
    };
    Some(split_nodes(scheme, rest))
}

fn split_nodes(scheme: &str, rest: &str) -> Result<Vec<String>, String> {
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    if rest.contains("://") {
        return Err(
            "a cluster URL lists host:port pairs after one redis+cluster:// (or rediss+cluster://), \
             not URLs of other schemes"
                .into(),
        );
    }
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}{credentials}{host}{tail}"))
        .collect();
    if nodes.is_empty() {
        return Err("a cluster URL names at least one node: redis+cluster://host:port,…".into());
    }
    Ok(nodes)
}

fn parse_key_prefix(s: &str) -> Result<String, String> {
    // A brace would change the Redis Cluster hash tag the session keys rely on.
    if s.contains(['{', '}']) {
        Err("the prefix may not contain { or }".into())
    } else {
        Ok(s.to_owned())
    }
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    if s.is_empty() {
        Err("the secret is empty".into())
    } else {
        Ok(SecretString::from(s.to_owned()))
    }
}

fn parse_non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

/// The shortest wait a timeout or retry setting takes. Below it a setting is a typo, not a
/// choice: `POOL_TIMEOUT=0.0001` would answer every request 503 and `MAIL_RETRY_BASE=0.0001`
/// would retry a failing mail server in a tight loop.
const MIN_SECONDS: f64 = 0.1;
/// The longest.
const MAX_SECONDS: f64 = 3600.0;

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if secs.is_finite() && (MIN_SECONDS..=MAX_SECONDS).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "expected seconds between {MIN_SECONDS} and {MAX_SECONDS}"
        ))
    }
}

fn parse_origins(s: &str) -> Result<CorsOrigins, String> {
    let items: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    if items.is_empty() {
        return Ok(CorsOrigins::None);
    }
    if items.contains(&"*") {
        return if items.len() == 1 {
            Ok(CorsOrigins::Any)
        } else {
            Err("`*` cannot be combined with other origins".into())
        };
    }
    for origin in &items {
        let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.ends_with('/')
            // Visible ASCII only: it goes out as a header value, and an origin has no spaces.
            && origin.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(format!(
                "`{origin}` is not an origin like https://app.example.com"
            ));
        }
    }
    Ok(CorsOrigins::List(
        items.into_iter().map(str::to_owned).collect(),
    ))
}

impl Config {
    /// Parses settings from explicit arguments only (plus the environment), as tests do.
    pub fn try_from_args<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.config)
    }
}

mod lifecycle;
mod limits;
mod parsers;
pub use lifecycle::LifecycleConfig;
pub use limits::{GraphqlLimitsConfig, Rate, RateLimit, RateLimitConfig, TrustedProxies};
mod mail;
pub use mail::{MailConfig, SmtpUrl};

#[cfg(test)]
mod tests {

    #[test]
    fn a_cluster_url_names_its_nodes() {
        use super::{cluster_nodes, parse_redis_url};
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            Some(Ok(vec![
                "redis://127.0.0.1:7000".to_owned(),
                "redis://127.0.0.1:7001".to_owned()
            ]))
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://u:p@a:7000,b:7001/?protocol=3"),
            Some(Ok(vec![
                "rediss://u:p@a:7000/?protocol=3".to_owned(),
                "rediss://u:p@b:7001/?protocol=3".to_owned()
            ]))
        );
        // Refused with a message naming the fix: no nodes, mixed schemes, a list of servers
        // in a one-server URL.
        for bad in [
            "redis+cluster://",
            "redis+cluster://a:7000,redis://b:7001",
            "redis://a:7000,b:7001",
            "http://a:7000",
        ] {
            assert!(parse_redis_url(bad).is_err(), "{bad}");
        }
        assert!(parse_redis_url("redis+cluster://a:7000,b:7001").is_ok());
    }

    #[test]
    fn urls_are_described_without_credentials() {
        assert_eq!(
            without_credentials("mysql://root:s3cr@t@db.internal:3306/users?ssl-mode=REQUIRED"),
            "db.internal:3306/users"
        );
        assert_eq!(
            without_credentials("redis://:pw@cache:6379/0"),
            "cache:6379/0"
        );
        assert_eq!(
            without_credentials("redis://127.0.0.1:6379"),
            "127.0.0.1:6379"
        );
        assert_eq!(
            DatabaseUrl::Sqlite("data/users.db".into()).describe(),
            "SQLite file data/users.db"
        );
    }

    use super::*;

    #[test]
    fn timeouts_are_between_a_tenth_of_a_second_and_an_hour() {
        assert_eq!(parse_seconds("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_seconds("3600"), Ok(Duration::from_secs(3600)));
        for bad in ["0", "0.0001", "-1", "3601", "NaN", "inf", "five"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replica_urls_are_mysql_urls_of_other_servers() {
        assert_eq!(parse_replica_urls(""), Ok(ReplicaUrls::default()));
        assert_eq!(
            parse_replica_urls("mysql://a/db, mysql://b/db"),
            Ok(ReplicaUrls(vec![
                "mysql://a/db".into(),
                "mysql://b/db".into()
            ]))
        );
        assert!(parse_replica_urls("sqlite://x.db").is_err());
        assert!(parse_replica_urls("mysql://a/db,mysql://a/db").is_err());
        let config = |args: &[&str]| {
            let mut all = vec!["user-api"];
            all.extend_from_slice(args);
            Config::try_from_args(all).unwrap().database.check()
        };
        assert!(config(&[]).is_ok());
        assert!(config(&["--database-replica-urls", "mysql://r/db"]).is_err());
        let err = config(&[
            "--database-url",
            "mysql://u:pw@p/db",
            "--database-replica-urls",
            "mysql://u:pw@p/db",
        ])
        .unwrap_err();
        assert!(
            err.contains("the primary itself") && !err.contains("pw"),
            "{err}"
        );
        assert!(
            config(&[
                "--database-url",
                "mysql://p/db",
                "--database-replica-urls",
                "mysql://r/db"
            ])
            .is_ok()
        );
    }

    #[test]
    fn database_url_scheme_picks_backend() {
        assert_eq!(
            parse_database_url("sqlite://data/users.db"),
            Ok(DatabaseUrl::Sqlite("data/users.db".into()))
        );
        assert!(matches!(
            parse_database_url("mysql://root@localhost/db"),
            Ok(DatabaseUrl::Mysql(_))
        ));
        assert!(parse_database_url("postgres://x").is_err());
        assert!(parse_database_url("sqlite://").is_err());
        assert!(parse_database_url("sqlite::memory:").is_err());
    }

    #[test]
    fn origins_parse() {
        assert_eq!(parse_origins(""), Ok(CorsOrigins::None));
        assert_eq!(parse_origins("*"), Ok(CorsOrigins::Any));
        assert!(parse_origins("*,https://a.example").is_err());
        assert!(parse_origins("https://a.example/").is_err());
        assert_eq!(
            parse_origins("https://a.example, http://localhost:3000"),
            Ok(CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ]))
        );
    }

    #[test]
    fn swagger_persist_authorization_is_off_unless_asked_for() {
        let persist = |args: &[&str]| {
            let mut all = vec!["user-api"];
            all.extend_from_slice(args);
            Config::try_from_args(all).map(|c| c.http.swagger_persist_authorization)
        };
        assert_eq!(persist(&[]).ok(), Some(false));
        assert_eq!(
            persist(&["--swagger-persist-authorization"]).ok(),
            Some(true)
        );
        assert_eq!(
            persist(&["--swagger-persist-authorization", "true"]).ok(),
            Some(true)
        );
        assert_eq!(
            persist(&["--swagger-persist-authorization", "off"]).ok(),
            Some(false)
        );
        let err = persist(&["--swagger-persist-authorization", "maybe"]).unwrap_err();
        assert!(
            err.to_string().contains("--swagger-persist-authorization"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::try_from_args(["user-api", "--access-token-ttl", "zero"]).unwrap_err();
        assert!(err.to_string().contains("--access-token-ttl"), "{err}");
        let err = Config::try_from_args(["user-api", "--database-url", "ftp://x"]).unwrap_err();
        assert!(err.to_string().contains("--database-url"), "{err}");
    }

    #[test]
    fn bad_values_that_may_hold_a_secret_are_not_shown() {
        for (flag, value) in [
            ("--database-url", "postgres://app:hunter2@db/users"),
            (
                "--database-replica-urls",
                "mysql://app:hunter2@a/users,mysql://app:hunter2@a/users",
            ),
            ("--redis-url", "redis://:hunter2@a:6379,b:6379"),
            ("--mfa-encryption-key", "hunter2hunter2"),
        ] {
            let err = Config::try_from_args(["user-api", flag, value]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(flag), "{text}");
            assert!(!text.contains("hunter2"), "{flag}: {text}");
        }
    }
}
