//! Commands to the gates: delivered over the sync connection, carried out on the lanes,
//! acknowledged and audited; refused and offline cases named.

use gatehouse::central::commands::{CommandError, GateCommand, send};
use gatehouse::central::db::Actor;
use gatehouse::sim::barrier::ArmState;

use crate::support::central::each_database;
use crate::support::gate::{LaneSpec, spawn_gate, wait_for};
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
                mode: "lockdown".into(),
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
                command: "open".into(),
                reason: "emergency_vehicle".into(),
                note: Some("救护车".into()),
                operator: "guard1".into(),
            },
            &office(),
        )
        .await
        .unwrap();
        gate.lane("in").wait_arm(ArmState::Open).await;
        let e = gate
            .wait_event("the override", |e| {
                matches!(&e.body, gatehouse::gate::journal::EventBody::Override { reason, .. } if reason == "emergency_vehicle")
            })
            .await;
        assert_eq!(e.lane, "in");

        // An unknown lane is refused by the gate, with its reason.
        let refused = send(
            &central.app.state,
            1,
            GateCommand::SetMode {
                lane: Some("nowhere".into()),
                mode: "normal".into(),
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
                mode: "normal".into(),
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
