//! Automatic persisted queries (Apollo's protocol): a client sends a document's SHA-256 in
//! `extensions.persistedQuery` instead of the document; the first time, the server answers
//! `PersistedQueryNotFound` and the client sends both, which the server checks and keeps.
//! After that the hash alone (by GET too, so that the answer can be cached by URL) stands
//! for the document. The document found is then run like any other: every limit and every
//! validation rule applies to it each time.
//!
//! Kept in a bounded in-process cache, and in Redis when the server has one (shared by
//! replicas, each document for [`REDIS_TTL`] after it was last registered). Anyone may
//! register documents, so each client address may have only so many new ones kept
//! (`RATE_LIMIT_PERSISTED_QUERIES_PER_IP`): past that, a document runs but is not kept, and the
//! client, finding its hash unknown, goes on sending the document with it.

use std::net::IpAddr;
use std::time::Duration;

use async_graphql::Value;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use crate::config::RateLimitConfig;
use crate::error::AppError;
use crate::infra::redis::{self, Redis};
use crate::ratelimit::{RateLimiter, Scope, address_key};

/// How long Redis keeps a document after it was last registered.
pub const REDIS_TTL: Duration = Duration::from_secs(24 * 3600);
/// Documents longer than this are run but not kept: a frontend's operations are far smaller,
/// and anyone may register documents, so each one kept must cost little (in Redis, for a day).
pub const MAX_KEPT_TEXT: usize = 8 * 1024;
/// The in-process cache's capacity, in bytes of document text.
const MEMORY_BYTES: u64 = 8 * 1024 * 1024;
/// A guess at the number of documents the in-process cache holds, for sizing its tables.
const ESTIMATED_DOCUMENTS: usize = 4096;

/// What a request asks of the persisted documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persisted {
    /// Nothing: it carries its document and no hash.
    No,
    /// Run the document kept under this hash (the request has no document).
    Lookup(String),
    /// Keep the request's document under this hash, which is its SHA-256 (checked), and run it.
    Register(String),
}

/// Why a request's persisted-query extension cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistedError {
    /// No document is kept under the hash: the client should send the document with it.
    NotFound,
    /// The extension is malformed, of another version, or its hash is not the document's.
    Invalid(&'static str),
}

/// Whether `extensions` (a request's) holds a `persistedQuery` entry at all.
pub fn requested(extensions: &std::collections::HashMap<String, Value>) -> bool {
    extensions.contains_key("persistedQuery")
}

/// What the request with `query` and `extensions` asks for.
pub fn read(
    query: &str,
    extensions: &std::collections::HashMap<String, Value>,
) -> Result<Persisted, PersistedError> {
    let Some(extension) = extensions.get("persistedQuery") else {
        return Ok(Persisted::No);
    };
    let Value::Object(fields) = extension else {
        return Err(PersistedError::Invalid("persistedQuery must be an object"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => {
            return Err(PersistedError::Invalid(
                "only version 1 of persisted queries is supported",
            ));
        }
    }
    let hash = match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            hash.to_ascii_lowercase()
        }
        _ => {
            return Err(PersistedError::Invalid(
                "persistedQuery.sha256Hash must be 64 hexadecimal digits",
            ));
        }
    };
    if query.is_empty() {
        return Ok(Persisted::Lookup(hash));
    }
    if hex_sha256(query) != hash {
        return Err(PersistedError::Invalid("provided sha does not match query"));
    }
    Ok(Persisted::Register(hash))
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Weighs a kept document by its length, so the in-process cache's memory stays bounded.
#[derive(Debug, Clone, Copy)]
pub struct TextLength;

impl Weighter<String, String> for TextLength {
    fn weight(&self, hash: &String, text: &String) -> u64 {
        (hash.len() + text.len()) as u64
    }
}

/// Where the documents are kept: in this process, the least used going first past
/// [`MEMORY_BYTES`]; and with Redis, there too, under `{prefix}apq:{hash}`, shared by every
/// replica. A hash names its document's content, so a document found once may be kept here
/// for good: with Redis, the process's cache answers the documents it already met, and only
/// the others cost a round trip.
#[derive(Debug)]
pub struct PersistedQueries {
    local: Cache<String, String, TextLength>,
    shared: Option<SharedStore>,
    /// Counts the new documents each client address has kept.
    limiter: RateLimiter,
}

/// Whether [`PersistedQueries::keep`] kept a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Kept, or renewed.
    Yes,
    /// Not kept: its client's address had kept as many new documents as it may.
    OverLimit,
}

/// The Redis side of [`PersistedQueries`].
#[derive(Debug)]
struct SharedStore {
    pool: Redis,
    /// REDIS_KEY_PREFIX.
    prefix: String,
    /// How long a command may take.
    timeout: Duration,
}

impl SharedStore {
    /// The Redis key of `hash`: `{prefix}apq:{hash}`.
    fn key(&self, hash: &str) -> String {
        format!("{}apq:{hash}", self.prefix)
    }
}

impl PersistedQueries {
    /// In-process only, new documents counted per address under `limits`.
    pub fn memory(limits: &RateLimitConfig) -> Self {
        PersistedQueries {
            local: Cache::with_weighter(ESTIMATED_DOCUMENTS, MEMORY_BYTES, TextLength),
            shared: None,
            limiter: RateLimiter::in_memory(limits),
        }
    }

    /// In Redis, under keys that begin with `prefix`, and in-process; new documents counted
    /// per address in Redis too, so that every replica counts them together.
    pub fn redis(limits: &RateLimitConfig, pool: Redis, prefix: &str, timeout: Duration) -> Self {
        PersistedQueries {
            limiter: RateLimiter::redis(limits, pool.clone(), prefix, timeout),
            shared: Some(SharedStore {
                pool,
                prefix: prefix.to_owned(),
                timeout,
            }),
            local: Cache::with_weighter(ESTIMATED_DOCUMENTS, MEMORY_BYTES, TextLength),
        }
    }

    /// The document kept under `hash`. Fails only when Redis does.
    pub async fn get(&self, hash: &str) -> anyhow::Result<Option<String>> {
        if let Some(text) = self.local.get(hash) {
            return Ok(Some(text));
        }
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let key = shared.key(hash);
        let found: Option<String> = redis::run(&shared.pool, shared.timeout, async move |c| {
            ::redis::cmd("GET").arg(&key).query_async(c).await
        })
        .await?;
        if let Some(text) = &found {
            self.local.insert(hash.to_owned(), text.clone());
        }
        Ok(found)
    }

    /// Keeps `text` under `hash` (its SHA-256, checked by [`read`]) for the client at
    /// `client`, unless that address has had as many new documents kept as it may. A document
    /// kept already (in this process or in Redis) is not new: keeping it again only renews it
    /// in Redis, whoever sends it.
    pub async fn keep(
        &self,
        hash: &str,
        text: &str,
        client: Option<IpAddr>,
    ) -> anyhow::Result<Kept> {
        // Counts out of reach mean Redis is: the document is still kept in this process's
        // bounded cache, and the write to Redis below reports the outage.
        let known = matches!(self.get(hash).await, Ok(Some(_)));
        if !known
            && let Err(AppError::RateLimited { .. }) = self
                .limiter
                .check(Scope::PersistedQueriesPerIp, &address_key(client))
                .await
        {
            return Ok(Kept::OverLimit);
        }
        self.local.insert(hash.to_owned(), text.to_owned());
        let Some(shared) = &self.shared else {
            return Ok(Kept::Yes);
        };
        let key = shared.key(hash);
        redis::run(&shared.pool, shared.timeout, async move |c| {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(text)
                .arg("EX")
                .arg(REDIS_TTL.as_secs())
                .query_async::<()>(c)
                .await
        })
        .await?;
        Ok(Kept::Yes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extensions(value: serde_json::Value) -> std::collections::HashMap<String, Value> {
        serde_json::from_value(serde_json::json!({ "persistedQuery": value })).unwrap()
    }

    #[test]
    fn the_extension_is_read_and_checked() {
        let query = "{ me { id } }";
        let hash = hex_sha256(query);
        let ext = extensions(serde_json::json!({"version": 1, "sha256Hash": hash}));
        assert_eq!(read("", &ext), Ok(Persisted::Lookup(hash.clone())));
        assert_eq!(read(query, &ext), Ok(Persisted::Register(hash.clone())));
        assert!(matches!(
            read("{ me { username } }", &ext),
            Err(PersistedError::Invalid(_))
        ));
        let upper =
            extensions(serde_json::json!({"version": 1, "sha256Hash": hash.to_uppercase()}));
        assert_eq!(read("", &upper), Ok(Persisted::Lookup(hash.clone())));
        for bad in [
            serde_json::json!({"version": 2, "sha256Hash": hash}),
            serde_json::json!({"sha256Hash": hash}),
            serde_json::json!({"version": 1, "sha256Hash": "abc"}),
            serde_json::json!({"version": 1}),
            serde_json::json!("x"),
        ] {
            assert!(matches!(
                read("", &extensions(bad)),
                Err(PersistedError::Invalid(_))
            ));
        }
        assert_eq!(read(query, &Default::default()), Ok(Persisted::No));
    }
}
