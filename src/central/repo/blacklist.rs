//! The blacklist (黑名单): plates, tags and persons that must not enter while an entry is in
//! force, with how loudly a hit is raised. Create, read, replace, delete, lift (end now) and
//! search; every change is audited and recorded in the change log the gates sync from.
//!
//! What it never does: validate wire input. [`NewBlacklistEntry`] holds typed values only (a
//! [`Plate`] is always normalised, an [`Epc`] always hex), so nothing unnormalised can be stored;
//! turning a [`BlacklistInput`] into one, with messages for each wrong field, is the API's job.
//! It never decides a passage either (that is the gate's [`crate::gate::decision`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use crate::central::db::Filter;
use crate::central::db::{Actor, AnyQuery, Db, Op, Page, Paged, RepoError, now_ms};
use crate::domain::{AlarmLevel, Epc, Plate, PlateColour};

/// The entity name in the audit and change logs.
pub const ENTITY: &str = "blacklist";

/// A blacklist entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlacklistEntryRow {
    pub id: i64,
    /// `plate`, `tag` or `person`.
    pub subject_kind: String,
    /// The normalised plate (`京A12345`), the EPC in upper-case hex, or the person's id.
    pub subject: String,
    /// For plates: `blue`, `yellow`, `green`, `yellow_green`, `white`, `black`; `null` = any.
    pub plate_colour: Option<String>,
    pub reason: String,
    /// `silent`, `guard` or `urgent`.
    pub alarm_level: String,
    /// In force from (inclusive).
    pub valid_from: DateTime<Utc>,
    /// In force until (exclusive); `null` = until lifted.
    pub valid_until: Option<DateTime<Utc>>,
    /// Whether the entry is in force now.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A blacklist entry as a client sends it (create and replace). Every field is checked by the
/// API and each wrong one named in the 422 answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlacklistInput {
    /// `plate`, `tag` or `person`. Required.
    pub subject_kind: Option<String>,
    /// A plate (any common spelling: `京a·12345`, full-width), an EPC in hex, or a person id.
    /// Required.
    pub subject: Option<String>,
    /// Plates only: the colour; omitted = every colour of the plate.
    pub plate_colour: Option<String>,
    /// Why (required, at most 500 characters).
    pub reason: Option<String>,
    /// `silent`, `guard` (default) or `urgent`.
    pub alarm_level: Option<String>,
    /// RFC 3339; default now.
    #[schema(format = DateTime)]
    pub valid_from: Option<String>,
    /// RFC 3339, after `valid_from`; omitted = until lifted.
    #[schema(format = DateTime)]
    pub valid_until: Option<String>,
}

/// What a blacklist entry is about, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Plate {
        plate: Plate,
        colour: Option<PlateColour>,
    },
    Tag(Epc),
    /// A person by id; must exist.
    Person(i64),
}

impl Subject {
    fn kind(&self) -> &'static str {
        match self {
            Subject::Plate { .. } => "plate",
            Subject::Tag(_) => "tag",
            Subject::Person(_) => "person",
        }
    }

    fn text(&self) -> String {
        match self {
            Subject::Plate { plate, .. } => plate.as_str().to_string(),
            Subject::Tag(epc) => epc.to_string(),
            Subject::Person(id) => id.to_string(),
        }
    }

    fn colour(&self) -> Option<&'static str> {
        match self {
            Subject::Plate {
                colour: Some(c), ..
            } => Some(c.as_str()),
            _ => None,
        }
    }
}

/// A checked blacklist entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlacklistEntry {
    pub subject: Subject,
    /// Non-empty.
    pub reason: String,
    pub alarm_level: AlarmLevel,
    pub valid_from_ms: i64,
    /// After `valid_from_ms`, or `None` for until lifted.
    pub valid_until_ms: Option<i64>,
}

/// The stable code of an alarm level.
pub fn alarm_code(level: AlarmLevel) -> &'static str {
    match level {
        AlarmLevel::Silent => "silent",
        AlarmLevel::Guard => "guard",
        AlarmLevel::Urgent => "urgent",
    }
}

/// The alarm level for a code from [`alarm_code`].
pub fn parse_alarm(code: &str) -> Option<AlarmLevel> {
    Some(match code {
        "silent" => AlarmLevel::Silent,
        "guard" => AlarmLevel::Guard,
        "urgent" => AlarmLevel::Urgent,
        _ => return None,
    })
}

/// Filters for [`search`], combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlacklistQuery {
    /// Part of the subject, case-insensitive (plates: normalise it first, see
    /// [`normalise_fragment`](crate::domain::plate::normalise_fragment)).
    pub subject: Option<String>,
    /// `plate`, `tag` or `person`.
    pub kind: Option<String>,
    /// Only entries in force at this instant (UTC ms).
    pub active_at_ms: Option<i64>,
}

/// The result of [`lift`].
pub type Lifted = super::Lifted<BlacklistEntryRow>;

const COLUMNS: &str = "id, subject_kind, subject, plate_colour, reason, alarm_level, \
                       valid_from_ms, valid_until_ms, created_ms, updated_ms";

/// Whether a person with this id exists.
pub async fn person_exists(conn: &mut AnyConnection, id: i64) -> Result<bool, RepoError> {
    let row = sqlx::query("SELECT id FROM persons WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Stores a new entry. A person subject that does not exist is [`RepoError::Reference`].
pub async fn create(
    db: &Db,
    actor: &Actor,
    new: NewBlacklistEntry,
) -> Result<BlacklistEntryRow, RepoError> {
    let mut tx = db.begin().await?;
    check_person(&mut tx, &new.subject).await?;
    let now = now_ms();
    let insert = sqlx::query(
        "INSERT INTO blacklist (subject_kind, subject, plate_colour, reason, alarm_level, \
         valid_from_ms, valid_until_ms, created_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
    );
    let row = bind_fields(insert, &new)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    let id: i64 = row.try_get("id")?;
    super::commit_upsert(tx, actor, Op::Upsert("create"), (ENTITY, id), None, fetch).await
}

/// One entry.
pub async fn get(db: &Db, id: i64) -> Result<BlacklistEntryRow, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, id).await
}

/// Replaces an entry's fields.
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    new: NewBlacklistEntry,
) -> Result<BlacklistEntryRow, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    check_person(&mut tx, &new.subject).await?;
    let replace = sqlx::query(
        "UPDATE blacklist SET subject_kind = $1, subject = $2, plate_colour = $3, reason = $4, \
         alarm_level = $5, valid_from_ms = $6, valid_until_ms = $7, updated_ms = $8 WHERE id = $9",
    );
    bind_fields(replace, &new)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let op = Op::Upsert("update");
    super::commit_upsert(tx, actor, op, (ENTITY, id), Some(&before), fetch).await
}

/// Deletes an entry (lifting keeps the history; deleting is for entries made in error).
pub async fn delete(db: &Db, actor: &Actor, id: i64) -> Result<(), RepoError> {
    super::delete_by_id(db, actor, ("blacklist", ENTITY), id, fetch).await
}

/// Ends an entry now (audited as `lift`). An entry that has not started yet ends at its start,
/// so it never comes into force.
pub async fn lift(db: &Db, actor: &Actor, id: i64) -> Result<Lifted, RepoError> {
    let window = |r: &BlacklistEntryRow| (r.valid_from, r.valid_until);
    super::lift(db, actor, ("blacklist", ENTITY), id, fetch, window).await
}

/// Entries matching `q`, newest first.
pub async fn search(
    db: &Db,
    q: &BlacklistQuery,
    page: Page,
) -> Result<Paged<BlacklistEntryRow>, RepoError> {
    let mut w = Filter::new();
    if let Some(s) = q.subject.as_deref().filter(|s| !s.is_empty()) {
        w.contains_ci("subject", s);
    }
    if let Some(kind) = &q.kind {
        w.eq("subject_kind", kind.as_str());
    }
    if let Some(t) = q.active_at_ms {
        active_at(&mut w, t);
    }
    let select = format!("SELECT {COLUMNS} FROM blacklist");
    let now = now_ms();
    w.paged(db, ("blacklist", &select), "id DESC", page, |r| {
        entry(r, now)
    })
    .await
}

/// Adds "in force at `t`" to `w` (for tables with `valid_from_ms` / `valid_until_ms`).
pub fn active_at(w: &mut Filter, t: i64) {
    let p = w.arg(t);
    w.and(format!(
        "valid_from_ms <= {p} AND (valid_until_ms IS NULL OR valid_until_ms > {p})"
    ));
}

/// Binds an entry's seven stored fields, in column order (`subject_kind` … `valid_until_ms`).
fn bind_fields<'q>(query: AnyQuery<'q>, new: &'q NewBlacklistEntry) -> AnyQuery<'q> {
    query
        .bind(new.subject.kind())
        .bind(new.subject.text())
        .bind(new.subject.colour())
        .bind(&new.reason)
        .bind(alarm_code(new.alarm_level))
        .bind(new.valid_from_ms)
        .bind(new.valid_until_ms)
}

async fn check_person(conn: &mut AnyConnection, subject: &Subject) -> Result<(), RepoError> {
    if let Subject::Person(pid) = subject
        && !person_exists(conn, *pid).await?
    {
        return Err(RepoError::Reference(format!("person {pid} does not exist")));
    }
    Ok(())
}

async fn fetch(conn: &mut AnyConnection, id: i64) -> Result<BlacklistEntryRow, RepoError> {
    let sql = format!("SELECT {COLUMNS} FROM blacklist WHERE id = $1");
    let row = super::row_by_id(conn, &sql, id).await?;
    entry(&row, now_ms())
}

fn entry(r: &AnyRow, now: i64) -> Result<BlacklistEntryRow, RepoError> {
    let window = super::validity(r, now)?;
    Ok(BlacklistEntryRow {
        id: r.try_get("id")?,
        subject_kind: r.try_get("subject_kind")?,
        subject: r.try_get("subject")?,
        plate_colour: r.try_get("plate_colour")?,
        reason: r.try_get("reason")?,
        alarm_level: r.try_get("alarm_level")?,
        valid_from: window.from,
        valid_until: window.until,
        active: window.active,
        created_at: at(r.try_get("created_ms")?),
        updated_at: at(r.try_get("updated_ms")?),
    })
}
