//! A whole site for the browser tests: a central server with gates 1 (北门) and 2 (南门) and the
//! harness operators, the site PKI, and gate 1 running on simulated lanes `entry` and `exit`,
//! synced with the centre over the real mutual-TLS link. Its data is issued centrally through
//! the API and reaches the gate by the sync, exactly as on a site:
//!
//! - 京A12345, 持证人1, staff permit, tag [`epc`]`(1)`;
//! - 京B54321, 持证人2, revoked permit, tag `epc(2)`;
//! - 京C66666, 持证人3, valid permit but the plate blacklisted (urgent), tag `epc(3)`.

use gatehouse::gate::config::{BoothConfig, BoothGuard};

use super::gate::{GateOptions, LaneSpec, TestGate, Timings, epc, hex, spawn_gate_with};
use super::sync_link::SitePki;
use super::{Api, Central, GateLink, Office, TestDb, seed, sqlite, wait_connected, wait_synced};

/// Gate 1 with lanes `entry` and `exit` on simulated devices (see [`spawn_web_gate_with`]).
pub async fn spawn_web_gate() -> TestGate {
    spawn_web_gate_with(1, &[LaneSpec::entry("entry"), LaneSpec::exit("exit")]).await
}

/// Gate `gate_id` with `lanes` on simulated devices, with device timeouts that tolerate the
/// browser tests' load (two Chromiums and their servers on two shared cores): the web tests are
/// about the pages, not about how fast a Modbus answer must come.
pub async fn spawn_web_gate_with(gate_id: u16, lanes: &[LaneSpec]) -> TestGate {
    let timings = Timings {
        io_timeout_ms: 500,
        reader_timeout_ms: 800,
        arm_timeout_ms: 5000,
        // The shipped hold: a tag still in the field is decided again only after 3 s, so what a
        // guard did (a manual open) stays the lane's newest word long enough for a loaded
        // browser to see it (with 1 s, a re-decision could overtake it before the page did).
        tag_hold_ms: 3000,
        ..Timings::default()
    };
    let options = GateOptions {
        gate_id,
        timings,
        ..GateOptions::default()
    };
    spawn_gate_with(lanes, options).await
}

/// The booth fallback page's guard password in the tests.
pub const BOOTH_PASSWORD: &str = "Booth-PIN-2468";

pub struct Site {
    /// The gate's sync link (`None` once stopped).
    pub link: Option<GateLink>,
    pub gate: TestGate,
    pub central: Central,
    pub pki: SitePki,
    pub db: TestDb,
    _pki_dir: tempfile::TempDir,
}

/// Starts a site (see the module header) and waits until gate 1 holds the centre's data and
/// the centre has heard from it.
pub async fn site() -> Site {
    site_on(sqlite().await).await
}

/// The same site on `db` (a fresh database: SQLite, or PostgreSQL from `each_database`).
pub async fn site_on(db: TestDb) -> Site {
    seed(&db.db).await;
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(pki_dir.path());
    let central = Central::start(&db, &pki).await;
    let api = Api::new(&central, &db.db, "security").await;
    api.issue("持证人1", "京A12345", &hex(&epc(1))).await;
    let (_, revoked) = api.issue("持证人2", "京B54321", &hex(&epc(2))).await;
    api.revoke(revoked).await;
    api.issue("持证人3", "京C66666", &hex(&epc(3))).await;
    api.blacklist_plate("京C66666").await;
    let gate = spawn_web_gate().await;
    let link = GateLink::start(&gate, 1, &pki, &central);
    wait_synced(&db.db, &gate).await;
    wait_connected(&db.db, 1).await;
    Site {
        link: Some(link),
        gate,
        central,
        pki,
        db,
        _pki_dir: pki_dir,
    }
}

impl Site {
    pub async fn count(&self, sql: &str) -> i64 {
        super::harness::count(&self.db.db, sql).await
    }

    /// Gate 1's own local listener as `gatehouse gate run` serves it (status routes and the
    /// booth page), with one booth guard `guard` / [`BOOTH_PASSWORD`]; returns its base URL.
    pub async fn serve_booth(&self) -> String {
        let hash = gatehouse::password::hash_password_blocking(BOOTH_PASSWORD);
        let mut config = self.gate.config.clone();
        config.booth = BoothConfig {
            guard: vec![BoothGuard {
                username: "guard".into(),
                password_hash: hash,
            }],
        };
        config.validate().expect("the booth configuration is valid");
        let router = gatehouse::gate::http::local_router(self.gate.shared_handle(), &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    /// Stops the sync link and the gate.
    pub async fn finish(mut self) {
        if let Some(link) = self.link.take() {
            link.stop().await;
        }
        self.gate.shutdown_lenient().await;
    }
}

/// Waits (up to 10 s: the browser tests share two cores with Chromium) until `lane`'s simulated
/// arm is open; on timeout, fails with the lane's status, the I/O module's coil log and the
/// journal's tail.
pub async fn wait_arm_open(gate: &TestGate, lane: &str) {
    use gatehouse::sim::barrier::ArmState;
    let io = &gate.lane(lane).io;
    let opened = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while io.arm() != ArmState::Open {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    if opened.is_err() {
        let tail: Vec<_> = gate.events().await.into_iter().rev().take(12).collect();
        panic!(
            "lane {lane}: the arm did not open: arm {:?}, status {:?}, coils {:?}, journal tail {tail:#?}",
            io.arm(),
            gate.status(lane),
            io.coil_log()
        );
    }
}
