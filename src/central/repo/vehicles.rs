//! Registered vehicles: their rows, search (by partial plate, owner, type), exact plate lookup for
//! the gate booth, and changes.
//!
//! What it is for: the one place vehicles are read and written; every change runs in one
//! transaction with its audit entry and change-log entry. A vehicle is identified by its plate
//! and plate colour together (unique).
//!
//! What it never does: parse or validate plates (the API stores only what
//! [`crate::domain::Plate::parse`] produced; searches normalise fragments with
//! [`crate::domain::plate::normalise_fragment`]) or decide who may read what.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use crate::central::db::{Actor, Db, Filter, Op, Page, Paged, RepoError, like_contains, now_ms};

/// The entity name in the audit and change logs.
pub const ENTITY: &str = "vehicle";

/// Vehicle type codes, as stored.
pub const VEHICLE_TYPES: [&str; 7] = ["car", "suv", "van", "truck", "bus", "motorcycle", "other"];

/// A registered vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vehicle {
    pub id: i64,
    /// Normalised plate text.
    #[schema(example = "京A12345")]
    pub plate: String,
    /// blue, yellow, green, yellow_green, white or black.
    #[schema(example = "blue")]
    pub plate_colour: String,
    /// car, suv, van, truck, bus, motorcycle or other.
    #[schema(example = "car")]
    pub vehicle_type: String,
    /// The owner (a person); empty only for vehicles registered without one by other means.
    pub owner_id: Option<i64>,
    /// The owner's name, for the gate booth (read-only).
    #[schema(example = "张伟")]
    pub owner_name: Option<String>,
    pub note: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A vehicle to register, or the full new state of one (PUT replaces every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVehicle {
    /// Any common spelling: full-width, lower case and separators (`京a·12345`) are normalised.
    #[schema(example = "京A12345")]
    pub plate: String,
    /// blue, yellow, green, yellow_green, white or black.
    #[schema(example = "blue")]
    pub plate_colour: String,
    /// car (default), suv, van, truck, bus, motorcycle or other.
    #[serde(default = "default_type")]
    #[schema(example = "car")]
    pub vehicle_type: String,
    /// The owner; must exist.
    pub owner_id: i64,
    #[serde(default)]
    pub note: String,
}

fn default_type() -> String {
    "car".into()
}

/// What to search for; every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VehicleSearch {
    /// Part of a plate, already normalised (upper case, no separators).
    pub plate: Option<String>,
    pub owner_id: Option<i64>,
    pub vehicle_type: Option<String>,
}

/// What still refers to a vehicle, which keeps it from being deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holdings {
    pub credentials: i64,
    pub permits: i64,
}

impl Holdings {
    /// Whether anything refers to the vehicle.
    pub fn any(&self) -> bool {
        self.credentials + self.permits > 0
    }
}

const SELECT: &str = "SELECT v.id, v.plate, v.plate_colour, v.vehicle_type, v.owner_id, \
                      p.name AS owner_name, v.note, v.created_ms, v.updated_ms \
                      FROM vehicles v LEFT JOIN persons p ON p.id = v.owner_id";

fn from_row(row: &AnyRow) -> Vehicle {
    Vehicle {
        id: row.get("id"),
        plate: row.get("plate"),
        plate_colour: row.get("plate_colour"),
        vehicle_type: row.get("vehicle_type"),
        owner_id: row.get("owner_id"),
        owner_name: row.get("owner_name"),
        note: row.get("note"),
        created_at: at(row.get("created_ms")),
        updated_at: at(row.get("updated_ms")),
    }
}

async fn fetch(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Vehicle, RepoError> {
    let row = super::row_by_id(conn, &format!("{SELECT} WHERE v.id = $1"), id).await?;
    Ok(from_row(&row))
}

/// The id of the vehicle registered with `plate` and `colour` other than `except`, if any.
async fn taken(
    conn: &mut sqlx::AnyConnection,
    plate: &str,
    colour: &str,
    except: i64,
) -> Result<Option<i64>, RepoError> {
    Ok(
        sqlx::query("SELECT id FROM vehicles WHERE plate = $1 AND plate_colour = $2 AND id <> $3")
            .bind(plate)
            .bind(colour)
            .bind(except)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.get("id")),
    )
}

fn plate_taken(plate: &str, colour: &str, id: i64) -> RepoError {
    RepoError::Conflict(format!(
        "plate {plate} ({colour}) is already registered as vehicle {id}"
    ))
}

/// Registers a vehicle; [`RepoError::Conflict`] when its plate and colour are already registered.
/// `new.plate` must already be normalised.
pub async fn create(db: &Db, actor: &Actor, new: NewVehicle) -> Result<Vehicle, RepoError> {
    let mut tx = db.begin().await?;
    if let Some(other) = taken(&mut tx, &new.plate, &new.plate_colour, 0).await? {
        return Err(plate_taken(&new.plate, &new.plate_colour, other));
    }
    let now = now_ms();
    let id: i64 = sqlx::query(
        "INSERT INTO vehicles (plate, plate_colour, vehicle_type, owner_id, note, created_ms, \
         updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
    )
    .bind(&new.plate)
    .bind(&new.plate_colour)
    .bind(&new.vehicle_type)
    .bind(new.owner_id)
    .bind(&new.note)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .get("id");
    super::commit_upsert(tx, actor, Op::Upsert("create"), (ENTITY, id), None, fetch).await
}

/// The vehicle `id`, or [`RepoError::NotFound`].
pub async fn get(db: &Db, id: i64) -> Result<Vehicle, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Whether the vehicle `id` exists.
pub async fn exists(db: &Db, id: i64) -> Result<bool, RepoError> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM vehicles WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?
        .get("n");
    Ok(n > 0)
}

/// The vehicles registered with exactly this (normalised) plate, of any colour or of `colour`.
pub async fn by_plate(
    db: &Db,
    plate: &str,
    colour: Option<&str>,
) -> Result<Vec<Vehicle>, RepoError> {
    let mut f = Filter::new();
    f.eq("v.plate", plate);
    if let Some(c) = colour {
        f.eq("v.plate_colour", c);
    }
    let sql = format!("{SELECT}{} ORDER BY v.id", f.where_sql());
    Ok(f.bind(sqlx::query(&sql))
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// Replaces every field of the vehicle `id`; [`RepoError::Conflict`] when the new plate and
/// colour belong to another vehicle.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: NewVehicle,
) -> Result<Vehicle, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    if let Some(other) = taken(&mut tx, &new.plate, &new.plate_colour, id).await? {
        return Err(plate_taken(&new.plate, &new.plate_colour, other));
    }
    sqlx::query(
        "UPDATE vehicles SET plate = $1, plate_colour = $2, vehicle_type = $3, owner_id = $4, \
         note = $5, updated_ms = $6 WHERE id = $7",
    )
    .bind(&new.plate)
    .bind(&new.plate_colour)
    .bind(&new.vehicle_type)
    .bind(new.owner_id)
    .bind(&new.note)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch).await
}

async fn holdings_in(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Holdings, RepoError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM credentials WHERE vehicle_id = $1) AS credentials, \
         (SELECT COUNT(*) FROM permit_vehicles WHERE vehicle_id = $1) AS permits",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Holdings {
        credentials: row.get("credentials"),
        permits: row.get("permits"),
    })
}

/// The credentials and permits that refer to the vehicle `id`.
pub async fn holdings(db: &Db, id: i64) -> Result<Holdings, RepoError> {
    let mut conn = db.pool().acquire().await?;
    holdings_in(&mut conn, id).await
}

/// Deletes the vehicle `id`; refused with [`RepoError::Reference`] while credentials or permits
/// refer to it (see [`holdings`]).
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    let held = holdings_in(&mut tx, id).await?;
    if held.any() {
        return Err(RepoError::Reference(format!(
            "vehicle {id} still has {} credentials and is on {} permits",
            held.credentials, held.permits
        )));
    }
    super::delete_row(&mut tx, actor, "vehicles", ENTITY, id, &before).await?;
    tx.commit().await?;
    Ok(())
}

/// One page of the vehicles matching `q`, ordered by id.
pub async fn search(db: &Db, q: &VehicleSearch, page: Page) -> Result<Paged<Vehicle>, RepoError> {
    let mut f = Filter::new();
    if let Some(plate) = q.plate.as_deref().filter(|p| !p.is_empty()) {
        f.like("v.plate", like_contains(plate));
    }
    if let Some(owner) = q.owner_id {
        f.eq("v.owner_id", owner);
    }
    if let Some(t) = &q.vehicle_type {
        f.eq("v.vehicle_type", t.as_str());
    }
    f.paged(db, ("vehicles v", SELECT), "v.id", page, |r| {
        Ok(from_row(r))
    })
    .await
}
