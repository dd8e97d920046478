//! A gate journal whose sequence numbers go back after the centre acknowledged them: nothing is
//! lost, and the centre raises an `event_conflict` alarm.
//!
//! Two ways a journal rewinds in the field: a power cut takes the WAL's unsynced tail (or an
//! older copy of `journal.db` is restored) — the same journal, its id unchanged, reuses numbers
//! the centre already holds; or `journal.db` is replaced by a fresh one — a new journal whose
//! numbers start again at 1. The gate here is the real controller (`GateHandle`, no lanes: the
//! events are journalled straight through its journal) syncing over mutual TLS; the rewind is
//! made by stopping the gate and putting an older copy of its journal files in place, which is
//! exactly what the disk holds after losing the tail. Deterministic: no timing is involved.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use gatehouse::central::db::Db;
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::runtime::GateHandle;
use gatehouse::sync::client::Outbox;
use gatehouse::wire::journal::{EventBody, JournalIdentity};
use gatehouse::wire::sync::{EventAck, EventBatch};
use sqlx::Row;

use crate::support::harness::{count, each_database};
use crate::support::{Central, Syncing};

/// The journal's three files (the database, its write-ahead log and the shared-memory index).
const FILES: [&str; 3] = ["journal.db", "journal.db-wal", "journal.db-shm"];

/// A gate controller with no lanes on `data`, as gate 1.
pub(super) async fn start_gate(data: &Path) -> GateHandle {
    let toml = format!(
        "[gate]\nid = 1\nname = \"rewind\"\ndata_dir = \"{}\"\n",
        data.display()
    );
    GateHandle::start(GateConfig::parse(&toml).unwrap())
        .await
        .unwrap()
}

/// A passage through lane `in`, told apart by `tag` (in the plate) and its time.
fn passage(tag: &str, n: u32) -> EventBody {
    EventBody::Passage {
        direction: if n.is_multiple_of(2) { "entry" } else { "exit" }.into(),
        plate: Some(format!("京A{tag}{n:03}")),
        vehicle_id: None,
        permit_id: None,
    }
}

/// Journals `n` passages tagged `tag`, one a second from `from_s` past 08:00.
async fn journal(gate: &GateHandle, tag: &str, from_s: i64, n: u32) {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
    for i in 0..n {
        gate.journal()
            .append(
                t0 + chrono::Duration::seconds(from_s + i64::from(i)),
                "in",
                passage(tag, i),
            )
            .await
            .unwrap();
    }
}

/// Uploads until the gate has nothing left to send.
async fn drain(sync: &Syncing, gate: &GateHandle) {
    while let Outbox::Synced { .. } = sync.client.sync_once(gate).await.unwrap() {}
}

/// A consistent copy of the journal as it stands (SQLite's `VACUUM INTO`, from a connection of
/// its own while the gate runs): what the disk will hold after the power cut.
fn snapshot_journal(data: &Path, to: &Path) {
    let conn = rusqlite::Connection::open(data.join("journal.db")).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// Removes the journal's files. Removed, not overwritten: a connection of the stopped gate that
/// is still closing writes to its own (now unlinked) files, never to what replaces them.
fn remove_journal(data: &Path) {
    for name in FILES {
        match std::fs::remove_file(data.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

/// Every plate the centre holds for gate 1, stored events and quarantined ones, as
/// (journal number, seq, plate).
async fn held(db: &Db, table: &str) -> Vec<(i64, i64, String)> {
    let sql = format!(
        "SELECT journal_no, seq, body FROM {table} WHERE gate_id = 1 ORDER BY journal_no, seq"
    );
    sqlx::query(&sql)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: serde_json::Value =
                serde_json::from_str(&r.get::<String, _>("body")).unwrap();
            (
                r.get("journal_no"),
                r.get("seq"),
                body["plate"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The passages the statistics counted for gate 1.
async fn counted_passages(db: &Db) -> i64 {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(passages) AS BIGINT) FROM stats_flows WHERE gate_id = 1",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    n.unwrap_or(0)
}

/// The notes of gate 1's `event_conflict` alarms.
async fn conflict_alarms(db: &Db) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT note FROM alarms WHERE gate_id = 1 AND kind = 'event_conflict' ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

fn plates(tag: &str, n: u32) -> Vec<String> {
    (0..n).map(|i| format!("京A{tag}{i:03}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_lost_its_acknowledged_tail_reuses_numbers_and_the_centre_keeps_every_new_event_and_raises_event_conflict()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        let db = central.app.state.db.clone();
        let dir = tempfile::tempdir().unwrap();
        let (data, older) = (dir.path().join("data"), dir.path().join("older.db"));
        let sync = Syncing::connect(&central, 1).await;

        // Four passages, synced to disk: the state the power cut will return to.
        let gate = start_gate(&data).await;
        let identity = gate.journal().identity().clone();
        journal(&gate, "B", 0, 4).await;
        snapshot_journal(&data, &older);

        // Four more, uploaded and acknowledged: the centre holds 1..=8.
        journal(&gate, "L", 100, 4).await;
        drain(&sync, &gate).await;
        assert_eq!(gate.journal_stats().await.acked_seq, 8);
        gate.shutdown().await;

        // The power cut: the tail (5..=8 and their acknowledgement) is gone. The gate carries
        // on with six new passages, numbered 5..=10 again.
        remove_journal(&data);
        std::fs::copy(&older, data.join("journal.db")).unwrap();
        let gate = start_gate(&data).await;
        assert_eq!(gate.journal().identity(), &identity, "the same journal");
        assert_eq!(gate.journal_stats().await.last_seq, 4);
        journal(&gate, "A", 200, 6).await;
        drain(&sync, &gate).await;
        let stats = gate.journal_stats().await;
        assert_eq!(
            (stats.last_seq, stats.acked_seq),
            (10, 10),
            "{:?}",
            central.app.kind
        );

        // Nothing is lost: the centre holds every passage the gate ever journalled, the new
        // ones under numbers it already had kept in quarantine.
        let stored = held(&db, "passage_events").await;
        let quarantined = held(&db, "event_conflicts").await;
        let mut all: Vec<String> = stored
            .iter()
            .chain(&quarantined)
            .map(|h| h.2.clone())
            .collect();
        all.sort();
        let mut expected = [plates("B", 4), plates("L", 4), plates("A", 6)].concat();
        expected.sort();
        assert_eq!(all, expected, "{:?}", central.app.kind);
        let seqs = |h: &[(i64, i64, String)]| h.iter().map(|h| h.1).collect::<Vec<_>>();
        assert_eq!(seqs(&stored), (1..=10).collect::<Vec<_>>());
        assert_eq!(seqs(&quarantined), vec![5, 6, 7, 8]);
        assert!(quarantined.iter().all(|h| h.2.starts_with("京AA")));
        // Statistics count each stored event once; the quarantined ones are for a person to
        // review, not counted.
        assert_eq!(counted_passages(&db).await, 10);

        // The conflict is alarmed once and audited.
        let alarms = conflict_alarms(&db).await;
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert!(alarms[0].contains("numbered 5–8"), "{}", alarms[0]);
        assert!(alarms[0].contains(&identity.id), "{}", alarms[0]);
        let audit = count(
            &db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'event_conflict' AND entity_id = '1'",
        )
        .await;
        assert_eq!(audit, 1);

        // The same upload sent again (its acknowledgement lost): duplicates and known
        // conflicts, no second alarm, nothing more stored.
        let events = gate.journal().read_after(0, 100).await.unwrap();
        let ack: EventAck = central
            .gate_http(1)
            .post(format!("{}/sync/v1/events", central.sync.url()))
            .json(&EventBatch {
                gate_id: 1,
                journal: Some(identity.clone()),
                events,
            })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                ack.highest_contiguous,
                ack.stored,
                ack.duplicates,
                ack.conflicts
            ),
            (10, 0, 6, 4)
        );
        assert_eq!(conflict_alarms(&db).await.len(), 1);
        assert_eq!(held(&db, "event_conflicts").await.len(), 4);
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_journal_starting_again_from_one_has_every_event_stored_once_and_raises_event_conflict()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        let db = central.app.state.db.clone();
        let dir = tempfile::tempdir().unwrap();
        let data: PathBuf = dir.path().join("data");
        let sync = Syncing::connect(&central, 1).await;

        let gate = start_gate(&data).await;
        let old = gate.journal().identity().clone();
        journal(&gate, "O", 0, 5).await;
        drain(&sync, &gate).await;
        assert_eq!(gate.journal_stats().await.acked_seq, 5);
        gate.shutdown().await;

        // journal.db replaced by a fresh one (a new SD card, a reinstall).
        remove_journal(&data);
        let gate = start_gate(&data).await;
        let new: JournalIdentity = gate.journal().identity().clone();
        assert_ne!(new.id, old.id);
        journal(&gate, "N", 100, 3).await;
        drain(&sync, &gate).await;
        let stats = gate.journal_stats().await;
        assert_eq!(
            (stats.last_seq, stats.acked_seq),
            (3, 3),
            "{:?}",
            central.app.kind
        );

        // Both journals' events stored, each under its own journal; nothing quarantined.
        let stored = held(&db, "passage_events").await;
        let mut all: Vec<String> = stored.iter().map(|h| h.2.clone()).collect();
        all.sort();
        let mut expected = [plates("O", 5), plates("N", 3)].concat();
        expected.sort();
        assert_eq!(all, expected, "{:?}", central.app.kind);
        let journals: std::collections::BTreeSet<i64> = stored.iter().map(|h| h.0).collect();
        assert_eq!(journals.len(), 2);
        assert!(held(&db, "event_conflicts").await.is_empty());
        assert_eq!(
            counted_passages(&db).await,
            8,
            "each stored passage counted once"
        );

        // The new journal is acknowledged from its own numbers, shown, and alarmed once.
        let health = gatehouse::central::repo::sync::health(&db).await.unwrap();
        let g1 = health.iter().find(|h| h.gate_id == 1).unwrap();
        assert_eq!((g1.events_watermark, g1.missing_from), (3, None));
        let alarms = conflict_alarms(&db).await;
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert!(alarms[0].contains("journal replaced"), "{}", alarms[0]);
        assert!(alarms[0].contains(&new.id), "{}", alarms[0]);
        journal(&gate, "M", 200, 2).await;
        drain(&sync, &gate).await;
        assert_eq!(conflict_alarms(&db).await.len(), 1, "once per journal");
        assert_eq!(gate.journal_stats().await.acked_seq, 5);
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_from_before_journal_ids_keeps_its_numbering_when_its_journal_gets_an_id() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let db = central.app.state.db.clone();
        let http = central.gate_http(1);
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap();
        let event = |seq: u64| gatehouse::wire::journal::JournalEvent {
            seq,
            at: t0 + chrono::Duration::seconds(seq as i64),
            lane: "in".into(),
            body: passage("P", seq as u32),
        };
        let post = |journal: Option<JournalIdentity>, seqs: std::ops::RangeInclusive<u64>| {
            let http = http.clone();
            let url = format!("{}/sync/v1/events", central.sync.url());
            async move {
                let body = serde_json::json!({
                    "gate_id": 1,
                    "journal": journal,
                    "events": seqs.map(event).collect::<Vec<_>>(),
                });
                let mut body = body;
                if body["journal"].is_null() {
                    // Exactly what the previous release sends: no journal field at all.
                    body.as_object_mut().unwrap().remove("journal");
                }
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json::<EventAck>()
                    .await
                    .unwrap()
            }
        };
        let ack = post(None, 1..=4).await;
        assert_eq!(ack.highest_contiguous, 4);
        // Upgraded: the journal got its id at migration and says it continues.
        let migrated = JournalIdentity {
            id: "0123456789abcdef0123456789abcdef".into(),
            from_legacy: true,
        };
        let ack = post(Some(migrated.clone()), 3..=6).await;
        assert_eq!(
            (
                ack.highest_contiguous,
                ack.stored,
                ack.duplicates,
                ack.conflicts
            ),
            (6, 2, 2, 0)
        );
        assert!(conflict_alarms(&db).await.is_empty());
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM passage_events WHERE gate_id = 1").await,
            6
        );
    }
}
