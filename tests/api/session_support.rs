//! Helpers for the roles, sessions, refresh, tokens and isolation tests: sign-ins that keep
//! their refresh token, GraphQL calls with a chosen User-Agent, and reaching behind the API
//! (making an admin, back-dating a refresh token) where waiting would be slow.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use serde_json::{Value, json};
use user_api::config::DatabaseUrl;
use user_api::db::DbError;
use user_api::db::schema::{refresh_tokens, users};
use user_api::signins::refresh_tokens as refresh;

use crate::common::{TestApp, error_code};

/// A sign-in: its tokens and its user.
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
    /// The session id (`jti`) of the access token.
    pub fn session_id(&self) -> String {
        claims(&self.access)["jti"]
            .as_str()
            .expect("jti")
            .to_owned()
    }
}

/// The (unverified) claims of a JWT.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// POSTs a GraphQL request with an optional token and User-Agent; returns the JSON body.
pub async fn gql_as(
    app: &TestApp,
    query: &str,
    variables: Value,
    token: Option<&str>,
    user_agent: Option<&str>,
) -> Value {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(ua) = user_agent {
        request = request.header("user-agent", ua);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON body")
}

const PAYLOAD: &str = "accessToken refreshToken tokenType expiresIn user { id }";

fn sign_in_from(body: &Value, field: &str) -> SignIn {
    let payload = &body["data"][field];
    assert!(payload.is_object(), "{field} failed: {body}");
    assert_eq!(payload["tokenType"], "bearer");
    SignIn {
        access: payload["accessToken"].as_str().expect("token").to_owned(),
        refresh: payload["refreshToken"]
            .as_str()
            .expect("refresh")
            .to_owned(),
        user_id: payload["user"]["id"].as_str().expect("id").to_owned(),
    }
}

/// Registers `username` (email `<username>@example.com`) through GraphQL.
pub async fn register(
    app: &TestApp,
    username: &str,
    password: &str,
    user_agent: Option<&str>,
) -> SignIn {
    let body = gql_as(
        app,
        &format!("mutation($i: RegisterInput!) {{ register(input: $i) {{ {PAYLOAD} }} }}"),
        json!({"i": {"username": username, "email": format!("{username}@example.com"), "password": password}}),
        None,
        user_agent,
    )
    .await;
    sign_in_from(&body, "register")
}

/// Logs in through GraphQL.
pub async fn login(
    app: &TestApp,
    username: &str,
    password: &str,
    user_agent: Option<&str>,
) -> SignIn {
    let body = gql_as(
        app,
        &format!(
            "mutation($u: String!, $p: String!) {{ login(username: $u, password: $p) {{ {PAYLOAD} }} }}"
        ),
        json!({"u": username, "p": password}),
        None,
        user_agent,
    )
    .await;
    sign_in_from(&body, "login")
}

/// Calls `refresh`; the new sign-in, or the error code.
pub async fn try_refresh(
    app: &TestApp,
    refresh_token: &str,
    user_agent: Option<&str>,
) -> Result<SignIn, String> {
    let body = gql_as(
        app,
        &format!("mutation($t: String!) {{ refresh(refreshToken: $t) {{ {PAYLOAD} }} }}"),
        json!({"t": refresh_token}),
        None,
        user_agent,
    )
    .await;
    if body["data"]["refresh"].is_object() {
        Ok(sign_in_from(&body, "refresh"))
    } else {
        Err(error_code(&body).unwrap_or_default())
    }
}

/// Calls `refresh`, asserting success.
pub async fn refresh(app: &TestApp, refresh_token: &str) -> SignIn {
    try_refresh(app, refresh_token, None)
        .await
        .unwrap_or_else(|code| panic!("refresh failed: {code}"))
}

/// The `data` of a GraphQL call, or the error code it got.
pub async fn data(
    app: &TestApp,
    query: &str,
    variables: Value,
    token: &str,
) -> Result<Value, String> {
    let body = app.gql(query, variables, Some(token)).await;
    match error_code(&body) {
        Some(code) => Err(code),
        None => Ok(body["data"].clone()),
    }
}

/// `DATABASE_URL` of the test's database, as the binary takes it.
pub fn database_url(app: &TestApp) -> String {
    match &app.state.config.database.url {
        DatabaseUrl::Mysql(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
    }
}

/// Makes a user an admin behind the API's back (the CLI is tested on its own).
pub async fn make_admin(app: &TestApp, user_id: &str) {
    async fn run(app: &TestApp, user_id: &str) -> Result<usize, DbError> {
        let query = diesel::update(users::table.find(user_id)).set(users::role.eq("admin"));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, user_id).await.unwrap(), 1);
}

/// Makes every user a USER, behind the API's back.
pub async fn demote_everyone(app: &TestApp) {
    async fn run(app: &TestApp) -> Result<usize, DbError> {
        let query = diesel::update(users::table).set(users::role.eq("user"));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    run(app).await.unwrap();
}

/// How many admins the database holds.
pub async fn count_admins(app: &TestApp) -> i64 {
    async fn run(app: &TestApp) -> Result<i64, DbError> {
        let query = users::table.filter(users::role.eq("admin")).count();
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .get_result::<i64>(c)
            .await)
    }
    run(app).await.unwrap()
}

/// Moves a refresh token's rotation time `secs` seconds into the past, standing in for waiting.
pub async fn backdate_rotation(app: &TestApp, refresh_token: &str, secs: i64) {
    let hash = refresh::hash(refresh_token);
    async fn run(app: &TestApp, hash: &str, secs: i64) -> Result<usize, DbError> {
        let row = refresh_tokens::table.find(hash);
        let rotated: Option<NaiveDateTime> =
            user_api::with_conn!(app.state.dependencies.database(), |c| row
                .select(refresh_tokens::rotated_at)
                .first(c)
                .await)?;
        let rotated = rotated.expect("the token has been rotated");
        let query = diesel::update(refresh_tokens::table.find(hash))
            .set(refresh_tokens::rotated_at.eq(rotated - chrono::Duration::seconds(secs)));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, &hash, secs).await.unwrap(), 1);
}

/// Makes a refresh token expired, standing in for waiting out its lifetime.
pub async fn expire_refresh_token(app: &TestApp, refresh_token: &str) {
    let hash = refresh::hash(refresh_token);
    async fn run(app: &TestApp, hash: &str) -> Result<usize, DbError> {
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        let query = diesel::update(refresh_tokens::table.find(hash))
            .set(refresh_tokens::expires_at.eq(past));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, &hash).await.unwrap(), 1);
}

/// A refresh token's stored lifetime, in seconds.
pub async fn refresh_lifetime(app: &TestApp, refresh_token: &str) -> i64 {
    let hash = refresh::hash(refresh_token);
    async fn run(app: &TestApp, hash: &str) -> Result<(NaiveDateTime, NaiveDateTime), DbError> {
        let query = refresh_tokens::table
            .find(hash)
            .select((refresh_tokens::created_at, refresh_tokens::expires_at));
        user_api::with_conn!(app.state.dependencies.database(), |c| query.first(c).await)
    }
    let (created, expires) = run(app, &hash).await.unwrap();
    (expires - created).num_seconds()
}
