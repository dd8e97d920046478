//! The centre's side of gate sync, in SQL: the data each gate decides from (as the gate store's
//! row DTOs), the change log read as deltas, gates' last contact and health, commands waiting
//! for a gate, campus-wide presence, and gaps in a gate's uploaded events.
//!
//! The change log's `seq` is the gates' **data version**. Deltas are state-based: for every
//! entity that changed after a version, the current row is read and sent (or its removal, if it
//! is gone or withdrawn), so applying a delta twice, or after a snapshot that already held some
//! of it, is harmless.
//!
//! What it never does: authenticate a gate (the sync server passes the gate's id from its
//! certificate), or talk to a gate.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use crate::central::db::{Actor, Db, DbKind, RepoError, audit, now_ms};
use crate::wire::journal::{EventBody, JournalEvent};
use crate::wire::rows::PassageRecord;
use crate::wire::rows::{
    BlacklistRecord, BookingRecord, CredentialRecord, LockRecord, PermitRecord, VehicleRecord,
};
use crate::wire::sync::{
    Changes, CredentialWire, GateSettings, LaneSettings, PermitWire, PresenceWire, SNAPSHOT_BATCH,
    SNAPSHOT_FORMAT, VehicleWire,
};

/// The change-log entity of one vehicle's campus-wide presence row (`entity_id` is the
/// vehicle id). Written by event ingest before [`PRESENCE_BATCH`]; still read, so a change log
/// written then is still served.
pub const PRESENCE: &str = "presence";

/// The change-log entity of the presence rows one upload changed: `entity_id` lists the
/// vehicle ids, comma-separated (one entry per upload, not one per vehicle).
pub const PRESENCE_BATCH: &str = "presence_batch";

/// A delta longer than this is answered with `reset`: a snapshot is cheaper.
pub const MAX_DELTA: i64 = 50_000;

/// How long a gate may stay silent before the centre lists it as silent.
pub const SILENT_AFTER_MS: i64 = 15_000;

/// Above this clock offset a gate is warned (GB 50396: clocks within 5 s).
pub const CLOCK_WARNING_MS: i64 = 5_000;

fn minutes(ms: i64) -> u32 {
    (ms.max(0) / 60_000).min(i64::from(u32::MAX)) as u32
}

/// A window in minutes that is never empty (the gate store refuses `until <= from`): a window
/// shorter than a minute is kept as the one minute it starts in.
fn window(from_ms: i64, until_ms: Option<i64>) -> (u32, u32) {
    let from = minutes(from_ms);
    let until = until_ms.map(minutes).unwrap_or(u32::MAX);
    (from, until.max(from.saturating_add(1)))
}

const PERMIT_SELECT: &str = "SELECT p.id, p.category, p.holder_id, pe.name AS holder_name, \
     pe.department, p.status, p.status_reason, p.valid_from_ms, p.valid_until_ms, p.gates, \
     p.schedule, p.single_use, p.max_inside, p.version FROM permits p \
     JOIN persons pe ON pe.id = p.holder_id";

fn permit_row(r: &AnyRow) -> Result<PermitRecord, sqlx::Error> {
    let (valid_from, valid_until) = window(
        r.try_get("valid_from_ms")?,
        Some(r.try_get("valid_until_ms")?),
    );
    Ok(PermitRecord {
        id: r.try_get::<i64, _>("id")? as u32,
        category: r.try_get("category")?,
        holder_id: r.try_get::<i64, _>("holder_id")? as u32,
        holder_name: r.try_get("holder_name")?,
        department: r.try_get("department")?,
        status: r.try_get("status")?,
        status_reason: r.try_get("status_reason")?,
        valid_from,
        valid_until,
        gates: r.try_get("gates")?,
        schedule: r.try_get("schedule")?,
        single_use: r.try_get::<i64, _>("single_use")? != 0,
        max_inside: r
            .try_get::<Option<i64>, _>("max_inside")?
            .map(|m| m.clamp(0, i64::from(u16::MAX)) as u16),
        version: r
            .try_get::<i64, _>("version")?
            .clamp(0, i64::from(u32::MAX)) as u32,
    })
}

const BLACKLIST_SELECT: &str = "SELECT id, subject_kind, subject, plate_colour, reason, \
     alarm_level, valid_from_ms, valid_until_ms FROM blacklist";

fn blacklist_row(r: &AnyRow) -> Result<BlacklistRecord, sqlx::Error> {
    let (valid_from, valid_until) =
        window(r.try_get("valid_from_ms")?, r.try_get("valid_until_ms")?);
    Ok(BlacklistRecord {
        id: r.try_get::<i64, _>("id")? as u32,
        subject_kind: r.try_get("subject_kind")?,
        subject: r.try_get("subject")?,
        colour: r.try_get("plate_colour")?,
        reason: r.try_get("reason")?,
        valid_from,
        valid_until,
        alarm: r.try_get("alarm_level")?,
    })
}

const LOCK_SELECT: &str =
    "SELECT id, plate, plate_colour, reason, valid_from_ms, valid_until_ms FROM vehicle_locks";

fn lock_row(r: &AnyRow) -> Result<LockRecord, sqlx::Error> {
    let (valid_from, valid_until) =
        window(r.try_get("valid_from_ms")?, r.try_get("valid_until_ms")?);
    Ok(LockRecord {
        id: r.try_get::<i64, _>("id")? as u32,
        plate: r.try_get("plate")?,
        colour: r.try_get("plate_colour")?,
        reason: r.try_get("reason")?,
        valid_from,
        valid_until,
    })
}

const BOOKING_SELECT: &str = "SELECT id, plate, plate_colour, driver_name, host_id, purpose, \
     slot_from_ms, slot_until_ms, status FROM visitor_bookings";

fn booking_row(r: &AnyRow) -> Result<BookingRecord, sqlx::Error> {
    let (slot_from, slot_until) = window(
        r.try_get("slot_from_ms")?,
        Some(r.try_get("slot_until_ms")?),
    );
    let status = gate_booking_status(r.try_get("status")?);
    Ok(BookingRecord {
        id: r.try_get::<i64, _>("id")? as u32,
        plate: r.try_get("plate")?,
        colour: r.try_get("plate_colour")?,
        visitor_name: r.try_get("driver_name")?,
        host_id: r.try_get::<i64, _>("host_id")? as u32,
        purpose: r.try_get("purpose")?,
        slot_from,
        slot_until,
        status,
    })
}

/// A booking's status as the gate knows it: a visitor who has arrived may still leave
/// (approved); one who has left or never came may not come in again on this booking
/// (cancelled).
fn gate_booking_status(status: String) -> String {
    match status.as_str() {
        "arrived" => "approved".to_string(),
        "left" | "no_show" => "cancelled".to_string(),
        _ => status,
    }
}

fn credential_row(r: &AnyRow) -> Result<CredentialRecord, sqlx::Error> {
    Ok(CredentialRecord {
        epc: r.try_get("epc")?,
        tid: r.try_get("tid")?,
        vehicle_id: r.try_get::<i64, _>("vehicle_id")? as u32,
    })
}

fn presence_row(r: &AnyRow) -> Result<PassageRecord, sqlx::Error> {
    Ok(PassageRecord {
        vehicle_id: r.try_get::<i64, _>("vehicle_id")? as u32,
        inside: r.try_get::<i64, _>("inside")? != 0,
        since_ms: r.try_get("since_ms")?,
        gate_id: r
            .try_get::<i64, _>("gate_id")?
            .clamp(0, i64::from(u16::MAX)) as u16,
    })
}

/// The highest change-log sequence: the current data version.
pub async fn change_head(db: &Db) -> Result<u64, RepoError> {
    let mut conn = db.pool().acquire().await?;
    head(&mut conn).await
}

async fn head(conn: &mut AnyConnection) -> Result<u64, RepoError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM change_log")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

/// The highest command id (any gate): moves when a command is queued.
pub async fn command_head(db: &Db) -> Result<i64, RepoError> {
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM gate_commands")
        .fetch_one(db.pool())
        .await?;
    Ok(v.unwrap_or(0))
}

/// The gate's own settings, or `None` if the gate does not exist.
pub async fn gate_settings(
    conn: &mut AnyConnection,
    gate_id: i64,
) -> Result<Option<GateSettings>, RepoError> {
    let Some(g) =
        sqlx::query("SELECT mode, anti_passback, offline_policy, enabled FROM gates WHERE id = $1")
            .bind(gate_id)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(None);
    };
    let lanes = sqlx::query(
        "SELECT lane_key, mode, settings FROM lanes WHERE gate_id = $1 ORDER BY lane_key",
    )
    .bind(gate_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(LaneSettings {
            lane: r.try_get("lane_key")?,
            mode: r.try_get("mode")?,
            settings: r.try_get("settings")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(GateSettings {
        mode: g.try_get("mode")?,
        anti_passback: g.try_get("anti_passback")?,
        offline_policy: g.try_get("offline_policy")?,
        enabled: g.try_get::<i64, _>("enabled")? != 0,
        lanes,
    }))
}

/// Whether the gate is enabled, or `None` if the gate does not exist (one indexed read: the
/// sync endpoints check it on every request).
pub async fn gate_enabled(db: &Db, gate_id: i64) -> Result<Option<bool>, RepoError> {
    let enabled: Option<i64> = sqlx::query_scalar("SELECT enabled FROM gates WHERE id = $1")
        .bind(gate_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(enabled.map(|e| e != 0))
}

/// Where a snapshot sends its parts.
pub trait SnapshotSink: Send {
    /// Takes one part; `false` stops the snapshot (the client went away).
    fn put(&mut self, line: crate::wire::sync::SnapshotLine) -> impl Future<Output = bool> + Send;
}

/// Reads everything gate `gate_id` decides from in one read transaction (a consistent view:
/// repeatable read on PostgreSQL, a WAL read snapshot on SQLite) and hands it to `sink` line
/// by line: header, rows in batches of [`SNAPSHOT_BATCH`], end. Returns the number of rows.
///
/// On a SQLite file the rows are read through rusqlite on a blocking thread (millions of rows
/// a second; sqlx hands SQLite rows over one at a time through its worker thread, and a
/// million permits took 15 s) and reach the sink through a channel, so reading and writing
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

/// What changed after data version `since`, for gate `gate_id`: at most [`MAX_DELTA`]
/// change-log entries (the answer's `version` says how far it got; ask again from there).
pub async fn changes_since(db: &Db, gate_id: i64, since: u64) -> Result<Changes, RepoError> {
    let mut tx = db.begin().await?;
    if db.kind() == DbKind::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let current = head(&mut tx).await?;
    if since > current {
        return Ok(Changes {
            version: current,
            reset: true,
            ..Changes::default()
        });
    }
    let entries = sqlx::query(
        "SELECT seq, entity, entity_id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(since as i64)
    .bind(MAX_DELTA + 1)
    .fetch_all(&mut *tx)
    .await?;
    if entries.len() as i64 > MAX_DELTA {
        return Ok(Changes {
            version: current,
            reset: true,
            ..Changes::default()
        });
    }
    let mut version = since;
    let mut changed: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut presence: BTreeSet<i64> = BTreeSet::new();
    for e in &entries {
        version = version.max(e.try_get::<i64, _>("seq")? as u64);
        let id: String = e.try_get("entity_id")?;
        let entity: String = e.try_get("entity")?;
        if entity == PRESENCE_BATCH {
            presence.extend(id.split(',').filter_map(|v| v.parse::<i64>().ok()));
            continue;
        }
        let Ok(id) = id.parse::<i64>() else { continue };
        changed.entry(entity).or_default().insert(id);
    }
    let mut out = Changes {
        version,
        ..Changes::default()
    };
    out.urgent.data_version = since;
    out.update.data_version = version;
    let empty = BTreeSet::new();
    let ids = |entity: &str| changed.get(entity).unwrap_or(&empty);

    let mut permits: BTreeSet<i64> = ids("permit").clone();
    for person in ids("person") {
        let held: Vec<i64> = sqlx::query_scalar("SELECT id FROM permits WHERE holder_id = $1")
            .bind(person)
            .fetch_all(&mut *tx)
            .await?;
        permits.extend(held);
    }
    let mut vehicles: BTreeSet<i64> = ids("vehicle").clone();
    for id in &permits {
        match sqlx::query(&format!("{PERMIT_SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => {
                let row = permit_row(&r)?;
                if row.status == "active" {
                    out.update.permits.push(row);
                } else {
                    out.urgent.permits.push(row);
                }
                let holders: Vec<i64> = sqlx::query_scalar(
                    "SELECT vehicle_id FROM permit_vehicles WHERE permit_id = $1",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                vehicles.extend(holders);
            }
            None => out.urgent.delete_permits.push(*id as u32),
        }
    }
    for id in &vehicles {
        match sqlx::query("SELECT id, plate, plate_colour FROM vehicles WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => {
                let permit_ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT permit_id FROM permit_vehicles WHERE vehicle_id = $1 ORDER BY permit_id",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                out.update.vehicles.push(VehicleRecord {
                    id: *id as u32,
                    plate: r.try_get("plate")?,
                    colour: r.try_get("plate_colour")?,
                    permit_ids: permit_ids.into_iter().map(|p| p as u32).collect(),
                });
            }
            None => out.urgent.delete_vehicles.push(*id as u32),
        }
    }
    for id in ids("credential") {
        match sqlx::query("SELECT epc, tid, vehicle_id, status FROM credentials WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) if r.try_get::<String, _>("status")? == "active" => {
                out.update.credentials.push(credential_row(&r)?)
            }
            Some(r) => out.urgent.delete_credentials.push(r.try_get("epc")?),
            // Deleted: its EPC is in the audit entry written with the deletion.
            None => {
                let before: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT before_json FROM audit_log WHERE entity = 'credential' \
                     AND entity_id = $1 AND action = 'delete' ORDER BY id DESC LIMIT 1",
                )
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(epc) = before
                    .flatten()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                    .and_then(|b| b.get("epc").and_then(|e| e.as_str()).map(str::to_string))
                {
                    out.urgent.delete_credentials.push(epc);
                }
            }
        }
    }
    for id in ids("blacklist") {
        match sqlx::query(&format!("{BLACKLIST_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => out.urgent.blacklist.push(blacklist_row(&r)?),
            None => out.update.delete_blacklist.push(*id as u32),
        }
    }
    for id in ids("vehicle_lock") {
        match sqlx::query(&format!("{LOCK_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => out.urgent.locks.push(lock_row(&r)?),
            None => out.update.delete_locks.push(*id as u32),
        }
    }
    for id in ids("visitor_booking") {
        match sqlx::query(&format!("{BOOKING_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => out.update.bookings.push(booking_row(&r)?),
            None => out.update.delete_bookings.push(*id as u32),
        }
    }
    presence.extend(ids(PRESENCE));
    let presence: Vec<i64> = presence.into_iter().collect();
    for chunk in presence.chunks(PRESENCE_READ_CHUNK) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT vehicle_id, inside, since_ms, gate_id FROM vehicle_presence \
             WHERE vehicle_id IN ({list}) ORDER BY vehicle_id"
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            out.presence.push(presence_row(&r)?);
        }
    }
    let lane_touched = !ids("lane").is_empty();
    if ids("gate").contains(&gate_id) || lane_touched {
        out.gate = gate_settings(&mut tx, gate_id).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// Vehicles per presence read of a delta (one bound id each).
const PRESENCE_READ_CHUNK: usize = 500;

/// Records that the gate was heard from now (creating its row on first contact).
pub async fn touch(db: &Db, gate_id: i64, data_version: Option<u64>) -> Result<(), RepoError> {
    let now = now_ms();
    let v = data_version.map(|v| v as i64);
    sqlx::query(
        "INSERT INTO sync_gates (gate_id, last_seen_ms, data_version) VALUES ($1, $2, COALESCE($3, 0)) \
         ON CONFLICT (gate_id) DO UPDATE SET last_seen_ms = $2, \
         data_version = COALESCE($3, sync_gates.data_version)",
    )
    .bind(gate_id)
    .bind(now)
    .bind(v)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Stores a health report and the clock offset measured from it.
pub async fn record_health(
    db: &Db,
    gate_id: i64,
    data_version: u64,
    clock_offset_ms: i64,
    health: &serde_json::Value,
) -> Result<(), RepoError> {
    sqlx::query(
        "INSERT INTO sync_gates (gate_id, last_seen_ms, data_version, clock_offset_ms, health) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (gate_id) DO UPDATE SET last_seen_ms = $2, \
         data_version = $3, clock_offset_ms = $4, health = $5",
    )
    .bind(gate_id)
    .bind(now_ms())
    .bind(data_version as i64)
    .bind(clock_offset_ms)
    .bind(health.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A gate's sync health as the office sees it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GateHealth {
    pub gate_id: i64,
    pub name: String,
    /// The gate has not been heard from for [`SILENT_AFTER_MS`] (or never).
    pub silent: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The data version the gate last reported (compare with `central_version`).
    pub data_version: i64,
    pub central_version: i64,
    /// Gate clock minus centre clock, in milliseconds.
    pub clock_offset_ms: i64,
    /// The offset is above 5 s (GB 50396).
    pub clock_warning: bool,
    /// The events of the gate's newest journal stored centrally without gaps, and the first
    /// missing sequence number if a gap exists above them.
    pub events_watermark: i64,
    pub missing_from: Option<i64>,
    pub missing_to: Option<i64>,
    /// The gate's last health report (devices, lane modes, journal fill); `null` until the
    /// gate has sent one.
    #[schema(value_type = Option<Object>)]
    pub report: serde_json::Value,
}

/// Every gate's sync health, by gate id.
pub async fn health(db: &Db) -> Result<Vec<GateHealth>, RepoError> {
    let central = change_head(db).await? as i64;
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT g.id, g.name, s.last_seen_ms, s.data_version, s.clock_offset_ms, s.health, \
         w.journal_no, w.contiguous_seq FROM gates g LEFT JOIN sync_gates s ON s.gate_id = g.id \
         LEFT JOIN passage_event_watermarks w ON w.gate_id = g.id AND w.journal_no = \
         (SELECT MAX(x.journal_no) FROM passage_event_watermarks x WHERE x.gate_id = g.id) \
         ORDER BY g.id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let gate_id: i64 = r.try_get("id")?;
        let last: Option<i64> = r.try_get("last_seen_ms")?;
        let offset: i64 = r.try_get::<Option<i64>, _>("clock_offset_ms")?.unwrap_or(0);
        let watermark: i64 = r.try_get::<Option<i64>, _>("contiguous_seq")?.unwrap_or(0);
        let journal_no: i64 = r.try_get::<Option<i64>, _>("journal_no")?.unwrap_or(0);
        let gap = gap(db, gate_id, journal_no, watermark).await?;
        out.push(GateHealth {
            gate_id,
            name: r.try_get("name")?,
            silent: last.is_none_or(|l| now - l > SILENT_AFTER_MS),
            last_seen_at: last.map(at),
            data_version: r.try_get::<Option<i64>, _>("data_version")?.unwrap_or(0),
            central_version: central,
            clock_offset_ms: offset,
            clock_warning: offset.abs() > CLOCK_WARNING_MS,
            events_watermark: watermark,
            missing_from: gap.map(|g| g.0),
            missing_to: gap.map(|g| g.1),
            report: r
                .try_get::<Option<String>, _>("health")?
                .and_then(|h| serde_json::from_str(&h).ok())
                .unwrap_or(serde_json::Value::Null),
        });
    }
    Ok(out)
}

/// The first run of missing sequence numbers of the gate's journal `journal_no` above
/// `watermark`, if events above it are stored.
pub async fn gap(
    db: &Db,
    gate_id: i64,
    journal_no: i64,
    watermark: i64,
) -> Result<Option<(i64, i64)>, RepoError> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(seq) FROM passage_events WHERE gate_id = $1 AND journal_no = $2 AND seq > $3",
    )
    .bind(gate_id)
    .bind(journal_no)
    .bind(watermark)
    .fetch_one(db.pool())
    .await?;
    Ok(next.map(|n| (watermark + 1, n - 1)))
}

/// Raises the gap alarm once per watermark: writes an `event_gap` audit entry when the gate's
/// uploads leave a gap that was not alarmed at this watermark yet. Returns the gap if it raised.
pub async fn alarm_gap(
    db: &Db,
    gate_id: i64,
    journal_no: i64,
    watermark: i64,
) -> Result<Option<(i64, i64)>, RepoError> {
    let Some(g) = gap(db, gate_id, journal_no, watermark).await? else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE sync_gates SET gap_alarm_seq = $2 WHERE gate_id = $1 AND gap_alarm_seq <> $2",
    )
    .bind(gate_id)
    .bind(watermark)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    audit(
        &mut tx,
        &Actor::system(),
        "event_gap",
        "gate",
        gate_id,
        None,
        Some(&serde_json::json!({
            "journal_no": journal_no,
            "missing_from": g.0,
            "missing_to": g.1,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(g))
}

/// Records campus-wide presence from the passage events an ingest has just stored (entries
/// inside, exits outside), in the ingest's transaction, and queues the vehicles it changed for
/// [`publish_presence`] (one `presence_pending` row, the vehicle ids comma-separated). A passage
/// older than the recorded one changes nothing. Returns how many vehicles changed.
///
/// It does not write the change log itself: on PostgreSQL the change log's trigger takes a
/// transaction-wide advisory lock (and NOTIFY a commit-time one), which would serialise the
/// commits of all concurrent uploads, each waiting out the others' WAL flushes. The presence
/// rows are taken in one order (by vehicle, in multi-row upserts): taking them in hash order
/// deadlocked concurrent uploads.
pub async fn record_presence(
    conn: &mut AnyConnection,
    gate_id: i64,
    events: &[&JournalEvent],
) -> Result<u64, RepoError> {
    let mut latest: BTreeMap<i64, (bool, i64)> = BTreeMap::new();
    for e in events {
        if let EventBody::Passage {
            direction,
            vehicle_id: Some(v),
            ..
        } = &e.body
        {
            let inside = direction == "entry";
            let at = e.at.timestamp_millis();
            let slot = latest.entry(*v).or_insert((inside, at));
            if at >= slot.1 {
                *slot = (inside, at);
            }
        }
    }
    if latest.is_empty() {
        return Ok(0);
    }
    const UPSERT: &str = " ON CONFLICT (vehicle_id) DO UPDATE SET inside = excluded.inside, \
         since_ms = excluded.since_ms, gate_id = excluded.gate_id \
         WHERE vehicle_presence.since_ms <= excluded.since_ms RETURNING vehicle_id";
    let rows: Vec<(i64, (bool, i64))> = latest.into_iter().collect();
    let mut changed: Vec<i64> = Vec::new();
    if crate::central::db::kind_of(conn) == DbKind::Postgres {
        // One statement whose text never changes (prepared once per connection): the rows as
        // one JSON parameter, unpacked in their (vehicle) order.
        let json: Vec<[i64; 4]> = rows
            .iter()
            .map(|(v, (inside, at))| [*v, i64::from(*inside), *at, gate_id])
            .collect();
        let sql = format!(
            "INSERT INTO vehicle_presence (vehicle_id, inside, since_ms, gate_id) \
             SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::bigint, (r->>3)::bigint \
             FROM json_array_elements($1::json) AS r{UPSERT}"
        );
        for r in sqlx::query(&sql)
            .bind(serde_json::to_string(&json).expect("integers serialise"))
            .fetch_all(&mut *conn)
            .await?
        {
            changed.push(r.try_get("vehicle_id")?);
        }
    }
    let sqlite_rows: &[(i64, (bool, i64))] = match crate::central::db::kind_of(conn) {
        DbKind::Sqlite => &rows,
        DbKind::Postgres => &[],
    };
    for chunk in sqlite_rows.chunks(SQLITE_PRESENCE_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO vehicle_presence (vehicle_id, inside, since_ms, gate_id) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 4;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        sql.push_str(UPSERT);
        let mut q = sqlx::query(&sql);
        for (vehicle, (inside, at)) in chunk {
            q = q
                .bind(*vehicle)
                .bind(i64::from(*inside))
                .bind(*at)
                .bind(gate_id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            changed.push(r.try_get("vehicle_id")?);
        }
    }
    if changed.is_empty() {
        return Ok(0);
    }
    changed.sort_unstable();
    sqlx::query("INSERT INTO presence_pending (vehicles) VALUES ($1)")
        .bind(id_list(&changed))
        .execute(&mut *conn)
        .await?;
    Ok(changed.len() as u64)
}

/// Announces the presence changes uploads have queued ([`record_presence`]) to every gate: all
/// pending rows become **one** change-log entry ([`PRESENCE_BATCH`], the vehicle ids
/// comma-separated) that the gates learn from their next delta, in one transaction (what it
/// takes is announced, or stays pending). Concurrent publishers (instances on one PostgreSQL)
/// each take different rows. Returns how many vehicles it announced.
pub async fn publish_presence(db: &Db) -> Result<u64, RepoError> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query("DELETE FROM presence_pending RETURNING vehicles")
        .fetch_all(&mut *tx)
        .await?;
    let mut vehicles = BTreeSet::new();
    for r in rows {
        let list: String = r.try_get("vehicles")?;
        vehicles.extend(list.split(',').filter_map(|v| v.parse::<i64>().ok()));
    }
    let vehicles: Vec<i64> = vehicles.into_iter().collect();
    if !vehicles.is_empty() {
        crate::central::db::record_change(&mut tx, PRESENCE_BATCH, id_list(&vehicles), "upsert")
            .await?;
    }
    tx.commit().await?;
    Ok(vehicles.len() as u64)
}

/// Vehicle ids as the change log and the pending queue spell them: `1,5,9`.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Rows per multi-row presence statement on SQLite (4 parameters each).
const SQLITE_PRESENCE_CHUNK: usize = 200;

/// Sets every gate's mode in one transaction (campus-wide lockdown or evacuation), each gate's
/// change audited as `set_mode` with the reason and logged for the gates. Returns the ids of
/// the gates whose mode changed.
///
/// The transaction's first statement is a write, so on SQLite it holds the write lock from the
/// start: a read-then-write transaction fails at once (SQLITE_BUSY) when another connection
/// commits in between, which the gates' sync traffic makes likely.
pub async fn set_campus_mode(
    db: &Db,
    actor: &Actor,
    mode: &str,
    reason: &str,
) -> Result<Vec<i64>, RepoError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE gates SET updated_ms = updated_ms WHERE 1 = 0")
        .execute(&mut *tx)
        .await?;
    let before = sqlx::query("SELECT id, mode FROM gates WHERE mode <> $1 ORDER BY id")
        .bind(mode)
        .fetch_all(&mut *tx)
        .await?;
    let now = now_ms();
    let mut changed = Vec::with_capacity(before.len());
    for r in before {
        let id: i64 = r.try_get("id")?;
        let old: String = r.try_get("mode")?;
        sqlx::query("UPDATE gates SET mode = $1, updated_ms = $2 WHERE id = $3")
            .bind(mode)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            "set_mode",
            super::gates::GATE,
            id,
            Some(&serde_json::json!({ "mode": old })),
            Some(&serde_json::json!({ "mode": mode, "reason": reason, "campus_wide": true })),
        )
        .await?;
        crate::central::db::record_change(&mut tx, super::gates::GATE, id, "upsert").await?;
        changed.push(id);
    }
    tx.commit().await?;
    Ok(changed)
}

/// Per gate, a text that changes whenever its sync row does (last contact, report, gap alarm).
pub async fn gate_signatures(db: &Db) -> Result<Vec<(i64, String)>, RepoError> {
    let rows = sqlx::query(
        "SELECT gate_id, last_seen_ms, data_version, clock_offset_ms, gap_alarm_seq, health \
         FROM sync_gates",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("gate_id")?,
                format!(
                    "{}|{}|{}|{}|{}",
                    r.try_get::<i64, _>("last_seen_ms")?,
                    r.try_get::<i64, _>("data_version")?,
                    r.try_get::<i64, _>("clock_offset_ms")?,
                    r.try_get::<i64, _>("gap_alarm_seq")?,
                    r.try_get::<String, _>("health")?
                ),
            ))
        })
        .collect()
}

/// Every gate journal's event watermark (highest contiguous sequence stored), as
/// ((gate, journal number), watermark).
pub async fn watermarks(db: &Db) -> Result<Vec<((i64, i64), u64)>, RepoError> {
    let rows =
        sqlx::query("SELECT gate_id, journal_no, contiguous_seq FROM passage_event_watermarks")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("gate_id")?, r.try_get("journal_no")?),
                r.try_get::<i64, _>("contiguous_seq")?.max(0) as u64,
            ))
        })
        .collect()
}

/// A gate journal's stored events with `after < seq <= upto` (at most 1,000), in sequence
/// order, as the gate sent them.
pub async fn events_between(
    db: &Db,
    (gate_id, journal_no): (i64, i64),
    after: u64,
    upto: u64,
) -> Result<Vec<JournalEvent>, RepoError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, lane, body FROM passage_events WHERE gate_id = $1 \
         AND journal_no = $4 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT 1000",
    )
    .bind(gate_id)
    .bind(after as i64)
    .bind(upto as i64)
    .bind(journal_no)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: String = r.try_get("body")?;
        let Ok(body) = serde_json::from_str::<EventBody>(&body) else {
            continue;
        };
        out.push(JournalEvent {
            seq: r.try_get::<i64, _>("seq")? as u64,
            at: at(r.try_get("at_ms")?),
            lane: r.try_get("lane")?,
            body,
        });
    }
    Ok(out)
}

/// Queues a command for a gate; returns its id.
pub async fn queue_command(
    db: &Db,
    gate_id: i64,
    body: &serde_json::Value,
    actor: &Actor,
    ttl_ms: i64,
) -> Result<i64, RepoError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO gate_commands (gate_id, body, actor, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(gate_id)
    .bind(body.to_string())
    .bind(&actor.name)
    .bind(now)
    .bind(now + ttl_ms)
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        actor,
        "gate_command",
        "gate",
        gate_id,
        None,
        Some(&serde_json::json!({ "command_id": id, "command": body })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Commands waiting for `gate_id` (not acknowledged, not expired), oldest first.
pub async fn pending_commands(
    db: &Db,
    gate_id: i64,
) -> Result<Vec<(i64, serde_json::Value)>, RepoError> {
    let rows = sqlx::query(
        "SELECT id, body FROM gate_commands WHERE gate_id = $1 AND acked_ms IS NULL \
         AND expires_ms > $2 ORDER BY id",
    )
    .bind(gate_id)
    .bind(now_ms())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let body: String = r.try_get("body")?;
            Ok((
                r.try_get("id")?,
                serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            ))
        })
        .collect()
}

/// Records a gate's acknowledgement of its own command (another gate's id is `NotFound`).
/// Returns when it was acknowledged.
pub async fn ack_command(
    db: &Db,
    gate_id: i64,
    id: i64,
    done: bool,
    detail: &str,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let n = sqlx::query(
        "UPDATE gate_commands SET acked_ms = $3, outcome = $4, detail = $5 \
         WHERE id = $1 AND gate_id = $2 AND acked_ms IS NULL",
    )
    .bind(id)
    .bind(gate_id)
    .bind(now_ms())
    .bind(if done { "done" } else { "refused" })
    .bind(detail)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM gate_commands WHERE id = $1 AND gate_id = $2")
                .bind(id)
                .bind(gate_id)
                .fetch_optional(&mut *tx)
                .await?;
        return match exists {
            Some(_) => Ok(()), // a repeated acknowledgement
            None => Err(RepoError::NotFound),
        };
    }
    audit(
        &mut tx,
        &Actor {
            operator_id: None,
            name: format!("gate:{gate_id}"),
        },
        "gate_command_ack",
        "gate",
        gate_id,
        None,
        Some(&serde_json::json!({ "command_id": id, "done": done, "detail": detail })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A command's outcome: `None` while unacknowledged; else (acked at, done, detail).
pub async fn command_outcome(db: &Db, id: i64) -> Result<Option<(i64, bool, String)>, RepoError> {
    let r = sqlx::query("SELECT acked_ms, outcome, detail FROM gate_commands WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    let acked: Option<i64> = r.try_get("acked_ms")?;
    Ok(match acked {
        None => None,
        Some(a) => Some((
            a,
            r.try_get::<Option<String>, _>("outcome")?.as_deref() == Some("done"),
            r.try_get("detail")?,
        )),
    })
}

/// When the gate was last heard from (centre clock, UTC ms), if ever.
pub async fn last_seen(db: &Db, gate_id: i64) -> Result<Option<i64>, RepoError> {
    Ok(
        sqlx::query_scalar("SELECT last_seen_ms FROM sync_gates WHERE gate_id = $1")
            .bind(gate_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Audits a refused sync request (e.g. a gate posting another gate's events).
pub async fn audit_refusal(
    db: &Db,
    gate_id: i64,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    audit(
        &mut tx,
        &Actor {
            operator_id: None,
            name: format!("gate:{gate_id}"),
        },
        action,
        "gate",
        gate_id,
        None,
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
