//! Prepared statements on MySQL: every statement of a registration, a sign-in, an account
//! change, a refresh and an authenticated read is prepared once per connection and then
//! reused, so a request costs the database no prepare round trip and no parse.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl as _;

use crate::common::{Backend, Options, TestApp};

#[derive(QueryableByName)]
struct Status {
    #[diesel(sql_type = Text, column_name = "Value")]
    value: String,
}

/// How many statements the pool's one connection has prepared, this query's own included
/// (`SHOW` goes through diesel's uncached path, so each call prepares once).
async fn prepared_so_far(app: &TestApp) -> u64 {
    async fn query(app: &TestApp) -> Result<Status, user_api::db::DbError> {
        user_api::with_conn!(app.state.dependencies.database(), |c| {
            diesel::sql_query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
                .get_result::<Status>(c)
                .await
        })
    }
    let status = query(app).await.expect("session status");
    status.value.parse().expect("a count")
}

async fn sign_in_and_read(app: &TestApp, username: &str) {
    app.register(username, "correct horse").await;
    let token = app.login(username, "correct horse").await;
    assert!(app.me(&token).await.is_ok());
    let body = app
        .gql(
            "mutation($e: String!) { updateMe(input: {email: $e}) { email } }",
            serde_json::json!({"e": format!("{username}.new@example.com")}),
            Some(&token),
        )
        .await;
    assert!(
        body["data"]["updateMe"]["email"].is_string(),
        "updateMe failed: {body}"
    );
    let body = app
        .gql(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { refreshToken } }",
            serde_json::json!({"u": username, "p": "correct horse"}),
            None,
        )
        .await;
    let refresh = body["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {body}"));
    let body = app
        .gql(
            "mutation($t: String!) { refresh(refreshToken: $t) { accessToken } }",
            serde_json::json!({"t": refresh}),
            None,
        )
        .await;
    assert!(
        body["data"]["refresh"]["accessToken"].is_string(),
        "refresh failed: {body}"
    );
}

/// The second round of the same requests prepares nothing but the status query itself. diesel
/// alone re-prepares every `INSERT` and `UPDATE` (users, refresh tokens) on each run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reuse_prepared_statements_mysql_redis() {
    let options = Options {
        // One connection, so that its session counters see every statement.
        args: vec!["--db-pool-size".into(), "1".into()],
        ..Options::default()
    };
    let Some(app) = TestApp::try_spawn_with(Backend::MysqlRedis, options).await else {
        return;
    };
    sign_in_and_read(&app, "first_round").await;
    let before = prepared_so_far(&app).await;
    sign_in_and_read(&app, "second_round").await;
    let after = prepared_so_far(&app).await;
    assert_eq!(
        after - before,
        1,
        "statements prepared again during the second round"
    );
}
