//! The GraphQL adapter's own guarantees: a document the server has seen (and cached, and
//! perhaps marked as validated) is still refused whenever it, or the request around it, does
//! not validate; and an argument value that does not coerce to its type is the client's input
//! error, named by its argument, wherever the field is written.

use serde_json::{Value, json};

use crate::support::{Backend, TestApp, backend_tests, error_code, error_field};

const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

/// POSTs `{query, variables, operationName}` as JSON; returns the JSON body (asserting 200, as
/// `application/json` answers every well-formed request).
async fn post(app: &TestApp, query: &str, variables: Value, operation: Option<&str>) -> Value {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/json")
        .json(&json!({"query": query, "variables": variables, "operationName": operation}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.expect("JSON body")
}

/// GETs `/graphql?query=…`; returns the JSON body (asserting 200).
async fn get(app: &TestApp, query: &str) -> Value {
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.expect("JSON body")
}

/// Asserts that `body` is a refusal for validation: that code, and no `data` entry.
fn assert_refused(body: &Value, what: &str) {
    assert_eq!(
        error_code(body).as_deref(),
        Some(VALIDATION_FAILED),
        "{what}: {body}"
    );
    assert!(body.get("data").is_none(), "{what}: {body}");
}

/// Asserts that `body` ran: `{ __typename }`'s answer, no errors.
fn assert_ran(body: &Value, what: &str) {
    assert_eq!(body, &json!({"data": {"__typename": "Query"}}), "{what}");
}

backend_tests! {
    /// The cache remembers documents by their text, and some as validated; none of that lets
    /// an invalid document through, however often it or a valid neighbour was sent.
    async fn an_invalid_document_is_refused_every_time(app: TestApp) {
        let valid = "{ __typename }";
        let invalid = [
            "{ __typename nope }",
            // The valid text again, after and before an invalid part.
            "{ __typename } fragment Unused on Query { __typename }",
            "fragment F on Query { nope } { __typename ...F }",
            // A variable used but not declared: whatever variables come with it.
            "{ users(first: $n) { nodes { id } } }",
        ];
        for round in 0..3 {
            assert_ran(&post(&app, valid, json!({}), None).await, "valid, POST");
            assert_ran(&get(&app, valid).await, "valid, GET");
            for query in invalid {
                let what = format!("round {round}: {query}");
                assert_refused(&post(&app, query, json!({}), None).await, &what);
                assert_refused(&post(&app, query, json!({"n": 5}), None).await, &what);
                assert_refused(&get(&app, query).await, &what);
            }
        }
    }

    /// A document's validity may depend on its variables: each request's are checked, after a
    /// valid request with the same text as before it.
    async fn variables_are_checked_on_every_request(app: TestApp) {
        let token = app.register("varied", "correct horse").await.access;
        let query = "query($n: Int!) { users(first: $n) { nodes { id } } }";
        for round in 0..3 {
            for (variables, valid) in [
                (json!({"n": 5}), true),
                (json!({"n": "five"}), false),
                (json!({"n": 6}), true),
                (json!({"n": [6]}), false),
            ] {
                let body = app.gql(query, variables.clone(), Some(&token)).await;
                let what = format!("round {round}, {variables}");
                if valid {
                    assert!(body["errors"].is_null(), "{what}: {body}");
                } else {
                    assert_refused(&body, &what);
                }
            }
        }
        // A required variable not given is found only as the field runs: the argument's
        // value is missing, which is the client's input too.
        let body = app.gql(query, json!({}), Some(&token)).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(error_field(&body).as_deref(), Some("first"), "{body}");
        // A document that declares none runs whatever variables come with it.
        for variables in [json!({}), json!({"n": "five"}), json!({"x": 1})] {
            assert_ran(&post(&app, "{ __typename }", variables, None).await, "extra variables");
        }
    }

    /// The operation that runs depends on `operationName`: a name that picks none is refused
    /// after the document ran without one, and a document with an invalid operation is refused
    /// whichever operation is named.
    async fn the_operation_name_is_checked_on_every_request(app: TestApp) {
        let query = "query A { __typename }";
        for round in 0..3 {
            assert_ran(&post(&app, query, json!({}), None).await, "no name");
            assert_ran(&post(&app, query, json!({}), Some("A")).await, "A");
            assert_refused(&post(&app, query, json!({}), Some("B")).await, &format!("round {round}: B"));
        }
        let query = "query A { __typename } query B { nope }";
        for name in [Some("A"), Some("A"), Some("B"), None, Some("A")] {
            assert_refused(&post(&app, query, json!({}), name).await, &format!("{name:?}"));
        }
        let query = "query A { __typename } query B { __typename }";
        assert_refused(&post(&app, query, json!({}), None).await, "two operations, no name");
        assert_ran(&post(&app, query, json!({}), Some("B")).await, "B");
        assert_refused(&post(&app, query, json!({}), None).await, "two operations, no name again");
        // The operation named picks which variables are checked.
        let query = "query A($n: Int) { users(first: $n) { nodes { id } } } query B { __typename }";
        for round in 0..3 {
            let what = format!("round {round}: A");
            assert_ran(&post(&app, query, json!({"n": "five"}), Some("B")).await, "B");
            assert_refused(&post(&app, query, json!({"n": "five"}), Some("A")).await, &what);
        }
    }

    /// An `Int` argument beyond 32 bits is the client's input, wherever its field is written:
    /// under an alias, in an inline fragment, in a fragment spread twice, by GET.
    async fn an_argument_that_does_not_coerce_is_named(app: TestApp) {
        let token = app.register("coerced", "correct horse").await.access;
        for query in [
            "{ page: users(first: 4294967296) { nodes { id } } }",
            "{ ... on Query { users(after: \"x\", first: 4294967296) { nodes { id } } } }",
            "{ ...F ...F } fragment F on Query { users(first: 4294967296) { nodes { id } } }",
        ] {
            for round in 0..2 {
                let body = app.gql(query, json!({}), Some(&token)).await;
                assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{round}: {query}: {body}");
                assert_eq!(error_field(&body).as_deref(), Some("first"), "{round}: {query}: {body}");
                assert!(body.get("data").is_some(), "an execution error keeps data: {body}");
            }
        }
    }
}

backend_tests! {
    /// In a batch, each entry is validated on its own: the same text at another position, before
    /// or after an invalid entry, runs, and the invalid entry is refused every time.
    async fn batch_entries_are_validated_each(backend: Backend) {
        let app = TestApp::builder().graphql_max_batch(3).spawn(backend).await;
        let valid = json!({"query": "{ __typename }"});
        let invalid = json!({"query": "{ __typename nope }"});
        for batch in [
            json!([valid, invalid, valid]),
            json!([invalid, valid]),
            json!([valid, valid, invalid]),
            json!([invalid, invalid]),
        ] {
            let response = app
                .client
                .post(app.url("/graphql"))
                .json(&batch)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.expect("JSON body");
            let entries = body.as_array().expect("an array");
            assert_eq!(entries.len(), batch.as_array().map_or(0, Vec::len));
            for (entry, sent) in entries.iter().zip(batch.as_array().into_iter().flatten()) {
                if sent == &valid {
                    assert_ran(entry, &format!("{batch}"));
                } else {
                    assert_refused(entry, &format!("{batch}"));
                }
            }
        }
    }
}
