//! Integration tests: one binary, the shared `support` module (a `TestApp` harness, its
//! clients and the `backend_tests!` runner) and one file per feature. Each test body runs on
//! embedded SQLite and, when configured, on MySQL + Redis.

// clippy.toml's test allowance covers #[test] functions only, not the helpers around them; a
// helper that cannot set up or read a reply should fail the test loudly. `allow` rather than
// `expect`: whether some helper happens to unwrap today should not break the lint run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cancellation;
mod deployment;
mod graphql_adapter;
mod graphql_auth;
mod graphql_core;
mod graphql_http;
mod graphql_outage;
mod graphql_persisted;
mod graphql_relay;
mod graphql_subscriptions;
mod graphql_users;
mod graphql_validation;
mod lifecycle_email;
mod mail_delivery;
mod mail_transport;
mod mfa;
mod operations;
mod operator_output;
mod rest_openapi;
mod rest_users;
mod robustness;
mod schema_file;
mod security_deadlocks;
mod security_docs;
mod security_files;
mod security_graphql_limits;
mod security_http;
mod security_injection;
mod security_lockout;
mod security_passwords;
mod security_races;
mod security_rate_limits;
mod security_tokens;

// Roles, sessions and refresh tokens.
mod admin_disable;
mod isolation;
mod refresh;
mod roles;
mod scale_mysql;
mod scale_redis;
mod sessions;
mod statements;
mod tokens;
mod users_filter;
