//! Simulated vehicles: a car (with or without a UHF tag) that rolls up to a lane, stands on the
//! presence loop with its tag in the reader's field, waits for the arm to reach its open limit
//! (or loses patience and backs out), drives over the safety loop and leaves.
//!
//! A vehicle only ever touches the emulators' control handles, bundled as [`LaneDevices`]: it
//! puts its tag in and takes it out of a [`ReaderControl`]'s field, sets the loops of a
//! [`LaneIoModule`] and watches its arm. It never talks to, or knows of, the gate controller:
//! whatever the controller does reaches the vehicle only through the arm.
//!
//! The loops are counted per lane ([`LaneDevices`] holds the counts), so two vehicles asked to
//! overlap (a tailgater) keep a loop occupied until the last of them has left it. A vehicle that
//! is dropped halfway (its future cancelled) still leaves: its loops and its tag are cleared.
//!
//! Time is `tokio::time`. While it waits, a vehicle looks at the arm every
//! [`VehicleTiming::poll`] and, while the arm is rising, sleeps until the instant it will reach
//! the limit (the barrier model says when), so [`Passage::opened_at`] is that instant and not a
//! poll later. This module never opens a port and never decides anything about access.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tracing::debug;

use super::barrier::ArmState;
use super::lane_io::LaneIoModule;
use super::uhf_reader::{BadTag, FieldTag, ReaderControl};

/// How a driver behaves, as durations. The arm's own travel time (≈ 1.5 s) is the barrier's,
/// set on the I/O module, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VehicleTiming {
    /// From arriving on the presence loop, how long the driver waits for the arm to reach its
    /// open limit before backing out; an arm still rising at that moment is waited for.
    /// Default 8 s.
    pub patience: Duration,
    /// From the arm reaching its open limit to the front wheels reaching the safety loop (the
    /// driver's reaction and the first metre). Default 0.4 s.
    pub pull_off: Duration,
    /// From the safety loop being reached to the presence loop being cleared (the car spans
    /// both loops meanwhile). Default 0.3 s.
    pub loops_overlap: Duration,
    /// How long the car keeps the safety loop occupied, from reaching it. Default 0.8 s; never
    /// shorter than [`VehicleTiming::loops_overlap`].
    pub safety_dwell: Duration,
    /// How often a waiting driver looks at the arm. Default 20 ms.
    pub poll: Duration,
}

impl Default for VehicleTiming {
    fn default() -> VehicleTiming {
        VehicleTiming {
            patience: Duration::from_secs(8),
            pull_off: Duration::from_millis(400),
            loops_overlap: Duration::from_millis(300),
            safety_dwell: Duration::from_millis(800),
            poll: Duration::from_millis(20),
        }
    }
}

/// How a vehicle's visit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VehicleOutcome {
    /// The arm opened and the vehicle drove through.
    Passed {
        /// From arriving on the presence loop to the arm reaching its open limit.
        waited: Duration,
    },
    /// Nothing opened within the driver's patience: the vehicle backed out.
    GaveUp,
}

/// A vehicle's visit to the lane, with the instants needed to measure the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passage {
    /// Passed or gave up.
    pub outcome: VehicleOutcome,
    /// When the vehicle stood on the presence loop (its tag entering the field at that instant).
    pub arrived_at: Instant,
    /// When the arm reached its open limit while the vehicle waited (`None` if it never did).
    pub opened_at: Option<Instant>,
    /// When the vehicle had cleared every loop and its tag had left the field.
    pub left_at: Instant,
}

impl Passage {
    /// Whether the vehicle drove through.
    pub fn passed(&self) -> bool {
        matches!(self.outcome, VehicleOutcome::Passed { .. })
    }
}

/// The emulator handles a vehicle drives: one lane's reader and I/O module, plus the count of
/// vehicles on each loop. Cloning shares everything.
#[derive(Debug, Clone)]
pub struct LaneDevices {
    reader: ReaderControl,
    io: LaneIoModule,
    loops: Arc<Mutex<LoopCounts>>,
}

#[derive(Debug, Default)]
struct LoopCounts {
    presence: u32,
    safety: u32,
}

#[derive(Debug, Clone, Copy)]
enum Loop {
    Presence,
    Safety,
}

impl LaneDevices {
    /// Bundles a lane's reader and I/O module. Every vehicle of the lane must go through the same
    /// bundle (or a clone of it) for the loop counts to hold.
    pub fn new(reader: ReaderControl, io: LaneIoModule) -> LaneDevices {
        LaneDevices {
            reader,
            io,
            loops: Arc::default(),
        }
    }

    /// The lane's reader.
    pub fn reader(&self) -> &ReaderControl {
        &self.reader
    }

    /// The lane's I/O module.
    pub fn io(&self) -> &LaneIoModule {
        &self.io
    }

    fn counts(&self) -> MutexGuard<'_, LoopCounts> {
        self.loops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more (or one fewer) vehicle on a loop; the module sees the loop occupied while the
    /// count is above zero.
    fn step_on(&self, which: Loop, on: bool) {
        let mut counts = self.counts();
        let count = match which {
            Loop::Presence => &mut counts.presence,
            Loop::Safety => &mut counts.safety,
        };
        *count = if on {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        let occupied = *count > 0;
        match which {
            Loop::Presence => self.io.set_presence(occupied),
            Loop::Safety => self.io.set_safety(occupied),
        }
    }
}

/// A simulated vehicle: an optional tag and a driver's timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    tag: Option<FieldTag>,
    timing: VehicleTiming,
}

impl Vehicle {
    /// A vehicle without a tag (a visitor, or a tag the reader cannot see).
    pub fn untagged() -> Vehicle {
        Vehicle {
            tag: None,
            timing: VehicleTiming::default(),
        }
    }

    /// A vehicle carrying `tag` (EPC, optional TID, the antenna that sees it and its RSSI).
    /// Refused if no reader could report the tag (the reader emulator's own rules).
    pub fn tagged(tag: FieldTag) -> Result<Vehicle, BadTag> {
        // The emulator's check is the single source of the rules: try the tag on a spare reader.
        ReaderControl::new().put_tag(tag.clone())?;
        Ok(Vehicle {
            tag: Some(tag),
            timing: VehicleTiming::default(),
        })
    }

    /// The same vehicle with another driver's timing.
    pub fn with_timing(mut self, timing: VehicleTiming) -> Vehicle {
        self.timing = timing;
        self
    }

    /// The vehicle's tag, if it has one.
    pub fn tag(&self) -> Option<&FieldTag> {
        self.tag.as_ref()
    }

    /// The driver's timing.
    pub fn timing(&self) -> &VehicleTiming {
        &self.timing
    }

    /// Drives the vehicle through one visit to the lane and returns how it went.
    ///
    /// Arrives (tag into the field, presence loop occupied), waits for the open limit or gives
    /// up (presence loop cleared, tag out of the field); when open: safety loop occupied after
    /// [`VehicleTiming::pull_off`], presence loop clear [`VehicleTiming::loops_overlap`] later,
    /// safety loop clear and tag gone at the end of [`VehicleTiming::safety_dwell`].
    pub async fn drive(&self, lane: &LaneDevices) -> Passage {
        let timing = self.timing;
        let mut visit = OnLane::arrive(lane, self.tag.as_ref());
        let arrived_at = Instant::now();
        debug!(tag = ?self.tag.as_ref().map(|t| hex(&t.epc)), "vehicle: on the presence loop");

        let Some(opened_at) = wait_for_open(lane.io(), arrived_at + timing.patience, timing).await
        else {
            visit.leave(Loop::Presence);
            visit.tag_out();
            let left_at = Instant::now();
            debug!("vehicle: gave up and backed out");
            return Passage {
                outcome: VehicleOutcome::GaveUp,
                arrived_at,
                opened_at: None,
                left_at,
            };
        };

        tokio::time::sleep(timing.pull_off).await;
        let on_safety = Instant::now();
        visit.enter(Loop::Safety);
        let overlap = timing.loops_overlap;
        tokio::time::sleep_until(on_safety + overlap).await;
        visit.leave(Loop::Presence);
        tokio::time::sleep_until(on_safety + timing.safety_dwell.max(overlap)).await;
        visit.leave(Loop::Safety);
        visit.tag_out();
        let left_at = Instant::now();
        let waited = opened_at.saturating_duration_since(arrived_at);
        debug!(?waited, "vehicle: passed");
        Passage {
            outcome: VehicleOutcome::Passed { waited },
            arrived_at,
            opened_at: Some(opened_at),
            left_at,
        }
    }
}

/// Waits until the arm is at its open limit; returns the instant it got there, or `None` if
/// `give_up_at` passed with the arm neither open nor rising.
async fn wait_for_open(
    io: &LaneIoModule,
    give_up_at: Instant,
    timing: VehicleTiming,
) -> Option<Instant> {
    let poll = timing.poll.max(Duration::from_millis(1));
    // The instant the rising arm was last predicted to reach its limit.
    let mut predicted: Option<Instant> = None;
    loop {
        let barrier = io.barrier();
        let now = Instant::now();
        match barrier.state() {
            ArmState::Open => {
                return Some(predicted.filter(|at| *at <= now).unwrap_or(now));
            }
            ArmState::Opening => {
                predicted = barrier.next_deadline();
                let wake = predicted.map_or(now + poll, |at| at.min(now + poll));
                tokio::time::sleep_until(wake).await;
            }
            ArmState::Closed | ArmState::Closing | ArmState::Stopped => {
                predicted = None;
                if now >= give_up_at {
                    return None;
                }
                tokio::time::sleep_until((now + poll).min(give_up_at)).await;
            }
        }
    }
}

/// A vehicle's footprint on the lane: which loops it occupies and whether its tag is in the
/// field. Dropping it clears whatever is left, so a cancelled drive never leaves a ghost car.
#[derive(Debug)]
struct OnLane<'a> {
    lane: &'a LaneDevices,
    epc: Option<Vec<u8>>,
    presence: bool,
    safety: bool,
}

impl<'a> OnLane<'a> {
    fn arrive(lane: &'a LaneDevices, tag: Option<&FieldTag>) -> OnLane<'a> {
        let mut visit = OnLane {
            lane,
            epc: None,
            presence: false,
            safety: false,
        };
        if let Some(tag) = tag {
            match lane.reader.put_tag(tag.clone()) {
                Ok(()) => visit.epc = Some(tag.epc.clone()),
                // Unreachable: Vehicle::tagged checked the tag with the same rules.
                Err(e) => tracing::error!(error = %e, "vehicle: tag refused by the reader"),
            }
        }
        visit.enter(Loop::Presence);
        visit
    }

    fn flag(&mut self, which: Loop) -> &mut bool {
        match which {
            Loop::Presence => &mut self.presence,
            Loop::Safety => &mut self.safety,
        }
    }

    fn enter(&mut self, which: Loop) {
        if !std::mem::replace(self.flag(which), true) {
            self.lane.step_on(which, true);
        }
    }

    fn leave(&mut self, which: Loop) {
        if std::mem::replace(self.flag(which), false) {
            self.lane.step_on(which, false);
        }
    }

    fn tag_out(&mut self) {
        if let Some(epc) = self.epc.take() {
            self.lane.reader.take_tag(&epc);
        }
    }
}

impl Drop for OnLane<'_> {
    fn drop(&mut self) {
        self.leave(Loop::Safety);
        self.leave(Loop::Presence);
        self.tag_out();
    }
}

/// Upper-case hex, for logs and reports.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
