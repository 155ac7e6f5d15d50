//! GraphQL over HTTP: media types and statuses, GET, `application/graphql` bodies, batches and
//! the body limit.

use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{GRAPHQL_RESPONSE, PASSWORD, SignIn, TestApp, backend_tests, error_code};

const JSON: &str = "application/json";

/// POSTs a JSON body with this `Accept` header.
async fn post_json(app: &TestApp, accept: Option<&str>, body: &Value) -> Response {
    let accept: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    app.post_graphql(body, &accept).await
}

/// GETs `/graphql` with these query-string parameters.
async fn get(app: &TestApp, params: &[(&str, &str)], token: Option<&str>) -> Response {
    let mut request = app
        .client
        .get(app.url("/graphql"))
        .query(params)
        .header(header::ACCEPT, JSON);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.send().await.expect("request")
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts status and media type, and returns the JSON body.
async fn expect(response: Response, status: u16, media: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(content_type(&response).split(';').next(), Some(media));
    response.json().await.expect("JSON body")
}

/// Whether `username` is free (a registration with it would not conflict): its login fails as
/// an unknown user's does.
async fn assert_not_registered(app: &TestApp, username: &str) {
    let body = app.login_body(username, PASSWORD).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("UNAUTHENTICATED"),
        "{body}"
    );
    let body = app
        .register_body(username, &format!("{username}@example.com"), PASSWORD)
        .await;
    assert!(
        body["errors"].is_null(),
        "{username} was registered: {body}"
    );
}

fn register_document(username: &str) -> String {
    format!(
        "mutation {{ register(input: {{username: \"{username}\", \
         email: \"{username}@example.com\", password: \"{PASSWORD}\"}}) {{ accessToken }} }}"
    )
}

backend_tests! {
    /// The server remembers which cached documents passed validation; a document whose
    /// validation depends on its variables is still validated on every request.
    async fn a_document_seen_before_is_validated_as_strictly(app: TestApp) {
        let query = "query($n: Int) { users(first: $n) { nodes { id } } }";
        for round in 0..2 {
            for (n, invalid) in [(json!(5), false), (json!("ten"), true)] {
                let body = expect(
                    post_json(&app, Some(JSON), &json!({"query": query, "variables": {"n": n}}))
                        .await,
                    200,
                    JSON,
                )
                .await;
                assert_eq!(
                    error_code(&body).as_deref() == Some("GRAPHQL_VALIDATION_FAILED"),
                    invalid,
                    "round {round}, n = {n}: {body}"
                );
            }
        }
        for _ in 0..3 {
            let body = expect(post_json(&app, Some(JSON), &json!({"query": "{ me { id } }"})).await, 200, JSON).await;
            assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
            let body = expect(post_json(&app, Some(JSON), &json!({"query": "{ me { nope } }"})).await, 200, JSON).await;
            assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
        }
    }

    async fn application_json_answers_200_even_with_errors(app: TestApp) {
        let cases = [
            ("{ me { id } }", "UNAUTHENTICATED"),
            ("{ me { id ", "GRAPHQL_PARSE_FAILED"),
            ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
            (
                "mutation { register(input: {username: \"abc\"}) { accessToken } }",
                "GRAPHQL_VALIDATION_FAILED",
            ),
            (
                "{ users(first: \"ten\") { nodes { id } } }",
                "GRAPHQL_VALIDATION_FAILED",
            ),
        ];
        for accept in [
            Some(JSON),
            None,
            Some("*/*"),
            Some("application/json, application/graphql-response+json;q=0.5"),
        ] {
            for (query, code) in cases {
                let response = post_json(&app, accept, &json!({"query": query})).await;
                let body = expect(response, 200, JSON).await;
                assert_eq!(
                    error_code(&body).as_deref(),
                    Some(code),
                    "{accept:?} {query}: {body}"
                );
                let request_error = code.starts_with("GRAPHQL_");
                assert_eq!(body.get("data").is_none(), request_error, "{query}: {body}");
            }
        }
        // A variable of the wrong type is a request error too.
        let body = expect(
            post_json(
                &app,
                Some(JSON),
                &json!({
                    "query": "query($n: Int) { users(first: $n) { nodes { id } } }",
                    "variables": {"n": "ten"},
                }),
            )
            .await,
            200,
            JSON,
        )
        .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{body}"
        );
        assert_not_registered(&app, "abc").await;
    }

    async fn graphql_response_json_answers_400_to_request_errors(app: TestApp) {
        for accept in [
            GRAPHQL_RESPONSE,
            "application/graphql-response+json, application/json;q=0.9",
        ] {
            for (query, code) in [
                ("{ me { id ", "GRAPHQL_PARSE_FAILED"),
                ("}", "GRAPHQL_PARSE_FAILED"),
                ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
                ("{ me { password } }", "GRAPHQL_VALIDATION_FAILED"),
                (
                    "{ user(id: \"x\", nope: 2) { id } }",
                    "GRAPHQL_VALIDATION_FAILED",
                ),
            ] {
                let response = post_json(&app, Some(accept), &json!({"query": query})).await;
                let body = expect(response, 400, GRAPHQL_RESPONSE).await;
                assert_eq!(error_code(&body).as_deref(), Some(code), "{query}: {body}");
                assert!(
                    body.get("data").is_none(),
                    "a request error has no data entry: {body}"
                );
            }
            // A field error is no request error: 200, with data.
            let response = post_json(&app, Some(accept), &json!({"query": "{ me { id } }"})).await;
            let body = expect(response, 200, GRAPHQL_RESPONSE).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
            assert!(body.get("data").is_some(), "{body}");
        }
        let response = post_json(
            &app,
            Some(GRAPHQL_RESPONSE),
            &json!({"query": register_document("alice")}),
        )
        .await;
        let body = expect(response, 200, GRAPHQL_RESPONSE).await;
        assert!(
            body["data"]["register"]["accessToken"].is_string(),
            "{body}"
        );
    }

    async fn get_runs_queries_from_the_query_string(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("alice", PASSWORD).await;
        let body = expect(
            get(&app, &[("query", "{ me { id } }")], Some(&token)).await,
            200,
            JSON,
        )
        .await;
        assert_eq!(body["data"]["me"]["id"], id.as_str(), "{body}");

        let variables = json!({"u": "ALICE"}).to_string();
        let body = expect(
            get(
                &app,
                &[
                    ("query", "query($u: String!) { user(username: $u) { id } }"),
                    ("variables", &variables),
                ],
                Some(&token),
            )
            .await,
            200,
            JSON,
        )
        .await;
        assert_eq!(body["data"]["user"]["id"], id.as_str(), "{body}");

        let document = "query Me { me { id } } mutation Out { logout }";
        let body = expect(
            get(
                &app,
                &[("query", document), ("operationName", "Me")],
                Some(&token),
            )
            .await,
            200,
            JSON,
        )
        .await;
        assert_eq!(body["data"]["me"]["id"], id.as_str(), "{body}");

        let body = expect(
            get(&app, &[("query", "{ me { id } }")], None).await,
            200,
            JSON,
        )
        .await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));

        let response = get(&app, &[], Some(&token)).await;
        assert!(response.status().is_client_error(), "{}", response.status());
    }

    /// The server keeps what it read of each query string, never an answer: the same URL
    /// answers each caller with their own data, a malformed one is refused every time, and
    /// the variables of one URL never answer another.
    async fn a_repeated_get_is_read_the_same_and_answered_per_caller(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let bob = app.register("bob", PASSWORD).await;
        for _ in 0..2 {
            for caller in [&alice, &bob] {
                let body = expect(get(&app, &[("query", "{ me { id } }")], Some(&caller.access)).await, 200, JSON).await;
                assert_eq!(body["data"]["me"]["id"], caller.user_id.as_str(), "{body}");
            }
            let response = get(&app, &[("query", "query($u: String!) { user(username: $u) { id } }"), ("variables", "{not json")], Some(&alice.access)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        for (name, caller) in [("alice", &alice), ("bob", &bob)] {
            let variables = json!({"u": name}).to_string();
            let params = [("query", "query($u: String!) { user(username: $u) { id } }"), ("variables", variables.as_str())];
            let body = expect(get(&app, &params, Some(&alice.access)).await, 200, JSON).await;
            assert_eq!(body["data"]["user"]["id"], caller.user_id.as_str(), "{body}");
        }
    }

    async fn get_refuses_mutations_and_runs_none(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("alice", PASSWORD).await;
        let response = get(&app, &[("query", &register_document("bob"))], None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let allow = response
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok());
        assert_eq!(allow, Some("POST"));
        assert_not_registered(&app, "bob").await;

        for params in [
            vec![("query", "mutation { logout }")],
            // A named operation, alone: it runs without an operationName.
            vec![("query", "mutation Out { logout }")],
            vec![
                ("query", "query Me { me { id } } mutation Out { logout }"),
                ("operationName", "Out"),
            ],
        ] {
            let response = get(&app, &params, Some(&token)).await;
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{params:?}"
            );
        }
        assert_eq!(app.me(&token).await, Ok(id), "logout by GET did not run");
    }

    async fn batches_are_refused_and_not_run(app: TestApp) {
        let batch = json!([
            {"query": register_document("carol")},
            {"query": "{ __typename }"},
        ]);
        for accept in [JSON, GRAPHQL_RESPONSE] {
            let response = post_json(&app, Some(accept), &batch).await;
            assert!(response.status().is_client_error(), "{}", response.status());
            assert_eq!(content_type(&response), accept);
            let body: Value = response.json().await.expect("JSON body");
            assert!(body["errors"].is_array(), "{body}");
        }
        assert_not_registered(&app, "carol").await;
    }

    async fn bodies_over_the_limit_are_refused_with_413(app: TestApp) {
        let limit = usize::try_from(app.state.config.http.max_body_bytes).unwrap();
        let padded = |size: usize| {
            let query = format!("{{ __typename }} # {}", "x".repeat(size));
            json!({"query": query})
        };
        let response = post_json(&app, Some(JSON), &padded(limit - 100)).await;
        let body = expect(response, 200, JSON).await;
        assert_eq!(
            body["data"]["__typename"], "Query",
            "just under the limit is fine"
        );

        let response = post_json(&app, Some(JSON), &padded(limit + 1)).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let response = app
            .client
            .post(app.url("/graphql"))
            .header(header::CONTENT_TYPE, "application/graphql")
            .body(format!("{{ __typename }} # {}", "x".repeat(4 * limit)))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    async fn other_media_types(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } = app.register("alice", PASSWORD).await;
        // JSON with a charset parameter.
        let response = app
            .client
            .post(app.url("/graphql"))
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(json!({"query": "{ __typename }"}).to_string())
            .send()
            .await
            .expect("request");
        let body = expect(response, 200, JSON).await;
        assert_eq!(body["data"]["__typename"], "Query", "{body}");

        // A bare document as application/graphql.
        let response = app
            .client
            .post(app.url("/graphql"))
            .header(header::CONTENT_TYPE, "application/graphql; charset=utf-8")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body("{ me { id } }")
            .send()
            .await
            .expect("request");
        let body = expect(response, 200, JSON).await;
        assert_eq!(body["data"]["me"]["id"], id.as_str(), "{body}");

        // A body that is no GraphQL request, or in no supported type.
        for (content_type, body) in [
            ("application/json", "{\"query\": "),
            ("application/json", "{\"variables\": {}}"),
            ("text/plain", "{ __typename }"),
        ] {
            let response = app
                .client
                .post(app.url("/graphql"))
                .header(header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .expect("request");
            assert!(
                response.status().is_client_error(),
                "{content_type} {body}: {}",
                response.status()
            );
        }

        // Nothing acceptable to answer with.
        let response =
            post_json(&app, Some("text/html"), &json!({"query": "{ __typename }"})).await;
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    }
}
