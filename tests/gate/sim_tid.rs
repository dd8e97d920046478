//! TIDs end to end: the gate's reader driver reads each new tag's TID from the simulated reader
//! (read-memory command 0x81 on the TID bank) and the lane decides with it, so a credential bound
//! to a TID refuses a cloned tag — the same EPC on a chip with another TID — and OPEN is never
//! written. Real gate, real pseudo-terminals, nothing mocked (see `support`).

use std::time::Duration;

use crate::support::*;
use gatehouse::sim::uhf_reader::FieldTag;
use tokio::time::Instant;

const PLATE: &str = "京A12345";
/// The TID the credential is bound to (96 bits, as the driver reads it).
const BOUND_TID: [u8; 12] = [
    0xE2, 0x80, 0x11, 0x60, 0x20, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC,
];
/// Another chip's TID: what a cloned tag answers.
const CLONE_TID: [u8; 12] = [
    0xE2, 0x80, 0x11, 0x60, 0x20, 0x00, 0x99, 0x99, 0x00, 0x00, 0x00, 0x01,
];

async fn gate_with_tid_bound_tag(epc: &[u8]) -> TestGate {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let mut update = vehicle_with_tag(1, PLATE, permit(1), epc);
    update.credentials[0].tid = Some(hex(&BOUND_TID));
    gate.seed(update).await;
    gate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tid_bound_tag_read_with_another_tid_is_denied_as_cloned_and_open_is_never_written() {
    let tag = epc(7);
    let gate = gate_with_tid_bound_tag(&tag).await;
    let lane = gate.lane("entry");
    let after = gate.last_seq().await;
    gate.arrive("entry").await;
    lane.reader
        .put_tag(FieldTag::new(tag.to_vec(), 0, -45).with_tid(CLONE_TID))
        .expect("a valid tag");
    let (_, decision) = gate.wait_decision("entry", after).await;

    assert!(!decision.granted, "{decision:?}");
    assert_eq!(decision.reason.as_str(), "denied_tag_tid_mismatch");
    assert!(
        decision.flags.iter().any(|f| f.contains("tid")),
        "the clone is flagged: {:?}",
        decision.flags
    );
    lane.assert_never_opened();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_tag_answering_its_bound_tid_is_granted() {
    let tag = epc(8);
    let gate = gate_with_tid_bound_tag(&tag).await;
    let lane = gate.lane("entry");
    let after = gate.last_seq().await;
    gate.arrive("entry").await;
    lane.reader
        .put_tag(FieldTag::new(tag.to_vec(), 0, -45).with_tid(BOUND_TID))
        .expect("a valid tag");
    let (_, decision) = gate.wait_decision("entry", after).await;

    assert!(decision.granted, "{decision:?}");
    assert!(decision.flags.is_empty(), "{:?}", decision.flags);
    lane.wait_arm(gatehouse::sim::barrier::ArmState::Open).await;
    assert_eq!(lane.opens().len(), 1);
}

/// A reader that takes `tid_delay` to answer a TID read, on a gate that waits up to a second for
/// the reader's answers.
async fn gate_with_slow_tid_reads(tid_delay: Duration) -> TestGate {
    let gate = spawn_gate_with(
        &[LaneSpec::entry("entry")],
        GateOptions {
            timings: Timings {
                reader_timeout_ms: 1000,
                ..Timings::default()
            },
            ..GateOptions::default()
        },
    )
    .await;
    gate.lane("entry")
        .reader
        .set_tid_read_delay(Some(tid_delay));
    gate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tag_whose_credential_has_no_bound_tid_opens_without_waiting_for_its_tid_read() {
    // The reader answers a TID read only after 2 s (past the driver's 1 s timeout): a driver
    // that held the new tag for its TID would open a second or more after the read.
    let gate = gate_with_slow_tid_reads(Duration::from_secs(2)).await;
    let tag = epc(9);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");
    let after = gate.last_seq().await;
    gate.arrive("entry").await;
    let put = Instant::now();
    lane.reader
        .put_tag(FieldTag::new(tag.to_vec(), 0, -45).with_tid(CLONE_TID))
        .expect("a valid tag");
    let open = wait_for("an OPEN", || async { lane.opens().first().map(|c| c.at) }).await;
    // Two inventory rounds (15 ms each here) and the commit; never the TID read's second.
    assert!(
        open.duration_since(put) < Duration::from_millis(500),
        "OPEN came {:?} after the tag entered the field",
        open.duration_since(put)
    );
    let (_, decision) = gate.wait_decision("entry", after).await;
    assert!(decision.granted, "{decision:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tid_bound_tag_still_waits_for_its_tid_however_late_the_reader_answers() {
    // The clone check keeps its guarantee when the TID comes late (within the timeout).
    let gate = gate_with_slow_tid_reads(Duration::from_millis(400)).await;
    let tag = epc(10);
    let mut update = vehicle_with_tag(1, PLATE, permit(1), &tag);
    update.credentials[0].tid = Some(hex(&BOUND_TID));
    gate.seed(update).await;
    let lane = gate.lane("entry");
    let after = gate.last_seq().await;
    gate.arrive("entry").await;
    lane.reader
        .put_tag(FieldTag::new(tag.to_vec(), 0, -45).with_tid(CLONE_TID))
        .expect("a valid tag");
    let (_, decision) = gate.wait_decision("entry", after).await;
    assert_eq!(decision.reason.as_str(), "denied_tag_tid_mismatch");
    lane.assert_never_opened();
}
