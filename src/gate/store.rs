//! The gate's local store: the permits, vehicles, credentials and lists the lane decides from,
//! and the lane state that must survive a restart (presence, consumed passes, lane modes).
//!
//! It is a SQLite file of its own (WAL), apart from the journal, so that writing a large update
//! never delays an event commit. Data arrives as **rows** — the text/DTO form that the CSV import
//! and the centre's sync both produce ([`PermitRecord`], [`VehicleRecord`], ...). [`Store::apply`]
//! validates every row of an [`Update`] by converting it to the domain first and writes nothing
//! if any row is bad; a valid update is written in one transaction with its data version.
//! [`Store::load`] reads everything back as plain domain `Vec`s ([`Snapshot`]) for the in-memory
//! index, which is what the lane actually decides from.
//!
//! This module never decides and never touches a device.

use std::num::NonZeroU16;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::domain::text::{TextError, parse_category, parse_gate_rights, parse_schedule};
use crate::domain::{
    BlacklistEntry, BlacklistId, BookingId, Credential, Epc, LockEntry, LockId, Permit, PermitId,
    PermitStatus, PersonId, Plate, PlateIdentity, Tid, UtcMinute, Vehicle, VehicleId,
    VisitorBooking,
};
use crate::gate::index::{
    BuildError, Index, IndexBuild, IndexBuilder, IndexDelta, PermitFields, PermitTable, TextMap,
    VehicleTable,
};
use crate::wire::rows::{
    BlacklistRecord, BookingRecord, CredentialRecord, LockRecord, PermitRecord, Update,
    VehicleRecord, parse_colour, parse_plate,
};

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound variables at 14 columns.
const INSERT_CHUNK: usize = 1000;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store.db: {}", migration_message(.0))]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row of an update is not valid; nothing of the update was written.
    #[error("{what} {key}: {message}")]
    InvalidRow {
        what: &'static str,
        key: String,
        message: String,
    },
    /// The stored rows do not make a decision index (they were valid when written, so the
    /// file was changed behind the gate's back).
    #[error("the stored rows do not make an index: {0}")]
    Index(#[from] BuildError),
}

/// A migration error in words; a file whose schema is newer than this binary (an upgrade
/// rolled back) is refused with the advice to upgrade.
pub(crate) fn migration_message(e: &sqlx::migrate::MigrateError) -> String {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => format!(
            "the schema is newer than this gatehouse binary (it has migration {v}, which this \
             binary does not know); upgrade gatehouse instead of running an older one"
        ),
        other => format!("cannot apply migrations: {other}"),
    }
}

fn invalid(what: &'static str, key: impl ToString, e: impl ToString) -> StoreError {
    StoreError::InvalidRow {
        what,
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// Parsed gate-rights and schedule texts, by text: most permits share a handful of each.
#[derive(Debug, Default)]
struct RuleCache {
    gates: Parsed<crate::domain::GateRights>,
    schedules: Parsed<crate::domain::Schedule>,
}

/// Values parsed from texts, each text parsed once.
#[derive(Debug)]
struct Parsed<T> {
    by_text: TextMap<usize>,
    values: Vec<T>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            by_text: TextMap::default(),
            values: Vec::new(),
        }
    }
}

impl<T> Parsed<T> {
    fn get(
        &mut self,
        text: &str,
        parse: impl FnOnce(&str) -> Result<T, TextError>,
    ) -> Result<&T, TextError> {
        let i = match self.by_text.get(text) {
            Some(i) => i,
            None => {
                self.values.push(parse(text)?);
                self.by_text.insert(text, self.values.len() - 1);
                self.values.len() - 1
            }
        };
        Ok(&self.values[i])
    }
}

impl RuleCache {
    /// [`PermitRecord::to_domain`], each rule text parsed once.
    fn permit(&mut self, row: &PermitRecord) -> Result<Permit, TextError> {
        let RuleCache { gates, schedules } = self;
        row.to_domain_with(
            |text| gates.get(text, parse_gate_rights).cloned(),
            |text| schedules.get(text, parse_schedule).cloned(),
        )
    }
}

impl Update {
    /// The same change as domain values, for the in-memory index ([`IndexDelta`]): what the
    /// store wrote, so that the index can follow without reading the store back. Rows are
    /// converted as [`Store::apply`] validates them; an EPC to delete that is not hexadecimal
    /// matches no stored tag and is left out.
    pub fn to_delta(&self) -> Result<IndexDelta, StoreError> {
        fn all<R, D>(
            rows: &[R],
            what: &'static str,
            key: impl Fn(&R) -> String,
            mut convert: impl FnMut(&R) -> Result<D, TextError>,
        ) -> Result<Vec<D>, StoreError> {
            rows.iter()
                .map(|r| convert(r).map_err(|e| invalid(what, key(r), e)))
                .collect()
        }
        let mut rules = RuleCache::default();
        Ok(IndexDelta {
            data_version: self.data_version,
            permits: all(
                &self.permits,
                "permit",
                |r| r.id.to_string(),
                |r| rules.permit(r),
            )?,
            delete_permits: self.delete_permits.iter().map(|&i| PermitId(i)).collect(),
            vehicles: all(
                &self.vehicles,
                "vehicle",
                |r| r.id.to_string(),
                VehicleRecord::to_domain,
            )?,
            delete_vehicles: self.delete_vehicles.iter().map(|&i| VehicleId(i)).collect(),
            credentials: all(
                &self.credentials,
                "credential",
                |r| r.epc.clone(),
                CredentialRecord::to_domain,
            )?,
            delete_credentials: self
                .delete_credentials
                .iter()
                .filter_map(|e| Epc::from_hex(e).ok())
                .collect(),
            blacklist: all(
                &self.blacklist,
                "blacklist entry",
                |r| r.id.to_string(),
                BlacklistRecord::to_domain,
            )?,
            delete_blacklist: self
                .delete_blacklist
                .iter()
                .map(|&i| BlacklistId(i))
                .collect(),
            locks: all(
                &self.locks,
                "lock entry",
                |r| r.id.to_string(),
                LockRecord::to_domain,
            )?,
            delete_locks: self.delete_locks.iter().map(|&i| LockId(i)).collect(),
            bookings: all(
                &self.bookings,
                "booking",
                |r| r.id.to_string(),
                BookingRecord::to_domain,
            )?,
            delete_bookings: self.delete_bookings.iter().map(|&i| BookingId(i)).collect(),
        })
    }
}

impl Update {
    /// A full snapshot's rows as domain values: what [`Store::load`] reads back after
    /// [`Store::apply`] wrote them.
    pub fn to_snapshot(&self) -> Result<Snapshot, StoreError> {
        let d = self.to_delta()?;
        Ok(Snapshot {
            data_version: self.data_version,
            permits: d.permits,
            vehicles: d.vehicles,
            credentials: d.credentials,
            blacklist: d.blacklist,
            locks: d.locks,
            bookings: d.bookings,
        })
    }
}

/// Everything the lane decides from, as domain values.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub data_version: u64,
    pub permits: Vec<Permit>,
    pub vehicles: Vec<Vehicle>,
    pub credentials: Vec<Credential>,
    pub blacklist: Vec<BlacklistEntry>,
    pub locks: Vec<LockEntry>,
    pub bookings: Vec<VisitorBooking>,
}

impl From<Snapshot> for IndexBuilder {
    fn from(s: Snapshot) -> IndexBuilder {
        IndexBuilder {
            data_version: s.data_version,
            permits: s.permits,
            vehicles: s.vehicles,
            credentials: s.credentials,
            blacklist: s.blacklist,
            locks: s.locks,
            bookings: s.bookings,
        }
    }
}

/// Where a vehicle was last seen, for anti-passback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceRecord {
    pub vehicle_id: VehicleId,
    pub inside: bool,
    /// UTC milliseconds of the passage that set it.
    pub since_ms: i64,
    pub gate: u16,
}

/// The gate's local store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: std::path::PathBuf,
    /// Held by whoever writes data and then follows with the in-memory index, so that two
    /// updates never interleave between the store and the index.
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies its migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A connection comes back outside any transaction, or is closed (crate::pool).
            .after_release(|conn, _meta| Box::pin(crate::pool::outside_transaction(conn, true)))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/gate-store").run(&pool).await?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Waits until no other data update is in progress; hold the guard across
    /// [`Store::apply`] and the index swap that follows it.
    pub async fn lock_updates(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// The data version of what is stored.
    pub async fn data_version(&self) -> Result<u64, StoreError> {
        let v: i64 = sqlx::query_scalar("SELECT data_version FROM store_state WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(v as u64)
    }

    /// Validates every row, then writes the whole update in one transaction. If any row is
    /// invalid, nothing is written and the error names the row.
    pub async fn apply(&self, update: &Update) -> Result<(), StoreError> {
        for p in &update.permits {
            p.to_domain().map_err(|e| invalid("permit", p.id, e))?;
        }
        for v in &update.vehicles {
            v.to_domain().map_err(|e| invalid("vehicle", v.id, e))?;
        }
        for c in &update.credentials {
            c.to_domain()
                .map_err(|e| invalid("credential", &c.epc, e))?;
        }
        for b in &update.blacklist {
            b.to_domain()
                .map_err(|e| invalid("blacklist entry", b.id, e))?;
        }
        for l in &update.locks {
            l.to_domain().map_err(|e| invalid("lock entry", l.id, e))?;
        }
        for b in &update.bookings {
            b.to_domain().map_err(|e| invalid("booking", b.id, e))?;
        }

        let mut tx = self.pool.begin().await?;
        if update.replace_all {
            for table in [
                "permits",
                "vehicles",
                "credentials",
                "blacklist",
                "locks",
                "bookings",
            ] {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        delete_ids(&mut tx, "permits", "id", &update.delete_permits).await?;
        delete_ids(&mut tx, "vehicles", "id", &update.delete_vehicles).await?;
        delete_ids(&mut tx, "blacklist", "id", &update.delete_blacklist).await?;
        delete_ids(&mut tx, "locks", "id", &update.delete_locks).await?;
        delete_ids(&mut tx, "bookings", "id", &update.delete_bookings).await?;
        for epc in &update.delete_credentials {
            sqlx::query("DELETE FROM credentials WHERE epc = ?")
                .bind(epc.to_ascii_uppercase())
                .execute(&mut *tx)
                .await?;
        }
        // Keep references whole, so the index can always be built: a deleted vehicle takes its
        // tags with it, and a deleted permit is struck from the vehicles that held it (the
        // centre's delta names the permit, not every vehicle that once held it).
        delete_ids(
            &mut tx,
            "credentials",
            "vehicle_id",
            &update.delete_vehicles,
        )
        .await?;
        for permit in &update.delete_permits {
            let holders = sqlx::query(
                "SELECT id, permit_ids FROM vehicles WHERE ',' || permit_ids || ',' LIKE ?",
            )
            .bind(format!("%,{permit},%"))
            .fetch_all(&mut *tx)
            .await?;
            for v in holders {
                let id: i64 = v.try_get("id")?;
                let ids: String = v.try_get("permit_ids")?;
                let kept: Vec<&str> = ids
                    .split(',')
                    .filter(|p| *p != permit.to_string())
                    .collect();
                sqlx::query("UPDATE vehicles SET permit_ids = ? WHERE id = ?")
                    .bind(kept.join(","))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }

        for chunk in update.permits.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO permits (id, category, holder_id, holder_name, department, \
                 status, status_reason, valid_from, valid_until, gates, schedule, single_use, \
                 max_inside, version) ",
            );
            q.push_values(chunk, |mut b, p| {
                b.push_bind(p.id)
                    .push_bind(&p.category)
                    .push_bind(p.holder_id)
                    .push_bind(&p.holder_name)
                    .push_bind(&p.department)
                    .push_bind(&p.status)
                    .push_bind(&p.status_reason)
                    .push_bind(p.valid_from)
                    .push_bind(p.valid_until)
                    .push_bind(&p.gates)
                    .push_bind(&p.schedule)
                    .push_bind(p.single_use)
                    .push_bind(p.max_inside)
                    .push_bind(p.version);
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in update.vehicles.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO vehicles (id, plate, colour, permit_ids) ",
            );
            q.push_values(chunk, |mut b, v| {
                let ids: Vec<String> = v.permit_ids.iter().map(u32::to_string).collect();
                let plate = Plate::parse(&v.plate).expect("validated above");
                b.push_bind(v.id)
                    .push_bind(plate.as_str().to_string())
                    .push_bind(&v.colour)
                    .push_bind(ids.join(","));
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in update.credentials.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO credentials (epc, tid, vehicle_id) ",
            );
            q.push_values(chunk, |mut b, c| {
                b.push_bind(c.epc.to_ascii_uppercase())
                    .push_bind(c.tid.as_ref().map(|t| t.to_ascii_uppercase()))
                    .push_bind(c.vehicle_id);
            });
            q.build().execute(&mut *tx).await?;
        }
        for b in &update.blacklist {
            sqlx::query(
                "INSERT OR REPLACE INTO blacklist (id, subject_kind, subject, colour, reason, \
                 valid_from, valid_until, alarm) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(b.id)
            .bind(&b.subject_kind)
            .bind(&b.subject)
            .bind(&b.colour)
            .bind(&b.reason)
            .bind(b.valid_from)
            .bind(b.valid_until)
            .bind(&b.alarm)
            .execute(&mut *tx)
            .await?;
        }
        for l in &update.locks {
            sqlx::query(
                "INSERT OR REPLACE INTO locks (id, plate, colour, reason, valid_from, valid_until) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(l.id)
            .bind(&l.plate)
            .bind(&l.colour)
            .bind(&l.reason)
            .bind(l.valid_from)
            .bind(l.valid_until)
            .execute(&mut *tx)
            .await?;
        }
        for b in &update.bookings {
            sqlx::query(
                "INSERT OR REPLACE INTO bookings (id, plate, colour, visitor_name, host_id, purpose, \
                 slot_from, slot_until, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(b.id)
            .bind(&b.plate)
            .bind(&b.colour)
            .bind(&b.visitor_name)
            .bind(b.host_id)
            .bind(&b.purpose)
            .bind(b.slot_from)
            .bind(b.slot_until)
            .bind(&b.status)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE store_state SET data_version = ? WHERE id = 1")
            .bind(update.data_version as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces everything with a full snapshot whose rows arrive in `parts` while it streams
    /// in, and hands the rows, as domain values, to `then` (which builds the index) — without
    /// reading them back. Two blocking threads: the first converts each batch (validating
    /// every row, and normalising plates and hex to the stored form) and passes it on to the
    /// second, which writes it through rusqlite into one open transaction; after
    /// [`SnapshotPart::End`] the first runs `then` while the second finishes writing, and the
    /// transaction commits only when every row converted and `then` succeeded. A million
    /// permits are three million rows: sqlx's one-row-at-a-time SQLite worker, a read-back of
    /// what was just written, and waiting for the whole download before starting were most of
    /// a fresh gate's sync time.
    ///
    /// Nothing is written if a row is bad (the error names it), `then` fails, the write fails,
    /// or `parts` closes without [`SnapshotPart::End`] (a cut-off stream).
    pub async fn replace_all<T, E>(
        &self,
        mut parts: tokio::sync::mpsc::Receiver<SnapshotPart>,
        then: impl FnOnce(Snapshot) -> Result<T, E> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: std::fmt::Display,
    {
        // Batches waiting for the writer (64,000 rows at most): the converter runs ahead, so
        // the index build overlaps the end of the write, without holding the whole download.
        let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel::<SnapshotPart>(64);
        let (verdict_tx, verdict_rx) = std::sync::mpsc::channel::<bool>();
        let convert = tokio::task::spawn_blocking(move || {
            let mut snapshot = Snapshot::default();
            let mut rules = RuleCache::default();
            loop {
                let Some(mut part) = parts.blocking_recv() else {
                    return Err(invalid(
                        "snapshot",
                        "rows",
                        "the snapshot ended before its last row",
                    ));
                };
                if let SnapshotPart::End { data_version } = part {
                    snapshot.data_version = data_version;
                    if rows_tx.send(part).is_err() {
                        return Ok(None);
                    }
                    break;
                }
                convert_part(&mut part, &mut snapshot, &mut rules)?;
                if rows_tx.send(part).is_err() {
                    // The writer failed; its error says why.
                    return Ok(None);
                }
            }
            drop(parts);
            match then(snapshot) {
                Ok(out) => {
                    let _ = verdict_tx.send(true);
                    Ok(Some(out))
                }
                Err(e) => Err(invalid("snapshot", "index", e)),
            }
        });
        let path = self.path.clone();
        let write =
            tokio::task::spawn_blocking(move || replace_blocking(&path, rows_rx, verdict_rx));
        let (converted, written) = tokio::join!(convert, write);
        let converted = converted.map_err(|e| invalid("store", "convert", e))?;
        let written = written.map_err(|e| invalid("store", "write", e))?;
        match (converted?, written) {
            (_, Err(e)) => Err(e),
            (Some(out), Ok(())) => Ok(out),
            (None, Ok(())) => Err(invalid("store", "write", "the writer stopped")),
        }
    }

    /// Reads everything the lane decides from, as one consistent snapshot.
    ///
    /// A million permits are three million rows; sqlx hands SQLite rows over one by one through
    /// its worker thread (about 15 s for that), so this bulk read goes through rusqlite on the
    /// blocking pool instead, on two threads whose read transactions see the same data
    /// version (or it is read again in one).
    pub async fn load(&self) -> Result<Snapshot, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || load_blocking(&path))
            .await
            .map_err(|e| invalid("store", "load", e))?
    }

    /// Reads everything the lane decides from straight into its decision index, as one
    /// consistent snapshot: what [`Store::load`] reads, without the domain values in between.
    /// The permits are read and indexed on one thread while the vehicles and tags are on
    /// another; a million permits load in 0.6–0.8 s (`cargo bench --bench gate_latency`).
    pub async fn load_index(&self) -> Result<Index, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || load_index_blocking(&path))
            .await
            .map_err(|e| invalid("store", "load", e))?
    }

    /// Every vehicle's last known presence.
    pub async fn load_presence(&self) -> Result<Vec<PresenceRecord>, StoreError> {
        let rows = sqlx::query("SELECT vehicle_id, inside, since_ms, gate FROM presence")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| PresenceRecord {
                vehicle_id: VehicleId(row.get(0)),
                inside: row.get(1),
                since_ms: row.get(2),
                gate: row.get(3),
            })
            .collect())
    }

    /// Records where a vehicle now is.
    pub async fn set_presence(&self, record: PresenceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO presence (vehicle_id, inside, since_ms, gate) VALUES (?, ?, ?, ?) \
             ON CONFLICT (vehicle_id) DO UPDATE SET inside = excluded.inside, \
             since_ms = excluded.since_ms, gate = excluded.gate \
             WHERE excluded.since_ms >= presence.since_ms",
        )
        .bind(record.vehicle_id.0)
        .bind(record.inside)
        .bind(record.since_ms)
        .bind(record.gate)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Single-use permits already used here.
    pub async fn load_consumed(&self) -> Result<Vec<PermitId>, StoreError> {
        let ids: Vec<u32> = sqlx::query_scalar("SELECT permit_id FROM consumed")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(PermitId).collect())
    }

    /// Marks a single-use permit as used.
    pub async fn consume(&self, permit: PermitId, at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO consumed (permit_id, at_ms) VALUES (?, ?)")
            .bind(permit.0)
            .bind(at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The stored mode of a lane, if one was ever set.
    pub async fn lane_mode(&self, lane: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT mode FROM lane_modes WHERE lane = ?")
                .bind(lane)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a lane's mode.
    pub async fn set_lane_mode(&self, lane: &str, mode: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lane_modes (lane, mode) VALUES (?, ?) \
             ON CONFLICT (lane) DO UPDATE SET mode = excluded.mode",
        )
        .bind(lane)
        .bind(mode)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts of stored rows: (permits, vehicles, credentials).
    pub async fn counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM permits), (SELECT COUNT(*) FROM vehicles), \
             (SELECT COUNT(*) FROM credentials)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.get::<i64, _>(0) as u64,
            row.get::<i64, _>(1) as u64,
            row.get::<i64, _>(2) as u64,
        ))
    }
}

/// One part of a full snapshot, as [`Store::replace_all`] takes it: a batch of rows of one
/// table, or the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotPart {
    Permits(Vec<PermitRecord>),
    Vehicles(Vec<VehicleRecord>),
    Credentials(Vec<CredentialRecord>),
    Blacklist(Vec<BlacklistRecord>),
    Locks(Vec<LockRecord>),
    Bookings(Vec<BookingRecord>),
    /// Every row has been sent; they are the data at `data_version`. Without it nothing is
    /// written.
    End {
        data_version: u64,
    },
}

impl Update {
    /// A full snapshot's rows as the parts [`Store::replace_all`] takes (batches of 1,000),
    /// ending with [`SnapshotPart::End`] at the update's data version.
    pub fn into_parts(self) -> Vec<SnapshotPart> {
        fn batches<R>(rows: Vec<R>, part: fn(Vec<R>) -> SnapshotPart, out: &mut Vec<SnapshotPart>) {
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                out.push(part(rows.by_ref().take(1000).collect()));
            }
        }
        let mut out = Vec::new();
        batches(self.permits, SnapshotPart::Permits, &mut out);
        batches(self.vehicles, SnapshotPart::Vehicles, &mut out);
        batches(self.credentials, SnapshotPart::Credentials, &mut out);
        batches(self.blacklist, SnapshotPart::Blacklist, &mut out);
        batches(self.locks, SnapshotPart::Locks, &mut out);
        batches(self.bookings, SnapshotPart::Bookings, &mut out);
        out.push(SnapshotPart::End {
            data_version: self.data_version,
        });
        out
    }
}

/// Converts a batch of rows to domain values into `snapshot`, and normalises the rows to the
/// form the store keeps (a plate as it parses, hex in upper case), so the writer need not
/// parse them again. The error names the first bad row.
fn convert_part(
    part: &mut SnapshotPart,
    snapshot: &mut Snapshot,
    rules: &mut RuleCache,
) -> Result<(), StoreError> {
    match part {
        SnapshotPart::Permits(rows) => {
            snapshot.permits.reserve(rows.len());
            for r in rows.iter() {
                let p = rules.permit(r).map_err(|e| invalid("permit", r.id, e))?;
                snapshot.permits.push(p);
            }
        }
        SnapshotPart::Vehicles(rows) => {
            snapshot.vehicles.reserve(rows.len());
            for r in rows.iter_mut() {
                let v = r.to_domain().map_err(|e| invalid("vehicle", r.id, e))?;
                if v.plate.plate.as_str() != r.plate {
                    r.plate = v.plate.plate.as_str().to_string();
                }
                snapshot.vehicles.push(v);
            }
        }
        SnapshotPart::Credentials(rows) => {
            snapshot.credentials.reserve(rows.len());
            for r in rows.iter_mut() {
                let c = r
                    .to_domain()
                    .map_err(|e| invalid("credential", &r.epc, e))?;
                r.epc.make_ascii_uppercase();
                if let Some(t) = r.tid.as_mut() {
                    t.make_ascii_uppercase();
                }
                snapshot.credentials.push(c);
            }
        }
        SnapshotPart::Blacklist(rows) => {
            for r in rows.iter() {
                let b = r
                    .to_domain()
                    .map_err(|e| invalid("blacklist entry", r.id, e))?;
                snapshot.blacklist.push(b);
            }
        }
        SnapshotPart::Locks(rows) => {
            for r in rows.iter() {
                let l = r.to_domain().map_err(|e| invalid("lock entry", r.id, e))?;
                snapshot.locks.push(l);
            }
        }
        SnapshotPart::Bookings(rows) => {
            for r in rows.iter() {
                let b = r.to_domain().map_err(|e| invalid("booking", r.id, e))?;
                snapshot.bookings.push(b);
            }
        }
        SnapshotPart::End { .. } => {}
    }
    Ok(())
}

/// Rows per multi-row INSERT of the snapshot writer: one statement step per 50 rows instead
/// of one per row (at 14 columns, well under SQLite's 32,766 bound variables).
const WRITE_ROWS: usize = 50;

/// Writes `rows` into `into` (`table (columns)`) with multi-row `INSERT OR REPLACE`s of
/// [`WRITE_ROWS`]; `bind` adds one row's `columns` values.
fn insert_many<'r, R>(
    tx: &rusqlite::Transaction<'_>,
    into: &str,
    columns: usize,
    rows: &'r [R],
    bind: impl Fn(&'r R, &mut Vec<&'r dyn rusqlite::ToSql>),
) -> rusqlite::Result<()> {
    let one = format!("({})", vec!["?"; columns].join(","));
    let mut args: Vec<&'r dyn rusqlite::ToSql> = Vec::with_capacity(columns * WRITE_ROWS);
    for chunk in rows.chunks(WRITE_ROWS) {
        let sql = format!(
            "INSERT OR REPLACE INTO {into} VALUES {}",
            vec![one.as_str(); chunk.len()].join(",")
        );
        let mut st = tx.prepare_cached(&sql)?;
        args.clear();
        for r in chunk {
            bind(r, &mut args);
        }
        st.execute(rusqlite::params_from_iter(args.iter()))?;
    }
    Ok(())
}

/// SQLite page cache of the snapshot writer, in KiB: the plate and EPC keys of a million
/// vehicles arrive in no particular order, and a cache that holds their B-trees keeps the
/// inserts from spilling pages to the WAL mid-transaction.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// The write behind [`Store::replace_all`] (blocking): every table emptied, then refilled
/// batch by batch as `rows` brings them (already validated and normalised), the data version
/// set at [`SnapshotPart::End`], committed only if `verdict` then says the rows made an
/// index. `rows` closing early rolls everything back.
fn replace_blocking(
    path: &Path,
    rows: std::sync::mpsc::Receiver<SnapshotPart>,
    verdict: std::sync::mpsc::Receiver<bool>,
) -> Result<(), StoreError> {
    use rusqlite::params;
    let write_err = |e: rusqlite::Error| StoreError::InvalidRow {
        what: "store",
        key: "write".into(),
        message: e.to_string(),
    };
    let mut conn = rusqlite::Connection::open(path).map_err(write_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(write_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(write_err)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(write_err)?;
    // The new rows stay in memory until the commit instead of being spilled to the WAL and
    // read back as the B-trees grow (about a tenth of the write time at a million permits;
    // the price is memory about the size of the data until the commit).
    conn.pragma_update(None, "cache_spill", "OFF")
        .map_err(write_err)?;
    // The checkpoint that copies the transaction from the WAL into the file runs after the
    // commit, off the caller's path (below).
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(write_err)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(write_err)?;
    for table in [
        "permits",
        "vehicles",
        "credentials",
        "blacklist",
        "locks",
        "bookings",
    ] {
        tx.execute(&format!("DELETE FROM {table}"), [])
            .map_err(write_err)?;
    }
    // Vehicles arrive in id order, so their plates land at random places in the plate index:
    // a million such inserts took longer than any other table. Dropped here and built again
    // in one sort below (it still refuses two vehicles with one plate).
    tx.execute("DROP INDEX vehicles_plate", [])
        .map_err(write_err)?;
    let data_version = loop {
        // A closed channel (the stream was cut off, or a row was bad) drops the transaction,
        // which rolls it back.
        let Ok(part) = rows.recv() else {
            return Err(invalid(
                "snapshot",
                "rows",
                "the snapshot ended before its last row",
            ));
        };
        match part {
            SnapshotPart::End { data_version } => break data_version,
            SnapshotPart::Permits(rows) => {
                insert_many(
                    &tx,
                    "permits (id, category, holder_id, holder_name, department, status, \
                     status_reason, valid_from, valid_until, gates, schedule, single_use, \
                     max_inside, version)",
                    14,
                    &rows,
                    |p, args| {
                        args.extend([
                            &p.id as &dyn rusqlite::ToSql,
                            &p.category,
                            &p.holder_id,
                            &p.holder_name,
                            &p.department,
                            &p.status,
                            &p.status_reason,
                            &p.valid_from,
                            &p.valid_until,
                            &p.gates,
                            &p.schedule,
                            &p.single_use,
                            &p.max_inside,
                            &p.version,
                        ])
                    },
                )
                .map_err(write_err)?;
            }
            SnapshotPart::Vehicles(rows) => {
                let lists: Vec<String> = rows
                    .iter()
                    .map(|v| {
                        let ids: Vec<String> = v.permit_ids.iter().map(u32::to_string).collect();
                        ids.join(",")
                    })
                    .collect();
                let rows: Vec<(&VehicleRecord, &String)> = rows.iter().zip(&lists).collect();
                insert_many(
                    &tx,
                    "vehicles (id, plate, colour, permit_ids)",
                    4,
                    &rows,
                    |(v, ids), args| {
                        args.extend([&v.id as &dyn rusqlite::ToSql, &v.plate, &v.colour, *ids])
                    },
                )
                .map_err(write_err)?;
            }
            SnapshotPart::Credentials(rows) => {
                insert_many(
                    &tx,
                    "credentials (epc, tid, vehicle_id)",
                    3,
                    &rows,
                    |c, args| args.extend([&c.epc as &dyn rusqlite::ToSql, &c.tid, &c.vehicle_id]),
                )
                .map_err(write_err)?;
            }
            SnapshotPart::Blacklist(rows) => {
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO blacklist (id, subject_kind, subject, colour, \
                         reason, valid_from, valid_until, alarm) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(write_err)?;
                for b in &rows {
                    st.execute(params![
                        b.id,
                        b.subject_kind,
                        b.subject,
                        b.colour,
                        b.reason,
                        b.valid_from,
                        b.valid_until,
                        b.alarm
                    ])
                    .map_err(write_err)?;
                }
            }
            SnapshotPart::Locks(rows) => {
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO locks (id, plate, colour, reason, valid_from, \
                         valid_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(write_err)?;
                for l in &rows {
                    st.execute(params![
                        l.id,
                        l.plate,
                        l.colour,
                        l.reason,
                        l.valid_from,
                        l.valid_until
                    ])
                    .map_err(write_err)?;
                }
            }
            SnapshotPart::Bookings(rows) => {
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO bookings (id, plate, colour, visitor_name, \
                         host_id, purpose, slot_from, slot_until, status) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(write_err)?;
                for b in &rows {
                    st.execute(params![
                        b.id,
                        b.plate,
                        b.colour,
                        b.visitor_name,
                        b.host_id,
                        b.purpose,
                        b.slot_from,
                        b.slot_until,
                        b.status
                    ])
                    .map_err(write_err)?;
                }
            }
        }
    };
    tx.execute(
        "CREATE UNIQUE INDEX vehicles_plate ON vehicles (plate, colour)",
        [],
    )
    .map_err(write_err)?;
    tx.execute(
        "UPDATE store_state SET data_version = ?1 WHERE id = 1",
        params![data_version as i64],
    )
    .map_err(write_err)?;
    if verdict.recv() != Ok(true) {
        // Dropping the transaction rolls it back; the converter's error says why.
        return Err(invalid(
            "snapshot",
            "rows",
            "the rows did not make an index",
        ));
    }
    tx.commit().map_err(write_err)?;
    // The data is committed (in the WAL); copying it into the database file takes about a
    // second at a million permits and need not delay the index swap. Left to the next
    // commit of another connection, it would delay a lane's write instead.
    std::thread::spawn(move || {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "store checkpoint after a snapshot failed");
        }
    });
    Ok(())
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::InvalidRow {
        what: "store",
        key: "read".into(),
        message: e.to_string(),
    }
}

fn corrupt(what: &'static str, key: u32, e: TextError) -> StoreError {
    invalid(what, key, e)
}

/// Reads every permit, handing each to `each` as borrowed fields: the index build takes them
/// as they are, without a `Permit` made per row only to be taken apart.
fn each_permit(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(PermitFields<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    // Most permits share a handful of gate-rights and schedule texts: parse each text once.
    let RuleCache { gates, schedules } = &mut RuleCache::default();
    let mut stmt = tx
        .prepare(
            "SELECT id, category, holder_id, holder_name, department, status, status_reason, \
             valid_from, valid_until, gates, schedule, single_use, max_inside, version FROM permits",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let text = |i: usize| -> Result<&str, StoreError> {
            row.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(sql_err)
        };
        let int = |i: usize| -> Result<i64, StoreError> { row.get::<_, i64>(i).map_err(sql_err) };
        let id = int(0)? as u32;
        let status = match text(5)? {
            "active" => PermitStatus::Active,
            "suspended" => PermitStatus::Suspended {
                reason: text(6)?.into(),
            },
            _ => PermitStatus::Revoked {
                reason: text(6)?.into(),
            },
        };
        each(PermitFields {
            id: PermitId(id),
            category: parse_category(text(1)?).map_err(|e| corrupt("permit", id, e))?,
            person: PersonId(int(2)? as u32),
            name: text(3)?,
            department: text(4)?,
            status: &status,
            valid_from: UtcMinute(int(7)? as u32),
            valid_until: UtcMinute(int(8)? as u32),
            gates: gates
                .get(text(9)?, parse_gate_rights)
                .map_err(|e| corrupt("permit", id, e))?,
            schedule: schedules
                .get(text(10)?, parse_schedule)
                .map_err(|e| corrupt("permit", id, e))?,
            single_use: int(11)? != 0,
            max_inside: row
                .get::<_, Option<i64>>(12)
                .map_err(sql_err)?
                .and_then(|n| NonZeroU16::new(n as u16)),
            version: int(13)? as u32,
        })?;
    }
    Ok(())
}

/// Reads every vehicle, handing each to `each` with the permits it holds.
fn each_vehicle(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(VehicleId, PlateIdentity, &[PermitId]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare("SELECT id, plate, colour, permit_ids FROM vehicles")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let mut permit_ids = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        let id = row.get::<_, i64>(0).map_err(sql_err)? as u32;
        let text = |i: usize| -> Result<&str, StoreError> {
            row.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(sql_err)
        };
        permit_ids.clear();
        for s in text(3)?.split(',').filter(|s| !s.is_empty()) {
            permit_ids
                .push(PermitId(s.parse().map_err(|_| {
                    invalid("vehicle", id, "permit ids are not numbers")
                })?));
        }
        let plate = PlateIdentity {
            plate: parse_plate(text(1)?).map_err(|e| corrupt("vehicle", id, e))?,
            colour: parse_colour(text(2)?).map_err(|e| corrupt("vehicle", id, e))?,
        };
        each(VehicleId(id), plate, &permit_ids)?;
    }
    Ok(())
}

/// Reads every issued tag, handing each to `each`.
fn each_credential(
    tx: &rusqlite::Transaction<'_>,
    mut each: impl FnMut(Credential) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare("SELECT epc, tid, vehicle_id FROM credentials")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let epc = row
            .get_ref(0)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(sql_err)?;
        let tid: Option<&str> = row
            .get_ref(1)
            .and_then(|v| v.as_str_or_null().map_err(Into::into))
            .map_err(sql_err)?;
        let vehicle_id = row.get::<_, i64>(2).map_err(sql_err)? as u32;
        each(Credential {
            epc: Epc::from_hex(epc).map_err(|e| invalid("credential", epc, e))?,
            tid: tid
                .map(|t| Tid::from_hex(t).map_err(|e| invalid("credential", epc, e)))
                .transpose()?,
            vehicle_id: VehicleId(vehicle_id),
        })?;
    }
    Ok(())
}

/// How many rows `table` has, so that a bulk read reserves room for them once (about 15 ms a
/// million rows; growing the `Vec`s instead copies them and briefly holds them twice).
fn count(tx: &rusqlite::Transaction<'_>, table: &str) -> Result<usize, StoreError> {
    tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
    .map_err(sql_err)
}

/// The permits as domain values.
fn read_permits(tx: &rusqlite::Transaction<'_>) -> Result<Vec<Permit>, StoreError> {
    let mut permits = Vec::with_capacity(count(tx, "permits")?);
    each_permit(tx, |p| {
        permits.push(p.to_permit());
        Ok(())
    })?;
    Ok(permits)
}

/// The vehicles and their tags as domain values, into `snapshot`.
fn read_vehicles_and_tags(
    tx: &rusqlite::Transaction<'_>,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    snapshot.vehicles.reserve(count(tx, "vehicles")?);
    each_vehicle(tx, |id, plate, permits| {
        snapshot.vehicles.push(Vehicle {
            id,
            plate,
            permit_ids: permits.into(),
        });
        Ok(())
    })?;
    snapshot.credentials.reserve(count(tx, "credentials")?);
    each_credential(tx, |c| {
        snapshot.credentials.push(c);
        Ok(())
    })
}

/// The permit half of an index build, read and sealed.
fn read_permit_table(
    tx: &rusqlite::Transaction<'_>,
    build: &IndexBuild,
) -> Result<PermitTable, StoreError> {
    let mut permits = build.permits(count(tx, "permits")?);
    each_permit(tx, |p| Ok(permits.push(p)?))?;
    Ok(permits.seal()?)
}

/// The vehicle half of an index build, read and sealed, with the lists.
fn read_vehicle_table(
    tx: &rusqlite::Transaction<'_>,
    build: &IndexBuild,
) -> Result<(VehicleTable, Snapshot), StoreError> {
    let mut vehicles = build.vehicles(count(tx, "vehicles")?, count(tx, "credentials")?);
    each_vehicle(tx, |id, plate, permits| {
        Ok(vehicles.push_vehicle(id, plate, permits.iter().copied())?)
    })?;
    each_credential(tx, |c| Ok(vehicles.push_credential(c)?))?;
    let mut lists = Snapshot::default();
    read_lists(tx, &mut lists)?;
    Ok((vehicles.seal()?, lists))
}

fn read_lists(tx: &rusqlite::Transaction<'_>, snapshot: &mut Snapshot) -> Result<(), StoreError> {
    let opt_text = |row: &rusqlite::Row<'_>, i: usize| -> Result<Option<String>, StoreError> {
        row.get::<_, Option<String>>(i).map_err(sql_err)
    };
    let mut stmt = tx
        .prepare(
            "SELECT id, subject_kind, subject, colour, reason, valid_from, valid_until, alarm FROM blacklist",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let b = BlacklistRecord {
            id: row.get::<_, i64>(0).map_err(sql_err)? as u32,
            subject_kind: row.get(1).map_err(sql_err)?,
            subject: row.get(2).map_err(sql_err)?,
            colour: opt_text(row, 3)?,
            reason: row.get(4).map_err(sql_err)?,
            valid_from: row.get::<_, i64>(5).map_err(sql_err)? as u32,
            valid_until: row.get::<_, i64>(6).map_err(sql_err)? as u32,
            alarm: row.get(7).map_err(sql_err)?,
        };
        snapshot.blacklist.push(
            b.to_domain()
                .map_err(|e| corrupt("blacklist entry", b.id, e))?,
        );
    }
    drop(rows);
    drop(stmt);

    let mut stmt = tx
        .prepare("SELECT id, plate, colour, reason, valid_from, valid_until FROM locks")
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let l = LockRecord {
            id: row.get::<_, i64>(0).map_err(sql_err)? as u32,
            plate: row.get(1).map_err(sql_err)?,
            colour: opt_text(row, 2)?,
            reason: row.get(3).map_err(sql_err)?,
            valid_from: row.get::<_, i64>(4).map_err(sql_err)? as u32,
            valid_until: row.get::<_, i64>(5).map_err(sql_err)? as u32,
        };
        snapshot
            .locks
            .push(l.to_domain().map_err(|e| corrupt("lock entry", l.id, e))?);
    }
    drop(rows);
    drop(stmt);

    let mut stmt = tx
        .prepare(
            "SELECT id, plate, colour, visitor_name, host_id, purpose, slot_from, slot_until, status FROM bookings",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let b = BookingRecord {
            id: row.get::<_, i64>(0).map_err(sql_err)? as u32,
            plate: row.get(1).map_err(sql_err)?,
            colour: opt_text(row, 2)?,
            visitor_name: row.get(3).map_err(sql_err)?,
            host_id: row.get::<_, i64>(4).map_err(sql_err)? as u32,
            purpose: row.get(5).map_err(sql_err)?,
            slot_from: row.get::<_, i64>(6).map_err(sql_err)? as u32,
            slot_until: row.get::<_, i64>(7).map_err(sql_err)? as u32,
            status: row.get(8).map_err(sql_err)?,
        };
        snapshot
            .bookings
            .push(b.to_domain().map_err(|e| corrupt("booking", b.id, e))?);
    }
    Ok(())
}

/// Opens a read-only connection and runs `read` in one read transaction; returns the data
/// version that transaction saw with what `read` made.
fn read_part<T>(
    path: &Path,
    read: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<(u64, T), StoreError> {
    use rusqlite::OpenFlags;
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(sql_err)?;
    let tx = conn.transaction().map_err(sql_err)?;
    let version = tx
        .query_row(
            "SELECT data_version FROM store_state WHERE id = 1",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql_err)? as u64;
    Ok((version, read(&tx)?))
}

/// Runs `permits` and `rest` on two threads, each in its own read transaction. If an update
/// slipped in between (their data versions differ), both run again in one transaction, so
/// what they read is always one consistent version.
fn read_in_two<P: Send, R: Send>(
    path: &Path,
    permits: impl Fn(&rusqlite::Transaction<'_>) -> Result<P, StoreError> + Sync,
    rest: impl Fn(&rusqlite::Transaction<'_>) -> Result<R, StoreError>,
) -> Result<(u64, P, R), StoreError> {
    let (p, r) = std::thread::scope(|scope| {
        let p = scope.spawn(|| read_part(path, &permits));
        let r = read_part(path, &rest);
        (p.join().expect("the permit reader does not panic"), r)
    });
    let ((vp, p), (vr, r)) = (p?, r?);
    if vp == vr {
        return Ok((vp, p, r));
    }
    let (version, (p, r)) = read_part(path, |tx| Ok((permits(tx)?, rest(tx)?)))?;
    Ok((version, p, r))
}

/// The bulk read behind [`Store::load`] (blocking).
fn load_blocking(path: &Path) -> Result<Snapshot, StoreError> {
    let (version, permits, mut all) = read_in_two(path, read_permits, |tx| {
        let mut s = Snapshot::default();
        read_vehicles_and_tags(tx, &mut s)?;
        read_lists(tx, &mut s)?;
        Ok(s)
    })?;
    all.permits = permits;
    all.data_version = version;
    Ok(all)
}

/// The bulk read behind [`Store::load_index`] (blocking): each half of the index is built on
/// the thread that reads its rows.
fn load_index_blocking(path: &Path) -> Result<Index, StoreError> {
    let build = IndexBuild::new();
    let (version, permits, (vehicles, lists)) = read_in_two(
        path,
        |tx| read_permit_table(tx, &build),
        |tx| read_vehicle_table(tx, &build),
    )?;
    Ok(build.finish(
        version,
        permits,
        vehicles,
        lists.blacklist,
        lists.locks,
        lists.bookings,
    )?)
}

async fn delete_ids(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    table: &str,
    column: &str,
    ids: &[u32],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(format!("DELETE FROM {table} WHERE {column} IN ("));
        let mut sep = q.separated(", ");
        for id in chunk {
            sep.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::AlarmLevel;

    pub(crate) fn permit_row(id: u32) -> PermitRecord {
        PermitRecord {
            id,
            category: "staff".into(),
            holder_id: id,
            holder_name: "张三".into(),
            department: "计算机学院".into(),
            status: "active".into(),
            status_reason: String::new(),
            valid_from: 0,
            valid_until: u32::MAX,
            gates: "all".into(),
            schedule: "mon-fri 07:00-22:00".into(),
            single_use: false,
            max_inside: Some(1),
            version: 1,
        }
    }

    #[tokio::test]
    async fn an_update_round_trips_through_the_store_as_domain_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let update = Update {
            data_version: 7,
            permits: vec![permit_row(1)],
            vehicles: vec![VehicleRecord {
                id: 10,
                plate: "京a·12345".into(),
                colour: "blue".into(),
                permit_ids: vec![1],
            }],
            credentials: vec![CredentialRecord {
                epc: "e2003098881900722140369e".into(),
                tid: None,
                vehicle_id: 10,
            }],
            blacklist: vec![BlacklistRecord {
                id: 1,
                subject_kind: "plate".into(),
                subject: "沪B67890".into(),
                colour: None,
                reason: "盗抢车辆".into(),
                valid_from: 0,
                valid_until: u32::MAX,
                alarm: "urgent".into(),
            }],
            ..Update::default()
        };
        store.apply(&update).await.unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.data_version, 7);
        assert_eq!(snap.permits, vec![permit_row(1).to_domain().unwrap()]);
        assert_eq!(snap.vehicles[0].plate.plate.as_str(), "京A12345");
        assert_eq!(snap.credentials[0].epc.as_bytes()[0], 0xE2);
        assert_eq!(snap.blacklist[0].alarm, AlarmLevel::Urgent);
    }

    #[tokio::test]
    async fn an_update_with_one_bad_row_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let mut bad = permit_row(2);
        bad.valid_until = 0;
        let update = Update {
            data_version: 3,
            permits: vec![permit_row(1), bad],
            ..Update::default()
        };
        let err = store.apply(&update).await.unwrap_err().to_string();
        assert!(
            err.contains("permit 2: valid_until must be after valid_from"),
            "{err}"
        );
        assert_eq!(store.counts().await.unwrap(), (0, 0, 0));
        assert_eq!(store.data_version().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_transaction_left_open_by_a_cancelled_task_neither_blocks_nor_swallows_later_writes()
    {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Store::open(&path).await.unwrap();
        {
            let mut conn = store.pool.acquire().await.unwrap();
            let mut leaked = conn.begin().await.unwrap();
            sqlx::query("INSERT INTO lane_modes (lane, mode) VALUES ('leak', 'locked_closed')")
                .execute(&mut *leaked)
                .await
                .unwrap();
            // What a task cancelled just after its BEGIN leaves: no transaction object to
            // roll it back.
            std::mem::forget(leaked);
        }
        for n in 1..=10 {
            let record = PresenceRecord {
                vehicle_id: VehicleId(n),
                inside: true,
                since_ms: 1_000,
                gate: 1,
            };
            tokio::time::timeout(Duration::from_secs(5), store.set_presence(record))
                .await
                .unwrap_or_else(|_| panic!("write {n} waited on the lost lock"))
                .unwrap_or_else(|e| panic!("write {n} was refused: {e}"));
        }
        // A connection of its own, outside the pool, sees what was committed, and not the leak.
        let other = rusqlite::Connection::open(&path).unwrap();
        let count = |sql: &str| other.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM presence"), 10);
        assert_eq!(
            count("SELECT count(*) FROM lane_modes WHERE lane = 'leak'"),
            0
        );
    }

    #[tokio::test]
    async fn presence_never_goes_back_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let at = |inside, since_ms| PresenceRecord {
            vehicle_id: VehicleId(1),
            inside,
            since_ms,
            gate: 1,
        };
        store.set_presence(at(true, 2000)).await.unwrap();
        store.set_presence(at(false, 1000)).await.unwrap();
        assert_eq!(store.load_presence().await.unwrap(), vec![at(true, 2000)]);
        store.set_presence(at(false, 3000)).await.unwrap();
        assert_eq!(store.load_presence().await.unwrap(), vec![at(false, 3000)]);
    }

    /// Replaces the store through [`Store::replace_all`] with `parts`, building nothing.
    async fn replace(store: &Store, parts: Vec<SnapshotPart>) -> Result<usize, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let feed = async move {
            for p in parts {
                if tx.send(p).await.is_err() {
                    break;
                }
            }
        };
        let (out, ()) = tokio::join!(
            store.replace_all(rx, |s| Ok::<_, String>(s.permits.len())),
            feed
        );
        out
    }

    fn two_permits(version: u64) -> Update {
        Update {
            data_version: version,
            replace_all: true,
            permits: vec![permit_row(1), permit_row(2)],
            vehicles: vec![VehicleRecord {
                id: 10,
                plate: "京a·12345".into(),
                colour: "blue".into(),
                permit_ids: vec![1, 2],
            }],
            credentials: vec![CredentialRecord {
                epc: "e2003098881900722140369e".into(),
                tid: Some("e2801170".into()),
                vehicle_id: 10,
            }],
            ..Update::default()
        }
    }

    #[tokio::test]
    async fn a_streamed_snapshot_replaces_everything_and_is_stored_normalised() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        store.apply(&two_permits(3)).await.unwrap();
        let mut next = two_permits(9);
        next.permits.remove(0);
        next.vehicles[0].permit_ids = vec![2];
        assert_eq!(replace(&store, next.into_parts()).await.unwrap(), 1);
        assert_eq!(store.data_version().await.unwrap(), 9);
        let snap = store.load().await.unwrap();
        assert_eq!(snap.permits, vec![permit_row(2).to_domain().unwrap()]);
        assert_eq!(snap.vehicles[0].plate.plate.as_str(), "京A12345");
        assert_eq!(snap.vehicles[0].permit_ids.as_ref(), [PermitId(2)]);
        let stored: (String, Option<String>) = sqlx::query_as("SELECT epc, tid FROM credentials")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            stored,
            ("E2003098881900722140369E".into(), Some("E2801170".into()))
        );
    }

    #[tokio::test]
    async fn a_snapshot_keeps_plates_unique_though_it_rebuilds_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        store.apply(&two_permits(3)).await.unwrap();

        // Two vehicles with one plate: refused by the store itself (the converter here checks
        // nothing), and nothing of the snapshot is written.
        let mut twice = two_permits(9);
        let mut second = twice.vehicles[0].clone();
        second.id = 11;
        twice.vehicles.push(second);
        let err = replace(&store, twice.into_parts())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("UNIQUE"), "{err}");
        assert_eq!(store.data_version().await.unwrap(), 3);
        assert_eq!(store.counts().await.unwrap(), (2, 1, 1));

        // After a good snapshot the index is back: a second vehicle with the plate is refused.
        replace(&store, two_permits(9).into_parts()).await.unwrap();
        let duplicate = sqlx::query(
            "INSERT INTO vehicles (id, plate, colour, permit_ids) VALUES (12, '京A12345', 'blue', '')",
        )
        .execute(&store.pool)
        .await;
        assert!(duplicate.is_err(), "the plate index is missing");
    }

    #[tokio::test]
    async fn a_store_of_the_first_schema_keeps_its_vehicles_and_their_unique_plates_after_the_upgrade()
     {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            // The store as the first release made it: migration 0001 only.
            let mut first = sqlx::migrate!("./migrations/gate-store");
            first.migrations = std::borrow::Cow::Owned(first.migrations[..1].to_vec());
            let options = SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new()
                .connect_with(options)
                .await
                .unwrap();
            first.run(&pool).await.unwrap();
            sqlx::query(
                "INSERT INTO vehicles (id, plate, colour, permit_ids) VALUES (7, '京A12345', 'blue', '1,2')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = Store::open(&path).await.unwrap();
        let kept: (i64, String, String) =
            sqlx::query_as("SELECT id, plate, permit_ids FROM vehicles")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(kept, (7, "京A12345".into(), "1,2".into()));
        let duplicate = sqlx::query(
            "INSERT INTO vehicles (id, plate, colour, permit_ids) VALUES (8, '京A12345', 'blue', '')",
        )
        .execute(&store.pool)
        .await;
        assert!(
            duplicate.is_err(),
            "the plate index is missing after the upgrade"
        );
    }

    #[tokio::test]
    async fn a_snapshot_cut_off_bad_or_refused_by_the_index_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        store.apply(&two_permits(3)).await.unwrap();
        let unchanged = |store: Store| async move {
            assert_eq!(store.data_version().await.unwrap(), 3);
            assert_eq!(store.counts().await.unwrap(), (2, 1, 1));
        };

        // Every row, but no end.
        let mut parts = two_permits(9).into_parts();
        parts.pop();
        let err = replace(&store, parts).await.unwrap_err().to_string();
        assert!(err.contains("ended before its last row"), "{err}");
        unchanged(store.clone()).await;

        // A bad row in the second batch of vehicles.
        let mut parts = two_permits(9).into_parts();
        parts.insert(
            2,
            SnapshotPart::Vehicles(vec![VehicleRecord {
                id: 11,
                plate: String::new(),
                colour: "blue".into(),
                permit_ids: vec![1],
            }]),
        );
        let err = replace(&store, parts).await.unwrap_err().to_string();
        assert!(err.contains("vehicle 11"), "{err}");
        unchanged(store.clone()).await;

        // Good rows the index refuses.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        for p in two_permits(9).into_parts() {
            tx.send(p).await.unwrap();
        }
        let err = store
            .replace_all(rx, |_| Err::<(), _>("a vehicle holds an unknown permit"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown permit"), "{err}");
        unchanged(store.clone()).await;
    }
}

#[cfg(test)]
mod load_index_tests {
    use super::tests::permit_row;
    use super::*;
    use crate::domain::PlateColour;

    /// Every answer the index gives about the keys the test stored, as plain text.
    fn answers(index: &Index, plates: &[&str], epcs: &[&str]) -> Vec<String> {
        let now = UtcMinute(1);
        let mut out = vec![format!(
            "v{} counts {} {} {}",
            index.data_version(),
            index.permit_count(),
            index.vehicle_count(),
            index.credential_count()
        )];
        for i in 0..12 {
            if let Some(p) = index.permit(PermitId(i)) {
                let vehicles: Vec<u32> = p.vehicles().map(|v| v.id().0).collect();
                out.push(format!(
                    "permit {i} {:?} {:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {} {:?} v{} {vehicles:?}",
                    p.category(),
                    p.status(),
                    p.person_id(),
                    p.holder_name(),
                    p.department(),
                    p.valid_from(),
                    p.valid_until(),
                    p.gates(),
                    p.schedule(),
                    p.single_use(),
                    p.max_inside(),
                    p.version(),
                ));
            }
            if let Some(v) = index.vehicle(VehicleId(i)) {
                let permits: Vec<u32> = v.permits().map(|p| p.id().0).collect();
                out.push(format!("vehicle {i} {} {permits:?}", v.plate()));
            }
            let mut of: Vec<u32> = index
                .permits_of_person(PersonId(i))
                .map(|p| p.id().0)
                .collect();
            of.sort();
            out.push(format!("person {i} {of:?}"));
        }
        for plate in plates {
            let plate = PlateIdentity {
                plate: parse_plate(plate).unwrap(),
                colour: PlateColour::Blue,
            };
            let vehicle = index.vehicle_by_plate(plate).map(|v| v.id());
            let black: Vec<_> = index.blacklist_for_plate(plate, now).collect();
            let locks: Vec<_> = index.locks_for(plate, now).collect();
            let bookings: Vec<_> = index.bookings_for(plate).collect();
            out.push(format!(
                "plate {plate} {vehicle:?} {black:?} {locks:?} {bookings:?}"
            ));
        }
        for epc in epcs {
            let c = index.credential(&Epc::from_hex(epc).unwrap());
            out.push(format!(
                "tag {epc} {:?}",
                c.map(|c| (c.tid(), c.vehicle().id()))
            ));
        }
        out
    }

    #[tokio::test]
    async fn the_index_read_straight_from_the_store_answers_like_one_built_from_its_domain_values()
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).await.unwrap();
        let mut permits: Vec<PermitRecord> = (1..=6).map(permit_row).collect();
        permits[1].status = "suspended".into();
        permits[1].status_reason = "年检过期".into();
        permits[2].status = "revoked".into();
        permits[2].status_reason = "离职".into();
        permits[3].schedule = String::new();
        permits[3].department = String::new();
        permits[3].holder_id = 1; // a second permit of person 1
        permits[4].gates = "1:entry+exit;2:exit".into();
        permits[4].single_use = true;
        permits[4].max_inside = None;
        permits[5].category = "visitor".into();
        permits[5].valid_from = 29_000_000;
        permits[5].valid_until = 29_100_000;
        let vehicle = |id: u32, plate: &str, permit_ids: Vec<u32>| VehicleRecord {
            id,
            plate: plate.into(),
            colour: "blue".into(),
            permit_ids,
        };
        let update = Update {
            data_version: 42,
            permits,
            vehicles: vec![
                vehicle(1, "京A10001", vec![1, 4]),
                vehicle(2, "京A10002", vec![1]),
                vehicle(3, "沪B20003", vec![2, 3, 5]),
                vehicle(4, "粤C30004", vec![]),
            ],
            credentials: vec![
                CredentialRecord {
                    epc: "E20000000000000000000001".into(),
                    tid: Some("E2801160200000000000000A".into()),
                    vehicle_id: 1,
                },
                CredentialRecord {
                    epc: "E20000000000000000000002".into(),
                    tid: None,
                    vehicle_id: 1,
                },
                CredentialRecord {
                    epc: "E20000000000000000000003".into(),
                    tid: None,
                    vehicle_id: 3,
                },
            ],
            blacklist: vec![BlacklistRecord {
                id: 1,
                subject_kind: "plate".into(),
                subject: "粤C30004".into(),
                colour: None,
                reason: "盗抢车辆".into(),
                valid_from: 0,
                valid_until: u32::MAX,
                alarm: "urgent".into(),
            }],
            locks: vec![LockRecord {
                id: 1,
                plate: "沪B20003".into(),
                colour: Some("blue".into()),
                reason: "欠费".into(),
                valid_from: 0,
                valid_until: u32::MAX,
            }],
            bookings: vec![BookingRecord {
                id: 1,
                plate: "苏E50005".into(),
                colour: None,
                visitor_name: "李四".into(),
                host_id: 2,
                purpose: "讲座".into(),
                slot_from: 0,
                slot_until: 100,
                status: "approved".into(),
            }],
            ..Update::default()
        };
        store.apply(&update).await.unwrap();

        let direct = store.load_index().await.unwrap();
        let snapshot = store.load().await.unwrap();
        let built = IndexBuilder::from(snapshot).build().unwrap();
        let plates = ["京A10001", "京A10002", "沪B20003", "粤C30004", "苏E50005"];
        let epcs = [
            "E20000000000000000000001",
            "E20000000000000000000002",
            "E20000000000000000000003",
            "E20000000000000000000009",
        ];
        let expected = answers(&built, &plates, &epcs);
        assert_eq!(answers(&direct, &plates, &epcs), expected);
        // The comparison is not between two empty answers.
        for line in [
            "v42 counts 6 4 3",
            "person 1 [1, 4]",
            "tag E20000000000000000000003 Some((None, VehicleId(3)))",
        ] {
            assert!(
                expected.iter().any(|l| l == line),
                "{line} not in {expected:#?}"
            );
        }
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("permit 2 Staff Suspended") && l.contains("年检过期"))
        );
        assert!(
            expected
                .iter()
                .any(|l| l.starts_with("plate 粤C30004") && l.contains("盗抢车辆"))
        );
    }

    #[tokio::test]
    async fn stored_rows_that_make_no_index_are_refused_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Store::open(&path).await.unwrap();
        store
            .apply(&Update {
                data_version: 1,
                permits: vec![permit_row(1)],
                ..Update::default()
            })
            .await
            .unwrap();
        // Written behind the store's back: a vehicle holding a permit that is not there.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO vehicles (id, plate, colour, permit_ids) VALUES (5, '京A12345', 'blue', '1,99')",
                [],
            )
            .unwrap();
        let err = store.load_index().await.unwrap_err();
        assert!(matches!(err, StoreError::Index(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the stored rows do not make an index: vehicle 5 holds permit 99, which is not in the snapshot"
        );
    }
}
