//! The lane state machine: loops, arm limits, fire and tamper in; barrier commands, journal events
//! and the next deadline out.
//!
//! What it is for: everything a lane does with its barrier, as a pure machine. The runtime samples
//! the Modbus I/O module, feeds [`MachineInput::Signals`] (or [`MachineInput::IoReadFailed`]), forwards
//! reads, decisions from [`crate::gate::decision::decide`], guard commands and mode changes, calls
//! [`Lane::step`] again when [`LaneOutput::deadline`] passes, and carries out
//! [`LaneOutput::commands`].
//!
//! Time: `now` is monotonic (the runtime's `tokio::time::Instant` since the lane started), so a
//! step of the wall clock (NTP, a guard setting the cabinet's clock) never moves a close delay or
//! an arm timeout. The wall clock, in the site's time zone, is only for deciding by schedule and
//! for the journal's timestamps, both outside this machine.
//!
//! What it never does: IO, clock reads (`now` is a monotonic [`Duration`] from any origin the
//! runtime picks), sleeping, or deciding who may pass (that is the decision's job).
//!
//! States: idle → vehicle present → identifying → opening → open → passing → close pending →
//! closing → idle; plus denied, held open (locked open / fire) and fault.
//!
//! # Invariants
//! - **CLOSE is never emitted while the presence or the safety loop reports a vehicle**, nor while
//!   the loops are unknown (no successful read yet, or the last read failed).
//! - **One vehicle per opening (一车一杆)**: the arm closes [`LaneTimings::close_delay`] (≈ 1 s) after
//!   the vehicle has cleared the safety loop (and the presence loop is clear).
//! - **A grant only opens while the presence loop is occupied**: a read or grant with nothing
//!   present opens nothing.
//! - **OPEN is never emitted without** a grant for a present vehicle, a guard's open command, or
//!   the locked-open mode / fire input (fire forces open in every mode and state).
//! - **An arm that does not reach its limit** within [`LaneTimings::limit_timeout`] is a fault
//!   (the machine then sends STOP and waits for the guard, except that fire still opens).
//! - **A failed I/O read leaves the arm as it is**: no command is emitted for it, a fault event is,
//!   and the loops count as unknown until the next good read.
//! - A vehicle under a closing arm (safety loop) stops the arm (STOP on); it is released and the
//!   arm closed once the loops have been clear for the close delay.
//! - **A deadline is only handed out when a [`MachineInput::Tick`] at it changes something**: every
//!   deadline is later than the step's `now`, and a tick at or after it (however late) changes
//!   the state or hands out a later deadline (or none). A deadline that is already due and stays
//!   due makes the runtime tick again at once, for ever: a lane thread that spins, worst when the
//!   machine is busy (a late thread finds more deadlines already due), which makes it busier. So
//!   no deadline while the loops are unknown (nothing moves until the next read, which the
//!   runtime feeds within a poll), none while a vehicle holds a pending close (the close waits for
//!   a sample without it), and none once a held-open arm has reached its open limit.

use std::time::Duration;

use crate::domain::{Direction, DirectionSet, ReasonCode};

/// One sample of the lane's inputs (mirrors `firmware_protocols::lane_io::LaneInputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneSignals {
    /// Presence loop (before the arm) occupied.
    pub presence: bool,
    /// Safety loop (under / after the arm) occupied.
    pub safety: bool,
    /// Arm at its open limit.
    pub open_limit: bool,
    /// Arm at its closed limit.
    pub closed_limit: bool,
    /// Fire-alarm linkage active (forces open).
    pub fire: bool,
    /// Cabinet tamper switch open.
    pub tamper: bool,
}

/// A command to the barrier's dry contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierCommand {
    /// Pulse OPEN.
    Open,
    /// Pulse CLOSE.
    Close,
    /// Set STOP / hold: the arm stays where it is.
    StopOn,
    /// Release STOP.
    StopOff,
}

/// The lane's operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Grants open automatically.
    Normal,
    /// Lockdown: nothing opens automatically; a guard's open still does.
    LockedClosed,
    /// Evacuation: the arm is held open.
    LockedOpen,
    /// Grants are not acted on for these directions; only the guard opens.
    ManualOnly(DirectionSet),
}

/// Why a guard opened the barrier by hand (手动抬杆). The runtime journals the operator with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardOpenReason {
    /// A walk-in visitor was registered at the booth.
    VisitorRegistered,
    /// Ambulance, fire engine, police.
    EmergencyVehicle,
    /// The reader or camera failed for a permitted vehicle.
    EquipmentFault,
    /// A permit problem was checked and resolved by the guard.
    PermitChecked,
    /// Anything else (the runtime records the guard's text).
    Other,
}

/// A command from the booth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardCommand {
    /// Open for one vehicle, in any mode.
    Open(GuardOpenReason),
    /// Refuse the vehicle at the lane / withdraw a pending opening.
    KeepClosed,
    /// Acknowledge a fault or denial and resume automatic operation.
    Release,
}

/// What the lane machine is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineInput {
    /// A successful sample of the inputs.
    Signals(LaneSignals),
    /// Reading the inputs failed (timeout, CRC, exception).
    IoReadFailed,
    /// A credential was read and is being decided.
    Read,
    /// The decision for the vehicle at this lane.
    Decision {
        /// Whether the decision grants.
        granted: bool,
        /// Its reason.
        reason: ReasonCode,
        /// The direction the vehicle goes (on a two-way lane, the one its read says): a
        /// manual-only mode for that direction keeps a grant from opening.
        direction: Direction,
    },
    /// A guard command.
    Guard(GuardCommand),
    /// A mode change (from the guard or the centre).
    SetMode(Mode),
    /// Nothing new: the deadline passed.
    Tick,
}

/// The lane's state, as journalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneState {
    /// Arm down, no vehicle.
    Idle,
    /// A vehicle on the presence loop, nothing read yet.
    VehiclePresent,
    /// A credential was read; waiting for the decision.
    Identifying,
    /// OPEN sent; waiting for the open limit.
    Opening,
    /// Arm up; waiting for the vehicle to pass.
    Open,
    /// The vehicle is on the safety loop.
    Passing,
    /// Loops clear; closing after the close delay.
    ClosePending,
    /// CLOSE sent; waiting for the closed limit.
    Closing,
    /// The vehicle was refused; the arm stays down until it leaves.
    Denied,
    /// Locked open or fire: the arm is held up.
    HeldOpen,
    /// Something failed; waiting for the guard.
    Fault,
}

/// What opened the arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenCause {
    /// A granting decision.
    Grant,
    /// A guard's command.
    Guard,
    /// Locked-open mode or fire.
    Evacuation,
    /// Nothing: a following vehicle was already under the raised arm when the one it was raised
    /// for passed, so it could not be closed on (tailgating; no decision's effects apply to it).
    Following,
}

/// A fault to raise to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneFault {
    /// The arm did not reach its open limit in time.
    ArmDidNotOpen,
    /// The arm did not reach its closed limit in time.
    ArmDidNotClose,
    /// Reading the I/O module failed.
    IoReadFailed,
    /// The cabinet was opened.
    Tamper,
}

/// Something for the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneEvent {
    /// The state changed.
    StateChanged {
        /// Before.
        from: LaneState,
        /// After.
        to: LaneState,
    },
    /// A fault was raised.
    Fault(LaneFault),
    /// I/O reads work again after a failure.
    IoRecovered,
    /// The fire input changed.
    FireAlarm {
        /// Whether it is now active.
        active: bool,
    },
    /// A credential was read with no vehicle on the presence loop (skim, neighbour lane, attack).
    ReadWithoutVehicle,
    /// A grant arrived with no vehicle present: nothing opened.
    GrantWithoutVehicle,
    /// A grant was not acted on because of the mode (lockdown / manual only) or a fault.
    GrantNotActed,
    /// The vehicle was refused.
    Denied(ReasonCode),
    /// The guard opened.
    GuardOpened(GuardOpenReason),
    /// The guard refused the vehicle or withdrew an opening.
    GuardKeptClosed,
    /// The guard acknowledged and released.
    GuardReleased,
    /// The mode changed.
    ModeChanged {
        /// Before.
        from: Mode,
        /// After.
        to: Mode,
    },
    /// A vehicle crossed the safety loop and cleared it: the runtime records the decision's effects.
    VehiclePassed(OpenCause),
    /// The vehicle left the presence loop without passing the open arm.
    VehicleBackedOut,
}

/// What the machine wants done after one step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaneOutput {
    /// Barrier commands, in order.
    pub commands: Vec<BarrierCommand>,
    /// Events for the journal, in order.
    pub events: Vec<LaneEvent>,
    /// When to step again (with [`MachineInput::Tick`]) if nothing else happens.
    pub deadline: Option<Duration>,
}

/// Lane timings.
///
/// The lane's direction is not here: each [`MachineInput::Decision`] says which way its vehicle
/// goes (a two-way lane serves both), and a manual-only mode is judged on that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneTimings {
    /// Delay between the loops clearing and CLOSE (≈ 1 s).
    pub close_delay: Duration,
    /// How long the arm may take to reach a limit before it is a fault.
    pub limit_timeout: Duration,
}

impl Default for LaneTimings {
    /// 1 s close delay, 8 s limit timeout.
    fn default() -> LaneTimings {
        LaneTimings {
            close_delay: Duration::from_secs(1),
            limit_timeout: Duration::from_secs(8),
        }
    }
}

/// The lane state machine. Starts idle, in normal mode, with unknown signals.
#[derive(Debug, Clone)]
pub struct Lane {
    config: LaneTimings,
    mode: Mode,
    state: LaneState,
    /// When the current state was entered.
    since: Duration,
    cause: OpenCause,
    /// The last good sample; `None` before the first one and after a failed read.
    signals: Option<LaneSignals>,
    /// The last good sample ever (for edge detection across failures).
    last_good: LaneSignals,
    io_failed: bool,
    stop_on: bool,
    /// Whether the open-limit fault was already raised while held open.
    held_fault_raised: bool,
}

impl Lane {
    /// A new lane.
    pub fn new(config: LaneTimings) -> Lane {
        Lane {
            config,
            mode: Mode::Normal,
            state: LaneState::Idle,
            since: Duration::ZERO,
            cause: OpenCause::Grant,
            signals: None,
            last_good: LaneSignals::default(),
            io_failed: false,
            stop_on: false,
            held_fault_raised: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> LaneState {
        self.state
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Feeds one input at monotonic time `now` (never earlier than the previous step's).
    pub fn step(&mut self, now: Duration, input: MachineInput) -> LaneOutput {
        let mut out = LaneOutput::default();
        match input {
            MachineInput::Signals(s) => {
                if self.io_failed {
                    self.io_failed = false;
                    out.events.push(LaneEvent::IoRecovered);
                }
                if s.tamper && !self.last_good.tamper {
                    out.events.push(LaneEvent::Fault(LaneFault::Tamper));
                }
                if s.fire != self.last_good.fire {
                    out.events.push(LaneEvent::FireAlarm { active: s.fire });
                }
                self.signals = Some(s);
                self.last_good = s;
            }
            MachineInput::IoReadFailed => {
                self.signals = None;
                if !self.io_failed {
                    self.io_failed = true;
                    out.events.push(LaneEvent::Fault(LaneFault::IoReadFailed));
                }
                // The arm stays as it is: no command, no transition. A held-open arm's limit
                // check still runs (it is judged with the limit unknown), so that no deadline
                // handed out is already due.
                if self.evacuating() && self.state == LaneState::HeldOpen {
                    self.check_held_open_limit(now, &mut out);
                }
                out.deadline = self.deadline();
                return out;
            }
            MachineInput::Read => {
                if self.present() {
                    if self.state == LaneState::VehiclePresent {
                        self.go(now, LaneState::Identifying, &mut out);
                    }
                } else {
                    out.events.push(LaneEvent::ReadWithoutVehicle);
                }
            }
            MachineInput::Decision {
                granted,
                reason,
                direction,
            } => self.on_decision(now, granted, reason, direction, &mut out),
            MachineInput::Guard(cmd) => self.on_guard(now, cmd, &mut out),
            MachineInput::SetMode(m) => {
                if m != self.mode {
                    out.events.push(LaneEvent::ModeChanged {
                        from: self.mode,
                        to: m,
                    });
                    self.mode = m;
                }
            }
            MachineInput::Tick => {}
        }
        self.settle(now, &mut out);
        out.deadline = self.deadline();
        out
    }

    fn present(&self) -> bool {
        self.signals.is_some_and(|s| s.presence)
    }

    fn evacuating(&self) -> bool {
        self.mode == Mode::LockedOpen || self.last_good.fire
    }

    /// Whether the mode keeps a grant for a vehicle going `direction` from opening.
    fn auto_blocked(&self, direction: Direction) -> bool {
        match self.mode {
            Mode::Normal | Mode::LockedOpen => false,
            Mode::LockedClosed => true,
            Mode::ManualOnly(dirs) => dirs.contains(direction),
        }
    }

    fn go(&mut self, now: Duration, to: LaneState, out: &mut LaneOutput) {
        if to != self.state {
            out.events.push(LaneEvent::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
        self.since = now;
    }

    fn open(&mut self, now: Duration, cause: OpenCause, out: &mut LaneOutput) {
        if self.stop_on {
            self.stop_on = false;
            out.commands.push(BarrierCommand::StopOff);
        }
        out.commands.push(BarrierCommand::Open);
        self.cause = cause;
        let to = if cause == OpenCause::Evacuation {
            LaneState::HeldOpen
        } else {
            LaneState::Opening
        };
        self.go(now, to, out);
    }

    fn on_decision(
        &mut self,
        now: Duration,
        granted: bool,
        reason: ReasonCode,
        direction: Direction,
        out: &mut LaneOutput,
    ) {
        let waiting = matches!(
            self.state,
            LaneState::VehiclePresent | LaneState::Identifying | LaneState::Denied
        );
        if !granted {
            if waiting {
                out.events.push(LaneEvent::Denied(reason));
                self.go(now, LaneState::Denied, out);
            }
            return;
        }
        if !self.present() {
            out.events.push(LaneEvent::GrantWithoutVehicle);
            return;
        }
        if self.auto_blocked(direction) || self.state == LaneState::Fault {
            out.events.push(LaneEvent::GrantNotActed);
            if waiting {
                out.events
                    .push(LaneEvent::Denied(ReasonCode::DeniedLaneLocked));
                self.go(now, LaneState::Denied, out);
            }
            return;
        }
        match self.state {
            LaneState::VehiclePresent
            | LaneState::Identifying
            | LaneState::Denied
            | LaneState::Closing
            | LaneState::Idle => self.open(now, OpenCause::Grant, out),
            // The arm is already up (a following vehicle with its own grant).
            LaneState::Open | LaneState::ClosePending => {
                self.cause = OpenCause::Grant;
                self.go(now, LaneState::Open, out);
            }
            LaneState::Opening | LaneState::Passing | LaneState::HeldOpen | LaneState::Fault => {}
        }
    }

    fn on_guard(&mut self, now: Duration, cmd: GuardCommand, out: &mut LaneOutput) {
        match cmd {
            GuardCommand::Open(reason) => {
                out.events.push(LaneEvent::GuardOpened(reason));
                if self.state != LaneState::HeldOpen {
                    self.open(now, OpenCause::Guard, out);
                }
            }
            GuardCommand::KeepClosed => {
                out.events.push(LaneEvent::GuardKeptClosed);
                match self.state {
                    LaneState::VehiclePresent | LaneState::Identifying => {
                        self.go(now, LaneState::Denied, out)
                    }
                    LaneState::Opening | LaneState::Open => {
                        self.go(now, LaneState::ClosePending, out)
                    }
                    _ => {}
                }
            }
            GuardCommand::Release => {
                out.events.push(LaneEvent::GuardReleased);
                match self.state {
                    LaneState::Fault => {
                        if self.stop_on {
                            self.stop_on = false;
                            out.commands.push(BarrierCommand::StopOff);
                        }
                        let closed = self.signals.is_some_and(|s| s.closed_limit);
                        let to = if closed {
                            LaneState::Idle
                        } else {
                            LaneState::ClosePending
                        };
                        self.go(now, to, out);
                    }
                    LaneState::Denied => self.go(now, LaneState::VehiclePresent, out),
                    _ => {}
                }
            }
        }
    }

    /// Applies every transition the current state, signals and time call for.
    fn settle(&mut self, now: Duration, out: &mut LaneOutput) {
        if self.evacuating() {
            if self.state != LaneState::HeldOpen {
                self.held_fault_raised = false;
                self.open(now, OpenCause::Evacuation, out);
            } else {
                self.check_held_open_limit(now, out);
            }
            return;
        }
        let Some(s) = self.signals else {
            // Loops and limits unknown: nothing moves until a good read (a limit timeout that
            // passed meanwhile is judged on that read).
            return;
        };
        // A few passes so that one sample can move through several states (e.g. open limit
        // reached and vehicle already on the safety loop).
        for _ in 0..4 {
            let before = self.state;
            match self.state {
                LaneState::HeldOpen => self.go(now, LaneState::ClosePending, out),
                LaneState::Idle => {
                    if s.presence {
                        self.go(now, LaneState::VehiclePresent, out);
                    }
                }
                LaneState::VehiclePresent | LaneState::Identifying | LaneState::Denied => {
                    if !s.presence {
                        self.go(now, LaneState::Idle, out);
                    }
                }
                LaneState::Opening => {
                    if s.open_limit {
                        self.go(now, LaneState::Open, out);
                    } else if s.safety {
                        self.go(now, LaneState::Passing, out);
                    } else {
                        self.check_limit_timeout(now, out);
                    }
                }
                LaneState::Open => {
                    if s.safety {
                        self.go(now, LaneState::Passing, out);
                    } else if !s.presence {
                        out.events.push(LaneEvent::VehicleBackedOut);
                        self.go(now, LaneState::ClosePending, out);
                    }
                }
                LaneState::Passing => {
                    if !s.safety {
                        out.events.push(LaneEvent::VehiclePassed(self.cause));
                        if s.presence {
                            // The next vehicle is already waiting under the raised arm: it cannot
                            // be closed on; it needs its own grant to count as passing.
                            self.go(now, LaneState::Open, out);
                            self.cause = OpenCause::Following;
                        } else {
                            self.go(now, LaneState::ClosePending, out);
                        }
                    }
                }
                LaneState::ClosePending => {
                    if s.safety {
                        self.go(now, LaneState::Passing, out);
                    } else if s.presence {
                        // Wait for the vehicle to leave or be granted.
                        self.since = now;
                    } else if s.closed_limit && !self.stop_on {
                        self.go(now, LaneState::Idle, out);
                    } else if now >= self.since + self.config.close_delay {
                        if self.stop_on {
                            self.stop_on = false;
                            out.commands.push(BarrierCommand::StopOff);
                        }
                        out.commands.push(BarrierCommand::Close);
                        self.go(now, LaneState::Closing, out);
                    }
                }
                LaneState::Closing => {
                    if s.safety {
                        // Something under the closing arm: stop it where it is.
                        if !self.stop_on {
                            self.stop_on = true;
                            out.commands.push(BarrierCommand::StopOn);
                        }
                        self.go(now, LaneState::Passing, out);
                    } else if s.closed_limit {
                        self.go(now, LaneState::Idle, out);
                    } else {
                        self.check_limit_timeout(now, out);
                    }
                }
                LaneState::Fault => {}
            }
            if self.state == before {
                break;
            }
        }
    }

    /// Held open: an arm not at its open limit (or not known to be) once the limit timeout has
    /// passed is a fault, raised once.
    fn check_held_open_limit(&mut self, now: Duration, out: &mut LaneOutput) {
        if !self.held_fault_raised
            && !self.signals.is_some_and(|s| s.open_limit)
            && now >= self.since + self.config.limit_timeout
        {
            self.held_fault_raised = true;
            out.events.push(LaneEvent::Fault(LaneFault::ArmDidNotOpen));
        }
    }

    fn check_limit_timeout(&mut self, now: Duration, out: &mut LaneOutput) {
        let fault = match self.state {
            LaneState::Opening => LaneFault::ArmDidNotOpen,
            LaneState::Closing => LaneFault::ArmDidNotClose,
            _ => return,
        };
        if now >= self.since + self.config.limit_timeout {
            out.events.push(LaneEvent::Fault(fault));
            if !self.stop_on {
                self.stop_on = true;
                out.commands.push(BarrierCommand::StopOn);
            }
            self.go(now, LaneState::Fault, out);
        }
    }

    /// When the machine next needs a [`MachineInput::Tick`]: only when a tick then changes
    /// something (see the module's invariants), mirroring what [`Lane::settle`] checks.
    fn deadline(&self) -> Option<Duration> {
        let limit = self.since + self.config.limit_timeout;
        if self.evacuating() {
            // Held open: the one timed check is the open limit, until it is reached or faulted
            // (with the loops unknown, the limit counts as not reached).
            let reached = self.signals.is_some_and(|s| s.open_limit);
            return (self.state == LaneState::HeldOpen && !self.held_fault_raised && !reached)
                .then_some(limit);
        }
        // Loops and limits unknown: a tick moves nothing; the next read steps the machine.
        let s = self.signals?;
        match self.state {
            // `settle` left these only while the limit is not reached.
            LaneState::Opening | LaneState::Closing => Some(limit),
            // A vehicle on a loop postpones the close until a sample without it.
            LaneState::ClosePending if !s.presence && !s.safety => {
                Some(self.since + self.config.close_delay)
            }
            _ => None,
        }
    }
}
