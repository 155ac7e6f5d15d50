//! The core flow: register → login → me → updateMe → logout, and revocation.

use serde_json::json;

use crate::support::{SignIn, TestApp, backend_tests, error_code};

backend_tests! {
    async fn register_login_me_logout(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } =
            app.register("alice", "correct horse").await;
        assert_eq!(app.me(&token).await, Ok(id.clone()));
        let second = app.login("ALICE", "correct horse").await.access;
        assert_eq!(app.me(&second).await, Ok(id.clone()));
        let body = app.logout(&token).await;
        assert_eq!(body["data"]["logout"], true);
        assert_eq!(app.me(&token).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(app.me(&second).await, Ok(id), "logout ends only its own session");
        let body = app.gql("{ me { id } }", json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }
}
