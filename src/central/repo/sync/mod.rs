//! The centre's side of gate sync, in SQL: the data each gate decides from (as the contract's
//! row DTOs), the change log read as deltas, gates' last contact and health, commands waiting
//! for a gate, campus-wide presence, and gaps in a gate's uploaded events.
//!
//! The change log's `seq` is the gates' **data version**. Deltas are state-based: for every
//! entity that changed after a version, the current row is read and sent (or its removal, if it
//! is gone or withdrawn), so applying a delta twice, or after a snapshot that already held some
//! of it, is harmless.
//!
//! - [`snapshot`](snapshot()) and [`changes_since`]: the data, whole or as a delta;
//!   [`changes_step`]: a delta read once for every gate.
//! - `settings`: a gate's settings and the campus-wide mode.
//! - `commands`: the command queue.
//! - [`health`]: last contact, health reports, event gaps.
//! - `presence`: campus-wide presence.
//!
//! What it never does: authenticate a gate (the sync server passes the gate's id from its
//! certificate), or talk to a gate.

mod changes;
mod commands;
mod health;
mod presence;
mod settings;
mod snapshot;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::central::db::{Db, RepoError};
use crate::wire::rows::{
    BlacklistRecord, BookingRecord, CredentialRecord, LockRecord, PassageRecord, PermitRecord,
};

pub use changes::{ChangesStep, StepSettings, changes_since, changes_step};
pub use commands::{
    ack_command, command_gates_after, command_outcome, pending_commands, queue_command,
};
pub use health::{
    GateHealth, alarm_gap, audit_refusal, events_between, gap, gate_signatures, health, last_seen,
    record_health, touch, touch_many, watermarks,
};
pub use presence::{publish_presence, record_presence};
pub use settings::{all_gate_settings, gate_enabled, gate_settings, set_campus_mode};
pub use snapshot::{SnapshotSink, snapshot};

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
     slot_from_ms, slot_until_ms, status, pass_used_entry_ms, pass_used_exit_ms \
     FROM visitor_bookings";

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
        pass_used_entry: r.try_get::<Option<i64>, _>("pass_used_entry_ms")?.is_some(),
        pass_used_exit: r.try_get::<Option<i64>, _>("pass_used_exit_ms")?.is_some(),
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
