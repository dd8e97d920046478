//! Gates (大门 / 卡口) and their lanes: names, modes, anti-passback, offline policy and the
//! lanes' device settings. Create, read, replace, delete, set a gate's mode (audited as
//! `set_mode`), and list — optionally only the gates an operator is bound to.
//!
//! What it never does: validate wire input (the `New…` types hold checked values; the API builds
//! them from [`GateInput`] / [`LaneInput`]), decide who may see a gate (the API passes the guard's
//! gates as [`GateQuery::only`]), or talk to a gate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use crate::central::db::Filter;
use crate::central::db::{Actor, Db, Op, Page, Paged, RepoError, now_ms, write_change};

/// The entity names in the audit and change logs.
pub const GATE: &str = "gate";
/// See [`GATE`].
pub const LANE: &str = "lane";

/// Gate modes: `normal`, `locked_closed` (lockdown: only guard overrides open), `locked_open`
/// (evacuation / fire linkage: everything opens).
pub const GATE_MODES: [&str; 3] = ["normal", "locked_closed", "locked_open"];
/// Lane modes: the gate modes plus manual-only (every opening by a guard), per direction.
pub const LANE_MODES: [&str; 6] = [
    "normal",
    "locked_closed",
    "locked_open",
    "manual_only",
    "manual_only_entry",
    "manual_only_exit",
];
/// What a gate does while it cannot reach the centre: `cached` (decide from its local copy, the
/// default), `locked_closed` (open only by a guard), `locked_open` (open for everyone).
pub const OFFLINE_POLICIES: [&str; 3] = ["cached", "locked_closed", "locked_open"];
/// Lane directions.
pub const DIRECTIONS: [&str; 3] = ["entry", "exit", "two_way"];

/// A gate as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Gate {
    pub id: i64,
    /// The Chinese name (shown on the Chinese pages, and on the English ones without
    /// [`Gate::name_en`]).
    pub name: String,
    /// The English name, empty when none was given.
    #[serde(default)]
    pub name_en: String,
    /// `normal`, `locked_closed` or `locked_open`; changed only through the mode endpoint.
    pub mode: String,
    /// `off`, `hard`, `soft` or `timed:MINUTES`.
    pub anti_passback: String,
    /// `cached`, `locked_closed` or `locked_open`.
    pub offline_policy: String,
    /// A disabled gate's certificate is refused.
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Gate {
    /// The gate's name in `lang` (issue 20: the English name, when one is given, on the
    /// English pages; the Chinese name otherwise).
    pub fn name_in(&self, lang: crate::i18n::Lang) -> &str {
        english_or(lang, &self.name_en, &self.name)
    }
}

/// A gate as a client sends it (create and replace). The mode is not here: it changes only
/// through `POST /gates/{id}/mode`, with a reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateInput {
    /// Required, at most 100 characters.
    pub name: Option<String>,
    /// The English name: optional, at most 100 characters.
    pub name_en: Option<String>,
    /// `off`, `hard` (default), `soft` or `timed:MINUTES` (1–1440).
    pub anti_passback: Option<String>,
    /// `cached` (default), `locked_closed` or `locked_open`.
    pub offline_policy: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A checked gate, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGate {
    pub name: String,
    /// Empty: no English name.
    pub name_en: String,
    /// One of the forms [`GateInput::anti_passback`] lists.
    pub anti_passback: String,
    /// One of [`OFFLINE_POLICIES`].
    pub offline_policy: String,
    pub enabled: bool,
}

/// A mode change as a client sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeInput {
    /// `normal`, `locked_closed` or `locked_open`.
    pub mode: Option<String>,
    /// Why (required, at most 500 characters): kept in the audit log.
    pub reason: Option<String>,
}

/// A lane as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lane {
    pub id: i64,
    pub gate_id: i64,
    /// The lane's id in the gate's configuration (`entry`, `exit-2`).
    pub lane_key: String,
    pub name: String,
    /// The English name, empty when none was given.
    #[serde(default)]
    pub name_en: String,
    /// `entry`, `exit` or `two_way`.
    pub direction: String,
    /// One of the lane modes (`normal`, `locked_closed`, `locked_open`, `manual_only`,
    /// `manual_only_entry`, `manual_only_exit`).
    pub mode: String,
    /// Device settings (a JSON object).
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Lane {
    /// The lane's name in `lang` (the English name on the English pages when one is given),
    /// or its key when it has no name.
    pub fn name_in(&self, lang: crate::i18n::Lang) -> &str {
        let name = english_or(lang, &self.name_en, &self.name);
        if name.is_empty() {
            &self.lane_key
        } else {
            name
        }
    }
}

/// A lane as a client sends it (create and replace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaneInput {
    /// Required: 1–32 characters of a–z, 0–9, `-` and `_`; unique within the gate.
    pub lane_key: Option<String>,
    /// At most 100 characters.
    pub name: Option<String>,
    /// The English name: optional, at most 100 characters.
    pub name_en: Option<String>,
    /// `entry`, `exit` or `two_way`. Required.
    pub direction: Option<String>,
    /// A lane mode; default `normal`.
    pub mode: Option<String>,
    /// A JSON object; default `{}`.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// A checked lane, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLane {
    pub lane_key: String,
    pub name: String,
    /// Empty: no English name.
    pub name_en: String,
    /// One of [`DIRECTIONS`].
    pub direction: String,
    /// One of [`LANE_MODES`].
    pub mode: String,
    /// A JSON object.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Filters for [`search`], combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateQuery {
    /// Part of the name, case-insensitive.
    pub name: Option<String>,
    pub mode: Option<String>,
    pub enabled: Option<bool>,
    /// Only these gates (a guard's own); `None` = all.
    pub only: Option<Vec<i64>>,
}

const GATE_COLUMNS: &str =
    "id, name, name_en, mode, anti_passback, offline_policy, enabled, created_ms, updated_ms";
const LANE_COLUMNS: &str =
    "id, gate_id, lane_key, name, name_en, direction, mode, settings, created_ms, updated_ms";

/// `english` on the English pages when it is given, `chinese` otherwise.
fn english_or<'a>(lang: crate::i18n::Lang, english: &'a str, chinese: &'a str) -> &'a str {
    if lang == crate::i18n::Lang::En && !english.trim().is_empty() {
        english
    } else {
        chinese
    }
}

/// A gate's or lane's names: the Chinese one and the English one (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamesInput {
    /// The Chinese name: required for a gate, at most 100 characters.
    pub name: Option<String>,
    /// The English name: optional, at most 100 characters.
    pub name_en: Option<String>,
}

/// Stores a new gate (in mode `normal`).
pub async fn create(db: &Db, actor: &Actor, new: NewGate) -> Result<Gate, RepoError> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "INSERT INTO gates (name, mode, anti_passback, offline_policy, enabled, created_ms, \
         updated_ms, name_en) VALUES ($1, 'normal', $2, $3, $4, $5, $5, $6) RETURNING id",
    )
    .bind(&new.name)
    .bind(&new.anti_passback)
    .bind(&new.offline_policy)
    .bind(i64::from(new.enabled))
    .bind(now_ms())
    .bind(&new.name_en)
    .fetch_one(&mut *tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    let op = Op::Upsert("create");
    super::commit_upsert(tx, actor, op, (GATE, id), None, fetch_gate).await
}

/// One gate.
pub async fn get(db: &Db, id: i64) -> Result<Gate, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch_gate(&mut conn, id).await
}

/// Replaces a gate's fields (not its mode).
pub async fn update(db: &Db, actor: &Actor, id: i64, new: NewGate) -> Result<Gate, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch_gate(&mut tx, id).await?;
    sqlx::query(
        "UPDATE gates SET name = $1, anti_passback = $2, offline_policy = $3, enabled = $4, \
         updated_ms = $5, name_en = $7 WHERE id = $6",
    )
    .bind(&new.name)
    .bind(&new.anti_passback)
    .bind(&new.offline_policy)
    .bind(i64::from(new.enabled))
    .bind(now_ms())
    .bind(id)
    .bind(&new.name_en)
    .execute(&mut *tx)
    .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (GATE, id), Some(&before), fetch_gate).await
}

/// Deletes a gate and its lanes. A gate operators are still bound to is
/// [`RepoError::Reference`]: unbind them first.
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let gate = fetch_gate(&mut tx, id).await?;
    let bound = sqlx::query("SELECT operator_id FROM operator_gates WHERE gate_id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    if bound.is_some() {
        return Err(RepoError::Reference(format!(
            "operators are still bound to gate {id}"
        )));
    }
    let lanes = fetch_lanes(&mut tx, id).await?;
    for lane in &lanes {
        write_change(&mut tx, actor, Op::Delete, LANE, lane.id, Some(lane), None).await?;
    }
    sqlx::query("DELETE FROM lanes WHERE gate_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    super::delete_row(&mut tx, actor, "gates", GATE, id, &gate).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a gate's mode (one of [`GATE_MODES`]), audited as `set_mode` with the reason.
pub async fn set_mode(
    db: &Db,
    actor: &Actor,
    id: i64,
    mode: &str,
    reason: &str,
) -> Result<Gate, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch_gate(&mut tx, id).await?;
    sqlx::query("UPDATE gates SET mode = $1, updated_ms = $2 WHERE id = $3")
        .bind(mode)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = fetch_gate(&mut tx, id).await?;
    write_change(
        &mut tx,
        actor,
        Op::Upsert("set_mode"),
        GATE,
        id,
        Some(&serde_json::json!({ "mode": before.mode })),
        Some(&serde_json::json!({ "mode": after.mode, "reason": reason })),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Gates matching `q`, by id.
pub async fn search(db: &Db, q: &GateQuery, page: Page) -> Result<Paged<Gate>, RepoError> {
    let mut w = Filter::new();
    if let Some(s) = q.name.as_deref().filter(|s| !s.is_empty()) {
        w.contains_ci("name", s);
    }
    if let Some(mode) = &q.mode {
        w.eq("mode", mode.as_str());
    }
    if let Some(enabled) = q.enabled {
        w.eq("enabled", i64::from(enabled));
    }
    if let Some(only) = &q.only {
        if only.is_empty() {
            w.and("1 = 0".into());
        } else {
            let ps: Vec<String> = only.iter().map(|id| w.arg(*id)).collect();
            w.and(format!("id IN ({})", ps.join(", ")));
        }
    }
    let select = format!("SELECT {GATE_COLUMNS} FROM gates");
    w.paged(db, ("gates", &select), "id", page, gate).await
}

/// Adds a lane to a gate. A `lane_key` the gate already has is [`RepoError::Conflict`].
pub async fn create_lane(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    new: NewLane,
) -> Result<Lane, RepoError> {
    let mut tx = db.begin().await?;
    fetch_gate(&mut tx, gate_id).await?;
    let row = sqlx::query(
        "INSERT INTO lanes (gate_id, lane_key, name, direction, mode, settings, created_ms, \
         updated_ms, name_en) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
    )
    .bind(gate_id)
    .bind(&new.lane_key)
    .bind(&new.name)
    .bind(&new.direction)
    .bind(&new.mode)
    .bind(serde_json::Value::Object(new.settings.clone()).to_string())
    .bind(now_ms())
    .bind(&new.name_en)
    .fetch_one(&mut *tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    let op = Op::Upsert("create");
    super::commit_upsert(tx, actor, op, (LANE, id), None, written_lane).await
}

/// One lane of a gate ([`RepoError::NotFound`] if it belongs to another gate).
pub async fn get_lane(db: &Db, gate_id: i64, id: i64) -> Result<Lane, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch_lane(&mut conn, gate_id, id).await
}

/// The lanes of a gate, by key.
pub async fn lanes(db: &Db, gate_id: i64) -> Result<Vec<Lane>, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch_gate(&mut conn, gate_id).await?;
    fetch_lanes(&mut conn, gate_id).await
}

/// Every lane of every gate, by gate and key (one query: for pages that name lanes).
pub async fn all_lanes(db: &Db) -> Result<Vec<Lane>, RepoError> {
    let rows = sqlx::query(&format!(
        "SELECT {LANE_COLUMNS} FROM lanes ORDER BY gate_id, lane_key"
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(lane).collect()
}

/// Replaces a lane's fields.
pub async fn update_lane(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    id: i64,
    new: NewLane,
) -> Result<Lane, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch_lane(&mut tx, gate_id, id).await?;
    sqlx::query(
        "UPDATE lanes SET lane_key = $1, name = $2, direction = $3, mode = $4, settings = $5, \
         updated_ms = $6, name_en = $8 WHERE id = $7",
    )
    .bind(&new.lane_key)
    .bind(&new.name)
    .bind(&new.direction)
    .bind(&new.mode)
    .bind(serde_json::Value::Object(new.settings.clone()).to_string())
    .bind(now_ms())
    .bind(id)
    .bind(&new.name_en)
    .execute(&mut *tx)
    .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (LANE, id), Some(&before), written_lane).await
}

/// Renames a gate (its Chinese and English names; nothing else), audited as `rename` with
/// both names before and after. Not in the change log: the gates carry no names.
pub async fn rename_gate(
    db: &Db,
    actor: &Actor,
    id: i64,
    name: &str,
    name_en: &str,
) -> Result<Gate, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch_gate(&mut tx, id).await?;
    sqlx::query("UPDATE gates SET name = $1, name_en = $2, updated_ms = $3 WHERE id = $4")
        .bind(name)
        .bind(name_en)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = fetch_gate(&mut tx, id).await?;
    let names = |g: &Gate| serde_json::json!({ "name": g.name, "name_en": g.name_en });
    let (b, a) = (names(&before), names(&after));
    write_change(
        &mut tx,
        actor,
        Op::Audit("rename"),
        GATE,
        id,
        Some(&b),
        Some(&a),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Renames a lane of a gate (its Chinese and English names), audited as `rename`; not in the
/// change log (see [`rename_gate`]).
pub async fn rename_lane(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    id: i64,
    name: &str,
    name_en: &str,
) -> Result<Lane, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch_lane(&mut tx, gate_id, id).await?;
    sqlx::query("UPDATE lanes SET name = $1, name_en = $2, updated_ms = $3 WHERE id = $4")
        .bind(name)
        .bind(name_en)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = fetch_lane(&mut tx, gate_id, id).await?;
    let names = |l: &Lane| serde_json::json!({ "name": l.name, "name_en": l.name_en });
    let (b, a) = (names(&before), names(&after));
    write_change(
        &mut tx,
        actor,
        Op::Audit("rename"),
        LANE,
        id,
        Some(&b),
        Some(&a),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a lane.
pub async fn delete_lane(db: &Db, actor: &Actor, gate_id: i64, id: i64) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch_lane(&mut tx, gate_id, id).await?;
    super::delete_row(&mut tx, actor, "lanes", LANE, id, &before).await?;
    tx.commit().await?;
    Ok(())
}

async fn fetch_gate(conn: &mut AnyConnection, id: i64) -> Result<Gate, RepoError> {
    let sql = format!("SELECT {GATE_COLUMNS} FROM gates WHERE id = $1");
    gate(&super::row_by_id(conn, &sql, id).await?)
}

async fn fetch_lane(conn: &mut AnyConnection, gate_id: i64, id: i64) -> Result<Lane, RepoError> {
    let sql = format!("SELECT {LANE_COLUMNS} FROM lanes WHERE id = $1 AND gate_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(gate_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(RepoError::NotFound)?;
    lane(&row)
}

/// The lane `id` just written (its gate checked before the write).
async fn written_lane(conn: &mut AnyConnection, id: i64) -> Result<Lane, RepoError> {
    let sql = format!("SELECT {LANE_COLUMNS} FROM lanes WHERE id = $1");
    lane(&super::row_by_id(conn, &sql, id).await?)
}

async fn fetch_lanes(conn: &mut AnyConnection, gate_id: i64) -> Result<Vec<Lane>, RepoError> {
    let rows = sqlx::query(&format!(
        "SELECT {LANE_COLUMNS} FROM lanes WHERE gate_id = $1 ORDER BY lane_key"
    ))
    .bind(gate_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(lane).collect()
}

fn gate(r: &AnyRow) -> Result<Gate, RepoError> {
    Ok(Gate {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        name_en: r.try_get("name_en")?,
        mode: r.try_get("mode")?,
        anti_passback: r.try_get("anti_passback")?,
        offline_policy: r.try_get("offline_policy")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: at(r.try_get("created_ms")?),
        updated_at: at(r.try_get("updated_ms")?),
    })
}

fn lane(r: &AnyRow) -> Result<Lane, RepoError> {
    let settings: String = r.try_get("settings")?;
    Ok(Lane {
        id: r.try_get("id")?,
        gate_id: r.try_get("gate_id")?,
        lane_key: r.try_get("lane_key")?,
        name: r.try_get("name")?,
        name_en: r.try_get("name_en")?,
        direction: r.try_get("direction")?,
        mode: r.try_get("mode")?,
        settings: serde_json::from_str(&settings)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
        created_at: at(r.try_get("created_ms")?),
        updated_at: at(r.try_get("updated_ms")?),
    })
}
