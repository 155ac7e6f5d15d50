//! Forged and broken access tokens, over HTTP: alg=none, a key other than ours, another HMAC
//! algorithm, expired, a wrong issuer, missing claims and a tampered payload are all
//! UNAUTHENTICATED (GraphQL) and 401 (REST). Each forgery names a live session of a real user,
//! so only the defect under test can be what refuses it; a control re-signs the genuine claims
//! with our key and is accepted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::json;

use crate::support::rest::call;
use crate::support::tokens::{assert_refused, claims, sign};
use crate::support::{TestApp, backend_tests};

backend_tests! {
    async fn forged_and_broken_tokens_are_unauthenticated(app: TestApp) {
        let alice = app.register("alice_t", "correct horse").await;
        let bob = app.register("bob_t", "correct horse").await;
        let genuine = claims(&alice.access);
        let secret = app.jwt_secret();

        // Control: the same claims signed with our key are accepted.
        let control = sign(&genuine, Algorithm::HS256, &secret);
        assert_eq!(app.me(&control).await, Ok(alice.user_id.clone()));
        assert_eq!(call(&app, Method::GET, "/users/me", Some(&control), None).await.status, 200);

        // alg=none, with and without a signature part.
        for header in [json!({"alg": "none", "typ": "JWT"}), json!({"alg": "none"})] {
            let head = URL_SAFE_NO_PAD.encode(header.to_string());
            let body = URL_SAFE_NO_PAD.encode(genuine.to_string());
            assert_refused(&app, &format!("{head}.{body}."), "alg=none").await;
            assert_refused(&app, &format!("{head}.{body}"), "alg=none without a signature").await;
        }

        // A key other than ours.
        assert_refused(&app, &sign(&genuine, Algorithm::HS256, b"someone else's key of 32+ bytes!!"), "a foreign key").await;
        // Our key, but not the pinned algorithm.
        assert_refused(&app, &sign(&genuine, Algorithm::HS512, &secret), "HS512").await;

        // Expired beyond the 30 s leeway.
        let mut expired = genuine.clone();
        let now = chrono::Utc::now().timestamp();
        expired["iat"] = (now - 3600).into();
        expired["exp"] = (now - 120).into();
        assert_refused(&app, &sign(&expired, Algorithm::HS256, &secret), "an expired token").await;

        // Another issuer.
        let mut foreign = genuine.clone();
        foreign["iss"] = "someone-else".into();
        assert_refused(&app, &sign(&foreign, Algorithm::HS256, &secret), "a wrong iss").await;

        // Each required claim left out.
        for claim in ["sub", "jti", "iat", "exp", "iss"] {
            let mut partial = genuine.clone();
            partial.as_object_mut().unwrap().remove(claim);
            assert_refused(&app, &sign(&partial, Algorithm::HS256, &secret), claim).await;
        }

        // A tampered payload under the genuine signature: alice's token claiming to be bob, or
        // to live longer.
        let parts: Vec<&str> = alice.access.split('.').collect();
        for (field, value) in [("sub", json!(bob.user_id)), ("exp", json!(now + 86_400))] {
            let mut tampered = genuine.clone();
            tampered[field] = value;
            let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(tampered.to_string()), parts[2]);
            assert_refused(&app, &forged, &format!("a tampered {field}")).await;
        }
        // A flipped signature bit.
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[0] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(signature));
        assert_refused(&app, &flipped, "a flipped signature bit").await;

        // Garbage.
        for junk in ["a.b.c", "..", "eyJ", &"x".repeat(2000)] {
            assert_refused(&app, junk, junk).await;
        }

        // A well-signed token for a session that does not exist (never issued, or revoked).
        let mut unknown = genuine.clone();
        unknown["jti"] = uuid::Uuid::new_v4().to_string().into();
        assert_refused(&app, &sign(&unknown, Algorithm::HS256, &secret), "an unknown session").await;

        // None of this disturbed the genuine token.
        assert_eq!(app.me(&alice.access).await, Ok(alice.user_id.clone()));
    }
}
