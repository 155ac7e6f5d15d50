//! Roles: the `promote` subcommand, what only an ADMIN may do (`deleteUser`, `setRole`,
//! `DELETE /users/{id}`), and the last admin, who can be neither demoted nor deleted.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::db::{count_admins, database_url, demote_everyone, make_admin};
use crate::support::rest::call;
use crate::support::{SignIn, TestApp, backend_tests, error_code};

const BIN: &str = env!("CARGO_BIN_EXE_user-api");

async fn promote(app: &TestApp, username: &str) -> std::process::Output {
    let url = database_url(app);
    let username = username.to_owned();
    // The binary runs its own runtime and blocks: keep it off this test's worker threads.
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args([
                "--database-url",
                &url,
                "--log",
                "warn",
                "promote",
                &username,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn set_role(app: &TestApp, token: &str, id: &str, role: &str) -> Result<Value, String> {
    app.data(
        "mutation($id: ID!, $r: Role!) { setRole(id: $id, role: $r) { id role email } }",
        json!({"id": id, "r": role}),
        token,
    )
    .await
}

async fn delete_user(app: &TestApp, token: &str, id: &str) -> Result<Value, String> {
    app.data(
        "mutation($id: ID!) { deleteUser(id: $id) }",
        json!({"id": id}),
        token,
    )
    .await
}

async fn role(app: &TestApp, token: &str) -> String {
    app.data("{ me { role } }", json!({}), token).await.unwrap()["me"]["role"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The email of user `id` as the holder of `token` sees it.
async fn email_of(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(
        "query($id: ID!) { user(id: $id) { email } }",
        json!({"id": id}),
        token,
    )
    .await
    .unwrap()["user"]["email"]
        .clone()
}

async fn admin_and_user(app: &TestApp) -> (SignIn, SignIn) {
    let admin = app.register("root", "correct horse").await;
    make_admin(app, &admin.user_id).await;
    let user = app.register("plain", "correct horse").await;
    (admin, user)
}

backend_tests! {
    async fn the_cli_promotes_an_existing_user(app: TestApp) {
        let alice = app.register("alice_cli", "correct horse").await;
        let bob = app.register("bob_cli", "correct horse").await;
        assert_eq!(role(&app, &alice.access).await, "USER", "new users are USER");
        assert_eq!(email_of(&app, &alice.access, &bob.user_id).await, Value::Null);

        let output = promote(&app, "ALICE_CLI").await;
        assert!(output.status.success(), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("alice_cli"), "{output:?}");
        // At once, with the token she already had.
        assert_eq!(role(&app, &alice.access).await, "ADMIN");
        assert_eq!(email_of(&app, &alice.access, &bob.user_id).await, "bob_cli@example.com");

        let output = promote(&app, "alice_cli").await;
        assert!(output.status.success(), "promoting an admin again is fine: {output:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("already"), "{output:?}");

        let output = promote(&app, "nobody").await;
        assert!(!output.status.success(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no user") && stderr.contains("nobody"), "{stderr}");
        assert_eq!(count_admins(&app).await, 1);
    }

    async fn only_admins_may_delete_users_and_set_roles(app: TestApp) {
        let (admin, user) = admin_and_user(&app).await;
        let other = app.register("other", "correct horse").await;
        for target in [&other.user_id, &admin.user_id, &user.user_id] {
            assert_eq!(set_role(&app, &user.access, target, "ADMIN").await, Err("FORBIDDEN".into()));
            assert_eq!(delete_user(&app, &user.access, target).await, Err("FORBIDDEN".into()));
            let path = format!("/users/{target}");
            let reply = call(&app, Method::DELETE, &path, Some(&user.access), None).await;
            reply.assert_detail(403);
        }
        // An unknown id is FORBIDDEN too: a non-admin learns nothing about which ids exist.
        let unknown = uuid::Uuid::now_v7().to_string();
        assert_eq!(delete_user(&app, &user.access, &unknown).await, Err("FORBIDDEN".into()));
        assert_eq!(role(&app, &user.access).await, "USER");
        assert_eq!(app.me(&other.access).await, Ok(other.user_id.clone()));
        // Without a token: UNAUTHENTICATED, as everywhere.
        let body = app.gql("mutation($id: ID!) { deleteUser(id: $id) }", json!({"id": other.user_id}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        call(&app, Method::DELETE, &format!("/users/{}", other.user_id), None, None).await.assert_unauthorized();
    }

    async fn admins_set_roles_and_delete_users(app: TestApp) {
        let (admin, bob) = admin_and_user(&app).await;
        let carol = app.register("carol", "correct horse").await;
        assert_eq!(email_of(&app, &admin.access, &carol.user_id).await, "carol@example.com");
        let users = app.data("{ users { nodes { email } } }", json!({}), &admin.access).await.unwrap();
        assert!(users["users"]["nodes"].as_array().unwrap().iter().all(|u| u["email"].is_string()), "{users}");

        // Promote bob: effective at once, with his existing token.
        let reply = set_role(&app, &admin.access, &bob.user_id, "ADMIN").await.unwrap();
        assert_eq!(reply["setRole"], json!({"id": bob.user_id, "role": "ADMIN", "email": "plain@example.com"}));
        assert_eq!(email_of(&app, &bob.access, &carol.user_id).await, "carol@example.com");
        // And back.
        let reply = set_role(&app, &admin.access, &bob.user_id, "USER").await.unwrap();
        assert_eq!(reply["setRole"]["role"], "USER");
        assert_eq!(email_of(&app, &bob.access, &carol.user_id).await, Value::Null);
        assert_eq!(delete_user(&app, &bob.access, &carol.user_id).await, Err("FORBIDDEN".into()));

        // Delete carol: her tokens and her refresh token end with her.
        assert_eq!(delete_user(&app, &admin.access, &carol.user_id).await, Ok(json!({"deleteUser": true})));
        assert_eq!(app.me(&carol.access).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(app.try_refresh(&carol.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(email_of(&app, &admin.access, &carol.user_id).await, Value::Null);
        let found = app.data("query($id: ID!) { user(id: $id) { id } }", json!({"id": carol.user_id}), &admin.access).await.unwrap();
        assert_eq!(found["user"], Value::Null);

        // Unknown or malformed ids: NOT_FOUND.
        assert_eq!(delete_user(&app, &admin.access, &carol.user_id).await, Err("NOT_FOUND".into()));
        assert_eq!(delete_user(&app, &admin.access, "not-a-uuid").await, Err("NOT_FOUND".into()));
        assert_eq!(set_role(&app, &admin.access, &carol.user_id, "ADMIN").await, Err("NOT_FOUND".into()));

        // The REST route does the same.
        let dave = app.register("dave", "correct horse").await;
        let path = format!("/users/{}", dave.user_id);
        let reply = call(&app, Method::DELETE, &path, Some(&admin.access), None).await;
        assert_eq!(reply.status, 204, "{reply:?}");
        assert_eq!(app.me(&dave.access).await, Err("UNAUTHENTICATED".into()));
        call(&app, Method::DELETE, &path, Some(&admin.access), None).await.assert_detail(404);
        call(&app, Method::GET, &path, Some(&admin.access), None).await.assert_detail(404);
    }

    async fn the_last_admin_is_kept(app: TestApp) {
        let (admin, bob) = admin_and_user(&app).await;
        assert_eq!(set_role(&app, &admin.access, &admin.user_id, "USER").await, Err("FORBIDDEN".into()));
        assert_eq!(delete_user(&app, &admin.access, &admin.user_id).await, Err("FORBIDDEN".into()));
        let body = app.gql("mutation { deleteMe }", json!({}), Some(&admin.access)).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        call(&app, Method::DELETE, "/users", Some(&admin.access), None).await.assert_detail(403);
        call(&app, Method::DELETE, &format!("/users/{}", admin.user_id), Some(&admin.access), None)
            .await
            .assert_detail(403);
        assert_eq!(role(&app, &admin.access).await, "ADMIN");
        assert_eq!(app.me(&admin.access).await, Ok(admin.user_id.clone()), "still signed in");
        // Setting an admin's role to ADMIN again changes nothing and is allowed.
        assert!(set_role(&app, &admin.access, &admin.user_id, "ADMIN").await.is_ok());

        // With a second admin, the first may step down; then the second is the last.
        set_role(&app, &admin.access, &bob.user_id, "ADMIN").await.unwrap();
        let reply = set_role(&app, &admin.access, &admin.user_id, "USER").await.unwrap();
        assert_eq!(reply["setRole"]["role"], "USER");
        assert_eq!(set_role(&app, &admin.access, &bob.user_id, "USER").await, Err("FORBIDDEN".into()), "no longer an admin");
        assert_eq!(set_role(&app, &bob.access, &bob.user_id, "USER").await, Err("FORBIDDEN".into()));
        assert_eq!(delete_user(&app, &bob.access, &admin.user_id).await, Ok(json!({"deleteUser": true})));
        assert_eq!(count_admins(&app).await, 1);
    }

    async fn concurrent_demotions_leave_an_admin(app: TestApp) {
        for round in 0..4 {
            demote_everyone(&app).await;
            let a = app.register(&format!("admin_a{round}"), "correct horse").await;
            let b = app.register(&format!("admin_b{round}"), "correct horse").await;
            make_admin(&app, &a.user_id).await;
            make_admin(&app, &b.user_id).await;
            // Each demotes (or deletes) the other at the same moment.
            let (first, second) = if round % 2 == 0 {
                tokio::join!(
                    set_role(&app, &a.access, &b.user_id, "USER"),
                    set_role(&app, &b.access, &a.user_id, "USER"),
                )
            } else {
                tokio::join!(
                    delete_user(&app, &a.access, &b.user_id),
                    set_role(&app, &b.access, &a.user_id, "USER"),
                )
            };
            assert_eq!(count_admins(&app).await, 1, "round {round}: {first:?} {second:?}");
            assert!(first.is_ok() != second.is_ok(), "round {round}: {first:?} {second:?}");
            for result in [first, second] {
                if let Err(code) = result {
                    // The loser sees the rule, or (on MySQL) lost a deadlock and may retry, or
                    // was deleted before its request was authenticated.
                    assert!(
                        ["FORBIDDEN", "SERVICE_UNAVAILABLE", "UNAUTHENTICATED"].contains(&code.as_str()),
                        "{code}"
                    );
                }
            }
        }
    }
}
