//! A reader that answers every inventory with an error status (its antenna unplugged): the
//! controller journals the fault once, rests between rounds instead of asking again at line
//! speed, and reads tags again as soon as the antenna is back. Real gate, real bytes over
//! pseudo-terminals.

use std::time::Duration;

use crate::support::*;
use firmware_protocols::uhf::StatusCode;
use gatehouse::gate::reader::ERROR_PAUSE;
use gatehouse::wire::journal::EventBody;

const PLATE: &str = "京A12345";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_whose_antenna_is_unplugged_is_asked_a_few_times_a_second_not_at_line_speed() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let tag = epc(1);
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &tag)).await;
    let lane = gate.lane("entry");
    let after = gate.last_seq().await;
    lane.reader
        .set_inventory_error(Some(StatusCode::AntennaMissing));
    gate.wait_event_after(after, "the reader's error", |e| {
        e.lane == "entry"
            && matches!(&e.body, EventBody::Device { device, status, .. }
                if device == "reader" && status == "error")
    })
    .await;

    // A rate needs a window of wall time: one second, counted on the reader's side.
    let window = Duration::from_secs(1);
    let before = lane.reader.stats().commands_answered;
    tokio::time::sleep(window).await;
    let asked = lane.reader.stats().commands_answered - before;
    let most = (window.as_millis() / ERROR_PAUSE.as_millis()) as u64 + 2;
    assert!(
        asked <= most,
        "a reader with its antenna unplugged was asked {asked} times in {window:?} (at most {most})"
    );
    assert!(asked >= 1, "the controller stopped asking the reader");

    lane.reader.set_inventory_error(None);
    gate.drive_through("entry", &tag).await;
    gate.shutdown().await;
}
