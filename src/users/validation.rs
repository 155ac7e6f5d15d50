//! The data rules of user input. Each failure names the field as the schema spells it.

use email_address::{EmailAddress, Options};

use crate::error::AppError;

/// Longest email accepted (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX: usize = 254;
/// Password length bounds, in Unicode code points.
pub const PASSWORD_MIN: usize = 8;
/// Upper bound; also caps the work one hash request can ask for.
pub const PASSWORD_MAX: usize = 128;

/// 3–32 characters from `A–Z a–z 0–9 _ -`.
pub fn username(value: &str) -> Result<(), AppError> {
    let len = value.chars().count();
    if !(3..=32).contains(&len) {
        return Err(AppError::validation(
            "username",
            "username must be 3 to 32 characters long",
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::validation(
            "username",
            "username may contain only letters A-Z, digits, _ and -",
        ));
    }
    Ok(())
}

/// An RFC 5321/5322 mailbox (no display name), at most 254 characters.
pub fn email(value: &str) -> Result<(), AppError> {
    if value.chars().count() > EMAIL_MAX {
        return Err(AppError::validation(
            "email",
            "email must be at most 254 characters long",
        ));
    }
    let options = Options {
        allow_display_text: false,
        ..Options::default()
    };
    EmailAddress::parse_with_options(value, options)
        .map(|_| ())
        .map_err(|_| AppError::validation("email", "email is not a valid address"))
}

/// 8–128 code points; anything else goes.
pub fn password(field: &'static str, value: &str) -> Result<(), AppError> {
    let len = value.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(AppError::validation(
            field,
            format!("{field} must be 8 to 128 characters long"),
        ));
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
        assert!(password("password", "short").is_err());
        assert!(password("password", "pass word").is_ok());
        assert!(password("password", "ééééééé").is_err()); // 7 code points, 14 bytes
        assert!(password("password", "éééééééé").is_ok());
        assert!(password("password", &"é".repeat(128)).is_ok());
        assert!(password("password", &"é".repeat(129)).is_err());
    }
}
