//! The acceptance smoke test of `gatehouse demo`: the real binary on a fresh data directory
//! reaches a running system, passage events from every lane reach the centre's API with at
//! least one grant and one denial at each gate, SIGINT stops it with exit status 0, and a
//! second run reuses the data.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::http::request;

/// Seeding 500 people and 600 vehicles in a debug build on a busy machine takes a while.
const START_DEADLINE: Duration = Duration::from_secs(120);
/// Traffic shows every kind of event within a minute.
const TRAFFIC_DEADLINE: Duration = Duration::from_secs(60);
const EXIT_DEADLINE: Duration = Duration::from_secs(20);

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Demo {
    fn start(dir: &std::path::Path) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--every-ms",
                "800",
                "--data-dir",
            ])
            .arg(dir.join("demo"))
            .env("GATEHOUSE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("demo.log")).unwrap())
            .spawn()
            .expect("the gatehouse binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo { child, lines }
    }

    /// Reads stdout until the banner names the central server; returns its address and every
    /// line read.
    fn wait_running(&self) -> (SocketAddr, Vec<String>) {
        let until = Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the demo did not start in time; stdout: {seen:#?}"));
            seen.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix("central: http://") {
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                return (addr, seen);
            }
        }
    }

    /// Sends SIGINT and asserts a clean exit within the deadline.
    fn interrupt_and_expect_clean_exit(mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
        let until = Instant::now() + EXIT_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "the demo exits 0 after SIGINT, got {status}"
                );
                return;
            }
            assert!(
                Instant::now() < until,
                "the demo did not stop within {EXIT_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed assertion must not leave the demo running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `total` of an events search.
async fn total(addr: SocketAddr, token: &str, query: &str) -> i64 {
    let auth = format!("Bearer {token}");
    let r = request(
        addr,
        "GET",
        &format!("/api/v1/events?per_page=1&{query}"),
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    body["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_every_lane_grants_and_denies_at_each_gate_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let (addr, banner) = tokio::task::block_in_place(|| demo.wait_running());
    assert!(
        banner.iter().any(|l| l.contains("First run")),
        "a fresh data directory is seeded: {banner:#?}"
    );

    let login = request(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        r#"{"username":"viewer","password":"Demo-viewer-2026"}"#,
    )
    .await;
    assert_eq!(
        login.status, 200,
        "the printed demo login works: {}",
        login.body
    );
    let token = serde_json::from_str::<serde_json::Value>(&login.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let until = Instant::now() + TRAFFIC_DEADLINE;
    let mut missing;
    loop {
        missing = Vec::new();
        for (gate, lane) in [(1, "entry"), (1, "exit"), (2, "both")] {
            if total(
                addr,
                &token,
                &format!("gate_id={gate}&lane={lane}&kind=decision"),
            )
            .await
                == 0
            {
                missing.push(format!("a decision at gate {gate} lane {lane}"));
            }
        }
        for gate in [1, 2] {
            for granted in [true, false] {
                let q = format!("gate_id={gate}&kind=decision&granted={granted}");
                if total(addr, &token, &q).await == 0 {
                    missing.push(format!("granted={granted} at gate {gate}"));
                }
            }
        }
        if missing.is_empty() || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        missing.is_empty(),
        "within {TRAFFIC_DEADLINE:?}, still missing: {missing:?}"
    );
    tokio::task::block_in_place(|| demo.interrupt_and_expect_clean_exit());

    // A second run reuses the data: no seeding, the same logins.
    let again = Demo::start(dir.path());
    let (_, banner) = tokio::task::block_in_place(|| again.wait_running());
    assert!(
        !banner.iter().any(|l| l.contains("First run")),
        "the second run reuses the data: {banner:#?}"
    );
    tokio::task::block_in_place(|| again.interrupt_and_expect_clean_exit());
}

#[test]
fn reset_refuses_to_delete_a_directory_that_is_not_a_demo_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("thesis.tex");
    std::fs::write(&precious, "\\documentclass{article}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["demo", "--reset", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("not a demo data directory"), "{stderr}");
    assert!(precious.exists(), "nothing was deleted");
}
