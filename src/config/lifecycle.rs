//! Settings of the account lifecycle: where the links in mails point, how long their tokens
//! live, and whether an unverified address holds an account back.

use clap::Args;

/// Email verification and password reset.
#[derive(Debug, Clone, Args)]
pub struct LifecycleConfig {
    /// EMAIL_LINK_BASE: where the links in mails point, e.g. `https://app.example.com` (the
    /// frontend serves `/verify-email` and `/reset-password`); unset, they point to this
    /// server's own minimal pages.
    #[arg(id = "email-link-base", long = "email-link-base", env = "EMAIL_LINK_BASE", value_name = "EMAIL_LINK_BASE", value_parser = parse_link_base)]
    pub email_link_base: Option<String>,
    /// PUBLIC_URL: this server's address as mail readers reach it, e.g.
    /// `https://api.example.com`; the base of links when EMAIL_LINK_BASE is unset. Unset, the
    /// links use `http://` and BIND.
    #[arg(id = "public-url", long = "public-url", env = "PUBLIC_URL", value_name = "PUBLIC_URL", value_parser = parse_link_base)]
    pub public_url: Option<String>,
    /// PASSWORD_RESET_TTL: seconds a password-reset link works.
    #[arg(id = "password-reset-ttl", long = "password-reset-ttl", env = "PASSWORD_RESET_TTL", value_name = "PASSWORD_RESET_TTL", default_value = "3600", value_parser = clap::value_parser!(u32).range(60..=604_800))]
    pub password_reset_ttl: u32,
    /// EMAIL_VERIFICATION_TTL: seconds an email-verification link works.
    #[arg(id = "email-verification-ttl", long = "email-verification-ttl", env = "EMAIL_VERIFICATION_TTL", value_name = "EMAIL_VERIFICATION_TTL", default_value = "86400", value_parser = clap::value_parser!(u32).range(60..=2_592_000))]
    pub email_verification_ttl: u32,
    /// REQUIRE_EMAIL_VERIFICATION: `true` holds an unverified account to `me`,
    /// `sendVerificationEmail`, `verifyEmail`, `logout` and `deleteMe` (anything else is
    /// FORBIDDEN with reason EMAIL_NOT_VERIFIED).
    #[arg(id = "require-email-verification", long = "require-email-verification", env = "REQUIRE_EMAIL_VERIFICATION", value_name = "REQUIRE_EMAIL_VERIFICATION", default_value = "false", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::limits::parse_bool)]
    pub require_email_verification: bool,
}

impl LifecycleConfig {
    /// `EMAIL_LINK_BASE`, when set to something (compose passes an empty value for unset).
    pub fn email_link_base(&self) -> Option<&str> {
        self.email_link_base.as_deref().filter(|s| !s.is_empty())
    }

    /// `PUBLIC_URL`, when set to something.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref().filter(|s| !s.is_empty())
    }
}

/// An absolute `http(s)://host[:port][/path]` URL without query, fragment or trailing slash;
/// empty for unset.
fn parse_link_base(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("names no host".into());
    }
    if s.contains(['?', '#']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a plain URL without query, fragment or spaces".into());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_bases_are_plain_absolute_urls() {
        assert_eq!(
            parse_link_base("https://app.example.com/").as_deref(),
            Ok("https://app.example.com")
        );
        assert_eq!(
            parse_link_base("http://localhost:3000/app").as_deref(),
            Ok("http://localhost:3000/app")
        );
        assert_eq!(parse_link_base("").as_deref(), Ok(""));
        assert!(parse_link_base("app.example.com").is_err());
        assert!(parse_link_base("https://").is_err());
        assert!(parse_link_base("https://a.example?x=1").is_err());
        assert!(parse_link_base("https://a.example/\r\nX: y").is_err());
    }
}
