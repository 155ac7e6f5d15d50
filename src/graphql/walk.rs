//! One walk over the selections of a GraphQL document, shared by everything that reads a
//! parsed document: the limits (`limits.rs`) and the search for the argument at an error's
//! position (`argument_at`).
//!
//! Every selection written in the document is visited once, so a walk costs time linear in
//! the document's size. A fragment is walked where it is first spread; what the visitor made
//! of it (its summary) is kept and reused at every later spread (memoized), and a fragment
//! never spread is walked on its own. Expanding every spread where it stands instead — as
//! async-graphql's own walks do — lets a ~1 KB document whose fragments each spread the next
//! one twice ask for 2^25 visits (a fragment bomb).

use std::collections::HashMap;

use async_graphql::Pos;
use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};

/// Deepest nesting of selection sets and fragment spreads a walk follows. async-graphql
/// refuses documents nested deeper than 32 levels (counting spreads) before it runs them;
/// refusing them here keeps the walk's recursion shallow whatever the document.
pub const MAX_NESTING: usize = 32;

/// A definition of the document, walked whole.
#[derive(Debug, Clone, Copy)]
pub enum Definition<'a> {
    /// An operation.
    Operation(&'a OperationDefinition),
    /// A fragment.
    Fragment,
}

/// What a walk does at each selection.
pub trait Visitor<'a> {
    /// What the visitor keeps of a selection set, its fragments expanded. A fragment's is
    /// made once and reused wherever it is spread again.
    type Summary: Copy + Default;
    /// Why a walk stops before its end (a limit passed, a thing found).
    type Stop;

    /// Adds to `summary`, that of a selection set, one of its selections, the summary of whose
    /// own selection set (fragments expanded; the default for a field without one) is `inner`.
    /// Called once for each selection written in the document, after its selection set.
    fn selection(
        &mut self,
        summary: &mut Self::Summary,
        selection: &'a Selection,
        inner: Self::Summary,
    ) -> Result<(), Self::Stop>;

    /// A definition of the document has been walked; `summary` is that of its selection set.
    fn definition(
        &mut self,
        definition: Definition<'a>,
        summary: Self::Summary,
    ) -> Result<(), Self::Stop> {
        let _ = (definition, summary);
        Ok(())
    }

    /// Why the walk stops at a document nested deeper than [`MAX_NESTING`].
    fn too_nested(&mut self) -> Self::Stop;
}

/// A selection set's summary and its height: the levels of non-empty selection sets and
/// fragment spreads below it, as async-graphql counts nesting.
#[derive(Debug, Clone, Copy, Default)]
struct Walked<S> {
    summary: S,
    height: usize,
}

impl<S> Walked<S> {
    /// The same, one level further down.
    fn nested(mut self) -> Self {
        self.height += 1;
        self
    }
}

/// A fragment's entry in the memo.
#[derive(Debug, Clone, Copy)]
enum Memo<S> {
    /// Being walked: a spread of it now is a cycle (which validation refuses).
    InProgress,
    /// Walked.
    Done(Walked<S>),
}

/// A walk of one document by one visitor.
pub struct Walk<'a, V: Visitor<'a>> {
    doc: &'a ExecutableDocument,
    visitor: V,
    memo: HashMap<&'a str, Memo<V::Summary>>,
    /// Selections visited, each once; what the walk costs.
    visited: usize,
}

impl<'a, V: Visitor<'a>> Walk<'a, V> {
    /// A walk of `doc` by `visitor`.
    pub fn new(doc: &'a ExecutableDocument, visitor: V) -> Self {
        Walk {
            doc,
            visitor,
            memo: HashMap::with_capacity(doc.fragments.len()),
            visited: 0,
        }
    }

    /// The visitor.
    pub fn visitor(&self) -> &V {
        &self.visitor
    }

    /// How many selections the walk has visited.
    #[cfg(test)]
    pub fn visited(&self) -> usize {
        self.visited
    }

    /// Walks every operation, then every fragment definition (async-graphql's visitors walk
    /// every definition, used or not, so an unused fragment must be bounded like a used one).
    pub fn document(&mut self) -> Result<(), V::Stop> {
        let doc = self.doc;
        for (_, op) in doc.operations.iter() {
            let walked = self.selection_set(&op.node.selection_set.node, 0)?;
            self.visitor
                .definition(Definition::Operation(&op.node), walked.summary)?;
        }
        for (name, fragment) in &doc.fragments {
            let walked = self.fragment(name.as_str(), &fragment.node.selection_set.node, 0)?;
            self.visitor
                .definition(Definition::Fragment, walked.summary)?;
        }
        Ok(())
    }

    /// Fragment `name` (whose selection set is `set`), walked once.
    fn fragment(
        &mut self,
        name: &'a str,
        set: &'a SelectionSet,
        nesting: usize,
    ) -> Result<Walked<V::Summary>, V::Stop> {
        match self.memo.get(name) {
            // Walked where it was first spread; spread here, it may nest deeper.
            Some(Memo::Done(walked)) if nesting.saturating_add(walked.height) > MAX_NESTING => {
                Err(self.visitor.too_nested())
            }
            Some(Memo::Done(walked)) => Ok(*walked),
            // A cycle: validation refuses the document; it adds nothing more here.
            Some(Memo::InProgress) => Ok(Walked::default()),
            None => {
                self.memo.insert(name, Memo::InProgress);
                let walked = self.selection_set(set, nesting)?;
                self.memo.insert(name, Memo::Done(walked));
                Ok(walked)
            }
        }
    }

    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        nesting: usize,
    ) -> Result<Walked<V::Summary>, V::Stop> {
        if nesting > MAX_NESTING {
            return Err(self.visitor.too_nested());
        }
        let mut walked = Walked::default();
        for item in &set.items {
            self.visited += 1;
            let inner = match &item.node {
                Selection::Field(field) => {
                    let set = &field.node.selection_set.node;
                    if set.items.is_empty() {
                        Walked::default()
                    } else {
                        self.selection_set(set, nesting + 1)?.nested()
                    }
                }
                Selection::InlineFragment(inline) => self
                    .selection_set(&inline.node.selection_set.node, nesting + 1)?
                    .nested(),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match self.doc.fragments.get(name) {
                        Some(fragment) => self
                            .fragment(name, &fragment.node.selection_set.node, nesting + 1)?
                            .nested(),
                        // Unknown: validation refuses it.
                        None => Walked::default(),
                    }
                }
            };
            walked.height = walked.height.max(inner.height);
            self.visitor
                .selection(&mut walked.summary, &item.node, inner.summary)?;
        }
        Ok(walked)
    }
}

/// The name of the field argument whose value is written at `pos` in `doc`, if one is: where
/// async-graphql reports a value that did not coerce to its argument's type.
pub fn argument_at(doc: &ExecutableDocument, pos: Pos) -> Option<&str> {
    let mut walk = Walk::new(doc, ArgumentAt { pos });
    match walk.document() {
        Err(found) => found,
        Ok(()) => None,
    }
}

/// Looks for an argument value at a position; stops with its argument's name.
struct ArgumentAt {
    pos: Pos,
}

impl<'a> Visitor<'a> for ArgumentAt {
    type Summary = ();
    /// The argument's name; `None` when the document is nested too deeply to search.
    type Stop = Option<&'a str>;

    fn selection(
        &mut self,
        _summary: &mut (),
        selection: &'a Selection,
        _inner: (),
    ) -> Result<(), Self::Stop> {
        let Selection::Field(field) = selection else {
            return Ok(());
        };
        match field
            .node
            .arguments
            .iter()
            .find(|(_, value)| value.pos == self.pos)
        {
            Some((name, _)) => Err(Some(name.node.as_str())),
            None => Ok(()),
        }
    }

    fn too_nested(&mut self) -> Self::Stop {
        None
    }
}

/// `{ me { ...F0 } }` where each fragment spreads the next one twice, the last selecting
/// `id(x: 1)`: 2^levels fields once expanded, in a document of a few hundred bytes.
#[cfg(test)]
pub(crate) fn fragment_bomb(levels: usize) -> String {
    let mut doc = String::from("{ me { ...F0 } }");
    for i in 0..levels {
        doc.push_str(&format!(
            " fragment F{i} on User {{ ...F{} ...F{} }}",
            i + 1,
            i + 1
        ));
    }
    doc.push_str(&format!(" fragment F{levels} on User {{ id(x: 1) }}"));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts every selection it is shown.
    #[derive(Default)]
    struct Count(usize);

    impl<'a> Visitor<'a> for Count {
        type Summary = ();
        type Stop = ();

        fn selection(&mut self, _: &mut (), _: &'a Selection, _: ()) -> Result<(), ()> {
            self.0 += 1;
            Ok(())
        }

        fn too_nested(&mut self) {}
    }

    /// Where `needle` starts in `text`, as a parser position (1-based).
    fn pos_of(text: &str, needle: &str) -> Pos {
        let offset = text.find(needle).unwrap();
        let line = text[..offset].matches('\n').count() + 1;
        let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
        Pos { line, column }
    }

    #[test]
    fn each_written_selection_is_shown_once() {
        let doc = async_graphql::parser::parse_query(fragment_bomb(20)).unwrap();
        let mut walk = Walk::new(&doc, Count::default());
        walk.document().unwrap();
        // Two spreads per fragment, one field in the last, `me` and its spread.
        let nodes = 2 * 20 + 1 + 2;
        assert_eq!(walk.visited(), nodes);
        assert_eq!(walk.visitor().0, nodes);
    }

    #[test]
    fn finds_the_argument_at_a_position() {
        let text = "query($n: Int) {
            a: users(first: 1, after: \"x\") { nodes { id } }
            ... on Query { users(first: $n) { nodes { id } } }
            ...F
        }
        fragment F on Query { user(id: \"u\", username: \"v\") { id } }";
        let doc = async_graphql::parser::parse_query(text).unwrap();
        for (needle, name) in [
            ("1,", "first"),
            ("\"x\"", "after"),
            ("$n)", "first"),
            ("\"u\"", "id"),
            ("\"v\"", "username"),
        ] {
            assert_eq!(
                argument_at(&doc, pos_of(text, needle)),
                Some(name),
                "{needle}"
            );
        }
        // A field, an argument's name, a variable's declaration: no argument value there.
        for needle in ["users(first: 1", "first: 1", "$n: Int", "id }"] {
            assert_eq!(argument_at(&doc, pos_of(text, needle)), None, "{needle}");
        }
        assert_eq!(argument_at(&doc, Pos::default()), None);
    }

    /// The search is a walk like the others: a fragment bomb costs it a visit per written
    /// selection, where expanding the spreads would visit 2^20 fields.
    #[test]
    fn the_search_is_linear_in_the_document() {
        let text = fragment_bomb(20);
        let doc = async_graphql::parser::parse_query(text.as_str()).unwrap();
        assert_eq!(argument_at(&doc, pos_of(&text, "1)")), Some("x"));
        let mut walk = Walk::new(
            &doc,
            ArgumentAt {
                pos: Pos::default(),
            },
        );
        assert_eq!(walk.document(), Ok(()));
        assert_eq!(walk.visited(), 2 * 20 + 1 + 2);
    }
}
