//! user-api: a user-management API server. GraphQL first, with REST compatibility routes.
//!
//! [`app`] builds the whole router from an [`AppState`]; `main` and the tests both call it.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod graphql;
pub mod health;
pub mod state;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::config::CorsOrigins;
pub use crate::state::AppState;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let schema = graphql::build_schema(Some(state.clone()));
    let body_limit = usize::try_from(state.config.http.max_body_bytes).unwrap_or(usize::MAX);
    let graphql_routes = Router::new()
        .route(
            "/graphql",
            get(graphql::http::get_graphql).post(graphql::http::post_graphql),
        )
        .with_state(schema);
    Router::new()
        .route("/graphiql", get(graphql::http::graphiql))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(graphql_routes)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(cors(&state.config.http.cors_allowed_origins))
        .layer(TraceLayer::new_for_http())
}

/// CORS for browser frontends: only the configured origins, with proper preflight answers.
/// Tokens travel in the Authorization header, not cookies, so credentials are never allowed.
fn cors(origins: &CorsOrigins) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(600));
    match origins {
        CorsOrigins::None => CorsLayer::new(),
        CorsOrigins::Any => base.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => base.allow_origin(AllowOrigin::list(
            list.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        )),
    }
}
