//! Whether a configured `JWT_SECRET` is a random key or something a person made up: anyone
//! holding one access token can try guesses at the key offline, billions a second, so a key
//! with structure in it falls to a guesser however long it is.
//!
//! zxcvbn (Dropbox's estimator) finds the structure: repeats, sequences, keyboard walks, dates,
//! common passwords and dictionary words. Its total estimate alone cannot judge a key, for two
//! reasons found by measuring it on 32–100 character strings:
//! - it counts guesses in a `u64`, which saturates at about 10^19.3; every random key (and
//!   every long string) reaches that ceiling, so the ceiling is the most it can tell us;
//! - it charges at least 10^4 guesses for each further word of a phrase (an attacker must also
//!   guess how many words there are), so a phrase of six or more common words, such as
//!   `my_super_secret_jwt_key_change_me_please`, reaches the ceiling too.
//!
//! So a key must pass two tests, each with its threshold far from both kinds of key:
//! 1. zxcvbn's estimate reaches at least 10^19. Random keys always reached the ceiling
//!    (thousands of samples each of `openssl rand -hex 16`/`-hex 32`, base64 of 32 random
//!    bytes, two UUIDs, base64url of 48 bytes); the repeats, sequences and keyboard walks we
//!    tried stayed at or below 10^17.5.
//! 2. Less than half of it is dictionary words of three or more letters (by zxcvbn's
//!    dictionaries, found by asking zxcvbn about each stretch of letters). Phrases we tried were
//!    62–100 % words; random keys at most 39 % (20,000 samples of each kind above: hex
//!    and UUIDs have few letters, base64's letters rarely spell anything).

use zxcvbn::matching::patterns::MatchPattern;

/// Only this many leading characters are judged, as zxcvbn does: the work grows with the
/// length, and a key whose first 100 characters are random is random enough.
const JUDGED_CHARS: usize = 100;

/// zxcvbn's estimate (log10 of guesses) below which a key has guessable structure.
const MIN_GUESSES_LOG10: f64 = 19.0;

/// The share of a key spelled by dictionary words from which it counts as a phrase.
const MAX_WORD_SHARE: f64 = 0.5;

/// Words shorter than this are not looked for: random letters spell two-letter words all the
/// time.
const MIN_WORD_LEN: usize = 3;

/// Longer stretches are not looked up as one word: few common words are longer, and each
/// lookup costs a zxcvbn run.
const MAX_WORD_LEN: usize = 12;

/// Why a key was judged guessable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// It repeats, runs in sequence, walks the keyboard, or is a common password.
    Pattern,
    /// Most of it is dictionary words.
    Phrase,
}

impl std::fmt::Display for Weakness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Weakness::Pattern => {
                "it has an easily guessed pattern (a repeat, a sequence, a keyboard walk or a common password)"
            }
            Weakness::Phrase => "it is mostly dictionary words",
        })
    }
}

/// `None` when `secret` looks like a random key; otherwise why a guesser would find it.
pub fn weakness(secret: &str) -> Option<Weakness> {
    let judged: String = secret.chars().take(JUDGED_CHARS).collect();
    if zxcvbn::zxcvbn(&judged, &[]).guesses_log10() < MIN_GUESSES_LOG10 {
        return Some(Weakness::Pattern);
    }
    if word_share(&judged) >= MAX_WORD_SHARE {
        return Some(Weakness::Phrase);
    }
    None
}

/// The largest share of `text`'s characters that dictionary words (letters only, any case)
/// can cover without overlapping.
fn word_share(text: &str) -> f64 {
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    // covered[i]: the most characters of chars[..i] that words can cover.
    let mut covered = vec![0usize; chars.len() + 1];
    for end in 1..=chars.len() {
        covered[end] = covered[end - 1];
        for len in MIN_WORD_LEN..=MAX_WORD_LEN.min(end) {
            let start = end - len;
            let candidate = &chars[start..end];
            // Stretches are grown leftwards from `end`: once one holds a non-letter, so do
            // all longer ones.
            if !candidate.iter().all(char::is_ascii_lowercase) {
                break;
            }
            if covered[start] + len > covered[end] && is_word(&candidate.iter().collect::<String>())
            {
                covered[end] = covered[start] + len;
            }
        }
    }
    let total = chars.len().max(1);
    covered[chars.len()] as f64 / total as f64
}

/// Whether zxcvbn reads all of `letters` as one dictionary word (also reversed).
fn is_word(letters: &str) -> bool {
    match zxcvbn::zxcvbn(letters, &[]).sequence() {
        [only] => matches!(only.pattern, MatchPattern::Dictionary(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use rand::RngCore as _;

    use super::*;

    fn random_bytes(n: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; n];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn random_keys_pass() {
        for _ in 0..20 {
            let keys = [
                hex(&random_bytes(16)),
                hex(&random_bytes(32)),
                base64::engine::general_purpose::STANDARD.encode(random_bytes(32)),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(48)),
                format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                ),
            ];
            for key in keys {
                assert_eq!(weakness(&key), None, "{key}");
            }
        }
    }

    #[test]
    fn repeats_sequences_and_keyboard_walks_are_patterns() {
        for key in [
            "a".repeat(32),
            "ab".repeat(16),
            "changeme".repeat(4),
            "0123456789abcdef0123456789abcdef".to_owned(),
            "abcdefghijklmnopqrstuvwxyz012345".to_owned(),
            "12345678901234567890123456789012".to_owned(),
            "qwertyuiopasdfghjklzxcvbnm123456".to_owned(),
            "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,".to_owned(),
            "Password123!Password123!Password".to_owned(),
            // A strong-looking half, twice.
            "x7Gq9pLm2vRt4wYz".repeat(2),
        ] {
            assert_eq!(weakness(&key), Some(Weakness::Pattern), "{key}");
        }
    }

    #[test]
    fn dictionary_phrases_are_refused() {
        for key in [
            "thisismysupersecretkeyforjwttokens",
            "my_super_secret_jwt_key_change_me_please",
            "The quick brown fox jumps over the lazy dog",
            "development_secret_key_do_not_use",
            "insecure-default-secret-change-it",
            "my application secret key 2024!!",
        ] {
            assert!(weakness(key).is_some(), "{key}");
        }
    }
}
