//! The session store: a token is honoured only while its session exists here, so logout,
//! password change and account deletion really revoke. Redis when configured, else a table of
//! the database; one trait, two implementations, chosen at start-up.

mod redis;
mod sql;

use std::future::Future;

use chrono::{DateTime, Utc};
use prometheus::IntCounter;

pub use self::redis::RedisSessions;
pub use self::sql::SqlSessions;
use super::SignInContext;
use super::access_tokens::IssuedToken;
use crate::error::AppError;

/// A session to record.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session id (the token's `jti`).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the session (and its token) expires.
    pub expires_at: DateTime<Utc>,
    /// The `User-Agent` of the request that opened it.
    pub user_agent: Option<String>,
}

impl NewSession {
    /// The session of a freshly issued access token of `user_id`.
    pub fn for_token(user_id: &str, token: &IssuedToken, context: &SignInContext) -> Self {
        NewSession {
            id: token.session_id.clone(),
            user_id: user_id.to_owned(),
            created_at: token.issued_at,
            expires_at: token.expires_at,
            user_agent: context.user_agent.clone(),
        }
    }
}

/// A live session as the store keeps it, for the owner's list of sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id (the token's `jti`).
    pub id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When the session (and its token) expires.
    pub expires_at: DateTime<Utc>,
    /// The `User-Agent` of the request that opened it.
    pub user_agent: Option<String>,
}

/// What a session store does. Every method fails with `Unavailable` when the store cannot be
/// reached, so a token is never accepted unchecked.
pub trait SessionStore: Send + Sync {
    /// Records a new session.
    fn create(&self, session: &NewSession) -> impl Future<Output = Result<(), AppError>> + Send;
    /// Whether the session exists and has not expired; O(1) however many sessions the user has.
    fn is_active(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;
    /// Ends one session of the user; returns whether it was live. Another user's session id
    /// matches nothing.
    fn revoke(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;
    /// Ends every session of the user except `keep`.
    fn revoke_all(
        &self,
        user_id: &str,
        keep: Option<&str>,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
    /// Checks that the store answers.
    fn ping(&self) -> impl Future<Output = Result<(), AppError>> + Send;
    /// The user's live sessions, oldest first.
    fn list(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, AppError>> + Send;
}

/// The store chosen at start-up, counting the calls that could not reach it.
#[derive(Debug, Clone)]
pub struct Sessions {
    backend: Backend,
    unreachable: IntCounter,
}

/// The two implementations.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Redis, shared by every replica.
    Redis(RedisSessions),
    /// The `sessions` table of the database.
    Sql(SqlSessions),
}

impl Sessions {
    /// The store `backend`; `unreachable` counts calls that fail with `Unavailable`.
    pub fn new(backend: Backend, unreachable: IntCounter) -> Self {
        Sessions {
            backend,
            unreachable,
        }
    }

    /// Which store this is, for logs and readiness output.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Redis(_) => "redis",
            Backend::Sql(_) => "database",
        }
    }

    /// The SQL store, which needs a periodic purge of expired rows.
    pub fn sql(&self) -> Option<&SqlSessions> {
        match &self.backend {
            Backend::Sql(s) => Some(s),
            Backend::Redis(_) => None,
        }
    }

    fn count<T>(&self, result: Result<T, AppError>) -> Result<T, AppError> {
        if let Err(AppError::Unavailable { .. }) = &result {
            self.unreachable.inc();
        }
        result
    }
}

impl SessionStore for Sessions {
    async fn create(&self, session: &NewSession) -> Result<(), AppError> {
        self.count(match &self.backend {
            Backend::Redis(s) => s.create(session).await,
            Backend::Sql(s) => s.create(session).await,
        })
    }

    async fn is_active(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        self.count(match &self.backend {
            Backend::Redis(s) => s.is_active(user_id, session_id).await,
            Backend::Sql(s) => s.is_active(user_id, session_id).await,
        })
    }

    async fn revoke(&self, user_id: &str, session_id: &str) -> Result<bool, AppError> {
        self.count(match &self.backend {
            Backend::Redis(s) => s.revoke(user_id, session_id).await,
            Backend::Sql(s) => s.revoke(user_id, session_id).await,
        })
    }

    async fn revoke_all(&self, user_id: &str, keep: Option<&str>) -> Result<(), AppError> {
        self.count(match &self.backend {
            Backend::Redis(s) => s.revoke_all(user_id, keep).await,
            Backend::Sql(s) => s.revoke_all(user_id, keep).await,
        })
    }

    async fn ping(&self) -> Result<(), AppError> {
        self.count(match &self.backend {
            Backend::Redis(s) => s.ping().await,
            Backend::Sql(s) => s.ping().await,
        })
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>, AppError> {
        self.count(match &self.backend {
            Backend::Redis(s) => s.list(user_id).await,
            Backend::Sql(s) => s.list(user_id).await,
        })
    }
}
