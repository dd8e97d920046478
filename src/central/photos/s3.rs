//! Photos in an S3-compatible object store (MinIO, Ceph's RADOS gateway, a cloud bucket),
//! through Apache Arrow's `object_store` crate: objects named `<prefix><first two hex
//! digits>/<sha256>.jpg`, requests signed with AWS Signature V4.
//!
//! Its HTTP client is reqwest over rustls with the ring provider and the system's root
//! certificates (as every other client of the binary), with bounded timeouts and retries, so a
//! store that hangs fails an upload within a minute rather than holding the gate's photo loop.
//!
//! What it never does: log or print the credentials (only the endpoint and bucket are
//! described), or send them over plain HTTP to anything but the configured endpoint.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{ClientOptions, HttpClient, HttpConnector};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, RetryConfig};

use super::{BackendError, PhotoBackend, S3Config, is_sha256, object_name};

/// The S3-compatible backend.
pub struct S3Store {
    store: AmazonS3,
    prefix: String,
    described: String,
}

/// Only the endpoint and bucket: the client's own `Debug` shows its credentials.
impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("store", &self.described)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How long one request to the store may take, and its connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// reqwest over rustls (ring provider, system roots) for `object_store`.
#[derive(Debug)]
struct RingConnector;

impl HttpConnector for RingConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(Arc::new(roots))
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}

fn failed(what: &str, e: object_store::Error) -> BackendError {
    BackendError(format!("object store {what}: {e}"))
}

impl S3Store {
    /// A client for the configured bucket (no request is made until the first photo).
    pub fn open(config: &S3Config) -> Result<S3Store, BackendError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_http_connector(RingConnector)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            });
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose());
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| failed("configuration", e))?;
        let described = format!(
            "s3 bucket {} at {}",
            config.bucket,
            config.endpoint.as_deref().unwrap_or("AWS")
        );
        Ok(S3Store {
            store,
            prefix: config.prefix.clone(),
            described,
        })
    }

    fn path(&self, sha256: &str) -> Result<ObjectPath, BackendError> {
        if !is_sha256(sha256) {
            return Err(BackendError(format!("not a photo name: {sha256:?}")));
        }
        let name = format!("{}{}", self.prefix, object_name(sha256));
        ObjectPath::parse(&name).map_err(|e| BackendError(format!("object name {name:?}: {e}")))
    }
}

impl PhotoBackend for S3Store {
    fn put<'a>(&'a self, sha256: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let path = self.path(sha256)?;
            self.store
                .put(&path, PutPayload::from_bytes(bytes))
                .await
                .map_err(|e| failed("put", e))?;
            Ok(())
        })
    }

    fn get<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        Box::pin(async move {
            let path = self.path(sha256)?;
            match self.store.get(&path).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(|e| failed("get", e))?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(failed("get", e)),
            }
        })
    }

    fn delete<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let path = self.path(sha256)?;
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(failed("delete", e)),
            }
        })
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
