//! The caller's sessions: `sessions` lists them with their client, `revokeSession` ends one of
//! the caller's own, `logoutAll` ends them all.

use serde_json::{Value, json};
use user_api::signins::store::SessionStore as _;

use crate::support::ws::WsClient;
use crate::support::{SignIn, TestApp, backend_tests, error_code};

const SESSIONS: &str = "{ sessions { id createdAt expiresAt userAgent current } }";

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    app.data(SESSIONS, json!({}), token)
        .await
        .expect("sessions")["sessions"]
        .as_array()
        .expect("a list")
        .clone()
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|s| s["id"].as_str().unwrap()).collect()
}

async fn revoke(app: &TestApp, token: &str, id: &str) -> Result<Value, String> {
    app.data(
        "mutation($id: ID!) { revokeSession(id: $id) }",
        json!({"id": id}),
        token,
    )
    .await
}

backend_tests! {
    async fn sessions_list_each_sign_in_with_its_client(app: TestApp) {
        let laptop = app.with_user_agent("Laptop/1.0").register("owner", "correct horse").await;
        let phone = app.with_user_agent("Phone/2.0").login("owner", "correct horse").await;
        let bare = app.login("owner", "correct horse").await;
        let list = sessions(&app, &phone.access).await;
        assert_eq!(ids(&list), [laptop.session_id(), phone.session_id(), bare.session_id()], "oldest first");
        let agents: Vec<Value> = list.iter().map(|s| s["userAgent"].clone()).collect();
        assert_eq!(agents, [json!("Laptop/1.0"), json!("Phone/2.0"), Value::Null]);
        let current: Vec<bool> = list.iter().map(|s| s["current"].as_bool().unwrap()).collect();
        assert_eq!(current, [false, true, false]);
        let now = chrono::Utc::now();
        for session in &list {
            let created = session["createdAt"].as_str().unwrap();
            let expires = session["expiresAt"].as_str().unwrap();
            assert!(created.ends_with('Z') && expires.ends_with('Z'), "{session}");
            let created = chrono::DateTime::parse_from_rfc3339(created).unwrap();
            let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
            assert!((now - created.to_utc()).num_seconds().abs() < 60, "{session}");
            // A sign-in lasts as long as its refresh token: 30 days by default.
            let days = (expires - created).num_days();
            assert!((29..=30).contains(&days), "{session}");
        }

        // A refresh keeps the sign-in listed once, under its new id, with the refreshing client.
        let renewed = app.with_user_agent("Laptop/1.1").try_refresh(&laptop.refresh).await.unwrap();
        let list = sessions(&app, &renewed.access).await;
        assert_eq!(list.len(), 3);
        let entry = list.iter().find(|s| s["id"] == renewed.session_id().as_str()).expect("listed");
        assert_eq!(entry["userAgent"], "Laptop/1.1");
        assert_eq!(entry["current"], true);
        assert!(!ids(&list).contains(&laptop.session_id().as_str()));

        let body = app.gql(SESSIONS, json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn revoke_session_ends_that_sign_in_only(app: TestApp) {
        let first = app.register("revoker", "correct horse").await;
        let second = app.login("revoker", "correct horse").await;
        assert_eq!(revoke(&app, &second.access, &first.session_id()).await, Ok(json!({"revokeSession": true})));
        assert_eq!(app.me(&first.access).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(app.try_refresh(&first.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(app.me(&second.access).await, Ok(second.user_id.clone()));
        assert_eq!(ids(&sessions(&app, &second.access).await), [second.session_id()]);

        // Already gone, never existed, not even an id: NOT_FOUND.
        assert_eq!(revoke(&app, &second.access, &first.session_id()).await, Err("NOT_FOUND".into()));
        assert_eq!(revoke(&app, &second.access, &uuid::Uuid::new_v4().to_string()).await, Err("NOT_FOUND".into()));
        assert_eq!(revoke(&app, &second.access, "{x}:y").await, Err("NOT_FOUND".into()));

        // Revoking the current session works like logout.
        assert_eq!(revoke(&app, &second.access, &second.session_id()).await, Ok(json!({"revokeSession": true})));
        assert_eq!(app.me(&second.access).await, Err("UNAUTHENTICATED".into()));
    }

    /// A refresh gives the sign-in a new session id; revoking the id it had when the list was
    /// read still ends it, under whatever id it has now: a thief refreshing a stolen token
    /// between the owner's list and revoke does not keep the sign-in alive.
    async fn revoking_an_id_from_before_a_refresh_ends_the_sign_in(app: TestApp) {
        let stolen = app.register("rotator", "correct horse").await;
        let owner = app.login("rotator", "correct horse").await;
        let listed = stolen.session_id();
        let mut first_socket = WsClient::signed_in(&app, &stolen.access).await;
        let renewed = app.refresh(&stolen.refresh).await;
        let again = app.refresh(&renewed.refresh).await;
        assert_ne!(again.session_id(), listed);
        let mut socket = WsClient::signed_in(&app, &again.access).await;
        assert_eq!(revoke(&app, &owner.access, &listed).await, Ok(json!({"revokeSession": true})));
        // Its sockets hear that their session, under the id each knows, ended, and close: the
        // one signed in before the refreshes as well as the one after.
        assert_eq!(socket.closed().await.0, 4403);
        assert_eq!(first_socket.closed().await.0, 4403);
        assert_eq!(app.me(&again.access).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(app.try_refresh(&again.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(ids(&sessions(&app, &owner.access).await), [owner.session_id()]);
        // Ended: its ids, old and new, are NOT_FOUND from then on.
        assert_eq!(revoke(&app, &owner.access, &listed).await, Err("NOT_FOUND".into()));
        assert_eq!(revoke(&app, &owner.access, &again.session_id()).await, Err("NOT_FOUND".into()));
    }

    async fn another_users_session_is_not_found(app: TestApp) {
        let alice = app.register("alice_s", "correct horse").await;
        let bob = app.register("bob_s", "correct horse").await;
        assert_eq!(revoke(&app, &bob.access, &alice.session_id()).await, Err("NOT_FOUND".into()));
        assert_eq!(app.me(&alice.access).await, Ok(alice.user_id.clone()));
        app.refresh(&alice.refresh).await;
        assert_eq!(ids(&sessions(&app, &bob.access).await), [bob.session_id()]);
    }

    async fn logout_all_ends_every_session(app: TestApp) {
        let signins: Vec<SignIn> = vec![
            app.register("leaver", "correct horse").await,
            app.login("leaver", "correct horse").await,
            app.login("leaver", "correct horse").await,
        ];
        let other = app.register("stayer", "correct horse").await;
        assert_eq!(app.data("mutation { logoutAll }", json!({}), &signins[1].access).await, Ok(json!({"logoutAll": 3})));
        for signin in &signins {
            assert_eq!(app.me(&signin.access).await, Err("UNAUTHENTICATED".into()));
            assert_eq!(app.try_refresh(&signin.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        }
        assert_eq!(app.me(&other.access).await, Ok(other.user_id.clone()), "other users keep theirs");
        let body = app.gql("mutation { logoutAll }", json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn an_idle_sign_in_stays_listed_and_revocable(app: TestApp) {
        let idle = app.with_user_agent("Old/1").register("idler", "correct horse").await;
        let active = app.login("idler", "correct horse").await;
        // The idle sign-in's access token lapses (its session leaves the store, as at expiry);
        // its refresh token could still bring it back, so it stays on the list.
        assert!(app.state.sign_ins.store().revoke(&idle.user_id, &idle.session_id()).await.unwrap());
        assert_eq!(app.me(&idle.access).await, Err("UNAUTHENTICATED".into()));
        let list = sessions(&app, &active.access).await;
        assert_eq!(ids(&list), [idle.session_id(), active.session_id()]);
        assert_eq!(list[0]["userAgent"], "Old/1");
        assert_eq!(revoke(&app, &active.access, &idle.session_id()).await, Ok(json!({"revokeSession": true})));
        assert_eq!(app.try_refresh(&idle.refresh).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(ids(&sessions(&app, &active.access).await), [active.session_id()]);

        // An idle sign-in that is not revoked comes back with its refresh token.
        let later = app.login("idler", "correct horse").await;
        assert!(app.state.sign_ins.store().revoke(&later.user_id, &later.session_id()).await.unwrap());
        let back = app.refresh(&later.refresh).await;
        assert_eq!(app.me(&back.access).await, Ok(later.user_id.clone()));
    }
}
