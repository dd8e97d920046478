//! Harness additions for the administration page tests: a site of several gates (the web
//! harness's [`Central`] with its sync port over mutual TLS and a site PKI, each gate on
//! simulated lanes linked to it by the harness's real sync client, [`GateLink`]), people,
//! vehicles and applicant accounts made through the central repositories, and small waits on
//! what a gate has received.

#![allow(dead_code, unreachable_pub)]

use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Actor, Db};
use gatehouse::central::repo::operators::{self, NewOperator};
use gatehouse::central::repo::persons::{self, NewPerson, Person};
use gatehouse::central::repo::vehicles::{self, NewVehicle, Vehicle};
use gatehouse::password::hash_password_blocking;

use crate::support::gate::{LaneSpec, TestGate};
use crate::support::site::spawn_web_gate_with;
use crate::support::sync_link::SitePki;
use crate::support::{Central, GateLink, PASSWORD, TestDb, seed};

/// One gate on simulated lanes, syncing with the centre.
pub struct SyncedGate {
    pub id: i64,
    pub gate: TestGate,
    link: GateLink,
}

/// The harness's campus (gates 1 and 2, one operator per role) with the requested gates
/// running and syncing.
pub struct AdminSite {
    pub db: TestDb,
    pub central: Central,
    pub pki: SitePki,
    pub gates: Vec<SyncedGate>,
    _pki_dir: tempfile::TempDir,
}

/// Starts the campus; `gates` lists (gate id, its lanes) to run on pseudo-terminals.
pub async fn admin_site(db: TestDb, gates: &[(i64, &[LaneSpec])]) -> AdminSite {
    seed(&db.db).await;
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(pki_dir.path());
    let central = Central::start(&db, &pki).await;
    let mut running = Vec::new();
    for (id, lanes) in gates {
        let gate = spawn_web_gate_with(*id as u16, lanes).await;
        let link = GateLink::start(&gate, *id, &pki, &central);
        running.push(SyncedGate {
            id: *id,
            gate,
            link,
        });
    }
    AdminSite {
        db,
        central,
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
        crate::support::harness::count(&self.db.db, sql).await
    }

    /// Stops the sync links, the gates and the central server.
    pub async fn shutdown(mut self) {
        for g in self.gates {
            g.link.stop().await;
            g.gate.shutdown().await;
        }
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
            staff_no: String::new(),
            email: String::new(),
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

/// An applicant account (`applicant` role, the harness password, a Chinese display name from
/// `display_name_of`) for `person_id`.
pub async fn applicant(db: &Db, username: &str, person_id: i64) {
    let op = operators::create(
        db,
        &office(),
        NewOperator {
            username: username.into(),
            display_name: crate::support::harness::display_name_of(username),
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

/// A valid 18-character ID-card number ending in `serial`.
pub fn id_card(serial: u32) -> String {
    let body = format!("110105199001{:02}{:03}", 1 + serial % 28, serial % 1000);
    crate::support::harness::with_check_digit(&body)
}
