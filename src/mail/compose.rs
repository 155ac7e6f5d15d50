//! Writing mails: the [`Mail`]s the server sends, and the [`Composer`] that renders each into
//! a complete RFC 5322 message ([`OutgoingMail`]) from its templates.
//!
//! Every mail has three templates, named after its [kind](Mail::kind): `<kind>.subject.txt`,
//! `<kind>.txt` (the plain-text body) and `<kind>.html` (the HTML body, auto-escaped). The
//! built-in ones are compiled into the binary; a file of the same name in `MAIL_TEMPLATE_DIR`
//! replaces one. Templates see `app_name` and `username`; `link`, `expires_in` (e.g.
//! `24 hours`) and `expires_in_minutes` where the mail carries a link; `new_email` in the
//! email-changed notice; `remaining` (recovery codes left) in the recovery-code-used notice.
//! An unknown variable is an error, so a typo in an override fails start-up instead of leaving
//! a gap in every mail.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use lettre::Address;
use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value, context};

use crate::config::MailConfig;

/// A mail the server sends, with what its templates need beyond the username and APP_NAME.
/// Only [`Mail::VerifyEmail`] and [`Mail::ResetPassword`] carry a secret (their link); the
/// notices carry none by construction.
#[derive(Clone, PartialEq, Eq)]
pub enum Mail {
    /// Asks the recipient to confirm their address by opening `link`.
    VerifyEmail {
        /// The verification link, token included.
        link: String,
        /// How long the link works.
        expires_in: Duration,
    },
    /// Lets the recipient choose a new password by opening `link`.
    ResetPassword {
        /// The reset link, token included.
        link: String,
        /// How long the link works.
        expires_in: Duration,
    },
    /// Tells the account's previous address that the email was changed.
    EmailChanged {
        /// The account's new address.
        new_email: String,
    },
    /// Tells the account's address that its password was changed.
    PasswordChanged,
    /// Tells the account's address that an administrator disabled it.
    AccountDisabled,
    /// Tells the account's address that two-step sign-in was turned on.
    MfaEnabled,
    /// Tells the account's address that two-step sign-in was turned off (by the user or an
    /// administrator).
    MfaDisabled,
    /// Tells the account's address that a recovery code stood in for a TOTP code.
    RecoveryCodeUsed {
        /// How many recovery codes are left.
        remaining: usize,
    },
}

impl Mail {
    /// Every kind, as [`Mail::kind`] names them.
    pub const KINDS: [&'static str; 8] = [
        "verify-email",
        "reset-password",
        "email-changed",
        "password-changed",
        "account-disabled",
        "mfa-enabled",
        "mfa-disabled",
        "recovery-code-used",
    ];

    /// The mail's kind: names its templates, and is kept with the stored message.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::VerifyEmail { .. } => "verify-email",
            Mail::ResetPassword { .. } => "reset-password",
            Mail::EmailChanged { .. } => "email-changed",
            Mail::PasswordChanged => "password-changed",
            Mail::AccountDisabled => "account-disabled",
            Mail::MfaEnabled => "mfa-enabled",
            Mail::MfaDisabled => "mfa-disabled",
            Mail::RecoveryCodeUsed { .. } => "recovery-code-used",
        }
    }

    /// A mail of `kind` with made-up values, to try its templates at start-up.
    fn sample(kind: &str) -> Option<Mail> {
        let link = "https://app.example.com/path?token=sample".to_owned();
        let expires_in = Duration::from_secs(3600);
        Some(match kind {
            "verify-email" => Mail::VerifyEmail { link, expires_in },
            "reset-password" => Mail::ResetPassword { link, expires_in },
            "email-changed" => Mail::EmailChanged {
                new_email: "new@example.com".to_owned(),
            },
            "password-changed" => Mail::PasswordChanged,
            "account-disabled" => Mail::AccountDisabled,
            "mfa-enabled" => Mail::MfaEnabled,
            "mfa-disabled" => Mail::MfaDisabled,
            "recovery-code-used" => Mail::RecoveryCodeUsed { remaining: 9 },
            _ => return None,
        })
    }

    /// What the templates see. Names and addresses are made one line: they come from users,
    /// and a line break in them could dress up a line of the mail as something it is not.
    fn context(&self, app_name: &str, username: &str) -> Value {
        let common = context! {
            app_name => one_line(app_name),
            username => one_line(username),
        };
        match self {
            Mail::VerifyEmail { link, expires_in } | Mail::ResetPassword { link, expires_in } => {
                context! {
                    link => link,
                    expires_in => human_duration(*expires_in),
                    expires_in_minutes => expires_in.as_secs().div_ceil(60),
                    ..common
                }
            }
            Mail::EmailChanged { new_email } => {
                context! { new_email => one_line(new_email), ..common }
            }
            Mail::RecoveryCodeUsed { remaining } => {
                context! { remaining => remaining, ..common }
            }
            Mail::PasswordChanged
            | Mail::AccountDisabled
            | Mail::MfaEnabled
            | Mail::MfaDisabled => common,
        }
    }
}

/// Links carry tokens: a `{:?}` in a log line must not print them.
impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mail::VerifyEmail { expires_in, .. } | Mail::ResetPassword { expires_in, .. } => f
                .debug_struct(self.kind())
                .field("link", &"[redacted]")
                .field("expires_in", expires_in)
                .finish(),
            Mail::EmailChanged { new_email } => f
                .debug_struct(self.kind())
                .field("new_email", new_email)
                .finish(),
            Mail::RecoveryCodeUsed { remaining } => f
                .debug_struct(self.kind())
                .field("remaining", remaining)
                .finish(),
            Mail::PasswordChanged
            | Mail::AccountDisabled
            | Mail::MfaEnabled
            | Mail::MfaDisabled => f.write_str(self.kind()),
        }
    }
}

/// A composed mail, ready to be stored and sent verbatim (so every retry sends the same
/// Message-ID).
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The [kind](Mail::kind) of mail.
    pub kind: &'static str,
    /// The envelope recipient: the address of the `To` header.
    pub recipient: String,
    /// The whole RFC 5322 message (headers, then a multipart/alternative text + HTML body),
    /// 7-bit ASCII with CRLF line ends.
    pub message: String,
}

/// The message may hold a token: `{:?}` shows only what identifies it.
impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("kind", &self.kind)
            .field("recipient", &self.recipient)
            .field("message", &format_args!("[{} bytes]", self.message.len()))
            .finish()
    }
}

/// The three templates of a mail kind.
fn template_names(kind: &str) -> [String; 3] {
    [
        format!("{kind}.subject.txt"),
        format!("{kind}.txt"),
        format!("{kind}.html"),
    ]
}

/// The built-in templates, by file name.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "verify-email.subject.txt",
        include_str!("templates/verify-email.subject.txt"),
    ),
    (
        "verify-email.txt",
        include_str!("templates/verify-email.txt"),
    ),
    (
        "verify-email.html",
        include_str!("templates/verify-email.html"),
    ),
    (
        "reset-password.subject.txt",
        include_str!("templates/reset-password.subject.txt"),
    ),
    (
        "reset-password.txt",
        include_str!("templates/reset-password.txt"),
    ),
    (
        "reset-password.html",
        include_str!("templates/reset-password.html"),
    ),
    (
        "email-changed.subject.txt",
        include_str!("templates/email-changed.subject.txt"),
    ),
    (
        "email-changed.txt",
        include_str!("templates/email-changed.txt"),
    ),
    (
        "email-changed.html",
        include_str!("templates/email-changed.html"),
    ),
    (
        "password-changed.subject.txt",
        include_str!("templates/password-changed.subject.txt"),
    ),
    (
        "password-changed.txt",
        include_str!("templates/password-changed.txt"),
    ),
    (
        "password-changed.html",
        include_str!("templates/password-changed.html"),
    ),
    (
        "account-disabled.subject.txt",
        include_str!("templates/account-disabled.subject.txt"),
    ),
    (
        "account-disabled.txt",
        include_str!("templates/account-disabled.txt"),
    ),
    (
        "account-disabled.html",
        include_str!("templates/account-disabled.html"),
    ),
    (
        "mfa-enabled.subject.txt",
        include_str!("templates/mfa-enabled.subject.txt"),
    ),
    ("mfa-enabled.txt", include_str!("templates/mfa-enabled.txt")),
    (
        "mfa-enabled.html",
        include_str!("templates/mfa-enabled.html"),
    ),
    (
        "mfa-disabled.subject.txt",
        include_str!("templates/mfa-disabled.subject.txt"),
    ),
    (
        "mfa-disabled.txt",
        include_str!("templates/mfa-disabled.txt"),
    ),
    (
        "mfa-disabled.html",
        include_str!("templates/mfa-disabled.html"),
    ),
    (
        "recovery-code-used.subject.txt",
        include_str!("templates/recovery-code-used.subject.txt"),
    ),
    (
        "recovery-code-used.txt",
        include_str!("templates/recovery-code-used.txt"),
    ),
    (
        "recovery-code-used.html",
        include_str!("templates/recovery-code-used.html"),
    ),
];

/// Renders [`Mail`]s into messages. Built once at start-up; every template has been tried by
/// then, so composing fails only on a bad recipient address.
#[derive(Debug)]
pub struct Composer {
    templates: Environment<'static>,
    from: Mailbox,
    app_name: String,
    /// The right-hand side of Message-IDs: the sender's domain, which the sender controls.
    id_domain: String,
}

impl Composer {
    /// Loads the templates (the built-in ones, each replaced by a file of the same name in
    /// `MAIL_TEMPLATE_DIR` if there is one) and renders each once with sample values. An
    /// error names the file (or built-in template) that failed.
    pub fn new(config: &MailConfig) -> anyhow::Result<Composer> {
        let mut templates = Environment::new();
        templates.set_undefined_behavior(UndefinedBehavior::Strict);
        templates.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for &(name, built_in) in BUILT_IN {
            let (source, origin) = match &config.template_dir {
                Some(dir) => match read_override(dir, name)? {
                    Some(source) => (source, dir.join(name).display().to_string()),
                    None => (built_in.to_owned(), format!("built-in template {name}")),
                },
                None => (built_in.to_owned(), format!("built-in template {name}")),
            };
            templates
                .add_template_owned(name, source)
                .with_context(|| format!("mail template {origin}"))?;
        }
        if let Some(dir) = &config.template_dir {
            warn_about_strays(dir);
        }
        let composer = Composer {
            templates,
            from: config.from.clone(),
            app_name: config.app_name.clone(),
            id_domain: config.from.email.domain().to_owned(),
        };
        composer.try_every_template(config.template_dir.as_deref())?;
        Ok(composer)
    }

    /// Renders every template once, so that an override that only fails at render time (an
    /// unknown variable, a bad filter) stops start-up rather than a mail.
    fn try_every_template(&self, dir: Option<&Path>) -> anyhow::Result<()> {
        for kind in Mail::KINDS {
            let Some(sample) = Mail::sample(kind) else {
                bail!("no sample mail for {kind}");
            };
            let context = sample.context(&self.app_name, "sample-user");
            for name in template_names(kind) {
                self.render(&name, &context).with_context(|| {
                    match dir.map(|dir| dir.join(&name)).filter(|path| path.exists()) {
                        Some(path) => format!("mail template {}", path.display()),
                        None => format!("built-in template {name}"),
                    }
                })?;
            }
        }
        Ok(())
    }

    fn render(&self, name: &str, context: &Value) -> anyhow::Result<String> {
        let template = self.templates.get_template(name)?;
        Ok(template.render(context)?)
    }

    /// Composes `mail` to `username` at `to`: a multipart/alternative message with both
    /// bodies and its own Message-ID. Fails if `to` is not an email address.
    pub fn compose(&self, to: &str, username: &str, mail: &Mail) -> anyhow::Result<OutgoingMail> {
        let kind = mail.kind();
        let [subject, text, html] = template_names(kind);
        let to: Address = to
            .trim()
            .parse()
            .with_context(|| format!("the recipient of a {kind} mail is not an address"))?;
        let context = mail.context(&self.app_name, username);
        let subject = one_line(&self.render(&subject, &context)?);
        let text = self.render(&text, &context)?;
        let html = self.render(&html, &context)?;
        // A username that is all control characters would make an empty display name.
        let name = Some(one_line(username)).filter(|name| !name.is_empty());
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7().simple(), self.id_domain);
        // The envelope is given rather than derived from the headers: lettre cannot read a
        // quoted local part back from the `To` it wrote, and the address is parsed already.
        let envelope = Envelope::new(Some(self.from.email.clone()), vec![to.clone()])
            .with_context(|| format!("the envelope of a {kind} mail"))?;
        let message = Message::builder()
            .envelope(envelope)
            .from(self.from.clone())
            .to(Mailbox::new(name, to.clone()))
            .subject(subject)
            .message_id(Some(message_id))
            // RFC 3834: an automatic mail, which vacation responders must not answer.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .with_context(|| format!("building a {kind} mail"))?;
        let message =
            String::from_utf8(message.formatted()).context("the formatted message is not text")?;
        Ok(OutgoingMail {
            kind,
            recipient: to.to_string(),
            message,
        })
    }
}

/// The override of `name` in `dir`, if there is one.
fn read_override(dir: &Path, name: &str) -> anyhow::Result<Option<String>> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok(Some(source)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A template folder that is not there at all is a mistake, not "no overrides".
            if !dir.is_dir() {
                bail!("MAIL_TEMPLATE_DIR {} is not a folder", dir.display());
            }
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("mail template {}", path.display())),
    }
}

/// Logs files in the template folder that replace nothing: a misspelt override would
/// otherwise be ignored without a word.
fn warn_about_strays(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let template_like = name.ends_with(".txt") || name.ends_with(".html");
        if template_like && !BUILT_IN.iter().any(|(known, _)| *known == name) {
            tracing::warn!(file = %entry.path().display(), "mail template folder: this file replaces no template");
        }
    }
}

/// Text for a header or a template: one line, no control characters. lettre encodes what it is given, but
/// a subject or display name has no business spanning lines, whatever a template or a
/// username holds.
fn one_line(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A link's lifetime as a person reads it: `1 hour`, `24 hours`, `30 minutes`.
fn human_duration(duration: Duration) -> String {
    let minutes = duration.as_secs().div_ceil(60).max(1);
    let (count, unit) = if minutes.is_multiple_of(60) {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(args: &[&str]) -> MailConfig {
        let mut all = vec!["user-api"];
        all.extend_from_slice(args);
        Config::try_from_args(all).unwrap().mail
    }

    fn composer() -> Composer {
        Composer::new(&config(&["--mail-from", "Example <no-reply@example.com>"])).unwrap()
    }

    /// The header block of a message, unfolded: one entry per header.
    fn headers(message: &str) -> Vec<String> {
        let head = message.split("\r\n\r\n").next().unwrap();
        let mut headers: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                headers.last_mut().unwrap().push_str(line);
            } else {
                headers.push(line.to_owned());
            }
        }
        headers
    }

    fn header<'a>(headers: &'a [String], name: &str) -> Vec<&'a str> {
        headers
            .iter()
            .filter_map(|h| {
                let (key, value) = h.split_once(':')?;
                key.eq_ignore_ascii_case(name).then_some(value.trim())
            })
            .collect()
    }

    #[test]
    fn every_kind_has_a_sample_and_templates() {
        for kind in Mail::KINDS {
            assert_eq!(Mail::sample(kind).unwrap().kind(), kind);
            for name in template_names(kind) {
                assert!(BUILT_IN.iter().any(|(n, _)| *n == name), "{name}");
            }
        }
        assert_eq!(BUILT_IN.len(), 3 * Mail::KINDS.len());
    }

    #[test]
    fn a_message_has_the_headers_and_both_bodies() {
        let mail = Mail::VerifyEmail {
            link: "https://app.example.com/verify-email?token=abc".into(),
            expires_in: Duration::from_secs(86_400),
        };
        let out = composer().compose("ann@example.com", "ann", &mail).unwrap();
        assert_eq!(out.kind, "verify-email");
        assert_eq!(out.recipient, "ann@example.com");
        let headers = headers(&out.message);
        assert_eq!(header(&headers, "From"), ["Example <no-reply@example.com>"]);
        assert_eq!(header(&headers, "To"), ["ann <ann@example.com>"]);
        assert_eq!(
            header(&headers, "Subject"),
            ["user-api: confirm your email address"]
        );
        assert_eq!(header(&headers, "Date").len(), 1);
        assert_eq!(header(&headers, "Auto-Submitted"), ["auto-generated"]);
        let id = header(&headers, "Message-ID");
        assert!(
            id.len() == 1 && id[0].starts_with('<') && id[0].ends_with("@example.com>"),
            "{id:?}"
        );
        assert!(header(&headers, "Content-Type")[0].starts_with("multipart/alternative"));
        assert!(
            out.message
                .contains("Content-Type: text/plain; charset=utf-8")
        );
        assert!(
            out.message
                .contains("Content-Type: text/html; charset=utf-8")
        );
        assert!(out.message.contains("24 hours"));
        // Each composition is a new message.
        let again = composer().compose("ann@example.com", "ann", &mail).unwrap();
        assert_ne!(header(&self::headers(&again.message), "Message-ID"), id);
    }

    #[test]
    fn line_breaks_never_reach_a_header() {
        let app = config(&["--mail-from", "Example <no-reply@example.com>"]);
        let composer = Composer::new(&app).unwrap();
        let evil = "mallory\r\nBcc: victim@example.net\r\nX-Injected: 1";
        for mail in [
            Mail::EmailChanged {
                new_email: "new@example.com\r\nBcc: victim@example.net".into(),
            },
            Mail::PasswordChanged,
        ] {
            let out = composer.compose("ann@example.com", evil, &mail).unwrap();
            // Nor the bodies: a value is one line wherever it goes.
            assert!(!out.message.contains("\nBcc:"), "{}", out.message);
            let headers = headers(&out.message);
            for h in &headers {
                let name = h.split(':').next().unwrap();
                assert!(
                    !name.eq_ignore_ascii_case("bcc") && !name.eq_ignore_ascii_case("x-injected"),
                    "an injected header: {h}\n{}",
                    out.message
                );
            }
            assert_eq!(header(&headers, "To").len(), 1);
        }
        // A subject template that puts the username (and so a line break) into the subject.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("password-changed.subject.txt"),
            "{{ app_name }} for {{ username }}",
        )
        .unwrap();
        let mut config = app.clone();
        config.template_dir = Some(dir.path().to_owned());
        config.app_name = "App\r\nX-App: 1".into();
        let out = Composer::new(&config)
            .unwrap()
            .compose("ann@example.com", evil, &Mail::PasswordChanged)
            .unwrap();
        let headers = headers(&out.message);
        assert_eq!(header(&headers, "Subject").len(), 1);
        for h in &headers {
            let name = h.split(':').next().unwrap();
            assert!(
                !["bcc", "x-injected", "x-app"].contains(&name.to_ascii_lowercase().as_str()),
                "an injected header: {h}"
            );
        }
        // Nor can a recipient carry one: it must parse as an address.
        for to in [
            "ann@example.com\r\nBcc: victim@example.net",
            "ann@example.com, victim@example.net",
            "Ann <ann@example.com>",
            "",
        ] {
            assert!(
                composer.compose(to, "ann", &Mail::PasswordChanged).is_err(),
                "{to:?}"
            );
        }
    }

    #[test]
    fn html_bodies_are_escaped_and_text_bodies_are_not() {
        let composer = composer();
        let context = Mail::EmailChanged {
            new_email: "<script>alert(1)</script>@example.com".into(),
        }
        .context("A & B", "<b>ann</b>");
        let html = composer.render("email-changed.html", &context).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>ann</b>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("A &amp; B"), "{html}");
        let text = composer.render("email-changed.txt", &context).unwrap();
        assert!(
            text.contains("<script>alert(1)</script>@example.com"),
            "{text}"
        );
        assert!(text.contains("Hello <b>ann</b>,"), "{text}");
        let subject = composer
            .render("email-changed.subject.txt", &context)
            .unwrap();
        assert_eq!(subject, "A & B: your email address was changed");
    }

    #[test]
    fn links_and_expiry_reach_both_bodies_and_notices_carry_none() {
        let composer = composer();
        let context = Mail::ResetPassword {
            link: "https://app.example.com/reset-password?token=tok".into(),
            expires_in: Duration::from_secs(1800),
        }
        .context("user-api", "ann");
        for name in ["reset-password.txt", "reset-password.html"] {
            let body = composer.render(name, &context).unwrap();
            assert!(body.contains("30 minutes"), "{body}");
            assert!(
                body.contains("https://app.example.com/reset-password?token=tok")
                    || body.contains(
                        "https:&#x2f;&#x2f;app.example.com&#x2f;reset-password?token=tok"
                    ),
                "{body}"
            );
        }
        for kind in ["email-changed", "password-changed", "account-disabled"] {
            let mail = Mail::sample(kind).unwrap();
            let out = composer.compose("ann@example.com", "ann", &mail).unwrap();
            assert!(!out.message.contains("token"), "{kind}");
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(human_duration(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 minute");
    }

    #[test]
    fn debug_output_hides_links_and_messages() {
        let mail = Mail::VerifyEmail {
            link: "https://x.example/verify-email?token=s3cret".into(),
            expires_in: Duration::from_secs(60),
        };
        assert!(!format!("{mail:?}").contains("s3cret"));
        let out = composer().compose("ann@example.com", "ann", &mail).unwrap();
        assert!(!format!("{out:?}").contains("s3cret"));
    }

    #[test]
    fn an_override_with_an_unknown_variable_fails_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("verify-email.txt"), "{{ lnik }}").unwrap();
        let mut config = config(&[]);
        config.template_dir = Some(dir.path().to_owned());
        let err = format!("{:#}", Composer::new(&config).unwrap_err());
        assert!(err.contains("verify-email.txt"), "{err}");
        config.template_dir = Some(dir.path().join("missing"));
        let err = format!("{:#}", Composer::new(&config).unwrap_err());
        assert!(err.contains("MAIL_TEMPLATE_DIR"), "{err}");
    }
}
