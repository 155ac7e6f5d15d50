//! Operations: metrics, request ids, start-up checks, --help and graceful shutdown. The last
//! three run the real binary.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Backend, TestApp, backend_tests};

/// The server binary.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_user-api");

backend_tests! {
    async fn metrics_count_routes_operations_and_pools(app: TestApp) {
        let token = app.register("metrics_user", "correct horse").await.access;
        let body = app.client.post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({"query": "query WhoAmI { me { id } }", "operationName": "WhoAmI"}))
            .send().await.unwrap();
        assert_eq!(body.status(), 200);
        app.client.get(app.url("/healthz")).send().await.unwrap();
        let response = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        for needle in [
            r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
            r#"graphql_operations_total{operation="WhoAmI",outcome="ok"} 1"#,
            r#"graphql_operation_duration_seconds_count{operation="WhoAmI"} 1"#,
            r#"http_request_duration_seconds_bucket{method="POST",route="/graphql""#,
            r#"db_pool_connections{state="max"}"#,
            "session_store_errors_total 0",
        ] {
            assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
        }
        if app.backend == Backend::MysqlRedis {
            assert!(text.contains(r#"redis_pool_connections{state="max"}"#), "{text}");
        }
    }

    async fn request_ids_are_set_or_kept(app: TestApp) {
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        let response = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "abc-123");
        let response = app.client.post(app.url("/graphql")).json(&json!({"query": "{ me { id } }"})).send().await.unwrap();
        assert!(response.headers().contains_key("x-request-id"));
    }
}

#[test]
fn help_documents_every_setting_and_its_variable() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_KEY_PREFIX",
        "JWT_ISSUER",
        "JWT_SECRET",
        "ACCESS_TOKEN_TTL",
        "BIND",
        "CORS_ALLOWED_ORIGINS",
        "RUST_LOG",
        "LOG_FORMAT",
    ] {
        assert!(
            help.contains(&format!("[env: {var}")),
            "--help does not document {var}:\n{help}"
        );
    }
    assert!(
        !help.contains("JWT_SECRET="),
        "--help must not print the secret's value"
    );
}

/// Runs the binary with a clean environment plus `args`; returns (success, stderr).
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = crate::operator_output::run_in(dir.path(), args);
    (ok, stderr)
}

#[test]
fn start_up_refuses_bad_settings_with_one_line_naming_the_variable() {
    let cases: &[(&[&str], &str)] = &[
        (&["--jwt-secret", "too-short"], "JWT_SECRET"),
        (
            &["--database-url", "mysql://root@127.0.0.1:9/db"],
            "JWT_SECRET",
        ),
        (&["--access-token-ttl", "soon"], "ACCESS_TOKEN_TTL"),
        (&["--database-url", "postgres://x"], "DATABASE_URL"),
        (&["--bind", "nowhere"], "BIND"),
        (
            &["--cors-allowed-origins", "*,https://a.example"],
            "CORS_ALLOWED_ORIGINS",
        ),
        (&["--log-format", "xml"], "LOG_FORMAT"),
    ];
    for (args, variable) in cases {
        let (ok, stderr) = run_to_exit(args);
        assert!(!ok, "{args:?} started");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: expected one line, got:\n{stderr}"
        );
        assert!(
            lines[0].contains(variable),
            "{args:?}: {} does not name {variable}",
            lines[0]
        );
    }
}

#[test]
fn start_up_refuses_a_guessable_jwt_secret() {
    // BIND is taken, so a server that let such a secret through stops anyway (naming BIND)
    // instead of serving.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let mysql = "mysql://root@127.0.0.1:9/db";
    let weak = [
        "a".repeat(40),
        "changeme".repeat(4),
        "qwertyuiopasdfghjklzxcvbnm123456".to_owned(),
        "my_super_secret_jwt_key_change_me_please".to_owned(),
    ];
    for secret in &weak {
        for database in ["sqlite://data/users.db", mysql] {
            let args = [
                "--jwt-secret",
                secret,
                "--bind",
                &bind,
                "--database-url",
                database,
            ];
            let (ok, stderr) = run_to_exit(&args);
            assert!(!ok, "{args:?} started");
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(
                lines.len(),
                1,
                "{args:?}: expected one line, got:\n{stderr}"
            );
            assert!(
                lines[0].contains("JWT_SECRET"),
                "{args:?}: {} does not name JWT_SECRET",
                lines[0]
            );
        }
    }
    // A random key gets past the check, and stops only at the taken address.
    let random = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let (ok, stderr) = run_to_exit(&["--jwt-secret", &random, "--bind", &bind]);
    assert!(!ok);
    assert!(
        stderr.contains("BIND") && !stderr.contains("JWT_SECRET"),
        "{stderr}"
    );
}

/// A loopback port nothing listens on (now).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ =
                stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not become healthy");
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            "sqlite://data/users.db",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_healthy(port);

    // A slow request: headers and half the body now, the rest after the signal.
    let body = br#"{"query":"{ __typename }"}"#;
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(head).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server exited with a request in flight"
    );

    stream.write_all(tail).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains(r#"{"data":{"__typename":"Query"}}"#),
        "{reply}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting connections"
    );
}
