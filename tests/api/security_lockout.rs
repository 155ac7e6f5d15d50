//! Password guessing without locking the owner out: failures count per username and client
//! address, a looser ceiling per username lets only addresses without failures through, a
//! right password does not count; and every check of a password — `updateMe` with
//! `currentPassword` too — counts against the same limits, while email changes are limited
//! per user.

use serde_json::{Value, json};

use crate::common::{Backend, TestApp, error_code};
use crate::on_each_backend;
use crate::security_support::{GRAPHQL_RESPONSE, assert_429, gql_login, post_graphql, spawn};

on_each_backend!(
    guesses_from_elsewhere_do_not_lock_the_owner_out,
    past_the_ceiling_only_addresses_without_failures_may_try,
    a_right_password_does_not_count_as_a_failure,
    password_checks_in_update_me_count_like_logins,
    email_changes_are_limited_per_user,
);

/// The test client connects from 127.0.0.1, which plays a trusted proxy here, so each
/// `X-Forwarded-For` is a client address of its own.
const BEHIND_PROXY: [&str; 2] = ["--trusted-proxies", "127.0.0.1"];

async fn code(app: &TestApp, password: &str, address: &str) -> String {
    error_code(&gql_login(app, "victim", password, Some(address)).await)
        .unwrap_or_else(|| "OK".to_owned())
}

const UPDATE_ME: &str = "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id email } }";

async fn update_me(app: &TestApp, token: &str, input: Value) -> String {
    let body = app.gql(UPDATE_ME, json!({"i": input}), Some(token)).await;
    error_code(&body).unwrap_or_else(|| "OK".to_owned())
}

async fn guesses_from_elsewhere_do_not_lock_the_owner_out(backend: Backend) {
    let mut args = vec!["--rate-limit-login-per-username", "3/min"];
    args.extend(BEHIND_PROXY);
    let Some(app) = spawn(backend, &args).await else {
        return;
    };
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
    let response = app
        .client
        .post(app.url("/users/login"))
        .header("x-forwarded-for", "198.51.100.8")
        .json(&json!({"username": "victim", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn past_the_ceiling_only_addresses_without_failures_may_try(backend: Backend) {
    let mut args = vec![
        "--rate-limit-login-per-username",
        "3/min",
        "--rate-limit-login-failures-per-username",
        "4/hour",
    ];
    args.extend(BEHIND_PROXY);
    let Some(app) = spawn(backend, &args).await else {
        return;
    };
    app.register("victim", "correct horse").await;
    // Two addresses spend the account's four failures.
    for address in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            assert_eq!(code(&app, "a guess", address).await, "UNAUTHENTICATED");
        }
    }
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

async fn a_right_password_does_not_count_as_a_failure(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-login-per-username", "3/min"]).await else {
        return;
    };
    app.register("victim", "correct horse").await;
    for _ in 0..6 {
        app.login("victim", "correct horse").await;
    }
    // Failures still count as before.
    for _ in 0..3 {
        let body = gql_login(&app, "victim", "a guess", None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }
    let body = gql_login(&app, "victim", "a guess", None).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
}

async fn password_checks_in_update_me_count_like_logins(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-login-per-username", "3/min"]).await else {
        return;
    };
    let (token, _) = app.register("victim", "correct horse").await;
    let guess =
        |current: &str| json!({"password": "a brand new secret", "currentPassword": current});
    // Two aliased guesses in one request are refused whole, like two logins.
    let aliased = r#"mutation {
        a: updateMe(input: {password: "a brand new secret", currentPassword: "guess one"}) { id }
        b: updateMe(input: {password: "a brand new secret", currentPassword: "guess two"}) { id }
    }"#;
    let response = post_graphql(
        &app,
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
            update_me(&app, &token, guess("a guess")).await,
            "UNAUTHENTICATED"
        );
    }
    let body = app
        .gql(
            UPDATE_ME,
            json!({"i": guess("another guess")}),
            Some(&token),
        )
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    assert!(body["errors"][0]["extensions"]["retryAfter"].as_u64() >= Some(1));
    // The same limit as the login: the right password is refused from here now...
    assert_eq!(
        update_me(&app, &token, guess("correct horse")).await,
        "RATE_LIMITED"
    );
    let body = gql_login(&app, "victim", "correct horse", None).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    // ...and nothing changed: the password is still the old one.
    assert!(app.me(&token).await.is_ok());
}

async fn email_changes_are_limited_per_user(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-email-change-per-user", "2/hour"]).await else {
        return;
    };
    let (token, _) = app.register("prober", "correct horse").await;
    app.register("taken", "correct horse").await;
    // A probe for a registered address counts as much as a change.
    assert_eq!(
        update_me(&app, &token, json!({"email": "taken@example.com"})).await,
        "CONFLICT"
    );
    assert_eq!(
        update_me(&app, &token, json!({"email": "new@example.com"})).await,
        "OK"
    );
    assert_eq!(
        update_me(&app, &token, json!({"email": "other@example.com"})).await,
        "RATE_LIMITED"
    );
    // The legacy route shares the count, and answers before telling whether it is taken.
    let response = app
        .client
        .put(app.url("/users"))
        .bearer_auth(&token)
        .json(&json!({"email": "taken@example.com"}))
        .send()
        .await
        .unwrap();
    assert_429(&response);
    // A password change alone is not an email change; other users have budgets of their own.
    let (other, _) = app.register("neighbour", "correct horse").await;
    assert_eq!(
        update_me(&app, &other, json!({"email": "neighbour2@example.com"})).await,
        "OK"
    );
    assert_eq!(
        update_me(
            &app,
            &token,
            json!({"password": "a brand new secret", "currentPassword": "correct horse"})
        )
        .await,
        "OK"
    );
}
