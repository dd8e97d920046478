//! Passage events as the gates upload them: stored idempotently on (gate, sequence number), with
//! the fields the office filters on (plate, vehicle, permit, direction, granted, reason) copied
//! out of the event body, and read back newest first.
//!
//! [`ingest`] keeps the gate's original time (`at_ms`) beside the centre's (`received_ms`),
//! advances the gate's **watermark**: the highest sequence number up to which every event is
//! stored, which is what the centre acknowledges to the gate, and folds exactly the events it
//! stored into the traffic statistics ([`crate::central::stats`]) and the campus-wide presence
//! ([`super::sync::record_presence`]) in the same transaction.
//!
//! What it never does: change or delete a stored event (a re-sent event is counted as a
//! duplicate and ignored, even if its body differs), authenticate a gate (the sync layer does),
//! or decide who may read which gate's events (the API passes [`EventQuery::only_gates`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use super::sync;
use crate::central::db::Filter;
use crate::central::db::{Db, DbKind, Page, Paged, RepoError, now_ms};
use crate::central::stats;
use crate::domain::Plate;
use crate::gate::journal::{EventBody, JournalEvent};

/// Events per INSERT statement on PostgreSQL (one JSON parameter, see [`insert_pg`]): an
/// upload of a gate's usual batch is one statement, and a huge one is bounded in memory.
const PG_BATCH: usize = 5_000;
/// Events per INSERT statement on SQLite. SQLite is in-process (no round trips), and through
/// sqlx a statement with thousands of parameters is slower per row than a small one reused from
/// the statement cache (measured: 5,000 events in ~1.2 s at 500 a statement, ~65 ms at 10,
/// ~105 ms at 50, ~120 ms at 1).
const SQLITE_BATCH: usize = 10;

/// What an [`ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Events stored now.
    pub stored: u64,
    /// The sequence numbers of the events stored now, ascending (the database's own answer,
    /// from `INSERT … RETURNING`): what the live view publishes and the statistics count.
    pub stored_seqs: Vec<u64>,
    /// Events that were already stored (or repeated within the upload) and were ignored.
    pub duplicates: u64,
    /// The gate's watermark after this upload: every event 1..=this is stored.
    pub highest_contiguous: u64,
    /// Vehicles whose campus-wide presence this upload changed (queued for announcement).
    #[serde(skip)]
    pub presence_changed: u64,
}

/// A stored passage event as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PassageEvent {
    pub gate_id: i64,
    /// The gate's sequence number.
    pub seq: i64,
    /// The lane's key within its gate.
    pub lane: String,
    /// `decision`, `barrier`, `passage`, `override`, `mode_change`, `device`, `lane_fault`,
    /// `tag_ignored`, `journal_alarm` or `journal_write_failed`.
    pub kind: String,
    /// When it happened, by the gate's clock.
    pub at: DateTime<Utc>,
    /// When the centre stored it.
    pub received_at: DateTime<Utc>,
    pub plate: Option<String>,
    pub vehicle_id: Option<i64>,
    pub permit_id: Option<i64>,
    /// `entry` or `exit`, for decisions and passages.
    pub direction: Option<String>,
    /// For decisions: whether the credential was granted.
    pub granted: Option<bool>,
    /// The decision's reason code (`granted`, `denied_revoked`, …) or a guard override's reason.
    pub reason: Option<String>,
    /// The event as the gate sent it (`kind` plus the kind's fields).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

/// Filters for [`search`], combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Exact normalised plate.
    pub plate: Option<String>,
    pub gate_id: Option<i64>,
    /// Only these gates (a guard's own); `None` = all.
    pub only_gates: Option<Vec<i64>>,
    pub lane: Option<String>,
    pub kind: Option<String>,
    pub granted: Option<bool>,
    pub reason: Option<String>,
    /// From this instant (inclusive), by the gate's clock, UTC ms.
    pub from_ms: Option<i64>,
    /// Until this instant (exclusive).
    pub until_ms: Option<i64>,
}

/// The columns copied out of an event body.
struct Flat {
    plate: Option<String>,
    vehicle_id: Option<i64>,
    permit_id: Option<i64>,
    direction: Option<String>,
    granted: Option<i64>,
    reason: Option<String>,
}

fn flatten(body: &EventBody) -> Flat {
    let norm = |p: &Option<String>| {
        p.as_ref().map(|p| {
            Plate::parse(p)
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|_| p.clone())
        })
    };
    match body {
        EventBody::Decision(d) => Flat {
            plate: norm(&d.plate),
            vehicle_id: d.vehicle_id,
            permit_id: d.permit_id,
            direction: Some(d.direction.clone()),
            granted: Some(i64::from(d.granted)),
            reason: Some(d.reason.clone()),
        },
        EventBody::Passage {
            direction,
            plate,
            vehicle_id,
            permit_id,
        } => Flat {
            plate: norm(plate),
            vehicle_id: *vehicle_id,
            permit_id: *permit_id,
            direction: Some(direction.clone()),
            granted: None,
            reason: None,
        },
        EventBody::Override { reason, .. } => Flat {
            plate: None,
            vehicle_id: None,
            permit_id: None,
            direction: None,
            granted: None,
            reason: Some(reason.clone()),
        },
        _ => Flat {
            plate: None,
            vehicle_id: None,
            permit_id: None,
            direction: None,
            granted: None,
            reason: None,
        },
    }
}

/// Stores a gate's uploaded events, exactly once each: an event whose (gate, seq) is already
/// stored is skipped and counted as a duplicate. Runs in one transaction with batched multi-row
/// INSERTs, and in the same transaction advances the gate's watermark, updates the statistics
/// for exactly the events stored (`RETURNING seq` names them) and records the campus-wide
/// presence their passages change ([`sync::record_presence`], one change-log entry for the
/// upload, written last so that the change log's ordering lock is held only for the commit).
///
/// A sequence number of 0 or above `i64::MAX` cannot come from a journal and is refused with
/// [`RepoError::Conflict`] before anything is stored.
pub async fn ingest(
    db: &Db,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    if let Some(bad) = events
        .iter()
        .find(|e| e.seq == 0 || i64::try_from(e.seq).is_err())
    {
        return Err(RepoError::Conflict(format!(
            "sequence number {} is out of range",
            bad.seq
        )));
    }
    let received = now_ms();
    let mut tx = db.begin().await?;
    // Repeats within the upload count as duplicates; the first copy is the one stored. Events
    // at or below the watermark were stored before (and may since have been purged by the
    // retention rule): duplicates too, so a purged event re-sent is never counted again.
    let mark = current_watermark(&mut tx, db.kind(), gate_id).await?;
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    let unique: Vec<&JournalEvent> = events
        .iter()
        .filter(|e| e.seq as i64 > mark && seen.insert(e.seq))
        .collect();
    let mut stored_seqs: Vec<u64> = Vec::with_capacity(unique.len());
    match db.kind() {
        DbKind::Postgres => {
            insert_pg(&mut tx, gate_id, received, &unique, &mut stored_seqs).await?
        }
        DbKind::Sqlite => {
            insert_sqlite(&mut tx, gate_id, received, &unique, &mut stored_seqs).await?
        }
    }
    stored_seqs.sort_unstable();
    let fresh: Vec<&JournalEvent> = unique
        .iter()
        .copied()
        .filter(|e| stored_seqs.binary_search(&e.seq).is_ok())
        .collect();
    stats::apply(&mut tx, gate_id, &fresh).await?;
    // Every unique event above the mark is stored now (inserted, or there already).
    let mut present: Vec<i64> = unique.iter().map(|e| e.seq as i64).collect();
    present.sort_unstable();
    let highest = advance_watermark(&mut tx, gate_id, mark, &present).await?;
    let presence_changed = sync::record_presence(&mut tx, gate_id, &fresh).await?;
    tx.commit().await?;
    let stored = stored_seqs.len() as u64;
    Ok(IngestOutcome {
        stored,
        stored_seqs,
        duplicates: events.len() as u64 - stored,
        highest_contiguous: highest as u64,
        presence_changed,
    })
}

/// Inserts `events` into PostgreSQL: first it asks which of them are stored already (beyond
/// the watermark: an upload that followed a gap, sent again), then inserts the others with a
/// plain INSERT, cheaper than `ON CONFLICT DO NOTHING`, which searches the primary key once more
/// for every row before inserting it. The gate's watermark row, locked by
/// [`current_watermark`], keeps another upload of the same gate from storing one meanwhile; a
/// gate's very first uploads have no row to lock, and a collision there fails the whole
/// transaction with a unique violation, which the caller tries again
/// ([`crate::central::ingest`]).
///
/// One statement per [`PG_BATCH`] events whose text never changes (prepared once per
/// connection): the rows travel as one JSON parameter that `json_to_recordset` unpacks.
async fn insert_pg(
    conn: &mut AnyConnection,
    gate_id: i64,
    received: i64,
    events: &[&JournalEvent],
    stored_seqs: &mut Vec<u64>,
) -> Result<(), RepoError> {
    /// One event as the statement's JSON parameter names it (short keys: less to parse).
    #[derive(Serialize)]
    struct Row<'a> {
        s: i64,
        l: &'a str,
        k: &'a str,
        a: i64,
        p: Option<String>,
        v: Option<i64>,
        m: Option<i64>,
        d: Option<String>,
        g: Option<i64>,
        r: Option<String>,
        /// The body nested as JSON (not a JSON string of JSON): the statement takes its text
        /// as it stands, with no escaping to undo.
        b: &'a EventBody,
    }
    const SQL: &str = "INSERT INTO passage_events (gate_id, seq, lane, kind, at_ms, received_ms, \
         plate, vehicle_id, permit_id, direction, granted, reason, body) \
         SELECT $1, s, l, k, a, $2, p, v, m, d, g, r, b::text FROM json_to_recordset($3::json) \
         AS t(s bigint, l text, k text, a bigint, p text, v bigint, m bigint, d text, g bigint, \
         r text, b json)";
    let (Some(low), Some(high)) = (
        events.iter().map(|e| e.seq).min(),
        events.iter().map(|e| e.seq).max(),
    ) else {
        return Ok(());
    };
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM passage_events WHERE gate_id = $1 AND seq >= $2 AND seq <= $3",
    )
    .bind(gate_id)
    .bind(low as i64)
    .bind(high as i64)
    .fetch_all(&mut *conn)
    .await?;
    let stored: std::collections::HashSet<i64> = stored.into_iter().collect();
    let events: Vec<&JournalEvent> = events
        .iter()
        .copied()
        .filter(|e| !stored.contains(&(e.seq as i64)))
        .collect();
    for chunk in events.chunks(PG_BATCH) {
        let rows: Vec<Row> = chunk
            .iter()
            .map(|e| {
                let flat = flatten(&e.body);
                Row {
                    s: e.seq as i64,
                    l: e.lane.as_str(),
                    k: e.body.kind(),
                    a: e.at.timestamp_millis(),
                    p: flat.plate,
                    v: flat.vehicle_id,
                    m: flat.permit_id,
                    d: flat.direction,
                    g: flat.granted,
                    r: flat.reason,
                    b: &e.body,
                }
            })
            .collect();
        let json = serde_json::to_string(&rows).expect("event rows always serialise");
        sqlx::query(SQL)
            .bind(gate_id)
            .bind(received)
            .bind(json)
            .execute(&mut *conn)
            .await?;
        stored_seqs.extend(chunk.iter().map(|e| e.seq));
    }
    Ok(())
}

/// Inserts `events` into SQLite with multi-row `VALUES` statements of [`SQLITE_BATCH`] rows.
async fn insert_sqlite(
    conn: &mut AnyConnection,
    gate_id: i64,
    received: i64,
    events: &[&JournalEvent],
    stored_seqs: &mut Vec<u64>,
) -> Result<(), RepoError> {
    let full = insert_sql(SQLITE_BATCH.min(events.len()));
    for chunk in events.chunks(SQLITE_BATCH) {
        let tail;
        let sql = if chunk.len() == SQLITE_BATCH.min(events.len()) {
            &full
        } else {
            tail = insert_sql(chunk.len());
            &tail
        };
        let mut q = sqlx::query(sql);
        for e in chunk {
            let flat = flatten(&e.body);
            let body = serde_json::to_string(&e.body).expect("event bodies always serialise");
            q = q
                .bind(gate_id)
                .bind(e.seq as i64)
                .bind(e.lane.as_str())
                .bind(e.body.kind())
                .bind(e.at.timestamp_millis())
                .bind(received)
                .bind(flat.plate)
                .bind(flat.vehicle_id)
                .bind(flat.permit_id)
                .bind(flat.direction)
                .bind(flat.granted)
                .bind(flat.reason)
                .bind(body);
        }
        for r in q.fetch_all(&mut *conn).await? {
            stored_seqs.push(r.try_get::<i64, _>("seq")? as u64);
        }
    }
    Ok(())
}

/// The INSERT of `rows` events, each new one's `seq` returned.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * 80);
    sql.push_str(
        "INSERT INTO passage_events (gate_id, seq, lane, kind, at_ms, received_ms, plate, \
         vehicle_id, permit_id, direction, granted, reason, body) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..13 {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i * 13 + c + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (gate_id, seq) DO NOTHING RETURNING seq");
    sql
}

/// Moves the gate's watermark from `mark` past every stored event that follows it without a
/// gap. `present` (ascending) are sequence numbers known to be stored now: the walk goes
/// through them first and asks the database only from where they end.
async fn advance_watermark(
    conn: &mut AnyConnection,
    gate_id: i64,
    start: i64,
    present: &[i64],
) -> Result<i64, RepoError> {
    let mut mark = start;
    for &seq in present {
        if seq == mark + 1 {
            mark = seq;
        } else if seq > mark + 1 {
            break;
        }
    }
    loop {
        let rows = sqlx::query(
            "SELECT seq FROM passage_events WHERE gate_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000",
        )
        .bind(gate_id)
        .bind(mark)
        .fetch_all(&mut *conn)
        .await?;
        let n = rows.len();
        let mut gap = false;
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            if seq != mark + 1 {
                gap = true;
                break;
            }
            mark = seq;
        }
        if gap || n < 1000 {
            break;
        }
    }
    if mark > start {
        sqlx::query(
            "INSERT INTO passage_event_watermarks (gate_id, contiguous_seq) VALUES ($1, $2) \
             ON CONFLICT (gate_id) DO UPDATE SET contiguous_seq = excluded.contiguous_seq \
             WHERE passage_event_watermarks.contiguous_seq < excluded.contiguous_seq",
        )
        .bind(gate_id)
        .bind(mark)
        .execute(&mut *conn)
        .await?;
    }
    Ok(mark)
}

/// The gate's watermark at the start of an upload. On PostgreSQL its row is locked until the
/// commit, so one gate's uploads (a retry beside a slow first try, or two instances) are stored
/// one after the other and [`insert_pg`] can skip what is stored by looking first. SQLite has
/// one writer at a time anyway.
async fn current_watermark(
    conn: &mut AnyConnection,
    kind: DbKind,
    gate_id: i64,
) -> Result<i64, RepoError> {
    let sql = match kind {
        DbKind::Postgres => {
            "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = $1 FOR UPDATE"
        }
        DbKind::Sqlite => "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = $1",
    };
    Ok(sqlx::query(sql)
        .bind(gate_id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get("contiguous_seq"))
        .transpose()?
        .unwrap_or(0))
}

/// The gate's watermark: every event 1..=this is stored (0 if none is).
pub async fn watermark(db: &Db, gate_id: i64) -> Result<u64, RepoError> {
    let row = sqlx::query("SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = $1")
        .bind(gate_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>("contiguous_seq")? as u64,
        None => 0,
    })
}

/// Events matching `q`, newest first (by the gate's time, then gate and sequence number, so
/// pages are stable).
pub async fn search(db: &Db, q: &EventQuery, page: Page) -> Result<Paged<PassageEvent>, RepoError> {
    let mut w = Filter::new();
    if let Some(plate) = &q.plate {
        let p = w.arg(plate.as_str());
        w.and(format!("plate = {p}"));
    }
    if let Some(gate) = q.gate_id {
        let p = w.arg(gate);
        w.and(format!("gate_id = {p}"));
    }
    if let Some(only) = &q.only_gates {
        if only.is_empty() {
            w.and("1 = 0".into());
        } else {
            let ps: Vec<String> = only.iter().map(|id| w.arg(*id)).collect();
            w.and(format!("gate_id IN ({})", ps.join(", ")));
        }
    }
    if let Some(lane) = &q.lane {
        let p = w.arg(lane.as_str());
        w.and(format!("lane = {p}"));
    }
    if let Some(kind) = &q.kind {
        let p = w.arg(kind.as_str());
        w.and(format!("kind = {p}"));
    }
    if let Some(granted) = q.granted {
        let p = w.arg(i64::from(granted));
        w.and(format!("granted = {p}"));
    }
    if let Some(reason) = &q.reason {
        let p = w.arg(reason.as_str());
        w.and(format!("reason = {p}"));
    }
    if let Some(from) = q.from_ms {
        let p = w.arg(from);
        w.and(format!("at_ms >= {p}"));
    }
    if let Some(until) = q.until_ms {
        let p = w.arg(until);
        w.and(format!("at_ms < {p}"));
    }
    // The exact total and the page are independent reads: run them at once, on two pooled
    // connections, so a deep page of a busy gate costs the slower of the two, not their sum.
    let counter = w.clone();
    let sql = format!(
        "SELECT gate_id, seq, lane, kind, at_ms, received_ms, plate, vehicle_id, permit_id, \
         direction, granted, reason, body FROM passage_events{} \
         ORDER BY at_ms DESC, gate_id DESC, seq DESC {}",
        w.where_sql(),
        w.limit(page)
    );
    let (total, rows) = tokio::try_join!(counter.count(db, "passage_events"), async {
        Ok::<_, RepoError>(w.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?)
    },)?;
    let items = rows.iter().map(event).collect::<Result<_, _>>()?;
    Ok(Paged { items, total })
}

fn event(r: &AnyRow) -> Result<PassageEvent, RepoError> {
    let body: String = r.try_get("body")?;
    Ok(PassageEvent {
        gate_id: r.try_get("gate_id")?,
        seq: r.try_get("seq")?,
        lane: r.try_get("lane")?,
        kind: r.try_get("kind")?,
        at: at(r.try_get("at_ms")?),
        received_at: at(r.try_get("received_ms")?),
        plate: r.try_get("plate")?,
        vehicle_id: r.try_get("vehicle_id")?,
        permit_id: r.try_get("permit_id")?,
        direction: r.try_get("direction")?,
        granted: r.try_get::<Option<i64>, _>("granted")?.map(|g| g != 0),
        reason: r.try_get("reason")?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    })
}
