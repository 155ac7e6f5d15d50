//! GraphQL calls, one helper per operation the tests run, and readers of the replies.
//!
//! An operation that can fail has a `_body` form that returns the whole reply for the test to
//! judge, and a plain form that asserts success and returns what it gave.

use reqwest::Response;
use serde_json::{Value, json};

use super::client::ApiClient;
use super::tokens::claims;

/// The media type of GraphQL responses from the GraphQL-over-HTTP spec.
pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The payload every sign-in (register, login, refresh) selects.
macro_rules! auth_payload {
    () => {
        "accessToken refreshToken tokenType expiresIn \
         user { id username email role registrationDate }"
    };
}

const REGISTER: &str = concat!(
    "mutation($i: RegisterInput!) { register(input: $i) { ",
    auth_payload!(),
    " } }"
);

/// `login(username: $u, password: $p)`, selecting the whole payload.
pub const LOGIN: &str = concat!(
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ",
    auth_payload!(),
    " } }"
);

const REFRESH: &str = concat!(
    "mutation($t: String!) { refresh(refreshToken: $t) { ",
    auth_payload!(),
    " } }"
);

const UPDATE_ME: &str =
    "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id username email } }";

/// A sign-in (by register, login or refresh): its tokens and its user.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The user's id.
    pub user_id: String,
}

impl SignIn {
    /// The sign-in in the `field` payload of a GraphQL reply (which must name the token type
    /// `bearer`), or the error code the reply carries instead.
    pub fn from_reply(body: &Value, field: &str) -> Result<SignIn, String> {
        let payload = &body["data"][field];
        if !payload.is_object() {
            return Err(error_code(body).unwrap_or_default());
        }
        assert_eq!(payload["tokenType"], "bearer", "{body}");
        let text = |value: &Value| {
            value
                .as_str()
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned()
        };
        Ok(SignIn {
            access: text(&payload["accessToken"]),
            refresh: text(&payload["refreshToken"]),
            user_id: text(&payload["user"]["id"]),
        })
    }

    /// The session id (`jti`) of the access token.
    pub fn session_id(&self) -> String {
        claims(&self.access)["jti"]
            .as_str()
            .expect("jti")
            .to_owned()
    }
}

impl ApiClient {
    /// POSTs a GraphQL body (a request, or a batch) with extra headers.
    pub async fn post_graphql(&self, body: &Value, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.post(self.url("/graphql")).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// POSTs a GraphQL request as JSON, with `Authorization: Bearer <token>` when given, and
    /// returns the HTTP response.
    pub async fn gql_response(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Response {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        self.post_graphql(&json!({"query": query, "variables": variables}), &headers)
            .await
    }

    /// POSTs a GraphQL request and returns the JSON body (asserting HTTP 200).
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let response = self.gql_response(query, variables, token).await;
        assert_eq!(
            response.status(),
            200,
            "GraphQL over application/json answers 200"
        );
        response.json().await.expect("JSON body")
    }

    /// The `data` of a GraphQL request made with `token`, or the error code it got.
    pub async fn data(&self, query: &str, variables: Value, token: &str) -> Result<Value, String> {
        let body = self.gql(query, variables, Some(token)).await;
        match error_code(&body) {
            Some(code) => Err(code),
            None => Ok(body["data"].clone()),
        }
    }

    /// `register` with these fields; the whole reply.
    pub async fn register_body(&self, username: &str, email: &str, password: &str) -> Value {
        self.gql(
            REGISTER,
            json!({"i": {"username": username, "email": email, "password": password}}),
            None,
        )
        .await
    }

    /// Registers `username` with the email `<username>@example.com`, asserting success.
    pub async fn register(&self, username: &str, password: &str) -> SignIn {
        let body = self
            .register_body(username, &format!("{username}@example.com"), password)
            .await;
        SignIn::from_reply(&body, "register").unwrap_or_else(|_| panic!("register failed: {body}"))
    }

    /// `login`; the whole reply.
    pub async fn login_body(&self, username: &str, password: &str) -> Value {
        self.gql(LOGIN, json!({"u": username, "p": password}), None)
            .await
    }

    /// Logs in, asserting success.
    pub async fn login(&self, username: &str, password: &str) -> SignIn {
        let body = self.login_body(username, password).await;
        SignIn::from_reply(&body, "login").unwrap_or_else(|_| panic!("login failed: {body}"))
    }

    /// `refresh`: the new sign-in, or the error code.
    pub async fn try_refresh(&self, refresh_token: &str) -> Result<SignIn, String> {
        let body = self.gql(REFRESH, json!({"t": refresh_token}), None).await;
        SignIn::from_reply(&body, "refresh")
    }

    /// `refresh`, asserting success.
    pub async fn refresh(&self, refresh_token: &str) -> SignIn {
        self.try_refresh(refresh_token)
            .await
            .unwrap_or_else(|code| panic!("refresh failed: {code}"))
    }

    /// The `me { id }` of a token, or the error code it got.
    pub async fn me(&self, token: &str) -> Result<String, String> {
        let body = self.gql("{ me { id } }", json!({}), Some(token)).await;
        match body["data"]["me"]["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(error_code(&body).unwrap_or_default()),
        }
    }

    /// POSTs `{ me { id } }` with this exact `Authorization` header value; the whole reply.
    pub async fn me_with_authorization(&self, authorization: &str) -> Value {
        let response = self
            .post_graphql(
                &json!({"query": "{ me { id } }"}),
                &[("authorization", authorization)],
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON body")
    }

    /// `updateMe(input)` with `token`, selecting `id username email`; the whole reply.
    pub async fn update_me(&self, token: &str, input: Value) -> Value {
        self.gql(UPDATE_ME, json!({"i": input}), Some(token)).await
    }

    /// `logout` with `token`; the whole reply.
    pub async fn logout(&self, token: &str) -> Value {
        self.gql("mutation { logout }", json!({}), Some(token))
            .await
    }
}

/// Checks that `body` answers a batch of `entries` refused whole: an array with, in each
/// entry's place, the error `code` and no `data`.
#[track_caller]
pub fn assert_batch_refused(body: &Value, entries: usize, code: &str) {
    let answers = body.as_array().expect("a batch is answered with an array");
    assert_eq!(answers.len(), entries, "{body}");
    for answer in answers {
        assert_eq!(error_code(answer).as_deref(), Some(code), "{body}");
        assert!(answer.get("data").is_none(), "{body}");
    }
}

/// `errors[0].extensions.code` of a GraphQL response.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// `errors[0].extensions.field` of a GraphQL response.
pub fn error_field(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .map(str::to_owned)
}

/// `errors[0].extensions.reason` of a GraphQL response (why a FORBIDDEN was refused).
pub fn error_reason(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .map(str::to_owned)
}

/// `errors[0].extensions.retryAfter` of a GraphQL response.
pub fn retry_after(body: &Value) -> Option<u64> {
    body["errors"][0]["extensions"]["retryAfter"].as_u64()
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
