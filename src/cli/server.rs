//! `gatehouse server …`: run the central server, create the first administrator.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::central::api::auth::{Role, check_password_strength, hash_password_blocking};
use crate::central::api::error::{Fields, Lang};
use crate::central::api::{AppState, app};
use crate::central::config::ServerConfig;
use crate::central::db::{Actor, Db};
use crate::central::repo::operators::{self, NewOperator};

#[derive(Debug, Subcommand)]
pub(super) enum ServerCommand {
    /// Run the central server: apply database migrations (refusing a schema newer than this
    /// binary), then serve the admin API under /api/v1 until Ctrl-C or SIGTERM.
    Run {
        /// The server configuration file (see examples/server.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Create an administrator. The password is read from GATEHOUSE_ADMIN_PASSWORD or, if that
    /// is not set, from the first line of standard input; it is never printed.
    CreateAdmin {
        /// The server configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The administrator's user name.
        #[arg(long, default_value = "admin")]
        username: String,
        /// The name shown in the console.
        #[arg(long, default_value = "系统管理员")]
        display_name: String,
    },
}

pub(super) async fn run(cmd: ServerCommand) -> anyhow::Result<()> {
    match cmd {
        ServerCommand::Run { config } => run_server(&config).await,
        ServerCommand::CreateAdmin {
            config,
            username,
            display_name,
        } => create_admin(&config, username, display_name).await,
    }
}

async fn open_db(config: &ServerConfig) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.server.data_dir.display()
        )
    })?;
    Ok(Db::open(config.database_url().expose()).await?)
}

async fn run_server(path: &Path) -> anyhow::Result<()> {
    let config = ServerConfig::load(path)?;
    let db = open_db(&config).await?;
    let mut state = AppState::new(db.clone());
    state.session_ttl_ms = i64::from(config.server.session_hours) * 3_600_000;
    state.secure_cookies = config.server.secure_cookies;
    state.retention = config.retention;
    // The daily purge of passage events past the kept days; ends with the process.
    let purge = tokio::spawn(crate::central::retention::run_daily(
        db.clone(),
        config.retention,
    ));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        database = ?db.kind(),
        "central server running"
    );
    if operators::count(&db).await? == 0 {
        tracing::warn!("no operator exists yet: run `gatehouse server create-admin`");
    }
    let shutdown = async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match terminate.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    purge.abort();
    db.close().await;
    tracing::info!("central server stopped");
    Ok(())
}

async fn create_admin(path: &Path, username: String, display_name: String) -> anyhow::Result<()> {
    let config = ServerConfig::load(path)?;
    let password = match std::env::var("GATEHOUSE_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    let mut f = Fields::new();
    check_password_strength(&password, "password", &mut f);
    if let Err(e) = f.finish() {
        let body = e.body(Lang::En);
        let reason = body
            .fields
            .and_then(|f| f.into_iter().next())
            .map(|f| f.message)
            .unwrap_or(body.message);
        anyhow::bail!("the administrator's password is too weak: {reason}");
    }
    let db = open_db(&config).await?;
    let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
    let op = operators::create(
        &db,
        &Actor::system(),
        NewOperator {
            username,
            display_name,
            password_hash: hash,
            roles: vec![Role::Admin.as_str().into()],
            gates: vec![],
            department: String::new(),
        },
    )
    .await
    .map_err(|e| match e {
        crate::central::db::RepoError::Conflict(_) => {
            anyhow::anyhow!("an operator with that user name already exists")
        }
        other => other.into(),
    })?;
    println!("administrator {} created (id {})", op.username, op.id);
    db.close().await;
    Ok(())
}
