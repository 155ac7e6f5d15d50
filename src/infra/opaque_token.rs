//! Opaque single-purpose tokens (refresh tokens, email-verification and password-reset
//! tokens): 256 random bits in base64url, stored only as their SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
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
}
