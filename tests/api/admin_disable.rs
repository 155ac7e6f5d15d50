//! Disabling accounts (`setUserDisabled`, `PUT /users/{id}/disabled`): a disabled user's
//! sessions end at once and they cannot sign in or refresh (FORBIDDEN with the reason
//! ACCOUNT_DISABLED, told only to someone who proved the password); enabling lets them sign in
//! again; only admins may do it, and the last enabled admin cannot be disabled.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::db::{count_enabled_admins, demote_everyone, make_admin};
use crate::support::rest::{self, call};
use crate::support::{PASSWORD, SignIn, TestApp, backend_tests, error_code, error_reason};

const SET_DISABLED: &str = "mutation($id: ID!, $d: Boolean!) { \
     setUserDisabled(id: $id, disabled: $d) { id username email disabled } }";

async fn set_disabled(
    app: &TestApp,
    token: &str,
    id: &str,
    disabled: bool,
) -> Result<Value, String> {
    app.data(SET_DISABLED, json!({"id": id, "d": disabled}), token)
        .await
        .map(|data| data["setUserDisabled"].clone())
}

async fn set_role(app: &TestApp, token: &str, id: &str, role: &str) -> Result<Value, String> {
    app.data(
        "mutation($id: ID!, $r: Role!) { setRole(id: $id, role: $r) { id } }",
        json!({"id": id, "r": role}),
        token,
    )
    .await
}

/// (code, reason) of a `refresh` with this token.
async fn refresh_refusal(app: &TestApp, refresh: &str) -> (Option<String>, Option<String>) {
    let body = app
        .gql(
            "mutation($t: String!) { refresh(refreshToken: $t) { accessToken } }",
            json!({"t": refresh}),
            None,
        )
        .await;
    assert!(
        body["data"].is_null() || body["data"]["refresh"].is_null(),
        "{body}"
    );
    (error_code(&body), error_reason(&body))
}

/// (code, reason) of a `login`.
async fn login_refusal(
    app: &TestApp,
    username: &str,
    password: &str,
) -> (Option<String>, Option<String>) {
    let body = app.login_body(username, password).await;
    (error_code(&body), error_reason(&body))
}

fn disabled_refusal() -> (Option<String>, Option<String>) {
    (Some("FORBIDDEN".into()), Some("ACCOUNT_DISABLED".into()))
}

async fn admin_and_user(app: &TestApp) -> (SignIn, SignIn) {
    let admin = app.register("root", PASSWORD).await;
    make_admin(app, &admin.user_id).await;
    let user = app.register("plain", PASSWORD).await;
    (admin, user)
}

backend_tests! {
    async fn disabling_ends_every_sign_in_at_once(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        let second = app.login("plain", PASSWORD).await;
        let rest_token = rest::login_token(&app, "plain", PASSWORD).await;
        assert_eq!(app.me(&user.access).await, Ok(user.user_id.clone()));

        let reply = set_disabled(&app, &admin.access, &user.user_id, true).await.unwrap();
        assert_eq!(reply, json!({"id": user.user_id, "username": "plain", "email": "plain@example.com", "disabled": true}));

        // Every token of the user fails on its very next use, over both adapters.
        for token in [&user.access, &second.access, &rest_token] {
            assert_eq!(app.me(token).await, Err("UNAUTHENTICATED".into()));
            rest::me(&app, token).await.assert_unauthorized();
        }
        // Refresh tokens too, and they say why.
        for refresh in [&user.refresh, &second.refresh] {
            assert_eq!(refresh_refusal(&app, refresh).await, disabled_refusal());
        }
        let reply = call(&app, Method::POST, "/users/refresh", None, Some(json!({"refresh_token": second.refresh}))).await;
        reply.assert_detail(403);
        assert_eq!(reply.body["reason"], "ACCOUNT_DISABLED", "{reply:?}");
        // The admin is unaffected.
        assert_eq!(app.me(&admin.access).await, Ok(admin.user_id.clone()));
    }

    async fn a_disabled_user_is_told_so_only_with_the_right_password(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        set_disabled(&app, &admin.access, &user.user_id, true).await.unwrap();

        assert_eq!(login_refusal(&app, "plain", PASSWORD).await, disabled_refusal());
        assert_eq!(login_refusal(&app, "PLAIN", PASSWORD).await, disabled_refusal(), "any letter case");
        // A wrong password gets what any wrong password gets: nothing about the account.
        assert_eq!(login_refusal(&app, "plain", "wrong password").await, (Some("UNAUTHENTICATED".into()), None));
        assert_eq!(login_refusal(&app, "nobody", "wrong password").await, (Some("UNAUTHENTICATED".into()), None));

        let reply = rest::login(&app, "plain", PASSWORD).await;
        reply.assert_detail(403);
        assert_eq!(reply.body["reason"], "ACCOUNT_DISABLED", "{reply:?}");
        let reply = rest::login(&app, "plain", "wrong password").await;
        reply.assert_unauthorized();
        assert!(reply.body.get("reason").is_none(), "{reply:?}");
    }

    async fn enabling_lets_the_user_sign_in_again(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        set_disabled(&app, &admin.access, &user.user_id, true).await.unwrap();
        // Disabling twice is fine and changes nothing.
        let reply = set_disabled(&app, &admin.access, &user.user_id, true).await.unwrap();
        assert_eq!(reply["disabled"], true);

        let reply = set_disabled(&app, &admin.access, &user.user_id, false).await.unwrap();
        assert_eq!(reply["disabled"], false);
        let again = app.login("plain", PASSWORD).await;
        assert_eq!(app.me(&again.access).await, Ok(user.user_id.clone()));
        let renewed = app.refresh(&again.refresh).await;
        // What disabling ended stays ended.
        assert_eq!(app.me(&user.access).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(app.try_refresh(&user.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        // Enabling an enabled user is fine, and ends nothing.
        let reply = set_disabled(&app, &admin.access, &user.user_id, false).await.unwrap();
        assert_eq!(reply["disabled"], false);
        assert_eq!(app.me(&renewed.access).await, Ok(user.user_id.clone()));
        assert!(app.try_refresh(&renewed.refresh).await.is_ok());
    }

    async fn only_admins_may_disable(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        let other = app.register("other", PASSWORD).await;
        let unknown = uuid::Uuid::now_v7().to_string();
        for target in [&other.user_id, &admin.user_id, &user.user_id, &unknown] {
            assert_eq!(set_disabled(&app, &user.access, target, true).await, Err("FORBIDDEN".into()));
            let path = format!("/users/{target}/disabled");
            call(&app, Method::PUT, &path, Some(&user.access), Some(json!({"disabled": true}))).await.assert_detail(403);
        }
        assert_eq!(app.me(&other.access).await, Ok(other.user_id.clone()), "nobody was disabled");
        assert_eq!(app.me(&admin.access).await, Ok(admin.user_id.clone()));
        // Without a token: UNAUTHENTICATED.
        let body = app.gql(SET_DISABLED, json!({"id": other.user_id, "d": true}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        let path = format!("/users/{}/disabled", other.user_id);
        call(&app, Method::PUT, &path, None, Some(json!({"disabled": true}))).await.assert_unauthorized();
        // An admin addressing nobody: NOT_FOUND, for an unknown id as for one that is no id.
        assert_eq!(set_disabled(&app, &admin.access, &unknown, true).await, Err("NOT_FOUND".into()));
        assert_eq!(set_disabled(&app, &admin.access, &unknown, false).await, Err("NOT_FOUND".into()));
        assert_eq!(set_disabled(&app, &admin.access, "not-a-uuid", true).await, Err("NOT_FOUND".into()));
    }

    async fn the_last_enabled_admin_cannot_be_disabled(app: TestApp) {
        let (admin, bob) = admin_and_user(&app).await;
        assert_eq!(set_disabled(&app, &admin.access, &admin.user_id, true).await, Err("FORBIDDEN".into()));
        assert_eq!(app.me(&admin.access).await, Ok(admin.user_id.clone()), "still signed in");

        // A disabled admin is no other admin: the first can still neither step down, leave,
        // nor be disabled.
        set_role(&app, &admin.access, &bob.user_id, "ADMIN").await.unwrap();
        set_disabled(&app, &admin.access, &bob.user_id, true).await.unwrap();
        assert_eq!(count_enabled_admins(&app).await, 1);
        assert_eq!(set_disabled(&app, &admin.access, &admin.user_id, true).await, Err("FORBIDDEN".into()));
        assert_eq!(set_role(&app, &admin.access, &admin.user_id, "USER").await, Err("FORBIDDEN".into()));
        let body = app.gql("mutation { deleteMe }", json!({}), Some(&admin.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        // Disabling the disabled admin again changes nothing and is allowed.
        let bob_again = set_disabled(&app, &admin.access, &bob.user_id, true).await.unwrap();
        assert_eq!(bob_again["disabled"], true, "idempotent");

        // Enabled again, bob counts: the first admin may now disable themself.
        set_disabled(&app, &admin.access, &bob.user_id, false).await.unwrap();
        let bob = app.login("plain", PASSWORD).await;
        let reply = set_disabled(&app, &admin.access, &admin.user_id, true).await.unwrap();
        assert_eq!(reply["disabled"], true);
        assert_eq!(app.me(&admin.access).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(set_disabled(&app, &bob.access, &bob.user_id, true).await, Err("FORBIDDEN".into()));
        assert_eq!(count_enabled_admins(&app).await, 1);
    }

    async fn concurrent_disables_leave_an_enabled_admin(app: TestApp) {
        for round in 0..4 {
            demote_everyone(&app).await;
            let a = app.register(&format!("admin_a{round}"), PASSWORD).await;
            let b = app.register(&format!("admin_b{round}"), PASSWORD).await;
            make_admin(&app, &a.user_id).await;
            make_admin(&app, &b.user_id).await;
            // Each disables (or demotes) the other at the same moment.
            let (first, second) = if round % 2 == 0 {
                tokio::join!(
                    set_disabled(&app, &a.access, &b.user_id, true),
                    set_disabled(&app, &b.access, &a.user_id, true),
                )
            } else {
                let (first, second) = tokio::join!(
                    set_disabled(&app, &a.access, &b.user_id, true),
                    set_role(&app, &b.access, &a.user_id, "USER"),
                );
                (first, second.map(|_| Value::Null))
            };
            assert_eq!(count_enabled_admins(&app).await, 1, "round {round}: {first:?} {second:?}");
            for result in [first, second] {
                if let Err(code) = result {
                    // The loser sees the rule, or (on MySQL) lost a deadlock and may retry, or
                    // was disabled before its request was authenticated.
                    assert!(
                        ["FORBIDDEN", "SERVICE_UNAVAILABLE", "UNAUTHENTICATED"].contains(&code.as_str()),
                        "{code}"
                    );
                }
            }
        }
    }

    async fn the_rest_mirror(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        let path = format!("/users/{}/disabled", user.user_id);
        let reply = call(&app, Method::PUT, &path, Some(&admin.access), Some(json!({"disabled": true}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        // The legacy user object: four keys, no more.
        let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{reply:?}");
        assert_eq!(reply.body["id"], user.user_id.as_str());
        assert_eq!(reply.body["email"], "plain@example.com");
        assert!(reply.body["registration_date"].is_string());
        assert_eq!(app.me(&user.access).await, Err("UNAUTHENTICATED".into()));
        rest::login(&app, "plain", PASSWORD).await.assert_detail(403);

        let reply = call(&app, Method::PUT, &path, Some(&admin.access), Some(json!({"disabled": false}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        rest::login_token(&app, "plain", PASSWORD).await;

        // A body without a boolean `disabled`: 422 naming it.
        for body in [json!({}), json!({"disabled": "yes"}), json!({"disabled": 1}), json!({"disabled": null})] {
            call(&app, Method::PUT, &path, Some(&admin.access), Some(body)).await.assert_invalid("body", "disabled");
        }
        let unknown = format!("/users/{}/disabled", uuid::Uuid::now_v7());
        call(&app, Method::PUT, &unknown, Some(&admin.access), Some(json!({"disabled": true}))).await.assert_detail(404);
        let own = format!("/users/{}/disabled", admin.user_id);
        call(&app, Method::PUT, &own, Some(&admin.access), Some(json!({"disabled": true}))).await.assert_detail(403);
        let reply = call(&app, Method::GET, &path, Some(&admin.access), None).await;
        assert_eq!(reply.status, 405, "{reply:?}");
    }

    async fn disabled_is_visible_to_admins_only(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        let other = app.register("other", PASSWORD).await;
        set_disabled(&app, &admin.access, &other.user_id, true).await.unwrap();
        let query = "query($id: ID!) { user(id: $id) { disabled } }";
        let seen = |token: String, id: String| {
            let app = &app;
            async move {
                app.data(query, json!({"id": id}), &token).await.unwrap()["user"]["disabled"].clone()
            }
        };
        assert_eq!(seen(admin.access.clone(), other.user_id.clone()).await, true);
        assert_eq!(seen(admin.access.clone(), user.user_id.clone()).await, false);
        assert_eq!(seen(user.access.clone(), other.user_id.clone()).await, Value::Null);
        assert_eq!(seen(user.access.clone(), user.user_id.clone()).await, Value::Null, "not even their own");
        let me = app.data("{ me { disabled } }", json!({}), &user.access).await.unwrap();
        assert_eq!(me["me"]["disabled"], Value::Null);
        let list = app.data("{ users { nodes { username disabled } } }", json!({}), &user.access).await.unwrap();
        assert!(list["users"]["nodes"].as_array().unwrap().iter().all(|u| u["disabled"].is_null()), "{list}");
        let list = app.data("{ users { nodes { username disabled } } }", json!({}), &admin.access).await.unwrap();
        let flags: Vec<(String, bool)> = list["users"]["nodes"].as_array().unwrap().iter()
            .map(|u| (u["username"].as_str().unwrap().to_owned(), u["disabled"].as_bool().unwrap()))
            .collect();
        assert_eq!(flags, [("root".to_owned(), false), ("plain".to_owned(), false), ("other".to_owned(), true)]);
    }
}
