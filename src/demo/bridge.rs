//! The demo's stand-in for the gate↔centre sync, in process: every half second it loads the
//! central data into the gate's store (a full snapshot whenever the central change log has
//! moved) and uploads the gate's unacknowledged journal events to the centre
//! ([`crate::central::ingest::accept`]), acknowledging what the centre stored.
//!
//! It exists only until the mutual-TLS sync (`src/sync/`) lands; then the demo runs the real
//! sync over loopback and this file goes. Its whole interface is [`run`].
//!
//! What it never does: talk over a network, authenticate anything, or run outside the demo. It
//! reads the central SQLite schema directly (the demo's embedded default only).

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;
use tokio_util::sync::CancellationToken;

use crate::central::api::AppState;
use crate::central::db::Db;
use crate::gate::runtime::GateHandle;
use crate::gate::store::{
    BlacklistRow, BookingRow, CredentialRow, LockRow, PermitRow, Update, VehicleRow,
};

/// How often data goes down and events go up.
const EVERY: Duration = Duration::from_millis(500);
/// Events uploaded per round trip.
const BATCH: u32 = 500;

/// Keeps `gate` (the centre's gate `gate_id`) in sync with `central` until `shutdown`, then
/// uploads what is left. Errors of one round are logged and retried on the next.
pub async fn run(
    central: AppState,
    gate: Arc<GateHandle>,
    gate_id: i64,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut applied = gate.shared().store.data_version().await?;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match download(&central.db, &gate, applied).await {
            Ok(version) => applied = version,
            Err(e) => tracing::warn!(gate = gate_id, error = %e, "demo bridge: data not loaded"),
        }
        if let Err(e) = upload(&central, &gate, gate_id).await {
            tracing::warn!(gate = gate_id, error = %e, "demo bridge: events not uploaded");
        }
    }
    upload(&central, &gate, gate_id).await
}

/// Loads a full snapshot into the gate if the central change log moved past `applied`.
async fn download(db: &Db, gate: &GateHandle, applied: u64) -> anyhow::Result<u64> {
    let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM change_log")
        .fetch_one(db.pool())
        .await?;
    let latest = latest.unwrap_or(0) as u64;
    if latest <= applied {
        return Ok(applied);
    }
    let update = snapshot(db, latest).await?;
    gate.apply_update(&update).await?;
    tracing::info!(
        gate = %gate.shared().gate.0,
        data_version = latest,
        permits = update.permits.len(),
        "demo bridge: central data loaded"
    );
    Ok(latest)
}

fn minute(ms: i64) -> u32 {
    (ms.max(0) / 60_000).min(i64::from(u32::MAX)) as u32
}

/// The central data as one replace-all update for a gate store.
async fn snapshot(db: &Db, version: u64) -> anyhow::Result<Update> {
    let pool = db.pool();
    let mut update = Update {
        data_version: version,
        replace_all: true,
        ..Update::default()
    };
    for row in sqlx::query(
        "SELECT p.id, p.category, p.holder_id, s.name, s.department, p.status, p.status_reason, \
         p.valid_from_ms, p.valid_until_ms, p.gates, p.schedule, p.single_use, p.max_inside, \
         p.version FROM permits p JOIN persons s ON s.id = p.holder_id",
    )
    .fetch_all(pool)
    .await?
    {
        update.permits.push(PermitRow {
            id: row.try_get::<i64, _>(0)? as u32,
            category: row.try_get(1)?,
            holder_id: row.try_get::<i64, _>(2)? as u32,
            holder_name: row.try_get(3)?,
            department: row.try_get(4)?,
            status: row.try_get(5)?,
            status_reason: row.try_get(6)?,
            valid_from: minute(row.try_get(7)?),
            valid_until: minute(row.try_get(8)?),
            gates: row.try_get(9)?,
            schedule: row.try_get(10)?,
            single_use: row.try_get::<i64, _>(11)? != 0,
            max_inside: row
                .try_get::<Option<i64>, _>(12)?
                .map(|n| n.clamp(1, i64::from(u16::MAX)) as u16),
            version: row.try_get::<i64, _>(13)? as u32,
        });
    }
    let links = sqlx::query("SELECT vehicle_id, permit_id FROM permit_vehicles")
        .fetch_all(pool)
        .await?;
    for row in sqlx::query("SELECT id, plate, plate_colour FROM vehicles")
        .fetch_all(pool)
        .await?
    {
        let id: i64 = row.try_get(0)?;
        update.vehicles.push(VehicleRow {
            id: id as u32,
            plate: row.try_get(1)?,
            colour: row.try_get(2)?,
            permit_ids: links
                .iter()
                .filter(|l| l.get::<i64, _>(0) == id)
                .map(|l| l.get::<i64, _>(1) as u32)
                .collect(),
        });
    }
    for row in sqlx::query("SELECT epc, tid, vehicle_id FROM credentials WHERE status = 'active'")
        .fetch_all(pool)
        .await?
    {
        update.credentials.push(CredentialRow {
            epc: row.try_get(0)?,
            tid: row.try_get(1)?,
            vehicle_id: row.try_get::<i64, _>(2)? as u32,
        });
    }
    for row in sqlx::query(
        "SELECT id, subject_kind, subject, plate_colour, reason, valid_from_ms, valid_until_ms, \
         alarm_level FROM blacklist",
    )
    .fetch_all(pool)
    .await?
    {
        update.blacklist.push(BlacklistRow {
            id: row.try_get::<i64, _>(0)? as u32,
            subject_kind: row.try_get(1)?,
            subject: row.try_get(2)?,
            colour: row.try_get(3)?,
            reason: row.try_get(4)?,
            valid_from: minute(row.try_get(5)?),
            valid_until: row.try_get::<Option<i64>, _>(6)?.map_or(u32::MAX, minute),
            alarm: row.try_get(7)?,
        });
    }
    for row in sqlx::query(
        "SELECT id, plate, plate_colour, reason, valid_from_ms, valid_until_ms FROM vehicle_locks",
    )
    .fetch_all(pool)
    .await?
    {
        update.locks.push(LockRow {
            id: row.try_get::<i64, _>(0)? as u32,
            plate: row.try_get(1)?,
            colour: row.try_get(2)?,
            reason: row.try_get(3)?,
            valid_from: minute(row.try_get(4)?),
            valid_until: row.try_get::<Option<i64>, _>(5)?.map_or(u32::MAX, minute),
        });
    }
    for row in sqlx::query(
        "SELECT id, plate, plate_colour, driver_name, host_id, purpose, slot_from_ms, \
         slot_until_ms, status FROM visitor_bookings",
    )
    .fetch_all(pool)
    .await?
    {
        let status: String = row.try_get(8)?;
        update.bookings.push(BookingRow {
            id: row.try_get::<i64, _>(0)? as u32,
            plate: row.try_get(1)?,
            colour: row.try_get(2)?,
            visitor_name: row.try_get(3)?,
            host_id: row.try_get::<i64, _>(4)? as u32,
            purpose: row.try_get(5)?,
            slot_from: minute(row.try_get(6)?),
            slot_until: minute(row.try_get(7)?),
            // The gate knows the four states that decide; an arrived visitor stays approved.
            status: match status.as_str() {
                "pending" | "approved" | "rejected" | "cancelled" => status,
                "arrived" => "approved".into(),
                _ => "cancelled".into(),
            },
        });
    }
    Ok(update)
}

/// Uploads unacknowledged journal events until none are left, acknowledging what the centre
/// stored.
async fn upload(central: &AppState, gate: &GateHandle, gate_id: i64) -> anyhow::Result<()> {
    loop {
        let acked = gate.journal_stats().await.acked_seq;
        let events = gate.journal().read_after(acked, BATCH).await?;
        if events.is_empty() {
            return Ok(());
        }
        let outcome = crate::central::ingest::accept(central, gate_id, &events).await?;
        if outcome.highest_contiguous <= acked {
            return Ok(());
        }
        gate.journal()
            .acknowledge(outcome.highest_contiguous)
            .await?;
        if events.len() < BATCH as usize {
            return Ok(());
        }
    }
}
