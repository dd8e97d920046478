//! Vehicle locks (锁车): vehicles that must not leave while a lock is in force (entry is not
//! affected — that is the blacklist's job). Create, read, replace, delete, lift (end now) and
//! search; every change is audited and recorded in the change log the gates sync from.
//!
//! What it never does: validate wire input ([`NewVehicleLock`] holds a parsed [`Plate`]; turning
//! a [`VehicleLockInput`] into one is the API's job) or decide a passage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use super::blacklist::active_at;
use crate::central::db::Filter;
use crate::central::db::{Actor, AnyQuery, Db, Op, Page, Paged, RepoError, now_ms};
use crate::domain::{Plate, PlateColour};

/// The entity name in the audit and change logs.
pub const ENTITY: &str = "vehicle_lock";

/// A vehicle lock as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VehicleLock {
    pub id: i64,
    /// The normalised plate (`京A12345`).
    pub plate: String,
    /// `blue`, `yellow`, `green`, `yellow_green`, `white`, `black`; `null` = every colour.
    pub plate_colour: Option<String>,
    pub reason: String,
    /// In force from (inclusive).
    pub valid_from: DateTime<Utc>,
    /// In force until (exclusive); `null` = until lifted.
    pub valid_until: Option<DateTime<Utc>>,
    /// Whether the lock is in force now.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A vehicle lock as a client sends it (create and replace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleLockInput {
    /// The plate, any common spelling. Required.
    pub plate: Option<String>,
    /// The colour; omitted = every colour of the plate.
    pub plate_colour: Option<String>,
    /// Why (required, at most 500 characters).
    pub reason: Option<String>,
    /// RFC 3339; default now.
    #[schema(format = DateTime)]
    pub valid_from: Option<String>,
    /// RFC 3339, after `valid_from`; omitted = until lifted.
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
}

/// A checked lock, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVehicleLock {
    pub plate: Plate,
    pub colour: Option<PlateColour>,
    /// Non-empty.
    pub reason: String,
    pub valid_from_ms: i64,
    /// After `valid_from_ms`, or `None` for until lifted.
    pub valid_until_ms: Option<i64>,
}

/// Filters for [`search`], combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockQuery {
    /// Part of the plate, case-insensitive.
    pub plate: Option<String>,
    /// Only locks in force at this instant (UTC ms).
    pub active_at_ms: Option<i64>,
}

/// The result of [`lift`].
pub type Lifted = super::Lifted<VehicleLock>;

const COLUMNS: &str =
    "id, plate, plate_colour, reason, valid_from_ms, valid_until_ms, created_ms, updated_ms";

/// Stores a new lock.
pub async fn create(db: &Db, actor: &Actor, new: NewVehicleLock) -> Result<VehicleLock, RepoError> {
    let mut tx = db.begin().await?;
    let insert = sqlx::query(
        "INSERT INTO vehicle_locks (plate, plate_colour, reason, valid_from_ms, valid_until_ms, \
         created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    );
    let row = bind_fields(insert, &new)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
    let id: i64 = row.try_get("id")?;
    super::commit_upsert(tx, actor, Op::Upsert("create"), (ENTITY, id), None, fetch).await
}

/// One lock.
pub async fn get(db: &Db, id: i64) -> Result<VehicleLock, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Replaces a lock's fields.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: NewVehicleLock,
) -> Result<VehicleLock, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    let replace = sqlx::query(
        "UPDATE vehicle_locks SET plate = $1, plate_colour = $2, reason = $3, valid_from_ms = $4, \
         valid_until_ms = $5, updated_ms = $6 WHERE id = $7",
    );
    bind_fields(replace, &new)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch).await
}

/// Deletes a lock (lifting keeps the history; deleting is for locks made in error).
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    super::delete_by_id(db, actor, ("vehicle_locks", ENTITY), id, fetch).await
}

/// Ends a lock now (audited as `lift`). A lock that has not started yet ends at its start.
pub async fn lift(db: &Db, actor: &Actor, id: i64) -> Result<Lifted, RepoError> {
    let window = |r: &VehicleLock| (r.valid_from, r.valid_until);
    super::lift(db, actor, ("vehicle_locks", ENTITY), id, fetch, window).await
}

/// Locks matching `q`, newest first.
pub async fn search(db: &Db, q: &LockQuery, page: Page) -> Result<Paged<VehicleLock>, RepoError> {
    let mut w = Filter::new();
    if let Some(s) = q.plate.as_deref().filter(|s| !s.is_empty()) {
        w.contains_ci("plate", s);
    }
    if let Some(t) = q.active_at_ms {
        active_at(&mut w, t);
    }
    let select = format!("SELECT {COLUMNS} FROM vehicle_locks");
    let now = now_ms();
    w.paged(db, ("vehicle_locks", &select), "id DESC", page, |r| {
        entry(r, now)
    })
    .await
}

/// Binds a lock's five stored fields, in column order (`plate` … `valid_until_ms`).
fn bind_fields<'q>(query: AnyQuery<'q>, new: &'q NewVehicleLock) -> AnyQuery<'q> {
    query
        .bind(new.plate.as_str())
        .bind(new.colour.map(PlateColour::as_str))
        .bind(&new.reason)
        .bind(new.valid_from_ms)
        .bind(new.valid_until_ms)
}

async fn fetch(conn: &mut AnyConnection, id: i64) -> Result<VehicleLock, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM vehicle_locks WHERE id = $1");
    let row = super::row_by_id(conn, &sql, id).await?;
    entry(&row, now_ms())
}

fn entry(r: &AnyRow, now: i64) -> Result<VehicleLock, RepoError> {
    let window = super::validity(r, now)?;
    Ok(VehicleLock {
        id: r.try_get("id")?,
        plate: r.try_get("plate")?,
        plate_colour: r.try_get("plate_colour")?,
        reason: r.try_get("reason")?,
        valid_from: window.from,
        valid_until: window.until,
        active: window.active,
        created_at: at(r.try_get("created_ms")?),
        updated_at: at(r.try_get("updated_ms")?),
    })
}
