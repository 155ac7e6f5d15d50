//! What the test files share, by concern: the harness that runs a server per test
//! ([`app`]), the client that calls it ([`client`]) over GraphQL ([`graphql`]) and REST
//! ([`rest`]), access tokens seen from outside ([`tokens`]), the database behind the API
//! ([`db`]), the one macro that runs a test on each backend ([`runner`]), and an SMTP server
//! that records the mails it is sent ([`smtp`]), and an authenticator app ([`totp`]).

pub mod app;
pub mod client;
pub mod db;
pub mod graphql;
pub mod mailbox;
pub mod replicas;
pub mod rest;
mod runner;
pub mod smtp;
pub mod tokens;
pub mod totp;
pub mod ws;

pub use app::{Backend, NO_LIMIT, TestApp, per_hour, per_minute, redis_connection};
pub use graphql::{
    GRAPHQL_RESPONSE, SignIn, assert_batch_refused, assert_no_internals, error_code, error_field,
    error_reason, messages, retry_after,
};
pub(crate) use runner::backend_tests;

/// A password that passes validation.
pub const PASSWORD: &str = "correct horse";
