//! Multi-factor sign-in (API.md section 10), on each backend, with real TOTP codes computed
//! from the enrolment's secret: enrolling, signing in with a code or a recovery code, replay
//! and old codes refused, the mfaToken's lifetime and attempt cap, the login limits, turning
//! MFA off (by the user, by an admin), a password reset that leaves MFA on, notices and
//! account events, the REST mirror, and bad input that changes nothing.

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use reqwest::Method;
use serde_json::{Value, json};
use user_api::db::DbError;
use user_api::db::schema::{mfa_challenges, mfa_recovery_codes, user_totp};

use crate::support::db::make_admin;
use crate::support::mailbox::RESET_PATH;
use crate::support::rest::{self, call};
use crate::support::totp::Authenticator;
use crate::support::ws::{Frame, WsClient};
use crate::support::{
    Backend, PASSWORD, SignIn, TestApp, backend_tests, error_code, error_field, per_minute,
    retry_after,
};

const START: &str = "mutation($p: String!) { startTotpEnrollment(currentPassword: $p) { secret otpauthUri qrSvg } }";
const CONFIRM: &str = "mutation($c: String!) { confirmTotpEnrollment(code: $c) }";
const DISABLE: &str =
    "mutation($p: String!, $c: String!) { disableTotp(currentPassword: $p, code: $c) }";
const REGENERATE: &str = "mutation($c: String!) { regenerateRecoveryCodes(code: $c) }";
const SECOND_FACTOR: &str = "mutation($t: String!, $c: String!) { loginSecondFactor(mfaToken: $t, code: $c) \
     { accessToken refreshToken tokenType expiresIn user { id username mfaEnabled } } }";
const RESET_MFA: &str = "mutation($id: ID!) { resetUserMfa(id: $id) { id mfaEnabled } }";

/// A user with MFA on: their sign-in, authenticator and recovery codes.
struct Enrolled {
    sign_in: SignIn,
    app: Authenticator,
    recovery: Vec<String>,
}

/// Starts an enrolment for `token`'s user; the reply's `startTotpEnrollment`.
async fn start(app: &TestApp, token: &str) -> Value {
    app.data(START, json!({"p": PASSWORD}), token)
        .await
        .map(|data| data["startTotpEnrollment"].clone())
        .expect("startTotpEnrollment")
}

/// Registers `username` and turns MFA on.
async fn enrolled(app: &TestApp, username: &str) -> Enrolled {
    let sign_in = app.register(username, PASSWORD).await;
    let enrolment = start(app, &sign_in.access).await;
    let mut authenticator = Authenticator::new(enrolment["secret"].as_str().unwrap());
    let code = authenticator.next_code().await;
    let codes = app
        .data(CONFIRM, json!({"c": code}), &sign_in.access)
        .await
        .expect("confirmTotpEnrollment");
    let recovery: Vec<String> = codes["confirmTotpEnrollment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    Enrolled {
        sign_in,
        app: authenticator,
        recovery,
    }
}

/// A login answered MFA_REQUIRED: its mfaToken.
async fn mfa_token(app: &TestApp, username: &str, password: &str) -> String {
    let body = app.login_body(username, password).await;
    assert_eq!(error_code(&body).as_deref(), Some("MFA_REQUIRED"), "{body}");
    assert!(body["data"].is_null(), "{body}");
    let token = body["errors"][0]["extensions"]["mfaToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert_eq!(token.len(), 43, "256 bits in base64url");
    token
}

/// `count` logins of `username` answered MFA_REQUIRED: their mfaTokens. A right password
/// takes its own count back, so these leave the limits as they were.
async fn mfa_tokens(app: &TestApp, username: &str, count: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        tokens.push(mfa_token(app, username, PASSWORD).await);
    }
    tokens
}

/// `loginSecondFactor`: the whole reply.
async fn second_factor(app: &TestApp, token: &str, code: &str) -> Value {
    app.gql(SECOND_FACTOR, json!({"t": token, "c": code}), None)
        .await
}

/// `loginSecondFactor`, asserting success.
async fn sign_in_with(app: &TestApp, token: &str, code: &str) -> SignIn {
    let body = second_factor(app, token, code).await;
    assert_eq!(
        body["data"]["loginSecondFactor"]["user"]["mfaEnabled"], true,
        "{body}"
    );
    SignIn::from_reply(&body, "loginSecondFactor").unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// `loginSecondFactor` with a wrong code for each of `tokens`, asserting each is refused.
async fn send_wrong_codes(app: &TestApp, user: &Enrolled, tokens: &[String]) {
    for token in tokens {
        let body = second_factor(app, token, &user.app.wrong_code()).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UNAUTHENTICATED"),
            "{body}"
        );
    }
}

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn mfa_enabled(app: &TestApp, token: &str) -> Value {
    app.data("{ me { mfaEnabled } }", json!({}), token)
        .await
        .unwrap()["me"]["mfaEnabled"]
        .clone()
}

backend_tests! {
    async fn enrolling_turns_mfa_on_and_login_needs_a_code(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        assert_eq!(mfa_enabled(&app, &alice.access).await, false);

        let wrong = app.gql(START, json!({"p": "not the password"}), Some(&alice.access)).await;
        assert_eq!(error_code(&wrong).as_deref(), Some("UNAUTHENTICATED"), "{wrong}");

        let enrolment = start(&app, &alice.access).await;
        let secret = enrolment["secret"].as_str().unwrap();
        assert_eq!(secret.len(), 32, "160 bits in base32");
        let uri = enrolment["otpauthUri"].as_str().unwrap();
        assert_eq!(
            uri,
            format!("otpauth://totp/user-api:alice?secret={secret}&issuer=user-api")
        );
        assert!(enrolment["qrSvg"].as_str().unwrap().contains("<svg"));
        // Nothing changes until the enrolment is confirmed.
        assert_eq!(mfa_enabled(&app, &alice.access).await, false);
        app.login("alice", PASSWORD).await;

        let mut authenticator = Authenticator::new(secret);
        let refused = app
            .gql(CONFIRM, json!({"c": authenticator.wrong_code()}), Some(&alice.access))
            .await;
        assert_eq!(error_code(&refused).as_deref(), Some("UNAUTHENTICATED"), "{refused}");
        assert_eq!(mfa_enabled(&app, &alice.access).await, false);

        let code = authenticator.next_code().await;
        let codes = app.data(CONFIRM, json!({"c": code}), &alice.access).await.unwrap();
        let codes = codes["confirmTotpEnrollment"].as_array().unwrap().clone();
        assert_eq!(codes.len(), 10);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 10);
        for code in &codes {
            let code = code.as_str().unwrap();
            assert_eq!(code.len(), 19, "{code}");
            assert_eq!(code.matches('-').count(), 3, "{code}");
        }
        assert_eq!(mfa_enabled(&app, &alice.access).await, true);
        let notice = app
            .mailbox
            .wait_for("alice@example.com", |m| m.subject.contains("two-step sign-in is on"))
            .await;
        assert!(notice.text.contains("recovery codes"), "{}", notice.text);

        // The right password alone no longer signs in; the code that confirmed cannot either.
        let token = mfa_token(&app, "alice", PASSWORD).await;
        let replayed = second_factor(&app, &token, &code).await;
        assert_eq!(error_code(&replayed).as_deref(), Some("UNAUTHENTICATED"), "{replayed}");
        let signed_in = sign_in_with(&app, &token, &authenticator.next_code().await).await;
        assert_eq!(app.me(&signed_in.access).await, Ok(alice.user_id.clone()));
        // Refreshing needs no second factor: the sign-in had it.
        let renewed = app.refresh(&signed_in.refresh).await;
        assert_eq!(app.me(&renewed.access).await, Ok(alice.user_id.clone()));
        // A wrong password still answers as before, revealing nothing about MFA.
        let body = app.login_body("alice", "not the password").await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(message(&body), message(&app.login_body("nobody", "not the password").await));
        assert!(body["errors"][0]["extensions"]["mfaToken"].is_null());
    }

    async fn a_code_is_accepted_once_and_old_codes_never(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let first = mfa_token(&app, "alice", PASSWORD).await;
        let code = alice.app.next_code().await;
        sign_in_with(&app, &first, &code).await;

        let second = mfa_token(&app, "alice", PASSWORD).await;
        let replayed = second_factor(&app, &second, &code).await;
        assert_eq!(error_code(&replayed).as_deref(), Some("UNAUTHENTICATED"), "{replayed}");
        assert_eq!(message(&replayed), "invalid code");
        let stale = second_factor(&app, &second, &alice.app.code_at_offset(-2)).await;
        assert_eq!(error_code(&stale).as_deref(), Some("UNAUTHENTICATED"), "{stale}");
        // A step inside the window but before the last one accepted is refused too, used or not.
        let older = second_factor(&app, &second, &alice.app.code_at_offset(-1)).await;
        assert_eq!(error_code(&older).as_deref(), Some("UNAUTHENTICATED"), "{older}");
        // The token took three wrong codes and lives on.
        sign_in_with(&app, &second, &alice.app.next_code().await).await;
    }

    async fn recovery_codes_work_once_and_regenerate(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let token = mfa_token(&app, "alice", PASSWORD).await;
        // Letter case and dashes do not matter.
        let typed = alice.recovery[0].to_uppercase().replace('-', " ");
        sign_in_with(&app, &token, &typed).await;
        let notice = app
            .mailbox
            .wait_for("alice@example.com", |m| m.subject.contains("a recovery code was used"))
            .await;
        assert!(notice.text.contains("recovery codes left: 9"), "{}", notice.text);

        let token = mfa_token(&app, "alice", PASSWORD).await;
        let again = second_factor(&app, &token, &alice.recovery[0]).await;
        assert_eq!(error_code(&again).as_deref(), Some("UNAUTHENTICATED"), "{again}");

        let fresh = app
            .data(REGENERATE, json!({"c": alice.app.next_code().await}), &alice.sign_in.access)
            .await
            .unwrap();
        let fresh: Vec<String> = fresh["regenerateRecoveryCodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fresh.len(), 10);
        assert!(fresh.iter().all(|c| !alice.recovery.contains(c)));
        let old = second_factor(&app, &token, &alice.recovery[1]).await;
        assert_eq!(error_code(&old).as_deref(), Some("UNAUTHENTICATED"), "{old}");
        sign_in_with(&app, &token, &fresh[0]).await;
        assert_eq!(stored_code_count(&app, &alice.sign_in.user_id).await, 9);
    }

    async fn disabling_needs_the_password_and_a_code(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let token = &alice.sign_in.access;
        let code = alice.app.next_code().await;
        let body = app.gql(DISABLE, json!({"p": "not the password", "c": code}), Some(token)).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let body = app
            .gql(DISABLE, json!({"p": PASSWORD, "c": alice.app.wrong_code()}), Some(token))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let body = app.gql(DISABLE, json!({"p": PASSWORD, "c": "zzzz-zzzz-zzzz-zzzz"}), Some(token)).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        assert_eq!(mfa_enabled(&app, token).await, true);

        let done = app.data(DISABLE, json!({"p": PASSWORD, "c": code}), token).await.unwrap();
        assert_eq!(done["disableTotp"], true);
        assert_eq!(mfa_enabled(&app, token).await, false);
        app.login("alice", PASSWORD).await;
        app.mailbox
            .wait_for("alice@example.com", |m| m.subject.contains("two-step sign-in is off"))
            .await;
        let again = app.gql(DISABLE, json!({"p": PASSWORD, "c": code}), Some(token)).await;
        assert_eq!(error_code(&again).as_deref(), Some("CONFLICT"), "{again}");
        assert_eq!(stored_code_count(&app, &alice.sign_in.user_id).await, 0);
        // Enrolling again works, with a new secret.
        let enrolment = start(&app, token).await;
        assert_ne!(enrolment["secret"], json!(null));
    }

    async fn an_admin_resets_a_users_mfa(app: TestApp) {
        let admin = app.register("root", PASSWORD).await;
        make_admin(&app, &admin.user_id).await;
        let alice = enrolled(&app, "alice").await;
        let bob = app.register("bob", PASSWORD).await;

        let seen = app
            .data("query($id: ID!) { user(id: $id) { mfaEnabled } }", json!({"id": alice.sign_in.user_id}), &bob.access)
            .await
            .unwrap();
        assert_eq!(seen["user"]["mfaEnabled"], Value::Null, "only the user and admins see it");
        let seen = app
            .data("query($id: ID!) { user(id: $id) { mfaEnabled } }", json!({"id": alice.sign_in.user_id}), &admin.access)
            .await
            .unwrap();
        assert_eq!(seen["user"]["mfaEnabled"], true);

        let refused = app.gql(RESET_MFA, json!({"id": alice.sign_in.user_id}), Some(&bob.access)).await;
        assert_eq!(error_code(&refused).as_deref(), Some("FORBIDDEN"), "{refused}");
        let pending = mfa_token(&app, "alice", PASSWORD).await;

        let reset = app.data(RESET_MFA, json!({"id": alice.sign_in.user_id}), &admin.access).await.unwrap();
        assert_eq!(reset["resetUserMfa"]["mfaEnabled"], false);
        app.login("alice", PASSWORD).await;
        app.mailbox
            .wait_for("alice@example.com", |m| m.subject.contains("two-step sign-in is off"))
            .await;
        // A sign-in that was waiting for its second factor ended with it, even once MFA is
        // back on.
        let enrolment = start(&app, &alice.sign_in.access).await;
        let mut renewed = Authenticator::new(enrolment["secret"].as_str().unwrap());
        app.data(CONFIRM, json!({"c": renewed.next_code().await}), &alice.sign_in.access)
            .await
            .unwrap();
        let late = second_factor(&app, &pending, &renewed.next_code().await).await;
        assert_eq!(error_code(&late).as_deref(), Some("UNAUTHENTICATED"), "{late}");
        assert!(message(&late).contains("mfa token"), "{late}");
        // An admin's own MFA goes off only with their password and a code.
        let own = app.gql(RESET_MFA, json!({"id": admin.user_id}), Some(&admin.access)).await;
        assert_eq!(error_code(&own).as_deref(), Some("FORBIDDEN"), "{own}");
        let missing = app
            .gql(RESET_MFA, json!({"id": "0193a1b2-0000-7000-8000-000000000000"}), Some(&admin.access))
            .await;
        assert_eq!(error_code(&missing).as_deref(), Some("NOT_FOUND"), "{missing}");
    }

    async fn five_wrong_codes_kill_the_mfa_token(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let token = mfa_token(&app, "alice", PASSWORD).await;
        for _ in 0..5 {
            let body = second_factor(&app, &token, &alice.app.wrong_code()).await;
            assert_eq!(message(&body), "invalid code", "{body}");
        }
        let sixth = second_factor(&app, &token, &alice.app.next_code().await).await;
        assert_eq!(error_code(&sixth).as_deref(), Some("UNAUTHENTICATED"), "{sixth}");
        assert!(message(&sixth).contains("mfa token"), "{sixth}");
        // A fresh login gets a fresh token.
        let token = mfa_token(&app, "alice", PASSWORD).await;
        sign_in_with(&app, &token, &alice.recovery[0]).await;
    }

    async fn turning_mfa_on_ends_the_other_sign_ins(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        // A sign-in by password alone, as whoever MFA is turned on against would have.
        let other = app.login("alice", PASSWORD).await;
        let mut elsewhere = WsClient::signed_in(&app, &other.access).await;
        elsewhere
            .subscribe("1", "subscription { accountEvents { kind } }")
            .await;
        // Answered after the subscription is in place.
        elsewhere.send(json!({"type": "ping"})).await;
        assert_eq!(elsewhere.recv().await, Frame::Text(json!({"type": "pong"})));
        let enrolment = start(&app, &alice.access).await;
        let mut authenticator = Authenticator::new(enrolment["secret"].as_str().unwrap());
        app.data(CONFIRM, json!({"c": authenticator.next_code().await}), &alice.access)
            .await
            .expect("confirmTotpEnrollment");
        // The other sign-in hears the change, then its socket closes and its tokens are dead.
        assert_eq!(elsewhere.event("1").await["kind"], "MFA_ENABLED");
        let (code, reason) = elsewhere.closed().await;
        assert_eq!(code, 4403, "{reason}");
        assert_eq!(app.me(&other.access).await, Err("UNAUTHENTICATED".to_owned()));
        assert!(app.try_refresh(&other.refresh).await.is_err());
        // The sign-in that turned MFA on carries on, its refresh included.
        assert_eq!(app.me(&alice.access).await, Ok(alice.user_id.clone()));
        let renewed = app.refresh(&alice.refresh).await;
        assert_eq!(app.me(&renewed.access).await, Ok(alice.user_id.clone()));
        assert_eq!(mfa_enabled(&app, &renewed.access).await, true);
    }

    async fn enrolments_started_at_once_all_answer_and_one_is_under_way(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let starts = futures_util::future::join_all(
            (0..6).map(|_| app.gql(START, json!({"p": PASSWORD}), Some(&alice.access))),
        )
        .await;
        for body in &starts {
            assert!(body["data"]["startTotpEnrollment"].is_object(), "{body}");
        }
        // One enrolment is under way: the secret of the last one stored. A code of any other
        // is refused; a code of the stored one turns MFA on.
        let secrets: Vec<&str> = starts
            .iter()
            .map(|body| body["data"]["startTotpEnrollment"]["secret"].as_str().unwrap())
            .collect();
        let mut confirmed = false;
        for secret in secrets {
            let mut authenticator = Authenticator::new(secret);
            let body = app
                .gql(CONFIRM, json!({"c": authenticator.next_code().await}), Some(&alice.access))
                .await;
            if body["data"]["confirmTotpEnrollment"].is_array() {
                confirmed = true;
                break;
            }
        }
        assert!(confirmed, "no started enrolment could be confirmed");
        assert_eq!(mfa_enabled(&app, &alice.access).await, true);
    }

    async fn codes_sent_at_once_get_five_answers_at_most(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let token = mfa_token(&app, "alice", PASSWORD).await;
        let wrong: Vec<String> = (0..8).map(|_| alice.app.wrong_code()).collect();
        let answers =
            futures_util::future::join_all(wrong.iter().map(|code| second_factor(&app, &token, code)))
                .await;
        let answered = answers
            .iter()
            .filter(|body| message(body) == "invalid code")
            .count();
        let refused = answers
            .iter()
            .filter(|body| message(body).contains("mfa token"))
            .count();
        assert_eq!((answered, refused), (5, 3), "{answers:?}");
        // The five answers used the token up: a right code finds it dead.
        let late = second_factor(&app, &token, &alice.app.next_code().await).await;
        assert_eq!(error_code(&late).as_deref(), Some("UNAUTHENTICATED"), "{late}");
    }

    async fn wrong_codes_count_against_the_login_limits(backend: Backend) {
        let app = TestApp::builder()
            .mfa_failures_per_user(per_minute(3))
            .spawn(backend)
            .await;
        let mut alice = enrolled(&app, "alice").await;
        let tokens = mfa_tokens(&app, "alice", 4).await;
        send_wrong_codes(&app, &alice, &tokens[..3]).await;
        let limited = second_factor(&app, &tokens[3], &alice.app.next_code().await).await;
        assert_eq!(error_code(&limited).as_deref(), Some("RATE_LIMITED"), "{limited}");
        assert!(retry_after(&limited).is_some_and(|s| s >= 1), "{limited}");
        // Codes are checked when MFA is turned off too, under the same limit.
        let body = app
            .gql(DISABLE, json!({"p": PASSWORD, "c": alice.app.wrong_code()}), Some(&alice.sign_in.access))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    }

    async fn second_steps_count_against_the_address_limit(backend: Backend) {
        let app = TestApp::builder().login_per_ip(per_minute(7)).spawn(backend).await;
        let alice = enrolled(&app, "alice").await;
        // The enrolment's password and code, two logins and three second steps from one
        // address: the eighth check is refused, even with a token that names nothing.
        let first = mfa_token(&app, "alice", PASSWORD).await;
        let _second = mfa_token(&app, "alice", PASSWORD).await;
        send_wrong_codes(&app, &alice, &[first.clone(), first.clone(), first]).await;
        let body = second_factor(&app, &"A".repeat(43), &alice.recovery[0]).await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    }

    async fn a_right_code_takes_its_count_back(backend: Backend) {
        let app = TestApp::builder()
            .mfa_failures_per_user(per_minute(3))
            .spawn(backend)
            .await;
        let mut alice = enrolled(&app, "alice").await;
        let tokens = mfa_tokens(&app, "alice", 4).await;
        send_wrong_codes(&app, &alice, &tokens[..2]).await;
        sign_in_with(&app, &tokens[2], &alice.app.next_code().await).await;
        let body = second_factor(&app, &tokens[3], &alice.app.wrong_code()).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    }

    async fn wrong_codes_from_many_addresses_hit_the_per_user_limit(backend: Backend) {
        let app = TestApp::builder()
            .trusted_proxies(["127.0.0.1/32".parse().expect("a network")])
            .mfa_failures_per_user(per_minute(3))
            .spawn(backend)
            .await;
        let mut alice = enrolled(&app, "alice").await;
        let tokens = mfa_tokens(&app, "alice", 4).await;
        // Each guess from an address with no failures of its own, as a botnet would send them.
        for (n, token) in tokens[..3].iter().enumerate() {
            let client = app.forwarded_for(&format!("198.51.100.{}", n + 1));
            let body = client.gql(SECOND_FACTOR, json!({"t": token, "c": alice.app.wrong_code()}), None).await;
            assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        }
        let client = app.forwarded_for("203.0.113.9");
        let code = alice.app.next_code().await;
        let body = client.gql(SECOND_FACTOR, json!({"t": tokens[3], "c": code}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        // The refused request did not use up one of the token's attempts.
        let unused = app.forwarded_for("203.0.113.10");
        for _ in 0..5 {
            let body = unused.gql(SECOND_FACTOR, json!({"t": tokens[3], "c": "123456"}), None).await;
            assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        }
    }

    async fn disabling_an_account_ends_its_waiting_sign_ins(app: TestApp) {
        let admin = app.register("root", PASSWORD).await;
        make_admin(&app, &admin.user_id).await;
        let mut alice = enrolled(&app, "alice").await;
        let pending = mfa_token(&app, "alice", PASSWORD).await;
        app.data(
            "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }",
            json!({"id": alice.sign_in.user_id}),
            &admin.access,
        )
        .await
        .unwrap();
        let late = second_factor(&app, &pending, &alice.app.next_code().await).await;
        assert_eq!(error_code(&late).as_deref(), Some("UNAUTHENTICATED"), "{late}");
        // The right password of a disabled account answers as without MFA.
        let body = app.login_body("alice", PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert_eq!(crate::support::error_reason(&body).as_deref(), Some("ACCOUNT_DISABLED"));
    }

    async fn a_deleted_account_leaves_no_second_factor_behind(app: TestApp) {
        let alice = enrolled(&app, "alice").await;
        let pending = mfa_token(&app, "alice", PASSWORD).await;
        let deleted = app.data("mutation { deleteMe }", json!({}), &alice.sign_in.access).await.unwrap();
        assert_eq!(deleted["deleteMe"], true);
        let late = second_factor(&app, &pending, &alice.recovery[0]).await;
        assert_eq!(error_code(&late).as_deref(), Some("UNAUTHENTICATED"), "{late}");
        let (secret, hashes) = stored_factors(&app, &alice.sign_in.user_id).await;
        assert!(secret.is_empty() && hashes.is_empty(), "{secret} {hashes:?}");
        assert_eq!(challenge_count(&app).await, 0);
    }

    async fn one_token_with_two_right_codes_at_once_spends_one(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let token = mfa_token(&app, "alice", PASSWORD).await;
        let code = alice.app.next_code().await;
        let (a, b) = tokio::join!(
            second_factor(&app, &token, &code),
            second_factor(&app, &token, &alice.recovery[0])
        );
        let won = |body: &Value| body["data"]["loginSecondFactor"].is_object();
        assert_eq!(u8::from(won(&a)) + u8::from(won(&b)), 1, "{a}\n{b}");
        // The recovery code is spent only if its request won.
        let left = stored_code_count(&app, &alice.sign_in.user_id).await;
        assert_eq!(left, if won(&b) { 9 } else { 10 }, "{a}\n{b}");
    }

    async fn a_password_reset_leaves_mfa_on(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let before = mfa_token(&app, "alice", PASSWORD).await;
        app.gql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({"e": "alice@example.com"}),
            None,
        )
        .await;
        let mail = app.mailbox.next_with("alice@example.com", RESET_PATH).await;
        let reset = app
            .gql(
                "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
                json!({"t": mail.token(RESET_PATH).unwrap(), "p": "a brand new password"}),
                None,
            )
            .await;
        assert_eq!(reset["data"]["resetPassword"], true, "{reset}");
        // The sign-in that awaited its code was checked against the old password.
        let stale = second_factor(&app, &before, &alice.app.next_code().await).await;
        assert_eq!(error_code(&stale).as_deref(), Some("UNAUTHENTICATED"), "{stale}");
        let token = mfa_token(&app, "alice", "a brand new password").await;
        sign_in_with(&app, &token, &alice.app.next_code().await).await;
    }

    async fn bad_input_is_refused_and_changes_nothing(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let bob = enrolled(&app, "bob").await;
        let token = mfa_token(&app, "alice", PASSWORD).await;
        let huge = "1".repeat(10_000);
        for bad in ["abcdef", "12345", "1234567", "12 34 56 78", "", huge.as_str()] {
            let body = second_factor(&app, &token, bad).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{bad}: {body}");
            assert_eq!(error_field(&body).as_deref(), Some("code"), "{body}");
        }
        // Six malformed codes did not use up the token's five attempts.
        for bad_token in ["", "x", &"A".repeat(43), &"é".repeat(43), &huge] {
            let body = second_factor(&app, bad_token, &alice.app.code_at_offset(0)).await;
            assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        }
        // Bob's code does not complete Alice's sign-in, nor Alice's token Bob's.
        let body = second_factor(&app, &token, &bob.recovery[0]).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let signed_in = sign_in_with(&app, &token, &alice.app.next_code().await).await;
        assert_eq!(signed_in.user_id, alice.sign_in.user_id);
        // A token works once.
        let twice = second_factor(&app, &token, &alice.recovery[0]).await;
        assert_eq!(error_code(&twice).as_deref(), Some("UNAUTHENTICATED"), "{twice}");
        // An expired token is refused.
        let token = mfa_token(&app, "alice", PASSWORD).await;
        expire_challenges(&app).await;
        let late = second_factor(&app, &token, &alice.recovery[1]).await;
        assert_eq!(error_code(&late).as_deref(), Some("UNAUTHENTICATED"), "{late}");
        assert_eq!(stored_code_count(&app, &alice.sign_in.user_id).await, 10, "no code was used");

        // Enrolment: confirming without one, after it lapsed, or with a recovery-shaped code.
        let carol = app.register("carol", PASSWORD).await;
        let body = app.gql(CONFIRM, json!({"c": "123456"}), Some(&carol.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(error_field(&body).as_deref(), Some("code"));
        let enrolment = start(&app, &carol.access).await;
        let mut carols = Authenticator::new(enrolment["secret"].as_str().unwrap());
        let body = app.gql(CONFIRM, json!({"c": "abcd-efgh-ijkl-mnop"}), Some(&carol.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        lapse_enrolments(&app).await;
        let body = app.gql(CONFIRM, json!({"c": carols.next_code().await}), Some(&carol.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(mfa_enabled(&app, &carol.access).await, false);
        // Starting again while MFA is on is a conflict; without a token, unauthenticated.
        let body = app.gql(START, json!({"p": PASSWORD}), Some(&alice.sign_in.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        let body = app.gql(START, json!({"p": PASSWORD}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let body = app.gql(REGENERATE, json!({"c": "123456"}), Some(&carol.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
    }

    async fn aliases_cannot_multiply_code_guesses(app: TestApp) {
        let alice = enrolled(&app, "alice").await;
        let token = mfa_token(&app, "alice", PASSWORD).await;
        let guesses = format!(
            r#"mutation {{
                a: loginSecondFactor(mfaToken: "{token}", code: "111111") {{ accessToken }}
                b: loginSecondFactor(mfaToken: "{token}", code: "222222") {{ accessToken }}
            }}"#
        );
        let body = app.gql(&guesses, json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
        let body = app
            .gql(
                r#"mutation { a: disableTotp(currentPassword: "x", code: "111111") b: disableTotp(currentPassword: "y", code: "222222") }"#,
                json!({}),
                Some(&alice.sign_in.access),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_VALIDATION_FAILED"), "{body}");
        // Neither guess ran: the token has all its attempts.
        for _ in 0..4 {
            second_factor(&app, &token, &alice.app.wrong_code()).await;
        }
        sign_in_with(&app, &token, &alice.recovery[0]).await;
    }

    async fn one_code_sent_twice_at_once_signs_in_once(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let first = mfa_token(&app, "alice", PASSWORD).await;
        let second = mfa_token(&app, "alice", PASSWORD).await;
        let code = alice.app.next_code().await;
        let (a, b) = tokio::join!(
            second_factor(&app, &first, &code),
            second_factor(&app, &second, &code)
        );
        let successes = [&a, &b]
            .iter()
            .filter(|body| body["data"]["loginSecondFactor"].is_object())
            .count();
        assert_eq!(successes, 1, "{a}\n{b}");
    }

    async fn secrets_are_encrypted_and_recovery_codes_hashed(app: TestApp) {
        let sign_in = app.register("alice", PASSWORD).await;
        let enrolment = start(&app, &sign_in.access).await;
        let secret = enrolment["secret"].as_str().unwrap().to_owned();
        let mut authenticator = Authenticator::new(&secret);
        let codes = app
            .data(CONFIRM, json!({"c": authenticator.next_code().await}), &sign_in.access)
            .await
            .unwrap();
        let (stored, hashes) = stored_factors(&app, &sign_in.user_id).await;
        assert!(!stored.is_empty());
        assert!(!stored.to_uppercase().contains(&secret), "the secret is not stored in clear");
        assert_eq!(hashes.len(), 10);
        for code in codes["confirmTotpEnrollment"].as_array().unwrap() {
            let plain = code.as_str().unwrap().replace('-', "");
            assert!(hashes.iter().all(|h| h.len() == 64 && !h.contains(&plain)));
        }
    }

    async fn rest_login_answers_mfa_required_and_login_mfa_completes_it(app: TestApp) {
        let mut alice = enrolled(&app, "alice").await;
        let reply = rest::login(&app, "alice", PASSWORD).await;
        reply.assert_unauthorized();
        assert_eq!(reply.body["mfa_required"], true, "{reply:?}");
        let token = reply.body["mfa_token"].as_str().unwrap().to_owned();
        assert!(reply.body.get("access_token").is_none());

        let missing = call(&app, Method::POST, "/users/login/mfa", None, Some(json!({"mfa_token": token}))).await;
        missing.assert_invalid("body", "code");
        let malformed = call(&app, Method::POST, "/users/login/mfa", None, Some(json!({"mfa_token": token, "code": "12"}))).await;
        malformed.assert_invalid("body", "code");
        let wrong = call(&app, Method::POST, "/users/login/mfa", None, Some(json!({"mfa_token": token, "code": alice.app.wrong_code()}))).await;
        wrong.assert_unauthorized();

        let done = call(
            &app,
            Method::POST,
            "/users/login/mfa",
            None,
            Some(json!({"mfa_token": token, "code": alice.app.next_code().await})),
        )
        .await;
        assert_eq!(done.status, 200, "{done:?}");
        assert_eq!(done.body["token_type"], "bearer");
        let access = done.body["access_token"].as_str().unwrap();
        assert_eq!(rest::me(&app, access).await.status, 200);
        let used = call(&app, Method::POST, "/users/login/mfa", None, Some(json!({"mfa_token": token, "code": alice.recovery[0]}))).await;
        used.assert_unauthorized();
        // The OpenAPI document lists the route.
        let doc = call(&app, Method::GET, "/openapi.json", None, None).await;
        assert!(doc.body["paths"]["/users/login/mfa"]["post"].is_object(), "{:?}", doc.body["paths"]);
    }

    async fn mfa_changes_are_account_events(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let mut ws = WsClient::signed_in(&app, &alice.access).await;
        ws.subscribe("1", "subscription { accountEvents { kind } }").await;
        // A login shows the subscription runs (its event may take a few tries to arrive).
        let mut running = false;
        for _ in 0..20 {
            app.login("alice", PASSWORD).await;
            if ws.recv_within(std::time::Duration::from_millis(250)).await.is_some() {
                running = true;
                break;
            }
        }
        assert!(running, "the subscription heard no login");
        let enrolment = start(&app, &alice.access).await;
        let mut authenticator = Authenticator::new(enrolment["secret"].as_str().unwrap());
        let codes = app
            .data(CONFIRM, json!({"c": authenticator.next_code().await}), &alice.access)
            .await
            .unwrap();
        assert_eq!(next_kind(&mut ws).await, "MFA_ENABLED");
        let token = mfa_token(&app, "alice", PASSWORD).await;
        let recovery = codes["confirmTotpEnrollment"][0].as_str().unwrap();
        sign_in_with(&app, &token, recovery).await;
        assert_eq!(next_kind(&mut ws).await, "RECOVERY_CODE_USED");
        app.data(DISABLE, json!({"p": PASSWORD, "c": authenticator.next_code().await}), &alice.access)
            .await
            .unwrap();
        assert_eq!(next_kind(&mut ws).await, "MFA_DISABLED");
    }
}

/// The kind of the next event of subscription `1` that is not a session starting.
async fn next_kind(ws: &mut WsClient) -> String {
    loop {
        let event = ws.event("1").await;
        let kind = event["kind"].as_str().unwrap().to_owned();
        if kind != "SESSION_STARTED" {
            return kind;
        }
    }
}

async fn expire_challenges(app: &TestApp) {
    async fn run(app: &TestApp) -> Result<usize, DbError> {
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(1);
        let query = diesel::update(mfa_challenges::table).set(mfa_challenges::expires_at.eq(past));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert!(run(app).await.expect("expire challenges") > 0);
}

async fn lapse_enrolments(app: &TestApp) {
    async fn run(app: &TestApp) -> Result<usize, DbError> {
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(1);
        let query =
            diesel::update(user_totp::table.filter(user_totp::pending_secret.is_not_null()))
                .set(user_totp::pending_expires_at.eq(past));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert!(run(app).await.expect("lapse enrolments") > 0);
}

async fn challenge_count(app: &TestApp) -> i64 {
    async fn run(app: &TestApp) -> Result<i64, DbError> {
        user_api::with_conn!(app.state.dependencies.database(), |c| mfa_challenges::table
            .count()
            .get_result::<i64>(c)
            .await)
    }
    run(app).await.expect("count challenges")
}

async fn stored_code_count(app: &TestApp, user_id: &str) -> i64 {
    async fn run(app: &TestApp, user_id: &str) -> Result<i64, DbError> {
        let query = mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user_id.to_owned()))
            .count();
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .get_result::<i64>(c)
            .await)
    }
    run(app, user_id).await.expect("count recovery codes")
}

/// The stored (sealed) secret and recovery-code hashes of the user.
async fn stored_factors(app: &TestApp, user_id: &str) -> (String, Vec<String>) {
    async fn run(
        app: &TestApp,
        user_id: &str,
    ) -> Result<(Option<Option<String>>, Vec<String>), DbError> {
        let secret = user_totp::table
            .find(user_id.to_owned())
            .select(user_totp::secret);
        let secret: Option<Option<String>> =
            user_api::with_conn!(app.state.dependencies.database(), |c| secret
                .clone()
                .first(c)
                .await
                .optional())?;
        let hashes = mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user_id.to_owned()))
            .select(mfa_recovery_codes::code_hash);
        let hashes: Vec<String> =
            user_api::with_conn!(app.state.dependencies.database(), |c| hashes
                .clone()
                .load(c)
                .await)?;
        Ok((secret, hashes))
    }
    let (secret, hashes) = run(app, user_id).await.expect("stored factors");
    (secret.flatten().unwrap_or_default(), hashes)
}
