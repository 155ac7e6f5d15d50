//! Sign-ins awaiting their second factor: a right password of an account with MFA on opens a
//! challenge, whose token (the `mfaToken`: 256 random bits, stored only as its SHA-256) the
//! client completes the sign-in with. A challenge lives [`CHALLENGE_TTL`], takes at most
//! [`MAX_ATTEMPTS`] codes, and is used up by the first right one.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;

use crate::accounts::model::{User, UserRecord};
use crate::db::schema::{mfa_challenges, users};
use crate::db::{DbError, DbPool};
use crate::infra::opaque_token;
use crate::with_conn;

/// How long a challenge waits for its code.
pub const CHALLENGE_TTL: TimeDelta = TimeDelta::minutes(5);
/// Codes a challenge takes; the next one finds it dead.
pub const MAX_ATTEMPTS: i32 = 5;

/// Opens a challenge for the user whose password (checked against `credentials_version`)
/// was just found right; returns its token.
pub async fn open(
    db: &DbPool,
    user_id: &str,
    credentials_version: i64,
    now: NaiveDateTime,
) -> Result<String, DbError> {
    let token = opaque_token::generate();
    let row = (
        mfa_challenges::token_hash.eq(opaque_token::hash(&token)),
        mfa_challenges::user_id.eq(user_id),
        mfa_challenges::credentials_version.eq(credentials_version),
        mfa_challenges::attempts.eq(0),
        mfa_challenges::expires_at.eq(now + CHALLENGE_TTL),
    );
    with_conn!(db, |c| diesel::insert_into(mfa_challenges::table)
        .values(row.clone())
        .execute(c)
        .await)?;
    Ok(token)
}

/// The user the challenge of `token_hash` signs in, as stored now, and the credentials
/// version the challenge was opened under, if it is alive at `now` and has attempts left (one
/// statement: the second step runs several).
pub async fn find_live(
    db: &DbPool,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<Option<(i64, User)>, DbError> {
    let found = with_conn!(db, |c| mfa_challenges::table
        .inner_join(users::table)
        .filter(mfa_challenges::token_hash.eq(token_hash))
        .filter(mfa_challenges::attempts.lt(MAX_ATTEMPTS))
        .filter(mfa_challenges::expires_at.gt(now))
        .select((mfa_challenges::credentials_version, UserRecord::as_select(),))
        .first::<(i64, UserRecord)>(c)
        .await
        .optional())?;
    found
        .map(|(version, user)| Ok((version, User::try_from(user)?)))
        .transpose()
}

/// Counts a wrong code against the challenge of `token_hash`, if it is still alive at `now`
/// and has attempts left; returns whether it did. The code is checked first and the answer
/// waits for this one conditional statement, so codes sent in parallel get at most
/// [`MAX_ATTEMPTS`] answers between them (a right code is taken by [`claim`], under the same
/// condition).
pub async fn count_attempt(
    db: &DbPool,
    token_hash: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    with_conn!(db, |c| diesel::update(
        mfa_challenges::table
            .find(token_hash)
            .filter(mfa_challenges::attempts.lt(MAX_ATTEMPTS))
            .filter(mfa_challenges::expires_at.gt(now))
    )
    .set(mfa_challenges::attempts.eq(mfa_challenges::attempts + 1))
    .execute(c)
    .await)
    .map(|n| n == 1)
}

/// Uses the challenge up for a right code, if it is still alive at `now` and has attempts
/// left: the right code's attempt and the end of the challenge in one statement. `false` when
/// another request used it first, or wrong codes used its attempts up meanwhile.
pub async fn claim(db: &DbPool, token_hash: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    with_conn!(db, |c| diesel::delete(
        mfa_challenges::table
            .find(token_hash)
            .filter(mfa_challenges::attempts.lt(MAX_ATTEMPTS))
            .filter(mfa_challenges::expires_at.gt(now))
    )
    .execute(c)
    .await)
    .map(|n| n == 1)
}

/// Ends every challenge of the user (MFA turned off, the account deleted).
pub async fn end_for_user(db: &DbPool, user_id: &str) -> Result<(), DbError> {
    with_conn!(db, |c| diesel::delete(
        mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id))
    )
    .execute(c)
    .await)
    .map(|_| ())
}

/// Deletes the challenges that expired before `now`; returns how many.
pub async fn purge_expired(db: &DbPool, now: NaiveDateTime) -> Result<usize, DbError> {
    with_conn!(db, |c| diesel::delete(
        mfa_challenges::table.filter(mfa_challenges::expires_at.le(now))
    )
    .execute(c)
    .await)
}
