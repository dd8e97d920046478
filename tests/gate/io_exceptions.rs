//! A lane I/O module that answers with Modbus exceptions instead of doing what it is asked:
//! "busy" (06) and "device failure" (04), to OPEN, CLOSE and the input polls. The controller
//! asks again after a short pause when the module is busy, journals a command it could not
//! carry out, and does not flap the module offline and online (nor the lane into a fault) at the
//! poll rate because it is busy now and then. Real gate, real bytes over pseudo-terminals.

use crate::support::*;
use firmware_protocols::lane_io::LaneCoil;
use firmware_protocols::modbus::ExceptionCode;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane_io::Requests;
use gatehouse::wire::journal::{EventBody, JournalEvent};

const PLATE: &str = "京A12345";

fn refused(lane: &TestLane, coil: LaneCoil) -> usize {
    lane.io
        .coil_log()
        .iter()
        .filter(|c| c.coil == Some(coil) && c.on == Some(true) && c.refused.is_some())
        .count()
}

fn accepted(lane: &TestLane, coil: LaneCoil) -> usize {
    lane.io
        .coil_log()
        .iter()
        .filter(|c| c.coil == Some(coil) && c.on == Some(true) && c.refused.is_none())
        .count()
}

fn io_device_events(events: &[JournalEvent], lane: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.lane == lane)
        .filter_map(|e| match &e.body {
            EventBody::Device { device, status, .. } if device == "io" => Some(status.clone()),
            _ => None,
        })
        .collect()
}

fn command_failures(events: &[JournalEvent], lane: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.lane == lane)
        .filter_map(|e| match &e.body {
            EventBody::LaneFault { fault, detail } if fault == "command_failed" => {
                Some(detail.clone())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_answered_busy_is_sent_again_and_the_barrier_opens() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");
    // The gate's harness allows one extra attempt (`retries = 1`).
    lane.io
        .refuse(Requests::CoilWrites, ExceptionCode::ServerDeviceBusy, 1);

    let passage = gate.drive_through("entry", &tag).await;

    assert!(passage.decision.granted);
    assert_eq!(refused(lane, LaneCoil::Open), 1, "{:?}", lane.io.coil_log());
    assert_eq!(
        accepted(lane, LaneCoil::Open),
        1,
        "{:?}",
        lane.io.coil_log()
    );
    let events = gate.events().await;
    assert!(command_failures(&events, "entry").is_empty(), "{events:#?}");
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_answered_busy_is_sent_again_and_the_arm_closes_after_the_vehicle() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");
    gate.present("entry", &tag).await;
    lane.wait_arm(ArmState::Open).await;
    // OPEN's pulse has been released by now; the next coil write that is not a release is
    // CLOSE, once the vehicle has gone.
    lane.wait_polls(2).await;
    lane.tag_out_of_field(&tag);
    lane.set_safety(true);
    gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.io
        .refuse(Requests::CoilWrites, ExceptionCode::ServerDeviceBusy, 1);
    lane.set_safety(false);
    lane.wait_arm(ArmState::Closed).await;
    gate.wait_lane_state("entry", "idle").await;

    assert_eq!(
        refused(lane, LaneCoil::Close),
        1,
        "{:?}",
        lane.io.coil_log()
    );
    assert_eq!(
        accepted(lane, LaneCoil::Close),
        1,
        "{:?}",
        lane.io.coil_log()
    );
    lane.assert_no_close_over_vehicle();
    let events = gate.events().await;
    assert!(command_failures(&events, "entry").is_empty(), "{events:#?}");
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_answered_device_failure_is_journalled_as_a_failed_command_and_opens_nothing() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");
    lane.io
        .refuse(Requests::CoilWrites, ExceptionCode::ServerDeviceFailure, 1);

    let after = gate.last_seq().await;
    let (_, decision) = gate.present("entry", &tag).await;
    assert!(decision.granted);
    let failure = gate
        .wait_event_after(after, "a failed OPEN", |e| {
            e.lane == "entry"
                && matches!(&e.body, EventBody::LaneFault { fault, .. } if fault == "command_failed")
        })
        .await;
    let EventBody::LaneFault { detail, .. } = &failure.body else {
        unreachable!()
    };
    assert!(detail.contains("Open"), "{detail}");
    assert!(detail.contains("ServerDeviceFailure"), "{detail}");
    // One refusal, not a retry loop; the arm never moved.
    lane.wait_polls(4).await;
    assert_eq!(refused(lane, LaneCoil::Open), 1, "{:?}", lane.io.coil_log());
    assert_eq!(
        accepted(lane, LaneCoil::Open),
        0,
        "{:?}",
        lane.io.coil_log()
    );
    assert_eq!(lane.io.arm(), ArmState::Closed);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_busy_now_and_then_on_polls_is_not_flapped_offline_and_the_lane_keeps_working() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");
    lane.wait_polls(3).await;
    let before = gate.events().await.len();
    for _ in 0..10 {
        lane.io
            .refuse(Requests::Reads, ExceptionCode::ServerDeviceBusy, 1);
        lane.wait_polls(2).await;
    }
    let events = gate.events().await;
    let fresh = &events[before..];
    assert!(io_device_events(fresh, "entry").is_empty(), "{fresh:#?}");
    assert!(
        !fresh
            .iter()
            .any(|e| matches!(&e.body, EventBody::LaneFault { .. })),
        "{fresh:#?}"
    );
    assert!(gate.status("entry").io_online);
    // And it still lets a permitted vehicle through.
    gate.drive_through("entry", &tag).await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_failing_every_poll_goes_offline_once_and_comes_back_once_it_answers() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let lane = gate.lane("entry");
    lane.wait_polls(3).await;
    let after = gate.last_seq().await;
    lane.io
        .refuse(Requests::Reads, ExceptionCode::ServerDeviceFailure, 20);
    let is_io = |status: &'static str| {
        move |e: &JournalEvent| {
            e.lane == "entry"
                && matches!(&e.body, EventBody::Device { device, status: s, .. }
                    if device == "io" && s == status)
        }
    };
    let offline = gate
        .wait_event_after(after, "I/O module offline", is_io("offline"))
        .await;
    assert!(!gate.status("entry").io_online);
    gate.wait_event_after(offline.seq, "I/O module online", is_io("online"))
        .await;
    lane.wait_polls(3).await;
    let events: Vec<JournalEvent> = gate
        .events()
        .await
        .into_iter()
        .filter(|e| e.seq > after)
        .collect();
    assert_eq!(
        io_device_events(&events, "entry"),
        ["offline", "online"],
        "{events:#?}"
    );
    assert!(gate.status("entry").io_online);
    gate.shutdown().await;
}
