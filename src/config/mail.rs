//! Settings of mail delivery: where mails go (an SMTP server, or `.eml` files when there is
//! none), who they come from, the templates and product name they are written with, and how
//! hard delivery tries. Kept apart so that the SMTP URL's handling (it may hold a password)
//! sits in one place.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lettre::message::Mailbox;
use secrecy::{ExposeSecret as _, SecretString};

use super::parsers::{Escaped, Hidden};

/// Mail delivery and composition.
#[derive(Debug, Clone, Args)]
pub struct MailConfig {
    /// SMTP_URL: the SMTP server, e.g. `smtps://user:pass@host:465` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtp://host:25` (a local relay);
    /// when unset, mails are written as `.eml` files into MAIL_DIR.
    #[arg(id = "smtp-url", long = "smtp-url", env = "SMTP_URL", value_name = "SMTP_URL", hide_env_values = true, value_parser = Hidden(SmtpUrl::parse))]
    pub smtp_url: Option<SmtpUrl>,
    /// MAIL_FROM: the sender of every mail, e.g. `Example <no-reply@example.com>`.
    #[arg(id = "mail-from", long = "mail-from", env = "MAIL_FROM", value_name = "MAIL_FROM", default_value = "user-api <no-reply@localhost>", value_parser = Escaped(parse_mailbox))]
    pub from: Mailbox,
    /// MAIL_DIR: folder the mails are written to when SMTP_URL is unset (created, private to
    /// this user, if missing).
    #[arg(
        id = "mail-dir",
        long = "mail-dir",
        env = "MAIL_DIR",
        value_name = "MAIL_DIR",
        default_value = "data/mail"
    )]
    pub dir: PathBuf,
    /// MAIL_TEMPLATE_DIR: folder of templates that replace the built-in ones of the same name
    /// (e.g. `verify-email.html`); unset = the built-in templates only.
    #[arg(
        id = "mail-template-dir",
        long = "mail-template-dir",
        env = "MAIL_TEMPLATE_DIR",
        value_name = "MAIL_TEMPLATE_DIR"
    )]
    pub template_dir: Option<PathBuf>,
    /// APP_NAME: the product name in subjects and mail bodies.
    #[arg(id = "app-name", long = "app-name", env = "APP_NAME", value_name = "APP_NAME", default_value = "user-api", value_parser = Escaped(parse_app_name))]
    pub app_name: String,
    /// MAIL_MAX_ATTEMPTS: delivery attempts of one mail before it is given up as failed.
    #[arg(id = "mail-max-attempts", long = "mail-max-attempts", env = "MAIL_MAX_ATTEMPTS", value_name = "MAIL_MAX_ATTEMPTS", default_value = "10", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// SMTP_TIMEOUT: seconds one delivery to the SMTP server may take, connecting included.
    #[arg(id = "smtp-timeout", long = "smtp-timeout", env = "SMTP_TIMEOUT", value_name = "SMTP_TIMEOUT", default_value = "30", value_parser = super::parse_seconds)]
    pub smtp_timeout: Duration,
    /// MAIL_RETRY_BASE: seconds before the first retry of a failed delivery; each further
    /// failure doubles the wait, up to an hour.
    #[arg(id = "mail-retry-base", long = "mail-retry-base", env = "MAIL_RETRY_BASE", value_name = "MAIL_RETRY_BASE", default_value = "5", value_parser = super::parse_seconds)]
    pub retry_base: Duration,
}

/// A checked `SMTP_URL`. The URL itself stays secret (it may hold a password); what a log
/// line may show is kept beside it.
#[derive(Debug, Clone)]
pub struct SmtpUrl {
    url: SecretString,
    host: String,
    port: u16,
    security: &'static str,
}

impl SmtpUrl {
    /// Checks `url` the way the SMTP client will read it, so that a URL it would refuse stops
    /// start-up instead of every delivery.
    pub fn parse(url: &str) -> Result<SmtpUrl, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        let tls = parsed
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        // The default ports are the SMTP client's (lettre's) for each form.
        let (security, default_port) = match (parsed.scheme(), tls.as_deref()) {
            ("smtps", None) => ("TLS", 465),
            ("smtp", None) => ("no TLS", 25),
            ("smtp", Some("required")) => ("STARTTLS", 587),
            ("smtp", Some("opportunistic")) => ("STARTTLS if offered", 587),
            _ => {
                return Err(
                    "expected smtps://host[:port], smtp://host[:port]?tls=required, \
                     smtp://host[:port]?tls=opportunistic or smtp://host[:port]"
                        .into(),
                );
            }
        };
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or("the URL names no host")?
            .to_owned();
        // The client's own reading, which also prepares TLS: whatever it refuses fails here.
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|e| format!("the SMTP client refuses it ({e})"))?;
        Ok(SmtpUrl {
            url: SecretString::from(url.to_owned()),
            host,
            port: parsed.port().unwrap_or(default_port),
            security,
        })
    }

    /// The URL, credentials included: for the SMTP client only.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }

    /// The server, for a log line: `smtp.example.com:465 (TLS)`, never the credentials.
    pub fn describe(&self) -> String {
        format!("{}:{} ({})", self.host, self.port, self.security)
    }
}

fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("not a mailbox like `Example <no-reply@example.com>` ({e})"))
}

fn parse_app_name(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    // It goes into subjects: a line break there would start a header of its own.
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters (line breaks, tabs)".into());
    }
    if name.chars().count() > 100 {
        return Err("must be at most 100 characters".into());
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn mail(args: &[&str]) -> Result<MailConfig, clap::Error> {
        let mut all = vec!["user-api"];
        all.extend_from_slice(args);
        Config::try_from_args(all).map(|c| c.mail)
    }

    #[test]
    fn defaults() {
        let mail = mail(&[]).unwrap();
        assert!(mail.smtp_url.is_none());
        assert_eq!(mail.from.to_string(), "user-api <no-reply@localhost>");
        assert_eq!(mail.dir, PathBuf::from("data/mail"));
        assert!(mail.template_dir.is_none());
        assert_eq!(mail.app_name, "user-api");
        assert_eq!(mail.max_attempts, 10);
        assert_eq!(mail.smtp_timeout, Duration::from_secs(30));
        assert_eq!(mail.retry_base, Duration::from_secs(5));
    }

    #[test]
    fn smtp_urls_in_each_form_parse_and_describe_without_credentials() {
        for (url, described) in [
            (
                "smtps://me:s3cret@mail.example.com",
                "mail.example.com:465 (TLS)",
            ),
            (
                "smtp://me:s3cret@mail.example.com:2587?tls=required",
                "mail.example.com:2587 (STARTTLS)",
            ),
            ("smtp://127.0.0.1:2525", "127.0.0.1:2525 (no TLS)"),
            ("smtp://relay", "relay:25 (no TLS)"),
        ] {
            let parsed = SmtpUrl::parse(url).unwrap();
            assert_eq!(parsed.describe(), described);
            assert_eq!(parsed.expose(), url);
            assert!(!format!("{parsed:?}").contains("s3cret"));
        }
    }

    #[test]
    fn a_bad_smtp_url_names_the_variable_but_not_the_password() {
        for bad in [
            "http://me:s3cret@mail.example.com",
            "smtp://me:s3cret@mail.example.com?tls=sometimes",
            "me:s3cret@mail.example.com",
            "smtp://me:s3cret@",
        ] {
            let err = mail(&["--smtp-url", bad]).unwrap_err();
            let text = err.render().to_string();
            let first = text.lines().next().unwrap();
            assert!(first.contains("--smtp-url <SMTP_URL>"), "{first}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for (flag, bad) in [
            ("--mail-from", "not an address"),
            ("--mail-from", "a@b.example\r\nBcc: x@y.example"),
            ("--app-name", "App\r\nBcc: x@y.example"),
            ("--app-name", "  "),
            ("--mail-max-attempts", "0"),
            ("--mail-max-attempts", "101"),
            ("--smtp-timeout", "0"),
        ] {
            let err = mail(&[flag, bad]).unwrap_err();
            assert!(err.to_string().contains(flag), "{flag} {bad:?}: {err}");
        }
        // A line break in the value does not split the line that names the variable.
        let err = mail(&["--app-name", "App\nName"]).unwrap_err();
        let text = err.render().to_string();
        let first = text.lines().next().unwrap();
        assert!(first.contains("--app-name <APP_NAME>"), "{first}");
        assert!(first.contains(r#""App\nName""#), "{first}");
        let ok = mail(&["--mail-from", "Example <no-reply@example.com>"]).unwrap();
        assert_eq!(ok.from.email.to_string(), "no-reply@example.com");
    }
}
