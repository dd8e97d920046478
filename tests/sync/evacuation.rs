//! Evacuation end to end, and the `locked_open` offline policy.
//!
//! The office orders a campus evacuation (the admin page's 全校疏散 button calls
//! `POST /api/v1/sync/campus-mode` with `locked_open`): every lane of every gate takes the mode
//! from its data pull, raises its arm and keeps it up (a vehicle passes, the arm stays up), the
//! mode changes reach the centre as events, and the office's gate health shows every lane
//! `locked_open`; back to `normal`, the lanes follow.
//!
//! A gate whose offline policy is `locked_open` that loses the centre opens all its lanes
//! after `offline_after`, and restores their modes once the centre is back.

use std::time::Duration;

use axum::http::Method;
use gatehouse::central::api::auth::Role;
use gatehouse::sim::barrier::ArmState;
use serde_json::json;
use sqlx::Row;

use crate::support::gate::{
    GateOptions, LaneSpec, TestGate, spawn_gate, spawn_gate_with, wait_for,
};
use crate::support::harness::each_database;
use crate::support::{Central, Syncing};

/// The lanes of `gate` whose mode-change events to `mode` the centre has stored.
async fn stored_mode_changes(central: &Central, gate: i64, mode: &str) -> Vec<String> {
    let rows = sqlx::query(
        "SELECT lane, body FROM passage_events WHERE gate_id = $1 AND kind = 'mode_change' ORDER BY seq",
    )
    .bind(gate)
    .fetch_all(central.app.db.pool())
    .await
    .unwrap();
    rows.iter()
        .filter(|r| {
            let body: serde_json::Value =
                serde_json::from_str(&r.get::<String, _>("body")).unwrap();
            body["to"] == mode
        })
        .map(|r| r.get::<String, _>("lane"))
        .collect()
}

/// The lane modes the office's gate health shows for `gate`.
async fn office_modes(central: &Central, gate: i64) -> Vec<String> {
    let health = central
        .call(Method::GET, "/api/v1/sync/gates", Role::Security, None)
        .await;
    health
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate_id"] == gate)
        .and_then(|g| g["report"]["lanes"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|l| l["mode"].as_str().unwrap().to_string())
        .collect()
}

async fn all_lanes(gate: &TestGate, lanes: &[&str], mode: &str) {
    for lane in lanes {
        gate.wait_status(lane, &format!("mode {mode}"), |s| s.mode == mode)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evacuation_ordered_by_the_office_opens_every_lane_of_every_gate_keeps_them_open_and_the_office_sees_it()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        let north = spawn_gate(&[LaneSpec::entry("in"), LaneSpec::exit("out")]).await;
        let south = spawn_gate_with(
            &[LaneSpec::entry("in")],
            GateOptions {
                gate_id: 2,
                ..GateOptions::default()
            },
        )
        .await;
        let gates: [(i64, &TestGate, &[&str]); 2] =
            [(1, &north, &["in", "out"]), (2, &south, &["in"])];
        let mut syncs = Vec::new();
        for (id, gate, _) in gates {
            gate.wait_ready().await;
            let mut sync = Syncing::connect(&central, id).await;
            sync.run(gate);
            syncs.push(sync);
        }
        for (id, _, _) in gates {
            wait_for("the gate to report", || async {
                gatehouse::central::repo::sync::last_seen(&central.app.db, id)
                    .await
                    .unwrap()
                    .map(|_| ())
            })
            .await;
        }

        // The office orders the evacuation.
        central
            .call(
                Method::POST,
                "/api/v1/sync/campus-mode",
                Role::Security,
                Some(json!({ "mode": "locked_open", "reason": "化学楼火警，全校疏散" })),
            )
            .await;

        // Every lane of every gate opens.
        for (_, gate, lanes) in gates {
            all_lanes(gate, lanes, "locked_open").await;
            for lane in lanes {
                gate.lane(lane).wait_arm(ArmState::Open).await;
            }
        }
        // And stays open: a vehicle drives through, the controller polls on, no close.
        let lane = north.lane("in");
        let closes_before = lane.closes().len();
        lane.set_presence(true);
        lane.set_safety(true);
        lane.set_presence(false);
        lane.set_safety(false);
        for (_, gate, lanes) in gates {
            for lane in lanes {
                gate.lane(lane).wait_polls(20).await;
                assert_eq!(
                    gate.lane(lane).io.arm(),
                    ArmState::Open,
                    "{lane} stays open"
                );
            }
        }
        assert_eq!(lane.closes().len(), closes_before, "no close was commanded");

        // The mode changes reach the centre as events, and the office sees every lane open.
        for (id, _, lanes) in gates {
            wait_for("the mode changes to reach the centre", || async {
                let stored = stored_mode_changes(&central, id, "locked_open").await;
                lanes
                    .iter()
                    .all(|l| stored.iter().any(|s| s == l))
                    .then_some(())
            })
            .await;
            wait_for("the office to see every lane open", || async {
                let modes = office_modes(&central, id).await;
                (modes.len() == lanes.len() && modes.iter().all(|m| m == "locked_open"))
                    .then_some(())
            })
            .await;
        }

        // The evacuation ends: every lane returns to normal.
        central
            .call(
                Method::POST,
                "/api/v1/sync/campus-mode",
                Role::Security,
                Some(json!({ "mode": "normal", "reason": "疏散结束" })),
            )
            .await;
        for (_, gate, lanes) in gates {
            all_lanes(gate, lanes, "normal").await;
        }
        for mut sync in syncs {
            sync.stop().await;
        }
        north.shutdown_lenient().await;
        south.shutdown_lenient().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_with_the_locked_open_offline_policy_that_loses_the_centre_opens_every_lane_and_restores_them_when_it_is_back()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        central
            .call(
                Method::PUT,
                "/api/v1/gates/1",
                Role::Admin,
                Some(json!({ "name": "北门", "offline_policy": "locked_open" })),
            )
            .await;
        let gate = spawn_gate(&[LaneSpec::entry("in"), LaneSpec::exit("out")]).await;
        gate.wait_ready().await;
        let mut sync = Syncing::connect(&central, 1).await;
        sync.run(&gate);
        // The gate has the policy once it has pulled its data.
        wait_for("the gate to pull its data", || async {
            (gate.handle().shared().store.data_version().await.unwrap() > 0).then_some(())
        })
        .await;
        for lane in ["in", "out"] {
            assert_eq!(gate.status(lane).mode, "normal");
            assert_eq!(gate.lane(lane).io.arm(), ArmState::Closed);
        }

        // The network to the centre goes down: after `offline_after` (2 s here) every lane
        // opens and stays open.
        let lost = tokio::time::Instant::now();
        sync.proxy.cut();
        all_lanes(&gate, &["in", "out"], "locked_open").await;
        assert!(
            lost.elapsed() >= Duration::from_millis(1_900),
            "not before offline_after: {:?}",
            lost.elapsed()
        );
        for lane in ["in", "out"] {
            gate.lane(lane).wait_arm(ArmState::Open).await;
        }
        let mode_changes = gate
            .events()
            .await
            .into_iter()
            .filter(|e| {
                matches!(&e.body, gatehouse::wire::journal::EventBody::ModeChange { to, .. } if to == "locked_open")
            })
            .count();
        assert_eq!(mode_changes, 2, "journalled for both lanes");

        // The centre is back: the lanes return to the modes they had.
        sync.proxy.restore();
        all_lanes(&gate, &["in", "out"], "normal").await;
        sync.stop().await;
        gate.shutdown_lenient().await;
    }
}
