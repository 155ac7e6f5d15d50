//! Sign-ins: checking credentials, the sessions they open, the refresh tokens that renew them,
//! and ending them. [`SignIns`] is the service; GraphQL and REST both call it.
//!
//! Words used here, one meaning each: a *sign-in* is what a login (or registration) opens and
//! a logout ends; its *session* is the session store's entry for its current access token (the
//! id is the token's `jti`, and each refresh replaces it); its *family* is its chain of refresh
//! tokens. [`SignedIn`] is what a client gets when a sign-in opens or is renewed; [`Viewer`] is
//! the caller a valid access token identifies.

pub mod access_tokens;
pub mod challenges;
pub mod context;
pub mod key_strength;
pub mod password;
pub mod refresh_tokens;
pub mod store;

mod lifecycle;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::task::JoinHandle;

use self::access_tokens::{AccessTokens, IssuedToken};
use self::refresh_tokens::SuccessorKey;
use self::store::{NewSession, SessionStore as _, Sessions};
use crate::accounts::model::{User, UserView};
use crate::accounts::{repo, validation};
use crate::config::{AuthConfig, RefreshConfig};
use crate::db::DbPool;
use crate::error::{AppError, MfaChallenge};
use crate::events::{AccountEventKind, AccountEvents, Listener};
use crate::infra::jobs;
use crate::infra::opaque_token;
use crate::ratelimit::{PasswordCheck, RateLimiter};

pub use self::context::SignInContext;
pub use self::lifecycle::SessionView;
pub use self::password::PasswordHasher;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The caller's account, as stored now.
    pub user: User,
    /// The session (token `jti`) that made the request.
    pub session_id: String,
    /// Whether the caller must verify their address before doing more than `me`, asking for
    /// a verification mail, verifying, signing out and deleting the account
    /// (`REQUIRE_EMAIL_VERIFICATION` is on and the address is unverified).
    pub must_verify: bool,
}

impl Viewer {
    /// Refuses a caller who must verify their address first (see [`Viewer::must_verify`]):
    /// every operation but the few that lead there calls it.
    pub fn require_verified(&self) -> Result<(), AppError> {
        if self.must_verify {
            Err(AppError::EMAIL_NOT_VERIFIED)
        } else {
            Ok(())
        }
    }
}

/// A caller signed in for as long as a connection lasts (see [`SignIns::watch`]).
#[derive(Debug)]
pub struct Watch {
    /// The caller.
    pub viewer: Viewer,
    /// The events of the caller's account, from before the session was checked.
    pub events: Listener,
    /// When the token expires, ending what it signed in.
    pub expires_at: DateTime<Utc>,
}

/// A sign-in opened or renewed: its access token, its refresh token, and the user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The access token.
    pub token: IssuedToken,
    /// The user, as they see themself.
    pub user: UserView,
    /// The refresh token that renews this sign-in (see [`SignIns::refresh`]).
    pub refresh_token: String,
}

/// A sign-in whose password was right, awaiting its second factor (see
/// [`SignIns::begin_second_factor`]): the code has been counted against the login limits.
/// Once the code is checked, a wrong one goes to [`SignIns::count_wrong_code`] and a right one
/// to [`SignIns::claim_second_factor`], either of which spends one of the challenge's
/// attempts, before the answer is given; a right code then completes the sign-in with
/// [`SignIns::complete_second_factor`]. Dropped, it leaves the code counted as a failure.
#[derive(Debug)]
#[must_use = "a right code must complete the sign-in"]
pub struct SecondFactor {
    /// The user signing in, as stored now.
    pub user: User,
    token_hash: String,
    check: PasswordCheck,
    /// When the challenge was found alive: its expiry is checked again against this.
    now: NaiveDateTime,
}

/// How often [`SignIns::end_later`] tries again to end sign-ins the session store could not.
const END_LATER_EVERY: Duration = Duration::from_secs(2);
/// How many times: 30 minutes in all, the default access-token lifetime, past which the
/// sessions have lapsed on their own.
const END_LATER_TRIES: u32 = 900;

/// Every bad `mfaToken` — malformed, unknown, used, expired, out of attempts, of an account
/// whose password or MFA changed since — gets this one answer: sign in again.
const BAD_MFA_TOKEN: AppError =
    AppError::Unauthenticated("invalid or expired mfa token; sign in again");

/// The wrong-credentials error: one message for an unknown user and a wrong password.
const BAD_CREDENTIALS: AppError = AppError::Unauthenticated("invalid username or password");

/// How often expired sessions (SQL store) and refresh tokens are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// The sign-in service: built from exactly what it uses.
#[derive(Debug)]
pub struct SignIns {
    db: DbPool,
    store: Sessions,
    access: AccessTokens,
    successors: SuccessorKey,
    hasher: PasswordHasher,
    limiter: Arc<RateLimiter>,
    refresh: RefreshConfig,
    require_verification: bool,
    events: AccountEvents,
}

impl SignIns {
    /// The service over the user database `db` and the session store `store`, signing with
    /// `secret` under `auth`'s settings, renewing under `refresh`'s; with
    /// `require_verification`, callers with an unverified address are held to a few operations.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DbPool,
        store: Sessions,
        secret: &SecretString,
        auth: &AuthConfig,
        refresh: RefreshConfig,
        hasher: PasswordHasher,
        limiter: Arc<RateLimiter>,
        require_verification: bool,
        events: AccountEvents,
    ) -> Self {
        SignIns {
            require_verification,
            events,
            db,
            store,
            access: AccessTokens::new(secret, &auth.jwt_issuer, auth.access_token_ttl),
            successors: SuccessorKey::from_secret(secret.expose_secret().as_bytes()),
            hasher,
            limiter,
            refresh,
        }
    }

    /// Which session store this is, for logs and readiness output.
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The session store, for tooling that looks beside the service (the tests).
    pub fn store(&self) -> &Sessions {
        &self.store
    }

    /// The access-token keys, for tooling that looks beside the service (the tests).
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access
    }

    /// The rate limiter this service (and `Users`) counts attempts in.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Checks that the session store answers.
    pub async fn ping_store(&self) -> Result<(), AppError> {
        self.store.ping().await
    }

    /// Starts the periodic purges of what expires: refresh tokens, MFA challenges, and sessions when the
    /// store is the database (Redis expires its keys itself).
    pub fn spawn_maintenance(&self) -> Vec<JoinHandle<()>> {
        let db = self.db.clone();
        let challenges_db = self.db.clone();
        let mut jobs = vec![
            jobs::every("purge expired refresh tokens", PURGE_EVERY, move || {
                let db = db.clone();
                async move {
                    refresh_tokens::repo::purge_expired(&db, None, Utc::now().naive_utc()).await
                }
            }),
            jobs::every("purge expired mfa challenges", PURGE_EVERY, move || {
                let db = challenges_db.clone();
                async move { challenges::purge_expired(&db, Utc::now().naive_utc()).await }
            }),
        ];
        if let Some(sql) = self.store.sql() {
            let sql = sql.clone();
            jobs.push(jobs::every(
                "purge expired sessions",
                PURGE_EVERY,
                move || {
                    let sql = sql.clone();
                    async move { sql.purge_expired().await }
                },
            ));
        }
        jobs
    }

    /// Checks credentials and opens a new sign-in. An unknown username spends a hash too, so
    /// the two failures look alike in time as well as in message. Every attempt counts against
    /// the rate limits per client address and per username, checked before any hash is spent.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        context: &SignInContext,
    ) -> Result<SignedIn, AppError> {
        let valid_username = validation::username(username).is_ok();
        let username_key = valid_username.then(|| username.to_lowercase());
        let check = self
            .limiter
            .begin_password_check(username_key.as_deref(), context.ip)
            .await?;
        let user = if valid_username {
            repo::find_by_username(&self.db, username).await?
        } else {
            None
        };
        let valid = match &user {
            Some(user) => {
                self.hasher
                    .verify(password, user.password_hash.clone())
                    .await?
            }
            None => self.hasher.verify_dummy(password).await?,
        };
        match user {
            Some(user) if valid => {
                self.limiter.password_was_right(check).await;
                // Only now, with the password proven: a guesser learns nothing from it.
                if user.disabled {
                    return Err(AppError::ACCOUNT_DISABLED);
                }
                if user.mfa_enabled {
                    let token = challenges::open(
                        &self.db,
                        &user.id,
                        user.credentials_version,
                        Utc::now().naive_utc(),
                    )
                    .await?;
                    return Err(AppError::MfaRequired(MfaChallenge(token)));
                }
                self.start(user, context).await
            }
            _ => Err(BAD_CREDENTIALS),
        }
    }

    /// Takes a second-factor code for the challenge `mfa_token`: counts it against the login
    /// limits (per address first, before anything is looked up; then per user, against the
    /// limit of wrong codes), and returns the sign-in it would complete, for the caller to
    /// check the code. A bad token, or one whose account changed its password, lost MFA or
    /// went away since, is UNAUTHENTICATED; a disabled account is ACCOUNT_DISABLED (its
    /// challenges end when it is disabled, so this is seen only in a race).
    pub async fn begin_second_factor(
        &self,
        mfa_token: &str,
        context: &SignInContext,
    ) -> Result<SecondFactor, AppError> {
        if !opaque_token::is_well_formed(mfa_token) {
            return Err(BAD_MFA_TOKEN);
        }
        self.limiter.check_login_address(context.ip).await?;
        let token_hash = opaque_token::hash(mfa_token);
        let now = Utc::now().naive_utc();
        let (credentials_version, user) = challenges::find_live(&self.db, &token_hash, now)
            .await?
            .ok_or(BAD_MFA_TOKEN)?;
        if user.credentials_version != credentials_version || !user.mfa_enabled {
            return Err(BAD_MFA_TOKEN);
        }
        if user.disabled {
            return Err(AppError::ACCOUNT_DISABLED);
        }
        let check = self.limiter.begin_code_check(&user.id).await?;
        Ok(SecondFactor {
            user,
            token_hash,
            check,
            now,
        })
    }

    /// Spends one of the challenge's attempts on a code found wrong, before the caller says
    /// so: UNAUTHENTICATED instead when the challenge has none left (or expired, or was used
    /// since), so that however many codes are sent at once, at most
    /// [`challenges::MAX_ATTEMPTS`] of them get an answer.
    pub async fn count_wrong_code(&self, pending: SecondFactor) -> Result<(), AppError> {
        if challenges::count_attempt(&self.db, &pending.token_hash, pending.now).await? {
            Ok(())
        } else {
            Err(BAD_MFA_TOKEN)
        }
    }

    /// Uses up the challenge of a sign-in whose code was found right, if it has an attempt
    /// left, before the code itself is used up: of two requests completing one challenge at
    /// once, only one goes on to spend its code. UNAUTHENTICATED when another request claimed
    /// it first, or wrong codes spent its attempts meanwhile.
    pub async fn claim_second_factor(&self, pending: &SecondFactor) -> Result<(), AppError> {
        if challenges::claim(&self.db, &pending.token_hash, pending.now).await? {
            Ok(())
        } else {
            Err(BAD_MFA_TOKEN)
        }
    }

    /// Completes a claimed sign-in whose code was used up: takes back the code's failure
    /// counts and opens the sign-in.
    pub async fn complete_second_factor(
        &self,
        pending: SecondFactor,
        context: &SignInContext,
    ) -> Result<SignedIn, AppError> {
        self.limiter.password_was_right(pending.check).await;
        self.start(pending.user, context).await
    }

    /// Ends every sign-in of the user that awaits its second factor (MFA was turned off).
    pub async fn end_challenges(&self, user_id: &str) -> Result<(), AppError> {
        challenges::end_for_user(&self.db, user_id).await?;
        Ok(())
    }

    /// Checks `given` as the current password of `user` (a password change proving it),
    /// under the same limits as a login, counted before the hash: a stolen token cannot test
    /// passwords faster than the login can. `wrong` is the error for a wrong password.
    pub async fn check_password(
        &self,
        user: &User,
        given: String,
        client: &SignInContext,
        wrong: AppError,
    ) -> Result<(), AppError> {
        let username = user.username.to_lowercase();
        let check = self
            .limiter
            .begin_password_check(Some(&username), client.ip)
            .await?;
        if !self
            .hasher
            .verify(given, user.password_hash.clone())
            .await?
        {
            return Err(wrong);
        }
        self.limiter.password_was_right(check).await;
        Ok(())
    }

    /// Opens a sign-in for `user`, whose credentials were just checked (or who just
    /// registered): an access session and the refresh-token family that renews it.
    pub async fn start(&self, user: User, context: &SignInContext) -> Result<SignedIn, AppError> {
        let token = self.access.issue(&user.id)?;
        let session = NewSession::for_token(&user.id, &token, context);
        self.store.create(&session).await?;
        let finished = async {
            let refresh_token = self.open_family(&user, &token, context).await?;
            let stands = self.confirm_sign_in(&user, &token.session_id).await?;
            Ok::<_, AppError>((refresh_token, stands))
        };
        let refresh_token = match finished.await {
            Ok((refresh_token, true)) => refresh_token,
            // Withdrawn by the confirmation itself.
            Ok((_, false)) => return Err(lifecycle::CREDENTIALS_CHANGED),
            Err(e) => {
                self.withdraw(&user.id, &token.session_id).await;
                return Err(e);
            }
        };
        self.events
            .publish(
                &user.id,
                AccountEventKind::SessionStarted,
                Some(&token.session_id),
            )
            .await;
        Ok(SignedIn {
            token,
            user: UserView::own(user),
            refresh_token,
        })
    }

    /// Resolves a bearer token to its caller: a valid signature, a live session and an
    /// existing account are all required.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Viewer, AppError> {
        let token = token.ok_or(AppError::Unauthenticated("missing access token"))?;
        let claims = self.access.verify(token)?;
        if !self.store.is_active(&claims.sub, &claims.jti).await? {
            return Err(AppError::Unauthenticated(
                "the token has been revoked or has expired",
            ));
        }
        let user = repo::find_by_id(&self.db, &claims.sub)
            .await?
            .ok_or(AppError::Unauthenticated("the account no longer exists"))?;
        // Disabling ends every session, so this catches only a sign-in that slipped between
        // the two; it costs nothing, the account is read anyway.
        if user.disabled {
            return Err(AppError::ACCOUNT_DISABLED);
        }
        Ok(Viewer {
            must_verify: self.require_verification && !user.email_verified,
            user,
            session_id: claims.jti,
        })
    }

    /// Signs in a caller that stays connected (a WebSocket): checks `token` as
    /// [`SignIns::authenticate`] does, and starts listening to the account's events *before*
    /// the session is checked, so that no event ending the session can fall between the
    /// check and the listening.
    pub async fn watch(&self, token: &str) -> Result<Watch, AppError> {
        let claims = self.access.verify(token)?;
        let events = self.events.listen(&claims.sub).await?;
        let viewer = self.authenticate(Some(token)).await?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .ok_or(AppError::Unauthenticated("invalid or expired token"))?;
        Ok(Watch {
            viewer,
            events,
            expires_at,
        })
    }

    /// Ends the caller's sign-in: its session and its refresh tokens.
    pub async fn logout(&self, viewer: &Viewer) -> Result<(), AppError> {
        self.store
            .revoke(&viewer.user.id, &viewer.session_id)
            .await?;
        self.end_family_of_session(&viewer.user.id, &viewer.session_id)
            .await?;
        self.events
            .publish(
                &viewer.user.id,
                AccountEventKind::SessionEnded,
                Some(&viewer.session_id),
            )
            .await;
        Ok(())
    }

    /// The account events, for the listeners (the GraphQL subscription) and for `Users`.
    pub fn events(&self) -> &AccountEvents {
        &self.events
    }

    /// Ends every sign-in of the user (sessions and refresh tokens), for an account that is
    /// going away.
    pub async fn end_all(&self, user_id: &str) -> Result<(), AppError> {
        self.store.revoke_all(user_id, None).await?;
        refresh_tokens::repo::delete_for_user(&self.db, user_id, None).await?;
        challenges::end_for_user(&self.db, user_id).await?;
        Ok(())
    }

    /// Ends every access session of the user, for an account an admin just disabled (which
    /// moved its credentials version on first, so that its refresh tokens no longer work and a
    /// sign-in racing this withdraws). The refresh tokens stay, dead, so that a refresh can
    /// answer ACCOUNT_DISABLED rather than a bare UNAUTHENTICATED; see
    /// [`SignIns::end_refresh_tokens`].
    pub async fn end_sessions(&self, user_id: &str) -> Result<(), AppError> {
        self.store.revoke_all(user_id, None).await
    }

    /// Deletes every refresh token of the user, for an account about to be enabled again:
    /// those its disabling left behind.
    pub async fn end_refresh_tokens(&self, user_id: &str) -> Result<(), AppError> {
        refresh_tokens::repo::delete_for_user(&self.db, user_id, None).await?;
        Ok(())
    }

    /// [`SignIns::end_all`] after a change that stands (a password reset): when the session
    /// store cannot be reached, the change is not undone, so the sign-ins are ended in the
    /// background instead (see [`SignIns::end_later`]).
    pub async fn end_all_surely(self: &Arc<Self>, user_id: &str) {
        if let Err(e) = self.end_all(user_id).await {
            tracing::warn!(error = %e, %user_id, "could not end the user's sign-ins yet; retrying");
            Arc::clone(self).end_later(user_id.to_owned(), None);
        }
    }

    /// [`SignIns::end_others`] after a change that stands (a password change, MFA turned on):
    /// when the session store cannot be reached, the other sign-ins are ended in the
    /// background instead (see [`SignIns::end_later`]). Returns the credentials version the
    /// caller's sign-in carries on under (the change moved it on by one).
    pub async fn end_others_surely(self: &Arc<Self>, viewer: &Viewer) -> i64 {
        match self.end_others(viewer).await {
            Ok(version) => version,
            Err(e) => {
                tracing::warn!(error = %e, user_id = %viewer.user.id, "could not end the other sign-ins yet; retrying");
                Arc::clone(self).end_later(viewer.user.id.clone(), Some(viewer.clone()));
                viewer.user.credentials_version.saturating_add(1)
            }
        }
    }

    /// Ends the sign-ins of `user_id` (all, or all but `keep`'s) in the background, every
    /// [`END_LATER_EVERY`] until the session store answers. Gives up after
    /// [`END_LATER_TRIES`], when the sessions have lapsed on their own.
    fn end_later(self: Arc<Self>, user_id: String, keep: Option<Viewer>) {
        tokio::spawn(async move {
            for _ in 0..END_LATER_TRIES {
                tokio::time::sleep(END_LATER_EVERY).await;
                let ended = match &keep {
                    Some(viewer) => self.end_others(viewer).await.map(|_| ()),
                    None => self.end_all(&user_id).await,
                };
                if ended.is_ok() {
                    return;
                }
            }
            tracing::error!(%user_id, "the user's sign-ins could not be ended; they lapse with their access tokens");
        });
    }

    /// Ends every sign-in of the caller but the one that made the request, after their
    /// password changed (which moved the credentials version on, in the same statement);
    /// returns the new credentials version, under which the caller's sign-in carries on.
    pub async fn end_others(&self, viewer: &Viewer) -> Result<i64, AppError> {
        let user_id = &viewer.user.id;
        self.store
            .revoke_all(user_id, Some(&viewer.session_id))
            .await?;
        let version = repo::find_credentials_version(&self.db, user_id)
            .await?
            .ok_or(AppError::Unauthenticated("the account no longer exists"))?;
        self.end_other_families(user_id, &viewer.session_id, version)
            .await?;
        Ok(version)
    }
}
