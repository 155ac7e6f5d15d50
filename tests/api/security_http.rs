//! The HTTP edge: slow and idle connections are closed after HTTP_HEADER_TIMEOUT, request
//! heads are capped in size, the shutdown signal lets requests in flight finish; every
//! response carries the security headers, and the two HTML pages policies made for them;
//! responses that carry tokens are not stored by caches; every error, whoever raised it, is
//! JSON in its route's convention; an Authorization header over 8 KiB is refused unread.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::rest::call;
use crate::support::{Backend, GRAPHQL_RESPONSE, SignIn, TestApp, backend_tests, error_code};

/// Header timeout of the servers these tests start.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a test waits for the server to close a connection it should close after
/// HEADER_TIMEOUT: generous, so a loaded machine does not fail the test, yet far from "never".
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// Reads until the server closes the connection (end of stream or reset) and returns what it
/// sent; panics if it is still open after CLOSE_WITHIN.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection was still open after {CLOSE_WITHIN:?}"
    );
    received
}

/// Reads one response with a `Content-Length` body from a connection that stays open;
/// returns its status line and head.
async fn read_one_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let response = tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed before a whole response arrived");
            received.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&received).into_owned();
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a Content-Length");
            if received.len() >= end + 4 + length {
                return head.to_owned();
            }
        }
    })
    .await;
    response.expect("a response in time")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

backend_tests! {
    async fn partial_request_heads_are_closed_after_the_timeout(backend: Backend) {
        let app = TestApp::builder().header_timeout(HEADER_TIMEOUT).spawn(backend).await;
        // Ten clients that each send half a request head, then nothing: each is closed without an
        // answer (there is no request to answer).
        let mut slow = Vec::new();
        for _ in 0..10 {
            let mut stream = connect(&app).await;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: example\r\nX-Slow: ")
                .await
                .unwrap();
            slow.push(stream);
        }
        for mut stream in slow {
            read_until_closed(&mut stream).await;
        }
        // The server still serves others.
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn silent_connections_are_closed_after_the_timeout(backend: Backend) {
        let app = TestApp::builder().header_timeout(HEADER_TIMEOUT).spawn(backend).await;
        let mut stream = connect(&app).await;
        assert!(read_until_closed(&mut stream).await.is_empty());
        // Nor does the start of an HTTP/2 preface (the server speaks HTTP/1.1) hold one open.
        let mut stream = connect(&app).await;
        stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        read_until_closed(&mut stream).await;
    }

    async fn a_body_that_never_comes_is_refused_after_the_timeout(backend: Backend) {
        let app = TestApp::builder().header_timeout(HEADER_TIMEOUT).spawn(backend).await;
        // A whole head announcing a body, then nothing, and part of a body then nothing: each
        // is answered (the read failed) and closed, instead of waiting for ever.
        for sent in [&b""[..], &b"{\"username\": \"al"[..]] {
            let mut stream = connect(&app).await;
            stream
                .write_all(
                    b"POST /users/login HTTP/1.1\r\nHost: example\r\n\
                      Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
                )
                .await
                .unwrap();
            stream.write_all(sent).await.unwrap();
            let received = read_until_closed(&mut stream).await;
            let text = String::from_utf8_lossy(&received);
            assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        }
        // The server still serves others.
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn idle_keep_alive_connections_are_closed_after_the_timeout(backend: Backend) {
        let app = TestApp::builder().header_timeout(HEADER_TIMEOUT).spawn(backend).await;
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: example\r\n\r\n")
            .await
            .unwrap();
        let head = read_one_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        // Kept alive for a next request that never comes: closed like a slow head.
        read_until_closed(&mut stream).await;
    }

    async fn requests_within_the_timeout_are_served(backend: Backend) {
        let app = TestApp::builder().header_timeout(HEADER_TIMEOUT).spawn(backend).await;
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // A head sent in two parts, and a second request on the same connection, each within
        // the timeout.
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(b"Host: example\r\n\r\n").await.unwrap();
        let head = read_one_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // `/healthz` again rather than `/readyz`: the point is the connection, and readiness
        // (a database round trip) can be slow on a loaded test machine.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: example\r\n\r\n")
            .await
            .unwrap();
        let head = read_one_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }

    async fn request_heads_are_capped_in_size(app: TestApp) {
        let get = |filler: usize| {
            app.client
                .get(app.url("/healthz"))
                .header("x-filler", "a".repeat(filler))
                .send()
        };
        assert_eq!(get(16 * 1024).await.unwrap().status(), 200);
        assert_eq!(get(40 * 1024).await.unwrap().status(), 431);
        // A head that never ends is refused once it outgrows the read buffer, not buffered on.
        let mut stream = connect(&app).await;
        let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
        let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: example\r\n");
        while request.len() < 100 * 1024 {
            request.push_str(&line);
        }
        // The server may close before all of it is written.
        let _ = stream.write_all(request.as_bytes()).await;
        let reply = read_until_closed(&mut stream).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
            "{reply}"
        );
    }

    async fn shutdown_finishes_requests_in_flight(app: TestApp) {
        // A second server on the same state, stopped by this test.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let http = app.state.config.http.clone();
        let router = user_api::app(app.state.clone());
        let server = tokio::spawn(async move {
            user_api::serve(listener, router, &http, async {
                let _ = stopped.await;
            })
            .await;
        });
        // A request in flight: its head and half its body now, the rest after the signal.
        let body = br#"{"query":"{ __typename }"}"#;
        let (first, rest) = body.split_at(body.len() / 2);
        let mut in_flight = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        in_flight.write_all(head.as_bytes()).await.unwrap();
        in_flight.write_all(first).await.unwrap();
        // An idle keep-alive connection, which has nothing to finish.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: example\r\n\r\n")
            .await
            .unwrap();
        read_one_response(&mut idle).await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        stop.send(()).unwrap();
        read_until_closed(&mut idle).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!server.is_finished(), "stopped with a request in flight");
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "still accepting connections"
        );
        in_flight.write_all(rest).await.unwrap();
        let reply = read_until_closed(&mut in_flight).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(
            reply.contains(r#"{"data":{"__typename":"Query"}}"#),
            "{reply}"
        );
        tokio::time::timeout(CLOSE_WITHIN, server)
            .await
            .expect("the server stops once the request is answered")
            .unwrap();
    }
}

#[test]
fn header_timeout_is_validated() {
    use user_api::config::Config;
    let config = Config::try_from_args(["user-api"]).unwrap();
    assert_eq!(config.http.header_timeout, 10);
    for bad in ["0", "301", "soon"] {
        let err = Config::try_from_args(["user-api", "--http-header-timeout", bad]).unwrap_err();
        assert!(err.to_string().contains("HTTP_HEADER_TIMEOUT"), "{err}");
    }
}

/// The policy of every response that is not one of the two pages.
const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Asserts the headers every response carries; returns its Content-Security-Policy.
fn assert_security_headers(what: &str, response: &reqwest::Response) -> String {
    let headers = response.headers();
    let get = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    let csp = get("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    csp
}

backend_tests! {
    async fn every_response_carries_the_security_headers(app: TestApp) {
        let token = app.register("headers_user", "correct horse").await.access;
        let requests = [
            (Method::GET, "/healthz", None, 200),
            (Method::GET, "/readyz", None, 200),
            (Method::GET, "/metrics", None, 200),
            (Method::GET, "/openapi.json", None, 200),
            (Method::GET, "/", None, 307),
            (Method::GET, "/nowhere", None, 404),
            (Method::DELETE, "/healthz", None, 405),
            (Method::GET, "/users/me", None, 401),
            (Method::GET, "/users/me", Some(&token), 200),
            (Method::GET, "/graphql?query=%7B__typename%7D", None, 200),
        ];
        for (method, path, token, status) in requests {
            let mut request = app.client.request(method.clone(), app.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let what = format!("{method} {path}");
            assert_eq!(response.status(), status, "{what}");
            assert_eq!(assert_security_headers(&what, &response), STRICT_CSP, "{what}");
        }
        let posts = [
            ("/graphql", json!({"query": "{ __typename }"}).to_string(), 200),
            ("/graphql", "{not json".to_owned(), 400),
            ("/users/login", json!({"username": "headers_user"}).to_string(), 422),
            ("/users/login", "x".repeat(70 * 1024), 413),
        ];
        for (path, body, status) in posts {
            let response = app.client.post(app.url(path))
                .header("content-type", "application/json")
                .body(body).send().await.unwrap();
            let what = format!("POST {path} ({status})");
            assert_eq!(response.status(), status, "{what}");
            assert_eq!(assert_security_headers(&what, &response), STRICT_CSP, "{what}");
        }
    }

    async fn swagger_ui_has_a_policy_that_lets_it_run(app: TestApp) {
        for path in ["/docs/", "/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let csp = assert_security_headers(path, &response);
            assert_eq!(csp, user_api::rest::SWAGGER_UI_CSP, "{path}");
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe"), "{csp}");
        }
        let page = app.client.get(app.url("/docs/")).send().await.unwrap().text().await.unwrap();
        assert!(!page.contains("<script>"), "Swagger UI's page has no inline script");
    }

    /// GraphiQL comes from the binary: the page loads only this server's files, each under
    /// a content-hashed name that browsers may cache for good, and runs no inline script, so
    /// its policy allows scripts, styles and requests from this server alone.
    async fn graphiql_is_served_from_the_binary_under_a_policy_of_this_server_only(app: TestApp) {
        let response = app.client.get(app.url("/graphiql")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let csp = assert_security_headers("/graphiql", &response);
        assert_eq!(csp, user_api::graphql::graphiql::GRAPHIQL_CSP);
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(csp.contains("script-src 'self';") && csp.contains("connect-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
        let page = response.text().await.unwrap();
        assert!(!page.contains("<script>") && !page.contains("<style"), "{page}");
        assert!(!page.contains("http"), "nothing from another host: {page}");
        let mut assets = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for (i, _) in page.match_indices(attribute) {
                let url = &page[i + attribute.len()..];
                let url = &url[..url.find('"').unwrap()];
                if url.starts_with('/') {
                    assets.push(url.to_owned());
                }
            }
        }
        let names: Vec<&str> = assets.iter().map(|a| a.rsplit('/').next().unwrap()).collect();
        for expected in ["graphiql.min.", "react.production.min.", "react-dom.production.min.", "page."] {
            assert!(names.iter().any(|n| n.starts_with(expected)), "{expected} in {names:?}");
        }
        for path in &assets {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let kind = if path.ends_with(".js") { "text/javascript" } else { "text/css" };
            let headers = response.headers();
            assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
            assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable", "{path}");
            assert_security_headers(path, &response);
            let body = response.bytes().await.unwrap();
            // The name carries the start of the content's SHA-256.
            let hash = path.rsplit('.').nth(1).unwrap();
            assert!(format!("{:x}", Sha256::digest(&body)).starts_with(hash), "{path}");
        }
        // A name with another hash (a page from an older server) is not served.
        let stale = assets[0].replace(assets[0].rsplit('.').nth(1).unwrap(), "0000000000000000");
        let response = app.client.get(app.url(&stale)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{stale}");
        // The page itself is not cached, so a new server's asset names are picked up at once.
        let response = app.client.get(app.url("/graphiql")).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
}

backend_tests! {
    async fn responses_with_tokens_are_not_stored(app: TestApp) {
        let no_store = |what: &str, headers: &reqwest::header::HeaderMap| {
            assert_eq!(
                headers.get("cache-control").map(|v| v.to_str().unwrap()),
                Some("no-store"),
                "{what}"
            );
        };
        let reply = call(&app, Method::POST, "/users/register", None,
            Some(json!({"username": "cached", "password": "correct horse", "email": "c@example.com"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        no_store("REST register", &reply.headers);
        let reply = call(&app, Method::POST, "/users", None,
            Some(json!({"username": "cached2", "password": "correct horse", "email": "c2@example.com"}))).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        no_store("REST create", &reply.headers);
        let reply = call(&app, Method::POST, "/users/login", None,
            Some(json!({"username": "cached", "password": "correct horse"}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        no_store("REST login", &reply.headers);
        let refresh_token = reply.body["refresh_token"].as_str().unwrap().to_owned();
        let token = reply.body["access_token"].as_str().unwrap().to_owned();
        let reply = call(&app, Method::POST, "/users/refresh", None,
            Some(json!({"refresh_token": refresh_token}))).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        no_store("REST refresh", &reply.headers);
        let reply = call(&app, Method::GET, "/users/me", Some(&token), None).await;
        no_store("REST me", &reply.headers);
        let reply = call(&app, Method::POST, "/users/login", None,
            Some(json!({"username": "cached", "password": "wrong password"}))).await;
        assert_eq!(reply.status, 401);
        no_store("REST failed login", &reply.headers);

        // Every GraphQL response, by POST and by GET, succeeding or not.
        let login = "mutation { login(username: \"cached\", password: \"correct horse\") { accessToken } }";
        let response = app.gql_response(login, json!({}), None).await;
        no_store("GraphQL login", response.headers());
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["data"]["login"]["accessToken"].is_string(), "{body}");
        let response = app.gql_response("{ me { id } }", json!({}), Some(&token)).await;
        no_store("GraphQL me", response.headers());
        let response = app.gql_response("{ nope }", json!({}), None).await;
        no_store("GraphQL error", response.headers());
        let response = app.client.get(app.url("/graphql?query=%7Bme%7Bid%7D%7D"))
            .bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        no_store("GraphQL GET", response.headers());
    }
}

/// A response read off the wire: the status, the headers (names in lower case) and the body.
type RawReply = (u16, Vec<(String, String)>, String);

/// An exchange over a fresh connection that the server closes after answering (the request
/// says `Connection: close`).
async fn raw_exchange(app: &TestApp, parts: &[&[u8]]) -> RawReply {
    let mut stream = connect(app).await;
    for part in parts {
        // The server may answer, and close, before it has read everything.
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    let reply = read_until_closed(&mut stream).await;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {reply}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// POSTs JSON to `path` over a fresh connection (see [`raw_exchange`]): a head with `framing`,
/// its Content-Length or Transfer-Encoding line, then the parts of `body`.
async fn raw_post(
    app: &TestApp,
    path: &str,
    accept: &str,
    framing: &str,
    body: &[&[u8]],
) -> RawReply {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\n\
         Accept: {accept}\r\n{framing}\r\nConnection: close\r\n\r\n"
    );
    let mut parts = vec![head.as_bytes()];
    parts.extend_from_slice(body);
    raw_exchange(app, &parts).await
}

/// A POST whose Content-Length says its body is past MAX_BODY_BYTES (64 KiB). Only the head
/// is sent, so the answer has to come from the Content-Length alone, before any of the body
/// is read. Sending the body too would race that early answer: the server closes with the
/// body unread, and a client still writing it may fail on a broken pipe or have the answer
/// cut off by the reset before reading it.
async fn declared_past_the_limit(app: &TestApp, path: &str, accept: &str) -> RawReply {
    let framing = format!("Content-Length: {}", 70 * 1024);
    raw_post(app, path, accept, &framing, &[]).await
}

/// A chunked POST whose body grows past MAX_BODY_BYTES (64 KiB) in 8 KiB chunks.
async fn chunked_past_the_limit(app: &TestApp, path: &str, accept: &str) -> RawReply {
    let chunk = format!("2000\r\n{}\r\n", " ".repeat(0x2000));
    // Just past the limit, and no more: bytes the server never reads would make its close
    // a reset, which could discard its answer before the test reads it.
    let body = [chunk.as_bytes(); 9];
    raw_post(app, path, accept, "Transfer-Encoding: chunked", &body).await
}

/// Asserts a GraphQL-shaped request error: `errors[0].extensions.code` and no `data`.
fn assert_graphql_error(
    what: &str,
    content_type: Option<&str>,
    body: &str,
    media: &str,
    code: &str,
) {
    assert_eq!(content_type, Some(media), "{what}: {body}");
    let body: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    assert_eq!(
        body["errors"][0]["extensions"]["code"], code,
        "{what}: {body}"
    );
    assert!(body["errors"][0]["message"].is_string(), "{what}: {body}");
    assert!(body.get("data").is_none(), "{what}: {body}");
}

/// Asserts a REST error body, `{"detail": "…"}`.
fn assert_rest_error(what: &str, content_type: Option<&str>, body: &str) {
    assert_eq!(content_type, Some("application/json"), "{what}: {body}");
    let body: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
    assert!(body["detail"].is_string(), "{what}: {body}");
}

backend_tests! {
    async fn bodies_over_the_limit_answer_json_in_the_routes_shape(app: TestApp) {
        // Refused on its Content-Length, before any of it is read.
        for accept in ["application/json", GRAPHQL_RESPONSE] {
            let (status, headers, body) = declared_past_the_limit(&app, "/graphql", accept).await;
            assert_eq!(status, 413, "{body}");
            assert_graphql_error("GraphQL, Content-Length", header_of(&headers, "content-type"), &body, accept, "BAD_REQUEST");
        }
        for path in ["/users/login", "/users/register", "/users"] {
            let (status, headers, body) = declared_past_the_limit(&app, path, "*/*").await;
            assert_eq!(status, 413, "{path}: {body}");
            assert_rest_error(path, header_of(&headers, "content-type"), &body);
        }
        // Refused as it grows past the limit.
        for accept in ["application/json", GRAPHQL_RESPONSE] {
            let (status, headers, body) = chunked_past_the_limit(&app, "/graphql", accept).await;
            assert_eq!(status, 413, "{body}");
            assert_graphql_error("GraphQL, chunked", header_of(&headers, "content-type"), &body, accept, "BAD_REQUEST");
        }
        let (status, headers, body) = chunked_past_the_limit(&app, "/users/login", "*/*").await;
        assert_eq!(status, 413, "{body}");
        assert_rest_error("REST, chunked", header_of(&headers, "content-type"), &body);
    }

    async fn other_refusals_answer_json_in_the_routes_shape(app: TestApp) {
        let token = app.register("refused", "correct horse").await.access;
        // A method /graphql does not serve.
        let response = app.client.put(app.url("/graphql")).json(&json!({"query": "{ __typename }"}))
            .send().await.unwrap();
        assert_eq!(response.status(), 405);
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        assert_graphql_error("PUT /graphql", content_type.as_deref(), &body, "application/json", "BAD_REQUEST");
        // No media type /graphql can answer in.
        let response = app.client.get(app.url("/graphql?query=%7B__typename%7D"))
            .header("accept", "text/html").send().await.unwrap();
        assert_eq!(response.status(), 406);
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        assert_graphql_error("406", content_type.as_deref(), &body, "application/json", "BAD_REQUEST");
        // Bodies that are not UTF-8 JSON, and one whose chunked framing is broken.
        for (content_type, accept) in [("application/json", GRAPHQL_RESPONSE), ("application/graphql", "application/json")] {
            let response = app.client.post(app.url("/graphql"))
                .header("content-type", content_type).header("accept", accept)
                .body(vec![0xff, 0xfe, b'{', 0x80]).send().await.unwrap();
            assert_eq!(response.status(), 400, "{content_type}");
            let media = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            let body = response.text().await.unwrap();
            assert_graphql_error(content_type, media.as_deref(), &body, accept, "BAD_REQUEST");
        }
        let broken = b"POST /graphql HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\n\
                       Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
        let (status, headers, body) = raw_exchange(&app, &[broken]).await;
        assert_eq!(status, 400, "{body}");
        assert_graphql_error("broken chunks", header_of(&headers, "content-type"), &body, "application/json", "BAD_REQUEST");
        let response = app.client.post(app.url("/users/login"))
            .header("content-type", "application/json").body(vec![0xff, 0xfe, b'{', 0x80])
            .send().await.unwrap();
        assert_eq!(response.status(), 400);
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        assert_rest_error("REST, not UTF-8", content_type.as_deref(), &response.text().await.unwrap());
        // A path segment that does not decode, and a file Swagger UI does not have.
        for (path, status) in [("/users/%FF%FE", 404), ("/docs/no-such-file.js", 404), ("/nowhere", 404)] {
            let response = app.client.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), status, "{path}");
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            assert_rest_error(path, content_type.as_deref(), &response.text().await.unwrap());
        }
    }
}

/// `Bearer <token>` padded with spaces after the scheme (which the parser skips) to `len`
/// bytes: a valid credential, only long.
fn padded_bearer(token: &str, len: usize) -> String {
    let padding = len - "Bearer ".len() - token.len();
    format!("Bearer {}{token}", " ".repeat(padding))
}

backend_tests! {
    async fn authorization_headers_over_8_kib_are_refused_unread(app: TestApp) {
        let SignIn { access: token, user_id: id, .. } =
            app.register("long_header", "correct horse").await;
        let me = |authorization: String| {
            app.client.get(app.url("/users/me")).header("authorization", authorization).send()
        };
        let gql_me = |authorization: String, accept: &'static str| {
            app.client.post(app.url("/graphql"))
                .header("authorization", authorization).header("accept", accept)
                .json(&json!({"query": "{ me { id } }"})).send()
        };
        // 8 KiB is still read.
        assert_eq!(me(padded_bearer(&token, 8192)).await.unwrap().status(), 200);
        let body: serde_json::Value = gql_me(padded_bearer(&token, 8192), "application/json")
            .await.unwrap().json().await.unwrap();
        assert_eq!(body["data"]["me"]["id"], id.as_str(), "{body}");

        // One byte more, and even a valid token is refused.
        let response = me(padded_bearer(&token, 8193)).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        assert_rest_error("REST me", content_type.as_deref(), &response.text().await.unwrap());
        let response = gql_me(padded_bearer(&token, 8193), "application/json").await.unwrap();
        assert_eq!(response.status(), 200, "a well-formed request over application/json");
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        assert_graphql_error("GraphQL me", content_type.as_deref(), &body, "application/json", "UNAUTHENTICATED");
        let response = gql_me(padded_bearer(&token, 8193), GRAPHQL_RESPONSE).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        assert_graphql_error("GraphQL me", content_type.as_deref(), &body, GRAPHQL_RESPONSE, "UNAUTHENTICATED");

        // The request is refused whole, even where no token is needed: nothing is registered.
        let junk = "x".repeat(9 * 1024);
        let response = app.client.post(app.url("/users/register")).header("authorization", &junk)
            .json(&json!({"username": "not_made", "password": "correct horse", "email": "n@example.com"}))
            .send().await.unwrap();
        assert_eq!(response.status(), 401);
        let register = "mutation { register(input: {username: \"not_made\", email: \"n@example.com\", password: \"correct horse\"}) { accessToken } }";
        let body: serde_json::Value = app.client.post(app.url("/graphql")).header("authorization", &junk)
            .json(&json!({"query": register})).send().await.unwrap().json().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
        let body = app.gql(register, json!({}), None).await;
        assert!(body["data"]["register"]["accessToken"].is_string(), "{body}");

        // Far longer, and the head-size cap stops it before anything reads it.
        let response = me(padded_bearer(&token, 300 * 1024)).await.unwrap();
        assert_eq!(response.status(), 431);
    }
}
