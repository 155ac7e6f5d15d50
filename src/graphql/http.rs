//! GraphQL over HTTP: GET and POST `/graphql` per the GraphQL-over-HTTP spec, and GraphiQL.
//!
//! Written by hand rather than with async-graphql-axum's extractor because that one answers
//! `application/graphql-response+json` to clients that asked for `application/json`, reads
//! batches unasked, and runs mutations sent by GET.

use async_graphql::parser::types::{OperationType, Selection, SelectionSet};
use async_graphql::{BatchRequest, Pos, ServerError};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{ApiSchema, RequestAuth, build_schema};
use crate::error::AppError;
use crate::state::AppState;

/// What the GraphQL handlers need: the schema (built once) and the state (for metrics).
#[derive(Clone)]
pub struct Endpoint {
    schema: ApiSchema,
    state: AppState,
}

impl Endpoint {
    /// Builds the schema for `state`.
    pub fn new(state: AppState) -> Self {
        Endpoint {
            schema: build_schema(Some(state.clone())),
            state,
        }
    }
}

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
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
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

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `GET /graphql`: queries from the query string. Mutations are refused with 405.
pub async fn get_graphql(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or("")) {
        Ok(request) if !request.query.is_empty() => request,
        _ => {
            return request_error(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                "a GET request needs a `query` parameter",
            );
        }
    };
    execute(&endpoint, request, &headers, media, true).await
}

/// `POST /graphql`: one request as JSON (`application/json`) or a bare document
/// (`application/graphql`). Batches are refused.
pub async fn post_graphql(
    State(endpoint): State<Endpoint>,
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
    let request = match content_type.as_deref() {
        Some("application/json") => match serde_json::from_slice::<BatchRequest>(&body) {
            Ok(BatchRequest::Single(request)) => request,
            Ok(BatchRequest::Batch(_)) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    "batched requests are not supported; send one operation per request",
                );
            }
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
            Ok(query) => async_graphql::Request::new(query),
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
    execute(&endpoint, request, &headers, media, false).await
}

async fn execute(
    endpoint: &Endpoint,
    mut request: async_graphql::Request,
    headers: &HeaderMap,
    media: MediaType,
    by_get: bool,
) -> Response {
    let operation_name = request.operation_name.clone();
    let query_text = request.query.clone();
    let parse_failed = match request.parsed_query() {
        Ok(doc) => {
            if by_get && selected_operation_is_mutation(doc, operation_name.as_deref()) {
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
            false
        }
        Err(_) => true,
    };
    let request = request.data(RequestAuth::new(authorization(headers)));
    let started = std::time::Instant::now();
    let mut response = endpoint.schema.execute(request).await;
    let request_failed = classify_errors(&mut response.errors, parse_failed, &query_text);
    endpoint.state.metrics.observe_graphql(
        operation_name.as_deref(),
        response.errors.is_empty(),
        started,
    );
    let status = if request_failed && media == MediaType::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    // An error raised before execution (parse or validation) leaves no `data` entry at all,
    // as the GraphQL spec asks ("should not be present"); async-graphql would write `null`.
    let body = if request_failed {
        #[derive(serde::Serialize)]
        struct RequestErrors<'a> {
            errors: &'a [ServerError],
        }
        serde_json::to_string(&RequestErrors {
            errors: &response.errors,
        })
    } else {
        serde_json::to_string(&response)
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            AppError::internal(e).log();
            return request_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                media,
                "INTERNAL_SERVER_ERROR",
                "internal server error",
            );
        }
    };
    (status, [(header::CONTENT_TYPE, media.as_str())], body).into_response()
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
fn classify_errors(errors: &mut [ServerError], parse_failed: bool, query: &str) -> bool {
    let mut request_failed = false;
    for err in errors.iter_mut() {
        let known = err.source::<AppError>().map(|app| {
            app.log();
            let detail = match app {
                AppError::Validation { field, .. } => {
                    Some(("field", async_graphql::Value::from(*field)))
                }
                AppError::RateLimited { retry_after } => {
                    Some(("retryAfter", async_graphql::Value::from(*retry_after)))
                }
                _ => None,
            };
            (app.code(), detail, app.to_string())
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

/// `GET /graphiql`: the GraphiQL playground, pointed at `/graphql`.
pub async fn graphiql() -> Html<String> {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .title("user-api GraphiQL")
            .finish(),
    )
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
