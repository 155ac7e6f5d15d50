//! The `user-api` binary: parse the command line, load the configuration, start logging and
//! run the chosen subcommand (the server by default).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;
use user_api::config::{Cli, Command, Config, DatabaseUrl, LogFormat, without_credentials};
use user_api::state::SecretOrigin;
use user_api::{AppState, app, db, graphql, rest, users, web};

/// mimalloc rather than glibc's allocator: fewer instructions per request. Built without
/// transparent huge pages (Cargo.toml), which cost idle memory. bench/RESULTS.md has both
/// measurements.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A missing .env is normal; one that cannot be read is not, since the server would
    // otherwise start on defaults the operator did not mean (another address, another
    // database).
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            eprintln!("error: cannot read .env: {e}");
            return ExitCode::from(2);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            // A bad value: one line that names the flag and its variable, e.g.
            // `--access-token-ttl <ACCESS_TOKEN_TTL>`. Anything else (a missing argument, an
            // unknown flag, help) as clap writes it, whole.
            if !matches!(
                err.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) {
                err.exit();
            }
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
    // Colour codes only for a person at a terminal, not in files and log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
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
    let _background = state.spawn_background();
    check_session_store(&state).await;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on BIND={bind}"))?;
    let jwt_secret = match &state.secret_origin {
        SecretOrigin::Configured => "JWT_SECRET".to_owned(),
        SecretOrigin::File(path) => format!("kept in {}", path.display()),
        SecretOrigin::Generated(path) => format!("generated now, kept in {}", path.display()),
    };
    tracing::info!(
        address = %bind,
        database = %state.config.database.url.describe(),
        sessions = state.sign_ins.store_kind(),
        jwt_secret,
        mail = %state.mail_transport.describe(),
        "listening; GraphiQL at http://{bind}/graphiql, Swagger UI at http://{bind}/docs"
    );
    if state.config.auth.mfa_encryption_key.is_none()
        && matches!(state.config.database.url, DatabaseUrl::Mysql(_))
    {
        tracing::warn!(
            "MFA_ENCRYPTION_KEY is unset: TOTP secrets are encrypted under a key derived from JWT_SECRET, so changing JWT_SECRET would make every enrolled authenticator unreadable; set MFA_ENCRYPTION_KEY (e.g. `openssl rand -hex 32`)"
        );
    }
    let http = state.config.http.clone();
    let stopping = state.clone();
    let shutdown = async move {
        shutdown_signal().await;
        stopping.stop();
    };
    user_api::serve(listener, app(state), &http, shutdown).await;
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

/// Logs an error naming Redis when the session store cannot be reached at start: the server
/// still starts (Redis may come up later, and readiness says it is down meanwhile), but an
/// operator should not have to find out from failing sign-ins.
async fn check_session_store(state: &AppState) {
    let Some(url) = &state.config.redis.url else {
        return;
    };
    if let Err(e) = state.sign_ins.ping_store().await {
        tracing::error!(
            redis = without_credentials(url),
            error = %format!("{:#}", anyhow::Error::new(e)),
            "cannot reach Redis (REDIS_URL); sign-ins answer 503 until it can be reached"
        );
    }
}

/// `user-api promote <username>`: makes an existing user an ADMIN. Needs only the database
/// (not the JWT secret or Redis), so an operator can run it with nothing but DATABASE_URL. It
/// never creates a database: run from the wrong folder, it says there is none.
async fn promote(config: &Config, username: &str) -> anyhow::Result<()> {
    if let DatabaseUrl::Sqlite(path) = &config.database.url
        && !path.starts_with("file:")
        && !tokio::fs::try_exists(path).await.unwrap_or(false)
    {
        anyhow::bail!(
            "there is no database at {path} (DATABASE_URL); run this where the server runs, or start the server once to create it"
        );
    }
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
