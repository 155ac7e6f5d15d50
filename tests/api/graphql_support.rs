//! Helpers shared by the GraphQL test files: full-payload registration, `updateMe`, raw
//! `Authorization` headers and token claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::common::TestApp;

/// A password that passes validation.
pub const PASSWORD: &str = "correct horse";

/// `register` selecting every field of the payload.
pub const REGISTER: &str = "mutation($i: RegisterInput!) { register(input: $i) { \
    accessToken tokenType expiresIn user { id username email role registrationDate } } }";

/// `login` selecting the token.
pub const LOGIN: &str =
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }";

/// `updateMe` selecting the user.
pub const UPDATE_ME: &str =
    "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id username email } }";

/// Registers with explicit fields and returns the whole response body.
pub async fn register_body(app: &TestApp, username: &str, email: &str, password: &str) -> Value {
    app.gql(
        REGISTER,
        json!({"i": {"username": username, "email": email, "password": password}}),
        None,
    )
    .await
}

/// Logs in and returns the whole response body.
pub async fn login_body(app: &TestApp, username: &str, password: &str) -> Value {
    app.gql(LOGIN, json!({"u": username, "p": password}), None)
        .await
}

/// Runs `updateMe(input)` with `token` and returns the whole response body.
pub async fn update_me(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(UPDATE_ME, json!({"i": input}), Some(token)).await
}

/// POSTs `{ me { id } }` with this exact `Authorization` header value; returns the body.
pub async fn me_with_header(app: &TestApp, authorization: &str) -> Value {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("authorization", authorization)
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON body")
}

/// Every `errors[].message` of a response.
pub fn messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that no error message of `body` shows database or driver text.
pub fn assert_no_internals(body: &Value) {
    for message in messages(body) {
        let lower = message.to_lowercase();
        for word in [
            "duplicate",
            "unique",
            "constraint",
            "sqlite",
            "mysql",
            "redis",
            "diesel",
            "users.",
            "_lower",
            "syntax",
        ] {
            assert!(
                !lower.contains(word),
                "error message reveals internals ({word}): {message}"
            );
        }
    }
}

/// The decoded payload (claims) of a JWT.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}
