//! Authentication: password hashing, access tokens, the session store, and reading the token
//! a request carries.

pub mod extract;
pub mod jwt;
pub mod key_strength;
pub mod password;
pub mod sessions;

pub mod refresh;
pub mod session_meta;

use crate::error::AppError;

/// Extracts the token from an `Authorization` header value: `Bearer <token>` (scheme name in
/// any case) or, for legacy callers, the bare token.
pub fn token_from_header(value: &str) -> Result<&str, AppError> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return Err(AppError::Unauthenticated("malformed Authorization header")),
        None => value,
    };
    // `Bearer` alone is a scheme without a token, not a bare token.
    if token.is_empty()
        || token.contains(char::is_whitespace)
        || token.eq_ignore_ascii_case("bearer")
    {
        return Err(AppError::Unauthenticated("malformed Authorization header"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_bare_tokens_are_accepted() {
        assert_eq!(
            token_from_header("Bearer abc.def.ghi").ok(),
            Some("abc.def.ghi")
        );
        assert_eq!(token_from_header("bearer abc").ok(), Some("abc"));
        assert_eq!(token_from_header("BEARER  abc ").ok(), Some("abc"));
        assert_eq!(token_from_header("abc.def.ghi").ok(), Some("abc.def.ghi"));
        assert!(token_from_header("Basic dXNlcjpwYXNz").is_err());
        assert!(token_from_header("Bearer ").is_err());
        assert!(token_from_header("").is_err());
    }
}
