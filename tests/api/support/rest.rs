//! REST calls: one request function that returns status, headers and JSON body, the legacy
//! register / login / me calls, and assertions on the error shapes of API.md section 4.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::client::ApiClient;
use super::graphql::SignIn;

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body as JSON; `Value::Null` when empty, a string when not JSON.
    pub body: Value,
}

impl Reply {
    /// A header as a string, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the FastAPI-style 422 body with a single entry at `[place, field]`.
    pub fn assert_invalid(&self, place: &str, field: &str) {
        assert_eq!(self.status, 422, "{self:?}");
        let issues = self.body["detail"].as_array().expect("detail is a list");
        assert_eq!(issues.len(), 1, "{self:?}");
        assert_eq!(issues[0]["loc"], json!([place, field]), "{self:?}");
        assert_eq!(issues[0]["type"], "value_error", "{self:?}");
        assert!(issues[0]["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }

    /// Asserts a `{"detail": "<message>"}` error with this status.
    pub fn assert_detail(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.body["detail"].as_str().is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
    }

    /// Asserts a 401 with `WWW-Authenticate: Bearer`.
    pub fn assert_unauthorized(&self) {
        self.assert_detail(401);
        assert_eq!(self.header("www-authenticate"), Some("Bearer"), "{self:?}");
    }

    /// Asserts a 429 with a `Retry-After` of whole seconds, at least 1; returns it.
    pub fn assert_rate_limited(&self) -> u64 {
        assert_eq!(self.status, 429, "{self:?}");
        let seconds: u64 = self
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in whole seconds");
        assert!(seconds >= 1);
        seconds
    }
}

/// Reads a response whole.
pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends `method path` with an optional `Authorization: Bearer` token and JSON body.
pub async fn call(
    api: &ApiClient,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = api.client.request(method, api.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("request")).await
}

/// Registers through `POST /users/register` (email `<username>@example.com`), asserting
/// success.
pub async fn register(api: &ApiClient, username: &str, password: &str) -> SignIn {
    let reply = call(
        api,
        Method::POST,
        "/users/register",
        None,
        Some(json!({"username": username, "password": password, "email": format!("{username}@example.com")})),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let text = |value: &Value| {
        value
            .as_str()
            .unwrap_or_else(|| panic!("{reply:?}"))
            .to_owned()
    };
    SignIn {
        access: text(&reply.body["access_token"]),
        refresh: text(&reply.body["refresh_token"]),
        user_id: text(&reply.body["data"]["id"]),
    }
}

/// `POST /users/login` with a JSON body.
pub async fn login(api: &ApiClient, username: &str, password: &str) -> Reply {
    call(
        api,
        Method::POST,
        "/users/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

/// Logs in through `POST /users/login` and returns the access token, asserting success.
pub async fn login_token(api: &ApiClient, username: &str, password: &str) -> String {
    let reply = login(api, username, password).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// `GET /users/me` with a token.
pub async fn me(api: &ApiClient, token: &str) -> Reply {
    call(api, Method::GET, "/users/me", Some(token), None).await
}
