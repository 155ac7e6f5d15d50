//! Helpers for the security tests: a runner for test functions that spawn their own servers
//! (with the settings under test) on each backend, and requests with chosen headers.

#![allow(dead_code)]

use reqwest::Response;
use serde_json::{Value, json};

use crate::common::{Backend, Options, TestApp};

/// Runs each `async fn name(backend: Backend)` once per backend, as `name::sqlite` and
/// `name::mysql_redis`, for tests that need servers with settings of their own (which
/// `backend_tests!` cannot give).
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql_redis() {
                    super::$name($crate::common::Backend::MysqlRedis).await
                }
            }
        )*
    };
}

/// A server on `backend` with extra flags; `None` when the backend is not configured.
pub async fn spawn(backend: Backend, args: &[&str]) -> Option<TestApp> {
    let options = Options {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    };
    TestApp::try_spawn_with(backend, options).await
}

/// The media type of GraphQL responses from the GraphQL-over-HTTP spec.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// POSTs a GraphQL body (a request or a batch) with extra headers.
pub async fn post_graphql(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> Response {
    let mut request = app.client.post(app.url("/graphql")).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

/// The login document, selecting the token.
pub const LOGIN: &str =
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }";

/// Logs in over GraphQL with an optional `X-Forwarded-For`; returns the JSON body.
pub async fn gql_login(app: &TestApp, username: &str, password: &str, xff: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = xff.map(|v| ("x-forwarded-for", v)).into_iter().collect();
    let body = json!({"query": LOGIN, "variables": {"u": username, "p": password}});
    let response = post_graphql(app, &body, &headers).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON body")
}

/// Logs in over REST (JSON body) with an optional `X-Forwarded-For`.
pub async fn rest_login(
    app: &TestApp,
    username: &str,
    password: &str,
    xff: Option<&str>,
) -> Response {
    let mut request = app
        .client
        .post(app.url("/users/login"))
        .json(&json!({"username": username, "password": password}));
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.expect("request")
}

/// `errors[0].extensions.retryAfter` of a GraphQL response.
pub fn retry_after(body: &Value) -> Option<u64> {
    body["errors"][0]["extensions"]["retryAfter"].as_u64()
}

/// Asserts a REST 429 with a `Retry-After` of whole seconds, at least 1; returns it.
pub fn assert_429(response: &Response) -> u64 {
    assert_eq!(response.status(), 429, "{response:?}");
    let seconds: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!(seconds >= 1);
    seconds
}
