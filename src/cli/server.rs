//! `gatehouse server …`: run the central server, create the first administrator, back up and
//! restore its SQLite database.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::central::api::auth::{Role, check_password};
use crate::central::api::error::Fields;
use crate::central::config::ServerConfig;
use crate::central::db::{Actor, Db};
use crate::central::repo::operators::{self, NewOperator};
use crate::central::state::AppState;
use crate::i18n::Lang;
use crate::password::hash_password_blocking;

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
    /// Back up the SQLite database while the server runs (a consistent copy, SQLite's VACUUM
    /// INTO). For PostgreSQL use pg_dump (see the README).
    Backup {
        /// The server configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The backup file to write; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore the SQLite database from a backup. The server must be stopped (refused while its
    /// listen address is in use); the current database is moved aside, not deleted.
    Restore {
        /// The server configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The backup file to restore.
        #[arg(long)]
        from: PathBuf,
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
        ServerCommand::Backup { config, to } => {
            let db = sqlite_file(&ServerConfig::load(&config)?)?;
            crate::backup::backup(&db, &to).await?;
            say!("backed up {} to {}", db.display(), to.display())?;
            Ok(())
        }
        ServerCommand::Restore { config, from } => restore(&config, &from).await,
    }
}

/// The SQLite file of a configuration; PostgreSQL is refused with the advice to use its tools.
fn sqlite_file(config: &ServerConfig) -> anyhow::Result<PathBuf> {
    let url = config.database_url();
    let Some(rest) = url.expose().strip_prefix("sqlite://") else {
        anyhow::bail!(
            "the database is not SQLite: back up PostgreSQL with pg_dump and restore with pg_restore (README, Deployment)"
        );
    };
    Ok(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
}

async fn restore(path: &Path, from: &Path) -> anyhow::Result<()> {
    let config = ServerConfig::load(path)?;
    let db = sqlite_file(&config)?;
    // A running server holds its listen address; restoring under it would lose its writes.
    if let Err(e) = std::net::TcpListener::bind(config.server.listen)
        && e.kind() == std::io::ErrorKind::AddrInUse
    {
        anyhow::bail!(
            "server.listen {} is in use: stop the server before restoring",
            config.server.listen
        );
    }
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.server.data_dir.display()
        )
    })?;
    let known = sqlx::migrate!("./migrations/sqlite")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let aside = crate::backup::restore(from, &db, known).await?;
    match aside {
        Some(old) => say!(
            "restored {} from {}; the previous database is kept as {}",
            db.display(),
            from.display(),
            old.display()
        )?,
        None => say!("restored {} from {}", db.display(), from.display())?,
    }
    Ok(())
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
    // Before anything starts: a stop asked for during start-up is honoured once it is done.
    let mut signals = super::StopSignals::new()?;
    let config = ServerConfig::load(path)?;
    config
        .notify
        .validate()
        .map_err(anyhow::Error::msg)
        .context("[notify]")?;
    // Bind first: a port in use is refused before anything is created on disk.
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("server.listen: cannot listen on {}", config.server.listen))?;
    // The sync port's certificates are checked before anything is created on disk.
    let sync_tls = match &config.sync {
        Some(sync) => {
            let ca = crate::tls::load_ca(&sync.ca).context("[sync] ca")?;
            let identity =
                crate::tls::load_identity(&sync.cert, &sync.key).context("[sync] cert/key")?;
            let tls = std::sync::Arc::new(crate::tls::server_config(&ca, &identity)?);
            let listener = tokio::net::TcpListener::bind(sync.listen)
                .await
                .with_context(|| format!("sync.listen: cannot listen on {}", sync.listen))?;
            Some((tls, listener))
        }
        None => None,
    };
    let db = open_db(&config).await?;
    // Once the configuration is known good (a refusal stays the one line on stderr).
    raise_open_file_limit();
    let mut state = AppState::new(db.clone());
    state.session_ttl_ms = i64::from(config.server.session_hours) * 3_600_000;
    state.secure_cookies = config.server.secure_cookies;
    state.auth = std::sync::Arc::new(config.auth_settings());
    state.retention = config.retention;
    state.site_tz = config.site_tz();
    state.photos = crate::central::photos::Photos::open(&config.photos, &config.server.data_dir)
        .context("[photos]")?;
    // Issue 21: the visitor-pass keys (public halves stored for the gates; none: no passes).
    state.passes = crate::central::passes::start(
        &db,
        &config.passes.key_dir(&config.server.data_dir),
        config.passes.require_key,
    )
    .await
    .context("[passes]")?;
    let stop = tokio_util::sync::CancellationToken::new();
    // The daily purge of passage events past the kept days; made anew should it panic.
    let purge = {
        let (db, retention, stop) = (db.clone(), config.retention, stop.clone());
        let photos = state.photos.clone();
        tokio::spawn(async move {
            crate::supervise::restarting(
                "passage event purge",
                stop.clone(),
                crate::supervise::Backoff::default(),
                move || {
                    let (db, stop, photos) = (db.clone(), stop.clone(), photos.clone());
                    async move {
                        tokio::select! {
                            () = crate::central::retention::run_daily(db, retention, photos) => {}
                            _ = stop.cancelled() => {}
                        }
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    // The alarm webhook's deliveries: retried until delivered or given up (durable: the queue
    // is in the database); made anew should it panic.
    let deliveries = {
        let (db, live, stop) = (db.clone(), state.live.clone(), stop.clone());
        tokio::spawn(async move {
            crate::supervise::restarting(
                "alarm webhook deliveries",
                stop.clone(),
                crate::supervise::Backoff::default(),
                move || {
                    let (db, live, stop) = (db.clone(), live.clone(), stop.clone());
                    async move {
                        crate::central::alarms::run_deliveries(db, live, stop).await;
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    // Notifications (issue 21): which channels [notify] configures is recorded for
    // `notify::queue`; the delivery worker sends the outbox, made anew should it panic.
    crate::central::notify::install(&db, &config.notify, config.site_tz())
        .await
        .context("[notify]")?;
    let notifications = {
        let (db, notify, stop) = (db.clone(), config.notify.clone(), stop.clone());
        tokio::spawn(async move {
            crate::supervise::restarting(
                "notification deliveries",
                stop.clone(),
                crate::supervise::Backoff::default(),
                move || {
                    let (db, notify, stop) = (db.clone(), notify.clone(), stop.clone());
                    async move {
                        crate::central::notify::run(db, notify, stop).await;
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    // The unstaffed booth alert (issue 20): one check a minute until the server stops.
    let unstaffed = tokio::spawn(crate::central::unstaffed::run(
        db.clone(),
        state.live.clone(),
        stop.clone(),
    ));
    tracing::info!(
        listen = %listener.local_addr()?,
        database = ?db.kind(),
        "central server running"
    );
    if operators::count(&db).await? == 0 {
        tracing::warn!("no operator exists yet: run `gatehouse server create-admin`");
    }
    // The gates' sync port: mutual TLS, a gate's identity from its certificate only. Essential
    // (crate::supervise): should it end by itself, the server stops and exits non-zero.
    let sync_task = match sync_tls {
        Some((tls, sync_listener)) => {
            tracing::info!(listen = %sync_listener.local_addr()?, "gate sync port (mutual TLS)");
            let database_url = match db.kind() {
                crate::central::db::DbKind::Postgres => {
                    Some(config.database_url().expose().to_string())
                }
                crate::central::db::DbKind::Sqlite => None,
            };
            let router = crate::sync::server::router(state.clone(), database_url);
            let check =
                std::sync::Arc::new(crate::central::gate_auth::DbGateCheck::new(db.clone()));
            let stop = stop.clone();
            Some(tokio::spawn(crate::supervise::essential(
                "the sync port",
                async move {
                    crate::tls::serve_mtls(
                        sync_listener,
                        tls,
                        router,
                        check,
                        stop.cancelled_owned(),
                    )
                    .await;
                    Ok(())
                },
            )))
        }
        None => {
            tracing::warn!("no [sync] section: gates cannot sync with this server");
            None
        }
    };
    // Stop on a signal, or when the sync port ended by itself (then exit non-zero).
    let sync_failure = std::sync::Arc::new(std::sync::Mutex::new(None));
    let shutdown = {
        let (stop, sync_failure) = (stop.clone(), sync_failure.clone());
        async move {
            let ended = match sync_task {
                None => {
                    signals.recv().await;
                    None
                }
                Some(mut task) => tokio::select! {
                    () = signals.recv() => {
                        // The sync port stops first (its gates see it close), then the API.
                        stop.cancel();
                        let _ = (&mut task).await;
                        None
                    }
                    ended = &mut task => Some(ended),
                },
            };
            if let Some(ended) = ended {
                let why = match ended {
                    Ok(crate::supervise::Ended::Returned { task }) => {
                        anyhow::anyhow!("{task} stopped unexpectedly")
                    }
                    Ok(ended) => ended.into(),
                    Err(e) => anyhow::Error::from(e),
                };
                tracing::error!(error = %format!("{why:#}"), "stopping the central server");
                *sync_failure.lock().expect("sync failure slot") = Some(why);
            }
            stop.cancel();
        }
    };
    let served = axum::serve(
        listener,
        crate::web::site(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    stop.cancel();
    let _ = purge.await;
    let _ = deliveries.await;
    let _ = unstaffed.await;
    let _ = notifications.await;
    db.close().await;
    served?;
    if let Some(why) = sync_failure.lock().expect("sync failure slot").take() {
        return Err(why);
    }
    tracing::info!("central server stopped");
    Ok(())
}

/// Raises the open-file limit to its hard limit and logs it: each connected gate holds a few
/// connections (its long polls, uploads, health), so a thousand gates need several thousand
/// descriptors, far above the usual soft limit of 1,024 (issue 22). Deployments raise the hard
/// limit itself with systemd's `LimitNOFILE=` (README).
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let raised = getrlimit(Resource::RLIMIT_NOFILE).and_then(|(soft, hard)| {
        if soft < hard {
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        }
        getrlimit(Resource::RLIMIT_NOFILE)
    });
    match raised {
        Ok((soft, hard)) => tracing::info!(soft, hard, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
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
    check_password(
        &password,
        &username,
        &config.server.site_words,
        "password",
        &mut f,
    );
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
    say!("administrator {} created (id {})", op.username, op.id)?;
    db.close().await;
    Ok(())
}
