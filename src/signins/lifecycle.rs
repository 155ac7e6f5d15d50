//! A sign-in's life after it opened, as its owner sees it: the list of sessions, ending one
//! or all of them, and renewing one with a refresh token (rotation with reuse detection).
//!
//! Each refresh token row names the session issued with it, and a refresh replaces both: a
//! new session, a new token, the old ones ended.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::access_tokens::IssuedToken;
use super::refresh_tokens::{self as refresh, repo as tokens, repo::RefreshRow};
use super::store::{NewSession, SessionStore as _};
use super::{SignInContext, SignIns, SignedIn, Viewer};
use crate::accounts::model::{User, UserView};
use crate::accounts::{repo, validation};
use crate::error::AppError;
use crate::events::AccountEventKind;

/// One of the caller's sessions, as `sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The session id: the `jti` of its current access token. A refresh replaces it.
    pub id: String,
    /// When this session id was issued (the sign-in, or its latest refresh).
    pub created_at: DateTime<Utc>,
    /// When the session ends unless it is used: its refresh token's expiry (a refresh pushes
    /// it back), or its access token's for a session without one.
    pub expires_at: DateTime<Utc>,
    /// The `User-Agent` of the request that opened it (or last refreshed it).
    pub user_agent: Option<String>,
    /// Whether this is the session that made the request.
    pub current: bool,
}

/// Every refresh-token error a client can get, save reuse: one message, so a caller learns
/// nothing about which of unknown, expired or revoked it was.
const INVALID_REFRESH: AppError = AppError::Unauthenticated("invalid or expired refresh token");
/// A rotated token presented after the grace window.
const REUSED_REFRESH: AppError = AppError::Unauthenticated(
    "this refresh token was already used; the sign-in has been ended, sign in again",
);
/// Rotations followed from an old token to its family's live one within the grace window.
/// Real clients refresh once per access-token lifetime, so a longer chain within seconds is
/// not a browser's tabs.
const MAX_GRACE_HOPS: usize = 4;

/// A sign-in whose credentials were replaced (or whose sessions were all ended) while it ran.
pub(super) const CREDENTIALS_CHANGED: AppError =
    AppError::Unauthenticated("the account's sign-ins were ended meanwhile; sign in again");

impl SignIns {
    /// The caller's sessions, oldest first: every live access session, and every sign-in whose
    /// access token has lapsed but whose refresh token still works (it can come back without a
    /// password, so its owner must be able to see and end it).
    pub async fn list_sessions(&self, viewer: &Viewer) -> Result<Vec<SessionView>, AppError> {
        viewer.require_verified()?;
        let user_id = &viewer.user.id;
        let live = self.store.list(user_id).await?;
        let now = Utc::now();
        let mut families: HashMap<String, RefreshRow> =
            tokens::find_live(&self.db, user_id, now.naive_utc())
                .await?
                .into_iter()
                .map(|row| (row.session_id.clone(), row))
                .collect();
        let mut views: Vec<SessionView> = live
            .into_iter()
            .map(|s| {
                let refresh_expiry = families.remove(&s.id).map(|row| row.expires_at.and_utc());
                SessionView {
                    current: s.id == viewer.session_id,
                    expires_at: refresh_expiry.map_or(s.expires_at, |r| r.max(s.expires_at)),
                    id: s.id,
                    created_at: s.created_at,
                    user_agent: s.user_agent,
                }
            })
            .collect();
        views.extend(families.into_values().map(|row| SessionView {
            current: row.session_id == viewer.session_id,
            id: row.session_id,
            created_at: row.created_at.and_utc(),
            expires_at: row.expires_at.and_utc(),
            user_agent: row.user_agent,
        }));
        views.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(views)
    }

    /// Ends one of the caller's sessions (its access token and its refresh token). Another user's
    /// session id is NOT_FOUND, as an unknown one is: whether it exists is none of the caller's
    /// business. An id the sign-in had before a refresh gave it a new one ends it too, under its
    /// new id: the caller read the list before that refresh.
    pub async fn revoke_session(&self, viewer: &Viewer, id: &str) -> Result<(), AppError> {
        viewer.require_verified()?;
        // Not a UUID: no such session, without asking either store.
        if !validation::is_id(id) {
            return Err(AppError::NotFound("session not found"));
        }
        let user_id = &viewer.user.id;
        let live = self.store.revoke(user_id, id).await?;
        // The id asked for always: a socket signed in before a refresh still goes by it (a
        // rotation ends that session without an event, so as not to close its socket).
        let mut ended = vec![id.to_owned()];
        match tokens::find_family_of_session(&self.db, user_id, id).await? {
            Some(family) => {
                for session in self.end_family(user_id, &family).await? {
                    if !ended.contains(&session) {
                        ended.push(session);
                    }
                }
            }
            None if !live => return Err(AppError::NotFound("session not found")),
            None => {}
        }
        // Each under the id its sockets know it by.
        for session in &ended {
            self.events
                .publish(user_id, AccountEventKind::SessionEnded, Some(session))
                .await;
        }
        Ok(())
    }

    /// Ends every session of the caller, the current one included, and every refresh token;
    /// returns how many sessions `list_sessions` showed. The credentials version moves on first,
    /// so a sign-in or refresh racing this one withdraws its session (see [`confirm_sign_in`]).
    pub async fn logout_all(&self, viewer: &Viewer) -> Result<usize, AppError> {
        viewer.require_verified()?;
        let count = self.list_sessions(viewer).await?.len();
        repo::bump_credentials_version(&self.db, &viewer.user.id).await?;
        self.end_all(&viewer.user.id).await?;
        self.events
            .publish(&viewer.user.id, AccountEventKind::SessionEnded, None)
            .await;
        Ok(count)
    }

    /// The end of every sign-in: a new session stands only if the user's credentials version is
    /// still the one its credentials were checked under, read after the session was stored.
    ///
    /// Why this closes the race with a password change, logoutAll or a deletion: each of those
    /// moves the version on *before* it ends the user's sessions. If this read still sees the old
    /// version, the session was stored before the version moved, hence before the revocation
    /// began, and the revocation ends it. If it sees a new version (or no user), the session is
    /// withdrawn here. Either way no session checked under old credentials survives; and it costs
    /// one small read per sign-in, nothing per request.
    ///
    /// Returns whether the sign-in stands (`false`: withdrawn). An error is an outage, not a
    /// verdict: the caller answers it as one.
    pub(super) async fn confirm_sign_in(
        &self,
        user: &User,
        session_id: &str,
    ) -> Result<bool, AppError> {
        let current = repo::find_credentials_version(&self.db, &user.id).await?;
        if current == Some(user.credentials_version) {
            return Ok(true);
        }
        self.store.revoke(&user.id, session_id).await?;
        self.end_family_of_session(&user.id, session_id).await?;
        Ok(false)
    }

    /// Withdraws a session stored for a sign-in that then failed (its token was never handed
    /// out), and the refresh-token family opened with it, if any. Best effort: the failure
    /// being answered is the request's; a session left behind lapses with its token.
    pub(super) async fn withdraw(&self, user_id: &str, session_id: &str) {
        if let Err(e) = self.store.revoke(user_id, session_id).await {
            tracing::warn!(error = %e, "cannot withdraw the session of a failed sign-in");
        }
        if let Err(e) = self.end_family_of_session(user_id, session_id).await {
            tracing::warn!(error = %e, "cannot withdraw the refresh tokens of a failed sign-in");
        }
    }

    /// Ends every refresh-token family of the user but the one that issued session `keep` (a
    /// password change keeps the sign-in that made it), which carries on under credentials
    /// version `version`. The sessions themselves are the caller's to end.
    pub(super) async fn end_other_families(
        &self,
        user_id: &str,
        keep: &str,
        version: i64,
    ) -> Result<(), AppError> {
        let family = tokens::find_family_of_session(&self.db, user_id, keep).await?;
        tokens::delete_for_user(&self.db, user_id, family.as_deref()).await?;
        if let Some(family) = family {
            tokens::update_family_version(&self.db, &family, version).await?;
        }
        Ok(())
    }

    /// Ends the refresh-token family that issued the user's session `session_id`, and its live
    /// session; returns whether there was one.
    pub(super) async fn end_family_of_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, AppError> {
        match tokens::find_family_of_session(&self.db, user_id, session_id).await? {
            Some(family) => self.end_family(user_id, &family).await.map(|_| true),
            None => Ok(false),
        }
    }

    /// Ends a family: the session of its live token (its predecessors' sessions ended as they
    /// were rotated), then every token of it; returns the sessions it ended.
    ///
    /// The sessions are revoked before the tokens go, so that a store that fails leaves the
    /// family for a retry; the tokens then go with a locked read of their sessions
    /// ([`tokens::take_family`]), and a session a rotation added in between is revoked too.
    async fn end_family(&self, user_id: &str, family_id: &str) -> Result<Vec<String>, AppError> {
        let mut sessions = tokens::find_family_sessions(&self.db, family_id).await?;
        for session_id in &sessions {
            self.store.revoke(user_id, session_id).await?;
        }
        for session_id in tokens::take_family(&self.db, family_id).await? {
            if !sessions.contains(&session_id) {
                self.store.revoke(user_id, &session_id).await?;
                sessions.push(session_id);
            }
        }
        Ok(sessions)
    }

    /// Starts the refresh-token family of a new sign-in whose access token is `token`; returns
    /// the refresh token.
    pub(super) async fn open_family(
        &self,
        user: &User,
        token: &IssuedToken,
        context: &SignInContext,
    ) -> Result<String, AppError> {
        let plaintext = refresh::generate();
        let row = self.new_row(
            &plaintext,
            uuid::Uuid::new_v4().to_string(),
            user,
            token,
            context,
        )?;
        let user_id = &user.id;
        // Keep the user's rows tidy on every sign-in; the periodic purge covers the rest.
        tokens::purge_expired(&self.db, Some(user_id), Utc::now().naive_utc()).await?;
        tokens::create(&self.db, &row).await?;
        Ok(plaintext)
    }

    fn new_row(
        &self,
        plaintext: &str,
        family_id: String,
        user: &User,
        token: &IssuedToken,
        context: &SignInContext,
    ) -> Result<RefreshRow, AppError> {
        let ttl = i64::try_from(self.refresh.token_ttl).map_err(AppError::internal)?;
        Ok(RefreshRow {
            credentials_version: user.credentials_version,
            token_hash: refresh::hash(plaintext),
            family_id,
            user_id: user.id.clone(),
            session_id: token.session_id.clone(),
            user_agent: context.user_agent.clone(),
            created_at: token.issued_at.naive_utc(),
            expires_at: (token.issued_at + Duration::seconds(ttl)).naive_utc(),
            rotated_at: None,
            successor_hash: None,
        })
    }

    /// Exchanges a refresh token for a new access token and a new refresh token (rotation); the
    /// old access session ends.
    ///
    /// - Unknown, malformed or expired: UNAUTHENTICATED.
    /// - Already rotated, within `REFRESH_REUSE_GRACE` of its rotation: the same pair the first
    ///   exchange returned (two tabs refreshing at once both end up signed in, with one token).
    /// - Already rotated, later: someone replayed an old token — it may have been stolen — so the
    ///   whole family (sign-in) is ended, and the answer is UNAUTHENTICATED.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        context: &SignInContext,
    ) -> Result<SignedIn, AppError> {
        if !refresh::is_well_formed(refresh_token) {
            return Err(INVALID_REFRESH);
        }
        let hash = refresh::hash(refresh_token);
        let row = tokens::find(&self.db, &hash)
            .await?
            .ok_or(INVALID_REFRESH)?;
        if row.expires_at.and_utc() <= Utc::now() {
            return Err(INVALID_REFRESH);
        }
        // Counted per sign-in (the token family): the access session changes with every
        // rotation, the family does not.
        self.limiter.check_refresh(&row.family_id).await?;
        let user = repo::find_by_id(&self.db, &row.user_id)
            .await?
            .ok_or(INVALID_REFRESH)?;
        // Before the version check (disabling moved the version on): the token proves a
        // sign-in of this account, so its holder may learn why it is refused.
        if user.disabled {
            return Err(AppError::ACCOUNT_DISABLED);
        }
        // A password change or logoutAll since the sign-in began: the token is dead, whatever
        // the outcome of the deletion that is ending it right now.
        if row.credentials_version != user.credentials_version {
            return Err(INVALID_REFRESH);
        }
        let row = if row.rotated_at.is_none() {
            if let Some(session) = self.rotate(&user, &row, refresh_token, context).await? {
                return Ok(session);
            }
            // Another request rotated it a moment ago: read it again and share that result.
            tokens::find(&self.db, &hash)
                .await?
                .ok_or(INVALID_REFRESH)?
        } else {
            row
        };
        self.resume(user, row, refresh_token.to_owned()).await
    }

    /// Rotates the unrotated token `row` (plaintext `presented`): a new session in the store, then
    /// the old token marked rotated and its successor stored, in one transaction. `None` when
    /// another request rotated it first.
    async fn rotate(
        &self,
        user: &User,
        row: &RefreshRow,
        presented: &str,
        context: &SignInContext,
    ) -> Result<Option<SignedIn>, AppError> {
        let token = self.access.issue(&user.id)?;
        let successor = self.successors.successor(presented);
        let next = self.new_row(&successor, row.family_id.clone(), user, &token, context)?;
        // The session goes in first: once the rotation commits, a retry within the grace window
        // re-signs this session's token, so the session must already exist.
        let session = NewSession::for_token(&user.id, &token, context);
        self.store.create(&session).await?;
        // The old access token ends with the refresh token it came with, before the rotation
        // commits: ended after it, a store that failed in between would answer 503 for a
        // rotation already made (a retry after the grace window would then look like reuse and
        // end the sign-in) and leave the old session alive. Ended here, a rotation that then
        // loses the race or fails costs the caller only an access token it was replacing.
        if let Err(e) = self.store.revoke(&user.id, &row.session_id).await {
            self.withdraw(&user.id, &token.session_id).await;
            return Err(e);
        }
        let rotated = tokens::rotate(
            &self.db,
            &row.token_hash,
            token.issued_at.naive_utc(),
            &next,
        )
        .await;
        if !matches!(rotated, Ok(true)) {
            // Lost the race, or failed: this session will never be handed out.
            self.store.revoke(&user.id, &token.session_id).await?;
            return rotated.map(|_| None).map_err(AppError::from);
        }
        if !self.confirm_sign_in(user, &token.session_id).await? {
            return Err(INVALID_REFRESH);
        }
        Ok(Some(SignedIn {
            token,
            user: UserView::own(user.clone()),
            refresh_token: successor,
        }))
    }

    /// Answers a rotated token: within the grace window, walks its rotations to the family's live
    /// token and returns that pair again; after it, ends the family as compromised.
    async fn resume(
        &self,
        user: User,
        mut row: RefreshRow,
        mut presented: String,
    ) -> Result<SignedIn, AppError> {
        let grace =
            Duration::seconds(i64::try_from(self.refresh.reuse_grace).map_err(AppError::internal)?);
        let now = Utc::now();
        for _ in 0..=MAX_GRACE_HOPS {
            let Some(rotated_at) = row.rotated_at else {
                // The family's live token, reached from the one presented within the grace window:
                // hand out the pair its rotation did (the same refresh token; the same access token,
                // re-signed) as long as its session is still live.
                if !self.store.is_active(&user.id, &row.session_id).await? {
                    return Err(INVALID_REFRESH);
                }
                let token =
                    self.access
                        .reissue(&user.id, &row.session_id, row.created_at.and_utc())?;
                return Ok(SignedIn {
                    token,
                    user: UserView::own(user),
                    refresh_token: presented,
                });
            };
            if now - rotated_at.and_utc() > grace {
                tracing::warn!(
                    user_id = %user.id,
                    family_id = %row.family_id,
                    "a rotated refresh token was presented again; ending its sign-in"
                );
                for session_id in self.end_family(&user.id, &row.family_id).await? {
                    self.events
                        .publish(&user.id, AccountEventKind::SessionEnded, Some(&session_id))
                        .await;
                }
                return Err(REUSED_REFRESH);
            }
            let successor = self.successors.successor(&presented);
            let successor_hash = refresh::hash(&successor);
            // Differs only if the server secret changed since the rotation.
            if row.successor_hash.as_deref() != Some(successor_hash.as_str()) {
                return Err(INVALID_REFRESH);
            }
            row = tokens::find(&self.db, &successor_hash)
                .await?
                .ok_or(INVALID_REFRESH)?;
            presented = successor;
        }
        Err(INVALID_REFRESH)
    }
}
