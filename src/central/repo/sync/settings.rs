//! A gate's settings as the gates read them (mode, anti-passback, offline policy, lanes, the
//! site's public visitor-pass keys), and
//! the campus-wide mode change that sets every gate's mode at once.
//!
//! What it never does: check who may change a mode (the API's policy does).

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::central::db::{Actor, Db, RepoError, audit, now_ms};
use crate::wire::sync::{GateSettings, LaneSettings};

/// The gate's own settings, or `None` if the gate does not exist.
pub async fn gate_settings(
    conn: &mut AnyConnection,
    gate_id: i64,
) -> Result<Option<GateSettings>, RepoError> {
    let Some(g) =
        sqlx::query("SELECT mode, anti_passback, offline_policy, enabled FROM gates WHERE id = $1")
            .bind(gate_id)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(None);
    };
    let lanes = sqlx::query(
        "SELECT lane_key, mode, settings FROM lanes WHERE gate_id = $1 ORDER BY lane_key",
    )
    .bind(gate_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(LaneSettings {
            lane: r.try_get("lane_key")?,
            mode: r.try_get("mode")?,
            settings: r.try_get("settings")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(GateSettings {
        mode: g.try_get("mode")?,
        anti_passback: g.try_get("anti_passback")?,
        offline_policy: g.try_get("offline_policy")?,
        enabled: g.try_get::<i64, _>("enabled")? != 0,
        lanes,
        pass_keys: crate::central::repo::passes::keys_for_gates(conn, now_ms()).await?,
    }))
}

/// Every gate's settings, by gate id, in three reads (gates, lanes, pass keys) whatever the
/// number of gates: what a step that changes every gate's settings sends.
pub async fn all_gate_settings(
    conn: &mut AnyConnection,
) -> Result<HashMap<i64, GateSettings>, RepoError> {
    let mut lanes: HashMap<i64, Vec<LaneSettings>> = HashMap::new();
    for r in sqlx::query(
        "SELECT gate_id, lane_key, mode, settings FROM lanes ORDER BY gate_id, lane_key",
    )
    .fetch_all(&mut *conn)
    .await?
    {
        lanes
            .entry(r.try_get("gate_id")?)
            .or_default()
            .push(LaneSettings {
                lane: r.try_get("lane_key")?,
                mode: r.try_get("mode")?,
                settings: r.try_get("settings")?,
            });
    }
    let pass_keys = crate::central::repo::passes::keys_for_gates(conn, now_ms()).await?;
    let mut out = HashMap::new();
    for g in sqlx::query("SELECT id, mode, anti_passback, offline_policy, enabled FROM gates")
        .fetch_all(&mut *conn)
        .await?
    {
        let id: i64 = g.try_get("id")?;
        out.insert(
            id,
            GateSettings {
                mode: g.try_get("mode")?,
                anti_passback: g.try_get("anti_passback")?,
                offline_policy: g.try_get("offline_policy")?,
                enabled: g.try_get::<i64, _>("enabled")? != 0,
                lanes: lanes.remove(&id).unwrap_or_default(),
                pass_keys: pass_keys.clone(),
            },
        );
    }
    Ok(out)
}

/// Whether the gate is enabled, or `None` if the gate does not exist (one indexed read: the
/// sync endpoints check it on every request).
pub async fn gate_enabled(db: &Db, gate_id: i64) -> Result<Option<bool>, RepoError> {
    let enabled: Option<i64> = sqlx::query_scalar("SELECT enabled FROM gates WHERE id = $1")
        .bind(gate_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(enabled.map(|e| e != 0))
}

/// Sets every gate's mode in one transaction (campus-wide lockdown or evacuation), each gate's
/// change audited as `set_mode` with the reason and logged for the gates. Returns the ids of
/// the gates whose mode changed.
///
/// The transaction's first statement is a write, so on SQLite it holds the write lock from the
/// start: a read-then-write transaction fails at once (SQLITE_BUSY) when another connection
/// commits in between, which the gates' sync traffic makes likely.
pub async fn set_campus_mode(
    db: &Db,
    actor: &Actor,
    mode: &str,
    reason: &str,
) -> Result<Vec<i64>, RepoError> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE gates SET updated_ms = updated_ms WHERE 1 = 0")
        .execute(&mut *tx)
        .await?;
    let before = sqlx::query("SELECT id, mode FROM gates WHERE mode <> $1 ORDER BY id")
        .bind(mode)
        .fetch_all(&mut *tx)
        .await?;
    let now = now_ms();
    let mut changed = Vec::with_capacity(before.len());
    for r in before {
        let id: i64 = r.try_get("id")?;
        let old: String = r.try_get("mode")?;
        sqlx::query("UPDATE gates SET mode = $1, updated_ms = $2 WHERE id = $3")
            .bind(mode)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            actor,
            "set_mode",
            crate::central::repo::gates::GATE,
            id,
            Some(&serde_json::json!({ "mode": old })),
            Some(&serde_json::json!({ "mode": mode, "reason": reason, "campus_wide": true })),
        )
        .await?;
        crate::central::db::record_change(&mut tx, crate::central::repo::gates::GATE, id, "upsert")
            .await?;
        changed.push(id);
    }
    tx.commit().await?;
    Ok(changed)
}
