//! The keys of MFA: TOTP secrets are sealed with AES-256-GCM (the user's id bound in as
//! associated data, so a sealed secret copied to another user's row does not open), and
//! recovery codes are stored as HMAC-SHA-256 under a second key, so a copy of the database
//! alone can neither read a secret nor test a guessed code.

use std::fmt;

use aes_gcm::aead::{Aead as _, AeadCore as _, KeyInit as _, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;

use crate::config::EncryptionKey;
use crate::error::AppError;
use crate::infra::opaque_token;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;

/// The sealing key of TOTP secrets and the hashing key of recovery codes, both derived from
/// one master key: `MFA_ENCRYPTION_KEY`, else one derived from `JWT_SECRET`.
pub struct MfaKeys {
    cipher: Aes256Gcm,
    recovery: [u8; 32],
}

impl fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKeys([redacted])")
    }
}

impl MfaKeys {
    /// The keys under `configured`, else under a key derived from `jwt_secret`.
    pub fn new(configured: Option<&EncryptionKey>, jwt_secret: &SecretString) -> Self {
        let master = match configured {
            Some(key) => *key.expose(),
            None => derive(
                jwt_secret.expose_secret().as_bytes(),
                b"user-api mfa master key v1",
            ),
        };
        let sealing = derive(&master, b"totp secrets");
        MfaKeys {
            cipher: Aes256Gcm::new(&sealing.into()),
            recovery: derive(&master, b"recovery codes"),
        }
    }

    /// `secret` sealed for `user_id`: base64 of nonce, ciphertext and tag.
    pub fn seal(&self, user_id: &str, secret: &[u8]) -> Result<String, AppError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| AppError::internal(anyhow::anyhow!("cannot seal a TOTP secret")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD_NO_PAD.encode(out))
    }

    /// The secret `sealed` for `user_id`. A secret that does not open (sealed under another
    /// key: MFA_ENCRYPTION_KEY or JWT_SECRET changed) is an internal error, logged.
    pub fn open(&self, user_id: &str, sealed: &str) -> Result<Vec<u8>, AppError> {
        let unreadable = || {
            AppError::internal(anyhow::anyhow!(
                "a stored TOTP secret does not decrypt: was MFA_ENCRYPTION_KEY (or, without it, JWT_SECRET) changed?"
            ))
        };
        let bytes = STANDARD_NO_PAD.decode(sealed).map_err(|_| unreadable())?;
        if bytes.len() <= NONCE_BYTES {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| unreadable())?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| unreadable())
    }

    /// The stored form of a (normalised) recovery code: HMAC-SHA-256, hex.
    pub fn recovery_hash(&self, code: &str) -> String {
        let mut mac = keyed(&self.recovery);
        mac.update(code.as_bytes());
        opaque_token::hex(&mac.finalize().into_bytes())
    }
}

/// HMAC-SHA-256 of `label` under `key`: a key for one purpose from a key for many.
fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> MfaKeys {
        MfaKeys::new(None, &SecretString::from(secret.to_owned()))
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let k = keys("a jwt secret that is long enough for the test");
        let sealed = k.seal("user-1", b"0123456789abcdefghij").unwrap();
        assert_ne!(sealed, k.seal("user-1", b"0123456789abcdefghij").unwrap());
        assert_eq!(k.open("user-1", &sealed).unwrap(), b"0123456789abcdefghij");
        assert!(k.open("user-2", &sealed).is_err());
        assert!(
            keys("another jwt secret, just as long as the first")
                .open("user-1", &sealed)
                .is_err()
        );
        assert!(k.open("user-1", "not base64!").is_err());
        assert!(k.open("user-1", "AAAA").is_err());
    }

    #[test]
    fn a_configured_key_replaces_the_derived_one() {
        let configured = crate::config::EncryptionKey::for_tests([7; 32]);
        let a = MfaKeys::new(Some(&configured), &SecretString::from("one".to_owned()));
        let b = MfaKeys::new(Some(&configured), &SecretString::from("two".to_owned()));
        let sealed = a.seal("u", b"secret").unwrap();
        assert_eq!(b.open("u", &sealed).unwrap(), b"secret");
        assert_eq!(a.recovery_hash("abcd"), b.recovery_hash("abcd"));
        assert_ne!(a.recovery_hash("abcd"), keys("one").recovery_hash("abcd"));
        assert_eq!(a.recovery_hash("abcd").len(), 64);
    }
}
