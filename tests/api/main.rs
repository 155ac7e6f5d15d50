//! Integration tests: one binary, a `TestApp` harness and one file per feature. Each test body
//! runs on embedded SQLite and, when configured, on MySQL + Redis.

mod common;

mod graphql_core;
mod schema_file;
