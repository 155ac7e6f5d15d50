//! Races between a sign-in (or a refresh) and a revocation of every sign-in of the same user:
//! a session created from a credential check must not outlive a password change or a
//! logoutAll that overlapped it. Each race runs many overlapping trials, with the second
//! request started a little later each time so that the two cross at different points, and
//! asserts that no session survives.

use std::time::Duration;

use serde_json::json;

use crate::support::{SignIn, TestApp, backend_tests};

/// Overlapping trials per race.
const TRIALS: u64 = 32;

/// Logs in; the new sign-in, or the error code.
async fn try_login(app: &TestApp, username: &str, password: &str) -> Result<SignIn, String> {
    SignIn::from_reply(&app.login_body(username, password).await, "login")
}

/// Changes the password with `token`, asserting success.
async fn change_password(app: &TestApp, token: &str, current: &str, new: &str) {
    let body = app
        .update_me(token, json!({"password": new, "currentPassword": current}))
        .await;
    assert!(body["data"]["updateMe"].is_object(), "{body}");
}

/// Ends every sign-in of the token's user, asserting success.
async fn logout_all(app: &TestApp, token: &str) {
    let body = app
        .gql("mutation { logoutAll }", json!({}), Some(token))
        .await;
    assert!(body["data"]["logoutAll"].is_number(), "{body}");
}

/// Whether anything of `sign_in` still works: its access token, or its refresh token.
async fn survives(app: &TestApp, sign_in: &SignIn) -> bool {
    app.me(&sign_in.access).await.is_ok() || app.try_refresh(&sign_in.refresh).await.is_ok()
}

/// The delay of the second request of trial `i`: spread over the first request's run.
fn stagger(i: u64, spread_ms: u64) -> Duration {
    Duration::from_micros(i * spread_ms * 1000 / TRIALS)
}

fn password(i: u64) -> String {
    format!("racing horse number {i}")
}

backend_tests! {
    /// A login with the old password sent while the password changes: either it fails, or
    /// its session and refresh token end with the change.
    async fn a_login_racing_a_password_change_does_not_survive_it(app: TestApp) {
        app.register("racer", &password(0)).await;
        let mut changer = app.login("racer", &password(0)).await;
        let mut survivors = Vec::new();
        for i in 0..TRIALS {
            let (old, new) = (password(i), password(i + 1));
            let change = change_password(&app, &changer.access, &old, &new);
            let racer = async {
                // The change spends two hashes (check, then new hash); the login one.
                tokio::time::sleep(stagger(i, 40)).await;
                try_login(&app, "racer", &old).await
            };
            let ((), raced) = tokio::join!(change, racer);
            if let Ok(sign_in) = raced
                && survives(&app, &sign_in).await
            {
                survivors.push(i);
            }
            // The changer's own sign-in stays valid through its change.
            assert!(app.me(&changer.access).await.is_ok(), "trial {i}");
            changer = app.login("racer", &new).await;
        }
        assert!(survivors.is_empty(), "sessions survived in trials {survivors:?}");
    }

    /// A refresh sent while logoutAll runs: either it fails, or what it issued ends too.
    async fn a_refresh_racing_logout_all_does_not_survive_it(app: TestApp) {
        app.register("refresher", &password(0)).await;
        let mut survivors = Vec::new();
        for i in 0..TRIALS {
            let ender = app.login("refresher", &password(0)).await;
            let victim = app.login("refresher", &password(0)).await;
            let end = logout_all(&app, &ender.access);
            let refresh = async {
                tokio::time::sleep(stagger(i, 10)).await;
                app.try_refresh(&victim.refresh).await
            };
            let ((), refreshed) = tokio::join!(end, refresh);
            if let Ok(sign_in) = refreshed
                && survives(&app, &sign_in).await
            {
                survivors.push(i);
            }
            assert!(!survives(&app, &victim).await, "trial {i}");
        }
        assert!(survivors.is_empty(), "sessions survived in trials {survivors:?}");
    }

    /// A refresh sent while another session of the user revokes its sign-in (`revokeSession`):
    /// either it fails, or what it issued ends too.
    async fn a_refresh_racing_a_revoke_of_its_sign_in_does_not_survive_it(app: TestApp) {
        app.register("revoked", &password(0)).await;
        let owner = app.login("revoked", &password(0)).await;
        let mut survivors = Vec::new();
        for i in 0..TRIALS {
            let victim = app.login("revoked", &password(0)).await;
            let revoke = async {
                let body = app
                    .gql(
                        "mutation($id: ID!) { revokeSession(id: $id) }",
                        json!({"id": victim.session_id()}),
                        Some(&owner.access),
                    )
                    .await;
                assert_eq!(body["data"]["revokeSession"], true, "{body}");
            };
            let refresh = async {
                tokio::time::sleep(stagger(i, 10)).await;
                app.try_refresh(&victim.refresh).await
            };
            let ((), refreshed) = tokio::join!(revoke, refresh);
            if let Ok(sign_in) = refreshed
                && survives(&app, &sign_in).await
            {
                survivors.push(i);
            }
            assert!(!survives(&app, &victim).await, "trial {i}");
        }
        assert!(survivors.is_empty(), "sessions survived in trials {survivors:?}");
    }

    /// A refresh of another sign-in sent while the password changes: either it fails, or
    /// what it issued ends too. The sign-in that changed the password keeps refreshing.
    async fn a_refresh_racing_a_password_change_does_not_survive_it(app: TestApp) {
        app.register("rotator", &password(0)).await;
        let mut changer = app.login("rotator", &password(0)).await;
        let mut survivors = Vec::new();
        for i in 0..TRIALS {
            let (old, new) = (password(i), password(i + 1));
            let victim = app.login("rotator", &old).await;
            let change = change_password(&app, &changer.access, &old, &new);
            let refresh = async {
                tokio::time::sleep(stagger(i, 40)).await;
                app.try_refresh(&victim.refresh).await
            };
            let ((), refreshed) = tokio::join!(change, refresh);
            if let Ok(sign_in) = refreshed
                && survives(&app, &sign_in).await
            {
                survivors.push(i);
            }
            assert!(!survives(&app, &victim).await, "trial {i}");
            changer = app.try_refresh(&changer.refresh)
                .await
                .unwrap_or_else(|code| panic!("trial {i}: the changer cannot refresh: {code}"));
        }
        assert!(survivors.is_empty(), "sessions survived in trials {survivors:?}");
    }
}
