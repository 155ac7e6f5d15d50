//! Access tokens from the outside: reading a JWT's claims and signing tokens of our own, to
//! see what the server accepts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::Value;

use super::client::ApiClient;
use super::rest::call;

/// A secret of the required length, different for every call.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The decoded payload (claims) of a JWT, unverified.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload"))
        .expect("JSON claims")
}

/// `claims` signed as a JWT with `algorithm` (an HMAC one) and `key`.
pub fn sign(claims: &Value, algorithm: Algorithm, key: &[u8]) -> String {
    sign_with_header(&Header::new(algorithm), claims, key)
}

/// `claims` signed under `header` (whose algorithm is an HMAC one) with `key`.
pub fn sign_with_header(header: &Header, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(key)).expect("sign")
}

/// Asserts that GraphQL and REST both accept `token` as `user_id`'s (`what` names it in
/// failures).
pub async fn assert_accepted(api: &ApiClient, token: &str, user_id: &str, what: &str) {
    assert_eq!(
        api.me(token).await.as_deref(),
        Ok(user_id),
        "GraphQL refused {what}"
    );
    let reply = call(api, Method::GET, "/users/me", Some(token), None).await;
    assert_eq!(reply.status, 200, "REST refused {what}: {reply:?}");
}

/// Asserts that GraphQL and REST both refuse `token` as unauthenticated (`what` names it in
/// failures).
pub async fn assert_refused(api: &ApiClient, token: &str, what: &str) {
    assert_eq!(
        api.me(token).await,
        Err("UNAUTHENTICATED".into()),
        "GraphQL accepted {what}"
    );
    let reply = call(api, Method::GET, "/users/me", Some(token), None).await;
    assert_eq!(reply.status, 401, "REST accepted {what}: {reply:?}");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{what}");
}
