//! Rate limits: login per username and per client address, registration per address, the
//! refresh hook per session; RATE_LIMITED / 429 with Retry-After; X-Forwarded-For believed
//! only from trusted proxies; aliases and batches cannot multiply attempts; Redis counts are
//! shared by replicas; an unreachable Redis fails closed.

use serde_json::json;
use user_api::error::AppError;

use crate::common::{Backend, Options, TestApp, error_code};
use crate::on_each_backend;
use crate::security_support::{
    GRAPHQL_RESPONSE, LOGIN, assert_429, gql_login, post_graphql, rest_login, retry_after, spawn,
};

on_each_backend!(
    login_is_limited_per_username,
    login_is_limited_per_address,
    forwarded_for_counts_only_from_trusted_proxies,
    registration_is_limited_per_address,
    aliases_and_batches_cannot_multiply_attempts,
    replicas_share_counts_through_redis,
    refresh_limit_counts_per_session,
    limits_can_be_switched_off,
);

async fn login_is_limited_per_username(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-login-per-username", "3/min"]).await else {
        return;
    };
    app.register("victim", "correct horse").await;
    for _ in 0..3 {
        let body = gql_login(&app, "victim", "wrong password", None).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
    }
    // Even the right password is refused now, in any letter case, over either API.
    let body = gql_login(&app, "VICTIM", "correct horse", None).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    let seconds = retry_after(&body).expect("extensions.retryAfter");
    // In process a slot comes back every 20 s; Redis's sliding window may take up to two
    // periods after a full burst.
    assert!((1..=120).contains(&seconds), "{seconds}");
    assert!(body["data"].is_null(), "{body}");
    let response = rest_login(&app, "Victim", "correct horse", None).await;
    assert!(assert_429(&response) <= 120);
    // Another account is not affected.
    app.register("bystander", "correct horse").await;
    app.login("bystander", "correct horse").await;
}

async fn login_is_limited_per_address(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-login-per-ip", "3/min"]).await else {
        return;
    };
    // Unknown and even invalid usernames count against the address.
    for name in ["nobody1", "nobody2", "<not a username>"] {
        let body = gql_login(&app, name, "some password", None).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
    }
    let body = gql_login(&app, "nobody4", "some password", None).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    assert!(retry_after(&body).is_some_and(|s| s >= 1), "{body}");
    assert_429(&rest_login(&app, "nobody5", "some password", None).await);
    // No trusted proxy is configured: a forged X-Forwarded-For does not change the key.
    let body = gql_login(&app, "nobody6", "some password", Some("203.0.113.7")).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    assert_429(&rest_login(&app, "nobody7", "some password", Some("198.51.100.1")).await);
}

async fn forwarded_for_counts_only_from_trusted_proxies(backend: Backend) {
    // The test client connects from 127.0.0.1, which plays the trusted proxy here.
    let args = [
        "--rate-limit-login-per-ip",
        "2/min",
        "--trusted-proxies",
        "127.0.0.1, 10.0.0.0/8",
    ];
    let Some(app) = spawn(backend, &args).await else {
        return;
    };
    let code = async |xff: Option<&str>| {
        error_code(&gql_login(&app, "nobody", "some password", xff).await).unwrap_or_default()
    };
    assert_eq!(code(Some("203.0.113.1")).await, "UNAUTHENTICATED");
    // The client's own entries left of the address the proxy saw are ignored.
    assert_eq!(
        code(Some("192.0.2.99, 203.0.113.1")).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(Some("192.0.2.98, 203.0.113.1, 10.1.1.1")).await,
        "RATE_LIMITED"
    );
    // Other clients behind the proxy have keys of their own, and so does the proxy itself.
    assert_eq!(code(Some("203.0.113.2")).await, "UNAUTHENTICATED");
    assert_eq!(code(None).await, "UNAUTHENTICATED");
    assert_eq!(
        rest_login(&app, "nobody", "some password", Some("203.0.113.3"))
            .await
            .status(),
        401
    );
    assert_429(&rest_login(&app, "nobody", "some password", Some("203.0.113.1")).await);
}

async fn registration_is_limited_per_address(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-register-per-ip", "2/hour"]).await else {
        return;
    };
    app.register("first", "correct horse").await;
    let response = app
        .client
        .post(app.url("/users/register"))
        .json(&json!({"username": "second", "password": "correct horse", "email": "second@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }";
    let input = |name: &str| json!({"i": {"username": name, "email": format!("{name}@example.com"), "password": "correct horse"}});
    let body = app.gql(register, input("third"), None).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    assert!(
        retry_after(&body).is_some_and(|s| (1..=7200).contains(&s)),
        "{body}"
    );
    for path in ["/users/register", "/users"] {
        let response = app
            .client
            .post(app.url(path))
            .json(&json!({"username": "fourth", "password": "correct horse", "email": "fourth@example.com"}))
            .send()
            .await
            .unwrap();
        assert_429(&response);
    }
    // Input that fails validation is refused as such, and is not what used the limit up.
    let body = app.gql(register, input("x"), None).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    // Nothing was created past the limit.
    let token = app.login("first", "correct horse").await;
    let body = app
        .gql(
            "{ users(first: 10) { nodes { username } } }",
            json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        body["data"]["users"]["nodes"].as_array().unwrap().len(),
        2,
        "{body}"
    );
}

async fn aliases_and_batches_cannot_multiply_attempts(backend: Backend) {
    // Default cap: one auth field per request.
    let Some(app) = spawn(backend, &["--rate-limit-login-per-username", "2/min"]).await else {
        return;
    };
    app.register("target", "correct horse").await;
    let aliased = r#"mutation {
        a: login(username: "target", password: "guess one") { accessToken }
        b: login(username: "target", password: "guess two") { accessToken }
    }"#;
    let response = post_graphql(
        &app,
        &json!({"query": aliased}),
        &[("accept", GRAPHQL_RESPONSE)],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    assert!(body.get("data").is_none_or(|d| d.is_null()), "{body}");
    let body = app.gql(aliased, json!({}), None).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    let through_fragments = r#"mutation { ...Guess ...Guess }
        fragment Guess on Mutation { login(username: "target", password: "guess") { accessToken } }"#;
    let body = app.gql(through_fragments, json!({}), None).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    // None of the refused requests ran, so the account's two attempts are still there.
    app.login("target", "correct horse").await;

    // Raised caps: every field that runs is counted by the limiter.
    let args = [
        "--rate-limit-login-per-username",
        "2/min",
        "--graphql-max-auth-fields",
        "3",
        "--graphql-max-batch",
        "4",
    ];
    let Some(app) = spawn(backend, &args).await else {
        return;
    };
    app.register("target", "correct horse").await;
    let three = r#"mutation {
        a: login(username: "target", password: "guess one") { accessToken }
        b: login(username: "target", password: "guess two") { accessToken }
        c: login(username: "target", password: "correct horse") { accessToken }
    }"#;
    let body = app.gql(three, json!({}), None).await;
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["extensions"]["code"].as_str())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "UNAUTHENTICATED").count(),
        2,
        "{body}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "RATE_LIMITED").count(),
        1,
        "{body}"
    );
    // A batch sums its entries against the per-request cap, and is refused whole.
    let entry = json!({"query": LOGIN, "variables": {"u": "someone", "p": "a guess"}});
    let batch = json!([entry, entry, entry, entry]);
    for accept in ["application/json", GRAPHQL_RESPONSE] {
        let response = post_graphql(&app, &batch, &[("accept", accept)]).await;
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{body}"
        );
    }
    let response = post_graphql(&app, &json!([entry, entry]), &[]).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let answers = body.as_array().expect("a batch is answered with an array");
    assert_eq!(answers.len(), 2);
    for answer in answers {
        assert_eq!(
            error_code(answer).as_deref(),
            Some("UNAUTHENTICATED"),
            "{answer}"
        );
    }
}

async fn replicas_share_counts_through_redis(backend: Backend) {
    let args = ["--rate-limit-login-per-ip", "2/min"];
    let Some(first) = spawn(backend, &args).await else {
        return;
    };
    let options = Options {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        redis_key_prefix: Some(first.state.config.redis.key_prefix.clone()),
        ..Options::default()
    };
    let Some(second) = TestApp::try_spawn_with(backend, options).await else {
        return;
    };
    for _ in 0..2 {
        let body = gql_login(&first, "nobody", "some password", None).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
    }
    let body = gql_login(&second, "nobody", "some password", None).await;
    let expected = match backend {
        // Two replicas on one Redis: the second sees the first one's attempts.
        Backend::MysqlRedis => "RATE_LIMITED",
        // Without Redis each process counts on its own.
        Backend::Sqlite => "UNAUTHENTICATED",
    };
    assert_eq!(error_code(&body).as_deref(), Some(expected), "{body}");
    assert_eq!(
        first.state.sign_ins.limiter().kind(),
        match backend {
            Backend::MysqlRedis => "redis",
            Backend::Sqlite => "memory",
        }
    );
}

async fn refresh_limit_counts_per_session(backend: Backend) {
    let Some(app) = spawn(backend, &["--rate-limit-refresh-per-session", "2/min"]).await else {
        return;
    };
    let limiter = &app.state.sign_ins.limiter();
    limiter.check_refresh("session-a").await.unwrap();
    limiter.check_refresh("session-a").await.unwrap();
    match limiter.check_refresh("session-a").await {
        Err(AppError::RateLimited { retry_after }) => assert!((1..=120).contains(&retry_after)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    limiter.check_refresh("session-b").await.unwrap();
    // Refused attempts are not counted: still refused, but not for longer.
    for _ in 0..5 {
        assert!(limiter.check_refresh("session-a").await.is_err());
    }
}

async fn limits_can_be_switched_off(backend: Backend) {
    let args = [
        "--rate-limit-refresh-per-session",
        "off",
        "--rate-limit-login-per-ip",
        "off",
    ];
    let Some(app) = spawn(backend, &args).await else {
        return;
    };
    for _ in 0..50 {
        app.state
            .sign_ins
            .limiter()
            .check_refresh("session")
            .await
            .unwrap();
    }
}

/// Redis unreachable: the limited operations answer 503 rather than run unlimited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_counter_store_fails_closed() {
    let options = Options {
        redis_url: Some("redis://127.0.0.1:1".into()),
        ..Options::default()
    };
    let app = TestApp::try_spawn_with(Backend::Sqlite, options)
        .await
        .unwrap();
    match app.state.sign_ins.limiter().check_refresh("session").await {
        Err(AppError::Unavailable { .. }) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let body = gql_login(&app, "someone", "some password", None).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{body}"
    );
    assert_eq!(
        rest_login(&app, "someone", "some password", None)
            .await
            .status(),
        503
    );
}
