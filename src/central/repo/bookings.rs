//! Visitor bookings (访客预约) in the central database: their rows, search, and every change —
//! create (a booking, or a guard's walk-in registered as already arrived), edit while pending, and
//! the status lifecycle — each in one transaction with its audit entry and change-log entry.
//!
//! The lifecycle:
//!
//! ```text
//! pending ──approve──▶ approved ──arrive──▶ arrived ──leave──▶ left
//!    │ ╲                  │  ╲
//! reject cancel        cancel no_show
//!    ▼     ▼              ▼      ▼
//! rejected cancelled   cancelled no_show
//! ```
//!
//! A transition is one conditional `UPDATE … WHERE id = $1 AND status = $2` (the status it was
//! read in), so two concurrent transitions cannot both apply, and the audit "before" image is
//! exactly the row the transition replaced.
//!
//! What it never does: validate input or decide who may call it (the API does both before calling,
//! so a refused request writes nothing), mask phone numbers (the API does, per role).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::permits::from_ms;
use crate::central::db::{
    Actor, Arg, Db, Filter, Op, Page, Paged, RepoError, like_contains, now_ms,
};

/// The entity name in the audit log and the change log.
pub const ENTITY: &str = "visitor_booking";

/// Where a booking is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Arrived,
    Left,
    NoShow,
}

impl BookingStatus {
    /// Every status.
    pub const ALL: [BookingStatus; 7] = [
        BookingStatus::Pending,
        BookingStatus::Approved,
        BookingStatus::Rejected,
        BookingStatus::Cancelled,
        BookingStatus::Arrived,
        BookingStatus::Left,
        BookingStatus::NoShow,
    ];

    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Pending => "pending",
            BookingStatus::Approved => "approved",
            BookingStatus::Rejected => "rejected",
            BookingStatus::Cancelled => "cancelled",
            BookingStatus::Arrived => "arrived",
            BookingStatus::Left => "left",
            BookingStatus::NoShow => "no_show",
        }
    }

    /// The status for a stored code.
    pub fn from_code(code: &str) -> Option<BookingStatus> {
        BookingStatus::ALL.into_iter().find(|s| s.as_str() == code)
    }

    /// The name shown to people: (zh-CN, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            BookingStatus::Pending => ("待审批", "pending"),
            BookingStatus::Approved => ("已批准", "approved"),
            BookingStatus::Rejected => ("已拒绝", "rejected"),
            BookingStatus::Cancelled => ("已取消", "cancelled"),
            BookingStatus::Arrived => ("已到达", "arrived"),
            BookingStatus::Left => ("已离开", "left"),
            BookingStatus::NoShow => ("未到访", "no-show"),
        }
    }
}

/// A step of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Approve,
    Reject,
    Cancel,
    Arrive,
    Leave,
    NoShow,
}

impl Transition {
    /// The audit action name.
    pub fn name(self) -> &'static str {
        match self {
            Transition::Approve => "approve",
            Transition::Reject => "reject",
            Transition::Cancel => "cancel",
            Transition::Arrive => "arrive",
            Transition::Leave => "leave",
            Transition::NoShow => "no_show",
        }
    }

    /// The verb shown to people: (zh-CN, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Transition::Approve => ("批准", "approved"),
            Transition::Reject => ("拒绝", "rejected"),
            Transition::Cancel => ("取消", "cancelled"),
            Transition::Arrive => ("登记到达", "marked arrived"),
            Transition::Leave => ("登记离开", "marked left"),
            Transition::NoShow => ("登记未到访", "marked no-show"),
        }
    }

    /// The statuses the step applies to.
    pub fn applies_to(self) -> &'static [BookingStatus] {
        match self {
            Transition::Approve | Transition::Reject => &[BookingStatus::Pending],
            Transition::Cancel => &[BookingStatus::Pending, BookingStatus::Approved],
            Transition::Arrive | Transition::NoShow => &[BookingStatus::Approved],
            Transition::Leave => &[BookingStatus::Arrived],
        }
    }

    /// The status the step leads to.
    pub fn leads_to(self) -> BookingStatus {
        match self {
            Transition::Approve => BookingStatus::Approved,
            Transition::Reject => BookingStatus::Rejected,
            Transition::Cancel => BookingStatus::Cancelled,
            Transition::Arrive => BookingStatus::Arrived,
            Transition::Leave => BookingStatus::Left,
            Transition::NoShow => BookingStatus::NoShow,
        }
    }
}

/// A booking as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Booking {
    pub id: i64,
    /// The host (a person) the visitor comes to.
    pub host_id: i64,
    /// The host's name (read-only, from the person).
    pub host_name: String,
    /// The department the visit is booked with (its approvers decide).
    pub department: String,
    pub purpose: String,
    /// Normalised plate.
    pub plate: String,
    /// Plate colour code, or `null` for any colour.
    pub plate_colour: Option<String>,
    pub driver_name: String,
    /// Mainland mobile (11 digits) or landline (`010-62345678`); masked (`138****5678`) for roles
    /// that do not need it.
    pub driver_phone: String,
    /// Start of the slot (inclusive); a whole minute.
    pub slot_from: DateTime<Utc>,
    /// End of the slot (exclusive); a whole minute, at most 7 days after the start.
    pub slot_until: DateTime<Utc>,
    pub status: BookingStatus,
    /// `visitor`, `contractor` or `official`; a contractor's booking needs the security
    /// office's approval after the department's ([`needs_security`]).
    pub category: String,
    /// Who approved it for the department while it waits for the security office.
    pub department_approved_by: Option<String>,
    pub arrived_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the visitor's pass opens, in the permits' form: `all` (default), `all:entry`,
    /// `1;2:exit`.
    #[serde(default = "all_gates")]
    pub gates: String,
    /// The pass opens one entry and one exit, campus-wide (default); otherwise any number
    /// within the slot.
    #[serde(default = "yes")]
    pub single_use: bool,
    /// When the single-use pass was used to enter (reported by a gate).
    #[serde(default)]
    pub pass_used_entry_at: Option<DateTime<Utc>>,
    /// When the single-use pass was used to leave.
    #[serde(default)]
    pub pass_used_exit_at: Option<DateTime<Utc>>,
}

fn all_gates() -> String {
    "all".to_string()
}

fn yes() -> bool {
    true
}

/// Where and how often a booking's pass opens (validated by the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassRights {
    /// Gate rights in the permits' text form.
    pub gates: String,
    pub single_use: bool,
}

impl Default for PassRights {
    /// Every gate both ways, single use.
    fn default() -> PassRights {
        PassRights {
            gates: all_gates(),
            single_use: true,
        }
    }
}

/// A booking request as the API takes it (create and edit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingInput {
    /// The host; must exist.
    pub host_id: i64,
    /// The department the visit is booked with; default: the host's department.
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub purpose: String,
    /// Any way people type it (`京A·12345`, `京ａ12345`); stored normalised.
    pub plate: String,
    /// blue, yellow, green, yellow_green, white, black; omitted or `null` for any colour.
    #[serde(default)]
    pub plate_colour: Option<String>,
    pub driver_name: String,
    /// 11-digit mainland mobile (`13812345678`, `+86` allowed) or landline (`010-62345678`).
    pub driver_phone: String,
    /// RFC 3339, a whole minute.
    pub slot_from: DateTime<Utc>,
    /// RFC 3339, a whole minute, after `slot_from` and at most 7 days later.
    pub slot_until: DateTime<Utc>,
    /// A visitor already at the gate, registered by the guard: stored as `arrived` now.
    /// Only when creating.
    #[serde(default)]
    pub walk_in: bool,
    /// `visitor` (default), `contractor` or `official`. Only when creating.
    #[serde(default)]
    pub category: Option<String>,
    /// Where the visitor's pass opens: `all` (default), `all:entry`, or gate ids with
    /// directions as in permits (`1;2:exit`).
    #[serde(default)]
    pub gates: Option<String>,
    /// One entry and one exit campus-wide (default `true`), or any number within the slot.
    #[serde(default)]
    pub single_use: Option<bool>,
}

/// A validated booking, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBooking {
    pub host_id: i64,
    pub department: String,
    pub purpose: String,
    /// Normalised.
    pub plate: String,
    pub plate_colour: Option<String>,
    pub driver_name: String,
    /// Normalised.
    pub driver_phone: String,
    pub slot_from: DateTime<Utc>,
    pub slot_until: DateTime<Utc>,
    /// Register as already arrived (a walk-in) instead of pending.
    pub walk_in: bool,
}

/// Search filters; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookingQuery {
    /// A normalised plate fragment the plate contains.
    pub plate: Option<String>,
    pub host_id: Option<i64>,
    /// Case-insensitive, exact.
    pub department: Option<String>,
    pub status: Option<BookingStatus>,
    /// Bookings whose slot overlaps `[from, until)` (e.g. one local day).
    pub overlapping: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Only bookings of this department (an approver's scope); exact.
    pub scope_department: Option<String>,
}

/// Why a transition or an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// The step does not apply to the booking's current status.
    #[error("the booking is {}", .current.as_str())]
    Illegal { current: BookingStatus },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for TransitionError {
    fn from(e: sqlx::Error) -> TransitionError {
        TransitionError::Repo(e.into())
    }
}

const SELECT: &str = "SELECT b.id, b.host_id, h.name AS host_name, b.department, b.purpose, \
     b.plate, b.plate_colour, b.driver_name, b.driver_phone, b.slot_from_ms, b.slot_until_ms, \
     b.status, b.category, b.dept_approved_by, b.arrived_ms, b.left_ms, b.created_ms, \
     b.updated_ms, b.gates, b.single_use, b.pass_used_entry_ms, b.pass_used_exit_ms \
     FROM visitor_bookings b JOIN persons h ON h.id = b.host_id";

fn map_row(row: &AnyRow) -> Result<Booking, RepoError> {
    let status: String = row.try_get("status")?;
    Ok(Booking {
        id: row.try_get("id")?,
        host_id: row.try_get("host_id")?,
        host_name: row.try_get("host_name")?,
        department: row.try_get("department")?,
        purpose: row.try_get("purpose")?,
        plate: row.try_get("plate")?,
        plate_colour: row.try_get("plate_colour")?,
        driver_name: row.try_get("driver_name")?,
        driver_phone: row.try_get("driver_phone")?,
        slot_from: from_ms(row.try_get("slot_from_ms")?),
        slot_until: from_ms(row.try_get("slot_until_ms")?),
        // An unknown stored code (written by hand) reads as cancelled: it opens nothing.
        status: BookingStatus::from_code(&status).unwrap_or(BookingStatus::Cancelled),
        category: row.try_get("category")?,
        department_approved_by: row.try_get("dept_approved_by")?,
        arrived_at: row.try_get::<Option<i64>, _>("arrived_ms")?.map(from_ms),
        left_at: row.try_get::<Option<i64>, _>("left_ms")?.map(from_ms),
        created_at: from_ms(row.try_get("created_ms")?),
        updated_at: from_ms(row.try_get("updated_ms")?),
        gates: row.try_get("gates")?,
        single_use: row.try_get::<i64, _>("single_use")? != 0,
        pass_used_entry_at: row
            .try_get::<Option<i64>, _>("pass_used_entry_ms")?
            .map(from_ms),
        pass_used_exit_at: row
            .try_get::<Option<i64>, _>("pass_used_exit_ms")?
            .map(from_ms),
    })
}

async fn fetch(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Booking, RepoError> {
    let row = super::row_by_id(conn, &format!("{SELECT} WHERE b.id = $1"), id).await?;
    map_row(&row)
}

/// One booking.
pub async fn get(db: &Db, id: i64) -> Result<Booking, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Booking categories.
pub const CATEGORIES: [&str; 3] = ["visitor", "contractor", "official"];

/// Whether a booking of `category` needs the security office's approval after the
/// department's: contractors' vehicles (construction, deliveries to sites) do.
pub fn needs_security(category: &str) -> bool {
    category == "contractor"
}

/// Stores a booking: `pending`, or `arrived` now for a walk-in.
pub async fn create(db: &Db, actor: &Actor, new: &NewBooking) -> Result<Booking, RepoError> {
    create_in_category(db, actor, new, "visitor").await
}

/// [`create`] with a category (one of [`CATEGORIES`]).
pub async fn create_in_category(
    db: &Db,
    actor: &Actor,
    new: &NewBooking,
    category: &str,
) -> Result<Booking, RepoError> {
    create_with_rights(db, actor, new, category, &PassRights::default()).await
}

/// [`create_in_category`] with the pass's gates and use.
pub async fn create_with_rights(
    db: &Db,
    actor: &Actor,
    new: &NewBooking,
    category: &str,
    rights: &PassRights,
) -> Result<Booking, RepoError> {
    let now = now_ms();
    let (status, arrived) = if new.walk_in {
        (BookingStatus::Arrived, Some(now))
    } else {
        (BookingStatus::Pending, None)
    };
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO visitor_bookings (host_id, department, purpose, plate, plate_colour, \
         driver_name, driver_phone, slot_from_ms, slot_until_ms, status, arrived_ms, created_ms, \
         updated_ms, category, gates, single_use) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15) \
         RETURNING id",
    )
    .bind(new.host_id)
    .bind(&new.department)
    .bind(&new.purpose)
    .bind(&new.plate)
    .bind(new.plate_colour.clone())
    .bind(&new.driver_name)
    .bind(&new.driver_phone)
    .bind(new.slot_from.timestamp_millis())
    .bind(new.slot_until.timestamp_millis())
    .bind(status.as_str())
    .bind(arrived)
    .bind(now)
    .bind(category)
    .bind(&rights.gates)
    .bind(i64::from(rights.single_use))
    .fetch_one(&mut *tx)
    .await?;
    super::commit_upsert(tx, actor, Op::Upsert("create"), (ENTITY, id), None, fetch).await
}

/// Replaces the booking's details while it is still pending (`walk_in` is ignored); the
/// pass's gates and use become the defaults.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: &NewBooking,
) -> Result<Booking, TransitionError> {
    update_with_rights(db, actor, id, new, &PassRights::default()).await
}

/// [`update`] with the pass's gates and use.
pub async fn update_with_rights(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: &NewBooking,
    rights: &PassRights,
) -> Result<Booking, TransitionError> {
    let before = get(db, id).await?;
    if before.status != BookingStatus::Pending {
        return Err(TransitionError::Illegal {
            current: before.status,
        });
    }
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE visitor_bookings SET host_id = $2, department = $3, purpose = $4, plate = $5, \
         plate_colour = $6, driver_name = $7, driver_phone = $8, slot_from_ms = $9, \
         slot_until_ms = $10, updated_ms = $11, gates = $12, single_use = $13 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(new.host_id)
    .bind(&new.department)
    .bind(&new.purpose)
    .bind(&new.plate)
    .bind(new.plate_colour.clone())
    .bind(&new.driver_name)
    .bind(&new.driver_phone)
    .bind(new.slot_from.timestamp_millis())
    .bind(new.slot_until.timestamp_millis())
    .bind(now_ms())
    .bind(&rights.gates)
    .bind(i64::from(rights.single_use))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let op = Op::Upsert("update");
    commit_if_changed(db, tx, actor, op, &before, changed).await
}

/// The tail of a write guarded by the booking's status: when it `changed` no row, the status
/// the booking has now as [`TransitionError::Illegal`]; otherwise the change (`op`, from
/// `before`) written and committed.
async fn commit_if_changed(
    db: &Db,
    tx: Transaction<'static, Any>,
    actor: &Actor,
    op: Op<'_>,
    before: &Booking,
    changed: u64,
) -> Result<Booking, TransitionError> {
    let id = before.id;
    if changed == 0 {
        drop(tx);
        let current = get(db, id).await?;
        return Err(TransitionError::Illegal {
            current: current.status,
        });
    }
    Ok(super::commit_upsert(tx, actor, op, (ENTITY, id), Some(before), fetch).await?)
}

/// Records the department's approval of a pending booking that also needs the security
/// office's (audited as `approve_department`); it stays pending, so no gate opens on it yet.
/// [`TransitionError::Illegal`] when it is not pending or the department already approved.
pub async fn approve_for_department(
    db: &Db,
    actor: &Actor,
    id: i64,
) -> Result<Booking, TransitionError> {
    let before = get(db, id).await?;
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE visitor_bookings SET dept_approved_by = $2, updated_ms = $3 \
         WHERE id = $1 AND status = 'pending' AND dept_approved_by IS NULL",
    )
    .bind(id)
    .bind(&actor.name)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let op = Op::Audit("approve_department");
    commit_if_changed(db, tx, actor, op, &before, changed).await
}

/// Moves the booking one step along its lifecycle; [`TransitionError::Illegal`] names the
/// current status when the step does not apply to it. Audited as the step's name.
pub async fn transition(
    db: &Db,
    actor: &Actor,
    id: i64,
    step: Transition,
) -> Result<Booking, TransitionError> {
    // A concurrent change between the read and the conditional write is retried: the step may
    // still apply to the new status (pending → approved while cancelling), or it no longer does.
    for _ in 0..3 {
        let before = get(db, id).await?;
        if !step.applies_to().contains(&before.status) {
            return Err(TransitionError::Illegal {
                current: before.status,
            });
        }
        let to = step.leads_to();
        let stamp = match to {
            BookingStatus::Arrived => ", arrived_ms = $3",
            BookingStatus::Left => ", left_ms = $3",
            _ => "",
        };
        let mut tx = db.begin().await?;
        let changed = sqlx::query(&format!(
            "UPDATE visitor_bookings SET status = $4, updated_ms = $3{stamp} \
             WHERE id = $1 AND status = $2"
        ))
        .bind(id)
        .bind(before.status.as_str())
        .bind(now_ms())
        .bind(to.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            continue;
        }
        let op = Op::Upsert(step.name());
        let after = super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch);
        return Ok(after.await?);
    }
    let current = get(db, id).await?;
    Err(TransitionError::Illegal {
        current: current.status,
    })
}

/// Bookings matching `query`, by slot start then id.
pub async fn search(
    db: &Db,
    query: &BookingQuery,
    page: Page,
) -> Result<Paged<Booking>, RepoError> {
    let mut f = Filter::new();
    if let Some(v) = &query.plate {
        f.and_args(
            "b.plate LIKE {} ESCAPE '\\'",
            vec![Arg::Text(like_contains(v))],
        );
    }
    if let Some(v) = query.host_id {
        f.and_args("b.host_id = {}", vec![Arg::Int(v)]);
    }
    if let Some(v) = &query.department {
        f.and_args(
            "LOWER(b.department) = LOWER({})",
            vec![Arg::Text(v.clone())],
        );
    }
    if let Some(v) = &query.scope_department {
        f.and_args("b.department = {}", vec![Arg::Text(v.clone())]);
    }
    if let Some(v) = query.status {
        f.and_args("b.status = {}", vec![Arg::Text(v.as_str().into())]);
    }
    if let Some((from, until)) = query.overlapping {
        f.and_args(
            "b.slot_from_ms < {} AND b.slot_until_ms > {}",
            vec![
                Arg::Int(until.timestamp_millis()),
                Arg::Int(from.timestamp_millis()),
            ],
        );
    }
    let from = "visitor_bookings b JOIN persons h ON h.id = b.host_id ";
    f.paged(db, (from, SELECT), "b.slot_from_ms, b.id", page, map_row)
        .await
}
