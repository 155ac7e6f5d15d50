//! register, login, access tokens and revocation (logout, password change, deleteMe).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::json;
use user_api::signins::store::SessionStore as _;

use crate::support::tokens::{claims as claims_of, random_secret, sign};
use crate::support::{
    Backend, PASSWORD, SignIn, TestApp, assert_no_internals, backend_tests, error_code,
    error_field, messages, redis_connection,
};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

backend_tests! {
    async fn register_returns_a_token_and_the_new_user(app: TestApp) {
        let before = chrono::Utc::now();
        let body = app.register_body("Alice_01", "Alice@Example.com", PASSWORD).await;
        assert!(body["errors"].is_null(), "{body}");
        let payload = &body["data"]["register"];
        assert_eq!(payload["tokenType"], "bearer");
        assert_eq!(payload["expiresIn"], 1800, "the default ACCESS_TOKEN_TTL");
        let user = &payload["user"];
        assert_eq!(user["username"], "Alice_01", "kept as typed");
        assert_eq!(user["email"], "Alice@Example.com", "kept as typed");
        assert_eq!(user["role"], "USER");

        let id = user["id"].as_str().expect("id");
        let uuid = uuid::Uuid::parse_str(id).expect("id is a UUID");
        assert_eq!(uuid.get_version_num(), 7, "id is a UUIDv7: {id}");
        assert_eq!(uuid.to_string(), id, "id in canonical lower-case form");

        let date = user["registrationDate"].as_str().expect("registrationDate");
        assert!(date.ends_with('Z'), "UTC with Z: {date}");
        let date = chrono::DateTime::parse_from_rfc3339(date).expect("RFC 3339");
        let after = chrono::Utc::now();
        assert!(
            date >= before - chrono::Duration::seconds(1) && date <= after,
            "registrationDate {date} is the time of registration ({before}..{after})"
        );

        let token = payload["accessToken"].as_str().expect("token");
        let claims = claims_of(token);
        assert_eq!(claims["sub"], id);
        assert_eq!(claims["iss"], "user-api");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            1800
        );
        assert_eq!(
            app.me(token).await,
            Ok(id.to_owned()),
            "the token works at once"
        );
    }

    async fn taken_username_or_email_in_any_case_is_a_conflict(app: TestApp) {
        app.register("bob", PASSWORD).await;
        let body = app.register_body("BOB", "other@example.com", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        assert!(body["data"].is_null());
        assert_no_internals(&body);

        let body = app.register_body("bobby", "BOB@EXAMPLE.COM", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        assert_no_internals(&body);

        // Neither attempt created anything: the names are still free.
        let body = app.login_body("bobby", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        app.register("bobby", PASSWORD).await;
    }

    async fn concurrent_registrations_of_one_username_give_one_success(app: TestApp) {
        let attempts = (0..20).map(|n| {
            let app = &app;
            async move {
                let username = if n % 2 == 0 { "racer" } else { "RACER" };
                app.register_body(username, &format!("racer{n}@example.com"), PASSWORD).await
            }
        });
        let bodies = futures_util::future::join_all(attempts).await;
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for body in &bodies {
            match error_code(body).as_deref() {
                None => winners.push(body["data"]["register"]["user"]["email"].clone()),
                Some("CONFLICT") => {
                    assert_no_internals(body);
                    conflicts += 1;
                }
                other => panic!("unexpected outcome {other:?}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one registration succeeds");
        assert_eq!(conflicts, 19, "every other one is a CONFLICT");
        // The one account is the winner's and works.
        let token = app.login("racer", PASSWORD).await.access;
        let body = app.gql("{ me { email } }", json!({}), Some(&token)).await;
        assert_eq!(body["data"]["me"]["email"], winners[0]);
    }

    async fn each_login_is_a_separate_session(app: TestApp) {
        let SignIn { access: registered, user_id: id, .. } = app.register("carol", PASSWORD).await;
        let first = app.login("carol", PASSWORD).await.access;
        let second = app.login("carol", PASSWORD).await.access;
        assert_ne!(first, second);
        assert_ne!(claims_of(&first)["jti"], claims_of(&second)["jti"]);
        assert_ne!(claims_of(&registered)["jti"], claims_of(&first)["jti"]);
        for token in [&registered, &first, &second] {
            assert_eq!(app.me(token).await, Ok(id.clone()));
        }
        // Ending one session leaves the others.
        let body = app.logout(&first).await;
        assert_eq!(body["data"]["logout"], true);
        assert_eq!(app.me(&first).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(app.me(&second).await, Ok(id.clone()));
        assert_eq!(app.me(&registered).await, Ok(id));
    }

    async fn login_is_case_insensitive_on_the_username(app: TestApp) {
        let id = app.register("MixedCase", PASSWORD).await.user_id;
        for name in ["mixedcase", "MIXEDCASE", "MixedCase"] {
            let token = app.login(name, PASSWORD).await.access;
            assert_eq!(app.me(&token).await, Ok(id.clone()), "{name}");
        }
    }

    async fn wrong_password_and_unknown_username_fail_alike(app: TestApp) {
        app.register("dave", PASSWORD).await;
        let wrong_password = app.login_body("dave", "not the password").await;
        let unknown_user = app.login_body("nobody", PASSWORD).await;
        let invalid_name = app.login_body("x", PASSWORD).await;
        for body in [&wrong_password, &unknown_user, &invalid_name] {
            assert_eq!(
                error_code(body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
            assert!(body["data"].is_null(), "{body}");
        }
        assert_eq!(messages(&wrong_password), messages(&unknown_user));
        assert_eq!(messages(&wrong_password), messages(&invalid_name));
        assert!(!messages(&wrong_password).is_empty());
        // The password is checked exactly, not case-insensitively.
        let body = app.login_body("dave", &PASSWORD.to_uppercase()).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn forged_and_expired_tokens_are_rejected(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("erin", PASSWORD).await;
        let victim_token = app.register("frank", PASSWORD).await.access;
        let secret = app.jwt_secret();
        let claims = claims_of(&token);
        let unauthenticated = Err("UNAUTHENTICATED".to_owned());

        // Control: the same claims re-signed with the server's key pass, so each rejection
        // below is down to the one thing changed.
        assert_eq!(app.me(&sign(&claims, Algorithm::HS256, &secret)).await, Ok(id.clone()));

        let other_secret = random_secret();
        assert_eq!(
            app.me(&sign(&claims, Algorithm::HS256, other_secret.as_bytes())).await,
            unauthenticated,
            "another secret"
        );

        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            app.me(&format!("{header}.{payload}.")).await,
            unauthenticated,
            "alg=none"
        );
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(
            app.me(&format!("{header}.{payload}.{signature}")).await,
            unauthenticated,
            "alg=none with a signature"
        );

        for alg in [Algorithm::HS384, Algorithm::HS512] {
            assert_eq!(
                app.me(&sign(&claims, alg, &secret)).await,
                unauthenticated,
                "{alg:?} with the right key: the algorithm is pinned"
            );
        }

        // Someone else's claims under erin's signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims_of(&victim_token).to_string()),
            parts[2]
        );
        assert_eq!(app.me(&forged).await, unauthenticated, "tampered payload");

        for (what, past) in [("expired", 120), ("expired beyond the 30 s leeway", 32)] {
            let mut expired = claims.clone();
            expired["iat"] = json!(now() - 2000);
            expired["exp"] = json!(now() - past);
            assert_eq!(
                app.me(&sign(&expired, Algorithm::HS256, &secret)).await,
                unauthenticated,
                "{what}"
            );
        }

        let mut wrong_issuer = claims.clone();
        wrong_issuer["iss"] = json!("someone-else");
        assert_eq!(
            app.me(&sign(&wrong_issuer, Algorithm::HS256, &secret)).await,
            unauthenticated,
            "iss"
        );

        for missing in ["sub", "jti", "iat", "exp", "iss"] {
            let mut partial = claims.clone();
            partial.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                app.me(&sign(&partial, Algorithm::HS256, &secret)).await,
                unauthenticated,
                "without {missing}"
            );
        }

        // A well-signed token whose session was never opened.
        let mut no_session = claims.clone();
        no_session["jti"] = json!(uuid::Uuid::new_v4().to_string());
        assert_eq!(
            app.me(&sign(&no_session, Algorithm::HS256, &secret)).await,
            unauthenticated,
            "no session"
        );

        assert_eq!(app.me(&token).await, Ok(id), "the real token still works");
    }

    async fn authorization_header_forms(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("grace", PASSWORD).await;
        for header in [
            format!("Bearer {token}"),
            format!("bearer {token}"),
            format!("BEARER {token}"),
            token.clone(),
        ] {
            let body = app.me_with_authorization(&header).await;
            assert_eq!(body["data"]["me"]["id"], id.as_str(), "{header}: {body}");
        }
        for header in [
            String::new(),
            "garbage".to_owned(),
            "Bearer".to_owned(),
            "Bearer not.a.jwt".to_owned(),
            format!("Basic {token}"),
            format!("Token {token}"),
            format!("Bearer {token} extra"),
            format!("Bearer {token}x"),
        ] {
            let body = app.me_with_authorization(&header).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{header}: {body}"
            );
            assert!(body["data"].is_null(), "{header}: {body}");
        }
    }

    async fn logout_revokes_only_that_token(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("heidi", PASSWORD).await;
        let other = app.login("heidi", PASSWORD).await.access;
        let body = app.logout(&token).await;
        assert_eq!(body["data"]["logout"], true, "{body}");
        assert_eq!(app.me(&token).await, Err("UNAUTHENTICATED".into()));
        // A revoked token can do nothing else either, not even log out again.
        let body = app.logout(&token).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        let body = app.update_me(&token, json!({"email": "new@example.com"})).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(app.me(&other).await, Ok(id.clone()));
        let claims = claims_of(&token);
        assert!(
            !app.state
                .sign_ins
                .store()
                .is_active(&id, claims["jti"].as_str().unwrap())
                .await
                .unwrap(),
            "the session is gone from the store"
        );
    }

    async fn password_change_revokes_every_other_token(app: TestApp) {
        const NEW: &str = "a new password";
        let SignIn { access: token, user_id: id, .. } = app.register("ivan", PASSWORD).await;
        let others = [
            app.login("ivan", PASSWORD).await.access,
            app.login("IVAN", PASSWORD).await.access,
        ];
        let SignIn { access: bystander, user_id: bystander_id, .. } =
            app.register("judy", PASSWORD).await;

        let body = app.update_me(&token, json!({"password": NEW})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(error_field(&body).as_deref(), Some("currentPassword"));
        let body = app.update_me(
            &token,
            json!({"password": NEW, "currentPassword": "wrong password"}),
        )
        .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
        let body = app.update_me(
            &token,
            json!({"password": "short", "currentPassword": PASSWORD}),
        )
        .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(error_field(&body).as_deref(), Some("password"));
        // The failed attempts changed nothing.
        for t in others.iter().chain([&token]) {
            assert_eq!(app.me(t).await, Ok(id.clone()));
        }
        app.login("ivan", PASSWORD).await;

        let body = app.update_me(
            &token,
            json!({"password": NEW, "currentPassword": PASSWORD}),
        )
        .await;
        assert_eq!(body["data"]["updateMe"]["id"], id.as_str(), "{body}");
        assert_eq!(
            app.me(&token).await,
            Ok(id.clone()),
            "the requesting token stays valid"
        );
        for t in &others {
            assert_eq!(
                app.me(t).await,
                Err("UNAUTHENTICATED".into()),
                "other tokens are revoked"
            );
        }
        assert_eq!(
            app.me(&bystander).await,
            Ok(bystander_id),
            "other users keep theirs"
        );

        let body = app.login_body("ivan", PASSWORD).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "old password"
        );
        let fresh = app.login("ivan", NEW).await.access;
        assert_eq!(app.me(&fresh).await, Ok(id));
    }

    async fn delete_me_removes_the_user_and_revokes_all_tokens(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("mallory", PASSWORD).await;
        let other = app.login("mallory", PASSWORD).await.access;
        let observer = app.register("oscar", PASSWORD).await.access;

        let body = app
            .gql("mutation { deleteMe }", json!({}), Some(&token))
            .await;
        assert_eq!(body["data"]["deleteMe"], true, "{body}");
        for t in [&token, &other] {
            assert_eq!(app.me(t).await, Err("UNAUTHENTICATED".into()));
            let jti = claims_of(t)["jti"].as_str().unwrap().to_owned();
            assert!(
                !app.state.sign_ins.store().is_active(&id, &jti).await.unwrap(),
                "the session is gone from the store, not just orphaned"
            );
        }
        let body = app
            .gql("mutation { deleteMe }", json!({}), Some(&other))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));

        let body = app
            .gql(
                "query($id: ID!) { byId: user(id: $id) { id } \
                 byName: user(username: \"mallory\") { id } }",
                json!({"id": id}),
                Some(&observer),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        assert!(
            body["data"]["byId"].is_null() && body["data"]["byName"].is_null(),
            "{body}"
        );
        let body = app
            .gql(
                "{ users(first: 100) { nodes { id } } }",
                json!({}),
                Some(&observer),
            )
            .await;
        assert!(
            !body["data"]["users"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == id.as_str()),
            "{body}"
        );
        let body = app.login_body("mallory", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        // The name and the address are free again.
        let new_id = app.register("mallory", PASSWORD).await.user_id;
        assert_ne!(new_id, id);
    }
}

/// The Redis keys under the test's prefix and their TTLs in seconds (-1: none).
async fn redis_ttls(app: &TestApp) -> Vec<(String, i64)> {
    let url = app.state.config.redis.url.as_deref().expect("redis url");
    let mut conn = redis_connection(url).await.expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.state.config.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let mut ttls = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TTL");
        ttls.push((key, ttl));
    }
    ttls
}

backend_tests! {
    async fn tokens_and_sessions_live_as_long_as_configured(backend: Backend) {
        let app = TestApp::builder().access_token_ttl(Duration::from_secs(90)).spawn(backend).await;
        let body = app.register_body("trent", "trent@example.com", PASSWORD).await;
        let login = app.login_body("trent", PASSWORD).await;
        for payload in [&body["data"]["register"], &login["data"]["login"]] {
            assert_eq!(payload["expiresIn"], 90, "{backend:?}: {payload}");
            let claims = claims_of(payload["accessToken"].as_str().expect("token"));
            let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
            assert_eq!(lifetime, 90, "{backend:?}");
            assert!((claims["exp"].as_i64().unwrap() - now() - 90).abs() <= 2);
        }
        if backend.has_redis() {
            // One key per session with the token's remaining life, and nothing that outlives it.
            // (Rate-limit counters live by their own windows.)
            let ttls: Vec<_> = redis_ttls(&app)
                .await
                .into_iter()
                .filter(|(key, _)| key.contains("session"))
                .collect();
            assert!(ttls.len() >= 2, "{ttls:?}");
            for (key, ttl) in &ttls {
                assert!((80..=90).contains(ttl), "{key} has TTL {ttl}");
            }
        }
    }
}
