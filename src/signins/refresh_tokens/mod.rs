//! Refresh tokens: opaque random strings that buy a new access token (and a new refresh token)
//! without the password. Only their SHA-256 is stored, in the `refresh_tokens` table of the
//! database on both backends (see `repo`).
//!
//! Why the database rather than Redis: rotation and reuse detection need a conditional update
//! and a transaction (mark the old token rotated and insert its successor, or neither), which
//! the one query body of both database backends gives for free; refreshes are rare (one per
//! access-token lifetime), so they need no Redis speed.

pub mod repo;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

pub use crate::infra::opaque_token::{TOKEN_BYTES, TOKEN_CHARS, generate, hash, is_well_formed};

/// Derives the successor of a token: HMAC-SHA256 under a server key, base64url.
///
/// Why derived rather than random: within the reuse grace window the old token must buy the
/// *same* successor (two browser tabs refreshing at once must end up with one token, not log
/// each other out), yet only hashes are stored. Deriving the successor from the old token lets
/// the server recompute it from what the client presents, so no plaintext token is ever kept,
/// not even briefly. The output is as unpredictable as a random token to anyone without the
/// server key; the trade-off is that whoever holds both the key and an old token can compute
/// its successors, which the key alone (it also signs access tokens) already comes close to.
#[derive(Clone)]
pub struct SuccessorKey(Hmac<Sha256>);

impl std::fmt::Debug for SuccessorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuccessorKey(..)")
    }
}

impl SuccessorKey {
    /// The key for server secret `secret`, separated from its other uses by a fixed label.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut derive = new_mac(secret);
        derive.update(b"user-api refresh-token successor v1");
        SuccessorKey(new_mac(&derive.finalize().into_bytes()))
    }

    /// The token that replaces `token` when it is rotated.
    pub fn successor(&self, token: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    // Called at start-up only; HMAC accepts keys of any length, so this never fails.
    Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_are_stable_well_formed_and_keyed() {
        let key = SuccessorKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let token = generate();
        let next = key.successor(&token);
        assert_eq!(next, key.successor(&token));
        assert!(is_well_formed(&next), "{next}");
        assert_ne!(next, token);
        let other = SuccessorKey::from_secret(b"another secret of sufficient size");
        assert_ne!(other.successor(&token), next);
    }
}
