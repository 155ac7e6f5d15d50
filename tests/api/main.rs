//! Integration tests: one binary, a `TestApp` harness and one file per feature. Each test body
//! runs on embedded SQLite and, when configured, on MySQL + Redis.

#![expect(
    clippy::expect_used,
    reason = "a failed expectation in a test helper fails the test, with its message; \
              clippy's allow-expect-in-tests covers test functions only"
)]

mod common;

mod graphql_auth;
mod graphql_core;
mod graphql_http;
mod graphql_outage;
mod graphql_support;
mod graphql_users;
mod graphql_validation;
