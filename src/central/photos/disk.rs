//! Photos as files under one directory: `<dir>/<first two hex digits>/<sha256>.jpg`, each
//! written to a temporary file, fsynced and renamed into place, so a photo is either whole or
//! absent after a crash.
//!
//! What it never does: build a path from anything but a checked SHA-256.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;

use super::{BackendError, PhotoBackend, is_sha256, object_name};

/// The files-on-disk backend (the default).
#[derive(Debug)]
pub struct DiskStore {
    dir: PathBuf,
}

impl DiskStore {
    /// Opens (creating) the directory.
    pub fn open(dir: &Path) -> Result<DiskStore, BackendError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            BackendError(format!(
                "cannot create photo directory {}: {e}",
                dir.display()
            ))
        })?;
        Ok(DiskStore {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, sha256: &str) -> Result<PathBuf, BackendError> {
        if !is_sha256(sha256) {
            return Err(BackendError(format!("not a photo name: {sha256:?}")));
        }
        Ok(self.dir.join(object_name(sha256)))
    }
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a photo path has a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

impl PhotoBackend for DiskStore {
    fn put<'a>(&'a self, sha256: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let path = self.path(sha256)?;
            tokio::task::spawn_blocking(move || {
                write(&path, &bytes)
                    .map_err(|e| BackendError(format!("cannot write {}: {e}", path.display())))
            })
            .await
            .map_err(|e| BackendError(format!("photo write task: {e}")))?
        })
    }

    fn get<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        Box::pin(async move {
            let path = self.path(sha256)?;
            match tokio::fs::read(&path).await {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(BackendError(format!("cannot read {}: {e}", path.display()))),
            }
        })
    }

    fn delete<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let path = self.path(sha256)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(BackendError(format!(
                    "cannot delete {}: {e}",
                    path.display()
                ))),
            }
        })
    }

    fn describe(&self) -> String {
        format!("disk {}", self.dir.display())
    }
}
