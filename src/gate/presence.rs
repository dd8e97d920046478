//! Who is inside: the facts anti-passback, quotas and single-use passes need, supplied to
//! [`crate::gate::decision::decide`] by the runtime.
//!
//! [`PresenceView`] is the read side the decision uses; [`PresenceTable`] is a plain in-memory
//! implementation the runtime can keep (rebuilt from its journal at start) and that applies a
//! decision's [`Effects`] once the vehicle has actually passed. Never reads a clock, never persists.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::{BookingId, GateId, PermitId, VehicleId};

/// A presence change to record when the vehicle has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceEffect {
    /// The registered vehicle is now inside.
    VehicleInside {
        /// The vehicle.
        vehicle: VehicleId,
        /// The gate it entered by.
        gate: GateId,
    },
    /// The registered vehicle is now outside.
    VehicleOutside {
        /// The vehicle.
        vehicle: VehicleId,
    },
    /// The visitor's vehicle is now inside.
    VisitorInside {
        /// The booking.
        booking: BookingId,
        /// The gate it entered by.
        gate: GateId,
    },
    /// The visitor's vehicle has left (the visit is closed).
    VisitorOutside {
        /// The booking.
        booking: BookingId,
    },
}

/// What the runtime must record if — and only when — the granted vehicle actually passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Effects {
    /// Presence change.
    pub presence: Option<PresenceEffect>,
    /// A single-use permit to mark consumed.
    pub consume_single_use: Option<PermitId>,
}

/// Where a vehicle (or a visitor's booked vehicle) was last recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Never recorded passing a gate (e.g. since the tag was issued).
    Unknown,
    /// Recorded leaving.
    Outside {
        /// When it left.
        since: DateTime<Utc>,
    },
    /// Recorded entering.
    Inside {
        /// When it entered.
        since: DateTime<Utc>,
        /// Through which gate.
        gate: GateId,
    },
}

/// The runtime's record of presence and consumed passes, as the decision reads it.
pub trait PresenceView {
    /// Where the registered vehicle was last recorded.
    fn vehicle(&self, vehicle: VehicleId) -> Presence;
    /// Where the vehicle of a visitor booking was last recorded.
    fn visitor(&self, booking: BookingId) -> Presence;
    /// Whether a single-use permit has already been used.
    fn single_use_consumed(&self, permit: PermitId) -> bool;
}

/// An in-memory [`PresenceView`] that applies [`Effects`].
#[derive(Debug, Default, Clone)]
pub struct PresenceTable {
    vehicles: HashMap<VehicleId, Presence>,
    visitors: HashMap<BookingId, Presence>,
    consumed: HashSet<PermitId>,
}

impl PresenceTable {
    /// An empty table: every vehicle unknown, nothing consumed.
    pub fn new() -> PresenceTable {
        PresenceTable::default()
    }

    /// Sets a vehicle's presence directly (loading from the journal, or a guard's correction).
    pub fn set_vehicle(&mut self, vehicle: VehicleId, presence: Presence) {
        self.vehicles.insert(vehicle, presence);
    }

    /// Sets a visitor's presence directly.
    pub fn set_visitor(&mut self, booking: BookingId, presence: Presence) {
        self.visitors.insert(booking, presence);
    }

    /// Marks a single-use permit consumed.
    pub fn consume(&mut self, permit: PermitId) {
        self.consumed.insert(permit);
    }

    /// Records what a passage did, at `at` (call when the vehicle has actually passed).
    pub fn record(&mut self, effects: &Effects, at: DateTime<Utc>) {
        if let Some(p) = effects.consume_single_use {
            self.consume(p);
        }
        match effects.presence {
            None => {}
            Some(PresenceEffect::VehicleInside { vehicle, gate }) => {
                self.set_vehicle(vehicle, Presence::Inside { since: at, gate })
            }
            Some(PresenceEffect::VehicleOutside { vehicle }) => {
                self.set_vehicle(vehicle, Presence::Outside { since: at })
            }
            Some(PresenceEffect::VisitorInside { booking, gate }) => {
                self.set_visitor(booking, Presence::Inside { since: at, gate })
            }
            Some(PresenceEffect::VisitorOutside { booking }) => {
                self.set_visitor(booking, Presence::Outside { since: at })
            }
        }
    }
}

impl PresenceView for PresenceTable {
    fn vehicle(&self, vehicle: VehicleId) -> Presence {
        self.vehicles
            .get(&vehicle)
            .copied()
            .unwrap_or(Presence::Unknown)
    }

    fn visitor(&self, booking: BookingId) -> Presence {
        self.visitors
            .get(&booking)
            .copied()
            .unwrap_or(Presence::Unknown)
    }

    fn single_use_consumed(&self, permit: PermitId) -> bool {
        self.consumed.contains(&permit)
    }
}
