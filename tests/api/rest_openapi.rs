//! The OpenAPI document and Swagger UI: the document lists exactly the REST routes the router
//! serves, with exactly the methods it serves; the UI works from assets inside the binary.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::Value;

use crate::support::rest::call;
use crate::support::{TestApp, backend_tests};

/// Section 4 of API.md: the REST routes and their methods.
const CONTRACT: &[(&str, &str)] = &[
    ("/users/register", "POST"),
    ("/users", "POST"),
    ("/users/login", "POST"),
    ("/users/logout", "POST"),
    ("/users/me", "GET"),
    ("/users/{id}", "GET"),
    ("/users", "GET"),
    ("/users", "PUT"),
    ("/users", "DELETE"),
    // Added with roles and refresh tokens (README: REST routes).
    ("/users/refresh", "POST"),
    ("/users/{id}", "DELETE"),
    // Added with disabling (API.md section 7).
    ("/users/{id}/disabled", "PUT"),
    // Section 7: the account lifecycle.
    ("/users/password-reset", "POST"),
    ("/users/password-reset/confirm", "POST"),
    ("/users/verify-email", "POST"),
    ("/users/verify-email/resend", "POST"),
    ("/users/login/mfa", "POST"),
];

/// Methods probed on each path. HEAD is left out because a GET route answers it (as HTTP
/// says it must). OPTIONS is probed: with CORS off (the test's default) no layer answers it
/// for the routes.
const PROBED: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The document's (path, METHOD) pairs.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                found.insert((path.clone(), method.to_uppercase()));
            }
        }
    }
    found
}

backend_tests! {
    async fn document_lists_exactly_the_served_routes(app: TestApp) {
        let reply = call(&app, Method::GET, "/openapi.json", None, None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let doc = reply.body;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "OpenAPI 3");
        assert_eq!(
            doc,
            serde_json::to_value(user_api::rest::openapi()).unwrap(),
            "the served document is the one `user-api openapi` prints"
        );

        let documented = operations(&doc);
        let contract: BTreeSet<(String, String)> =
            CONTRACT.iter().map(|(p, m)| ((*p).to_owned(), (*m).to_owned())).collect();
        assert_eq!(documented, contract, "the document lists the contract's routes");

        // Each documented path, over HTTP: the documented methods are served (no 404/405, even
        // without a token or body), every other one is 405 with an Allow header that names
        // exactly the documented methods.
        let mut by_path: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (path, method) in &documented {
            by_path.entry(path).or_default().insert(method);
        }
        let some_id = uuid::Uuid::now_v7().to_string();
        for (path, methods) in by_path {
            let concrete = path.replace("{id}", &some_id);
            for probe in PROBED {
                let method = Method::from_bytes(probe.as_bytes()).unwrap();
                let reply = call(&app, method, &concrete, None, None).await;
                if methods.contains(probe) {
                    assert!(
                        ![404, 405].contains(&reply.status),
                        "{probe} {path} is documented but answers {}",
                        reply.status
                    );
                } else {
                    assert_eq!(reply.status, 405, "{probe} {path} is not documented: {reply:?}");
                    let allow: BTreeSet<&str> = reply
                        .header("allow")
                        .expect("Allow")
                        .split(',')
                        .map(str::trim)
                        .filter(|m| *m != "HEAD")
                        .collect();
                    assert_eq!(allow, methods, "Allow of {path}");
                }
            }
        }

        // Security: the token routes name schemes that exist, and the OAuth2 password flow's
        // token URL is the login route, so Swagger UI's "Authorize" signs in there.
        let schemes = doc["components"]["securitySchemes"].as_object().expect("securitySchemes");
        assert_eq!(
            doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"],
            "/users/login"
        );
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        for (path, method) in &documented {
            let operation = &doc["paths"][path][method.to_lowercase()];
            let public = [
                "/users/register",
                "/users/login",
                "/users/login/mfa",
                "/users/refresh",
                "/users/password-reset",
                "/users/password-reset/confirm",
                "/users/verify-email",
            ]
            .contains(&path.as_str())
                || (path == "/users" && method == "POST");
            let security = operation["security"].as_array();
            if public {
                assert!(security.is_none(), "{method} {path} needs no token");
            } else {
                let security = security.unwrap_or_else(|| panic!("{method} {path} needs a token"));
                for requirement in security {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{name} is defined");
                    }
                }
            }
        }
    }

    async fn swagger_ui_is_served_from_the_binary(app: TestApp) {
        let reply = call(&app, Method::GET, "/docs", None, None).await;
        assert!((300..400).contains(&reply.status), "{reply:?}");
        assert_eq!(reply.header("location"), Some("/docs/"));

        let response = app.client.get(app.url("/docs/")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = response.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");

        // Every asset the page loads comes from this server, relative to /docs/.
        let assets: Vec<&str> = html
            .split(['"', '\''])
            .filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.ends_with(".png"))
            .collect();
        assert!(assets.len() >= 4, "{assets:?}");
        for asset in assets {
            assert!(!asset.contains("://"), "{asset} is not fetched from elsewhere");
            let path = format!("/docs/{}", asset.trim_start_matches("./"));
            let response = app.client.get(app.url(&path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            if path.ends_with("swagger-initializer.js") {
                let script = response.text().await.unwrap();
                assert!(script.contains("/openapi.json"), "{script}");
            }
        }
    }
}

/// `user-api openapi` prints the document the server serves.
#[test]
fn openapi_subcommand_prints_the_document() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_user-api"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::to_value(user_api::rest::openapi()).unwrap()
    );
}
