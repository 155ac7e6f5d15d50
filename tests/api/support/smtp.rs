//! A small SMTP server in the test process, on a spare loopback port: it takes mails the way
//! a relay does (greeting, EHLO/HELO, MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT; 502 for anything else) and records each one. A test can make it refuse some
//! recipients for good (550), stop it and start it again on the same port (an outage), and
//! read what arrived, raw or parsed ([`MailView`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// Which recipients the server refuses.
type Refusal = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One mail the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (MAIL FROM), without the angle brackets.
    pub from: String,
    /// The envelope recipients it accepted (RCPT TO), without the angle brackets.
    pub recipients: Vec<String>,
    /// The message as it arrived, dot-unstuffed, CRLF line ends, without the final `.` line.
    pub data: Vec<u8>,
}

impl Received {
    /// The message, parsed.
    pub fn view(&self) -> MailView {
        MailView::parse(&self.data)
    }

    /// The link to `…/<path>?token=…` in the text body and its token; see
    /// [`MailView::link_with_token`].
    pub fn link_with_token(&self, path: &str) -> Option<(String, String)> {
        self.view().link_with_token(path)
    }
}

/// What a test reads of a message: its main headers and both bodies, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailView {
    /// The decoded `Subject`.
    pub subject: String,
    /// The addresses of `From`.
    pub from: Vec<String>,
    /// The addresses of `To`.
    pub to: Vec<String>,
    /// The `Message-ID`, without the angle brackets.
    pub message_id: Option<String>,
    /// The first text/plain body, decoded.
    pub text: String,
    /// The first text/html body, decoded.
    pub html: String,
    /// Every header of the message, name and raw (undecoded) value, in order.
    pub headers: Vec<(String, String)>,
}

impl MailView {
    /// Parses a whole message (as received, or as written to an `.eml` file). Panics if it is
    /// not one.
    pub fn parse(data: &[u8]) -> MailView {
        let message = mail_parser::MessageParser::default()
            .parse(data)
            .expect("a parsable RFC 5322 message");
        let addresses = |address: Option<&mail_parser::Address>| -> Vec<String> {
            address
                .map(|a| {
                    a.iter()
                        .filter_map(|a| a.address().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        MailView {
            subject: message.subject().unwrap_or_default().to_owned(),
            from: addresses(message.from()),
            to: addresses(message.to()),
            message_id: message.message_id().map(str::to_owned),
            text: message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            html: message
                .body_html(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            headers: message
                .headers_raw()
                .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
                .collect(),
        }
    }

    /// The raw values of the headers called `name` (any letter case).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first link to `…/<path>?token=…` in the text body, whole, and its token. `path`
    /// is the last path segment without slashes, e.g. `verify-email`.
    pub fn link_with_token(&self, path: &str) -> Option<(String, String)> {
        let marker = format!("/{path}?token=");
        let at = self.text.find(&marker)?;
        // The link starts after the whitespace or bracket before it.
        let start = self.text[..at]
            .rfind(|c: char| c.is_whitespace() || matches!(c, '<' | '(' | '"' | '\''))
            .map_or(0, |i| i + 1);
        let token_start = at + marker.len();
        let token_len = self.text[token_start..]
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%' | '.' | '~'))
            })
            .unwrap_or(self.text.len() - token_start);
        let token = &self.text[token_start..token_start + token_len];
        // A sentence may end right after the link.
        let token = token.trim_end_matches('.');
        if token.is_empty() {
            return None;
        }
        let url = &self.text[start..token_start + token.len()];
        Some((url.to_owned(), token.to_owned()))
    }
}

/// What the server and the test share.
#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    refusal: Mutex<Option<Refusal>>,
    arrived: Notify,
}

impl Shared {
    fn refuses(&self, recipient: &str) -> bool {
        let refusal = self.refusal.lock().unwrap().clone();
        refusal.is_some_and(|refuses| refuses(recipient))
    }
}

/// The test SMTP server. Dropping it stops it.
pub struct SmtpServer {
    port: u16,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SmtpServer {
    /// Starts a server on a spare loopback port.
    pub async fn spawn() -> SmtpServer {
        let listener = bind(0).await;
        let port = listener.local_addr().unwrap().port();
        let server = SmtpServer {
            port,
            shared: Arc::default(),
            task: Mutex::new(None),
        };
        server.serve(listener);
        server
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// An `SMTP_URL` for it (plain SMTP, no credentials).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Refuses, with `550`, every recipient for which `refuses` is true (replacing any
    /// earlier rule).
    pub fn refuse_recipients(&self, refuses: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self.shared.refusal.lock().unwrap() = Some(Arc::new(refuses));
    }

    /// Refuses, with `550`, every recipient whose address contains `part`.
    pub fn refuse_recipients_containing(&self, part: &str) {
        let part = part.to_owned();
        self.refuse_recipients(move |recipient| recipient.contains(&part));
    }

    /// Accepts every recipient again.
    pub fn accept_all(&self) {
        *self.shared.refusal.lock().unwrap() = None;
    }

    /// Stops listening and drops every open connection, as a server that went down. Returns
    /// once the port is free.
    pub async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            // The listener and the connections close when the task has ended.
            let _ = task.await;
        }
    }

    /// Listens again on the same port, after [`stop`](Self::stop). What was received before
    /// is kept.
    pub async fn start(&self) {
        self.stop().await;
        let listener = bind(self.port).await;
        self.serve(listener);
    }

    /// Every mail received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` mails have arrived, then returns them all; panics if they do
    /// not within `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so that an arrival in between is not missed.
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "expected {n} mails within {timeout:?}, got {}: {:#?}",
                    received.len(),
                    received
                );
            }
        }
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it ends every connection too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(session(stream, shared.clone()));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// A listener on 127.0.0.1:`port` (0: any spare one), reusable at once after a stop.
async fn bind(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(([127, 0, 0, 1], port).into())
        .unwrap_or_else(|e| panic!("binding the test SMTP server to port {port}: {e}"));
    socket.listen(64).unwrap()
}

/// The address inside `<…>` after a `MAIL FROM:` or `RCPT TO:` verb, parameters dropped.
fn path_argument(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let open = rest.find('<')?;
    let close = rest[open..].find('>')? + open;
    Some(rest[open + 1..close].to_owned())
}

/// One SMTP session.
async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    macro_rules! reply {
        ($text:expr) => {
            if write.write_all($text.as_bytes()).await.is_err() {
                return;
            }
        };
    }
    reply!("220 localhost test SMTP server ready\r\n");
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let upper = command.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default();
        match verb {
            "EHLO" => reply!("250-localhost greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"),
            "HELO" => reply!("250 localhost\r\n"),
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                match path_argument(&command["MAIL FROM:".len()..]) {
                    Some(sender) => {
                        from = Some(sender);
                        recipients.clear();
                        reply!("250 2.1.0 OK\r\n");
                    }
                    None => reply!("501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
                }
            }
            "RCPT" if upper.starts_with("RCPT TO:") => {
                if from.is_none() {
                    reply!("503 5.5.1 MAIL first\r\n");
                    continue;
                }
                match path_argument(&command["RCPT TO:".len()..]) {
                    Some(recipient) if shared.refuses(&recipient) => {
                        reply!("550 5.1.1 Mailbox unavailable\r\n");
                    }
                    Some(recipient) => {
                        recipients.push(recipient);
                        reply!("250 2.1.5 OK\r\n");
                    }
                    None => reply!("501 5.5.4 Syntax: RCPT TO:<address>\r\n"),
                }
            }
            "DATA" => {
                if recipients.is_empty() {
                    reply!("503 5.5.1 RCPT first\r\n");
                    continue;
                }
                reply!("354 End data with <CR><LF>.<CR><LF>\r\n");
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    match lines.read_until(b'\n', &mut raw).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if raw == b".\r\n" || raw == b".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2): a leading dot was doubled.
                    let unstuffed = raw.strip_prefix(b".").unwrap_or(&raw);
                    data.extend_from_slice(unstuffed);
                }
                let mail = Received {
                    from: from.take().unwrap_or_default(),
                    recipients: std::mem::take(&mut recipients),
                    data,
                };
                shared.received.lock().unwrap().push(mail);
                shared.arrived.notify_waiters();
                reply!("250 2.0.0 OK queued\r\n");
            }
            "RSET" => {
                from = None;
                recipients.clear();
                reply!("250 2.0.0 OK\r\n");
            }
            "NOOP" => reply!("250 2.0.0 OK\r\n"),
            "QUIT" => {
                reply!("221 2.0.0 Bye\r\n");
                return;
            }
            _ => reply!("502 5.5.2 Command not implemented\r\n"),
        }
    }
}
