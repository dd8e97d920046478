//! `gatehouse sim fleet`: N simulated gates and M consoles against one or two central
//! instances, on loopback, for a bounded time — the load test of issue 22.
//!
//! Why a separate process per instance: the centre's CPU, memory and file descriptors are read
//! from its own `/proc/PID`, not mixed with the thousand clients'. Why simulated gates rather
//! than real gate controllers: a real gate is a process with lane threads and SQLite files; a
//! thousand of them would measure this machine, not the centre. Each simulated gate still
//! speaks the real contract over its own mutual-TLS connections with its own certificate
//! (`gate.rs`), so what the centre sees is what a thousand gates would send.
//!
//! One run per (N, instance count): a fresh database (seeded, dropped after), fresh instances,
//! the fleet connected (each gate's first snapshot), then `seconds` of traffic measured, then
//! the gates stop making events and upload what is left, the checks run on the database, and
//! everything started is stopped and removed. The figures are `n{N}_i{I}.name value unit`
//! lines (benches/README.md); the checks' failures are the report's `problems`.

pub mod centre;
pub mod console;
pub mod gate;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use gate::Fault;

/// The name on the sync certificate (it also carries 127.0.0.1, which the gates dial).
pub const SYNC_HOST: &str = "localhost";

/// What to run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Fleet sizes, each a run of its own (e.g. 100, 250, 500, 1000).
    pub gates: Vec<u32>,
    /// Instance counts, each a run of its own per size (1 and/or 2).
    pub instances: Vec<u32>,
    pub consoles: u32,
    /// Measured traffic, after the fleet is connected.
    pub seconds: u64,
    /// Per lane.
    pub passage_every: Duration,
    pub lanes: u32,
    /// Permits revoked during each run, spread over it.
    pub revocations: u32,
    /// Permits seeded (at least the revocations and a vehicle pool for the lanes).
    pub permits: u32,
    /// PostgreSQL (`postgres://…`, a role that may create databases) or None for SQLite.
    pub database_url: Option<String>,
    /// The `gatehouse` binary to start the instances from.
    pub exe: PathBuf,
    pub fault: Option<Fault>,
}

/// One figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

/// One run's figures and checks.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub gates: u32,
    pub instances: u32,
    pub figures: Vec<Figure>,
    /// Every check that failed, in words; empty when the run was correct.
    pub problems: Vec<String>,
    pub events_made: u64,
    pub events_stored: u64,
    /// Per console, the plates it saw shown.
    pub console_seen: Vec<u64>,
    /// (gate, revocations it received) for each gate.
    pub revocations_received: Vec<(i64, usize)>,
}

impl RunReport {
    /// The figure named `name` (without the run's prefix).
    pub fn figure(&self, name: &str) -> Option<f64> {
        let prefix = format!("n{}_i{}.", self.gates, self.instances);
        self.figures
            .iter()
            .find(|f| f.name.strip_prefix(&prefix) == Some(name))
            .map(|f| f.value)
    }
}

/// Runs every (size, instance count) in turn; `each` is told every figure as it is known.
pub async fn run(
    options: &FleetOptions,
    mut each: impl FnMut(&Figure),
) -> anyhow::Result<Vec<RunReport>> {
    if options.instances.iter().any(|&i| i == 0 || i > 2) {
        anyhow::bail!("--instances: 1 or 2");
    }
    let sqlite = !options
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"));
    if sqlite && options.instances.contains(&2) {
        anyhow::bail!(
            "two instances share one PostgreSQL database: give --database-url postgres://… (or DATABASE_URL)"
        );
    }
    if options.permits < options.revocations + 16 {
        anyhow::bail!("--permits must exceed --revocations by at least 16");
    }
    match stats::raise_nofile() {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-fleet-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let pki = dir.path().join("pki");
    let largest = options.gates.iter().copied().max().unwrap_or(0);
    let t = std::time::Instant::now();
    make_pki(&pki, largest + 1).await?;
    eprintln!(
        "fleet: site PKI with {} gate certificates in {:.1} s",
        largest + 1,
        t.elapsed().as_secs_f64()
    );
    let mut reports = Vec::new();
    for &n in &options.gates {
        for &instances in &options.instances {
            let report = run_one(options, n, instances, &pki, dir.path()).await?;
            for f in &report.figures {
                each(f);
            }
            reports.push(report);
        }
    }
    dir.close().context("removing the temporary directory")?;
    Ok(reports)
}

/// The site CA, the sync server's certificate and gates 1..=gates' certificates.
async fn make_pki(dir: &Path, gates: u32) -> anyhow::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use crate::pki::{Validity, init_ca, issue_gate, issue_server};
        init_ca(&dir, "Gatehouse Fleet")?;
        issue_server(&dir, SYNC_HOST, &["127.0.0.1".into()], Validity::days(2)?)?;
        for g in 1..=gates {
            issue_gate(&dir, i64::from(g), Validity::days(2)?)?;
        }
        Ok(())
    })
    .await?
}

/// A gate's client TLS configuration, as the real gate builds it.
fn gate_tls(pki: &Path, gate: i64) -> anyhow::Result<rustls::ClientConfig> {
    let paths = crate::pki::gate_paths(pki, gate);
    crate::sync::client::client_tls(&crate::pki::ca_paths(pki).cert, &paths.cert, &paths.key)
}

/// Per instance, what the centre's processes use, sampled through the run.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    rss_mib: f64,
    fds: usize,
}

/// The machine's counters at one instant, for the measured window's CPU breakdown.
struct Machine {
    /// All CPUs, USER_HZ ticks.
    busy: u64,
    total: u64,
    /// This process: the simulated gates and consoles.
    generator: Duration,
    /// Every `postgres` process.
    postgres: Duration,
    /// The central instances' threads: time run, time waited on a run queue.
    centre_run: Duration,
    centre_wait: Duration,
}

impl Machine {
    fn now(servers: &[centre::Instance]) -> Machine {
        let (busy, total) = stats::machine_ticks().unwrap_or((0, 0));
        let (centre_run, centre_wait) = servers
            .iter()
            .filter_map(|s| stats::sched_times(s.pid))
            .fold((Duration::ZERO, Duration::ZERO), |(r, w), (a, b)| {
                (r + a, w + b)
            });
        Machine {
            busy,
            total,
            generator: stats::cpu_time(std::process::id()).unwrap_or_default(),
            postgres: stats::cpu_time_of("postgres"),
            centre_run,
            centre_wait,
        }
    }
}

async fn run_one(
    options: &FleetOptions,
    n: u32,
    instances: u32,
    pki: &Path,
    dir: &Path,
) -> anyhow::Result<RunReport> {
    let prefix = format!("n{n}_i{instances}");
    eprintln!(
        "fleet: {prefix}: {n} gates, {instances} instance(s), {} consoles",
        options.consoles
    );
    let fresh = centre::FreshDb::create(options.database_url.as_deref(), dir, &prefix).await?;
    let result = run_on(options, n, instances, pki, dir, &fresh, &prefix).await;
    let removed = fresh.remove().await;
    let report = result?;
    removed.context("dropping the fleet's database")?;
    Ok(report)
}

#[allow(clippy::too_many_lines)]
async fn run_on(
    options: &FleetOptions,
    n: u32,
    instances: u32,
    pki: &Path,
    dir: &Path,
    fresh: &centre::FreshDb,
    prefix: &str,
) -> anyhow::Result<RunReport> {
    let t = std::time::Instant::now();
    // Gate n + 1 is the fresh gate whose snapshot is timed while the fleet runs.
    let seeded = centre::seed(
        &fresh.db,
        options.permits,
        n + 1,
        options.lanes,
        n,
        options.consoles,
    )
    .await
    .context("seeding the centre")?;
    eprintln!(
        "fleet: {prefix}: seeded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let run_dir = dir.join(prefix);
    let mut servers = Vec::new();
    for i in 0..instances as usize {
        match centre::start_instance(&options.exe, i, &fresh.url, pki, &run_dir).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                for s in servers {
                    let _ = s.stop().await;
                }
                return Err(e);
            }
        }
    }
    let outcome = drive(options, n, pki, fresh, prefix, &seeded, &servers).await;
    let mut stopped = Ok(());
    for s in servers {
        if let Err(e) = s.stop().await {
            stopped = Err(e);
        }
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    let report = outcome?;
    stopped?;
    Ok(report)
}

#[allow(clippy::too_many_lines)]
async fn drive(
    options: &FleetOptions,
    n: u32,
    pki: &Path,
    fresh: &centre::FreshDb,
    prefix: &str,
    seeded: &centre::Seeded,
    servers: &[centre::Instance],
) -> anyhow::Result<RunReport> {
    let shared = Arc::new(gate::Shared::default());
    let consoles = Arc::new(console::ConsoleFigures::default());
    let stop = CancellationToken::new();
    let revocable: Vec<u32> = (1..=options.revocations).collect();
    let pool: Vec<u32> = (options.revocations + 1..=options.permits).collect();

    // Consoles first, so that they see the fleet from its first event.
    let mut console_tasks = Vec::new();
    for (c, (token, gates)) in seeded.consoles.iter().enumerate() {
        let base = servers[c % servers.len()].web.clone();
        console_tasks.push(tokio::spawn(console::run(
            base,
            token.clone(),
            gates.clone(),
            shared.clone(),
            consoles.clone(),
            stop.clone(),
        )));
    }

    // The gates, started over a few seconds (as a site's come up), split between instances.
    let connected = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let t_connect = Instant::now();
    let spread = Duration::from_millis(u64::from(n) * 5).min(Duration::from_secs(5));
    let mut gate_tasks = Vec::new();
    for g in 1..=n {
        let gate_id = i64::from(g);
        let base = servers[(g as usize - 1) % servers.len()].sync.clone();
        let http = gate::client(gate_tls(pki, gate_id)?)?;
        let per_gate = 16usize.min(pool.len());
        let start = ((g as usize - 1) * per_gate) % pool.len();
        let vehicles: Vec<u32> = (0..per_gate)
            .map(|k| pool[(start + k) % pool.len()])
            .collect();
        let spec = gate::GateSpec {
            gate_id,
            base,
            lanes: options.lanes,
            passage_every: options.passage_every,
            vehicles,
            fault: options.fault,
        };
        let (shared, stop, connected) = (shared.clone(), stop.clone(), connected.clone());
        let delay = spread.mul_f64(f64::from(g - 1) / f64::from(n));
        gate_tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            gate::run(spec, http, shared, stop, Duration::from_secs(20), connected).await
        }));
    }
    // Connected: every gate has its first snapshot.
    let deadline = Instant::now() + Duration::from_secs(180);
    while connected.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            stop.cancel();
            anyhow::bail!(
                "only {} of {n} gates had their first snapshot within 180 s",
                connected.load(Ordering::SeqCst)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    eprintln!(
        "fleet: {prefix}: {n} gates connected in {connect_s:.1} s; measuring {} s",
        options.seconds
    );

    // The measured window.
    let window_start = Instant::now();
    shared.window_start.set(window_start).ok();
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu0: Vec<Duration> = servers
        .iter()
        .map(|s| stats::cpu_time(s.pid).unwrap_or_default())
        .collect();
    let machine0 = Machine::now(servers);
    let window = Duration::from_secs(options.seconds);

    // Revocations, spread over the middle of the window.
    let revoker = {
        let (db, shared, revocable) = (fresh.db.clone(), shared.clone(), revocable.clone());
        tokio::spawn(async move {
            let k = revocable.len().max(1) as f64;
            for (i, id) in revocable.iter().enumerate() {
                let at = window_start + window.mul_f64(0.1 + 0.5 * i as f64 / k);
                tokio::time::sleep_until(at).await;
                let began = Instant::now();
                shared
                    .revoked_at
                    .lock()
                    .expect("revoked lock poisoned")
                    .insert(*id, began);
                crate::central::repo::permits::act(
                    &db,
                    &crate::central::db::Actor::system(),
                    i64::from(*id),
                    None,
                    crate::central::repo::permits::Action::Revoke,
                    "fleet",
                )
                .await
                .map_err(|e| anyhow::anyhow!("revoking permit {id}: {e}"))?;
            }
            anyhow::Ok(())
        })
    };

    // A fresh gate's snapshot, halfway through.
    let fresh_snapshot = {
        let http = gate::client(gate_tls(pki, i64::from(n) + 1)?)?;
        let base = servers[0].sync.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_start + window / 2).await;
            let t = Instant::now();
            let got = gate::snapshot(&http, &base)
                .await
                .map_err(|e| e.to_string());
            got.map(|(_, rows)| (t.elapsed(), rows))
        })
    };

    // Sampling the centre once a second.
    let mut peak: Vec<Usage> = vec![Usage::default(); servers.len()];
    let mut pg_peak: Option<i64> = None;
    while Instant::now() < window_start + window {
        for (s, p) in servers.iter().zip(peak.iter_mut()) {
            p.rss_mib = p.rss_mib.max(stats::rss_mib(s.pid).unwrap_or(0.0));
            p.fds = p.fds.max(stats::open_fds(s.pid).unwrap_or(0));
        }
        if let Some(c) = fresh.centre_connections().await {
            pg_peak = Some(pg_peak.map_or(c, |p| p.max(c)));
        }
        let left = (window_start + window).saturating_duration_since(Instant::now());
        tokio::time::sleep(Duration::from_secs(1).min(left)).await;
    }
    let elapsed = window_start.elapsed();
    let cpu1: Vec<Duration> = servers
        .iter()
        .map(|s| stats::cpu_time(s.pid).unwrap_or_default())
        .collect();
    let machine1 = Machine::now(servers);
    stop.cancel();
    let revoked = revoker.await?;
    let fresh_snapshot = fresh_snapshot.await?;
    let mut results = Vec::new();
    for t in gate_tasks {
        results.push(t.await?);
    }
    let mut console_seen = Vec::new();
    for t in console_tasks {
        console_seen.push(t.await?);
    }

    // The checks, on the centre's database.
    let mut problems = Vec::new();
    if let Err(e) = revoked {
        problems.push(format!("{e:#}"));
    }
    let stored = stored_per_gate(&fresh.db).await?;
    let mut made_total = 0u64;
    let mut stored_total = 0u64;
    for r in &results {
        made_total += r.made;
        let rows: Vec<&StoredRow> = stored.iter().filter(|s| s.gate_id == r.gate_id).collect();
        let count: i64 = rows.iter().map(|s| s.count).sum();
        stored_total += count as u64;
        if rows.len() > 1 {
            problems.push(format!(
                "gate {}: events stored under {} journals, not one",
                r.gate_id,
                rows.len()
            ));
        }
        if let Some(s) = rows.first() {
            if s.distinct != s.count {
                problems.push(format!(
                    "gate {}: {} events stored, {} distinct",
                    r.gate_id, s.count, s.distinct
                ));
            }
            if s.max_seq != s.count {
                problems.push(format!(
                    "gate {}: highest sequence {} but {} stored (a gap)",
                    r.gate_id, s.max_seq, s.count
                ));
            }
        }
        if count as u64 != r.made {
            problems.push(format!(
                "gate {}: made {} events, the centre stored {count}",
                r.gate_id, r.made
            ));
        }
        if r.acknowledged != r.made {
            problems.push(format!(
                "gate {}: made {} events, {} acknowledged",
                r.gate_id, r.made, r.acknowledged
            ));
        }
        if r.made == 0 {
            problems.push(format!("gate {}: made no events", r.gate_id));
        }
        let missing: Vec<u32> = revocable
            .iter()
            .copied()
            .filter(|id| !r.revocations_seen.contains(id))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "gate {}: {} of {} revocations never reached it (permits {:?})",
                r.gate_id,
                missing.len(),
                revocable.len(),
                &missing[..missing.len().min(5)]
            ));
        }
    }
    for (c, seen) in console_seen.iter().enumerate() {
        if *seen == 0 {
            problems.push(format!(
                "console {c} was never shown one of its gates' vehicles"
            ));
        }
    }
    let fresh_s = match &fresh_snapshot {
        Ok((t, rows)) if *rows >= u64::from(options.permits) => t.as_secs_f64(),
        Ok((_, rows)) => {
            problems.push(format!("the fresh gate's snapshot carried {rows} rows"));
            f64::NAN
        }
        Err(e) => {
            problems.push(format!("the fresh gate's snapshot failed: {e}"));
            f64::NAN
        }
    };

    // The figures.
    let mut figures = Vec::new();
    let mut fig = |name: &str, value: f64, unit: &'static str| {
        figures.push(Figure {
            name: format!("{prefix}.{name}"),
            value,
            unit,
        });
    };
    let events = shared.event_to_centre.sorted();
    let revocations = shared.revocation.sorted();
    let live = consoles.live_delay.sorted();
    let nf = f64::from(n);
    let cpu_percent: f64 = cpu0
        .iter()
        .zip(&cpu1)
        .map(|(a, b)| b.saturating_sub(*a).as_secs_f64())
        .sum::<f64>()
        / elapsed.as_secs_f64()
        * 100.0;
    let rss: f64 = peak.iter().map(|p| p.rss_mib).sum();
    let fds: usize = peak.iter().map(|p| p.fds).sum();
    fig("gates_connected_s", connect_s, "s");
    fig(
        "event_to_centre_p50",
        stats::percentile(&events, 50.0),
        "ms",
    );
    fig(
        "event_to_centre_p99",
        stats::percentile(&events, 99.0),
        "ms",
    );
    fig(
        "event_to_centre_max",
        stats::percentile(&events, 100.0),
        "ms",
    );
    fig("events_measured", events.len() as f64, "events");
    fig(
        "revocation_at_all_gates_p50",
        stats::percentile(&revocations, 50.0),
        "ms",
    );
    fig(
        "revocation_at_all_gates_p99",
        stats::percentile(&revocations, 99.0),
        "ms",
    );
    fig(
        "revocation_at_all_gates_max",
        stats::percentile(&revocations, 100.0),
        "ms",
    );
    fig("revocation_pairs", revocations.len() as f64, "pairs");
    fig("fresh_snapshot", fresh_s, "s");
    fig("centre_cpu", cpu_percent, "percent");
    fig("centre_cpu_per_gate", cpu_percent / nf, "percent");
    // Where the machine's time went in the window: a knee with the machine saturated and
    // the centre waiting on run queues is the machine's, not the centre's work.
    let per_wall = |d: Duration| d.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
    let (busy, total) = (
        machine1.busy.saturating_sub(machine0.busy),
        machine1.total.saturating_sub(machine0.total),
    );
    fig(
        "machine_busy",
        busy as f64 * 100.0 / total.max(1) as f64,
        "percent",
    );
    fig(
        "generator_cpu",
        per_wall(machine1.generator.saturating_sub(machine0.generator)),
        "percent",
    );
    fig(
        "postgres_cpu",
        per_wall(machine1.postgres.saturating_sub(machine0.postgres)),
        "percent",
    );
    let run = machine1.centre_run.saturating_sub(machine0.centre_run);
    let wait = machine1.centre_wait.saturating_sub(machine0.centre_wait);
    fig("centre_runqueue_wait", per_wall(wait), "percent");
    fig(
        "centre_wait_per_run",
        wait.as_secs_f64() / run.as_secs_f64().max(1e-9),
        "ratio",
    );
    fig("centre_rss", rss, "MiB");
    fig("centre_rss_per_gate", rss * 1024.0 / nf, "KiB");
    fig("centre_fds", fds as f64, "fds");
    fig("centre_fds_per_gate", fds as f64 / nf, "fds");
    if let Some(c) = pg_peak {
        fig("postgres_connections", c as f64, "connections");
    }
    fig(
        "console_live_delay_p50",
        stats::percentile(&live, 50.0),
        "ms",
    );
    fig(
        "console_live_delay_p99",
        stats::percentile(&live, 99.0),
        "ms",
    );
    fig(
        "console_updates",
        consoles.updates.load(Ordering::Relaxed) as f64,
        "events",
    );
    fig("events_made", made_total as f64, "events");
    fig("events_stored", stored_total as f64, "events");
    fig(
        "uploads_refused",
        shared.uploads_refused.load(Ordering::Relaxed) as f64,
        "requests",
    );
    fig(
        "uploads_retried",
        shared.uploads_retried.load(Ordering::Relaxed) as f64,
        "requests",
    );
    fig(
        "other_requests_failed",
        shared.other_failures.load(Ordering::Relaxed) as f64,
        "requests",
    );
    let load: f64 = load_start
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(f64::NAN);
    fig("load_average_at_start", load, "load");
    for p in &problems {
        eprintln!("fleet: {prefix}: PROBLEM: {p}");
    }
    Ok(RunReport {
        gates: n,
        instances: u32::try_from(servers.len()).unwrap_or(0),
        figures,
        problems,
        events_made: made_total,
        events_stored: stored_total,
        console_seen,
        revocations_received: results
            .iter()
            .map(|r| (r.gate_id, r.revocations_seen.len()))
            .collect(),
    })
}

/// Per gate and journal: events stored, distinct sequence numbers, the highest.
#[derive(Debug)]
struct StoredRow {
    gate_id: i64,
    count: i64,
    distinct: i64,
    max_seq: i64,
}

async fn stored_per_gate(db: &crate::central::db::Db) -> anyhow::Result<Vec<StoredRow>> {
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT gate_id, journal_no, COUNT(*) AS n, COUNT(DISTINCT seq) AS d, MAX(seq) AS m \
         FROM passage_events GROUP BY gate_id, journal_no",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredRow {
                gate_id: r.try_get("gate_id")?,
                count: r.try_get("n")?,
                distinct: r.try_get("d")?,
                max_seq: r.try_get("m")?,
            })
        })
        .collect()
}
