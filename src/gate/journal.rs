//! The gate's durable event journal.
//!
//! Every tag read and its decision, every barrier command, passage, guard override, mode change
//! and device fault becomes an event with a **per-gate monotonic sequence number**, the UTC time
//! and the lane. The sequence is what the centre de-duplicates on and acknowledges, so it must be
//! contiguous and must never repeat — across crashes too.
//!
//! # Durability: the barrier waits for the commit
//! An event is committed to SQLite's write-ahead log *before* the controller sends the barrier
//! command it describes ([`Journal::append`] returns only after the commit). With the WAL and
//! `synchronous = NORMAL` a commit costs tens of microseconds (no fsync), and a committed event
//! survives the process being killed at any instant: the WAL is in the kernel's page cache. So
//! "every OPEN that reached the barrier has its event" holds under SIGKILL. A **power cut** can
//! lose what the kernel had not yet written: the WAL is synced at every checkpoint, and
//! [`Journal::checkpoint`] is run every [`CHECKPOINT_INTERVAL`] by the controller, which bounds the
//! loss to the events of roughly the last quarter second. (`synchronous = FULL`, an fsync per
//! event, would close that window but costs milliseconds per event on common gate hardware —
//! more than the whole decision budget.)
//!
//! # Sequence numbers
//! One writer connection behind one lock assigns `seq = last + 1` in the same transaction that
//! inserts the event; a failed insert does not advance the counter. On open the counter resumes
//! from the highest stored sequence (or the acknowledged one, if everything was pruned).
//!
//! # Identity
//! Each journal has an id created with it ([`JournalIdentity`]: 128 random bits, stored in
//! `journal_identity`), sent with every upload. The centre keys events by (gate, journal id,
//! sequence number): a journal.db replaced by a fresh one starts again from 1 under a new id, and
//! its events are stored beside the old journal's instead of being taken for them. A journal
//! that rewound without changing its id (the WAL's unsynced tail lost to a power cut, an old copy
//! restored) reuses numbers under the same id; the centre compares bodies and quarantines the
//! new ones with an `event_conflict` alarm rather than dropping them.
//!
//! # Capacity and pruning
//! The journal holds at least `capacity` events (1,000,000 by default). When it passes 90 % full
//! it journals a `journal_alarm` event (once, re-armed below 80 %). Only events the centre has
//! acknowledged are ever deleted, and only when the journal is over capacity: an undelivered
//! event is never pruned, however full the journal is.
//!
//! # When the journal cannot write
//! A commit can fail: the disk is full, the filesystem went read-only, the file was removed.
//! The lanes must not stop for that (a barrier that cannot close behind a car, or open for an
//! evacuation, is worse than a missing record), so [`Journal::append`] never blocks a command:
//! what it cannot commit it keeps, in order, in a bounded in-memory backlog
//! ([`DEFAULT_BACKLOG_LIMIT`] events) and answers [`JournalError::NotWritten`]. From the first
//! failed commit until the backlog is written the journal is *failing*: every later event goes
//! to the backlog too (so sequence order stays the order things happened), and
//! [`JournalStats::write_failing`] says so — the gate's `/readyz` fails, `/metrics` shows it
//! and the health report carries it to the centre, which raises an office alarm.
//!
//! [`Journal::retry`] (run with every checkpoint) writes the backlog once the disk takes writes
//! again, oldest first, each event with its own time and the next sequence number, then one
//! `journal_write_failed` event that says when the outage began and ended, how many commits
//! failed, how many events were kept and how many were **lost**: events that arrived while the
//! backlog was full are counted (with the times of the first and last) but not kept. Nothing is
//! dropped without that record. The backlog lives in memory only: a crash or power cut during
//! the outage loses it (the centre then sees no gap, because those events never had sequence
//! numbers; the process's log keeps the error).
//!
//! This module never decides anything and never talks to devices or the network.

use std::collections::VecDeque;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;

use crate::wire::journal::{EventBody, JournalEvent, JournalIdentity, PlateReadRecord, Seq};

/// How often the controller should call [`Journal::checkpoint`]: the bound on what a power cut
/// can lose.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// The default number of events the journal keeps at least.
pub const DEFAULT_CAPACITY: u64 = 1_000_000;

/// How many events the journal keeps in memory while it cannot write (about 5 MB of decisions).
pub const DEFAULT_BACKLOG_LIMIT: usize = 10_000;

/// Fill ratio (in percent) at which the journal raises its alarm event.
const ALARM_PERCENT: u64 = 90;
/// Fill ratio (in percent) below which the alarm re-arms.
const REARM_PERCENT: u64 = 80;

/// What can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("journal database: {0}")]
    Write(#[from] rusqlite::Error),
    #[error("journal.db: {}", crate::gate::store::migration_message(.0))]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("event {seq} is not valid JSON: {source}")]
    Corrupt { seq: Seq, source: serde_json::Error },
    /// The events were not committed: the journal cannot write (since the failure `cause`).
    /// They wait in memory (or, with the backlog full, are counted as lost) until it can.
    #[error(
        "the journal cannot write ({cause}): events wait in memory ({waiting} waiting, {lost} lost)"
    )]
    NotWritten {
        cause: String,
        waiting: u64,
        lost: u64,
    },
}

/// Counts that describe the journal's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JournalStats {
    /// The highest sequence number written (0 if none ever was).
    pub last_seq: Seq,
    /// The highest sequence number the centre acknowledged.
    pub acked_seq: Seq,
    /// Events stored now.
    pub stored: u64,
    /// Events stored and not yet acknowledged.
    pub pending: u64,
    pub capacity: u64,
    /// True from a failed commit until what could not be written has been written.
    pub write_failing: bool,
    /// Commits that could not be written when they happened, since the journal was opened.
    pub write_failures: u64,
    /// Events waiting in memory to be written.
    pub waiting: u64,
    /// Events lost since the journal was opened: they arrived while it could not write and the
    /// in-memory backlog was full.
    pub lost: u64,
}

impl JournalStats {
    /// Fill in percent of capacity (may exceed 100 when undelivered events pile up).
    pub fn fill_percent(&self) -> u64 {
        self.stored * 100 / self.capacity.max(1)
    }
}

/// The one writing connection and the counters it keeps. It is rusqlite's, used in place by
/// the task that appends: the lane's decision-and-OPEN commit is on the path from tag read to
/// barrier command, and a round trip to sqlx's per-connection worker thread (two thread wake-ups,
/// each at the scheduler's mercy on a busy machine) cost more than the commit itself. A WAL
/// commit at `synchronous = NORMAL` does no fsync and takes tens of microseconds, so running it
/// on an async worker is cheaper than handing it off. Acknowledgements, which may prune
/// thousands of rows, run on the blocking pool instead.
struct Writer {
    conn: rusqlite::Connection,
    /// The highest sequence number committed.
    last_seq: Seq,
    /// The lowest sequence number still stored (last_seq + 1 when empty).
    first_seq: Seq,
    acked_seq: Seq,
    alarm_raised: bool,
    /// Events that could not be committed, oldest first (see the module header).
    backlog: VecDeque<Deferred>,
    backlog_limit: usize,
    /// Set from a failed commit until the backlog is written.
    outage: Option<Outage>,
    /// Totals since opening.
    failures: u64,
    lost: u64,
    /// `total_changes` of the connection right after the log was last restarted here
    /// ([`Journal::checkpoint`]): the log is restarted again only once something else wrote.
    changes_at_restart: u64,
}

/// An event that could not be committed when it happened.
#[derive(Debug)]
struct Deferred {
    at_ms: i64,
    lane: String,
    body: EventBody,
}

/// What the journal records about a time it could not write.
#[derive(Debug)]
struct Outage {
    since: DateTime<Utc>,
    error: String,
    failed_commits: u64,
    kept: u64,
    lost: u64,
    lost_from: Option<DateTime<Utc>>,
    lost_to: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("last_seq", &self.last_seq)
            .field("first_seq", &self.first_seq)
            .field("acked_seq", &self.acked_seq)
            .finish_non_exhaustive()
    }
}

/// Rows per multi-row INSERT: five parameters each, under SQLite's historical limit of 999.
const ROWS_PER_INSERT: usize = 150;

impl Writer {
    fn stored(&self) -> u64 {
        self.last_seq + 1 - self.first_seq
    }
}

/// One row of a multi-row INSERT.
struct NewRow<'a> {
    at_ms: i64,
    lane: &'a str,
    body: &'a EventBody,
}

/// Inserts `rows` as events `first`, `first + 1`, … in one statement (atomic on its own: all
/// rows or none).
fn insert_rows(
    conn: &rusqlite::Connection,
    first: Seq,
    rows: &[NewRow<'_>],
) -> Result<(), JournalError> {
    let mut sql = String::from("INSERT INTO events (seq, at_ms, lane, kind, body) VALUES ");
    for i in 0..rows.len() {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?)"
        });
    }
    let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(rows.len() * 5);
    for (i, row) in rows.iter().enumerate() {
        let json = serde_json::to_string(row.body).expect("event bodies always serialise");
        values.push(((first + i as u64) as i64).into());
        values.push(row.at_ms.into());
        values.push(row.lane.to_string().into());
        values.push(row.body.kind().to_string().into());
        values.push(json.into());
    }
    // Lanes journal one to four events a commit: a handful of statements, each prepared once.
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// The camera read an event carries, if any: a decision made on (or cross-checked with) a
/// plate camera's read, or a read the lane did not act on.
fn camera_of(body: &EventBody) -> Option<&PlateReadRecord> {
    match body {
        EventBody::Decision(d) => d.camera.as_deref(),
        EventBody::PlateIgnored { camera, .. } => Some(camera),
        _ => None,
    }
}

/// A camera read kept in `camera_events` until its vehicle comes.
struct WaitingRead<'a> {
    record: &'a PlateReadRecord,
    lane: &'a str,
    at_ms: i64,
}

/// Records, for each of `rows` (events `first`, `first + 1`, …) that carries a camera read, the
/// read's row in `camera_events` naming that event. A read already recorded keeps the event it
/// was first journalled with; one that was waiting for its vehicle is resolved.
fn record_camera_reads(
    conn: &rusqlite::Connection,
    first: Seq,
    rows: &[NewRow<'_>],
) -> Result<(), JournalError> {
    for (i, row) in rows.iter().enumerate() {
        let Some(c) = camera_of(row.body) else {
            continue;
        };
        conn.prepare_cached(
            "INSERT INTO camera_events (camera, event_id, lane, at_ms, seq, waiting) \
             VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT (camera, event_id) \
             DO UPDATE SET seq = excluded.seq, waiting = NULL WHERE camera_events.seq IS NULL",
        )?
        .execute(rusqlite::params![
            c.camera,
            c.event_id,
            row.lane,
            row.at_ms,
            (first + i as u64) as i64
        ])?;
    }
    Ok(())
}

impl Writer {
    /// Commits `rows` as the next events and returns the first's sequence number; nothing is
    /// written (and the counter does not move) if it fails.
    fn insert(&mut self, rows: &[NewRow<'_>]) -> Result<Seq, JournalError> {
        self.insert_with(rows, None)
    }

    /// [`Writer::insert`], and in the same commit the `camera_events` rows of the camera reads
    /// the rows carry, and of `waiting` (a read kept until its vehicle comes).
    fn insert_with(
        &mut self,
        rows: &[NewRow<'_>],
        waiting: Option<&WaitingRead<'_>>,
    ) -> Result<Seq, JournalError> {
        let before = self.last_seq;
        let cameras = waiting.is_some() || rows.iter().any(|r| camera_of(r.body).is_some());
        // One multi-row INSERT is one commit; batches larger than one statement may carry, or
        // that record camera reads beside their events, go in one explicit transaction.
        if rows.len() <= ROWS_PER_INSERT && !cameras {
            insert_rows(&self.conn, before + 1, rows)?;
        } else {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for (n, chunk) in rows.chunks(ROWS_PER_INSERT).enumerate() {
                let first = before + 1 + (n * ROWS_PER_INSERT) as u64;
                // A failure drops `tx`, which rolls the whole batch back.
                insert_rows(&tx, first, chunk)?;
            }
            record_camera_reads(&tx, before + 1, rows)?;
            if let Some(w) = waiting {
                let json =
                    serde_json::to_string(w.record).expect("camera records always serialise");
                tx.prepare_cached(
                    "INSERT INTO camera_events (camera, event_id, lane, at_ms, seq, waiting) \
                     VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT (camera, event_id) DO NOTHING",
                )?
                .execute(rusqlite::params![
                    w.record.camera,
                    w.record.event_id,
                    w.lane,
                    w.at_ms,
                    json
                ])?;
            }
            tx.commit()?;
        }
        self.last_seq = before + rows.len() as u64;
        Ok(before + 1)
    }

    /// Appends `bodies` in one commit and returns the first's sequence number; a journal alarm
    /// follows them if they take the journal past its threshold. While the journal is failing,
    /// or if this commit fails, the events go to the backlog instead.
    fn append(
        &mut self,
        capacity: u64,
        at: DateTime<Utc>,
        lane: &str,
        bodies: &[EventBody],
    ) -> Result<Seq, JournalError> {
        self.append_with(capacity, at, lane, bodies, None)
    }

    /// [`Writer::append`], keeping `waiting` in `camera_events` in the same commit. In an
    /// outage the waiting read is not written (its lane keeps it in memory, and the event that
    /// finally carries it waits in the backlog like any other).
    fn append_with(
        &mut self,
        capacity: u64,
        at: DateTime<Utc>,
        lane: &str,
        bodies: &[EventBody],
        waiting: Option<&PlateReadRecord>,
    ) -> Result<Seq, JournalError> {
        if bodies.is_empty() && waiting.is_none() {
            return Ok(self.last_seq + 1);
        }
        let at_ms = at.timestamp_millis();
        if self.outage.is_none() {
            let rows: Vec<NewRow<'_>> = bodies
                .iter()
                .map(|body| NewRow { at_ms, lane, body })
                .collect();
            let waiting = waiting.map(|record| WaitingRead {
                record,
                lane,
                at_ms,
            });
            match self.insert_with(&rows, waiting.as_ref()) {
                Ok(first) => {
                    self.raise_alarm(capacity, at_ms, lane);
                    return Ok(first);
                }
                Err(e) => self.begin_outage(at, &e),
            }
        }
        self.failures += 1;
        if let Some(outage) = self.outage.as_mut() {
            outage.failed_commits += 1;
        }
        for body in bodies {
            self.defer(at_ms, lane, body.clone());
        }
        Err(self.not_written())
    }

    /// Journals the alarm event if the journal has just passed its threshold.
    fn raise_alarm(&mut self, capacity: u64, at_ms: i64, lane: &str) {
        let stored = self.stored();
        if self.alarm_raised || stored * 100 < capacity * ALARM_PERCENT {
            return;
        }
        self.alarm_raised = true;
        let alarm = EventBody::JournalAlarm { stored, capacity };
        let row = NewRow {
            at_ms,
            lane,
            body: &alarm,
        };
        if let Err(e) = self.insert(std::slice::from_ref(&row)) {
            self.begin_outage(at_from_ms(at_ms), &e);
            self.defer(at_ms, lane, alarm);
        }
    }

    fn begin_outage(&mut self, at: DateTime<Utc>, error: &JournalError) {
        if self.outage.is_some() {
            return;
        }
        tracing::error!(error = %error, "the journal cannot write: the lanes carry on, events wait in memory until it can");
        self.outage = Some(Outage {
            since: at,
            error: error.to_string(),
            failed_commits: 0,
            kept: 0,
            lost: 0,
            lost_from: None,
            lost_to: None,
        });
    }

    /// Keeps an event that could not be committed, or counts it lost if the backlog is full.
    fn defer(&mut self, at_ms: i64, lane: &str, body: EventBody) {
        let outage = self
            .outage
            .as_mut()
            .expect("events are deferred only in an outage");
        if self.backlog.len() < self.backlog_limit {
            outage.kept += 1;
            self.backlog.push_back(Deferred {
                at_ms,
                lane: lane.to_string(),
                body,
            });
        } else {
            if outage.lost == 0 {
                tracing::error!(
                    limit = self.backlog_limit,
                    "the journal's in-memory backlog is full: further events are counted as lost until the journal can write"
                );
            }
            let at = at_from_ms(at_ms);
            outage.lost += 1;
            outage.lost_from.get_or_insert(at);
            outage.lost_to = Some(at);
            self.lost += 1;
        }
    }

    fn not_written(&self) -> JournalError {
        JournalError::NotWritten {
            cause: self
                .outage
                .as_ref()
                .map(|o| o.error.clone())
                .unwrap_or_default(),
            waiting: self.backlog.len() as u64,
            lost: self.outage.as_ref().map_or(0, |o| o.lost),
        }
    }

    /// Writes up to one statement's worth of the backlog. Returns whether the journal is
    /// writing again (the backlog written and the outage recorded); `Err` if it still cannot.
    fn drain_step(&mut self, capacity: u64) -> Result<bool, JournalError> {
        if self.outage.is_none() {
            return Ok(true);
        }
        if self.backlog.is_empty() {
            let Some(outage) = self.outage.take() else {
                return Ok(true);
            };
            let now = Utc::now();
            let record = EventBody::JournalWriteFailed {
                since: outage.since,
                until: now,
                error: outage.error.clone(),
                failed_commits: outage.failed_commits,
                kept: outage.kept,
                lost: outage.lost,
                lost_from: outage.lost_from,
                lost_to: outage.lost_to,
            };
            let at_ms = now.timestamp_millis();
            if let Err(e) = self.insert(&[NewRow {
                at_ms,
                lane: "",
                body: &record,
            }]) {
                self.outage = Some(outage);
                return Err(e);
            }
            tracing::warn!(
                kept = outage.kept,
                lost = outage.lost,
                "the journal writes again: the events kept in memory are written"
            );
            self.raise_alarm(capacity, at_ms, "");
            return Ok(self.outage.is_none());
        }
        let n = self.backlog.len().min(ROWS_PER_INSERT);
        let chunk: Vec<Deferred> = self.backlog.drain(..n).collect();
        let rows: Vec<NewRow<'_>> = chunk
            .iter()
            .map(|d| NewRow {
                at_ms: d.at_ms,
                lane: &d.lane,
                body: &d.body,
            })
            .collect();
        match self.insert(&rows) {
            Ok(_) => Ok(false),
            Err(e) => {
                // Back to the front, in order.
                for d in chunk.into_iter().rev() {
                    self.backlog.push_front(d);
                }
                Err(e)
            }
        }
    }

    /// At start: the camera reads that were waiting for their vehicle when the gate stopped
    /// will never meet it; each is journalled as ignored (`gate_restarted`), which resolves its
    /// row. A row whose read cannot be read back is dropped (and logged).
    fn give_up_waiting_reads(&mut self, capacity: u64) -> Result<(), JournalError> {
        let rows: Vec<(String, String, String, String)> = {
            let mut stmt = self.conn.prepare(
                "SELECT camera, event_id, lane, waiting FROM camera_events \
                 WHERE waiting IS NOT NULL ORDER BY at_ms",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?
        };
        for (camera, event_id, lane, json) in rows {
            match serde_json::from_str::<PlateReadRecord>(&json) {
                Ok(record) => {
                    let body = EventBody::PlateIgnored {
                        camera: record,
                        why: "gate_restarted".into(),
                    };
                    // A journal that cannot write keeps it in memory like any event (and the
                    // gate starts all the same); the row is resolved when it is written.
                    if let Err(e) =
                        self.append(capacity, Utc::now(), &lane, std::slice::from_ref(&body))
                    {
                        tracing::warn!(camera, event_id, error = %e, "a waiting camera read given up at start is not written yet");
                    }
                }
                Err(e) => {
                    tracing::error!(camera, event_id, error = %e, "a waiting camera read cannot be read back; dropped");
                    self.conn.execute(
                        "DELETE FROM camera_events WHERE camera = ?1 AND event_id = ?2",
                        rusqlite::params![camera, event_id],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Records the centre's acknowledgement and prunes (see [`Journal::acknowledge`]).
    /// Starts the write-ahead log over by counting the restart (SQLite writes nothing for a row
    /// left as it was, and only a write starts the log over), when something was written since
    /// the last restart (see [`Journal::checkpoint`]); returns whether it did.
    fn restart_log(&mut self) -> Result<bool, rusqlite::Error> {
        if self.conn.total_changes() == self.changes_at_restart {
            return Ok(false);
        }
        self.conn
            .prepare_cached("UPDATE log_restarts SET count = count + 1 WHERE id = 1")?
            .execute([])?;
        self.changes_at_restart = self.conn.total_changes();
        Ok(true)
    }

    fn acknowledge(&mut self, capacity: u64, seq: Seq) -> Result<(), JournalError> {
        let acked = seq.min(self.last_seq).max(self.acked_seq);
        if acked == self.acked_seq {
            return Ok(());
        }
        let (last_seq, mut first) = (self.last_seq, self.first_seq);
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE journal_state SET acked_seq = ? WHERE id = 1",
            [acked as i64],
        )?;
        if last_seq + 1 - first > capacity {
            // Prune the oldest acknowledged events down to capacity; never an unacknowledged one.
            let prune_through = (last_seq - capacity).min(acked);
            if prune_through >= first {
                tx.execute("DELETE FROM events WHERE seq <= ?", [prune_through as i64])?;
                tx.execute(
                    "DELETE FROM camera_events WHERE seq <= ?",
                    [prune_through as i64],
                )?;
                first = prune_through + 1;
            }
        }
        tx.commit()?;
        self.acked_seq = acked;
        self.first_seq = first;
        if self.stored() * 100 < capacity * REARM_PERCENT {
            self.alarm_raised = false;
        }
        Ok(())
    }
}

/// The journal: one writer, many readers, one SQLite file.
#[derive(Debug)]
pub struct Journal {
    writer: Arc<std::sync::Mutex<Writer>>,
    readers: SqlitePool,
    /// A writable connection of its own for checkpoints: a read-only connection cannot
    /// checkpoint (SQLite answers "disk I/O error"), and the writer's must not wait for one.
    checkpointer: Mutex<SqliteConnection>,
    capacity: u64,
    identity: JournalIdentity,
    /// The highest sequence committed, sent after every commit: the sync outbox waits on it
    /// instead of looking at the journal on a timer, so an event leaves the gate as soon as it
    /// is durable.
    written: tokio::sync::watch::Sender<Seq>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` and applies its migrations.
    pub async fn open(path: &Path, capacity: u64) -> Result<Journal, JournalError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let mut checkpointer = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/gate-journal")
            .run(&mut checkpointer)
            .await?;
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL is a property of the file (set above); `synchronous` is per connection. The
        // checkpoint loop syncs the log every `CHECKPOINT_INTERVAL`; the writer's own automatic
        // checkpoint stays as a backstop for journals opened without that loop (the CLI).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (min, max, acked): (Option<i64>, Option<i64>, i64) = conn.query_row(
            "SELECT (SELECT MIN(seq) FROM events), (SELECT MAX(seq) FROM events), \
             (SELECT acked_seq FROM journal_state WHERE id = 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let acked = acked as u64;
        let identity = conn.query_row(
            "SELECT journal_id, from_legacy FROM journal_identity WHERE id = 1",
            [],
            |r| {
                Ok(JournalIdentity {
                    id: r.get(0)?,
                    from_legacy: r.get::<_, i64>(1)? != 0,
                })
            },
        )?;
        let last_seq = max.map_or(acked, |m| m as u64);
        let first_seq = min.map_or(last_seq + 1, |m| m as u64);
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            // A connection comes back outside any transaction, or is closed (crate::pool): a
            // read transaction left open would pin an old snapshot and stall checkpoints.
            .after_release(|conn, _meta| Box::pin(crate::pool::outside_transaction(conn, true)))
            .connect_with(options.read_only(true))
            .await?;
        let mut writer = Writer {
            conn,
            last_seq,
            first_seq,
            acked_seq: acked,
            alarm_raised: false,
            backlog: VecDeque::new(),
            backlog_limit: DEFAULT_BACKLOG_LIMIT,
            outage: None,
            failures: 0,
            lost: 0,
            changes_at_restart: 0,
        };
        writer.alarm_raised = writer.stored() * 100 >= capacity.max(1) * ALARM_PERCENT;
        writer.give_up_waiting_reads(capacity.max(1))?;
        let (written, _) = tokio::sync::watch::channel(last_seq);
        Ok(Journal {
            writer: Arc::new(std::sync::Mutex::new(writer)),
            readers,
            checkpointer: Mutex::new(checkpointer),
            capacity: capacity.max(1),
            identity,
            written,
        })
    }

    /// The journal's identity, sent with every upload.
    pub fn identity(&self) -> &JournalIdentity {
        &self.identity
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().expect("journal writer lock poisoned")
    }

    /// A receiver of the highest sequence committed: it changes after every commit (and after
    /// a backlog written late), so a waiter wakes the moment there is something to upload.
    pub fn subscribe_written(&self) -> tokio::sync::watch::Receiver<Seq> {
        self.written.subscribe()
    }

    /// Tells the subscribers that the writer has committed up to `last`.
    fn announce(&self, last: Seq) {
        self.written.send_if_modified(|seen| {
            let moved = *seen != last;
            *seen = last;
            moved
        });
    }

    /// Sets how many events are kept in memory while the journal cannot write (default
    /// [`DEFAULT_BACKLOG_LIMIT`]).
    pub fn set_backlog_limit(&self, events: usize) {
        self.writer().backlog_limit = events;
    }

    /// Tries to write what waits in memory since a failed commit (see the module header), one
    /// statement at a time so that appends never wait long behind it. Returns whether the
    /// journal writes again (`true` also when nothing was failing); `Err` with the reason if it
    /// still cannot. The controller runs it with every checkpoint.
    pub async fn retry(&self) -> Result<bool, JournalError> {
        if self.writer().outage.is_none() {
            return Ok(true);
        }
        loop {
            let writer = self.writer.clone();
            let capacity = self.capacity;
            let step = tokio::task::spawn_blocking(move || {
                writer
                    .lock()
                    .expect("journal writer lock poisoned")
                    .drain_step(capacity)
            })
            .await
            .expect("writing the backlog does not panic")?;
            let last = self.writer().last_seq;
            self.announce(last);
            if step {
                return Ok(true);
            }
        }
    }

    /// Appends one event and returns its sequence number once it is committed.
    ///
    /// If this event takes the journal past 90 % full, a `journal_alarm` event follows it.
    pub async fn append(
        &self,
        at: DateTime<Utc>,
        lane: &str,
        body: EventBody,
    ) -> Result<Seq, JournalError> {
        let mut w = self.writer();
        let committed = w.append(self.capacity, at, lane, std::slice::from_ref(&body));
        let last = w.last_seq;
        drop(w);
        self.announce(last);
        committed
    }

    /// Appends several events in one transaction (one commit) and returns the sequence number of
    /// the first. The lane uses it to journal a decision and the barrier command it causes with a
    /// single commit before the command is sent.
    pub async fn append_batch(
        &self,
        at: DateTime<Utc>,
        lane: &str,
        bodies: &[EventBody],
    ) -> Result<Seq, JournalError> {
        let mut w = self.writer();
        let committed = w.append(self.capacity, at, lane, bodies);
        let last = w.last_seq;
        drop(w);
        self.announce(last);
        committed
    }

    /// Appends `bodies` (possibly none) and keeps `waiting`, a camera read that came before its
    /// vehicle, in `camera_events` in the same commit: from then on a repeat of that camera
    /// event is known ([`Journal::camera_read_known`]), and if the gate stops before an event
    /// carries the read, the next start journals it as ignored (`gate_restarted`). The event that
    /// finally carries it (its decision, or `plate_ignored`) resolves the row.
    pub async fn append_waiting(
        &self,
        at: DateTime<Utc>,
        lane: &str,
        bodies: &[EventBody],
        waiting: &PlateReadRecord,
    ) -> Result<Seq, JournalError> {
        let mut w = self.writer();
        let committed = w.append_with(self.capacity, at, lane, bodies, Some(waiting));
        let last = w.last_seq;
        drop(w);
        self.announce(last);
        committed
    }

    /// Whether this camera event was already received: journalled, waiting for its vehicle, or
    /// waiting in memory to be written. A primary-key look-up on the writer's connection
    /// (microseconds), so the lane can ask before it acts on a read.
    pub fn camera_read_known(&self, camera: &str, event_id: &str) -> Result<bool, JournalError> {
        let w = self.writer();
        let stored = w
            .conn
            .prepare_cached("SELECT 1 FROM camera_events WHERE camera = ?1 AND event_id = ?2")?
            .exists(rusqlite::params![camera, event_id])?;
        Ok(stored
            || w.backlog.iter().any(|d| {
                camera_of(&d.body).is_some_and(|c| c.camera == camera && c.event_id == event_id)
            }))
    }

    /// Records that the centre has stored every event up to and including `seq`, and prunes
    /// acknowledged events if the journal is over capacity.
    ///
    /// An acknowledgement beyond the last written event, or behind an earlier one, is clamped:
    /// the acknowledged sequence never moves backwards and never covers unwritten events.
    pub async fn acknowledge(&self, seq: Seq) -> Result<(), JournalError> {
        let writer = self.writer.clone();
        let capacity = self.capacity;
        tokio::task::spawn_blocking(move || {
            writer
                .lock()
                .expect("journal writer lock poisoned")
                .acknowledge(capacity, seq)
        })
        .await
        .expect("the acknowledgement does not panic")
    }

    /// Events after `after` (exclusive), oldest first, at most `limit`.
    pub async fn read_after(
        &self,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<JournalEvent>, JournalError> {
        let rows = sqlx::query(
            "SELECT seq, at_ms, lane, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter().map(row_to_event).collect()
    }

    /// The newest `limit` events, newest first.
    pub async fn read_latest(&self, limit: u32) -> Result<Vec<JournalEvent>, JournalError> {
        let rows =
            sqlx::query("SELECT seq, at_ms, lane, body FROM events ORDER BY seq DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&self.readers)
                .await?;
        rows.into_iter().map(row_to_event).collect()
    }

    /// The journal's counters.
    pub async fn stats(&self) -> JournalStats {
        let w = self.writer();
        JournalStats {
            last_seq: w.last_seq,
            acked_seq: w.acked_seq,
            stored: w.stored(),
            pending: w.last_seq - w.acked_seq,
            capacity: self.capacity,
            write_failing: w.outage.is_some(),
            write_failures: w.failures,
            waiting: w.backlog.len() as u64,
            lost: w.lost,
        }
    }

    /// Forces the write-ahead log to disk (a passive checkpoint syncs the WAL first). Run it
    /// every [`CHECKPOINT_INTERVAL`]; it does not block appends.
    ///
    /// **It also restarts the log, so that a lane's commit does not.** Once a checkpoint has
    /// copied every frame of the log into the database, SQLite's next write starts the log
    /// over from its beginning, and a connection at `synchronous = NORMAL` *syncs the new log
    /// header* in that commit (an fsync: 0.3–0.6 ms on a virtual disk, milliseconds on an SD
    /// card). With a checkpoint every quarter second that was the first commit after almost
    /// every checkpoint, and at a vehicle a quarter second apart, most often the commit of a
    /// decision and its OPEN: the OPEN waited for the disk (`benches/gate_latency.rs`: 630–750 µs
    /// from the tag report to the OPEN with the fsync, 140–170 µs without). So after a
    /// checkpoint that copied everything, this changes one row (`log_restarts`) on the
    /// writer's connection, on the blocking pool: the restart and its fsync happen here. A lane
    /// commit that comes in the same half millisecond waits for the writer's lock; every other
    /// one appends to a started log. An idle gate is not restarted again until something else
    /// is written.
    pub async fn checkpoint(&self) -> Result<(), JournalError> {
        let (busy, log, copied): (i64, i64, i64) = {
            let mut conn = self.checkpointer.lock().await;
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut *conn)
                .await?
        };
        if busy == 0 && log > 0 && copied == log {
            let writer = self.writer.clone();
            let restarted = tokio::task::spawn_blocking(move || {
                writer
                    .lock()
                    .expect("journal writer lock poisoned")
                    .restart_log()
            })
            .await;
            match restarted {
                Ok(Ok(_)) => {}
                // Not an error of the checkpoint: the next commit restarts the log itself.
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot restart the journal's log"),
                Err(e) => tracing::debug!(error = %e, "the log restart did not run"),
            }
        }
        Ok(())
    }
}

fn at_from_ms(at_ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(at_ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn row_to_event(row: sqlx::sqlite::SqliteRow) -> Result<JournalEvent, JournalError> {
    let seq = row.get::<i64, _>(0) as u64;
    let at_ms: i64 = row.get(1);
    let body: String = row.get(3);
    Ok(JournalEvent {
        seq,
        at: at_from_ms(at_ms),
        lane: row.get(2),
        body: serde_json::from_str(&body)
            .map_err(|source| JournalError::Corrupt { seq, source })?,
    })
}

#[cfg(test)]
mod tests;
