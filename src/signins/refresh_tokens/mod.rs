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
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

/// Random bytes in a token: 256 bits, beyond any guessing.
pub const TOKEN_BYTES: usize = 32;
/// Length of a token: `TOKEN_BYTES` in unpadded base64url.
pub const TOKEN_CHARS: usize = 43;

/// A fresh token: [`TOKEN_BYTES`] from the OS-seeded CSPRNG, base64url without padding.
pub fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` has the shape of one of ours; anything else is refused without a lookup.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored form of a token: its SHA-256, in hex.
///
/// A fast hash is right here, unlike for passwords: the token is 256 random bits, so there is
/// nothing to brute-force from a leaked hash, and a slow hash would only make every refresh
/// (and every lookup by hash) expensive.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

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
    fn tokens_are_random_well_formed_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(is_well_formed(&a), "{a}");
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&format!("{}=", &a[..42])));
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

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
