//! Tokens signed with the server's own key, for a live session of a real user, whose claims or
//! header are out of bounds: issued in the future, not valid yet, living longer than
//! `ACCESS_TOKEN_TTL`, or carrying a `crit` header. Each is refused like any invalid token
//! (GraphQL `UNAUTHENTICATED`, REST 401). Controls just inside each bound are accepted, so only
//! the bound under test can be what refuses the others.

use jsonwebtoken::{Algorithm, Header};
use serde_json::Value;

use crate::support::tokens::{assert_accepted, assert_refused, claims, sign_with_header};
use crate::support::{TestApp, backend_tests};

/// The verifier's clock leeway, in seconds (API.md section 5).
const LEEWAY: i64 = 30;
/// The harness's `ACCESS_TOKEN_TTL` (the default).
const TTL: i64 = 1800;

fn sign(app: &TestApp, header: &Header, claims: &Value) -> String {
    sign_with_header(header, claims, &app.jwt_secret())
}

fn hs256() -> Header {
    Header::new(Algorithm::HS256)
}

backend_tests! {
    async fn out_of_bounds_claims_and_crit_headers_are_unauthenticated(app: TestApp) {
        let alice = app.register("alice_st", "correct horse").await;
        let genuine = claims(&alice.access);
        let iat = genuine["iat"].as_i64().unwrap();
        assert_eq!(genuine["exp"].as_i64().unwrap() - iat, TTL, "the harness's TTL");
        let now = chrono::Utc::now().timestamp();

        // Controls: re-signed as they are, and with bounds just met.
        assert_accepted(&app, &sign(&app, &hs256(), &genuine), &alice.user_id, "the genuine claims").await;
        let mut nbf_past = genuine.clone();
        nbf_past["nbf"] = (now - 5).into();
        assert_accepted(&app, &sign(&app, &hs256(), &nbf_past), &alice.user_id, "a past nbf").await;
        let mut longest = genuine.clone();
        longest["exp"] = (iat + TTL + LEEWAY).into();
        assert_accepted(&app, &sign(&app, &hs256(), &longest), &alice.user_id, "exp at iat + TTL + leeway").await;

        // Issued in the future, beyond the leeway (with a lifetime within the TTL).
        let mut future_iat = genuine.clone();
        future_iat["iat"] = (now + LEEWAY + 120).into();
        future_iat["exp"] = (now + LEEWAY + 120 + 60).into();
        assert_refused(&app, &sign(&app, &hs256(), &future_iat), "an iat in the future").await;

        // Not valid before a time beyond the leeway.
        let mut future_nbf = genuine.clone();
        future_nbf["nbf"] = (now + LEEWAY + 120).into();
        assert_refused(&app, &sign(&app, &hs256(), &future_nbf), "an nbf in the future").await;

        // Living longer than the TTL allows: a day, and a year.
        for extra in [86_400, 365 * 86_400] {
            let mut long = genuine.clone();
            long["exp"] = (iat + extra).into();
            assert_refused(&app, &sign(&app, &hs256(), &long), &format!("a lifetime of {extra} s")).await;
        }
        // The same stretch made by back-dating iat instead.
        let mut back_dated = genuine.clone();
        back_dated["iat"] = (iat - 86_400).into();
        assert_refused(&app, &sign(&app, &hs256(), &back_dated), "a back-dated iat").await;

        // A crit header: the server understands no extension, so it must refuse any.
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()]] {
            let mut header = hs256();
            header.crit = Some(crit.clone());
            assert_refused(&app, &sign(&app, &header, &genuine), &format!("crit {crit:?}")).await;
        }

        // None of this disturbed the genuine token.
        assert_eq!(app.me(&alice.access).await, Ok(alice.user_id.clone()));
    }
}
