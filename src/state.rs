//! `AppState`: the services and what the adapters need beside them (readiness probes, metrics,
//! the configuration), built once by [`AppState::build`] (in `main` and in tests alike) and
//! cheap to clone. Only the adapters, `lib.rs` and `main.rs` see it; each service is built from
//! exactly what it uses.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, DatabaseUrl};
use crate::db::replicas::Replicas;
use crate::db::{self, DbError, DbPool};
use crate::events::AccountEvents;
use crate::infra::metrics::Metrics;
use crate::infra::redis::{self, Redis};
use crate::mail::compose::Composer;
use crate::mail::delivery::Delivery;
use crate::mail::transport::Transport;
use crate::mfa::Mfa;
use crate::mfa::keys::MfaKeys;
use crate::ratelimit::RateLimiter;
use crate::signins::key_strength;
use crate::signins::store::{Backend, RedisSessions, Sessions, SqlSessions};
use crate::signins::{PasswordHasher, SignIns};
use crate::users::{Mailroom, Users};

/// Shortest HS256 key accepted: RFC 7518 asks for a key at least as long as the hash (32 bytes).
pub const MIN_SECRET_BYTES: usize = 32;

/// Shared application state.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// Accounts, profiles, roles.
    pub users: Users,
    /// Credentials checks, sessions, refresh tokens, revocation.
    pub sign_ins: Arc<SignIns>,
    /// Second factors: TOTP enrolment, recovery codes, the second step of a login.
    pub mfa: Mfa,
    /// The connections the readiness probe and the metrics look at.
    pub dependencies: Dependencies,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// The settings it was built from.
    pub config: Config,
    /// Where the JWT secret came from.
    pub secret_origin: SecretOrigin,
    /// Where mails go, for the delivery worker and the start-up log.
    pub mail_transport: Arc<Transport>,
    /// Notified when a mail was queued, to wake the delivery worker.
    mail_queued: Arc<Notify>,
    /// Set when the server stops: what outlives requests (WebSocket connections) ends.
    stopping: watch::Sender<bool>,
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The pools the services share, as the web edge's probes and metrics see them.
#[derive(Debug, Clone)]
pub struct Dependencies {
    db: DbPool,
    replicas: Arc<Replicas>,
    redis: Option<Redis>,
    /// How long a probe waits for an answer.
    timeout: std::time::Duration,
}

impl Dependencies {
    /// Checks that the database answers.
    pub async fn ping_database(&self) -> Result<(), DbError> {
        self.db.ping().await
    }

    /// The database's read replicas.
    pub fn replicas(&self) -> &Replicas {
        &self.replicas
    }

    /// The database pool's state and size.
    pub fn database_pool(&self) -> (bb8::State, u32) {
        (self.db.state(), self.db.max_size())
    }

    /// The Redis pool's state and size, when there is one (a Redis Cluster has a connection
    /// per node, not a pool).
    pub fn redis_pool(&self) -> Option<(bb8::State, u32)> {
        match &self.redis {
            Some(Redis::Single(pool)) => Some((pool.state(), pool.max_size())),
            _ => None,
        }
    }

    /// Each node of the Redis Cluster and its state; `None` without a cluster.
    pub async fn redis_cluster_state(
        &self,
    ) -> Option<anyhow::Result<Vec<crate::infra::redis::ClusterNode>>> {
        let redis = self.redis.as_ref()?;
        redis::cluster_state(redis, self.timeout).await
    }

    /// The Redis pool, when the server has one: for what the adapters keep beside the
    /// services (the GraphQL persisted queries).
    pub fn redis(&self) -> Option<&Redis> {
        self.redis.as_ref()
    }

    /// The database pool itself, for tooling that works beside the services (the tests'
    /// inspection of stored rows).
    pub fn database(&self) -> &DbPool {
        &self.db
    }
}

/// Where the JWT secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// `JWT_SECRET`.
    Configured,
    /// The file next to the SQLite database, as an earlier start left it.
    File(PathBuf),
    /// Generated at this start and written to this file.
    Generated(PathBuf),
}

impl AppState {
    /// Builds the pools (without connecting), the session store, the keys and the services.
    /// Fails with a message naming the setting at fault.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        config.database.check().map_err(|e| anyhow::anyhow!(e))?;
        let (secret, secret_origin) = resolve_secret(&config).await?;
        let db = db::connect(&config.database).await?;
        let timeout = config.database.pool_timeout;
        let redis = config
            .redis
            .url
            .as_deref()
            .map(|url| redis::connect(url, timeout))
            .transpose()?;
        let metrics = Metrics::new()?;
        let replicas = Arc::new(Replicas::new(
            db.clone(),
            &config.database,
            metrics.replicas.clone(),
        ));
        // Counted where the sessions are: with Redis, every replica must see the same counts.
        let (store, limiter) = match &redis {
            Some(pool) => (
                Backend::Redis(RedisSessions::new(
                    pool.clone(),
                    &config.redis.key_prefix,
                    timeout,
                    config.redis.revocation_replicas(),
                )),
                RateLimiter::redis(
                    &config.rate_limit,
                    pool.clone(),
                    &config.redis.key_prefix,
                    timeout,
                ),
            ),
            None => (
                Backend::Sql(SqlSessions::new(db.clone())),
                RateLimiter::in_memory(&config.rate_limit),
            ),
        };
        let store = Sessions::new(store, metrics.session_store_errors.clone());
        let events = match (&redis, &config.redis.url) {
            (Some(pool), Some(url)) => AccountEvents::over_redis(
                url,
                pool.clone(),
                &config.redis.key_prefix,
                timeout,
                metrics.events.clone(),
            )?,
            _ => AccountEvents::in_process(metrics.events.clone()),
        };
        let limiter = Arc::new(limiter);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hasher =
            PasswordHasher::new(config.auth.hash_concurrency.map_or(cores, |n| n as usize))?;
        let sign_ins = Arc::new(SignIns::new(
            db.clone(),
            store,
            &secret,
            &config.auth,
            config.refresh.clone(),
            hasher.clone(),
            limiter.clone(),
            config.lifecycle.require_email_verification,
            events,
        ));
        let mail_queued = Arc::new(Notify::new());
        let mail_transport = Arc::new(Transport::from_config(&config.mail)?);
        let mailroom = Arc::new(Mailroom::new(
            Composer::new(&config.mail)?,
            link_base(&config),
            Duration::from_secs(config.lifecycle.password_reset_ttl.into()),
            Duration::from_secs(config.lifecycle.email_verification_ttl.into()),
            mail_queued.clone(),
        ));
        let mfa = Mfa::new(
            db.clone(),
            MfaKeys::new(config.auth.mfa_encryption_key.as_ref(), &secret),
            sign_ins.clone(),
            mailroom.clone(),
            config.mail.app_name.clone(),
        );
        let users = Users::new(
            db.clone(),
            replicas.clone(),
            hasher,
            limiter,
            sign_ins.clone(),
            mailroom,
        );
        Ok(AppState(Arc::new(Inner {
            users,
            sign_ins,
            mfa,
            dependencies: Dependencies {
                db,
                replicas,
                redis,
                timeout,
            },
            metrics,
            config,
            secret_origin,
            mail_transport,
            mail_queued,
            stopping: watch::channel(false).0,
        })))
    }

    /// Tells what outlives requests (WebSocket connections) that the server stops.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Changes to `true` when the server stops (see [`AppState::stop`]).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Starts the work the server does beside requests: the purges of what expires, and the
    /// mail delivery worker. The tasks run until aborted (or the runtime stops).
    pub fn spawn_background(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = self.sign_ins.spawn_maintenance();
        tasks.extend(self.users.spawn_maintenance());
        tasks.extend(self.mfa.spawn_maintenance());
        let delivery = Delivery {
            db: self.dependencies.db.clone(),
            transport: self.mail_transport.clone(),
            wake: self.mail_queued.clone(),
            max_attempts: self.config.mail.max_attempts,
            retry_base: self.config.mail.retry_base,
            lease: self.config.mail.smtp_timeout * 2,
            metrics: self.metrics.mail.clone(),
        };
        tasks.push(delivery.spawn());
        tasks.extend(self.dependencies.replicas.clone().spawn_checks());
        tasks
    }
}

/// Where links in mails point: `EMAIL_LINK_BASE` (the frontend), else `PUBLIC_URL` (this
/// server, as readers reach it), else this server at `BIND` (`localhost` for an unspecified
/// address, which no browser can open).
fn link_base(config: &Config) -> String {
    let lifecycle = &config.lifecycle;
    if let Some(base) = lifecycle.email_link_base().or(lifecycle.public_url()) {
        return base.trim_end_matches('/').to_owned();
    }
    let bind = config.http.bind;
    if bind.ip().is_unspecified() {
        format!("http://localhost:{}", bind.port())
    } else {
        format!("http://{bind}")
    }
}

/// The configured JWT secret; with SQLite and none configured, the one kept in the data
/// folder, generated on first start.
async fn resolve_secret(config: &Config) -> anyhow::Result<(SecretString, SecretOrigin)> {
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
        return Ok((secret.clone(), SecretOrigin::Configured));
    }
    match &config.database.url {
        DatabaseUrl::Mysql(_) => bail!("JWT_SECRET is required when DATABASE_URL is a MySQL URL"),
        DatabaseUrl::Sqlite(_) => {
            let dir = config.database.url.sqlite_dir().unwrap_or_default();
            let path = dir.join("jwt-secret");
            let (secret, generated) = load_or_create_secret(&path).await?;
            let origin = if generated {
                SecretOrigin::Generated(path)
            } else {
                SecretOrigin::File(path)
            };
            Ok((secret, origin))
        }
    }
}

/// The secret kept at `path`, and whether it was generated just now.
async fn load_or_create_secret(path: &Path) -> anyhow::Result<(SecretString, bool)> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) if text.trim().len() >= MIN_SECRET_BYTES => {
            return Ok((SecretString::from(text.trim().to_owned()), false));
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
        Ok(()) => Ok((SecretString::from(secret), true)),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Box::pin(load_or_create_secret(path)).await
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}
