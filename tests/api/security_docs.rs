//! Swagger UI keeps the token it was given only for the page's life: its configuration
//! (`/docs/swagger-initializer.js`) says `persistAuthorization: false`, unless the operator sets
//! `SWAGGER_PERSIST_AUTHORIZATION`, since a token kept in the browser's local storage outlives
//! the tab and is readable by any script on the origin.

use user_api::config::Config;

use crate::support::{Backend, TestApp, backend_tests};

/// The `persistAuthorization` value of the Swagger UI configuration the server serves.
async fn persist_authorization(app: &TestApp) -> Option<bool> {
    let response = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let script: String = response
        .text()
        .await
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if script.contains(r#""persistAuthorization":true"#) {
        Some(true)
    } else if script.contains(r#""persistAuthorization":false"#) {
        Some(false)
    } else {
        None
    }
}

/// The setting as the server parses it from these arguments.
fn parsed(args: &[&str]) -> bool {
    let args = std::iter::once("user-api").chain(args.iter().copied());
    Config::try_from_args(args)
        .expect("valid arguments")
        .http
        .swagger_persist_authorization
}

backend_tests! {
    async fn swagger_does_not_persist_the_token_by_default(app: TestApp) {
        assert_eq!(persist_authorization(&app).await, Some(false));
    }

    async fn swagger_persists_the_token_when_the_operator_opts_in(backend: Backend) {
        // Either way of opting in turns the setting on; saying false keeps it off.
        assert!(parsed(&["--swagger-persist-authorization", "true"]));
        assert!(parsed(&["--swagger-persist-authorization"]));
        assert!(!parsed(&["--swagger-persist-authorization", "false"]));
        for persist in [true, false] {
            let app = TestApp::builder()
                .swagger_persist_authorization(persist)
                .spawn(backend)
                .await;
            assert_eq!(persist_authorization(&app).await, Some(persist));
        }
    }
}
