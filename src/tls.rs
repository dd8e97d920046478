//! Mutual TLS between the gates and the centre: loading the site CA and a certificate + key
//! with precise errors, the rustls configurations of both ends, and the centre's listener that
//! serves an axum router only to gates whose client certificate the site CA signed and whose
//! gate is enabled centrally.
//!
//! - [`load_ca`], [`load_identity`] — PEM files in, checked rustls types out.
//! - [`server_config`] — TLS 1.3, a client certificate chained to the site CA is **required**.
//! - [`gate_client_config`] — trusts only the site CA and presents the gate's certificate.
//! - [`serve_mtls`] — the listener: handshake (with a timeout), the gate id from the verified
//!   certificate ([`crate::pki::gate_id_from_cert`]), a [`GateCheck`] at connect and again per
//!   request (answers cached at most [`MtlsOptions::recheck_after`], 1 s by default), then the
//!   router with [`GateIdentity`] as a request extension.
//! - [`https_server_config`], [`serve_https`] — the admin API and web pages over HTTPS (server
//!   certificate only; operators sign in with passwords).
//!
//! Everything here uses rustls's ring provider explicitly ([`crypto_provider`]); nothing relies
//! on a process-wide default provider.
//!
//! What it never does: take a gate's identity from anything but the certificate the handshake
//! verified (no header, no body, no URL names a gate); serve a byte of HTTP to a client before
//! that; log or print key material (refusals are logged at warn with the peer address and the
//! reason only).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Who is calling through the mutual-TLS listener: the gate named by the client certificate
/// the handshake verified. [`serve_mtls`] inserts it as a request extension, only once its
/// gate check said the gate is enabled; nothing a client sends can set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GateIdentity {
    /// The gate's id (`gates.id` centrally, `gate.id` in its gate.toml).
    pub gate_id: i64,
    /// How old, at most, the answer "enabled" this request was let through on is (the
    /// listener's `recheck_after`): a handler that needs a fresher answer asks again.
    pub checked_within: Duration,
}

/// Why TLS material could not be loaded or a configuration built. Each message names the file
/// at fault and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a PEM file (no \"-----BEGIN\" line)")]
    NotPem(PathBuf),
    #[error("{path} is not valid PEM: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("{0} holds no certificate (no \"-----BEGIN CERTIFICATE-----\" block)")]
    NoCertificate(PathBuf),
    #[error("{0} holds no private key (no \"-----BEGIN … PRIVATE KEY-----\" block)")]
    NoKey(PathBuf),
    #[error("{path}: the private key cannot be used: {reason}")]
    UnusableKey { path: PathBuf, reason: String },
    #[error("{path}: not a valid X.509 certificate: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("the certificate {cert} does not match the key {key}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate {path} expired at {not_after}")]
    Expired {
        path: PathBuf,
        not_after: DateTime<Utc>,
    },
    #[error("the certificate {path} is not valid before {not_before}")]
    NotYetValid {
        path: PathBuf,
        not_before: DateTime<Utc>,
    },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The rustls crypto provider every Gatehouse TLS configuration uses: ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The site CA as a trust anchor: the only issuer either end accepts.
#[derive(Clone)]
pub struct SiteCa {
    roots: Arc<RootCertStore>,
    path: PathBuf,
}

impl fmt::Debug for SiteCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteCa")
            .field("path", &self.path)
            .field("certificates", &self.roots.len())
            .finish()
    }
}

impl SiteCa {
    /// The trust anchors, for callers that build their own rustls configuration.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }
}

/// Loads the site CA certificate(s) from a PEM file (`ca.crt`).
pub fn load_ca(path: &Path) -> Result<SiteCa, TlsError> {
    let certs = read_certificates(path)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(SiteCa {
        roots: Arc::new(roots),
        path: path.to_path_buf(),
    })
}

/// A certificate chain and its private key, checked to belong together. Its `Debug` shows the
/// certificate's subject and validity, never the key.
#[derive(Clone)]
pub struct Identity {
    key: Arc<CertifiedKey>,
    cert_path: PathBuf,
    subject: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert", &self.cert_path)
            .field("subject", &self.subject)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The certificate chain and signing key, for a rustls resolver.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.key.clone()
    }

    /// The end-entity certificate's subject, e.g. `CN=gate-7, O=…`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The end-entity certificate's validity.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// See [`Identity::not_before`].
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// [`TlsError::Expired`] or [`TlsError::NotYetValid`] if the certificate is not valid at
    /// `now`.
    pub fn check_validity(&self, now: DateTime<Utc>) -> Result<(), TlsError> {
        if now > self.not_after {
            return Err(TlsError::Expired {
                path: self.cert_path.clone(),
                not_after: self.not_after,
            });
        }
        if now < self.not_before {
            return Err(TlsError::NotYetValid {
                path: self.cert_path.clone(),
                not_before: self.not_before,
            });
        }
        Ok(())
    }
}

/// Loads a certificate chain (end-entity first) and its private key from PEM files and checks
/// that the key belongs to the certificate.
///
/// An expired or not yet valid certificate is **not** an error here, only a warning in the
/// log: a gate must keep deciding from its local copy when it cannot reach the centre, so a
/// stale certificate must not stop it from starting. The other end refuses the handshake, and
/// configuration checks that want to say so call [`Identity::check_validity`].
pub fn load_identity(cert_path: &Path, key_path: &Path) -> Result<Identity, TlsError> {
    let chain = read_certificates(cert_path)?;
    let key_pem = read_pem(key_path)?;
    let key_der = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey(key_path.to_path_buf()));
        }
        Err(e) => {
            return Err(TlsError::BadPem {
                path: key_path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let signing_key = crypto_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| TlsError::UnusableKey {
            path: key_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let (subject, not_before, not_after) = {
        let (_, x509) = x509_parser::parse_x509_certificate(chain[0].as_ref()).map_err(|e| {
            TlsError::BadCertificate {
                path: cert_path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        let instant = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| TlsError::BadCertificate {
                path: cert_path.to_path_buf(),
                reason: "validity out of range".into(),
            })
        };
        (
            x509.subject().to_string(),
            instant(x509.validity().not_before)?,
            instant(x509.validity().not_after)?,
        )
    };
    let key = CertifiedKey::new(chain, signing_key);
    match key.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        // The provider cannot tell (it does not expose this key's public half): let the
        // handshake be the judge.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(TlsError::BadCertificate {
                path: cert_path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    }
    let identity = Identity {
        key: Arc::new(key),
        cert_path: cert_path.to_path_buf(),
        subject,
        not_before,
        not_after,
    };
    if let Err(e) = identity.check_validity(Utc::now()) {
        tracing::warn!(error = %e, "TLS certificate not valid now: the other end will refuse it");
    }
    Ok(identity)
}

/// The ALPN protocols the listener offers: HTTP/2, then HTTP/1.1.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The centre's sync listener configuration: TLS 1.3 only (both ends are Gatehouse), presents
/// `identity` (a server certificate), and **requires** a client certificate chained to the site
/// CA with the clientAuth usage; anything else fails the handshake.
pub fn server_config(ca: &SiteCa, identity: &Identity) -> Result<ServerConfig, TlsError> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(ca.roots(), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A gate's client configuration: TLS 1.3, trusts only the site CA (the server's certificate
/// must carry serverAuth and name the host dialled), presents the gate's certificate. No ALPN
/// is set, so HTTP clients use HTTP/1.1; set `alpn_protocols` to `h2` for HTTP/2.
///
/// For reqwest: `reqwest::Client::builder().use_preconfigured_tls(gate_client_config(..)?)`.
pub fn gate_client_config(ca: &SiteCa, identity: &Identity) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(ca.roots())
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key()))))
}

/// Whether a gate may use the sync endpoints right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateStatus {
    Enabled,
    /// Disabled centrally: its certificate is refused.
    Disabled,
    /// No such gate (never created, or deleted): its certificate is refused.
    Unknown,
}

/// The check could not be made (e.g. the database is unreachable); the listener then refuses,
/// failing closed.
#[derive(Debug, thiserror::Error)]
#[error("cannot check gate {gate_id}: {message}")]
pub struct GateCheckError {
    pub gate_id: i64,
    pub message: String,
}

/// Answers "may gate N connect?". The centre's answer reads `gates.enabled`
/// ([`crate::central::gate_auth::DbGateCheck`]).
pub trait GateCheck: Send + Sync + fmt::Debug {
    /// The gate's status now.
    fn status(&self, gate_id: i64) -> BoxFuture<'_, Result<GateStatus, GateCheckError>>;
}

/// Tunables of [`serve_mtls_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtlsOptions {
    /// A client that has not finished the TLS handshake by then is disconnected, so a silent
    /// client cannot hold a connection. Default 10 s.
    pub handshake_timeout: Duration,
    /// Each request re-checks the gate's status, using an answer at most this old, so that
    /// disabling a gate also ends connections already open. Default 1 s; zero asks every time.
    pub recheck_after: Duration,
    /// On shutdown, connections get this long to finish their requests; then they are closed.
    /// Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for MtlsOptions {
    fn default() -> MtlsOptions {
        MtlsOptions {
            handshake_timeout: Duration::from_secs(10),
            recheck_after: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves `router` over mutual TLS on `listener` until `shutdown` completes, with the default
/// [`MtlsOptions`]. See [`serve_mtls_with`].
pub async fn serve_mtls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: axum::Router,
    gate_check: Arc<dyn GateCheck>,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_mtls_with(
        listener,
        config,
        router,
        gate_check,
        MtlsOptions::default(),
        shutdown,
    )
    .await
}

/// Serves `router` over mutual TLS on `listener` until `shutdown` completes.
///
/// Per connection: the TLS handshake (`config` should come from [`server_config`], which
/// requires a client certificate), bounded by `handshake_timeout`; then the gate id from the
/// verified certificate's `urn:gatehouse:gate:<id>` name; then `gate_check`. A connection whose
/// handshake fails (no certificate, another CA, expired, a server certificate, plain HTTP), whose
/// certificate names no gate, or whose gate is disabled, unknown or cannot be checked is closed
/// before any HTTP is read, with a warning that names the peer address and the reason.
///
/// Per request: the gate is checked again (answers cached at most `recheck_after`); a gate
/// disabled meanwhile gets `403 {"code":"gate_disabled"}` (or `gate_unknown`) and its
/// connection is closed; a check that fails gets `503 {"code":"gate_check_failed"}`. Otherwise
/// the request reaches `router` with [`GateIdentity`] and the peer's
/// `axum::extract::ConnectInfo<SocketAddr>` as extensions.
///
/// Shutdown: stops accepting, asks every connection to finish its in-flight requests and
/// close, and closes what is left after `shutdown_grace`. Accept errors (e.g. out of file
/// descriptors) are logged and retried, never fatal.
pub async fn serve_mtls_with(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: axum::Router,
    gate_check: Arc<dyn GateCheck>,
    options: MtlsOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(config);
    let checks = Arc::new(CachedGateCheck::new(gate_check, options.recheck_after));
    accept_loop(
        listener,
        options,
        shutdown,
        "sync listener",
        |tcp, peer, stop| {
            Box::pin(serve_connection(
                tcp,
                peer,
                acceptor.clone(),
                router.clone(),
                checks.clone(),
                options,
                stop,
            ))
        },
    )
    .await
}

/// The HTTPS configuration of the admin API and web pages: TLS 1.3, presents `identity` (a
/// server certificate, e.g. from `gatehouse pki issue-server`), asks for no client certificate
/// (operators sign in with a password). ALPN h2 and http/1.1.
pub fn https_server_config(identity: &Identity) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified_key())));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Serves `router` (the admin API and web pages) over HTTPS on `listener` until `shutdown`
/// completes: `config` from [`https_server_config`], the handshake bounded by
/// `handshake_timeout`, the peer's `axum::extract::ConnectInfo<SocketAddr>` on every request,
/// the same graceful shutdown as [`serve_mtls_with`] (`recheck_after` is not used). Plain HTTP
/// fails the handshake and gets no answer.
pub async fn serve_https(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: axum::Router,
    options: MtlsOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(config);
    accept_loop(
        listener,
        options,
        shutdown,
        "https listener",
        |tcp, peer, stop| {
            let acceptor = acceptor.clone();
            let router = router.clone();
            Box::pin(async move {
                let Some(tls) =
                    handshake(tcp, peer, &acceptor, options, &stop, "https listener").await
                else {
                    return;
                };
                let service =
                    tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        router.clone().oneshot(request.map(Body::new))
                    });
                serve_http(tls, service, peer, &stop, None).await;
            })
        },
    )
    .await
}

/// Accepts connections until `shutdown`, running `connection` for each in its own task with a
/// token that is cancelled at shutdown; then gives them `shutdown_grace` to finish.
async fn accept_loop(
    listener: TcpListener,
    options: MtlsOptions,
    shutdown: impl Future<Output = ()> + Send,
    what: &'static str,
    mut connection: impl FnMut(
        tokio::net::TcpStream,
        SocketAddr,
        CancellationToken,
    ) -> BoxFuture<'static, ()>,
) {
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(tcp, peer, stop.child_token()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    stop.cancel();
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "{what}: connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
}

/// The TLS handshake, bounded by `handshake_timeout` and abandoned at shutdown; failures are
/// logged at warn with the peer address.
async fn handshake(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    options: MtlsOptions,
    stop: &CancellationToken,
    what: &'static str,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let handshake = tokio::select! {
        () = stop.cancelled() => return None,
        r = tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)) => r,
    };
    match handshake {
        Err(_) => {
            tracing::warn!(%peer, "{what}: TLS handshake timed out; connection closed");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "{what}: TLS handshake refused");
            None
        }
        Ok(Ok(tls)) => Some(tls),
    }
}

/// Serves HTTP/1.1 or HTTP/2 on an established TLS stream until the client leaves, or until
/// `stop` (shutdown) or `refused` (the gate was disabled) asks the connection to finish its
/// in-flight requests and close.
async fn serve_http<S, F>(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    service: S,
    peer: SocketAddr,
    stop: &CancellationToken,
    refused: Option<&CancellationToken>,
) where
    S: tower::Service<
            Request<hyper::body::Incoming>,
            Response = Response<Body>,
            Error = Infallible,
            Future = F,
        > + Clone
        + Send
        + 'static,
    F: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let refused = async {
        match refused {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            return;
        }
        () = stop.cancelled() => {}
        () = refused => {}
    }
    connection.as_mut().graceful_shutdown();
    if let Err(e) = connection.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: axum::Router,
    checks: Arc<CachedGateCheck>,
    options: MtlsOptions,
    stop: CancellationToken,
) {
    let Some(mut tls) = handshake(tcp, peer, &acceptor, options, &stop, "sync listener").await
    else {
        return;
    };
    // The verifier required a certificate; its absence here would be a configuration that
    // does not come from `server_config`, and is refused all the same.
    let identity = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        None => Err("no client certificate".to_string()),
        Some(cert) => crate::pki::gate_id_from_cert(cert).map_err(|e| e.to_string()),
    };
    let gate_id = match identity {
        Ok(id) => id,
        Err(reason) => {
            tracing::warn!(%peer, %reason, "sync listener: client certificate names no gate; connection refused");
            close(&mut tls).await;
            return;
        }
    };
    match checks.fresh(gate_id).await {
        Ok(GateStatus::Enabled) => {}
        Ok(status) => {
            tracing::warn!(%peer, gate_id, ?status, "sync listener: gate not enabled; connection refused");
            close(&mut tls).await;
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, gate_id, error = %e, "sync listener: gate check failed; connection refused");
            close(&mut tls).await;
            return;
        }
    }
    tracing::debug!(%peer, gate_id, "sync listener: gate connected");

    let refused = CancellationToken::new();
    let service = {
        let refused = refused.clone();
        tower::service_fn(move |request: Request<hyper::body::Incoming>| {
            let router = router.clone();
            let checks = checks.clone();
            let refused = refused.clone();
            async move {
                Ok::<_, Infallible>(
                    per_request(request, router, checks, refused, gate_id, peer).await,
                )
            }
        })
    };
    serve_http(tls, service, peer, &stop, Some(&refused)).await;
}

async fn per_request(
    mut request: Request<hyper::body::Incoming>,
    router: axum::Router,
    checks: Arc<CachedGateCheck>,
    refused: CancellationToken,
    gate_id: i64,
    peer: SocketAddr,
) -> Response<Body> {
    let (status, code) = match checks.cached(gate_id).await {
        Ok(GateStatus::Enabled) => {
            request.extensions_mut().insert(GateIdentity {
                gate_id,
                checked_within: checks.ttl,
            });
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            return match router.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
        }
        Ok(GateStatus::Disabled) => (StatusCode::FORBIDDEN, "gate_disabled"),
        Ok(GateStatus::Unknown) => (StatusCode::FORBIDDEN, "gate_unknown"),
        Err(e) => {
            tracing::warn!(%peer, gate_id, error = %e, "sync listener: gate check failed; request refused");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "gate_check_failed",
                gate_id,
            );
        }
    };
    tracing::warn!(%peer, gate_id, code, "sync listener: gate no longer enabled; closing its connection");
    refused.cancel();
    let mut response = refusal(status, code, gate_id);
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

fn refusal(status: StatusCode, code: &str, gate_id: i64) -> Response<Body> {
    let message = match code {
        "gate_disabled" => format!("gate {gate_id} is disabled"),
        "gate_unknown" => format!("gate {gate_id} is not known to the centre"),
        _ => format!("the centre cannot check gate {gate_id} now; try again"),
    };
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Sends close_notify and closes, without waiting long for a peer that does not read.
async fn close(tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
}

/// A [`GateCheck`] whose answers are reused for at most `ttl`.
#[derive(Debug)]
struct CachedGateCheck {
    inner: Arc<dyn GateCheck>,
    ttl: Duration,
    answers: Mutex<HashMap<i64, (Instant, GateStatus)>>,
}

impl CachedGateCheck {
    fn new(inner: Arc<dyn GateCheck>, ttl: Duration) -> CachedGateCheck {
        CachedGateCheck {
            inner,
            ttl,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// Asks the inner check (and remembers the answer).
    async fn fresh(&self, gate_id: i64) -> Result<GateStatus, GateCheckError> {
        let status = self.inner.status(gate_id).await?;
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(gate_id, (Instant::now(), status));
        Ok(status)
    }

    /// A remembered answer younger than the ttl, else a fresh one.
    async fn cached(&self, gate_id: i64) -> Result<GateStatus, GateCheckError> {
        if !self.ttl.is_zero() {
            let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, status)) = answers.get(&gate_id)
                && at.elapsed() < self.ttl
            {
                return Ok(*status);
            }
        }
        self.fresh(gate_id).await
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => TlsError::Missing(path.to_path_buf()),
        _ => TlsError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::NotPem(path.to_path_buf()));
    }
    Ok(bytes)
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}
