//! System alarms the office sees, not only lane events: a gate's fire input (raised from the
//! uploaded lane event, sent to the police link), a journal that cannot write, a gate clock
//! stepped by an hour, a reader offline (from the health reports over the real mutual-TLS
//! sync port) — each once per episode, however many reports show it and however many central
//! instances receive them, and cleared when the condition ends.

// Evacuation end to end and the `locked_open` offline policy, beside the
// alarms they go with (one `mod` line in main.rs).
#[path = "evacuation.rs"]
mod evacuation;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use chrono::Utc;
use gatehouse::central::alarms;
use gatehouse::central::db::{Actor, Db};
use gatehouse::central::repo::alarms as repo;
use gatehouse::sync::client::Outbox;
use gatehouse::wire::journal::EventBody;
use gatehouse::wire::sync::{CameraHealth, HealthAck, HealthReport, JournalHealth, LaneHealth};

use crate::support::gate::{LaneSpec, spawn_gate, wait_for};
use crate::support::harness::each_database;
use crate::support::{Central, Syncing};

/// A health report from gate 1 with its clock at `offset`, its journal `write_failing`, and
/// lane `in`'s reader `reader_online`.
fn report(offset: chrono::Duration, write_failing: bool, reader_online: bool) -> HealthReport {
    HealthReport {
        gate_time: Utc::now() + offset,
        data_version: 0,
        journal: JournalHealth {
            last_seq: 0,
            acknowledged: 0,
            stored: 0,
            capacity: 1_000_000,
            fill_percent: 0,
            write_failing,
            write_failures: u64::from(write_failing) * 3,
        },
        lanes: vec![LaneHealth {
            lane: "in".into(),
            mode: "normal".into(),
            state: "idle".into(),
            reader_online,
            io_online: true,
            cameras: Vec::new(),
        }],
    }
}

/// Posts `report` as gate 1 (its own certificate) to the sync port at `base`.
async fn post_health(central: &Central, base: &str, report: &HealthReport) -> HealthAck {
    let response = central
        .gate_http(1)
        .post(format!("{base}/sync/v1/health"))
        .json(report)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

async fn kinds(db: &Db, kind: &str) -> Vec<repo::Alarm> {
    repo::of_kind(db, 1, kind).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_clock_stepped_by_an_hour_raises_one_clock_offset_alarm_per_episode_at_the_office() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let base = central.sync.url();
        let db = &central.app.db;
        // The gate's wall clock steps an hour ahead: every report says so, one alarm.
        for _ in 0..3 {
            let ack = post_health(
                &central,
                &base,
                &report(chrono::Duration::hours(1), false, true),
            )
            .await;
            assert!(ack.clock_warning);
        }
        let raised = kinds(db, alarms::CLOCK_OFFSET).await;
        assert_eq!(raised.len(), 1, "{raised:?}");
        // The note gives the offset as measured on arrival: an hour less the report's transit,
        // which a loaded machine stretches to tenths of a second (`+3599.9 s`).
        let offset: f64 = raised[0]
            .note
            .strip_prefix('+')
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no offset in {:?}", raised[0].note));
        assert!((offset - 3600.0).abs() < 5.0, "{}", raised[0].note);
        assert_eq!(raised[0].raised_by, "system");
        assert_eq!(
            raised[0].webhook_status, "none",
            "a technical fault is not for the police"
        );
        assert!(raised[0].cleared_at.is_none());
        // The office's list has it.
        let listed = central
            .call(
                axum::http::Method::GET,
                "/api/v1/alarms",
                gatehouse::central::api::auth::Role::Security,
                None,
            )
            .await;
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "clock_offset"),
            "{listed}"
        );
        // Corrected: the episode ends and the alarm shows cleared.
        post_health(
            &central,
            &base,
            &report(chrono::Duration::zero(), false, true),
        )
        .await;
        assert!(
            kinds(db, alarms::CLOCK_OFFSET).await[0]
                .cleared_at
                .is_some()
        );
        // Stepped an hour back: a new episode, a second alarm.
        for _ in 0..2 {
            post_health(
                &central,
                &base,
                &report(chrono::Duration::hours(-1), false, true),
            )
            .await;
        }
        let raised = kinds(db, alarms::CLOCK_OFFSET).await;
        assert_eq!(raised.len(), 2, "{raised:?}");
        assert!(raised[1].note.starts_with("-3600"), "{}", raised[1].note);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_write_raises_one_alarm_per_episode_not_one_per_report() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let base = central.sync.url();
        let db = &central.app.db;
        // A police link is configured: a journal failure still does not call it.
        repo::set_webhook(db, &Actor::system(), Some("http://127.0.0.1:9/police"))
            .await
            .unwrap();
        for _ in 0..4 {
            post_health(
                &central,
                &base,
                &report(chrono::Duration::zero(), true, true),
            )
            .await;
        }
        let raised = kinds(db, alarms::JOURNAL_FAILURE).await;
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].webhook_status, "none");
        post_health(
            &central,
            &base,
            &report(chrono::Duration::zero(), false, true),
        )
        .await;
        post_health(
            &central,
            &base,
            &report(chrono::Duration::zero(), false, true),
        )
        .await;
        assert!(
            kinds(db, alarms::JOURNAL_FAILURE).await[0]
                .cleared_at
                .is_some()
        );
        post_health(
            &central,
            &base,
            &report(chrono::Duration::zero(), true, true),
        )
        .await;
        assert_eq!(
            kinds(db, alarms::JOURNAL_FAILURE).await.len(),
            2,
            "a new episode"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_unplugged_at_a_gate_raises_one_device_alarm_and_clears_when_it_is_back() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        gate.wait_ready().await;
        let sync = Syncing::connect(&central, 1).await;
        sync.client.health_once(gate.handle()).await.unwrap();
        assert!(
            kinds(&central.app.db, alarms::DEVICE_OFFLINE)
                .await
                .is_empty()
        );

        gate.lane("in").hang_up_reader();
        gate.wait_status("in", "the reader offline", |s| !s.reader_online)
            .await;
        for _ in 0..3 {
            sync.client.health_once(gate.handle()).await.unwrap();
        }
        let raised = kinds(&central.app.db, alarms::DEVICE_OFFLINE).await;
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].note, "in · reader");

        gate.lane("in").plug_reader_back();
        gate.wait_status("in", "the reader online", |s| s.reader_online)
            .await;
        sync.client.health_once(gate.handle()).await.unwrap();
        let raised = kinds(&central.app.db, alarms::DEVICE_OFFLINE).await;
        assert_eq!(raised.len(), 1);
        assert!(raised[0].cleared_at.is_some(), "{raised:?}");
        gate.shutdown_lenient().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_plate_camera_raises_one_device_alarm_and_clears_when_it_pushes_again() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let base = central.sync.url();
        let with_camera = |online: bool| {
            let mut r = report(chrono::Duration::zero(), false, true);
            r.lanes[0].cameras = vec![CameraHealth {
                name: "north-entry".into(),
                online,
            }];
            r
        };
        post_health(&central, &base, &with_camera(true)).await;
        assert!(
            kinds(&central.app.db, alarms::DEVICE_OFFLINE)
                .await
                .is_empty()
        );
        for _ in 0..3 {
            post_health(&central, &base, &with_camera(false)).await;
        }
        let raised = kinds(&central.app.db, alarms::DEVICE_OFFLINE).await;
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].note, "in · camera north-entry");
        post_health(&central, &base, &with_camera(true)).await;
        let raised = kinds(&central.app.db, alarms::DEVICE_OFFLINE).await;
        assert!(raised[0].cleared_at.is_some(), "{raised:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_central_instances_receiving_reports_of_one_episode_raise_one_alarm() {
    for t in each_database().await {
        if t.kind != gatehouse::central::db::DbKind::Postgres {
            continue; // several instances share PostgreSQL only
        }
        let central = Central::start(t).await;
        let (_state, second) = central.second_instance().await;
        let (a, b) = (central.sync.url(), second.url());
        // Both instances receive reports of the same failing journal at once (a gate retrying
        // through a balancer), eight at a time, several times.
        for _ in 0..3 {
            let r = report(chrono::Duration::zero(), true, true);
            let posts = (0..8).map(|i| {
                let (central, r) = (&central, &r);
                let base = if i % 2 == 0 { a.clone() } else { b.clone() };
                async move { post_health(central, &base, r).await }
            });
            futures::future::join_all(posts).await;
        }
        assert_eq!(
            kinds(&central.app.db, alarms::JOURNAL_FAILURE).await.len(),
            1
        );
    }
}

/// A police-link receiver (plain HTTP) keeping the bodies it gets.
async fn police() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let router = {
        let calls = calls.clone();
        axum::Router::new().route(
            "/police",
            post(move |body: Bytes| {
                let calls = calls.clone();
                async move {
                    calls
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/police"), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_input_at_a_gate_raises_one_fire_alarm_at_the_office_and_calls_the_police_link() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let db = &central.app.db;
        let (url, calls) = police().await;
        repo::set_webhook_secret(db, &Actor::system(), "fire-test-secret-0123456789")
            .await
            .unwrap();
        repo::set_webhook(db, &Actor::system(), Some(&url))
            .await
            .unwrap();
        let gate = spawn_gate(&[LaneSpec::entry("in"), LaneSpec::exit("out")]).await;
        gate.wait_ready().await;
        let sync = Syncing::connect(&central, 1).await;

        // The fire panel drives both lanes' fire inputs: two lane events, one alarm.
        gate.lane("in").io.set_fire(true);
        gate.lane("out").io.set_fire(true);
        for lane in ["in", "out"] {
            gate.wait_event(&format!("{lane}: the fire input"), |e| {
                e.lane == lane
                    && matches!(&e.body, EventBody::LaneFault { fault, .. } if fault == "fire_alarm")
            })
            .await;
        }
        while let Outbox::Synced { .. } = sync.client.sync_once(gate.handle()).await.unwrap() {}
        let raised = kinds(db, alarms::FIRE).await;
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].raised_by, "system");
        wait_for("the police link to be called", || async {
            (!calls.lock().unwrap().is_empty()).then_some(())
        })
        .await;
        {
            let calls = calls.lock().unwrap();
            assert_eq!(calls.len(), 1, "{calls:?}");
            assert_eq!(calls[0]["alarm"]["kind"], "fire");
            assert_eq!(calls[0]["alarm"]["gate_name"], "北门");
        }
        wait_for("the delivery to be recorded", || async {
            (repo::get(db, raised[0].id).await.unwrap().webhook_status == "sent").then_some(())
        })
        .await;

        // The same upload again (a retry after a lost answer) raises nothing twice.
        let events = gate.events().await;
        alarms::from_events(db, &central.app.state.live, 1, &events)
            .await
            .unwrap();
        assert_eq!(kinds(db, alarms::FIRE).await.len(), 1);

        // The fire input clears: the alarm shows cleared.
        gate.lane("in").io.set_fire(false);
        gate.lane("out").io.set_fire(false);
        for lane in ["in", "out"] {
            gate.wait_event(&format!("{lane}: the fire input cleared"), |e| {
                e.lane == lane
                    && matches!(&e.body, EventBody::LaneFault { fault, .. } if fault == "fire_alarm_cleared")
            })
            .await;
        }
        while let Outbox::Synced { .. } = sync.client.sync_once(gate.handle()).await.unwrap() {}
        let raised = kinds(db, alarms::FIRE).await;
        assert_eq!(raised.len(), 1);
        assert!(raised[0].cleared_at.is_some(), "{raised:?}");
        assert_eq!(
            calls.lock().unwrap().len(),
            1,
            "the police were called once"
        );
        gate.shutdown_lenient().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_raised_through_one_instance_reaches_the_office_pages_of_another() {
    for t in each_database().await {
        if t.kind != gatehouse::central::db::DbKind::Postgres {
            continue; // several instances share PostgreSQL only
        }
        let central = Central::start(t).await;
        let (second, _server) = central.second_instance().await;
        // The office's browser is connected to the second instance.
        let mut office = second.live.subscribe();
        let stop = tokio_util::sync::CancellationToken::new();
        let relay = tokio::spawn(alarms::run_deliveries(
            second.db.clone(),
            second.live.clone(),
            stop.clone(),
        ));
        // Let its first round take note of where things stand.
        tokio::time::sleep(alarms::RELAY_EVERY * 2).await;

        // The gate reports its clock an hour off to the first instance.
        let base = central.sync.url();
        post_health(
            &central,
            &base,
            &report(chrono::Duration::hours(1), false, true),
        )
        .await;
        let raised = kinds(&central.app.db, alarms::CLOCK_OFFSET).await;
        assert_eq!(raised.len(), 1);
        let told = tokio::time::timeout(alarms::RELAY_EVERY * 5, async {
            loop {
                let m = office.recv().await.unwrap();
                if let gatehouse::central::live::LiveMessage::Alarm { alarm_id, .. } = *m {
                    return alarm_id;
                }
            }
        })
        .await
        .expect("the second instance's office pages are told");
        assert_eq!(told, raised[0].id);
        stop.cancel();
        relay.await.unwrap();
    }
}
