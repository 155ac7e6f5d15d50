//! The REST compatibility routes (API.md section 4): every route, its statuses, headers and
//! body shapes, on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::rest::{call, login, login_token, me, read, register};
use crate::support::{Backend, SignIn, TestApp, backend_tests};

/// Asserts the shape of a user object: exactly the four documented keys, an RFC 3339 UTC date.
fn assert_user(user: &Value, username: &str, email: Option<&str>) {
    let object = user.as_object().expect("a user is an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["email", "id", "registration_date", "username"]);
    assert_eq!(user["username"], username);
    assert_eq!(user["email"].as_str(), email);
    let id = user["id"].as_str().expect("id is a string");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    let date = user["registration_date"]
        .as_str()
        .expect("date is a string");
    assert!(date.ends_with('Z') && date.len() == 20, "{date}");
    assert!(chrono::DateTime::parse_from_rfc3339(date).is_ok(), "{date}");
}

backend_tests! {
    /// The documented legacy flow: register → logout → login → info with a valid, an invalid
    /// and a revoked token → update email only, password only, both → delete.
    async fn legacy_flow_end_to_end(app: TestApp) {
        let SignIn { access: first, user_id: id, .. } =
            register(&app, "legacy", "first password").await;
        let reply = call(&app, Method::POST, "/users/logout", Some(&first), None).await;
        assert_eq!(reply.status, 204, "{reply:?}");
        assert_eq!(reply.body, Value::Null, "204 has no body");

        let session = login_token(&app, "legacy", "first password").await;
        let reply = me(&app, &session).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_user(&reply.body["data"], "legacy", Some("legacy@example.com"));
        assert_eq!(reply.body["data"]["id"], id.as_str());
        me(&app, "not-a-token").await.assert_unauthorized();
        me(&app, &first).await.assert_unauthorized();

        // Email only: sessions survive, the password is unchanged.
        let other = login_token(&app, "legacy", "first password").await;
        let reply = call(&app, Method::PUT, "/users", Some(&session), Some(json!({"email": "new@example.com"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_user(&reply.body["data"], "legacy", Some("new@example.com"));
        assert_eq!(me(&app, &other).await.status, 200, "an email change revokes nothing");
        assert_eq!(login(&app, "legacy", "first password").await.status, 200);

        // Password only: every other session ends, this one stays.
        let reply = call(&app, Method::PUT, "/users", Some(&session), Some(json!({"password": "second password"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_user(&reply.body["data"], "legacy", Some("new@example.com"));
        me(&app, &other).await.assert_unauthorized();
        assert_eq!(me(&app, &session).await.status, 200, "the asking token stays valid");
        login(&app, "legacy", "first password").await.assert_unauthorized();
        let other = login_token(&app, "legacy", "second password").await;

        // Both at once.
        let reply = call(&app, Method::PUT, "/users", Some(&session), Some(json!({"email": "third@example.com", "password": "third password"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["data"]["email"], "third@example.com");
        me(&app, &other).await.assert_unauthorized();
        let other = login_token(&app, "legacy", "third password").await;

        let reply = call(&app, Method::DELETE, "/users", Some(&session), None).await;
        assert_eq!(reply.status, 204, "{reply:?}");
        me(&app, &session).await.assert_unauthorized();
        me(&app, &other).await.assert_unauthorized();
        login(&app, "legacy", "third password").await.assert_unauthorized();
    }

    async fn register_and_create(app: TestApp) {
        let reply = call(&app, Method::POST, "/users/register", None,
            Some(json!({"username": "Reg_1", "password": "a password", "email": "reg@example.com"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["access_token", "data", "refresh_token", "token_type"]);
        assert_eq!(reply.body["token_type"], "bearer");
        assert_user(&reply.body["data"], "Reg_1", Some("reg@example.com"));
        let reg_token = reply.body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(me(&app, &reg_token).await.status, 200, "the new token works");

        let reply = call(&app, Method::POST, "/users", None,
            Some(json!({"username": "created", "password": "a password", "email": "created@example.com"}))).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        assert_eq!(reply.body["token_type"], "bearer");
        assert_user(&reply.body["data"], "created", Some("created@example.com"));
        let id = reply.body["data"]["id"].as_str().unwrap();
        let location = reply.header("location").expect("Location");
        assert_eq!(location, format!("/users/{id}"));
        let token = reply.body["access_token"].as_str().unwrap();
        let fetched = call(&app, Method::GET, location, Some(token), None).await;
        assert_eq!(fetched.status, 200, "{fetched:?}");
        assert_user(&fetched.body, "created", Some("created@example.com"));

        // Taken names and emails, in any letter case, on either route.
        for (path, username, email) in [
            ("/users/register", "reg_1", "other@example.com"),
            ("/users", "REG_1", "other@example.com"),
            ("/users/register", "fresh", "REG@example.com"),
            ("/users", "fresh", "created@EXAMPLE.com"),
        ] {
            let reply = call(&app, Method::POST, path, None,
                Some(json!({"username": username, "password": "a password", "email": email}))).await;
            reply.assert_detail(409);
        }
    }

    async fn bad_input_is_422_naming_the_field(app: TestApp) {
        let ok = json!({"username": "valid_name", "password": "a password", "email": "v@example.com"});
        let with = |field: &str, value: Value| {
            let mut body = ok.clone();
            body[field] = value;
            body
        };
        let without = |field: &str| {
            let mut body = ok.clone();
            body.as_object_mut().unwrap().remove(field);
            body
        };
        for (body, field) in [
            (without("username"), "username"),
            (without("password"), "password"),
            (without("email"), "email"),
            (with("username", json!("no spaces")), "username"),
            (with("username", json!("ab")), "username"),
            (with("username", json!(12345)), "username"),
            (with("email", json!("not-an-email")), "email"),
            (with("email", Value::Null), "email"),
            (with("password", json!("short")), "password"),
            (with("password", json!("x".repeat(129))), "password"),
        ] {
            for path in ["/users/register", "/users"] {
                call(&app, Method::POST, path, None, Some(body.clone())).await.assert_invalid("body", field);
            }
        }

        // Not JSON, or not an object: 400. Another media type: 415.
        let response = app.client.post(app.url("/users/register"))
            .header("content-type", "application/json").body("{\"username\":").send().await.unwrap();
        read(response).await.assert_detail(400);
        call(&app, Method::POST, "/users/register", None, Some(json!(["a", "b"]))).await.assert_detail(400);
        let response = app.client.post(app.url("/users/register"))
            .header("content-type", "text/plain").body(ok.to_string()).send().await.unwrap();
        read(response).await.assert_detail(415);

        // Legacy clients that send JSON without a Content-Type are understood.
        let response = app.client.post(app.url("/users/register")).body(ok.to_string()).send().await.unwrap();
        assert_eq!(read(response).await.status, 200);

        // Larger than the body limit.
        let huge = json!({"username": "x", "password": "y".repeat(70_000), "email": "e"});
        assert_eq!(call(&app, Method::POST, "/users/register", None, Some(huge)).await.status, 413);
    }

    async fn login_by_json_and_by_form(app: TestApp) {
        register(&app, "logger", "the password").await;
        let reply = login(&app, "LOGGER", "the password").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "token_type"]);
        assert_eq!(reply.body["token_type"], "bearer");
        let expires_in = reply.body["expires_in"].as_u64().expect("expires_in is a number");
        assert!((1700..=1800).contains(&expires_in), "{expires_in}");
        let json_token = reply.body["access_token"].as_str().unwrap().to_owned();

        // The OAuth2 password form, as Swagger UI's "Authorize" sends it.
        let form = [("grant_type", "password"), ("username", "logger"), ("password", "the password"), ("scope", ""), ("client_id", "")];
        let reply = read(app.client.post(app.url("/users/login")).form(&form).send().await.unwrap()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["token_type"], "bearer");
        let form_token = reply.body["access_token"].as_str().unwrap().to_owned();
        assert_ne!(json_token, form_token, "each login is its own session");
        assert_eq!(me(&app, &json_token).await.status, 200);
        assert_eq!(me(&app, &form_token).await.status, 200);
        let reply = read(app.client.post(app.url("/users/login"))
            .form(&[("username", "logger"), ("password", "the password")]).send().await.unwrap()).await;
        assert_eq!(reply.status, 200, "grant_type may be left out: {reply:?}");

        let reply = read(app.client.post(app.url("/users/login"))
            .form(&[("grant_type", "client_credentials"), ("username", "logger"), ("password", "the password")]).send().await.unwrap()).await;
        reply.assert_invalid("body", "grant_type");
        let reply = read(app.client.post(app.url("/users/login")).form(&[("username", "logger")]).send().await.unwrap()).await;
        reply.assert_invalid("body", "password");
        call(&app, Method::POST, "/users/login", None, Some(json!({"password": "x"}))).await.assert_invalid("body", "username");

        // A wrong password and an unknown user: the same 401.
        let wrong = login(&app, "logger", "not the password").await;
        wrong.assert_unauthorized();
        let unknown = login(&app, "nobody", "the password").await;
        unknown.assert_unauthorized();
        assert_eq!(wrong.body, unknown.body);
        let reply = read(app.client.post(app.url("/users/login"))
            .form(&[("username", "logger"), ("password", "wrong password")]).send().await.unwrap()).await;
        reply.assert_unauthorized();
    }

    async fn authorization_header_forms(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } =
            register(&app, "header", "the password").await;
        for value in [format!("Bearer {token}"), format!("bearer {token}"), format!("BEARER  {token}"), token.clone()] {
            let reply = read(app.client.get(app.url("/users/me")).header("authorization", value.as_str()).send().await.unwrap()).await;
            assert_eq!(reply.status, 200, "{value}: {reply:?}");
            assert_eq!(reply.body["data"]["id"], id.as_str());
        }
        read(app.client.get(app.url("/users/me")).send().await.unwrap()).await.assert_unauthorized();
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer not.a.jwt", "garbage"] {
            let reply = read(app.client.get(app.url("/users/me")).header("authorization", value).send().await.unwrap()).await;
            reply.assert_unauthorized();
        }
        // A token signed with another key.
        let other = register(&app, "header2", "the password").await.access;
        let mut forged = other.clone();
        forged.pop();
        forged.push(if other.ends_with('A') { 'B' } else { 'A' });
        me(&app, &forged).await.assert_unauthorized();
        // Every route that needs a token says so the same way.
        for (method, path) in [
            (Method::POST, "/users/logout"),
            (Method::GET, "/users/me"),
            (Method::GET, "/users"),
            (Method::GET, &format!("/users/{id}")),
            (Method::PUT, "/users"),
            (Method::DELETE, "/users"),
        ] {
            call(&app, method, path, None, None).await.assert_unauthorized();
        }
        assert_eq!(me(&app, &token).await.status, 200, "nothing above revoked the token");
    }

    async fn find_user_by_id(app: TestApp) {
        let SignIn { access: alice, user_id: alice_id, .. } =
            register(&app, "alice", "the password").await;
        let bob_id = register(&app, "bob", "the password").await.user_id;
        let reply = call(&app, Method::GET, &format!("/users/{bob_id}"), Some(&alice), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_user(&reply.body, "bob", None);
        let reply = call(&app, Method::GET, &format!("/users/{alice_id}"), Some(&alice), None).await;
        assert_user(&reply.body, "alice", Some("alice@example.com"));
        for missing in [uuid::Uuid::now_v7().to_string(), "not-a-uuid".to_owned(), "%FF%FE".to_owned()] {
            call(&app, Method::GET, &format!("/users/{missing}"), Some(&alice), None).await.assert_detail(404);
        }
    }

    async fn list_users_pages_with_link(app: TestApp) {
        let mut ids = Vec::new();
        let mut token = String::new();
        for name in ["user1", "user2", "user3", "user4", "user5"] {
            let SignIn { access: t, user_id: id, .. } = register(&app, name, "the password").await;
            ids.push(id);
            token = t;
        }
        // The default page holds them all, so no Link.
        let reply = call(&app, Method::GET, "/users", Some(&token), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body.as_array().unwrap().len(), 5);
        assert_eq!(reply.header("link"), None);
        for user in reply.body.as_array().unwrap() {
            let own = user["username"] == "user5";
            let name = user["username"].as_str().unwrap();
            assert_user(user, name, own.then_some("user5@example.com"));
        }

        // Pages of two, following Link.
        let mut seen = Vec::new();
        let mut next = Some("/users?limit=2".to_owned());
        let mut pages = 0;
        while let Some(path) = next.take() {
            let reply = call(&app, Method::GET, &path, Some(&token), None).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            let page = reply.body.as_array().unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
            pages += 1;
            if let Some(link) = reply.header("link") {
                let url = link.strip_prefix('<').and_then(|l| l.strip_suffix(">; rel=\"next\"")).expect(link);
                assert!(url.starts_with("/users?limit=2&after="), "{url}");
                next = Some(url.to_owned());
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, ids, "every user once, in registration order");

        // A full last page: no Link (nothing remains).
        let reply = call(&app, Method::GET, "/users?limit=5", Some(&token), None).await;
        assert_eq!(reply.body.as_array().unwrap().len(), 5);
        assert_eq!(reply.header("link"), None);
        assert_eq!(call(&app, Method::GET, "/users?limit=100", Some(&token), None).await.status, 200);
        let reply = call(&app, Method::GET, "/users?limit=1", Some(&token), None).await;
        assert_eq!(reply.body.as_array().unwrap().len(), 1);
        assert!(reply.header("link").is_some());

        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=-1", "limit"),
            ("limit=abc", "limit"),
            ("limit=", "limit"),
            ("after=garbage", "after"),
            ("limit=2&after=", "after"),
        ] {
            call(&app, Method::GET, &format!("/users?{query}"), Some(&token), None).await.assert_invalid("query", field);
        }
    }

    async fn update_me_errors(app: TestApp) {
        let token = register(&app, "updater", "the password").await.access;
        register(&app, "holder", "the password").await;
        for body in [json!({}), json!({"email": null, "password": null}), json!({"unrelated": 1})] {
            call(&app, Method::PUT, "/users", Some(&token), Some(body)).await.assert_invalid("body", "email");
        }
        call(&app, Method::PUT, "/users", Some(&token), Some(json!({"email": "bad"}))).await.assert_invalid("body", "email");
        call(&app, Method::PUT, "/users", Some(&token), Some(json!({"email": 5}))).await.assert_invalid("body", "email");
        call(&app, Method::PUT, "/users", Some(&token), Some(json!({"password": "short"}))).await.assert_invalid("body", "password");
        call(&app, Method::PUT, "/users", Some(&token), Some(json!({"email": "HOLDER@example.com"}))).await.assert_detail(409);
        // Its own email, in another case, is not a conflict.
        let reply = call(&app, Method::PUT, "/users", Some(&token), Some(json!({"email": "Updater@Example.com"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body["data"]["email"], "Updater@Example.com");
    }

    async fn delete_me_removes_the_account(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } =
            register(&app, "leaver", "the password").await;
        let second = login_token(&app, "leaver", "the password").await;
        let watcher = register(&app, "watcher", "the password").await.access;
        assert_eq!(call(&app, Method::GET, &format!("/users/{id}"), Some(&watcher), None).await.status, 200);
        let reply = call(&app, Method::DELETE, "/users", Some(&token), None).await;
        assert_eq!(reply.status, 204, "{reply:?}");
        me(&app, &token).await.assert_unauthorized();
        me(&app, &second).await.assert_unauthorized();
        call(&app, Method::GET, &format!("/users/{id}"), Some(&watcher), None).await.assert_detail(404);
        let reply = call(&app, Method::GET, "/users", Some(&watcher), None).await;
        assert!(reply.body.as_array().unwrap().iter().all(|u| u["id"] != id.as_str()));
        // The name is free again.
        register(&app, "leaver", "the password").await;
    }

    async fn trailing_slashes_unknown_paths_and_wrong_methods(app: TestApp) {
        let reply = call(&app, Method::POST, "/users/register/", None,
            Some(json!({"username": "slash", "password": "the password", "email": "s@example.com"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(call(&app, Method::GET, "/users/me/", Some(&token), None).await.status, 200);
        register(&app, "slash2", "the password").await;
        let reply = call(&app, Method::GET, "/users/?limit=1", Some(&token), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body.as_array().unwrap().len(), 1, "the query survives the slash");
        let form = [("username", "slash"), ("password", "the password")];
        assert_eq!(app.client.post(app.url("/users/login/")).form(&form).send().await.unwrap().status(), 200);

        for path in ["/nope", "/users/me/extra", "/users/a/b", "/api/users"] {
            let reply = call(&app, Method::GET, path, Some(&token), None).await;
            reply.assert_detail(404);
            assert_eq!(reply.body, json!({"detail": "Not Found"}));
        }

        for (method, path, allowed) in [
            (Method::PATCH, "/users", &["DELETE", "GET", "POST", "PUT"][..]),
            (Method::PATCH, "/users/", &["DELETE", "GET", "POST", "PUT"][..]),
            (Method::GET, "/users/login", &["POST"][..]),
            (Method::PUT, "/users/register", &["POST"][..]),
            (Method::DELETE, "/users/me", &["GET"][..]),
            (Method::POST, "/users/some-id", &["DELETE", "GET"][..]),
        ] {
            let reply = call(&app, method.clone(), path, Some(&token), None).await;
            reply.assert_detail(405);
            let mut allow: Vec<&str> = reply.header("allow").expect("Allow").split(',').map(str::trim).filter(|m| *m != "HEAD").collect();
            allow.sort_unstable();
            assert_eq!(allow, allowed, "{method} {path}");
        }

        let reply = call(&app, Method::GET, "/", None, None).await;
        assert!(matches!(reply.status, 307 | 308), "{reply:?}");
        assert_eq!(reply.header("location"), Some("/docs"));
    }
}

backend_tests! {
    /// Outages are 503 with a `{"detail"}` body that names no internals: here the session store
    /// cannot be reached (a Redis URL nothing listens on).
    #[only(sqlite)]
    async fn unreachable_session_store_is_503(backend: Backend) {
        let app = TestApp::builder().unreachable_redis().spawn(backend).await;
        let reply = call(
            &app,
            Method::POST,
            "/users/register",
            None,
            Some(json!({
                "username": "outage", "password": "the password", "email": "o@example.com"
            })),
        )
        .await;
        reply.assert_detail(503);
        assert!(!reply.body["detail"].as_str().unwrap().contains("127.0.0.1"));
        let user_id = uuid::Uuid::now_v7().to_string();
        let issued = app.state.sign_ins.access_tokens().issue(&user_id).unwrap();
        me(&app, &issued.token).await.assert_detail(503);
    }
}
