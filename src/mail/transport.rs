//! Delivering composed messages: to the SMTP server of `SMTP_URL`, or, without one, as `.eml`
//! files in `MAIL_DIR` (the embedded default, so a developer can read what was sent). Either
//! way the stored bytes go out verbatim, so a retry sends the very message (and Message-ID)
//! the first attempt did.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use tokio::io::AsyncWriteExt as _;

use crate::config::MailConfig;

/// Longest error text kept from a failed delivery: it ends up in a database row and a log line.
const MAX_ERROR_CHARS: usize = 500;

/// Where mails go.
pub struct Transport {
    kind: Kind,
    /// The envelope sender: MAIL_FROM's address.
    from: Address,
}

enum Kind {
    Smtp {
        client: AsyncSmtpTransport<Tokio1Executor>,
        /// The whole exchange's limit; the client applies it to each step too.
        timeout: Duration,
        /// The server, without credentials.
        server: String,
    },
    Files {
        dir: PathBuf,
    },
}

/// A delivery that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// `true` when the server refused the mail for good (a 5xx reply, or a recipient that is
    /// not an address): retrying would only be refused again. `false` for what may pass later:
    /// connection failures, time-outs, 4xx replies, a full disk.
    pub permanent: bool,
    /// What went wrong, for the log and the outbox row; never credentials.
    pub message: String,
}

impl SendError {
    fn transient(message: impl fmt::Display) -> SendError {
        SendError {
            permanent: false,
            message: truncate(message.to_string()),
        }
    }

    fn permanent(message: impl fmt::Display) -> SendError {
        SendError {
            permanent: true,
            message: truncate(message.to_string()),
        }
    }
}

fn truncate(mut message: String) -> String {
    if let Some((at, _)) = message.char_indices().nth(MAX_ERROR_CHARS) {
        message.truncate(at);
        message.push('…');
    }
    message
}

impl Transport {
    /// The transport `config` asks for: SMTP when `SMTP_URL` is set, files in `MAIL_DIR`
    /// otherwise (the folder is created, readable by this user only, if missing). Fails if the
    /// folder cannot be created.
    pub fn from_config(config: &MailConfig) -> anyhow::Result<Transport> {
        let kind = match &config.smtp_url {
            Some(url) => Kind::Smtp {
                // The URL was checked when the configuration was read; this cannot fail
                // unless the two disagree, which is worth stopping for.
                client: AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
                    .timeout(Some(config.smtp_timeout))
                    .build(),
                timeout: config.smtp_timeout,
                server: url.describe(),
            },
            None => {
                create_private_dir(&config.dir)
                    .with_context(|| format!("MAIL_DIR {}", config.dir.display()))?;
                Kind::Files {
                    dir: config.dir.clone(),
                }
            }
        };
        Ok(Transport {
            kind,
            from: config.from.email.clone(),
        })
    }

    /// Where mails go, for the start-up log: `SMTP at host:port (TLS)` (never the credentials)
    /// or `files in data/mail`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Smtp { server, .. } => format!("SMTP at {server}"),
            Kind::Files { dir } => format!("files in {}", dir.display()),
        }
    }

    /// Delivers `message` (a whole RFC 5322 message, as composed and stored) to `recipient`,
    /// byte for byte, with MAIL_FROM's address as the envelope sender.
    pub async fn send(&self, recipient: &str, message: &str) -> Result<(), SendError> {
        let to: Address = recipient
            .trim()
            .parse()
            .map_err(|e| SendError::permanent(format!("the recipient is not an address ({e})")))?;
        match &self.kind {
            Kind::Smtp {
                client, timeout, ..
            } => {
                let envelope = Envelope::new(Some(self.from.clone()), vec![to])
                    .map_err(SendError::permanent)?;
                match tokio::time::timeout(*timeout, client.send_raw(&envelope, message.as_bytes()))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => Err(SendError::permanent(e)),
                    Ok(Err(e)) => Err(SendError::transient(e)),
                    Err(_) => Err(SendError::transient(format!(
                        "the SMTP server did not finish within {} s",
                        timeout.as_secs_f64()
                    ))),
                }
            }
            Kind::Files { dir } => write_eml(dir, message)
                .await
                .map(drop)
                .map_err(|e| SendError::transient(format!("{e:#}"))),
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("to", &self.describe())
            .field("from", &self.from)
            .finish()
    }
}

/// Creates `dir` (and its parents) if missing; the folder itself readable by this user only,
/// as the mails in it carry sign-in links.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `message` as a new `.eml` file in `dir`, whole or not at all: into a hidden
/// temporary file first, then renamed, so a reader never sees half a mail. The name starts
/// with the UTC time, so the files sort by when they were written, and ends with a UUIDv7, so
/// two replicas writing at the same instant cannot collide.
async fn write_eml(dir: &Path, message: &str) -> anyhow::Result<PathBuf> {
    let name = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::now_v7().simple()
    );
    let temporary = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let written = async {
        let mut file = options.open(&temporary).await?;
        file.write_all(message.as_bytes()).await?;
        // On disk before it is named: a crash must not leave an empty mail behind.
        file.sync_all().await?;
        tokio::fs::rename(&temporary, &path).await
    }
    .await;
    if let Err(e) = written {
        // Best effort: the temporary file is hidden and harmless if this fails too.
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(args: &[&str]) -> MailConfig {
        let mut all = vec!["user-api"];
        all.extend_from_slice(args);
        Config::try_from_args(all).unwrap().mail
    }

    #[test]
    fn describes_without_credentials() {
        let transport = Transport::from_config(&config(&[
            "--smtp-url",
            "smtps://me:s3cret@mail.example.com",
        ]))
        .unwrap();
        assert_eq!(transport.describe(), "SMTP at mail.example.com:465 (TLS)");
        assert!(!format!("{transport:?}").contains("s3cret"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_private_and_whole() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("nested/mail");
        let mut config = config(&[]);
        config.dir = dir.clone();
        let transport = Transport::from_config(&config).unwrap();
        assert_eq!(transport.describe(), format!("files in {}", dir.display()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        transport
            .send("ann@example.com", "Subject: x\r\n\r\nhi\r\n")
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].extension().is_some_and(|e| e == "eml"));
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&files[0]).unwrap(),
            "Subject: x\r\n\r\nhi\r\n"
        );
    }

    #[tokio::test]
    async fn a_bad_recipient_is_refused_for_good() {
        let root = tempfile::tempdir().unwrap();
        let mut config = config(&[]);
        config.dir = root.path().to_owned();
        let transport = Transport::from_config(&config).unwrap();
        let err = transport
            .send("not an address\r\nRCPT TO:<x@y.example>", "x")
            .await
            .unwrap_err();
        assert!(err.permanent, "{err}");
    }

    #[test]
    fn long_errors_are_cut() {
        let long = SendError::transient("x".repeat(2000));
        assert_eq!(long.message.chars().count(), MAX_ERROR_CHARS + 1);
    }
}
