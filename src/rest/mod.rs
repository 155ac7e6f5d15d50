//! The REST compatibility routes of the legacy API (`/users…`), their OpenAPI document, and
//! Swagger UI.
//!
//! Every route is registered through utoipa-axum's [`OpenApiRouter`] together with its
//! `#[utoipa::path]`, so the document served at `/openapi.json` lists exactly the routes the
//! router serves. Handlers are thin adapters over `users::service`; errors are `AppError`,
//! whose `IntoResponse` writes the FastAPI-style bodies.

pub mod extract;
pub mod types;
pub mod users;

pub mod admin;
pub mod sessions;

use axum::Router;
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::AppError;
use crate::state::AppState;

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
        .routes(routes!(users::logout))
        .routes(routes!(users::me))
        .routes(routes!(users::find_user, admin::delete_user))
        .routes(routes!(
            users::list_users,
            users::create_user,
            users::update_me,
            users::delete_me
        ))
        .routes(routes!(sessions::refresh))
}

/// The OpenAPI document, as served at `/openapi.json` and printed by `user-api openapi`.
pub fn openapi() -> OpenApiDocument {
    router().into_openapi()
}

/// Swagger UI at `/docs` (from assets compiled into the binary) and `document` at
/// `/openapi.json`. With `persist_authorization` (`SWAGGER_PERSIST_AUTHORIZATION`), the UI
/// keeps the token it was given in the browser's local storage; otherwise it forgets it with
/// the page, since a stored token outlives the tab and any script on the origin can read it.
pub fn docs<S: Clone + Send + Sync + 'static>(
    document: OpenApiDocument,
    persist_authorization: bool,
) -> Router<S> {
    // Said either way, so the served configuration states the choice rather than relying on
    // Swagger UI's default.
    let config = utoipa_swagger_ui::Config::from(OPENAPI_PATH)
        .persist_authorization(persist_authorization)
        .try_it_out_enabled(true);
    SwaggerUi::new(DOCS_PATH)
        .url(OPENAPI_PATH, document)
        .config(config)
        .into()
}

/// Fallback for a path no route has: 404 `{"detail": "Not Found"}`.
pub async fn not_found() -> AppError {
    AppError::RouteNotFound
}

/// Fallback for a known path with a method it does not serve: 405 `{"detail": "Method Not
/// Allowed"}`; the router adds the `Allow` header.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
