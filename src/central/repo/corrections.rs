//! Plate corrections: a guard or the security office says which plate a stored passage event
//! really showed when the camera (or the record behind a tag) got it wrong. One correction per
//! event (`plate_corrections`, keyed like `passage_events`); a second one replaces the first.
//! Each is audited (`plate_correction`, entity `passage_event`, id `GATE/JOURNAL/SEQ`) with what
//! it replaced, in the transaction that writes it.
//!
//! Passage search and the outside-vehicle statistics read the corrected plate from here when
//! there is one; the console shows it beside the camera's read.
//!
//! What it never does: change the event itself (its body keeps what the gate journalled: the
//! camera's raw read, its confidence and its photos), validate the plate (the API has, with the
//! plate rules every route uses), decide who may correct which gate's events (the API does), or
//! write the change log (gates never see corrections).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use crate::central::db::{Actor, Db, Filter, RepoError, audit, now_ms};
use crate::domain::{Plate, PlateColour};

/// The kinds of events that name a vehicle's plate and can be corrected.
pub const CORRECTABLE: &[&str] = &["decision", "passage", "plate_ignored"];

/// An event's key: (gate, journal number, sequence number).
pub type EventKey = (i64, i64, i64);

/// A plate correction as the API and the pages show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Correction {
    pub gate_id: i64,
    pub journal_no: i64,
    pub seq: i64,
    /// The plate the event carried (the camera's raw read when it was no valid plate).
    pub original_plate: Option<String>,
    /// The camera's colour code, if it reported one.
    pub original_colour: Option<String>,
    /// The corrected plate, normalised.
    pub plate: String,
    /// The corrected colour code (`blue`, `yellow`, …), if given.
    pub colour: Option<String>,
    pub operator_id: Option<i64>,
    /// The operator's user name (empty if the operator was deleted).
    pub operator: String,
    pub at: DateTime<Utc>,
    pub note: String,
}

/// What a correction says.
#[derive(Debug, Clone)]
pub struct NewCorrection {
    pub plate: Plate,
    pub colour: Option<PlateColour>,
    /// Trimmed; may be empty.
    pub note: String,
}

/// Why an event cannot be corrected.
#[derive(Debug, thiserror::Error)]
pub enum CorrectionError {
    /// No stored event has that key.
    #[error("no such event")]
    NoSuchEvent,
    /// The event names no vehicle (a barrier movement, a device report, …).
    #[error("a {0} event names no plate")]
    NotCorrectable(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for CorrectionError {
    fn from(e: sqlx::Error) -> CorrectionError {
        CorrectionError::Repo(e.into())
    }
}

const SELECT: &str = "SELECT c.gate_id, c.journal_no, c.seq, c.original_plate, c.original_colour, \
     c.plate, c.colour, c.operator_id, COALESCE(o.username, '') AS operator_name, c.at_ms, c.note \
     FROM plate_corrections c LEFT JOIN operators o ON o.id = c.operator_id";

fn correction(r: &AnyRow) -> Result<Correction, RepoError> {
    Ok(Correction {
        gate_id: r.try_get("gate_id")?,
        journal_no: r.try_get("journal_no")?,
        seq: r.try_get("seq")?,
        original_plate: r.try_get("original_plate")?,
        original_colour: r.try_get("original_colour")?,
        plate: r.try_get("plate")?,
        colour: r.try_get("colour")?,
        operator_id: r.try_get("operator_id")?,
        operator: r.try_get("operator_name")?,
        at: at(r.try_get("at_ms")?),
        note: r.try_get("note")?,
    })
}

/// What an event shows of the vehicle: its plate column, else the camera's raw read, and the
/// camera's colour.
fn original(plate: Option<String>, body: &str) -> (Option<String>, Option<String>) {
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let camera = &body["camera"];
    let raw = camera["raw_plate"]
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let colour = camera["colour"].as_str().map(str::to_string);
    (plate.or(raw), colour)
}

/// Records `new` as the plate of event `key`, replacing an earlier correction, audited with
/// what it replaced. Refuses an event that does not exist or names no vehicle.
pub async fn correct(
    db: &Db,
    actor: &Actor,
    key: EventKey,
    new: &NewCorrection,
) -> Result<Correction, CorrectionError> {
    let (gate_id, journal_no, seq) = key;
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "SELECT kind, plate, body FROM passage_events \
         WHERE gate_id = $1 AND journal_no = $2 AND seq = $3",
    )
    .bind(gate_id)
    .bind(journal_no)
    .bind(seq)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CorrectionError::NoSuchEvent)?;
    let kind: String = row.try_get("kind").map_err(RepoError::from)?;
    if !CORRECTABLE.contains(&kind.as_str()) {
        return Err(CorrectionError::NotCorrectable(kind));
    }
    let (original_plate, original_colour) = original(
        row.try_get("plate").map_err(RepoError::from)?,
        &row.try_get::<String, _>("body").map_err(RepoError::from)?,
    );
    let earlier = fetch(&mut tx, key).await?;
    sqlx::query(
        "INSERT INTO plate_corrections (gate_id, journal_no, seq, original_plate, \
         original_colour, plate, colour, operator_id, at_ms, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (gate_id, journal_no, seq) DO UPDATE SET plate = excluded.plate, \
         colour = excluded.colour, operator_id = excluded.operator_id, at_ms = excluded.at_ms, \
         note = excluded.note",
    )
    .bind(gate_id)
    .bind(journal_no)
    .bind(seq)
    .bind(original_plate.clone())
    .bind(original_colour.clone())
    .bind(new.plate.as_str())
    .bind(new.colour.map(|c| c.as_str()))
    .bind(actor.operator_id)
    .bind(now_ms())
    .bind(new.note.as_str())
    .execute(&mut *tx)
    .await?;
    let after = fetch(&mut tx, key).await?.ok_or(RepoError::NotFound)?;
    // The outside-vehicle visit this event identified moves to the corrected plate, so the
    // statistics count what the guard saw, not what the camera misread.
    crate::central::outside::apply_correction(
        &mut tx,
        gate_id,
        journal_no,
        seq,
        new.plate.as_str(),
        new.colour.map(|c| c.as_str()),
    )
    .await?;
    // The audit entry says what the event showed before: the earlier correction, or the
    // event's own plate.
    let before = match &earlier {
        Some(c) => serde_json::to_value(c).unwrap_or_default(),
        None => serde_json::json!({ "plate": original_plate, "colour": original_colour }),
    };
    let after_json = serde_json::to_value(&after).unwrap_or_default();
    audit(
        &mut tx,
        actor,
        "plate_correction",
        "passage_event",
        format!("{gate_id}/{journal_no}/{seq}"),
        Some(&before),
        Some(&after_json),
    )
    .await?;
    tx.commit().await.map_err(RepoError::from)?;
    Ok(after)
}

async fn fetch(
    conn: &mut sqlx::AnyConnection,
    (gate_id, journal_no, seq): EventKey,
) -> Result<Option<Correction>, RepoError> {
    let sql = format!("{SELECT} WHERE c.gate_id = $1 AND c.journal_no = $2 AND c.seq = $3");
    sqlx::query(&sql)
        .bind(gate_id)
        .bind(journal_no)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(correction)
        .transpose()
}

/// The correction of event `key`, if any.
pub async fn get(db: &Db, key: EventKey) -> Result<Option<Correction>, RepoError> {
    let mut conn = db.pool().acquire().await?;
    fetch(&mut conn, key).await
}

/// The corrections of the events `keys` (a page's worth), by key.
pub async fn for_events(
    db: &Db,
    keys: &[EventKey],
) -> Result<HashMap<EventKey, Correction>, RepoError> {
    let mut out = HashMap::new();
    // Bounded statements: a page of events at a time.
    for chunk in keys.chunks(100) {
        let mut w = Filter::new();
        let any: Vec<String> = chunk
            .iter()
            .map(|(g, j, s)| {
                let (g, j, s) = (w.arg(*g), w.arg(*j), w.arg(*s));
                format!("(c.gate_id = {g} AND c.journal_no = {j} AND c.seq = {s})")
            })
            .collect();
        w.and(format!("({})", any.join(" OR ")));
        let sql = format!("{SELECT}{}", w.where_sql());
        for row in w.bind(sqlx::query(&sql)).fetch_all(db.pool()).await? {
            let c = correction(&row)?;
            out.insert((c.gate_id, c.journal_no, c.seq), c);
        }
    }
    Ok(out)
}
