//! Campus-wide anti-passback: a vehicle that entered at one gate is inside at every gate.

use gatehouse::domain::VehicleId;

use crate::support::gate::{GateOptions, LaneSpec, epc, hex, spawn_gate_with, wait_for};
use crate::support::harness::each_database;
use crate::support::{Central, Office, Syncing, wait_for_tag};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_that_entered_at_gate_1_is_refused_entry_at_gate_2_under_hard_anti_passback() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let (vehicle, _) = central.issue("张三", "京A12345", &hex(&epc(1))).await;
        let options = |gate_id| GateOptions {
            gate_id,
            anti_passback: "hard",
            ..GateOptions::default()
        };
        let gate1 = spawn_gate_with(&[LaneSpec::entry("in")], options(1)).await;
        let gate2 = spawn_gate_with(&[LaneSpec::entry("in")], options(2)).await;
        let mut sync1 = Syncing::connect(&central, 1).await;
        let mut sync2 = Syncing::connect(&central, 2).await;
        sync1.run(&gate1);
        sync2.run(&gate2);
        wait_for_tag(&gate1, &epc(1)).await;
        wait_for_tag(&gate2, &epc(1)).await;

        let passage = gate1.drive_through("in", &epc(1)).await;
        let entered = passage.safety_cleared;
        wait_for("gate 2 to learn the vehicle is inside", || async {
            gate2
                .handle()
                .shared()
                .store
                .load_presence()
                .await
                .unwrap()
                .iter()
                .any(|p| p.vehicle_id == VehicleId(vehicle as u32) && p.inside && p.gate == 1)
                .then_some(())
        })
        .await;
        println!(
            "presence reached gate 2 {} ms after the vehicle cleared gate 1 ({:?})",
            entered.elapsed().as_millis(),
            central.app.kind
        );
        let (_, decision) = gate2.present("in", &epc(1)).await;
        assert_eq!(
            (decision.granted, decision.reason.as_str()),
            (false, "denied_passback")
        );
        gate2.lane("in").assert_never_opened();
        sync1.stop().await;
        sync2.stop().await;
        gate1.shutdown().await;
        gate2.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_an_upload_queued_but_nobody_announced_is_announced_when_a_sync_server_starts() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let (vehicle, _) = central.issue("李四", "京B54321", &hex(&epc(2))).await;
        // What an upload leaves when the server dies between its commit and the announcement:
        // the presence stored, the vehicle queued, no change-log entry.
        let db = central.app.db.clone();
        sqlx::query(
            "INSERT INTO vehicle_presence (vehicle_id, inside, since_ms, gate_id) \
             VALUES ($1, 1, $2, 1)",
        )
        .bind(vehicle)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query("INSERT INTO presence_pending (vehicles) VALUES ($1)")
            .bind(vehicle.to_string())
            .execute(db.pool())
            .await
            .unwrap();

        // A sync server starting (here a second instance on the same database) announces it,
        // with no upload to wake it.
        let (_state, server) = central.second_instance().await;
        wait_for("the queued presence to be announced", || async {
            let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM presence_pending")
                .fetch_one(db.pool())
                .await
                .unwrap();
            let announced: Vec<String> = sqlx::query_scalar(
                "SELECT entity_id FROM change_log WHERE entity = 'presence_batch'",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            let listed = announced
                .iter()
                .any(|list| list.split(',').any(|v| v == vehicle.to_string()));
            (pending == 0 && listed).then_some(())
        })
        .await;
        server.shutdown().await;
    }
}
