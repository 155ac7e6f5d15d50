//! The account lifecycle over email (API.md section 7): verification on registration and on
//! email changes, password reset, notices, REQUIRE_EMAIL_VERIFICATION — each with its mail
//! received over real SMTP by the test's own SMTP server, and its link followed.

use serde_json::{Value, json};

use crate::support::mailbox::{RESET_PATH, VERIFY_PATH};
use crate::support::rest::{call, me as rest_me};
use crate::support::{
    Backend, PASSWORD, TestApp, backend_tests, error_code, error_field, per_hour,
};

const VERIFY: &str = "mutation($t: String!) { verifyEmail(token: $t) { id email emailVerified } }";
const REQUEST_RESET: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const RESET: &str =
    "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
const ME: &str = "{ me { id email emailVerified } }";
const NEW_PASSWORD: &str = "a brand new passphrase";

async fn verify(app: &TestApp, token: &str) -> Value {
    app.gql(VERIFY, json!({"t": token}), None).await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Value {
    app.gql(RESET, json!({"t": token, "p": password}), None)
        .await
}

backend_tests! {
    /// Registration mails a link to the new address; following it verifies the address, once.
    async fn registration_mail_verifies_the_address(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let me = app.gql(ME, json!({}), Some(&alice.access)).await;
        assert_eq!(me["data"]["me"]["emailVerified"], false, "{me}");
        let mail = app.mailbox.next_to("alice@example.com").await;
        assert!(mail.subject.contains("confirm your email address"), "{}", mail.subject);
        assert!(mail.html.is_some(), "an HTML body beside the text");
        let token = mail.token(VERIFY_PATH).expect("a verification link");
        let body = verify(&app, &token).await;
        assert_eq!(body["data"]["verifyEmail"]["emailVerified"], true, "{body}");
        assert_eq!(body["data"]["verifyEmail"]["email"], "alice@example.com");
        let me = app.gql(ME, json!({}), Some(&alice.access)).await;
        assert_eq!(me["data"]["me"]["emailVerified"], true, "{me}");
        // Single use.
        assert_eq!(error_code(&verify(&app, &token).await).as_deref(), Some("UNAUTHENTICATED"));
    }

    /// Every bad token gets the same answer: malformed, unknown, used, expired, and one of a
    /// deleted user — for verification and reset alike.
    async fn bad_tokens_all_get_one_answer(app: TestApp) {
        let bob = app.register("bob", PASSWORD).await;
        let token = app.mailbox.next_to("bob@example.com").await.token(VERIFY_PATH).unwrap();
        let unknown = "A".repeat(43);
        let mut answers = Vec::new();
        for bad in ["", "short", &"x".repeat(10_000), "../../etc/passwd", "a\r\nb", &unknown] {
            answers.push(verify(&app, bad).await);
            answers.push(reset(&app, bad, NEW_PASSWORD).await);
        }
        // Expired.
        crate::support::db::expire_account_tokens(&app).await;
        answers.push(verify(&app, &token).await);
        for body in &answers {
            assert_eq!(error_code(body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
            assert_eq!(body["errors"][0]["message"], answers[0]["errors"][0]["message"]);
        }
        // A reset token of a user who deleted their account.
        app.gql(REQUEST_RESET, json!({"e": "bob@example.com"}), None).await;
        let token = app.mailbox.next_with("bob@example.com", RESET_PATH).await.token(RESET_PATH).unwrap();
        let deleted = app.gql("mutation { deleteMe }", json!({}), Some(&bob.access)).await;
        assert_eq!(deleted["data"]["deleteMe"], true, "{deleted}");
        let body = reset(&app, &token, NEW_PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
    }

    /// A newer verification mail replaces the older links; an address already verified gets
    /// no mail (and the same answer).
    async fn a_newer_verification_link_replaces_older_ones(app: TestApp) {
        let carol = app.register("carol", PASSWORD).await;
        let first = app.mailbox.next_to("carol@example.com").await.token(VERIFY_PATH).unwrap();
        let body = app.gql("mutation { sendVerificationEmail }", json!({}), Some(&carol.access)).await;
        assert_eq!(body["data"]["sendVerificationEmail"], true, "{body}");
        let second = app.mailbox.nth_to("carol@example.com", 2).await.token(VERIFY_PATH).unwrap();
        assert_ne!(first, second);
        assert_eq!(error_code(&verify(&app, &first).await).as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(verify(&app, &second).await["data"]["verifyEmail"]["emailVerified"], true);
        let body = app.gql("mutation { sendVerificationEmail }", json!({}), Some(&carol.access)).await;
        assert_eq!(body["data"]["sendVerificationEmail"], true, "{body}");
        // A later mail to someone else arrives; carol got no third one meanwhile.
        app.register("carol2", PASSWORD).await;
        app.mailbox.next_to("carol2@example.com").await;
        assert_eq!(app.mailbox.all_to("carol@example.com").len(), 2);
    }

    /// The whole reset: the link arrives, the new password works, the old one and every
    /// session and refresh token of the user end, a notice follows, the address counts as
    /// verified, and the link works once.
    async fn password_reset_ends_every_sign_in(app: TestApp) {
        let dave = app.register("dave", PASSWORD).await;
        let other = app.login("dave", PASSWORD).await;
        let body = app.gql(REQUEST_RESET, json!({"e": "DAVE@example.com"}), None).await;
        assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
        let mail = app.mailbox.next_with("dave@example.com", RESET_PATH).await;
        let token = mail.token(RESET_PATH).expect("a reset link");
        let body = reset(&app, &token, NEW_PASSWORD).await;
        assert_eq!(body["data"]["resetPassword"], true, "{body}");
        for sign_in in [&dave, &other] {
            assert_eq!(app.me(&sign_in.access).await, Err("UNAUTHENTICATED".into()));
            assert!(app.try_refresh(&sign_in.refresh).await.is_err());
        }
        assert_eq!(error_code(&app.login_body("dave", PASSWORD).await).as_deref(), Some("UNAUTHENTICATED"));
        let fresh = app.login("dave", NEW_PASSWORD).await;
        let me = app.gql(ME, json!({}), Some(&fresh.access)).await;
        assert_eq!(me["data"]["me"]["emailVerified"], true, "the mail proved the address: {me}");
        let notice = app.mailbox.next_without("dave@example.com", &[RESET_PATH, VERIFY_PATH]).await;
        assert!(notice.token(RESET_PATH).is_none() && !notice.text.contains(&token));
        assert!(notice.subject.to_lowercase().contains("password"), "{}", notice.subject);
        // Used up.
        assert_eq!(error_code(&reset(&app, &token, "yet another passphrase").await).as_deref(), Some("UNAUTHENTICATED"));
    }

    /// A reset for an address nobody registered answers exactly as one for a registered
    /// address, and sends nothing.
    async fn reset_for_an_unknown_address_looks_the_same(app: TestApp) {
        app.register("erin", PASSWORD).await;
        let unknown = app.gql(REQUEST_RESET, json!({"e": "nobody@example.com"}), None).await;
        let known = app.gql(REQUEST_RESET, json!({"e": "erin@example.com"}), None).await;
        assert_eq!(unknown, known);
        app.mailbox.next_with("erin@example.com", RESET_PATH).await;
        assert!(app.mailbox.all_to("nobody@example.com").is_empty());
    }

    /// A new password that breaks the rules is refused with the field named, and the link
    /// still works for a second try.
    async fn a_bad_new_password_keeps_the_link(app: TestApp) {
        app.register("frank", PASSWORD).await;
        app.gql(REQUEST_RESET, json!({"e": "frank@example.com"}), None).await;
        let token = app.mailbox.next_with("frank@example.com", RESET_PATH).await.token(RESET_PATH).unwrap();
        let body = reset(&app, &token, "short").await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(error_field(&body).as_deref(), Some("newPassword"));
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await["data"]["resetPassword"], true);
    }

    /// An email change unverifies the account, mails a link to the new address and a notice
    /// to the old one; the old address's link no longer verifies anything.
    async fn an_email_change_is_verified_anew_and_told_to_the_old_address(app: TestApp) {
        let gina = app.register("gina", PASSWORD).await;
        let old_link = app.mailbox.next_to("gina@example.com").await.token(VERIFY_PATH).unwrap();
        let body = app.update_me(&gina.access, json!({"email": "gina@example.org"})).await;
        assert_eq!(body["data"]["updateMe"]["email"], "gina@example.org", "{body}");
        let me = app.gql(ME, json!({}), Some(&gina.access)).await;
        assert_eq!(me["data"]["me"]["emailVerified"], false);
        let notice = app.mailbox.nth_to("gina@example.com", 2).await;
        assert!(notice.token(VERIFY_PATH).is_none(), "a notice carries no token");
        assert!(notice.text.contains("gina@example.org"), "{}", notice.text);
        assert_eq!(error_code(&verify(&app, &old_link).await).as_deref(), Some("UNAUTHENTICATED"));
        let link = app.mailbox.next_to("gina@example.org").await.token(VERIFY_PATH).unwrap();
        assert_eq!(verify(&app, &link).await["data"]["verifyEmail"]["emailVerified"], true);
    }

    /// A password change tells the account's address.
    async fn a_password_change_sends_a_notice(app: TestApp) {
        let hank = app.register("hank", PASSWORD).await;
        app.mailbox.next_to("hank@example.com").await;
        let body = app.update_me(&hank.access, json!({"password": NEW_PASSWORD, "currentPassword": PASSWORD})).await;
        assert!(body["errors"].is_null(), "{body}");
        let notice = app.mailbox.nth_to("hank@example.com", 2).await;
        assert!(notice.subject.to_lowercase().contains("password"), "{}", notice.subject);
        assert!(notice.token(RESET_PATH).is_none() && notice.token(VERIFY_PATH).is_none());
    }

    /// Input that could reach a mail header is refused before anything is queued.
    async fn header_injection_is_refused(app: TestApp) {
        for email in ["a@example.com\r\nBcc: x@example.com", "a@example.com\nBcc: x@example.com"] {
            let body = app.gql(REQUEST_RESET, json!({"e": email}), None).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
            let body = app.register_body("ivan", email, PASSWORD).await;
            assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
        }
        app.register("ivan", PASSWORD).await;
        let mail = app.mailbox.next_to("ivan@example.com").await;
        assert_eq!(mail.recipients, ["ivan@example.com"]);
        assert!(app.mailbox.all_to("x@example.com").is_empty());
    }

    /// Reset requests are limited per address asked for, registered or not, with the same
    /// answer for both.
    async fn reset_requests_are_rate_limited(backend: Backend) {
        let app = TestApp::builder().password_reset_per_email(per_hour(2)).spawn(backend).await;
        app.register("judy", PASSWORD).await;
        for email in ["judy@example.com", "nobody@example.com"] {
            for _ in 0..2 {
                let body = app.gql(REQUEST_RESET, json!({"e": email}), None).await;
                assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
            }
            let body = app.gql(REQUEST_RESET, json!({"e": email}), None).await;
            assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
        }
    }

    /// With REQUIRE_EMAIL_VERIFICATION, an unverified user can sign in and reach `me` and
    /// the verification flow, and nothing else until the address is verified.
    async fn unverified_users_are_held_back_when_required(backend: Backend) {
        let app = TestApp::builder().require_email_verification(true).spawn(backend).await;
        let kim = app.register("kim", PASSWORD).await;
        assert!(app.me(&kim.access).await.is_ok());
        let other = app.register("other", PASSWORD).await;
        // Every operation beyond the few that lead to verification is held back.
        let held = [
            "{ users { nodes { id } } }".to_owned(),
            format!("{{ user(id: \"{}\") {{ id }} }}", other.user_id),
            "{ sessions { id } }".to_owned(),
            "mutation { updateMe(input: {email: \"kim2@example.com\"}) { id } }".to_owned(),
            format!("mutation {{ revokeSession(id: \"{}\") }}", other.session_id()),
            "mutation { logoutAll }".to_owned(),
            format!("mutation {{ deleteUser(id: \"{}\") }}", other.user_id),
            format!("mutation {{ setRole(id: \"{}\", role: ADMIN) {{ id }} }}", other.user_id),
            format!("mutation {{ setUserDisabled(id: \"{}\", disabled: true) {{ id }} }}", other.user_id),
        ];
        for query in &held {
            let body = app.gql(query, json!({}), Some(&kim.access)).await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{query}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["reason"], "EMAIL_NOT_VERIFIED", "{query}");
        }
        for path in ["/users", &format!("/users/{}", other.user_id)] {
            let reply = call(&app, reqwest::Method::GET, path, Some(&kim.access), None).await;
            assert_eq!(reply.status, 403, "{path}");
            assert_eq!(reply.body["reason"], "EMAIL_NOT_VERIFIED");
        }
        let reply = call(&app, reqwest::Method::PUT, "/users", Some(&kim.access), Some(json!({"email": "k@example.com"}))).await;
        assert_eq!(reply.status, 403);
        assert_eq!(rest_me(&app, &kim.access).await.status, 200);
        // Signing out and leaving stay open.
        let spare = app.login("kim", PASSWORD).await;
        assert_eq!(app.logout(&spare.access).await["data"]["logout"], true);
        let body = app.gql("mutation { sendVerificationEmail }", json!({}), Some(&kim.access)).await;
        assert_eq!(body["data"]["sendVerificationEmail"], true, "{body}");
        let token = app.mailbox.nth_to("kim@example.com", 2).await.token(VERIFY_PATH).unwrap();
        verify(&app, &token).await;
        let body = app.gql("{ users { nodes { id } } }", json!({}), Some(&kim.access)).await;
        assert!(body["errors"].is_null(), "{body}");
        // Off (the default), nobody is held back.
        let free = TestApp::spawn(backend).await;
        let lee = free.register("lee", PASSWORD).await;
        let body = free.gql("{ users { nodes { id } } }", json!({}), Some(&lee.access)).await;
        assert!(body["errors"].is_null(), "{body}");
    }

    /// The REST mirrors: 202, 204, 200 with the user, 202, and 401 with the same body for a
    /// bad token.
    async fn rest_mirrors(app: TestApp) {
        let mia = app.register("mia", PASSWORD).await;
        let token = app.mailbox.next_to("mia@example.com").await.token(VERIFY_PATH).unwrap();
        let reply = call(&app, reqwest::Method::POST, "/users/verify-email", None, Some(json!({"token": token}))).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["data"]["username"], "mia");
        let bad = call(&app, reqwest::Method::POST, "/users/verify-email", None, Some(json!({"token": token}))).await;
        bad.assert_unauthorized();
        let reply = call(&app, reqwest::Method::POST, "/users/verify-email/resend", Some(&mia.access), None).await;
        assert_eq!(reply.status, 202);
        let reply = call(&app, reqwest::Method::POST, "/users/password-reset", None, Some(json!({"email": "mia@example.com"}))).await;
        assert_eq!(reply.status, 202);
        let reply = call(&app, reqwest::Method::POST, "/users/password-reset", None, Some(json!({"email": "nobody@example.com"}))).await;
        assert_eq!(reply.status, 202);
        let token = app.mailbox.next_with("mia@example.com", RESET_PATH).await.token(RESET_PATH).unwrap();
        let reply = call(&app, reqwest::Method::POST, "/users/password-reset/confirm", None, Some(json!({"token": token, "new_password": "x"}))).await;
        reply.assert_invalid("body", "new_password");
        let reply = call(&app, reqwest::Method::POST, "/users/password-reset/confirm", None, Some(json!({"token": token, "new_password": NEW_PASSWORD}))).await;
        assert_eq!(reply.status, 204);
        let again = call(&app, reqwest::Method::POST, "/users/password-reset/confirm", None, Some(json!({"token": token, "new_password": NEW_PASSWORD}))).await;
        again.assert_unauthorized();
        assert_eq!(bad.body, again.body, "one answer for every bad token");
    }

    /// The server's own pages complete both actions from the links, with a form (opening a
    /// link changes nothing), a policy that allows no script, and no referrer.
    async fn the_link_pages_complete_the_actions(app: TestApp) {
        app.register("noor", PASSWORD).await;
        let mail = app.mailbox.next_to("noor@example.com").await;
        let (url, token) = mail.link(VERIFY_PATH).expect("a link");
        assert!(url.starts_with(&format!("http://{}/verify-email?token=", app.addr)), "{url}");
        let page = app.client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains("<form") && !html.contains("<script"), "{html}");
        // Opening the page verified nothing yet.
        let done = app.client.post(app.url("/verify-email")).form(&[("token", token.as_str())]).send().await.unwrap();
        assert_eq!(done.status(), 200);
        let again = app.client.post(app.url("/verify-email")).form(&[("token", token.as_str())]).send().await.unwrap();
        assert_eq!(again.status(), 400, "used up");
        app.gql(REQUEST_RESET, json!({"e": "noor@example.com"}), None).await;
        let (url, token) = app.mailbox.next_with("noor@example.com", RESET_PATH).await.link(RESET_PATH).unwrap();
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
        let differ = app.client.post(app.url("/reset-password"))
            .form(&[("token", token.as_str()), ("password", NEW_PASSWORD), ("confirm", "something else")])
            .send().await.unwrap();
        assert_eq!(differ.status(), 422);
        let done = app.client.post(app.url("/reset-password"))
            .form(&[("token", token.as_str()), ("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)])
            .send().await.unwrap();
        assert_eq!(done.status(), 200);
        app.login("noor", NEW_PASSWORD).await;
    }

    /// Disabling an account tells its owner, with a notice that carries no token; a disabled
    /// account gets no reset link (the answer is the same).
    async fn disabling_tells_the_owner(app: TestApp) {
        let admin = app.register("boss", PASSWORD).await;
        crate::support::db::make_admin(&app, &admin.user_id).await;
        let user = app.register("olga", PASSWORD).await;
        app.mailbox.next_to("olga@example.com").await;
        let body = app.gql(
            "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { disabled } }",
            json!({"id": user.user_id}),
            Some(&admin.access),
        ).await;
        assert_eq!(body["data"]["setUserDisabled"]["disabled"], true, "{body}");
        let notice = app.mailbox.nth_to("olga@example.com", 2).await;
        assert!(notice.subject.contains("disabled"), "{}", notice.subject);
        assert!(notice.token(VERIFY_PATH).is_none() && notice.token(RESET_PATH).is_none());
        let body = app.gql(REQUEST_RESET, json!({"e": "olga@example.com"}), None).await;
        assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
        app.gql(REQUEST_RESET, json!({"e": "boss@example.com"}), None).await;
        app.mailbox.next_with("boss@example.com", RESET_PATH).await;
        assert_eq!(app.mailbox.all_to("olga@example.com").len(), 2, "no reset link for a disabled account");
    }

    /// A reset link stops working when the address or the password changes after it was
    /// mailed, or the account is disabled; and, like every link, when it expires.
    async fn reset_links_end_with_the_account_changes_they_predate(app: TestApp) {
        let admin = app.register("chief", PASSWORD).await;
        crate::support::db::make_admin(&app, &admin.user_id).await;
        let pat = app.register("pat", PASSWORD).await;
        // An email change ends the link mailed to the old address.
        let token = fresh_reset_token(&app, "pat@example.com").await;
        app.update_me(&pat.access, json!({"email": "pat@example.org"})).await;
        assert_eq!(error_code(&reset(&app, &token, NEW_PASSWORD).await).as_deref(), Some("UNAUTHENTICATED"));
        // A password change ends it.
        let token = fresh_reset_token(&app, "pat@example.org").await;
        let body = app.update_me(&pat.access, json!({"password": NEW_PASSWORD, "currentPassword": PASSWORD})).await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(error_code(&reset(&app, &token, "third passphrase here").await).as_deref(), Some("UNAUTHENTICATED"));
        // So does its expiry.
        let token = fresh_reset_token(&app, "pat@example.org").await;
        crate::support::db::expire_account_tokens(&app).await;
        assert_eq!(error_code(&reset(&app, &token, "third passphrase here").await).as_deref(), Some("UNAUTHENTICATED"));
        // And disabling.
        let token = fresh_reset_token(&app, "pat@example.org").await;
        let body = app.gql(
            "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { disabled } }",
            json!({"id": pat.user_id}),
            Some(&admin.access),
        ).await;
        assert_eq!(body["data"]["setUserDisabled"]["disabled"], true, "{body}");
        assert_eq!(error_code(&reset(&app, &token, "third passphrase here").await).as_deref(), Some("UNAUTHENTICATED"));
    }

    /// A reset link written in the instant after the account moved to another address (so
    /// that the change's clean-up missed it) still resets nothing: it was mailed to the old
    /// address, whose owner may no longer be the account's.
    async fn a_reset_link_for_an_old_address_resets_nothing(app: TestApp) {
        let pat = app.register("pat", PASSWORD).await;
        let token = fresh_reset_token(&app, "pat@example.com").await;
        // The address changes, as if the link had been written just after the change's
        // clean-up: straight in the database, which leaves the link alone.
        move_address(&app, &pat.user_id, "pat@example.org").await;
        let body = reset(&app, &token, NEW_PASSWORD).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        // The password is the old one, and the link is used up.
        app.login("pat", PASSWORD).await;
        move_address(&app, &pat.user_id, "pat@example.com").await;
        let again = reset(&app, &token, NEW_PASSWORD).await;
        assert_eq!(error_code(&again).as_deref(), Some("UNAUTHENTICATED"), "{again}");
        app.login("pat", PASSWORD).await;
    }
}

/// Moves the user to `email` in the database alone, without the service's clean-up.
async fn move_address(app: &TestApp, user_id: &str, email: &str) {
    use diesel::{ExpressionMethods as _, QueryDsl as _};
    use diesel_async::RunQueryDsl as _;
    use user_api::db::schema::users;
    async fn run(
        app: &TestApp,
        user_id: &str,
        email: &str,
    ) -> Result<usize, user_api::db::DbError> {
        let query = diesel::update(users::table.find(user_id.to_owned())).set((
            users::email.eq(email.to_owned()),
            users::email_lower.eq(email.to_lowercase()),
        ));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, user_id, email).await.expect("move the address"), 1);
}

/// Asks for a reset link for `email` and returns the token of the mail it brings.
async fn fresh_reset_token(app: &TestApp, email: &str) -> String {
    let links = |app: &TestApp| -> Vec<String> {
        app.mailbox
            .all_to(email)
            .iter()
            .filter_map(|m| m.token(RESET_PATH))
            .collect()
    };
    let before = links(app).len();
    let body = app.gql(REQUEST_RESET, json!({"e": email}), None).await;
    assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
    for _ in 0..800 {
        if let Some(token) = links(app).get(before) {
            return token.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no new reset link for {email}");
}
