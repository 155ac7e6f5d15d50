//! The password policy (NIST SP 800-63B): 8–128 characters, no composition rules, and no
//! password from the breached-password list or equal to the username or email — at
//! registration and at every password change, over GraphQL and REST alike.

use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::common::{error_code, error_field};
use crate::rest_support::call;

const REGISTER: &str = "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }";
const UPDATE_ME: &str = "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id } }";

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
    async fn common_passwords_are_refused_at_registration(app) {
        for password in COMMON {
            let input = json!({"i": {"username": "newbie", "email": "newbie@example.com", "password": password}});
            let body = app.gql(REGISTER, input, None).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{password}: {body}");
            assert_eq!(error_field(&body).as_deref(), Some("password"), "{password}");
            let reply = call(&app, Method::POST, "/users/register", None,
                Some(json!({"username": "newbie", "email": "newbie@example.com", "password": password}))).await;
            reply.assert_invalid("body", "password");
        }
        // Nothing was created: the name is still free.
        app.register("newbie", "a long passphrase nobody uses").await;
    }

    async fn passwords_equal_to_the_username_or_email_are_refused(app) {
        let username = "Pat_Smith-77";
        let email = "pat.smith.the.first@example.com";
        for password in [username, "pat_smith-77", email, "PAT.SMITH.THE.FIRST@EXAMPLE.COM", "pat.smith.the.first"] {
            let input = json!({"i": {"username": username, "email": email, "password": password}});
            let body = app.gql(REGISTER, input, None).await;
            assert_eq!(error_field(&body).as_deref(), Some("password"), "{password}: {body}");
            let reply = call(&app, Method::POST, "/users", None,
                Some(json!({"username": username, "email": email, "password": password}))).await;
            reply.assert_invalid("body", "password");
        }
    }

    async fn length_stays_8_to_128_with_no_composition_rules(app) {
        let cases = [
            ("seven c", false),
            ("lowercase only words", true),
            ("        spaces count", true),
            ("ünïcödé pässwörd", true),
            ("🔑🔑🔑🔑🔑🔑🔑🔑", true),
        ];
        for (i, (password, ok)) in cases.into_iter().enumerate() {
            let name = format!("len{i}");
            let input = json!({"i": {"username": name, "email": format!("{name}@example.com"), "password": password}});
            let body = app.gql(REGISTER, input, None).await;
            assert_eq!(body["data"]["register"].is_object(), ok, "{password}: {body}");
        }
        let long: String = "abcdefghijklmnopqrstuvwxyz234567".repeat(4);
        assert_eq!(long.chars().count(), 128);
        let input = json!({"i": {"username": "longest", "email": "l@example.com", "password": long}});
        assert!(app.gql(REGISTER, input, None).await["data"]["register"].is_object());
        let input = json!({"i": {"username": "toolong", "email": "t@example.com", "password": format!("{long}x")}});
        assert_eq!(error_field(&app.gql(REGISTER, input, None).await).as_deref(), Some("password"));
    }

    async fn password_changes_follow_the_same_policy(app) {
        let (token, _) = app.register("changer", "correct horse").await;
        let attempts = [
            json!({"password": "password1", "currentPassword": "correct horse"}),
            json!({"password": "CHANGER", "currentPassword": "correct horse"}),
            json!({"password": "changer@example.com", "currentPassword": "correct horse"}),
            // The new email, given in the same request, counts too.
            json!({"email": "brand.new.address@example.org", "password": "brand.new.address", "currentPassword": "correct horse"}),
        ];
        for input in attempts {
            let body = app.gql(UPDATE_ME, json!({"i": input}), Some(&token)).await;
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
        let body = app.gql(UPDATE_ME, json!({"i": {"password": "a better passphrase", "currentPassword": "correct horse"}}), Some(&token)).await;
        assert!(body["data"]["updateMe"]["id"].is_string(), "{body}");
    }
}
