//! The queue of commands waiting for a gate: queued with an audit entry, fetched by the
//! gate's long poll, acknowledged by the gate (audited), read back by the sender.
//!
//! What it never does: carry a command out or decide who may send one.

use sqlx::Row;

use crate::central::db::{Actor, Db, RepoError, audit, now_ms};

/// Queues a command for a gate; returns its id.
pub async fn queue_command(
    db: &Db,
    gate_id: i64,
    body: &serde_json::Value,
    actor: &Actor,
    ttl_ms: i64,
) -> Result<i64, RepoError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO gate_commands (gate_id, body, actor, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(gate_id)
    .bind(body.to_string())
    .bind(&actor.name)
    .bind(now)
    .bind(now + ttl_ms)
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        actor,
        "gate_command",
        "gate",
        gate_id,
        None,
        Some(&serde_json::json!({ "command_id": id, "command": body })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Commands waiting for `gate_id` (not acknowledged, not expired), oldest first.
pub async fn pending_commands(
    db: &Db,
    gate_id: i64,
) -> Result<Vec<(i64, serde_json::Value)>, RepoError> {
    let rows = sqlx::query(
        "SELECT id, body FROM gate_commands WHERE gate_id = $1 AND acked_ms IS NULL \
         AND expires_ms > $2 ORDER BY id",
    )
    .bind(gate_id)
    .bind(now_ms())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let body: String = r.try_get("body")?;
            Ok((
                r.try_get("id")?,
                serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            ))
        })
        .collect()
}

/// The gates that commands numbered above `after` were queued for (the sync server wakes
/// only their long polls).
pub async fn command_gates_after(db: &Db, after: i64) -> Result<Vec<i64>, RepoError> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT gate_id FROM gate_commands WHERE id > $1")
            .bind(after)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Records a gate's acknowledgement of its own command (another gate's id is `NotFound`).
/// Returns when it was acknowledged.
pub async fn ack_command(
    db: &Db,
    gate_id: i64,
    id: i64,
    done: bool,
    detail: &str,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let n = sqlx::query(
        "UPDATE gate_commands SET acked_ms = $3, outcome = $4, detail = $5 \
         WHERE id = $1 AND gate_id = $2 AND acked_ms IS NULL",
    )
    .bind(id)
    .bind(gate_id)
    .bind(now_ms())
    .bind(if done { "done" } else { "refused" })
    .bind(detail)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM gate_commands WHERE id = $1 AND gate_id = $2")
                .bind(id)
                .bind(gate_id)
                .fetch_optional(&mut *tx)
                .await?;
        return match exists {
            Some(_) => Ok(()), // a repeated acknowledgement
            None => Err(RepoError::NotFound),
        };
    }
    audit(
        &mut tx,
        &Actor {
            operator_id: None,
            name: format!("gate:{gate_id}"),
        },
        "gate_command_ack",
        "gate",
        gate_id,
        None,
        Some(&serde_json::json!({ "command_id": id, "done": done, "detail": detail })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A command's outcome: `None` while unacknowledged; else (acked at, done, detail).
pub async fn command_outcome(db: &Db, id: i64) -> Result<Option<(i64, bool, String)>, RepoError> {
    let r = sqlx::query("SELECT acked_ms, outcome, detail FROM gate_commands WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    let acked: Option<i64> = r.try_get("acked_ms")?;
    Ok(match acked {
        None => None,
        Some(a) => Some((
            a,
            r.try_get::<Option<String>, _>("outcome")?.as_deref() == Some("done"),
            r.try_get("detail")?,
        )),
    })
}
