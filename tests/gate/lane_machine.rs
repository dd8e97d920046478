//! Scenario and property tests of the lane state machine (`gatehouse::gate::lane`): a permitted
//! vehicle, a denied one, lockdown, fire, I/O failure, arm timeouts, and random input sequences
//! checked against the safety invariants on every output.

use std::time::Duration;

use gatehouse::domain::{Direction, DirectionSet, ReasonCode};
use gatehouse::gate::lane::{
    BarrierCommand, GuardCommand, GuardOpenReason, Lane, LaneConfig, LaneEvent, LaneFault,
    LaneInput, LaneOutput, LaneSignals, LaneState, Mode, OpenCause,
};
use proptest::prelude::*;

use BarrierCommand::{Close, Open, StopOff, StopOn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A lane plus the signals currently on its inputs.
struct Rig {
    lane: Lane,
    s: LaneSignals,
}

impl Rig {
    fn new(direction: Direction) -> Rig {
        let mut rig = Rig {
            lane: Lane::new(LaneConfig::new(direction)),
            s: LaneSignals {
                closed_limit: true,
                ..LaneSignals::default()
            },
        };
        let out = rig.sample(0);
        assert!(out.commands.is_empty());
        rig
    }

    fn sample(&mut self, at: u64) -> LaneOutput {
        self.lane.step(ms(at), LaneInput::Signals(self.s))
    }

    fn set(&mut self, at: u64, f: impl FnOnce(&mut LaneSignals)) -> LaneOutput {
        f(&mut self.s);
        self.sample(at)
    }

    fn input(&mut self, at: u64, i: LaneInput) -> LaneOutput {
        self.lane.step(ms(at), i)
    }
}

fn grant() -> LaneInput {
    LaneInput::Decision {
        granted: true,
        reason: ReasonCode::Granted,
    }
}

fn deny() -> LaneInput {
    LaneInput::Decision {
        granted: false,
        reason: ReasonCode::DeniedExpired,
    }
}

/// Drives a granted vehicle up to the open arm; returns the rig at t = 2000 ms, arm open.
fn vehicle_at_open_arm() -> Rig {
    let mut r = Rig::new(Direction::Entry);
    r.set(100, |s| s.presence = true);
    assert_eq!(r.lane.state(), LaneState::VehiclePresent);
    r.input(150, LaneInput::Read);
    assert_eq!(r.lane.state(), LaneState::Identifying);
    let out = r.input(160, grant());
    assert_eq!(out.commands, [Open]);
    assert_eq!(r.lane.state(), LaneState::Opening);
    r.set(1000, |s| s.closed_limit = false);
    r.set(2000, |s| s.open_limit = true);
    assert_eq!(r.lane.state(), LaneState::Open);
    r
}

#[test]
fn a_permitted_vehicle_passes_and_close_comes_one_second_after_the_safety_loop_clears() {
    let mut r = vehicle_at_open_arm();
    let out = r.set(2500, |s| s.safety = true);
    assert!(out.commands.is_empty());
    assert_eq!(r.lane.state(), LaneState::Passing);
    // Off the presence loop, still on the safety loop: no close.
    assert!(r.set(3000, |s| s.presence = false).commands.is_empty());
    assert!(r.input(6000, LaneInput::Tick).commands.is_empty());
    // Safety loop clears: the passage is reported, the close is scheduled one second later.
    let out = r.set(7000, |s| s.safety = false);
    assert!(
        out.events
            .contains(&LaneEvent::VehiclePassed(OpenCause::Grant))
    );
    assert!(out.commands.is_empty());
    assert_eq!(out.deadline, Some(ms(8000)));
    assert!(r.input(7999, LaneInput::Tick).commands.is_empty());
    let out = r.input(8000, LaneInput::Tick);
    assert_eq!(out.commands, [Close]);
    assert_eq!(r.lane.state(), LaneState::Closing);
    r.set(8500, |s| s.open_limit = false);
    r.set(10000, |s| s.closed_limit = true);
    assert_eq!(r.lane.state(), LaneState::Idle);
}

#[test]
fn a_vehicle_returning_to_the_loops_during_the_close_delay_postpones_the_close() {
    let mut r = vehicle_at_open_arm();
    r.set(2500, |s| s.safety = true);
    r.set(3000, |s| {
        s.presence = false;
        s.safety = false
    });
    // Back onto the safety loop before the delay ran out.
    assert!(r.set(3500, |s| s.safety = true).commands.is_empty());
    assert!(r.input(4100, LaneInput::Tick).commands.is_empty());
    let out = r.set(5000, |s| s.safety = false);
    assert_eq!(out.deadline, Some(ms(6000)));
    assert_eq!(r.input(6000, LaneInput::Tick).commands, [Close]);
}

#[test]
fn a_denied_vehicle_opens_nothing_and_the_lane_is_idle_once_it_leaves() {
    let mut r = Rig::new(Direction::Exit);
    r.set(100, |s| s.presence = true);
    r.input(150, LaneInput::Read);
    let out = r.input(160, deny());
    assert!(out.commands.is_empty());
    assert!(
        out.events
            .contains(&LaneEvent::Denied(ReasonCode::DeniedExpired))
    );
    assert_eq!(r.lane.state(), LaneState::Denied);
    assert!(r.input(5000, LaneInput::Tick).commands.is_empty());
    let out = r.set(6000, |s| s.presence = false);
    assert!(out.commands.is_empty());
    assert_eq!(r.lane.state(), LaneState::Idle);
}

#[test]
fn a_read_or_a_grant_with_nothing_on_the_presence_loop_opens_nothing() {
    let mut r = Rig::new(Direction::Entry);
    let out = r.input(100, LaneInput::Read);
    assert_eq!(out.events, [LaneEvent::ReadWithoutVehicle]);
    let out = r.input(110, grant());
    assert!(out.commands.is_empty());
    assert_eq!(out.events, [LaneEvent::GrantWithoutVehicle]);
    assert_eq!(r.lane.state(), LaneState::Idle);
}

#[test]
fn in_lockdown_grants_are_not_acted_on_but_a_guard_can_still_open_for_one_vehicle() {
    let mut r = Rig::new(Direction::Entry);
    r.input(50, LaneInput::SetMode(Mode::LockedClosed));
    r.set(100, |s| s.presence = true);
    let out = r.input(160, grant());
    assert!(out.commands.is_empty());
    assert!(out.events.contains(&LaneEvent::GrantNotActed));
    assert_eq!(r.lane.state(), LaneState::Denied);
    let out = r.input(
        200,
        LaneInput::Guard(GuardCommand::Open(GuardOpenReason::EmergencyVehicle)),
    );
    assert_eq!(out.commands, [Open]);
    r.set(1500, |s| {
        s.closed_limit = false;
        s.open_limit = true
    });
    r.set(2000, |s| s.safety = true);
    let out = r.set(2500, |s| {
        s.presence = false;
        s.safety = false
    });
    assert!(
        out.events
            .contains(&LaneEvent::VehiclePassed(OpenCause::Guard))
    );
    assert_eq!(r.input(3500, LaneInput::Tick).commands, [Close]);
}

#[test]
fn manual_only_for_entries_ignores_grants_on_an_entry_lane_but_not_on_an_exit_lane() {
    for (direction, opens) in [(Direction::Entry, false), (Direction::Exit, true)] {
        let mut r = Rig::new(direction);
        r.input(
            50,
            LaneInput::SetMode(Mode::ManualOnly(DirectionSet::ENTRY)),
        );
        r.set(100, |s| s.presence = true);
        let out = r.input(160, grant());
        assert_eq!(out.commands.contains(&Open), opens, "{direction:?}");
    }
}

#[test]
fn fire_opens_in_every_mode_holds_the_arm_over_vehicles_and_closes_only_after_it_ends() {
    let mut r = Rig::new(Direction::Exit);
    r.input(50, LaneInput::SetMode(Mode::LockedClosed));
    let out = r.set(100, |s| s.fire = true);
    assert_eq!(out.commands, [Open]);
    assert!(out.events.contains(&LaneEvent::FireAlarm { active: true }));
    assert_eq!(r.lane.state(), LaneState::HeldOpen);
    r.set(1500, |s| {
        s.closed_limit = false;
        s.open_limit = true
    });
    // Vehicles stream out; loops clear; still no close while the fire input holds.
    r.set(2000, |s| s.presence = true);
    r.set(3000, |s| s.safety = true);
    assert!(
        r.set(4000, |s| {
            s.presence = false;
            s.safety = false
        })
        .commands
        .is_empty()
    );
    assert!(r.input(60_000, LaneInput::Tick).commands.is_empty());
    assert_eq!(r.lane.state(), LaneState::HeldOpen);
    let out = r.set(61_000, |s| s.fire = false);
    assert!(out.commands.is_empty());
    assert_eq!(r.input(62_000, LaneInput::Tick).commands, [Close]);
}

#[test]
fn locked_open_mode_holds_the_arm_up_until_the_mode_changes() {
    let mut r = Rig::new(Direction::Entry);
    assert_eq!(
        r.input(10, LaneInput::SetMode(Mode::LockedOpen)).commands,
        [Open]
    );
    r.set(1000, |s| {
        s.closed_limit = false;
        s.open_limit = true
    });
    assert!(r.input(100_000, LaneInput::Tick).commands.is_empty());
    r.input(100_001, LaneInput::SetMode(Mode::Normal));
    assert_eq!(r.input(101_001, LaneInput::Tick).commands, [Close]);
}

#[test]
fn a_failed_io_read_leaves_the_arm_as_it_is_and_raises_a_fault_once() {
    let mut r = vehicle_at_open_arm();
    r.set(2500, |s| s.safety = true);
    let out = r.input(2600, LaneInput::IoReadFailed);
    assert!(out.commands.is_empty());
    assert_eq!(out.events, [LaneEvent::Fault(LaneFault::IoReadFailed)]);
    let out = r.input(2700, LaneInput::IoReadFailed);
    assert!(out.commands.is_empty() && out.events.is_empty());
    // Loops unknown: no close however long it lasts.
    assert!(r.input(20_000, LaneInput::Tick).commands.is_empty());
    // And a grant with unknown loops opens nothing.
    assert!(r.input(20_001, grant()).commands.is_empty());
    let out = r.set(21_000, |s| {
        s.presence = false;
        s.safety = false
    });
    assert!(out.events.contains(&LaneEvent::IoRecovered));
    assert_eq!(r.input(22_000, LaneInput::Tick).commands, [Close]);
}

#[test]
fn an_arm_that_does_not_reach_its_open_limit_in_time_is_a_fault_that_the_guard_releases() {
    let mut r = Rig::new(Direction::Entry);
    r.set(100, |s| s.presence = true);
    let out = r.input(200, grant());
    assert_eq!(out.commands, [Open]);
    assert_eq!(out.deadline, Some(ms(8200)));
    assert!(r.input(8199, LaneInput::Tick).commands.is_empty());
    let out = r.input(8200, LaneInput::Tick);
    assert_eq!(out.commands, [StopOn]);
    assert!(
        out.events
            .contains(&LaneEvent::Fault(LaneFault::ArmDidNotOpen))
    );
    assert_eq!(r.lane.state(), LaneState::Fault);
    // Nothing automatic while faulted.
    assert!(r.input(8300, grant()).commands.is_empty());
    r.set(9000, |s| s.presence = false);
    let out = r.input(9500, LaneInput::Guard(GuardCommand::Release));
    assert_eq!(out.commands, [StopOff]);
    assert_eq!(r.lane.state(), LaneState::Idle);
}

#[test]
fn an_arm_that_does_not_reach_its_closed_limit_in_time_is_a_fault() {
    let mut r = vehicle_at_open_arm();
    r.set(2500, |s| {
        s.presence = false;
    });
    assert_eq!(r.input(3500, LaneInput::Tick).commands, [Close]);
    let out = r.input(11_500, LaneInput::Tick);
    assert_eq!(out.commands, [StopOn]);
    assert!(
        out.events
            .contains(&LaneEvent::Fault(LaneFault::ArmDidNotClose))
    );
}

#[test]
fn a_vehicle_under_the_closing_arm_stops_it_and_the_close_resumes_after_it_clears() {
    let mut r = vehicle_at_open_arm();
    r.set(2500, |s| s.presence = false);
    assert_eq!(r.input(3500, LaneInput::Tick).commands, [Close]);
    let out = r.set(3700, |s| s.safety = true);
    assert_eq!(out.commands, [StopOn]);
    let out = r.set(4000, |s| s.safety = false);
    assert!(out.commands.is_empty());
    assert_eq!(r.input(5000, LaneInput::Tick).commands, [StopOff, Close]);
}

#[test]
fn tamper_is_reported_once_per_opening_of_the_cabinet_without_moving_the_arm() {
    let mut r = Rig::new(Direction::Entry);
    let out = r.set(100, |s| s.tamper = true);
    assert_eq!(out.events, [LaneEvent::Fault(LaneFault::Tamper)]);
    assert!(out.commands.is_empty());
    assert!(r.sample(200).events.is_empty());
}

// ---- Property: the invariants hold on every output of every random input sequence. ----

fn signals() -> impl Strategy<Value = LaneSignals> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(presence, safety, open_limit, closed_limit, fire, tamper)| LaneSignals {
                presence,
                safety,
                open_limit,
                closed_limit,
                fire,
                tamper,
            },
        )
}

fn input() -> impl Strategy<Value = LaneInput> {
    prop_oneof![
        6 => signals().prop_map(LaneInput::Signals),
        1 => Just(LaneInput::IoReadFailed),
        2 => Just(LaneInput::Read),
        3 => any::<bool>().prop_map(|granted| LaneInput::Decision {
            granted,
            reason: if granted { ReasonCode::Granted } else { ReasonCode::DeniedUnknownTag },
        }),
        1 => prop_oneof![
            Just(GuardCommand::Open(GuardOpenReason::Other)),
            Just(GuardCommand::KeepClosed),
            Just(GuardCommand::Release),
        ]
        .prop_map(LaneInput::Guard),
        1 => prop_oneof![
            4 => Just(Mode::Normal),
            1 => Just(Mode::LockedClosed),
            1 => Just(Mode::LockedOpen),
            1 => Just(Mode::ManualOnly(DirectionSet::BOTH)),
        ]
        .prop_map(LaneInput::SetMode),
        3 => Just(LaneInput::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_random_input_sequence_closes_on_a_vehicle_or_opens_without_cause(
        steps in prop::collection::vec((0u64..3000, input()), 1..200)
    ) {
        let mut lane = Lane::new(LaneConfig::new(Direction::Entry));
        let mut now = Duration::ZERO;
        // What the lane has been told, tracked independently of the machine.
        let mut known: Option<LaneSignals> = None;
        let mut fire = false;
        let mut mode = Mode::Normal;
        for (dt, input) in steps {
            now += Duration::from_millis(dt);
            match input {
                LaneInput::Signals(s) => { known = Some(s); fire = s.fire; }
                LaneInput::IoReadFailed => known = None,
                LaneInput::SetMode(m) => mode = m,
                _ => {}
            }
            let out = lane.step(now, input);
            if input == LaneInput::IoReadFailed {
                prop_assert!(out.commands.is_empty(), "a failed read commanded {:?}", out.commands);
            }
            if out.commands.contains(&Close) {
                let s = known.expect("CLOSE with unknown loops");
                prop_assert!(!s.presence && !s.safety, "CLOSE on a vehicle: {s:?}");
            }
            if out.commands.contains(&Open) {
                let granted_present = matches!(input, LaneInput::Decision { granted: true, .. })
                    && known.is_some_and(|s| s.presence);
                let guard = input == LaneInput::Guard(GuardCommand::Open(GuardOpenReason::Other));
                let evacuation = mode == Mode::LockedOpen || fire;
                prop_assert!(granted_present || guard || evacuation,
                    "OPEN without cause after {input:?} in {mode:?}");
            }
        }
    }
}
