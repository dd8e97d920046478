//! Passage events as the gates upload them: stored idempotently on (gate, journal, sequence
//! number), with the fields the office filters on (plate, vehicle, permit, direction, granted,
//! reason) copied out of the event body, and read back newest first.
//!
//! [`ingest_from`] keeps the gate's original time (`at_ms`) beside the centre's (`received_ms`),
//! advances the journal's **watermark**: the highest sequence number up to which every event of
//! that journal is stored, which is what the centre acknowledges to the gate, and folds exactly
//! the events it stored into the traffic statistics ([`crate::central::traffic`]), the
//! outside-vehicle visits ([`crate::central::outside`]) and the campus-wide presence
//! ([`super::sync::record_presence`]) in the same transaction, as well as the visitor passes
//! the decisions used ([`super::passes::consume`]).
//!
//! **Journals.** Each gate journal has a random id created with it (see
//! [`crate::gate::journal`]); the centre numbers a gate's journals (`gate_journals`, 0 for the
//! events of gates from before ids) and keys events and watermarks by that number, so a fresh
//! journal.db that starts again from 1 is stored beside the old one, never taken for it.
//!
//! What it never does: change or delete a stored event, or drop one silently. A re-sent event
//! (same time, lane and body) is a duplicate; an event whose number is taken by a *different*
//! event (the journal rewound: its unsynced WAL tail lost, an old copy restored) is kept in
//! `event_conflicts` with an `event_conflict` audit entry, and the caller raises the alarm. It
//! does not authenticate a gate (the sync layer does) or decide who may read which gate's
//! events (the API passes [`EventQuery::only_gates`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::audit::at;
use super::sync;
use crate::central::db::Filter;
use crate::central::db::{Actor, Op, write_change};
use crate::central::db::{Db, DbKind, Page, Paged, RepoError, now_ms};
use crate::central::outside;
use crate::central::traffic;
use crate::domain::Plate;
use crate::wire::journal::{EventBody, JournalEvent, JournalIdentity};

/// Events per INSERT statement on PostgreSQL (one JSON parameter, see [`insert_pg`]): an
/// upload of a gate's usual batch is one statement, and a huge one is bounded in memory.
const PG_BATCH: usize = 5_000;
/// Events per INSERT statement on SQLite. SQLite is in-process (no round trips), and through
/// sqlx a statement with thousands of parameters is slower per row than a small one reused from
/// the statement cache (10 a statement measured fastest; benches/README.md).
const SQLITE_BATCH: usize = 10;

/// What an [`ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Events stored now.
    pub stored: u64,
    /// The sequence numbers of the events stored now, ascending (the database's own answer,
    /// from `INSERT … RETURNING`): what the live view publishes and the statistics count.
    pub stored_seqs: Vec<u64>,
    /// Events that were already stored with the same contents (or repeated within the upload)
    /// and were ignored.
    pub duplicates: u64,
    /// Events whose number the journal already holds with other contents (kept in quarantine).
    pub conflicts: u64,
    /// The sequence numbers quarantined by this upload (ascending; a conflicting event sent
    /// again is not among them): what the `event_conflict` alarm names.
    pub quarantined_seqs: Vec<u64>,
    /// The centre's number for the upload's journal (0: the gate's id-less journal).
    pub journal_no: i64,
    /// The upload brought a journal the centre had not seen, for a gate with events already:
    /// its sequence numbers start again (journal.db replaced).
    pub replaced_journal: bool,
    /// The journal's watermark after this upload: every event 1..=this is stored.
    pub highest_contiguous: u64,
    /// Vehicles whose campus-wide presence this upload changed (queued for announcement).
    #[serde(skip)]
    pub presence_changed: u64,
    /// Visitors who entered on a pass in the events stored now (their hosts are told).
    #[serde(skip)]
    pub pass_arrivals: Vec<super::passes::PassArrival>,
}

/// A stored passage event as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PassageEvent {
    pub gate_id: i64,
    /// The centre's number for the gate journal the event came from (0: the gate's events from
    /// before journal ids; a replaced journal.db makes a new one, whose numbers start again).
    #[serde(default)]
    pub journal_no: i64,
    /// The sequence number within its journal.
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
            reason: Some(d.reason.as_str().to_string()),
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
        // A camera read the lane did not act on is still a vehicle seen: searchable by plate.
        EventBody::PlateIgnored { camera, .. } => Flat {
            plate: norm(&Some(camera.raw_plate.clone())).filter(|p| !p.is_empty()),
            vehicle_id: None,
            permit_id: None,
            direction: None,
            granted: None,
            reason: None,
        },
        // The plate the guard named for a manual open: the lane view and searches show it.
        EventBody::Override { reason, plate, .. } => Flat {
            plate: norm(plate),
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

/// Stores a gate's uploaded events from its id-less journal (journal number 0): what gates that
/// predate journal ids send. See [`ingest_from`].
pub async fn ingest(
    db: &Db,
    tz: Tz,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    ingest_from(db, tz, gate_id, None, events).await
}

/// Stores a gate's uploaded events from `journal`, exactly once each, keyed by (gate, journal,
/// sequence number). An event whose number the centre already holds is a duplicate if its
/// time, lane and body are the same, and a **conflict** if they differ (the journal rewound):
/// the conflicting event is kept in `event_conflicts` with an `event_conflict` audit entry, never
/// dropped, and the caller raises the alarm ([`crate::central::ingest`]). Runs in one
/// transaction with batched multi-row INSERTs, and in the same transaction advances the
/// journal's watermark, updates the statistics for exactly the events stored (`RETURNING seq`
/// names them; days and hours by the site's zone `tz`) and records the campus-wide presence
/// their passages change ([`sync::record_presence`]).
///
/// A journal id the centre has not seen for the gate gets the next journal number; if the gate
/// had events already, that is a replaced journal: audited, and reported in
/// [`IngestOutcome::replaced_journal`].
///
/// A sequence number of 0 or above `i64::MAX`, or a journal id that is not 1–64 letters, digits
/// or dashes, cannot come from a journal and is refused with [`RepoError::Conflict`] before
/// anything is stored.
pub async fn ingest_from(
    db: &Db,
    tz: Tz,
    gate_id: i64,
    journal: Option<&JournalIdentity>,
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
    if let Some(j) = journal
        && (j.id.is_empty()
            || j.id.len() > 64
            || !j.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(RepoError::Conflict(format!(
            "journal id {:?} is not 1-64 letters, digits or dashes",
            j.id
        )));
    }
    let received = now_ms();
    let mut tx = db.begin().await?;
    let (journal_no, replaced_journal) =
        journal_number(&mut tx, gate_id, journal, received).await?;
    let mark = current_watermark(&mut tx, db.kind(), gate_id, journal_no).await?;
    // Repeats within the upload count as duplicates; the first copy is the one looked at.
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    let unique: Vec<&JournalEvent> = events.iter().filter(|e| seen.insert(e.seq)).collect();
    // What is stored above the mark (out of order, or an upload sent twice): read before the
    // insert, it tells whether any of these numbers can be held already, and later how far the
    // watermark moves. Usually nothing is, and the held events need no read of their own.
    let above = stored_above(&mut tx, gate_id, journal_no, mark).await?;
    let may_be_held = unique
        .iter()
        .any(|e| e.seq as i64 <= mark || above.binary_search(&(e.seq as i64)).is_ok())
        || above.len() as i64 == ABOVE_READ;
    let held = if may_be_held {
        held_events(&mut tx, gate_id, journal_no, &unique).await?
    } else {
        Default::default()
    };
    let mut new: Vec<&JournalEvent> = Vec::with_capacity(unique.len());
    let mut conflicting: Vec<&JournalEvent> = Vec::new();
    for e in &unique {
        match held.get(&(e.seq as i64)) {
            Some(stored) if stored.same_as(e) => {}
            Some(_) => conflicting.push(e),
            // At or below the watermark but gone: purged by the retention rule, so stored
            // once already and never counted again.
            None if e.seq as i64 <= mark => {}
            None => new.push(e),
        }
    }
    let mut stored_seqs: Vec<u64> = Vec::with_capacity(new.len());
    match db.kind() {
        DbKind::Postgres => {
            insert_pg(
                &mut tx,
                gate_id,
                journal_no,
                received,
                &new,
                &mut stored_seqs,
            )
            .await?
        }
        DbKind::Sqlite => {
            insert_sqlite(
                &mut tx,
                gate_id,
                journal_no,
                received,
                &new,
                &mut stored_seqs,
            )
            .await?
        }
    }
    stored_seqs.sort_unstable();
    let quarantined_seqs = quarantine(&mut tx, gate_id, journal_no, received, &conflicting).await?;
    if !quarantined_seqs.is_empty() {
        let detail = serde_json::json!({
            "journal_id": journal.map(|j| j.id.as_str()),
            "journal_no": journal_no,
            "quarantined": quarantined_seqs.len(),
            "seqs": quarantined_seqs.iter().take(100).collect::<Vec<_>>(),
        });
        audit_conflict(&mut tx, gate_id, detail).await?;
    }
    if replaced_journal {
        let detail = serde_json::json!({
            "journal_id": journal.map(|j| j.id.as_str()),
            "journal_no": journal_no,
            "new_journal": true,
        });
        audit_conflict(&mut tx, gate_id, detail).await?;
    }
    let fresh: Vec<&JournalEvent> = new
        .iter()
        .copied()
        .filter(|e| stored_seqs.binary_search(&e.seq).is_ok())
        .collect();
    // Who the passages without a permit were (the read they followed, the booth registration
    // they came on), then the statistics and the outside-vehicle visits they make.
    let ids = outside::identify(&mut tx, gate_id, journal_no, &fresh).await?;
    let resolved = traffic::apply_with(&mut tx, tz, gate_id, &fresh, &ids).await?;
    outside::record(&mut tx, tz, gate_id, journal_no, &fresh, &ids, &resolved).await?;
    // Every unique event above the mark holds its number now (inserted, there already, or
    // there with another body and this one quarantined).
    let mut present: Vec<i64> = unique
        .iter()
        .map(|e| e.seq as i64)
        .filter(|&s| s > mark)
        .chain(above.iter().copied())
        .collect();
    present.sort_unstable();
    present.dedup();
    let complete = (above.len() as i64) < ABOVE_READ;
    let highest = advance_watermark(&mut tx, gate_id, journal_no, mark, &present, complete).await?;
    let presence_changed = sync::record_presence(&mut tx, gate_id, &fresh).await?;
    // Single-use passes consumed, bookings arrived or left on their pass.
    let pass_arrivals = super::passes::consume(&mut tx, gate_id, &fresh).await?;
    tx.commit().await?;
    let stored = stored_seqs.len() as u64;
    let conflicts = conflicting.len() as u64;
    Ok(IngestOutcome {
        stored,
        stored_seqs,
        duplicates: events.len() as u64 - stored - conflicts,
        conflicts,
        quarantined_seqs,
        journal_no,
        replaced_journal,
        highest_contiguous: highest as u64,
        presence_changed,
        pass_arrivals,
    })
}

/// The centre's number for the upload's journal: 0 for the gate's id-less journal (no id on
/// the wire, or a journal that got its id at migration), else the number registered for the
/// id, registering the next one if the id is new. The flag says the new journal replaced one
/// under which the gate had events already.
///
/// Two uploads registering the same new journal at once on PostgreSQL: the later fails on
/// `gate_journals_pkey` and is tried again ([`crate::central::ingest`]), finding it registered.
async fn journal_number(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal: Option<&JournalIdentity>,
    now: i64,
) -> Result<(i64, bool), RepoError> {
    let Some(journal) = journal.filter(|j| !j.from_legacy) else {
        return Ok((0, false));
    };
    let known: Option<i64> = sqlx::query_scalar(
        "SELECT journal_no FROM gate_journals WHERE gate_id = $1 AND journal_id = $2",
    )
    .bind(gate_id)
    .bind(journal.id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(no) = known {
        return Ok((no, false));
    }
    let mut earlier = false;
    for sql in [
        "SELECT 1 FROM gate_journals WHERE gate_id = $1 LIMIT 1",
        "SELECT 1 FROM passage_event_watermarks WHERE gate_id = $1 LIMIT 1",
        "SELECT 1 FROM passage_events WHERE gate_id = $1 LIMIT 1",
    ] {
        if sqlx::query(sql)
            .bind(gate_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        {
            earlier = true;
            break;
        }
    }
    let no: i64 = sqlx::query_scalar(
        "INSERT INTO gate_journals (gate_id, journal_id, journal_no, first_seen_ms) \
         SELECT $1, $2, COALESCE(MAX(journal_no), 0) + 1, $3 FROM gate_journals \
         WHERE gate_id = $1 RETURNING journal_no",
    )
    .bind(gate_id)
    .bind(journal.id.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok((no, earlier))
}

/// A stored event as far as telling a re-sent copy from a different event needs.
struct Held {
    at_ms: i64,
    lane: String,
    body: String,
}

impl Held {
    /// Whether `e` is this event sent again: same time, lane and body (compared as JSON
    /// values, so key order and spacing do not matter).
    fn same_as(&self, e: &JournalEvent) -> bool {
        self.at_ms == e.at.timestamp_millis()
            && self.lane == e.lane
            && serde_json::from_str::<serde_json::Value>(&self.body)
                .ok()
                .zip(serde_json::to_value(&e.body).ok())
                .is_some_and(|(stored, sent)| stored == sent)
    }
}

/// The events of the journal already stored at the numbers of `events` (one range read; an
/// upload of new events finds none).
async fn held_events(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
    events: &[&JournalEvent],
) -> Result<std::collections::HashMap<i64, Held>, RepoError> {
    let (Some(low), Some(high)) = (
        events.iter().map(|e| e.seq).min(),
        events.iter().map(|e| e.seq).max(),
    ) else {
        return Ok(Default::default());
    };
    let rows = sqlx::query(
        "SELECT seq, at_ms, lane, body FROM passage_events WHERE gate_id = $1 \
         AND journal_no = $2 AND seq >= $3 AND seq <= $4",
    )
    .bind(gate_id)
    .bind(journal_no)
    .bind(low as i64)
    .bind(high as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>("seq")?,
                Held {
                    at_ms: r.try_get("at_ms")?,
                    lane: r.try_get("lane")?,
                    body: r.try_get("body")?,
                },
            ))
        })
        .collect()
}

/// Audits (as the system) a conflict in what gate `gate_id` sent: `detail` says what.
async fn audit_conflict(
    conn: &mut AnyConnection,
    gate_id: i64,
    detail: serde_json::Value,
) -> Result<(), RepoError> {
    let op = Op::Audit("event_conflict");
    write_change(
        conn,
        &Actor::system(),
        op,
        "gate",
        gate_id,
        None,
        Some(&detail),
    )
    .await
}

/// Keeps `events` (whose numbers the journal holds with other contents) in `event_conflicts`,
/// each distinct version once. Returns the numbers quarantined now (not those kept before).
async fn quarantine(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
    received: i64,
    events: &[&JournalEvent],
) -> Result<Vec<u64>, RepoError> {
    use sha2::Digest as _;
    let mut now = Vec::new();
    for e in events {
        let body = serde_json::to_string(&e.body).expect("event bodies always serialise");
        let at_ms = e.at.timestamp_millis();
        let digest = hex::encode(sha2::Sha256::digest(
            format!("{at_ms}\n{}\n{body}", e.lane).as_bytes(),
        ));
        let inserted = sqlx::query(
            "INSERT INTO event_conflicts (gate_id, journal_no, seq, lane, kind, at_ms, \
             received_ms, body, digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (gate_id, journal_no, seq, digest) DO NOTHING RETURNING seq",
        )
        .bind(gate_id)
        .bind(journal_no)
        .bind(e.seq as i64)
        .bind(e.lane.as_str())
        .bind(e.body.kind())
        .bind(at_ms)
        .bind(received)
        .bind(body)
        .bind(digest)
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_some() {
            now.push(e.seq);
        }
    }
    now.sort_unstable();
    Ok(now)
}

/// Inserts `events` (none of them stored: [`held_events`] has looked) into PostgreSQL with a
/// plain INSERT, cheaper than `ON CONFLICT DO NOTHING`, which searches the primary key once more
/// for every row before inserting it. The journal's watermark row, locked by
/// [`current_watermark`], keeps another upload of the same journal from storing one meanwhile;
/// a journal's very first uploads have no row to lock, and a collision there fails the whole
/// transaction with a unique violation, which the caller tries again
/// ([`crate::central::ingest`]).
///
/// One statement per [`PG_BATCH`] events whose text never changes (prepared once per
/// connection): the rows travel as one JSON parameter that `json_to_recordset` unpacks.
async fn insert_pg(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
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
    const SQL: &str = "INSERT INTO passage_events (gate_id, journal_no, seq, lane, kind, at_ms, \
         received_ms, plate, vehicle_id, permit_id, direction, granted, reason, body) \
         SELECT $1, $4, s, l, k, a, $2, p, v, m, d, g, r, b::text FROM json_to_recordset($3::json) \
         AS t(s bigint, l text, k text, a bigint, p text, v bigint, m bigint, d text, g bigint, \
         r text, b json)";
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
            .bind(journal_no)
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
    journal_no: i64,
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
                .bind(journal_no)
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
    let mut sql = String::with_capacity(200 + rows * 90);
    sql.push_str(
        "INSERT INTO passage_events (gate_id, journal_no, seq, lane, kind, at_ms, received_ms, \
         plate, vehicle_id, permit_id, direction, granted, reason, body) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..14 {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i * 14 + c + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (gate_id, journal_no, seq) DO NOTHING RETURNING seq");
    sql
}

/// How many stored numbers above the mark [`stored_above`] reads at once.
const ABOVE_READ: i64 = 1000;

/// The first [`ABOVE_READ`] sequence numbers stored above `mark` in the journal, ascending.
async fn stored_above(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
    mark: i64,
) -> Result<Vec<i64>, RepoError> {
    let rows = sqlx::query(
        "SELECT seq FROM passage_events WHERE gate_id = $1 AND journal_no = $2 AND seq > $3 \
         ORDER BY seq LIMIT $4",
    )
    .bind(gate_id)
    .bind(journal_no)
    .bind(mark)
    .bind(ABOVE_READ)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<i64, _>("seq")?))
        .collect()
}

/// Moves the journal's watermark from `mark` past every stored event that follows it without a
/// gap. `present` (ascending) are sequence numbers known to be stored now; when `complete`,
/// they are every number stored above `start`, and the database is not asked. Otherwise the
/// walk goes through them first and asks the database only from where they end.
async fn advance_watermark(
    conn: &mut AnyConnection,
    gate_id: i64,
    journal_no: i64,
    start: i64,
    present: &[i64],
    complete: bool,
) -> Result<i64, RepoError> {
    let mut mark = start;
    for &seq in present {
        if seq == mark + 1 {
            mark = seq;
        } else if seq > mark + 1 {
            break;
        }
    }
    let mut done = complete;
    while !done {
        let rows = stored_above(conn, gate_id, journal_no, mark).await?;
        done = (rows.len() as i64) < ABOVE_READ;
        for &seq in &rows {
            if seq != mark + 1 {
                done = true;
                break;
            }
            mark = seq;
        }
    }
    if mark > start {
        sqlx::query(
            "INSERT INTO passage_event_watermarks (gate_id, journal_no, contiguous_seq) \
             VALUES ($1, $2, $3) ON CONFLICT (gate_id, journal_no) DO UPDATE \
             SET contiguous_seq = excluded.contiguous_seq \
             WHERE passage_event_watermarks.contiguous_seq < excluded.contiguous_seq",
        )
        .bind(gate_id)
        .bind(journal_no)
        .bind(mark)
        .execute(&mut *conn)
        .await?;
    }
    Ok(mark)
}

/// The journal's watermark at the start of an upload. On PostgreSQL its row is locked until
/// the commit, so one journal's uploads (a retry beside a slow first try, or two instances) are
/// stored one after the other and [`held_events`] sees what is stored by looking first. SQLite
/// has one writer at a time anyway.
async fn current_watermark(
    conn: &mut AnyConnection,
    kind: DbKind,
    gate_id: i64,
    journal_no: i64,
) -> Result<i64, RepoError> {
    let sql = match kind {
        DbKind::Postgres => {
            "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = $1 \
             AND journal_no = $2 FOR UPDATE"
        }
        DbKind::Sqlite => {
            "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = $1 \
             AND journal_no = $2"
        }
    };
    Ok(sqlx::query(sql)
        .bind(gate_id)
        .bind(journal_no)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get("contiguous_seq"))
        .transpose()?
        .unwrap_or(0))
}

/// The watermark of the gate's newest journal: every event 1..=this of it is stored (0 if
/// none is).
pub async fn watermark(db: &Db, gate_id: i64) -> Result<u64, RepoError> {
    let row = sqlx::query(
        "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = $1 \
         ORDER BY journal_no DESC LIMIT 1",
    )
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
    let w = filter(q);
    // The exact total and the page are independent reads: run them at once, on two pooled
    // connections, so a deep page of a busy gate costs the slower of the two, not their sum.
    let counter = w.clone();
    let (total, items) =
        tokio::try_join!(counter.count(db, "passage_events"), page_of(db, w, page))?;
    Ok(Paged { items, total })
}

/// The newest `limit` events matching `q`, as [`search`] orders them, without the total: what a
/// live view re-renders on every upload. Counting every match would cost as much as the gate's
/// whole history at each update.
pub async fn newest(db: &Db, q: &EventQuery, limit: i64) -> Result<Vec<PassageEvent>, RepoError> {
    page_of(db, filter(q), Page { limit, offset: 0 }).await
}

/// The columns [`event`] reads, in the order of `passage_events`.
const EVENT_COLUMNS: &str = "gate_id, journal_no, seq, lane, kind, at_ms, received_ms, plate, \
                             vehicle_id, permit_id, direction, granted, reason, body";

/// A lane's newest decision, newest guard command (override) and newest `faults` lane faults,
/// newest first, in one statement: what the live view shows of a lane, re-rendered on every
/// upload of its gate.
pub async fn lane_latest(
    db: &Db,
    gate_id: i64,
    lane: &str,
    faults: i64,
) -> Result<
    (
        Option<PassageEvent>,
        Option<PassageEvent>,
        Vec<PassageEvent>,
    ),
    RepoError,
> {
    let one = |kind: &str, limit: &str| {
        format!(
            "SELECT * FROM (SELECT {EVENT_COLUMNS} FROM passage_events WHERE gate_id = $1 \
             AND lane = $2 AND kind = '{kind}' \
             ORDER BY at_ms DESC, gate_id DESC, seq DESC LIMIT {limit}) {kind}_rows"
        )
    };
    let sql = format!(
        "{} UNION ALL {} UNION ALL {}",
        one("decision", "1"),
        one("override", "1"),
        one("lane_fault", "$3")
    );
    let rows = sqlx::query(&sql)
        .bind(gate_id)
        .bind(lane)
        .bind(faults)
        .fetch_all(db.pool())
        .await?;
    let (mut decision, mut override_, mut found) = (None, None, Vec::new());
    for row in &rows {
        let e = event(row)?;
        match e.kind.as_str() {
            "decision" => decision = Some(e),
            "override" => override_ = Some(e),
            _ => found.push(e),
        }
    }
    // UNION ALL keeps no order of its own.
    found.sort_by_key(|e| std::cmp::Reverse((e.at, e.gate_id, e.seq)));
    Ok((decision, override_, found))
}

/// One page of the events `w` selects, newest first.
async fn page_of(db: &Db, mut w: Filter, page: Page) -> Result<Vec<PassageEvent>, RepoError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM passage_events{} ORDER BY at_ms DESC, gate_id DESC, seq DESC {}",
        w.where_sql(),
        w.limit(page)
    );
    let rows = w.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    rows.iter().map(event).collect()
}

/// The `WHERE` of the events `q` asks for.
fn filter(q: &EventQuery) -> Filter {
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
    w
}

fn event(r: &AnyRow) -> Result<PassageEvent, RepoError> {
    let body: String = r.try_get("body")?;
    Ok(PassageEvent {
        gate_id: r.try_get("gate_id")?,
        journal_no: r.try_get("journal_no")?,
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
