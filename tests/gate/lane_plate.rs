//! Plate camera reads at the lane, end to end through [`GateHandle::camera_read`] with the
//! emulated reader and I/O module of `support`: a read decides like a tag while a vehicle is on
//! the loop (or reaches it within the presence window), a low-confidence read is held for the
//! guard, a tag and a plate of one vehicle are cross-checked, and a camera's repeated event is
//! done once — also across a restart. Nothing is mocked; every wait is on a condition.
//!
//! [`GateHandle::camera_read`]: gatehouse::gate::runtime::GateHandle::camera_read

use crate::support::*;
use gatehouse::domain::{Plate, PlateColour, ReasonCode};
use gatehouse::gate::camera::{PlateSighting, SightingOutcome};
use gatehouse::gate::lane::GuardCommand;
use gatehouse::gate::runtime::LaneCommand;
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::journal::{DecisionRecord, EventBody, PhotoKind};
use gatehouse::wire::rows::BlacklistRecord;

const PLATE: &str = "京A12345";
const OTHER: &str = "京B54321";

/// A read of `text` by camera `cam-1`, its two photos stored in the gate's photo store.
fn sighting(gate: &TestGate, event_id: &str, text: &str, confidence: u8) -> PlateSighting {
    let photos = gate.handle().shared().photos.clone();
    let photos = [PhotoKind::Plate, PhotoKind::Scene]
        .into_iter()
        .map(|kind| {
            photos
                .put(kind, format!("jpeg {event_id} {kind:?}").as_bytes())
                .expect("the photo is stored")
        })
        .collect();
    PlateSighting {
        camera: "cam-1".into(),
        event_id: event_id.into(),
        plate_text: text.into(),
        plate: Plate::parse(text)
            .ok()
            .map(|p| p.with_colour(PlateColour::Blue)),
        colour: None,
        confidence,
        min_confidence: 80,
        direction: None,
        photos,
    }
}

async fn read(gate: &TestGate, lane: &str, sighting: PlateSighting) -> SightingOutcome {
    gate.handle()
        .camera_read(lane, sighting)
        .await
        .expect("the lane takes the read")
}

fn decisions(events: &[gatehouse::wire::journal::JournalEvent]) -> Vec<DecisionRecord> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Decision(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn granted() -> SightingOutcome {
    SightingOutcome::Decided {
        granted: true,
        reason: ReasonCode::Granted,
    }
}

/// The vehicle under the open arm drives on and away; returns once the lane is idle, closed.
async fn drive_on(gate: &TestGate, lane: &str, tag: Option<&[u8]>) {
    let l = gate.lane(lane);
    l.wait_arm(ArmState::Open).await;
    if let Some(tag) = tag {
        l.tag_out_of_field(tag);
    }
    l.set_safety(true);
    gate.wait_lane_state(lane, "passing").await;
    l.set_presence(false);
    l.wait_polls(2).await;
    l.set_safety(false);
    l.wait_arm(ArmState::Closed).await;
    gate.wait_lane_state(lane, "idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_plate_read_with_a_vehicle_on_the_loop_opens_and_is_journalled_with_its_photos()
 {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    gate.arrive("entry").await;
    let s = sighting(&gate, "evt-1", PLATE, 95);
    let photos = s.photos.clone();
    assert_eq!(read(&gate, "entry", s).await, granted());
    // Answered only once journalled: the decision is already there.
    let events = gate.events().await;
    let d = decisions(&events);
    assert_eq!(d.len(), 1, "{events:#?}");
    assert_eq!(d[0].credential, "plate");
    assert_eq!(d[0].plate.as_deref(), Some(PLATE));
    assert_eq!((d[0].vehicle_id, d[0].permit_id), (Some(1), Some(1)));
    let camera = d[0].camera.as_deref().expect("the camera's record");
    assert_eq!((camera.event_id.as_str(), camera.confidence), ("evt-1", 95));
    assert_eq!(camera.photos, photos);
    drive_on(&gate, "entry", None).await;
    let lane = gate.lane("entry");
    assert_eq!(lane.opens().len(), 1, "{:?}", lane.io.coil_log());
    lane.assert_no_close_over_vehicle();
    gate.wait_event("the passage", |e| {
        matches!(
            &e.body,
            EventBody::Passage {
                vehicle_id: Some(1),
                ..
            }
        )
    })
    .await;
    // The camera's late second read of the car that just left is not a read for the next one.
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-2", PLATE, 95)).await,
        SightingOutcome::Ignored("vehicle_left".into())
    );
    gate.arrive("entry").await;
    lane.wait_polls(5).await;
    assert_eq!(lane.opens().len(), 1, "nothing opened for the next vehicle");
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plate_read_before_the_vehicle_arrives_is_acted_on_when_it_reaches_the_loop_in_time() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    let lane = gate.lane("entry");
    // Only the latest read waits: an earlier one is given up for it.
    read(&gate, "entry", sighting(&gate, "evt-0", OTHER, 95)).await;
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-1", PLATE, 95)).await,
        SightingOutcome::Ignored("waiting_for_vehicle".into())
    );
    lane.wait_polls(3).await;
    lane.assert_never_opened();
    let after = gate.last_seq().await;
    lane.set_presence(true);
    let (_, d) = gate.wait_decision("entry", after).await;
    assert!(d.granted, "{d:?}");
    assert_eq!(
        d.camera.as_ref().map(|c| c.event_id.as_str()),
        Some("evt-1")
    );
    drive_on(&gate, "entry", None).await;
    assert_eq!(lane.opens().len(), 1);
    // One event carries each read: the decision for the one acted on, `superseded` for the
    // other; the one acted on was never journalled as ignored.
    let events = gate.events().await;
    let ignored: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::PlateIgnored { camera, why } => Some((camera.event_id.clone(), why.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ignored, vec![("evt-0".into(), "superseded".into())]);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plate_read_no_vehicle_claims_within_the_window_is_journalled_as_ignored_and_opens_nothing()
 {
    let options = GateOptions {
        lane_extra: "[lane.plate]\npresence_window_ms = 300\n",
        ..GateOptions::default()
    };
    let gate = spawn_gate_with(&[LaneSpec::entry("entry")], options).await;
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    let lane = gate.lane("entry");
    read(&gate, "entry", sighting(&gate, "evt-1", PLATE, 95)).await;
    let ignored = gate
        .wait_event("the read given up", |e| {
            matches!(&e.body, EventBody::PlateIgnored { camera, why }
                if camera.event_id == "evt-1" && why == "no_vehicle_within_window")
        })
        .await;
    assert_eq!(ignored.lane, "entry");
    gate.arrive("entry").await;
    lane.wait_polls(10).await;
    lane.assert_never_opened();
    assert!(decisions(&gate.events().await).is_empty());
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_confidence_read_is_held_for_the_guard_with_suggestions_and_never_opens() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    let lane = gate.lane("entry");
    gate.arrive("entry").await;
    // The camera is unsure of a misread of a registered plate (S for 5).
    let s = sighting(&gate, "evt-1", "京A1234S", 60);
    let photos = s.photos.clone();
    assert_eq!(read(&gate, "entry", s).await, SightingOutcome::Held);
    let held = gate.status("entry").held.expect("the held read is shown");
    assert_eq!(held.plate_text, "京A1234S");
    assert_eq!(held.confidence, 60);
    assert_eq!(held.photos, photos);
    assert_eq!(held.suggestions, vec![PLATE.to_string()]);
    let d = decisions(&gate.events().await);
    assert_eq!(d.len(), 1);
    assert!(!d[0].granted);
    assert_eq!(d[0].reason, ReasonCode::HeldLowConfidence);
    assert_eq!(d[0].camera.as_ref().map(|c| c.confidence), Some(60));
    // Even the exact registered plate, read unsure, waits for the guard.
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-2", PLATE, 79)).await,
        SightingOutcome::Held
    );
    lane.wait_polls(10).await;
    lane.assert_never_opened();
    // The guard decides: the read is no longer held.
    gate.handle()
        .command(
            "entry",
            LaneCommand::Guard {
                operator: "guard1".into(),
                command: GuardCommand::KeepClosed,
                reason: "other".into(),
                note: None,
                plate: None,
                done: None,
            },
        )
        .await
        .unwrap();
    assert!(gate.status("entry").held.is_none());
    lane.assert_never_opened();
    gate.shutdown().await;
}

/// A vehicle whose windscreen carries the tag registered to `PLATE` arrives; the camera reads
/// `OTHER` first (it reads before the loop), then the reader reads the tag.
async fn cloned_tag_on_another_car(gate: &TestGate) -> (u64, DecisionRecord) {
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    gate.arrive("entry").await;
    assert_eq!(
        read(gate, "entry", sighting(gate, "evt-1", OTHER, 95)).await,
        SightingOutcome::Decided {
            granted: false,
            reason: ReasonCode::DeniedUnknownPlate
        }
    );
    let after = gate.last_seq().await;
    gate.lane("entry").tag_in_field(&epc(1));
    let (seq, d) = gate.wait_decision("entry", after).await;
    assert_eq!(d.epc.as_deref(), Some(hex(&epc(1)).as_str()), "{d:?}");
    assert_eq!(
        d.camera.as_ref().map(|c| c.raw_plate.as_str()),
        Some(OTHER),
        "{d:?}"
    );
    assert!(d.flags.iter().any(|f| f == "plate_mismatch"), "{d:?}");
    (seq, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_read_with_the_camera_plate_of_another_vehicle_is_denied_as_a_plate_mismatch() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let (seq, d) = cloned_tag_on_another_car(&gate).await;
    assert!(!d.granted);
    assert_eq!(d.reason.as_str(), "denied_plate_mismatch");
    assert_eq!(
        d.plate.as_deref(),
        Some(PLATE),
        "the tag's registered plate"
    );
    // The reader reads the tag again after its hold: still refused, still closed.
    let (_, again) = gate.wait_decision("entry", seq).await;
    assert_eq!(again.reason.as_str(), "denied_plate_mismatch", "{again:?}");
    let lane = gate.lane("entry");
    lane.wait_polls(5).await;
    lane.assert_never_opened();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plate_mismatch_found_after_a_tag_opened_is_journalled_denied_with_an_alarm_flag() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let (_, d) = gate.present("entry", &tag).await;
    assert!(d.granted);
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-1", OTHER, 95)).await,
        SightingOutcome::Decided {
            granted: false,
            reason: ReasonCode::DeniedPlateMismatch
        }
    );
    let events = gate.events().await;
    let last = decisions(&events).pop().unwrap();
    assert_eq!(last.epc.as_deref(), Some(hex(&tag).as_str()));
    assert_eq!(
        last.camera.as_ref().map(|c| c.raw_plate.as_str()),
        Some(OTHER)
    );
    for flag in ["plate_mismatch", "opened_before_cross_check"] {
        assert!(last.flags.iter().any(|f| f == flag), "{flag}: {last:?}");
    }
    // The arm is not pulled down on a vehicle: it passes, and the office has the alarm.
    drive_on(&gate, "entry", Some(&tag)).await;
    assert_eq!(gate.lane("entry").opens().len(), 1);
    gate.lane("entry").assert_no_close_over_vehicle();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_flag_policy_a_plate_mismatch_is_let_through_and_flagged() {
    let options = GateOptions {
        lane_extra: "[lane.plate]\non_mismatch = \"flag\"\n",
        ..GateOptions::default()
    };
    let gate = spawn_gate_with(&[LaneSpec::entry("entry")], options).await;
    let (_, d) = cloned_tag_on_another_car(&gate).await;
    assert!(d.granted, "{d:?}");
    assert_eq!(d.reason, ReasonCode::Granted);
    drive_on(&gate, "entry", Some(&epc(1))).await;
    assert_eq!(gate.lane("entry").opens().len(), 1);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plate_read_and_the_matching_tag_make_one_decision_and_open_once() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    gate.arrive("entry").await;
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-1", PLATE, 95)).await,
        granted()
    );
    gate.lane("entry").tag_in_field(&tag);
    gate.wait_event(
        "the tag as evidence",
        |e| matches!(&e.body, EventBody::TagIgnored { why, .. } if why == "matches_plate_decision"),
    )
    .await;
    drive_on(&gate, "entry", Some(&tag)).await;
    let events = gate.events().await;
    assert_eq!(decisions(&events).len(), 1, "{events:#?}");
    assert_eq!(gate.lane("entry").opens().len(), 1);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_and_then_its_own_plate_read_make_one_decision_and_open_once() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let (_, d) = gate.present("entry", &tag).await;
    assert!(d.granted);
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-1", PLATE, 95)).await,
        SightingOutcome::Ignored("matches_tag_decision".into())
    );
    let shown = gate.status("entry").last_decision.unwrap();
    assert_eq!(
        shown.camera.map(|c| c.event_id),
        Some("evt-1".to_string()),
        "the console shows the read's photos beside the tag's decision"
    );
    drive_on(&gate, "entry", Some(&tag)).await;
    let events = gate.events().await;
    let d = decisions(&events);
    assert!(
        d.iter().all(|d| d.credential == "tag" && d.granted),
        "{d:#?}"
    );
    assert!(events.iter().any(|e| matches!(&e.body,
        EventBody::PlateIgnored { camera, why } if camera.event_id == "evt-1" && why == "matches_tag_decision")));
    assert_eq!(gate.lane("entry").opens().len(), 1);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_camera_event_is_a_duplicate_that_journals_nothing_also_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let options = || GateOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..GateOptions::default()
    };
    let lanes = [LaneSpec::entry("entry"), LaneSpec::exit("exit")];
    let gate = spawn_gate_with(&lanes, options()).await;
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    gate.arrive("entry").await;
    let first = sighting(&gate, "evt-1", PLATE, 95);
    assert_eq!(read(&gate, "entry", first.clone()).await, granted());
    // Waiting for its vehicle at the exit when the gate stops.
    let waiting = sighting(&gate, "evt-2", OTHER, 95);
    assert_eq!(
        read(&gate, "exit", waiting.clone()).await,
        SightingOutcome::Ignored("waiting_for_vehicle".into())
    );
    let seq = gate.last_seq().await;
    assert_eq!(
        read(&gate, "entry", first.clone()).await,
        SightingOutcome::Duplicate
    );
    assert_eq!(
        read(&gate, "exit", waiting.clone()).await,
        SightingOutcome::Duplicate
    );
    assert_eq!(gate.last_seq().await, seq, "nothing new journalled");
    gate.lane("entry").wait_polls(3).await;
    assert_eq!(gate.lane("entry").opens().len(), 1);
    gate.shutdown().await;

    let gate = spawn_gate_with(&lanes, options()).await;
    // The read that waited is given up with the restart, once.
    let given_up = gate
        .wait_event("the waiting read given up", |e| {
            matches!(&e.body, EventBody::PlateIgnored { camera, why }
                if camera.event_id == "evt-2" && why == "gate_restarted")
        })
        .await;
    assert_eq!(given_up.lane, "exit");
    let seq = gate.last_seq().await;
    gate.arrive("entry").await;
    assert_eq!(
        read(&gate, "entry", first).await,
        SightingOutcome::Duplicate
    );
    assert_eq!(
        read(&gate, "exit", waiting).await,
        SightingOutcome::Duplicate
    );
    let events = gate.events().await;
    let after_restart: Vec<_> = events.iter().filter(|e| e.seq > seq).cloned().collect();
    assert!(
        decisions(&after_restart).is_empty(),
        "nothing decided again: {after_restart:#?}"
    );
    gate.lane("entry").wait_polls(3).await;
    gate.lane("entry").assert_never_opened();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blacklisted_plate_read_is_denied_despite_an_active_permit_and_nothing_opens() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let now = now_minute();
    let mut update = vehicle_with_tag(1, PLATE, permit(1), &epc(1));
    update.blacklist = vec![BlacklistRecord {
        id: 1,
        subject_kind: "plate".into(),
        subject: PLATE.into(),
        colour: None,
        reason: "stolen vehicle".into(),
        valid_from: now - 60,
        valid_until: now + 60,
        alarm: "guard".into(),
    }];
    gate.seed(update).await;
    gate.arrive("entry").await;
    assert_eq!(
        read(&gate, "entry", sighting(&gate, "evt-1", PLATE, 95)).await,
        SightingOutcome::Decided {
            granted: false,
            reason: ReasonCode::DeniedBlacklisted
        }
    );
    gate.wait_lane_state("entry", "denied").await;
    let lane = gate.lane("entry");
    lane.wait_polls(10).await;
    lane.assert_never_opened();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_camera_reads_does_not_delay_a_tag_decision() {
    let gate = std::sync::Arc::new(spawn_gate(&[LaneSpec::entry("entry")]).await);
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    gate.arrive("entry").await;
    // 50 reads a second, with photos, for the whole test, none of which may open: text that is
    // no plate, and plates read too unsure (held, with near matches looked up).
    let burst = tokio::spawn({
        let gate = gate.clone();
        async move {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(20));
            for n in 0..150 {
                every.tick().await;
                let s = if n % 2 == 0 {
                    sighting(&gate, &format!("burst-{n}"), "无牌车", 95)
                } else {
                    sighting(&gate, &format!("burst-{n}"), OTHER, 50)
                };
                read(&gate, "entry", s).await;
            }
        }
    });
    let lane = gate.lane("entry");
    wait_for("the burst under way", || async {
        (gate.status("entry").camera_reads >= 10).then_some(())
    })
    .await;
    let after = gate.last_seq().await;
    let arrived = tokio::time::Instant::now();
    lane.tag_in_field(&tag);
    let (_, d) = wait_for("the tag decision", || async {
        gate.events()
            .await
            .into_iter()
            .filter(|e| e.seq > after)
            .find_map(|e| match e.body {
                EventBody::Decision(d) if d.credential == "tag" => Some((e.seq, d)),
                _ => None,
            })
    })
    .await;
    let took = arrived.elapsed();
    assert_eq!(d.epc.as_deref(), Some(hex(&tag).as_str()));
    assert!(
        took < std::time::Duration::from_millis(1500),
        "the tag waited {took:?}"
    );
    burst.abort();
    let _ = burst.await;
    match std::sync::Arc::try_unwrap(gate) {
        Ok(gate) => gate.shutdown().await,
        Err(_) => panic!("the burst still holds the gate"),
    }
}
