//! Harness additions for the administration page tests (kept apart from `support/`, which
//! another engineer owns): a central server whose gates sync with it over the **real** mutual
//! TLS link of `tests/common/sync_link.rs` (a site PKI in a temporary directory, the sync router
//! served by `gatehouse::tls::serve_mtls`, each gate's `SyncClient::run` with its own
//! certificate), people, vehicles and applicant accounts made through the central
//! repositories, and small waits on what a gate has received.

#![allow(dead_code, unreachable_pub)]

#[path = "../common/sync_link.rs"]
pub mod sync_link;

use std::sync::Arc;
use std::time::Duration;

use gatehouse::central::api::auth::{Role, hash_password_blocking};
use gatehouse::central::db::{Actor, Db};
use gatehouse::central::repo::operators::{self, NewOperator};
use gatehouse::central::repo::persons::{self, NewPerson, Person};
use gatehouse::central::repo::vehicles::{self, NewVehicle, Vehicle};
use gatehouse::sync::client::ClientOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::gate::{GateOptions, LaneSpec, TestGate, spawn_gate_with, wait_for};
use crate::support::{Central, PASSWORD, TestDb, seed};
use sync_link::{SitePki, SyncServer};

/// Sync timings for tests: health every 300 ms, long polls of 5 s.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        poll_wait: Duration::from_secs(5),
        batch: 1000,
        health_every: Duration::from_millis(300),
        offline_after: Duration::from_secs(5),
    }
}

/// One gate on simulated lanes, syncing with the centre.
pub struct SyncedGate {
    pub id: i64,
    pub gate: TestGate,
    stop: CancellationToken,
    runner: JoinHandle<()>,
}

/// The harness's campus (gates 1 and 2, one operator per role) with a sync listener and the
/// requested gates running and syncing.
pub struct AdminSite {
    pub db: TestDb,
    pub central: Central,
    pub sync: SyncServer,
    pub pki: SitePki,
    pub gates: Vec<SyncedGate>,
    _pki_dir: tempfile::TempDir,
}

/// Starts the campus; `gates` lists (gate id, its lanes) to run on pseudo-terminals.
pub async fn admin_site(db: TestDb, gates: &[(i64, &[LaneSpec])]) -> AdminSite {
    seed(&db.db).await;
    let central = Central::start(&db.db).await;
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(pki_dir.path());
    let sync = SyncServer::start(central.state.clone(), None, &pki).await;
    let mut running = Vec::new();
    for (id, lanes) in gates {
        let gate = spawn_gate_with(
            lanes,
            GateOptions {
                gate_id: *id as u16,
                ..GateOptions::default()
            },
        )
        .await;
        let client = Arc::new(pki.client(*id, &sync.url(), client_options()));
        let stop = CancellationToken::new();
        let runner = tokio::spawn(client.run(gate.shared_handle(), stop.clone()));
        running.push(SyncedGate {
            id: *id,
            gate,
            stop,
            runner,
        });
    }
    AdminSite {
        db,
        central,
        sync,
        pki,
        gates: running,
        _pki_dir: pki_dir,
    }
}

impl AdminSite {
    pub fn base(&self) -> String {
        self.central.url("")
    }

    pub fn gate(&self, id: i64) -> &TestGate {
        &self
            .gates
            .iter()
            .find(|g| g.id == id)
            .unwrap_or_else(|| panic!("gate {id} is not running"))
            .gate
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.db.pool())
            .await
            .unwrap()
    }

    /// Stops the sync clients, the gates and the sync listener.
    pub async fn shutdown(self) {
        for g in self.gates {
            g.stop.cancel();
            let _ = g.runner.await;
            g.gate.shutdown().await;
        }
        self.sync.shutdown().await;
        self.central.stop().await;
    }
}

fn office() -> Actor {
    Actor {
        operator_id: None,
        name: "测试保卫处".into(),
    }
}

/// A person with a blue-plated car registered to them.
pub async fn person_with_car(
    db: &Db,
    name: &str,
    category: &str,
    department: &str,
    plate: &str,
) -> (Person, Vehicle) {
    let person = persons::create(
        db,
        &office(),
        NewPerson {
            name: name.into(),
            category: category.into(),
            department: department.into(),
            phone: "13812345678".into(),
            id_card: String::new(),
        },
    )
    .await
    .unwrap();
    let vehicle = vehicles::create(
        db,
        &office(),
        NewVehicle {
            plate: plate.into(),
            plate_colour: "blue".into(),
            vehicle_type: "car".into(),
            owner_id: person.id,
            note: String::new(),
        },
    )
    .await
    .unwrap();
    (person, vehicle)
}

/// An applicant account (`applicant` role, the harness password) for `person_id`.
pub async fn applicant(db: &Db, username: &str, person_id: i64) {
    let op = operators::create(
        db,
        &office(),
        NewOperator {
            username: username.into(),
            display_name: username.into(),
            password_hash: hash_password_blocking(PASSWORD),
            roles: vec![Role::Applicant.as_str().into()],
            gates: vec![],
            department: String::new(),
        },
    )
    .await
    .unwrap();
    operators::link_person(db, &office(), op.id, person_id)
        .await
        .unwrap();
}

/// Waits until the gate's decision index knows the tag (it reached the gate through sync).
pub async fn wait_for_tag(gate: &TestGate, epc: &[u8]) {
    let epc = gatehouse::domain::Epc::from_bytes(epc).unwrap();
    wait_for("the tag to reach the gate through sync", || async {
        gate.handle()
            .shared()
            .index()
            .credential(&epc)
            .is_some()
            .then_some(())
    })
    .await
}

/// Waits until the gate has reported itself to the centre (its sync is up).
pub async fn wait_reported(db: &Db, gate_id: i64) {
    wait_for("the gate to report to the centre", || async {
        gatehouse::central::repo::sync::last_seen(db, gate_id)
            .await
            .unwrap()
            .map(|_| ())
    })
    .await
}

/// A valid 18-character ID-card number (GB 11643 check digit) ending in `serial`.
pub fn id_card(serial: u32) -> String {
    let body = format!("110105199001{:02}{:03}", 1 + serial % 28, serial % 1000);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(weights)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}
