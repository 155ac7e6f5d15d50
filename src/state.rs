//! `AppState`: the pools, the session store, the token keys, the hasher and the configuration,
//! built once by [`AppState::build`] (in `main` and in tests alike) and cheap to clone.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};

use crate::auth::jwt::JwtKeys;
use crate::auth::key_strength;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::{Backend, RedisSessions, Sessions, SqlSessions};
use crate::config::{Config, DatabaseUrl};
use crate::db::{self, DbPool};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;

/// Shortest HS256 key accepted: RFC 7518 asks for a key at least as long as the hash (32 bytes).
pub const MIN_SECRET_BYTES: usize = 32;

/// Shared application state.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// The user database.
    pub db: DbPool,
    /// The session store.
    pub sessions: Sessions,
    /// Token signing and verification.
    pub jwt: JwtKeys,
    /// Password hashing, bounded.
    pub hasher: PasswordHasher,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The settings it was built from.
    pub config: Config,
    /// Rate limits, counted in Redis when the sessions are there, else in process.
    pub limiter: RateLimiter,
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the pools (without connecting), the session store and the keys. Fails with a
    /// message naming the setting at fault.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let secret = resolve_secret(&config).await?;
        let db = db::connect(&config.database).await?;
        let sessions = match &config.redis.url {
            Some(url) => Backend::Redis(RedisSessions::new(
                url,
                &config.redis.key_prefix,
                config.database.pool_timeout,
            )?),
            None => Backend::Sql(SqlSessions::new(db.clone())),
        };
        // Counted where the sessions are: with Redis, every replica must see the same counts.
        let limiter = match &sessions {
            Backend::Redis(redis) => RateLimiter::redis(
                &config.rate_limit,
                redis.pool().clone(),
                &config.redis.key_prefix,
                config.database.pool_timeout,
            ),
            Backend::Sql(_) => RateLimiter::in_memory(&config.rate_limit),
        };
        let metrics = Metrics::new()?;
        let sessions = Sessions::new(sessions, metrics.session_store_errors.clone());
        let jwt = JwtKeys::new(
            &secret,
            &config.auth.jwt_issuer,
            config.auth.access_token_ttl,
        );
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hasher =
            PasswordHasher::new(config.auth.hash_concurrency.map_or(cores, |n| n as usize))?;
        Ok(AppState(Arc::new(Inner {
            db,
            sessions,
            jwt,
            hasher,
            metrics,
            config,
            limiter,
        })))
    }
}

/// The configured JWT secret; with SQLite and none configured, the one kept in the data
/// folder, generated on first start.
async fn resolve_secret(config: &Config) -> anyhow::Result<SecretString> {
    if let Some(secret) = &config.auth.jwt_secret {
        if secret.expose_secret().len() < MIN_SECRET_BYTES {
            bail!("JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long");
        }
        // Only the configured key: the generated one below is random by construction.
        if let Some(weakness) = key_strength::weakness(secret.expose_secret()) {
            bail!(
                "JWT_SECRET is too easy to guess: {weakness}; use a random key, e.g. the output of `openssl rand -hex 32`"
            );
        }
        return Ok(secret.clone());
    }
    match &config.database.url {
        DatabaseUrl::Mysql(_) => bail!("JWT_SECRET is required when DATABASE_URL is a MySQL URL"),
        DatabaseUrl::Sqlite(_) => {
            let dir = config.database.url.sqlite_dir().unwrap_or_default();
            load_or_create_secret(&dir.join("jwt-secret")).await
        }
    }
}

async fn load_or_create_secret(path: &Path) -> anyhow::Result<SecretString> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) if text.trim().len() >= MIN_SECRET_BYTES => {
            return Ok(SecretString::from(text.trim().to_owned()));
        }
        Ok(_) => bail!(
            "{} holds a JWT secret shorter than {MIN_SECRET_BYTES} bytes",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The database's folder: private when made here, as when the database makes it.
        db::create_private_dir(dir)
            .await
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let written = async {
        use tokio::io::AsyncWriteExt as _;
        let mut file = options.open(path).await?;
        file.write_all(secret.as_bytes()).await?;
        file.sync_all().await
    }
    .await;
    match written {
        Ok(()) => Ok(SecretString::from(secret)),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Box::pin(load_or_create_secret(path)).await
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}
