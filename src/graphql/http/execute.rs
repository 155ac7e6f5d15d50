//! Running the GraphQL requests of one HTTP request: the limits of every document first, then
//! each request in turn, its errors classified, and the answer written.

use async_graphql::ServerError;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Endpoint;
use super::classify::classify_errors;
use super::negotiate::MediaType;
use super::refusal::{
    Shape, limit_error, mutation_by_get, persisted_error, persisted_not_found_answer,
    request_error, unavailable,
};
use super::request::Requests;
use crate::error::AppError;
use crate::graphql::documents::Parsed;
use crate::graphql::limits::{self, DocumentStats};
use crate::graphql::persisted::{self, Kept, Persisted, PersistedError};
use crate::graphql::{Caller, errors};
use crate::signins::SignInContext;
use crate::users::Freshness;
use crate::web::access_log::Faults;

/// How an HTTP request carrying GraphQL requests came in.
pub(super) struct Call<'a> {
    pub(super) headers: &'a HeaderMap,
    /// Sent by GET, where mutations are refused.
    pub(super) by_get: bool,
    pub(super) context: SignInContext,
}

/// The answer to a request that failed before execution: errors and no `data`.
#[derive(serde::Serialize)]
struct FailedResponse<'a> {
    errors: &'a [ServerError],
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .map(crate::web::header_text)
}

/// Checks the limits of every request first, so that an over-limit batch runs nothing, then
/// runs them in order and answers in `media`.
pub(super) async fn execute(
    endpoint: &Endpoint,
    requests: Requests,
    call: Call<'_>,
    media: MediaType,
) -> Response {
    let config = &endpoint.state.config.graphql;
    let Requests {
        list: mut requests,
        batched,
    } = requests;
    let shape = Shape::of(batched, requests.len());
    // Persisted queries first: a hash alone becomes its document, checked below like any. In
    // a batch, an unknown hash is answered in its entry's place and the others run: not
    // finding a hash is a step of the protocol, after which the client resends that entry.
    let mut to_keep = Vec::new();
    // Their positions; empty (allocating nothing) for all but such batches.
    let mut unknown: Vec<usize> = Vec::new();
    for (at, request) in requests.iter_mut().enumerate() {
        match persisted::read(&request.query, &request.extensions) {
            Ok(Persisted::No) => {}
            Ok(Persisted::Register(hash)) if request.query.len() <= persisted::MAX_KEPT_TEXT => {
                to_keep.push((hash, request.query.clone()));
            }
            // Run, not kept: its hash alone stays unknown, and the client keeps sending both.
            Ok(Persisted::Register(_)) => {}
            Ok(Persisted::Lookup(hash)) => match endpoint.persisted.get(&hash).await {
                Ok(Some(text)) => request.query = text,
                Ok(None) if batched => unknown.push(at),
                Ok(None) => return persisted_error(media, shape, PersistedError::NotFound),
                Err(e) => return unavailable(media, shape, e),
            },
            Err(e) => return persisted_error(media, shape, e),
        }
    }
    // Per request, what the cache found; `None` for a document that did not parse.
    let mut parsed = Vec::with_capacity(requests.len());
    let mut auth_fields = 0usize;
    let mut writes = false;
    for (at, request) in requests.iter_mut().enumerate() {
        if unknown.contains(&at) {
            parsed.push(None);
            continue;
        }
        let operation_name = request.operation_name.clone();
        let Ok((doc, found)) = endpoint.documents.parse(request) else {
            // Execution reports the parse error in the request's own answer.
            parsed.push(None);
            continue;
        };
        parsed.push(Some(found));
        let mutation = selected_operation_is_mutation(doc, operation_name.as_deref());
        if call.by_get && mutation {
            return mutation_by_get(media);
        }
        writes |= mutation;
        let stats = match DocumentStats::measure(doc, operation_name.as_deref(), config) {
            Ok(stats) => stats,
            Err(exceeded) => return limit_error(media, shape, exceeded),
        };
        auth_fields = auth_fields.saturating_add(stats.auth_fields);
    }
    if let Err(exceeded) = limits::check_auth_fields(auth_fields, config) {
        return limit_error(media, shape, exceeded);
    }
    // Kept only once within every limit, so a hash never stands for a refused document. A
    // store that fails costs the client a resend, not this answer.
    for (hash, text) in to_keep {
        match endpoint.persisted.keep(&hash, &text, call.context.ip).await {
            Ok(Kept::Yes) => {}
            Ok(Kept::OverLimit) => {
                tracing::debug!(client = ?call.context.ip, "a persisted query not kept: over its address's limit");
            }
            Err(e) => tracing::warn!(error = %e, "cannot keep a persisted query"),
        }
    }
    // Reads of other users may come from a replica, unless the request writes: then every
    // read of it sees its writes (and those of the batch's other entries).
    let freshness = if writes {
        Freshness::Latest
    } else {
        Freshness::MayLag
    };
    let authorization = authorization(call.headers);
    let mut bodies = Vec::with_capacity(requests.len());
    let mut request_failed = false;
    let mut faults = Vec::new();
    for (at, (request, parsed)) in requests.into_iter().zip(parsed).enumerate() {
        if unknown.contains(&at) {
            bodies.push(persisted_not_found_answer());
            continue;
        }
        let operation_name = request.operation_name.clone();
        let query_text = request.query.clone();
        let request = request.data(Caller::new(
            authorization.clone(),
            call.context.clone(),
            freshness,
        ));
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
                    errors::INTERNAL,
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
    let status = if request_failed && media == MediaType::GraphqlResponse && !batched {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = if batched {
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

/// Whether the operation that will run is a mutation. Chosen as async-graphql chooses it: a
/// named operation is parsed into `Multiple` even when it is the only one, and without an
/// operation name that one runs; several operations and no name run nothing.
fn selected_operation_is_mutation(doc: &ExecutableDocument, name: Option<&str>) -> bool {
    crate::graphql::selected_operation_type(doc, name) == Some(OperationType::Mutation)
}
