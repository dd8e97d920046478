//! Lane modes end to end on a real gate controller (pty simulators, see `support`): a manual-only
//! mode for one direction keeps a grant for that direction from opening on a two-way lane, where
//! the direction is the one the read says (the antenna), not the lane's.

use crate::support::*;
use gatehouse::domain::DirectionSet;
use gatehouse::gate::lane::Mode;
use gatehouse::gate::runtime::LaneCommand;
use gatehouse::sim::uhf_reader::FieldTag;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_only_for_exits_keeps_an_exit_grant_closed_on_a_two_way_lane_but_opens_for_an_entry()
{
    let gate = spawn_gate(&[LaneSpec {
        id: "both",
        direction: "two_way",
    }])
    .await;
    let tag = epc(7);
    gate.seed(vehicle_with_tag(7, "京A77777", permit(7), &tag))
        .await;
    gate.handle()
        .command(
            "both",
            LaneCommand::SetMode {
                mode: Mode::ManualOnly(DirectionSet::EXIT),
                by: "test".into(),
                done: None,
            },
        )
        .await
        .unwrap();
    let lane = gate.lane("both");

    // Leaving: the tag is read on the exit antenna. Its permit grants, the mode does not act on it.
    let after = gate.last_seq().await;
    gate.arrive("both").await;
    lane.reader
        .put_tag(FieldTag::new(tag.to_vec(), 1, -45))
        .unwrap();
    let (_, decision) = gate.wait_decision("both", after).await;
    assert_eq!(decision.direction, "exit", "{decision:?}");
    assert!(!decision.granted, "manual-only for exits: {decision:?}");
    assert_eq!(
        decision.reason.as_str(),
        "denied_lane_locked",
        "{decision:?}"
    );
    lane.assert_never_opened();
    gate.back_away("both", &tag).await;

    // Arriving: the same permit read on the entry antenna opens.
    let after = gate.last_seq().await;
    gate.arrive("both").await;
    lane.reader
        .put_tag(FieldTag::new(tag.to_vec(), 0, -45))
        .unwrap();
    let (_, decision) = gate.wait_decision("both", after).await;
    assert_eq!(decision.direction, "entry", "{decision:?}");
    assert!(
        decision.granted,
        "entries are not manual-only: {decision:?}"
    );
    wait_for("the OPEN", || async {
        (!lane.opens().is_empty()).then_some(())
    })
    .await;
    gate.shutdown().await;
}
