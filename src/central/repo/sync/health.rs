//! What the centre knows of each gate's link: last contact, health reports and clock offset,
//! and the gaps and watermarks of its uploaded journals (with the gap alarm).
//!
//! What it never does: talk to a gate or judge a report beyond the clock warning.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{CLOCK_WARNING_MS, SILENT_AFTER_MS, change_head};
use crate::central::db::{Actor, Db, DbKind, RepoError, audit, now_ms};
use crate::central::repo::audit::at;
use crate::wire::journal::{EventBody, JournalEvent};

/// Records that the gate was heard from now (creating its row on first contact).
pub async fn touch(db: &Db, gate_id: i64, data_version: Option<u64>) -> Result<(), RepoError> {
    let now = now_ms();
    let v = data_version.map(|v| v as i64);
    sqlx::query(
        "INSERT INTO sync_gates (gate_id, last_seen_ms, data_version) VALUES ($1, $2, COALESCE($3, 0)) \
         ON CONFLICT (gate_id) DO UPDATE SET last_seen_ms = $2, \
         data_version = COALESCE($3, sync_gates.data_version)",
    )
    .bind(gate_id)
    .bind(now)
    .bind(v)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// [`touch`] for several gates at once: how the sync server writes the contacts of its long
/// polls, gathered. One statement for the gates that named a data version and one for those
/// that did not, whatever their number: a statement per gate was a tenth of PostgreSQL's time
/// with 250 gates polling (`gatehouse sim fleet`, benches/README.md). Rows go in gate order, so
/// two instances writing overlapping sets lock them in the same order.
pub async fn touch_many(db: &Db, contacts: &[(i64, Option<u64>)]) -> Result<(), RepoError> {
    #[derive(Serialize)]
    struct Contact {
        g: i64,
        v: i64,
    }
    let mut with: Vec<Contact> = Vec::new();
    let mut without: Vec<Contact> = Vec::new();
    for &(g, version) in contacts {
        match version {
            Some(v) => with.push(Contact { g, v: v as i64 }),
            None => without.push(Contact { g, v: 0 }),
        }
    }
    with.sort_by_key(|c| c.g);
    without.sort_by_key(|c| c.g);
    let rows = match db.kind() {
        DbKind::Postgres => "json_to_recordset($2::json) AS t(g bigint, v bigint)",
        DbKind::Sqlite => {
            "(SELECT json_extract(value, '$.g') AS g, json_extract(value, '$.v') AS v \
             FROM json_each($2))"
        }
    };
    let now = now_ms();
    for (list, keep_version) in [(with, false), (without, true)] {
        if list.is_empty() {
            continue;
        }
        let update = if keep_version {
            "last_seen_ms = excluded.last_seen_ms"
        } else {
            "last_seen_ms = excluded.last_seen_ms, data_version = excluded.data_version"
        };
        // `WHERE true`: SQLite's parser needs it to tell the upsert from a join's ON.
        sqlx::query(&format!(
            "INSERT INTO sync_gates (gate_id, last_seen_ms, data_version) \
             SELECT g, $1, v FROM {rows} WHERE true \
             ON CONFLICT (gate_id) DO UPDATE SET {update}"
        ))
        .bind(now)
        .bind(serde_json::to_string(&list).expect("contacts always serialise"))
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

/// Stores a health report and the clock offset measured from it.
pub async fn record_health(
    db: &Db,
    gate_id: i64,
    data_version: u64,
    clock_offset_ms: i64,
    health: &serde_json::Value,
) -> Result<(), RepoError> {
    sqlx::query(
        "INSERT INTO sync_gates (gate_id, last_seen_ms, data_version, clock_offset_ms, health) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (gate_id) DO UPDATE SET last_seen_ms = $2, \
         data_version = $3, clock_offset_ms = $4, health = $5",
    )
    .bind(gate_id)
    .bind(now_ms())
    .bind(data_version as i64)
    .bind(clock_offset_ms)
    .bind(health.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A gate's sync health as the office sees it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GateHealth {
    pub gate_id: i64,
    pub name: String,
    /// The gate has not been heard from for [`SILENT_AFTER_MS`] (or never).
    pub silent: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The data version the gate last reported (compare with `central_version`).
    pub data_version: i64,
    pub central_version: i64,
    /// Gate clock minus centre clock, in milliseconds.
    pub clock_offset_ms: i64,
    /// The offset is above 5 s (GB 50396).
    pub clock_warning: bool,
    /// The events of the gate's newest journal stored centrally without gaps, and the first
    /// missing sequence number if a gap exists above them.
    pub events_watermark: i64,
    pub missing_from: Option<i64>,
    pub missing_to: Option<i64>,
    /// The gate's last health report (devices, lane modes, journal fill); `null` until the
    /// gate has sent one.
    #[schema(value_type = Option<Object>)]
    pub report: serde_json::Value,
}

/// Every gate's sync health, by gate id.
pub async fn health(db: &Db) -> Result<Vec<GateHealth>, RepoError> {
    let central = change_head(db).await? as i64;
    let now = now_ms();
    let rows = sqlx::query(
        "SELECT g.id, g.name, s.last_seen_ms, s.data_version, s.clock_offset_ms, s.health, \
         w.journal_no, w.contiguous_seq FROM gates g LEFT JOIN sync_gates s ON s.gate_id = g.id \
         LEFT JOIN passage_event_watermarks w ON w.gate_id = g.id AND w.journal_no = \
         (SELECT MAX(x.journal_no) FROM passage_event_watermarks x WHERE x.gate_id = g.id) \
         ORDER BY g.id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let gate_id: i64 = r.try_get("id")?;
        let last: Option<i64> = r.try_get("last_seen_ms")?;
        let offset: i64 = r.try_get::<Option<i64>, _>("clock_offset_ms")?.unwrap_or(0);
        let watermark: i64 = r.try_get::<Option<i64>, _>("contiguous_seq")?.unwrap_or(0);
        let journal_no: i64 = r.try_get::<Option<i64>, _>("journal_no")?.unwrap_or(0);
        let gap = gap(db, gate_id, journal_no, watermark).await?;
        out.push(GateHealth {
            gate_id,
            name: r.try_get("name")?,
            silent: last.is_none_or(|l| now - l > SILENT_AFTER_MS),
            last_seen_at: last.map(at),
            data_version: r.try_get::<Option<i64>, _>("data_version")?.unwrap_or(0),
            central_version: central,
            clock_offset_ms: offset,
            clock_warning: offset.abs() > CLOCK_WARNING_MS,
            events_watermark: watermark,
            missing_from: gap.map(|g| g.0),
            missing_to: gap.map(|g| g.1),
            report: r
                .try_get::<Option<String>, _>("health")?
                .and_then(|h| serde_json::from_str(&h).ok())
                .unwrap_or(serde_json::Value::Null),
        });
    }
    Ok(out)
}

/// The first run of missing sequence numbers of the gate's journal `journal_no` above
/// `watermark`, if events above it are stored.
pub async fn gap(
    db: &Db,
    gate_id: i64,
    journal_no: i64,
    watermark: i64,
) -> Result<Option<(i64, i64)>, RepoError> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(seq) FROM passage_events WHERE gate_id = $1 AND journal_no = $2 AND seq > $3",
    )
    .bind(gate_id)
    .bind(journal_no)
    .bind(watermark)
    .fetch_one(db.pool())
    .await?;
    Ok(next.map(|n| (watermark + 1, n - 1)))
}

/// Raises the gap alarm once per watermark: writes an `event_gap` audit entry when the gate's
/// uploads leave a gap that was not alarmed at this watermark yet. Returns the gap if it raised.
pub async fn alarm_gap(
    db: &Db,
    gate_id: i64,
    journal_no: i64,
    watermark: i64,
) -> Result<Option<(i64, i64)>, RepoError> {
    let Some(g) = gap(db, gate_id, journal_no, watermark).await? else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    let changed = sqlx::query(
        "UPDATE sync_gates SET gap_alarm_seq = $2 WHERE gate_id = $1 AND gap_alarm_seq <> $2",
    )
    .bind(gate_id)
    .bind(watermark)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    audit(
        &mut tx,
        &Actor::system(),
        "event_gap",
        "gate",
        gate_id,
        None,
        Some(&serde_json::json!({
            "journal_no": journal_no,
            "missing_from": g.0,
            "missing_to": g.1,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(g))
}

/// Per gate, a text that changes whenever what the live pages show of its sync row does: its
/// report, data version, gap alarm, and whether it has gone silent ([`SILENT_AFTER_MS`]). Not
/// the time of its last contact itself, nor its clock offset: those move at every request and
/// every report, and a signature that moved with them made the relay announce every gate
/// twice a second (1,000 gates: 2,000 messages a second to every console, each re-rendering
/// health that had not changed).
pub async fn gate_signatures(db: &Db) -> Result<Vec<(i64, String)>, RepoError> {
    let now = crate::central::db::now_ms();
    let rows = sqlx::query(
        "SELECT gate_id, last_seen_ms, data_version, gap_alarm_seq, health FROM sync_gates",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("gate_id")?,
                format!(
                    "{}|{}|{}|{}",
                    now - r.try_get::<i64, _>("last_seen_ms")? > SILENT_AFTER_MS,
                    r.try_get::<i64, _>("data_version")?,
                    r.try_get::<i64, _>("gap_alarm_seq")?,
                    r.try_get::<String, _>("health")?
                ),
            ))
        })
        .collect()
}

/// Every gate journal's event watermark (highest contiguous sequence stored), as
/// ((gate, journal number), watermark).
pub async fn watermarks(db: &Db) -> Result<Vec<((i64, i64), u64)>, RepoError> {
    let rows =
        sqlx::query("SELECT gate_id, journal_no, contiguous_seq FROM passage_event_watermarks")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("gate_id")?, r.try_get("journal_no")?),
                r.try_get::<i64, _>("contiguous_seq")?.max(0) as u64,
            ))
        })
        .collect()
}

/// A gate journal's stored events with `after < seq <= upto` (at most 1,000), in sequence
/// order, as the gate sent them.
pub async fn events_between(
    db: &Db,
    (gate_id, journal_no): (i64, i64),
    after: u64,
    upto: u64,
) -> Result<Vec<JournalEvent>, RepoError> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, lane, body FROM passage_events WHERE gate_id = $1 \
         AND journal_no = $4 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT 1000",
    )
    .bind(gate_id)
    .bind(after as i64)
    .bind(upto as i64)
    .bind(journal_no)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: String = r.try_get("body")?;
        let Ok(body) = serde_json::from_str::<EventBody>(&body) else {
            continue;
        };
        out.push(JournalEvent {
            seq: r.try_get::<i64, _>("seq")? as u64,
            at: at(r.try_get("at_ms")?),
            lane: r.try_get("lane")?,
            body,
        });
    }
    Ok(out)
}

/// When the gate was last heard from (centre clock, UTC ms), if ever.
pub async fn last_seen(db: &Db, gate_id: i64) -> Result<Option<i64>, RepoError> {
    Ok(
        sqlx::query_scalar("SELECT last_seen_ms FROM sync_gates WHERE gate_id = $1")
            .bind(gate_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Audits a refused sync request (e.g. a gate posting another gate's events).
pub async fn audit_refusal(
    db: &Db,
    gate_id: i64,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    audit(
        &mut tx,
        &Actor {
            operator_id: None,
            name: format!("gate:{gate_id}"),
        },
        action,
        "gate",
        gate_id,
        None,
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
