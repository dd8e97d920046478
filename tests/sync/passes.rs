//! Visitor passes in the sync (issue 21), as a gate receives them over mutual TLS: the site's
//! public pass keys in its snapshot's settings, a rotated key through a delta, and a booking's
//! single-use consumption (uploaded by another gate) and cancellation through deltas. What the
//! gate then decides is the gate's own tests'. SQLite and (with `DATABASE_URL`) PostgreSQL.

use axum::http::Method;
use chrono::{Duration, TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::passes;
use gatehouse::pki;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent, PassUse};
use gatehouse::wire::sync::{Changes, SnapshotLine};
use serde_json::json;

use crate::support::harness::{APPROVER_DEPARTMENT, each_database};
use crate::support::{Central, Office as _};

/// The snapshot's header as gate `gate_id` receives it.
async fn snapshot_header(central: &Central, gate_id: i64) -> gatehouse::wire::sync::SnapshotHeader {
    let text = central
        .gate_http(gate_id)
        .get(format!("{}/sync/v1/snapshot", central.sync.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first = text.lines().next().unwrap();
    match serde_json::from_str::<SnapshotLine>(first).unwrap() {
        SnapshotLine::Header(h) => h,
        other => panic!("the snapshot starts with {other:?}"),
    }
}

/// The delta after `since` as gate `gate_id` receives it.
async fn delta(central: &Central, gate_id: i64, since: u64) -> Changes {
    central
        .gate_http(gate_id)
        .get(format!(
            "{}/sync/v1/changes?since={since}&wait_ms=0",
            central.sync.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn minute(t: chrono::DateTime<Utc>) -> String {
    Utc.timestamp_opt(t.timestamp() / 60 * 60, 0)
        .single()
        .unwrap()
        .to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_gets_the_pass_keys_in_its_snapshot_a_rotated_key_and_a_used_or_ended_booking_in_deltas()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        let dir = tempfile::tempdir().unwrap();
        let keys = pki::pass_key_dir(dir.path());
        pki::new_pass_key(&keys, Utc::now() - Duration::hours(1)).unwrap();
        passes::start(&central.app.db, &keys, true).await.unwrap();
        let public_1 = pki::list_pass_keys(&keys).unwrap()[0].public_key.clone();

        let header = snapshot_header(&central, 1).await;
        assert_eq!(header.gate.pass_keys.len(), 1, "{:?}", central.app.kind);
        assert_eq!(header.gate.pass_keys[0].kid, 1);
        assert_eq!(header.gate.pass_keys[0].public_key, public_1);
        assert_eq!(header.gate.pass_keys[0].retire_after_ms, None);
        let v1 = header.version;

        // The key is rotated and the centre restarted: a connected gate hears it in a delta.
        pki::rotate_pass_key(&keys, Duration::days(8), Utc::now()).unwrap();
        passes::start(&central.app.db, &keys, true).await.unwrap();
        let d = delta(&central, 1, v1).await;
        let settings = d.gate.expect("the gate's settings are sent again");
        assert_eq!(
            settings.pass_keys.iter().map(|k| k.kid).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(settings.pass_keys[0].retire_after_ms.is_some());
        assert_eq!(settings.pass_keys[1].retire_after_ms, None);
        let v2 = d.version;

        // A booking approved; gate 2 journals its single-use pass's entry.
        let host = central
            .post(
                "/api/v1/persons",
                json!({"name": "张三", "category": "staff", "department": APPROVER_DEPARTMENT}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let booking = central
            .post(
                "/api/v1/bookings",
                json!({
                    "host_id": host, "plate": "京A12345", "driver_name": "周九",
                    "driver_phone": "13812345678",
                    "slot_from": minute(Utc::now() - Duration::minutes(5)),
                    "slot_until": minute(Utc::now() + Duration::hours(2)),
                }),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        central
            .post(&format!("/api/v1/bookings/{booking}/approve"), json!({}))
            .await;
        let d = delta(&central, 1, v2).await;
        let row = d
            .update
            .bookings
            .iter()
            .find(|b| b.id as i64 == booking)
            .unwrap();
        assert_eq!(row.status, "approved");
        assert!(!row.pass_used_entry && !row.pass_used_exit);
        let v3 = d.version;

        let entry = JournalEvent {
            seq: 1,
            at: Utc::now(),
            lane: "in".into(),
            body: EventBody::Decision(DecisionRecord {
                direction: "entry".into(),
                credential: "pass".into(),
                epc: None,
                tid: None,
                antenna: None,
                rssi_dbm: None,
                plate: Some("京A12345".into()),
                granted: true,
                reason: gatehouse::domain::reason::ReasonCode::GrantedPass,
                flags: vec![],
                permit_id: None,
                vehicle_id: None,
                holder: None,
                category: None,
                data_version: v3,
                decide_ns: 800,
                camera: None,
                pass: Some(PassUse {
                    booking_id: booking,
                    key_id: 2,
                    single_use: true,
                }),
            }),
        };
        gatehouse::central::ingest::accept(&central.app.state, 2, &[entry])
            .await
            .unwrap();
        let d = delta(&central, 1, v3).await;
        let row = d
            .update
            .bookings
            .iter()
            .find(|b| b.id as i64 == booking)
            .unwrap();
        assert!(
            row.pass_used_entry,
            "gate 1 learns the pass was used to enter"
        );
        assert!(!row.pass_used_exit);
        assert_eq!(
            row.status, "approved",
            "arrived reads as approved at a gate"
        );
        let v4 = d.version;
        // The snapshot of a gate that starts now says the same.
        let text = central
            .gate_http(1)
            .get(format!("{}/sync/v1/snapshot", central.sync.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let used = text
            .lines()
            .filter_map(|l| serde_json::from_str::<SnapshotLine>(l).ok())
            .any(|l| match l {
                SnapshotLine::Bookings(rows) => rows
                    .iter()
                    .any(|b| b.id as i64 == booking && b.pass_used_entry),
                _ => false,
            });
        assert!(used, "the snapshot carries the consumed entry");

        // The guard marks the visitor left: the booking opens nothing more at any gate.
        let (status, body) = central
            .app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{booking}/leave"),
                Some(Role::Guard),
                None,
            )
            .await;
        assert!(status.is_success(), "{body}");
        let d = delta(&central, 1, v4).await;
        let row = d
            .update
            .bookings
            .iter()
            .find(|b| b.id as i64 == booking)
            .unwrap();
        assert_eq!(
            row.status, "cancelled",
            "a booking whose visitor left opens nothing more"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_approved_booking_reaches_the_gate_as_a_cancelled_booking_row() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let host = central
            .post(
                "/api/v1/persons",
                json!({"name": "李四", "category": "staff", "department": APPROVER_DEPARTMENT}),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        let booking = central
            .post(
                "/api/v1/bookings",
                json!({
                    "host_id": host, "plate": "京B23456", "driver_name": "吴十",
                    "driver_phone": "13812345678",
                    "slot_from": minute(Utc::now() + Duration::hours(1)),
                    "slot_until": minute(Utc::now() + Duration::hours(3)),
                }),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        central
            .post(&format!("/api/v1/bookings/{booking}/approve"), json!({}))
            .await;
        let v = snapshot_header(&central, 1).await.version;
        central
            .post(&format!("/api/v1/bookings/{booking}/cancel"), json!({}))
            .await;
        let d = delta(&central, 1, v).await;
        let row = d
            .update
            .bookings
            .iter()
            .find(|b| b.id as i64 == booking)
            .unwrap();
        assert_eq!(row.status, "cancelled");
    }
}
