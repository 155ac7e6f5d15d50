//! Integration tests: one binary, a `TestApp` harness and one file per feature. Each test body
//! runs on embedded SQLite and, when configured, on MySQL + Redis.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod common;

mod deployment;
mod graphql_core;
mod operations;
mod schema_file;
