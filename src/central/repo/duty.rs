//! Guards' duty at a booth (值班: who is on duty at which gate, from sign-in to sign-off) and
//! the handover notes one shift leaves the next (交接班).
//!
//! What it never does: decide who may sign in where (the API checks the guard's gates).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::audit::at;
use crate::central::db::{Actor, Db, Op, RepoError, now_ms, write_change};

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
    pub note: String,
}

/// The operator's open duty, if they are on duty.
pub async fn current(db: &Db, operator_id: i64) -> Result<Option<Duty>, RepoError> {
    let row = sqlx::query(
        "SELECT d.id, d.operator_id, o.username, d.gate_id, d.started_ms, d.ended_ms \
         FROM duty_records d JOIN operators o ON o.id = d.operator_id \
         WHERE d.operator_id = $1 AND d.ended_ms IS NULL ORDER BY d.id DESC LIMIT 1",
    )
    .bind(operator_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| Duty {
        id: r.get(0),
        operator_id: r.get(1),
        operator_name: r.get(2),
        gate_id: r.get(3),
        started_at: at(r.get(4)),
        ended_at: r.get::<Option<i64>, _>(5).map(at),
    }))
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
    tx.commit().await?;
    Ok(())
}

/// Leaves a note for the next shift at `gate_id`.
pub async fn add_note(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    note: &str,
) -> Result<HandoverNote, RepoError> {
    let operator_id = actor.operator_id.ok_or(RepoError::NotFound)?;
    let mut tx = db.begin().await?;
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO handover_notes (gate_id, operator_id, at_ms, note) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(gate_id)
    .bind(operator_id)
    .bind(now)
    .bind(note)
    .fetch_one(&mut *tx)
    .await?;
    let after = serde_json::json!({ "gate_id": gate_id, "note": note });
    write_change(
        &mut tx,
        actor,
        Op::Audit("create"),
        "handover_note",
        id,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(HandoverNote {
        id,
        gate_id,
        operator_name: actor.name.clone(),
        at: at(now),
        note: note.to_string(),
    })
}

/// The latest notes at `gate_id`, newest first.
pub async fn notes(db: &Db, gate_id: i64, limit: i64) -> Result<Vec<HandoverNote>, RepoError> {
    let rows = sqlx::query(
        "SELECT n.id, n.gate_id, o.username, n.at_ms, n.note FROM handover_notes n \
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
        })
        .collect())
}
