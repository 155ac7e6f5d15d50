//! Classifying the errors of an answer: each gets its `extensions.code` (and, where the error
//! table says so, `field` or `retryAfter`), and an unexpected one a generic message.

use async_graphql::{Pos, ServerError};

use crate::error::{AppError, ServerFault};
use crate::graphql::{errors, walk};

/// Gives every error its `extensions.code` — from the `AppError` a resolver returned, or from
/// where it arose — and replaces unexpected messages with a generic one. Returns whether the
/// request failed before execution (parse or validation). `query` is the request's document.
pub(super) fn classify_errors(
    errors: &mut [ServerError],
    parse_failed: bool,
    query: &str,
    faults: &mut Vec<ServerFault>,
) -> bool {
    let mut request_failed = false;
    for err in errors.iter_mut() {
        let known = err.source::<AppError>().map(|app| {
            faults.extend(app.server_fault());
            let detail = match app {
                AppError::Validation { field, .. } => Some((
                    "field",
                    async_graphql::Value::from(errors::argument(*field)),
                )),
                AppError::RateLimited { retry_after } => {
                    Some(("retryAfter", async_graphql::Value::from(*retry_after)))
                }
                _ => None,
            };
            (errors::code(app), detail, app.to_string())
        });
        let extensions = err.extensions.get_or_insert_with(Default::default);
        match known {
            Some((code, detail, message)) => {
                extensions.set("code", code);
                if let Some((name, value)) = detail {
                    extensions.set(name, value);
                }
                err.message = message;
            }
            None if err.path.is_empty() => {
                request_failed = true;
                extensions.set(
                    "code",
                    if parse_failed {
                        "GRAPHQL_PARSE_FAILED"
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    },
                );
            }
            None if is_input_coercion_error(&err.message) => {
                extensions.set("code", "BAD_USER_INPUT");
                if let Some(name) = err
                    .locations
                    .first()
                    .and_then(|pos| argument_at(query, *pos))
                {
                    extensions.set("field", name);
                }
            }
            None => {
                tracing::error!(error = %err.message, path = ?err.path, "unexpected resolver error");
                extensions.set("code", "INTERNAL_SERVER_ERROR");
                err.message = "internal server error".to_owned();
            }
        }
    }
    request_failed
}

/// Whether an error async-graphql raised while resolving a field is an argument value that
/// did not coerce to its type, which its validation lets through (an `Int` literal or variable
/// beyond 32 bits): the client's input, not a server fault. These are the messages of its
/// `InputValueError`.
fn is_input_coercion_error(message: &str) -> bool {
    message.starts_with("Failed to parse \"") || message.starts_with("Expected input type \"")
}

/// The name of the argument whose value is at `pos` in `query` (an error's location), for
/// `extensions.field`. Only called for a failed request, so parsing again costs nothing on the
/// normal path.
fn argument_at(query: &str, pos: Pos) -> Option<String> {
    let doc = async_graphql::parser::parse_query(query).ok()?;
    walk::argument_at(&doc, pos).map(str::to_owned)
}
