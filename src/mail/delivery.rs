//! The delivery worker: one per replica, it claims due mails from the outbox and hands them to
//! the transport, retrying failures with exponential backoff until `MAIL_MAX_ATTEMPTS`.
//!
//! It runs beside the API and never in a request: an answer never waits on SMTP, and an SMTP
//! outage only grows the outbox. It wakes when this replica queued a mail (and polls, for the
//! mails other replicas queued and the retries that fall due).

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::outbox::{self, OutboxRow};
use super::transport::{SendError, Transport};
use crate::db::{DbError, DbPool};
use crate::infra::metrics::MailMetrics;

/// How often the worker looks for due mails when nothing woke it.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// How many mails one claim takes. A claim's mails are sent at once, not one after another,
/// and each send (waiting for a pooled connection included) ends within `SMTP_TIMEOUT`, so
/// the whole batch settles within one send's time and inside its lease (see
/// [`Delivery::lease`]). Ten is the SMTP client's connection pool size.
const BATCH: usize = outbox::MAX_CLAIM;
/// How long the worker waits, once woken, for more mails to come: under a burst of
/// registrations one claim then carries several mails, where a claim per mail would cost
/// the database a transaction each. A mail leaves this much later, which nobody can tell.
const GATHER: Duration = Duration::from_millis(50);
/// How often the pending and failed figures are counted at most: a count per wake would
/// cost a query per mail under a burst.
const COUNT_EVERY: Duration = Duration::from_secs(1);
/// Attempts at a mail the SMTP server refused for good (a 5xx): a couple of retries cover a
/// relay whose configuration is being fixed, without knocking for hours.
const MAX_REFUSED_ATTEMPTS: u32 = 3;
/// The longest wait between two attempts at one mail.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long failed mails stay in the outbox for the operator to see.
const KEEP_FAILED: TimeDelta = TimeDelta::days(7);
/// How often failed mails past [`KEEP_FAILED`] are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The longest error text kept in a row (the column holds 1000 characters).
const MAX_ERROR_CHARS: usize = 500;

/// The delivery worker's settings and dependencies.
#[derive(Debug)]
pub struct Delivery {
    /// The outbox's database.
    pub db: DbPool,
    /// Where mails go.
    pub transport: Arc<Transport>,
    /// Notified when this replica queued mails.
    pub wake: Arc<Notify>,
    /// Attempts before a mail is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; each further failure doubles it.
    pub retry_base: Duration,
    /// How long a claim holds a mail: longer than a send may take, so that only a replica
    /// that died mid-send lets another one retry it.
    pub lease: Duration,
    /// Where the figures go.
    pub metrics: MailMetrics,
}

impl Delivery {
    /// Starts the worker; it runs until the task is aborted or the runtime stops.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        let mut last_prune: Option<tokio::time::Instant> = None;
        let mut last_count: Option<tokio::time::Instant> = None;
        loop {
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "mail delivery: the outbox cannot be read; retrying");
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(tokio::time::Instant::now());
                let before = Utc::now().naive_utc() - KEEP_FAILED;
                match outbox::prune_failed(&self.db, before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, "mail delivery: old failed mails pruned"),
                    Err(e) => tracing::warn!(error = %e, "mail delivery: cannot prune"),
                }
            }
            if last_count.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
                last_count = Some(tokio::time::Instant::now());
                match outbox::counts(&self.db).await {
                    Ok((pending, failed)) => {
                        self.metrics.pending.set(pending);
                        self.metrics.failed.set(failed);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "mail delivery: cannot count the outbox");
                    }
                }
            }
            tokio::select! {
                () = self.wake.notified() => tokio::time::sleep(GATHER).await,
                // The figures are counted again at the next poll even when nothing changed
                // meanwhile, so they settle after the last mail of a burst.
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    /// Sends every mail that is due, a batch at a time, until a claim finds fewer than a
    /// batch (what is queued meanwhile wakes the worker again).
    async fn deliver_due(&self) -> Result<(), DbError> {
        loop {
            let now = Utc::now().naive_utc();
            let lease_until = now + to_delta(self.lease);
            let batch = outbox::claim(&self.db, now, lease_until, BATCH as i64).await?;
            let full = batch.len() == BATCH;
            let sent = futures_util::future::join_all(
                batch
                    .iter()
                    .map(|row| self.transport.send(&row.recipient, &row.message)),
            )
            .await;
            let mut delivered = Vec::new();
            let mut failure = Ok(());
            for (row, result) in batch.iter().zip(sent) {
                match result {
                    Ok(()) => {
                        self.metrics.sent.inc();
                        tracing::info!(mail_id = %row.id, kind = %row.kind, "mail delivered");
                        delivered.push(row.id.as_str());
                    }
                    Err(e) => {
                        // Every outcome of the batch is settled before an error is returned.
                        let settled = self.failed(row, e).await;
                        failure = failure.and(settled);
                    }
                }
            }
            if !delivered.is_empty() {
                outbox::remove(&self.db, &delivered).await?;
            }
            failure?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Settles a failed send of the claimed `row`: due again after a backoff, or failed for
    /// good once its attempts ran out.
    async fn failed(&self, row: &OutboxRow, e: SendError) -> Result<(), DbError> {
        self.metrics.attempt_failures.inc();
        let error: String = e.to_string().chars().take(MAX_ERROR_CHARS).collect();
        let now = Utc::now().naive_utc();
        let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let limit = if e.permanent {
            self.max_attempts.min(MAX_REFUSED_ATTEMPTS)
        } else {
            self.max_attempts
        };
        if attempts >= limit {
            tracing::error!(mail_id = %row.id, kind = %row.kind, attempts, error = %error, "mail delivery failed for good");
            outbox::give_up(&self.db, row, now, &error).await
        } else {
            let at = retry_time(now, self.retry_base, attempts);
            tracing::warn!(mail_id = %row.id, kind = %row.kind, attempts, error = %error, retry_at = %at, "mail delivery failed; will retry");
            outbox::retry_at(&self.db, row, at, &error).await
        }
    }
}

/// When to try again after `attempts` failed attempts: `base` doubled per earlier failure, at
/// most [`MAX_BACKOFF`], plus up to a tenth more at random so that replicas retrying after
/// one outage do not all knock at once.
fn retry_time(now: NaiveDateTime, base: Duration, attempts: u32) -> NaiveDateTime {
    let doublings = attempts.saturating_sub(1).min(20);
    let wait = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    let jitter = wait.mul_f64(rand::random::<f64>() / 10.0);
    now + to_delta(wait + jitter)
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let now = Utc::now().naive_utc();
        let base = Duration::from_secs(5);
        let wait = |attempts| (retry_time(now, base, attempts) - now).num_milliseconds();
        assert!((5_000..=5_500).contains(&wait(1)), "{}", wait(1));
        assert!((10_000..=11_000).contains(&wait(2)), "{}", wait(2));
        assert!((40_000..=44_000).contains(&wait(4)), "{}", wait(4));
        assert!((3_600_000..=3_960_000).contains(&wait(30)), "{}", wait(30));
    }
}
