//! Swagger UI keeps the token it was given only for the page's life: its configuration
//! (`/docs/swagger-initializer.js`) says `persistAuthorization: false`, unless the operator sets
//! `SWAGGER_PERSIST_AUTHORIZATION`, since a token kept in the browser's local storage outlives
//! the tab and is readable by any script on the origin.

use crate::common::{Backend, TestApp};
use crate::on_each_backend;
use crate::security_support::spawn;

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

async fn swagger_does_not_persist_the_token_by_default(backend: Backend) {
    let Some(app) = spawn(backend, &[]).await else {
        return;
    };
    assert_eq!(persist_authorization(&app).await, Some(false));
}

async fn swagger_persists_the_token_when_the_operator_opts_in(backend: Backend) {
    for args in [
        &["--swagger-persist-authorization", "true"][..],
        &["--swagger-persist-authorization"][..],
    ] {
        let Some(app) = spawn(backend, args).await else {
            return;
        };
        assert_eq!(persist_authorization(&app).await, Some(true), "{args:?}");
    }
    let Some(app) = spawn(backend, &["--swagger-persist-authorization", "false"]).await else {
        return;
    };
    assert_eq!(persist_authorization(&app).await, Some(false));
}

on_each_backend! {
    swagger_does_not_persist_the_token_by_default,
    swagger_persists_the_token_when_the_operator_opts_in,
}
