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
//! # Capacity and pruning
//! The journal holds at least `capacity` events (1,000,000 by default). When it passes 90 % full
//! it journals a `journal_alarm` event (once, re-armed below 80 %). Only events the centre has
//! acknowledged are ever deleted, and only when the journal is over capacity: an undelivered
//! event is never pruned, however full the journal is.
//!
//! This module never decides anything and never talks to devices or the network.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::Mutex;

/// How often the controller should call [`Journal::checkpoint`]: the bound on what a power cut
/// can lose.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// The default number of events the journal keeps at least (issue: ≥ 1,000,000).
pub const DEFAULT_CAPACITY: u64 = 1_000_000;

/// Fill ratio (in percent) at which the journal raises its alarm event.
const ALARM_PERCENT: u64 = 90;
/// Fill ratio (in percent) below which the alarm re-arms.
const REARM_PERCENT: u64 = 80;

/// A per-gate event sequence number. The first event is 1.
pub type Seq = u64;

/// One journalled event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    pub seq: Seq,
    /// When it happened, by the gate's clock.
    pub at: DateTime<Utc>,
    /// The lane's id within its gate (e.g. `entry`, `exit`, `two-way`).
    pub lane: String,
    pub body: EventBody,
}

/// What happened. This is the wire form too: the gate uploads it as is, and the centre stores
/// it. Codes are stable snake_case strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A credential was presented and decided (granted, or denied with its reason).
    Decision(DecisionRecord),
    /// The controller commanded the barrier.
    Barrier {
        action: BarrierAction,
        /// Why: `grant`, `guard`, `locked_open`, `fire`, `auto_close`, `startup`, ...
        cause: String,
    },
    /// A vehicle drove through the lane (it crossed and cleared the safety loop).
    Passage {
        direction: String,
        plate: Option<String>,
        vehicle_id: Option<i64>,
        permit_id: Option<i64>,
    },
    /// A guard opened or held the lane by hand.
    Override {
        operator: String,
        action: String,
        /// One of the reason codes (visitor_registered, police_fire_ambulance, ...).
        reason: String,
        note: Option<String>,
    },
    /// The lane's mode changed (normal, locked_closed, locked_open, manual_only_*).
    ModeChange {
        from: String,
        to: String,
        by: String,
    },
    /// A device went offline, came back, or reported a fault.
    Device {
        device: String,
        status: String,
        detail: String,
    },
    /// The lane itself saw a fault (arm did not reach its limit, I/O read failed, tamper).
    LaneFault { fault: String, detail: String },
    /// A tag was read but not acted on (e.g. no vehicle on the presence loop: a skim, a
    /// neighbouring lane or an attack). Journalled once per tag hold time.
    TagIgnored {
        epc: String,
        antenna: u8,
        rssi_dbm: i16,
        why: String,
    },
    /// The journal passed its alarm threshold.
    JournalAlarm { stored: u64, capacity: u64 },
}

impl EventBody {
    /// The stable kind code stored beside the body for filtering.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Decision(_) => "decision",
            EventBody::Barrier { .. } => "barrier",
            EventBody::Passage { .. } => "passage",
            EventBody::Override { .. } => "override",
            EventBody::ModeChange { .. } => "mode_change",
            EventBody::Device { .. } => "device",
            EventBody::LaneFault { .. } => "lane_fault",
            EventBody::TagIgnored { .. } => "tag_ignored",
            EventBody::JournalAlarm { .. } => "journal_alarm",
        }
    }
}

/// A decided credential, as journalled and uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub direction: String,
    /// `tag` or `plate`.
    pub credential: String,
    /// The tag's EPC in upper-case hex, for tag reads.
    pub epc: Option<String>,
    pub tid: Option<String>,
    pub antenna: Option<u8>,
    pub rssi_dbm: Option<i16>,
    pub plate: Option<String>,
    pub granted: bool,
    /// The stable reason code (`granted`, `denied_revoked`, ...).
    pub reason: String,
    pub flags: Vec<String>,
    pub permit_id: Option<i64>,
    pub vehicle_id: Option<i64>,
    pub holder: Option<String>,
    pub category: Option<String>,
    /// The permit data version the decision was made on.
    pub data_version: u64,
    /// Decision time in nanoseconds, for the latency histogram.
    pub decide_ns: u64,
}

/// A barrier command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarrierAction {
    Open,
    Close,
    Hold,
    Release,
}

/// What can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("journal.db: {}", crate::gate::store::migration_message(.0))]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("event {seq} is not valid JSON: {source}")]
    Corrupt { seq: Seq, source: serde_json::Error },
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
}

impl JournalStats {
    /// Fill in percent of capacity (may exceed 100 when undelivered events pile up).
    pub fn fill_percent(&self) -> u64 {
        self.stored * 100 / self.capacity.max(1)
    }
}

#[derive(Debug)]
struct Writer {
    conn: SqliteConnection,
    /// The highest sequence number committed.
    last_seq: Seq,
    /// The lowest sequence number still stored (last_seq + 1 when empty).
    first_seq: Seq,
    acked_seq: Seq,
    alarm_raised: bool,
}

impl Writer {
    fn stored(&self) -> u64 {
        self.last_seq + 1 - self.first_seq
    }

    async fn insert(
        &mut self,
        at: DateTime<Utc>,
        lane: &str,
        body: &EventBody,
    ) -> Result<Seq, JournalError> {
        let seq = self.last_seq + 1;
        let json = serde_json::to_string(body).expect("event bodies always serialise");
        sqlx::query("INSERT INTO events (seq, at_ms, lane, kind, body) VALUES (?, ?, ?, ?, ?)")
            .bind(seq as i64)
            .bind(at.timestamp_millis())
            .bind(lane)
            .bind(body.kind())
            .bind(json)
            .execute(&mut self.conn)
            .await?;
        self.last_seq = seq;
        Ok(seq)
    }
}

/// Rows per multi-row INSERT: five parameters each, under SQLite's historical limit of 999.
const ROWS_PER_INSERT: usize = 150;

/// Inserts `bodies` as events `first`, `first + 1`, … in one statement.
async fn insert_rows(
    conn: &mut SqliteConnection,
    first: Seq,
    at: DateTime<Utc>,
    lane: &str,
    bodies: &[EventBody],
) -> Result<(), JournalError> {
    let mut sql = String::from("INSERT INTO events (seq, at_ms, lane, kind, body) VALUES ");
    for i in 0..bodies.len() {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?)"
        });
    }
    let mut query = sqlx::query(&sql);
    for (i, body) in bodies.iter().enumerate() {
        let json = serde_json::to_string(body).expect("event bodies always serialise");
        query = query
            .bind((first + i as u64) as i64)
            .bind(at.timestamp_millis())
            .bind(lane)
            .bind(body.kind())
            .bind(json);
    }
    query.execute(conn).await?;
    Ok(())
}

/// The journal: one writer, many readers, one SQLite file.
#[derive(Debug)]
pub struct Journal {
    writer: Mutex<Writer>,
    readers: SqlitePool,
    /// A writable connection of its own for checkpoints: a read-only connection cannot
    /// checkpoint (SQLite answers "disk I/O error"), and the writer's must not wait for one.
    checkpointer: Mutex<SqliteConnection>,
    capacity: u64,
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
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/gate-journal")
            .run(&mut conn)
            .await?;
        let row = sqlx::query(
            "SELECT (SELECT MIN(seq) FROM events), (SELECT MAX(seq) FROM events), \
             (SELECT acked_seq FROM journal_state WHERE id = 1)",
        )
        .fetch_one(&mut conn)
        .await?;
        let min: Option<i64> = row.get(0);
        let max: Option<i64> = row.get(1);
        let acked = row.get::<i64, _>(2) as u64;
        let last_seq = max.map_or(acked, |m| m as u64);
        let first_seq = min.map_or(last_seq + 1, |m| m as u64);
        let checkpointer = SqliteConnection::connect_with(&options).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let mut writer = Writer {
            conn,
            last_seq,
            first_seq,
            acked_seq: acked,
            alarm_raised: false,
        };
        writer.alarm_raised = writer.stored() * 100 >= capacity.max(1) * ALARM_PERCENT;
        Ok(Journal {
            writer: Mutex::new(writer),
            readers,
            checkpointer: Mutex::new(checkpointer),
            capacity: capacity.max(1),
        })
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
        let mut w = self.writer.lock().await;
        let seq = w.insert(at, lane, &body).await?;
        let stored = w.stored();
        if !w.alarm_raised && stored * 100 >= self.capacity * ALARM_PERCENT {
            let alarm = EventBody::JournalAlarm {
                stored,
                capacity: self.capacity,
            };
            w.insert(at, lane, &alarm).await?;
            w.alarm_raised = true;
        }
        Ok(seq)
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
        let mut guard = self.writer.lock().await;
        let w = &mut *guard;
        let before = w.last_seq;
        if bodies.is_empty() {
            return Ok(before + 1);
        }
        // One multi-row INSERT: a single statement is atomic in SQLite (all rows or none), and
        // it is one round trip to the connection's thread instead of four (BEGIN, two INSERTs,
        // COMMIT) — this commit is on the path from tag read to OPEN. Batches larger than one
        // statement may carry go in one explicit transaction.
        if bodies.len() <= ROWS_PER_INSERT {
            insert_rows(&mut w.conn, before + 1, at, lane, bodies).await?;
        } else {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut w.conn).await?;
            let mut outcome = Ok(());
            for (n, chunk) in bodies.chunks(ROWS_PER_INSERT).enumerate() {
                let first = before + 1 + (n * ROWS_PER_INSERT) as u64;
                outcome = insert_rows(&mut w.conn, first, at, lane, chunk).await;
                if outcome.is_err() {
                    break;
                }
            }
            if outcome.is_ok() {
                outcome = sqlx::query("COMMIT")
                    .execute(&mut w.conn)
                    .await
                    .map(|_| ())
                    .map_err(JournalError::from);
            }
            if let Err(e) = outcome {
                let _ = sqlx::query("ROLLBACK").execute(&mut w.conn).await;
                return Err(e);
            }
        }
        w.last_seq = before + bodies.len() as u64;
        let stored = w.stored();
        if !w.alarm_raised && stored * 100 >= self.capacity * ALARM_PERCENT {
            let alarm = EventBody::JournalAlarm {
                stored,
                capacity: self.capacity,
            };
            w.insert(at, lane, &alarm).await?;
            w.alarm_raised = true;
        }
        Ok(before + 1)
    }

    /// Records that the centre has stored every event up to and including `seq`, and prunes
    /// acknowledged events if the journal is over capacity.
    ///
    /// An acknowledgement beyond the last written event, or behind an earlier one, is clamped:
    /// the acknowledged sequence never moves backwards and never covers unwritten events.
    pub async fn acknowledge(&self, seq: Seq) -> Result<(), JournalError> {
        let mut guard = self.writer.lock().await;
        let w = &mut *guard;
        let acked = seq.min(w.last_seq).max(w.acked_seq);
        if acked == w.acked_seq {
            return Ok(());
        }
        let (last_seq, mut first) = (w.last_seq, w.first_seq);
        let mut tx = w.conn.begin().await?;
        sqlx::query("UPDATE journal_state SET acked_seq = ? WHERE id = 1")
            .bind(acked as i64)
            .execute(&mut *tx)
            .await?;
        if last_seq + 1 - first > self.capacity {
            // Prune the oldest acknowledged events down to capacity; never an unacknowledged one.
            let prune_through = (last_seq - self.capacity).min(acked);
            if prune_through >= first {
                sqlx::query("DELETE FROM events WHERE seq <= ?")
                    .bind(prune_through as i64)
                    .execute(&mut *tx)
                    .await?;
                first = prune_through + 1;
            }
        }
        tx.commit().await?;
        w.acked_seq = acked;
        w.first_seq = first;
        if w.stored() * 100 < self.capacity * REARM_PERCENT {
            w.alarm_raised = false;
        }
        Ok(())
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
        let w = self.writer.lock().await;
        JournalStats {
            last_seq: w.last_seq,
            acked_seq: w.acked_seq,
            stored: w.stored(),
            pending: w.last_seq - w.acked_seq,
            capacity: self.capacity,
        }
    }

    /// Forces the write-ahead log to disk (a passive checkpoint syncs the WAL first). Run it
    /// every [`CHECKPOINT_INTERVAL`]; it does not block appends.
    pub async fn checkpoint(&self) -> Result<(), JournalError> {
        let mut conn = self.checkpointer.lock().await;
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

fn row_to_event(row: sqlx::sqlite::SqliteRow) -> Result<JournalEvent, JournalError> {
    let seq = row.get::<i64, _>(0) as u64;
    let at_ms: i64 = row.get(1);
    let body: String = row.get(3);
    Ok(JournalEvent {
        seq,
        at: Utc
            .timestamp_millis_opt(at_ms)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        lane: row.get(2),
        body: serde_json::from_str(&body)
            .map_err(|source| JournalError::Corrupt { seq, source })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn barrier(action: BarrierAction) -> EventBody {
        EventBody::Barrier {
            action,
            cause: "grant".into(),
        }
    }

    #[tokio::test]
    async fn sequence_numbers_are_contiguous_and_resume_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let journal = Journal::open(&path, 100).await.unwrap();
        for expected in 1..=5 {
            let seq = journal
                .append(Utc::now(), "entry", barrier(BarrierAction::Open))
                .await
                .unwrap();
            assert_eq!(seq, expected);
        }
        drop(journal);
        let journal = Journal::open(&path, 100).await.unwrap();
        let seq = journal
            .append(Utc::now(), "entry", barrier(BarrierAction::Close))
            .await
            .unwrap();
        assert_eq!(seq, 6);
        let events = journal.read_after(0, 100).await.unwrap();
        let seqs: Vec<_> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(events[5].body, barrier(BarrierAction::Close));
    }

    #[tokio::test]
    async fn a_batch_is_committed_whole_with_consecutive_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db"), 100).await.unwrap();
        journal
            .append(Utc::now(), "entry", barrier(BarrierAction::Close))
            .await
            .unwrap();
        let bodies = [barrier(BarrierAction::Open), barrier(BarrierAction::Hold)];
        let first = journal
            .append_batch(Utc::now(), "entry", &bodies)
            .await
            .unwrap();
        assert_eq!(first, 2);
        let events = journal.read_after(1, 10).await.unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(events[1].body, bodies[1]);
    }

    #[tokio::test]
    async fn a_batch_longer_than_one_statement_keeps_its_sequence_contiguous() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db"), 10_000)
            .await
            .unwrap();
        let bodies: Vec<EventBody> = (0..ROWS_PER_INSERT * 2 + 7)
            .map(|i| EventBody::LaneFault {
                fault: "test".into(),
                detail: i.to_string(),
            })
            .collect();
        assert_eq!(
            journal
                .append_batch(Utc::now(), "entry", &bodies)
                .await
                .unwrap(),
            1
        );
        let events = journal.read_after(0, 10_000).await.unwrap();
        assert_eq!(events.len(), bodies.len());
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event.seq, n as u64 + 1);
            assert_eq!(event.body, bodies[n]);
        }
        assert_eq!(journal.stats().await.last_seq, bodies.len() as u64);
    }

    #[tokio::test]
    async fn a_journal_at_ninety_percent_raises_one_alarm_event() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db"), 10).await.unwrap();
        for _ in 0..12 {
            journal
                .append(Utc::now(), "entry", barrier(BarrierAction::Open))
                .await
                .unwrap();
        }
        let events = journal.read_after(0, 100).await.unwrap();
        let alarms: Vec<_> = events
            .iter()
            .filter(|e| matches!(e.body, EventBody::JournalAlarm { .. }))
            .collect();
        assert_eq!(alarms.len(), 1, "one alarm, not one per event");
        assert_eq!(alarms[0].seq, 10, "raised right after the ninth event");
    }

    #[tokio::test]
    async fn only_acknowledged_events_are_pruned_and_only_beyond_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db"), 10).await.unwrap();
        for _ in 0..20 {
            journal
                .append(Utc::now(), "entry", barrier(BarrierAction::Open))
                .await
                .unwrap();
        }
        // 21 events stored (20 + the alarm), none acknowledged: nothing may go.
        journal.acknowledge(0).await.unwrap();
        assert_eq!(journal.stats().await.stored, 21);
        // The centre has 1..=5: those five may go, nothing after them.
        journal.acknowledge(5).await.unwrap();
        let stats = journal.stats().await;
        assert_eq!(stats.stored, 16);
        assert_eq!(stats.acked_seq, 5);
        assert_eq!(journal.read_after(0, 1).await.unwrap()[0].seq, 6);
        // Everything acknowledged: pruned down to capacity, the newest kept.
        journal.acknowledge(21).await.unwrap();
        let stats = journal.stats().await;
        assert_eq!(stats.stored, 10);
        assert_eq!(stats.pending, 0);
        assert_eq!(journal.read_after(0, 1).await.unwrap()[0].seq, 12);
    }

    #[tokio::test]
    async fn an_acknowledgement_never_moves_backwards_or_past_the_last_event() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db"), 100).await.unwrap();
        for _ in 0..3 {
            journal
                .append(Utc::now(), "entry", barrier(BarrierAction::Open))
                .await
                .unwrap();
        }
        journal.acknowledge(99).await.unwrap();
        assert_eq!(journal.stats().await.acked_seq, 3);
        journal.acknowledge(1).await.unwrap();
        assert_eq!(journal.stats().await.acked_seq, 3);
    }

    #[tokio::test]
    async fn a_fully_pruned_journal_resumes_its_sequence_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let journal = Journal::open(&path, 1).await.unwrap();
        for _ in 0..3 {
            journal
                .append(Utc::now(), "entry", barrier(BarrierAction::Open))
                .await
                .unwrap();
        }
        let last = journal.stats().await.last_seq;
        journal.acknowledge(last).await.unwrap();
        drop(journal);
        let journal = Journal::open(&path, 1).await.unwrap();
        let seq = journal
            .append(Utc::now(), "entry", barrier(BarrierAction::Open))
            .await
            .unwrap();
        assert_eq!(seq, last + 1);
    }
}
