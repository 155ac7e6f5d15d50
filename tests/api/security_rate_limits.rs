//! Rate limits: login per username and per client address, registration per address, the
//! refresh hook per session; RATE_LIMITED / 429 with Retry-After; X-Forwarded-For believed
//! only from trusted proxies; aliases and batches cannot multiply attempts; Redis counts are
//! shared by replicas; an unreachable Redis fails closed.

use reqwest::Method;
use serde_json::json;
use user_api::error::AppError;

use crate::support::client::ApiClient;
use crate::support::graphql::LOGIN;
use crate::support::rest::{self, call};
use crate::support::{
    Backend, GRAPHQL_RESPONSE, NO_LIMIT, TestApp, assert_batch_refused, backend_tests, error_code,
    per_hour, per_minute, retry_after,
};

backend_tests! {
    async fn login_is_limited_per_username(backend: Backend) {
        let app = TestApp::builder().login_per_username(per_minute(3)).spawn(backend).await;
        app.register("victim", "correct horse").await;
        for _ in 0..3 {
            let body = app.login_body("victim", "wrong password").await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
        }
        // Even the right password is refused now, in any letter case, over either API.
        let body = app.login_body("VICTIM", "correct horse").await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        let seconds = retry_after(&body).expect("extensions.retryAfter");
        // In process a slot comes back every 20 s; Redis's sliding window may take up to two
        // periods after a full burst.
        assert!((1..=120).contains(&seconds), "{seconds}");
        assert!(body["data"].is_null(), "{body}");
        let reply = rest::login(&app, "Victim", "correct horse").await;
        assert!(reply.assert_rate_limited() <= 120);
        // Another account is not affected.
        app.register("bystander", "correct horse").await;
        app.login("bystander", "correct horse").await;
    }

    async fn login_is_limited_per_address(backend: Backend) {
        let app = TestApp::builder().login_per_ip(per_minute(3)).spawn(backend).await;
        // Unknown and even invalid usernames count against the address.
        for name in ["nobody1", "nobody2", "<not a username>"] {
            let body = app.login_body(name, "some password").await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
        }
        let body = app.login_body("nobody4", "some password").await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        assert!(retry_after(&body).is_some_and(|s| s >= 1), "{body}");
        rest::login(&app, "nobody5", "some password").await.assert_rate_limited();
        // No trusted proxy is configured: a forged X-Forwarded-For does not change the key.
        let body = app.forwarded_for("203.0.113.7").login_body("nobody6", "some password").await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        rest::login(&app.forwarded_for("198.51.100.1"), "nobody7", "some password")
            .await
            .assert_rate_limited();
    }

    async fn forwarded_for_counts_only_from_trusted_proxies(backend: Backend) {
        // The test client connects from 127.0.0.1, which plays the trusted proxy here.
        let app = TestApp::builder()
            .login_per_ip(per_minute(2))
            .trusted_proxies(["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()])
            .spawn(backend)
            .await;
        let code = async |client: &ApiClient| {
            error_code(&client.login_body("nobody", "some password").await).unwrap_or_default()
        };
        let from = |xff: &str| app.forwarded_for(xff);
        assert_eq!(code(&from("203.0.113.1")).await, "UNAUTHENTICATED");
        // The client's own entries left of the address the proxy saw are ignored.
        assert_eq!(
            code(&from("192.0.2.99, 203.0.113.1")).await,
            "UNAUTHENTICATED"
        );
        assert_eq!(
            code(&from("192.0.2.98, 203.0.113.1, 10.1.1.1")).await,
            "RATE_LIMITED"
        );
        // Other clients behind the proxy have keys of their own, and so does the proxy itself.
        assert_eq!(code(&from("203.0.113.2")).await, "UNAUTHENTICATED");
        assert_eq!(code(&app).await, "UNAUTHENTICATED");
        assert_eq!(
            rest::login(&from("203.0.113.3"), "nobody", "some password")
                .await
                .status,
            401
        );
        rest::login(&from("203.0.113.1"), "nobody", "some password")
            .await
            .assert_rate_limited();
    }

    async fn registration_is_limited_per_address(backend: Backend) {
        let app = TestApp::builder().register_per_ip(per_hour(2)).spawn(backend).await;
        app.register("first", "correct horse").await;
        rest::register(&app, "second", "correct horse").await;
        let body = app.register_body("third", "third@example.com", "correct horse").await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        assert!(
            retry_after(&body).is_some_and(|s| (1..=7200).contains(&s)),
            "{body}"
        );
        for path in ["/users/register", "/users"] {
            let body = json!({
                "username": "fourth", "password": "correct horse", "email": "fourth@example.com"
            });
            call(&app, Method::POST, path, None, Some(body))
                .await
                .assert_rate_limited();
        }
        // Input that fails validation is refused as such, and is not what used the limit up.
        let body = app.register_body("x", "x@example.com", "correct horse").await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        // Nothing was created past the limit.
        let token = app.login("first", "correct horse").await.access;
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
        let app = TestApp::builder().login_per_username(per_minute(2)).spawn(backend).await;
        app.register("target", "correct horse").await;
        let aliased = r#"mutation {
            a: login(username: "target", password: "guess one") { accessToken }
            b: login(username: "target", password: "guess two") { accessToken }
        }"#;
        let response = app.post_graphql(
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
        let app = TestApp::builder()
            .login_per_username(per_minute(2))
            .graphql_max_auth_fields(3)
            .graphql_max_batch(4)
            .spawn(backend)
            .await;
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
        // A batch sums its entries against the per-request cap, and is refused whole: each
        // entry's answer is the refusal.
        let entry = json!({"query": LOGIN, "variables": {"u": "someone", "p": "a guess"}});
        let batch = json!([entry, entry, entry, entry]);
        for accept in ["application/json", GRAPHQL_RESPONSE] {
            let response = app.post_graphql(&batch, &[("accept", accept)]).await;
            assert_eq!(response.status(), 400);
            let body: serde_json::Value = response.json().await.unwrap();
            assert_batch_refused(&body, 4, "GRAPHQL_VALIDATION_FAILED");
        }
        let response = app.post_graphql(&json!([entry, entry]), &[]).await;
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
        let settings = TestApp::builder().login_per_ip(per_minute(2));
        let first = settings.clone().spawn(backend).await;
        let second = settings.sharing_redis_with(&first).spawn(backend).await;
        for _ in 0..2 {
            let body = first.login_body("nobody", "some password").await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
        }
        let body = second.login_body("nobody", "some password").await;
        let expected = match backend {
            // Two replicas on one Redis: the second sees the first one's attempts.
            Backend::MysqlRedis | Backend::MysqlCluster => "RATE_LIMITED",
            // Without Redis each process counts on its own.
            Backend::Sqlite => "UNAUTHENTICATED",
        };
        assert_eq!(error_code(&body).as_deref(), Some(expected), "{body}");
        assert_eq!(
            first.state.sign_ins.limiter().kind(),
            match backend {
                Backend::MysqlRedis | Backend::MysqlCluster => "redis",
                Backend::Sqlite => "memory",
            }
        );
    }

    async fn refresh_limit_counts_per_session(backend: Backend) {
        let app = TestApp::builder().refresh_per_session(per_minute(2)).spawn(backend).await;
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
        let app = TestApp::builder()
            .refresh_per_session(NO_LIMIT)
            .login_per_ip(NO_LIMIT)
            .spawn(backend)
            .await;
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
    #[only(sqlite)]
    async fn an_unreachable_counter_store_fails_closed(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        match app.state.sign_ins.limiter().check_refresh("session").await {
            Err(AppError::Unavailable { .. }) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let body = app.login_body("someone", "some password").await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("SERVICE_UNAVAILABLE"),
            "{body}"
        );
        assert_eq!(
            rest::login(&app, "someone", "some password").await.status,
            503
        );
    }
}
