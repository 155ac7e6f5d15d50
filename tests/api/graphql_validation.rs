//! The data rules of section 3 and the errors they give: `BAD_USER_INPUT` naming the field in
//! `extensions.field`, `CONFLICT` for taken values, and nothing written on a failure.

use serde_json::{Value, json};

use crate::support::{
    PASSWORD, SignIn, TestApp, assert_no_internals, backend_tests, error_code, error_field,
};

/// A valid address of exactly `len` characters (about 70 to 300): a 64-character local part
/// and a domain of 63-character labels.
fn email_of_len(len: usize) -> String {
    let domain_len = len - "@.com".len() - 64;
    let domain: String = (0..domain_len)
        .map(|i| if i % 64 == 63 { '.' } else { 'd' })
        .collect();
    assert!(!domain.ends_with('.'), "no empty label");
    format!("{}@{domain}.com", "l".repeat(64))
}

/// A valid address of 126 "İ" (U+0130) whose lower-cased form is 258 code points long.
fn dotted_i_email() -> String {
    let label = "İ".repeat(31);
    format!("{}@{label}.{label}.{label}.com", "İ".repeat(32))
}

/// Usernames registered in this test, as listed by `users`.
async fn listed_usernames(app: &TestApp, token: &str) -> Vec<String> {
    let body = app
        .gql(
            "{ users(first: 100) { nodes { username } } }",
            json!({}),
            Some(token),
        )
        .await;
    body["data"]["users"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["username"].as_str().expect("username").to_owned())
        .collect()
}

fn assert_bad_input(body: &Value, field: &str, case: &str) {
    assert_eq!(
        error_code(body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{case}: {body}"
    );
    assert_eq!(error_field(body).as_deref(), Some(field), "{case}: {body}");
    assert!(body["data"].is_null(), "{case}: {body}");
    assert_no_internals(body);
}

backend_tests! {
    async fn register_validates_each_field_and_creates_nothing_on_failure(app: TestApp) {
        let observer = app.register("observer", PASSWORD).await.access;
        let (x33, x129) = ("x".repeat(33), "x".repeat(129));
        let (long_email, long_password) = (email_of_len(255), "é".repeat(129));
        // (field at fault, username, email, password); the other fields are valid.
        let cases = [
            ("username", "ab", "a@example.com", PASSWORD),
            ("username", &x33, "a@example.com", PASSWORD),
            ("username", "", "a@example.com", PASSWORD),
            ("username", "with space", "a@example.com", PASSWORD),
            ("username", "a.b", "a@example.com", PASSWORD),
            ("username", "ünïcode", "a@example.com", PASSWORD),
            ("username", "<script>", "a@example.com", PASSWORD),
            ("username", "name\n", "a@example.com", PASSWORD),
            ("email", "valid1", "plain", PASSWORD),
            ("email", "valid1", "a@", PASSWORD),
            ("email", "valid1", "@example.com", PASSWORD),
            ("email", "valid1", "Name <a@example.com>", PASSWORD),
            ("email", "valid1", "a b@example.com", PASSWORD),
            ("email", "valid1", "", PASSWORD),
            ("email", "valid1", &long_email, PASSWORD),
            ("password", "valid2", "b@example.com", "1234567"),
            ("password", "valid2", "b@example.com", "ééééééé"),
            ("password", "valid2", "b@example.com", &long_password),
            ("password", "valid2", "b@example.com", &x129),
            ("password", "valid2", "b@example.com", ""),
        ];
        for (field, username, email, password) in cases {
            let body = app.register_body(username, email, password).await;
            let case = format!(
                "{field}: {username:?} {email:?} {} chars",
                password.chars().count()
            );
            assert_bad_input(&body, field, &case);
        }
        assert_eq!(
            listed_usernames(&app, &observer).await,
            ["observer"],
            "nothing was created"
        );
        let body = app.login_body("valid1", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        // The addresses are free.
        for (username, email) in [("valid1", "a@example.com"), ("valid2", "b@example.com")] {
            let body = app.register_body(username, email, PASSWORD).await;
            assert!(body["errors"].is_null(), "{body}");
        }
        assert_eq!(
            listed_usernames(&app, &observer).await,
            ["observer", "valid1", "valid2"]
        );
    }

    async fn register_accepts_the_edges_of_each_rule(app: TestApp) {
        let (x32, email254, dotted) = ("x".repeat(32), email_of_len(254), dotted_i_email());
        let (spaced, long_password) = ("  pass word with spaces  ", "é".repeat(128));
        let cases = [
            ("abc", "min@example.com", PASSWORD),
            (&x32, "max@example.com", PASSWORD),
            ("A_b-9", &email254, PASSWORD),
            ("spaces", "first.last+tag@sub.example.org", spaced),
            ("unicode", "unicode@example.com", "éééééééé"),
            ("emoji", "emoji@example.com", "😀😀😀😀😀😀😀😀"),
            ("longpass", "longpass@example.com", &long_password),
            ("ascii8", "ascii8@example.com", "zq8vX2mL"),
            // Lower-cased, İ takes two code points: the copy kept for uniqueness is longer.
            ("dotted", &dotted, PASSWORD),
        ];
        for (username, email, password) in cases {
            let body = app.register_body(username, email, password).await;
            assert!(body["errors"].is_null(), "{username}: {body}");
            assert_eq!(body["data"]["register"]["user"]["email"], email);
            // The password was kept exactly as given: it logs in, and trimmed it does not.
            let body = app.login_body(username, password).await;
            assert!(body["errors"].is_null(), "{username}: {body}");
            if password.trim() != password {
                let body = app.login_body(username, password.trim()).await;
                assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
            }
        }
    }

    async fn emails_differing_only_in_accents_are_distinct(app: TestApp) {
        // Letter case is ignored, accents are not, on both backends alike.
        for (username, email) in [("jose", "jose@example.com"), ("jose2", "josé@example.com")] {
            let body = app.register_body(username, email, PASSWORD).await;
            assert!(body["errors"].is_null(), "{email}: {body}");
        }
        for email in ["JOSÉ@EXAMPLE.COM", "José@Example.com", "JOSE@example.com"] {
            let body = app.register_body("jose3", email, PASSWORD).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("CONFLICT"),
                "{email}: {body}"
            );
        }
    }

    async fn update_me_rules(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("alice", PASSWORD).await;
        let other_session = app.login("alice", PASSWORD).await.access;
        app.register("bob", PASSWORD).await;

        for input in [
            json!({}),
            json!({"currentPassword": PASSWORD}),
            json!({"email": null, "password": null}),
        ] {
            let body = app.update_me(&token, input.clone()).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{input}: {body}"
            );
            assert!(
                matches!(error_field(&body).as_deref(), Some("email" | "password")),
                "{input}: {body}"
            );
        }
        for email in ["not an email", "a@", "", &email_of_len(255)] {
            let body = app.update_me(&token, json!({"email": email})).await;
            assert_bad_input(&body, "email", email);
        }
        for email in ["bob@example.com", "BOB@example.COM"] {
            let body = app.update_me(&token, json!({"email": email})).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("CONFLICT"),
                "{email}: {body}"
            );
            assert_no_internals(&body);
        }
        // Nothing changed so far.
        let body = app.gql("{ me { email } }", json!({}), Some(&token)).await;
        assert_eq!(body["data"]["me"]["email"], "alice@example.com");

        // The own address, as it is or in another case, is no conflict.
        let body = app.update_me(&token, json!({"email": "alice@example.com"})).await;
        assert_eq!(
            body["data"]["updateMe"]["email"], "alice@example.com",
            "{body}"
        );
        let body = app.update_me(&token, json!({"email": "Alice@Example.com"})).await;
        assert_eq!(
            body["data"]["updateMe"]["email"], "Alice@Example.com",
            "{body}"
        );

        let body = app.update_me(&token, json!({"email": "alice@new.example"})).await;
        assert_eq!(body["data"]["updateMe"]["id"], id.as_str(), "{body}");
        assert_eq!(body["data"]["updateMe"]["email"], "alice@new.example");
        let body = app
            .gql("{ me { email } }", json!({}), Some(&other_session))
            .await;
        assert_eq!(body["data"]["me"]["email"], "alice@new.example", "{body}");
        // An email change revokes nothing and leaves the password alone.
        assert_eq!(app.me(&other_session).await, Ok(id.clone()));
        app.login("alice", PASSWORD).await;
        // The old address is free again; the new one is taken.
        let body = app.register_body("carol", "ALICE@example.com", PASSWORD).await;
        assert!(body["errors"].is_null(), "{body}");
        let body = app.register_body("dave", "Alice@New.Example", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    }
}
