//! The gate's photo store: each camera read's JPEGs on disk next to the journal, named by the
//! SHA-256 of their bytes, so a photo is written once however often it is pushed, and uploaded
//! to the centre exactly once by that name.
//!
//! What it is for: evidence (卡口 photos) that survives a restart. A photo is durable (written to
//! a temporary file, fsynced, renamed) before the read that refers to it is journalled.
//!
//! **Bounded.** The store keeps at most `[photos] max_bytes` (gate.toml, default 20 GiB) and
//! forgets uploaded photos older than `max_age_days` (default 30). When a new photo takes it
//! over its size, the oldest photos go first — uploaded ones before any other; a photo the
//! centre does not have yet is evicted only when nothing uploaded is left, and each such one is
//! a loss: logged as an error, counted ([`PhotoStats::lost`]) and recorded with its hash, size
//! and time in the store's own `photo_losses` table. An un-uploaded photo is never dropped for
//! its age.
//!
//! **Its own index.** Which photos are kept and which the centre confirmed is in
//! `<photos>/index.db` (SQLite through rusqlite, WAL, its schema version in `user_version`, a
//! newer one refused), not in the journal: the journal's rows are the events the lanes commit
//! on their hot path and its pruning follows the centre's event acknowledgement; photos follow
//! their own upload and their own bounds. A row is written before its file, so a crash between
//! the two leaves a row whose file is missing, which the uploader records as a loss
//! ([`PhotoStore::forget`]) — never a file no row knows (which nothing would evict).
//!
//! What it never does: mark a photo uploaded that the centre has not confirmed (only
//! [`PhotoStore::mark_uploaded`], called by the sync client after the centre's answer, does),
//! or evict the photo it is storing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::wire::journal::{PhotoKind, PhotoRef};

/// The index's schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS photos (
    sha256 TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    uploaded_ms INTEGER
);
CREATE INDEX IF NOT EXISTS photos_by_age ON photos (stored_ms);
CREATE INDEX IF NOT EXISTS photos_pending ON photos (stored_ms) WHERE uploaded_ms IS NULL;
CREATE TABLE IF NOT EXISTS photo_losses (
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    lost_ms INTEGER NOT NULL,
    why TEXT NOT NULL
);
";

const DAY_MS: i64 = 86_400_000;

/// How often (at most) a `put` also sweeps uploaded photos past their age.
const AGE_SWEEP_EVERY_MS: i64 = 60_000;

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
    /// The store's index could not be read or written.
    #[error("photo index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The index was written by a newer gatehouse.
    #[error(
        "photo index {path} has schema version {found}, this binary knows {SCHEMA_VERSION}: \
         upgrade gatehouse"
    )]
    TooNew { path: PathBuf, found: i64 },
}

/// How much the store keeps: `[photos]` of gate.toml (`max_bytes`, `max_age_days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "RawLimits")]
pub struct PhotoLimits {
    /// The most bytes of photos kept.
    pub max_bytes: u64,
    /// Uploaded photos older than this many days are forgotten.
    pub max_age_days: u32,
}

impl Default for PhotoLimits {
    fn default() -> PhotoLimits {
        PhotoLimits {
            max_bytes: 20 * 1024 * 1024 * 1024,
            max_age_days: 30,
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_bytes")]
    max_bytes: u64,
    #[serde(default = "default_max_age_days")]
    max_age_days: u32,
}

fn default_max_bytes() -> u64 {
    PhotoLimits::default().max_bytes
}

fn default_max_age_days() -> u32 {
    PhotoLimits::default().max_age_days
}

/// The smallest `max_bytes` accepted: a few hundred photos.
const MIN_MAX_BYTES: u64 = 64 * 1024 * 1024;

impl TryFrom<RawLimits> for PhotoLimits {
    type Error = String;

    fn try_from(raw: RawLimits) -> Result<PhotoLimits, String> {
        if raw.max_bytes < MIN_MAX_BYTES {
            return Err(format!(
                "photos.max_bytes is {}, at least {MIN_MAX_BYTES} (64 MiB) is needed to keep the \
                 photos of a few hundred reads",
                raw.max_bytes
            ));
        }
        if !(1..=3650).contains(&raw.max_age_days) {
            return Err(format!(
                "photos.max_age_days is {}, it must be 1-3650",
                raw.max_age_days
            ));
        }
        Ok(PhotoLimits {
            max_bytes: raw.max_bytes,
            max_age_days: raw.max_age_days,
        })
    }
}

/// What the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhotoStats {
    pub photos: u64,
    pub bytes: u64,
    /// Photos the centre has not confirmed yet.
    pub pending: u64,
    /// Photos evicted (or found missing) before the centre had them, ever.
    pub lost: u64,
}

/// A photo waiting for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPhoto {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug)]
struct Index {
    conn: rusqlite::Connection,
    /// The bytes of every photo in the index (kept in step, read at open).
    total: u64,
    last_age_sweep_ms: i64,
}

/// Photos on disk under `<data_dir>/photos/<first two hex digits>/<sha256>.jpg`, with their
/// index in `<data_dir>/photos/index.db`.
#[derive(Debug)]
pub struct PhotoStore {
    root: PathBuf,
    limits: PhotoLimits,
    index: Mutex<Index>,
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl PhotoStore {
    /// Opens (creating) the store under `root` with the default limits.
    pub fn open(root: &Path) -> Result<PhotoStore, PhotoError> {
        PhotoStore::open_with(root, PhotoLimits::default())
    }

    /// Opens (creating) the store under `root`, keeping within `limits`.
    pub fn open_with(root: &Path, limits: PhotoLimits) -> Result<PhotoStore, PhotoError> {
        std::fs::create_dir_all(root).map_err(|source| PhotoError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        let path = root.join("index.db");
        let index = |source| PhotoError::Index {
            path: path.clone(),
            source,
        };
        let conn = rusqlite::Connection::open(&path).map_err(index)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(index)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(index)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(index)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(index)?;
        if found > SCHEMA_VERSION {
            return Err(PhotoError::TooNew { path, found });
        }
        conn.execute_batch(SCHEMA).map_err(index)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(index)?;
        let total: i64 = conn
            .query_row("SELECT COALESCE(SUM(bytes), 0) FROM photos", [], |r| {
                r.get(0)
            })
            .map_err(index)?;
        Ok(PhotoStore {
            root: root.to_path_buf(),
            limits,
            index: Mutex::new(Index {
                conn,
                total: total.max(0) as u64,
                last_age_sweep_ms: i64::MIN,
            }),
        })
    }

    /// The limits the store keeps within.
    pub fn limits(&self) -> PhotoLimits {
        self.limits
    }

    fn index_error(&self, source: rusqlite::Error) -> PhotoError {
        PhotoError::Index {
            path: self.root.join("index.db"),
            source,
        }
    }

    /// Where the photo with this hash lives.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("xx");
        self.root.join(prefix).join(format!("{sha256}.jpg"))
    }

    /// Stores `jpeg` durably and returns its reference. Storing the same bytes again is a no-op.
    /// Blocking: call from `spawn_blocking`.
    pub fn put(&self, kind: PhotoKind, jpeg: &[u8]) -> Result<PhotoRef, PhotoError> {
        self.put_at(kind, jpeg, now_ms())
    }

    /// The reference `put` will return for these bytes, without storing them: lets the camera
    /// listener hand a read to its lane while the photos are still being written.
    pub fn reference(kind: PhotoKind, jpeg: &[u8]) -> PhotoRef {
        PhotoRef {
            sha256: hex::encode(Sha256::digest(jpeg)),
            kind,
            bytes: jpeg.len() as u64,
        }
    }

    /// [`PhotoStore::put`] at the time `now_ms` (tests give the time).
    pub fn put_at(
        &self,
        kind: PhotoKind,
        jpeg: &[u8],
        now_ms: i64,
    ) -> Result<PhotoRef, PhotoError> {
        let reference = PhotoStore::reference(kind, jpeg);
        let path = self.path_of(&reference.sha256);
        let mut index = self.index.lock().expect("photo index lock poisoned");
        let known = index
            .conn
            .query_row(
                "SELECT 1 FROM photos WHERE sha256 = ?1",
                [&reference.sha256],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.index_error(e))?
            .is_some();
        if known && path.exists() {
            return Ok(reference);
        }
        if !known {
            index
                .conn
                .execute(
                    "INSERT INTO photos (sha256, kind, bytes, stored_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        reference.sha256,
                        kind_name(kind),
                        reference.bytes as i64,
                        now_ms
                    ],
                )
                .map_err(|e| self.index_error(e))?;
            index.total += reference.bytes;
        }
        if let Err(e) = write_durably(&path, jpeg) {
            if !known {
                // The row must not outlive a file that was never written.
                let _ = index
                    .conn
                    .execute("DELETE FROM photos WHERE sha256 = ?1", [&reference.sha256]);
                index.total = index.total.saturating_sub(reference.bytes);
            }
            return Err(e);
        }
        self.keep_within(&mut index, now_ms, Some(&reference.sha256))?;
        Ok(reference)
    }

    /// The bytes of a stored photo, if it is still kept.
    pub fn get(&self, sha256: &str) -> Option<Vec<u8>> {
        if !is_sha256(sha256) {
            return None;
        }
        std::fs::read(self.path_of(sha256)).ok()
    }

    /// Whether the centre has confirmed this photo (`None`: not kept).
    pub fn is_uploaded(&self, sha256: &str) -> Result<Option<bool>, PhotoError> {
        let index = self.index.lock().expect("photo index lock poisoned");
        index
            .conn
            .query_row(
                "SELECT uploaded_ms IS NOT NULL FROM photos WHERE sha256 = ?1",
                [sha256],
                |r| r.get::<_, bool>(0),
            )
            .optional()
            .map_err(|e| self.index_error(e))
    }

    /// Up to `limit` photos the centre has not confirmed, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<PendingPhoto>, PhotoError> {
        let index = self.index.lock().expect("photo index lock poisoned");
        let mut stmt = index
            .conn
            .prepare_cached(
                "SELECT sha256, bytes FROM photos WHERE uploaded_ms IS NULL \
                 ORDER BY stored_ms, sha256 LIMIT ?1",
            )
            .map_err(|e| self.index_error(e))?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(PendingPhoto {
                    sha256: r.get(0)?,
                    bytes: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .map_err(|e| self.index_error(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.index_error(e))
    }

    /// Records that the centre confirmed it holds these photos. Only the sync client calls
    /// this, after the centre's answer.
    pub fn mark_uploaded(&self, sha256: &[String], now_ms: i64) -> Result<(), PhotoError> {
        let mut index = self.index.lock().expect("photo index lock poisoned");
        let tx = index.conn.transaction().map_err(|e| self.index_error(e))?;
        for sha in sha256 {
            tx.execute(
                "UPDATE photos SET uploaded_ms = ?2 WHERE sha256 = ?1 AND uploaded_ms IS NULL",
                params![sha, now_ms],
            )
            .map_err(|e| self.index_error(e))?;
        }
        tx.commit().map_err(|e| self.index_error(e))
    }

    /// A pending photo that cannot be sent — its file is gone (a crash between its row and its
    /// file, or removed by hand) or damaged: recorded as a loss (`why`) and forgotten, so the
    /// upload moves on.
    pub fn forget(&self, sha256: &str, now_ms: i64, why: &str) -> Result<(), PhotoError> {
        let mut index = self.index.lock().expect("photo index lock poisoned");
        self.evict(&mut index, sha256, now_ms, Some(why))
    }

    /// Forgets uploaded photos past their age and, if the store is over its size, the oldest
    /// photos (uploaded ones first). The store does this itself as photos arrive; the gate may
    /// call it on a timer too.
    pub fn sweep(&self, now_ms: i64) -> Result<(), PhotoError> {
        let mut index = self.index.lock().expect("photo index lock poisoned");
        index.last_age_sweep_ms = i64::MIN;
        self.keep_within(&mut index, now_ms, None)
    }

    /// What the store holds now.
    pub fn stats(&self) -> Result<PhotoStats, PhotoError> {
        let index = self.index.lock().expect("photo index lock poisoned");
        let (photos, pending): (i64, i64) = index
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(uploaded_ms IS NULL), 0) FROM photos",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.index_error(e))?;
        let lost: i64 = index
            .conn
            .query_row("SELECT COUNT(*) FROM photo_losses", [], |r| r.get(0))
            .map_err(|e| self.index_error(e))?;
        Ok(PhotoStats {
            photos: photos as u64,
            bytes: index.total,
            pending: pending as u64,
            lost: lost as u64,
        })
    }

    fn keep_within(
        &self,
        index: &mut Index,
        now_ms: i64,
        keep: Option<&str>,
    ) -> Result<(), PhotoError> {
        if now_ms.saturating_sub(index.last_age_sweep_ms) >= AGE_SWEEP_EVERY_MS {
            index.last_age_sweep_ms = now_ms;
            let cutoff = now_ms - i64::from(self.limits.max_age_days) * DAY_MS;
            let old = self.select(
                index,
                "SELECT sha256 FROM photos WHERE uploaded_ms IS NOT NULL AND stored_ms < ?1 \
                 ORDER BY stored_ms LIMIT 1000",
                cutoff,
            )?;
            for sha in old {
                self.evict(index, &sha, now_ms, None)?;
            }
        }
        while index.total > self.limits.max_bytes {
            // Uploaded photos first, oldest first; then, only when none is left, the oldest
            // un-uploaded one (a loss). Never the photo being stored.
            let mut victims = self.select(
                index,
                "SELECT sha256 FROM photos WHERE uploaded_ms IS NOT NULL \
                 ORDER BY stored_ms, sha256 LIMIT ?1",
                64,
            )?;
            let mut losing = false;
            if victims.is_empty() {
                victims = self.select(
                    index,
                    "SELECT sha256 FROM photos WHERE uploaded_ms IS NULL \
                     ORDER BY stored_ms, sha256 LIMIT ?1",
                    64,
                )?;
                losing = true;
            }
            victims.retain(|v| Some(v.as_str()) != keep);
            if victims.is_empty() {
                return Ok(());
            }
            for sha in victims {
                if index.total <= self.limits.max_bytes {
                    break;
                }
                let why = losing.then_some("evicted for space before upload");
                self.evict(index, &sha, now_ms, why)?;
            }
        }
        Ok(())
    }

    fn select(&self, index: &Index, sql: &str, arg: i64) -> Result<Vec<String>, PhotoError> {
        let mut stmt = index
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.index_error(e))?;
        let rows = stmt
            .query_map([arg], |r| r.get::<_, String>(0))
            .map_err(|e| self.index_error(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.index_error(e))
    }

    /// Deletes one photo's file and row; `loss`: why it is lost (recorded and logged).
    fn evict(
        &self,
        index: &mut Index,
        sha256: &str,
        now_ms: i64,
        loss: Option<&str>,
    ) -> Result<(), PhotoError> {
        let row: Option<(i64, i64)> = index
            .conn
            .query_row(
                "SELECT bytes, stored_ms FROM photos WHERE sha256 = ?1",
                [sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.index_error(e))?;
        let Some((bytes, stored_ms)) = row else {
            return Ok(());
        };
        let path = self.path_of(sha256);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(PhotoError::Io { path, source }),
        }
        let tx = index.conn.transaction().map_err(|e| self.index_error(e))?;
        tx.execute("DELETE FROM photos WHERE sha256 = ?1", [sha256])
            .map_err(|e| self.index_error(e))?;
        if let Some(why) = loss {
            tx.execute(
                "INSERT INTO photo_losses (sha256, bytes, stored_ms, lost_ms, why) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![sha256, bytes, stored_ms, now_ms, why],
            )
            .map_err(|e| self.index_error(e))?;
            tracing::error!(
                sha256,
                bytes,
                why,
                "a photo the centre does not have was lost at the gate"
            );
        }
        tx.commit().map_err(|e| self.index_error(e))?;
        index.total = index.total.saturating_sub(bytes.max(0) as u64);
        Ok(())
    }
}

fn kind_name(kind: PhotoKind) -> &'static str {
    match kind {
        PhotoKind::Plate => "plate",
        PhotoKind::Scene => "scene",
    }
}

/// Writes `bytes` to `path` through a fsynced temporary file renamed into place, then syncs the
/// directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), PhotoError> {
    let dir = path.parent().expect("a photo path has a parent");
    let io = |source| PhotoError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    fn jpeg(n: u8, size: usize) -> Vec<u8> {
        let mut v = vec![n; size];
        v[0] = 0xff;
        v[1] = 0xd8;
        v
    }

    fn store(dir: &Path, max_bytes: u64) -> PhotoStore {
        PhotoStore::open_with(
            dir,
            PhotoLimits {
                max_bytes,
                max_age_days: 30,
            },
        )
        .unwrap()
    }

    fn kept(s: &PhotoStore, r: &PhotoRef) -> bool {
        s.get(&r.sha256).is_some() && s.is_uploaded(&r.sha256).unwrap().is_some()
    }

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
        assert_eq!(store.stats().unwrap().photos, 1);
        assert_eq!(store.stats().unwrap().bytes, 8);
    }

    #[test]
    fn over_its_size_the_store_evicts_uploaded_photos_oldest_first_and_keeps_unsent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 3_000);
        let t0 = 1_000 * DAY;
        let old_sent = s.put_at(PhotoKind::Plate, &jpeg(1, 1000), t0).unwrap();
        let old_unsent = s.put_at(PhotoKind::Scene, &jpeg(2, 1000), t0 + 1).unwrap();
        let new_sent = s.put_at(PhotoKind::Plate, &jpeg(3, 1000), t0 + 2).unwrap();
        s.mark_uploaded(&[old_sent.sha256.clone(), new_sent.sha256.clone()], t0 + 3)
            .unwrap();

        // A fourth photo takes the store over: the oldest uploaded one goes, not the older
        // unsent one.
        let fourth = s.put_at(PhotoKind::Plate, &jpeg(4, 1000), t0 + 4).unwrap();
        assert!(!kept(&s, &old_sent), "the oldest uploaded photo is evicted");
        assert!(
            kept(&s, &old_unsent),
            "an unsent photo stays while space allows"
        );
        assert!(kept(&s, &new_sent));
        assert!(kept(&s, &fourth));
        assert_eq!(s.stats().unwrap().bytes, 3_000);

        // Then the next uploaded one, still before the unsent one.
        let fifth = s.put_at(PhotoKind::Plate, &jpeg(5, 1000), t0 + 5).unwrap();
        assert!(!kept(&s, &new_sent));
        assert!(kept(&s, &old_unsent));
        assert!(kept(&s, &fifth));
        assert_eq!(s.stats().unwrap().lost, 0);
    }

    #[test]
    fn an_unsent_photo_is_evicted_only_when_nothing_uploaded_is_left_and_counted_as_lost() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 2_000);
        let t0 = 1_000 * DAY;
        let a = s.put_at(PhotoKind::Plate, &jpeg(1, 1000), t0).unwrap();
        let b = s.put_at(PhotoKind::Plate, &jpeg(2, 1000), t0 + 1).unwrap();
        let c = s.put_at(PhotoKind::Plate, &jpeg(3, 1000), t0 + 2).unwrap();
        assert!(
            !kept(&s, &a),
            "the oldest unsent photo goes when nothing else can"
        );
        assert!(kept(&s, &b) && kept(&s, &c));
        let stats = s.stats().unwrap();
        assert_eq!((stats.photos, stats.pending, stats.lost), (2, 2, 1));
        let (sha, why): (String, String) = s
            .index
            .lock()
            .unwrap()
            .conn
            .query_row("SELECT sha256, why FROM photo_losses", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(sha, a.sha256);
        assert!(why.contains("before upload"), "{why}");
        // The photo being stored is never the one evicted, however large.
        let big = s.put_at(PhotoKind::Scene, &jpeg(9, 5_000), t0 + 3).unwrap();
        assert!(kept(&s, &big));
    }

    #[test]
    fn uploaded_photos_past_their_age_are_forgotten_and_unsent_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), u64::MAX);
        let t0 = 1_000 * DAY;
        let sent = s.put_at(PhotoKind::Plate, &jpeg(1, 10), t0).unwrap();
        let unsent = s.put_at(PhotoKind::Plate, &jpeg(2, 10), t0).unwrap();
        let young = s
            .put_at(PhotoKind::Plate, &jpeg(3, 10), t0 + 20 * DAY)
            .unwrap();
        s.mark_uploaded(&[sent.sha256.clone(), young.sha256.clone()], t0)
            .unwrap();
        s.sweep(t0 + 29 * DAY).unwrap();
        assert!(kept(&s, &sent), "29 days old: kept");
        s.sweep(t0 + 31 * DAY).unwrap();
        assert!(!kept(&s, &sent), "31 days old and uploaded: forgotten");
        assert!(kept(&s, &unsent), "never uploaded: kept whatever its age");
        assert!(kept(&s, &young));
        assert_eq!(s.stats().unwrap().lost, 0);
    }

    #[test]
    fn what_is_uploaded_and_what_is_kept_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let s = store(dir.path(), 10_000);
            let a = s.put_at(PhotoKind::Plate, &jpeg(1, 100), 1).unwrap();
            let b = s.put_at(PhotoKind::Plate, &jpeg(2, 100), 2).unwrap();
            s.mark_uploaded(std::slice::from_ref(&a.sha256), 3).unwrap();
            (a, b)
        };
        let s = store(dir.path(), 10_000);
        assert_eq!(s.is_uploaded(&a.sha256).unwrap(), Some(true));
        assert_eq!(
            s.pending(10).unwrap(),
            vec![PendingPhoto {
                sha256: b.sha256.clone(),
                bytes: 100
            }]
        );
        assert_eq!(s.stats().unwrap().bytes, 200);
        // A pending photo whose file vanished is recorded as lost, and no longer pending.
        std::fs::remove_file(s.path_of(&b.sha256)).unwrap();
        s.forget(&b.sha256, 4, "file missing").unwrap();
        assert!(s.pending(10).unwrap().is_empty());
        assert_eq!(s.stats().unwrap().lost, 1);
    }

    #[test]
    fn photo_limits_default_to_20_gib_and_30_days_and_nonsense_is_refused() {
        #[derive(serde::Deserialize)]
        struct Doc {
            #[serde(default)]
            photos: PhotoLimits,
        }
        let d: Doc = toml::from_str("").unwrap();
        assert_eq!(d.photos, PhotoLimits::default());
        assert_eq!(d.photos.max_bytes, 20 << 30);
        let d: Doc = toml::from_str("[photos]\nmax_bytes = 1073741824\n").unwrap();
        assert_eq!((d.photos.max_bytes, d.photos.max_age_days), (1 << 30, 30));
        // Only [photos] is read here (the other sections are config.rs's).
        let documented: Doc = toml::from_str(include_str!("../../examples/gate.toml")).unwrap();
        assert_eq!(
            documented.photos,
            PhotoLimits::default(),
            "examples/gate.toml"
        );
        for bad in [
            "[photos]\nmax_bytes = 1000\n",
            "[photos]\nmax_age_days = 0\n",
            "[photos]\nmax_days = 3\n",
        ] {
            assert!(toml::from_str::<Doc>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_index_from_a_newer_gatehouse_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(PhotoStore::open(dir.path()).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join("index.db")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = PhotoStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
