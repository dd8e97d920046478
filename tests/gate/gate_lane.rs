//! The gate lane controller against what a lane must do, end to end: a real
//! [`GateHandle`] talks to the UHF reader and lane I/O module emulators through real
//! pseudo-terminals (see `support`). Nothing is mocked; every wait is on a condition with a
//! deadline.

use crate::support::*;
use chrono::{Timelike, Utc};
use gatehouse::gate::lane::{GuardCommand, GuardOpenReason, Mode};
use gatehouse::gate::runtime::LaneCommand;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::uhf_reader::Noise;
use gatehouse::wire::journal::{BarrierAction, EventBody, JournalEvent};
use gatehouse::wire::rows::{BlacklistRecord, LockRecord, PermitRecord, Update};

const PLATE: &str = "京A12345";

fn lane_fault(e: &JournalEvent, lane: &str, fault: &str) -> bool {
    e.lane == lane && matches!(&e.body, EventBody::LaneFault { fault: f, .. } if f == fault)
}

fn device(e: &JournalEvent, lane: &str, which: &str, status: &str) -> bool {
    e.lane == lane
        && matches!(&e.body, EventBody::Device { device, status: s, .. }
            if device == which && s == status)
}

fn barrier_events(events: &[JournalEvent], lane: &str, after: u64) -> Vec<(BarrierAction, String)> {
    events
        .iter()
        .filter(|e| e.seq > after && e.lane == lane)
        .filter_map(|e| match &e.body {
            EventBody::Barrier { action, cause } => Some((*action, cause.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permitted_tag_opens_the_barrier_and_close_is_written_only_after_the_safety_loop_clears()
{
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");

    let passage = gate.drive_through("entry", &tag).await;

    // The I/O module: exactly one OPEN, then exactly one CLOSE, written after the safety loop
    // cleared (and after the close delay), never while a loop was occupied.
    assert_eq!(lane.opens().len(), 1, "{:?}", lane.io.coil_log());
    let closes = lane.closes();
    assert_eq!(closes.len(), 1, "{:?}", lane.io.coil_log());
    assert!(lane.opens()[0].at < closes[0].at);
    assert!(
        closes[0].at >= passage.safety_cleared,
        "CLOSE at {:?} before the safety loop cleared at {:?}",
        closes[0].at,
        passage.safety_cleared
    );
    let held = closes[0].at - passage.safety_cleared;
    assert!(
        held.as_millis() >= u128::from(gate.config.lanes[0].close_delay_ms) - 25,
        "the arm was held only {held:?} after the loop cleared"
    );
    lane.assert_no_close_over_vehicle();

    // The journal: the grant, OPEN, the passage, CLOSE, in that order.
    let events = gate.events().await;
    let decision = passage.decision;
    assert_eq!(decision.reason.as_str(), "granted");
    assert_eq!(decision.epc.as_deref(), Some(hex(&tag).as_str()));
    assert_eq!(decision.plate.as_deref(), Some(PLATE));
    let pos = |pred: &dyn Fn(&JournalEvent) -> bool, what: &str| {
        events
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
    };
    let d = pos(&|e| e.seq == passage.decision_seq, "decision");
    let open = pos(&|e| is_barrier(e, BarrierAction::Open), "barrier open");
    let passed = pos(
        &|e| {
            matches!(&e.body, EventBody::Passage { vehicle_id: Some(1), permit_id: Some(1), direction, .. }
            if direction == "entry")
        },
        "passage",
    );
    let close = pos(&|e| is_barrier(e, BarrierAction::Close), "barrier close");
    assert!(d < open && open < passed && passed < close, "{events:#?}");
    gate.shutdown().await;
}

/// A vehicle with `tag` arrives at `lane` and must be denied with `reason`; nothing opens, and
/// the lane is idle again once it backs away.
async fn assert_denied(gate: &TestGate, lane: &str, tag: &[u8], reason: &str) {
    let opens_before = gate.lane(lane).opens().len();
    let (seq, decision) = gate.present(lane, tag).await;
    assert!(!decision.granted, "{decision:?}");
    assert_eq!(decision.reason.as_str(), reason, "{decision:?}");
    // The lane shows it at once.
    gate.wait_lane_state(lane, "denied").await;
    // Let the reader see the tag again after its hold: still denied, still closed.
    gate.wait_decision(lane, seq).await;
    gate.back_away(lane, tag).await;
    let l = gate.lane(lane);
    assert_eq!(l.opens().len(), opens_before, "{:?}", l.io.coil_log());
    assert_eq!(l.io.arm(), ArmState::Closed);
    let events = gate.events().await;
    assert!(
        barrier_events(&events, lane, seq - 1).is_empty(),
        "barrier commanded for a denied vehicle: {events:#?}"
    );
    for e in events.iter().filter(|e| e.seq >= seq) {
        if let EventBody::Decision(d) = &e.body {
            assert!(!d.granted && d.reason.as_str() == reason, "{d:?}");
        }
    }
}

async fn denied_at_entry(permit: PermitRecord, extra: Update, reason: &str) {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(2);
    let mut update = vehicle_with_tag(2, PLATE, permit, &tag);
    update.blacklist = extra.blacklist;
    update.locks = extra.locks;
    gate.seed(update).await;
    assert_denied(&gate, "entry", &tag, reason).await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_permit_is_denied_as_expired_and_nothing_opens() {
    let now = now_minute();
    let p = PermitRecord {
        valid_from: now - 3000,
        valid_until: now - 1000,
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_expired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_not_yet_valid_is_denied_as_not_yet_valid_and_nothing_opens() {
    let now = now_minute();
    let p = PermitRecord {
        valid_from: now + 1000,
        valid_until: now + 3000,
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_not_yet_valid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_permit_is_denied_as_suspended_and_nothing_opens() {
    let p = PermitRecord {
        status: "suspended".into(),
        status_reason: "unpaid parking fee".into(),
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_suspended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_permit_is_denied_as_revoked_and_nothing_opens() {
    let p = PermitRecord {
        status: "revoked".into(),
        status_reason: "left the university".into(),
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_revoked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_for_another_gate_is_denied_as_wrong_gate_and_nothing_opens() {
    let p = PermitRecord {
        gates: "2;3".into(),
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_wrong_gate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_for_exits_only_is_denied_at_an_entry_as_wrong_direction_and_nothing_opens() {
    let p = PermitRecord {
        gates: "1:exit".into(),
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_wrong_direction").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_outside_its_schedule_is_denied_as_outside_schedule_and_nothing_opens() {
    // A daily window starting six hours from now (site time), one hour long.
    let local = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let start = (local.hour() + 6) % 24;
    let schedule = format!("daily {start:02}:00-{:02}:00", (start + 1) % 24);
    let p = PermitRecord {
        schedule,
        ..permit(2)
    };
    denied_at_entry(p, Update::default(), "denied_outside_schedule").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_plate_is_denied_as_blacklisted_despite_an_active_permit_and_nothing_opens() {
    let now = now_minute();
    let extra = Update {
        blacklist: vec![BlacklistRecord {
            id: 1,
            subject_kind: "plate".into(),
            subject: PLATE.into(),
            colour: None,
            reason: "stolen vehicle".into(),
            valid_from: now - 60,
            valid_until: now + 60,
            alarm: "guard".into(),
        }],
        ..Update::default()
    };
    denied_at_entry(permit(2), extra, "denied_blacklisted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_recorded_inside_is_denied_reentry_under_hard_anti_passback_and_nothing_opens() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(3);
    gate.seed(vehicle_with_tag(3, PLATE, permit(3), &tag)).await;
    // In once (recorded inside)...
    gate.drive_through("entry", &tag).await;
    assert_eq!(gate.lane("entry").opens().len(), 1);
    // ...and at the entry again without having left.
    assert_denied(&gate, "entry", &tag, "denied_passback").await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_vehicle_is_denied_exit_as_locked_vehicle_and_nothing_opens() {
    let gate = spawn_gate(&[LaneSpec::exit("exit")]).await;
    let tag = epc(4);
    let now = now_minute();
    let mut update = vehicle_with_tag(4, PLATE, permit(4), &tag);
    update.locks = vec![LockRecord {
        id: 1,
        plate: PLATE.into(),
        colour: None,
        reason: "unpaid fines".into(),
        valid_from: now - 60,
        valid_until: now + 60,
    }];
    gate.seed(update).await;
    assert_denied(&gate, "exit", &tag, "denied_locked_vehicle").await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_read_with_nothing_on_the_presence_loop_opens_nothing_and_is_journalled_as_ignored() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(5);
    gate.seed(vehicle_with_tag(5, PLATE, permit(5), &tag)).await;
    let lane = gate.lane("entry");

    lane.tag_in_field(&tag);
    let ignored = gate
        .wait_event("tag_ignored", |e| {
            matches!(&e.body, EventBody::TagIgnored { epc, why, .. }
                if *epc == hex(&tag) && why == "no_vehicle_on_loop")
        })
        .await;
    assert_eq!(ignored.lane, "entry");
    // The reader keeps seeing it for a while: still nothing.
    lane.wait_inventories(20).await;
    lane.wait_polls(10).await;
    lane.assert_never_opened();
    assert_eq!(lane.io.arm(), ArmState::Closed);
    let status = gate.status("entry");
    assert_eq!(status.decisions, 0);
    assert!(status.tags_ignored_no_vehicle >= 1);
    let events = gate.events().await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.body, EventBody::Decision(_) | EventBody::Barrier { .. })),
        "{events:#?}"
    );
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_hang_up_and_return_is_survived_without_a_restart() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(6);
    gate.seed(vehicle_with_tag(6, PLATE, permit(6), &tag)).await;
    let lane = gate.lane("entry");
    let online = gate
        .wait_event("reader online", |e| device(e, "entry", "reader", "online"))
        .await;

    lane.hang_up_reader();
    let offline = gate
        .wait_event_after(online.seq, "reader offline", |e| {
            device(e, "entry", "reader", "offline")
        })
        .await;
    gate.wait_status("entry", "reader offline", |s| !s.reader_online)
        .await;
    assert!(!lane.reader_plugged());

    lane.plug_reader_back();
    gate.wait_event_after(offline.seq, "reader online again", |e| {
        device(e, "entry", "reader", "online")
    })
    .await;
    gate.wait_status("entry", "reader online", |s| s.reader_online)
        .await;

    // Same controller, a later vehicle is read and let through.
    gate.drive_through("entry", &tag).await;
    assert_eq!(lane.opens().len(), 1);
    lane.assert_no_close_over_vehicle();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_on_the_reader_line_is_counted_and_changes_nothing_and_a_permitted_vehicle_opens() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(7);
    gate.seed(vehicle_with_tag(7, PLATE, permit(7), &tag)).await;
    let lane = gate.lane("entry");
    let seq = gate.last_seq().await;

    lane.reader.set_noise(Noise {
        corrupt_percent: 0,
        garbage_percent: 60,
        max_garbage_len: 16,
        seed: 7,
    });
    lane.reader.inject_garbage(40);
    lane.wait_inventories(30).await;
    // Every injected byte is counted by the controller's decoder.
    let injected = lane.reader.stats().injected_bytes();
    assert!(injected >= 40);
    gate.wait_status("entry", "noise counted", |s| {
        s.reader_dropped_bytes >= injected
    })
    .await;
    // Nothing happened: no decision, no barrier command, no fault, reader still online.
    let events = gate.events().await;
    let since: Vec<_> = events.iter().filter(|e| e.seq > seq).collect();
    assert!(since.is_empty(), "noise changed something: {since:#?}");
    lane.assert_never_opened();
    assert!(gate.status("entry").reader_online);

    // With the noise still on, a permitted vehicle is let through.
    gate.drive_through("entry", &tag).await;
    assert_eq!(lane.opens().len(), 1);
    lane.assert_no_close_over_vehicle();
    let stats = lane.reader.stats();
    assert!(stats.garbage_bytes > injected, "{stats:?}");
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_io_line_is_counted_and_changes_nothing_and_a_permitted_vehicle_opens() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(8);
    gate.seed(vehicle_with_tag(8, PLATE, permit(8), &tag)).await;
    let lane = gate.lane("entry");
    let writes_before = lane.io.coil_log().len();

    let seq = gate.last_seq().await;
    let garbage = [0x55u8, 0x13, 0x00, 0xFF, 0x42, 0x99, 0x07, 0x3C];
    lane.io.inject_garbage(&garbage);
    tokio::time::timeout(DEADLINE, async {
        while lane.io.garbage_sent() < garbage.len() as u64 {
            lane.wait_polls(1).await;
        }
    })
    .await
    .expect("the garbage went out");
    lane.wait_polls(10).await;
    assert_eq!(lane.io.garbage_sent(), garbage.len() as u64);
    // The arm did not move and no command was written because of it.
    assert_eq!(lane.io.arm(), ArmState::Closed);
    let new_writes: Vec<_> = lane.io.coil_log()[writes_before..]
        .iter()
        .filter(|c| c.on == Some(true))
        .copied()
        .collect();
    assert!(new_writes.is_empty(), "{new_writes:?}");
    gate.wait_status("entry", "I/O online and lane idle", |s| {
        s.io_online && s.state == "idle"
    })
    .await;
    // No fault, no device event, no command: the garbage changed nothing.
    let events = gate.events().await;
    let since: Vec<_> = events.iter().filter(|e| e.seq > seq).collect();
    assert!(
        since.is_empty(),
        "I/O garbage changed something: {since:#?}"
    );

    gate.drive_through("entry", &tag).await;
    assert_eq!(lane.opens().len(), 1);
    lane.assert_no_close_over_vehicle();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_module_timeouts_raise_a_fault_and_move_no_arm() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(9);
    gate.seed(vehicle_with_tag(9, PLATE, permit(9), &tag)).await;
    let lane = gate.lane("entry");
    let seq = gate.last_seq().await;

    lane.io.set_silent(true);
    gate.wait_event_after(seq, "io_read_failed", |e| {
        lane_fault(e, "entry", "io_read_failed")
    })
    .await;
    gate.wait_event_after(seq, "I/O offline", |e| device(e, "entry", "io", "offline"))
        .await;
    gate.wait_status("entry", "I/O offline", |s| !s.io_online)
        .await;
    // A permitted vehicle turns up while the module is silent: nothing can be known of the
    // loops, so nothing moves.
    lane.set_presence(true);
    lane.tag_in_field(&tag);
    lane.wait_inventories(20).await;
    assert_eq!(lane.io.arm(), ArmState::Closed);
    let events = gate.events().await;
    assert!(
        barrier_events(&events, "entry", seq).is_empty(),
        "{events:#?}"
    );
    lane.assert_never_opened();

    // The module answers again: the fault clears and the lane works.
    lane.tag_out_of_field(&tag);
    lane.set_presence(false);
    lane.io.set_silent(false);
    gate.wait_event_after(seq, "io_recovered", |e| {
        lane_fault(e, "entry", "io_recovered")
    })
    .await;
    gate.wait_ready().await;
    gate.drive_through("entry", &tag).await;
    assert_eq!(lane.opens().len(), 1);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fire_input_opens_the_arm_and_holds_it_open_with_no_close_until_it_clears() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let lane = gate.lane("entry");
    let seq = gate.last_seq().await;

    lane.io.set_fire(true);
    gate.wait_event_after(seq, "fire_alarm", |e| lane_fault(e, "entry", "fire_alarm"))
        .await;
    let open = gate
        .wait_event_after(seq, "barrier open", |e| is_barrier(e, BarrierAction::Open))
        .await;
    assert!(
        matches!(&open.body, EventBody::Barrier { cause, .. } if cause == "fire"),
        "the journal must say the fire opened the arm: {open:?}"
    );
    lane.wait_arm(ArmState::Open).await;
    assert_eq!(lane.opens().len(), 1);
    // Vehicles come and go under the held arm; well past the close delay, still no CLOSE.
    for _ in 0..2 {
        lane.set_presence(true);
        lane.set_safety(true);
        lane.wait_polls(5).await;
        lane.set_presence(false);
        lane.set_safety(false);
        lane.wait_polls(30).await;
    }
    assert!(lane.closes().is_empty(), "{:?}", lane.io.coil_log());
    assert_eq!(lane.io.arm(), ArmState::Open);
    assert_eq!(gate.status("entry").state, "held_open");

    // The alarm clears: the lane closes, after the close delay, over empty loops.
    let cleared = tokio::time::Instant::now();
    lane.io.set_fire(false);
    lane.wait_arm(ArmState::Closed).await;
    let closes = lane.closes();
    assert_eq!(closes.len(), 1);
    assert!(closes[0].at > cleared);
    lane.assert_no_close_over_vehicle();
    gate.wait_event_after(seq, "fire_alarm_cleared", |e| {
        lane_fault(e, "entry", "fire_alarm_cleared")
    })
    .await;
    gate.wait_lane_state("entry", "idle").await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_opens_nothing_for_a_permitted_tag_but_a_guard_open_does_and_is_journalled() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(10);
    gate.seed(vehicle_with_tag(10, PLATE, permit(10), &tag))
        .await;
    let lane = gate.lane("entry");

    gate.handle()
        .command(
            "entry",
            LaneCommand::SetMode {
                mode: Mode::LockedClosed,
                by: "guard:王五".into(),
                done: None,
            },
        )
        .await
        .unwrap();
    let mode = gate
        .wait_event("mode change", |e| {
            matches!(e.body, EventBody::ModeChange { .. })
        })
        .await;
    assert!(
        matches!(&mode.body, EventBody::ModeChange { from, to, by }
            if from == "normal" && to == "locked_closed" && by == "guard:王五"),
        "{mode:?}"
    );
    assert_eq!(gate.status("entry").mode, "locked_closed");

    // A permitted vehicle: decided, not acted on, the arm stays down.
    let (seq, decision) = gate.present("entry", &tag).await;
    // The journal and the guard's screen say why it stayed shut: the lane, not the permit.
    assert!(
        !decision.granted && decision.reason.as_str() == "denied_lane_locked",
        "{decision:?}"
    );
    assert_eq!(decision.permit_id, Some(10));
    assert_eq!(
        gate.status("entry")
            .last_decision
            .map(|d| d.reason.as_str()),
        Some("denied_lane_locked")
    );
    gate.wait_event_after(seq - 1, "grant_not_acted", |e| {
        lane_fault(e, "entry", "grant_not_acted")
    })
    .await;
    gate.wait_lane_state("entry", "denied").await;
    lane.wait_polls(10).await;
    lane.assert_never_opened();
    assert_eq!(lane.io.arm(), ArmState::Closed);
    // It leaves; a walk-in visitor without a tag arrives and the guard lets them in by hand.
    gate.back_away("entry", &tag).await;
    let before_guard = gate.last_seq().await;
    gate.arrive("entry").await;
    gate.handle()
        .command(
            "entry",
            LaneCommand::Guard {
                operator: "guard:王五".into(),
                command: GuardCommand::Open(GuardOpenReason::VisitorRegistered),
                reason: "visitor_registered".into(),
                note: Some("delivery to the library".into()),
                plate: None,
                done: None,
            },
        )
        .await
        .unwrap();
    let over = gate
        .wait_event_after(before_guard, "override", |e| {
            matches!(e.body, EventBody::Override { .. })
        })
        .await;
    assert!(
        matches!(&over.body, EventBody::Override { operator, action, reason, note, .. }
            if operator == "guard:王五" && action == "open" && reason == "visitor_registered"
                && note.as_deref() == Some("delivery to the library")),
        "{over:?}"
    );
    lane.wait_arm(ArmState::Open).await;
    assert_eq!(lane.opens().len(), 1);
    let events = gate.events().await;
    assert!(
        barrier_events(&events, "entry", before_guard)
            .iter()
            .any(|(a, cause)| *a == BarrierAction::Open && cause == "guard"),
        "{events:#?}"
    );
    // The visitor drives through; the arm closes behind them, still in lockdown.
    lane.set_safety(true);
    gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    lane.wait_arm(ArmState::Closed).await;
    lane.assert_no_close_over_vehicle();
    // The passage is the visitor's, not the permit holder's who was turned away earlier.
    let passage = gate
        .wait_event_after(before_guard, "passage", |e| {
            matches!(e.body, EventBody::Passage { .. })
        })
        .await;
    assert!(
        matches!(&passage.body, EventBody::Passage { vehicle_id: None, permit_id: None, plate: None, direction }
            if direction == "entry"),
        "{passage:?}"
    );
    assert_eq!(gate.status("entry").mode, "locked_closed");

    // The permit holder comes back, is refused by the lockdown again, and the guard lets them
    // through by hand: this passage is theirs.
    let (_, again) = gate.present("entry", &tag).await;
    assert_eq!(again.reason.as_str(), "denied_lane_locked");
    gate.wait_lane_state("entry", "denied").await;
    assert_eq!(lane.opens().len(), 1);
    let before_second = gate.last_seq().await;
    gate.handle()
        .command(
            "entry",
            LaneCommand::Guard {
                operator: "guard:王五".into(),
                command: GuardCommand::Open(GuardOpenReason::PermitChecked),
                reason: "permit_holder_without_tag".into(),
                note: None,
                plate: None,
                done: None,
            },
        )
        .await
        .unwrap();
    lane.wait_arm(ArmState::Open).await;
    lane.tag_out_of_field(&tag);
    lane.set_safety(true);
    gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    lane.wait_arm(ArmState::Closed).await;
    let passage = gate
        .wait_event_after(before_second, "passage", |e| {
            matches!(e.body, EventBody::Passage { .. })
        })
        .await;
    assert!(
        matches!(
            &passage.body,
            EventBody::Passage {
                vehicle_id: Some(10),
                permit_id: Some(10),
                ..
            }
        ),
        "{passage:?}"
    );
    assert_eq!(lane.opens().len(), 2);
    lane.assert_no_close_over_vehicle();
    gate.shutdown().await;
}

#[tokio::test]
async fn a_vehicle_following_under_the_raised_arm_is_journalled_as_an_unauthorized_passage() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");

    let (_, decision) = gate.present("entry", &tag).await;
    assert!(decision.granted);
    lane.wait_arm(ArmState::Open).await;
    // The permitted car drives on; a second car without a tag noses onto the presence loop
    // before the first has cleared the safety loop, so the arm cannot close on it.
    lane.tag_out_of_field(&tag);
    lane.set_safety(true);
    gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_presence(true);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    gate.wait_event("the permitted car's passage", |e| {
        matches!(
            e.body,
            EventBody::Passage {
                vehicle_id: Some(1),
                ..
            }
        )
    })
    .await;
    // The follower passes under the still-raised arm.
    lane.set_safety(true);
    lane.wait_polls(2).await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    let alarm = gate
        .wait_event("an unauthorized passage alarm", |e| {
            matches!(&e.body, EventBody::LaneFault { fault, .. } if fault == "unauthorized_passage")
        })
        .await;
    let events = gate.events().await;
    assert!(
        events.iter().any(|e| e.seq < alarm.seq
            && matches!(
                e.body,
                EventBody::Passage {
                    vehicle_id: None,
                    ..
                }
            )),
        "the anonymous passage is journalled with its alarm: {events:#?}"
    );
    assert_eq!(lane.opens().len(), 1, "nothing opened for the follower");
    lane.assert_no_close_over_vehicle();
}
