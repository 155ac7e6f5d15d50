//! A session store that cannot be reached: every call that needs a token (or makes one)
//! answers SERVICE_UNAVAILABLE, never an unchecked success, and `/readyz` says what is down.
//!
//! The store is a Redis URL nobody listens on, beside the embedded SQLite database, so these
//! tests need no services and always run.

use serde_json::{Value, json};
use user_api::accounts::model::UserRow;
use user_api::accounts::repo;

use crate::support::{
    Backend, PASSWORD, TestApp, assert_no_internals, backend_tests, error_code, messages,
};

/// Puts a user straight into the database (registering needs the session store); returns its id.
async fn insert_user(app: &TestApp, username: &str) -> String {
    let now = chrono::Utc::now().naive_utc();
    let row = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.to_owned(),
        username_lower: username.to_lowercase(),
        email: format!("{username}@example.com"),
        email_lower: format!("{}@example.com", username.to_lowercase()),
        password_hash: user_api::signins::PasswordHasher::new(1)
            .expect("hasher")
            .hash(PASSWORD.into())
            .await
            .expect("hash"),
        role: "user".into(),
        registration_date: now,
        updated_at: now,
        credentials_version: 0,
        email_verified: false,
        disabled: false,
        mfa_enabled: false,
    };
    repo::create_user(app.state.dependencies.database(), &row, &Default::default())
        .await
        .expect("insert user");
    row.id
}

fn assert_unavailable(body: &Value, what: &str) {
    assert_eq!(
        error_code(body).as_deref(),
        Some("SERVICE_UNAVAILABLE"),
        "{what}: {body}"
    );
    assert!(body["data"].is_null(), "{what} gave data: {body}");
    assert_no_internals(body);
    for message in messages(body) {
        assert!(
            !message.contains("127.0.0.1") && !message.to_lowercase().contains("refused"),
            "{what}: {message}"
        );
    }
}

backend_tests! {
    #[only(sqlite)]
    async fn token_protected_calls_answer_503(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        let id = insert_user(&app, "alice").await;
        // A token the server itself signed: only the session check can refuse it.
        let token = app
            .state
            .sign_ins
            .access_tokens()
            .issue(&id)
            .expect("issue")
            .token;

        let operations = [
            ("{ me { id email } }", json!({})),
            (
                "query($id: ID!) { user(id: $id) { id } }",
                json!({"id": id}),
            ),
            ("{ users { nodes { id } } }", json!({})),
            ("mutation { logout }", json!({})),
            (
                "mutation { updateMe(input: {email: \"changed@example.com\"}) { id } }",
                json!({}),
            ),
            ("mutation { deleteMe }", json!({})),
        ];
        // Each waits out the store's time-out; run them side by side.
        let bodies = futures_util::future::join_all(
            operations
                .iter()
                .map(|(query, vars)| app.gql(query, vars.clone(), Some(&token))),
        )
        .await;
        for ((query, _), body) in operations.iter().zip(&bodies) {
            assert_unavailable(body, query);
        }

        // Nothing was changed behind the errors.
        let user = repo::find_by_id(app.state.dependencies.database(), &id)
            .await
            .expect("database")
            .expect("deleteMe did not run");
        assert_eq!(user.email, "alice@example.com", "updateMe did not run");

        // What needs no session store still answers as usual.
        let body = app.gql("{ me { id } }", json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        let body = app.gql("{ me { id } }", json!({}), Some("not.a.jwt")).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }

    #[only(sqlite)]
    async fn register_and_login_answer_503_and_hand_out_no_token(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        insert_user(&app, "alice").await;

        let (register, login, wrong_password) = tokio::join!(
            app.register_body("newbie", "newbie@example.com", PASSWORD),
            app.login_body("alice", PASSWORD),
            app.login_body("alice", "not the password"),
        );
        assert_unavailable(&register, "register");
        assert_unavailable(&login, "login");
        // The login limits live in the same Redis, and fail closed: even a wrong password gets
        // 503 rather than an unlimited attempt.
        assert_unavailable(&wrong_password, "login with a wrong password");

        // The failed registration left no account behind that would block a retry.
        let left = repo::find_by_username(app.state.dependencies.database(), "newbie")
            .await
            .expect("database");
        assert!(left.is_none(), "a half-registered account: {left:?}");
    }

    #[only(sqlite)]
    async fn readiness_names_the_session_store(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        let response = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["sessions"], "down", "{body}");
        assert_eq!(body["database"], "ok", "{body}");

        let response = app
            .client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "the process itself is up");
    }
}
