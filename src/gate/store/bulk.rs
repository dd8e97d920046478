//! The full snapshot written while it streams in: [`Store::replace_all`] converts each batch
//! of rows ([`SnapshotPart`]) on one blocking thread and writes it through rusqlite into one
//! open transaction on another, committing only a complete, valid snapshot whose index built.
//!
//! This module never reads the store back and never decides.

use std::path::Path;
use std::time::Duration;

use super::{DATA_TABLES, RuleCache, Snapshot, Store, StoreError, invalid};
use crate::wire::rows::{
    BlacklistRecord, BookingRecord, CredentialRecord, LockRecord, PermitRecord, Update,
    VehicleRecord,
};

impl Store {
    /// Replaces everything with a full snapshot whose rows arrive in `parts` while it streams
    /// in, and hands the rows, as domain values, to `then` (which builds the index) — without
    /// reading them back. Two blocking threads: the first converts each batch (validating
    /// every row, and normalising plates and hex to the stored form) and passes it on to the
    /// second, which writes it through rusqlite into one open transaction; after
    /// [`SnapshotPart::End`] the first runs `then` while the second finishes writing, and the
    /// transaction commits only when every row converted and `then` succeeded. A million
    /// permits are three million rows, so they go through rusqlite, are never read back, and
    /// are written while the download still arrives (benches/README.md).
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
    // read back as the B-trees grow (a measurable share of the write time, benches/README.md;
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
    for table in DATA_TABLES {
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
                         host_id, purpose, slot_from, slot_until, status, pass_used_entry, \
                         pass_used_exit) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                        b.status,
                        b.pass_used_entry,
                        b.pass_used_exit
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
    // The data is committed (in the WAL); copying it into the database file is slow at a
    // million permits and need not delay the index swap. Left to the next
    // commit of another connection, it would delay a lane's write instead.
    std::thread::spawn(move || {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "store checkpoint after a snapshot failed");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;
    use crate::domain::PermitId;
    use crate::gate::store::tests::permit_row;

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
