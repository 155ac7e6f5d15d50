//! The `user-api` binary: parse the command line, load the configuration, start logging and
//! run the chosen subcommand (the server by default).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;
use user_api::config::{Cli, Command, Config, LogFormat};
use user_api::{AppState, app, db, graphql, rest, users, web};

/// mimalloc rather than glibc's allocator: 17% fewer instructions per request (bench/RESULTS.md).
/// Built without transparent huge pages (Cargo.toml), which raised idle RSS from 21 to 31 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is reported by the settings it breaks.
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                err.exit();
            }
            // One line that names the flag and its variable, e.g. `--access-token-ttl <ACCESS_TOKEN_TTL>`.
            let text = err.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid configuration"));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::PrintSchema) => {
            print!("{}", graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Some(Command::Openapi) => {
            return match rest::openapi().to_pretty_json() {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot write the OpenAPI document: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    init_tracing(&cli.config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Migrate) => migrate(&cli.config).await,
            Some(Command::Healthcheck) => web::health::probe(cli.config.http.bind).await,
            Some(Command::Promote { username }) => promote(&cli.config, &username).await,
            _ => serve(cli.config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let applied = db::migrations::run(&config.database.url).await?;
    tracing::info!(applied, "migrations are up to date");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.http.bind;
    // Settings are checked (state built, nothing connected yet) before anything touches the
    // database, so a bad secret is reported as such rather than as a connection failure.
    let state = AppState::build(config).await?;
    migrate(&state.config).await?;
    let _maintenance = state.sign_ins.spawn_maintenance();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on BIND={bind}"))?;
    tracing::info!(
        address = %bind,
        sessions = state.sign_ins.store_kind(),
        "listening; GraphiQL at http://{bind}/graphiql, Swagger UI at http://{bind}/docs"
    );
    let http = state.config.http.clone();
    user_api::serve(listener, app(state), &http, shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `user-api promote <username>`: makes an existing user an ADMIN. Needs only the database
/// (not the JWT secret or Redis), so an operator can run it with nothing but DATABASE_URL.
async fn promote(config: &Config, username: &str) -> anyhow::Result<()> {
    migrate(config).await?;
    let db = db::connect(&config.database).await?;
    match users::promote(&db, username).await {
        Ok((user, true)) => println!("{} ({}) is now an ADMIN", user.username, user.id),
        Ok((user, false)) => println!("{} ({}) was already an ADMIN", user.username, user.id),
        Err(user_api::error::AppError::NotFound(_)) => {
            anyhow::bail!("no user is named {username:?}")
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    }
    Ok(())
}
