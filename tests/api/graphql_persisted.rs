//! Automatic persisted queries (Apollo's protocol), by POST and by GET: an unknown hash, a hash
//! that is not its document's, a document kept and then run by its hash alone, and documents
//! over a limit or against a rule (a mutation by GET), which a hash does not let through.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Backend, PASSWORD, TestApp, backend_tests, error_code, per_hour};

const ME: &str = "{ me { id username } }";

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

fn extension(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// POSTs `body` with `token`; the status and the JSON answer.
async fn post(app: &TestApp, body: Value, token: Option<&str>) -> (u16, Value) {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|v| ("authorization", v.as_str()))
        .collect();
    let response = app.post_graphql(&body, &headers).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// GETs `/graphql` with the hash alone (and `variables`, if any) in the query string.
async fn get_by_hash(app: &TestApp, hash: &str, token: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("extensions", extension(hash).to_string())])
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn assert_not_found(status: u16, body: &Value) {
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        error_code(body).as_deref(),
        Some("PERSISTED_QUERY_NOT_FOUND"),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["message"], "PersistedQueryNotFound",
        "{body}"
    );
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
}

backend_tests! {
    /// The protocol's round: an unknown hash is not found; the document sent with its hash
    /// runs and is kept; then the hash alone runs it, by POST and by GET.
    async fn a_document_is_kept_then_run_by_its_hash(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let hash = sha256(ME);
        let (status, body) = post(&app, json!({"extensions": extension(&hash)}), Some(&alice.access)).await;
        assert_not_found(status, &body);
        let (status, body) = get_by_hash(&app, &hash, &alice.access).await;
        assert_not_found(status, &body);

        let (status, body) = post(&app, json!({"query": ME, "extensions": extension(&hash)}),
                                  Some(&alice.access)).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["me"]["username"], "alice", "{body}");

        let (status, body) = post(&app, json!({"extensions": extension(&hash)}), Some(&alice.access)).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["me"]["username"], "alice", "{body}");
        let (status, body) = get_by_hash(&app, &hash.to_uppercase(), &alice.access).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["me"]["id"], alice.user_id.as_str(), "{body}");
        // A kept document is run with the caller's own token, like any.
        let bob = app.register("bob", PASSWORD).await;
        let (_, body) = get_by_hash(&app, &hash, &bob.access).await;
        assert_eq!(body["data"]["me"]["username"], "bob", "{body}");
    }

    /// A document over 8 KB sent with its hash runs but is not kept: its hash alone stays
    /// unknown, so that registrations cannot fill the store with large documents.
    async fn a_large_document_runs_but_is_not_kept(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let large = format!("{ME} #{}", "x".repeat(9 * 1024));
        let hash = sha256(&large);
        let (status, body) = post(&app, json!({"query": large, "extensions": extension(&hash)}),
                                  Some(&alice.access)).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["me"]["username"], "alice", "{body}");
        let (status, body) = post(&app, json!({"extensions": extension(&hash)}), Some(&alice.access)).await;
        assert_not_found(status, &body);
    }

    /// In a batch, an unknown hash is answered in its entry's place and the other entries run:
    /// a batching client's persisted-query link resends that one operation with its document.
    async fn an_unknown_hash_in_a_batch_is_answered_in_its_place(backend: Backend) {
        let app = TestApp::builder().graphql_max_batch(3).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let hash = sha256(ME);
        let change = json!({"query": "mutation { updateMe(input: {email: \"new@example.com\"}) { email } }"});
        let batch = json!([change, {"extensions": extension(&hash)}, {"query": "{ me { email } }"}]);
        let (status, body) = post(&app, batch, Some(&alice.access)).await;
        assert_eq!(status, 200, "{body}");
        let answers = body.as_array().expect("a batch is answered with an array");
        assert_eq!(answers.len(), 3, "{body}");
        assert_eq!(answers[0]["data"]["updateMe"]["email"], "new@example.com", "{body}");
        assert_not_found(status, &answers[1]);
        assert_eq!(answers[2]["data"]["me"]["email"], "new@example.com", "in order: {body}");
        // The resend keeps it; then the hash alone runs, in a batch as alone.
        let (_, body) = post(&app, json!([{"query": ME, "extensions": extension(&hash)}]), Some(&alice.access)).await;
        assert_eq!(body[0]["data"]["me"]["username"], "alice", "{body}");
        let batch = json!([{"extensions": extension(&hash)}, {"extensions": extension(&hash)}]);
        let (_, body) = post(&app, batch, Some(&alice.access)).await;
        assert_eq!(body[1]["data"]["me"]["username"], "alice", "{body}");
    }

    /// An address may have only so many new documents kept (`RATE_LIMIT_PERSISTED_QUERIES_PER_IP`):
    /// past it a document still runs, but its hash alone stays unknown. Sending a document
    /// already kept again is not a new one.
    async fn an_address_has_only_so_many_documents_kept(backend: Backend) {
        let app = TestApp::builder().persisted_queries_per_ip(per_hour(2)).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let documents = ["{ me { id } }", "{ me { username } }", "{ me { id username } }"];
        for (n, document) in documents.iter().enumerate() {
            let (status, body) = post(&app, json!({"query": document, "extensions": extension(&sha256(document))}),
                                      Some(&alice.access)).await;
            assert_eq!(status, 200, "{body}");
            assert!(body["data"]["me"].is_object(), "{document} ran: {body}");
            if n == 0 {
                // Again: known already, so not counted.
                let (_, body) = post(&app, json!({"query": document, "extensions": extension(&sha256(document))}),
                                     Some(&alice.access)).await;
                assert!(body.get("errors").is_none(), "{body}");
            }
        }
        for (document, kept) in documents.iter().zip([true, true, false]) {
            let (status, body) = get_by_hash(&app, &sha256(document), &alice.access).await;
            if kept {
                assert_eq!(status, 200, "{body}");
                assert!(body["data"]["me"].is_object(), "{document}: {body}");
            } else {
                assert_not_found(status, &body);
            }
        }
    }

    /// A hash that is not its document's SHA-256 is BAD_USER_INPUT, runs nothing and keeps
    /// nothing; so are a malformed extension and another version.
    async fn a_mismatching_hash_is_refused_and_not_kept(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let other = sha256("{ me { email } }");
        let (status, body) = post(&app, json!({"query": ME, "extensions": extension(&other)}),
                                  Some(&alice.access)).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
        let (status, body) = post(&app, json!({"extensions": extension(&other)}), Some(&alice.access)).await;
        assert_not_found(status, &body);
        for bad in [
            json!({"persistedQuery": {"version": 2, "sha256Hash": sha256(ME)}}),
            json!({"persistedQuery": {"version": 1, "sha256Hash": "not hex"}}),
            json!({"persistedQuery": "yes"}),
        ] {
            let (_, body) = post(&app, json!({"extensions": bad}), Some(&alice.access)).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        }
    }

    /// A persisted document goes through every limit and rule: one over the depth limit is
    /// refused when sent with its hash and is not kept; a kept mutation is refused by GET.
    async fn persisted_documents_meet_every_limit(backend: Backend) {
        let app = TestApp::builder().graphql_max_depth(3).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let deep = "{ users { edges { node { id } } } }";
        let hash = sha256(deep);
        let (_, body) = post(&app, json!({"query": deep, "extensions": extension(&hash)}),
                             Some(&alice.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
        let (status, body) = get_by_hash(&app, &hash, &alice.access).await;
        assert_not_found(status, &body);

        // A kept mutation is still refused by GET. (Keeping it runs it: sign out a spare
        // session.)
        let logout = "mutation { logout }";
        let hash = sha256(logout);
        let spare = app.login("alice", PASSWORD).await;
        let (_, body) = post(&app, json!({"query": logout, "extensions": extension(&hash)}),
                             Some(&spare.access)).await;
        assert_eq!(body["data"]["logout"], true, "{body}");
        let (status, body) = get_by_hash(&app, &hash, &alice.access).await;
        assert_eq!(status, 405, "{body}");
        assert!(app.me(&alice.access).await.is_ok(), "the GET signed alice out");
    }

    /// With Redis, a document kept through one server is found through another that shares
    /// its Redis key prefix, as replicas do.
    #[only(mysql_redis, mysql_cluster)]
    async fn replicas_share_kept_documents(backend: Backend) {
        let first = TestApp::spawn(backend).await;
        let second = TestApp::builder().sharing_redis_with(&first).spawn(backend).await;
        let alice = first.register("alice", PASSWORD).await;
        let hash = sha256(ME);
        post(&first, json!({"query": ME, "extensions": extension(&hash)}), Some(&alice.access)).await;
        let bob = second.register("bob", PASSWORD).await;
        let (status, body) = get_by_hash(&second, &hash, &bob.access).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["me"]["username"], "bob", "{body}");
        // Without the shared prefix, a server has not seen it.
        let third = TestApp::spawn(backend).await;
        let carol = third.register("carol", PASSWORD).await;
        let (status, body) = get_by_hash(&third, &hash, &carol.access).await;
        assert_not_found(status, &body);
    }

    /// A document another replica kept is not new: sending it again through this one renews
    /// it without spending the address's allowance (shared by the replicas, here 2).
    #[only(mysql_redis, mysql_cluster)]
    async fn a_document_kept_elsewhere_is_not_counted_again(backend: Backend) {
        let first = TestApp::builder().persisted_queries_per_ip(per_hour(2)).spawn(backend).await;
        let second = TestApp::builder()
            .persisted_queries_per_ip(per_hour(2))
            .sharing_redis_with(&first)
            .spawn(backend)
            .await;
        let alice = first.register("alice", PASSWORD).await;
        let bob = second.register("bob", PASSWORD).await;
        let register = |document: &'static str| json!({"query": document, "extensions": extension(&sha256(document))});
        post(&first, register(ME), Some(&alice.access)).await;
        post(&second, register(ME), Some(&bob.access)).await;
        let other = "{ me { id } }";
        let (_, body) = post(&second, register(other), Some(&bob.access)).await;
        assert!(body["data"]["me"].is_object(), "{body}");
        let (status, body) = get_by_hash(&second, &sha256(other), &bob.access).await;
        assert_eq!(status, 200);
        assert!(body["data"]["me"].is_object(), "kept, as the second new document: {body}");
    }

    /// With Redis down, a hash cannot be looked up: 503, as any outage, and not a
    /// `PersistedQueryNotFound` that would make clients resend documents in vain.
    #[only(mysql_redis)]
    async fn a_lookup_while_redis_is_down_is_503(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        let (status, body) = post(&app, json!({"extensions": extension(&sha256(ME))}), None).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(error_code(&body).as_deref(), Some("SERVICE_UNAVAILABLE"), "{body}");
    }

    /// A document the process has met is answered from its own cache, with no round trip to
    /// Redis: here Redis is down, and the hash it kept still works.
    #[only(mysql_redis, mysql_cluster)]
    async fn a_known_hash_is_answered_from_the_process(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        let query = "{ __typename }";
        let ext = extension(&sha256(query));
        let (status, body) = post(&app, json!({"query": query, "extensions": ext}), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
        let (status, body) = post(&app, json!({"extensions": ext}), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
    }
}
