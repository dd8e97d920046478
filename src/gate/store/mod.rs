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
//! - this file: opening and migrating the file, the errors, [`Store::apply`] for updates.
//! - `bulk`: a full snapshot written while it streams in ([`Store::replace_all`]).
//! - `load`: everything read back at once ([`Store::load`], [`Store::load_index`]).
//! - `lane_state`: presence, consumed single-use permits and lane modes.
//!
//! This module never decides and never touches a device.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::domain::text::{TextError, parse_gate_rights, parse_schedule};
use crate::domain::{BlacklistId, BookingId, Epc, LockId, Permit, PermitId, Plate, VehicleId};
use crate::gate::index::{BuildError, IndexBuilder, IndexDelta, TextMap};
use crate::wire::rows::{
    BlacklistRecord, BookingRecord, CredentialRecord, LockRecord, PermitRecord, Update,
    VehicleRecord,
};

mod bulk;
mod lane_state;
mod load;

pub use bulk::SnapshotPart;

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound variables at 14 columns.
const INSERT_CHUNK: usize = 1000;

/// The tables of the centre's data, which a full snapshot empties before it writes them again.
const DATA_TABLES: [&str; 6] = [
    "permits",
    "vehicles",
    "credentials",
    "blacklist",
    "locks",
    "bookings",
];

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

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::InvalidRow {
        what: "store",
        key: "read".into(),
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

/// Everything the lane decides from, as domain values: the rows an [`IndexBuilder`] builds
/// the index from.
pub type Snapshot = IndexBuilder;

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
            for table in DATA_TABLES {
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
                 slot_from, slot_until, status, pass_used_entry, pass_used_exit) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .bind(b.pass_used_entry)
            .bind(b.pass_used_exit)
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
}
