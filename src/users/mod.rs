//! Users: accounts (registration, profile changes, deletion), looking users up, and roles.
//! [`Users`] is the service; GraphQL and REST both call it. Every business rule — who sees an
//! email, what a password change ends, what counts as a conflict — lives here once.

mod counts;
pub mod cursor;
mod lifecycle;
pub mod mailroom;
mod roles;
mod search;

use std::sync::Arc;

use chrono::Utc;

pub use self::counts::COUNT_FRESH_FOR;
pub use self::cursor::Cursor;
pub use self::mailroom::Mailroom;
pub use self::roles::promote;
pub use self::search::UserFilter;
use crate::accounts::model::{Role, User, UserRecord, UserRow, UserView};
use crate::accounts::repo::{self, Effects, SortKey, UserChanges};
use crate::accounts::validation;
use crate::db::replicas::Replicas;
use crate::db::{DbError, DbPool};
use crate::error::{AppError, Field};
use crate::events::{AccountEventKind, AccountEvents};
use crate::mail::compose::Mail;
use crate::ratelimit::RateLimiter;
use crate::signins::{PasswordHasher, SignInContext, SignIns, SignedIn, Viewer};

/// The user service: built from exactly what it uses.
#[derive(Debug)]
pub struct Users {
    db: DbPool,
    /// Where reads of other users may go (the primary when there are no replicas).
    replicas: Arc<Replicas>,
    hasher: PasswordHasher,
    limiter: Arc<RateLimiter>,
    sign_ins: Arc<SignIns>,
    mailroom: Arc<Mailroom>,
    counts: counts::Counts,
    events: AccountEvents,
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

/// Which page of users to list.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// How many users, 1 to [`MAX_PAGE`].
    pub size: i64,
    /// Start after the user this cursor (from an earlier page) points at; `None` for the
    /// first page.
    pub after: Option<String>,
    /// Which users; the default keeps them all.
    pub filter: UserFilter,
}

/// One page of users.
#[derive(Debug, Clone)]
pub struct Page {
    /// Users, in the list's order (by id unless a prefix filter says otherwise), each with
    /// the cursor that points just after it.
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

/// How fresh a read of other users must be. The caller's own account is always read fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Freshness {
    /// Every committed write seen: from the primary. For reads in a request that writes.
    #[default]
    Latest,
    /// At most `REPLICA_MAX_LAG` behind: from a read replica when one is up and caught up.
    MayLag,
}

/// Largest page.
pub const MAX_PAGE: i64 = 100;
/// Page size when the caller names none.
pub const DEFAULT_PAGE: i64 = 20;

impl Users {
    /// The service over the user database `db` (with `replicas` for reads of other users),
    /// hashing with `hasher`, counting attempts in
    /// `limiter`, opening and ending sign-ins through `sign_ins`, and writing mails with
    /// `mailroom`.
    pub fn new(
        db: DbPool,
        replicas: Arc<Replicas>,
        hasher: PasswordHasher,
        limiter: Arc<RateLimiter>,
        sign_ins: Arc<SignIns>,
        mailroom: Arc<Mailroom>,
    ) -> Self {
        Users {
            db,
            replicas,
            hasher,
            limiter,
            mailroom,
            counts: counts::Counts::new(),
            // The same service the sign-ins publish to: one stream of events per account.
            events: sign_ins.events().clone(),
            sign_ins,
        }
    }

    /// Creates an account, queues the mail that verifies its address, and signs it in.
    /// Registrations are rate-limited per client address; input that fails validation is
    /// refused before it counts, so typos do not use up the limit.
    pub async fn register(
        &self,
        input: NewUser,
        context: &SignInContext,
    ) -> Result<SignedIn, AppError> {
        validation::username(&input.username)?;
        validation::email(&input.email)?;
        validation::password(&input.password)?;
        validation::password_not_guessable(&input.password, &input.username, &[&input.email])?;
        // Before the conflict check, so the limit also slows probing for taken names.
        self.limiter.check_register(context.ip).await?;
        let username_lower = input.username.to_lowercase();
        let email_lower = input.email.to_lowercase();
        // Checked first so that a taken name costs no hash and names the field; the unique
        // indexes still decide races.
        conflict_error(
            repo::find_taken(&self.db, Some(&username_lower), Some(&email_lower), None).await?,
        )?;
        let password_hash = self.hasher.hash(input.password).await?;
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
            email_verified: false,
            disabled: false,
            mfa_enabled: false,
        };
        let user = User::try_from(UserRecord::from(row.clone()))?;
        let verification = self
            .mailroom
            .verification(&user, &user.email, now.naive_utc())?;
        let mail_id = verification.mail.id.clone();
        let effects = Effects {
            token: Some(verification.token),
            mails: vec![verification.mail],
            end_resets_of: None,
        };
        match repo::create_user(&self.db, &row, &effects).await {
            Ok(()) => self.mailroom.queued(),
            Err(e) if e.is_unique_violation() => {
                let taken = repo::find_taken(
                    &self.db,
                    Some(&row.username_lower),
                    Some(&row.email_lower),
                    None,
                )
                .await?;
                conflict_error(taken)?;
                return Err(AppError::Conflict("username or email already taken"));
            }
            Err(e) => return Err(e.into()),
        }
        let id = user.id.clone();
        let session = self.sign_ins.start(user, context).await;
        if session.is_err() {
            // Without its token the registration failed: take the account back, so that a retry
            // does not find its own username taken.
            // Its verification mail goes too: it would ask a stranger to confirm an account
            // that does not exist.
            if let Err(e) = self.take_back(&id, &mail_id).await {
                tracing::warn!(error = %e, user_id = %id, "could not take back a registration whose sign-in failed");
            }
        }
        session
    }

    /// Removes a registration whose sign-in failed: the account, its tokens and the mail
    /// queued for it (if not sent already).
    async fn take_back(&self, user_id: &str, mail_id: &str) -> Result<(), AppError> {
        repo::delete_user(&self.db, user_id).await?;
        crate::accounts::tokens::delete_for_user(&self.db, user_id).await?;
        crate::mail::outbox::remove(&self.db, &[mail_id]).await?;
        Ok(())
    }

    /// Changes the caller's email and/or password. A password change revokes every other session
    /// of the caller; the one that asked stays valid.
    pub async fn update_me(
        &self,
        viewer: &Viewer,
        input: UpdateMe,
        current: CurrentPassword,
        context: &SignInContext,
    ) -> Result<UserView, AppError> {
        viewer.require_verified()?;
        if input.email.is_none() && input.password.is_none() {
            return Err(AppError::validation(
                Field::Email,
                "give at least one of email and password",
            ));
        }
        if let Some(email) = &input.email {
            validation::email(email)?;
        }
        if let Some(password) = &input.password {
            validation::password(password)?;
            let mut emails = vec![viewer.user.email.as_str()];
            emails.extend(input.email.as_deref());
            validation::password_not_guessable(password, &viewer.user.username, &emails)?;
            if current == CurrentPassword::Required {
                let given = input.current_password.clone().ok_or_else(|| {
                    AppError::validation(
                        Field::CurrentPassword,
                        "the current password is required to change the password",
                    )
                })?;
                self.sign_ins
                    .check_password(
                        &viewer.user,
                        given,
                        context,
                        AppError::Unauthenticated("currentPassword is incorrect"),
                    )
                    .await?;
            }
        }
        if input.email.is_some() {
            // Before the "already taken" check: each attempt tells whether an address is
            // registered.
            self.limiter.check_email_change(&viewer.user.id).await?;
        }
        let email_lower = input.email.as_deref().map(str::to_lowercase);
        if let Some(email_lower) = &email_lower {
            conflict_error(
                repo::find_taken(&self.db, None, Some(email_lower), Some(&viewer.user.id)).await?,
            )?;
        }
        let password_hash = match input.password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        let now = Utc::now().naive_utc();
        let old = &viewer.user;
        // Notices go to the address the account had: its owner hears of a change made with a
        // stolen token.
        let mut effects = Effects {
            end_resets_of: Some(old.id.clone()),
            ..Effects::default()
        };
        if let Some(email) = &input.email {
            let verification = self.mailroom.verification(old, email, now)?;
            effects.token = Some(verification.token);
            effects.mails.push(verification.mail);
            let notice = Mail::EmailChanged {
                new_email: email.clone(),
            };
            effects
                .mails
                .push(self.mailroom.notice(old, &old.email, &notice, now)?);
        }
        if password_hash.is_some() {
            effects.mails.push(self.mailroom.notice(
                old,
                &old.email,
                &Mail::PasswordChanged,
                now,
            )?);
        }
        let changes = UserChanges {
            email: input.email.clone(),
            email_lower,
            password_hash: password_hash.clone(),
            email_verified: input.email.is_some().then_some(false),
            updated_at: now,
        };
        // A password change moves the credentials version on in the same statement, before the
        // other sessions end: a sign-in racing it with the old password withdraws
        // (`SignIns::start`).
        let ends_sign_ins = password_hash.is_some();
        let existed =
            match repo::update_user(&self.db, &viewer.user.id, &changes, ends_sign_ins, &effects)
                .await
            {
                Err(e) if e.is_unique_violation() => {
                    return Err(AppError::Conflict("email already taken"));
                }
                other => other?,
            };
        if !existed {
            return Err(AppError::Unauthenticated("the account no longer exists"));
        }
        self.mailroom.queued();
        let mut user_version = viewer.user.credentials_version;
        let session = Some(viewer.session_id.as_str());
        if input.email.is_some() {
            self.events
                .publish(&viewer.user.id, AccountEventKind::EmailChanged, session)
                .await;
        }
        if password_hash.is_some() {
            // The new password stands whatever happens next: not a 503 the caller could not
            // act on (their retry would find the current password changed).
            user_version = self.sign_ins.end_others_surely(viewer).await;
            self.events
                .publish(&viewer.user.id, AccountEventKind::PasswordChanged, session)
                .await;
        }
        let mut user = viewer.user.clone();
        user.credentials_version = user_version;
        if let Some(email) = input.email {
            user.email = email;
            user.email_verified = false;
        }
        if let Some(hash) = password_hash {
            user.password_hash = hash;
        }
        Ok(UserView::own(user))
    }

    /// Deletes the caller's account and revokes all its sessions and refresh tokens. The last
    /// admin cannot: the service would be left without one (FORBIDDEN).
    pub async fn delete_me(&self, viewer: &Viewer) -> Result<(), AppError> {
        self.delete_account(&viewer.user.id).await.map(|_| ())
    }

    /// The user addressed by `key`, as the viewer may see them; `None` when there is none.
    /// Another user's account is read as `freshness` allows; the viewer's own, fresh.
    pub async fn find(
        &self,
        viewer: &Viewer,
        key: UserKey,
        freshness: Freshness,
    ) -> Result<Option<UserView>, AppError> {
        viewer.require_verified()?;
        let own = match &key {
            UserKey::Id(id) => *id == viewer.user.id,
            UserKey::Username(name) => name.eq_ignore_ascii_case(&viewer.user.username),
        };
        if own {
            // Authentication read it from the primary for this request.
            return Ok(Some(UserView::own(viewer.user.clone())));
        }
        let user = match key {
            // Not a UUID: no such user, without asking the database.
            UserKey::Id(id) if !validation::is_id(&id) => None,
            UserKey::Id(id) => {
                let id = &id;
                self.read(
                    freshness,
                    |db| async move { repo::find_by_id(&db, id).await },
                )
                .await?
            }
            // Not a valid username: none, without asking the database (MySQL refuses to compare
            // non-ASCII text with the ASCII column).
            UserKey::Username(name) if validation::username(&name).is_err() => None,
            UserKey::Username(name) => {
                let name = &name;
                self.read(freshness, |db| async move {
                    repo::find_by_username(&db, name).await
                })
                .await?
            }
        };
        Ok(user.map(|u| UserView::for_viewer(u, &viewer.user)))
    }

    /// Runs `read` on the primary, or where `freshness` lets it run.
    async fn read<T, F, Fut>(&self, freshness: Freshness, read: F) -> Result<T, DbError>
    where
        F: Fn(DbPool) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        match freshness {
            Freshness::MayLag => self.replicas.lagging_read(read).await,
            Freshness::Latest => read(self.db.clone()).await,
        }
    }

    /// `user` as the viewer sees it, the viewer's own account as authentication read it (from
    /// the primary) where a replica's copy may be behind.
    fn view_for(viewer: &Viewer, user: User) -> UserView {
        if user.id == viewer.user.id {
            UserView::own(viewer.user.clone())
        } else {
            UserView::for_viewer(user, &viewer.user)
        }
    }

    /// The users with these ids, in the same order, `None` where there is none (or the id is
    /// not one), in one query; each as [`Users::find`] shows it to `viewer`. At most
    /// [`MAX_PAGE`] ids (else BAD_USER_INPUT on `ids`).
    pub async fn find_many(
        &self,
        viewer: &Viewer,
        ids: &[String],
        freshness: Freshness,
    ) -> Result<Vec<Option<UserView>>, AppError> {
        viewer.require_verified()?;
        if ids.len() > MAX_PAGE as usize {
            return Err(AppError::validation(
                Field::Ids,
                format!("at most {MAX_PAGE} ids at once"),
            ));
        }
        let valid: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| validation::is_id(id))
            .collect();
        let valid = &valid;
        let found = self
            .read(freshness, |db| async move {
                repo::find_by_ids(&db, valid).await
            })
            .await?;
        Ok(ids
            .iter()
            .map(|id| {
                found
                    .iter()
                    .find(|u| &u.id == id)
                    .map(|u| Self::view_for(viewer, u.clone()))
            })
            .collect())
    }

    /// A page of users, after the user the request's cursor points at: all of them in id
    /// (registration) order, or those the request's filter keeps, in the order it implies (see
    /// `search`). Filtering by email or by disabled is for admins (else FORBIDDEN); a cursor
    /// made for a list of another order or prefix is a BAD_USER_INPUT on the cursor.
    pub async fn list(
        &self,
        viewer: &Viewer,
        page: PageRequest,
        freshness: Freshness,
    ) -> Result<Page, AppError> {
        viewer.require_verified()?;
        let limit = page.size;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AppError::validation(
                Field::PageSize,
                format!("the page size must be between 1 and {MAX_PAGE}"),
            ));
        }
        let search = search::Search::new(&page.filter, viewer.user.role == Role::Admin)?;
        let after = page.after.as_deref().map(Cursor::decode).transpose()?;
        let query = search.query(after.as_ref())?;
        let (query, unfiltered) = (&query, page.filter.is_empty());
        let mut users = self
            .read(freshness, |db| async move {
                if unfiltered {
                    // The unfiltered list keeps the statement it always had.
                    repo::list_users(&db, query.after, limit + 1).await
                } else {
                    repo::list_filtered(&db, query, limit + 1).await
                }
            })
            .await?;
        let has_next = users.len() as i64 > limit;
        users.truncate(limit as usize);
        let order = search.order();
        let users = users
            .into_iter()
            .map(|u| {
                // The lower-cased copies are made the same way when they are stored.
                let cursor = match order {
                    SortKey::Id => Cursor::after(&u.id),
                    SortKey::Username => Cursor::at(order, &u.username.to_lowercase()),
                    SortKey::Email => Cursor::at(order, &u.email.to_lowercase()),
                };
                (cursor.encode(), Self::view_for(viewer, u))
            })
            .collect();
        Ok(Page { users, has_next })
    }
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
