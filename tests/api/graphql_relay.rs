//! Relay: the `Node` interface with `node(id:)` and `nodes(ids:)` (the visibility of `user`,
//! at most 100 ids, nulls where nothing is), and `UserConnection.totalCount` for every filter,
//! exact or at most a few seconds behind.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::db::{insert_user, make_admin};
use crate::support::{PASSWORD, TestApp, backend_tests, error_code, error_field};

const NODE: &str =
    "query($id: ID!) { node(id: $id) { __typename id ... on User { username email } } }";
const NODES: &str =
    "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { username email } } }";
const TOTAL: &str = "query($filter: UserFilter, $first: Int, $after: String) { \
     users(filter: $filter, first: $first, after: $after) { totalCount pageInfo { endCursor } } }";

async fn node(app: &TestApp, id: &str, token: Option<&str>) -> Value {
    app.gql(NODE, json!({"id": id}), token).await
}

async fn total(app: &TestApp, token: &str, filter: Value) -> Result<i64, String> {
    let body = app.gql(TOTAL, json!({"filter": filter}), Some(token)).await;
    match error_code(&body) {
        Some(code) => Err(code),
        None => Ok(body["data"]["users"]["totalCount"].as_i64().unwrap()),
    }
}

backend_tests! {
    /// `node` finds a user by id as `user(id:)` does: another user's email hidden, one's own
    /// shown, null for an unknown or malformed id; it needs a token.
    async fn node_fetches_a_user_as_user_does(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let bob = app.register("bob", PASSWORD).await;
        let other = node(&app, &alice.user_id, Some(&bob.access)).await;
        assert_eq!(other["data"]["node"]["__typename"], "User", "{other}");
        assert_eq!(other["data"]["node"]["id"], alice.user_id.as_str());
        assert_eq!(other["data"]["node"]["username"], "alice");
        assert_eq!(other["data"]["node"]["email"], Value::Null);
        let own = node(&app, &bob.user_id, Some(&bob.access)).await;
        assert_eq!(own["data"]["node"]["email"], "bob@example.com", "{own}");
        for missing in ["01900000-0000-7000-8000-000000000000", "not-an-id", ""] {
            let body = node(&app, missing, Some(&bob.access)).await;
            assert!(body.get("errors").is_none(), "{body}");
            assert_eq!(body["data"]["node"], Value::Null, "{missing}");
        }
        let anonymous = node(&app, &alice.user_id, None).await;
        assert_eq!(error_code(&anonymous).as_deref(), Some("UNAUTHENTICATED"), "{anonymous}");
        // The schema says what implements Node.
        let schema = app
            .gql(r#"{ __type(name: "Node") { kind possibleTypes { name } } }"#, json!({}), None)
            .await;
        assert_eq!(schema["data"]["__type"]["kind"], "INTERFACE", "{schema}");
        assert_eq!(schema["data"]["__type"]["possibleTypes"], json!([{"name": "User"}]));
    }

    /// `nodes` answers in the order asked, with null for what is not there (a repeated id is
    /// answered each time), and refuses more than 100 ids.
    async fn nodes_answer_in_order_with_nulls_and_at_most_100(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let bob = app.register("bob", PASSWORD).await;
        let ids = json!([bob.user_id, "01900000-0000-7000-8000-000000000000", "bad id",
                         alice.user_id, bob.user_id]);
        let body = app.gql(NODES, json!({"ids": ids}), Some(&alice.access)).await;
        assert!(body.get("errors").is_none(), "{body}");
        let nodes = body["data"]["nodes"].as_array().unwrap();
        let names: Vec<Value> = nodes.iter().map(|n| n["username"].clone()).collect();
        assert_eq!(names, [json!("bob"), Value::Null, Value::Null, json!("alice"), json!("bob")]);
        assert_eq!(nodes[3]["email"], "alice@example.com");
        assert_eq!(nodes[0]["email"], Value::Null);
        let empty = app.gql(NODES, json!({"ids": []}), Some(&alice.access)).await;
        assert_eq!(empty["data"]["nodes"], json!([]), "{empty}");
        let hundred: Vec<&str> = std::iter::repeat_n(alice.user_id.as_str(), 100).collect();
        let body = app.gql(NODES, json!({"ids": hundred}), Some(&alice.access)).await;
        assert_eq!(body["data"]["nodes"].as_array().map(Vec::len), Some(100), "{body}");
        let too_many: Vec<&str> = std::iter::repeat_n(alice.user_id.as_str(), 101).collect();
        let body = app.gql(NODES, json!({"ids": too_many}), Some(&alice.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(error_field(&body).as_deref(), Some("ids"), "{body}");
    }

    /// `totalCount` counts every page of the list together, for each filter, with the
    /// filter's own rules (an admin-only filter is FORBIDDEN to others), whatever the page.
    async fn total_count_counts_what_each_filter_keeps(app: TestApp) {
        let admin = app.register("root", PASSWORD).await;
        make_admin(&app, &admin.user_id).await;
        let plain = app.register("plain", PASSWORD).await;
        for i in 0..7 {
            insert_user(&app, &format!("Anna{i}"), &format!("anna{i}@a.example"), "user", i < 2).await;
        }
        for i in 0..4 {
            insert_user(&app, &format!("bo{i}"), &format!("bo{i}@b.example"), "admin", false).await;
        }
        let token = &admin.access;
        assert_eq!(total(&app, token, json!(null)).await, Ok(13));
        assert_eq!(total(&app, token, json!({"usernamePrefix": "aNN"})).await, Ok(7));
        assert_eq!(total(&app, token, json!({"usernamePrefix": "zz"})).await, Ok(0));
        assert_eq!(total(&app, token, json!({"emailPrefix": "BO"})).await, Ok(4));
        assert_eq!(total(&app, token, json!({"role": "ADMIN"})).await, Ok(5));
        assert_eq!(total(&app, token, json!({"disabled": true})).await, Ok(2));
        assert_eq!(
            total(&app, token, json!({"usernamePrefix": "anna", "disabled": false})).await,
            Ok(5)
        );
        assert_eq!(total(&app, &plain.access, json!({"role": "USER"})).await, Ok(8));
        assert_eq!(
            total(&app, &plain.access, json!({"disabled": true})).await,
            Err("FORBIDDEN".to_owned())
        );
        // The same total on a later page.
        let first = app
            .gql(TOTAL, json!({"filter": {"usernamePrefix": "anna"}, "first": 3}), Some(token))
            .await;
        let cursor = first["data"]["users"]["pageInfo"]["endCursor"].clone();
        let second = app
            .gql(TOTAL, json!({"filter": {"usernamePrefix": "anna"}, "first": 3, "after": cursor}),
                 Some(token))
            .await;
        assert_eq!(second["data"]["users"]["totalCount"], 7, "{second}");
    }

    /// A total follows new users within a few seconds. Once its count is older than five
    /// seconds, the kept count is still answered (at once) while one recount runs beside the
    /// request; the next answers have the new count.
    async fn total_count_answers_the_kept_count_while_it_recounts(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        assert_eq!(total(&app, &alice.access, json!(null)).await, Ok(1));
        let counted = std::time::Instant::now();
        insert_user(&app, "later", "later@example.com", "user", false).await;
        assert_eq!(total(&app, &alice.access, json!(null)).await, Ok(1), "kept for 5 s");
        tokio::time::sleep(Duration::from_millis(5_100).saturating_sub(counted.elapsed())).await;
        assert_eq!(
            total(&app, &alice.access, json!(null)).await,
            Ok(1),
            "the stale count answers while the recount runs"
        );
        let mut seen = 1;
        for _ in 0..100 {
            seen = total(&app, &alice.access, json!(null)).await.unwrap();
            if seen == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(seen, 2, "the total never caught up");
    }
}
