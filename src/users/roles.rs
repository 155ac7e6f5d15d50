//! Roles: what only an ADMIN may do (delete any user, set roles, disable accounts), the rule
//! that the last enabled admin can be neither demoted, deleted nor disabled, and the promotion
//! the CLI performs.

use chrono::Utc;

use super::Users;
use crate::accounts::model::{Role, User, UserView};
use crate::accounts::repo::{self, Disabling, Effects};
use crate::accounts::validation;
use crate::db::DbPool;
use crate::error::AppError;
use crate::events::AccountEventKind;
use crate::mail::compose::Mail;
use crate::signins::Viewer;

/// What a non-admin gets for an admin operation.
const ADMINS_ONLY: AppError = AppError::Forbidden("only an admin may do this");
/// What removing the last admin gets: the service would be left without anyone to run it.
const LAST_ADMIN: AppError =
    AppError::Forbidden("the last admin cannot be demoted or deleted; promote another user first");
/// What disabling the last enabled admin gets.
const LAST_ADMIN_DISABLED: AppError = AppError::Forbidden(
    "the last enabled admin cannot be disabled; promote (or enable) another admin first",
);
/// An addressed user that does not exist.
const NO_SUCH_USER: AppError = AppError::NotFound("user not found");

fn require_admin(viewer: &Viewer) -> Result<(), AppError> {
    // The viewer is loaded per request, so a demotion takes effect on the next request.
    if viewer.user.role == Role::Admin {
        Ok(())
    } else {
        Err(ADMINS_ONLY)
    }
}

impl Users {
    /// Deletes any user (the caller included) and ends all their sessions and refresh tokens.
    /// ADMIN only (else FORBIDDEN); NOT_FOUND when there is no such user; FORBIDDEN for the last
    /// admin.
    pub async fn delete_user(&self, viewer: &Viewer, id: &str) -> Result<(), AppError> {
        viewer.require_verified()?;
        require_admin(viewer)?;
        if !validation::is_id(id) {
            return Err(NO_SUCH_USER);
        }
        if self.delete_account(id).await? {
            Ok(())
        } else {
            Err(NO_SUCH_USER)
        }
    }

    /// Deletes the account unless it is the last admin's, then ends every session and refresh
    /// token of it; returns whether the account existed. Shared by `deleteMe` and `deleteUser`.
    pub(super) async fn delete_account(&self, user_id: &str) -> Result<bool, AppError> {
        let deleted = repo::delete_user(&self.db, user_id).await?;
        if !deleted && repo::find_by_id(&self.db, user_id).await?.is_some() {
            return Err(LAST_ADMIN);
        }
        // Tokens of a deleted account already fail (the account lookup), but its sessions and
        // refresh tokens should not outlive it.
        self.sign_ins.end_all(user_id).await?;
        crate::accounts::tokens::delete_for_user(&self.db, user_id).await?;
        if deleted {
            self.events
                .publish(user_id, AccountEventKind::AccountDeleted, None)
                .await;
        }
        Ok(deleted)
    }

    /// Sets a user's role; returns the user as the caller sees them. ADMIN only (else FORBIDDEN);
    /// NOT_FOUND when there is no such user; demoting the last admin is FORBIDDEN. Takes effect on
    /// the user's next request: sessions are kept, and each request loads the role afresh.
    pub async fn set_role(
        &self,
        viewer: &Viewer,
        id: &str,
        role: Role,
    ) -> Result<UserView, AppError> {
        viewer.require_verified()?;
        require_admin(viewer)?;
        if !validation::is_id(id) {
            return Err(NO_SUCH_USER);
        }
        let changed = repo::update_role(&self.db, id, role, Utc::now().naive_utc()).await?;
        let user = repo::find_by_id(&self.db, id).await?.ok_or(NO_SUCH_USER)?;
        if !changed {
            return Err(LAST_ADMIN);
        }
        self.events
            .publish(id, AccountEventKind::RoleChanged, None)
            .await;
        Ok(UserView::for_viewer(user, &viewer.user))
    }

    /// Disables or enables a user; returns the user as the caller sees them. ADMIN only (else
    /// FORBIDDEN); NOT_FOUND when there is no such user; disabling the last enabled admin (the
    /// caller included) is FORBIDDEN. Either way is idempotent.
    ///
    /// Disabling moves the user's credentials version on in the same statement (a sign-in
    /// racing it withdraws) and then ends every session at once; their refresh tokens stop
    /// working with the version, and are kept until the user is enabled again only so that a
    /// refresh can answer ACCOUNT_DISABLED. Enabling lets the user sign in again; what
    /// disabling ended stays ended.
    pub async fn set_disabled(
        &self,
        viewer: &Viewer,
        id: &str,
        disabled: bool,
    ) -> Result<UserView, AppError> {
        viewer.require_verified()?;
        require_admin(viewer)?;
        if !validation::is_id(id) {
            return Err(NO_SUCH_USER);
        }
        let now = Utc::now().naive_utc();
        if disabled {
            let user = repo::find_by_id(&self.db, id).await?.ok_or(NO_SUCH_USER)?;
            let disabling =
                repo::disable_user(&self.db, id, now, &self.disabled_effects(&user, now)).await?;
            if disabling == Disabling::Unchanged {
                return Err(if repo::find_by_id(&self.db, id).await?.is_some() {
                    LAST_ADMIN_DISABLED
                } else {
                    NO_SUCH_USER
                });
            }
            // The event goes out even when ending the sessions fails (the admin then retries,
            // and the retry, finding the account disabled, publishes nothing).
            let ended = self.sign_ins.end_sessions(id).await;
            if disabling == Disabling::Disabled {
                self.mailroom.queued();
                self.events
                    .publish(id, AccountEventKind::AccountDisabled, None)
                    .await;
            }
            ended?;
            let user = repo::find_by_id(&self.db, id).await?.ok_or(NO_SUCH_USER)?;
            return Ok(UserView::for_viewer(user, &viewer.user));
        }
        let user = repo::find_by_id(&self.db, id).await?.ok_or(NO_SUCH_USER)?;
        if user.disabled {
            // Before the account opens again, while no sign-in can start: the refresh tokens
            // kept for their refusal (all dead since the version moved on) go for good.
            self.sign_ins.end_refresh_tokens(id).await?;
        }
        if !repo::enable_user(&self.db, id, now).await? {
            return Err(NO_SUCH_USER);
        }
        Ok(UserView::for_viewer(
            User {
                disabled: false,
                ..user
            },
            &viewer.user,
        ))
    }
}

/// Makes the user named `username` (any letter case) an ADMIN, for the `promote` subcommand;
/// returns the user and whether they changed (`false`: already an admin). NOT_FOUND when there
/// is no such user.
pub async fn promote(db: &DbPool, username: &str) -> Result<(User, bool), AppError> {
    let user = repo::find_by_username(db, username)
        .await?
        .ok_or(AppError::NotFound("no user has that username"))?;
    if user.role == Role::Admin {
        return Ok((user, false));
    }
    if !repo::update_role(db, &user.id, Role::Admin, Utc::now().naive_utc()).await? {
        // Deleted between the two statements.
        return Err(AppError::NotFound("no user has that username"));
    }
    Ok((
        User {
            role: Role::Admin,
            ..user
        },
        true,
    ))
}

impl Users {
    /// What disabling `user` writes with it: the notice that tells them, and the end of their
    /// reset links (one mailed before must not work again once the account is enabled). A
    /// notice that cannot be written is logged and left out: the account is disabled either
    /// way, and the admin's request succeeds.
    fn disabled_effects(&self, user: &User, now: chrono::NaiveDateTime) -> Effects {
        let mails = match self
            .mailroom
            .notice(user, &user.email, &Mail::AccountDisabled, now)
        {
            Ok(notice) => vec![notice],
            Err(e) => {
                tracing::warn!(error = %e, user_id = %user.id, "could not write the account-disabled notice");
                Vec::new()
            }
        };
        Effects {
            token: None,
            mails,
            end_resets_of: Some(user.id.clone()),
        }
    }
}
