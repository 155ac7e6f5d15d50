//! [`CachedBySql`]: lets an `INSERT` or `UPDATE` reuse its prepared statement.
//!
//! diesel refuses to cache the prepared statement of any `UPDATE`, and of any single-row
//! `INSERT` on MySQL, because a `None` field is skipped or written as `DEFAULT` and the
//! statement's type then no longer decides its SQL. The refusal costs every sign-in,
//! registration and refresh a prepare round trip, the server's parse of the statement and a
//! close. Keyed by its SQL text instead of its type, the statement is safe to cache: each
//! distinct text gets its own entry, and the texts a query can take are few.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// A query whose prepared statement is cached under its SQL text (and bind types). Only for
/// queries that bind every value (diesel's DSL does): a query that wrote values into its text
/// would get a cache entry per value.
#[derive(Debug, Clone, Copy)]
pub struct CachedBySql<Q>(pub Q);

impl<Q> QueryId for CachedBySql<Q> {
    type QueryId = ();
    // No static id: the statement cache then keys the statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for CachedBySql<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// Loads what the wrapped query loads (a `SELECT`, or raw SQL read by name).
impl<Q: Query> Query for CachedBySql<Q> {
    type SqlType = Q::SqlType;
}
