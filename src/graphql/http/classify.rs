//! Classifying the errors of an answer: each gets its `extensions.code` (and, where the error
//! table says so, `field` or `retryAfter`), and an unexpected one a generic message.

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;

use crate::error::{AppError, ServerFault};
use crate::graphql::{errors, walk};

/// Gives every error its `extensions.code` and replaces unexpected messages with a generic
/// one; returns whether the request failed before execution (parse or validation). An error
/// is, by where it arose:
/// - one a resolver returned as an `AppError`: coded by the error table;
/// - one without a path (no field ran): the request's, a parse or validation failure;
/// - one located at an argument's value in the document (`query`): that value did not
///   coerce to the argument's type (an `Int` beyond 32 bits, a required variable not
///   given), which async-graphql finds only as the field runs. The client's input:
///   `BAD_USER_INPUT`, `extensions.field` naming the argument. Known by its position, not
///   by the library's wording, so a reworded message cannot make it a server fault;
/// - any other: a server fault, logged, with a generic message.
pub(super) fn classify_errors(
    errors: &mut [ServerError],
    parse_failed: bool,
    query: &str,
    faults: &mut Vec<ServerFault>,
) -> bool {
    let mut request_failed = false;
    // The request's document, parsed again only when an error needs its positions: errors
    // at a field are rare, and the cached document went into the request that ran.
    let mut document: Option<Option<ExecutableDocument>> = None;
    for err in errors.iter_mut() {
        let known = err.source::<AppError>().map(|app| {
            faults.extend(app.server_fault());
            (errors::code(app), errors::detail(app), app.to_string())
        });
        let extensions = err.extensions.get_or_insert_with(Default::default);
        if let Some((code, detail, message)) = known {
            extensions.set("code", code);
            if let Some((name, value)) = detail {
                extensions.set(name, value);
            }
            err.message = message;
            continue;
        }
        if err.path.is_empty() {
            request_failed = true;
            let code = if parse_failed {
                errors::PARSE_FAILED
            } else {
                errors::VALIDATION_FAILED
            };
            extensions.set("code", code);
            continue;
        }
        let doc = document.get_or_insert_with(|| async_graphql::parser::parse_query(query).ok());
        let argument = doc
            .as_ref()
            .zip(err.locations.first())
            .and_then(|(doc, pos)| walk::argument_at(doc, *pos));
        match argument {
            Some(name) => {
                extensions.set("code", errors::BAD_USER_INPUT);
                extensions.set("field", name);
            }
            None => {
                tracing::error!(error = %err.message, path = ?err.path, "unexpected resolver error");
                extensions.set("code", errors::INTERNAL);
                err.message = "internal server error".to_owned();
            }
        }
    }
    request_failed
}

#[cfg(test)]
mod tests {
    use async_graphql::{PathSegment, Pos};

    use super::*;
    use crate::error::Field;

    const QUERY: &str = "{ page: users(first: 4294967296) { nodes { id } } }";
    /// Where `users`' field is written, and where its `first` argument's value is.
    const FIELD: Pos = Pos { line: 1, column: 3 };
    const VALUE: Pos = Pos {
        line: 1,
        column: 22,
    };

    /// An error raised while the field at `users` ran, located at `pos`.
    fn field_error(message: &str, pos: Pos) -> ServerError {
        let mut err = ServerError::new(message, Some(pos));
        err.path = vec![PathSegment::Field("page".to_owned())];
        err
    }

    /// The classified error and whether the request failed.
    fn classify(err: ServerError, parse_failed: bool) -> (ServerError, bool, Vec<ServerFault>) {
        let mut errors = [err];
        let mut faults = Vec::new();
        let failed = classify_errors(&mut errors, parse_failed, QUERY, &mut faults);
        let [err] = errors;
        (err, failed, faults)
    }

    fn extension(err: &ServerError, name: &str) -> Option<async_graphql::Value> {
        err.extensions.as_ref()?.get(name).cloned()
    }

    #[test]
    fn a_value_that_did_not_coerce_is_found_by_its_position() {
        assert_eq!(&QUERY[21..31], "4294967296", "VALUE is where the value is");
        for message in [
            "Failed to parse \"Int\": Only integers from -2147483648 to 2147483647 are accepted.",
            "Expected input type \"Int\", found 4294967296.",
            "a wording some later version of the library may choose",
        ] {
            let (err, failed, faults) = classify(field_error(message, VALUE), false);
            assert!(!failed);
            assert!(faults.is_empty());
            assert_eq!(extension(&err, "code"), Some(errors::BAD_USER_INPUT.into()));
            assert_eq!(extension(&err, "field"), Some("first".into()));
            assert_eq!(err.message, message, "the library's message is kept");
        }
    }

    #[test]
    fn an_error_elsewhere_is_a_server_fault_whatever_it_says() {
        for pos in [FIELD, Pos::default(), Pos { line: 9, column: 9 }] {
            let (err, failed, _) = classify(field_error("Failed to parse \"Int\": …", pos), false);
            assert!(!failed);
            assert_eq!(extension(&err, "code"), Some(errors::INTERNAL.into()));
            assert_eq!(extension(&err, "field"), None);
            assert_eq!(err.message, "internal server error");
        }
    }

    #[test]
    fn errors_without_a_path_fail_the_request() {
        let (err, failed, _) = classify(ServerError::new("Unknown field", Some(VALUE)), false);
        assert!(failed);
        assert_eq!(
            extension(&err, "code"),
            Some(errors::VALIDATION_FAILED.into())
        );
        let (err, failed, _) = classify(ServerError::new("Unexpected end", None), true);
        assert!(failed);
        assert_eq!(extension(&err, "code"), Some(errors::PARSE_FAILED.into()));
    }

    #[test]
    fn a_domain_error_is_coded_by_the_table() {
        let app = AppError::validation(Field::PageSize, "first must be between 1 and 100");
        let err = async_graphql::Error::new_with_source(app).into_server_error(FIELD);
        let (err, failed, _) = classify(err, false);
        assert!(!failed);
        assert_eq!(extension(&err, "code"), Some(errors::BAD_USER_INPUT.into()));
        assert_eq!(extension(&err, "field"), Some("first".into()));
        assert_eq!(err.message, "first must be between 1 and 100");
        let err = async_graphql::Error::new_with_source(AppError::RateLimited { retry_after: 7 })
            .into_server_error(FIELD);
        let (err, _, _) = classify(err, false);
        assert_eq!(extension(&err, "code"), Some("RATE_LIMITED".into()));
        assert_eq!(extension(&err, "retryAfter"), Some(7.into()));
    }
}
