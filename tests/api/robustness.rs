//! Inputs that the reliability suites (reliability/: graphql-http's audit, schemathesis) found
//! mishandled, kept here so they stay fixed.

use serde_json::{Value, json};

use crate::support::{SignIn, TestApp, backend_tests, error_code, error_field};

/// POSTs `body` as JSON with `Accept: accept`; returns the status and the JSON body.
async fn post(app: &TestApp, accept: &str, body: Value) -> (u16, Value) {
    let response = app.post_graphql(&body, &[("accept", accept)]).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

backend_tests! {
    async fn request_errors_have_no_data_entry(app: TestApp) {
        for (accept, status) in [("application/graphql-response+json", 400), ("application/json", 200)] {
            let (got, body) = post(&app, accept, json!({"query": "{"})).await;
            assert_eq!(got, status, "{accept}: {body}");
            assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_PARSE_FAILED"));
            assert!(body.get("data").is_none(), "a parse failure has no data entry: {body}");

            let (got, body) = post(&app, accept, json!({"query": "{ nope }"})).await;
            assert_eq!(got, status, "{accept}: {body}");
            assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_VALIDATION_FAILED"));
            assert!(body.get("data").is_none(), "a validation failure has no data entry: {body}");
        }
        // An error during execution still has its data entry (null here: `me` is non-null).
        let (got, body) = post(&app, "application/graphql-response+json", json!({"query": "{ me { id } }"})).await;
        assert_eq!(got, 200);
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        assert!(body.get("data").is_some_and(Value::is_null), "{body}");
    }

    async fn an_int_argument_beyond_32_bits_is_bad_user_input(app: TestApp) {
        let token = app.register("bigfirst", "correct horse").await.access;
        for (query, variables) in [
            ("{ users(first: 30659449305629944) { nodes { id } } }", json!({})),
            ("query($f: Int) { users(first: $f) { nodes { id } } }", json!({"f": 30659449305629944_i64})),
            ("{ ...F } fragment F on Query { users(first: 99999999999) { nodes { id } } }", json!({})),
        ] {
            let body = app.gql(query, variables, Some(&token)).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{query}: {body}");
            assert_eq!(error_field(&body).as_deref(), Some("first"), "{query}: {body}");
        }
    }

    async fn a_username_that_cannot_exist_is_no_user(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } =
            app.register("plain", "correct horse").await;
        for name in ["\u{95}\u{aa}", "é", "abc\u{95}", "x"] {
            let body = app
                .gql("query($n: String) { user(username: $n) { id } }", json!({"n": name}), Some(&token))
                .await;
            assert_eq!(body, json!({"data": {"user": null}}), "{name:?}");
        }
        // The database connection that served those is still good.
        let body = app
            .gql("query($n: String) { user(username: $n) { id } }", json!({"n": "PLAIN"}), Some(&token))
            .await;
        assert_eq!(body["data"]["user"]["id"], id.as_str());
    }
}
