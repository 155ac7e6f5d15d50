//! Integration tests: one binary, a `TestApp` harness and one file per feature. Each test body
//! runs on embedded SQLite and, when configured, on MySQL + Redis.

mod common;

mod graphql_auth;
mod graphql_core;
mod graphql_http;
mod graphql_outage;
mod graphql_support;
mod graphql_users;
mod graphql_validation;
