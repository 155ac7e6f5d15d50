//! Access tokens: HS256 JWTs with `sub`, `jti`, `iat`, `exp` and `iss`, all required on the way
//! in, with the algorithm pinned and at most 30 s of clock leeway.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound as _, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::refresh::SuccessorKey;
use crate::error::AppError;

/// Clock skew tolerated between replicas (and clients' idea of `exp`).
const LEEWAY_SECS: u64 = 30;

/// The claims of an access token. All are required when decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The session's id.
    pub jti: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
}

/// A freshly signed token and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The encoded JWT.
    pub token: String,
    /// The session id (`jti`).
    pub session_id: String,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Expiry time.
    pub expires_at: DateTime<Utc>,
    /// Seconds from now until expiry.
    pub expires_in: u64,
}

/// Signs and verifies access tokens, and derives refresh-token successors (with a key of its
/// own, derived from the same secret).
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
    successor: SuccessorKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from the secret's bytes.
    pub fn new(secret: &SecretString, issuer: &str, ttl_secs: u64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[issuer]);
        // `jti`, `iat` and `sub` are required by `Claims` itself: a token without them does
        // not deserialize.
        validation.required_spec_claims = HashSet::from(["exp", "iss", "sub"].map(String::from));
        JwtKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            issuer: issuer.to_owned(),
            ttl_secs,
            successor: SuccessorKey::from_secret(bytes),
        }
    }

    /// Lifetime of new tokens, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Signs a new token for `user_id` with a fresh session id.
    pub fn issue(&self, user_id: &str) -> Result<IssuedToken, AppError> {
        // Microseconds, as the databases keep them: a time read back re-signs the same token.
        let now = Utc::now().trunc_subsecs(6);
        let ttl =
            chrono::Duration::seconds(i64::try_from(self.ttl_secs).map_err(AppError::internal)?);
        let expires_at = now + ttl;
        let session_id = uuid::Uuid::new_v4().to_string();
        let token = self.sign(
            user_id,
            &session_id,
            now.timestamp(),
            expires_at.timestamp(),
        )?;
        Ok(IssuedToken {
            token,
            session_id,
            issued_at: now,
            expires_at,
            expires_in: self.ttl_secs,
        })
    }

    /// Signs again the token of an existing session issued at `issued_at`: the claims are the
    /// same, so (HS256 being deterministic) is the token. Lets a refresh repeated within the
    /// grace window hand out the very token the first one did.
    pub fn reissue(
        &self,
        user_id: &str,
        session_id: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<IssuedToken, AppError> {
        let ttl = i64::try_from(self.ttl_secs).map_err(AppError::internal)?;
        let exp = issued_at.timestamp() + ttl;
        let token = self.sign(user_id, session_id, issued_at.timestamp(), exp)?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("token expiry {exp} is out of range"))
        })?;
        let left = (expires_at - Utc::now()).num_seconds().max(0);
        Ok(IssuedToken {
            token,
            session_id: session_id.to_owned(),
            issued_at,
            expires_at,
            expires_in: u64::try_from(left).unwrap_or(0),
        })
    }

    fn sign(
        &self,
        user_id: &str,
        session_id: &str,
        iat: i64,
        exp: i64,
    ) -> Result<String, AppError> {
        let claims = Claims {
            sub: user_id.to_owned(),
            jti: session_id.to_owned(),
            iat,
            exp,
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AppError::internal)
    }

    /// The refresh token that replaces `token` when it is rotated; see
    /// [`SuccessorKey`] for why it is derived.
    pub fn refresh_successor(&self, token: &str) -> String {
        self.successor.successor(token)
    }

    /// Verifies the signature, algorithm, issuer and expiry, and returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AppError::Unauthenticated("invalid or expired token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef"),
            "user-api",
            60,
        )
    }

    #[test]
    fn round_trip() {
        let keys = keys();
        let issued = keys.issue("user-1").unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.jti, issued.session_id);
        assert_eq!(claims.exp - claims.iat, 60);
        let again = keys
            .reissue("user-1", &issued.session_id, issued.issued_at)
            .unwrap();
        assert_eq!(again.token, issued.token, "re-signing gives the same token");
        assert_eq!(again.expires_at.timestamp(), issued.expires_at.timestamp());
    }

    fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn good_claims() -> serde_json::Value {
        let now = Utc::now().timestamp();
        serde_json::json!({"sub": "u", "jti": "j", "iat": now, "exp": now + 60, "iss": "user-api"})
    }

    #[test]
    fn rejects_foreign_key_wrong_issuer_missing_claims_and_expired() {
        let keys = keys();
        let secret = b"0123456789abcdef0123456789abcdef";
        assert!(keys.verify(&sign(&good_claims(), secret)).is_ok());
        assert!(
            keys.verify(&sign(&good_claims(), b"another secret of sufficient size"))
                .is_err()
        );
        for missing in ["sub", "jti", "iat", "exp", "iss"] {
            let mut claims = good_claims();
            claims.as_object_mut().unwrap().remove(missing);
            assert!(
                keys.verify(&sign(&claims, secret)).is_err(),
                "accepted without {missing}"
            );
        }
        let mut claims = good_claims();
        claims["iss"] = "someone-else".into();
        assert!(keys.verify(&sign(&claims, secret)).is_err());
        let mut claims = good_claims();
        claims["exp"] = (Utc::now().timestamp() - LEEWAY_SECS as i64 - 5).into();
        assert!(keys.verify(&sign(&claims, secret)).is_err());
    }

    #[test]
    fn rejects_alg_none_and_tampered_payload() {
        let keys = keys();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(good_claims().to_string());
        assert!(keys.verify(&format!("{header}.{payload}.")).is_err());

        let token = keys.issue("user-1").unwrap().token;
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = good_claims();
        claims["sub"] = "admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );
        assert!(keys.verify(&forged).is_err());
    }
}
