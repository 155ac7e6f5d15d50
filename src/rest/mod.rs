//! The REST compatibility routes of the legacy API (`/users…`), their OpenAPI document, and
//! Swagger UI.
//!
//! Every route is registered through utoipa-axum's [`OpenApiRouter`] together with its
//! `#[utoipa::path]`, so the document served at `/openapi.json` lists exactly the routes the
//! router serves. Handlers are thin adapters over the `users` and `signins` services; errors
//! are [`RestError`](error::RestError), whose `IntoResponse` writes the FastAPI-style bodies.

pub mod admin;
pub mod error;
pub mod extract;
pub mod lifecycle;
pub mod responses;
pub mod signins;
pub mod types;
pub mod users;

use axum::http::{HeaderValue, header};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;
use error::RestError;

/// Where Swagger UI is served. Its page lives at `/docs/` and loads its assets relative to
/// that, so paths under `/docs/` keep their trailing slash (see `lib.rs`).
pub const DOCS_PATH: &str = "/docs";
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The login route, which is also the OAuth2 token URL Swagger UI's "Authorize" posts to.
pub const TOKEN_URL: &str = "/users/login";

/// The document's fixed parts: title and version (from Cargo.toml), tags, security schemes.
#[derive(OpenApi)]
#[openapi(
    info(description = "REST compatibility routes of user-api, for callers of the legacy \
        documented API. New clients should prefer GraphQL at /graphql."),
    tags((name = "users", description = "Accounts and sessions")),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// Two ways to send a token, either accepted: the OAuth2 password flow (Swagger UI's
/// "Authorize" dialog then signs in through the login route), and a pasted bearer token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "OAuth2PasswordBearer",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                TOKEN_URL,
                Scopes::new(),
            ))])),
        );
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The REST routes and, built from the same registrations, their OpenAPI document. One
/// `routes!` per path: utoipa-axum registers a `routes!` group's method router on each of
/// its paths.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::register))
        .routes(routes!(users::login))
        .routes(routes!(signins::login_mfa))
        .routes(routes!(users::logout))
        .routes(routes!(users::me))
        .routes(routes!(users::find_user, admin::delete_user))
        .routes(routes!(admin::set_user_disabled))
        .routes(routes!(
            users::list_users,
            users::create_user,
            users::update_me,
            users::delete_me
        ))
        .routes(routes!(signins::refresh))
        .routes(routes!(lifecycle::request_password_reset))
        .routes(routes!(lifecycle::reset_password))
        .routes(routes!(lifecycle::verify_email))
        .routes(routes!(lifecycle::resend_verification))
}

/// The OpenAPI document, as served at `/openapi.json` and printed by `user-api openapi`.
pub fn openapi() -> OpenApiDocument {
    router().into_openapi()
}

/// The `Content-Security-Policy` of Swagger UI's pages and assets: its page loads only its
/// own scripts and style sheets (no inline script), icons drawn as `data:` images, and calls
/// only this server ("Try it out", the OpenAPI document). Nothing may frame it. The one
/// inline style it writes, in the logo's SVG, is allowed by its hash (a test checks the
/// hash against the bundled Swagger UI).
pub const SWAGGER_UI_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// Swagger UI at `/docs` (from assets compiled into the binary), with [`SWAGGER_UI_CSP`], and
/// `document` at `/openapi.json`. With `persist_authorization` (`SWAGGER_PERSIST_AUTHORIZATION`),
/// the UI keeps the token it was given in the browser's local storage; otherwise it forgets it
/// with the page, since a stored token outlives the tab and any script on the origin can read
/// it.
pub fn docs<S: Clone + Send + Sync + 'static>(
    document: OpenApiDocument,
    persist_authorization: bool,
) -> Router<S> {
    // Said either way, so the served configuration states the choice rather than relying on
    // Swagger UI's default.
    let config = utoipa_swagger_ui::Config::from(OPENAPI_PATH)
        .persist_authorization(persist_authorization)
        .try_it_out_enabled(true)
        // Otherwise the page sends the document's URL to swagger.io's validator and shows
        // its badge: a request to another site the policy (rightly) refuses.
        .validator_url("none");
    // The document is served apart from the UI, so that it keeps the strict policy of every
    // other response rather than the page's.
    Router::from(SwaggerUi::new(DOCS_PATH).config(config))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SWAGGER_UI_CSP),
        ))
        .route(
            OPENAPI_PATH,
            get(move || std::future::ready(Json(document.clone()))),
        )
}

/// Fallback for a path no route has: 404 `{"detail": "Not Found"}`.
pub async fn not_found() -> RestError {
    RestError::RouteNotFound
}

/// Fallback for a known path with a method it does not serve: 405 `{"detail": "Method Not
/// Allowed"}`; the router adds the `Allow` header.
pub async fn method_not_allowed() -> RestError {
    RestError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    use super::*;

    /// The `<style>` elements Swagger UI's scripts create (React's
    /// `createElement("style", null, "…")`) must be allowed by hash, or the browser refuses
    /// them; a newer Swagger UI with other styles fails here rather than in a browser.
    #[test]
    fn swagger_ui_csp_allows_the_styles_it_creates() {
        let config = Arc::new(utoipa_swagger_ui::Config::from(OPENAPI_PATH));
        let marker = r#"createElement("style",null,""#;
        let mut found = 0;
        for file in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"] {
            let asset = utoipa_swagger_ui::serve(file, config.clone())
                .unwrap()
                .unwrap();
            let script = String::from_utf8_lossy(&asset.bytes);
            for (i, _) in script.match_indices(marker) {
                let text = &script[i + marker.len()..];
                let text = &text[..text.find('"').unwrap()];
                let hash = base64::engine::general_purpose::STANDARD
                    .encode(Sha256::digest(text.as_bytes()));
                assert!(
                    SWAGGER_UI_CSP.contains(&format!("'sha256-{hash}'")),
                    "{text} is not allowed"
                );
                found += 1;
            }
        }
        assert_eq!(found, 1, "the logo's style");
    }
}
