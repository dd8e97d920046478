//! Permits (出门证 / 通行证) in the central database: their rows, the vehicles each covers
//! (`permit_vehicles`), search, and every change — create, full update, suspend / revoke /
//! reactivate, delete — each in one transaction with its audit entry and change-log entry.
//!
//! **Optimistic concurrency.** Every permit carries a `version`, bumped by every change. A change
//! names the version it was based on and is one conditional
//! `UPDATE permits … WHERE id = $1 AND version = $2`, issued as the transaction's *first*
//! statement: on PostgreSQL the second of two concurrent writers waits on the row lock and then
//! finds the version moved (0 rows); on SQLite the first write takes the database's write lock, so
//! the second waits (busy timeout) and then finds the version moved — neither can read an old
//! snapshot and win. The audit "before" image is the row read at that same version, which is exact
//! because nothing changes a permit without bumping its version.
//!
//! What it never does: validate input (the API does that before calling, so a bad request writes
//! nothing), decide who may call it, or talk SQL that only one database kind understands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::central::db::{
    Actor, AnyQuery, Arg, Db, Filter, Op, Page, Paged, RepoError, like_contains, now_ms, snapshot,
    write_change,
};

/// The entity name in the audit log and the change log.
pub const ENTITY: &str = "permit";

/// Whether a permit works: `active`, `suspended` (may be reactivated) or `revoked` (for good).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermitStatus {
    Active,
    Suspended,
    Revoked,
}

impl PermitStatus {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            PermitStatus::Active => "active",
            PermitStatus::Suspended => "suspended",
            PermitStatus::Revoked => "revoked",
        }
    }

    /// The status for a stored code.
    pub fn from_code(code: &str) -> Option<PermitStatus> {
        match code {
            "active" => Some(PermitStatus::Active),
            "suspended" => Some(PermitStatus::Suspended),
            "revoked" => Some(PermitStatus::Revoked),
            _ => None,
        }
    }

    /// The name shown to people: (zh-CN, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            PermitStatus::Active => ("有效", "active"),
            PermitStatus::Suspended => ("已暂停", "suspended"),
            PermitStatus::Revoked => ("已吊销", "revoked"),
        }
    }
}

/// A permit as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Permit {
    pub id: i64,
    /// Holder category code: staff, student, family, contractor, official, visitor.
    pub category: String,
    pub holder_id: i64,
    /// The holder's name (read-only, from the person).
    pub holder_name: String,
    /// The holder's department (read-only, from the person).
    pub holder_department: String,
    /// First instant the permit works (inclusive); always a whole minute.
    pub valid_from: DateTime<Utc>,
    /// Instant the permit stops working (exclusive); always a whole minute.
    pub valid_until: DateTime<Utc>,
    /// Gate rights in text form: `all`, `all:exit`, `1;2:exit`.
    pub gates: String,
    /// Weekday/time windows in text form (`mon-fri 07:00-22:00`); empty = always.
    pub schedule: String,
    /// A one-off pass, consumed by the first passage it grants.
    pub single_use: bool,
    /// How many of its vehicles may be inside at once; `null` = no limit.
    pub max_inside: Option<i64>,
    /// The vehicles the permit covers, in ascending id order.
    pub vehicle_ids: Vec<i64>,
    pub status: PermitStatus,
    /// Why the permit is suspended or revoked; empty when active.
    pub status_reason: String,
    /// Why it was issued although the vehicle already held a live pass of the same kind (a
    /// period pass or a one-off exit pass); empty for an ordinary permit.
    #[serde(default)]
    pub override_reason: String,
    /// Bumped by every change; the `ETag` of the permit.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields a permit is created with, and replaced by on update (status changes have their
/// own actions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermitInput {
    /// Holder category code: staff, student, family, contractor, official, visitor.
    pub category: String,
    /// The holding person; must exist.
    pub holder_id: i64,
    /// RFC 3339; must be a whole minute (seconds and fractions 0).
    pub valid_from: DateTime<Utc>,
    /// RFC 3339, after `valid_from`; must be a whole minute.
    pub valid_until: DateTime<Utc>,
    /// Gate rights in text form; default `all`.
    #[serde(default = "all_gates")]
    pub gates: String,
    /// Schedule in text form; default empty (always).
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub single_use: bool,
    /// At least 1, or `null` for no limit.
    #[serde(default)]
    pub max_inside: Option<i64>,
    /// Vehicles covered; each must exist, none twice.
    #[serde(default)]
    pub vehicle_ids: Vec<i64>,
}

fn all_gates() -> String {
    "all".into()
}

/// Search filters; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PermitQuery {
    pub holder_id: Option<i64>,
    pub vehicle_id: Option<i64>,
    /// A normalised plate fragment: permits covering a vehicle whose plate contains it.
    pub plate: Option<String>,
    /// The holder's department (case-insensitive, exact).
    pub department: Option<String>,
    pub status: Option<PermitStatus>,
    pub category: Option<String>,
    /// Permits whose validity window contains this instant.
    pub valid_at: Option<DateTime<Utc>>,
    /// Only permits whose holder is in this department (an approver's scope); exact.
    pub scope_department: Option<String>,
}

/// Why a status action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action does not apply to the permit's current status (e.g. reactivating a revoked
    /// permit).
    #[error("the permit is {}", .current.as_str())]
    Illegal { current: PermitStatus },
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> ActionError {
        ActionError::Repo(e.into())
    }
}

/// A status action on a permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// active → suspended.
    Suspend,
    /// active or suspended → revoked (for good).
    Revoke,
    /// suspended → active.
    Reactivate,
}

impl Action {
    /// The audit action name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Suspend => "suspend",
            Action::Revoke => "revoke",
            Action::Reactivate => "reactivate",
        }
    }

    fn applies_to(self) -> &'static [PermitStatus] {
        match self {
            Action::Suspend => &[PermitStatus::Active],
            Action::Revoke => &[PermitStatus::Active, PermitStatus::Suspended],
            Action::Reactivate => &[PermitStatus::Suspended],
        }
    }

    fn leads_to(self) -> PermitStatus {
        match self {
            Action::Suspend => PermitStatus::Suspended,
            Action::Revoke => PermitStatus::Revoked,
            Action::Reactivate => PermitStatus::Active,
        }
    }
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

const SELECT: &str = "SELECT p.id, p.category, p.holder_id, h.name AS holder_name, \
     h.department AS holder_department, p.valid_from_ms, p.valid_until_ms, p.gates, p.schedule, \
     p.single_use, p.max_inside, p.status, p.status_reason, p.override_reason, p.version, \
     p.created_ms, p.updated_ms FROM permits p JOIN persons h ON h.id = p.holder_id";

fn map_row(row: &AnyRow) -> Result<Permit, RepoError> {
    let status: String = row.try_get("status")?;
    Ok(Permit {
        id: row.try_get("id")?,
        category: row.try_get("category")?,
        holder_id: row.try_get("holder_id")?,
        holder_name: row.try_get("holder_name")?,
        holder_department: row.try_get("holder_department")?,
        valid_from: from_ms(row.try_get("valid_from_ms")?),
        valid_until: from_ms(row.try_get("valid_until_ms")?),
        gates: row.try_get("gates")?,
        schedule: row.try_get("schedule")?,
        single_use: row.try_get::<i64, _>("single_use")? != 0,
        max_inside: row.try_get("max_inside")?,
        vehicle_ids: Vec::new(),
        // An unknown stored code (written by hand) reads as revoked: fail closed.
        status: PermitStatus::from_code(&status).unwrap_or(PermitStatus::Revoked),
        status_reason: row.try_get("status_reason")?,
        override_reason: row.try_get("override_reason")?,
        version: row.try_get("version")?,
        created_at: from_ms(row.try_get("created_ms")?),
        updated_at: from_ms(row.try_get("updated_ms")?),
    })
}

/// Fills `vehicle_ids` of `permits` with one query.
async fn load_vehicles(
    conn: &mut sqlx::AnyConnection,
    permits: &mut [Permit],
) -> Result<(), RepoError> {
    if permits.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=permits.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT permit_id, vehicle_id FROM permit_vehicles WHERE permit_id IN ({}) \
         ORDER BY permit_id, vehicle_id",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for p in permits.iter() {
        q = q.bind(p.id);
    }
    for row in q.fetch_all(&mut *conn).await? {
        let (pid, vid): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(p) = permits.iter_mut().find(|p| p.id == pid) {
            p.vehicle_ids.push(vid);
        }
    }
    Ok(())
}

async fn fetch(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Permit, RepoError> {
    let row = super::row_by_id(conn, &format!("{SELECT} WHERE p.id = $1"), id).await?;
    let mut permit = [map_row(&row)?];
    load_vehicles(conn, &mut permit).await?;
    let [permit] = permit;
    Ok(permit)
}

/// One permit with its vehicles.
pub async fn get(db: &Db, id: i64) -> Result<Permit, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// One permit's own fields, without its vehicles (`vehicle_ids` is empty): one statement, for
/// the live console, which shows a permit's validity at every upload and never its vehicles.
pub async fn get_without_vehicles(db: &Db, id: i64) -> Result<Permit, RepoError> {
    let mut conn = db.pool().acquire().await?;
    let row = super::row_by_id(&mut conn, &format!("{SELECT} WHERE p.id = $1"), id).await?;
    map_row(&row)
}

/// The department of person `id`, or `None` if there is no such person.
pub async fn person_department(db: &Db, id: i64) -> Result<Option<String>, RepoError> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT department FROM persons WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The ids among `ids` that name no vehicle, in the order given.
pub async fn unknown_vehicle_ids(db: &Db, ids: &[i64]) -> Result<Vec<i64>, RepoError> {
    unknown_ids(db, "vehicles", ids).await
}

/// The gate ids among `ids` that name no gate, in the order given.
pub async fn unknown_gate_ids(db: &Db, ids: &[i64]) -> Result<Vec<i64>, RepoError> {
    unknown_ids(db, "gates", ids).await
}

/// The ids among `ids` that name no row of `table`, in the order given.
async fn unknown_ids(db: &Db, table: &str, ids: &[i64]) -> Result<Vec<i64>, RepoError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id FROM {table} WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query_scalar::<_, i64>(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    let found = q.fetch_all(db.pool()).await?;
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect())
}

async fn insert_vehicles(
    conn: &mut sqlx::AnyConnection,
    permit_id: i64,
    vehicle_ids: &[i64],
) -> Result<(), RepoError> {
    for vid in vehicle_ids {
        sqlx::query("INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES ($1, $2)")
            .bind(permit_id)
            .bind(*vid)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Creates an active permit (version 1) covering `input.vehicle_ids`.
pub async fn create(db: &Db, actor: &Actor, input: &PermitInput) -> Result<Permit, RepoError> {
    let mut tx = db.begin().await?;
    let permit = create_in(&mut tx, actor, input).await?;
    tx.commit().await?;
    Ok(permit)
}

/// [`create`] on the caller's transaction (with its audit and change-log entries), for changes
/// that issue a permit as one of their steps (an exit-pass application's issue).
pub async fn create_in(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    input: &PermitInput,
) -> Result<Permit, RepoError> {
    create_overriding_in(tx, actor, input, "").await
}

/// [`create`] for a permit issued although its vehicle already holds a live pass of the same
/// kind: `override_reason` (why a second one) is stored with the permit and so in its `create`
/// audit entry.
pub async fn create_overriding(
    db: &Db,
    actor: &Actor,
    input: &PermitInput,
    override_reason: &str,
) -> Result<Permit, RepoError> {
    let mut tx = db.begin().await?;
    let permit = create_overriding_in(&mut tx, actor, input, override_reason).await?;
    tx.commit().await?;
    Ok(permit)
}

/// [`create_overriding`] on the caller's transaction (an application's issue).
pub async fn create_overriding_in(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    input: &PermitInput,
    override_reason: &str,
) -> Result<Permit, RepoError> {
    let now = now_ms();
    let insert = sqlx::query(
        "INSERT INTO permits (category, holder_id, valid_from_ms, valid_until_ms, gates, schedule, \
         single_use, max_inside, status, status_reason, override_reason, version, created_ms, \
         updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', '', $9, 1, $10, $10) \
         RETURNING id",
    );
    let id: i64 = bind_fields(insert, input)
        .bind(override_reason)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    insert_vehicles(tx, id, &input.vehicle_ids).await?;
    let permit = fetch(tx, id).await?;
    write_change(
        tx,
        actor,
        Op::Upsert("create"),
        ENTITY,
        id,
        None,
        Some(&permit),
    )
    .await?;
    Ok(permit)
}

/// Binds a permit's eight stored fields, in column order (`category` … `max_inside`).
fn bind_fields<'q>(query: AnyQuery<'q>, input: &'q PermitInput) -> AnyQuery<'q> {
    query
        .bind(&input.category)
        .bind(input.holder_id)
        .bind(input.valid_from.timestamp_millis())
        .bind(input.valid_until.timestamp_millis())
        .bind(&input.gates)
        .bind(&input.schedule)
        .bind(i64::from(input.single_use))
        .bind(input.max_inside)
}

/// Removes every vehicle from the permit `id` (in the caller's transaction).
async fn unlink_vehicles(conn: &mut sqlx::AnyConnection, id: i64) -> Result<(), RepoError> {
    sqlx::query("DELETE FROM permit_vehicles WHERE permit_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a conditional update found when it changed no row.
async fn missed(db: &Db, id: i64) -> RepoError {
    match sqlx::query_scalar::<_, i64>("SELECT version FROM permits WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await
    {
        Ok(Some(current)) => RepoError::Stale { current },
        Ok(None) => RepoError::NotFound,
        Err(e) => e.into(),
    }
}

/// Replaces the permit's fields and vehicles if it is still at `version`; its status is kept.
/// Fails with [`RepoError::Stale`] (with the current version) when it has moved on.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    version: i64,
    input: &PermitInput,
) -> Result<Permit, RepoError> {
    let before = get(db, id).await?;
    if before.version != version {
        return Err(RepoError::Stale {
            current: before.version,
        });
    }
    let mut tx = db.begin().await?;
    // The single conditional write that decides which of two concurrent updates wins.
    let replace = sqlx::query(
        "UPDATE permits SET category = $3, holder_id = $4, valid_from_ms = $5, \
         valid_until_ms = $6, gates = $7, schedule = $8, single_use = $9, max_inside = $10, \
         version = version + 1, updated_ms = $11 WHERE id = $1 AND version = $2",
    );
    let changed = bind_fields(replace.bind(id).bind(version), input)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        drop(tx);
        return Err(missed(db, id).await);
    }
    unlink_vehicles(&mut tx, id).await?;
    insert_vehicles(&mut tx, id, &input.vehicle_ids).await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch).await
}

/// Suspends, revokes or reactivates the permit, recording `reason` (kept empty on reactivation).
/// With `version`, refuses ([`RepoError::Stale`]) a permit that has moved on; without, acts on
/// the current version. Audited as the action's name.
pub async fn act(
    db: &Db,
    actor: &Actor,
    id: i64,
    version: Option<i64>,
    action: Action,
    reason: &str,
) -> Result<Permit, ActionError> {
    let before = get(db, id).await?;
    if let Some(v) = version
        && v != before.version
    {
        return Err(RepoError::Stale {
            current: before.version,
        }
        .into());
    }
    if !action.applies_to().contains(&before.status) {
        return Err(ActionError::Illegal {
            current: before.status,
        });
    }
    let to = action.leads_to();
    let reason_given = reason;
    let reason = if to == PermitStatus::Active {
        ""
    } else {
        reason
    };
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE permits SET status = $3, status_reason = $4, version = version + 1, \
         updated_ms = $5 WHERE id = $1 AND version = $2",
    )
    .bind(id)
    .bind(before.version)
    .bind(to.as_str())
    .bind(reason)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(RepoError::from)?
    .rows_affected();
    if changed == 0 {
        drop(tx);
        return Err(missed(db, id).await.into());
    }
    let after = fetch(&mut tx, id).await?;
    // The audit keeps the reason given for every action, reactivation included (whose reason
    // is not stored on the permit).
    let mut after_json = snapshot(&after);
    if let Some(o) = after_json.as_object_mut() {
        o.insert("action_reason".into(), reason_given.into());
    }
    write_change(
        &mut tx,
        actor,
        Op::Upsert(action.name()),
        ENTITY,
        id,
        Some(&snapshot(&before)),
        Some(&after_json),
    )
    .await?;
    tx.commit().await.map_err(RepoError::from)?;
    Ok(after)
}

/// Deletes the permit and its vehicle links. With `version`, refuses a permit that has moved on.
pub async fn delete(
    db: &Db,
    actor: &Actor,
    id: i64,
    version: Option<i64>,
) -> Result<(), RepoError> {
    let before = get(db, id).await?;
    let expected = version.unwrap_or(before.version);
    if expected != before.version {
        return Err(RepoError::Stale {
            current: before.version,
        });
    }
    let mut tx = db.begin().await?;
    // Lock the row at the version the before-image was read at (the first write, see the
    // module header), then remove the links and the row.
    let changed =
        sqlx::query("UPDATE permits SET version = version WHERE id = $1 AND version = $2")
            .bind(id)
            .bind(expected)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if changed == 0 {
        drop(tx);
        return Err(missed(db, id).await);
    }
    unlink_vehicles(&mut tx, id).await?;
    super::delete_row(&mut tx, actor, "permits", ENTITY, id, &before).await?;
    tx.commit().await?;
    Ok(())
}

/// Permits matching `query`, newest first.
pub async fn search(db: &Db, query: &PermitQuery, page: Page) -> Result<Paged<Permit>, RepoError> {
    let mut f = Filter::new();
    if let Some(v) = query.holder_id {
        f.and_args("p.holder_id = {}", vec![Arg::Int(v)]);
    }
    if let Some(v) = query.vehicle_id {
        f.and_args(
            "EXISTS (SELECT 1 FROM permit_vehicles pv WHERE pv.permit_id = p.id \
             AND pv.vehicle_id = {})",
            vec![Arg::Int(v)],
        );
    }
    if let Some(v) = &query.plate {
        f.and_args(
            "EXISTS (SELECT 1 FROM permit_vehicles pv JOIN vehicles v ON v.id = pv.vehicle_id \
             WHERE pv.permit_id = p.id AND v.plate LIKE {} ESCAPE '\\')",
            vec![Arg::Text(like_contains(v))],
        );
    }
    if let Some(v) = &query.department {
        f.and_args(
            "LOWER(h.department) = LOWER({})",
            vec![Arg::Text(v.clone())],
        );
    }
    if let Some(v) = &query.scope_department {
        f.and_args("h.department = {}", vec![Arg::Text(v.clone())]);
    }
    if let Some(v) = query.status {
        f.and_args("p.status = {}", vec![Arg::Text(v.as_str().into())]);
    }
    if let Some(v) = &query.category {
        f.and_args("p.category = {}", vec![Arg::Text(v.clone())]);
    }
    if let Some(t) = query.valid_at {
        let t = t.timestamp_millis();
        f.and_args(
            "p.valid_from_ms <= {} AND {} < p.valid_until_ms",
            vec![Arg::Int(t), Arg::Int(t)],
        );
    }
    let total = f
        .count(db, "permits p JOIN persons h ON h.id = p.holder_id ")
        .await?;
    let mut conn = db.pool().acquire().await?;
    let list_sql = format!(
        "{SELECT} {} ORDER BY p.id DESC{}",
        f.where_sql(),
        f.page_sql()
    );
    let rows = f
        .bind_page(sqlx::query(&list_sql), page)
        .fetch_all(&mut *conn)
        .await?;
    let mut items = rows.iter().map(map_row).collect::<Result<Vec<_>, _>>()?;
    load_vehicles(&mut conn, &mut items).await?;
    Ok(Paged { items, total })
}

// ---------------------------------------------------------------------------------------------
// One live pass per vehicle and kind, and the pickers of the permit and application forms.

/// An active, not yet expired permit covering one vehicle: what a second pass of the same kind
/// for that vehicle would duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LivePass {
    pub permit_id: i64,
    pub vehicle_id: i64,
    pub plate: String,
    /// A one-off exit pass (single use) rather than a period pass.
    pub single_use: bool,
    pub holder_name: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

/// The live passes (active, `valid_until` after `now_ms`) of the vehicles `vehicle_ids`, by
/// vehicle then permit id. One query.
pub async fn live_passes(
    db: &Db,
    vehicle_ids: &[i64],
    now_ms: i64,
) -> Result<Vec<LivePass>, RepoError> {
    if vehicle_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut f = Filter::new();
    let list: Vec<String> = vehicle_ids.iter().map(|id| f.arg(*id)).collect();
    let now = f.arg(now_ms);
    let sql = format!(
        "SELECT p.id, pv.vehicle_id, v.plate, p.single_use, h.name, p.valid_from_ms, \
         p.valid_until_ms FROM permits p JOIN permit_vehicles pv ON pv.permit_id = p.id \
         JOIN vehicles v ON v.id = pv.vehicle_id JOIN persons h ON h.id = p.holder_id \
         WHERE pv.vehicle_id IN ({}) AND p.status = 'active' AND p.valid_until_ms > {now} \
         ORDER BY pv.vehicle_id, p.id",
        list.join(", ")
    );
    let rows = f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(LivePass {
                permit_id: r.try_get(0)?,
                vehicle_id: r.try_get(1)?,
                plate: r.try_get(2)?,
                single_use: r.try_get::<i64, _>(3)? != 0,
                holder_name: r.try_get(4)?,
                valid_from: from_ms(r.try_get(5)?),
                valid_until: from_ms(r.try_get(6)?),
            })
        })
        .collect()
}

/// The live passes a new pass for `vehicle_ids` would duplicate: same kind (`single_use`), and
/// a validity overlapping `[from, until)` — a renewal that starts when the old pass ends
/// duplicates nothing.
pub async fn duplicated_passes(
    db: &Db,
    vehicle_ids: &[i64],
    single_use: bool,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<LivePass>, RepoError> {
    Ok(live_passes(db, vehicle_ids, now_ms())
        .await?
        .into_iter()
        .filter(|p| p.single_use == single_use && p.valid_from < until && from < p.valid_until)
        .collect())
}

/// A person a permit or application form may name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PickedPerson {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub department: String,
}

/// A vehicle a permit or application form may name, with its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PickedVehicle {
    pub id: i64,
    pub plate: String,
    pub plate_colour: String,
    pub owner_id: Option<i64>,
    pub owner_name: Option<String>,
    pub owner_department: Option<String>,
}

/// Who a picker may offer: everyone, one department's people (and their vehicles), or one
/// person (and their vehicles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickScope {
    All,
    Department(String),
    Person(i64),
}

/// At most `limit` persons whose name contains `text` (any case), or whose number (id) is
/// `text`, or — with `phone` — whose phone contains it (four digits or more); within `scope`,
/// the person of that number first, then by name.
pub async fn pick_persons(
    db: &Db,
    text: &str,
    phone: bool,
    scope: &PickScope,
    limit: i64,
) -> Result<Vec<PickedPerson>, RepoError> {
    let mut f = Filter::new();
    let text = text.trim();
    // The person whose number it is comes first.
    let mut order = "name, id".to_string();
    if !text.is_empty() {
        let p = f.arg(like_contains(text));
        let mut any = vec![format!("LOWER(name) LIKE LOWER({p}) ESCAPE '\\'")];
        if let Ok(id) = text.trim_start_matches('#').parse::<i64>() {
            let n = f.arg(id);
            any.push(format!("id = {n}"));
            order = format!("CASE WHEN id = {n} THEN 0 ELSE 1 END, name, id");
        }
        // Phone digits from four on (fewer would match nearly everyone).
        if phone && text.len() >= 4 && text.chars().all(|c| c.is_ascii_digit()) {
            any.push(format!("phone LIKE {p} ESCAPE '\\'"));
        }
        f.and(format!("({})", any.join(" OR ")));
    }
    match scope {
        PickScope::All => {}
        PickScope::Department(d) => f.eq("department", d.as_str()),
        PickScope::Person(id) => f.eq("id", *id),
    }
    let sql = format!(
        "SELECT id, name, category, department FROM persons{} ORDER BY {order} LIMIT {}",
        f.where_sql(),
        limit.clamp(1, 50)
    );
    let rows = f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(PickedPerson {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                category: r.try_get(2)?,
                department: r.try_get(3)?,
            })
        })
        .collect()
}

/// At most `limit` vehicles whose plate contains `fragment` (already normalised), of `owner`
/// when given, within `scope` (by the owner's department or person), by plate.
pub async fn pick_vehicles(
    db: &Db,
    fragment: &str,
    owner: Option<i64>,
    scope: &PickScope,
    limit: i64,
) -> Result<Vec<PickedVehicle>, RepoError> {
    let mut f = Filter::new();
    if !fragment.is_empty() {
        f.like("v.plate", like_contains(fragment));
    }
    if let Some(o) = owner {
        f.eq("v.owner_id", o);
    }
    match scope {
        PickScope::All => {}
        PickScope::Department(d) => f.eq("o.department", d.as_str()),
        PickScope::Person(id) => f.eq("v.owner_id", *id),
    }
    let sql = format!(
        "SELECT v.id, v.plate, v.plate_colour, v.owner_id, o.name, o.department FROM vehicles v \
         LEFT JOIN persons o ON o.id = v.owner_id{} ORDER BY v.plate, v.id LIMIT {}",
        f.where_sql(),
        limit.clamp(1, 50)
    );
    let rows = f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(PickedVehicle {
                id: r.try_get(0)?,
                plate: r.try_get(1)?,
                plate_colour: r.try_get(2)?,
                owner_id: r.try_get(3)?,
                owner_name: r.try_get(4)?,
                owner_department: r.try_get(5)?,
            })
        })
        .collect()
}

/// The plates of the vehicles `ids`, by id, in one query (for a page of permits).
pub async fn plates(
    db: &Db,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>, RepoError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let list: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, plate FROM vehicles WHERE id IN ({})",
        list.join(", ")
    );
    let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(db.pool()).await?.into_iter().collect())
}
