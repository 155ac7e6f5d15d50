//! Running a statement again when it lost a lock conflict.
//!
//! InnoDB resolves a deadlock by rolling back one of the transactions involved, and gives up on
//! a lock held too long with a lock-wait time-out; both tell the client to "try restarting
//! transaction". Neither means the database is down, and neither is the client's fault, so the
//! statement (or the whole transaction the body runs) is run again, a few times, after a short
//! pause with jitter so that the two parties of a deadlock do not collide again in step.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use rand::Rng as _;

/// Runs after the first attempt, at most.
const MAX_RETRIES: u32 = 3;
/// The pause before the first retry; each further retry doubles it. Jitter spreads each
/// pause over half to one and a half times this.
const FIRST_PAUSE: Duration = Duration::from_millis(20);

/// The words MySQL and MariaDB end both lock errors with (1205, lock-wait time-out; 1213,
/// deadlock). diesel-async's MySQL driver passes the server's message but not its code.
const RESTART_HINT: &str = "try restarting transaction";

/// Whether `err` is a lock conflict that running the statement again may resolve.
pub fn is_lock_conflict(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().contains(RESTART_HINT)
        }
        _ => false,
    }
}

/// Counts the retries of one statement.
#[derive(Debug, Default)]
pub struct LockRetries {
    done: u32,
}

impl LockRetries {
    /// Whether to run the statement again after `err`; if so, first waits its turn.
    pub async fn again(&mut self, err: &DieselError) -> bool {
        if self.done >= MAX_RETRIES || !is_lock_conflict(err) {
            return false;
        }
        let pause = FIRST_PAUSE * 2u32.pow(self.done);
        let jitter = rand::rng().random_range(0.5..1.5);
        self.done += 1;
        tracing::debug!(
            retry = self.done,
            "a statement lost a lock conflict; running it again"
        );
        tokio::time::sleep(pause.mul_f64(jitter)).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(message: &str) -> DieselError {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
    }

    #[test]
    fn lock_errors_are_told_apart_from_outages() {
        assert!(is_lock_conflict(&server_error(
            "Deadlock found when trying to get lock; try restarting transaction"
        )));
        assert!(is_lock_conflict(&server_error(
            "Lock wait timeout exceeded; try restarting transaction"
        )));
        assert!(!is_lock_conflict(&server_error(
            "Lost connection to server"
        )));
        assert!(!is_lock_conflict(&DieselError::NotFound));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded() {
        let deadlock = server_error("Deadlock found; try restarting transaction");
        let mut retries = LockRetries::default();
        let mut n = 0;
        while retries.again(&deadlock).await {
            n += 1;
        }
        assert_eq!(n, MAX_RETRIES);
        assert!(!LockRetries::default().again(&DieselError::NotFound).await);
    }
}
