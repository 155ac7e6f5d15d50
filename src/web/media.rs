//! Media types as the `Content-Type` header names them.

use axum::http::{HeaderMap, header};

/// The essence of the `Content-Type` header (`application/json` of
/// `Application/JSON; charset=utf-8`), lower-cased; `None` when there is none, or it is not
/// text.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// Whether a media type's essence is JSON: `application/json` or an `application/…+json`.
pub fn is_json(essence: &str) -> bool {
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn typed(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn essences() {
        assert_eq!(
            content_type(&typed(b"Application/JSON; charset=utf-8")).as_deref(),
            Some("application/json")
        );
        assert_eq!(content_type(&HeaderMap::new()), None);
        assert_eq!(content_type(&typed(b"text/\xff")), None);
        assert!(is_json("application/graphql-response+json"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
    }
}
