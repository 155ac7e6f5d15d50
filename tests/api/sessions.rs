//! The caller's sessions: `sessions` lists them with their client, `revokeSession` ends one of
//! the caller's own, `logoutAll` ends them all.

use serde_json::{Value, json};
use user_api::signins::store::SessionStore as _;

use crate::backend_tests;
use crate::common::error_code;
use crate::session_support::{SignIn, data, login, refresh, register, try_refresh};

const SESSIONS: &str = "{ sessions { id createdAt expiresAt userAgent current } }";

async fn sessions(app: &crate::common::TestApp, token: &str) -> Vec<Value> {
    data(app, SESSIONS, json!({}), token)
        .await
        .expect("sessions")["sessions"]
        .as_array()
        .expect("a list")
        .clone()
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|s| s["id"].as_str().unwrap()).collect()
}

async fn revoke(app: &crate::common::TestApp, token: &str, id: &str) -> Result<Value, String> {
    data(
        app,
        "mutation($id: ID!) { revokeSession(id: $id) }",
        json!({"id": id}),
        token,
    )
    .await
}

backend_tests! {
    async fn sessions_list_each_sign_in_with_its_client(app) {
        let laptop = register(&app, "owner", "correct horse", Some("Laptop/1.0")).await;
        let phone = login(&app, "owner", "correct horse", Some("Phone/2.0")).await;
        let bare = login(&app, "owner", "correct horse", None).await;
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
        let renewed = crate::session_support::try_refresh(&app, &laptop.refresh, Some("Laptop/1.1")).await.unwrap();
        let list = sessions(&app, &renewed.access).await;
        assert_eq!(list.len(), 3);
        let entry = list.iter().find(|s| s["id"] == renewed.session_id().as_str()).expect("listed");
        assert_eq!(entry["userAgent"], "Laptop/1.1");
        assert_eq!(entry["current"], true);
        assert!(!ids(&list).contains(&laptop.session_id().as_str()));

        let body = app.gql(SESSIONS, json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn revoke_session_ends_that_sign_in_only(app) {
        let first = register(&app, "revoker", "correct horse", None).await;
        let second = login(&app, "revoker", "correct horse", None).await;
        assert_eq!(revoke(&app, &second.access, &first.session_id()).await, Ok(json!({"revokeSession": true})));
        assert_eq!(app.me(&first.access).await, Err("UNAUTHENTICATED".into()));
        assert_eq!(try_refresh(&app, &first.refresh, None).await.err().as_deref(), Some("UNAUTHENTICATED"));
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

    async fn another_users_session_is_not_found(app) {
        let alice = register(&app, "alice_s", "correct horse", None).await;
        let bob = register(&app, "bob_s", "correct horse", None).await;
        assert_eq!(revoke(&app, &bob.access, &alice.session_id()).await, Err("NOT_FOUND".into()));
        assert_eq!(app.me(&alice.access).await, Ok(alice.user_id.clone()));
        refresh(&app, &alice.refresh).await;
        assert_eq!(ids(&sessions(&app, &bob.access).await), [bob.session_id()]);
    }

    async fn logout_all_ends_every_session(app) {
        let signins: Vec<SignIn> = vec![
            register(&app, "leaver", "correct horse", None).await,
            login(&app, "leaver", "correct horse", None).await,
            login(&app, "leaver", "correct horse", None).await,
        ];
        let other = register(&app, "stayer", "correct horse", None).await;
        assert_eq!(data(&app, "mutation { logoutAll }", json!({}), &signins[1].access).await, Ok(json!({"logoutAll": 3})));
        for signin in &signins {
            assert_eq!(app.me(&signin.access).await, Err("UNAUTHENTICATED".into()));
            assert_eq!(try_refresh(&app, &signin.refresh, None).await.err().as_deref(), Some("UNAUTHENTICATED"));
        }
        assert_eq!(app.me(&other.access).await, Ok(other.user_id.clone()), "other users keep theirs");
        let body = app.gql("mutation { logoutAll }", json!({}), None).await;
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    }

    async fn an_idle_sign_in_stays_listed_and_revocable(app) {
        let idle = register(&app, "idler", "correct horse", Some("Old/1")).await;
        let active = login(&app, "idler", "correct horse", None).await;
        // The idle sign-in's access token lapses (its session leaves the store, as at expiry);
        // its refresh token could still bring it back, so it stays on the list.
        assert!(app.state.sign_ins.store().revoke(&idle.user_id, &idle.session_id()).await.unwrap());
        assert_eq!(app.me(&idle.access).await, Err("UNAUTHENTICATED".into()));
        let list = sessions(&app, &active.access).await;
        assert_eq!(ids(&list), [idle.session_id(), active.session_id()]);
        assert_eq!(list[0]["userAgent"], "Old/1");
        assert_eq!(revoke(&app, &active.access, &idle.session_id()).await, Ok(json!({"revokeSession": true})));
        assert_eq!(try_refresh(&app, &idle.refresh, None).await.err().as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(ids(&sessions(&app, &active.access).await), [active.session_id()]);

        // An idle sign-in that is not revoked comes back with its refresh token.
        let later = login(&app, "idler", "correct horse", None).await;
        assert!(app.state.sign_ins.store().revoke(&later.user_id, &later.session_id()).await.unwrap());
        let back = refresh(&app, &later.refresh).await;
        assert_eq!(app.me(&back.access).await, Ok(later.user_id.clone()));
    }
}
