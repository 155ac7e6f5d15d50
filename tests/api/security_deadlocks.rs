//! A MySQL deadlock is resolved by rolling one transaction back; when that one is the
//! server's, the statement runs again instead of answering 503. (MySQL only: SQLite runs one
//! writer at a time and cannot deadlock.)

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection as _, AsyncMysqlConnection, RunQueryDsl as _};
use serde_json::json;

use crate::support::db::database_url;
use crate::support::{SignIn, TestApp, backend_tests, error_code};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many statements of the server update a user's email right now.
async fn email_updates_running(conn: &mut AsyncMysqlConnection) -> i64 {
    sql_query(
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE 'UPDATE `users` SET `email`%'",
    )
    .get_result::<Count>(conn)
    .await
    .unwrap()
    .n
}

backend_tests! {
    /// The server's `UPDATE` of a user's email takes the user's row, then waits for a gap lock
    /// this test holds on the new address; the test then asks for the user's row: a deadlock.
    /// The test's transaction has written many rows, so InnoDB rolls back the server's; the
    /// server runs its statement again once the test commits, and the change succeeds.
    #[only(mysql_redis)]
    async fn a_deadlocked_statement_is_run_again(app: TestApp) {
        let SignIn { access: token, user_id, .. } = app.register("locked", "correct horse").await;
        let url = database_url(&app);
        let mut blocker = AsyncMysqlConnection::establish(&url).await.unwrap();
        let mut watcher = AsyncMysqlConnection::establish(&url).await.unwrap();
        sql_query("BEGIN").execute(&mut blocker).await.unwrap();
        // Weight, so that InnoDB picks the server's statement as the deadlock's victim.
        let rows: Vec<String> = (0..200)
            .map(|i| format!("('heavy-{i}', 'nobody', NOW(6), NOW(6))"))
            .collect();
        sql_query(format!(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES {}",
            rows.join(", ")
        ))
        .execute(&mut blocker)
        .await
        .unwrap();
        // A gap lock where the new address would go.
        sql_query("SELECT id FROM users WHERE email_lower = 'moved@example.com' FOR UPDATE")
            .execute(&mut blocker)
            .await
            .unwrap();

        let update = {
            let app_base = app.base.clone();
            let client = app.client.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let response = client
                    .post(format!("{app_base}/graphql"))
                    .bearer_auth(token)
                    .json(&json!({
                        "query": "mutation { updateMe(input: {email: \"moved@example.com\"}) { email } }"
                    }))
                    .send()
                    .await
                    .unwrap();
                response.json::<serde_json::Value>().await.unwrap()
            })
        };
        // Wait until the server's statement waits for the gap lock.
        let mut waited = Duration::ZERO;
        while email_updates_running(&mut watcher).await == 0 {
            assert!(waited < Duration::from_secs(10), "the update never blocked");
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        // Running, it can only be waiting for the lock; give it a moment to be queued for it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Close the cycle: InnoDB detects it at once and rolls back the lighter transaction.
        sql_query("UPDATE users SET updated_at = NOW(6) WHERE id = ?")
            .bind::<Text, _>(&user_id)
            .execute(&mut blocker)
            .await
            .unwrap();
        sql_query("COMMIT").execute(&mut blocker).await.unwrap();

        let body = update.await.unwrap();
        assert_eq!(error_code(&body), None, "{body}");
        assert_eq!(body["data"]["updateMe"]["email"], "moved@example.com");
        let me = app.gql("{ me { email } }", json!({}), Some(&token)).await;
        assert_eq!(me["data"]["me"]["email"], "moved@example.com", "{me}");
    }
}
