//! The web tests' harness: a real central server (SQLite, or PostgreSQL when `DATABASE_URL` is
//! set) serving the API and pages on one port and the sync router over mutual TLS on another
//! ([`Central`]), real gates on pseudo-terminals with the device simulators (the gate harness
//! of `tests/gate`, [`gate`]), each linked to the centre by its real sync client over mutual
//! TLS with a site PKI ([`sync_link`], [`GateLink`]), and a real headless Chromium driven
//! through chromedriver ([`browser`]).
//!
//! The centre keeps uploaded camera photos on disk (`[photos]`' default backend), so pages draw
//! the photos the gates' sync uploads.
//!
//! The central server runs on a Tokio runtime of its own, so that [`Central::stop`] stops it as
//! a process exit would: every task (listeners, open page connections, sync long polls) ends
//! and every socket closes; [`Central::restart`] serves the same database on the same ports.

#![allow(dead_code, unreachable_pub)]

pub mod browser;
#[path = "../../gate/support/mod.rs"]
pub mod gate;
#[path = "../../common/central.rs"]
pub mod harness;
pub mod site;
#[path = "../../common/sync_link.rs"]
pub mod sync_link;
#[path = "../../common/synced_gate.rs"]
pub mod synced_gate;

use std::net::SocketAddr;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::central::api::auth::{Role, create_session};
use gatehouse::central::db::{Db, DbKind};
use gatehouse::central::repo::operators;
use gatehouse::central::state::AppState;
use gatehouse::sync::client::{ClientOptions, SyncClient};
use gatehouse::web::site as app;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::harness::{
    Office, PASSWORD, TestDb, ci, create_operator, each_database, postgres, postgres_url, sqlite,
};
use self::sync_link::{SitePki, SyncServer};

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
        create_operator(db, username, *role, gates).await;
    }
}

/// A central server: the API and pages on [`Central::addr`], the sync router over mutual TLS
/// on [`Central::sync_addr`], on a runtime of its own.
pub struct Central {
    pub addr: SocketAddr,
    pub sync_addr: SocketAddr,
    url: String,
    postgres: bool,
    pki_dir: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Central {
    /// Serves `db` on fresh ports, its sync port with `pki`'s server certificate.
    pub async fn start(db: &TestDb, pki: &SitePki) -> Central {
        let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sync = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Central::serve(
            db.url.clone(),
            db.kind == DbKind::Postgres,
            pki.dir.clone(),
            http,
            sync,
        )
        .await
    }

    async fn serve(
        url: String,
        postgres: bool,
        pki_dir: PathBuf,
        http: std::net::TcpListener,
        sync: std::net::TcpListener,
    ) -> Central {
        let (addr, sync_addr) = (http.local_addr().unwrap(), sync.local_addr().unwrap());
        http.set_nonblocking(true).unwrap();
        sync.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("central")
            .enable_all()
            .build()
            .unwrap();
        let (ready, started) = oneshot::channel::<()>();
        {
            let (url, pki_dir) = (url.clone(), pki_dir.clone());
            runtime.spawn(async move {
                // The server opens the database itself, as `gatehouse server run` does.
                let db = Db::open(&url).await.expect("the central database opens");
                let mut state = AppState::new(db);
                // Uploaded photos on disk, as `gatehouse server run` keeps them by default
                // (`<data_dir>/photos`); under the site's PKI directory, which the site keeps
                // (and a restarted centre finds again).
                state.photos =
                    gatehouse::central::photos::Photos::disk(&pki_dir.join("centre-photos"), 90)
                        .expect("the centre's photo directory opens");
                let service =
                    app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
                let http = tokio::net::TcpListener::from_std(http).unwrap();
                tokio::spawn(async move { axum::serve(http, service).await.unwrap() });
                let sync = tokio::net::TcpListener::from_std(sync).unwrap();
                let pki = SitePki { dir: pki_dir };
                let server = SyncServer::on(sync, state, postgres.then_some(url), &pki);
                let _ = ready.send(());
                // Serve until the runtime is shut down.
                server.stop.cancelled().await;
            });
        }
        started.await.expect("the central server starts");
        Central {
            addr,
            sync_addr,
            url,
            postgres,
            pki_dir,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The sync port's base URL, for the gates.
    pub fn sync_url(&self) -> String {
        format!("https://{}", self.sync_addr)
    }

    /// Stops the server as a process exit would: its runtime is shut down, so the listeners,
    /// every open connection (live pages, the gates' long polls) and every task end. Returns
    /// once neither port accepts a connection.
    pub async fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        for addr in [self.addr, self.sync_addr] {
            gate::wait_for(
                &format!("the central server's port {addr} to close"),
                || async {
                    tokio::net::TcpStream::connect(addr)
                        .await
                        .is_err()
                        .then_some(())
                },
            )
            .await;
        }
    }

    /// Starts the stopped server again on the same database and the same ports.
    pub async fn restart(&mut self) {
        assert!(self.runtime.is_none(), "stop the central server first");
        let bind = |addr: SocketAddr| async move {
            gate::wait_for(&format!("{addr} to be free again"), || async {
                std::net::TcpListener::bind(addr).ok()
            })
            .await
        };
        let http = bind(self.addr).await;
        let sync = bind(self.sync_addr).await;
        let started = Central::serve(
            self.url.clone(),
            self.postgres,
            self.pki_dir.clone(),
            http,
            sync,
        )
        .await;
        *self = started;
    }

    /// A bearer session for `username` (an operator of [`OPERATORS`] or one a test created).
    pub async fn token(&self, db: &Db, username: &str) -> String {
        let op = operators::credentials(db, username)
            .await
            .unwrap()
            .expect("a harness operator");
        create_session(db, op.operator.id, 3_600_000)
            .await
            .unwrap()
            .token
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Sync timings for tests: quick health reports (a restarted centre knows the gate at once),
/// short long polls.
pub fn sync_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        poll_wait: Duration::from_secs(5),
        batch: 1000,
        health_every: Duration::from_millis(300),
        offline_after: Duration::from_secs(30),
    }
}

/// A gate's real sync client (every direction: data down, events up, commands, health) running
/// beside the gate until [`GateLink::stop`].
pub struct GateLink {
    pub client: Arc<SyncClient>,
    stop: CancellationToken,
    runner: Option<JoinHandle<()>>,
}

impl GateLink {
    /// Starts gate `gate_id`'s sync client, presenting its certificate from `pki`.
    pub fn start(
        gate: &gate::TestGate,
        gate_id: i64,
        pki: &SitePki,
        central: &Central,
    ) -> GateLink {
        let client = Arc::new(pki.client(gate_id, &central.sync_url(), sync_options()));
        let stop = CancellationToken::new();
        let runner = tokio::spawn(client.clone().run(gate.shared_handle(), stop.clone()));
        GateLink {
            client,
            stop,
            runner: Some(runner),
        }
    }

    /// Stops the runner and waits for it (it releases the gate).
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(runner) = self.runner.take() {
            runner.await.unwrap();
        }
    }
}

impl Drop for GateLink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A plain HTTP client for the central API (reqwest is built without a default TLS provider:
/// it gets ring's, though it only speaks HTTP here).
pub fn http() -> reqwest::Client {
    http_builder().build().unwrap()
}

/// Like [`http`], but a redirect is returned to the test rather than followed (pages answer
/// forms with 303s).
pub fn http_no_redirects() -> reqwest::Client {
    http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn http_builder() -> reqwest::ClientBuilder {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder().use_preconfigured_tls(tls)
}

/// The central API as an operator, over HTTP.
pub struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    pub async fn new(central: &Central, db: &Db, username: &str) -> Api {
        Api {
            base: central.url(""),
            token: central.token(db, username).await,
            client: http(),
        }
    }

    /// A call that must succeed; returns its JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

impl Office for Api {
    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Waits until the gate holds the centre's data as it is now (its data version reached the
/// centre's change-log head).
pub async fn wait_synced(db: &Db, gate: &gate::TestGate) {
    let head = gatehouse::central::repo::sync::change_head(db)
        .await
        .unwrap();
    gate::wait_for("the gate to hold the centre's data", || async {
        let version = gate.handle().shared().store.data_version().await.unwrap();
        (version >= head).then_some(())
    })
    .await
}

/// Waits until the centre has heard from gate `gate_id` (so commands can reach it).
pub async fn wait_connected(db: &Db, gate_id: i64) {
    gate::wait_for("the gate to report to the centre", || async {
        gatehouse::central::repo::sync::last_seen(db, gate_id)
            .await
            .unwrap()
            .filter(|seen| gatehouse::central::db::now_ms() - seen < 2_000)
            .map(|_| ())
    })
    .await
}
