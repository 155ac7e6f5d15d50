//! Prepared statements on MySQL: every statement of a registration, a sign-in, an account
//! change, a refresh and an authenticated read is prepared once per connection and then
//! reused, so a request costs the database no prepare round trip and no parse.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl as _;
use serde_json::json;

use crate::support::{Backend, TestApp, backend_tests};

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
    let token = app.login(username, "correct horse").await.access;
    assert!(app.me(&token).await.is_ok());
    let body = app
        .update_me(
            &token,
            json!({"email": format!("{username}.new@example.com")}),
        )
        .await;
    assert!(
        body["data"]["updateMe"]["email"].is_string(),
        "updateMe failed: {body}"
    );
    let refresh = app.login(username, "correct horse").await.refresh;
    app.refresh(&refresh).await;
}

/// Waits until the delivery worker sent and removed every queued mail, so that its
/// statements (prepared on first use, like any) are not counted as a request's.
async fn outbox_drained(app: &TestApp) {
    use user_api::db::schema::mail_outbox;
    async fn left(app: &TestApp) -> Result<i64, user_api::db::DbError> {
        user_api::with_conn!(app.state.dependencies.database(), |c| {
            diesel::QueryDsl::count(mail_outbox::table)
                .get_result(c)
                .await
        })
    }
    for _ in 0..200 {
        if left(app).await.expect("count the outbox") == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the outbox never drained");
}

backend_tests! {
    /// The second round of the same requests prepares nothing but the status query itself.
    /// diesel alone re-prepares every `INSERT` and `UPDATE` (users, refresh tokens) on each run.
    #[only(mysql_redis)]
    async fn requests_reuse_prepared_statements(backend: Backend) {
        // One connection, so that its session counters see every statement.
        let app = TestApp::builder().db_pool_size(1).spawn(backend).await;
        sign_in_and_read(&app, "first_round").await;
        outbox_drained(&app).await;
        let before = prepared_so_far(&app).await;
        sign_in_and_read(&app, "second_round").await;
        let after = prepared_so_far(&app).await;
        assert_eq!(
            after - before,
            1,
            "statements prepared again during the second round"
        );
    }
}
