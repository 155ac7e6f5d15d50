//! The password policy (NIST SP 800-63B): 8–128 characters, no composition rules, and no
//! password from the breached-password list or equal to the username or email — at
//! registration and at every password change, over GraphQL and REST alike.

use reqwest::Method;
use serde_json::json;

use crate::support::rest::call;
use crate::support::{TestApp, backend_tests, error_code, error_field};

/// Passwords from the list, in the forms people type them.
const COMMON: [&str; 6] = [
    "password",
    "12345678",
    "iloveyou",
    "Password1",
    "qwertyuiop",
    "P@ssw0rd",
];

backend_tests! {
    async fn common_passwords_are_refused_at_registration(app: TestApp) {
        for password in COMMON {
            let body = app.register_body("newbie", "newbie@example.com", password).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{password}: {body}");
            assert_eq!(error_field(&body).as_deref(), Some("password"), "{password}");
            let reply = call(&app, Method::POST, "/users/register", None,
                Some(json!({"username": "newbie", "email": "newbie@example.com", "password": password}))).await;
            reply.assert_invalid("body", "password");
        }
        // Nothing was created: the name is still free.
        app.register("newbie", "a long passphrase nobody uses").await;
    }

    async fn passwords_equal_to_the_username_or_email_are_refused(app: TestApp) {
        let username = "Pat_Smith-77";
        let email = "pat.smith.the.first@example.com";
        for password in [username, "pat_smith-77", email, "PAT.SMITH.THE.FIRST@EXAMPLE.COM", "pat.smith.the.first"] {
            let body = app.register_body(username, email, password).await;
            assert_eq!(error_field(&body).as_deref(), Some("password"), "{password}: {body}");
            let reply = call(&app, Method::POST, "/users", None,
                Some(json!({"username": username, "email": email, "password": password}))).await;
            reply.assert_invalid("body", "password");
        }
    }

    async fn length_stays_8_to_128_with_no_composition_rules(app: TestApp) {
        let cases = [
            ("seven c", false),
            ("lowercase only words", true),
            ("        spaces count", true),
            ("ünïcödé pässwörd", true),
            ("🔑🔑🔑🔑🔑🔑🔑🔑", true),
        ];
        for (i, (password, ok)) in cases.into_iter().enumerate() {
            let name = format!("len{i}");
            let body = app.register_body(&name, &format!("{name}@example.com"), password).await;
            assert_eq!(body["data"]["register"].is_object(), ok, "{password}: {body}");
        }
        let long: String = "abcdefghijklmnopqrstuvwxyz234567".repeat(4);
        assert_eq!(long.chars().count(), 128);
        let body = app.register_body("longest", "l@example.com", &long).await;
        assert!(body["data"]["register"].is_object());
        let body = app.register_body("toolong", "t@example.com", &format!("{long}x")).await;
        assert_eq!(error_field(&body).as_deref(), Some("password"));
    }

    async fn password_changes_follow_the_same_policy(app: TestApp) {
        let token = app.register("changer", "correct horse").await.access;
        let attempts = [
            json!({"password": "password1", "currentPassword": "correct horse"}),
            json!({"password": "CHANGER", "currentPassword": "correct horse"}),
            json!({"password": "changer@example.com", "currentPassword": "correct horse"}),
            // The new email, given in the same request, counts too.
            json!({"email": "brand.new.address@example.org", "password": "brand.new.address", "currentPassword": "correct horse"}),
        ];
        for input in attempts {
            let body = app.update_me(&token, input.clone()).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{input}: {body}");
            assert_eq!(error_field(&body).as_deref(), Some("password"), "{input}");
        }
        for body in [
            json!({"password": "iloveyou"}),
            json!({"password": "changer"}),
            json!({"email": "fresh.mail@example.net", "password": "Fresh.Mail@Example.NET"}),
        ] {
            call(&app, Method::PUT, "/users", Some(&token), Some(body)).await.assert_invalid("body", "password");
        }
        // Nothing changed: the old password still signs in, and a good one is accepted.
        app.login("changer", "correct horse").await;
        let input = json!({"password": "a better passphrase", "currentPassword": "correct horse"});
        let body = app.update_me(&token, input).await;
        assert!(body["data"]["updateMe"]["id"].is_string(), "{body}");
    }
}
