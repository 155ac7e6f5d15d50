//! Migrations embedded in the binary, one folder per backend, applied at start-up and by the
//! `migrate` subcommand.

use anyhow::Context as _;
use diesel::Connection as _;
use diesel_async::{AsyncConnection as _, AsyncMigrationHarness, AsyncMysqlConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

/// MySQL migrations.
pub const MYSQL: EmbeddedMigrations = embed_migrations!("migrations/mysql");
/// SQLite migrations.
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Applies every pending migration; returns how many ran.
///
/// diesel's migration harness is synchronous, so this blocks a runtime thread while it runs:
/// it needs the multi-threaded runtime.
pub async fn run(url: &DatabaseUrl) -> anyhow::Result<usize> {
    match url {
        DatabaseUrl::Mysql(url) => {
            let conn = AsyncMysqlConnection::establish(url)
                .await
                .context("cannot connect to the database at DATABASE_URL")?;
            let mut harness = AsyncMigrationHarness::new(conn);
            let done = tokio::task::block_in_place(|| {
                harness.run_pending_migrations(MYSQL).map(|v| v.len())
            })
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
            Ok(done)
        }
        DatabaseUrl::Sqlite(path) => {
            super::ensure_sqlite_file(url).await?;
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut conn = diesel::SqliteConnection::establish(&path).with_context(|| {
                    format!("cannot open the SQLite database at DATABASE_URL ({path})")
                })?;
                conn.run_pending_migrations(SQLITE)
                    .map(|v| v.len())
                    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))
            })
            .await
            .context("the migration task failed")?
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn names(dir: &str) -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let mysql = names(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/mysql"));
        let sqlite = names(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"));
        assert!(!mysql.is_empty());
        assert_eq!(mysql, sqlite);
    }
}
