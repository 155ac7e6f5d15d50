//! What an operator sees of the binary: the start-up line, the access log, what a broken
//! `.env` or a mistyped command says, and that a maintenance command never creates a
//! database. Each test runs the real binary in a folder of its own with a clean environment.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::operations::{BIN, free_port};

/// Runs the binary to its end in `dir` with `args`; returns (success, stdout, stderr).
pub(crate) fn run_in(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_clear()
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A server started in its own folder, whose log lines arrive on a channel.
struct Server {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary on SQLite with `RUST_LOG=info` and `extra` arguments, its output
    /// piped (not a terminal), and waits for the line saying it listens.
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut child = Command::new(BIN)
            .env_clear()
            .env("RUST_LOG", "info")
            .args(["--bind", &bind, "--database-url", "sqlite://data/users.db"])
            .args(extra)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    if send.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let mut server = Server {
            child,
            port,
            lines,
            seen: Vec::new(),
            _dir: dir,
        };
        server.wait_for("listening");
        server
    }

    /// Waits (10 s at most) for a log line containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line contains {needle:?}; the log so far:\n{}",
            self.seen.join("\n")
        );
    }

    /// Sends `GET path` and returns the status line.
    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: cli-test-1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply.lines().next().unwrap_or_default().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_start_up_line_names_the_database_and_the_generated_secret() {
    let mut server = Server::start(&[]);
    let line = server.wait_for("listening");
    assert!(line.contains("SQLite file data/users.db"), "{line}");
    assert!(
        line.contains("generated now, kept in data/jwt-secret"),
        "{line}"
    );
    // Without SMTP_URL, mails become files, and the operator is told where.
    assert!(line.contains("files in data/mail"), "{line}");
    // Piped, not a terminal: no colour codes anywhere.
    assert!(
        server.seen.iter().all(|l| !l.contains('\u{1b}')),
        "{:?}",
        server.seen
    );
}

#[test]
fn every_request_gets_an_access_log_line() {
    let mut server = Server::start(&[]);
    assert_eq!(server.get("/healthz"), "HTTP/1.1 200 OK");
    let line = server.wait_for("route=/healthz");
    for needle in ["method=GET", "status=200", "duration_ms=", "cli-test-1"] {
        assert!(line.contains(needle), "{needle} missing: {line}");
    }
}

#[test]
fn the_start_up_line_names_the_smtp_server_without_its_password() {
    let mut server = Server::start(&["--smtp-url", "smtps://mailer:hunter2@smtp.example.com:465"]);
    let line = server.wait_for("listening");
    assert!(line.contains("smtp.example.com:465"), "{line}");
    assert!(!line.contains("hunter2"), "the password is logged: {line}");
}

#[test]
fn an_unreachable_redis_is_named_at_start() {
    let mut server = Server::start(&["--redis-url", "redis://:hunter2@127.0.0.1:1/0"]);
    let line = server.wait_for("cannot reach Redis");
    assert!(line.contains("127.0.0.1:1/0"), "{line}");
    assert!(!line.contains("hunter2"), "the password is logged: {line}");
    assert!(line.contains("ERROR"), "{line}");
}

#[test]
fn a_malformed_env_file_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "BIND=127.0.0.1:1\nthis is not a setting\n",
    )
    .unwrap();
    let (ok, _, stderr) = run_in(dir.path(), &["print-schema"]);
    assert!(!ok, "started with a broken .env");
    assert!(stderr.contains(".env"), "{stderr}");
}

#[test]
fn promote_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_in(
        dir.path(),
        &[
            "--database-url",
            "sqlite://data/users.db",
            "promote",
            "alice",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("no database at data/users.db"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "a database folder was made"
    );
}

#[test]
fn command_line_mistakes_are_printed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run_in(dir.path(), &["promote"]);
    assert!(!ok);
    assert!(stderr.contains("<USERNAME>"), "{stderr}");
}
