//! [`backend_tests!`]: the one way the suite runs a test body on each backend.

/// Runs each test body once per backend, as `name::sqlite` and `name::mysql_redis` (a
/// `#[tokio::test]` each: the migration harness blocks in place, so they run multi-threaded).
/// The MySQL + Redis test passes without running where those services are not configured
/// (see [`Backend::is_available`](crate::support::Backend::is_available)).
///
/// A test takes either of two arguments:
/// - `app: TestApp`, a server with the test settings, spawned for it;
/// - `backend: Backend`, for a body that spawns its own servers (with
///   [`TestApp::builder`](crate::support::TestApp::builder)), one or several.
///
/// `#[only(sqlite)]` or `#[only(mysql_redis)]` among a test's attributes keeps it to that
/// backend, for what only one of them has (an unreachable Redis beside SQLite; MySQL's
/// locking and prepared statements).
///
/// ```ignore
/// backend_tests! {
///     /// What it shows.
///     async fn name(app: TestApp) { … }
///
///     #[only(mysql_redis)]
///     async fn other(backend: Backend) {
///         let app = TestApp::builder().db_pool_size(1).spawn(backend).await;
///         …
///     }
/// }
/// ```
macro_rules! backend_tests {
    () => {};
    // Gathers one test's attributes, taking `#[only(…)]` out of them.
    (@test [$($attr:tt)*] [$($only:ident),*] #[only($($backend:ident),+)] $($rest:tt)*) => {
        $crate::support::backend_tests!(@test [$($attr)*] [$($backend),+] $($rest)*);
    };
    (@test [$($attr:tt)*] [$($only:ident),*] #[$meta:meta] $($rest:tt)*) => {
        $crate::support::backend_tests!(@test [$($attr)* #[$meta]] [$($only),*] $($rest)*);
    };
    (@test [$($attr:tt)*] [] async fn $name:ident $args:tt $body:block $($rest:tt)*) => {
        $crate::support::backend_tests!(
            @test [$($attr)*] [sqlite, mysql_redis, mysql_cluster] async fn $name $args $body $($rest)*
        );
    };
    (@test [$($attr:tt)*] [$($backend:ident),+]
        async fn $name:ident($arg:ident: $kind:ident) $body:block $($rest:tt)*) => {
        $($attr)*
        mod $name {
            // The body may use the file's imports and helpers, or none of them: `allow`, as
            // whether the import is used depends on the body.
            #[allow(unused_imports)]
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $backend() {
                    let backend = $crate::support::backend_tests!(@backend $backend);
                    if !backend.is_available() {
                        return;
                    }
                    $crate::support::backend_tests!(@bind $arg: $kind = backend);
                    $body
                }
            )+
        }
        $crate::support::backend_tests!($($rest)*);
    };
    (@backend sqlite) => {
        $crate::support::Backend::Sqlite
    };
    (@backend mysql_redis) => {
        $crate::support::Backend::MysqlRedis
    };
    (@backend mysql_cluster) => {
        $crate::support::Backend::MysqlCluster
    };
    // The type is named as written, so it must be in scope where the test is, as in a real
    // signature.
    (@bind $arg:ident: TestApp = $backend:ident) => {
        let $arg: TestApp = $crate::support::TestApp::spawn($backend).await;
    };
    (@bind $arg:ident: Backend = $backend:ident) => {
        let $arg: Backend = $backend;
    };
    (@ $($unexpected:tt)*) => {
        compile_error!(
            "backend_tests!: expected `async fn name(app: TestApp) { … }` or \
             `async fn name(backend: Backend) { … }`, with `#[only(sqlite)]` or \
             `#[only(mysql_redis)]` (or `mysql_cluster`) at most"
        );
    };
    ($($tests:tt)+) => {
        $crate::support::backend_tests!(@test [] [] $($tests)+);
    };
}

pub(crate) use backend_tests;
