//! Campus-wide presence: passages uploaded by the gates, queued and then published to every
//! gate through the change log.
//!
//! What it never does: decide anti-passback (the gates do, from what this publishes).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, Row};

use super::PRESENCE_BATCH;
use crate::central::db::{Db, DbKind, RepoError};
use crate::wire::journal::{EventBody, JournalEvent};

/// Records campus-wide presence from the passage events an ingest has just stored (entries
/// inside, exits outside), in the ingest's transaction, and queues the vehicles it changed for
/// [`publish_presence`] (one `presence_pending` row, the vehicle ids comma-separated). A passage
/// older than the recorded one changes nothing. Returns how many vehicles changed.
///
/// It does not write the change log itself: on PostgreSQL the change log's trigger takes a
/// transaction-wide advisory lock (and NOTIFY a commit-time one), which would serialise the
/// commits of all concurrent uploads, each waiting out the others' WAL flushes. The presence
/// rows are taken in one order (by vehicle, in multi-row upserts): taking them in hash order
/// deadlocked concurrent uploads.
pub async fn record_presence(
    conn: &mut AnyConnection,
    gate_id: i64,
    events: &[&JournalEvent],
) -> Result<u64, RepoError> {
    let mut latest: BTreeMap<i64, (bool, i64)> = BTreeMap::new();
    for e in events {
        if let EventBody::Passage {
            direction,
            vehicle_id: Some(v),
            ..
        } = &e.body
        {
            let inside = direction == "entry";
            let at = e.at.timestamp_millis();
            let slot = latest.entry(*v).or_insert((inside, at));
            if at >= slot.1 {
                *slot = (inside, at);
            }
        }
    }
    if latest.is_empty() {
        return Ok(0);
    }
    const UPSERT: &str = " ON CONFLICT (vehicle_id) DO UPDATE SET inside = excluded.inside, \
         since_ms = excluded.since_ms, gate_id = excluded.gate_id \
         WHERE vehicle_presence.since_ms <= excluded.since_ms RETURNING vehicle_id";
    let rows: Vec<(i64, (bool, i64))> = latest.into_iter().collect();
    let mut changed: Vec<i64> = Vec::new();
    if crate::central::db::kind_of(conn) == DbKind::Postgres {
        // One statement whose text never changes (prepared once per connection): the rows as
        // one JSON parameter, unpacked in their (vehicle) order.
        let json: Vec<[i64; 4]> = rows
            .iter()
            .map(|(v, (inside, at))| [*v, i64::from(*inside), *at, gate_id])
            .collect();
        let sql = format!(
            "INSERT INTO vehicle_presence (vehicle_id, inside, since_ms, gate_id) \
             SELECT (r->>0)::bigint, (r->>1)::bigint, (r->>2)::bigint, (r->>3)::bigint \
             FROM json_array_elements($1::json) AS r{UPSERT}"
        );
        for r in sqlx::query(&sql)
            .bind(serde_json::to_string(&json).expect("integers serialise"))
            .fetch_all(&mut *conn)
            .await?
        {
            changed.push(r.try_get("vehicle_id")?);
        }
    }
    let sqlite_rows: &[(i64, (bool, i64))] = match crate::central::db::kind_of(conn) {
        DbKind::Sqlite => &rows,
        DbKind::Postgres => &[],
    };
    for chunk in sqlite_rows.chunks(SQLITE_PRESENCE_CHUNK) {
        let mut sql = String::from(
            "INSERT INTO vehicle_presence (vehicle_id, inside, since_ms, gate_id) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 4;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        sql.push_str(UPSERT);
        let mut q = sqlx::query(&sql);
        for (vehicle, (inside, at)) in chunk {
            q = q
                .bind(*vehicle)
                .bind(i64::from(*inside))
                .bind(*at)
                .bind(gate_id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            changed.push(r.try_get("vehicle_id")?);
        }
    }
    if changed.is_empty() {
        return Ok(0);
    }
    changed.sort_unstable();
    sqlx::query("INSERT INTO presence_pending (vehicles) VALUES ($1)")
        .bind(id_list(&changed))
        .execute(&mut *conn)
        .await?;
    Ok(changed.len() as u64)
}

/// Announces the presence changes uploads have queued ([`record_presence`]) to every gate: all
/// pending rows become **one** change-log entry ([`PRESENCE_BATCH`], the vehicle ids
/// comma-separated) that the gates learn from their next delta, in one transaction (what it
/// takes is announced, or stays pending). Concurrent publishers (instances on one PostgreSQL)
/// each take different rows. Returns how many vehicles it announced.
pub async fn publish_presence(db: &Db) -> Result<u64, RepoError> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query("DELETE FROM presence_pending RETURNING vehicles")
        .fetch_all(&mut *tx)
        .await?;
    let mut vehicles = BTreeSet::new();
    for r in rows {
        let list: String = r.try_get("vehicles")?;
        vehicles.extend(list.split(',').filter_map(|v| v.parse::<i64>().ok()));
    }
    let vehicles: Vec<i64> = vehicles.into_iter().collect();
    if !vehicles.is_empty() {
        crate::central::db::record_change(&mut tx, PRESENCE_BATCH, id_list(&vehicles), "upsert")
            .await?;
    }
    tx.commit().await?;
    Ok(vehicles.len() as u64)
}

/// Vehicle ids as the change log and the pending queue spell them: `1,5,9`.
fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Rows per multi-row presence statement on SQLite (4 parameters each).
const SQLITE_PRESENCE_CHUNK: usize = 200;
