//! Access tokens: HS256 JWTs with `sub`, `jti`, `iat`, `exp` and `iss`, all required on the way
//! in, with the algorithm pinned and at most 30 s of clock leeway.
//!
//! Beyond the signature, a token must be within the bounds this server could have signed: not
//! issued (`iat`) nor valid from (`nbf`, when present) a time still to come, and living no
//! longer than `ACCESS_TOKEN_TTL`. A token outside them was not made by this code, so it is
//! refused even though the key signed it (a leaked key, or a bug elsewhere, then cannot mint
//! tokens that outlive their session's bounds). A header with `crit` is refused too: RFC 7515
//! makes a recipient refuse extensions it does not understand, and this server understands none.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound as _, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

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

/// Signs and verifies access tokens.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issuer", &self.issuer)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    /// Keys from the secret's bytes.
    pub fn new(secret: &SecretString, issuer: &str, ttl_secs: u64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        // `nbf` is optional, but honoured when present (the library ignores it by default).
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        // `jti`, `iat` and `sub` are required by `Claims` itself: a token without them does
        // not deserialize.
        validation.required_spec_claims = HashSet::from(["exp", "iss", "sub"].map(String::from));
        AccessTokens {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            issuer: issuer.to_owned(),
            ttl_secs,
        }
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

    /// Verifies the signature, algorithm, issuer, expiry, `nbf`, `iat` and lifetime, and that
    /// the header asks for no `crit` extension; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        let invalid = || AppError::Unauthenticated("invalid or expired token");
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid())?;
        if data.header.crit.is_some() {
            return Err(invalid());
        }
        let claims = data.claims;
        if !self.within_bounds(&claims, Utc::now().timestamp()) {
            return Err(invalid());
        }
        Ok(claims)
    }

    /// Whether `claims` could have come from [`AccessTokens::issue`] at a time no later than `now`
    /// plus the leeway: issued by then, and living at most the TTL (plus the leeway, for a
    /// token issued on a replica whose clock ran ahead).
    fn within_bounds(&self, claims: &Claims, now: i64) -> bool {
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(i64::MAX);
        let ttl = i64::try_from(self.ttl_secs).unwrap_or(i64::MAX);
        claims.iat <= now.saturating_add(leeway)
            && claims.exp.saturating_sub(claims.iat) <= ttl.saturating_add(leeway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> AccessTokens {
        AccessTokens::new(
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
        let secret = SECRET;
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

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn rejects_iat_and_nbf_in_the_future_beyond_the_leeway() {
        let keys = keys();
        let now = Utc::now().timestamp();
        let leeway = LEEWAY_SECS as i64;
        // Within the leeway: another replica's clock may run a little ahead.
        let mut claims = good_claims();
        claims["iat"] = (now + leeway - 5).into();
        claims["exp"] = (now + leeway - 5 + 60).into();
        claims["nbf"] = (now + leeway - 5).into();
        assert!(keys.verify(&sign(&claims, SECRET)).is_ok());
        // Issued in the future.
        let mut claims = good_claims();
        claims["iat"] = (now + leeway + 60).into();
        claims["exp"] = (now + leeway + 60 + 60).into();
        assert!(keys.verify(&sign(&claims, SECRET)).is_err(), "future iat");
        // Not valid before a time still to come.
        let mut claims = good_claims();
        claims["nbf"] = (now + leeway + 60).into();
        assert!(keys.verify(&sign(&claims, SECRET)).is_err(), "future nbf");
        // A past nbf is fine; one that is not a number is not.
        let mut claims = good_claims();
        claims["nbf"] = (now - 10).into();
        assert!(keys.verify(&sign(&claims, SECRET)).is_ok());
        claims["nbf"] = "soon".into();
        assert!(
            keys.verify(&sign(&claims, SECRET)).is_err(),
            "nbf not a number"
        );
    }

    #[test]
    fn rejects_a_lifetime_longer_than_the_ttl() {
        let keys = keys();
        let now = Utc::now().timestamp();
        let leeway = LEEWAY_SECS as i64;
        let mut claims = good_claims();
        claims["exp"] = (now + 60 + leeway).into();
        assert!(keys.verify(&sign(&claims, SECRET)).is_ok(), "ttl + leeway");
        claims["exp"] = (now + 60 + leeway + 1).into();
        assert!(
            keys.verify(&sign(&claims, SECRET)).is_err(),
            "ttl + leeway + 1"
        );
        claims["exp"] = (now + 86_400 * 365).into();
        assert!(keys.verify(&sign(&claims, SECRET)).is_err(), "a year");
        // Back-dating iat to stretch the window is refused the same way.
        claims["iat"] = (now - 3600).into();
        claims["exp"] = (now + 60).into();
        assert!(
            keys.verify(&sign(&claims, SECRET)).is_err(),
            "back-dated iat"
        );
    }

    #[test]
    fn rejects_a_crit_header() {
        let keys = keys();
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec![]] {
            let mut header = Header::new(Algorithm::HS256);
            header.crit = Some(crit.clone());
            let token =
                jsonwebtoken::encode(&header, &good_claims(), &EncodingKey::from_secret(SECRET))
                    .unwrap();
            assert!(keys.verify(&token).is_err(), "crit {crit:?}");
        }
        // The same claims without it pass.
        assert!(keys.verify(&sign(&good_claims(), SECRET)).is_ok());
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
