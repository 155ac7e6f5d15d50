//! The account lifecycle over email: verifying an address and resetting a forgotten password
//! (API.md section 7). Registration and email changes send their verification mails from
//! `Users::register` and `Users::update_me`.

use chrono::Utc;

use super::Mailroom;
use super::Users;
use crate::accounts::model::{User, UserView};
use crate::accounts::repo::{self, Effects};
use crate::accounts::tokens::{self, Purpose};
use crate::accounts::validation;
use crate::db::DbPool;
use crate::error::{AppError, Field};
use crate::events::AccountEventKind;
use crate::infra::opaque_token;
use crate::mail::compose::Mail;
use crate::signins::{SignInContext, Viewer};

/// Every bad token — malformed, unknown, used, expired, for an address no longer the
/// account's, of a deleted user — gets this one answer.
const BAD_TOKEN: AppError = AppError::Unauthenticated("invalid or expired token");

/// How often expired verification and reset tokens are purged.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl Users {
    /// Starts the periodic purge of expired verification and reset tokens.
    pub fn spawn_maintenance(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let db = self.db.clone();
        vec![crate::infra::jobs::every(
            "purge expired account tokens",
            PURGE_EVERY,
            move || {
                let db = db.clone();
                async move { tokens::purge_expired(&db, Utc::now().naive_utc()).await }
            },
        )]
    }

    /// Sends a fresh verification mail to the caller's current address (replacing any earlier
    /// link). An address already verified gets none; the answer is the same.
    pub async fn send_verification_email(&self, viewer: &Viewer) -> Result<(), AppError> {
        self.limiter.check_verification(&viewer.user.id).await?;
        if viewer.user.email_verified {
            return Ok(());
        }
        let now = Utc::now().naive_utc();
        let mail = self
            .mailroom
            .verification(&viewer.user, &viewer.user.email, now)?;
        repo::write(
            &self.db,
            &Effects {
                token: Some(mail.token),
                mails: vec![mail.mail],
                end_resets_of: None,
            },
        )
        .await?;
        self.mailroom.queued();
        Ok(())
    }

    /// Marks the address the token was mailed to as verified, if it is still the account's.
    /// Needs no sign-in: the link may be opened anywhere. Returns the user as they see
    /// themself (whoever holds the token read the mail).
    pub async fn verify_email(&self, token: &str) -> Result<UserView, AppError> {
        if !opaque_token::is_well_formed(token) {
            return Err(BAD_TOKEN);
        }
        let now = Utc::now().naive_utc();
        let hash = opaque_token::hash(token);
        let row = tokens::find_live(&self.db, Purpose::VerifyEmail, &hash, now)
            .await?
            .ok_or(BAD_TOKEN)?;
        if !repo::redeem_verification(&self.db, &row, now).await? {
            return Err(BAD_TOKEN);
        }
        let user = repo::find_by_id(&self.db, &row.user_id)
            .await?
            .ok_or(BAD_TOKEN)?;
        self.events
            .publish(&user.id, AccountEventKind::EmailVerified, None)
            .await;
        Ok(UserView::own(user))
    }

    /// Mails a reset link to the account registered with `email`, if there is one. The answer
    /// and its timing are the same either way: after the checks every request takes (the
    /// address's syntax, the rate limits), the lookup, the mail and the token are done after
    /// the answer, off the request. (A reset asked for in the instant before a shutdown may
    /// thus be lost; asking again sends it.)
    pub async fn request_password_reset(
        &self,
        email: &str,
        context: &SignInContext,
    ) -> Result<(), AppError> {
        validation::email(email)?;
        let email_lower = email.to_lowercase();
        self.limiter
            .check_password_reset(context.ip, &email_lower)
            .await?;
        let db = self.db.clone();
        let mailroom = self.mailroom.clone();
        tokio::spawn(async move {
            if let Err(e) = queue_reset(&db, &mailroom, &email_lower).await {
                tracing::warn!(error = %e, "could not queue a password-reset mail");
            }
        });
        Ok(())
    }

    /// Sets a new password with a reset token: the token is used up, every sign-in and refresh
    /// token of the user ends, the address is marked verified (the mail proved it), and a
    /// notice goes to the account's address. A password that breaks the rules is refused
    /// before the token is used, so the link still works for a second try.
    pub async fn reset_password(&self, token: &str, new_password: String) -> Result<(), AppError> {
        if !opaque_token::is_well_formed(token) {
            return Err(BAD_TOKEN);
        }
        let hash = opaque_token::hash(token);
        let now = Utc::now().naive_utc();
        let row = tokens::find_live(&self.db, Purpose::ResetPassword, &hash, now)
            .await?
            .ok_or(BAD_TOKEN)?;
        let user: User = repo::find_by_id(&self.db, &row.user_id)
            .await?
            .ok_or(BAD_TOKEN)?;
        // Disabling ends the links (below is the race's backstop): a suspended account's
        // password stays as it was.
        if user.disabled {
            return Err(BAD_TOKEN);
        }
        validation::password(&new_password).map_err(|e| e.on_field(Field::NewPassword))?;
        validation::password_not_guessable(&new_password, &user.username, &[&user.email])
            .map_err(|e| e.on_field(Field::NewPassword))?;
        let password_hash = self.hasher.hash(new_password).await?;
        let notice = self
            .mailroom
            .notice(&user, &user.email, &Mail::PasswordChanged, now)?;
        let effects = Effects {
            token: None,
            mails: vec![notice],
            end_resets_of: None,
        };
        if !repo::redeem_reset(&self.db, &row, now, &password_hash, &effects).await? {
            return Err(BAD_TOKEN);
        }
        self.mailroom.queued();
        // The password has changed and the link is used up: from here the sessions must end
        // whatever happens, not be reported to a client who could not undo the reset anyway.
        // Meanwhile refresh tokens are already dead (the credentials version moved on), and
        // access tokens cannot be checked against an unreachable store either.
        self.sign_ins.end_all_surely(&user.id).await;
        self.events
            .publish(&row.user_id, AccountEventKind::PasswordChanged, None)
            .await;
        Ok(())
    }
}

/// Queues a reset link for the account registered with `email_lower`, if there is one and it
/// is not disabled (a suspended account cannot use a new password).
async fn queue_reset(db: &DbPool, mailroom: &Mailroom, email_lower: &str) -> Result<(), AppError> {
    let Some(user) = repo::find_by_email(db, email_lower).await? else {
        return Ok(());
    };
    if user.disabled {
        return Ok(());
    }
    let mail = mailroom.reset(&user, Utc::now().naive_utc())?;
    let effects = Effects {
        token: Some(mail.token),
        mails: vec![mail.mail],
        end_resets_of: None,
    };
    repo::write(db, &effects).await?;
    mailroom.queued();
    Ok(())
}
