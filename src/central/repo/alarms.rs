//! One-button alarms (一键报警) raised at a booth, the security office's acknowledgement, and
//! the alarm webhook's address (the police link).
//!
//! What it never does: call the webhook (the API does, off the request path, and records the
//! outcome here with [`set_webhook_status`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::at;
use crate::central::db::{Actor, Db, RepoError, audit, now_ms};

/// An alarm as the office sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Alarm {
    pub id: i64,
    pub gate_id: i64,
    pub gate_name: String,
    /// What raised it: `manual` (the booth's button) or a system kind (see
    /// [`crate::central::alarms`]).
    pub kind: String,
    /// Who pressed the button (`system` for a system alarm).
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    pub note: String,
    /// `none` (no webhook configured), `pending`, `sent` or `failed`.
    pub webhook_status: String,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT a.id, a.gate_id, g.name, COALESCE(o.username, 'system'), \
    a.raised_ms, a.note, a.webhook_status, a.acknowledged_ms, a.kind FROM alarms a \
    JOIN gates g ON g.id = a.gate_id LEFT JOIN operators o ON o.id = a.raised_by";

fn row_to_alarm(r: &AnyRow) -> Alarm {
    Alarm {
        id: r.get(0),
        gate_id: r.get(1),
        gate_name: r.get(2),
        raised_by: r.get(3),
        raised_at: at(r.get(4)),
        note: r.get(5),
        webhook_status: r.get(6),
        acknowledged_at: r.get::<Option<i64>, _>(7).map(at),
        kind: r.get(8),
    }
}

/// Raises an alarm of `kind` at `gate_id` (and writes its audit entry). Callers go through
/// [`crate::central::alarms::raise`], which also tells the office and calls the webhook.
pub async fn raise(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    kind: &str,
    note: &str,
    webhook_status: &str,
) -> Result<Alarm, RepoError> {
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO alarms (gate_id, raised_by, raised_ms, note, webhook_status, kind) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(gate_id)
    .bind(actor.operator_id)
    .bind(now_ms())
    .bind(note)
    .bind(webhook_status)
    .bind(kind)
    .fetch_one(&mut *tx)
    .await?;
    let after = serde_json::json!({ "gate_id": gate_id, "kind": kind, "note": note });
    audit(&mut tx, actor, "raise", "alarm", id, None, Some(&after)).await?;
    tx.commit().await?;
    get(db, id).await
}

/// One alarm.
pub async fn get(db: &Db, id: i64) -> Result<Alarm, RepoError> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(RepoError::NotFound)?;
    Ok(row_to_alarm(&row))
}

/// Records what the webhook answered.
pub async fn set_webhook_status(db: &Db, id: i64, status: &str) -> Result<(), RepoError> {
    sqlx::query("UPDATE alarms SET webhook_status = $1 WHERE id = $2")
        .bind(status)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The office acknowledges an alarm. `Ok(false)` if it already was.
pub async fn acknowledge(db: &Db, actor: &Actor, id: i64) -> Result<bool, RepoError> {
    get(db, id).await?;
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE alarms SET acknowledged_by = $1, acknowledged_ms = $2 \
         WHERE id = $3 AND acknowledged_ms IS NULL",
    )
    .bind(actor.operator_id)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        audit(&mut tx, actor, "acknowledge", "alarm", id, None, None).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// The latest alarms, unacknowledged first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Alarm>, RepoError> {
    let rows = sqlx::query(&format!(
        "{SELECT} ORDER BY CASE WHEN a.acknowledged_ms IS NULL THEN 0 ELSE 1 END, a.raised_ms DESC \
         LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(row_to_alarm).collect())
}

/// The webhook's URL, if one is configured and enabled.
pub async fn webhook(db: &Db) -> Result<Option<String>, RepoError> {
    let row = sqlx::query("SELECT url, enabled FROM alarm_webhook WHERE id = 1")
        .fetch_optional(db.pool())
        .await?;
    Ok(row.and_then(|r| (r.get::<i64, _>(1) != 0).then(|| r.get::<String, _>(0))))
}

/// Sets (or, with `None`, disables) the webhook.
pub async fn set_webhook(db: &Db, actor: &Actor, url: Option<&str>) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO alarm_webhook (id, url, enabled, updated_ms) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET url = $1, enabled = $2, updated_ms = $3",
    )
    .bind(url.unwrap_or(""))
    .bind(i64::from(url.is_some()))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let after = serde_json::json!({ "url": url });
    audit(
        &mut tx,
        actor,
        "update",
        "alarm_webhook",
        1,
        None,
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
