//! The web tests' harness: a real central server on a TCP port (SQLite, or PostgreSQL when
//! `DATABASE_URL` is set), real gates on pseudo-terminals with the device simulators
//! ([`gate`]), the booth page served from a gate, and a real headless Chromium driven through
//! chromedriver ([`browser`]).
//!
//! [`forward_gate_events`] stands in for the gate↔centre sync (issue 5) until it lands: it
//! uploads a gate's unacknowledged journal events through `central::ingest::accept` and
//! acknowledges them in the journal, exactly what the sync does. Replace it with the real sync
//! at merge.

#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod gate;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use gatehouse::central::api::auth::{Role, create_session, hash_password_blocking};
use gatehouse::central::api::{AppState, app};
use gatehouse::central::db::{Actor, Db, DbKind};
use gatehouse::central::repo::operators::{self, NewOperator};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The password of every operator the harness creates.
pub const PASSWORD: &str = "Gatehouse-Test-2026";

fn password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password_blocking(PASSWORD))
}

/// Whether the tests run under CI, where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The database a test runs on; dropped with it.
pub struct TestDb {
    pub db: Db,
    pub kind: DbKind,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_admin.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(admin) = Db::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(admin.pool())
                                .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh SQLite database.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("central.db");
    let db = Db::open_sqlite(&path).await.unwrap();
    TestDb {
        db,
        kind: DbKind::Sqlite,
        url: format!("sqlite://{}", path.display()),
        _dir: Some(dir),
        pg_admin: None,
    }
}

/// A fresh PostgreSQL database when `DATABASE_URL` is set (required under CI).
pub async fn postgres() -> Option<TestDb> {
    let admin_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if ci() => {
            panic!("CI=true but DATABASE_URL is not set: the PostgreSQL suite must run in CI")
        }
        _ => return None,
    };
    let name = format!(
        "gatehouse_web_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let admin = Db::connect(&admin_url)
        .await
        .expect("DATABASE_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    let i = admin_url.rfind('/').unwrap();
    let url = format!("{}/{name}", &admin_url[..i]);
    let db = Db::open(&url).await.unwrap();
    Some(TestDb {
        db,
        kind: DbKind::Postgres,
        url,
        _dir: None,
        pg_admin: Some((admin_url, name)),
    })
}

/// SQLite, and PostgreSQL when configured.
pub async fn each_database() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    if let Some(pg) = postgres().await {
        dbs.push(pg);
    }
    dbs
}

/// The operators the harness creates: (user name, role, gates).
pub const OPERATORS: &[(&str, Role, &[i64])] = &[
    ("admin", Role::Admin, &[]),
    ("security", Role::Security, &[]),
    ("guard", Role::Guard, &[1]),
    ("guard2", Role::Guard, &[2]),
    ("viewer", Role::Viewer, &[]),
    ("approver", Role::Approver, &[]),
];

/// Gates 1 (北门: lanes `entry` and `exit`) and 2 (南门: lane `entry`), and one operator per
/// entry of [`OPERATORS`].
pub async fn seed(db: &Db) {
    for name in ["北门", "南门"] {
        sqlx::query("INSERT INTO gates (name, created_ms, updated_ms) VALUES ($1, 0, 0)")
            .bind(name)
            .execute(db.pool())
            .await
            .unwrap();
    }
    for (gate, key, name, direction) in [
        (1i64, "entry", "入口", "entry"),
        (1, "exit", "出口", "exit"),
        (2, "entry", "入口", "entry"),
    ] {
        sqlx::query(
            "INSERT INTO lanes (gate_id, lane_key, name, direction, created_ms, updated_ms) \
             VALUES ($1, $2, $3, $4, 0, 0)",
        )
        .bind(gate)
        .bind(key)
        .bind(name)
        .bind(direction)
        .execute(db.pool())
        .await
        .unwrap();
    }
    for (username, role, gates) in OPERATORS {
        operators::create(
            db,
            &Actor::system(),
            NewOperator {
                username: (*username).into(),
                display_name: format!("测试{username}"),
                password_hash: password_hash().into(),
                roles: vec![role.as_str().into()],
                gates: gates.to_vec(),
                department: if *role == Role::Approver {
                    "计算机学院".into()
                } else {
                    String::new()
                },
            },
        )
        .await
        .unwrap();
    }
}

/// A central server listening on 127.0.0.1.
pub struct Central {
    pub state: AppState,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Central {
    /// Serves the whole app (API and pages) on `db`, on a fresh port.
    pub async fn start(db: &Db) -> Central {
        Central::start_on(db, "127.0.0.1:0").await
    }

    /// Serves on a given address (to restart on the same port).
    pub async fn start_on(db: &Db, addr: &str) -> Central {
        let state = AppState::new(db.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Central {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server: open connections (live pages) are cut, the port is closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Live pages hold connections open and a graceful shutdown would wait for them:
            // the listener goes away with the task.
            task.abort();
            let _ = task.await;
        }
    }

    /// A bearer session for `username`.
    pub async fn token(&self, username: &str) -> String {
        let op = operators::credentials(&self.state.db, username)
            .await
            .unwrap()
            .expect("a harness operator");
        create_session(&self.state.db, op.operator.id, 3_600_000)
            .await
            .unwrap()
            .token
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Stand-in for the gate↔centre sync (issue 5), to be replaced by it at merge: uploads every
/// journal event the centre has not acknowledged through `central::ingest::accept` (which
/// stores them once and publishes them to the live pages) and acknowledges them in the gate's
/// journal. Returns how many were newly stored.
pub async fn forward_gate_events(central: &AppState, gate_id: i64, gate: &gate::TestGate) -> u64 {
    let journal = gate.handle().journal();
    let after = gatehouse::central::repo::events::watermark(&central.db, gate_id)
        .await
        .unwrap();
    let events = journal.read_after(after, 10_000).await.unwrap();
    if events.is_empty() {
        return 0;
    }
    let outcome = gatehouse::central::ingest::accept(central, gate_id, &events)
        .await
        .unwrap();
    journal
        .acknowledge(outcome.highest_contiguous)
        .await
        .unwrap();
    outcome.stored
}
