//! Signed visitor passes at the lane, end to end over real ptys: the simulated QR scanner sends
//! a pass's text (then CR) to the gate's `[lane.qr]` port, the gate verifies it offline with the
//! pass keys it was given, decides, and the emulated I/O module sees (or never sees) the OPEN.
//! No centre runs in any of these tests. Every wait is on a condition.

use crate::support::*;
use gatehouse::domain::permit::DirectionSet;
use gatehouse::domain::{GateId, Plate, PlateColour, ReasonCode, UtcMinute};
use gatehouse::gate::camera::{PlateSighting, SightingOutcome};
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::journal::{DecisionRecord, EventBody};
use gatehouse::wire::pass::{PassClaims, PassGates, PassKeyWire, public_key_hex, sign};
use gatehouse::wire::rows::{BlacklistRecord, BookingRecord, Update};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;

const PLATE: &str = "苏E88888";

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

/// A single-use pass for booking 11, plate 苏E88888, gate 1 both ways, valid from an hour ago
/// for two hours.
fn claims() -> PassClaims {
    let now = now_minute();
    PassClaims {
        key_id: 1,
        booking_id: 11,
        plate: PLATE.into(),
        valid_from: UtcMinute(now - 60),
        valid_until: UtcMinute(now + 60),
        single_use: true,
        gates: PassGates::Some(vec![(GateId(1), DirectionSet::BOTH)]),
    }
}

fn pass(k: &Ed25519KeyPair, claims: &PassClaims) -> String {
    sign(claims, k).expect("the pass signs")
}

/// A gate with one entry and one exit lane, each with a QR scanner, holding `k`'s public half.
async fn gate_with_key(k: &Ed25519KeyPair, options: GateOptions) -> TestGate {
    let gate = spawn_gate_with(
        &[LaneSpec::entry("entry"), LaneSpec::exit("exit")],
        GateOptions {
            qr: true,
            ..options
        },
    )
    .await;
    gate.handle()
        .set_pass_keys(&[PassKeyWire {
            kid: 1,
            public_key: public_key_hex(k),
            retire_after_ms: None,
        }])
        .await
        .expect("the keys are stored");
    gate
}

fn booking(status: &str) -> BookingRecord {
    let now = now_minute();
    BookingRecord {
        id: 11,
        plate: PLATE.into(),
        colour: None,
        visitor_name: "王先生".into(),
        host_id: 7,
        purpose: "讲座".into(),
        slot_from: now - 60,
        slot_until: now + 60,
        status: status.into(),
        pass_used_entry: false,
        pass_used_exit: false,
    }
}

/// Scans `text` at `lane` (a vehicle already on the loop) and returns the decision journalled.
async fn scan_decision(gate: &TestGate, lane: &str, text: &str) -> DecisionRecord {
    let after = gate.last_seq().await;
    gate.scan(lane, text).await;
    gate.wait_decision(lane, after).await.1
}

/// The vehicle under the open arm drives on and away; returns once the lane is idle, closed.
async fn drive_on(gate: &TestGate, lane: &str) {
    let l = gate.lane(lane);
    l.wait_arm(ArmState::Open).await;
    l.set_safety(true);
    gate.wait_lane_state(lane, "passing").await;
    l.set_presence(false);
    l.wait_polls(2).await;
    l.set_safety(false);
    l.wait_arm(ArmState::Closed).await;
    gate.wait_lane_state(lane, "idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_pass_opens_once_and_its_second_scan_is_refused_as_used_also_after_a_restart() {
    let k = key();
    let data = tempfile::tempdir().unwrap();
    let options = || GateOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..GateOptions::default()
    };
    let text = pass(&k, &claims());
    let gate = gate_with_key(&k, options()).await;
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &text).await;
    assert!(d.granted, "{d:?}");
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    assert_eq!(d.credential, "pass");
    assert_eq!(d.plate.as_deref(), Some(PLATE));
    let used = d.pass.expect("the decision names the pass");
    assert_eq!(
        (used.booking_id, used.key_id, used.single_use),
        (11, 1, true)
    );
    drive_on(&gate, "entry").await;
    assert_eq!(gate.lane("entry").opens().len(), 1);

    // The same pass again, for the next vehicle at the entry: used.
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &text).await;
    assert_eq!(d.reason, ReasonCode::DeniedPassUsed);
    assert!(!d.granted);
    gate.lane("entry").wait_polls(3).await;
    assert_eq!(gate.lane("entry").opens().len(), 1, "no second OPEN");
    gate.shutdown().await;

    // Restarted, with no centre: the consumption and the keys were kept.
    let gate = spawn_gate_with(
        &[LaneSpec::entry("entry"), LaneSpec::exit("exit")],
        GateOptions {
            qr: true,
            ..options()
        },
    )
    .await;
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &text).await;
    assert_eq!(d.reason, ReasonCode::DeniedPassUsed);
    // Single use is per direction: the exit still lets the visitor out, once.
    gate.arrive("exit").await;
    let d = scan_decision(&gate, "exit", &text).await;
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    gate.lane("exit").wait_arm(ArmState::Open).await;
    gate.lane("entry").assert_never_opened();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_with_one_byte_changed_is_refused_as_forged_and_never_opens() {
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    let text = pass(&k, &claims());
    let mut chars: Vec<char> = text.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &forged).await;
    assert_eq!(d.reason, ReasonCode::DeniedPassForged);
    assert_eq!(d.plate, None, "a forged pass's plate is not taken as read");
    // Signed by a key the gate does not hold: forged too.
    let other = pass(
        &key(),
        &PassClaims {
            booking_id: 12,
            ..claims()
        },
    );
    let d = scan_decision(&gate, "entry", &other).await;
    assert_eq!(d.reason, ReasonCode::DeniedPassForged);
    // Not a pass at all.
    let d = scan_decision(&gate, "entry", "https://example.com/").await;
    assert_eq!(d.reason, ReasonCode::DeniedPassMalformed);
    gate.lane("entry").wait_polls(3).await;
    gate.lane("entry").assert_never_opened();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_early_wrong_gate_wrong_direction_revoked_and_blacklisted_passes_are_refused_with_their_reasons()
 {
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    let now = now_minute();
    let entry_only = PassGates::Some(vec![(GateId(1), DirectionSet::ENTRY)]);
    gate.arrive("exit").await;
    for (claims, reason) in [
        (
            PassClaims {
                valid_until: UtcMinute(now - 1),
                booking_id: 21,
                ..claims()
            },
            ReasonCode::DeniedPassExpired,
        ),
        (
            PassClaims {
                valid_from: UtcMinute(now + 5),
                booking_id: 22,
                ..claims()
            },
            ReasonCode::DeniedPassNotYetValid,
        ),
        (
            PassClaims {
                gates: PassGates::Some(vec![(GateId(2), DirectionSet::BOTH)]),
                booking_id: 23,
                ..claims()
            },
            ReasonCode::DeniedPassWrongGate,
        ),
        (
            PassClaims {
                gates: entry_only,
                booking_id: 24,
                ..claims()
            },
            ReasonCode::DeniedPassWrongDirection,
        ),
    ] {
        let d = scan_decision(&gate, "exit", &pass(&k, &claims)).await;
        assert_eq!(d.reason, reason, "{claims:?}");
        assert!(!d.granted);
    }
    // The booking cancelled (as it reaches the gate from the centre): revoked.
    gate.seed(Update {
        bookings: vec![booking("cancelled")],
        ..Update::default()
    })
    .await;
    let d = scan_decision(&gate, "exit", &pass(&k, &claims())).await;
    assert_eq!(d.reason, ReasonCode::DeniedPassRevoked);
    // A blacklisted plate (in another colour than the booking's): refused first.
    gate.seed(Update {
        bookings: vec![booking("approved")],
        blacklist: vec![BlacklistRecord {
            id: 1,
            subject_kind: "plate".into(),
            subject: PLATE.into(),
            colour: Some("yellow".into()),
            reason: "冒用通行码".into(),
            valid_from: 0,
            valid_until: u32::MAX,
            alarm: "guard".into(),
        }],
        ..Update::default()
    })
    .await;
    let d = scan_decision(
        &gate,
        "exit",
        &pass(
            &k,
            &PassClaims {
                single_use: false,
                ..claims()
            },
        ),
    )
    .await;
    assert_eq!(d.reason, ReasonCode::DeniedBlacklisted);
    gate.lane("exit").wait_polls(3).await;
    gate.lane("exit").assert_never_opened();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_scanned_with_no_vehicle_on_the_loop_opens_nothing_and_is_counted() {
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    let after = gate.last_seq().await;
    gate.scan("entry", &pass(&k, &claims())).await;
    gate.wait_status("entry", "the scan counted", |s| {
        s.qr_scans == 1 && s.passes_ignored_no_vehicle == 1
    })
    .await;
    gate.lane("entry").wait_polls(3).await;
    gate.lane("entry").assert_never_opened();
    let decisions = gate
        .events()
        .await
        .into_iter()
        .filter(|e| e.seq > after && matches!(e.body, EventBody::Decision(_)))
        .count();
    assert_eq!(decisions, 0);
    // The same pass with a vehicle there: granted (the scan without one used nothing).
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &pass(&k, &claims())).await;
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_scanner_line_is_counted_and_the_next_good_pass_still_opens() {
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    gate.arrive("entry").await;
    let mut noise = vec![0u8, 0x1b, 0x7f, 0x02];
    noise.extend(std::iter::repeat_n(b'X', 600));
    noise.extend_from_slice(b"\r\n");
    gate.scan_raw("entry", &noise).await;
    let text = pass(&k, &claims());
    let d = scan_decision(&gate, "entry", &text).await;
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    let s = gate.status("entry");
    assert_eq!(s.qr_dropped_bytes, 604, "{s:?}");
    assert!(s.qr_online);
    // A repeat of the same text for the same vehicle (scanners repeat) is not decided again.
    gate.scan("entry", &text).await;
    drive_on(&gate, "entry").await;
    assert_eq!(gate.lane("entry").opens().len(), 1);
    let decisions: Vec<_> = gate
        .events()
        .await
        .into_iter()
        .filter(|e| matches!(&e.body, EventBody::Decision(d) if d.credential == "pass"))
        .collect();
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    gate.shutdown().await;
}

fn sighting(text: &str) -> PlateSighting {
    PlateSighting {
        camera: "cam-1".into(),
        event_id: format!("evt-{text}"),
        plate_text: text.into(),
        plate: Plate::parse(text)
            .ok()
            .map(|p| p.with_colour(PlateColour::Blue)),
        colour: None,
        confidence: 95,
        min_confidence: 80,
        direction: None,
        photos: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_camera_a_pass_for_another_plate_is_refused_and_one_for_the_read_plate_opens() {
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    gate.handle().shared().set_camera("cam-1", "entry", true);
    gate.arrive("entry").await;
    let outcome = gate
        .handle()
        .camera_read("entry", sighting("京B54321"))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        SightingOutcome::Decided { granted: false, .. }
    ));
    let d = scan_decision(&gate, "entry", &pass(&k, &claims())).await;
    assert_eq!(d.reason, ReasonCode::DeniedPassPlateMismatch);
    assert!(d.flags.contains(&"plate_mismatch".to_string()), "{d:?}");
    assert_eq!(d.camera.map(|c| c.raw_plate).as_deref(), Some("京B54321"));
    gate.lane("entry").wait_polls(3).await;
    gate.lane("entry").assert_never_opened();
    gate.lane("entry").set_presence(false);
    gate.wait_lane_state("entry", "idle").await;

    // The next vehicle: the pass is scanned before the camera's read, waits for it, and opens
    // with it.
    gate.arrive("entry").await;
    let after = gate.last_seq().await;
    gate.scan("entry", &pass(&k, &claims())).await;
    gate.wait_status("entry", "the scan received", |s| s.qr_scans == 2)
        .await;
    let outcome = gate
        .handle()
        .camera_read("entry", sighting(PLATE))
        .await
        .unwrap();
    assert!(
        matches!(outcome, SightingOutcome::Decided { .. }),
        "{outcome:?}"
    );
    let d = gate
        .wait_event_after(
            after,
            "the pass decision",
            |e| matches!(&e.body, EventBody::Decision(d) if d.credential == "pass"),
        )
        .await;
    let EventBody::Decision(d) = d.body else {
        unreachable!()
    };
    assert_eq!(d.reason, ReasonCode::GrantedPass, "{d:?}");
    assert_eq!(d.camera.map(|c| c.raw_plate).as_deref(), Some(PLATE));
    gate.lane("entry").wait_arm(ArmState::Open).await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_scanner_is_journalled_offline_and_reopened_when_it_is_back() {
    use gatehouse::sim::qr_scanner::{LineEnding, QrScanner};
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    let after = gate.last_seq().await;
    let link = gate.dir.path().join("entry-qr");
    {
        let mut slot = gate.lane("entry").qr.as_ref().unwrap().lock().await;
        // Plugged back in at once: the old device's hang-up is what the gate sees first.
        *slot = QrScanner::create(&link, LineEnding::CrLf).expect("a new scanner pty");
    }
    let device = |status: &'static str| {
        move |e: &gatehouse::wire::journal::JournalEvent| {
            matches!(&e.body, EventBody::Device { device, status: s, .. }
                if device == "qr" && s == status)
        }
    };
    let offline = gate
        .wait_event_after(after, "the scanner offline", device("offline"))
        .await;
    gate.wait_event_after(offline.seq, "the scanner online again", device("online"))
        .await;
    gate.wait_status("entry", "the scanner online", |s| s.qr_online)
        .await;
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &pass(&k, &claims())).await;
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_in_manual_only_mode_refuses_a_valid_pass_without_using_it_up() {
    use gatehouse::gate::lane::Mode;
    use gatehouse::gate::runtime::LaneCommand;
    let k = key();
    let gate = gate_with_key(&k, GateOptions::default()).await;
    let set_mode = |mode| LaneCommand::SetMode {
        mode,
        by: "test".into(),
        done: None,
    };
    gate.handle()
        .command("entry", set_mode(Mode::ManualOnly(DirectionSet::BOTH)))
        .await
        .unwrap();
    gate.arrive("entry").await;
    let text = pass(&k, &claims());
    let d = scan_decision(&gate, "entry", &text).await;
    assert!(!d.granted, "{d:?}");
    assert_ne!(d.reason, ReasonCode::GrantedPass);
    assert_eq!(d.pass.map(|p| p.booking_id), Some(11));
    gate.lane("entry").wait_polls(3).await;
    gate.lane("entry").assert_never_opened();
    // Back to normal, the next vehicle with the same pass: not used up by the refusal.
    gate.handle()
        .command("entry", set_mode(Mode::Normal))
        .await
        .unwrap();
    gate.lane("entry").set_presence(false);
    gate.wait_lane_state("entry", "idle").await;
    gate.arrive("entry").await;
    let d = scan_decision(&gate, "entry", &text).await;
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    gate.lane("entry").wait_arm(ArmState::Open).await;
    gate.shutdown().await;
}
