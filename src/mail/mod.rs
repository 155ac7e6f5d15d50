//! Mail: what the server sends and how it gets there.
//!
//! - [`compose`]: the [`Mail`](compose::Mail)s (verification and reset links, and the notices
//!   of an email change, a password change, a disabled account) and the
//!   [`Composer`](compose::Composer) that renders one, from templates built into the binary
//!   or overridden from `MAIL_TEMPLATE_DIR`, into a complete message with both a text and an
//!   HTML body. The message is meant to be stored as it is (in the outbox row written with
//!   the token it carries) and sent as it is, so every retry is the same mail.
//! - [`transport`]: the [`Transport`](transport::Transport) that delivers a stored message,
//!   to the SMTP server of `SMTP_URL` or as `.eml` files in `MAIL_DIR`, and tells a refusal
//!   for good from a failure worth retrying.
//!
//! - [`outbox`]: the table mails wait in, written in the same transaction as the change they
//!   tell of, and the statements the worker claims and settles rows with.
//! - [`delivery`]: the worker of each replica that claims due mails and hands them to the
//!   transport, retrying with backoff.
//!
//! None of it knows about accounts: the flows that decide what to send (`users`) use it from
//! above.

pub mod compose;
pub mod delivery;
pub mod outbox;
pub mod transport;
