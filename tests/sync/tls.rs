//! The site PKI and the mutual-TLS listener, over real TLS on loopback: a tiny axum router that
//! echoes the `GateIdentity` it got, served by `tls::serve_mtls_with` with the centre's real
//! gate check (`DbGateCheck`) on a fresh central database, and real clients — reqwest built
//! from `gate_client_config`, a hand-driven HTTP/1.1 connection, raw TCP for plain HTTP.
//! Every refusal also checks that the handler was never reached.

use crate::support::harness as db;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use chrono::Utc;
use gatehouse::central::db::{Actor, Db};
use gatehouse::central::gate_auth::DbGateCheck;
use gatehouse::central::repo::gates::{self, NewGate};
use gatehouse::pki::{self, Validity};
use gatehouse::tls::GateIdentity;
use gatehouse::tls::{self, GateCheck, MtlsOptions, SiteCa, TlsError};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A site: its PKI directory with the CA and a server certificate for 127.0.0.1.
struct Site {
    dir: tempfile::TempDir,
    ca: SiteCa,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        pki::init_ca(dir.path(), "测试大学").unwrap();
        pki::issue_server(
            dir.path(),
            "localhost",
            &["127.0.0.1".into()],
            Validity::days(30).unwrap(),
        )
        .unwrap();
        let ca = tls::load_ca(&pki::ca_paths(dir.path()).cert).unwrap();
        Site { dir, ca }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let paths = pki::server_paths(self.path(), "localhost");
        let identity = tls::load_identity(&paths.cert, &paths.key).unwrap();
        Arc::new(tls::server_config(&self.ca, &identity).unwrap())
    }

    /// Issues gate `id`'s certificate and returns a client config presenting it.
    fn gate_config(&self, id: i64) -> ClientConfig {
        pki::issue_gate(self.path(), id, Validity::days(30).unwrap()).unwrap();
        self.config_presenting(&pki::gate_paths(self.path(), id))
    }

    fn config_presenting(&self, paths: &pki::CertPaths) -> ClientConfig {
        let identity = tls::load_identity(&paths.cert, &paths.key).unwrap();
        tls::gate_client_config(&self.ca, &identity).unwrap()
    }

    /// Trusts the site CA but presents no certificate.
    fn anonymous_config(&self) -> ClientConfig {
        ClientConfig::builder_with_provider(tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(self.ca.roots())
            .with_no_client_auth()
    }
}

/// A running listener and how often its handler was reached.
struct Listener {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// A listener whose gates are checked against `db`, with [`quick`] options.
    async fn over(site: &Site, db: &Db) -> Listener {
        Listener::spawn(site, Arc::new(DbGateCheck::new(db.clone())), quick()).await
    }

    async fn spawn(site: &Site, check: Arc<dyn GateCheck>, options: MtlsOptions) -> Listener {
        let hits = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new()
            .route(
                "/whoami",
                get(
                    |State(hits): State<Arc<AtomicUsize>>,
                     Extension(who): Extension<GateIdentity>| async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        axum::Json(serde_json::json!({ "gate_id": who.gate_id }))
                    },
                ),
            )
            .with_state(hits.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tls::serve_mtls_with(
            listener,
            site.server_config(),
            router,
            check,
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Listener {
            addr,
            hits,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/whoami", self.addr.port())
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Asks the listener to stop and waits for it (bounded).
    async fn shut_down(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the listener stops within its grace period")
            .unwrap();
    }
}

fn quick() -> MtlsOptions {
    MtlsOptions {
        handshake_timeout: Duration::from_millis(500),
        recheck_after: Duration::ZERO,
        shutdown_grace: Duration::from_secs(2),
    }
}

async fn new_gate(db: &Db, enabled: bool) -> i64 {
    gates::create(
        db,
        &Actor::system(),
        NewGate {
            name: "北门".into(),
            name_en: String::new(),
            anti_passback: "off".into(),
            offline_policy: "cached".into(),
            enabled,
        },
    )
    .await
    .unwrap()
    .id
}

async fn set_enabled(db: &Db, id: i64, enabled: bool) {
    gates::update(
        db,
        &Actor::system(),
        id,
        NewGate {
            name: "北门".into(),
            name_en: String::new(),
            anti_passback: "off".into(),
            offline_policy: "cached".into(),
            enabled,
        },
    )
    .await
    .unwrap();
}

fn client(config: ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends one request to `listener` over `config`, which its handshake must refuse for `reason`
/// (a word of the error's chain) before any handler runs; then shuts the listener down.
async fn assert_refused(listener: Listener, config: ClientConfig, reason: &str) {
    let e = client(config).get(listener.url()).send().await.unwrap_err();
    assert!(
        chain(&e).contains(reason),
        "refused for the wrong reason: {}",
        chain(&e)
    );
    assert_eq!(listener.hits(), 0);
    listener.shut_down().await;
}

/// The error and all its causes, for assertions on why a request failed.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(" / ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// One HTTP/1.1 connection driven by hand, so a test knows requests share it.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Body>,
    driver: tokio::task::JoinHandle<Result<(), hyper::Error>>,
}

impl Connection {
    async fn open(addr: std::net::SocketAddr, config: ClientConfig) -> Connection {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        Connection {
            sender,
            driver: tokio::spawn(conn),
        }
    }

    async fn get(&mut self, path: &str) -> Result<(StatusCode, serde_json::Value), hyper::Error> {
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(
                Request::get(path)
                    .header("host", "127.0.0.1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
            .await
            .unwrap();
        Ok((status, serde_json::from_slice(&bytes).unwrap()))
    }
}

#[tokio::test]
async fn a_valid_gate_certificate_is_served_and_its_gate_id_reaches_the_handler() {
    let site = Site::new();
    let t = db::sqlite().await;
    let gate = new_gate(&t.db, true).await;
    let listener = Listener::over(&site, &t.db).await;
    let http = client(site.gate_config(gate));
    for _ in 0..2 {
        let response = http.get(listener.url()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({ "gate_id": gate }));
    }
    assert_eq!(listener.hits(), 2);
    listener.shut_down().await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let site = Site::new();
    let t = db::sqlite().await;
    new_gate(&t.db, true).await;
    let listener = Listener::over(&site, &t.db).await;
    assert_refused(listener, site.anonymous_config(), "CertificateRequired").await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let site = Site::new();
    let other = tempfile::tempdir().unwrap();
    pki::init_ca(other.path(), "别的学校").unwrap();
    pki::issue_gate(other.path(), 1, Validity::days(30).unwrap()).unwrap();
    let t = db::sqlite().await;
    let gate = new_gate(&t.db, true).await;
    assert_eq!(gate, 1);
    let listener = Listener::over(&site, &t.db).await;
    // Trusts the real site CA (so the server is accepted) but presents the foreign gate 1.
    let config = site.config_presenting(&pki::gate_paths(other.path(), 1));
    assert_refused(listener, config, "UnknownCA").await;
}

#[tokio::test]
async fn an_expired_gate_certificate_is_refused() {
    let site = Site::new();
    let t = db::sqlite().await;
    let gate = new_gate(&t.db, true).await;
    let now = Utc::now();
    let expired = Validity::between(
        now - chrono::Duration::days(30),
        now - chrono::Duration::days(1),
    )
    .unwrap();
    pki::issue_gate(site.path(), gate, expired).unwrap();
    let paths = pki::gate_paths(site.path(), gate);
    // Loading it works (a gate must still start offline), and says it is expired.
    let identity = tls::load_identity(&paths.cert, &paths.key).unwrap();
    assert!(matches!(
        identity.check_validity(now),
        Err(TlsError::Expired { .. })
    ));
    let listener = Listener::over(&site, &t.db).await;
    let config = tls::gate_client_config(&site.ca, &identity).unwrap();
    assert_refused(listener, config, "CertificateExpired").await;
}

#[tokio::test]
async fn a_server_certificate_presented_as_a_client_certificate_is_refused() {
    let site = Site::new();
    let t = db::sqlite().await;
    new_gate(&t.db, true).await;
    let listener = Listener::over(&site, &t.db).await;
    let config = site.config_presenting(&pki::server_paths(site.path(), "localhost"));
    // webpki refuses it for lacking the clientAuth usage.
    assert_refused(listener, config, "UnsupportedCertificate").await;
}

#[tokio::test]
async fn plain_http_on_the_sync_port_gets_no_http_answer() {
    let site = Site::new();
    let t = db::sqlite().await;
    new_gate(&t.db, true).await;
    let listener = Listener::over(&site, &t.db).await;
    let mut tcp = TcpStream::connect(listener.addr).await.unwrap();
    tcp.write_all(b"GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // The server closes the connection: reading ends (EOF or reset) well before the timeout.
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept a plain-HTTP connection open");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(listener.hits(), 0);
    listener.shut_down().await;
}

#[tokio::test]
async fn a_gate_disabled_centrally_is_refused_and_its_open_connection_is_closed() {
    for t in db::each_database().await {
        let site = Site::new();
        let gate = new_gate(&t.db, true).await;
        let listener = Listener::over(&site, &t.db).await;
        let config = site.gate_config(gate);

        // Enabled: served, on a connection that stays open.
        let mut open = Connection::open(listener.addr, config.clone()).await;
        let (status, body) = open.get("/whoami").await.unwrap();
        assert_eq!(status, StatusCode::OK, "{:?}", t.kind);
        assert_eq!(body["gate_id"], gate);

        set_enabled(&t.db, gate, false).await;

        // The open connection's next request is refused, and the connection is closed.
        let (status, body) = open.get("/whoami").await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{:?}", t.kind);
        assert_eq!(body["code"], "gate_disabled");
        assert!(open.get("/whoami").await.is_err(), "{:?}", t.kind);
        let _ = tokio::time::timeout(Duration::from_secs(5), open.driver)
            .await
            .expect("the refused connection is closed");

        // A new connection is refused before any HTTP.
        let e = client(config.clone())
            .get(listener.url())
            .send()
            .await
            .unwrap_err();
        assert!(
            e.is_connect() || e.is_request(),
            "{:?}: {}",
            t.kind,
            chain(&e)
        );
        assert_eq!(listener.hits(), 1, "{:?}", t.kind);

        // Enabled again: served again.
        set_enabled(&t.db, gate, true).await;
        let response = client(config).get(listener.url()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{:?}", t.kind);
        listener.shut_down().await;
    }
}

#[tokio::test]
async fn a_gate_the_centre_does_not_know_is_refused() {
    let site = Site::new();
    let t = db::sqlite().await;
    let known = new_gate(&t.db, true).await;
    let listener = Listener::over(&site, &t.db).await;
    let stranger = known + 41;
    let e = client(site.gate_config(stranger))
        .get(listener.url())
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect() || e.is_request(), "{}", chain(&e));
    assert_eq!(listener.hits(), 0);
    listener.shut_down().await;
}

#[tokio::test]
async fn a_client_that_never_starts_the_handshake_is_disconnected() {
    let site = Site::new();
    let t = db::sqlite().await;
    let listener = Listener::over(&site, &t.db).await;
    let mut tcp = TcpStream::connect(listener.addr).await.unwrap();
    let mut buf = [0u8; 16];
    // handshake_timeout is 500 ms: the server hangs up long before 5 s.
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("a silent client is disconnected after the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    listener.shut_down().await;
}

#[tokio::test]
async fn shutdown_ends_the_listener_with_a_gate_connection_still_open() {
    let site = Site::new();
    let t = db::sqlite().await;
    let gate = new_gate(&t.db, true).await;
    let listener = Listener::over(&site, &t.db).await;
    let addr = listener.addr;
    let mut open = Connection::open(addr, site.gate_config(gate)).await;
    assert_eq!(open.get("/whoami").await.unwrap().0, StatusCode::OK);
    listener.shut_down().await;
    // The idle connection was closed and nothing listens any more.
    tokio::time::timeout(Duration::from_secs(5), open.driver)
        .await
        .expect("the open connection is closed on shutdown")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_gate_refuses_a_server_that_presents_a_gate_certificate() {
    let site = Site::new();
    let t = db::sqlite().await;
    let gate = new_gate(&t.db, true).await;
    pki::issue_gate(site.path(), 99, Validity::days(30).unwrap()).unwrap();
    let impostor = pki::gate_paths(site.path(), 99);
    let identity = tls::load_identity(&impostor.cert, &impostor.key).unwrap();
    let config = Arc::new(tls::server_config(&site.ca, &identity).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tls::serve_mtls_with(
        listener,
        config,
        axum::Router::new(),
        Arc::new(DbGateCheck::new(t.db.clone())),
        quick(),
        async move {
            let _ = stopped.await;
        },
    ));
    let e = client(site.gate_config(gate))
        .get(format!("https://127.0.0.1:{}/", addr.port()))
        .send()
        .await
        .unwrap_err();
    // The gate's own check: a gate certificate lacks the serverAuth usage.
    assert!(
        chain(&e).contains("invalid peer certificate"),
        "refused for the wrong reason: {}",
        chain(&e)
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn the_admin_port_serves_https_without_a_client_certificate_and_nothing_over_plain_http() {
    let site = Site::new();
    let paths = pki::server_paths(site.path(), "localhost");
    let identity = tls::load_identity(&paths.cert, &paths.key).unwrap();
    let config = Arc::new(tls::https_server_config(&identity).unwrap());
    let router =
        axum::Router::new().route(
            "/peer",
            get(
                |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                    std::net::SocketAddr,
                >| async move { peer.ip().to_string() },
            ),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(tls::serve_https(
        listener,
        config,
        router,
        quick(),
        async move {
            let _ = stopped.await;
        },
    ));

    let response = client(site.anonymous_config())
        .get(format!("https://127.0.0.1:{}/peer", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "127.0.0.1");

    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept a plain-HTTP connection open");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn load_identity_says_precisely_what_is_wrong_with_the_files() {
    let site = tempfile::tempdir().unwrap();
    let dir = site.path();
    pki::init_ca(dir, "site").unwrap();
    pki::issue_gate(dir, 1, Validity::days(30).unwrap()).unwrap();
    pki::issue_gate(dir, 2, Validity::days(30).unwrap()).unwrap();
    let one = pki::gate_paths(dir, 1);
    let two = pki::gate_paths(dir, 2);
    let not_pem = dir.join("not-pem.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing: PathBuf = dir.join("missing.crt");

    let e = tls::load_identity(&one.cert, &two.key).unwrap_err();
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "the certificate {} does not match the key {}",
            one.cert.display(),
            two.key.display()
        )
    );
    let e = tls::load_identity(&missing, &one.key).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{} does not exist", missing.display())
    );
    let e = tls::load_identity(&not_pem, &one.key).unwrap_err();
    assert!(matches!(e, TlsError::NotPem(_)), "{e}");
    // A key where the certificate should be, and the other way round.
    let e = tls::load_identity(&one.key, &one.key).unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate(_)), "{e}");
    let e = tls::load_identity(&one.cert, &one.cert).unwrap_err();
    assert!(matches!(e, TlsError::NoKey(_)), "{e}");
    assert!(tls::load_identity(&one.cert, &one.key).is_ok());
    let e = tls::load_ca(&missing).unwrap_err();
    assert!(matches!(e, TlsError::Missing(_)), "{e}");
}

#[test]
fn pki_init_and_issue_gate_write_private_keys_and_never_overwrite_the_ca() {
    use std::os::unix::fs::PermissionsExt as _;
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("pki");
    let gatehouse = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .env_remove("GATEHOUSE_PKI_DIR")
            .output()
            .unwrap()
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // Issuing before the CA exists says what to do.
    let out = gatehouse(&["pki", "issue-gate", "7"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gatehouse pki init"), "{err}");

    let out = gatehouse(&["pki", "init", "--site", "测试大学"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Gatehouse Site CA 测试大学"), "{stdout}");
    assert!(stdout.contains("SHA-256:"), "{stdout}");
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    let ca_before = std::fs::read(dir.join("ca.crt")).unwrap();
    let key_before = std::fs::read(dir.join("ca.key")).unwrap();

    let out = gatehouse(&["pki", "issue-gate", "7", "--days", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("URI:urn:gatehouse:gate:7"), "{stdout}");
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    assert_eq!(mode(&dir.join("gate-7.key")), 0o600);
    assert_eq!(mode(&dir.join("gate-7.crt")), 0o644);
    let identity = tls::load_identity(&dir.join("gate-7.crt"), &dir.join("gate-7.key")).unwrap();
    assert!(
        identity.subject().contains("CN=gate-7"),
        "{}",
        identity.subject()
    );

    let out = gatehouse(&[
        "pki",
        "issue-server",
        "gatehouse.example.edu.cn",
        "--san",
        "10.0.0.5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mode(&dir.join("server-gatehouse.example.edu.cn.key")),
        0o600
    );

    // A second init refuses and leaves the CA as it was.
    let out = gatehouse(&["pki", "init"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), ca_before);
    assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), key_before);

    // Bad input is refused with a message and writes nothing.
    let out = gatehouse(&["pki", "issue-gate", "0"]);
    assert!(!out.status.success());
    let out = gatehouse(&["pki", "issue-server", "../escape"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid name"), "{err}");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ca.crt",
            "ca.key",
            "gate-7.crt",
            "gate-7.key",
            "server-gatehouse.example.edu.cn.crt",
            "server-gatehouse.example.edu.cn.key"
        ]
    );
}
