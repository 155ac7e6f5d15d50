//! User B can never read or change user A's private fields (email, password, role, sessions)
//! through any GraphQL operation or REST route. After every attempt, A's account is checked
//! from A's side: same email, same role, same password, still signed in.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::rest::{call, login_token};
use crate::support::tokens::claims;
use crate::support::{SignIn, TestApp, backend_tests, error_code};

const PASSWORD: &str = "alice's password";

/// A's account is as A left it: seen from A's session, and A's password still signs in.
async fn assert_untouched(app: &TestApp, alice: &SignIn) {
    let me = app
        .data(
            "{ me { id username email role } }",
            json!({}),
            &alice.access,
        )
        .await
        .expect("A is still signed in");
    assert_eq!(
        me["me"],
        json!({"id": alice.user_id, "username": "alice_i", "email": "alice_i@example.com", "role": "USER"})
    );
    login_token(app, "alice_i", PASSWORD).await;
}

backend_tests! {
    async fn b_cannot_read_or_change_a(app: TestApp) {
        let alice = app.with_user_agent("Alice/1").register("alice_i", PASSWORD).await;
        let bob = app.with_user_agent("Bob/1").register("bob_i", "bob's password").await;
        let b = bob.access.as_str();
        let a_id = alice.user_id.as_str();

        // Reading, GraphQL: every way of reaching A shows no email.
        let by_id = app.data("query($id: ID!) { user(id: $id) { id email role } }", json!({"id": a_id}), b).await.unwrap();
        assert_eq!(by_id["user"], json!({"id": a_id, "email": null, "role": "USER"}));
        let by_name = app.data("{ user(username: \"ALICE_I\") { email } }", json!({}), b).await.unwrap();
        assert_eq!(by_name["user"]["email"], Value::Null);
        let page = app.data("{ users(first: 100) { nodes { id email } edges { node { id email } } } }", json!({}), b).await.unwrap();
        for node in page["users"]["nodes"].as_array().unwrap().iter()
            .chain(page["users"]["edges"].as_array().unwrap().iter().map(|e| &e["node"]))
        {
            let expected = if node["id"] == bob.user_id.as_str() { json!("bob_i@example.com") } else { Value::Null };
            assert_eq!(node["email"], expected, "{node}");
        }
        // By GET too.
        let response = app.client.get(app.url("/graphql"))
            .query(&[("query", format!("{{ user(id: \"{a_id}\") {{ email }} }}"))])
            .bearer_auth(b)
            .send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["user"]["email"], Value::Null, "{body}");
        // A's sessions are not B's to see.
        let sessions = app.data("{ sessions { id userAgent } }", json!({}), b).await.unwrap();
        assert_eq!(sessions["sessions"], json!([{"id": bob.session_id(), "userAgent": "Bob/1"}]));

        // Reading, REST.
        let reply = call(&app, Method::GET, &format!("/users/{a_id}"), Some(b), None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["email"], Value::Null);
        let reply = call(&app, Method::GET, "/users?limit=100", Some(b), None).await;
        let users = reply.body.as_array().unwrap();
        let a_entry = users.iter().find(|u| u["id"] == a_id).expect("A is listed");
        assert_eq!(a_entry["email"], Value::Null);
        let reply = call(&app, Method::GET, "/users/me", Some(b), None).await;
        assert_eq!(reply.body["data"]["id"], bob.user_id.as_str(), "me is B, whatever B asks");

        // Changing, GraphQL: the operations that take an id refuse B; those without one act
        // on B alone.
        assert_eq!(
            app.data("mutation($id: ID!) { setRole(id: $id, role: ADMIN) { id } }", json!({"id": a_id}), b).await,
            Err("FORBIDDEN".into())
        );
        assert_eq!(app.data("mutation($id: ID!) { deleteUser(id: $id) }", json!({"id": a_id}), b).await, Err("FORBIDDEN".into()));
        assert_eq!(
            app.data("mutation($id: ID!) { revokeSession(id: $id) }", json!({"id": alice.session_id()}), b).await,
            Err("NOT_FOUND".into())
        );
        // B cannot take A's email (it is A's), and B's own changes stay B's.
        assert_eq!(
            app.data("mutation { updateMe(input: {email: \"alice_i@example.com\"}) { email } }", json!({}), b).await,
            Err("CONFLICT".into())
        );
        let changed = app.data(
            "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id email } }",
            json!({"i": {"email": "bob_new@example.com", "password": "bob's new password", "currentPassword": "bob's password"}}),
            b,
        ).await.unwrap();
        assert_eq!(changed["updateMe"], json!({"id": bob.user_id, "email": "bob_new@example.com"}));
        assert_untouched(&app, &alice).await;
        // A refresh by B renews B, never A.
        let renewed = app.try_refresh(&bob.refresh).await.unwrap();
        assert_eq!(renewed.user_id, bob.user_id);
        let b = renewed.access.as_str();

        // Changing, REST.
        let reply = call(&app, Method::PUT, "/users", Some(b), Some(json!({"email": "bob_rest@example.com", "password": "bob's third password"}))).await;
        assert_eq!(reply.body["data"]["id"], bob.user_id.as_str(), "{reply:?}");
        call(&app, Method::DELETE, &format!("/users/{a_id}"), Some(b), None).await.assert_detail(403);
        for method in [Method::PUT, Method::PATCH, Method::POST] {
            let reply = call(&app, method.clone(), &format!("/users/{a_id}"), Some(b), Some(json!({"email": "stolen@example.com"}))).await;
            assert_eq!(reply.status, 405, "{method} /users/{{id}} is no way in: {reply:?}");
        }
        assert_untouched(&app, &alice).await;

        // Ending B's sessions and account leaves A alone.
        let another_b = app.login("bob_i", "bob's third password").await;
        assert_eq!(app.data("mutation { logoutAll }", json!({}), &another_b.access).await, Ok(json!({"logoutAll": 2})));
        let last_b = login_token(&app, "bob_i", "bob's third password").await;
        assert_eq!(call(&app, Method::POST, "/users/logout", Some(&last_b), None).await.status, 204);
        let last_b = login_token(&app, "bob_i", "bob's third password").await;
        assert_eq!(call(&app, Method::DELETE, "/users", Some(&last_b), None).await.status, 204);
        assert_untouched(&app, &alice).await;
        assert_eq!(app.try_refresh(&alice.refresh).await.map(|s| s.user_id), Ok(alice.user_id.clone()));

        // And a token of B's, edited to name A, is no key to A's account.
        let parts: Vec<&str> = last_b.split('.').collect();
        let mut claims = claims(&last_b);
        claims["sub"] = a_id.into();
        let body = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims.to_string());
        let forged = format!("{}.{body}.{}", parts[0], parts[2]);
        let reply = app.gql("{ me { email } }", json!({}), Some(&forged)).await;
        assert_eq!(error_code(&reply).as_deref(), Some("UNAUTHENTICATED"));
    }
}
