//! Limits on GraphQL documents, checked on the parsed document before async-graphql sees it:
//! the size of the document once its fragments are expanded, its depth, aliased fields,
//! introspection when switched off, and the number of fields that check a password or create
//! an account. The last is counted per HTTP request — across aliases, fragments and every
//! entry of a batch — because each of those fields is a password guess or an account.
//!
//! Why here and not only in async-graphql: the library's own walks (its recursion-depth check,
//! its depth and complexity visitors) expand every fragment spread where it stands, so a
//! ~1 KB document whose fragments each spread the next one twice asks for 2^25 visits and
//! keeps a core busy for seconds before "too complex" comes back. These figures come from one
//! walk (`walk.rs`) that visits every selection of the document once, a fragment's figures
//! computed the first time it is spread and reused after, and it stops at the first limit
//! passed. A document that passes has at most `GRAPHQL_MAX_COMPLEXITY` selections in all,
//! fragments expanded, so every later walk over it is bounded too.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
};

use super::walk::{Definition, MAX_NESTING, Visitor, Walk};
use crate::config::GraphqlLimitsConfig;

/// Mutation fields that check a password or a second-factor code, create an account or renew
/// a session: each is counted by the rate limiter, and a request may carry only a few.
pub const AUTH_FIELDS: [&str; 9] = [
    "login",
    "register",
    "refresh",
    "updateMe",
    "loginSecondFactor",
    "startTotpEnrollment",
    "confirmTotpEnrollment",
    "disableTotp",
    "regenerateRecoveryCodes",
];

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
    /// Selections (fields, fragment spreads, inline fragments) of every operation and
    /// fragment definition, with each spread counted as the fragment it expands to.
    pub selections: usize,
    /// The deepest nesting of fields, fragments expanded.
    pub depth: usize,
}

/// A limit a request is over, with a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded(pub String);

impl DocumentStats {
    /// Measures `doc`, whose operation `operation_name` (if any) is the one to run, and
    /// checks it against `limits`; stops at the first limit passed.
    pub fn measure(
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        limits: &GraphqlLimitsConfig,
    ) -> Result<DocumentStats, LimitExceeded> {
        let mut walk = Walk::new(doc, Measure::new(doc, operation_name, limits));
        walk.document()?;
        let stats = walk.visitor().stats;
        stats.check(limits)?;
        Ok(stats)
    }

    /// Checks the limits that only the whole document can decide: aliases and introspection.
    fn check(&self, limits: &GraphqlLimitsConfig) -> Result<(), LimitExceeded> {
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
            "the request has {total} fields that sign in, register, refresh or check a \
             password; at most {max} are allowed per request"
        )));
    }
    Ok(())
}

/// The figures of one selection set, fragments expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Expanded {
    /// Selections an expanding walk would visit.
    selections: usize,
    /// Deepest nesting of fields.
    depth: usize,
    /// Auth fields at the root, through inline fragments and spreads.
    root_auth_fields: usize,
}

/// Measures a document in one walk, against the limits; stops at the first one passed.
struct Measure<'a> {
    /// The operations that may run (see [`selected_operations`]).
    selected: Vec<&'a OperationDefinition>,
    max_selections: usize,
    max_depth: usize,
    /// The figures so far.
    stats: DocumentStats,
}

impl<'a> Measure<'a> {
    fn new(
        doc: &'a ExecutableDocument,
        operation_name: Option<&str>,
        limits: &GraphqlLimitsConfig,
    ) -> Self {
        Measure {
            selected: selected_operations(doc, operation_name),
            max_selections: usize::try_from(limits.max_complexity).unwrap_or(usize::MAX),
            max_depth: usize::from(limits.max_depth),
            stats: DocumentStats::default(),
        }
    }

    fn add_selections(&self, total: usize, more: usize) -> Result<usize, LimitExceeded> {
        let total = total.saturating_add(more);
        if total > self.max_selections {
            return Err(too_complex(self.max_selections));
        }
        Ok(total)
    }

    /// What a field tells the document-wide figures, seen once where it is written.
    fn field(&mut self, field: &Field) {
        if field.alias.is_some() {
            self.stats.aliases += 1;
        }
        if INTROSPECTION_FIELDS.contains(&field.name.node.as_str()) {
            self.stats.introspection = true;
        }
    }
}

impl<'a> Visitor<'a> for Measure<'a> {
    type Summary = Expanded;
    type Stop = LimitExceeded;

    fn selection(
        &mut self,
        figures: &mut Expanded,
        selection: &'a Selection,
        inner: Expanded,
    ) -> Result<(), LimitExceeded> {
        // The selection itself, and what it expands to.
        figures.selections =
            self.add_selections(figures.selections, inner.selections.saturating_add(1))?;
        match selection {
            Selection::Field(field) => {
                self.field(&field.node);
                figures.depth = figures.depth.max(inner.depth.saturating_add(1));
                if AUTH_FIELDS.contains(&field.node.name.node.as_str()) {
                    figures.root_auth_fields = figures.root_auth_fields.saturating_add(1);
                }
            }
            Selection::InlineFragment(_) | Selection::FragmentSpread(_) => {
                figures.depth = figures.depth.max(inner.depth);
                figures.root_auth_fields = figures
                    .root_auth_fields
                    .saturating_add(inner.root_auth_fields);
            }
        }
        if figures.depth > self.max_depth {
            return Err(LimitExceeded(format!(
                "the document is nested more than {} fields deep",
                self.max_depth
            )));
        }
        Ok(())
    }

    fn definition(
        &mut self,
        definition: Definition<'a>,
        figures: Expanded,
    ) -> Result<(), LimitExceeded> {
        self.stats.selections = self.add_selections(self.stats.selections, figures.selections)?;
        self.stats.depth = self.stats.depth.max(figures.depth);
        if let Definition::Operation(op) = definition {
            let runs = self.selected.iter().any(|s| std::ptr::eq(*s, op));
            if runs && op.ty == OperationType::Mutation {
                self.stats.auth_fields = self
                    .stats
                    .auth_fields
                    .saturating_add(figures.root_auth_fields);
            }
        }
        Ok(())
    }

    fn too_nested(&mut self) -> LimitExceeded {
        too_nested()
    }
}

fn too_nested() -> LimitExceeded {
    LimitExceeded(format!(
        "the document nests selections and fragment spreads more than {MAX_NESTING} levels deep"
    ))
}

fn too_complex(max: usize) -> LimitExceeded {
    LimitExceeded(format!(
        "the document is too complex: it selects more than {max} fields and fragment spreads, \
         fragments expanded"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::walk::fragment_bomb;

    fn limits() -> GraphqlLimitsConfig {
        crate::config::Config::try_from_args(["user-api"])
            .unwrap()
            .graphql
    }

    fn stats(query: &str, name: Option<&str>) -> DocumentStats {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let mut walk = Walk::new(&doc, Measure::new(&doc, name, &limits()));
        walk.document().unwrap();
        walk.visitor().stats
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
        // A password change checks a password too.
        let q = r#"mutation { updateMe(input: {password: "p", currentPassword: "q"}) { id } }"#;
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

    #[test]
    fn selections_and_depth_count_fragments_expanded() {
        let s = stats(
            "{ me { ...F ...F } } fragment F on User { id username }",
            None,
        );
        // The operation: me, two spreads of two fields each; the fragment on its own: two.
        assert_eq!(s.selections, 1 + 2 * (1 + 2) + 2);
        assert_eq!(s.depth, 2);
        let s = stats("{ me { ... on User { id } } }", None);
        assert_eq!(s.selections, 3);
        assert_eq!(s.depth, 2);
    }

    /// Each selection node of the document is visited once however often its fragment is
    /// spread: a walk that expanded fragments would visit 2^25 here.
    #[test]
    fn a_fragment_bomb_costs_a_walk_linear_in_its_size() {
        for levels in [10, 25, 40] {
            let doc = async_graphql::parser::parse_query(fragment_bomb(levels)).unwrap();
            let mut unlimited = limits();
            unlimited.max_complexity = u32::MAX;
            let mut walk = Walk::new(&doc, Measure::new(&doc, None, &unlimited));
            let result = walk.document();
            // Two spreads per fragment, one field in the last, `me` and its spread.
            let nodes = 2 * levels + 1 + 2;
            if levels + 2 > MAX_NESTING {
                // Refused for its nesting before the walk reached its end.
                assert!(walk.visited() <= nodes, "{levels} levels");
                assert!(result.is_err());
            } else {
                assert_eq!(walk.visited(), nodes, "{levels} levels");
                result.unwrap();
                let stats = walk.visitor().stats;
                assert!(stats.selections >= 1 << levels, "{levels} levels");
            }
        }
        let doc = async_graphql::parser::parse_query(fragment_bomb(25)).unwrap();
        let err = DocumentStats::measure(&doc, None, &limits()).unwrap_err();
        assert!(err.0.contains("more than 1000"), "{}", err.0);
    }

    #[test]
    fn a_long_chain_of_fragments_is_refused_without_deep_recursion() {
        let mut doc = String::from("{ me { ...F0 } }");
        for i in 0..5000 {
            doc.push_str(&format!(" fragment F{i} on User {{ ...F{} }}", i + 1));
        }
        doc.push_str(" fragment F5000 on User { id }");
        let doc = async_graphql::parser::parse_query(doc).unwrap();
        assert!(DocumentStats::measure(&doc, None, &limits()).is_err());
    }

    #[test]
    fn limits_are_checked() {
        let doc = async_graphql::parser::parse_query("{ me { id } }").unwrap();
        let mut small = limits();
        assert!(DocumentStats::measure(&doc, None, &small).is_ok());
        small.max_depth = 1;
        assert!(DocumentStats::measure(&doc, None, &small).is_err());
        let mut small = limits();
        small.max_complexity = 1;
        assert!(DocumentStats::measure(&doc, None, &small).is_err());
    }
}
