//! A request dropped in the middle of a query (its client hung up, or a time-out fired) must
//! not put its database connection back in the pool: the unread rest of the answer would be
//! read by the next query on that connection, as an error or as someone else's rows.

use std::time::Duration;

use diesel_async::RunQueryDsl as _;
use user_api::db::DbPool;
use user_api::with_conn;

use crate::support::{Backend, TestApp, backend_tests};

const PASSWORD: &str = "a long enough password";

backend_tests! {
    async fn a_query_abandoned_midway_takes_its_connection_out_of_the_pool(backend: Backend) {
        let app = TestApp::builder().db_pool_size(1).spawn(backend).await;
        let db = app.state.dependencies.database();
        db.ping().await.expect("the database answers");
        assert_eq!(db.state().connections, 1, "{backend:?}");

        // Slow enough to be abandoned while the server is still working on it.
        let slow = match db {
            DbPool::Mysql(_) => "SELECT SLEEP(3)",
            DbPool::Sqlite(_) => {
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) \
                 SELECT count(*) FROM n"
            }
        };
        let abandoned = tokio::time::timeout(Duration::from_millis(100), async {
            with_conn!(db, |c| diesel::sql_query(slow).execute(c).await)
        })
        .await;
        assert!(abandoned.is_err(), "{backend:?}: the query ended too soon");
        assert_eq!(
            db.state().connections,
            0,
            "{backend:?}: the abandoned connection went back into the pool"
        );

        // The next request gets a fresh connection and a right answer.
        let ulla = app.register("ulla", PASSWORD).await;
        assert_eq!(app.me(&ulla.access).await, Ok(ulla.user_id), "{backend:?}");
    }
}
