//! An authenticator app, as a test drives it: real TOTP codes (RFC 6238, SHA-1, 6 digits,
//! 30 s) computed from the secret an enrolment returned, with the test's own clock — the
//! server's clock is not touched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
const STEP: u64 = 30;

/// An authenticator holding one secret. It never shows the same step's code twice, as the
/// server accepts each step once: [`Authenticator::next_code`] moves on a step, waiting for
/// the clock when it has run ahead of it.
pub struct Authenticator {
    totp: TOTP,
    last_step: u64,
}

impl Authenticator {
    /// The authenticator of the base32 `secret`.
    pub fn new(secret: &str) -> Authenticator {
        let bytes = Secret::Encoded(secret.to_owned())
            .to_bytes()
            .expect("a base32 secret");
        Authenticator {
            totp: TOTP::new_unchecked(Algorithm::SHA1, 6, 0, STEP, bytes, None, String::new()),
            last_step: 0,
        }
    }

    /// The code of the step `offset` steps from now (negative: in the past).
    pub fn code_at_offset(&self, offset: i64) -> String {
        let at = now().saturating_add_signed(offset * STEP as i64);
        self.totp.generate(at)
    }

    /// A code of a step no code was taken from before: the current step, or the next one
    /// when the current was used (the server accepts one step either side); past that, it
    /// waits until the clock allows.
    pub async fn next_code(&mut self) -> String {
        loop {
            let current = now() / STEP;
            let step = current.max(self.last_step + 1);
            if step <= current + 1 {
                self.last_step = step;
                return self.totp.generate(step * STEP);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A 6-digit code that is none of the codes the server would accept now.
    pub fn wrong_code(&self) -> String {
        let valid: Vec<String> = (-1..=1).map(|o| self.code_at_offset(o)).collect();
        (0..1_000_000)
            .map(|n| format!("{n:06}"))
            .find(|c| !valid.contains(c))
            .expect("a wrong code")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}
