//! Reading the GraphQL requests an HTTP request carries: from the query string of a GET, or
//! from a POST body (JSON, a JSON batch, or a bare `application/graphql` document).

use std::borrow::Cow;

use async_graphql::BatchRequest;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, Uri};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::graphql::{KeptRequest, persisted};
use crate::web::media;

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
    /// What the parameters ask, or `None` without a query (or a persisted query's hash in
    /// place of one) or with malformed JSON in a parameter.
    fn read(self) -> Option<KeptRequest> {
        let mut request = async_graphql::Request::new(self.query);
        request.operation_name = self.operation_name;
        if let Some(variables) = self.variables {
            request.variables = serde_json::from_str(&variables).ok()?;
        }
        if let Some(extensions) = self.extensions {
            request.extensions = serde_json::from_str(&extensions).ok()?;
        }
        (!request.query.is_empty() || persisted::requested(&request.extensions))
            .then(|| KeptRequest::of(&request))
    }
}

/// The GraphQL requests of one HTTP request.
pub(super) struct Requests {
    /// In the order they came.
    pub(super) list: Vec<async_graphql::Request>,
    /// A JSON array: answered with an array.
    pub(super) batched: bool,
}

impl Requests {
    fn one(request: async_graphql::Request) -> Self {
        Requests {
            list: vec![request],
            batched: false,
        }
    }
}

/// Why an HTTP request holds no GraphQL request to run: answered with `status` and this
/// message, code `BAD_REQUEST`.
pub(super) struct Unreadable {
    pub(super) status: StatusCode,
    pub(super) message: Cow<'static, str>,
}

fn bad_request(message: impl Into<Cow<'static, str>>) -> Unreadable {
    Unreadable {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

/// The request in a GET's query string, read through `cache`.
pub(super) fn read_get(uri: &Uri, cache: &GetCache) -> Result<Requests, Unreadable> {
    let text = uri.query().unwrap_or_default();
    if let Some(read) = cache.0.get(text) {
        return Ok(Requests::one(read.request()));
    }
    let read = Query::<GetParams>::try_from_uri(uri)
        .ok()
        .and_then(|Query(params)| params.read())
        .ok_or_else(|| {
            bad_request(
                "a GET request needs a `query` parameter (and `variables`, if any, as JSON)",
            )
        })?;
    if text.len() <= MAX_CACHED_QUERY_STRING {
        cache.0.insert(text.to_owned(), read.clone());
    }
    Ok(Requests::one(read.request()))
}

/// Query strings longer than this are read every time: one huge URL must not push out many
/// small ones.
const MAX_CACHED_QUERY_STRING: usize = 4 * 1024;
/// The cache's capacity, in bytes of query string.
const GET_CACHE_BYTES: u64 = 1024 * 1024;

/// GET requests already read, by their exact query string. A frontend (or a CDN in front of
/// the server) sends the same few URLs over and over, a persisted query's most of all; reading
/// one means percent-decoding JSON and parsing it, several times the cost of cloning what it
/// gave (bench/RESULTS.md, "Instructions per request"). Only what parsed is kept.
pub struct GetCache(Cache<String, KeptRequest, QueryStringLength>);

impl Default for GetCache {
    fn default() -> Self {
        GetCache(Cache::with_weighter(
            1024,
            GET_CACHE_BYTES,
            QueryStringLength,
        ))
    }
}

impl std::fmt::Debug for GetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("GetCache").field(&self.0.len()).finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct QueryStringLength;

impl Weighter<String, KeptRequest> for QueryStringLength {
    fn weight(&self, text: &String, _read: &KeptRequest) -> u64 {
        // Never zero: quick_cache keeps zero-weight entries without counting them.
        (text.len() as u64).max(1)
    }
}

/// The requests in a POST body: one as JSON (`application/json`) or a bare document
/// (`application/graphql`); or, when `max_batch` is above 1, a JSON array of up to that many.
pub(super) fn read_post(
    headers: &HeaderMap,
    body: &[u8],
    max_batch: usize,
) -> Result<Requests, Unreadable> {
    match media::content_type(headers).as_deref() {
        Some("application/json") => match read_json_body(body) {
            Ok(BatchRequest::Single(request))
                if !request.query.is_empty() || persisted::requested(&request.extensions) =>
            {
                Ok(Requests::one(request))
            }
            Ok(BatchRequest::Single(_)) => Err(bad_request("the request needs a `query`")),
            Ok(BatchRequest::Batch(_)) if max_batch <= 1 => Err(bad_request(
                "batched requests are not supported; send one operation per request",
            )),
            Ok(BatchRequest::Batch(requests)) if requests.is_empty() => {
                Err(bad_request("the batch is empty"))
            }
            Ok(BatchRequest::Batch(requests)) if requests.len() > max_batch => {
                Err(bad_request(format!(
                    "the batch has {} operations; at most {max_batch} are allowed",
                    requests.len()
                )))
            }
            Ok(BatchRequest::Batch(requests)) => Ok(Requests {
                list: requests,
                batched: true,
            }),
            Err(_) => Err(bad_request(
                "the body is not a JSON GraphQL request ({\"query\": …})",
            )),
        },
        Some("application/graphql") => match std::str::from_utf8(body) {
            Ok(query) => Ok(Requests::one(async_graphql::Request::new(query))),
            Err(_) => Err(bad_request("the body is not UTF-8")),
        },
        _ => Err(Unreadable {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the request as application/json".into(),
        }),
    }
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
