//! GraphQL over HTTP: GET and POST `/graphql` per the GraphQL-over-HTTP spec.
//!
//! Written by hand rather than with async-graphql-axum's extractor because that one answers
//! `application/graphql-response+json` to clients that asked for `application/json`, reads
//! batches unasked, and runs mutations sent by GET.
//!
//! One module per job: `negotiate` picks the answer's media type from `Accept`, `request`
//! reads the GraphQL requests out of the HTTP request, `execute` checks their limits, runs
//! them and writes the answer, `classify` gives each error its code, and `refusal` writes
//! the answers to requests refused before anything ran.

mod classify;
mod execute;
mod negotiate;
mod refusal;
mod request;

use std::sync::Arc;

use async_graphql::ValidationMode;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use self::execute::{Call, execute};
use self::negotiate::negotiate;
use self::refusal::unreadable_request;
use self::request::{GetCache, Requests, Unreadable, read_get, read_post};
use super::documents::DocumentCache;
use super::live::Live;
use super::persisted::PersistedQueries;
use super::{ApiSchema, build_schema, build_schema_validating};
use crate::signins::SignInContext;
use crate::state::AppState;

pub use self::refusal::{method_not_allowed, refusal, unauthenticated};

/// What the GraphQL handlers need: the schema (built once, in two validation modes), the
/// parsed-document cache and the state (for limits and metrics).
#[derive(Clone)]
pub struct Endpoint {
    schema: ApiSchema,
    /// The same schema without the spec's validation rules (depth and complexity limits
    /// kept), for documents the cache knows to have passed them.
    validated_schema: ApiSchema,
    documents: Arc<DocumentCache>,
    gets: Arc<GetCache>,
    persisted: Arc<PersistedQueries>,
    live: Arc<Live>,
    state: AppState,
}

impl Endpoint {
    /// Builds the schema for `state`.
    pub fn new(state: AppState) -> Self {
        let schema = build_schema(Some(state.clone()));
        let validated_schema = build_schema_validating(Some(state.clone()), ValidationMode::Fast);
        Endpoint {
            live: Arc::new(Live::new(&state, schema.clone(), validated_schema.clone())),
            schema,
            validated_schema,
            documents: Arc::new(DocumentCache::default()),
            gets: Arc::new(GetCache::default()),
            persisted: Arc::new(match state.dependencies.redis() {
                Some(pool) => PersistedQueries::redis(
                    &state.config.rate_limit,
                    pool.clone(),
                    &state.config.redis.key_prefix,
                    state.config.database.pool_timeout,
                ),
                None => PersistedQueries::memory(&state.config.rate_limit),
            }),
            state,
        }
    }
}

/// Where GraphQL is served.
pub const GRAPHQL_PATH: &str = "/graphql";

/// `GET /graphql`: queries from the query string (mutations are refused with 405); or, asked
/// to upgrade to WebSocket, subscriptions over it (see [`super::live`]).
pub async fn get_graphql(
    State(endpoint): State<Endpoint>,
    context: SignInContext,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let wants_websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if wants_websocket {
        return match upgrade {
            Ok(upgrade) => endpoint
                .live
                .upgrade(upgrade, context.ip, endpoint.state.clone()),
            Err(rejection) => rejection.into_response(),
        };
    }
    let call = Call {
        headers: &headers,
        by_get: true,
        context,
    };
    serve(&endpoint, call, || read_get(&uri, &endpoint.gets)).await
}

/// `POST /graphql`: one request as JSON (`application/json`) or a bare document
/// (`application/graphql`); or, when `GRAPHQL_MAX_BATCH` is above 1, a JSON array of up to
/// that many requests, run in order and answered with an array.
pub async fn post_graphql(
    State(endpoint): State<Endpoint>,
    context: SignInContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let max_batch = usize::from(endpoint.state.config.graphql.max_batch);
    let call = Call {
        headers: &headers,
        by_get: false,
        context,
    };
    serve(&endpoint, call, || read_post(&headers, &body, max_batch)).await
}

/// Negotiates the answer's media type (406 when none fits), reads the requests with `read`
/// and runs them.
async fn serve(
    endpoint: &Endpoint,
    call: Call<'_>,
    read: impl FnOnce() -> Result<Requests, Unreadable>,
) -> Response {
    let Some(media) = negotiate(call.headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    match read() {
        Ok(requests) => execute(endpoint, requests, call, media).await,
        Err(unreadable) => unreadable_request(media, &unreadable),
    }
}
