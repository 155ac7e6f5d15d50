//! Mail composition and delivery, without a database: what the SMTP transport hands to a
//! server (against the in-process one of `support::smtp`), how it reports refusals and
//! outages, the `.eml` files of the embedded default, and template overrides.

use std::time::Duration;

use user_api::config::{Config, MailConfig};
use user_api::mail::compose::{Composer, Mail, OutgoingMail};
use user_api::mail::transport::Transport;

use crate::support::smtp::{MailView, SmtpServer};

const WAIT: Duration = Duration::from_secs(10);

fn mail_config(args: &[&str]) -> MailConfig {
    let mut all = vec!["user-api", "--mail-from", "Example <no-reply@example.com>"];
    all.extend_from_slice(args);
    Config::try_from_args(all).unwrap().mail
}

fn smtp_config(server: &SmtpServer) -> MailConfig {
    mail_config(&["--smtp-url", &server.url(), "--smtp-timeout", "5"])
}

fn verify_email(token: &str) -> Mail {
    Mail::VerifyEmail {
        link: format!("https://app.example.com/verify-email?token={token}"),
        expires_in: Duration::from_secs(86_400),
    }
}

fn compose(config: &MailConfig, to: &str, mail: &Mail) -> OutgoingMail {
    Composer::new(config)
        .unwrap()
        .compose(to, "ann", mail)
        .unwrap()
}

#[tokio::test]
async fn smtp_delivers_the_stored_message_intact() {
    let server = SmtpServer::spawn().await;
    let config = smtp_config(&server);
    let transport = Transport::from_config(&config).unwrap();
    assert_eq!(
        transport.describe(),
        format!("SMTP at 127.0.0.1:{} (no TLS)", server.port())
    );
    let out = compose(&config, "ann@example.com", &verify_email("tok_123-abc"));
    transport.send(&out.recipient, &out.message).await.unwrap();

    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, "no-reply@example.com");
    assert_eq!(mail.recipients, ["ann@example.com"]);
    // Byte for byte, but for the empty line the client adds before the end of DATA.
    let data = String::from_utf8(mail.data.clone()).unwrap();
    assert_eq!(
        data.trim_end_matches("\r\n"),
        out.message.trim_end_matches("\r\n")
    );

    let view = mail.view();
    let stored = MailView::parse(out.message.as_bytes());
    assert!(view.message_id.is_some());
    assert_eq!(view.message_id, stored.message_id);
    assert_eq!(view.subject, "user-api: confirm your email address");
    assert_eq!(view.from, ["no-reply@example.com"]);
    assert_eq!(view.to, ["ann@example.com"]);
    assert_eq!(view.header("Auto-Submitted"), ["auto-generated"]);
    assert_eq!(view.header("Date").len(), 1);
    assert!(view.header("Content-Type")[0].contains("multipart/alternative"));
    assert!(view.text.contains("Hello ann,"), "{}", view.text);
    assert!(view.text.contains("24 hours"), "{}", view.text);
    assert!(view.html.contains("<a href="), "{}", view.html);
    assert!(view.html.contains("tok_123-abc"), "{}", view.html);
    assert_eq!(
        mail.link_with_token("verify-email"),
        Some((
            "https://app.example.com/verify-email?token=tok_123-abc".to_owned(),
            "tok_123-abc".to_owned()
        ))
    );
    assert_eq!(view.link_with_token("reset-password"), None);

    // A retry sends the same message again: same Message-ID.
    transport.send(&out.recipient, &out.message).await.unwrap();
    let received = server.wait_for(2, WAIT).await;
    assert_eq!(received[1].view().message_id, stored.message_id);
}

#[tokio::test]
async fn a_message_with_leading_dots_survives_the_dot_stuffing() {
    let server = SmtpServer::spawn().await;
    let transport = Transport::from_config(&smtp_config(&server)).unwrap();
    let message =
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: dots\r\n\r\n.\r\n..two\r\nend\r\n";
    transport.send("b@example.com", message).await.unwrap();
    let received = server.wait_for(1, WAIT).await;
    // The client ends DATA with CRLF . CRLF after the message's own last CRLF.
    let data = String::from_utf8(received[0].data.clone()).unwrap();
    assert_eq!(
        data.trim_end_matches("\r\n"),
        message.trim_end_matches("\r\n")
    );
    assert!(data.contains("\r\n.\r\n..two\r\n"), "{data:?}");
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure() {
    let server = SmtpServer::spawn().await;
    server.refuse_recipients_containing("bounce");
    let config = smtp_config(&server);
    let transport = Transport::from_config(&config).unwrap();
    let out = compose(&config, "bounce@example.com", &Mail::PasswordChanged);
    let err = transport
        .send(&out.recipient, &out.message)
        .await
        .unwrap_err();
    assert!(err.permanent, "{err:?}");
    assert!(err.message.contains("550"), "{err:?}");
    assert!(server.received().is_empty());

    // Others still get through, and the rule can be lifted.
    let out = compose(&config, "ann@example.com", &Mail::PasswordChanged);
    transport.send(&out.recipient, &out.message).await.unwrap();
    server.accept_all();
    let out = compose(&config, "bounce@example.com", &Mail::AccountDisabled);
    transport.send(&out.recipient, &out.message).await.unwrap();
    let received = server.wait_for(2, WAIT).await;
    assert_eq!(received[1].recipients, ["bounce@example.com"]);
}

#[tokio::test]
async fn a_stopped_server_is_a_transient_failure_until_it_is_back() {
    let server = SmtpServer::spawn().await;
    let config = smtp_config(&server);
    let transport = Transport::from_config(&config).unwrap();
    let out = compose(&config, "ann@example.com", &Mail::PasswordChanged);
    server.stop().await;
    let err = transport
        .send(&out.recipient, &out.message)
        .await
        .unwrap_err();
    assert!(!err.permanent, "{err:?}");
    assert!(!err.message.is_empty());

    server.start().await;
    transport.send(&out.recipient, &out.message).await.unwrap();
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
}

#[tokio::test]
async fn without_smtp_each_mail_is_an_eml_file_that_parses_back() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/mail");
    let config = mail_config(&["--mail-dir", dir.to_str().unwrap()]);
    let transport = Transport::from_config(&config).unwrap();
    assert_eq!(transport.describe(), format!("files in {}", dir.display()));

    let first = compose(&config, "ann@example.com", &verify_email("first"));
    let second = compose(
        &config,
        "old@example.com",
        &Mail::EmailChanged {
            new_email: "new@example.com".into(),
        },
    );
    for out in [&first, &second] {
        transport.send(&out.recipient, &out.message).await.unwrap();
    }

    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "one file per mail, no leftovers: {files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "eml"))
    );
    // The names sort in the order the mails were written.
    let views: Vec<MailView> = files
        .iter()
        .map(|f| MailView::parse(&std::fs::read(f).unwrap()))
        .collect();
    assert_eq!(views[0].to, ["ann@example.com"]);
    assert_eq!(
        views[0]
            .link_with_token("verify-email")
            .map(|(_, token)| token),
        Some("first".to_owned())
    );
    assert_eq!(views[1].to, ["old@example.com"]);
    assert_eq!(views[1].subject, "user-api: your email address was changed");
    assert!(views[1].text.contains("new@example.com"));
    assert!(views[1].html.contains("new@example.com"));
    assert_eq!(std::fs::read_to_string(&files[1]).unwrap(), second.message);
}

#[tokio::test]
async fn templates_can_be_overridden_and_a_broken_override_stops_start_up() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("reset-password.subject.txt"),
        "Reset for {{ username }} at {{ app_name }}",
    )
    .unwrap();
    std::fs::write(
        templates.path().join("reset-password.txt"),
        "Custom: {{ link }} ({{ expires_in_minutes }} min)",
    )
    .unwrap();
    let dir = templates.path().to_str().unwrap();
    let config = mail_config(&["--mail-template-dir", dir, "--app-name", "Acme"]);
    let out = compose(
        &config,
        "ann@example.com",
        &Mail::ResetPassword {
            link: "https://app.example.com/reset-password?token=t0k".into(),
            expires_in: Duration::from_secs(3600),
        },
    );
    let view = MailView::parse(out.message.as_bytes());
    assert_eq!(view.subject, "Reset for ann at Acme");
    assert_eq!(
        view.text.trim_end(),
        "Custom: https://app.example.com/reset-password?token=t0k (60 min)"
    );
    // The templates not overridden are the built-in ones.
    assert!(view.html.contains("Choose a new password"), "{}", view.html);

    std::fs::write(
        templates.path().join("password-changed.html"),
        "<p>{{ username </p>",
    )
    .unwrap();
    let err = format!("{:#}", Composer::new(&config).unwrap_err());
    assert!(err.contains("password-changed.html"), "{err}");
    assert!(err.contains(dir), "{err}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_transient_failure_after_smtp_timeout() {
    // Accepts connections (the kernel does, from the backlog) and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", silent.local_addr().unwrap());
    let config = mail_config(&["--smtp-url", &url, "--smtp-timeout", "0.5"]);
    let transport = Transport::from_config(&config).unwrap();
    let started = std::time::Instant::now();
    let err = transport
        .send("ann@example.com", "Subject: x\r\n\r\nx\r\n")
        .await
        .unwrap_err();
    assert!(!err.permanent, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
