//! The acceptance smoke test of `gatehouse demo`: the real binary on a fresh data directory
//! reaches a running system, passage events from every lane reach the centre's API with at
//! least one grant and one denial at each gate, SIGINT stops it with exit status 0, and a
//! second run reuses the data. And its soak: fast traffic with random manual opens and visitor
//! registrations for a bounded time, after which it still serves and never panicked.

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
        Demo::start_every(dir, "800")
    }

    /// Starts the demo with `--every-ms every_ms`.
    fn start_every(dir: &std::path::Path, every_ms: &str) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--every-ms",
                every_ms,
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

/// How long the soak drives the demo once it runs (start-up, which seeds the data in a debug
/// build, is not counted); with start-up and stop the test stays within 90 s here.
const SOAK: Duration = Duration::from_secs(40);

/// Logs in with a demo login and returns the bearer token.
async fn login(addr: SocketAddr, username: &str, password: &str) -> String {
    let r = request(
        addr,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        &serde_json::json!({"username": username, "password": password}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{username} logs in: {}", r.body);
    serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A small xorshift generator: random actions, reproducible from the printed seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_keeps_serving_under_fast_traffic_manual_opens_and_visitor_registrations() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Demo::start_every(dir.path(), "20");
    let (addr, _) = tokio::task::block_in_place(|| demo.wait_running());
    // The gates' listeners follow the central line in the banner.
    let mut gate_http: Vec<SocketAddr> = Vec::new();
    while gate_http.len() < 2 {
        let line = demo
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("the banner names both gates' listeners");
        if let Some(gate) = line.trim().strip_prefix("gate ") {
            let listener = gate.split("http://").nth(1).unwrap();
            gate_http.push(listener.split('/').next().unwrap().parse().unwrap());
        }
    }
    let guard = login(addr, "guard", "Demo-guard-2026").await;
    let viewer = login(addr, "viewer", "Demo-viewer-2026").await;
    let guard_auth = format!("Bearer {guard}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("soak seed {seed}");
    let mut dice = Dice(seed);
    let lanes = [(1, "entry"), (1, "exit"), (2, "both")];
    let reasons = [
        "visitor_registered",
        "permit_holder_without_tag",
        "official_business",
    ];
    let (mut opened, mut registered) = (0, 0);
    // The guard signs in on duty at the booth they act at (a guard must be on duty there to
    // open or register); moving to the other gate signs them in there.
    let mut on_duty = None;
    let started = Instant::now();
    let mut decisions_midway = None;
    while started.elapsed() < SOAK {
        if let Some(status) = demo.child.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
            panic!("the demo died ({status}) during the soak; its log:\n{log}");
        }
        let (gate, lane) = lanes[dice.roll(3) as usize];
        if on_duty != Some(gate) {
            let r = request(
                addr,
                "POST",
                "/api/v1/duty/sign-in",
                &[
                    ("Authorization", &guard_auth),
                    ("Content-Type", "application/json"),
                ],
                &serde_json::json!({ "gate_id": gate }).to_string(),
            )
            .await;
            assert!(
                r.status < 300,
                "signing in at gate {gate}: {} {}",
                r.status,
                r.body
            );
            on_duty = Some(gate);
        }
        if dice.roll(2) == 0 {
            // A guard opens the lane by hand from the console.
            let body = serde_json::json!({
                "command": "open",
                "reason": reasons[dice.roll(3) as usize],
            });
            let r = request(
                addr,
                "POST",
                &format!("/api/v1/console/gates/{gate}/lanes/{lane}/command"),
                &[
                    ("Authorization", &guard_auth),
                    ("Content-Type", "application/json"),
                ],
                &body.to_string(),
            )
            .await;
            // 409: the gate did not carry it out (busy, or it did not confirm in time).
            assert!(
                r.status == 200 || r.status == 409,
                "a manual open on gate {gate} lane {lane}: {} {}",
                r.status,
                r.body
            );
            opened += u32::from(r.status == 200);
        } else {
            // A visitor registered at the booth.
            let plate = format!("京A{:05}", dice.roll(100_000));
            let body = serde_json::json!({
                "gate_id": gate, "lane": lane, "plate": plate, "driver_name": "访客",
                "driver_phone": "13812345678", "host_name": "王老师", "department": "计算机学院",
                "purpose": "送货",
                "expected_departure": (chrono::Utc::now() + chrono::Duration::hours(2))
                    .with_timezone(&chrono_tz::Asia::Shanghai)
                    .format("%Y-%m-%dT%H:%M")
                    .to_string(),
            });
            let r = request(
                addr,
                "POST",
                "/api/v1/visits",
                &[
                    ("Authorization", &guard_auth),
                    ("Content-Type", "application/json"),
                ],
                &body.to_string(),
            )
            .await;
            assert!(
                r.status < 500,
                "registering visitor {plate} at gate {gate} lane {lane}: {} {}",
                r.status,
                r.body
            );
            registered += u32::from(r.status == 201);
        }
        if decisions_midway.is_none() && started.elapsed() > SOAK - Duration::from_secs(15) {
            decisions_midway = Some(total(addr, &viewer, "kind=decision").await);
        }
        tokio::time::sleep(Duration::from_millis(100 + dice.roll(400))).await;
    }

    // Still serving: the centre and both gates answer, and decisions kept coming in.
    assert!(
        demo.child.try_wait().unwrap().is_none(),
        "the demo still runs"
    );
    for listener in std::iter::once(addr).chain(gate_http) {
        let r = request(listener, "GET", "/healthz", &[], "").await;
        assert_eq!(r.status, 200, "{listener} /healthz");
    }
    let midway = decisions_midway.expect("a count 15 s before the end");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let now = total(addr, &viewer, "kind=decision").await;
        if now > midway {
            break;
        }
        assert!(
            Instant::now() < until,
            "no live decision reached the centre in the soak's last 15 s (still {now})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(opened > 0, "at least one manual open was carried out");
    assert!(registered > 0, "at least one visitor was registered");
    let log = std::fs::read_to_string(dir.path().join("demo.log")).unwrap();
    assert!(
        !log.contains("panicked"),
        "no panic during the soak (seed {seed}); the log:\n{log}"
    );
    tokio::task::block_in_place(|| demo.interrupt_and_expect_clean_exit());
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
