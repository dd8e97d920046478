//! The sync harness: a central server (API + sync router on a fresh SQLite or PostgreSQL
//! database), gates driven over pseudo-terminals by the simulators, and the network between
//! them as real TCP on loopback through a proxy the test can cut.
//!
//! The sync router is only ever reached over mutual TLS: each central instance has a site PKI
//! made in a temporary directory and serves the router with `tls::serve_mtls` and the
//! database's gate check, exactly as `gatehouse server run` does ([`sync_link`]); each gate's
//! client presents that gate's own certificate, and the centre knows the gate from it.

#![allow(dead_code, unreachable_pub)]

#[path = "../../gate/support/mod.rs"]
pub mod gate;
#[path = "../../common/central.rs"]
pub mod harness;
#[path = "../../common/sync_link.rs"]
pub mod sync_link;
#[path = "../../common/synced_gate.rs"]
pub mod synced_gate;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use gatehouse::central::api::auth::Role;
use gatehouse::sync::client::{ClientOptions, Pulled, SyncClient};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use self::gate::TestGate;
pub use self::harness::Office;
use self::harness::{TestApp, TestDb};
use self::sync_link::{SitePki, SyncServer};
pub use self::synced_gate::wait_for_tag;

/// A central instance: the admin API (called in-process) and the sync router served over
/// mutual TLS on a loopback port, with the site PKI whose CA the listener trusts.
pub struct Central {
    pub app: TestApp,
    pub pki: SitePki,
    pub sync: SyncServer,
    _pki_dir: tempfile::TempDir,
}

impl Central {
    /// A central server on a fresh database, with gates 1 and 2 and an operator per role, its
    /// sync port serving over mutual TLS.
    pub async fn start(t: TestDb) -> Central {
        let app = TestApp::spawn(t).await;
        let dir = tempfile::tempdir().unwrap();
        let pki = SitePki::create(dir.path());
        let sync = SyncServer::start(app.state.clone(), app.listen_url(), &pki).await;
        Central {
            app,
            pki,
            sync,
            _pki_dir: dir,
        }
    }

    /// A central server as [`Central::start`] makes it, signing visitor passes with the pass
    /// keys in `keys` (made by `pki::new_pass_key`), as `gatehouse server run` loads them.
    pub async fn start_with_pass_keys(t: TestDb, keys: &std::path::Path) -> Central {
        let app = TestApp::spawn(t).await;
        let signer = gatehouse::central::passes::start(&app.db, keys, true)
            .await
            .unwrap();
        let app = app.with_state(|s| s.passes = signer);
        let dir = tempfile::tempdir().unwrap();
        let pki = SitePki::create(dir.path());
        let sync = SyncServer::start(app.state.clone(), app.listen_url(), &pki).await;
        Central {
            app,
            pki,
            sync,
            _pki_dir: dir,
        }
    }

    /// Stops the sync listener and closes its connections: for the gates, the centre is gone.
    pub async fn stop_sync(&mut self) {
        self.sync.stop.cancel();
    }

    /// Serves the sync again on the same port, as a restarted centre does.
    pub async fn restart_sync(&mut self) {
        let addr = self.sync.addr;
        let listener = wait_for_port(addr).await;
        self.sync = SyncServer::on(
            listener,
            self.app.state.clone(),
            self.app.listen_url(),
            &self.pki,
        );
    }

    /// Another central instance on the same database (PostgreSQL): its own pool, app state,
    /// live hub and mutual-TLS sync port, trusting the same site CA.
    pub async fn second_instance(&self) -> (gatehouse::central::state::AppState, SyncServer) {
        let db = gatehouse::central::db::Db::open(&self.app.url)
            .await
            .unwrap();
        let state = gatehouse::central::state::AppState::new(db);
        let server = SyncServer::start(state.clone(), self.app.listen_url(), &self.pki).await;
        (state, server)
    }

    /// A sync client for gate `gate_id`, presenting its own certificate, talking to `url`.
    pub fn client(&self, gate_id: i64, url: &str) -> SyncClient {
        self.pki.client(gate_id, url, test_options())
    }

    /// An HTTPS client that presents gate `gate_id`'s certificate, for talking to the sync
    /// endpoints by hand (as a gate would, or as a misbehaving one).
    pub fn gate_http(&self, gate_id: i64) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.pki.client_tls(gate_id))
            .build()
            .unwrap()
    }

    /// An API call as `role`.
    pub async fn call(&self, method: Method, path: &str, role: Role, body: Option<Value>) -> Value {
        let (status, body) = self.app.call(method.clone(), path, Some(role), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }
}

impl Office for Central {
    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, Role::Security, Some(body))
            .await
    }
}

/// Binds `addr` again once the listener that held it has let go.
async fn wait_for_port(addr: SocketAddr) -> TcpListener {
    for _ in 0..200 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} stays taken");
}

/// A TCP proxy standing for the network between a gate and the centre: [`Proxy::cut`] drops
/// every connection and refuses new ones until [`Proxy::restore`].
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<JoinSet<()>>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.conns.lock().unwrap().abort_all();
    }
}

impl Proxy {
    pub async fn to(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let task = tokio::spawn({
            let (up, conns) = (up.clone(), conns.clone());
            async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    conns.lock().unwrap().spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            }
        });
        Proxy {
            addr,
            up,
            conns,
            task,
        }
    }

    /// The network goes down: open connections are dropped, new ones refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.conns.lock().unwrap().abort_all();
    }

    /// The network comes back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// The centre's sync base URL as a gate behind this proxy dials it (the sync
    /// certificate names 127.0.0.1).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

/// Short timings for tests: quick health reports and a short offline threshold.
pub fn test_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        poll_wait: Duration::from_secs(5),
        batch: 1000,
        health_every: Duration::from_millis(300),
        offline_after: Duration::from_secs(2),
    }
}

/// A gate's sync client and, when started, its runner.
pub struct Syncing {
    pub client: Arc<SyncClient>,
    pub proxy: Proxy,
    shutdown: CancellationToken,
    runner: Option<JoinHandle<()>>,
}

impl Syncing {
    /// A client for gate `gate_id`, with that gate's certificate, reaching `central`'s
    /// mutual-TLS sync port through a proxy.
    pub async fn connect(central: &Central, gate_id: i64) -> Syncing {
        let proxy = Proxy::to(central.sync.addr).await;
        let client = Arc::new(central.client(gate_id, &proxy.url()));
        Syncing {
            client,
            proxy,
            shutdown: CancellationToken::new(),
            runner: None,
        }
    }

    /// One pull for `gate`, which must bring a whole snapshot; its data version.
    pub async fn pull_snapshot(&self, gate: &TestGate) -> u64 {
        let Pulled::Snapshot { version, .. } = self
            .client
            .pull_once(gate.handle(), Duration::ZERO)
            .await
            .unwrap()
        else {
            panic!("expected a snapshot");
        };
        version
    }

    /// Starts the runner (every direction in its loop).
    pub fn run(&mut self, gate: &TestGate) {
        let runner = self
            .client
            .clone()
            .run(gate.shared_handle(), self.shutdown.clone());
        self.runner = Some(tokio::spawn(runner));
    }

    /// Stops the runner and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.runner.take() {
            r.await.unwrap();
        }
    }
}
