//! SIGKILL of a real `gatehouse gate run` process and of a real `gatehouse server run` process
//! at random moments while the gate uploads, round after round, and the network cut off
//! mid-request: no event is lost, none doubled.
//!
//! Both processes are the shipped binary with their real configuration: the server's `[sync]`
//! serves mutual TLS with certificates from a site PKI, on a SQLite file or a PostgreSQL
//! database; the gate's `[central]` presents gate 1's own certificate. Between them, a proxy
//! the test can cut. A kill lands only once the round's upload is under way (the centre's
//! watermark has moved), after a further random 0–100 ms.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use gatehouse::central::db::Db;
use gatehouse::gate::journal::Journal;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::wire::journal::EventBody;
use rand_core::RngCore;
use sqlx::Row;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::support::Proxy;
use crate::support::harness::{each_database, free_port};
use crate::support::sync_link::SitePki;

/// Rounds per database: the gate is killed in every round, the server in every other one.
const ROUNDS: usize = 24;
/// Events the gate journals (while it is down) before each round.
const PER_ROUND: usize = 2000;
/// Events per upload: small, so that an upload takes many requests to kill in the middle of.
const BATCH: usize = 50;
/// How long anything in one round may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);

async fn fill(path: &Path, n: usize) {
    let journal = Journal::open(path, 1_000_000).await.unwrap();
    let bodies: Vec<EventBody> = (0..100)
        .map(|i| EventBody::LaneFault {
            fault: "test".into(),
            detail: format!("{i}"),
        })
        .collect();
    for _ in 0..n / 100 {
        journal
            .append_batch(Utc::now(), "in", &bodies)
            .await
            .unwrap();
    }
}

async fn last_seq(path: &Path) -> u64 {
    Journal::open(path, 1_000_000)
        .await
        .unwrap()
        .stats()
        .await
        .last_seq
}

/// The centre's highest contiguous sequence for gate 1.
async fn watermark(db: &Db) -> u64 {
    let w: Option<i64> =
        sqlx::query_scalar("SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = 1")
            .fetch_optional(db.pool())
            .await
            .unwrap();
    w.unwrap_or(0) as u64
}

/// The last lines of a process's log, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A real `gatehouse` process, started again and again from one configuration.
struct Process {
    args: [&'static str; 2],
    config: PathBuf,
    log: PathBuf,
    database_url: Option<String>,
    child: Option<Child>,
}

impl Process {
    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(self.args)
            .arg("--config")
            .arg(&self.config)
            // The test's own DATABASE_URL must not override the server's database.
            .env_remove("DATABASE_URL")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(url) = &self.database_url {
            command.env("GATEHOUSE_DATABASE_URL", url);
        }
        self.child = Some(command.spawn().unwrap());
    }

    /// SIGKILL, and wait until the process is gone.
    async fn kill(&mut self) {
        let mut child = self.child.take().expect("the process runs");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// Waits until the centre's watermark passes `above` (the upload is under way), with the
/// processes' logs in the message if it never does.
async fn wait_for_progress(db: &Db, above: u64, logs: &[&Path]) -> u64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let w = watermark(db).await;
        if w > above {
            return w;
        }
        assert!(
            Instant::now() < deadline,
            "the upload did not get past {above}; logs:\n{}",
            logs.iter()
                .map(|l| tail(l))
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_gate_and_of_the_central_server_at_random_moments_during_upload_lose_and_double_nothing()
 {
    for t in each_database().await {
        let kind = t.kind;
        let db = t.db.clone();
        sqlx::query("INSERT INTO gates (name, created_ms, updated_ms) VALUES ('北门', 0, 0)")
            .execute(db.pool())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pki = SitePki::create(&dir.path().join("pki"));
        let gate_cert = pki.gate(1);
        let server_cert = pki.server();

        // The central server: admin API on any port, the sync port on a fixed one (the proxy
        // forwards to it across restarts), the test's database.
        let sync_port = free_port();
        let server_config = dir.path().join("server.toml");
        std::fs::write(
            &server_config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\n\
                 [sync]\nlisten = \"127.0.0.1:{sync_port}\"\nca = \"{ca}\"\n\
                 cert = \"{cert}\"\nkey = \"{key}\"\n",
                data = dir.path().join("server").display(),
                ca = pki.ca().display(),
                cert = server_cert.cert.display(),
                key = server_cert.key.display(),
            ),
        )
        .unwrap();
        let mut server = Process {
            args: ["server", "run"],
            config: server_config,
            log: dir.path().join("server.log"),
            database_url: Some(t.url.clone()),
            child: None,
        };
        let proxy = Proxy::to(([127, 0, 0, 1], sync_port).into()).await;

        // The gate: one lane whose devices exist but never answer, [central] with its own
        // certificate, small uploads.
        let data = dir.path().join("gate");
        std::fs::create_dir_all(&data).unwrap();
        let _reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
        let _io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
        let gate_config = dir.path().join("gate.toml");
        std::fs::write(
            &gate_config,
            format!(
                "[gate]\nid = 1\ndata_dir = \"{data}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
                 [central]\nurl = \"{url}\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
                 connect_timeout_ms = 1000\npoll_wait_ms = 1000\nbatch = {BATCH}\n\
                 health_every_ms = 1000\n\
                 [[lane]]\nid = \"in\"\ndirection = \"entry\"\n\
                 [lane.reader]\nport = \"{reader}\"\n[lane.io]\nport = \"{io}\"\n",
                data = data.display(),
                url = proxy.url(),
                ca = pki.ca().display(),
                cert = gate_cert.cert.display(),
                key = gate_cert.key.display(),
                reader = dir.path().join("reader").display(),
                io = dir.path().join("io").display(),
            ),
        )
        .unwrap();
        let mut gate = Process {
            args: ["gate", "run"],
            config: gate_config,
            log: dir.path().join("gate.log"),
            database_url: None,
            child: None,
        };
        let journal_path = data.join("journal.db");
        let logs = [gate.log.clone(), server.log.clone()];
        let logs: Vec<&Path> = logs.iter().map(PathBuf::as_path).collect();

        let mut rng = rand_core::OsRng;
        let mut random_ms = |below: u32| Duration::from_millis(u64::from(rng.next_u32() % below));
        // Rounds whose kill left part of the round's events unsent, by kind of kill.
        let (mut gate_mid, mut server_mid) = (0, 0);
        for round in 0..ROUNDS {
            // More events while the gate is down, then both run and the upload starts.
            fill(&journal_path, PER_ROUND).await;
            let last = last_seq(&journal_path).await;
            if !server.running() {
                server.start();
            }
            let before = watermark(&db).await;
            gate.start();
            wait_for_progress(&db, before, &logs).await;
            tokio::time::sleep(random_ms(100)).await;
            match round % 4 {
                // The centre's server dies mid-upload and comes back on the same port; the
                // gate, still running, carries on, and dies at a random moment too.
                1 | 3 => {
                    server.kill().await;
                    server_mid += usize::from(watermark(&db).await < last);
                    tokio::time::sleep(random_ms(200)).await;
                    let at = watermark(&db).await;
                    server.start();
                    if at < last {
                        wait_for_progress(&db, at, &logs).await;
                        tokio::time::sleep(random_ms(100)).await;
                    }
                    gate.kill().await;
                }
                // The network goes away mid-request and comes back; then the gate dies.
                2 => {
                    proxy.cut();
                    tokio::time::sleep(random_ms(200)).await;
                    proxy.restore();
                    tokio::time::sleep(random_ms(100)).await;
                    gate.kill().await;
                    gate_mid += usize::from(watermark(&db).await < last);
                }
                // The gate dies mid-upload.
                _ => {
                    gate.kill().await;
                    gate_mid += usize::from(watermark(&db).await < last);
                }
            }
        }

        // Finally both run until the centre has everything.
        let last = last_seq(&journal_path).await;
        if !server.running() {
            server.start();
        }
        gate.start();
        let deadline = Instant::now() + Duration::from_secs(60);
        while watermark(&db).await < last {
            assert!(
                Instant::now() < deadline,
                "the centre has {} of {last} events; logs:\n{}",
                watermark(&db).await,
                logs.iter()
                    .map(|l| tail(l))
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        gate.kill().await;
        server.kill().await;
        println!(
            "{kind:?}: {ROUNDS} rounds, {last} events; kills that left events unsent: \
             gate {gate_mid}, server {server_mid}"
        );
        assert!(
            gate_mid > 0 && server_mid > 0,
            "no kill of one kind landed during an upload (gate {gate_mid}, server {server_mid})"
        );

        // Per sequence: the centre holds exactly the gate's events, once each, same times.
        let journal = Journal::open(&journal_path, 1_000_000).await.unwrap();
        let ours: Vec<(i64, i64)> = journal
            .read_after(0, u32::MAX)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.seq as i64, e.at.timestamp_millis()))
            .collect();
        // The test's events, and what the gate journalled itself (its devices never answer).
        assert!(ours.len() >= ROUNDS * PER_ROUND, "{}", ours.len());
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM passage_events WHERE gate_id = 1")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(total as usize, ours.len(), "{kind:?}");
        let theirs: Vec<(i64, i64)> =
            sqlx::query("SELECT seq, at_ms FROM passage_events WHERE gate_id = 1 ORDER BY seq")
                .fetch_all(db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("seq"), r.get("at_ms")))
                .collect();
        assert_eq!(theirs, ours, "{kind:?}");
    }
}
