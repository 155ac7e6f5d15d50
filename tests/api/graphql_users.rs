//! me, user(id | username), users and its pagination, email visibility, and the token every
//! one of them (and every mutation but register and login) needs.

use std::collections::HashSet;

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::support::db::make_admin;
use crate::support::{PASSWORD, SignIn, TestApp, backend_tests, error_code, error_field};

const USER_BY_ID: &str = "query($id: ID!) { user(id: $id) { id username email role } }";
const USER_BY_NAME: &str = "query($u: String!) { user(username: $u) { id username email role } }";
const USERS_PAGE: &str = "query($first: Int, $after: String) { \
    users(first: $first, after: $after) { \
    edges { cursor node { id username email registrationDate } } \
    nodes { id username email registrationDate } \
    pageInfo { hasNextPage endCursor } } }";

/// Registers `count` users named `<prefix><n>` (n from 0), a few at a time; returns their
/// sign-ins in name order.
async fn register_many(app: &TestApp, prefix: &str, count: usize) -> Vec<SignIn> {
    let mut users: Vec<(usize, SignIn)> = futures_util::stream::iter(
        (0..count)
            .map(|n| async move { (n, app.register(&format!("{prefix}{n}"), PASSWORD).await) }),
    )
    .buffer_unordered(4)
    .collect()
    .await;
    users.sort_by_key(|(n, _)| *n);
    users.into_iter().map(|(_, user)| user).collect()
}

/// One page of `users`; asserts it has no errors.
async fn users_page(app: &TestApp, token: &str, first: Option<i64>, after: Option<&str>) -> Value {
    let body = app
        .gql(
            USERS_PAGE,
            json!({"first": first, "after": after}),
            Some(token),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["users"].clone()
}

/// Checks the invariants of one page and returns its node ids.
fn page_ids(page: &Value) -> Vec<String> {
    let edges = page["edges"].as_array().expect("edges");
    let edge_nodes: Vec<&Value> = edges.iter().map(|e| &e["node"]).collect();
    let nodes: Vec<&Value> = page["nodes"].as_array().expect("nodes").iter().collect();
    assert_eq!(nodes, edge_nodes, "nodes equals the edges' nodes");
    let last_cursor = edges
        .last()
        .map(|e| e["cursor"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(
        page["pageInfo"]["endCursor"], last_cursor,
        "endCursor is the last edge's"
    );
    nodes
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

backend_tests! {
    async fn me_returns_the_whole_own_account(app: TestApp) {
        let body = app.register_body("Alice", "Alice@Example.com", PASSWORD).await;
        let token = body["data"]["register"]["accessToken"].as_str().unwrap();
        let registered = &body["data"]["register"]["user"];
        let body = app
            .gql(
                "{ me { id username email role registrationDate } }",
                json!({}),
                Some(token),
            )
            .await;
        assert_eq!(&body["data"]["me"], registered, "{body}");
    }

    async fn user_by_id_or_username_and_email_visibility(app: TestApp) {
        let SignIn { access: alice, user_id: alice_id, .. } = app.register("alice", PASSWORD).await;
        let bob_id = app.register("Bob", PASSWORD).await.user_id;

        let body = app
            .gql(USER_BY_ID, json!({"id": bob_id}), Some(&alice))
            .await;
        let bob = &body["data"]["user"];
        assert_eq!(bob["id"], bob_id.as_str(), "{body}");
        assert_eq!(bob["username"], "Bob");
        assert_eq!(bob["role"], "USER");
        assert!(
            bob["email"].is_null(),
            "another user's email is hidden: {body}"
        );

        for name in ["Bob", "bob", "BOB"] {
            let body = app
                .gql(USER_BY_NAME, json!({"u": name}), Some(&alice))
                .await;
            assert_eq!(
                body["data"]["user"]["id"],
                bob_id.as_str(),
                "{name}: {body}"
            );
            assert!(body["data"]["user"]["email"].is_null());
        }

        let body = app
            .gql(USER_BY_ID, json!({"id": alice_id}), Some(&alice))
            .await;
        assert_eq!(
            body["data"]["user"]["email"], "alice@example.com",
            "own email is visible"
        );
        let body = app
            .gql(USER_BY_NAME, json!({"u": "ALICE"}), Some(&alice))
            .await;
        assert_eq!(body["data"]["user"]["email"], "alice@example.com");

        // No such user: null, not an error.
        for id in [
            uuid::Uuid::now_v7().to_string(),
            "not-a-uuid".into(),
            "".into(),
            "' OR 1=1 --".into(),
        ] {
            let body = app.gql(USER_BY_ID, json!({"id": id}), Some(&alice)).await;
            assert!(body["errors"].is_null(), "{id}: {body}");
            assert!(body["data"]["user"].is_null(), "{id}: {body}");
        }
        for name in [
            "nobody",
            "x",
            "bob%",
            "' OR 1=1 --",
            "ünï",
            "用户",
            "",
            &"b".repeat(40),
        ] {
            let body = app
                .gql(USER_BY_NAME, json!({"u": name}), Some(&alice))
                .await;
            assert!(body["errors"].is_null(), "{name}: {body}");
            assert!(body["data"]["user"].is_null(), "{name}: {body}");
        }
    }

    async fn user_needs_exactly_one_argument(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("alice", PASSWORD).await;
        for (query, vars) in [
            ("{ user { id } }", json!({})),
            (
                "query($id: ID!) { user(id: $id, username: \"alice\") { id } }",
                json!({"id": id}),
            ),
            ("{ user(id: null, username: null) { id } }", json!({})),
        ] {
            let body = app.gql(query, vars, Some(&token)).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{query}: {body}"
            );
            let field = error_field(&body);
            assert!(
                matches!(field.as_deref(), Some("id" | "username")),
                "{query}: {body}"
            );
            assert!(body["data"]["user"].is_null());
        }
    }

    async fn an_admin_sees_every_email(app: TestApp) {
        let SignIn { access: admin, user_id: admin_id, .. } = app.register("root", PASSWORD).await;
        let bob_id = app.register("bob", PASSWORD).await.user_id;
        make_admin(&app, &admin_id).await;

        let body = app.gql("{ me { role } }", json!({}), Some(&admin)).await;
        assert_eq!(body["data"]["me"]["role"], "ADMIN", "{body}");
        let body = app
            .gql(USER_BY_ID, json!({"id": bob_id}), Some(&admin))
            .await;
        assert_eq!(body["data"]["user"]["email"], "bob@example.com", "{body}");
        let page = users_page(&app, &admin, None, None).await;
        for node in page["nodes"].as_array().unwrap() {
            assert!(node["email"].is_string(), "{node}");
        }

        // An admin's own email stays hidden from regular users.
        let bob = app.login("bob", PASSWORD).await.access;
        let body = app
            .gql(USER_BY_ID, json!({"id": admin_id}), Some(&bob))
            .await;
        assert_eq!(body["data"]["user"]["role"], "ADMIN");
        assert!(body["data"]["user"]["email"].is_null(), "{body}");
    }

    async fn users_pages_walk_every_user_once_in_id_order(app: TestApp) {
        let registered = register_many(&app, "user", 25).await;
        let token = &registered[0].access;
        let own_id = &registered[0].user_id;
        let mut expected: Vec<String> =
            registered.iter().map(|user| user.user_id.clone()).collect();
        expected.sort();

        // Default page size: 20.
        let page = users_page(&app, token, None, None).await;
        assert_eq!(page_ids(&page), expected[..20]);
        assert_eq!(page["pageInfo"]["hasNextPage"], true);
        let body = app
            .gql("{ users { nodes { id } } }", json!({}), Some(token))
            .await;
        assert_eq!(
            body["data"]["users"]["nodes"].as_array().map(Vec::len),
            Some(20)
        );

        // Pages of 10: 10, 10, 5.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut sizes = Vec::new();
        loop {
            let page = users_page(&app, token, Some(10), after.as_deref()).await;
            let ids = page_ids(&page);
            sizes.push(ids.len());
            for node in page["nodes"].as_array().unwrap() {
                let visible = node["email"].is_string();
                assert_eq!(
                    visible,
                    node["id"] == own_id.as_str(),
                    "only the own email shows: {node}"
                );
            }
            seen.extend(ids);
            if page["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = Some(
                page["pageInfo"]["endCursor"]
                    .as_str()
                    .expect("endCursor")
                    .to_owned(),
            );
            assert!(sizes.len() < 10, "pagination does not end");
        }
        assert_eq!(sizes, [10, 10, 5]);
        assert_eq!(seen, expected, "every user once, in id order");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);

        // After the last user: an empty page.
        let page = users_page(&app, token, Some(100), None).await;
        let page = users_page(
            &app,
            token,
            Some(5),
            Some(page["pageInfo"]["endCursor"].as_str().unwrap()),
        )
        .await;
        assert_eq!(page_ids(&page), Vec::<String>::new());
        assert_eq!(page["pageInfo"]["hasNextPage"], false);
        assert!(page["pageInfo"]["endCursor"].is_null());

        // A page that ends exactly at the last user says so.
        let page = users_page(&app, token, Some(25), None).await;
        assert_eq!(page_ids(&page).len(), 25);
        assert_eq!(page["pageInfo"]["hasNextPage"], false);
    }

    async fn users_are_listed_in_registration_order(app: TestApp) {
        let mut ids = Vec::new();
        for name in ["zed", "amy", "Max", "bob"] {
            ids.push(app.register(name, PASSWORD).await.user_id);
        }
        let token = app.login("amy", PASSWORD).await.access;
        let page = users_page(&app, &token, None, None).await;
        assert_eq!(page_ids(&page), ids);
        let names: Vec<&str> = page["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["zed", "amy", "Max", "bob"]);
        assert_eq!(page["pageInfo"]["hasNextPage"], false);
    }

    async fn users_arguments_are_validated(app: TestApp) {
        let token = app.register("alice", PASSWORD).await.access;
        for first in [0, -1, 101, 1000] {
            let body = app
                .gql(USERS_PAGE, json!({"first": first}), Some(&token))
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{first}: {body}"
            );
            assert_eq!(
                error_field(&body).as_deref(),
                Some("first"),
                "{first}: {body}"
            );
            assert!(body["data"].is_null(), "{body}");
        }
        for first in [1, 100] {
            users_page(&app, &token, Some(first), None).await;
        }
        let page = users_page(&app, &token, Some(1), None).await;
        let valid = page["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
        for after in [
            "garbage",
            "",
            "bm90IGEgY3Vyc29y",
            &format!("{valid}x"),
            &valid[1..],
        ] {
            let body = app
                .gql(
                    USERS_PAGE,
                    json!({"first": 5, "after": after}),
                    Some(&token),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{after:?}: {body}"
            );
            assert_eq!(
                error_field(&body).as_deref(),
                Some("after"),
                "{after:?}: {body}"
            );
        }
    }

    async fn every_token_protected_operation_needs_a_token(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("alice", PASSWORD).await;
        let operations = [
            ("{ me { id } }", json!({})),
            (
                "query($id: ID!) { user(id: $id) { id } }",
                json!({"id": id}),
            ),
            ("{ user(username: \"alice\") { id } }", json!({})),
            ("{ user { id } }", json!({})),
            ("{ users { nodes { id } } }", json!({})),
            ("{ users(first: 0) { nodes { id } } }", json!({})),
            ("mutation { logout }", json!({})),
            (
                "mutation { updateMe(input: {email: \"new@example.com\"}) { id } }",
                json!({}),
            ),
            ("mutation { updateMe(input: {}) { id } }", json!({})),
            ("mutation { deleteMe }", json!({})),
        ];
        for (query, vars) in &operations {
            let body = app.gql(query, vars.clone(), None).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{query}: {body}"
            );
            assert!(
                body["data"].is_null(),
                "no data without a token: {query}: {body}"
            );
        }
        // None of them did anything: the account and its token are intact.
        assert_eq!(app.me(&token).await, Ok(id));
        let body = app.gql("{ me { email } }", json!({}), Some(&token)).await;
        assert_eq!(body["data"]["me"]["email"], "alice@example.com");
    }
}
