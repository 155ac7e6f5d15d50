//! The database: one pool per backend behind the [`DbPool`] enum, the
//! [`with_conn!`](crate::with_conn) macro that runs one query body on either, and the embedded
//! migrations.
//!
//! diesel's `MultiConnection` does not cover async connections, so the enum and the macro stand
//! in for it: the macro expands its body once per variant, and each arm type-checks against its
//! own backend.

pub mod migrations;
pub mod prepared;
pub mod replicas;
pub mod retry;
pub mod schema;

use anyhow::Context as _;
use diesel::SqliteConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, SetupCallback,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMysqlConnection};
use futures_util::FutureExt as _;

use crate::config::{DatabaseConfig, DatabaseUrl};
use crate::infra::pool::{self as checked, CheckedPool, builder};

/// The embedded SQLite connection, run on the blocking pool by diesel-async.
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// A bb8 pool of connections of type `C`.
pub type Pool<C> = CheckedPool<AsyncDieselConnectionManager<C>>;

/// The database pool; the URL scheme picks the variant at start-up.
#[derive(Clone)]
pub enum DbPool {
    /// MySQL (or MariaDB).
    Mysql(Pool<AsyncMysqlConnection>),
    /// The embedded SQLite file.
    Sqlite(Pool<SqliteConn>),
}

impl std::fmt::Debug for DbPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbPool::Mysql(_) => "DbPool::Mysql",
            DbPool::Sqlite(_) => "DbPool::Sqlite",
        })
    }
}

/// Why a database call failed: no connection could be had, or the statement failed. The
/// domain decides what each means to a client (`AppError`'s `From<DbError>`).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection within the pool's time-out, or the database refused one.
    #[error("no database connection: {0}")]
    Checkout(#[source] anyhow::Error),
    /// The statement (or the transaction the body ran) failed.
    #[error(transparent)]
    Query(#[from] DieselError),
}

impl DbError {
    /// Whether a unique index refused the write (a username or email taken meanwhile).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Runs `body` with `c` bound to a pooled connection of whichever backend `pool` holds.
///
/// `body` is a diesel-async expression yielding `QueryResult<T>`; the macro yields
/// `Result<T, DbError>`. A connection whose query failed as a dead connection would is
/// dropped from the pool, and so is one whose body never finished (its future was dropped
/// when the client went away; see [`checked::CheckedConn::start`]). A body that lost a lock
/// conflict (a MySQL deadlock or lock-wait time-out) runs again, a few times at most (see
/// [`retry`]), so the body must build its query anew each time rather than move one in.
#[macro_export]
macro_rules! with_conn {
    ($pool:expr, |$c:ident| $body:expr) => {{
        let mut retries = $crate::db::retry::LockRetries::default();
        loop {
            let result = match $pool {
                $crate::db::DbPool::Mysql(pool) => {
                    let mut guard = pool.get().await.map_err($crate::db::checkout_error)?;
                    guard.start();
                    let $c = &mut guard.conn;
                    let result = $body;
                    $crate::db::finish(&mut guard, result)
                }
                $crate::db::DbPool::Sqlite(pool) => {
                    let mut guard = pool.get().await.map_err($crate::db::checkout_error)?;
                    guard.start();
                    let $c = &mut guard.conn;
                    let result = $body;
                    $crate::db::finish(&mut guard, result)
                }
            };
            match result {
                Err(err) if retries.again(&err).await => continue,
                other => break other.map_err($crate::db::DbError::Query),
            }
        }
    }};
}

/// A pool checkout failure (time-out, or the database refusing connections).
pub fn checkout_error<E: std::error::Error + Send + Sync + 'static>(
    err: checked::CheckoutError<E>,
) -> DbError {
    DbError::Checkout(err.into())
}

/// Whether `err` says the connection it ran on may be dead (lost, closed, or left in a state
/// no later statement can use): such a connection is dropped rather than reused. A lost lock
/// conflict is not: the server rolled back and the connection is fine.
pub fn is_dead_connection(err: &DieselError) -> bool {
    !retry::is_lock_conflict(err)
        && matches!(
            err,
            DieselError::DatabaseError(
                DatabaseErrorKind::Unknown
                    | DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand,
                _
            ) | DieselError::BrokenTransactionManager
        )
}

/// Whether `err` is an outage a later retry can cure rather than a bug: a dead connection
/// (the drivers also report SQLite's "database is locked" that way), or a lock conflict that
/// outlasted its retries.
pub fn is_transient(err: &DieselError) -> bool {
    is_dead_connection(err) || retry::is_lock_conflict(err)
}

/// Ends the exchange begun in [`with_conn!`](crate::with_conn), and marks the connection
/// broken when `result` says it may be dead.
pub fn finish<C, T>(
    conn: &mut checked::CheckedConn<C>,
    result: diesel::QueryResult<T>,
) -> diesel::QueryResult<T> {
    conn.finished();
    if let Err(err) = &result
        && is_dead_connection(err)
    {
        conn.mark_broken();
    }
    result
}

/// SQLite settings applied to every new connection: WAL lets readers run beside the one
/// writer, and busy_timeout makes a writer wait for the lock instead of failing at once. The
/// time-out comes first: switching to WAL takes a lock too, and connections opened at the
/// same moment would otherwise fail on it.
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Connections per pool unless `DB_POOL_SIZE` says otherwise. A pool caps how much work the
/// database runs at once, and more statements at once in a database on the same few cores
/// stretch every request's tail; bench/RESULTS.md has the sizes measured. Connections open
/// on demand, so an idle server holds few.
pub const DEFAULT_POOL_SIZE: u32 = 8;

/// Builds the pool for `config` without connecting; the first request or the migration
/// step connects. A missing SQLite folder and file are created, private to the server's user.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<DbPool> {
    match &config.url {
        DatabaseUrl::Mysql(url) => Ok(mysql_pool(url, config)),
        DatabaseUrl::Sqlite(path) => {
            ensure_sqlite_file(&config.url).await?;
            let mut manager_config = ManagerConfig::<SqliteConn>::default();
            manager_config.recycling_method = RecyclingMethod::Fast;
            manager_config.custom_setup = set_up_with(SQLITE_SETUP);
            let manager =
                AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, manager_config);
            let size = config.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
            Ok(DbPool::Sqlite(CheckedPool::build(
                builder(size, config.pool_timeout),
                manager,
            )))
        }
    }
}

/// MySQL settings applied to every new connection. The last-admin guards (and the other
/// conditional writes whose subqueries read the table they change) are race-free under
/// REPEATABLE READ, InnoDB's default, whose locking reads they rely on; a server configured
/// for READ COMMITTED would let two admins demote each other at once. Pinned here rather than
/// assumed. Both MySQL 8 and MariaDB accept the statement.
const MYSQL_SETUP: &str = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ";

/// A pool of connections to the MySQL server at `url`, sized and timed as `config` says;
/// nothing connects until a connection is asked for.
pub fn mysql_pool(url: &str, config: &DatabaseConfig) -> DbPool {
    let mut manager_config = ManagerConfig::<AsyncMysqlConnection>::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = set_up_with(MYSQL_SETUP);
    let manager =
        AsyncDieselConnectionManager::<AsyncMysqlConnection>::new_with_config(url, manager_config);
    let size = config.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    DbPool::Mysql(CheckedPool::build(
        builder(size, config.pool_timeout),
        manager,
    ))
}

/// A pool's way to open a connection: connect, then run `setup` on it before first use.
fn set_up_with<C: AsyncConnection + 'static>(setup: &'static str) -> SetupCallback<C> {
    Box::new(move |url| {
        async move {
            let mut conn = C::establish(url).await?;
            conn.batch_execute(setup)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    })
}

/// Creates the folder of a SQLite file if it is missing, readable by the server's user only
/// (see [`create_private_dir`]).
pub async fn ensure_sqlite_dir(url: &DatabaseUrl) -> anyhow::Result<()> {
    if let Some(dir) = url.sqlite_dir().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(&dir)
            .await
            .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
    }
    Ok(())
}

/// Creates `dir` (and any missing parents) with mode 0700 when it does not exist: it holds
/// every user's data and, with SQLite, the generated JWT secret. A folder that exists is left
/// as it is, since its owner may have opened it to a group on purpose.
pub async fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if tokio::fs::try_exists(dir).await? {
        return Ok(());
    }
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).await
}

/// Creates the folder of a SQLite file and, when missing, the file itself, empty and with mode
/// 0600, before SQLite opens it: SQLite would create it with 0644 (less the umask), and it
/// gives the `-wal` and `-shm` files it makes later the mode of the database file. An existing
/// file keeps its mode. A `file:` URI is left to SQLite, as its path is not a plain file name.
pub async fn ensure_sqlite_file(url: &DatabaseUrl) -> anyhow::Result<()> {
    ensure_sqlite_dir(url).await?;
    let DatabaseUrl::Sqlite(path) = url else {
        return Ok(());
    };
    if path.starts_with("file:") {
        return Ok(());
    }
    let mut options = tokio::fs::OpenOptions::new();
    // Not `truncate`: an existing database must be opened as it is.
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(path)
        .await
        .with_context(|| format!("cannot create the database file {path}"))?;
    Ok(())
}

impl DbPool {
    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DbError> {
        use diesel::IntoSql as _;
        use diesel_async::RunQueryDsl as _;
        let one = diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>());
        with_conn!(self, |c| one.get_result::<i32>(c).await).map(|_| ())
    }

    /// Connections in use and idle.
    pub fn state(&self) -> bb8::State {
        match self {
            DbPool::Mysql(p) => p.state(),
            DbPool::Sqlite(p) => p.state(),
        }
    }

    /// The pool's size.
    pub fn max_size(&self) -> u32 {
        match self {
            DbPool::Mysql(p) => p.max_size(),
            DbPool::Sqlite(p) => p.max_size(),
        }
    }
}
