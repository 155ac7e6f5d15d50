//! The outbox: mails waiting for delivery, in the database beside the changes they tell of.
//!
//! A mail is queued in the same transaction as the change (and the token) it carries, so a
//! token is never stored without its mail nor a mail sent for a change that rolled back. The
//! delivery worker ([`super::delivery`]) of each replica claims due rows: on MySQL with
//! `FOR UPDATE SKIP LOCKED`, so replicas never claim the same row; on SQLite in one
//! `UPDATE … RETURNING`, which the database's single writer serialises. A claim pushes the row's due time past the time a send may
//! take (the lease): a replica killed mid-send leaves the row to be claimed again when the
//! lease runs out. Delivery is therefore at least once: a mail whose send succeeded but whose
//! deletion did not happen (a crash in between) goes out again.

use chrono::NaiveDateTime;
use diesel::sql_types::{BigInt, Timestamp};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel::{Insertable, Queryable, QueryableByName, Selectable};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};

use crate::db::prepared::CachedBySql;
use crate::db::schema::mail_outbox;
use crate::db::{DbError, DbPool};
use crate::with_conn;

/// A row of `mail_outbox`. Its `Debug` leaves the message out: it may hold a live link.
#[derive(Clone, PartialEq, Eq, Insertable, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct OutboxRow {
    /// UUIDv7.
    pub id: String,
    /// Which mail (`verify-email`, `password-changed`, …).
    pub kind: String,
    /// The envelope recipient.
    pub recipient: String,
    /// The whole RFC 5322 message.
    pub message: String,
    /// Delivery attempts so far (a claim counts one).
    pub attempts: i32,
    /// When the row is next due.
    pub next_attempt_at: NaiveDateTime,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: NaiveDateTime,
    /// When its attempts ran out.
    pub failed_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("failed_at", &self.failed_at)
            .finish_non_exhaustive()
    }
}

impl OutboxRow {
    /// A mail of `kind` to `recipient`, due at once.
    pub fn queued(kind: &str, recipient: String, message: String, now: NaiveDateTime) -> Self {
        OutboxRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.to_owned(),
            recipient,
            message,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            failed_at: None,
        }
    }
}

/// Up to `limit` (at most [`MAX_CLAIM`]) due rows, claimed by this worker until `lease_until`: their attempt counts
/// are incremented and they are not due again before then. Returns them as claimed.
pub async fn claim(
    db: &DbPool,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OutboxRow>, DbError> {
    if let DbPool::Sqlite(_) = db {
        return claim_in_one_statement(db, now, lease_until, limit).await;
    }
    // SKIP LOCKED: a row another replica is claiming is passed over rather than waited for
    // (MySQL 8 and MariaDB ≥ 10.6).
    let select = format!(
        "SELECT {COLUMNS} FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= ? \
         ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED"
    );
    with_conn!(db, |c| {
        c.transaction::<Vec<OutboxRow>, diesel::result::Error, _>(async |c| {
            let mut rows: Vec<OutboxRow> = CachedBySql(
                diesel::sql_query(select.as_str())
                    .bind::<Timestamp, _>(now)
                    .bind::<BigInt, _>(limit),
            )
            .load(c)
            .await?;
            if rows.is_empty() {
                return Ok(rows);
            }
            let ids = padded(rows.iter().map(|r| r.id.as_str()));
            CachedBySql(
                diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids))).set((
                    mail_outbox::attempts.eq(mail_outbox::attempts + 1),
                    mail_outbox::next_attempt_at.eq(lease_until),
                )),
            )
            .execute(c)
            .await?;
            for row in &mut rows {
                row.attempts += 1;
                row.next_attempt_at = lease_until;
            }
            Ok(rows)
        })
        .await
    })
}

/// The most rows one claim takes.
pub const MAX_CLAIM: usize = 10;

/// `ids` (at most [`MAX_CLAIM`]) repeated up to [`MAX_CLAIM`] of them, so that a statement on
/// a set of rows has one shape, prepared once per connection, whatever the set's size (a
/// repeated id in `IN (…)` changes nothing).
fn padded<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ids.collect();
    if let Some(&last) = ids.last() {
        ids.resize(ids.len().max(MAX_CLAIM), last);
    }
    ids
}

/// The columns of a row, as the raw statements select them.
const COLUMNS: &str =
    "id, kind, recipient, message, attempts, next_attempt_at, last_error, created_at, failed_at";

/// [`claim`] on SQLite: one `UPDATE … RETURNING`. SQLite has one writer at a time and no row
/// locks; a transaction that read first and then wrote could not upgrade its lock while
/// another connection writes, and would fail with "database is locked" instead of waiting.
async fn claim_in_one_statement(
    db: &DbPool,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OutboxRow>, DbError> {
    let update = format!(
        "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ? \
         WHERE id IN (SELECT id FROM mail_outbox WHERE failed_at IS NULL \
         AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) RETURNING {COLUMNS}"
    );
    with_conn!(db, |c| CachedBySql(
        diesel::sql_query(update.as_str())
            .bind::<Timestamp, _>(lease_until)
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(limit)
    )
    .load::<OutboxRow>(c)
    .await)
}

/// The mails `ids` (at most [`MAX_CLAIM`]) leave the outbox, in one statement: the SMTP server took them, or the
/// change they told of was taken back.
pub async fn remove(db: &DbPool, ids: &[&str]) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = padded(ids.iter().copied());
    with_conn!(db, |c| CachedBySql(diesel::delete(
        mail_outbox::table.filter(mail_outbox::id.eq_any(&ids))
    ))
    .execute(c)
    .await)
    .map(|_| ())
}

/// The attempt of the claim `row` failed: due again at `at`, with `error` kept for the
/// operator. Nothing changes if the row was claimed again since (its attempt count moved on):
/// that claim decides.
pub async fn retry_at(
    db: &DbPool,
    row: &OutboxRow,
    at: NaiveDateTime,
    error: &str,
) -> Result<(), DbError> {
    let claimed = mail_outbox::table
        .find(&row.id)
        .filter(mail_outbox::attempts.eq(row.attempts));
    with_conn!(db, |c| CachedBySql(diesel::update(claimed).set((
        mail_outbox::next_attempt_at.eq(at),
        mail_outbox::last_error.eq(error),
    )))
    .execute(c)
    .await)
    .map(|_| ())
}

/// The attempts of the claim `row` ran out: the row stays, marked failed at `at`, for the
/// operator to see, without its message (which may hold a live link). Nothing changes if the
/// row was claimed again since.
pub async fn give_up(
    db: &DbPool,
    row: &OutboxRow,
    at: NaiveDateTime,
    error: &str,
) -> Result<(), DbError> {
    let claimed = mail_outbox::table
        .find(&row.id)
        .filter(mail_outbox::attempts.eq(row.attempts));
    with_conn!(db, |c| CachedBySql(diesel::update(claimed).set((
        mail_outbox::failed_at.eq(at),
        mail_outbox::last_error.eq(error),
        mail_outbox::message.eq(""),
    )))
    .execute(c)
    .await)
    .map(|_| ())
}

/// How many mails wait for delivery, and how many failed for good.
pub async fn counts(db: &DbPool) -> Result<(i64, i64), DbError> {
    let pending = with_conn!(db, |c| mail_outbox::table
        .filter(mail_outbox::failed_at.is_null())
        .count()
        .get_result::<i64>(c)
        .await)?;
    let failed = with_conn!(db, |c| mail_outbox::table
        .filter(mail_outbox::failed_at.is_not_null())
        .count()
        .get_result::<i64>(c)
        .await)?;
    Ok((pending, failed))
}

/// Deletes the failed rows older than `before`; returns how many.
pub async fn prune_failed(db: &DbPool, before: NaiveDateTime) -> Result<usize, DbError> {
    with_conn!(db, |c| diesel::delete(
        mail_outbox::table.filter(mail_outbox::failed_at.le(before))
    )
    .execute(c)
    .await)
}
