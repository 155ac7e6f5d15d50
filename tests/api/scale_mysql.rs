//! Scale-out on MySQL: read replicas (`DATABASE_REPLICA_URLS`) on a real primary/replica pair
//! (`TEST_DATABASE_PRIMARY_URL`, `TEST_DATABASE_REPLICA_URLS`; `.ci/cluster/mariadb` starts
//! one). Reads of other users go to a replica that is up and caught up; the caller's own
//! account and every read of a request that writes go to the primary; a replica that is down,
//! behind or the primary itself is skipped, and one that recovers is used again.
//!
//! A test tells where a read ran by changing a user's name on the replica alone (kept out of
//! its binary log): the replica's copy then says `bob_on_replica`, the primary's `bob`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::replicas::{self, Proxy};
use crate::support::{Backend, PASSWORD, SignIn, TestApp, backend_tests, error_code};

const USER: &str = "query($id: ID!) { user(id: $id) { username } }";
const USERS: &str = "{ users(first: 10) { edges { node { id username } } } }";
const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on User { username } } }";
const ON_REPLICA: &str = "bob_on_replica";

/// The test's database name.
fn database(app: &TestApp) -> String {
    match &app.state.config.database.url {
        user_api::config::DatabaseUrl::Mysql(url) => url.rsplit('/').next().unwrap().to_owned(),
        other => panic!("not MySQL: {other:?}"),
    }
}

/// Registers alice and bob, waits until bob has reached the replica, then renames him there
/// alone.
async fn alice_and_bob_renamed_on_the_replica(app: &TestApp) -> (SignIn, SignIn) {
    let alice = app.register("alice", PASSWORD).await;
    let bob = app.register("bob", PASSWORD).await;
    let db = database(app);
    replicas::wait_for_row(&format!(
        "SELECT id FROM `{db}`.users WHERE id = '{}'",
        bob.user_id
    ))
    .await;
    replicas::on_replica(&[format!(
        "UPDATE `{db}`.users SET username = '{ON_REPLICA}', username_lower = '{ON_REPLICA}' \
         WHERE id = '{}'",
        bob.user_id
    )])
    .await;
    (alice, bob)
}

/// `/readyz`'s state of the one replica.
async fn replica_state(app: &TestApp) -> Value {
    let body: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["database_replicas"][0].clone()
}

/// Waits until `/readyz` reports the replica in `state`; answers the report.
async fn replica_reaches(app: &TestApp, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = replica_state(app).await;
        if last["state"] == state {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica did not become {state} within 15 s: {last}");
}

/// Bob's name as alice reads it with `user(id:)`, which must not fail.
async fn bobs_name(app: &TestApp, alice: &SignIn, bob: &SignIn) -> String {
    let body = app
        .gql(USER, json!({"id": bob.user_id}), Some(&alice.access))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["user"]["username"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until alice reads bob's name as `name`.
async fn bobs_name_becomes(app: &TestApp, alice: &SignIn, bob: &SignIn, name: &str) {
    for _ in 0..150 {
        if bobs_name(app, alice, bob).await == name {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("bob's name did not read {name} within 15 s");
}

/// The value of `db_lagging_reads_total{target="…"}`.
async fn lagging_reads(app: &TestApp, target: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("db_lagging_reads_total{{target=\"{target}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.parse().ok())
        .unwrap_or(0.0)
}

backend_tests! {
    /// Other users are read from the replica: `user`, `nodes`, `users` and REST's
    /// `GET /users/{id}` and `GET /users`. One's own account is read from the primary, found
    /// by id, by name or in a list; so is everything a request that writes reads.
    #[only(mysql_redis)]
    async fn other_users_are_read_from_a_replica_and_ones_own_from_the_primary(backend: Backend) {
        if !replicas::available() {
            return;
        }
        let _turn = replicas::exclusive().await;
        let app = TestApp::builder()
            .read_replicas(replicas::servers())
            .graphql_max_batch(2)
            .spawn(backend)
            .await;
        let (alice, bob) = alice_and_bob_renamed_on_the_replica(&app).await;
        let ready = replica_reaches(&app, "ok").await;
        assert!(ready["lag_seconds"].as_f64().unwrap() <= 5.0, "{ready}");
        assert!(!ready["replica"].as_str().unwrap().contains('@'), "no credentials: {ready}");

        // Alice reads bob from the replica, whichever way she asks.
        assert_eq!(bobs_name(&app, &alice, &bob).await, ON_REPLICA);
        let body = app.gql(NODES, json!({"ids": [bob.user_id]}), Some(&alice.access)).await;
        assert_eq!(body["data"]["nodes"][0]["username"], ON_REPLICA, "{body}");
        let body = app.gql(USERS, json!({}), Some(&alice.access)).await;
        let names: Vec<&str> = body["data"]["users"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| e["node"]["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alice", ON_REPLICA], "{body}");
        let rest: Value = app
            .client
            .get(app.url(&format!("/users/{}", bob.user_id)))
            .bearer_auth(&alice.access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rest["username"], ON_REPLICA, "{rest}");
        let rest = app
            .client
            .get(app.url("/users"))
            .bearer_auth(&alice.access)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(rest.contains(ON_REPLICA), "{rest}");

        // Bob reads himself from the primary: `me`, by id, by name, in a list, in `nodes`.
        let body = app.gql("{ me { username } }", json!({}), Some(&bob.access)).await;
        assert_eq!(body["data"]["me"]["username"], "bob", "{body}");
        let body = app.gql(USER, json!({"id": bob.user_id}), Some(&bob.access)).await;
        assert_eq!(body["data"]["user"]["username"], "bob", "{body}");
        let body = app
            .gql("{ user(username: \"BOB\") { username } }", json!({}), Some(&bob.access))
            .await;
        assert_eq!(body["data"]["user"]["username"], "bob", "{body}");
        let body = app.gql(USERS, json!({}), Some(&bob.access)).await;
        assert_eq!(body["data"]["users"]["edges"][1]["node"]["username"], "bob", "{body}");
        let body = app.gql(NODES, json!({"ids": [bob.user_id]}), Some(&bob.access)).await;
        assert_eq!(body["data"]["nodes"][0]["username"], "bob", "{body}");

        // A request that writes reads from the primary, in the same document or the same batch.
        let write_then_read = "mutation { updateMe(input: {email: \"alice2@example.com\"}) { id } }";
        let batch = json!([
            {"query": write_then_read},
            {"query": USER, "variables": {"id": bob.user_id}},
        ]);
        let bearer = format!("Bearer {}", alice.access);
        let response = app.post_graphql(&batch, &[("authorization", &bearer)]).await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body[1]["data"]["user"]["username"], "bob", "{body}");

        let on_replica = lagging_reads(&app, "replica").await;
        assert!(on_replica >= 5.0, "reads counted on the replica: {on_replica}");
    }

    /// A replica that goes down is skipped at once (the read that found it down runs again on
    /// the primary, without an error), reported down in `/readyz`, and used again once it is
    /// back.
    #[only(mysql_redis)]
    async fn a_replica_that_goes_down_is_skipped_until_it_returns(backend: Backend) {
        if !replicas::available() {
            return;
        }
        let _turn = replicas::exclusive().await;
        let proxy = Proxy::before_replica().await;
        let app = TestApp::builder().read_replicas(vec![proxy.url.clone()]).spawn(backend).await;
        let (alice, bob) = alice_and_bob_renamed_on_the_replica(&app).await;
        replica_reaches(&app, "ok").await;
        bobs_name_becomes(&app, &alice, &bob, ON_REPLICA).await;

        proxy.set_open(false).await;
        for _ in 0..5 {
            assert_eq!(bobs_name(&app, &alice, &bob).await, "bob");
        }
        let down = replica_reaches(&app, "down").await;
        assert!(!down["error"].as_str().unwrap_or_default().is_empty(), "{down}");
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "a replica down leaves the server ready");
        let body = app.gql("{ me { username } }", json!({}), Some(&bob.access)).await;
        assert!(error_code(&body).is_none(), "{body}");

        proxy.set_open(true).await;
        replica_reaches(&app, "ok").await;
        bobs_name_becomes(&app, &alice, &bob, ON_REPLICA).await;
    }

    /// A replica further behind than `REPLICA_MAX_LAG` (its replication stopped) is skipped,
    /// and used again once it has caught up.
    #[only(mysql_redis)]
    async fn a_replica_further_behind_than_the_max_lag_is_skipped(backend: Backend) {
        if !replicas::available() {
            return;
        }
        let _turn = replicas::exclusive().await;
        let app = TestApp::builder()
            .read_replicas(replicas::servers())
            .replica_max_lag(Duration::from_secs(1))
            .spawn(backend)
            .await;
        let (alice, bob) = alice_and_bob_renamed_on_the_replica(&app).await;
        replica_reaches(&app, "ok").await;
        bobs_name_becomes(&app, &alice, &bob, ON_REPLICA).await;

        replicas::replicate(false).await;
        let lagging = replica_reaches(&app, "lagging").await;
        // Restarted before asserting, so that a failure leaves the replica following.
        let behind = bobs_name(&app, &alice, &bob).await;
        replicas::replicate(true).await;
        assert!(lagging["lag_seconds"].as_f64().unwrap() > 1.0, "{lagging}");
        assert_eq!(behind, "bob", "a lagging replica is not read");

        replica_reaches(&app, "ok").await;
        bobs_name_becomes(&app, &alice, &bob, ON_REPLICA).await;
    }

    /// A "replica" URL that reaches the primary under another address is found out by the
    /// first check and never read from.
    #[only(mysql_redis)]
    async fn a_replica_url_that_reaches_the_primary_is_never_used(backend: Backend) {
        if !replicas::available() {
            return;
        }
        let _turn = replicas::exclusive().await;
        let primary = replicas::primary().unwrap();
        let proxy = Proxy::before(&primary).await;
        let app = TestApp::builder().read_replicas(vec![proxy.url.clone()]).spawn(backend).await;
        let report = replica_reaches(&app, "not_a_replica").await;
        assert!(report["reason"].as_str().unwrap().contains("DATABASE_URL"), "{report}");
        let alice = app.register("alice", PASSWORD).await;
        let bob = app.register("bob", PASSWORD).await;
        assert_eq!(bobs_name(&app, &alice, &bob).await, "bob");
        assert_eq!(lagging_reads(&app, "replica").await, 0.0);
        assert!(lagging_reads(&app, "primary").await >= 1.0);
    }
}
