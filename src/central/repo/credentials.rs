//! Credentials: the UHF windscreen tags issued to vehicles — EPC (unique), optional bound TID,
//! the vehicle, and whether the tag is active, lost or revoked.
//!
//! What it is for: the one place credentials are read and written; every change runs in one
//! transaction with its audit entry and change-log entry, so a tag reported lost reaches the
//! gates through the change log.
//!
//! What it never does: parse tag hex (the API stores only what [`crate::domain::tag::Epc`] /
//! [`crate::domain::tag::Tid`] printed: upper-case hex) or talk to a reader.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use crate::central::db::{
    Actor, Db, Filter, Op, Page, Paged, RepoError, like_prefix, now_ms, write_change,
};

/// The entity name in the audit and change logs.
pub const ENTITY: &str = "credential";

/// Credential status codes, as stored.
pub const STATUSES: [&str; 3] = ["active", "lost", "revoked"];

/// A tag credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Credential {
    pub id: i64,
    /// Upper-case hex.
    #[schema(example = "E2003098881900722140369E")]
    pub epc: String,
    /// The tag's factory TID (upper-case hex) when the credential is bound to it: a read with
    /// another TID is a cloned tag.
    #[schema(example = "E2801130200020A1B2C3D4E5")]
    pub tid: Option<String>,
    pub vehicle_id: i64,
    /// The vehicle's plate, for the gate booth (read-only).
    #[schema(example = "京A12345")]
    pub plate: String,
    /// The vehicle's plate colour (read-only).
    #[schema(example = "blue")]
    pub plate_colour: String,
    /// active, lost or revoked.
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A credential to issue, or the full new state of one (PUT replaces every field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// Hex, either case, spaces ignored; stored upper-case.
    #[schema(example = "E2003098881900722140369E")]
    pub epc: String,
    /// Hex; binds the credential to this tag's factory TID.
    #[serde(default)]
    pub tid: Option<String>,
    /// The vehicle; must exist.
    pub vehicle_id: i64,
    /// active (default), lost or revoked.
    #[serde(default = "default_status")]
    #[schema(example = "active")]
    pub status: String,
}

fn default_status() -> String {
    "active".into()
}

/// What to search for; every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialSearch {
    /// The start of the EPC, already upper-case hex.
    pub epc_prefix: Option<String>,
    pub vehicle_id: Option<i64>,
    pub status: Option<String>,
}

const SELECT: &str = "SELECT c.id, c.epc, c.tid, c.vehicle_id, v.plate, v.plate_colour, \
                      c.status, c.created_ms, c.updated_ms \
                      FROM credentials c JOIN vehicles v ON v.id = c.vehicle_id";

fn from_row(row: &AnyRow) -> Credential {
    Credential {
        id: row.get("id"),
        epc: row.get("epc"),
        tid: row.get("tid"),
        vehicle_id: row.get("vehicle_id"),
        plate: row.get("plate"),
        plate_colour: row.get("plate_colour"),
        status: row.get("status"),
        created_at: at(row.get("created_ms")),
        updated_at: at(row.get("updated_ms")),
    }
}

async fn fetch(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Credential, RepoError> {
    let row = super::row_by_id(conn, &format!("{SELECT} WHERE c.id = $1"), id).await?;
    Ok(from_row(&row))
}

async fn epc_taken(
    conn: &mut sqlx::AnyConnection,
    epc: &str,
    except: i64,
) -> Result<Option<i64>, RepoError> {
    Ok(
        sqlx::query("SELECT id FROM credentials WHERE epc = $1 AND id <> $2")
            .bind(epc)
            .bind(except)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.get("id")),
    )
}

fn taken(epc: &str, id: i64) -> RepoError {
    RepoError::Conflict(format!("EPC {epc} is already issued as credential {id}"))
}

/// Issues a credential; [`RepoError::Conflict`] when the EPC is already issued.
pub async fn create(db: &Db, actor: &Actor, new: NewCredential) -> Result<Credential, RepoError> {
    let mut tx = db.begin().await?;
    let credential = create_in(&mut tx, actor, new).await?;
    tx.commit().await?;
    Ok(credential)
}

/// [`create`] on the caller's transaction (with its audit and change-log entries), for changes
/// that bind a tag as one of their steps (an exit-pass application's issue).
pub async fn create_in(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    new: NewCredential,
) -> Result<Credential, RepoError> {
    if let Some(other) = epc_taken(tx, &new.epc, 0).await? {
        return Err(taken(&new.epc, other));
    }
    let now = now_ms();
    let id: i64 = sqlx::query(
        "INSERT INTO credentials (epc, tid, vehicle_id, status, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(&new.epc)
    .bind(new.tid.as_deref())
    .bind(new.vehicle_id)
    .bind(&new.status)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .get("id");
    let credential = fetch(tx, id).await?;
    write_change(
        tx,
        actor,
        Op::Upsert("create"),
        ENTITY,
        id,
        None,
        Some(&credential),
    )
    .await?;
    Ok(credential)
}

/// The credential `id`, or [`RepoError::NotFound`].
pub async fn get(db: &Db, id: i64) -> Result<Credential, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Replaces every field of the credential `id`; [`RepoError::Conflict`] when the new EPC is
/// another credential's.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: NewCredential,
) -> Result<Credential, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    if let Some(other) = epc_taken(&mut tx, &new.epc, id).await? {
        return Err(taken(&new.epc, other));
    }
    sqlx::query(
        "UPDATE credentials SET epc = $1, tid = $2, vehicle_id = $3, status = $4, \
         updated_ms = $5 WHERE id = $6",
    )
    .bind(&new.epc)
    .bind(new.tid.as_deref())
    .bind(new.vehicle_id)
    .bind(&new.status)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch).await
}

/// Deletes the credential `id`. (To stop a tag working, set it lost or revoked instead: that
/// keeps the record of what it was.)
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    super::delete_by_id(db, actor, ("credentials", ENTITY), id, fetch).await
}

/// One page of the credentials matching `q`, ordered by id.
pub async fn search(
    db: &Db,
    q: &CredentialSearch,
    page: Page,
) -> Result<Paged<Credential>, RepoError> {
    let mut f = Filter::new();
    if let Some(prefix) = q.epc_prefix.as_deref().filter(|p| !p.is_empty()) {
        f.like("c.epc", like_prefix(prefix));
    }
    if let Some(v) = q.vehicle_id {
        f.eq("c.vehicle_id", v);
    }
    if let Some(s) = &q.status {
        f.eq("c.status", s.as_str());
    }
    f.paged(db, ("credentials c", SELECT), "c.id", page, |r| {
        Ok(from_row(r))
    })
    .await
}
