//! Visits of outside vehicles registered at the booth (walk-ins, or pre-booked visitors found by
//! plate): opened when the guard registers the vehicle, closed when it leaves; an open visit past
//! its expected departure is an overstay.
//!
//! What it never does: validate input (the API does, with messages in both languages), open a
//! barrier (the console asks the gate through `central::commands`), or match plates fuzzily
//! (fuzzy matches are suggestions for the guard, see [`crate::domain::plate_match`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use crate::central::db::{Actor, Db, Op, RepoError, now_ms, write_change};

/// A visit as the console and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Visit {
    pub id: i64,
    /// The booking it came from, for a pre-booked visitor.
    pub booking_id: Option<i64>,
    pub gate_id: i64,
    pub lane: String,
    /// Normalised plate.
    pub plate: String,
    pub driver_name: String,
    pub driver_phone: String,
    pub host_name: String,
    pub department: String,
    pub purpose: String,
    pub expected_departure: DateTime<Utc>,
    pub arrived_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    /// Still on campus past the expected departure.
    pub overstay: bool,
}

/// A validated registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisit {
    pub booking_id: Option<i64>,
    pub gate_id: i64,
    pub lane: String,
    pub plate: String,
    pub driver_name: String,
    pub driver_phone: String,
    pub host_name: String,
    pub department: String,
    pub purpose: String,
    pub expected_departure_ms: i64,
}

const COLUMNS: &str = "id, booking_id, gate_id, lane_key, plate, driver_name, driver_phone, \
    host_name, department, purpose, expected_departure_ms, arrived_ms, left_ms";

fn row_to_visit(r: &AnyRow, now: i64) -> Visit {
    let left: Option<i64> = r.get("left_ms");
    let expected: i64 = r.get("expected_departure_ms");
    Visit {
        id: r.get("id"),
        booking_id: r.get("booking_id"),
        gate_id: r.get("gate_id"),
        lane: r.get("lane_key"),
        plate: r.get("plate"),
        driver_name: r.get("driver_name"),
        driver_phone: r.get("driver_phone"),
        host_name: r.get("host_name"),
        department: r.get("department"),
        purpose: r.get("purpose"),
        expected_departure: at(expected),
        arrived_at: at(r.get("arrived_ms")),
        left_at: left.map(at),
        overstay: left.is_none() && expected < now,
    }
}

/// Records a visit (and its audit entry) in one transaction.
pub async fn create(db: &Db, actor: &Actor, new: &NewVisit) -> Result<Visit, RepoError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let row = sqlx::query(&format!(
        "INSERT INTO visits (booking_id, gate_id, lane_key, plate, driver_name, driver_phone, \
         host_name, department, purpose, expected_departure_ms, arrived_ms, registered_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    ))
    .bind(new.booking_id)
    .bind(new.gate_id)
    .bind(&new.lane)
    .bind(&new.plate)
    .bind(&new.driver_name)
    .bind(&new.driver_phone)
    .bind(&new.host_name)
    .bind(&new.department)
    .bind(&new.purpose)
    .bind(new.expected_departure_ms)
    .bind(now)
    .bind(actor.operator_id)
    .fetch_one(&mut *tx)
    .await?;
    let visit = row_to_visit(&row, now);
    let after = serde_json::to_value(&visit).unwrap_or_default();
    write_change(
        &mut tx,
        actor,
        Op::Audit("create"),
        "visit",
        visit.id,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(visit)
}

/// One visit.
pub async fn get(db: &Db, id: i64) -> Result<Visit, RepoError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM visits WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(RepoError::NotFound)?;
    Ok(row_to_visit(&row, now_ms()))
}

/// Closes an open visit: the vehicle left. `Ok(None)` if it had already left.
pub async fn close(db: &Db, actor: &Actor, id: i64) -> Result<Option<Visit>, RepoError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let row = sqlx::query(&format!(
        "UPDATE visits SET left_ms = $1, closed_by = $2 WHERE id = $3 AND left_ms IS NULL \
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(actor.operator_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return get(db, id).await.map(|_| None);
    };
    let visit = row_to_visit(&row, now);
    let after = serde_json::to_value(&visit).unwrap_or_default();
    write_change(
        &mut tx,
        actor,
        Op::Audit("leave"),
        "visit",
        id,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(visit))
}

/// Visits still on campus at `gates` (`None`: every gate), overstays first, then newest.
pub async fn open(db: &Db, gates: Option<&[i64]>) -> Result<Vec<Visit>, RepoError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM visits WHERE left_ms IS NULL ORDER BY expected_departure_ms, id"
    ))
    .fetch_all(db.pool())
    .await?;
    let now = now_ms();
    Ok(rows
        .iter()
        .map(|r| row_to_visit(r, now))
        .filter(|v| gates.is_none_or(|g| g.contains(&v.gate_id)))
        .collect())
}

/// Every plate seen by the booth (visits, bookings, registered vehicles), for suggestions.
pub async fn known_plates(db: &Db) -> Result<Vec<String>, RepoError> {
    let rows = sqlx::query(
        "SELECT plate FROM vehicles UNION SELECT plate FROM visitor_bookings \
         UNION SELECT plate FROM visits",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}

/// The newest visit `operator_id` registered since `since_ms` that is still open: the booth
/// page offers its slip (临时通行单) right after the registration.
pub async fn latest_registered_by(
    db: &Db,
    operator_id: i64,
    since_ms: i64,
) -> Result<Option<Visit>, RepoError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM visits WHERE registered_by = $1 AND arrived_ms >= $2 \
         AND left_ms IS NULL ORDER BY arrived_ms DESC, id DESC LIMIT 1"
    ))
    .bind(operator_id)
    .bind(since_ms)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| row_to_visit(&r, now_ms())))
}
