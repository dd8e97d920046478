//! A gate's snapshot: everything it decides from, read in one transaction and handed out in
//! batches of rows to a [`SnapshotSink`] (rusqlite on SQLite, sqlx on PostgreSQL).
//!
//! What it never does: write, or decide which gate may read it (the sync server does).

use sqlx::Row;

use super::{
    BLACKLIST_SELECT, BOOKING_SELECT, LOCK_SELECT, PERMIT_SELECT, blacklist_row, booking_row,
    change_head, credential_row, gate_booking_status, gate_settings, head, lock_row, permit_row,
    presence_row, window,
};
use crate::central::db::{Db, DbKind, RepoError};
use crate::wire::rows::{BlacklistRecord, BookingRecord, LockRecord, PermitRecord};
use crate::wire::sync::{
    CredentialWire, GateSettings, LaneSettings, PermitWire, PresenceWire, SNAPSHOT_BATCH,
    SNAPSHOT_FORMAT, VehicleWire,
};

/// Where a snapshot sends its parts.
pub trait SnapshotSink: Send {
    /// Takes one part; `false` stops the snapshot (the client went away).
    fn put(&mut self, line: crate::wire::sync::SnapshotLine) -> impl Future<Output = bool> + Send;
}

/// Reads everything gate `gate_id` decides from in one read transaction (a consistent view:
/// repeatable read on PostgreSQL, a WAL read snapshot on SQLite) and hands it to `sink` line
/// by line: header, rows in batches of [`SNAPSHOT_BATCH`], end. Returns the number of rows.
///
/// On a SQLite file the rows are read through rusqlite on a blocking thread (sqlx hands SQLite
/// rows over one at a time through its worker thread, far too slow for a million permits;
/// benches/README.md) and reach the sink through a channel, so reading and writing
/// the stream overlap. On PostgreSQL sqlx streams the rows itself.
pub async fn snapshot(
    db: &Db,
    gate_id: i64,
    sink: &mut impl SnapshotSink,
) -> Result<u64, RepoError> {
    // Version 0 means "no data yet" at a gate: a site whose change log is still empty starts
    // it, so that its first snapshot has a version to ask for changes from.
    if change_head(db).await? == 0 {
        let mut tx = db.begin().await?;
        crate::central::db::record_change(&mut tx, "sync", 0, "upsert").await?;
        tx.commit().await?;
    }
    match db.sqlite_file() {
        Some(path) => snapshot_sqlite(path.to_path_buf(), gate_id, sink).await,
        None => snapshot_sqlx(db, gate_id, sink).await,
    }
}

/// The snapshot of a SQLite file: a blocking reader, the sink fed from its channel.
async fn snapshot_sqlite(
    path: std::path::PathBuf,
    gate_id: i64,
    sink: &mut impl SnapshotSink,
) -> Result<u64, RepoError> {
    use crate::wire::sync::SnapshotLine as L;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<L>(8);
    let reader = tokio::task::spawn_blocking(move || {
        let mut send = |line: L| tx.blocking_send(line).is_ok();
        read_sqlite(&path, gate_id, &mut send)
    });
    let mut rows = 0u64;
    while let Some(line) = rx.recv().await {
        rows += line.rows() as u64;
        if !sink.put(line).await {
            // Dropping the receiver stops the reader at its next batch.
            return Ok(rows);
        }
    }
    reader
        .await
        .map_err(|e| sqlite_err(format!("the snapshot reader stopped: {e}")))??;
    sink.put(L::End { rows }).await;
    Ok(rows)
}

fn sqlite_err(message: String) -> RepoError {
    RepoError::Database(sqlx::Error::Protocol(message))
}

fn rusqlite_err(e: rusqlite::Error) -> RepoError {
    sqlite_err(format!("reading the snapshot: {e}"))
}

/// Vehicle → permit links, sorted by vehicle then permit, walked alongside the vehicles in id
/// order (one scan of the link table and a sort, instead of a map entry per vehicle).
struct Links {
    pairs: Vec<(i64, u32)>,
    next: usize,
}

impl Links {
    fn new(mut pairs: Vec<(i64, u32)>) -> Links {
        pairs.sort_unstable();
        Links { pairs, next: 0 }
    }

    /// The permits of `vehicle`; vehicles must be asked for in ascending id order.
    fn of(&mut self, vehicle: i64) -> Vec<u32> {
        while self.next < self.pairs.len() && self.pairs[self.next].0 < vehicle {
            self.next += 1;
        }
        let mut out = Vec::new();
        while self.next < self.pairs.len() && self.pairs[self.next].0 == vehicle {
            out.push(self.pairs[self.next].1);
            self.next += 1;
        }
        out
    }
}

/// Gathers rows into batch lines of [`SNAPSHOT_BATCH`] and hands each full one to `send`.
struct Batcher<'a, T> {
    rows: Vec<T>,
    line: fn(Vec<T>) -> crate::wire::sync::SnapshotLine,
    send: &'a mut dyn FnMut(crate::wire::sync::SnapshotLine) -> bool,
}

impl<'a, T> Batcher<'a, T> {
    fn new(
        line: fn(Vec<T>) -> crate::wire::sync::SnapshotLine,
        send: &'a mut dyn FnMut(crate::wire::sync::SnapshotLine) -> bool,
    ) -> Self {
        Batcher {
            rows: Vec::with_capacity(SNAPSHOT_BATCH),
            line,
            send,
        }
    }

    /// Adds a row; `false`: the receiver went away.
    fn push(&mut self, row: T) -> bool {
        self.rows.push(row);
        self.rows.len() < SNAPSHOT_BATCH || self.flush()
    }

    fn flush(&mut self) -> bool {
        if self.rows.is_empty() {
            return true;
        }
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(SNAPSHOT_BATCH));
        (self.send)((self.line)(rows))
    }
}

/// The blocking read behind [`snapshot_sqlite`]: one read transaction (`BEGIN` … every
/// SELECT, the head version's first … `COMMIT`), lines to `send` until it says stop.
fn read_sqlite(
    path: &std::path::Path,
    gate_id: i64,
    send: &mut dyn FnMut(crate::wire::sync::SnapshotLine) -> bool,
) -> Result<(), RepoError> {
    use crate::wire::sync::{SnapshotHeader, SnapshotLine as L};
    use rusqlite::OpenFlags;
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(rusqlite_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(rusqlite_err)?;
    // A deferred transaction: the WAL read snapshot is taken by the first SELECT, the head
    // version's, and every later SELECT sees the same data.
    let tx = conn.transaction().map_err(rusqlite_err)?;
    let version = tx
        .query_row("SELECT MAX(seq) FROM change_log", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .map_err(rusqlite_err)?
        .unwrap_or(0)
        .max(0) as u64;
    let gate = {
        let mut st = tx
            .prepare("SELECT mode, anti_passback, offline_policy, enabled FROM gates WHERE id = ?1")
            .map_err(rusqlite_err)?;
        let mut found = st.query([gate_id]).map_err(rusqlite_err)?;
        let Some(g) = found.next().map_err(rusqlite_err)? else {
            return Err(RepoError::NotFound);
        };
        let mut settings = GateSettings {
            mode: g.get(0).map_err(rusqlite_err)?,
            anti_passback: g.get(1).map_err(rusqlite_err)?,
            offline_policy: g.get(2).map_err(rusqlite_err)?,
            enabled: g.get::<_, i64>(3).map_err(rusqlite_err)? != 0,
            lanes: Vec::new(),
            pass_keys: Vec::new(),
        };
        let mut st = tx
            .prepare(
                "SELECT lane_key, mode, settings FROM lanes WHERE gate_id = ?1 ORDER BY lane_key",
            )
            .map_err(rusqlite_err)?;
        let mut lanes = st.query([gate_id]).map_err(rusqlite_err)?;
        while let Some(l) = lanes.next().map_err(rusqlite_err)? {
            settings.lanes.push(LaneSettings {
                lane: l.get(0).map_err(rusqlite_err)?,
                mode: l.get(1).map_err(rusqlite_err)?,
                settings: l.get(2).map_err(rusqlite_err)?,
            });
        }
        let mut st = tx
            .prepare(
                "SELECT kid, public_key, retire_after_ms FROM pass_keys \
                 WHERE retire_after_ms IS NULL OR retire_after_ms > ?1 ORDER BY kid",
            )
            .map_err(rusqlite_err)?;
        let mut keys = st
            .query([crate::central::db::now_ms()])
            .map_err(rusqlite_err)?;
        while let Some(k) = keys.next().map_err(rusqlite_err)? {
            settings.pass_keys.push(crate::wire::pass::PassKeyWire {
                kid: k
                    .get::<_, i64>(0)
                    .map_err(rusqlite_err)?
                    .clamp(0, i64::from(u16::MAX)) as u16,
                public_key: k.get(1).map_err(rusqlite_err)?,
                retire_after_ms: k.get(2).map_err(rusqlite_err)?,
            });
        }
        settings
    };
    if !send(L::Header(SnapshotHeader {
        format: SNAPSHOT_FORMAT,
        version,
        gate,
    })) {
        return Ok(());
    }
    // Every table the same way: one SELECT, each row converted, batches sent.
    macro_rules! table {
        ($sql:expr, $variant:path, |$r:ident| $conv:expr) => {{
            let mut batch = Batcher::new(|rows| $variant(rows), send);
            let mut st = tx.prepare($sql).map_err(rusqlite_err)?;
            let mut rows = st.query([]).map_err(rusqlite_err)?;
            while let Some($r) = rows.next().map_err(rusqlite_err)? {
                let row =
                    (|| -> Result<_, rusqlite::Error> { Ok($conv) })().map_err(rusqlite_err)?;
                if !batch.push(row) {
                    return Ok(());
                }
            }
            if !batch.flush() {
                return Ok(());
            }
        }};
    }
    table!(&format!("{PERMIT_SELECT} ORDER BY p.id"), L::Permits, |r| {
        let (valid_from, valid_until) = window(r.get(7)?, Some(r.get(8)?));
        PermitWire::from(PermitRecord {
            id: r.get::<_, i64>(0)? as u32,
            category: r.get(1)?,
            holder_id: r.get::<_, i64>(2)? as u32,
            holder_name: r.get(3)?,
            department: r.get(4)?,
            status: r.get(5)?,
            status_reason: r.get(6)?,
            valid_from,
            valid_until,
            gates: r.get(9)?,
            schedule: r.get(10)?,
            single_use: r.get::<_, i64>(11)? != 0,
            max_inside: r
                .get::<_, Option<i64>>(12)?
                .map(|m| m.clamp(0, i64::from(u16::MAX)) as u16),
            version: r.get::<_, i64>(13)?.clamp(0, i64::from(u32::MAX)) as u32,
        })
    });
    let mut links = {
        let mut st = tx
            .prepare("SELECT vehicle_id, permit_id FROM permit_vehicles")
            .map_err(rusqlite_err)?;
        let pairs = st
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u32))
            })
            .map_err(rusqlite_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(rusqlite_err)?;
        Links::new(pairs)
    };
    table!(
        "SELECT id, plate, plate_colour FROM vehicles ORDER BY id",
        L::Vehicles,
        |r| {
            let id: i64 = r.get(0)?;
            VehicleWire(id as u32, r.get(1)?, r.get(2)?, links.of(id))
        }
    );
    drop(links);
    table!(
        "SELECT epc, tid, vehicle_id FROM credentials WHERE status = 'active' ORDER BY id",
        L::Credentials,
        |r| CredentialWire(r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u32)
    );
    table!(
        &format!("{BLACKLIST_SELECT} ORDER BY id"),
        L::Blacklist,
        |r| {
            let (valid_from, valid_until) = window(r.get(6)?, r.get(7)?);
            BlacklistRecord {
                id: r.get::<_, i64>(0)? as u32,
                subject_kind: r.get(1)?,
                subject: r.get(2)?,
                colour: r.get(3)?,
                reason: r.get(4)?,
                alarm: r.get(5)?,
                valid_from,
                valid_until,
            }
        }
    );
    table!(&format!("{LOCK_SELECT} ORDER BY id"), L::Locks, |r| {
        let (valid_from, valid_until) = window(r.get(4)?, r.get(5)?);
        LockRecord {
            id: r.get::<_, i64>(0)? as u32,
            plate: r.get(1)?,
            colour: r.get(2)?,
            reason: r.get(3)?,
            valid_from,
            valid_until,
        }
    });
    table!(&format!("{BOOKING_SELECT} ORDER BY id"), L::Bookings, |r| {
        let (slot_from, slot_until) = window(r.get(6)?, Some(r.get(7)?));
        BookingRecord {
            id: r.get::<_, i64>(0)? as u32,
            plate: r.get(1)?,
            colour: r.get(2)?,
            visitor_name: r.get(3)?,
            host_id: r.get::<_, i64>(4)? as u32,
            purpose: r.get(5)?,
            slot_from,
            slot_until,
            status: gate_booking_status(r.get(8)?),
            pass_used_entry: r.get::<_, Option<i64>>(9)?.is_some(),
            pass_used_exit: r.get::<_, Option<i64>>(10)?.is_some(),
        }
    });
    table!(
        "SELECT vehicle_id, inside, since_ms, gate_id FROM vehicle_presence ORDER BY vehicle_id",
        L::Presence,
        |r| PresenceWire(
            r.get::<_, i64>(0)? as u32,
            r.get::<_, i64>(1)? != 0,
            r.get(2)?,
            r.get::<_, i64>(3)?.clamp(0, i64::from(u16::MAX)) as u16,
        )
    );
    tx.commit().map_err(rusqlite_err)?;
    Ok(())
}

/// The snapshot through sqlx (PostgreSQL, or an in-memory SQLite database): the same lines,
/// in a REPEATABLE READ READ ONLY transaction on PostgreSQL.
async fn snapshot_sqlx(
    db: &Db,
    gate_id: i64,
    sink: &mut impl SnapshotSink,
) -> Result<u64, RepoError> {
    use crate::wire::sync::{SnapshotHeader, SnapshotLine as L};
    use futures::TryStreamExt;
    let mut tx = db.begin().await?;
    if db.kind() == DbKind::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let version = head(&mut tx).await?;
    let gate = gate_settings(&mut tx, gate_id)
        .await?
        .ok_or(RepoError::NotFound)?;
    if !sink
        .put(L::Header(SnapshotHeader {
            format: SNAPSHOT_FORMAT,
            version,
            gate,
        }))
        .await
    {
        return Ok(0);
    }
    let mut rows = 0u64;
    macro_rules! stream {
        ($sql:expr, $variant:path, |$r:ident| $conv:expr) => {{
            let sql: String = $sql.to_string();
            let mut s = sqlx::query(&sql).fetch(&mut *tx);
            let mut batch = Vec::with_capacity(SNAPSHOT_BATCH);
            loop {
                let next = s.try_next().await?;
                let end = next.is_none();
                if let Some($r) = next {
                    batch.push($conv);
                }
                if (end && !batch.is_empty()) || batch.len() == SNAPSHOT_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(SNAPSHOT_BATCH));
                    rows += full.len() as u64;
                    if !sink.put($variant(full)).await {
                        return Ok(rows);
                    }
                }
                if end {
                    break;
                }
            }
        }};
    }
    stream!(&format!("{PERMIT_SELECT} ORDER BY p.id"), L::Permits, |r| {
        PermitWire::from(permit_row(&r)?)
    });
    let mut links = {
        let mut pairs = Vec::new();
        let mut s =
            sqlx::query("SELECT vehicle_id, permit_id FROM permit_vehicles").fetch(&mut *tx);
        while let Some(r) = s.try_next().await? {
            pairs.push((
                r.try_get::<i64, _>("vehicle_id")?,
                r.try_get::<i64, _>("permit_id")? as u32,
            ));
        }
        Links::new(pairs)
    };
    stream!(
        "SELECT id, plate, plate_colour FROM vehicles ORDER BY id",
        L::Vehicles,
        |r| {
            let id: i64 = r.try_get("id")?;
            VehicleWire(
                id as u32,
                r.try_get("plate")?,
                r.try_get("plate_colour")?,
                links.of(id),
            )
        }
    );
    drop(links);
    stream!(
        "SELECT epc, tid, vehicle_id FROM credentials WHERE status = 'active' ORDER BY id",
        L::Credentials,
        |r| CredentialWire::from(credential_row(&r)?)
    );
    stream!(
        &format!("{BLACKLIST_SELECT} ORDER BY id"),
        L::Blacklist,
        |r| blacklist_row(&r)?
    );
    stream!(&format!("{LOCK_SELECT} ORDER BY id"), L::Locks, |r| {
        lock_row(&r)?
    });
    stream!(&format!("{BOOKING_SELECT} ORDER BY id"), L::Bookings, |r| {
        booking_row(&r)?
    });
    stream!(
        "SELECT vehicle_id, inside, since_ms, gate_id FROM vehicle_presence ORDER BY vehicle_id",
        L::Presence,
        |r| PresenceWire::from(presence_row(&r)?)
    );
    sink.put(L::End { rows }).await;
    tx.commit().await?;
    Ok(rows)
}
