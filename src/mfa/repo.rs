//! Queries on the MFA tables (`user_totp`, `mfa_recovery_codes`) and the `users.mfa_enabled`
//! flag, each written once for both backends. Every change that turns MFA on or off writes
//! the flag, the secret, the codes and its notice mail in one transaction.

use chrono::NaiveDateTime;
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};

use crate::db::schema::{mail_outbox, mfa_recovery_codes, user_totp, users};
use crate::db::{DbError, DbPool};
use crate::mail::outbox::OutboxRow;
use crate::with_conn;

/// Deletes the user's recovery codes and inserts `$hashes` (`&[String]`) on the connection
/// `$c`, inside the caller's transaction. A macro rather than a function: the body is
/// expanded once per backend by `with_conn!`.
macro_rules! replace_codes {
    ($c:ident, $user_id:expr, $hashes:expr) => {{
        let user_id: &str = $user_id;
        let hashes: &[String] = $hashes;
        diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
            .execute($c)
            .await?;
        for hash in hashes {
            diesel::insert_into(mfa_recovery_codes::table)
                .values((
                    mfa_recovery_codes::user_id.eq(user_id),
                    mfa_recovery_codes::code_hash.eq(hash),
                ))
                .execute($c)
                .await?;
        }
    }};
}

/// Locks the user's row for the rest of the transaction if the user exists with MFA `on` (or
/// off); `false` when not. A no-op UPDATE (the connections count the rows it matched): it
/// waits for, or makes wait, a deletion or an MFA change of the user, so that rows written
/// after it cannot outlive the account or MFA being turned off (neither has a foreign key).
macro_rules! hold_user {
    ($c:ident, $user_id:expr, mfa_on = $on:expr) => {{
        let user_id: &str = $user_id;
        diesel::update(
            users::table
                .find(user_id)
                .filter(users::mfa_enabled.eq($on)),
        )
        .set(users::mfa_enabled.eq($on))
        .execute($c)
        .await?
            == 1
    }};
}

/// A user's TOTP row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_totp)]
pub struct TotpRow {
    /// The confirmed secret, sealed.
    pub secret: Option<String>,
    /// A secret being enrolled, sealed.
    pub pending_secret: Option<String>,
    /// When that enrolment lapses.
    pub pending_expires_at: Option<NaiveDateTime>,
    /// The highest step whose code was accepted.
    pub last_step: i64,
}

impl TotpRow {
    /// The secret being enrolled, if its enrolment is still open at `now`.
    pub fn live_enrolment(&self, now: NaiveDateTime) -> Option<&str> {
        match (&self.pending_secret, self.pending_expires_at) {
            (Some(secret), Some(expires)) if expires > now => Some(secret),
            _ => None,
        }
    }
}

/// The user's TOTP row, if they have one.
pub async fn find(db: &DbPool, user_id: &str) -> Result<Option<TotpRow>, DbError> {
    with_conn!(db, |c| user_totp::table
        .find(user_id)
        .select(TotpRow::as_select())
        .first(c)
        .await
        .optional())
}

/// Stores `sealed` as the secret being enrolled until `expires_at`, replacing an earlier
/// enrolment, if the user still exists with MFA off; returns whether it did.
pub async fn start_enrolment(
    db: &DbPool,
    user_id: &str,
    sealed: &str,
    expires_at: NaiveDateTime,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            if !hold_user!(c, user_id, mfa_on = false) {
                return Ok(false);
            }
            let pending = (
                user_totp::pending_secret.eq(sealed),
                user_totp::pending_expires_at.eq(expires_at),
            );
            let updated = diesel::update(user_totp::table.find(user_id))
                .set(pending)
                .execute(c)
                .await?;
            if updated > 0 {
                return Ok(true);
            }
            let inserted = diesel::insert_into(user_totp::table)
                .values((
                    user_totp::user_id.eq(user_id),
                    pending,
                    user_totp::last_step.eq(0),
                ))
                .execute(c)
                .await;
            match inserted {
                // An enrolment started at the same moment stored the row first (InnoDB's
                // deadlock between two such inserts is run again by `with_conn!`): this one
                // replaces its secret, as a later start does.
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => diesel::update(user_totp::table.find(user_id))
                    .set(pending)
                    .execute(c)
                    .await
                    .map(|_| true),
                other => other.map(|_| true),
            }
        })
        .await
    })
}

/// What confirming an enrolment writes.
#[derive(Debug)]
pub struct Confirmation<'a> {
    /// The sealed secret being enrolled, as read: a newer enrolment replaces it, and then
    /// this confirmation changes nothing.
    pub pending: &'a str,
    /// The step whose code confirmed it: that code cannot sign in afterwards.
    pub step: i64,
    /// The hashes of the new recovery codes.
    pub code_hashes: &'a [String],
    /// The notice.
    pub mail: &'a OutboxRow,
    /// Now.
    pub now: NaiveDateTime,
}

/// Turns MFA on with the secret being enrolled, as [`Confirmation`] says; returns whether it
/// did (`false`: the enrolment lapsed or was replaced, or MFA is on already).
pub async fn confirm(
    db: &DbPool,
    user_id: &str,
    confirm: &Confirmation<'_>,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            let enabled = diesel::update(
                users::table
                    .find(user_id)
                    .filter(users::mfa_enabled.eq(false)),
            )
            // The credentials version moves on with the flag, as with a password change: a
            // sign-in checked by password alone, racing this, withdraws (`SignIns::start`),
            // and the caller's other sign-ins end next.
            .set((
                users::mfa_enabled.eq(true),
                users::credentials_version.eq(users::credentials_version + 1),
                users::updated_at.eq(confirm.now),
            ))
            .execute(c)
            .await?;
            if enabled == 0 {
                return Ok(false);
            }
            let moved = diesel::update(
                user_totp::table
                    .find(user_id)
                    .filter(user_totp::pending_secret.eq(confirm.pending))
                    .filter(user_totp::pending_expires_at.gt(confirm.now)),
            )
            .set((
                user_totp::secret.eq(confirm.pending),
                user_totp::pending_secret.eq(None::<String>),
                user_totp::pending_expires_at.eq(None::<NaiveDateTime>),
                user_totp::last_step.eq(confirm.step),
            ))
            .execute(c)
            .await?;
            if moved == 0 {
                // Nothing else was written yet but the flag, which the rollback undoes.
                return Err(diesel::result::Error::RollbackTransaction);
            }
            replace_codes!(c, user_id, confirm.code_hashes);
            diesel::insert_into(mail_outbox::table)
                .values(confirm.mail)
                .execute(c)
                .await?;
            Ok(true)
        })
        .await
    })
    .or_else(|e| match e {
        DbError::Query(diesel::result::Error::RollbackTransaction) => Ok(false),
        other => Err(other),
    })
}

/// Records that the code of `step` was accepted, if no code of that step or a later one was
/// before; returns whether it was (`false`: a replay, or MFA is off).
pub async fn accept_step(db: &DbPool, user_id: &str, step: i64) -> Result<bool, DbError> {
    with_conn!(db, |c| diesel::update(
        user_totp::table
            .find(user_id)
            .filter(user_totp::secret.is_not_null())
            .filter(user_totp::last_step.lt(step))
    )
    .set(user_totp::last_step.eq(step))
    .execute(c)
    .await)
    .map(|n| n == 1)
}

/// Whether the user has the recovery code of `code_hash`.
pub async fn has_code(db: &DbPool, user_id: &str, code_hash: &str) -> Result<bool, DbError> {
    with_conn!(db, |c| mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .filter(mfa_recovery_codes::code_hash.eq(code_hash))
        .count()
        .get_result::<i64>(c)
        .await)
    .map(|n| n > 0)
}

/// How many recovery codes the user has left.
pub async fn count_codes(db: &DbPool, user_id: &str) -> Result<i64, DbError> {
    with_conn!(db, |c| mfa_recovery_codes::table
        .filter(mfa_recovery_codes::user_id.eq(user_id))
        .count()
        .get_result(c)
        .await)
}

/// Uses up the recovery code of `code_hash` and queues `mail` with it; returns whether the
/// user had that code (of two requests using one code at once, only one deletes it).
pub async fn use_code(
    db: &DbPool,
    user_id: &str,
    code_hash: &str,
    mail: &OutboxRow,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            let used = diesel::delete(
                mfa_recovery_codes::table
                    .filter(mfa_recovery_codes::user_id.eq(user_id))
                    .filter(mfa_recovery_codes::code_hash.eq(code_hash)),
            )
            .execute(c)
            .await?;
            if used == 1 {
                diesel::insert_into(mail_outbox::table)
                    .values(mail)
                    .execute(c)
                    .await?;
            }
            Ok(used == 1)
        })
        .await
    })
}

/// Replaces the user's recovery codes with `code_hashes`, if the user still exists with MFA
/// on; returns whether it did.
pub async fn replace_recovery_codes(
    db: &DbPool,
    user_id: &str,
    code_hashes: &[String],
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            if !hold_user!(c, user_id, mfa_on = true) {
                return Ok(false);
            }
            replace_codes!(c, user_id, code_hashes);
            Ok(true)
        })
        .await
    })
}

/// Turns the user's MFA off: the flag, the secret (and any enrolment) and the recovery
/// codes; queues `mail` when it was on. Returns whether it was on.
pub async fn disable(
    db: &DbPool,
    user_id: &str,
    mail: &OutboxRow,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            let was_on = diesel::update(
                users::table
                    .find(user_id)
                    .filter(users::mfa_enabled.eq(true)),
            )
            .set((users::mfa_enabled.eq(false), users::updated_at.eq(now)))
            .execute(c)
            .await?
                == 1;
            diesel::delete(user_totp::table.find(user_id))
                .execute(c)
                .await?;
            diesel::delete(
                mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)),
            )
            .execute(c)
            .await?;
            if was_on {
                diesel::insert_into(mail_outbox::table)
                    .values(mail)
                    .execute(c)
                    .await?;
            }
            Ok(was_on)
        })
        .await
    })
}

/// Forgets the enrolments that lapsed before `now` (a row with neither a confirmed secret nor
/// a live enrolment goes); returns how many rows changed.
pub async fn purge_lapsed(db: &DbPool, now: NaiveDateTime) -> Result<usize, DbError> {
    with_conn!(db, |c| {
        c.transaction::<usize, diesel::result::Error, _>(async |c| {
            let deleted = diesel::delete(
                user_totp::table
                    .filter(user_totp::secret.is_null())
                    .filter(user_totp::pending_expires_at.le(now)),
            )
            .execute(c)
            .await?;
            let cleared =
                diesel::update(user_totp::table.filter(user_totp::pending_expires_at.le(now)))
                    .set((
                        user_totp::pending_secret.eq(None::<String>),
                        user_totp::pending_expires_at.eq(None::<NaiveDateTime>),
                    ))
                    .execute(c)
                    .await?;
            Ok(deleted + cleared)
        })
        .await
    })
}
