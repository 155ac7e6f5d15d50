//! Mail delivery through the outbox, under faults: an SMTP server that is down, one that
//! refuses a recipient, a server killed with mails pending, two replicas sharing one database.
//! Each over real SMTP, on both backends.

use std::time::Duration;

use serde_json::json;

use crate::support::mailbox::VERIFY_PATH;
use crate::support::{Backend, PASSWORD, TestApp, backend_tests, error_code, per_hour};

/// The value of the metric `name` in the server's `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Waits until the metric `name` reads `value`.
async fn metric_reaches(app: &TestApp, name: &str, value: f64) {
    for _ in 0..200 {
        if metric(app, name).await == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never reached {value}: {}", metric(app, name).await);
}

backend_tests! {
    /// Mails queued while the SMTP server is down wait in the outbox (answers do not wait for
    /// them, and the server stays ready), and go out once it is back — each once.
    async fn mails_wait_for_a_server_that_is_down(app: TestApp) {
        app.mailbox.server.stop().await;
        for name in ["down1", "down2"] {
            app.register(name, PASSWORD).await;
        }
        metric_reaches(&app, "mail_pending", 2.0).await;
        assert!(metric(&app, "mail_delivery_failures_total").await >= 2.0);
        // Readiness does not hang on SMTP: the API serves without it.
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        app.mailbox.server.start().await;
        for name in ["down1", "down2"] {
            app.mailbox.next_to(&format!("{name}@example.com")).await;
        }
        metric_reaches(&app, "mail_pending", 0.0).await;
        // Nothing comes twice, even given time.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for name in ["down1", "down2"] {
            assert_eq!(app.mailbox.all_to(&format!("{name}@example.com")).len(), 1);
        }
        assert_eq!(metric(&app, "mail_failed").await, 0.0);
    }

    /// A recipient the server refuses for good (550) is retried twice, not MAIL_MAX_ATTEMPTS
    /// times, then marked failed (visible in the metrics, the message dropped); other mails go
    /// out meanwhile.
    async fn a_refused_recipient_is_retried_then_marked_failed(backend: Backend) {
        let app = TestApp::builder().mail_max_attempts(10).spawn(backend).await;
        app.mailbox.server.refuse_recipients_containing("refused");
        app.register("refused", PASSWORD).await;
        app.register("welcome", PASSWORD).await;
        app.mailbox.next_to("welcome@example.com").await;
        metric_reaches(&app, "mail_failed", 1.0).await;
        assert_eq!(metric(&app, "mail_pending").await, 0.0);
        assert_eq!(metric(&app, "mail_delivery_failures_total").await, 3.0);
        assert!(app.mailbox.all_to("refused@example.com").is_empty());
    }

    /// More mails than one claim takes, with a refused recipient among them: sent in batches,
    /// every other mail arrives once and the refused one is settled on its own.
    async fn a_burst_goes_out_in_batches_each_mail_once(backend: Backend) {
        let app = TestApp::builder().mail_max_attempts(10).spawn(backend).await;
        app.mailbox.server.refuse_recipients_containing("refused");
        // Queued while the server is down, so that the worker finds them all due at once.
        app.mailbox.server.stop().await;
        let mut names: Vec<String> = (0..23).map(|i| format!("burst{i}")).collect();
        names.insert(7, "refused".to_owned());
        futures_util::future::join_all(names.iter().map(|name| app.register(name, PASSWORD)))
            .await;
        metric_reaches(&app, "mail_pending", 24.0).await;
        while metric(&app, "mail_delivery_failures_total").await < 24.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.mailbox.server.start().await;
        metric_reaches(&app, "mail_failed", 1.0).await;
        metric_reaches(&app, "mail_pending", 0.0).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for name in names.iter().filter(|name| *name != "refused") {
            assert_eq!(app.mailbox.all_to(&format!("{name}@example.com")).len(), 1, "{name}");
        }
        assert!(app.mailbox.all_to("refused@example.com").is_empty());
    }

    /// A server killed with mails pending loses none: the next one on the same database sends
    /// them.
    async fn mails_pending_at_a_kill_go_out_after_the_restart(backend: Backend) {
        let first = TestApp::spawn(backend).await;
        first.mailbox.server.stop().await;
        first.register("pending", PASSWORD).await;
        metric_reaches(&first, "mail_delivery_failures_total", 1.0).await;
        first.kill();
        let second = TestApp::builder()
            .sharing_database_with(&first)
            .spawn(backend)
            .await;
        let mail = second.mailbox.next_to("pending@example.com").await;
        assert!(mail.token(VERIFY_PATH).is_some());
    }

    /// Two replicas on one database deliver each mail once between them.
    async fn two_replicas_send_each_mail_once(backend: Backend) {
        let first = TestApp::spawn(backend).await;
        let second = TestApp::builder()
            .sharing_database_with(&first)
            .delivering_to(&first)
            .spawn(backend)
            .await;
        // Queued while the SMTP server is down, so that both workers find them due at once.
        first.mailbox.server.stop().await;
        let names: Vec<String> = (0..12).map(|i| format!("replica{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let app = if i % 2 == 0 { &first } else { &second };
            app.register(name, PASSWORD).await;
        }
        first.mailbox.server.start().await;
        for name in &names {
            first.mailbox.next_to(&format!("{name}@example.com")).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for name in &names {
            assert_eq!(first.mailbox.all_to(&format!("{name}@example.com")).len(), 1, "{name}");
        }
    }

    /// Verification mails a user asks for are limited per user.
    async fn verification_mails_are_rate_limited(backend: Backend) {
        let app = TestApp::builder().verification_per_user(per_hour(1)).spawn(backend).await;
        let user = app.register("often", PASSWORD).await;
        let ask = "mutation { sendVerificationEmail }";
        let body = app.gql(ask, json!({}), Some(&user.access)).await;
        assert_eq!(body["data"]["sendVerificationEmail"], true, "{body}");
        let body = app.gql(ask, json!({}), Some(&user.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    }

    /// With EMAIL_LINK_BASE, links point to the frontend and the server serves no pages of
    /// its own.
    async fn links_point_to_the_configured_frontend(backend: Backend) {
        let app = TestApp::builder().email_link_base("https://app.example.com/").spawn(backend).await;
        app.register("front", PASSWORD).await;
        let (url, _) = app.mailbox.next_to("front@example.com").await.link(VERIFY_PATH).unwrap();
        assert!(url.starts_with("https://app.example.com/verify-email?token="), "{url}");
        let page = app.client.get(app.url("/verify-email?token=x")).send().await.unwrap();
        assert_eq!(page.status(), 404);
    }
}
