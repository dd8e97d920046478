//! Events to the centre: the outbox through an outage, exactly once, gaps made visible, and a
//! gate that posts another gate's events refused and audited.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use gatehouse::sync::client::Outbox;
use gatehouse::wire::journal::{EventBody, JournalEvent};
use gatehouse::wire::sync::EventBatch;
use sqlx::Row;

use crate::support::gate::{LaneSpec, epc, hex, spawn_gate};
use crate::support::harness::each_database;
use crate::support::{Central, Office, Syncing};

/// Every event the centre holds for `gate`, as (seq, original ms, received ms), by seq.
async fn stored(central: &Central, gate: i64) -> Vec<(i64, i64, i64)> {
    sqlx::query(
        "SELECT seq, at_ms, received_ms FROM passage_events WHERE gate_id = $1 ORDER BY seq",
    )
    .bind(gate)
    .fetch_all(central.app.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("seq"), r.get("at_ms"), r.get("received_ms")))
    .collect()
}

async fn drain(sync: &Syncing, gate: &crate::support::gate::TestGate) -> usize {
    let mut batches = 0;
    while let Outbox::Synced { .. } = sync.client.sync_once(gate.handle()).await.unwrap() {
        batches += 1;
    }
    batches
}

const PASSAGES: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_centre_unreachable_10000_passages_are_stored_exactly_once_in_order_with_their_original_times()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        let (_, permit) = central.issue("张三", "京A12345", &hex(&epc(1))).await;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let sync = Syncing::connect(&central, 1).await;
        let version = sync.pull_snapshot(&gate).await;

        // The network goes down: every step fails, and the lane keeps deciding from its copy.
        sync.proxy.cut();
        assert!(sync.client.sync_once(gate.handle()).await.is_err());
        assert!(
            sync.client
                .pull_once(gate.handle(), Duration::ZERO)
                .await
                .is_err()
        );
        let real = gate.drive_through("in", &epc(1)).await;
        assert_eq!(
            real.decision.data_version, version,
            "decided from the cached data"
        );
        assert_eq!(real.decision.permit_id, Some(permit));

        // The rest of the 10,000 passages are fed straight into the journal (the lane's own
        // path costs about a second a vehicle), each with its decision, a day ago, 1 s apart.
        let journal = gate.handle().journal();
        let day_ago = Utc::now() - chrono::Duration::days(1);
        for i in 1..PASSAGES {
            let at = day_ago + chrono::Duration::seconds(i as i64);
            let mut decision = real.decision.clone();
            decision.decide_ns = i as u64;
            let passage = EventBody::Passage {
                direction: "entry".into(),
                plate: decision.plate.clone(),
                vehicle_id: decision.vehicle_id,
                permit_id: decision.permit_id,
            };
            journal
                .append_batch(at, "in", &[EventBody::Decision(decision), passage])
                .await
                .unwrap();
        }
        assert!(stored(&central, 1).await.is_empty());

        // The centre comes back: the outbox drains, every event stored once.
        sync.proxy.restore();
        let back = Utc::now().timestamp_millis();
        assert!(drain(&sync, &gate).await > 0);
        assert_eq!(
            sync.client.sync_once(gate.handle()).await.unwrap(),
            Outbox::Empty
        );
        let ours: Vec<JournalEvent> = journal.read_after(0, u32::MAX).await.unwrap();
        let theirs = stored(&central, 1).await;
        assert_eq!(theirs.len(), ours.len(), "{:?}", central.app.kind);
        for (mine, (seq, at_ms, received_ms)) in ours.iter().zip(&theirs) {
            assert_eq!(mine.seq as i64, *seq);
            assert_eq!(mine.at.timestamp_millis(), *at_ms, "original time of {seq}");
            if *at_ms < back - 3_600_000 {
                assert!(*received_ms >= back, "received time of {seq}");
            }
        }
        // Stored in sequence order: received times never go backwards as seq rises.
        assert!(theirs.windows(2).all(|w| w[0].2 <= w[1].2));
        let passages: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM passage_events WHERE gate_id = 1 AND kind = 'passage'",
        )
        .fetch_one(central.app.db.pool())
        .await
        .unwrap();
        assert_eq!(passages, PASSAGES as i64);
        let stats = gate.handle().journal_stats().await;
        assert_eq!(stats.acked_seq, stats.last_seq);
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_acknowledgement_was_lost_is_sent_again_and_stored_once() {
    for t in each_database().await {
        let central = Central::start(t).await;
        central.issue("张三", "京A12345", &hex(&epc(1))).await;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let sync = Syncing::connect(&central, 1).await;
        sync.client
            .pull_once(gate.handle(), Duration::ZERO)
            .await
            .unwrap();
        gate.drive_through("in", &epc(1)).await;
        let events = gate.events().await;
        // The centre stores the batch but the gate never hears back.
        let lost = central
            .gate_http(1)
            .post(format!("{}/sync/v1/events", sync.proxy.url()))
            .json(&EventBatch {
                gate_id: 1,
                journal: Some(gate.handle().journal().identity().clone()),
                events: events.clone(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(lost.status(), 200);
        assert_eq!(gate.handle().journal_stats().await.acked_seq, 0);
        drain(&sync, &gate).await;
        let theirs = stored(&central, 1).await;
        let seqs: Vec<i64> = theirs.iter().map(|s| s.0).collect();
        let expected: Vec<i64> = (1..=events.len() as i64).collect();
        assert_eq!(seqs, expected);
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_posting_another_gates_events_is_refused_with_403_and_the_attempt_is_audited() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let event = JournalEvent {
            seq: 1,
            at: Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap(),
            lane: "in".into(),
            body: EventBody::LaneFault {
                fault: "tamper".into(),
                detail: String::new(),
            },
        };
        // Gate 1's own certificate, a batch that names gate 2.
        let response = central
            .gate_http(1)
            .post(format!("{}/sync/v1/events", central.sync.url()))
            .header("accept-language", "en")
            .json(&EventBatch {
                gate_id: 2,
                journal: None,
                events: vec![event],
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "forbidden");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("gate 1 may upload only its own events"),
            "{body}"
        );
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passage_events")
            .fetch_one(central.app.db.pool())
            .await
            .unwrap();
        assert_eq!(count, 0);
        let audit = sqlx::query(
            "SELECT operator_name, entity_id, after_json FROM audit_log \
             WHERE action = 'foreign_events_refused'",
        )
        .fetch_all(central.app.db.pool())
        .await
        .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].get::<String, _>("operator_name"), "gate:1");
        let detail: serde_json::Value =
            serde_json::from_str(&audit[0].get::<String, _>("after_json")).unwrap();
        assert_eq!(detail["claimed_gate"], 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_a_gates_events_holds_the_acknowledgement_is_shown_and_raises_one_alarm() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap();
        let event = |seq| JournalEvent {
            seq,
            at,
            lane: "in".into(),
            body: EventBody::LaneFault {
                fault: "tamper".into(),
                detail: String::new(),
            },
        };
        let http = central.gate_http(1);
        for _ in 0..2 {
            let ack: gatehouse::wire::sync::EventAck = http
                .post(format!("{}/sync/v1/events", central.sync.url()))
                .json(&EventBatch {
                    gate_id: 1,
                    journal: None,
                    events: [1, 2, 3, 6, 7].into_iter().map(event).collect(),
                })
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(ack.highest_contiguous, 3);
        }
        let health = gatehouse::central::repo::sync::health(&central.app.db)
            .await
            .unwrap();
        let g1 = health.iter().find(|h| h.gate_id == 1).unwrap();
        assert_eq!(
            (g1.events_watermark, g1.missing_from, g1.missing_to),
            (3, Some(4), Some(5))
        );
        let alarms: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'event_gap'")
                .fetch_one(central.app.db.pool())
                .await
                .unwrap();
        assert_eq!(alarms, 1, "one alarm per gap, not one per upload");
    }
}
