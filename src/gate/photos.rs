//! The gate's photo store: each camera read's JPEGs on disk next to the journal, named by the
//! SHA-256 of their bytes, so a photo is written once however often it is pushed, and uploaded
//! to the centre exactly once by that name.
//!
//! What it is for: evidence (卡口 photos) that survives a restart. A photo is durable (written to
//! a temporary file, fsynced, renamed) before the read that refers to it is journalled.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::wire::journal::{PhotoKind, PhotoRef};

/// Why a photo could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The disk refused.
    #[error("cannot store photo {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Photos on disk under `<data_dir>/photos/<first two hex digits>/<sha256>.jpg`.
#[derive(Debug)]
pub struct PhotoStore {
    root: PathBuf,
}

impl PhotoStore {
    /// Opens (creating) the store under `root`.
    pub fn open(root: &Path) -> Result<PhotoStore, PhotoError> {
        std::fs::create_dir_all(root).map_err(|source| PhotoError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(PhotoStore {
            root: root.to_path_buf(),
        })
    }

    /// Where the photo with this hash lives.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join(prefix).join(format!("{sha256}.jpg"))
    }

    /// Stores `jpeg` durably and returns its reference. Storing the same bytes again is a no-op.
    /// Blocking: call from `spawn_blocking`.
    pub fn put(&self, kind: PhotoKind, jpeg: &[u8]) -> Result<PhotoRef, PhotoError> {
        let sha256 = hex::encode(Sha256::digest(jpeg));
        let path = self.path_of(&sha256);
        let reference = PhotoRef {
            sha256,
            kind,
            bytes: jpeg.len() as u64,
        };
        if path.exists() {
            return Ok(reference);
        }
        let dir = path.parent().expect("a photo path has a parent");
        let io = |source| PhotoError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, jpeg).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(reference)
    }

    /// The bytes of a stored photo, if it is still kept.
    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read(self.path_of(sha256)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_is_stored_once_by_its_hash_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = PhotoStore::open(dir.path()).unwrap();
        let a = store
            .put(PhotoKind::Plate, b"\xff\xd8jpeg\xff\xd9")
            .unwrap();
        let b = store
            .put(PhotoKind::Plate, b"\xff\xd8jpeg\xff\xd9")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.bytes, 8);
        assert_eq!(store.get(&a.sha256).unwrap(), b"\xff\xd8jpeg\xff\xd9");
        assert!(store.get("../../etc/passwd").is_none());
    }
}
