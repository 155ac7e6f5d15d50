//! GraphQL limits: depth, complexity, aliases, batch size, body size and introspection, each
//! configurable, each refused with a 4xx-class answer and a clear error, never a 5xx; and
//! GraphiQL's introspection query fits the defaults.

use serde_json::{Value, json};

use crate::support::{
    Backend, GRAPHQL_RESPONSE, SignIn, TestApp, assert_batch_refused, backend_tests, error_code,
};

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery` with every
/// option on), the deepest and largest a well-behaved client sends.
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                }
              }
            }
          }
        }
      }
    }
  }
}
"#;

/// `{ me { ...F0 } }` where each fragment spreads the next one twice.
fn fragment_bomb(levels: usize) -> String {
    let mut doc = String::from("{ me { ...F0 } }");
    for i in 0..levels {
        doc.push_str(&format!(
            " fragment F{i} on User {{ ...F{} ...F{} }}",
            i + 1,
            i + 1
        ));
    }
    doc.push_str(&format!(" fragment F{levels} on User {{ id }}"));
    doc
}

/// Sends `query` with each Accept type and checks the refusal: a validation failure with a
/// message, 400 with graphql-response+json and 200 with application/json, never data.
async fn assert_refused(app: &TestApp, query: &str, needle: &str) {
    for (accept, status) in [(GRAPHQL_RESPONSE, 400), ("application/json", 200)] {
        let response = app
            .post_graphql(&json!({"query": query}), &[("accept", accept)])
            .await;
        assert_eq!(response.status(), status, "{accept}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.to_lowercase().contains(needle), "{message}");
        assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    }
}

backend_tests! {
    async fn graphiql_introspection_fits_the_default_limits(app: TestApp) {
        let body = app.gql(INTROSPECTION, json!({}), None).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
        let page = app.client.get(app.url("/graphiql")).send().await.unwrap();
        assert_eq!(page.status(), 200);
    }

    /// A ~1 KB document whose fragments each spread the next one twice asks for 2^levels
    /// fields once expanded. It is refused, by POST and by GET, without a token, and without
    /// the server expanding it: a walk that did would take seconds at 25 levels (and hours
    /// at 40), far beyond the generous bound here.
    async fn fragment_bombs_are_refused_at_once(app: TestApp) {
        for levels in [25, 40] {
            let query = fragment_bomb(levels);
            let started = std::time::Instant::now();
            assert_refused(&app, &query, "").await;
            let response = app
                .client
                .get(app.url("/graphql"))
                .query(&[("query", query.as_str())])
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                error_code(&body).as_deref(),
                Some("GRAPHQL_VALIDATION_FAILED"),
                "{body}"
            );
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_secs(1),
                "{levels} levels took {took:?}"
            );
        }
    }

    async fn batches_are_refused_by_default(app: TestApp) {
        let batch = json!([{"query": "{ __typename }"}, {"query": "{ __typename }"}]);
        let response = app.post_graphql(&batch, &[]).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"), "{body}");
    }
}

backend_tests! {
    async fn depth_is_limited(backend: Backend) {
        let app = TestApp::builder().graphql_max_depth(3).spawn(backend).await;
        // Depth 3 runs (and asks for a token).
        let body = app.gql("{ users { nodes { id } } }", json!({}), None).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
        assert_refused(&app, "{ users { edges { node { id } } } }", "deep").await;
    }

    async fn complexity_is_limited(backend: Backend) {
        let app = TestApp::builder().graphql_max_complexity(10).spawn(backend).await;
        let body = app.gql("{ me { id username } }", json!({}), None).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
        assert_refused(
            &app,
            "{ users(first: 100) { nodes { id username email role registrationDate } edges { cursor } pageInfo { hasNextPage endCursor } } }",
            "complex",
        )
        .await;
    }

    async fn aliases_are_limited(backend: Backend) {
        let app = TestApp::builder().graphql_max_aliases(2).spawn(backend).await;
        let body = app
            .gql("{ a: __typename b: __typename }", json!({}), None)
            .await;
        assert_eq!(body["data"], json!({"a": "Query", "b": "Query"}), "{body}");
        assert_refused(
            &app,
            "{ a: __typename b: __typename c: __typename }",
            "alias",
        )
        .await;
        // Aliases in fragments count too.
        assert_refused(
            &app,
            "{ a: __typename ...F } fragment F on Query { b: __typename c: __typename }",
            "alias",
        )
        .await;
    }

    async fn introspection_can_be_switched_off(backend: Backend) {
        let app = TestApp::builder().graphql_introspection(false).spawn(backend).await;
        assert_refused(&app, INTROSPECTION, "introspection").await;
        assert_refused(
            &app,
            r#"{ __type(name: "User") { name } }"#,
            "introspection",
        )
        .await;
        // Validation does not suggest names, which would reveal the schema a guess at a time.
        for typo in [
            "{ usr { id } }",
            "{ me { usernam } }",
            "{ users(frist: 1) { nodes { id } } }",
        ] {
            let body = app.gql(typo, json!({}), None).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("GRAPHQL_VALIDATION_FAILED"),
                "{body}"
            );
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(!message.contains("Did you mean"), "{message}");
        }
        // Ordinary queries still run, `__typename` included.
        let body = app.gql("{ __typename }", json!({}), None).await;
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
        let SignIn { access: token, user_id: id, .. } = app.register("seer", "correct horse").await;
        let body = app
            .gql("{ me { id __typename } }", json!({}), Some(&token))
            .await;
        assert_eq!(body["data"]["me"]["id"], id.as_str(), "{body}");
    }

    async fn batches_run_up_to_the_configured_size(backend: Backend) {
        let app = TestApp::builder().graphql_max_batch(3).spawn(backend).await;
        let SignIn { access: token, user_id: id, .. } =
            app.register("batcher", "correct horse").await;
        let bearer = format!("Bearer {token}");
        let batch = json!([{"query": "{ me { id } }"}, {"query": "{ __typename }"}]);
        let response = app.post_graphql(&batch, &[("authorization", &bearer)]).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!([{"data": {"me": {"id": id}}}, {"data": {"__typename": "Query"}}])
        );
        let entry = json!({"query": "{ __typename }"});
        for (batch, needle) in [
            (json!([entry, entry, entry, entry]), "at most 3"),
            (json!([]), "empty"),
        ] {
            for accept in ["application/json", GRAPHQL_RESPONSE] {
                let response = app.post_graphql(&batch, &[("accept", accept)]).await;
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, 400, "{batch}: {body}");
                assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"), "{body}");
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains(needle),
                    "{body}"
                );
            }
        }
        // Per-document limits hold for every entry: one over the alias limit (default 30)
        // refuses the whole batch, and nothing in it runs.
        let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
        // The answer is still an array, one refusal in each entry's place, as batching
        // clients expect one answer per operation.
        let batch = json!([entry, {"query": format!("{{ {aliases} }}")}]);
        let response = app.post_graphql(&batch, &[]).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_batch_refused(&body, 2, "GRAPHQL_VALIDATION_FAILED");
    }

    async fn bodies_over_the_limit_are_413(backend: Backend) {
        let app = TestApp::builder().max_body_bytes(2048).spawn(backend).await;
        let padding = "x".repeat(3000);
        let body = json!({"query": format!("{{ __typename }} # {padding}")});
        let response = app.post_graphql(&body, &[]).await;
        assert_eq!(response.status(), 413);
        let response = app
            .client
            .post(app.url("/users/login"))
            .json(&json!({"username": "someone", "password": padding}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
    }
}
