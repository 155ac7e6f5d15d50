//! Opaque pagination cursors. A cursor wraps the id of the last user of a page; the next page
//! is the users with greater ids (keyset pagination), so every page costs the same.

use async_graphql::connection::{CursorType, OpaqueCursor};

use crate::error::AppError;

/// The cursor that points just after `id`.
pub fn encode(id: &str) -> String {
    OpaqueCursor(id.to_owned()).encode_cursor()
}

/// The id inside a cursor; `field` names the argument for the error.
pub fn decode(field: &'static str, cursor: &str) -> Result<String, AppError> {
    OpaqueCursor::<String>::decode_cursor(cursor)
        .map(|c| c.0)
        .ok()
        .filter(|id| uuid::Uuid::try_parse(id).is_ok())
        .ok_or_else(|| AppError::validation(field, format!("{field} is not a valid cursor")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let id = uuid::Uuid::now_v7().to_string();
        assert_eq!(decode("after", &encode(&id)).unwrap(), id);
        assert!(decode("after", "not-a-cursor").is_err());
        assert!(
            decode(
                "after",
                &OpaqueCursor("x' OR 1=1".to_owned()).encode_cursor()
            )
            .is_err()
        );
    }
}
