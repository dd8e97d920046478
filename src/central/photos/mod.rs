//! The centre's photo evidence: the JPEGs gates upload after their events (plate close-up,
//! scene), kept by content hash in a storage backend — files on disk by default
//! ([`disk::DiskStore`], under the server's data directory), or an S3-compatible object store
//! ([`s3::S3Store`]: MinIO, Ceph, a cloud bucket) for campuses whose hundreds of GB do not
//! belong on the server's disk — and listed in the `photos` table (hash, size, gate, when it
//! was received).
//!
//! A photo is written to the backend first and its row after, so a row always means the bytes
//! are stored; a repeat upload of the same hash is answered as stored without writing again.
//! Photos are kept `[photos] retention_days` (default 90) from their arrival; past it they are
//! not served (404) and the daily purge ([`crate::central::retention`]) deletes them from the
//! backend and the table. Passage events have their own, longer retention (≥ 365 days).
//!
//! What it never does: trust a hash it did not compute (the bytes must hash to the name), log
//! or print the object store's credentials (they are [`Secret`]s), or serve a photo past its
//! retention. It imports nothing of the centre but `db` (the configuration and the retention
//! run import it).

pub mod disk;
pub mod s3;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::central::db::{Db, RepoError};

const DAY_MS: i64 = 86_400_000;

/// A place photos are kept, by lower-case hex SHA-256.
pub trait PhotoBackend: std::fmt::Debug + Send + Sync {
    /// Stores `bytes` under `sha256`, durably; storing it again overwrites it with the same bytes.
    fn put<'a>(&'a self, sha256: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BackendError>>;
    /// The bytes under `sha256`, `None` if there are none.
    fn get<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>>;
    /// Deletes the photo; deleting one that is not there is not an error.
    fn delete<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<(), BackendError>>;
    /// What it is, for logs (never a credential).
    fn describe(&self) -> String;
}

/// A credential of the object store: never printed (its `Debug` is `***`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (signing requests).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A backend's failure, with its cause (never a credential).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Why a photo could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum PhotoStoreError {
    /// The server has no photo storage (`AppState::new` without one; the server command always
    /// configures it).
    #[error("中心未配置照片存储 / the centre has no photo storage configured")]
    NotConfigured,
    /// The backend refused or could not be reached.
    #[error("photo storage: {0}")]
    Backend(#[from] BackendError),
    /// The `photos` table could not be read or written.
    #[error("{0}")]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for PhotoStoreError {
    fn from(e: sqlx::Error) -> PhotoStoreError {
        PhotoStoreError::Repo(e.into())
    }
}

/// Which backend `[photos]` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Files under `dir` (default `<server.data_dir>/photos`).
    #[default]
    Disk,
    /// An S3-compatible object store, `[photos.s3]`.
    S3,
}

/// `[photos]` in server.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotosConfig {
    /// `disk` (default) or `s3`.
    #[serde(default)]
    pub backend: BackendKind,
    /// The disk backend's directory. Default `<server.data_dir>/photos`.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Days a photo is kept after it reached the centre. Default 90.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// `[photos.s3]`: the object store, required with `backend = "s3"`.
    #[serde(default)]
    pub s3: Option<S3Config>,
}

/// `[photos.s3]`: an S3-compatible object store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The store's URL, e.g. `http://minio.campus.example:9000`; absent: AWS's endpoint for
    /// `region`. `http://` is allowed (a store on the server's own network).
    #[serde(default)]
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Default `us-east-1` (what MinIO and Ceph accept).
    #[serde(default = "default_region")]
    pub region: String,
    /// Object names start with this (e.g. `gatehouse/`). Default none.
    #[serde(default)]
    pub prefix: String,
    /// Credentials; `GATEHOUSE_S3_ACCESS_KEY_ID` / `GATEHOUSE_S3_SECRET_ACCESS_KEY` override
    /// them. Never printed or logged.
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// Address the bucket as `https://<bucket>.<endpoint host>` (cloud stores) rather than
    /// `https://<endpoint>/<bucket>` (MinIO, Ceph: the default).
    #[serde(default)]
    pub virtual_hosted_style: bool,
}

fn default_retention_days() -> u32 {
    90
}

fn default_region() -> String {
    "us-east-1".into()
}

impl Default for PhotosConfig {
    fn default() -> PhotosConfig {
        PhotosConfig {
            backend: BackendKind::Disk,
            dir: None,
            retention_days: default_retention_days(),
            s3: None,
        }
    }
}

impl PhotosConfig {
    /// Checks what TOML cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3650).contains(&self.retention_days) {
            return Err(format!(
                "photos.retention_days is {}, it must be 1-3650",
                self.retention_days
            ));
        }
        if self.backend == BackendKind::S3 {
            let Some(s3) = &self.s3 else {
                return Err("photos.backend = \"s3\" needs a [photos.s3] section".into());
            };
            if s3.bucket.trim().is_empty() {
                return Err("photos.s3.bucket must not be empty".into());
            }
            if let Some(e) = &s3.endpoint
                && !(e.starts_with("http://") || e.starts_with("https://"))
            {
                return Err(format!(
                    "photos.s3.endpoint {e:?} must start with http:// or https://"
                ));
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(
                    "photos.s3: give both access_key_id and secret_access_key, or neither".into(),
                );
            }
        }
        Ok(())
    }

    /// Applies `GATEHOUSE_S3_ACCESS_KEY_ID` and `GATEHOUSE_S3_SECRET_ACCESS_KEY`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(s3) = &mut self.s3 {
            if let Some(v) = var("GATEHOUSE_S3_ACCESS_KEY_ID") {
                s3.access_key_id = Some(Secret::new(v));
            }
            if let Some(v) = var("GATEHOUSE_S3_SECRET_ACCESS_KEY") {
                s3.secret_access_key = Some(Secret::new(v));
            }
        }
    }
}

/// The centre's photo storage: a backend and how long photos are kept. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Photos {
    backend: Option<Arc<dyn PhotoBackend>>,
    retention_days: u32,
}

/// What storing an uploaded photo did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// False when the centre already had it.
    pub created: bool,
}

/// What a photo purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct PhotosPurged {
    /// Photos deleted from the backend and the table.
    pub deleted: u64,
    /// Photos past retention the backend would not delete (tried again next time).
    pub failed: u64,
    pub retention_days: u32,
}

/// Whether `text` is a lower-case hex SHA-256.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The object name of a photo: `<first two hex digits>/<sha256>.jpg`.
fn object_name(sha256: &str) -> String {
    format!("{}/{sha256}.jpg", &sha256[..2])
}

impl Photos {
    /// No storage: uploads are refused, nothing is served.
    pub fn unconfigured() -> Photos {
        Photos {
            backend: None,
            retention_days: default_retention_days(),
        }
    }

    /// Storage in `backend`, photos kept `retention_days`.
    pub fn new(backend: Arc<dyn PhotoBackend>, retention_days: u32) -> Photos {
        Photos {
            backend: Some(backend),
            retention_days,
        }
    }

    /// Files under `dir`, photos kept `retention_days`.
    pub fn disk(dir: &Path, retention_days: u32) -> Result<Photos, BackendError> {
        Ok(Photos::new(
            Arc::new(disk::DiskStore::open(dir)?),
            retention_days,
        ))
    }

    /// The storage `[photos]` describes; the disk backend defaults to `<data_dir>/photos`.
    pub fn open(config: &PhotosConfig, data_dir: &Path) -> Result<Photos, BackendError> {
        let backend: Arc<dyn PhotoBackend> = match config.backend {
            BackendKind::Disk => Arc::new(disk::DiskStore::open(
                &config
                    .dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("photos")),
            )?),
            BackendKind::S3 => {
                let s3 = config.s3.as_ref().ok_or_else(|| {
                    BackendError("photos.backend = \"s3\" needs a [photos.s3] section".into())
                })?;
                Arc::new(s3::S3Store::open(s3)?)
            }
        };
        tracing::info!(
            backend = backend.describe(),
            retention_days = config.retention_days,
            "photo storage"
        );
        Ok(Photos::new(backend, config.retention_days))
    }

    /// Days photos are kept.
    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// Whether a backend is configured.
    pub fn is_configured(&self) -> bool {
        self.backend.is_some()
    }

    fn backend(&self) -> Result<&Arc<dyn PhotoBackend>, PhotoStoreError> {
        self.backend.as_ref().ok_or(PhotoStoreError::NotConfigured)
    }

    fn cutoff(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.retention_days) * DAY_MS
    }

    /// Stores a photo `gate_id` uploaded. The caller has checked that `bytes` hash to
    /// `sha256` ([`sha256_of`]). A photo already held is not written again.
    pub async fn store(
        &self,
        db: &Db,
        gate_id: i64,
        sha256: &str,
        bytes: Bytes,
        now_ms: i64,
    ) -> Result<Stored, PhotoStoreError> {
        let backend = self.backend()?;
        if self.held(db, sha256).await? {
            return Ok(Stored { created: false });
        }
        backend.put(sha256, bytes.clone()).await?;
        let inserted = sqlx::query(
            "INSERT INTO photos (sha256, bytes, gate_id, received_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(bytes.len() as i64)
        .bind(gate_id)
        .bind(now_ms)
        .execute(db.pool())
        .await?
        .rows_affected();
        Ok(Stored {
            created: inserted == 1,
        })
    }

    async fn held(&self, db: &Db, sha256: &str) -> Result<bool, PhotoStoreError> {
        Ok(sqlx::query("SELECT 1 FROM photos WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(db.pool())
            .await?
            .is_some())
    }

    /// Of `asked`, the hashes the centre does not hold (in the order asked, each once).
    pub async fn missing(&self, db: &Db, asked: &[String]) -> Result<Vec<String>, PhotoStoreError> {
        self.backend()?;
        let mut missing = Vec::new();
        for chunk in asked.chunks(200) {
            let marks = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!("SELECT sha256 FROM photos WHERE sha256 IN ({marks})");
            let mut q = sqlx::query(&sql);
            for sha in chunk {
                q = q.bind(sha.as_str());
            }
            let held: std::collections::HashSet<String> = q
                .fetch_all(db.pool())
                .await?
                .iter()
                .map(|r| r.get::<String, _>("sha256"))
                .collect();
            for sha in chunk {
                if !held.contains(sha) && !missing.contains(sha) {
                    missing.push(sha.clone());
                }
            }
        }
        Ok(missing)
    }

    /// The bytes of a photo and the gate that sent it, unless it is unknown or past retention.
    pub async fn fetch(
        &self,
        db: &Db,
        sha256: &str,
        now_ms: i64,
    ) -> Result<Option<(i64, Bytes)>, PhotoStoreError> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        let Some(backend) = &self.backend else {
            return Ok(None);
        };
        let row: Option<(i64, i64)> =
            sqlx::query("SELECT gate_id, received_ms FROM photos WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(db.pool())
                .await?
                .map(|r| (r.get("gate_id"), r.get("received_ms")));
        match row {
            Some((gate, at)) if at >= self.cutoff(now_ms) => {
                Ok(backend.get(sha256).await?.map(|b| (gate, b)))
            }
            _ => Ok(None),
        }
    }

    /// Deletes the photos received more than `retention_days` before `now_ms`: from the
    /// backend, then their rows. A photo the backend would not delete keeps its row (and is
    /// tried again next time).
    pub async fn purge(&self, db: &Db, now_ms: i64) -> Result<PhotosPurged, PhotoStoreError> {
        let mut purged = PhotosPurged {
            deleted: 0,
            failed: 0,
            retention_days: self.retention_days,
        };
        let Some(backend) = &self.backend else {
            return Ok(purged);
        };
        let cutoff = self.cutoff(now_ms);
        let mut after = String::new();
        loop {
            let rows: Vec<String> = sqlx::query(
                "SELECT sha256 FROM photos WHERE received_ms < $1 AND sha256 > $2 \
                 ORDER BY sha256 LIMIT 500",
            )
            .bind(cutoff)
            .bind(after.as_str())
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(|r| r.get("sha256"))
            .collect();
            let Some(last) = rows.last() else {
                return Ok(purged);
            };
            after = last.clone();
            for sha in &rows {
                match backend.delete(sha).await {
                    Ok(()) => {
                        sqlx::query("DELETE FROM photos WHERE sha256 = $1")
                            .bind(sha.as_str())
                            .execute(db.pool())
                            .await?;
                        purged.deleted += 1;
                    }
                    Err(e) => {
                        tracing::warn!(sha256 = %sha, error = %e, "cannot delete an expired photo");
                        purged.failed += 1;
                    }
                }
            }
        }
    }
}

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        photos: PhotosConfig,
    }

    fn parse(text: &str) -> Result<PhotosConfig, String> {
        let d: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        d.photos.validate()?;
        Ok(d.photos)
    }

    #[test]
    fn photos_default_to_disk_for_90_days_and_s3_needs_its_section() {
        let d = parse("").unwrap();
        assert_eq!(
            (d.backend, d.retention_days, d.dir),
            (BackendKind::Disk, 90, None)
        );
        let err = parse("[photos]\nbackend = \"s3\"\n").unwrap_err();
        assert!(err.contains("[photos.s3]"), "{err}");
        let err = parse("[photos]\nretention_days = 0\n").unwrap_err();
        assert!(err.contains("1-3650"), "{err}");
        let err = parse(
            "[photos]\nbackend = \"s3\"\n[photos.s3]\nbucket = \"b\"\nendpoint = \"minio:9000\"\n",
        )
        .unwrap_err();
        assert!(err.contains("http://"), "{err}");
        assert!(parse("[photos]\nbackend = \"ftp\"\n").is_err());
        let s3 = parse(
            "[photos]\nbackend = \"s3\"\n[photos.s3]\nbucket = \"evidence\"\n\
             endpoint = \"http://127.0.0.1:9000\"\naccess_key_id = \"AK\"\n\
             secret_access_key = \"very-secret\"\n",
        )
        .unwrap();
        let shown = format!("{s3:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert_eq!(s3.s3.unwrap().region, "us-east-1");
    }
}
