//! Load for user-api's subscriptions, driven by `bench/subscriptions.py`.
//!
//! - `ws-load idle <ws-url> <token-file> <per-token>`: opens `per-token` connections for each
//!   token in the file (one per line), each signed in and subscribed to `accountEvents`;
//!   prints `ready <n>`, then waits. Each line read on stdin afterwards (an account index) is
//!   answered with how many connections of that account heard an event since the last line
//!   (`heard <n>`), so the driver can check they are alive. Stdin closed: exits.
//! - `ws-load fanout <ws-url> <http-url> <token> <subscribers> <rounds>`: opens `subscribers`
//!   connections of one account, then `rounds` times changes the account's email over HTTP
//!   and times, for each subscriber, from just before the request to the event's arrival.
//!   Prints the latencies' percentiles as JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SUBSCRIPTION: &str = "subscription { accountEvents { kind } }";

/// Connects, signs in with `token`, subscribes; retries a refused handshake a few times.
async fn subscribe(url: &str, token: &str) -> Result<Socket, Error> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    socket.send(Message::text(init.to_string())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => break,
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => {
                return Err(Error::Io(std::io::Error::other(format!(
                    "no ack: {other:?}"
                ))));
            }
        }
    }
    let subscribe = json!({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}});
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

/// Reads `socket` until it closes, answering pings, calling `heard` for each event.
async fn listen(mut socket: Socket, heard: impl Fn()) {
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Text(text) = message {
            if text.contains(r#""type":"next""#) {
                heard();
            } else if text.contains(r#""type":"ping""#) {
                let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
            }
        }
    }
}

/// Opens `count` connections per token, at most 64 handshakes at once.
async fn open_all(url: &str, tokens: &[String], per_token: usize) -> Vec<(usize, Socket)> {
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        for _ in 0..per_token {
            let (url, token, gate) = (url.to_owned(), token.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                for attempt in 0.. {
                    match subscribe(&url, &token).await {
                        Ok(socket) => return (index, socket),
                        Err(e) if attempt < 5 => {
                            eprintln!("retrying a connection: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => panic!("cannot subscribe: {e}"),
                    }
                }
                unreachable!()
            }));
        }
    }
    let mut sockets = Vec::with_capacity(tasks.len());
    for task in tasks {
        sockets.push(task.await.expect("a connection task"));
    }
    sockets
}

async fn idle(url: &str, token_file: &str, per_token: usize) {
    let tokens: Vec<String> = std::fs::read_to_string(token_file)
        .expect("the token file")
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    let sockets = open_all(url, &tokens, per_token).await;
    let counters: Arc<Vec<AtomicUsize>> =
        Arc::new((0..tokens.len()).map(|_| AtomicUsize::new(0)).collect());
    let total = sockets.len();
    for (index, socket) in sockets {
        let counters = counters.clone();
        tokio::spawn(listen(socket, move || {
            counters[index].fetch_add(1, Ordering::Relaxed);
        }));
    }
    println!("ready {total}");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let index: usize = line.trim().parse().expect("an account index");
        // Events arrive within milliseconds; wait a little for the last ones.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let heard = counters[index].swap(0, Ordering::Relaxed);
        println!("heard {heard}");
    }
}


/// One HTTP/1.1 POST of `body` to `http_url` (`http://host:port/path`) with `token`.
async fn post(http_url: &str, token: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = http_url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

async fn fanout(url: &str, http_url: &str, token: &str, subscribers: usize, rounds: usize) {
    let sockets = open_all(url, &[token.to_owned()], subscribers).await;
    let (arrivals, mut arrived) = mpsc::unbounded_channel::<Instant>();
    for (_, socket) in sockets {
        let arrivals = arrivals.clone();
        tokio::spawn(listen(socket, move || {
            let _ = arrivals.send(Instant::now());
        }));
    }
    // Every subscription is running once each one heard a first event.
    let warm = json!({"query": "mutation($e: String!) { updateMe(input: {email: $e}) { id } }", "variables": {"e": "fanout-warm@example.com"}}).to_string();
    post(http_url, token, &warm).await;
    for _ in 0..subscribers {
        tokio::time::timeout(Duration::from_secs(10), arrived.recv())
            .await
            .expect("every subscriber heard the warm-up event");
    }
    let mut latencies = Vec::with_capacity(subscribers * rounds);
    let mut lasts = Vec::with_capacity(rounds);
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = json!({"query": "mutation($e: String!) { updateMe(input: {email: $e}) { id } }", "variables": {"e": format!("fanout-{round}@example.com")}}).to_string();
        let sent = Instant::now();
        let answer = post(http_url, token, &body).await;
        assert!(answer.contains("updateMe"), "the change failed: {answer}");
        let mut last = Duration::ZERO;
        for _ in 0..subscribers {
            let at = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
                .await
                .expect("every subscriber heard the event")
                .expect("the channel is open");
            let latency = at - sent;
            last = last.max(latency);
            latencies.push(latency);
        }
        lasts.push(last);
    }
    latencies.sort();
    lasts.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let pct = |p: f64| ms(latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    let report: Value = json!({
        "subscribers": subscribers,
        "rounds": rounds,
        "deliveries": latencies.len(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": ms(*latencies.last().expect("deliveries")),
        "last_delivery_median_ms": ms(lasts[lasts.len() / 2]),
    });
    println!("{report}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().expect("see the module's text for the arguments");
    match arg(1).as_str() {
        "idle" => idle(&arg(2), &arg(3), arg(4).parse().expect("a count")).await,
        "fanout" => {
            fanout(
                &arg(2),
                &arg(3),
                &arg(4),
                arg(5).parse().expect("a count"),
                arg(6).parse().expect("a count"),
            )
            .await
        }
        other => panic!("unknown mode {other}"),
    }
}
