//! Opaque pagination cursors. A cursor holds the sort key of the last user of a page; the next
//! page is the users with greater keys (keyset pagination), so every page costs the same.
//!
//! Which key depends on the list's order (see `users::search`): the id for the unfiltered
//! list and for lists filtered by role or disabled only, the lower-cased username under a
//! username prefix, the lower-cased email under an email prefix.
//!
//! The text is base64url without padding of JSON: an id cursor is the id as a JSON string
//! (the format of async-graphql's `OpaqueCursor`, which cursors had before they were the
//! domain's own, so cursors handed out earlier keep working); the others are `{"u": key}` and
//! `{"e": key}`, so a cursor of one order can be told apart from another's and refused there.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::accounts::repo::SortKey;
use crate::accounts::validation;
use crate::error::{AppError, Field};

/// A position in a list of users: just after the user whose sort key it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    order: SortKey,
    key: String,
}

/// Longest lower-cased email key a cursor may hold (as `email_lower` is sized).
const EMAIL_KEY_MAX: usize = 2 * validation::EMAIL_MAX;

impl Cursor {
    /// The cursor just after the user with `id`, in id order.
    pub fn after(id: &str) -> Self {
        Cursor::at(SortKey::Id, id)
    }

    /// The cursor just after the user whose `order` column holds `key`.
    pub fn at(order: SortKey, key: &str) -> Self {
        Cursor {
            order,
            key: key.to_owned(),
        }
    }

    /// The order this cursor points into.
    pub fn order(&self) -> SortKey {
        self.order
    }

    /// The sort key of the user the page starts after.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The id of the user the page starts after (the key of an id cursor).
    pub fn id(&self) -> &str {
        &self.key
    }

    /// The cursor's text, as clients see it.
    pub fn encode(&self) -> String {
        let value = match self.order {
            SortKey::Id => Value::String(self.key.clone()),
            SortKey::Username => serde_json::json!({ "u": self.key }),
            SortKey::Email => serde_json::json!({ "e": self.key }),
        };
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// The cursor a client sent; a validation error on the cursor when it is not one this
    /// server handed out (or names no possible user).
    pub fn decode(text: &str) -> Result<Self, AppError> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
            .and_then(|value| match value {
                Value::String(id) if validation::is_id(&id) => Some(Cursor::after(&id)),
                Value::Object(map) if map.len() == 1 => {
                    let (name, key) = map.into_iter().next()?;
                    let key = key.as_str()?.to_owned();
                    match name.as_str() {
                        "u" if validation::username(&key).is_ok() && key == key.to_lowercase() => {
                            Some(Cursor::at(SortKey::Username, &key))
                        }
                        "e" if !key.is_empty() && key.chars().count() <= EMAIL_KEY_MAX => {
                            Some(Cursor::at(SortKey::Email, &key))
                        }
                        _ => None,
                    }
                }
                _ => None,
            })
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

    #[test]
    fn id_cursors_keep_their_format() {
        // What async-graphql's OpaqueCursor<String> wrote: base64url of the JSON string.
        let id = "01936f3e-8a4b-7c3d-9e2f-1a2b3c4d5e6f";
        let text = URL_SAFE_NO_PAD.encode(format!("\"{id}\""));
        assert_eq!(Cursor::after(id).encode(), text);
        assert_eq!(Cursor::decode(&text).unwrap(), Cursor::after(id));
    }

    #[test]
    fn key_cursors_round_trip_and_are_checked() {
        for cursor in [
            Cursor::at(SortKey::Username, "al_ice"),
            Cursor::at(SortKey::Email, "a%b@example.com"),
        ] {
            assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        }
        for bad in [
            r#"{"u": "Alice"}"#,
            r#"{"u": "a b"}"#,
            r#"{"e": ""}"#,
            r#"{"u": "alice", "e": "a@b"}"#,
            r#"{"x": "alice"}"#,
            r#"{"u": 5}"#,
        ] {
            assert!(
                Cursor::decode(&URL_SAFE_NO_PAD.encode(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
