//! The account mails as the `Users` service writes them: each composed for its recipient,
//! with a fresh token where it carries a link, ready to be written in the same transaction as
//! the change it tells of (see [`crate::accounts::repo::Effects`]). Delivery is the outbox
//! worker's ([`crate::mail::delivery`]); [`Mailroom::queued`] wakes it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};
use tokio::sync::Notify;

use crate::accounts::model::User;
use crate::accounts::tokens::{NewToken, Purpose};
use crate::error::AppError;
use crate::mail::compose::{Composer, Mail};
use crate::mail::outbox::OutboxRow;

/// What the account flows need to write mails.
#[derive(Debug)]
pub struct Mailroom {
    composer: Composer,
    /// Where links point, without a trailing slash.
    link_base: String,
    reset_ttl: Duration,
    verification_ttl: Duration,
    wake: Arc<Notify>,
}

/// A mail that carries a token: the token's row and the mail's, to be written together.
#[derive(Debug)]
pub struct TokenMail {
    /// The token, as stored.
    pub token: crate::accounts::tokens::TokenRow,
    /// The mail that carries it.
    pub mail: OutboxRow,
}

impl Mailroom {
    /// Mails composed by `composer`, with links under `link_base`, tokens living `reset_ttl`
    /// and `verification_ttl`; `wake` is notified when mails were queued.
    pub fn new(
        composer: Composer,
        link_base: String,
        reset_ttl: Duration,
        verification_ttl: Duration,
        wake: Arc<Notify>,
    ) -> Self {
        Mailroom {
            composer,
            link_base,
            reset_ttl,
            verification_ttl,
            wake,
        }
    }

    /// A verification mail to `email` (the user's new address, or their current one).
    pub fn verification(
        &self,
        user: &User,
        email: &str,
        now: NaiveDateTime,
    ) -> Result<TokenMail, AppError> {
        let token = NewToken::issue(
            &user.id,
            Purpose::VerifyEmail,
            &email.to_lowercase(),
            ttl(self.verification_ttl),
            now,
        );
        let mail = Mail::VerifyEmail {
            link: self.link("verify-email", &token.secret),
            expires_in: self.verification_ttl,
        };
        Ok(TokenMail {
            token: token.row,
            mail: self.compose(email, &user.username, &mail, now)?,
        })
    }

    /// A password-reset mail to the user's address.
    pub fn reset(&self, user: &User, now: NaiveDateTime) -> Result<TokenMail, AppError> {
        let token = NewToken::issue(
            &user.id,
            Purpose::ResetPassword,
            &user.email.to_lowercase(),
            ttl(self.reset_ttl),
            now,
        );
        let mail = Mail::ResetPassword {
            link: self.link("reset-password", &token.secret),
            expires_in: self.reset_ttl,
        };
        Ok(TokenMail {
            token: token.row,
            mail: self.compose(&user.email, &user.username, &mail, now)?,
        })
    }

    /// A notice (no token, no secret) to `to` about the account of `user`.
    pub fn notice(
        &self,
        user: &User,
        to: &str,
        mail: &Mail,
        now: NaiveDateTime,
    ) -> Result<OutboxRow, AppError> {
        self.compose(to, &user.username, mail, now)
    }

    /// Tells the delivery worker that mails were queued, so they go out now rather than at
    /// its next poll.
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    fn compose(
        &self,
        to: &str,
        username: &str,
        mail: &Mail,
        now: NaiveDateTime,
    ) -> Result<OutboxRow, AppError> {
        let outgoing = self
            .composer
            .compose(to, username, mail)
            .map_err(AppError::internal)?;
        Ok(OutboxRow::queued(
            outgoing.kind,
            outgoing.recipient,
            outgoing.message,
            now,
        ))
    }

    fn link(&self, page: &str, token: &str) -> String {
        // The token is base64url: nothing in it needs escaping in a query string.
        format!("{}/{page}?token={token}", self.link_base)
    }
}

fn ttl(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}
