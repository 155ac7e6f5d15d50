//! The files of the embedded database are private to the server's user: the data folder it
//! creates is 0700, and `users.db`, its `-wal` and the generated `jwt-secret` are 0600,
//! whichever of the migration step and the state is the first to touch the folder (the test
//! harness migrates first; `user-api serve` builds the state first).

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_json::json;
use user_api::config::Config;
use user_api::{AppState, app, db};

/// The permission bits of `path`, in octal digits (`"600"`).
fn mode(path: &Path) -> String {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    format!("{:o}", mode & 0o777)
}

/// Starts a server on a fresh sub-folder, `migrate_first` or not, registers a user (a write,
/// so the WAL file exists), and checks the modes while the server still holds the database.
async fn check(migrate_first: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let database = dir.join("users.db");
    let config = Config::try_from_args([
        "user-api".to_owned(),
        "--database-url".to_owned(),
        format!("sqlite://{}", database.display()),
    ])
    .unwrap();
    let state = if migrate_first {
        db::migrations::run(&config.database.url).await.unwrap();
        AppState::build(config).await.unwrap()
    } else {
        let state = AppState::build(config).await.unwrap();
        db::migrations::run(&state.config.database.url)
            .await
            .unwrap();
        state
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }",
            "variables": {"i": {"username": "files", "email": "files@example.com", "password": "correct horse"}}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["data"]["register"]["user"]["id"].is_string(), "{body}");

    let order = if migrate_first {
        "migrate first"
    } else {
        "state first"
    };
    assert_eq!(mode(&dir), "700", "{order}: the data folder");
    for file in ["users.db", "users.db-wal", "users.db-shm", "jwt-secret"] {
        assert_eq!(mode(&dir.join(file)), "600", "{order}: {file}");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private_when_migrations_run_first() {
    check(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private_when_the_state_is_built_first() {
    check(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_folder_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let url = format!("sqlite://{}", dir.join("users.db").display());
    let config = Config::try_from_args(["user-api", "--database-url", &url]).unwrap();
    db::migrations::run(&config.database.url).await.unwrap();
    assert_eq!(mode(&dir), "750", "the operator's folder is left as it was");
    assert_eq!(mode(&dir.join("users.db")), "600");
}
