//! Killing a real `gatehouse gate run` process (SIGKILL) at random moments while it uploads, and
//! cutting the centre off mid-request, round after round: no event is lost, none doubled.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use gatehouse::gate::journal::{EventBody, Journal};
use gatehouse::serial::pty::PtyDevice;
use rand_core::RngCore;
use sqlx::Row;

use crate::support::central::each_database;
use crate::support::{Central, Proxy};

const ROUNDS: usize = 20;

/// A throw-away certificate and key (the gate's TLS identity; the link here is plain TCP).
fn identity(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("gate.pem"), dir.join("gate-key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", "/CN=gate-1", "-days", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    (cert.display().to_string(), key.display().to_string())
}

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

async fn central_seqs(central: &Central) -> Vec<(i64, i64)> {
    sqlx::query("SELECT seq, at_ms FROM passage_events WHERE gate_id = 1 ORDER BY seq")
        .fetch_all(central.app.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("seq"), r.get("at_ms")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_gate_and_cutting_the_centre_off_at_random_moments_lose_and_double_nothing()
{
    for t in each_database().await {
        let central = Central::start(t).await;
        let proxy = Proxy::to(central.listen_for(1).await).await;
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = identity(dir.path());
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        // Device links exist (the gate refuses missing ports) but nothing answers on them.
        let _reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
        let _io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
        let config = dir.path().join("gate.toml");
        std::fs::write(
            &config,
            format!(
                "[gate]\nid = 1\ndata_dir = \"{data}\"\n\
                 [central]\nurl = \"{url}\"\nca = \"{cert}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
                 poll_wait_ms = 1000\nbatch = 500\nhealth_every_ms = 1000\n\
                 [[lane]]\nid = \"in\"\ndirection = \"entry\"\n\
                 [lane.reader]\nport = \"{reader}\"\n[lane.io]\nport = \"{io}\"\n",
                data = data.display(),
                url = proxy.url(),
                reader = dir.path().join("reader").display(),
                io = dir.path().join("io").display(),
            ),
        )
        .unwrap();
        let journal_path = data.join("journal.db");
        let mut rng = rand_core::OsRng;
        for round in 0..ROUNDS {
            // More events while the gate is down, then the gate runs and is killed mid-upload.
            fill(&journal_path, 1000).await;
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
                .args(["gate", "run", "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            // A random moment (the point of the test, not a wait for anything): 50–550 ms.
            let at = Duration::from_millis(50 + u64::from(rng.next_u32() % 500));
            if round % 2 == 1 {
                // The centre goes away mid-request at a random moment, and comes back.
                tokio::time::sleep(at / 2).await;
                proxy.cut();
                tokio::time::sleep(at / 2).await;
                proxy.restore();
            } else {
                tokio::time::sleep(at).await;
            }
            child.start_kill().unwrap(); // SIGKILL
            child.wait().await.unwrap();
        }
        // Finally the gate runs until the centre has everything.
        let last = Journal::open(&journal_path, 1_000_000)
            .await
            .unwrap()
            .stats()
            .await
            .last_seq;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["gate", "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let watermark: Option<i64> = sqlx::query_scalar(
                "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = 1",
            )
            .fetch_optional(central.app.db.pool())
            .await
            .unwrap();
            if watermark.unwrap_or(0) as u64 >= last {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the centre has {watermark:?} of {last} events"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();

        // Per sequence: the centre holds exactly the gate's events, once each, same times.
        let journal = Journal::open(&journal_path, 1_000_000).await.unwrap();
        let ours = journal.read_after(0, u32::MAX).await.unwrap();
        let theirs = central_seqs(&central).await;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM passage_events WHERE gate_id = 1")
                .fetch_one(central.app.db.pool())
                .await
                .unwrap();
        assert_eq!(total as usize, ours.len(), "{:?}", central.app.kind);
        assert!(ours.len() >= ROUNDS * 1000);
        let ours: Vec<(i64, i64)> = ours
            .iter()
            .map(|e| (e.seq as i64, e.at.timestamp_millis()))
            .collect();
        assert_eq!(theirs, ours);
    }
}
