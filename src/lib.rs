//! user-api: a user-management API server. GraphQL first, with REST compatibility routes.
//!
//! [`app`] builds the whole router from an [`AppState`] and [`serve`] serves it; `main` and
//! the tests both call them.

pub mod accounts;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod infra;
pub mod mail;
pub mod mfa;
pub mod pages;
pub mod ratelimit;
pub mod rest;
pub mod signins;
pub mod state;
pub mod users;
pub mod web;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::CorsOrigins;
pub use crate::state::AppState;
use crate::web::REQUEST_ID;
use crate::web::errors::GraphqlErrors;
pub use crate::web::serve::serve;

/// How the web edge writes errors for `/graphql`: as the GraphQL adapter does.
const GRAPHQL_ERRORS: GraphqlErrors = GraphqlErrors {
    path: graphql::http::GRAPHQL_PATH,
    refusal: graphql::http::refusal,
    unauthenticated: graphql::http::unauthenticated,
};

/// The whole HTTP application. Trailing slashes are handled inside it (`/users/` is served as
/// `/users`), so `main` and the tests, which both serve what this returns, see the same thing.
/// Serve it with [`serve`], which gives each request its peer address: per-address rate
/// limits key on it (without it, all clients share one address key).
pub fn app(state: AppState) -> Router {
    let (rest_routes, openapi) = rest::router().split_for_parts();
    let body_limit = usize::try_from(state.config.http.max_body_bytes).unwrap_or(usize::MAX);
    let endpoint = graphql::http::Endpoint::new(state.clone());
    let graphql_routes = Router::new()
        .route(
            graphql::http::GRAPHQL_PATH,
            get(graphql::http::get_graphql)
                .post(graphql::http::post_graphql)
                .fallback(graphql::http::method_not_allowed),
        )
        .with_state(endpoint);
    let graphiql = graphql::graphiql::GraphiqlPage::new(graphql::http::GRAPHQL_PATH).router();
    let routes = Router::new()
        .route("/", get(|| async { Redirect::temporary(rest::DOCS_PATH) }))
        .route("/healthz", get(web::health::healthz))
        .route("/readyz", get(web::health::readyz))
        .route("/metrics", get(web::metrics::metrics))
        .merge(graphql_routes)
        .merge(graphiql)
        .merge(rest_routes)
        // The links in mails open them, unless a frontend serves those paths.
        .merge(match state.config.lifecycle.email_link_base() {
            None => pages::router(),
            Some(_) => Router::new(),
        })
        .merge(rest::docs(
            openapi,
            state.config.http.swagger_persist_authorization,
        ))
        .fallback(rest::not_found)
        // Last, so that it reaches every route registered above.
        .method_not_allowed_fallback(rest::method_not_allowed)
        // Each `Router::layer` call boxes the route's service once more, and axum clones a
        // route's service for every request: layers given one at a time cost a boxed clone
        // (and an allocation) each per request. So they come in two stacks: the ones that
        // need the matched route, and the rest. In a ServiceBuilder the outermost comes first.
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_request_with_state(
                    state.clone(),
                    web::client::attach,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    web::access_log::observe,
                )),
        )
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                // The id is set (or an incoming one kept), every log line of the request
                // carries it, and the response echoes it.
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                // Only the span: the access log line and the failures' own lines are written
                // by `web::access_log`, once each.
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(())
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                // Outside everything below, so that preflights and refusals carry them too.
                .layer(web::headers::layer())
                .option_layer(cors(&state.config.http.cors_allowed_origins))
                // CORS answers preflights with an empty body of the inner service's type.
                .map_response(IntoResponse::into_response)
                // Outside the body limit, whose 413 is plain text.
                .layer(axum::middleware::from_fn_with_state(
                    GRAPHQL_ERRORS,
                    web::errors::json_errors,
                ))
                // Inside, so that its refusals are JSON already; before the body is read.
                .layer(axum::middleware::from_fn_with_state(
                    GRAPHQL_ERRORS,
                    web::authorization::refuse_oversized,
                ))
                .map_response(IntoResponse::into_response)
                .layer(RequestBodyLimitLayer::new(body_limit))
                // A body that stops arriving for HTTP_HEADER_TIMEOUT seconds fails its read
                // (400), as a head that stops arriving closes the connection: a client that
                // announces a body and sends nothing cannot hold a connection for ever.
                .layer(RequestBodyTimeoutLayer::new(
                    std::time::Duration::from_secs(state.config.http.header_timeout),
                ))
                .layer(DefaultBodyLimit::max(body_limit)),
        );
    // Rewriting the path must happen before routing, which a layer on the Router (applied
    // after a route matched) cannot do; so the routes sit behind a router that only forwards.
    Router::new().fallback_service(
        ServiceBuilder::new()
            .map_request(trim_trailing_slash)
            .service(routes),
    )
}

/// Serves `/users/` as `/users` (legacy clients add the slash), keeping the query string.
/// Paths under `/docs/` are left alone: Swagger UI's page is `/docs/` and loads its assets
/// relative to it (and `/docs` redirects there, so trimming would loop).
fn trim_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    let under_docs = path
        .strip_prefix(rest::DOCS_PATH)
        .is_some_and(|rest| rest.starts_with('/'));
    if path.len() <= 1 || !path.ends_with('/') || under_docs {
        return req;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    // Cannot fail: a prefix of a valid path plus the valid query it had.
    if let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-");
    // The path only: query strings may hold tokens (the links in mails) and whole GraphQL
    // documents, neither of which belongs in a log.
    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
}

/// CORS for browser frontends: only the configured origins, with proper preflight answers.
/// Tokens travel in the Authorization header, not cookies, so credentials are never allowed.
/// None when no origin is allowed: the layer would still answer every OPTIONS request itself
/// (200, empty), where the routes answer 404 or 405.
fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::RETRY_AFTER,
            REQUEST_ID.clone(),
        ])
        .max_age(std::time::Duration::from_secs(600));
    match origins {
        CorsOrigins::None => None,
        CorsOrigins::Any => Some(base.allow_origin(AllowOrigin::any())),
        CorsOrigins::List(list) => Some(base.allow_origin(AllowOrigin::list(
            list.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        ))),
    }
}
