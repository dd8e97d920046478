//! A gate whose journal cannot write (its disk full), and a journal filling while the centre is
//! unreachable: the lane keeps working, nothing is lost without a record, and the failure is
//! visible where people look — `/readyz`, `/metrics`, and the health report that makes the
//! centre raise its office alarm.
//!
//! The full disk is real: the gate's data directory is a small tmpfs this test mounts and fills
//! (root only; [`Tmpfs`] unmounts it whatever happens). Without root on a developer's machine the
//! test says it is skipped; under CI (`CI=true`, run as root) it must run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use gatehouse::gate::http::{GateView, router};
use gatehouse::sim::barrier::ArmState;
use gatehouse::sync::client::Outbox;
use gatehouse::wire::journal::{EventBody, JournalEvent};
use tower::ServiceExt as _;

use crate::support::gate::{GateOptions, LaneSpec, TestGate, epc, hex, spawn_gate_with, wait_for};
use crate::support::harness::sqlite;
use crate::support::{Central, Office, Syncing};

/// A small tmpfs mounted for one test, unmounted when dropped (even when the test panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB, or says why it cannot and returns `None` (not root on a
    /// developer's machine). Under CI that is a failure, never a silent skip.
    fn mount(test: &str, kib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let outcome = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        let why = match outcome {
            Ok(out) if out.status.success() => return Some(Tmpfs { dir }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI must be able to mount a tmpfs (it runs as root): {why}"
        );
        eprintln!("SKIPPED {test}: cannot mount a tmpfs to fill ({why}); run it as root");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a gate still holding its files open (a failed test) must not keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem holding `dir` with one file, to the last block; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("the filler file");
    let chunk = vec![0x5Au8; 4096];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.sync_all();
    path
}

/// Squeezes the journal's write-ahead log to nothing, so that the next commit needs new blocks.
async fn truncate_wal(journal_db: &Path) {
    let conn = rusqlite::Connection::open(journal_db).unwrap();
    wait_for("the journal's WAL truncated", || async {
        let (busy, _, _): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        (busy == 0).then_some(())
    })
    .await;
}

/// A vehicle drives through without the test reading the journal: arrives, is read, waits for
/// the arm, crosses and leaves; returns once the arm is down and the lane idle.
async fn drive_through_unjournalled(gate: &TestGate, lane: &str, tag: &[u8]) {
    let l = gate.lane(lane);
    gate.arrive(lane).await;
    l.tag_in_field(tag);
    l.wait_arm(ArmState::Open).await;
    l.tag_out_of_field(tag);
    l.set_safety(true);
    gate.wait_lane_state(lane, "passing").await;
    l.set_presence(false);
    l.wait_polls(2).await;
    l.set_safety(false);
    l.wait_arm(ArmState::Closed).await;
    gate.wait_lane_state(lane, "idle").await;
}

async fn get(view: &GateView, path: &str) -> (StatusCode, String) {
    let response = router(view.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The value of one series line (`name{labels} value`) in a scrape.
fn series(scrape: &str, line_start: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

/// The gate's last health report as the centre stored it.
async fn reported_journal(central: &Central, gate: i64) -> serde_json::Value {
    let health = gatehouse::central::repo::sync::health(&central.app.db)
        .await
        .unwrap();
    health
        .into_iter()
        .find(|h| h.gate_id == gate)
        .expect("the gate is known")
        .report["journal"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_keeps_the_lane_working_fails_readyz_and_reaches_the_office_and_the_events_follow_once_it_frees()
 {
    let test = "a_full_disk_keeps_the_lane_working";
    let Some(fs) = Tmpfs::mount(test, 8 * 1024) else {
        return;
    };
    let central = Central::start(sqlite().await).await;
    central.issue("张三", "京A12345", &hex(&epc(1))).await;
    let data = fs.path().join("data");
    let gate = spawn_gate_with(
        &[LaneSpec::entry("in")],
        GateOptions {
            anti_passback: "off",
            data_dir: Some(data.clone()),
            ..GateOptions::default()
        },
    )
    .await;
    let sync = Syncing::connect(&central, 1).await;
    sync.pull_snapshot(&gate).await;
    let view = GateView::new(gate.handle(), &data);
    let journal = gate.handle().journal();
    // Few enough that two vehicles overflow it: the loss must be counted and journalled too.
    journal.set_backlog_limit(4);

    gate.drive_through("in", &epc(1)).await;
    assert_eq!(get(&view, "/readyz").await.0, StatusCode::OK);
    sync.client.health_once(gate.handle()).await.unwrap();
    assert_eq!(reported_journal(&central, 1).await["write_failing"], false);
    let before = journal.stats().await;

    // The disk fills up.
    truncate_wal(&data.join("journal.db")).await;
    let filler = fill(fs.path());
    let outage_began = Utc::now();
    for _ in 0..2 {
        // The lane keeps deciding and moving the barrier.
        drive_through_unjournalled(&gate, "in", &epc(1)).await;
    }
    gate.lane("in").assert_no_close_over_vehicle();
    let stats = journal.stats().await;
    assert!(
        stats.write_failing,
        "the journal says it cannot write: {stats:?}"
    );
    assert_eq!(stats.last_seq, before.last_seq, "nothing was committed");
    assert_eq!(stats.waiting, 4);
    assert!(
        stats.lost > 0,
        "two vehicles overflow a backlog of 4: {stats:?}"
    );
    assert!(stats.write_failures >= 2);

    let (status, body) = get(&view, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("journal cannot write"), "{body}");
    let (_, scrape) = get(&view, "/metrics").await;
    assert_eq!(
        series(&scrape, "gatehouse_journal_write_failing{gate=\"1\"}"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        series(&scrape, "gatehouse_journal_backlog_events{gate=\"1\"}"),
        Some(4.0)
    );
    assert_eq!(
        series(&scrape, "gatehouse_journal_lost_events_total{gate=\"1\"}"),
        Some(stats.lost as f64)
    );
    assert!(
        series(
            &scrape,
            "gatehouse_journal_write_failures_total{gate=\"1\"}"
        ) >= Some(2.0)
    );

    // The health report carries the failure to the centre (which raises the office alarm).
    sync.client.health_once(gate.handle()).await.unwrap();
    let reported = reported_journal(&central, 1).await;
    assert_eq!(reported["write_failing"], true, "{reported}");
    assert!(
        reported["write_failures"].as_u64().unwrap() >= 2,
        "{reported}"
    );

    // Space again: what waited in memory is journalled, then the outage's record.
    std::fs::remove_file(&filler).unwrap();
    wait_for("the journal to write again", || async {
        (!journal.stats().await.write_failing).then_some(())
    })
    .await;
    let outage_ended = Utc::now();
    let events: Vec<JournalEvent> = journal.read_after(before.last_seq, 100).await.unwrap();
    assert_eq!(events.len(), 5, "the four kept and the record: {events:#?}");
    match &events[0].body {
        EventBody::Decision(d) => {
            assert!(d.granted);
            assert_eq!(d.epc.as_deref(), Some(hex(&epc(1)).as_str()));
        }
        other => panic!("the first kept event is the first vehicle's decision: {other:?}"),
    }
    for e in &events[..4] {
        assert!(
            e.at >= outage_began - chrono::Duration::milliseconds(1) && e.at <= outage_ended,
            "kept with its own time: {e:?}"
        );
    }
    match &events[4].body {
        EventBody::JournalWriteFailed {
            kept,
            lost,
            failed_commits,
            error,
            ..
        } => {
            assert_eq!((*kept, *lost), (4, stats.lost));
            assert!(*failed_commits >= 2);
            assert!(error.contains("full"), "{error}");
        }
        other => panic!("expected the outage's record, got {other:?}"),
    }
    assert_eq!(get(&view, "/readyz").await.0, StatusCode::OK);
    let (_, scrape) = get(&view, "/metrics").await;
    assert_eq!(
        series(&scrape, "gatehouse_journal_write_failing{gate=\"1\"}"),
        Some(0.0)
    );

    // And the lane journals as before, the centre hears it has recovered and gets everything.
    let after = journal.stats().await.last_seq;
    let passage = gate.drive_through("in", &epc(1)).await;
    assert!(passage.decision_seq > after);
    sync.client.health_once(gate.handle()).await.unwrap();
    assert_eq!(reported_journal(&central, 1).await["write_failing"], false);
    while let Outbox::Synced { .. } = sync.client.sync_once(gate.handle()).await.unwrap() {}
    let last = journal.stats().await.last_seq;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passage_events WHERE gate_id = 1")
        .fetch_one(central.app.db.pool())
        .await
        .unwrap();
    assert_eq!(
        stored as u64, last,
        "every journalled event reached the centre"
    );
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_filling_while_the_centre_is_unreachable_raises_its_alarm_prunes_nothing_undelivered_and_delivers_it_all()
 {
    let central = Central::start(sqlite().await).await;
    central.issue("张三", "京A12345", &hex(&epc(1))).await;
    let capacity = 1000;
    let gate = spawn_gate_with(
        &[LaneSpec::entry("in")],
        GateOptions {
            anti_passback: "off",
            journal_capacity: Some(capacity),
            ..GateOptions::default()
        },
    )
    .await;
    let sync = Syncing::connect(&central, 1).await;
    let _ = sync
        .client
        .pull_once(gate.handle(), Duration::ZERO)
        .await
        .unwrap();
    let journal = gate.handle().journal();

    sync.proxy.cut();
    assert!(sync.client.sync_once(gate.handle()).await.is_err());
    gate.drive_through("in", &epc(1)).await;
    // A reader being skimmed all day fills the journal (the lane's own path takes a second
    // a vehicle): half again its capacity, straight into the journal.
    for n in 0..capacity * 3 / 2 {
        journal
            .append(
                Utc::now(),
                "in",
                EventBody::TagIgnored {
                    epc: format!("E2003098881900720000{n:04X}"),
                    antenna: 0,
                    rssi_dbm: -70,
                    why: "no_vehicle_on_loop".into(),
                },
            )
            .await
            .expect("an undelivered journal past capacity still takes events");
    }
    gate.drive_through("in", &epc(1)).await;
    let stats = journal.stats().await;
    assert!(!stats.write_failing);
    assert_eq!(stats.acked_seq, 0);
    assert_eq!(
        stats.stored, stats.last_seq,
        "nothing undelivered was pruned"
    );
    assert!(stats.fill_percent() > 150, "{stats:?}");
    let events = journal.read_after(0, u32::MAX).await.unwrap();
    let alarms: Vec<&JournalEvent> = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::JournalAlarm { .. }))
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm at 90 %, not one per event");
    assert_eq!(
        alarms[0].seq,
        capacity * 9 / 10 + 1,
        "right after the 900th event"
    );

    // The centre is back: everything is delivered once, then pruned down to capacity.
    sync.proxy.restore();
    while let Outbox::Synced { .. } = sync.client.sync_once(gate.handle()).await.unwrap() {}
    let last = journal.stats().await.last_seq;
    let stored: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM passage_events WHERE gate_id = 1 ORDER BY seq")
            .fetch_all(central.app.db.pool())
            .await
            .unwrap();
    assert_eq!(stored, (1..=last as i64).collect::<Vec<_>>());
    let kind: String =
        sqlx::query_scalar("SELECT kind FROM passage_events WHERE gate_id = 1 AND seq = $1")
            .bind(alarms[0].seq as i64)
            .fetch_one(central.app.db.pool())
            .await
            .unwrap();
    assert_eq!(kind, "journal_alarm");
    let stats = journal.stats().await;
    assert_eq!((stats.acked_seq, stats.stored), (last, capacity));
    gate.shutdown().await;
}
