//! The data rules of user input. Each failure names the domain field it is about.

use email_address::{EmailAddress, Options};

use crate::error::{AppError, Field};

/// Longest email accepted (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX: usize = 254;
/// Password length bounds, in Unicode code points.
pub const PASSWORD_MIN: usize = 8;
/// Upper bound; also caps the work one hash request can ask for.
pub const PASSWORD_MAX: usize = 128;

/// Whether `value` could be a user's (or a session's) id: a UUID. Anything else names
/// nothing, so it is answered without asking a store.
pub fn is_id(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok()
}

/// 3–32 characters from `A–Z a–z 0–9 _ -`.
pub fn username(value: &str) -> Result<(), AppError> {
    let len = value.chars().count();
    if !(3..=32).contains(&len) {
        return Err(AppError::validation(
            Field::Username,
            "username must be 3 to 32 characters long",
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::validation(
            Field::Username,
            "username may contain only letters A-Z, digits, _ and -",
        ));
    }
    Ok(())
}

/// An RFC 5321/5322 mailbox (no display name), at most 254 characters.
pub fn email(value: &str) -> Result<(), AppError> {
    if value.chars().count() > EMAIL_MAX {
        return Err(AppError::validation(
            Field::Email,
            "email must be at most 254 characters long",
        ));
    }
    let options = Options {
        allow_display_text: false,
        ..Options::default()
    };
    EmailAddress::parse_with_options(value, options)
        .map(|_| ())
        .map_err(|_| AppError::validation(Field::Email, "email is not a valid address"))
}

/// 8–128 code points; anything else goes.
pub fn password(value: &str) -> Result<(), AppError> {
    let len = value.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(AppError::validation(
            Field::Password,
            "password must be 8 to 128 characters long",
        ));
    }
    Ok(())
}

/// NIST SP 800-63B's blocklist rule: a password that appears in breach corpora, or that is
/// the account's own username or email, is refused. The corpus is the `passwords` crate's list
/// of about 100,000 common passwords, compiled into the binary. It is checked as given and
/// lower-cased, since the list is mostly lower case and `Password1` is no safer than
/// `password1`; the account's names are compared ignoring case, the email's local part too.
/// No composition rules: length (see [`password`]) and this list are the whole policy.
pub fn password_not_guessable(
    value: &str,
    username: &str,
    emails: &[&str],
) -> Result<(), AppError> {
    let lower = value.to_lowercase();
    if passwords::analyzer::is_common_password(value)
        || passwords::analyzer::is_common_password(&lower)
    {
        return Err(AppError::validation(
            Field::Password,
            "password is too common: it appears in lists of breached passwords",
        ));
    }
    let local_parts = emails
        .iter()
        .filter_map(|e| e.rsplit_once('@').map(|(l, _)| l));
    let names = std::iter::once(username)
        .chain(emails.iter().copied())
        .chain(local_parts);
    for name in names {
        if !name.is_empty() && name.to_lowercase() == lower {
            return Err(AppError::validation(
                Field::Password,
                "password must not be the username or the email",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "A_b-9", &"x".repeat(32)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"x".repeat(33),
            "with space",
            "ünï",
            "a.b",
            "<script>",
            "a'--",
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        for ok in [
            "a@example.com",
            "first.last+tag@sub.example.org",
            "用户@例子.广告",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        for bad in [
            "",
            "plain",
            "a@",
            "@b.com",
            "Name <a@b.com>",
            "a b@c.com",
            &long,
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_count_code_points() {
        assert!(password("short").is_err());
        assert!(password("pass word").is_ok());
        assert!(password("ééééééé").is_err()); // 7 code points, 14 bytes
        assert!(password("éééééééé").is_ok());
        assert!(password(&"é".repeat(128)).is_ok());
        assert!(password(&"é".repeat(129)).is_err());
    }

    #[test]
    fn common_and_personal_passwords_are_refused() {
        let ok = |p: &str| password_not_guessable(p, "alice", &["alice.s@example.com"]);
        for common in [
            "password",
            "12345678",
            "iloveyou",
            "PASSWORD",
            "Password1",
            "qwertyuiop",
        ] {
            let err = ok(common).unwrap_err();
            assert!(
                matches!(
                    err,
                    AppError::Validation {
                        field: Field::Password,
                        ..
                    }
                ),
                "{common}"
            );
        }
        for personal in [
            "alice",
            "ALICE",
            "alice.s@example.com",
            "Alice.S@Example.com",
            "alice.s",
        ] {
            assert!(ok(personal).is_err(), "{personal}");
        }
        for fine in [
            "correct horse",
            "alice in chains 77",
            "a password",
            "ünïcödé pässwörd",
        ] {
            assert!(ok(fine).is_ok(), "{fine}");
        }
    }
}
