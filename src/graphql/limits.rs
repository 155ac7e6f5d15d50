//! Limits on GraphQL documents that async-graphql does not enforce itself (it enforces depth
//! and complexity): aliased fields, introspection when switched off, and the number of
//! `login`, `register` and `refresh` fields. The last is counted per HTTP request — across
//! aliases, fragments and every entry of a batch — because complexity is counted per
//! operation, and each of those fields is a password guess or an account.
//!
//! Checked on the parsed document before execution, so an over-limit request runs nothing.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

use crate::config::GraphqlLimitsConfig;

/// Mutation fields that sign in, create an account or renew a session: each is counted by the
/// rate limiter, and a request may carry only a few.
pub const AUTH_FIELDS: [&str; 3] = ["login", "register", "refresh"];

/// The introspection fields of the query root (`__typename` is not one: it reveals nothing).
const INTROSPECTION_FIELDS: [&str; 2] = ["__schema", "__type"];

/// What a document asks for, as far as the limits care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DocumentStats {
    /// Aliased fields written in the document, in operations and fragments alike.
    pub aliases: usize,
    /// Auth fields at the root of the operation that will run, fragments expanded.
    pub auth_fields: usize,
    /// Whether the document selects `__schema` or `__type` anywhere.
    pub introspection: bool,
}

/// A limit a request is over, with a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded(pub String);

impl DocumentStats {
    /// Measures `doc`, whose operation `operation_name` (if any) is the one to run.
    pub fn of(doc: &ExecutableDocument, operation_name: Option<&str>) -> Self {
        let mut stats = DocumentStats::default();
        let sets = doc
            .operations
            .iter()
            .map(|(_, op)| &op.node.selection_set.node)
            .chain(doc.fragments.values().map(|f| &f.node.selection_set.node));
        for set in sets {
            walk_fields(set, &mut |field| {
                if field.alias.is_some() {
                    stats.aliases += 1;
                }
                if INTROSPECTION_FIELDS.contains(&field.name.node.as_str()) {
                    stats.introspection = true;
                }
            });
        }
        let mut memo = HashMap::new();
        stats.auth_fields = selected_operations(doc, operation_name)
            .into_iter()
            .filter(|op| op.ty == OperationType::Mutation)
            .map(|op| count_auth_fields(doc, &op.selection_set.node, &mut memo))
            .fold(0, usize::saturating_add);
        stats
    }

    /// Checks the per-document limits: aliases and introspection.
    pub fn check(&self, limits: &GraphqlLimitsConfig) -> Result<(), LimitExceeded> {
        let max_aliases = usize::try_from(limits.max_aliases).unwrap_or(usize::MAX);
        if self.aliases > max_aliases {
            return Err(LimitExceeded(format!(
                "the document has {} aliased fields; at most {max_aliases} are allowed",
                self.aliases
            )));
        }
        if self.introspection && !limits.introspection {
            return Err(LimitExceeded(
                "introspection (__schema, __type) is disabled on this server".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Checks the per-request limit on auth fields, `total` being their sum over every document
/// of the request.
pub fn check_auth_fields(total: usize, limits: &GraphqlLimitsConfig) -> Result<(), LimitExceeded> {
    let max = usize::from(limits.max_auth_fields);
    if total > max {
        return Err(LimitExceeded(format!(
            "the request has {total} login, register or refresh fields; at most {max} \
             are allowed per request"
        )));
    }
    Ok(())
}

/// The operations that execution will pick from: the named one, or the only one. When the
/// choice is ambiguous (execution will then refuse the document), all of them, so the count
/// errs on the high side.
fn selected_operations<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Vec<&'a OperationDefinition> {
    let all = || doc.operations.iter().map(|(_, op)| &op.node).collect();
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => vec![&op.node],
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => vec![&op.node],
            None => all(),
        },
        (DocumentOperations::Multiple(_), None) => all(),
    }
}

/// Calls `visit` on every field of `set` and of its nested selections (not following
/// fragment spreads: fragments are walked on their own). Iterative, so a deep document
/// cannot exhaust the stack.
fn walk_fields(set: &SelectionSet, visit: &mut impl FnMut(&async_graphql::parser::types::Field)) {
    let mut pending = vec![set];
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    visit(&field.node);
                    pending.push(&field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => pending.push(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
}

/// Auth fields selected at the root of `set`, through inline fragments and fragment spreads
/// (each spread counts again: it executes again). Fragment counts are memoised, so nested
/// spreads cost linear time, and a fragment cycle (refused by validation later) counts 0.
fn count_auth_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    memo: &mut HashMap<&'a str, Option<usize>>,
) -> usize {
    let mut total = 0usize;
    for item in &set.items {
        let n = match &item.node {
            Selection::Field(field) => {
                usize::from(AUTH_FIELDS.contains(&field.node.name.node.as_str()))
            }
            Selection::InlineFragment(inline) => {
                count_auth_fields(doc, &inline.node.selection_set.node, memo)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match memo.get(name) {
                    Some(Some(n)) => *n,
                    // In progress: a cycle.
                    Some(None) => 0,
                    None => match doc.fragments.get(name) {
                        Some(fragment) => {
                            memo.insert(name, None);
                            let n = count_auth_fields(doc, &fragment.node.selection_set.node, memo);
                            memo.insert(name, Some(n));
                            n
                        }
                        None => 0,
                    },
                }
            }
        };
        total = total.saturating_add(n);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(query: &str, name: Option<&str>) -> DocumentStats {
        DocumentStats::of(&async_graphql::parser::parse_query(query).unwrap(), name)
    }

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let s = stats(
            "{ a: me { id } b: me { x: id } ...F } fragment F on Query { c: me { id } }",
            None,
        );
        assert_eq!(s.aliases, 4);
        assert_eq!(s.auth_fields, 0);
        assert!(!s.introspection);
    }

    #[test]
    fn auth_fields_are_counted_through_aliases_and_fragments() {
        let q = r#"mutation {
            a: login(username: "x", password: "y") { accessToken }
            b: login(username: "x", password: "z") { accessToken }
            ... on Mutation { register(input: {username: "u", email: "e@x.y", password: "p"}) { accessToken } }
            ...Twice ...Twice
        }
        fragment Twice on Mutation { ...Once ...Once }
        fragment Once on Mutation { refresh: login(username: "x", password: "w") { accessToken } }"#;
        assert_eq!(stats(q, None).auth_fields, 3 + 4);
        // A cycle does not hang the count.
        let q = "mutation { ...A } fragment A on Mutation { login ...B } fragment B on Mutation { ...A }";
        assert_eq!(stats(q, None).auth_fields, 1);
    }

    #[test]
    fn only_the_operation_that_runs_counts() {
        let q = r#"mutation One { login(username: "a", password: "b") { accessToken } }
                   mutation Two { login(username: "a", password: "c") { accessToken } }
                   query Three { login: me { id } }"#;
        assert_eq!(stats(q, Some("One")).auth_fields, 1);
        assert_eq!(
            stats(q, Some("Three")).auth_fields,
            0,
            "only mutations count"
        );
        assert_eq!(
            stats(q, None).auth_fields,
            2,
            "ambiguous: all mutations count"
        );
        assert_eq!(stats(q, Some("Nope")).auth_fields, 2);
    }

    #[test]
    fn introspection_is_found_anywhere() {
        assert!(stats("{ __schema { types { name } } }", None).introspection);
        assert!(
            stats(
                "query { ...F } fragment F on Query { __type(name: \"User\") { name } }",
                None
            )
            .introspection
        );
        assert!(!stats("{ __typename me { __typename } }", None).introspection);
    }
}
