//! Scale-out on Redis: a Redis Cluster (the `mysql_cluster` backend runs the whole suite on
//! one), and revocations that a Redis failover cannot undo, because they reach a replica before
//! they are acknowledged (`REDIS_REVOCATION_REPLICAS`, Redis `WAIT`).

use serde_json::json;

use crate::support::{Backend, PASSWORD, TestApp, backend_tests, error_code};

const LOGOUT: &str = "mutation { logout }";
const LOGOUT_ALL: &str = "mutation { logoutAll }";
const ME: &str = "{ me { id } }";

backend_tests! {
    /// A cluster none of whose nodes answers: the server starts, refuses what needs sessions
    /// with 503, and `/readyz` says the session store is down.
    #[only(sqlite)]
    async fn an_unreachable_cluster_leaves_the_server_up_and_not_ready(backend: Backend) {
        let app = TestApp::builder().unreachable_redis_cluster().spawn(backend).await;
        let body = app.register_body("alice", "alice@example.com", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("SERVICE_UNAVAILABLE"), "{body}");
        let response = app.client.get(app.url("/readyz")).send().await.expect("request");
        assert_eq!(response.status(), 503);
        let body: serde_json::Value = response.json().await.expect("JSON body");
        assert_eq!(body["sessions"], "down", "{body}");
        assert_eq!(body["database"], "ok", "{body}");
        assert_eq!(body["redis_nodes"], "unknown: no node answered", "{body}");
    }

    /// Revocations wait for `REDIS_REVOCATION_REPLICAS` replicas: as many as Redis has, and
    /// they are acknowledged and hold; more than it has, and they are answered 503 (the writes
    /// stand on the master, so the client's retry is safe).
    #[only(mysql_redis, mysql_cluster)]
    async fn revocations_wait_for_their_replicas(backend: Backend) {
        // The test Redis has no replica; each master of the test cluster has one.
        let replicas = u32::from(backend == Backend::MysqlCluster);
        let app = TestApp::builder().redis_revocation_replicas(replicas).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let phone = app.login("alice", PASSWORD).await;
        let body = app.gql(LOGOUT, json!({}), Some(&phone.access)).await;
        assert_eq!(body["data"]["logout"], true, "{body}");
        let body = app.gql(ME, json!({}), Some(&phone.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");

        let strict = TestApp::builder()
            .replica_of(&app)
            .redis_revocation_replicas(replicas + 1)
            .spawn(backend)
            .await;
        let tablet = strict.login("alice", PASSWORD).await;
        for (query, token) in [(LOGOUT, &tablet.access), (LOGOUT_ALL, &alice.access)] {
            let body = strict.gql(query, json!({}), Some(token)).await;
            assert_eq!(error_code(&body).as_deref(), Some("SERVICE_UNAVAILABLE"), "{query}: {body}");
        }
    }

    /// On a Redis Cluster, one account's keys share a slot (its hash tag), so each multi-key
    /// command and transaction runs on one node; and the default asks one replica to confirm
    /// each revocation.
    #[only(mysql_cluster)]
    async fn a_cluster_keeps_each_accounts_keys_in_one_slot(app: TestApp) {
        assert_eq!(app.state.config.redis.revocation_replicas(), 1);
        // /readyz lists every node of the cluster: 3 masters, 3 replicas, all up.
        let ready: serde_json::Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
        let nodes = ready["redis_nodes"].as_array().unwrap_or_else(|| panic!("{ready}"));
        let count = |role: &str| nodes.iter().filter(|n| n["role"] == role && n["state"] == "ok").count();
        assert_eq!((count("master"), count("replica")), (3, 3), "{ready}");
        let alice = app.register("alice", PASSWORD).await;
        for _ in 0..3 {
            app.login("alice", PASSWORD).await;
        }
        let body = app.gql("{ sessions { id } }", json!({}), Some(&alice.access)).await;
        assert_eq!(body["data"]["sessions"].as_array().map(Vec::len), Some(4), "{body}");
        let mut conn = crate::support::redis_connection(app.state.config.redis.url.as_deref().unwrap())
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", app.state.config.redis.key_prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        let slots: std::collections::BTreeSet<i64> = {
            let mut slots = std::collections::BTreeSet::new();
            for key in keys.iter().filter(|k| k.contains(&alice.user_id)) {
                slots.insert(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await.unwrap());
            }
            slots
        };
        assert_eq!(slots.len(), 1, "{keys:?} in slots {slots:?}");
        assert!(keys.iter().filter(|k| k.contains(&alice.user_id)).count() >= 5, "{keys:?}");
        let body = app.gql(LOGOUT_ALL, json!({}), Some(&alice.access)).await;
        assert!(body.get("errors").is_none(), "{body}");
        let body = app.gql(ME, json!({}), Some(&alice.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    }
}
