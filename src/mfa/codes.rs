//! The second factor's codes: TOTP per RFC 6238 (SHA-1, 6 digits, 30-second steps, one step of
//! clock skew either side) through `totp-rs`, the recovery codes that stand in for it, and
//! telling one from the other in what a client sends.

use rand::Rng as _;
use rand::RngCore as _;
use totp_rs::{Algorithm, TOTP};

use crate::error::{AppError, Field};

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a TOTP code.
const DIGITS: usize = 6;
/// Bytes of a TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes handed out at once.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (without its dashes): 16 of 32, so 80 random bits.
const RECOVERY_CHARS: usize = 16;
/// What recovery codes are written in: RFC 4648's base32 alphabet, in lower case.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// The longest code input looked at; anything longer is refused unread.
const MAX_INPUT: usize = 64;

/// A code as a client sent it, told apart by its shape.
#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    /// Six digits from the authenticator app.
    Totp(String),
    /// A recovery code, normalised: lower case, without dashes or spaces.
    Recovery(String),
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Code::Totp(_) => f.write_str("Code::Totp([redacted])"),
            Code::Recovery(_) => f.write_str("Code::Recovery([redacted])"),
        }
    }
}

impl Code {
    /// Reads `input` as a TOTP code (6 digits) or a recovery code (16 letters and digits,
    /// dashes, spaces and letter case ignored); anything else is BAD_USER_INPUT on `code`.
    pub fn parse(input: &str) -> Result<Code, AppError> {
        let malformed = || {
            AppError::validation(
                Field::Code,
                "a code is the 6 digits the authenticator app shows, or a recovery code (xxxx-xxxx-xxxx-xxxx)",
            )
        };
        if input.len() > MAX_INPUT {
            return Err(malformed());
        }
        let input = input.trim();
        if input.len() == DIGITS && input.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Code::Totp(input.to_owned()));
        }
        let normalised: String = input
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if normalised.len() == RECOVERY_CHARS
            && normalised.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
        {
            Ok(Code::Recovery(normalised))
        } else {
            Err(malformed())
        }
    }
}

/// A fresh TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// The TOTP of `secret`, labelled for authenticator apps as `issuer:account`. The otpauth
/// label cannot hold a colon, so any in the issuer is dropped (usernames have none).
fn totp(secret: &[u8], issuer: &str, account: &str) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECONDS,
        secret.to_vec(),
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )
}

/// What an authenticator app needs: the secret in base32, and the `otpauth://` URI that
/// carries it with its issuer and account.
pub fn provisioning(secret: &[u8], issuer: &str, account: &str) -> (String, String) {
    let totp = totp(secret, issuer, account);
    (totp.get_secret_base32(), totp.get_url())
}

/// The step (of [`STEP_SECONDS`], since the Unix epoch) whose code `code` is, among the step
/// of `now` and one either side; `None` when it is none of them.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let totp = totp(secret, "", "");
    let current = now / STEP_SECONDS;
    // Every candidate is checked, so the time taken does not tell which one matched.
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        if totp.check(code, step * STEP_SECONDS) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// [`RECOVERY_CODES`] fresh recovery codes, each as shown once to the user
/// (`xxxx-xxxx-xxxx-xxxx`) and normalised as [`Code::parse`] reads it back.
pub fn new_recovery_codes() -> Vec<(String, String)> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let normalised: String = (0..RECOVERY_CHARS)
                .map(|_| {
                    char::from(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())])
                })
                .collect();
            let shown = normalised
                .as_bytes()
                .chunks(4)
                .filter_map(|chunk| std::str::from_utf8(chunk).ok())
                .collect::<Vec<_>>()
                .join("-");
            (shown, normalised)
        })
        .collect()
}

/// The QR code of `uri`, as an SVG document for a frontend to show.
pub fn qr_svg(uri: &str) -> Result<String, AppError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(AppError::internal)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_told_apart_by_their_shape() {
        assert_eq!(Code::parse("123456").unwrap(), Code::Totp("123456".into()));
        assert_eq!(
            Code::parse(" 123456 ").unwrap(),
            Code::Totp("123456".into())
        );
        assert_eq!(
            Code::parse("ABCD-efgh-2345-6767").unwrap(),
            Code::Recovery("abcdefgh23456767".into())
        );
        for bad in [
            "12345",
            "1234567",
            "abcdef",
            "12345a",
            "",
            "abcd-efgh-2345-676",
            "abcd-efgh-2345-6761",
        ] {
            let err = Code::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    AppError::Validation {
                        field: Field::Code,
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(Code::parse(&"1".repeat(10_000)).is_err());
    }

    #[test]
    fn recovery_codes_read_back_as_recovery_codes() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for (shown, normalised) in &codes {
            assert_eq!(shown.len(), 19, "{shown}");
            assert_eq!(
                Code::parse(shown).unwrap(),
                Code::Recovery(normalised.clone())
            );
        }
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| &c.1).collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
    }

    #[test]
    fn rfc_6238_vectors_match_within_one_step() {
        // RFC 6238 appendix B, SHA-1, truncated to 6 digits: 94287082 at T = 59.
        let secret = b"12345678901234567890";
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 60), None);
        // 1111111109 -> 07081804
        assert_eq!(
            matching_step(secret, "081804", 1_111_111_109),
            Some(1_111_111_109 / 30)
        );
        assert_eq!(matching_step(secret, "000000", 59), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let (base32, uri) = provisioning(&[1; 20], "My App", "alice");
        assert_eq!(base32.len(), 32);
        assert!(
            uri.starts_with("otpauth://totp/My%20App:alice?secret="),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={base32}")));
        assert!(uri.contains("issuer=My%20App"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{}",
            &svg[..80]
        );
    }
}
