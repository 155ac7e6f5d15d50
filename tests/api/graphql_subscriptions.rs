//! Subscriptions over a real WebSocket: `accountEvents` in both dialects, every change of an
//! account reaching its subscribers (across processes with Redis), the socket of a session
//! that ends or expires closed with 4403 after the event, and the protocol's refusals and
//! limits.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::db::make_admin;
use crate::support::mailbox::VERIFY_PATH;
use crate::support::tokens::claims;
use crate::support::ws::{ACCOUNT_EVENTS, Frame, WsClient};
use crate::support::{Backend, PASSWORD, TestApp, backend_tests, error_code};

const LOGOUT: &str = "mutation { logout }";
const LOGOUT_ALL: &str = "mutation { logoutAll }";
const DELETE_ME: &str = "mutation { deleteMe }";
const REVOKE: &str = "mutation($id: ID!) { revokeSession(id: $id) }";
const UPDATE_ME: &str = "mutation($i: UpdateMeInput!) { updateMe(input: $i) { id } }";
const SET_ROLE: &str = "mutation($id: ID!) { setRole(id: $id, role: ADMIN) { id } }";
const DISABLE: &str = "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }";
const VERIFY: &str = "mutation($t: String!) { verifyEmail(token: $t) { id } }";

/// The session id (`jti`) of an access token.
fn session_of(token: &str) -> String {
    claims(token)["jti"].as_str().expect("a jti").to_owned()
}

/// Runs `query` and checks it succeeded.
async fn run(app: &TestApp, query: &str, variables: Value, token: &str) {
    let body = app.gql(query, variables, Some(token)).await;
    assert!(body.get("errors").is_none(), "{query}: {body}");
}

/// Checks that an event is `kind` about `session` (`None`: about no session).
#[track_caller]
fn assert_event(event: &Value, kind: &str, session: Option<&str>) {
    assert_eq!(event["kind"], kind, "{event}");
    assert_eq!(event["sessionId"].as_str(), session, "{event}");
    assert!(
        event["at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{event}"
    );
}

/// A socket still open answers a ping with a pong.
async fn assert_open(client: &mut WsClient) {
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.recv().await, Frame::Text(json!({"type": "pong"})));
}

/// Nothing arrives for a short while.
async fn assert_quiet(client: &mut WsClient) {
    let frame = client.recv_within(Duration::from_millis(300)).await;
    assert_eq!(frame, None, "nothing was due");
}

backend_tests! {
    /// Each change of an account reaches its subscribers as it happens, with the session it
    /// concerns: sign-ins started and ended, email, verification, role, password; another
    /// account's subscriber hears none of it.
    async fn every_change_of_the_account_reaches_its_subscribers(app: TestApp) {
        let root = app.register("root", PASSWORD).await;
        make_admin(&app, &root.user_id).await;
        let alice = app.register("alice", PASSWORD).await;
        let bob = app.register("bob", PASSWORD).await;
        let mut watcher = WsClient::signed_in(&app, &alice.access).await;
        watcher.subscribe("1", ACCOUNT_EVENTS).await;
        let mut stranger = WsClient::signed_in(&app, &bob.access).await;
        stranger.subscribe("b", ACCOUNT_EVENTS).await;
        // The subscription is running once a ping comes back after it.
        assert_open(&mut watcher).await;
        assert_open(&mut stranger).await;

        let second = app.login("alice", PASSWORD).await;
        let session = session_of(&second.access);
        assert_event(&watcher.event("1").await, "SESSION_STARTED", Some(&session));

        let verification = app.mailbox.next_to("alice@example.com").await;
        let token = verification.token(VERIFY_PATH).expect("a verification link");
        run(&app, VERIFY, json!({"t": token}), &alice.access).await;
        assert_event(&watcher.event("1").await, "EMAIL_VERIFIED", None);

        run(&app, UPDATE_ME, json!({"i": {"email": "alice@new.example"}}), &second.access).await;
        assert_event(&watcher.event("1").await, "EMAIL_CHANGED", Some(&session));

        run(&app, SET_ROLE, json!({"id": alice.user_id}), &root.access).await;
        assert_event(&watcher.event("1").await, "ROLE_CHANGED", None);

        run(&app, REVOKE, json!({"id": session}), &alice.access).await;
        assert_event(&watcher.event("1").await, "SESSION_ENDED", Some(&session));

        let own = session_of(&alice.access);
        let change = json!({"i": {"password": "new battery staple", "currentPassword": PASSWORD}});
        run(&app, UPDATE_ME, change, &alice.access).await;
        assert_event(&watcher.event("1").await, "PASSWORD_CHANGED", Some(&own));
        // The password change kept the session that made it: the socket stays.
        assert_open(&mut watcher).await;
        assert_quiet(&mut stranger).await;
    }

    /// A logout ends the socket of its session: the event first, then close 4403. Another
    /// session's socket hears the event and stays open.
    async fn a_logout_closes_the_socket_of_its_session_with_4403(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let other = app.login("alice", PASSWORD).await;
        let mut ending = WsClient::signed_in(&app, &alice.access).await;
        ending.subscribe("1", ACCOUNT_EVENTS).await;
        let mut staying = WsClient::signed_in(&app, &other.access).await;
        staying.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut ending).await;
        assert_open(&mut staying).await;

        run(&app, LOGOUT, json!({}), &alice.access).await;
        let session = session_of(&alice.access);
        assert_event(&ending.event("1").await, "SESSION_ENDED", Some(&session));
        let (code, reason) = ending.closed().await;
        assert_eq!(code, 4403, "{reason}");
        assert_event(&staying.event("1").await, "SESSION_ENDED", Some(&session));
        assert_open(&mut staying).await;
    }

    /// A sign-in revoked from another session closes its socket (4403); so do logoutAll and
    /// an admin disabling the account, for every socket of the account.
    async fn revocations_close_every_socket_they_end(app: TestApp) {
        let root = app.register("root", PASSWORD).await;
        make_admin(&app, &root.user_id).await;
        let alice = app.register("alice", PASSWORD).await;
        let other = app.login("alice", PASSWORD).await;
        let mut revoked = WsClient::signed_in(&app, &other.access).await;
        revoked.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut revoked).await;
        run(&app, REVOKE, json!({"id": session_of(&other.access)}), &alice.access).await;
        assert_event(&revoked.event("1").await, "SESSION_ENDED", Some(&session_of(&other.access)));
        assert_eq!(revoked.closed().await.0, 4403);

        let mut first = WsClient::signed_in(&app, &alice.access).await;
        first.subscribe("1", ACCOUNT_EVENTS).await;
        let third = app.login("alice", PASSWORD).await;
        let mut second = WsClient::signed_in(&app, &third.access).await;
        second.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut second).await;
        // The first socket heard the third sign-in start.
        assert_event(&first.event("1").await, "SESSION_STARTED", Some(&session_of(&third.access)));
        run(&app, LOGOUT_ALL, json!({}), &alice.access).await;
        for socket in [&mut first, &mut second] {
            assert_event(&socket.event("1").await, "SESSION_ENDED", None);
            assert_eq!(socket.closed().await.0, 4403);
        }

        let fourth = app.login("alice", PASSWORD).await;
        let mut disabled = WsClient::signed_in(&app, &fourth.access).await;
        disabled.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut disabled).await;
        run(&app, DISABLE, json!({"id": alice.user_id}), &root.access).await;
        assert_event(&disabled.event("1").await, "ACCOUNT_DISABLED", None);
        assert_eq!(disabled.closed().await.0, 4403);
    }

    /// Deleting the account tells its sockets, then closes them.
    async fn deleting_the_account_closes_its_sockets(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let mut socket = WsClient::signed_in(&app, &alice.access).await;
        socket.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut socket).await;
        run(&app, DELETE_ME, json!({}), &alice.access).await;
        assert_event(&socket.event("1").await, "ACCOUNT_DELETED", None);
        assert_eq!(socket.closed().await.0, 4403);
    }

    /// When the token the socket signed in with expires, its subscriptions hear their session
    /// end, and the socket closes with 4403.
    async fn an_expired_token_closes_the_socket(backend: Backend) {
        let app = TestApp::builder().access_token_ttl(Duration::from_secs(2)).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let mut socket = WsClient::signed_in(&app, &alice.access).await;
        socket.subscribe("1", ACCOUNT_EVENTS).await;
        let event = socket.event("1").await;
        assert_event(&event, "SESSION_ENDED", Some(&session_of(&alice.access)));
        let (code, reason) = socket.closed().await;
        assert_eq!(code, 4403);
        assert!(reason.contains("expired"), "{reason}");
    }

    /// `connection_init` must come first and carry a live token: a missing, malformed, forged
    /// or revoked one is refused with 4403; a subscription before it is 4401; a second one
    /// is 4429; a message that is not the protocol's is 4400; no subprotocol is 4406.
    async fn connection_init_is_required_and_checked(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let refused = [
            json!({"type": "connection_init"}),
            json!({"type": "connection_init", "payload": {}}),
            json!({"type": "connection_init", "payload": {"Authorization": "Basic abc"}}),
            json!({"type": "connection_init", "payload": {"Authorization": "Bearer not.a.token"}}),
            json!({"type": "connection_init", "payload": {"Authorization": 42}}),
        ];
        for init in refused {
            let mut client = WsClient::connect(&app, "graphql-transport-ws").await;
            client.send(init.clone()).await;
            assert_eq!(client.closed().await.0, 4403, "{init}");
        }
        let gone = app.login("alice", PASSWORD).await;
        run(&app, LOGOUT, json!({}), &gone.access).await;
        let mut client = WsClient::connect(&app, "graphql-transport-ws").await;
        client.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", gone.access)}})).await;
        let (code, reason) = client.closed().await;
        assert_eq!(code, 4403);
        assert!(reason.contains("revoked"), "{reason}");

        let mut early = WsClient::connect(&app, "graphql-transport-ws").await;
        early.subscribe("1", ACCOUNT_EVENTS).await;
        assert_eq!(early.closed().await.0, 4401);

        let mut twice = WsClient::signed_in(&app, &alice.access).await;
        twice.send(json!({"type": "connection_init", "payload": {}})).await;
        assert_eq!(twice.closed().await.0, 4429);

        for garbage in ["{", "[]", r#"{"type": "launch"}"#, r#"{"type": "subscribe"}"#] {
            let mut client = WsClient::signed_in(&app, &alice.access).await;
            client.send_text(garbage).await;
            assert_eq!(client.closed().await.0, 4400, "{garbage}");
        }

        // Offered only an unknown subprotocol, the server names none, which a client refuses.
        assert!(WsClient::try_connect(&app, "graphql-sse").await.is_err());
        let mut none = WsClient::connect(&app, "").await;
        assert_eq!(none.closed().await.0, 4406);
    }

    /// A connection that sends no `connection_init` within 10 s is closed with 4408.
    async fn a_connection_without_init_is_closed_after_ten_seconds(app: TestApp) {
        let mut client = WsClient::connect(&app, "graphql-transport-ws").await;
        let frame = client.recv_within(Duration::from_secs(13)).await;
        assert!(matches!(frame, Some(Frame::Close(4408, _))), "{frame:?}");
    }

    /// The older `graphql-ws` dialect: `start`, `data`, `stop` answered by `complete`.
    async fn the_older_graphql_ws_dialect_is_spoken_too(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let mut client = WsClient::connect(&app, "graphql-ws").await;
        client.init(&alice.access).await;
        client.send(json!({"type": "start", "id": "7", "payload": {"query": ACCOUNT_EVENTS}})).await;
        // `start` has no answer of its own; a login shows the subscription runs.
        let mut event = None;
        for _ in 0..20 {
            let second = app.login("alice", PASSWORD).await;
            if let Some(Frame::Text(message)) = client.recv_within(Duration::from_millis(250)).await {
                assert_eq!(message["type"], "data", "{message}");
                event = Some((message, second));
                break;
            }
        }
        let (message, second) = event.expect("an event arrived");
        assert_eq!(message["id"], "7");
        let event = &message["payload"]["data"]["accountEvents"];
        assert_event(event, "SESSION_STARTED", Some(&session_of(&second.access)));
        client.send(json!({"type": "stop", "id": "7"})).await;
        assert_eq!(client.recv().await, Frame::Text(json!({"type": "complete", "id": "7"})));
        client.send(json!({"type": "connection_terminate"})).await;
        assert!(matches!(client.recv().await, Frame::Close(1000, _) | Frame::Gone));
    }

    /// At most ten subscriptions per connection (the eleventh is answered with an error and
    /// the connection carries on); a second subscription under a running id is 4409; queries
    /// and mutations are not served over WebSocket; a document over a limit is refused.
    async fn a_connection_runs_at_most_ten_subscriptions(backend: Backend) {
        let app = TestApp::builder().graphql_max_aliases(1).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let mut client = WsClient::signed_in(&app, &alice.access).await;
        client.subscribe("q", "{ me { id } }").await;
        let Frame::Text(query) = client.recv().await else { panic!("closed") };
        assert_eq!(query["type"], "error", "{query}");
        assert!(query["payload"][0]["message"].as_str().unwrap().contains("HTTP"), "{query}");
        let aliased = "subscription { a: accountEvents { kind } b: accountEvents { kind } }";
        client.subscribe("a", aliased).await;
        let Frame::Text(over) = client.recv().await else { panic!("closed") };
        assert_eq!(over["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{over}");
        for id in 0..10 {
            client.subscribe(&id.to_string(), ACCOUNT_EVENTS).await;
        }
        client.subscribe("10", ACCOUNT_EVENTS).await;
        let refused = client.recv().await;
        let Frame::Text(refused) = refused else { panic!("{refused:?}") };
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["id"], "10");
        assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_REQUEST", "{refused}");
        // The ten run: a new sign-in reaches each.
        app.login("alice", PASSWORD).await;
        let mut heard = std::collections::BTreeSet::new();
        for _ in 0..10 {
            let Frame::Text(message) = client.recv().await else { panic!("closed") };
            assert_eq!(message["type"], "next", "{message}");
            heard.insert(message["id"].as_str().unwrap().parse::<u32>().unwrap());
        }
        assert_eq!(heard, (0..10).collect());
        // Completing one makes room.
        client.send(json!({"type": "complete", "id": "3"})).await;
        client.subscribe("10", ACCOUNT_EVENTS).await;
        assert_open(&mut client).await;


        client.subscribe("0", ACCOUNT_EVENTS).await;
        assert_eq!(client.closed().await.0, 4409);
    }

    /// A message far larger than the socket's read buffer (here 40 KB, most of it a comment)
    /// is read whole, and its subscription runs.
    async fn a_large_message_is_read_whole(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let mut client = WsClient::signed_in(&app, &alice.access).await;
        let query = format!("{ACCOUNT_EVENTS}\n# {}", "x".repeat(40_000));
        client.subscribe("1", &query).await;
        assert_open(&mut client).await;
        let other = app.login("alice", PASSWORD).await;
        assert_event(&client.event("1").await, "SESSION_STARTED", Some(&session_of(&other.access)));
    }

    /// `WS_MAX_CONNECTIONS`: a connection over the cap is answered 503 before the upgrade.
    async fn connections_over_the_cap_are_refused_with_503(backend: Backend) {
        let app = TestApp::builder().ws_max_connections(1).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let mut first = WsClient::signed_in(&app, &alice.access).await;
        // More than an address may have awaiting connection_init: each refusal gives its
        // place among those back, so every one is 503, never 429.
        for _ in 0..20 {
            match WsClient::try_connect(&app, "graphql-transport-ws").await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 503);
                }
                Err(other) => panic!("expected 503, got {other}"),
                Ok(_) => panic!("a second connection was accepted"),
            }
        }
        // The slot is back once the first closes.
        first.send(json!({"type": "connection_init", "payload": {}})).await;
        assert_eq!(first.closed().await.0, 4429);
        drop(first);
        let mut again = None;
        for _ in 0..50 {
            if let Ok(client) = WsClient::try_connect(&app, "graphql-transport-ws").await {
                again = Some(client);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        again.expect("the slot came back").init(&alice.access).await;
    }

    /// One address may hold 16 connections that have not sent `connection_init` (a real client
    /// sends it at once): the seventeenth is answered 429, and each connection that signs in
    /// (or leaves) gives its place back. Signed-in connections do not count.
    async fn an_address_holds_few_connections_awaiting_init(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let _signed_in = WsClient::signed_in(&app, &alice.access).await;
        let mut waiting = Vec::new();
        for _ in 0..16 {
            waiting.push(WsClient::connect(&app, "graphql-transport-ws").await);
        }
        let assert_refused = |result: Result<WsClient, tokio_tungstenite::tungstenite::Error>| match result {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429);
                assert!(response.headers().contains_key("retry-after"));
            }
            Err(other) => panic!("expected 429, got {other}"),
            Ok(_) => panic!("a seventeenth connection awaiting init was accepted"),
        };
        assert_refused(WsClient::try_connect(&app, "graphql-transport-ws").await);
        // One signs in, another leaves: two places come back, and only two.
        waiting[0].init(&alice.access).await;
        drop(waiting.pop());
        let mut accepted = 0;
        for _ in 0..50 {
            match WsClient::try_connect(&app, "graphql-transport-ws").await {
                Ok(client) => {
                    waiting.push(client);
                    accepted += 1;
                    if accepted == 2 {
                        break;
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert_eq!(accepted, 2, "the places came back");
        assert_refused(WsClient::try_connect(&app, "graphql-transport-ws").await);
        assert_open(&mut waiting[0]).await;
    }

    /// `WS_MAX_CONNECTIONS_PER_ACCOUNT` (here 3): the next connection of the account is closed
    /// with 4429 after its `connection_init`; another account is not affected, and a
    /// connection that ends gives its place back.
    async fn an_account_holds_at_most_its_share_of_connections(backend: Backend) {
        let app = TestApp::builder().ws_max_connections_per_account(3).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        let bob = app.register("bob", PASSWORD).await;
        let mut open = Vec::new();
        for _ in 0..3 {
            open.push(WsClient::signed_in(&app, &alice.access).await);
        }
        let mut refused = WsClient::connect(&app, "graphql-transport-ws").await;
        refused.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", alice.access)}})).await;
        let (code, reason) = refused.closed().await;
        assert_eq!(code, 4429, "{reason}");
        assert!(reason.contains("has 3 connections"), "{reason}");
        let mut other = WsClient::signed_in(&app, &bob.access).await;
        assert_open(&mut other).await;
        drop(open.pop());
        let mut again = None;
        for _ in 0..50 {
            let mut client = WsClient::connect(&app, "graphql-transport-ws").await;
            client.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", alice.access)}})).await;
            if client.recv().await == Frame::Text(json!({"type": "connection_ack"})) {
                again = Some(client);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_open(again.as_mut().expect("the place came back")).await;
    }

    /// Keep-alive: the server pings every `WS_KEEPALIVE` (`ping`, or `ka` in the older
    /// dialect).
    async fn the_server_keeps_connections_alive(backend: Backend) {
        let app = TestApp::builder().ws_keepalive(Duration::from_secs(1)).spawn(backend).await;
        let alice = app.register("alice", PASSWORD).await;
        for (protocol, keepalive) in [("graphql-transport-ws", "ping"), ("graphql-ws", "ka")] {
            let mut client = WsClient::connect(&app, protocol).await;
            client.init(&alice.access).await;
            client.skip_keepalive = false;
            for _ in 0..2 {
                let Frame::Text(message) = client.recv().await else { panic!("closed") };
                assert_eq!(message["type"], keepalive, "{message}");
                client.send(json!({"type": "pong"})).await;
            }
        }
    }

    /// A server that stops closes its sockets with 1012, so clients connect again elsewhere.
    async fn a_stopping_server_closes_its_sockets_with_1012(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let mut client = WsClient::signed_in(&app, &alice.access).await;
        client.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut client).await;
        app.state.stop();
        assert_eq!(client.closed().await.0, 1012);
    }

    /// A subscription sent over HTTP is refused with a clear error, not run.
    /// Each event runs the subscription's own document, operation and variables; a document
    /// that fails validation, or a variable of the wrong type, is answered with an `error`
    /// message carrying the errors, and the connection goes on.
    async fn each_event_runs_the_subscriptions_operation_and_variables(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let mut client = WsClient::signed_in(&app, &alice.access).await;
        let document = "subscription Other { accountEvents { sessionId } } \
                        subscription Kinds($skip: Boolean!) { accountEvents { kind at @skip(if: $skip) ... on AccountEvent { __typename } } }";
        client
            .send(json!({"type": "subscribe", "id": "kinds", "payload": {
                "query": document, "operationName": "Kinds", "variables": {"skip": true}}}))
            .await;
        client
            .send(json!({"type": "subscribe", "id": "typo", "payload": {
                "query": "subscription { accountEvents { kind colour } }"}}))
            .await;
        let Frame::Text(typo) = client.recv().await else { panic!("closed") };
        assert_eq!(typo["type"], "error", "{typo}");
        assert_eq!(typo["id"], "typo", "{typo}");
        assert_eq!(typo["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{typo}");
        assert!(typo["payload"][0]["message"].as_str().is_some_and(|m| m.contains("colour")), "{typo}");
        client
            .send(json!({"type": "subscribe", "id": "wrong", "payload": {
                "query": document, "operationName": "Kinds", "variables": {"skip": "yes"}}}))
            .await;
        let Frame::Text(wrong) = client.recv().await else { panic!("closed") };
        assert_eq!((&wrong["type"], &wrong["id"]), (&json!("error"), &json!("wrong")), "{wrong}");
        assert_eq!(wrong["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{wrong}");
        assert!(wrong["payload"][0]["message"].as_str().is_some_and(|m| m.contains("Boolean")), "{wrong}");

        app.login("alice", PASSWORD).await;
        assert_eq!(
            client.event("kinds").await,
            json!({"kind": "SESSION_STARTED", "__typename": "AccountEvent"})
        );
        assert_quiet(&mut client).await;
    }

    async fn a_subscription_over_http_is_refused(app: TestApp) {
        let alice = app.register("alice", PASSWORD).await;
        let body = app.gql(ACCOUNT_EVENTS, json!({}), Some(&alice.access)).await;
        assert!(error_code(&body).is_some(), "{body}");
        assert!(body["data"].is_null(), "{body}");
    }

    /// Two processes sharing Redis: an event published by one reaches the other's
    /// subscribers, and a logout on one closes the socket on the other.
    #[only(mysql_redis, mysql_cluster)]
    async fn events_cross_processes_through_redis(backend: Backend) {
        let first = TestApp::spawn(backend).await;
        let second = TestApp::builder().replica_of(&first).spawn(backend).await;
        let alice = first.register("alice", PASSWORD).await;
        let mut socket = WsClient::signed_in(&second, &alice.access).await;
        socket.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut socket).await;
        let other = first.login("alice", PASSWORD).await;
        assert_event(&socket.event("1").await, "SESSION_STARTED", Some(&session_of(&other.access)));
        run(&first, UPDATE_ME, json!({"i": {"email": "alice@new.example"}}), &other.access).await;
        assert_event(&socket.event("1").await, "EMAIL_CHANGED", Some(&session_of(&other.access)));
        run(&first, LOGOUT, json!({}), &alice.access).await;
        assert_event(&socket.event("1").await, "SESSION_ENDED", Some(&session_of(&alice.access)));
        assert_eq!(socket.closed().await.0, 4403);
        // Its last listener gone, the process let go of the account's channel.
        assert_eq!(second.state.sign_ins.events().accounts_listened_to(), 0);
    }
}

/// Cuts the connection on which `app`'s event relay listens, as a network fault would.
async fn cut_relay_connection(app: &TestApp) {
    let url = app.state.config.redis.url.clone().expect("a Redis URL");
    let name = user_api::events::relay::client_name(&app.state.config.redis.key_prefix);
    let client = redis::Client::open(url).expect("a Redis client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut connection)
        .await
        .unwrap();
    let ids: Vec<String> = list
        .lines()
        .filter(|line| line.split(' ').any(|field| field == format!("name={name}")))
        .filter_map(|line| {
            line.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(ids.len(), 1, "one relay connection is named {name}: {list}");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&ids[0])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(killed, 1);
}

backend_tests! {
    /// A process whose relay loses its Redis connection connects again and subscribes again:
    /// events reach its sockets once more. Since what ended a session may have been published
    /// while it was away, it checks every socket's session again: one whose session ended
    /// unheard (here, revoked in the store behind the events' back) is closed with 4403.
    #[only(mysql_redis)]
    async fn a_relay_that_lost_redis_recovers_and_checks_its_sockets(backend: Backend) {
        use user_api::signins::store::SessionStore as _;

        let first = TestApp::spawn(backend).await;
        let second = TestApp::builder().replica_of(&first).spawn(backend).await;
        let alice = first.register("alice", PASSWORD).await;
        let other = first.login("alice", PASSWORD).await;
        let mut ending = WsClient::signed_in(&second, &alice.access).await;
        ending.subscribe("1", ACCOUNT_EVENTS).await;
        let mut staying = WsClient::signed_in(&second, &other.access).await;
        staying.subscribe("1", ACCOUNT_EVENTS).await;
        assert_open(&mut ending).await;
        assert_open(&mut staying).await;

        let revoked = second
            .state
            .sign_ins
            .store()
            .revoke(&alice.user_id, &session_of(&alice.access))
            .await
            .unwrap();
        assert!(revoked);
        cut_relay_connection(&second).await;
        let (code, reason) = ending.closed().await;
        assert_eq!(code, 4403, "{reason}");

        // Back on Redis: an event published by the first process reaches the second's socket.
        let mut heard = None;
        for round in 0..50 {
            let email = format!("alice{round}@new.example");
            run(&first, UPDATE_ME, json!({"i": {"email": email}}), &other.access).await;
            if let Some(Frame::Text(message)) = staying.recv_within(Duration::from_millis(200)).await {
                heard = Some(message);
                break;
            }
        }
        let message = heard.expect("an event crossed again after the relay reconnected");
        assert_event(&message["payload"]["data"]["accountEvents"], "EMAIL_CHANGED", Some(&session_of(&other.access)));
    }
}
