//! The mail a test server sent: every [`TestApp`](super::TestApp) delivers over SMTP to an
//! [`SmtpServer`] of its own, and [`Mailbox`] reads what it received, waiting for mail that is
//! still on its way (delivery runs beside the API, so a reply never waits for it).

use std::time::{Duration, Instant};

use super::smtp::{Received, SmtpServer};

/// The path of verification links, as [`Mail::token`] takes it.
pub const VERIFY_PATH: &str = "verify-email";
/// The path of reset links, as [`Mail::token`] takes it.
pub const RESET_PATH: &str = "reset-password";

/// How long a test waits for a mail before it fails.
const WAIT: Duration = Duration::from_secs(20);

/// One received mail, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The decoded subject.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// The HTML body, when there is one.
    pub html: Option<String>,
}

impl Mail {
    fn from_received(received: &Received) -> Mail {
        let view = received.view();
        Mail {
            recipients: received.recipients.clone(),
            subject: view.subject,
            text: view.text,
            html: Some(view.html).filter(|h| !h.is_empty()),
        }
    }

    /// The link to `/<path>?token=…` in the text body, and its token.
    pub fn link(&self, path: &str) -> Option<(String, String)> {
        super::smtp::MailView {
            text: self.text.clone(),
            ..Default::default()
        }
        .link_with_token(path)
    }

    /// The token of the link to `/<path>` in the text body.
    pub fn token(&self, path: &str) -> Option<String> {
        self.link(path).map(|(_, token)| token)
    }
}

/// The SMTP server a test server delivers to, and what it received.
pub struct Mailbox {
    /// The server itself, to stop, start or make refuse.
    pub server: SmtpServer,
}

impl Mailbox {
    /// A new SMTP server on a spare loopback port.
    pub async fn spawn() -> Mailbox {
        Mailbox {
            server: SmtpServer::spawn().await,
        }
    }

    /// Every mail received so far for `address`, oldest first.
    pub fn all_to(&self, address: &str) -> Vec<Mail> {
        self.server
            .received()
            .iter()
            .filter(|r| {
                r.recipients
                    .iter()
                    .any(|to| to.eq_ignore_ascii_case(address))
            })
            .map(Mail::from_received)
            .collect()
    }

    /// The `n`th mail (from 1) for `address`, waiting for it.
    pub async fn nth_to(&self, address: &str, n: usize) -> Mail {
        self.wait(&format!("mail #{n} to {address}"), || {
            self.all_to(address).into_iter().nth(n - 1)
        })
        .await
    }

    /// The first mail for `address`, waiting for it.
    pub async fn next_to(&self, address: &str) -> Mail {
        self.nth_to(address, 1).await
    }

    /// The first mail for `address` with a link to `/<path>`, waiting for it.
    pub async fn next_with(&self, address: &str, path: &str) -> Mail {
        self.wait(&format!("a mail to {address} linking to /{path}"), || {
            self.all_to(address)
                .into_iter()
                .find(|m| m.token(path).is_some())
        })
        .await
    }

    /// The first mail for `address` with none of these links (a notice), waiting for it.
    pub async fn next_without(&self, address: &str, paths: &[&str]) -> Mail {
        self.wait(&format!("a notice to {address}"), || {
            self.all_to(address)
                .into_iter()
                .find(|m| paths.iter().all(|p| m.token(p).is_none()))
        })
        .await
    }

    /// The first mail for `address` that `matches`, waiting for it.
    pub async fn wait_for(&self, address: &str, matches: impl Fn(&Mail) -> bool) -> Mail {
        self.wait(&format!("a matching mail to {address}"), || {
            self.all_to(address).into_iter().find(|m| matches(m))
        })
        .await
    }

    async fn wait(&self, what: &str, mut find: impl FnMut() -> Option<Mail>) -> Mail {
        let started = Instant::now();
        loop {
            if let Some(mail) = find() {
                return mail;
            }
            assert!(
                started.elapsed() < WAIT,
                "no {what} within {WAIT:?}; received: {:?}",
                self.server
                    .received()
                    .iter()
                    .map(|r| (r.recipients.clone(), r.view().subject))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
