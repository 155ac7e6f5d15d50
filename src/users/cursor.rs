//! Opaque pagination cursors. A cursor wraps the id of the last user of a page; the next page
//! is the users with greater ids (keyset pagination), so every page costs the same.
//!
//! The text is the id as a JSON string, base64url without padding: the format of
//! async-graphql's `OpaqueCursor`, which cursors had before they were the domain's own, so
//! cursors handed out earlier keep working.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::accounts::validation;
use crate::error::{AppError, Field};

/// A position in the list of users: just after the user whose id it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// The cursor just after the user with `id`.
    pub fn after(id: &str) -> Self {
        Cursor(id.to_owned())
    }

    /// The id of the user the page starts after.
    pub fn id(&self) -> &str {
        &self.0
    }

    /// The cursor's text, as clients see it.
    pub fn encode(&self) -> String {
        // A string always serializes; the fallback is never taken.
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// The cursor a client sent; a validation error on the cursor when it is not one this
    /// server handed out (or names no possible user).
    pub fn decode(text: &str) -> Result<Self, AppError> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|json| serde_json::from_slice::<String>(&json).ok())
            .filter(|id| validation::is_id(id))
            .map(Cursor)
            .ok_or_else(|| AppError::validation(Field::Cursor, "the cursor is not a valid cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let id = uuid::Uuid::now_v7().to_string();
        let text = Cursor::after(&id).encode();
        assert_eq!(Cursor::decode(&text).unwrap().id(), id);
        assert!(Cursor::decode("not-a-cursor").is_err());
        let injected = URL_SAFE_NO_PAD.encode(br#""x' OR 1=1""#);
        assert!(Cursor::decode(&injected).is_err());
    }
}
