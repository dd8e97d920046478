//! Guards' duty at a booth (值班: who is on duty at which gate, from sign-in to sign-off), the
//! handover notes one shift leaves the next (交接班, each linked to the duty it closes), the
//! duty records the office reads, and the serial numbers of visitor slips (临时通行单).
//!
//! What it never does: decide who may sign in where (the API checks the guard's gates), or
//! hand out a slip serial twice (a counter row incremented in the slip's own transaction).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::audit::at;
use crate::central::db::{Actor, Db, Filter, Op, RepoError, now_ms, write_change};

/// A duty record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Duty {
    pub id: i64,
    pub operator_id: i64,
    pub operator_name: String,
    pub gate_id: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A handover note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HandoverNote {
    pub id: i64,
    pub gate_id: i64,
    pub operator_name: String,
    pub at: DateTime<Utc>,
    /// Empty for the note a sign-off leaves when the guard wrote none.
    pub note: String,
    /// The duty it closes: its shift report is linked from the note.
    pub duty_id: Option<i64>,
}

const DUTY: &str = "SELECT d.id, d.operator_id, o.username, d.gate_id, d.started_ms, d.ended_ms \
    FROM duty_records d JOIN operators o ON o.id = d.operator_id";

fn row_to_duty(r: &sqlx::any::AnyRow) -> Duty {
    Duty {
        id: r.get(0),
        operator_id: r.get(1),
        operator_name: r.get(2),
        gate_id: r.get(3),
        started_at: at(r.get(4)),
        ended_at: r.get::<Option<i64>, _>(5).map(at),
    }
}

/// The operator's open duty, if they are on duty.
pub async fn current(db: &Db, operator_id: i64) -> Result<Option<Duty>, RepoError> {
    let row = sqlx::query(&format!(
        "{DUTY} WHERE d.operator_id = $1 AND d.ended_ms IS NULL ORDER BY d.id DESC LIMIT 1"
    ))
    .bind(operator_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(row_to_duty))
}

/// The operator's latest duty, open or ended.
pub async fn latest(db: &Db, operator_id: i64) -> Result<Option<Duty>, RepoError> {
    let row = sqlx::query(&format!(
        "{DUTY} WHERE d.operator_id = $1 ORDER BY d.started_ms DESC, d.id DESC LIMIT 1"
    ))
    .bind(operator_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(row_to_duty))
}

/// One duty record.
pub async fn get(db: &Db, id: i64) -> Result<Duty, RepoError> {
    let row = sqlx::query(&format!("{DUTY} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(RepoError::NotFound)?;
    Ok(row_to_duty(&row))
}

/// Which duty records to list: at one gate, overlapping `[from_ms, until_ms)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DutyQuery {
    pub gate_id: Option<i64>,
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Duty records matching `q`, newest first, at most `limit`.
pub async fn list(db: &Db, q: DutyQuery, limit: i64) -> Result<Vec<Duty>, RepoError> {
    let mut f = Filter::new();
    if let Some(g) = q.gate_id {
        f.and_args("d.gate_id = {}", vec![g.into()]);
    }
    if let Some(from) = q.from_ms {
        // Overlapping the range: still open, or ended after it began.
        f.and_args(
            "(d.ended_ms IS NULL OR d.ended_ms >= {})",
            vec![from.into()],
        );
    }
    if let Some(until) = q.until_ms {
        f.and_args("d.started_ms < {}", vec![until.into()]);
    }
    let l = f.arg(limit);
    let sql = format!(
        "{DUTY}{} ORDER BY d.started_ms DESC, d.id DESC LIMIT {l}",
        f.where_sql()
    );
    let rows = f.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    Ok(rows.iter().map(row_to_duty).collect())
}

/// Per gate: whether a guard is on duty there now, and when its last duty ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staffing {
    pub gate_id: i64,
    pub on_duty: bool,
    /// When the last duty there ended (`None`: nobody has ever been on duty there).
    pub last_ended_ms: Option<i64>,
}

/// The staffing of every gate that has a duty record, in one query.
pub async fn staffing(db: &Db) -> Result<Vec<Staffing>, RepoError> {
    let rows = sqlx::query(
        "SELECT gate_id, CAST(SUM(CASE WHEN ended_ms IS NULL THEN 1 ELSE 0 END) AS BIGINT), \
         MAX(ended_ms) FROM duty_records GROUP BY gate_id ORDER BY gate_id",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| Staffing {
            gate_id: r.get(0),
            on_duty: r.get::<i64, _>(1) > 0,
            last_ended_ms: r.get(2),
        })
        .collect())
}

/// Signs the operator in at `gate_id`, ending any duty they had open elsewhere.
pub async fn sign_in(db: &Db, actor: &Actor, gate_id: i64) -> Result<Duty, RepoError> {
    let operator_id = actor.operator_id.ok_or(RepoError::NotFound)?;
    let mut tx = db.begin().await?;
    let now = now_ms();
    sqlx::query(
        "UPDATE duty_records SET ended_ms = $1 WHERE operator_id = $2 AND ended_ms IS NULL",
    )
    .bind(now)
    .bind(operator_id)
    .execute(&mut *tx)
    .await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO duty_records (operator_id, gate_id, started_ms) VALUES ($1, $2, $3) \
         RETURNING id",
    )
    .bind(operator_id)
    .bind(gate_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let after = serde_json::json!({ "gate_id": gate_id });
    write_change(
        &mut tx,
        actor,
        Op::Audit("duty_start"),
        "duty",
        id,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    current(db, operator_id).await?.ok_or(RepoError::NotFound)
}

/// Ends the operator's open duty (a no-op when they have none).
pub async fn sign_off(db: &Db, actor: &Actor) -> Result<(), RepoError> {
    let Some(duty) = current(db, actor.operator_id.unwrap_or(-1)).await? else {
        return Ok(());
    };
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE duty_records SET ended_ms = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(duty.id)
        .execute(&mut *tx)
        .await?;
    write_change(
        &mut tx,
        actor,
        Op::Audit("duty_end"),
        "duty",
        duty.id,
        None::<&serde_json::Value>,
        None,
    )
    .await?;
    // The next shift finds the report from the notes: a duty that left none gets an empty one.
    let noted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM handover_notes WHERE duty_id = $1")
        .bind(duty.id)
        .fetch_one(&mut *tx)
        .await?;
    if noted == 0 {
        insert_note(
            &mut tx,
            actor,
            duty.operator_id,
            duty.gate_id,
            "",
            Some(duty.id),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Inserts a handover note (and its audit entry) on the caller's transaction.
async fn insert_note(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    operator_id: i64,
    gate_id: i64,
    note: &str,
    duty_id: Option<i64>,
) -> Result<(i64, i64), RepoError> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO handover_notes (gate_id, operator_id, at_ms, note, duty_id) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(gate_id)
    .bind(operator_id)
    .bind(now)
    .bind(note)
    .bind(duty_id)
    .fetch_one(&mut *tx)
    .await?;
    let after = serde_json::json!({ "gate_id": gate_id, "note": note, "duty_id": duty_id });
    write_change(
        tx,
        actor,
        Op::Audit("create"),
        "handover_note",
        id,
        None,
        Some(&after),
    )
    .await?;
    Ok((id, now))
}

/// Leaves a note for the next shift at `gate_id`, linked to the author's open duty there (its
/// shift report), if they are on duty at that gate.
pub async fn add_note(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    note: &str,
) -> Result<HandoverNote, RepoError> {
    let operator_id = actor.operator_id.ok_or(RepoError::NotFound)?;
    let duty_id = current(db, operator_id)
        .await?
        .filter(|d| d.gate_id == gate_id)
        .map(|d| d.id);
    let mut tx = db.begin().await?;
    let (id, now) = insert_note(&mut tx, actor, operator_id, gate_id, note, duty_id).await?;
    tx.commit().await?;
    Ok(HandoverNote {
        id,
        gate_id,
        operator_name: actor.name.clone(),
        at: at(now),
        note: note.to_string(),
        duty_id,
    })
}

/// The latest notes at `gate_id`, newest first.
pub async fn notes(db: &Db, gate_id: i64, limit: i64) -> Result<Vec<HandoverNote>, RepoError> {
    let rows = sqlx::query(
        "SELECT n.id, n.gate_id, o.username, n.at_ms, n.note, n.duty_id FROM handover_notes n \
         JOIN operators o ON o.id = n.operator_id WHERE n.gate_id = $1 \
         ORDER BY n.at_ms DESC, n.id DESC LIMIT $2",
    )
    .bind(gate_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| HandoverNote {
            id: r.get(0),
            gate_id: r.get(1),
            operator_name: r.get(2),
            at: at(r.get(3)),
            note: r.get(4),
            duty_id: r.get(5),
        })
        .collect())
}

/// A visitor slip's serial number: unique per site and year, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SlipSerial {
    pub visit_id: i64,
    pub year: i64,
    pub serial: i64,
    pub issued_at: DateTime<Utc>,
}

impl SlipSerial {
    /// As printed: `2026-000123`.
    pub fn text(&self) -> String {
        format!("{}-{:06}", self.year, self.serial)
    }
}

/// The serial of the visit's slip, if it has been printed.
pub async fn slip_serial(db: &Db, visit_id: i64) -> Result<Option<SlipSerial>, RepoError> {
    let row = sqlx::query(
        "SELECT visit_id, year, serial, issued_ms FROM visit_slips WHERE visit_id = $1",
    )
    .bind(visit_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| SlipSerial {
        visit_id: r.get(0),
        year: r.get(1),
        serial: r.get(2),
        issued_at: at(r.get(3)),
    }))
}

/// The visit's slip serial, given now (the next of `year`'s counter, audited) if it has none;
/// the same serial for every later call. Two callers at once get one serial between them: the
/// counter row is incremented in the transaction that stores the slip, and a slip stored by
/// the other caller first rolls this one's increment back.
pub async fn issue_slip(
    db: &Db,
    actor: &Actor,
    visit_id: i64,
    year: i64,
) -> Result<SlipSerial, RepoError> {
    if let Some(s) = slip_serial(db, visit_id).await? {
        return Ok(s);
    }
    let mut tx = db.begin().await?;
    let counter = format!("slip:{year}");
    let serial: i64 = sqlx::query_scalar(
        "INSERT INTO serial_counters (name, value) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET value = serial_counters.value + 1 RETURNING value",
    )
    .bind(&counter)
    .fetch_one(&mut *tx)
    .await?;
    let now = now_ms();
    let stored = sqlx::query(
        "INSERT INTO visit_slips (visit_id, year, serial, issued_ms, issued_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (visit_id) DO NOTHING RETURNING visit_id",
    )
    .bind(visit_id)
    .bind(year)
    .bind(serial)
    .bind(now)
    .bind(actor.operator_id)
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    if !stored {
        tx.rollback().await?;
        return slip_serial(db, visit_id).await?.ok_or(RepoError::NotFound);
    }
    let slip = SlipSerial {
        visit_id,
        year,
        serial,
        issued_at: at(now),
    };
    let after = serde_json::json!({ "serial": slip.text() });
    write_change(
        &mut tx,
        actor,
        Op::Audit("slip_issued"),
        "visit",
        visit_id,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(slip)
}
