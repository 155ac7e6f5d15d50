//! Parsed GraphQL documents, kept by their text. Frontends send the same few documents over and
//! over, and parsing one is the largest single cost of a small request: for `{ me { … } }` it
//! was a quarter of the server's instructions (bench/RESULTS.md). A cached document is cloned
//! into each request, which costs a fraction of a parse.

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;
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

impl Weighter<String, ExecutableDocument> for TextLength {
    fn weight(&self, text: &String, _doc: &ExecutableDocument) -> u64 {
        // Never zero: quick_cache keeps zero-weight entries without counting them.
        (text.len() as u64).max(1)
    }
}

/// A bounded, concurrent cache of parsed documents keyed by their exact text.
pub struct DocumentCache {
    documents: Cache<String, ExecutableDocument, TextLength>,
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
    ) -> Result<&'r ExecutableDocument, ServerError> {
        let cacheable = request.query.len() <= MAX_CACHED_TEXT;
        if cacheable && let Some(doc) = self.documents.get(request.query.as_str()) {
            request.set_parsed_query(doc);
            return request.parsed_query();
        }
        let query = cacheable.then(|| request.query.clone());
        let doc = request.parsed_query()?;
        if let Some(query) = query {
            self.documents.insert(query, doc.clone());
        }
        Ok(doc)
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
        let parsed = cache.parse(&mut first).unwrap().clone();
        assert_eq!(cache.len(), 1);
        let mut again = async_graphql::Request::new("{ me { id } }");
        assert_eq!(
            format!("{:?}", cache.parse(&mut again).unwrap()),
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
