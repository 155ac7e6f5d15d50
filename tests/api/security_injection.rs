//! SQL and HTML metacharacters in every string field: stored and returned verbatim, or
//! refused by validation (BAD_USER_INPUT / 422) — never executed. The users table is intact
//! afterwards.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::rest::call;
use crate::support::{TestApp, backend_tests, error_code, error_field};

/// Classic payloads: SQL injection and script injection.
const PAYLOADS: [&str; 4] = [
    "' OR 1=1 --",
    "\"; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "Robert'); DROP TABLE users;--",
];

/// Addresses that carry the payloads and are valid mailboxes (an apostrophe is plain
/// `atext`; anything goes inside a quoted local part).
const EMAILS: [&str; 4] = [
    "o'brien@example.com",
    "\"' OR 1=1 --\"@example.com",
    "\"<script>alert(1)</script>\"@example.com",
    "\"Robert'); DROP TABLE users;--\"@example.com",
];

/// The number of users, seen through the API.
async fn user_count(app: &TestApp, token: &str) -> usize {
    let body = app
        .gql(
            "{ users(first: 100) { nodes { id } } }",
            json!({}),
            Some(token),
        )
        .await;
    body["data"]["users"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .len()
}

backend_tests! {
    async fn metacharacters_are_stored_verbatim_or_refused(app: TestApp) {
        let canary = app.register("canary", "correct horse").await.access;
        let mut users = 1;

        // Usernames allow only A-Z a-z 0-9 _ -: every payload is refused, in both APIs.
        for payload in PAYLOADS {
            let body = app.register_body(payload, "x@example.com", "correct horse").await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{payload}: {body}");
            assert_eq!(error_field(&body).as_deref(), Some("username"));
            call(&app, Method::POST, "/users/register", None,
                Some(json!({"username": payload, "email": "x@example.com", "password": "correct horse"})))
                .await
                .assert_invalid("body", "username");
            // Logging in or looking up by it finds nobody.
            let body = app.login_body(payload, "correct horse").await;
            assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
            let body = app.gql("query($u: String!) { user(username: $u) { id } }", json!({"u": payload}), Some(&canary)).await;
            assert_eq!(body["data"]["user"], Value::Null, "{body}");
            let path: String = form_urlencoded::byte_serialize(payload.as_bytes()).collect();
            call(&app, Method::GET, &format!("/users/{}", path.replace('+', "%20")), Some(&canary), None)
                .await
                .assert_detail(404);
        }

        // Passwords take anything: stored (hashed) and checked verbatim.
        for (i, payload) in PAYLOADS.into_iter().enumerate() {
            let name = format!("pw{i}");
            let body = app.register_body(&name, &format!("{name}@example.com"), payload).await;
            assert!(body["data"]["register"].is_object(), "{payload}: {body}");
            users += 1;
            app.login(&name, payload).await;
            let body = app.login_body(&name, "' OR 1=1 --x").await;
            assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        }

        // Emails: valid addresses carrying the payloads come back exactly as given.
        for (i, email) in EMAILS.into_iter().enumerate() {
            let name = format!("mail{i}");
            let body = app.register_body(&name, email, "correct horse").await;
            assert_eq!(body["data"]["register"]["user"]["email"], email, "{body}");
            users += 1;
            let token = body["data"]["register"]["accessToken"].as_str().unwrap();
            let me = call(&app, Method::GET, "/users/me", Some(token), None).await;
            assert_eq!(me.body["data"]["email"], email, "{me:?}");
            let body = app.gql("{ me { email } }", json!({}), Some(token)).await;
            assert_eq!(body["data"]["me"]["email"], email);
        }
        // Payloads that are not addresses are refused as such.
        for payload in PAYLOADS {
            let body = app.register_body("bademail", payload, "correct horse").await;
            assert_eq!(error_field(&body).as_deref(), Some("email"), "{payload}: {body}");
        }

        // Changing an email to such an address stores it verbatim too, in both APIs.
        let token = app.register("changer", "correct horse").await.access;
        users += 1;
        for email in EMAILS {
            // Another domain: the addresses above are taken (emails are unique).
            let email_net = email.replace("example.com", "example.net");
            let body = app.update_me(&token, json!({"email": email_net})).await;
            assert_eq!(body["data"]["updateMe"]["email"], email_net, "{body}");
            let reply = call(&app, Method::PUT, "/users", Some(&token),
                Some(json!({"email": email.replace("example.com", "example.org")}))).await;
            assert_eq!(reply.body["data"]["email"], email.replace("example.com", "example.org"), "{reply:?}");
        }

        // Payloads written into the document itself (escaped as GraphQL strings) are data too.
        let body = app.gql(r#"mutation { login(username: "' OR 1=1 --", password: "\" OR \"\"=\"") { accessToken } }"#,
            json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let body = app.gql(r#"{ user(username: "Robert'); DROP TABLE users;--") { id } }"#, json!({}), Some(&canary)).await;
        assert_eq!(body["data"]["user"], Value::Null, "{body}");

        // The table is intact: every account is there and the first one still signs in.
        assert_eq!(user_count(&app, &canary).await, users);
        app.login("canary", "correct horse").await;
    }
}
