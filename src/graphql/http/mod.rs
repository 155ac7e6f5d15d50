//! GraphQL over HTTP: GET and POST `/graphql` per the GraphQL-over-HTTP spec, and GraphiQL.
//!
//! Written by hand rather than with async-graphql-axum's extractor because that one answers
//! `application/graphql-response+json` to clients that asked for `application/json`, reads
//! batches unasked, and runs mutations sent by GET.

use std::sync::Arc;

use async_graphql::parser::types::{OperationType, Selection, SelectionSet};
use async_graphql::{BatchRequest, Pos, ServerError, ValidationMode};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::documents::{DocumentCache, Parsed};
use super::errors;
use super::limits::{self, DocumentStats, LimitExceeded};
use super::{ApiSchema, RequestAuth, build_schema, build_schema_validating};
use crate::error::{AppError, ServerFault};
use crate::signins::SignInContext;
use crate::state::AppState;
use crate::web::access_log::Faults;

/// What the GraphQL handlers need: the schema (built once, in two validation modes), the
/// parsed-document cache and the state (for limits and metrics).
#[derive(Clone)]
pub struct Endpoint {
    schema: ApiSchema,
    /// The same schema without the spec's validation rules (depth and complexity limits
    /// kept), for documents the cache knows to have passed them.
    validated_schema: ApiSchema,
    documents: Arc<DocumentCache>,
    state: AppState,
}

impl Endpoint {
    /// Builds the schema for `state`.
    pub fn new(state: AppState) -> Self {
        Endpoint {
            schema: build_schema(Some(state.clone())),
            validated_schema: build_schema_validating(Some(state.clone()), ValidationMode::Fast),
            documents: Arc::new(DocumentCache::default()),
            state,
        }
    }
}

/// Where GraphQL is served.
pub const GRAPHQL_PATH: &str = "/graphql";

/// The JSON media type of GraphQL responses defined by the GraphQL-over-HTTP spec.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Which response media type the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    /// `application/json`: every well-formed request answers 200.
    Json,
    /// `application/graphql-response+json`: request errors answer 4xx.
    GraphqlResponse,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
        }
    }
}

/// Picks the response type from `Accept`: the supported type with the highest q, the one
/// listed first on a tie; no header means `application/json`; `None` when nothing fits.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    negotiate_accept(headers.get(header::ACCEPT))
}

/// [`negotiate`], from the `Accept` header alone.
fn negotiate_accept(accept: Option<&HeaderValue>) -> Option<MediaType> {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
            .next()
            .unwrap_or(1.0);
        let kind = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => MediaType::GraphqlResponse,
            "application/json" | "application/*" | "*/*" => MediaType::Json,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, kind));
        }
    }
    best.map(|(_, kind)| kind)
}

/// The answer to a request that failed before execution: errors and no `data`.
#[derive(serde::Serialize)]
struct FailedResponse<'a> {
    errors: &'a [ServerError],
}

/// A request-level failure (before execution), in the shape of a GraphQL response.
fn request_error(status: StatusCode, media: MediaType, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (
        status,
        [(header::CONTENT_TYPE, media.as_str())],
        body.to_string(),
    )
        .into_response()
}

/// A refusal made outside the GraphQL handler (an error of the HTTP layer, a method
/// `/graphql` does not serve), in the shape of a GraphQL response and in the JSON type that
/// `accept` (the request's `Accept` header) asks for; `application/json` when it names
/// neither, as the answer is an error either way.
pub fn refusal(accept: Option<&HeaderValue>, status: StatusCode, message: &str) -> Response {
    let media = negotiate_accept(accept).unwrap_or(MediaType::Json);
    request_error(status, media, errors::refusal_code(status), message)
}

/// A request refused for its credentials before it was read (see `web::authorization`):
/// `UNAUTHENTICATED` without `data`. With `application/json` that is 200, as for any
/// well-formed request; with `application/graphql-response+json`, an answer without `data` is
/// 401 (with `WWW-Authenticate: Bearer`), as the GraphQL-over-HTTP spec asks.
pub fn unauthenticated(accept: Option<&HeaderValue>, message: &str) -> Response {
    let media = negotiate_accept(accept).unwrap_or(MediaType::Json);
    if media == MediaType::Json {
        return request_error(StatusCode::OK, media, "UNAUTHENTICATED", message);
    }
    let mut response = request_error(StatusCode::UNAUTHORIZED, media, "UNAUTHENTICATED", message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Any other method on `/graphql`: 405 in the shape of a GraphQL response (the router adds
/// `Allow`).
pub async fn method_not_allowed(headers: HeaderMap) -> Response {
    refusal(
        headers.get(header::ACCEPT),
        StatusCode::METHOD_NOT_ALLOWED,
        "GraphQL requests are sent with GET or POST",
    )
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The query-string parameters of a GET request, named as the GraphQL-over-HTTP spec names
/// them (async-graphql's `parse_query_string` reads `operation_name`, not `operationName`).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    #[serde(default)]
    query: String,
    operation_name: Option<String>,
    /// JSON.
    variables: Option<String>,
    /// JSON.
    extensions: Option<String>,
}

impl GetParams {
    /// The request, or `None` without a query or with malformed JSON in a parameter.
    fn into_request(self) -> Option<async_graphql::Request> {
        if self.query.is_empty() {
            return None;
        }
        let mut request = async_graphql::Request::new(self.query);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = serde_json::from_str(&variables).ok()?;
        }
        if let Some(extensions) = self.extensions {
            request.extensions = serde_json::from_str(&extensions).ok()?;
        }
        Some(request)
    }
}

/// `GET /graphql`: queries from the query string. Mutations are refused with 405.
pub async fn get_graphql(
    State(endpoint): State<Endpoint>,
    context: SignInContext,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let Some(request) = params.ok().and_then(|Query(params)| params.into_request()) else {
        return request_error(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "a GET request needs a `query` parameter (and `variables`, if any, as JSON)",
        );
    };
    let call = Call {
        headers: &headers,
        media,
        by_get: true,
        batched: false,
        context,
    };
    execute(&endpoint, vec![request], call).await
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
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let max_batch = usize::from(endpoint.state.config.graphql.max_batch);
    let (requests, batched) = match content_type.as_deref() {
        Some("application/json") => match read_json_body(&body) {
            Ok(BatchRequest::Single(request)) if !request.query.is_empty() => {
                (vec![request], false)
            }
            Ok(BatchRequest::Single(_)) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "the request needs a `query`",
                );
            }
            Ok(BatchRequest::Batch(_)) if max_batch <= 1 => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "batched requests are not supported; send one operation per request",
                );
            }
            Ok(BatchRequest::Batch(requests)) if requests.is_empty() => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "the batch is empty",
                );
            }
            Ok(BatchRequest::Batch(requests)) if requests.len() > max_batch => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    &format!(
                        "the batch has {} operations; at most {max_batch} are allowed",
                        requests.len()
                    ),
                );
            }
            Ok(BatchRequest::Batch(requests)) => (requests, true),
            Err(_) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "the body is not a JSON GraphQL request ({\"query\": …})",
                );
            }
        },
        Some("application/graphql") => match std::str::from_utf8(&body) {
            Ok(query) => (vec![async_graphql::Request::new(query)], false),
            Err(_) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "the body is not UTF-8",
                );
            }
        },
        _ => {
            return request_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                media,
                "BAD_REQUEST",
                "send the request as application/json",
            );
        }
    };
    let call = Call {
        headers: &headers,
        media,
        by_get: false,
        batched,
        context,
    };
    execute(&endpoint, requests, call).await
}

/// A JSON body: an array is a batch, anything else one request. Decided by the first byte
/// rather than by `BatchRequest`'s untagged deserializer, which reads `[]` (and arrays of
/// strings) as a single request, since serde lets a struct be read from a sequence.
fn read_json_body(body: &[u8]) -> serde_json::Result<BatchRequest> {
    if body.trim_ascii_start().first() == Some(&b'[') {
        serde_json::from_slice(body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(body).map(BatchRequest::Single)
    }
}

/// How an HTTP request carrying GraphQL requests came in.
struct Call<'a> {
    headers: &'a HeaderMap,
    media: MediaType,
    /// Sent by GET, where mutations are refused.
    by_get: bool,
    /// A JSON array: answered with an array.
    batched: bool,
    context: SignInContext,
}

/// Checks the limits of every request first, so that an over-limit batch runs nothing, then
/// runs them in order.
async fn execute(
    endpoint: &Endpoint,
    mut requests: Vec<async_graphql::Request>,
    call: Call<'_>,
) -> Response {
    let config = &endpoint.state.config.graphql;
    let media = call.media;
    // Per request, what the cache found; `None` for a document that did not parse.
    let mut parsed = Vec::with_capacity(requests.len());
    let mut auth_fields = 0usize;
    for request in &mut requests {
        let operation_name = request.operation_name.clone();
        let Ok((doc, found)) = endpoint.documents.parse(request) else {
            // Execution reports the parse error in the request's own answer.
            parsed.push(None);
            continue;
        };
        parsed.push(Some(found));
        if call.by_get && selected_operation_is_mutation(doc, operation_name.as_deref()) {
            let mut response = request_error(
                StatusCode::METHOD_NOT_ALLOWED,
                media,
                "BAD_REQUEST",
                "mutations must be sent with POST",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let stats = match DocumentStats::measure(doc, operation_name.as_deref(), config) {
            Ok(stats) => stats,
            Err(exceeded) => return limit_error(media, call.batched, exceeded),
        };
        auth_fields = auth_fields.saturating_add(stats.auth_fields);
    }
    if let Err(exceeded) = limits::check_auth_fields(auth_fields, config) {
        return limit_error(media, call.batched, exceeded);
    }
    let authorization = authorization(call.headers);
    let mut bodies = Vec::with_capacity(requests.len());
    let mut request_failed = false;
    let mut faults = Vec::new();
    for (request, parsed) in requests.into_iter().zip(parsed) {
        let operation_name = request.operation_name.clone();
        let query_text = request.query.clone();
        let request = request
            .data(RequestAuth::new(authorization.clone()))
            .data(call.context.clone());
        let started = std::time::Instant::now();
        let validated = parsed.as_ref().is_some_and(Parsed::validated);
        let schema = if validated {
            &endpoint.validated_schema
        } else {
            &endpoint.schema
        };
        let mut response = schema.execute(request).await;
        let failed = classify_errors(
            &mut response.errors,
            parsed.is_none(),
            &query_text,
            &mut faults,
        );
        if let Some(parsed) = parsed.filter(|_| !failed && !validated) {
            parsed.mark_validated();
        }
        request_failed |= failed;
        endpoint.state.metrics.observe_graphql(
            operation_name.as_deref(),
            response.errors.is_empty(),
            started,
        );
        // A request that failed before execution has no `data` entry (GraphQL spec,
        // "Response"; the GraphQL-over-HTTP spec pairs its 400 with that). Each answer is
        // written straight to JSON text, without an intermediate `serde_json::Value`.
        let body = if failed {
            serde_json::to_string(&FailedResponse {
                errors: &response.errors,
            })
        } else {
            serde_json::to_string(&response)
        };
        match body {
            Ok(body) => bodies.push(body),
            Err(e) => {
                let mut response = request_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    media,
                    "INTERNAL_SERVER_ERROR",
                    "internal server error",
                );
                if let Some(fault) = AppError::internal(e).server_fault() {
                    Faults::attach(&mut response, fault);
                }
                return response;
            }
        }
    }
    // A batch is outside the GraphQL-over-HTTP spec: its entries carry their own errors.
    let status = if request_failed && media == MediaType::GraphqlResponse && !call.batched {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if call.batched {
        format!("[{}]", bodies.join(","))
    } else {
        // The one answer (`pop` of a one-element list).
        bodies.pop().unwrap_or_default()
    };
    let mut response = (status, [(header::CONTENT_TYPE, media.as_str())], body).into_response();
    for fault in faults {
        Faults::attach(&mut response, fault);
    }
    response
}

/// A request over a document limit is refused like a document that fails validation (it is
/// one, of the server's own rules): 400 with `application/graphql-response+json`, 200 with
/// `application/json` as the GraphQL-over-HTTP spec asks. A batch is refused whole with 400.
fn limit_error(media: MediaType, batched: bool, exceeded: LimitExceeded) -> Response {
    let status = if batched || media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    request_error(status, media, "GRAPHQL_VALIDATION_FAILED", &exceeded.0)
}

fn selected_operation_is_mutation(
    doc: &async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> bool {
    use async_graphql::parser::types::DocumentOperations;
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => op.node.ty == OperationType::Mutation,
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get(name)
            .is_some_and(|op| op.node.ty == OperationType::Mutation),
        // Several operations and no name: execution will refuse it anyway.
        (DocumentOperations::Multiple(_), None) => false,
    }
}

/// Gives every error its `extensions.code` — from the `AppError` a resolver returned, or from
/// where it arose — and replaces unexpected messages with a generic one. Returns whether the
/// request failed before execution (parse or validation). `query` is the request's document.
fn classify_errors(
    errors: &mut [ServerError],
    parse_failed: bool,
    query: &str,
    faults: &mut Vec<ServerFault>,
) -> bool {
    let mut request_failed = false;
    for err in errors.iter_mut() {
        let known = err.source::<AppError>().map(|app| {
            faults.extend(app.server_fault());
            let detail = match app {
                AppError::Validation { field, .. } => Some((
                    "field",
                    async_graphql::Value::from(errors::argument(*field)),
                )),
                AppError::RateLimited { retry_after } => {
                    Some(("retryAfter", async_graphql::Value::from(*retry_after)))
                }
                _ => None,
            };
            (errors::code(app), detail, app.to_string())
        });
        let extensions = err.extensions.get_or_insert_with(Default::default);
        match known {
            Some((code, detail, message)) => {
                extensions.set("code", code);
                if let Some((name, value)) = detail {
                    extensions.set(name, value);
                }
                err.message = message;
            }
            None if err.path.is_empty() => {
                request_failed = true;
                extensions.set(
                    "code",
                    if parse_failed {
                        "GRAPHQL_PARSE_FAILED"
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    },
                );
            }
            None if is_input_coercion_error(&err.message) => {
                extensions.set("code", "BAD_USER_INPUT");
                if let Some(name) = err
                    .locations
                    .first()
                    .and_then(|pos| argument_at(query, *pos))
                {
                    extensions.set("field", name);
                }
            }
            None => {
                tracing::error!(error = %err.message, path = ?err.path, "unexpected resolver error");
                extensions.set("code", "INTERNAL_SERVER_ERROR");
                err.message = "internal server error".to_owned();
            }
        }
    }
    request_failed
}

/// Whether an error async-graphql raised while resolving a field is an argument value that
/// did not coerce to its type, which its validation lets through (an `Int` literal or variable
/// beyond 32 bits): the client's input, not a server fault. These are the messages of its
/// `InputValueError`.
fn is_input_coercion_error(message: &str) -> bool {
    message.starts_with("Failed to parse \"") || message.starts_with("Expected input type \"")
}

/// The name of the argument whose value is at `pos` in `query` (an error's location), for
/// `extensions.field`. Only called for a failed request, so parsing again costs nothing on the
/// normal path.
fn argument_at(query: &str, pos: Pos) -> Option<String> {
    let doc = async_graphql::parser::parse_query(query).ok()?;
    let mut sets: Vec<&SelectionSet> = doc
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .collect();
    sets.extend(doc.fragments.values().map(|f| &f.node.selection_set.node));
    while let Some(set) = sets.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let found = field
                        .node
                        .arguments
                        .iter()
                        .find(|(_, value)| value.pos == pos);
                    if let Some((name, _)) = found {
                        return Some(name.node.to_string());
                    }
                    sets.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => sets.push(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept("application/json")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept(GRAPHQL_RESPONSE_JSON)),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            negotiate(&accept(
                "application/json, application/graphql-response+json"
            )),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("text/html")), None);
    }
}
