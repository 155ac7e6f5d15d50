//! Refresh tokens: register and login return one; `refresh` rotates it; a rotated token used
//! again within the grace window returns the same pair, later it ends the whole sign-in.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::db::{backdate_rotation, expire_refresh_token, refresh_lifetime};
use crate::support::rest::call;
use crate::support::{Backend, TestApp, backend_tests, per_minute};

backend_tests! {
    async fn refresh_rotates_both_tokens(app: TestApp) {
        let first = app.register("rota", "correct horse").await;
        assert_eq!(first.refresh.len(), 43, "256 bits, base64url");
        assert!(first.refresh.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let second = app.refresh(&first.refresh).await;
        assert_eq!(second.user_id, first.user_id);
        assert_ne!(second.access, first.access);
        assert_ne!(second.refresh, first.refresh);
        assert_eq!(app.me(&second.access).await, Ok(first.user_id.clone()));
        assert_eq!(app.me(&first.access).await, Err("UNAUTHENTICATED".into()), "the old access token ends");
        // The new refresh token rotates in turn.
        let third = app.refresh(&second.refresh).await;
        assert_eq!(app.me(&third.access).await, Ok(first.user_id.clone()));
        assert_eq!(app.me(&second.access).await, Err("UNAUTHENTICATED".into()));

        // Login returns one too, with the configured default lifetime of 30 days.
        let signed_in = app.login("rota", "correct horse").await;
        assert_eq!(refresh_lifetime(&app, &signed_in.refresh).await, 2_592_000);
        assert_eq!(refresh_lifetime(&app, &third.refresh).await, 2_592_000);
    }

    async fn reuse_within_the_grace_window_returns_the_same_pair(app: TestApp) {
        let first = app.register("tabs", "correct horse").await;
        let tab_a = app.refresh(&first.refresh).await;
        let tab_b = app.refresh(&first.refresh).await;
        assert_eq!(tab_b.refresh, tab_a.refresh, "the same successor refresh token");
        assert_eq!(tab_b.access, tab_a.access, "the same successor access token");
        assert_eq!(app.me(&tab_b.access).await, Ok(first.user_id.clone()));
        // The family carries on as normal.
        let next = app.refresh(&tab_a.refresh).await;
        assert_eq!(app.me(&next.access).await, Ok(first.user_id.clone()));
        // And the oldest token, still within the window, leads to the newest pair.
        let again = app.refresh(&first.refresh).await;
        assert_eq!(again.refresh, next.refresh);
    }

    async fn concurrent_refreshes_share_one_successor(app: TestApp) {
        let first = app.register("racer", "correct horse").await;
        let attempts = futures_util::future::join_all(
            (0..4).map(|_| app.try_refresh(&first.refresh)),
        )
        .await;
        let pairs: Vec<_> = attempts.into_iter().map(|r| r.expect("every tab stays signed in")).collect();
        for pair in &pairs {
            assert_eq!(pair.refresh, pairs[0].refresh);
            assert_eq!(pair.access, pairs[0].access);
        }
        assert_eq!(app.me(&pairs[0].access).await, Ok(first.user_id.clone()));
        // The losers' sessions were dropped: one sign-in, one session.
        let body = app.gql("{ sessions { id } }", json!({}), Some(&pairs[0].access)).await;
        assert_eq!(body["data"]["sessions"].as_array().unwrap().len(), 1, "{body}");
    }

    async fn reuse_after_the_grace_window_ends_the_sign_in(app: TestApp) {
        let first = app.register("victim", "correct horse").await;
        let other = app.login("victim", "correct horse").await;
        let second = app.refresh(&first.refresh).await;
        backdate_rotation(&app, &first.refresh, 11).await;
        // The thief (or the user) presents the rotated token again: the whole family ends.
        assert_eq!(app.try_refresh(&first.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(app.try_refresh(&second.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(app.me(&second.access).await, Err("UNAUTHENTICATED".into()));
        // Other sign-ins of the user are not touched.
        assert_eq!(app.me(&other.access).await, Ok(first.user_id.clone()));
        let renewed = app.refresh(&other.refresh).await;
        assert_eq!(app.me(&renewed.access).await, Ok(first.user_id.clone()));
    }

    async fn expired_unknown_and_malformed_tokens_are_refused(app: TestApp) {
        let first = app.register("expiry", "correct horse").await;
        for bad in ["", "not-a-token", "x".repeat(43).as_str(), &first.access] {
            assert_eq!(app.try_refresh(bad).await.err().as_deref(), Some("UNAUTHENTICATED"), "{bad}");
        }
        expire_refresh_token(&app, &first.refresh).await;
        assert_eq!(app.try_refresh(&first.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn logout_password_change_and_deletion_end_refresh_tokens(app: TestApp) {
        let first = app.register("ender", "correct horse").await;
        let body = app.logout(&first.access).await;
        assert_eq!(body["data"]["logout"], true);
        assert_eq!(app.try_refresh(&first.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));

        let keeper = app.login("ender", "correct horse").await;
        let other = app.login("ender", "correct horse").await;
        let body = app.gql(
            "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id } }",
            json!({"i": {"password": "a new password", "currentPassword": "correct horse"}}),
            Some(&keeper.access),
        ).await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(app.try_refresh(&other.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        let kept = app.refresh(&keeper.refresh).await;

        let body = app.gql("mutation { deleteMe }", json!({}), Some(&kept.access)).await;
        assert_eq!(body["data"]["deleteMe"], true);
        assert_eq!(app.try_refresh(&kept.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn rest_refresh_route(app: TestApp) {
        let reply = call(&app, Method::POST, "/users/register", None,
            Some(json!({"username": "restful", "password": "the password", "email": "r@example.com"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let registered = reply.body["refresh_token"].as_str().expect("refresh_token").to_owned();

        let reply = call(&app, Method::POST, "/users/login", None,
            Some(json!({"username": "restful", "password": "the password"}))).await;
        let logged_in = reply.body["refresh_token"].as_str().expect("refresh_token").to_owned();
        assert_ne!(logged_in, registered);

        let reply = call(&app, Method::POST, "/users/refresh", None, Some(json!({"refresh_token": logged_in}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "token_type"]);
        assert_eq!(reply.body["token_type"], "bearer");
        assert!((1700..=1800).contains(&reply.body["expires_in"].as_u64().unwrap()));
        let access = reply.body["access_token"].as_str().unwrap();
        assert_eq!(call(&app, Method::GET, "/users/me", Some(access), None).await.status, 200);
        assert_ne!(reply.body["refresh_token"], logged_in.as_str());

        call(&app, Method::POST, "/users/refresh", None, Some(json!({"refresh_token": "nope"})))
            .await
            .assert_unauthorized();
        call(&app, Method::POST, "/users/refresh", None, Some(json!({})))
            .await
            .assert_invalid("body", "refresh_token");
        call(&app, Method::POST, "/users/refresh", None, Some(json!({"refresh_token": 5})))
            .await
            .assert_invalid("body", "refresh_token");
    }
}

backend_tests! {
    /// `REFRESH_REUSE_GRACE` is honoured: with a 2 s window, a rotated token 3 s old is reuse.
    async fn configured_grace_window(backend: Backend) {
        let app = TestApp::builder()
            .refresh_reuse_grace(Duration::from_secs(2))
            .refresh_token_ttl(Duration::from_secs(600))
            .spawn(backend)
            .await;
        let first = app.register("graceful", "correct horse").await;
        assert_eq!(refresh_lifetime(&app, &first.refresh).await, 600);
        let second = app.refresh(&first.refresh).await;
        assert_eq!(app.refresh(&first.refresh).await.refresh, second.refresh);
        backdate_rotation(&app, &first.refresh, 3).await;
        assert_eq!(
            app.try_refresh(&first.refresh).await.err().as_deref(),
            Some("UNAUTHENTICATED")
        );
        assert_eq!(app.me(&second.access).await, Err("UNAUTHENTICATED".into()));
    }

    /// Refreshes are rate-limited per sign-in: rotation gives each refresh a new session, but
    /// the family keeps counting; another sign-in of the same user has a count of its own.
    async fn refreshes_are_limited_per_sign_in(backend: Backend) {
        let app = TestApp::builder().refresh_per_session(per_minute(2)).spawn(backend).await;
        let first = app.register("limited", "correct horse").await;
        let second = app.refresh(&first.refresh).await;
        let third = app.refresh(&second.refresh).await;
        assert_eq!(
            app.try_refresh(&third.refresh).await.err().as_deref(),
            Some("RATE_LIMITED")
        );
        // The refused attempt changed nothing: the latest pair still works.
        assert_eq!(app.me(&third.access).await, Ok(first.user_id.clone()));
        let other = app.login("limited", "correct horse").await;
        assert!(app.try_refresh(&other.refresh).await.is_ok());
    }
}

/// `--help` documents the refresh settings and their variables.
#[test]
fn help_documents_the_refresh_settings() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_user-api"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for var in ["REFRESH_TOKEN_TTL", "REFRESH_REUSE_GRACE"] {
        assert!(help.contains(&format!("[env: {var}")), "{var}:\n{help}");
    }
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_user-api"))
        .args(["--refresh-reuse-grace", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--refresh-reuse-grace"), "{stderr}");
}
