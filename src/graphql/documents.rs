//! Parsed GraphQL documents, kept by their text. Frontends send the same few documents over and
//! over, and parsing one is the largest single cost of a small request, where cloning a cached
//! document into the request costs a fraction of it.
//!
//! A cached document also remembers whether it passed the spec's validation rules, when their
//! outcome depends on nothing but its text (it declares no variables, and has one operation,
//! run without naming another): validating the same text again would find the same, and it is
//! a noticeable share of a small request's work, so the HTTP handler runs such a document on a
//! schema that skips those rules (its depth and complexity limits kept). A document is marked
//! only after a run with full validation found no request error; tests/api/graphql_adapter.rs
//! checks that invalid documents, variables and operation names are refused however often the
//! text was seen. bench/RESULTS.md has the measurements of both savings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::ServerError;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Documents longer than this are parsed every time: real frontends' operations are far
/// smaller, and one huge document must not push out many small ones.
const MAX_CACHED_TEXT: usize = 8 * 1024;
/// The cache's capacity, in bytes of document text (the parsed form takes several times that).
const CAPACITY_BYTES: u64 = 1024 * 1024;
/// A guess at the number of documents it holds, for sizing its tables.
const ESTIMATED_DOCUMENTS: usize = 1024;

/// Weighs an entry by the length of its text, so the cache's memory stays bounded whatever
/// mix of documents clients send.
#[derive(Debug, Clone, Copy)]
struct TextLength;

impl Weighter<String, Entry> for TextLength {
    fn weight(&self, text: &String, _entry: &Entry) -> u64 {
        // Never zero: quick_cache keeps zero-weight entries without counting them.
        (text.len() as u64).max(1)
    }
}

/// A parsed document and whether it passed validation.
#[derive(Clone)]
struct Entry {
    doc: ExecutableDocument,
    validated: Arc<AtomicBool>,
}

/// A request's parsed document, as [`DocumentCache::parse`] found it.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The cache's flag for this document, when its validation depends on its text alone.
    flag: Option<Arc<AtomicBool>>,
}

impl Parsed {
    /// Whether the document already passed the spec's validation rules.
    pub fn validated(&self) -> bool {
        self.flag
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Records that the document passed the spec's validation rules.
    pub fn mark_validated(&self) {
        if let Some(flag) = &self.flag {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether validating `doc` has an outcome that depends on its text alone: it declares no
/// variables (whose values the rules check) and has one operation, run without naming another.
fn validation_depends_on_text_alone(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
) -> bool {
    match &doc.operations {
        DocumentOperations::Single(op) => {
            operation_name.is_none() && op.node.variable_definitions.is_empty()
        }
        DocumentOperations::Multiple(_) => false,
    }
}

/// A bounded, concurrent cache of parsed documents keyed by their exact text.
pub struct DocumentCache {
    documents: Cache<String, Entry, TextLength>,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("documents", &self.documents.len())
            .finish()
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache {
            documents: Cache::with_weighter(ESTIMATED_DOCUMENTS, CAPACITY_BYTES, TextLength),
        }
    }
}

impl DocumentCache {
    /// The request's parsed document: the cached one for its text, or a fresh parse, which is
    /// then cached. A document that does not parse is not cached; its error is the request's.
    pub fn parse<'r>(
        &self,
        request: &'r mut async_graphql::Request,
    ) -> Result<(&'r ExecutableDocument, Parsed), ServerError> {
        let cacheable = request.query.len() <= MAX_CACHED_TEXT;
        if cacheable && let Some(entry) = self.documents.get(request.query.as_str()) {
            let flag =
                validation_depends_on_text_alone(&entry.doc, request.operation_name.as_deref())
                    .then_some(entry.validated);
            request.set_parsed_query(entry.doc);
            return Ok((request.parsed_query()?, Parsed { flag }));
        }
        let query = cacheable.then(|| request.query.clone());
        let operation_name = request.operation_name.clone();
        let doc = request.parsed_query()?;
        let mut parsed = Parsed::default();
        if let Some(query) = query {
            let validated = Arc::new(AtomicBool::new(false));
            if validation_depends_on_text_alone(doc, operation_name.as_deref()) {
                parsed.flag = Some(Arc::clone(&validated));
            }
            let entry = Entry {
                doc: doc.clone(),
                validated,
            };
            self.documents.insert(query, entry);
        }
        Ok((doc, parsed))
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_a_parsed_document_and_skips_bad_or_huge_ones() {
        let cache = DocumentCache::default();
        let mut first = async_graphql::Request::new("{ me { id } }");
        let parsed = cache.parse(&mut first).unwrap().0.clone();
        assert_eq!(cache.len(), 1);
        let mut again = async_graphql::Request::new("{ me { id } }");
        assert_eq!(
            format!("{:?}", cache.parse(&mut again).unwrap().0),
            format!("{parsed:?}")
        );
        assert_eq!(cache.len(), 1);

        let mut broken = async_graphql::Request::new("{ me { id ");
        assert!(cache.parse(&mut broken).is_err());
        assert_eq!(cache.len(), 1);

        let huge = format!(
            "{{ me {{ id {} }} }}",
            "username ".repeat(MAX_CACHED_TEXT / 9)
        );
        let mut huge = async_graphql::Request::new(huge);
        assert!(cache.parse(&mut huge).is_ok());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn remembers_validation_only_where_the_text_decides_it() {
        let cache = DocumentCache::default();
        let parse = |text: &str, name: Option<&str>| {
            let mut request = async_graphql::Request::new(text);
            request.operation_name = name.map(str::to_owned);
            cache.parse(&mut request).unwrap().1
        };
        let first = parse("{ me { id } }", None);
        assert!(!first.validated());
        first.mark_validated();
        assert!(parse("{ me { id } }", None).validated());
        // Naming the operation, declaring variables or holding several operations: the
        // outcome of validation depends on more than the text, so it is never remembered.
        let named = parse("{ me { id } }", Some("Me"));
        named.mark_validated();
        assert!(!named.validated());
        let text = "query Q($id: ID!) { user(id: $id) { id } }";
        parse(text, None).mark_validated();
        assert!(!parse(text, None).validated());
        let text = "query A { me { id } } query B { me { username } }";
        parse(text, None).mark_validated();
        assert!(!parse(text, None).validated());
    }

    #[test]
    fn stays_within_its_capacity() {
        let cache = DocumentCache::default();
        let padding = "x".repeat(4000);
        for i in 0..1000 {
            let mut request =
                async_graphql::Request::new(format!("query Q{i}{padding} {{ me {{ id }} }}"));
            cache.parse(&mut request).unwrap();
        }
        assert!(cache.documents.weight() <= CAPACITY_BYTES);
        assert!(cache.len() < 1000);
    }
}
