//! Password guessing without locking the owner out: failures count per username and client
//! address, a looser ceiling per username lets only addresses without failures through, a
//! right password does not count; and every check of a password — `updateMe` with
//! `currentPassword` too — counts against the same limits, while email changes are limited
//! per user.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::app::TestAppBuilder;
use crate::support::rest::{self, call};
use crate::support::{
    Backend, GRAPHQL_RESPONSE, TestApp, backend_tests, error_code, per_hour, per_minute,
    retry_after,
};

/// A server behind a proxy: the test client connects from 127.0.0.1, which plays a trusted
/// proxy here, so each `X-Forwarded-For` is a client address of its own.
fn behind_proxy() -> TestAppBuilder {
    TestApp::builder().trusted_proxies(["127.0.0.1/32".parse().expect("a network")])
}

/// The error code of victim's login with `password` from `address`, or `OK`.
async fn code(app: &TestApp, password: &str, address: &str) -> String {
    let body = app
        .forwarded_for(address)
        .login_body("victim", password)
        .await;
    error_code(&body).unwrap_or_else(|| "OK".to_owned())
}

/// A server (three failures per username and address a minute, four per username an hour)
/// whose user `victim` is past its ceiling: two addresses spent its four failures.
async fn victim_past_its_ceiling(backend: Backend) -> TestApp {
    let app = behind_proxy()
        .login_per_username(per_minute(3))
        .login_failures_per_username(per_hour(4))
        .spawn(backend)
        .await;
    app.register("victim", "correct horse").await;
    for address in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            assert_eq!(code(&app, "a guess", address).await, "UNAUTHENTICATED");
        }
    }
    app
}

/// The error code of `updateMe(input)` with `token`, or `OK`.
async fn update_me_code(app: &TestApp, token: &str, input: Value) -> String {
    error_code(&app.update_me(token, input).await).unwrap_or_else(|| "OK".to_owned())
}

backend_tests! {
    async fn guesses_from_elsewhere_do_not_lock_the_owner_out(backend: Backend) {
        let app = behind_proxy().login_per_username(per_minute(3)).spawn(backend).await;
        app.register("victim", "correct horse").await;
        let attacker = "203.0.113.66";
        for _ in 0..3 {
            assert_eq!(code(&app, "a guess", attacker).await, "UNAUTHENTICATED");
        }
        assert_eq!(code(&app, "a guess", attacker).await, "RATE_LIMITED");
        // The attacker is refused even with the right password...
        assert_eq!(code(&app, "correct horse", attacker).await, "RATE_LIMITED");
        // ...while the owner, elsewhere, signs in; over REST too.
        assert_eq!(code(&app, "correct horse", "198.51.100.7").await, "OK");
        let owner = app.forwarded_for("198.51.100.8");
        let reply = rest::login(&owner, "victim", "correct horse").await;
        assert_eq!(reply.status, 200);
    }

    async fn past_the_ceiling_only_addresses_without_failures_may_try(backend: Backend) {
        let app = victim_past_its_ceiling(backend).await;
        // Each is under its own limit of three, but has failed before: refused, right password
        // or not.
        assert_eq!(code(&app, "a guess", "203.0.113.1").await, "RATE_LIMITED");
        assert_eq!(
            code(&app, "correct horse", "203.0.113.2").await,
            "RATE_LIMITED"
        );
        // An address without failures still gets its try: the owner signs in...
        assert_eq!(code(&app, "correct horse", "198.51.100.7").await, "OK");
        assert_eq!(code(&app, "correct horse", "198.51.100.7").await, "OK");
        // ...and a fresh guesser gets one guess, then is refused like the others.
        assert_eq!(
            code(&app, "a guess", "203.0.113.3").await,
            "UNAUTHENTICATED"
        );
        assert_eq!(code(&app, "a guess", "203.0.113.3").await, "RATE_LIMITED");
        // Other accounts are not affected.
        app.register("bystander", "correct horse").await;
        app.login("bystander", "correct horse").await;
    }

    async fn clean_addresses_share_a_ceiling_of_their_own(backend: Backend) {
        let app = victim_past_its_ceiling(backend).await;
        // Past the ceiling, clean addresses (one client may hold thousands: an IPv6 /48 is
        // 65,536 of the /64s addresses are counted by) get as many guesses again between them...
        for i in 0..4 {
            let address = format!("2001:db8:0:{i:x}::1");
            assert_eq!(code(&app, "a guess", &address).await, "UNAUTHENTICATED", "{address}");
        }
        // ...and then none, whatever the address, the right password included.
        assert_eq!(code(&app, "a guess", "2001:db8:0:ff::1").await, "RATE_LIMITED");
        assert_eq!(code(&app, "correct horse", "198.51.100.7").await, "RATE_LIMITED");
        // Other accounts are not affected.
        app.register("bystander", "correct horse").await;
        app.login("bystander", "correct horse").await;
    }

    async fn a_right_password_does_not_count_as_a_failure(backend: Backend) {
        let app = TestApp::builder().login_per_username(per_minute(3)).spawn(backend).await;
        app.register("victim", "correct horse").await;
        for _ in 0..6 {
            app.login("victim", "correct horse").await;
        }
        // Failures still count as before.
        for _ in 0..3 {
            let body = app.login_body("victim", "a guess").await;
            assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        }
        let body = app.login_body("victim", "a guess").await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    }

    async fn password_checks_in_update_me_count_like_logins(backend: Backend) {
        let app = TestApp::builder().login_per_username(per_minute(3)).spawn(backend).await;
        let token = app.register("victim", "correct horse").await.access;
        let guess =
            |current: &str| json!({"password": "a brand new secret", "currentPassword": current});
        // Two aliased guesses in one request are refused whole, like two logins.
        let aliased = r#"mutation {
            a: updateMe(input: {password: "a brand new secret", currentPassword: "guess one"}) { id }
            b: updateMe(input: {password: "a brand new secret", currentPassword: "guess two"}) { id }
        }"#;
        let response = app.post_graphql(
            &json!({"query": aliased}),
            &[
                ("accept", GRAPHQL_RESPONSE),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
        .await;
        assert_eq!(response.status(), 400);
        for _ in 0..3 {
            assert_eq!(
                update_me_code(&app, &token, guess("a guess")).await,
                "UNAUTHENTICATED"
            );
        }
        let body = app.update_me(&token, guess("another guess")).await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        assert!(retry_after(&body) >= Some(1));
        // The same limit as the login: the right password is refused from here now...
        assert_eq!(
            update_me_code(&app, &token, guess("correct horse")).await,
            "RATE_LIMITED"
        );
        let body = app.login_body("victim", "correct horse").await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        // ...and nothing changed: the password is still the old one.
        assert!(app.me(&token).await.is_ok());
    }

    async fn email_changes_are_limited_per_user(backend: Backend) {
        let app = TestApp::builder().email_change_per_user(per_hour(2)).spawn(backend).await;
        let token = app.register("prober", "correct horse").await.access;
        app.register("taken", "correct horse").await;
        // A probe for a registered address counts as much as a change.
        assert_eq!(
            update_me_code(&app, &token, json!({"email": "taken@example.com"})).await,
            "CONFLICT"
        );
        assert_eq!(
            update_me_code(&app, &token, json!({"email": "new@example.com"})).await,
            "OK"
        );
        assert_eq!(
            update_me_code(&app, &token, json!({"email": "other@example.com"})).await,
            "RATE_LIMITED"
        );
        // The legacy route shares the count, and answers before telling whether it is taken.
        call(&app, Method::PUT, "/users", Some(&token), Some(json!({"email": "taken@example.com"})))
            .await
            .assert_rate_limited();
        // A password change alone is not an email change; other users have budgets of their own.
        let other = app.register("neighbour", "correct horse").await.access;
        assert_eq!(
            update_me_code(&app, &other, json!({"email": "neighbour2@example.com"})).await,
            "OK"
        );
        assert_eq!(
            update_me_code(
                &app,
                &token,
                json!({"password": "a brand new secret", "currentPassword": "correct horse"})
            )
            .await,
            "OK"
        );
    }
}
