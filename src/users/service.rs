//! User operations, shared by the GraphQL and REST adapters. Every business rule — who sees an
//! email, what revokes a session, what counts as a conflict — lives here once.

use chrono::Utc;

use super::model::{Role, User, UserRecord, UserRow, UserView};
use super::repo::{self, UserChanges};
use super::{cursor, validation};
use crate::auth::jwt::IssuedToken;
use crate::auth::session_meta::SessionMeta;
use crate::auth::sessions::{NewSession, SessionStore as _};
use crate::client::ClientInfo;
use crate::error::AppError;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The caller's account, as stored now.
    pub user: User,
    /// The session (token `jti`) that made the request.
    pub session_id: String,
}

/// A new session: its token and the user it belongs to.
#[derive(Debug, Clone)]
pub struct AuthSession {
    /// The access token.
    pub token: IssuedToken,
    /// The user, as they see themself.
    pub user: UserView,
    /// The refresh token that renews this session (see [`refresh`]).
    pub refresh_token: String,
}

/// Registration input.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Password in clear.
    pub password: String,
}

/// Changes a user asks for on their own account.
#[derive(Debug, Clone, Default)]
pub struct UpdateMe {
    /// New email.
    pub email: Option<String>,
    /// New password.
    pub password: Option<String>,
    /// The current password, required by GraphQL for a password change.
    pub current_password: Option<String>,
}

/// Whether a password change must prove the current password (GraphQL does; the legacy REST
/// body has no field for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentPassword {
    /// `current_password` must be given and correct.
    Required,
    /// The token alone suffices.
    NotAsked,
}

/// How to address one user.
#[derive(Debug, Clone)]
pub enum UserKey {
    /// By id.
    Id(String),
    /// By username, in any letter case.
    Username(String),
}

/// One page of users.
#[derive(Debug, Clone)]
pub struct Page {
    /// Users, by id, each with the cursor that points just after it.
    pub users: Vec<(String, UserView)>,
    /// Whether users remain after this page.
    pub has_next: bool,
}

impl Page {
    /// The cursor after the last user of the page.
    pub fn end_cursor(&self) -> Option<&str> {
        self.users.last().map(|(c, _)| c.as_str())
    }
}

/// The wrong-credentials error: one message for an unknown user and a wrong password.
const BAD_CREDENTIALS: AppError = AppError::Unauthenticated("invalid username or password");

/// Creates an account and signs it in. Registrations are rate-limited per client address;
/// input that fails validation is refused before it counts, so typos do not use up the limit.
pub async fn register(
    state: &AppState,
    input: NewUser,
    client: &ClientInfo,
    meta: &SessionMeta,
) -> Result<AuthSession, AppError> {
    validation::username(&input.username)?;
    validation::email(&input.email)?;
    validation::password("password", &input.password)?;
    validation::password_not_guessable(
        "password",
        &input.password,
        &input.username,
        &[&input.email],
    )?;
    // Before the conflict check, so the limit also slows probing for taken names.
    state.limiter.check_register(client).await?;
    let username_lower = input.username.to_lowercase();
    let email_lower = input.email.to_lowercase();
    // Checked first so that a taken name costs no hash and names the field; the unique
    // indexes still decide races.
    conflict_error(
        repo::find_taken(&state.db, Some(&username_lower), Some(&email_lower), None).await?,
    )?;
    let password_hash = state.hasher.hash(input.password).await?;
    let now = Utc::now();
    let row = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        username: input.username,
        username_lower,
        email: input.email,
        email_lower,
        password_hash,
        role: Role::User.as_str().to_owned(),
        registration_date: now.naive_utc(),
        updated_at: now.naive_utc(),
        credentials_version: 0,
    };
    match repo::create_user(&state.db, &row).await {
        Ok(()) => {}
        Err(AppError::Conflict(_)) => {
            let taken = repo::find_taken(
                &state.db,
                Some(&row.username_lower),
                Some(&row.email_lower),
                None,
            )
            .await?;
            conflict_error(taken)?;
            return Err(AppError::Conflict("username or email already taken"));
        }
        Err(e) => return Err(e),
    }
    let user = User::try_from(UserRecord::from(row))?;
    let id = user.id.clone();
    let session = start_session(state, user, meta).await;
    if session.is_err() {
        // Without its token the registration failed: take the account back, so that a retry
        // does not find its own username taken.
        if let Err(e) = repo::delete_user(&state.db, &id).await {
            e.log();
        }
    }
    session
}

fn conflict_error((username_taken, email_taken): (bool, bool)) -> Result<(), AppError> {
    if username_taken {
        Err(AppError::Conflict("username already taken"))
    } else if email_taken {
        Err(AppError::Conflict("email already taken"))
    } else {
        Ok(())
    }
}

/// Checks credentials and opens a new session. An unknown username spends a hash too, so the
/// two failures look alike in time as well as in message. Every attempt counts against the
/// rate limits per client address and per username, checked before any hash is spent.
pub async fn login(
    state: &AppState,
    username: &str,
    password: String,
    client: &ClientInfo,
    meta: &SessionMeta,
) -> Result<AuthSession, AppError> {
    let valid_username = validation::username(username).is_ok();
    let username_key = valid_username.then(|| username.to_lowercase());
    let check = state
        .limiter
        .begin_password_check(username_key.as_deref(), client)
        .await?;
    let user = if valid_username {
        repo::find_by_username(&state.db, username).await?
    } else {
        None
    };
    let valid = match &user {
        Some(user) => {
            state
                .hasher
                .verify(password, user.password_hash.clone())
                .await?
        }
        None => state.hasher.verify_dummy(password).await?,
    };
    match user {
        Some(user) if valid => {
            state.limiter.password_was_right(check).await;
            start_session(state, user, meta).await
        }
        _ => Err(BAD_CREDENTIALS),
    }
}

/// Opens a sign-in: an access session and the refresh-token family that renews it.
async fn start_session(
    state: &AppState,
    user: User,
    meta: &SessionMeta,
) -> Result<AuthSession, AppError> {
    let token = state.jwt.issue(&user.id)?;
    let session = NewSession::for_token(&user.id, &token, meta);
    state.sessions.create(&session).await?;
    let refresh_token = sessions::open_family(state, &user, &token, meta).await?;
    sessions::confirm_sign_in(state, &user, &token.session_id).await?;
    Ok(AuthSession {
        token,
        user: UserView::own(user),
        refresh_token,
    })
}

/// Resolves a bearer token to its caller: a valid signature, a live session and an existing
/// account are all required.
pub async fn authenticate(state: &AppState, token: Option<&str>) -> Result<Viewer, AppError> {
    let token = token.ok_or(AppError::Unauthenticated("missing access token"))?;
    let claims = state.jwt.verify(token)?;
    if !state.sessions.is_active(&claims.sub, &claims.jti).await? {
        return Err(AppError::Unauthenticated(
            "the token has been revoked or has expired",
        ));
    }
    let user = repo::find_by_id(&state.db, &claims.sub)
        .await?
        .ok_or(AppError::Unauthenticated("the account no longer exists"))?;
    Ok(Viewer {
        user,
        session_id: claims.jti,
    })
}

/// Ends the caller's session, and its refresh token with it.
pub async fn logout(state: &AppState, viewer: &Viewer) -> Result<(), AppError> {
    state
        .sessions
        .revoke(&viewer.user.id, &viewer.session_id)
        .await?;
    sessions::end_family_of_session(state, &viewer.user.id, &viewer.session_id)
        .await
        .map(|_| ())
}

/// Changes the caller's email and/or password. A password change revokes every other session
/// of the caller; the one that asked stays valid.
pub async fn update_me(
    state: &AppState,
    viewer: &Viewer,
    input: UpdateMe,
    current: CurrentPassword,
    client: &ClientInfo,
) -> Result<UserView, AppError> {
    if input.email.is_none() && input.password.is_none() {
        return Err(AppError::validation(
            "email",
            "give at least one of email and password",
        ));
    }
    if let Some(email) = &input.email {
        validation::email(email)?;
    }
    if let Some(password) = &input.password {
        validation::password("password", password)?;
        let mut emails = vec![viewer.user.email.as_str()];
        emails.extend(input.email.as_deref());
        validation::password_not_guessable("password", password, &viewer.user.username, &emails)?;
        if current == CurrentPassword::Required {
            let given = input.current_password.clone().ok_or_else(|| {
                AppError::validation(
                    "currentPassword",
                    "currentPassword is required to change the password",
                )
            })?;
            // A guess at the password like a login's: the same limits, counted before the
            // hash, so a stolen token cannot test passwords faster than the login can.
            let username = viewer.user.username.to_lowercase();
            let check = state
                .limiter
                .begin_password_check(Some(&username), client)
                .await?;
            if !state
                .hasher
                .verify(given, viewer.user.password_hash.clone())
                .await?
            {
                return Err(AppError::Unauthenticated("currentPassword is incorrect"));
            }
            state.limiter.password_was_right(check).await;
        }
    }
    if input.email.is_some() {
        // Before the "already taken" check: each attempt tells whether an address is
        // registered.
        state.limiter.check_email_change(&viewer.user.id).await?;
    }
    let email_lower = input.email.as_deref().map(str::to_lowercase);
    if let Some(email_lower) = &email_lower {
        conflict_error(
            repo::find_taken(&state.db, None, Some(email_lower), Some(&viewer.user.id)).await?,
        )?;
    }
    let password_hash = match input.password {
        Some(password) => Some(state.hasher.hash(password).await?),
        None => None,
    };
    let changes = UserChanges {
        email: input.email.clone(),
        email_lower,
        password_hash: password_hash.clone(),
        updated_at: Utc::now().naive_utc(),
    };
    // A password change moves the credentials version on in the same statement, before the
    // other sessions end: a sign-in racing it with the old password withdraws
    // (`sessions::confirm_sign_in`).
    let ends_sign_ins = password_hash.is_some();
    let existed = match repo::update_user(&state.db, &viewer.user.id, &changes, ends_sign_ins).await
    {
        Err(AppError::Conflict(_)) => return Err(AppError::Conflict("email already taken")),
        other => other?,
    };
    if !existed {
        return Err(AppError::Unauthenticated("the account no longer exists"));
    }
    let mut user_version = viewer.user.credentials_version;
    if password_hash.is_some() {
        state
            .sessions
            .revoke_all(&viewer.user.id, Some(&viewer.session_id))
            .await?;
        let version = repo::find_credentials_version(&state.db, &viewer.user.id)
            .await?
            .ok_or(AppError::Unauthenticated("the account no longer exists"))?;
        sessions::end_other_families(state, &viewer.user.id, &viewer.session_id, version).await?;
        user_version = version;
    }
    let mut user = viewer.user.clone();
    user.credentials_version = user_version;
    if let Some(email) = input.email {
        user.email = email;
    }
    if let Some(hash) = password_hash {
        user.password_hash = hash;
    }
    Ok(UserView::own(user))
}

/// Deletes the caller's account and revokes all its sessions and refresh tokens. The last
/// admin cannot: the service would be left without one (FORBIDDEN).
pub async fn delete_me(state: &AppState, viewer: &Viewer) -> Result<(), AppError> {
    admin::delete_account(state, &viewer.user.id)
        .await
        .map(|_| ())
}

/// The user addressed by `key`, as the viewer may see them; `None` when there is none.
pub async fn find_user(
    state: &AppState,
    viewer: &Viewer,
    key: UserKey,
) -> Result<Option<UserView>, AppError> {
    let user = match key {
        // Not a UUID: no such user, without asking the database.
        UserKey::Id(id) if uuid::Uuid::try_parse(&id).is_err() => None,
        UserKey::Id(id) => repo::find_by_id(&state.db, &id).await?,
        // Not a valid username: none, without asking the database (MySQL refuses to compare
        // non-ASCII text with the ASCII column).
        UserKey::Username(name) if validation::username(&name).is_err() => None,
        UserKey::Username(name) => repo::find_by_username(&state.db, &name).await?,
    };
    Ok(user.map(|u| UserView::for_viewer(u, &viewer.user)))
}

/// Largest page.
pub const MAX_PAGE: i64 = 100;
/// Page size when the caller names none.
pub const DEFAULT_PAGE: i64 = 20;

/// A page of users in id (registration) order, after the user the cursor `after` points at.
/// `limit_field` and `after_field` name the arguments for validation errors.
pub async fn list_users(
    state: &AppState,
    viewer: &Viewer,
    limit: i64,
    after: Option<&str>,
    (limit_field, after_field): (&'static str, &'static str),
) -> Result<Page, AppError> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::validation(
            limit_field,
            format!("{limit_field} must be between 1 and {MAX_PAGE}"),
        ));
    }
    let after = after.map(|c| cursor::decode(after_field, c)).transpose()?;
    let mut users = repo::list_users(&state.db, after.as_deref(), limit + 1).await?;
    let has_next = users.len() as i64 > limit;
    users.truncate(limit as usize);
    let users = users
        .into_iter()
        .map(|u| (cursor::encode(&u.id), UserView::for_viewer(u, &viewer.user)))
        .collect();
    Ok(Page { users, has_next })
}

// Roles, and sessions with their refresh tokens, live in files of their own; they are part of
// this module's API all the same.
mod admin;
mod sessions;

pub use admin::{delete_user, promote, set_role};
pub use sessions::{SessionView, list_sessions, logout_all, refresh, revoke_session};
