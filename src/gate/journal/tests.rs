//! The journal's unit tests: sequence numbers, batches, pruning, identity, outages and the
//! camera reads it records.

use super::*;
use crate::wire::journal::BarrierAction;

fn barrier(action: BarrierAction) -> EventBody {
    EventBody::Barrier {
        action,
        cause: "grant".into(),
    }
}

fn camera_read(event_id: &str) -> PlateReadRecord {
    PlateReadRecord {
        camera: "cam-1".into(),
        event_id: event_id.into(),
        raw_plate: "京A12345".into(),
        colour: None,
        confidence: 95,
        photos: Vec::new(),
    }
}

fn ignored(event_id: &str) -> EventBody {
    EventBody::PlateIgnored {
        camera: camera_read(event_id),
        why: "test".into(),
    }
}

#[tokio::test]
async fn a_camera_read_is_known_once_an_event_carries_it_and_stays_known_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let journal = Journal::open(&path, 100).await.unwrap();
    assert!(!journal.camera_read_known("cam-1", "e1").unwrap());
    journal
        .append_batch(
            Utc::now(),
            "entry",
            &[barrier(BarrierAction::Open), ignored("e1")],
        )
        .await
        .unwrap();
    assert!(journal.camera_read_known("cam-1", "e1").unwrap());
    assert!(!journal.camera_read_known("cam-2", "e1").unwrap());
    assert!(!journal.camera_read_known("cam-1", "e2").unwrap());
    // A later event carrying the same read keeps the row on the first one.
    journal
        .append(Utc::now(), "entry", ignored("e1"))
        .await
        .unwrap();
    let seq: i64 = journal
        .writer()
        .conn
        .query_row(
            "SELECT seq FROM camera_events WHERE event_id = 'e1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(seq, 2);
    drop(journal);
    let journal = Journal::open(&path, 100).await.unwrap();
    assert!(journal.camera_read_known("cam-1", "e1").unwrap());
}

#[tokio::test]
async fn a_read_waiting_for_its_vehicle_is_known_and_a_restart_journals_it_ignored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let journal = Journal::open(&path, 100).await.unwrap();
    journal
        .append_waiting(Utc::now(), "exit", &[], &camera_read("w1"))
        .await
        .unwrap();
    assert!(journal.camera_read_known("cam-1", "w1").unwrap());
    assert_eq!(journal.stats().await.last_seq, 0, "no event yet");
    drop(journal);
    let journal = Journal::open(&path, 100).await.unwrap();
    let events = journal.read_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].lane, "exit");
    assert!(
        matches!(&events[0].body, EventBody::PlateIgnored { camera, why }
            if camera.event_id == "w1" && why == "gate_restarted"),
        "{events:?}"
    );
    drop(journal);
    let journal = Journal::open(&path, 100).await.unwrap();
    assert_eq!(journal.stats().await.last_seq, 1, "given up only once");
    assert!(journal.camera_read_known("cam-1", "w1").unwrap());
}

#[tokio::test]
async fn camera_reads_are_pruned_with_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db"), 2).await.unwrap();
    for n in 0..4 {
        journal
            .append(Utc::now(), "entry", ignored(&format!("e{n}")))
            .await
            .unwrap();
    }
    journal.acknowledge(4).await.unwrap();
    assert!(!journal.camera_read_known("cam-1", "e0").unwrap());
    assert!(journal.camera_read_known("cam-1", "e3").unwrap());
}

#[tokio::test]
async fn a_camera_read_kept_in_memory_while_the_journal_cannot_write_is_known_and_written_later() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db"), 1000).await.unwrap();
    journal.append(Utc::now(), "entry", fault(0)).await.unwrap();
    limit_growth(&journal, Some(0));
    let mut n = 0;
    while journal
        .append(Utc::now(), "entry", ignored(&format!("e{n}")))
        .await
        .is_ok()
    {
        n += 1;
        assert!(n < 1000, "the file never filled");
    }
    let kept = format!("e{n}");
    assert!(journal.camera_read_known("cam-1", &kept).unwrap());
    limit_growth(&journal, None);
    assert!(journal.retry().await.unwrap());
    assert!(journal.camera_read_known("cam-1", &kept).unwrap());
    let in_table: i64 = journal
        .writer()
        .conn
        .query_row(
            "SELECT count(*) FROM camera_events WHERE event_id = ?1",
            [&kept],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_table, 1, "written with its event");
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
async fn a_journal_keeps_its_random_id_across_reopening_and_a_new_journal_gets_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let first = Journal::open(&path, 100).await.unwrap().identity().clone();
    assert_eq!(first.id.len(), 32, "{first:?}");
    assert!(first.id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        !first.from_legacy,
        "a journal created new continues nothing"
    );
    let again = Journal::open(&path, 100).await.unwrap();
    assert_eq!(again.identity(), &first);
    let other = Journal::open(&dir.path().join("other.db"), 100)
        .await
        .unwrap();
    assert_ne!(other.identity().id, first.id);
}

#[tokio::test]
async fn a_journal_from_before_ids_gets_one_at_migration_marked_as_continuing_the_gates_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    // A journal as the previous release left it: only the first migration, some events.
    let options = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let mut old = sqlx::migrate!("./migrations/gate-journal");
    old.migrations = std::borrow::Cow::Owned(
        old.migrations
            .iter()
            .filter(|m| m.version == 1)
            .cloned()
            .collect(),
    );
    old.run(&mut conn).await.unwrap();
    sqlx::query(
        "INSERT INTO events (seq, at_ms, lane, kind, body) \
         VALUES (1, 0, 'in', 'lane_fault', '{\"kind\":\"lane_fault\",\"fault\":\"x\",\"detail\":\"\"}')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let journal = Journal::open(&path, 100).await.unwrap();
    assert!(journal.identity().from_legacy);
    assert_eq!(journal.identity().id.len(), 32);
    assert_eq!(journal.stats().await.last_seq, 1);
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

/// Makes the journal's file refuse to grow past what it holds now plus `pages` pages, the
/// way a full disk does: SQLite answers SQLITE_FULL ("database or disk is full").
fn limit_growth(journal: &Journal, pages: Option<u64>) {
    let w = journal.writer();
    let now: u64 = w
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let max = pages.map_or(1_073_741_823, |p| now + p);
    w.conn
        .pragma_update(None, "max_page_count", max as i64)
        .unwrap();
}

fn fault(n: usize) -> EventBody {
    EventBody::LaneFault {
        fault: "test".into(),
        detail: format!("{n}:{}", "x".repeat(400)),
    }
}

#[tokio::test]
async fn a_journal_that_cannot_write_keeps_events_in_order_and_writes_them_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db"), 1000).await.unwrap();
    journal.append(Utc::now(), "entry", fault(0)).await.unwrap();
    limit_growth(&journal, Some(0));
    let mut refused = 0;
    for n in 1..=40 {
        match journal.append(Utc::now(), "entry", fault(n)).await {
            Ok(_) => {}
            Err(JournalError::NotWritten { .. }) => refused += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(refused > 0, "the full file refused commits");
    let stats = journal.stats().await;
    assert!(stats.write_failing);
    assert_eq!(stats.write_failures, refused);
    assert_eq!(stats.lost, 0);
    let written = stats.last_seq;
    assert!(journal.retry().await.is_err(), "still full: still failing");
    assert!(journal.stats().await.write_failing);

    limit_growth(&journal, None);
    assert!(journal.retry().await.unwrap());
    let stats = journal.stats().await;
    assert!(!stats.write_failing);
    assert_eq!(stats.waiting, 0);
    let events = journal.read_after(0, 1000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=42).collect::<Vec<_>>(),
        "contiguous, nothing missing"
    );
    for (n, event) in events[..41].iter().enumerate() {
        assert_eq!(event.body, fault(n), "in the order they happened");
    }
    match &events[41].body {
        EventBody::JournalWriteFailed {
            failed_commits,
            kept,
            lost,
            error,
            ..
        } => {
            assert_eq!(*failed_commits, refused);
            assert_eq!(*kept, 41 - written);
            assert_eq!(*lost, 0);
            assert!(error.contains("full"), "{error}");
        }
        other => panic!("expected the outage's record, got {other:?}"),
    }
    // And it writes at once again.
    assert_eq!(
        journal
            .append(Utc::now(), "entry", fault(99))
            .await
            .unwrap(),
        43
    );
}

#[tokio::test]
async fn events_beyond_the_backlog_are_counted_lost_and_the_loss_is_journalled() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.db"), 1000).await.unwrap();
    journal.set_backlog_limit(5);
    limit_growth(&journal, Some(0));
    let first = Utc::now();
    let at = |n: usize| first + chrono::Duration::seconds(n as i64);
    // Written while the file has room, then eight refused: five kept, three lost.
    let mut written = 0;
    while journal
        .append(at(written), "entry", fault(written))
        .await
        .is_ok()
    {
        written += 1;
        assert!(written < 100, "the file never filled");
    }
    for n in written + 1..written + 8 {
        assert!(journal.append(at(n), "entry", fault(n)).await.is_err());
    }
    let stats = journal.stats().await;
    assert_eq!((stats.waiting, stats.lost), (5, 3));
    limit_growth(&journal, None);
    assert!(journal.retry().await.unwrap());
    let events = journal.read_after(written as u64, 100).await.unwrap();
    assert_eq!(events.len(), 6);
    for (i, event) in events[..5].iter().enumerate() {
        assert_eq!(event.body, fault(written + i), "the first five are kept");
        assert_eq!(
            event.at.timestamp(),
            at(written + i).timestamp(),
            "with their own time"
        );
    }
    match &events[5].body {
        EventBody::JournalWriteFailed {
            kept,
            lost,
            lost_from,
            lost_to,
            ..
        } => {
            assert_eq!((*kept, *lost), (5, 3));
            assert_eq!(lost_from.unwrap().timestamp(), at(written + 5).timestamp());
            assert_eq!(lost_to.unwrap().timestamp(), at(written + 7).timestamp());
        }
        other => panic!("expected the outage's record, got {other:?}"),
    }
    assert_eq!(journal.stats().await.lost, 3, "the total stays");
}

/// The checkpoint sequence in the log's header (bytes 12..16, big-endian): SQLite adds one
/// each time the log starts over.
fn log_generation(journal_path: &Path) -> u32 {
    let wal = std::fs::read(journal_path.with_extension("db-wal")).unwrap();
    u32::from_be_bytes(wal[12..16].try_into().unwrap())
}

#[tokio::test]
async fn the_checkpoint_restarts_the_log_so_the_next_commit_appends_without_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let journal = Journal::open(&path, 100).await.unwrap();
    for _ in 0..3 {
        journal
            .append(Utc::now(), "entry", barrier(BarrierAction::Open))
            .await
            .unwrap();
    }
    journal.checkpoint().await.unwrap();
    let after_checkpoint = log_generation(&path);
    // A lane's commit after the checkpoint appends to the log the checkpoint started.
    journal
        .append(Utc::now(), "entry", barrier(BarrierAction::Close))
        .await
        .unwrap();
    assert_eq!(log_generation(&path), after_checkpoint);
    // Written since: the next checkpoint starts it over again.
    journal.checkpoint().await.unwrap();
    let restarted = log_generation(&path);
    assert_ne!(restarted, after_checkpoint);
    // Nothing written since: an idle gate's log is not started over (no fsync every quarter
    // second for nothing).
    journal.checkpoint().await.unwrap();
    journal.checkpoint().await.unwrap();
    assert_eq!(log_generation(&path), restarted);
    let seqs: Vec<_> = journal
        .read_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}
