//! The site's visitor-pass keys (通行码密钥): Ed25519 keys that sign the passes the centre
//! issues ([`crate::wire::pass`]). They live beside the TLS PKI, in `<pki dir>/pass-keys/`:
//!
//! | file | what |
//! |---|---|
//! | `pass-<kid>.p8` | the private key, PKCS#8 DER (0600, written atomically) |
//! | `pass-<kid>.toml` | its metadata: `kid`, `created`, and `retire_after` once rotated out |
//!
//! The **current** key is the newest one without `retire_after`; it signs new passes. Rotating
//! makes a new current key and gives every older current key an overlap (`retire_after` = now +
//! overlap, by default the longest booking window and a day): passes it signed keep opening
//! until then, after which gates refuse them and the centre stops sending its public half.
//!
//! What it never does: print, log or return a private key to anything but the signer that
//! loads it, or delete a key file (a retired key's files stay for the record).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};

use super::{PkiError, write_atomic};

/// The folder of the pass keys inside a PKI directory.
pub const PASS_KEY_DIR: &str = "pass-keys";

/// The default overlap of a rotated-out key: the longest booking window (7 days) and a day,
/// so that every pass signed before the rotation stays usable to its end.
pub const DEFAULT_OVERLAP_DAYS: u32 = 8;

/// Where the pass keys of the PKI in `pki_dir` live.
pub fn pass_key_dir(pki_dir: &Path) -> PathBuf {
    pki_dir.join(PASS_KEY_DIR)
}

/// A pass key's metadata as its `.toml` file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassKeyMeta {
    /// The key id passes name (1–65535).
    pub kid: u16,
    pub created: DateTime<Utc>,
    /// When a rotated-out key's overlap ends; absent while the key is current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_after: Option<DateTime<Utc>>,
}

/// A pass key found in a key folder.
#[derive(Debug)]
pub struct PassKeyFile {
    pub meta: PassKeyMeta,
    /// The private key's file.
    pub key_path: PathBuf,
    /// The Ed25519 public key, lower-case hex.
    pub public_key: String,
}

impl PassKeyFile {
    /// Whether the key may still sign or verify at `now` (current, or in its overlap).
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.meta.retire_after.is_none_or(|r| r > now)
    }
}

fn key_path(dir: &Path, kid: u16) -> PathBuf {
    dir.join(format!("pass-{kid}.p8"))
}

fn meta_path(dir: &Path, kid: u16) -> PathBuf {
    dir.join(format!("pass-{kid}.toml"))
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.to_path_buf();
    move |source| PkiError::Io {
        action,
        path,
        source,
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::BadPassKey {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads one key's private half.
pub fn read_key_pair(path: &Path) -> Result<Ed25519KeyPair, PkiError> {
    let der = fs::read(path).map_err(io("read", path))?;
    Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|e| bad(path, format!("not a PKCS#8 Ed25519 key: {e}")))
}

/// Every pass key in `dir`, oldest first. A missing folder holds none.
pub fn list_pass_keys(dir: &Path) -> Result<Vec<PassKeyFile>, PkiError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", dir)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(io("read", dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(kid) = name
            .strip_prefix("pass-")
            .and_then(|n| n.strip_suffix(".toml"))
        else {
            continue;
        };
        let text = fs::read_to_string(&path).map_err(io("read", &path))?;
        let meta: PassKeyMeta =
            toml::from_str(&text).map_err(|e| bad(&path, e.message().to_string()))?;
        if kid != meta.kid.to_string() {
            return Err(bad(&path, format!("names key {} in its kid", meta.kid)));
        }
        let key_path = key_path(dir, meta.kid);
        let pair = read_key_pair(&key_path)?;
        keys.push(PassKeyFile {
            public_key: crate::wire::pass::public_key_hex(&pair),
            meta,
            key_path,
        });
    }
    keys.sort_by_key(|k| k.meta.kid);
    Ok(keys)
}

/// The key that signs new passes: the newest without `retire_after`.
pub fn current(keys: &[PassKeyFile]) -> Option<&PassKeyFile> {
    keys.iter().rev().find(|k| k.meta.retire_after.is_none())
}

fn write_meta(dir: &Path, meta: &PassKeyMeta, replace: bool) -> Result<(), PkiError> {
    let path = meta_path(dir, meta.kid);
    let text = toml::to_string(meta).map_err(|e| bad(&path, e.to_string()))?;
    write_atomic(&path, text.as_bytes(), 0o644, replace)
}

fn make_key(dir: &Path, kid: u16, now: DateTime<Utc>) -> Result<PassKeyFile, PkiError> {
    let mut builder = fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.recursive(true);
    builder.create(dir).map_err(io("create", dir))?;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| bad(dir, "the system's random source failed"))?;
    let path = key_path(dir, kid);
    write_atomic(&path, pkcs8.as_ref(), 0o600, false)?;
    let meta = PassKeyMeta {
        kid,
        created: now,
        retire_after: None,
    };
    if let Err(e) = write_meta(dir, &meta, false) {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    let pair = read_key_pair(&path)?;
    Ok(PassKeyFile {
        public_key: crate::wire::pass::public_key_hex(&pair),
        meta,
        key_path: path,
    })
}

/// Makes the site's first pass key. Refuses when a current key exists (rotate it instead).
pub fn new_pass_key(dir: &Path, now: DateTime<Utc>) -> Result<PassKeyFile, PkiError> {
    let keys = list_pass_keys(dir)?;
    if let Some(k) = current(&keys) {
        return Err(PkiError::PassKeyExists(k.key_path.clone()));
    }
    let kid = next_kid(&keys, dir)?;
    make_key(dir, kid, now)
}

fn next_kid(keys: &[PassKeyFile], dir: &Path) -> Result<u16, PkiError> {
    match keys.last() {
        None => Ok(1),
        Some(k) => k
            .meta
            .kid
            .checked_add(1)
            .ok_or_else(|| bad(dir, "every key id up to 65535 is used")),
    }
}

/// Makes a new current key; every older current key keeps verifying until `now + overlap`.
/// Returns the new key and the keys rotated out.
pub fn rotate_pass_key(
    dir: &Path,
    overlap: Duration,
    now: DateTime<Utc>,
) -> Result<(PassKeyFile, Vec<PassKeyMeta>), PkiError> {
    let keys = list_pass_keys(dir)?;
    let kid = next_kid(&keys, dir)?;
    // The new key first: should anything fail after, the old key is still current too.
    let new = make_key(dir, kid, now)?;
    let mut retired = Vec::new();
    for k in keys.iter().filter(|k| k.meta.retire_after.is_none()) {
        let meta = PassKeyMeta {
            retire_after: Some(now + overlap),
            ..k.meta.clone()
        };
        write_meta(dir, &meta, true)?;
        retired.push(meta);
    }
    Ok((new, retired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_new_key_is_private_and_rotation_gives_the_old_one_an_overlap() {
        let pki = tempfile::tempdir().unwrap();
        let dir = pass_key_dir(pki.path());
        let t0 = Utc::now();
        let first = new_pass_key(&dir, t0).unwrap();
        assert_eq!(first.meta.kid, 1);
        let mode = fs::metadata(&first.key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            new_pass_key(&dir, t0),
            Err(PkiError::PassKeyExists(_))
        ));
        let (second, retired) = rotate_pass_key(&dir, Duration::days(8), t0).unwrap();
        assert_eq!(second.meta.kid, 2);
        assert_eq!(retired.len(), 1);
        let keys = list_pass_keys(&dir).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(current(&keys).unwrap().meta.kid, 2);
        assert_eq!(keys[0].meta.retire_after, Some(t0 + Duration::days(8)));
        assert!(keys[0].live_at(t0 + Duration::days(7)));
        assert!(!keys[0].live_at(t0 + Duration::days(9)));
        assert_ne!(keys[0].public_key, keys[1].public_key);
    }
}
