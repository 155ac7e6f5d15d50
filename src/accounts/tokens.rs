//! Email-verification and password-reset tokens: 256 random bits sent only by mail, stored
//! only as their SHA-256, single use, expiring. A newer token of one purpose replaces the
//! user's older ones (the statements that issue and redeem them run inside the account
//! changes of [`super::repo`], in one transaction with the mail that carries them).

use chrono::{NaiveDateTime, TimeDelta};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};
use diesel::{Insertable, Queryable, Selectable};
use diesel_async::RunQueryDsl as _;

use crate::db::schema::account_tokens;
use crate::db::{DbError, DbPool};
use crate::infra::opaque_token;
use crate::with_conn;

/// What a token lets its bearer do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Prove that an address belongs to the account.
    VerifyEmail,
    /// Set a new password without the old one.
    ResetPassword,
}

impl Purpose {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify-email",
            Purpose::ResetPassword => "reset-password",
        }
    }
}

/// A row of `account_tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable, Selectable)]
#[diesel(table_name = account_tokens)]
pub struct TokenRow {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Owner.
    pub user_id: String,
    /// [`Purpose::as_str`].
    pub purpose: String,
    /// The lower-cased address the mail went to: a verification proves exactly this address,
    /// and a reset proves it too (so it marks the address verified only if it is still the
    /// account's).
    pub email_lower: Option<String>,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC.
    pub expires_at: NaiveDateTime,
}

/// A token just made: the secret that goes into the mail, and the row that is stored. Its
/// `Debug` leaves the secret out.
#[derive(Clone)]
pub struct NewToken {
    /// The token itself; never stored.
    pub secret: String,
    /// What is stored.
    pub row: TokenRow,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl NewToken {
    /// A fresh token of `purpose` for `user_id`, proving `email_lower`, valid for `ttl` from
    /// `now`.
    pub fn issue(
        user_id: &str,
        purpose: Purpose,
        email_lower: &str,
        ttl: TimeDelta,
        now: NaiveDateTime,
    ) -> NewToken {
        let secret = opaque_token::generate();
        NewToken {
            row: TokenRow {
                token_hash: opaque_token::hash(&secret),
                user_id: user_id.to_owned(),
                purpose: purpose.as_str().to_owned(),
                email_lower: Some(email_lower.to_owned()),
                created_at: now,
                expires_at: now + ttl,
            },
            secret,
        }
    }
}

/// The live (unexpired) token of `purpose` whose hash is `token_hash`.
pub async fn find_live(
    db: &DbPool,
    purpose: Purpose,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<TokenRow>, DbError> {
    with_conn!(db, |c| account_tokens::table
        .find(token_hash)
        .filter(account_tokens::purpose.eq(purpose.as_str()))
        .filter(account_tokens::expires_at.gt(now))
        .select(TokenRow::as_select())
        .first(c)
        .await
        .optional())
}

/// Deletes every token of the user (an account going away).
pub async fn delete_for_user(db: &DbPool, user_id: &str) -> Result<(), DbError> {
    with_conn!(db, |c| diesel::delete(
        account_tokens::table.filter(account_tokens::user_id.eq(user_id))
    )
    .execute(c)
    .await)
    .map(|_| ())
}

/// Deletes the tokens that expired before `now`; returns how many.
pub async fn purge_expired(db: &DbPool, now: NaiveDateTime) -> Result<usize, DbError> {
    with_conn!(db, |c| diesel::delete(
        account_tokens::table.filter(account_tokens::expires_at.le(now))
    )
    .execute(c)
    .await)
}
