//! `gatehouse gate …`: run the lane controller, import permits, read the journal, show status,
//! back up the gate's files.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use crate::gate::config::GateConfig;
use crate::gate::journal::Journal;
use crate::gate::store::Store;

#[derive(Debug, Subcommand)]
pub(super) enum GateCommand {
    /// Run the lane controller: open every lane's reader and I/O module, decide locally from the
    /// stored permits, drive the barriers and journal every event, until Ctrl-C or SIGTERM.
    Run {
        /// The gate configuration file (see examples/gate.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Load permits from a CSV file into the gate's local store (for commissioning a lane before
    /// a central server exists). Nothing is imported if any row is bad.
    ImportPermits {
        /// The gate configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The CSV file (columns: see the README, "Commissioning a lane").
        file: PathBuf,
    },
    /// Print the event journal, newest last.
    Events {
        /// The gate configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// How many of the newest events to print.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show the journal's fill, the stored data and each lane's mode.
    Status {
        /// The gate configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the argon2 hash of a booth guard's password, for a `[[booth.guard]]` entry of
    /// gate.toml. The password is read from the first line of standard input (never from the
    /// command line, where other users could see it) and never printed.
    HashPassword,
    /// Back up the gate's two files (store.db, journal.db) into a new directory, while the
    /// controller runs (consistent copies, SQLite's VACUUM INTO).
    Backup {
        /// The gate configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The directory to create for the copies; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
}

pub(super) async fn run(cmd: GateCommand) -> anyhow::Result<()> {
    match cmd {
        GateCommand::Backup { config, to } => {
            let config = load_offline(&config)?;
            if to.exists() {
                anyhow::bail!("{} already exists; choose a new directory", to.display());
            }
            let partial = PathBuf::from(format!("{}.partial", to.display()));
            let _ = std::fs::remove_dir_all(&partial);
            std::fs::create_dir_all(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            for file in ["store.db", "journal.db"] {
                if let Err(e) =
                    crate::backup::backup(&config.gate.data_dir.join(file), &partial.join(file))
                        .await
                {
                    let _ = std::fs::remove_dir_all(&partial);
                    return Err(e.into());
                }
            }
            std::fs::rename(&partial, &to)
                .with_context(|| format!("cannot create {}", to.display()))?;
            say!("backed up store.db and journal.db to {}", to.display())?;
            Ok(())
        }
        GateCommand::Run { config } => run_gate(&config).await,
        GateCommand::HashPassword => hash_password().await,
        GateCommand::ImportPermits { config, file } => {
            let config = load_offline(&config)?;
            let store = open_store(&config).await?;
            let tz: chrono_tz::Tz = config.gate.timezone.parse().map_err(anyhow::Error::msg)?;
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let summary = crate::gate::import::import(input, tz, &store).await?;
            say!(
                "imported {} permits, {} vehicles, {} tags",
                summary.permits,
                summary.vehicles,
                summary.credentials
            )?;
            Ok(())
        }
        GateCommand::Events {
            config,
            json,
            limit,
        } => {
            let config = load_offline(&config)?;
            let tz: chrono_tz::Tz = config.gate.timezone.parse().map_err(anyhow::Error::msg)?;
            let journal = open_journal(&config).await?;
            let mut events = journal.read_latest(limit).await?;
            events.reverse();
            for event in events {
                if json {
                    say!("{}", serde_json::to_string(&event)?)?;
                } else {
                    let local = event.at.with_timezone(&tz);
                    say!(
                        "{:>8}  {}  {:<8}  {}",
                        event.seq,
                        local.format("%Y-%m-%d %H:%M:%S%.3f"),
                        event.lane,
                        serde_json::to_string(&event.body)?
                    )?;
                }
            }
            Ok(())
        }
        GateCommand::Status { config } => {
            let config = load_offline(&config)?;
            let journal = open_journal(&config).await?;
            let store = open_store(&config).await?;
            let stats = journal.stats().await;
            let (permits, vehicles, credentials) = store.counts().await?;
            say!("gate {} {}", config.gate.id, config.gate.name)?;
            say!(
                "journal: {} events stored of {} ({}%), last seq {}, acknowledged by the centre up to {}",
                stats.stored,
                stats.capacity,
                stats.fill_percent(),
                stats.last_seq,
                stats.acked_seq
            )?;
            say!(
                "data: version {}, {permits} permits, {vehicles} vehicles, {credentials} tags",
                store.data_version().await?
            )?;
            for lane in &config.lanes {
                let mode = store
                    .lane_mode(&lane.id)
                    .await?
                    .unwrap_or_else(|| "normal".into());
                say!("lane {}: mode {mode}", lane.id)?;
            }
            match std::fs::read_to_string(config.gate.data_dir.join("status.json")) {
                Ok(live) => say!("live: {live}")?,
                Err(_) => say!(
                    "live: the controller has not reported (is `gatehouse gate run` running?)"
                )?,
            }
            Ok(())
        }
    }
}

async fn run_gate(path: &std::path::Path) -> anyhow::Result<()> {
    // Before anything starts: a stop asked for during start-up is honoured once it is done.
    let mut signals = super::StopSignals::new()?;
    let config = GateConfig::load(path)?;
    let status_path = config.gate.data_dir.join("status.json");
    let lanes: Vec<String> = config.lanes.iter().map(|l| l.id.clone()).collect();
    // The centre's TLS material is checked before anything starts or is created on disk.
    let tls = match &config.central {
        Some(central) => Some(
            crate::sync::client::client_tls(&central.ca, &central.cert, &central.key)
                .context("[central] ca, cert, key")?,
        ),
        None => None,
    };
    let http = crate::gate::http::bind(config.http.listen).await?;
    let cameras = match &config.camera_listener {
        Some(section) => Some(crate::gate::camera_http::bind(section.listen).await?),
        None => None,
    };
    let handle =
        std::sync::Arc::new(crate::gate::runtime::GateHandle::start(config.clone()).await?);
    // The listener and the sync runner are essential (crate::supervise): should one end by
    // itself, the controller stops and exits non-zero rather than run half-dead.
    let mut essentials = tokio::task::JoinSet::new();
    let http_stop = tokio_util::sync::CancellationToken::new();
    {
        let (router, stop) = (
            crate::gate::http::local_router(handle.clone(), &config),
            http_stop.clone(),
        );
        essentials.spawn(crate::supervise::essential(
            "the gate's HTTP listener",
            async move {
                crate::gate::http::serve(http, router, stop)
                    .await
                    .context("serving HTTP")
            },
        ));
    }
    if let Some(listener) = cameras {
        let (router, stop) = (
            crate::gate::camera_http::router(handle.clone(), &config),
            http_stop.clone(),
        );
        tracing::info!(
            listen = ?config.camera_listener.as_ref().map(|l| l.listen),
            cameras = config.cameras.len(),
            "plate camera listener running"
        );
        essentials.spawn(crate::supervise::essential(
            "the camera listener",
            async move {
                crate::gate::camera_http::serve(listener, router, stop)
                    .await
                    .context("serving the camera listener")
            },
        ));
    }
    let index = handle.shared().index();
    tracing::info!(
        gate = config.gate.id,
        lanes = ?lanes,
        http = %config.http.listen,
        permits = index.permit_count(),
        data_version = index.data_version(),
        "gate controller running"
    );
    drop(index);
    if config.booth.enabled() {
        tracing::info!(
            url = %format!("http://{}/", config.http.listen),
            guards = config.booth.guard.len(),
            "booth fallback page served"
        );
    } else {
        tracing::info!("no [[booth.guard]] configured: booth fallback page off");
    }
    // With `[central]`, sync with the centre beside the lanes; without, run standalone.
    let stop_sync = tokio_util::sync::CancellationToken::new();
    match &config.central {
        Some(central) => {
            let options = crate::sync::client::ClientOptions {
                connect_timeout: std::time::Duration::from_millis(central.connect_timeout_ms),
                poll_wait: std::time::Duration::from_millis(central.poll_wait_ms),
                batch: central.batch,
                health_every: std::time::Duration::from_millis(central.health_every_ms),
                offline_after: std::time::Duration::from_millis(central.offline_after_ms),
            };
            let client = crate::sync::client::SyncClient::new(
                i64::from(config.gate.id),
                &central.url,
                tls.clone(),
                options,
            )?;
            tracing::info!(url = %central.url, "syncing with the centre");
            let (handle, stop) = (handle.clone(), stop_sync.clone());
            essentials.spawn(crate::supervise::essential("the sync runner", async move {
                std::sync::Arc::new(client).run(handle, stop).await;
                Ok(())
            }));
        }
        None => tracing::info!("no [central] configured: running standalone"),
    }
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    // Why the controller stops: a signal (None), or a lane or essential task that ended.
    let failure = loop {
        tokio::select! {
            _ = signals.recv() => break None,
            _ = every.tick() => write_status(&handle, &status_path).await,
            why = handle.lane_failure() => break Some(anyhow::anyhow!(why)),
            Some(ended) = essentials.join_next() => break Some(match ended {
                Ok(crate::supervise::Ended::Returned { task }) => {
                    anyhow::anyhow!("{task} stopped unexpectedly")
                }
                Ok(ended) => ended.into(),
                Err(e) => e.into(),
            }),
        }
    };
    match &failure {
        None => tracing::info!("shutting down"),
        Some(why) => tracing::error!(error = %format!("{why:#}"), "stopping the gate controller"),
    }
    http_stop.cancel();
    stop_sync.cancel();
    while essentials.join_next().await.is_some() {}
    match std::sync::Arc::try_unwrap(handle) {
        Ok(handle) => handle.shutdown().await,
        Err(_) => anyhow::bail!("the gate is still shared after the sync runner stopped"),
    }
    match failure {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

/// `gatehouse gate hash-password`: one line from standard input, checked like an operator's
/// password, hashed with argon2id; only the hash is printed.
async fn hash_password() -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprintln!(
            "密码（一行，回车结束；输入可见，请确认无人旁观）Password (one line, then Enter; it is echoed):"
        );
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        anyhow::bail!("no password on standard input (e.g. `gatehouse gate hash-password < file`)");
    }
    let mut f = crate::central::api::error::Fields::new();
    crate::central::api::auth::check_password_strength(&password, "password", &mut f);
    if let Err(e) = f.finish() {
        let body = e.body(crate::i18n::Lang::En);
        let reason = body
            .fields
            .and_then(|f| f.into_iter().next())
            .map(|f| f.message)
            .unwrap_or(body.message);
        anyhow::bail!("the password is too weak: {reason}");
    }
    let hash =
        tokio::task::spawn_blocking(move || crate::password::hash_password_blocking(&password))
            .await?;
    say!("{hash}")?;
    Ok(())
}

/// Writes the live status for `gatehouse gate status` (atomically: a new file renamed over).
async fn write_status(handle: &crate::gate::runtime::GateHandle, path: &std::path::Path) {
    let status = serde_json::json!({
        "at": chrono::Utc::now(),
        "journal": handle.journal_stats().await,
        "data_version": handle.shared().index().data_version(),
        "lanes": handle.status(),
    });
    let tmp = path.with_extension("json.tmp");
    let written =
        std::fs::write(&tmp, status.to_string()).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot write the status file");
    }
}

/// Loads a configuration for commands that do not open serial ports: the ports need not exist.
fn load_offline(path: &std::path::Path) -> anyhow::Result<GateConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration {}", path.display()))?;
    let config =
        GateConfig::parse(&text).with_context(|| format!("configuration {}", path.display()))?;
    Ok(config)
}

pub(super) async fn open_store(config: &GateConfig) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.gate.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.gate.data_dir.display()
        )
    })?;
    Ok(Store::open(&config.gate.data_dir.join("store.db")).await?)
}

pub(super) async fn open_journal(config: &GateConfig) -> anyhow::Result<Journal> {
    std::fs::create_dir_all(&config.gate.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            config.gate.data_dir.display()
        )
    })?;
    Ok(Journal::open(
        &config.gate.data_dir.join("journal.db"),
        config.journal.capacity,
    )
    .await?)
}
