//! A model of a boom barrier (道闸): where the arm is, how it answers its contacts, and its own
//! safety reversing. The lane I/O module simulator drives it from coil writes and reports its
//! limit switches as inputs.
//!
//! The arm travels between closed and open in a configurable time (1.5 s by default), linearly.
//! Contacts, as on a real barrier controller:
//! - an **OPEN** pulse raises the arm from wherever it is;
//! - a **CLOSE** pulse lowers it, **unless a loop (presence or safety) is occupied** or the fire
//!   linkage is active; while it is closing, a vehicle arriving on either loop **reverses** it to
//!   opening. This is the barrier's own protection, the second layer behind the controller's rule
//!   never to command CLOSE over a vehicle;
//! - **STOP** held freezes the arm where it is and makes it ignore OPEN and CLOSE; released, the
//!   arm stays where it was frozen until the next command;
//! - **FIRE** forces the arm open and keeps it open while active; it overrides STOP (a fire
//!   alarm must clear the lane for evacuation and fire engines: a deliberate choice, as wiring
//!   varies between barrier makers).
//!
//! The model is pure: time is an input. Every method takes `now` (a `tokio::time::Instant`, so
//! a simulator under `tokio::time::pause()` moves the arm with the paused clock) and the arm's
//! position is computed from the time elapsed, so observing it late gives the same answer as
//! stepping it on time; [`Barrier::next_deadline`] tells a driver when the arm will next reach a
//! limit. A `now` earlier than the last one is treated as no time passing.
//!
//! This module never reads a clock, sleeps or does IO.

use std::time::Duration;

use tokio::time::Instant;

/// The default time the arm takes from fully closed to fully open (and back).
pub const DEFAULT_TRAVEL: Duration = Duration::from_millis(1500);

/// Where the arm is and what it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArmState {
    /// Down, on the closed limit.
    Closed,
    /// Rising.
    Opening,
    /// Up, on the open limit.
    Open,
    /// Lowering.
    Closing,
    /// Still, between the limits (frozen by STOP).
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motion {
    Still,
    Raising,
    Lowering,
}

/// The barrier: the arm, its contacts and its loops.
#[derive(Debug, Clone)]
pub struct Barrier {
    travel: Duration,
    /// How far open the arm is, as travel time from closed: `0..=travel`.
    opened: Duration,
    motion: Motion,
    /// The instant `opened` and `motion` are valid at.
    as_of: Instant,
    stop: bool,
    fire: bool,
    presence: bool,
    safety: bool,
}

impl Barrier {
    /// A closed, still barrier whose arm takes `travel` (at least 1 ms) between the limits.
    pub fn new(travel: Duration, now: Instant) -> Barrier {
        Barrier {
            travel: travel.max(Duration::from_millis(1)),
            opened: Duration::ZERO,
            motion: Motion::Still,
            as_of: now,
            stop: false,
            fire: false,
            presence: false,
            safety: false,
        }
    }

    /// Moves the arm to where it is at `now`.
    pub fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.as_of);
        self.as_of = self.as_of.max(now);
        match self.motion {
            Motion::Still => {}
            Motion::Raising => {
                self.opened = (self.opened + elapsed).min(self.travel);
                if self.opened == self.travel {
                    self.motion = Motion::Still;
                }
            }
            Motion::Lowering => {
                self.opened = self.opened.saturating_sub(elapsed);
                if self.opened.is_zero() {
                    self.motion = Motion::Still;
                }
            }
        }
    }

    /// An OPEN pulse: raise the arm, unless STOP is held.
    pub fn pulse_open(&mut self, now: Instant) {
        self.advance(now);
        if !self.stop {
            self.raise();
        }
    }

    /// A CLOSE pulse: lower the arm, unless STOP is held, the fire linkage is active, or a loop
    /// is occupied (then the pulse is ignored, as a barrier controller ignores it).
    pub fn pulse_close(&mut self, now: Instant) {
        self.advance(now);
        if !self.stop && !self.fire && !self.loop_occupied() && self.opened > Duration::ZERO {
            self.motion = Motion::Lowering;
        }
    }

    /// Holds (`true`) or releases (`false`) STOP. Held, it freezes the arm unless the fire
    /// linkage is active.
    pub fn set_stop(&mut self, held: bool, now: Instant) {
        self.advance(now);
        self.stop = held;
        if held && !self.fire {
            self.motion = Motion::Still;
        }
    }

    /// Sets the fire linkage. Active, it raises the arm (even with STOP held) and blocks CLOSE.
    /// When it clears the arm stays open.
    pub fn set_fire(&mut self, active: bool, now: Instant) {
        self.advance(now);
        self.fire = active;
        if active {
            self.raise();
        } else if self.stop {
            self.motion = Motion::Still;
        }
    }

    /// Sets the presence loop. A vehicle arriving while the arm is closing reverses it.
    pub fn set_presence(&mut self, occupied: bool, now: Instant) {
        self.advance(now);
        self.presence = occupied;
        self.reverse_if_needed();
    }

    /// Sets the safety loop. A vehicle arriving while the arm is closing reverses it.
    pub fn set_safety(&mut self, occupied: bool, now: Instant) {
        self.advance(now);
        self.safety = occupied;
        self.reverse_if_needed();
    }

    fn raise(&mut self) {
        if self.opened < self.travel {
            self.motion = Motion::Raising;
        }
    }

    fn reverse_if_needed(&mut self) {
        if self.motion == Motion::Lowering && self.loop_occupied() {
            self.motion = Motion::Raising;
        }
    }

    fn loop_occupied(&self) -> bool {
        self.presence || self.safety
    }

    /// The arm's state as of the last `advance` (every setter advances first).
    pub fn state(&self) -> ArmState {
        match self.motion {
            Motion::Raising => ArmState::Opening,
            Motion::Lowering => ArmState::Closing,
            Motion::Still if self.opened.is_zero() => ArmState::Closed,
            Motion::Still if self.opened == self.travel => ArmState::Open,
            Motion::Still => ArmState::Stopped,
        }
    }

    /// The open-limit switch: the arm is fully up.
    pub fn open_limit(&self) -> bool {
        self.state() == ArmState::Open
    }

    /// The closed-limit switch: the arm is fully down.
    pub fn closed_limit(&self) -> bool {
        self.state() == ArmState::Closed
    }

    /// How far open the arm is, from 0.0 (closed) to 1.0 (open).
    pub fn opening_fraction(&self) -> f64 {
        self.opened.as_secs_f64() / self.travel.as_secs_f64()
    }

    /// Whether STOP is held.
    pub fn stop_held(&self) -> bool {
        self.stop
    }

    /// Whether the fire linkage is active.
    pub fn fire(&self) -> bool {
        self.fire
    }

    /// Whether the presence loop is occupied.
    pub fn presence(&self) -> bool {
        self.presence
    }

    /// Whether the safety loop is occupied.
    pub fn safety(&self) -> bool {
        self.safety
    }

    /// When the moving arm will reach its limit; `None` while it is still.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.motion {
            Motion::Still => None,
            Motion::Raising => Some(self.as_of + (self.travel - self.opened)),
            Motion::Lowering => Some(self.as_of + self.opened),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAVEL: Duration = Duration::from_millis(1000);
    const MS: Duration = Duration::from_millis(1);

    fn open_barrier(t0: Instant) -> Barrier {
        let mut barrier = Barrier::new(TRAVEL, t0);
        barrier.pulse_open(t0);
        barrier.advance(t0 + TRAVEL);
        assert_eq!(barrier.state(), ArmState::Open);
        barrier
    }

    #[test]
    fn an_open_pulse_raises_the_arm_to_the_open_limit_in_the_travel_time() {
        let t0 = Instant::now();
        let mut barrier = Barrier::new(TRAVEL, t0);
        assert!(barrier.closed_limit());
        barrier.pulse_open(t0);
        assert_eq!(barrier.next_deadline(), Some(t0 + TRAVEL));
        barrier.advance(t0 + TRAVEL - MS);
        assert_eq!(barrier.state(), ArmState::Opening);
        assert!(!barrier.open_limit() && !barrier.closed_limit());
        barrier.advance(t0 + TRAVEL);
        assert!(barrier.open_limit());
        assert_eq!(barrier.next_deadline(), None);
    }

    #[test]
    fn a_close_pulse_lowers_the_arm_when_the_loops_are_clear() {
        let t0 = Instant::now();
        let mut barrier = open_barrier(t0);
        let t1 = t0 + TRAVEL;
        barrier.pulse_close(t1);
        assert_eq!(barrier.state(), ArmState::Closing);
        barrier.advance(t1 + TRAVEL);
        assert!(barrier.closed_limit());
    }

    #[test]
    fn a_close_pulse_is_ignored_while_a_loop_is_occupied() {
        let t0 = Instant::now();
        for safety in [false, true] {
            let mut barrier = open_barrier(t0);
            let t1 = t0 + TRAVEL;
            if safety {
                barrier.set_safety(true, t1);
            } else {
                barrier.set_presence(true, t1);
            }
            barrier.pulse_close(t1);
            barrier.advance(t1 + 2 * TRAVEL);
            assert_eq!(barrier.state(), ArmState::Open);
        }
    }

    #[test]
    fn a_vehicle_arriving_on_a_loop_while_the_arm_closes_reverses_it() {
        let t0 = Instant::now();
        let mut barrier = open_barrier(t0);
        let t1 = t0 + TRAVEL;
        barrier.pulse_close(t1);
        // 400 ms down: 60 % open when the car arrives.
        barrier.set_presence(true, t1 + 400 * MS);
        assert_eq!(barrier.state(), ArmState::Opening);
        assert_eq!(barrier.next_deadline(), Some(t1 + 800 * MS));
        barrier.advance(t1 + 800 * MS);
        assert!(barrier.open_limit());
    }

    #[test]
    fn stop_freezes_the_arm_and_blocks_both_commands_until_released() {
        let t0 = Instant::now();
        let mut barrier = Barrier::new(TRAVEL, t0);
        barrier.pulse_open(t0);
        barrier.set_stop(true, t0 + 300 * MS);
        assert_eq!(barrier.state(), ArmState::Stopped);
        barrier.pulse_open(t0 + 400 * MS);
        barrier.pulse_close(t0 + 500 * MS);
        barrier.advance(t0 + 5 * TRAVEL);
        assert_eq!(barrier.state(), ArmState::Stopped);
        assert!((barrier.opening_fraction() - 0.3).abs() < 1e-9);
        barrier.set_stop(false, t0 + 5 * TRAVEL);
        assert_eq!(
            barrier.state(),
            ArmState::Stopped,
            "release alone does not move it"
        );
        barrier.pulse_close(t0 + 5 * TRAVEL);
        barrier.advance(t0 + 5 * TRAVEL + 300 * MS);
        assert!(barrier.closed_limit());
    }

    #[test]
    fn fire_forces_the_arm_open_even_with_stop_held_and_blocks_close() {
        let t0 = Instant::now();
        let mut barrier = Barrier::new(TRAVEL, t0);
        barrier.set_stop(true, t0);
        barrier.set_fire(true, t0);
        barrier.advance(t0 + TRAVEL);
        assert!(barrier.open_limit());
        barrier.set_stop(false, t0 + TRAVEL);
        barrier.pulse_close(t0 + TRAVEL);
        barrier.advance(t0 + 2 * TRAVEL);
        assert!(barrier.open_limit());
        barrier.set_fire(false, t0 + 2 * TRAVEL);
        assert!(
            barrier.open_limit(),
            "the arm stays up when the alarm clears"
        );
    }

    #[test]
    fn observing_late_gives_the_same_answer_as_stepping_on_time() {
        let t0 = Instant::now();
        let mut stepped = Barrier::new(TRAVEL, t0);
        let mut late = stepped.clone();
        stepped.pulse_open(t0);
        late.pulse_open(t0);
        for i in 1..=20 {
            stepped.advance(t0 + i * 100 * MS);
        }
        late.advance(t0 + 2000 * MS);
        assert_eq!(stepped.state(), late.state());
        assert_eq!(stepped.opening_fraction(), late.opening_fraction());
    }

    #[test]
    fn time_running_backwards_moves_nothing() {
        let t0 = Instant::now();
        let mut barrier = Barrier::new(TRAVEL, t0 + TRAVEL);
        barrier.pulse_open(t0 + TRAVEL);
        barrier.advance(t0);
        assert_eq!(barrier.opening_fraction(), 0.0);
        assert_eq!(barrier.state(), ArmState::Opening);
    }
}
