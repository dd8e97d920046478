//! Commands to the gates: delivered over the sync connection, carried out on the lanes,
//! acknowledged and audited; refused and offline cases named.

use gatehouse::central::commands::{CommandError, send};
use gatehouse::central::db::Actor;
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::command::{GateCommand, GuardAction, LaneMode};

use crate::support::gate::{LaneSpec, spawn_gate, wait_for};
use crate::support::harness::each_database;
use crate::support::{Central, Syncing};

fn office() -> Actor {
    Actor {
        operator_id: None,
        name: "保卫处值班员".into(),
    }
}

async fn audit_actions(central: &Central) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE entity = 'gate' ORDER BY id")
        .fetch_all(central.app.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_and_a_remote_open_reach_the_gate_are_acknowledged_and_audited() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let gate = spawn_gate(&[LaneSpec::entry("in"), LaneSpec::exit("out")]).await;
        let mut sync = Syncing::connect(&central, 1).await;
        sync.run(&gate);
        wait_for("the gate to report", || async {
            gatehouse::central::repo::sync::last_seen(&central.app.db, 1)
                .await
                .unwrap()
                .map(|_| ())
        })
        .await;

        // Lockdown for the whole gate.
        let ack = send(
            &central.app.state,
            1,
            GateCommand::SetMode {
                lane: None,
                mode: LaneMode::Lockdown,
                by: "保卫处".into(),
            },
            &office(),
        )
        .await
        .unwrap();
        assert_eq!(ack.gate_id, 1);
        assert_eq!(gate.status("in").mode, "locked_closed");
        assert_eq!(gate.status("out").mode, "locked_closed");

        // A remote open with a reason, on one lane.
        send(
            &central.app.state,
            1,
            GateCommand::Guard {
                lane: "in".into(),
                command: GuardAction::Open,
                reason: "emergency_vehicle".into(),
                note: Some("救护车".into()),
                operator: "guard1".into(),
                plate: None,
            },
            &office(),
        )
        .await
        .unwrap();
        gate.lane("in").wait_arm(ArmState::Open).await;
        let e = gate
            .wait_event("the override", |e| {
                matches!(&e.body, gatehouse::wire::journal::EventBody::Override { reason, .. } if reason == "emergency_vehicle")
            })
            .await;
        assert_eq!(e.lane, "in");

        // An unknown lane is refused by the gate, with its reason.
        let refused = send(
            &central.app.state,
            1,
            GateCommand::SetMode {
                lane: Some("nowhere".into()),
                mode: LaneMode::Normal,
                by: "保卫处".into(),
            },
            &office(),
        )
        .await;
        assert!(
            matches!(&refused, Err(CommandError::Refused(m)) if m.contains("no lane nowhere")),
            "{refused:?}"
        );

        // Gate 2 never connected: offline, and nothing is queued for it.
        let offline = send(
            &central.app.state,
            2,
            GateCommand::SetMode {
                lane: None,
                mode: LaneMode::Normal,
                by: "保卫处".into(),
            },
            &office(),
        )
        .await;
        assert!(
            matches!(offline, Err(CommandError::GateOffline)),
            "{offline:?}"
        );

        let actions = audit_actions(&central).await;
        let count = |a: &str| actions.iter().filter(|x| *x == a).count();
        assert_eq!(
            (count("gate_command"), count("gate_command_ack")),
            (3, 3),
            "{actions:?}"
        );
        sync.stop().await;
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_wide_lockdown_through_the_api_reaches_every_gate_and_the_office_sees_their_health()
 {
    use axum::http::{Method, StatusCode};
    use gatehouse::central::api::auth::Role;
    use serde_json::json;

    for t in each_database().await {
        let central = Central::start(t).await;
        let gate1 = crate::support::gate::spawn_gate_with(
            &[LaneSpec::entry("in")],
            crate::support::gate::GateOptions {
                gate_id: 1,
                ..Default::default()
            },
        )
        .await;
        let gate2 = crate::support::gate::spawn_gate_with(
            &[LaneSpec::entry("in")],
            crate::support::gate::GateOptions {
                gate_id: 2,
                ..Default::default()
            },
        )
        .await;
        let mut sync1 = Syncing::connect(&central, 1).await;
        let mut sync2 = Syncing::connect(&central, 2).await;
        sync1.run(&gate1);
        sync2.run(&gate2);

        let (status, body) = central
            .app
            .call(
                Method::POST,
                "/api/v1/sync/campus-mode",
                Some(Role::Guard),
                Some(json!({"mode": "locked_closed", "reason": "演练"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = central
            .app
            .call_lang(
                Method::POST,
                "/api/v1/sync/campus-mode",
                Some(Role::Security),
                Some(json!({"mode": "lockdown!", "reason": "演练"})),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("is not one of"), "{body}");
        let (status, body) = central
            .app
            .call(
                Method::POST,
                "/api/v1/sync/campus-mode",
                Some(Role::Security),
                Some(json!({"mode": "locked_closed", "reason": "校园封闭演练"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for gate in [&gate1, &gate2] {
            gate.wait_status("in", "lockdown from the centre", |s| {
                s.mode == "locked_closed"
            })
            .await;
        }

        // Both gates report; the admin sees both, the guard only their own gate 1.
        wait_for("both gates' health reports", || async {
            let (_, body) = central
                .app
                .call(Method::GET, "/api/v1/sync/gates", Some(Role::Admin), None)
                .await;
            let gates = body.as_array()?.clone();
            let reported = gates.iter().all(|g| {
                g["silent"] == false && g["report"]["lanes"][0]["mode"] == "locked_closed"
            });
            (gates.len() == 2 && reported).then_some(())
        })
        .await;
        let (_, body) = central
            .app
            .call(Method::GET, "/api/v1/sync/gates", Some(Role::Guard), None)
            .await;
        let ids: Vec<i64> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["gate_id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [1]);
        assert_eq!(body[0]["clock_warning"], false);
        sync1.stop().await;
        sync2.stop().await;
        gate1.shutdown().await;
        gate2.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_whose_offline_policy_is_locked_closed_locks_its_lanes_while_the_centre_is_unreachable()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        sqlx::query("UPDATE gates SET offline_policy = 'locked_closed' WHERE id = 1")
            .execute(central.app.db.pool())
            .await
            .unwrap();
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let mut sync = Syncing::connect(&central, 1).await;
        sync.run(&gate);
        wait_for("the gate's first snapshot", || async {
            (gate.handle().shared().store.data_version().await.unwrap() > 0).then_some(())
        })
        .await;
        assert_eq!(gate.status("in").mode, "normal");
        sync.proxy.cut();
        // offline_after is 2 s in the test options; the harness deadline is 5 s.
        gate.wait_status("in", "the offline policy", |s| s.mode == "locked_closed")
            .await;
        sync.proxy.restore();
        gate.wait_status("in", "normal again once the centre is back", |s| {
            s.mode == "normal"
        })
        .await;
        sync.stop().await;
        gate.shutdown().await;
    }
}
