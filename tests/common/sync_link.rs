//! A real gate↔centre link for integration tests: a site PKI made in a temporary directory
//! (`gatehouse::pki`, as `gatehouse pki init/issue-*` make it), the sync router served over
//! mutual TLS by `gatehouse::tls::serve_mtls` with the database's gate check — exactly what
//! `gatehouse server run` serves — and gate clients that present their own certificate.
//!
//! Included by `#[path]` from each test binary that needs a link (`tests/sync`, `tests/web`),
//! so that no test talks to the sync router without TLS.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse::central::api::AppState;
use gatehouse::central::gate_auth::DbGateCheck;
use gatehouse::pki::{self, CertPaths, Validity};
use gatehouse::sync::client::{ClientOptions, SyncClient, client_tls};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The name on the sync certificate; it also carries `127.0.0.1`, which the gates dial.
pub const SYNC_HOST: &str = "localhost";

/// A site PKI in a directory: the CA, the sync server's certificate, gate certificates on
/// demand.
pub struct SitePki {
    pub dir: PathBuf,
}

impl SitePki {
    /// Creates the CA and the sync server's certificate in `dir` (which must not hold a CA).
    pub fn create(dir: &Path) -> SitePki {
        pki::init_ca(dir, "Gatehouse Test").expect("the test CA is created");
        pki::issue_server(
            dir,
            SYNC_HOST,
            &["127.0.0.1".to_string()],
            Validity::days(30).unwrap(),
        )
        .expect("the sync certificate is issued");
        SitePki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        pki::ca_paths(&self.dir).cert
    }

    pub fn server(&self) -> CertPaths {
        pki::server_paths(&self.dir, SYNC_HOST)
    }

    /// Gate `gate_id`'s certificate and key, issued on first use.
    pub fn gate(&self, gate_id: i64) -> CertPaths {
        let paths = pki::gate_paths(&self.dir, gate_id);
        if !paths.cert.exists() {
            pki::issue_gate(&self.dir, gate_id, Validity::days(30).unwrap())
                .expect("the gate certificate is issued");
        }
        paths
    }

    /// The sync listener's TLS configuration (client certificates required).
    pub fn server_tls(&self) -> Arc<rustls::ServerConfig> {
        let server = self.server();
        Arc::new(
            gatehouse::tls::server_config(
                &gatehouse::tls::load_ca(&self.ca()).unwrap(),
                &gatehouse::tls::load_identity(&server.cert, &server.key).unwrap(),
            )
            .unwrap(),
        )
    }

    /// Gate `gate_id`'s client TLS configuration.
    pub fn client_tls(&self, gate_id: i64) -> rustls::ClientConfig {
        let gate = self.gate(gate_id);
        client_tls(&self.ca(), &gate.cert, &gate.key).unwrap()
    }

    /// A sync client for gate `gate_id` talking to `url` (e.g. `https://127.0.0.1:PORT`).
    pub fn client(&self, gate_id: i64, url: &str, options: ClientOptions) -> SyncClient {
        SyncClient::new(gate_id, url, Some(self.client_tls(gate_id)), options).unwrap()
    }
}

/// The sync router of `state` served over mutual TLS on a loopback port until `stop`; with
/// `listen` (a PostgreSQL URL) changes made by other instances are pushed too.
pub struct SyncServer {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl SyncServer {
    pub async fn start(state: AppState, listen: Option<String>, pki: &SitePki) -> SyncServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        SyncServer::on(listener, state, listen, pki)
    }

    /// The same on a listener the caller bound (e.g. to come back on the same port).
    pub fn on(
        listener: TcpListener,
        state: AppState,
        listen: Option<String>,
        pki: &SitePki,
    ) -> SyncServer {
        let addr = listener.local_addr().unwrap();
        let check = Arc::new(DbGateCheck::new(state.db.clone()));
        let router = gatehouse::sync::server::router(state, listen);
        let stop = CancellationToken::new();
        let task = tokio::spawn(gatehouse::tls::serve_mtls(
            listener,
            pki.server_tls(),
            router,
            check,
            stop.clone().cancelled_owned(),
        ));
        SyncServer {
            addr,
            stop,
            task: Some(task),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops serving and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
