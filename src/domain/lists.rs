//! The lists a gate consults beside permits: the blacklist (must not enter), the lock list
//! (must not leave) and visitor bookings (may enter in a slot).
//!
//! Plain rows with validity windows; this module never decides (see [`crate::gate::decision`]).

use super::{
    BlacklistId, BookingId, Epc, LockId, PersonId, Plate, PlateColour, PlateIdentity, UtcMinute,
};

/// What a blacklist entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlacklistSubject {
    /// A plate; `colour: None` matches every colour (police hot lists often give no colour).
    Plate {
        /// The plate.
        plate: Plate,
        /// Its colour, if known.
        colour: Option<PlateColour>,
    },
    /// A tag by EPC (a stolen or lost tag).
    Tag(Epc),
    /// A person: every vehicle whose permit they hold.
    Person(PersonId),
}

/// How loudly a blacklist hit is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlarmLevel {
    /// Journalled and shown in the lane view only.
    Silent,
    /// The booth's guard is alerted.
    Guard,
    /// The guard and the security office are alerted at once (high-risk person or vehicle).
    Urgent,
}

/// A blacklist (黑名单) entry: the subject must not pass while the entry is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlacklistEntry {
    /// Identity.
    pub id: BlacklistId,
    /// Plate, tag or person.
    pub subject: BlacklistSubject,
    /// Why, as entered by the security office.
    pub reason: Box<str>,
    /// In force from (inclusive).
    pub from: UtcMinute,
    /// In force until (exclusive); [`UtcMinute::MAX`] for no end.
    pub until: UtcMinute,
    /// How loudly a hit is raised.
    pub alarm: AlarmLevel,
}

/// A lock-vehicle (锁车) entry: the vehicle must not leave while it is in force. Entry is not
/// affected (that is the blacklist's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockEntry {
    /// Identity.
    pub id: LockId,
    /// The plate; `colour: None` locks every colour of it.
    pub plate: Plate,
    /// Its colour, if known.
    pub colour: Option<PlateColour>,
    /// Why, as entered by the security office.
    pub reason: Box<str>,
    /// In force from (inclusive).
    pub from: UtcMinute,
    /// In force until (exclusive); [`UtcMinute::MAX`] for no end.
    pub until: UtcMinute,
}

impl LockEntry {
    /// Whether the entry locks `vehicle`.
    pub fn matches(&self, vehicle: PlateIdentity) -> bool {
        self.plate == vehicle.plate && self.colour.is_none_or(|c| c == vehicle.colour)
    }
}

/// Where a booking is in its approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingStatus {
    /// Waiting for the department (or security office).
    Pending,
    /// Approved: the only status that opens a gate.
    Approved,
    /// Refused by an approver.
    Rejected,
    /// Withdrawn by the host.
    Cancelled,
}

/// A visitor booking (访客预约): the plate may enter during the slot once approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorBooking {
    /// Identity.
    pub id: BookingId,
    /// The visitor's plate.
    pub plate: Plate,
    /// Its colour when the host gave it; `None` matches every colour.
    pub colour: Option<PlateColour>,
    /// The visitor's name as shown to the guard.
    pub visitor_name: Box<str>,
    /// The slot's first minute (inclusive).
    pub slot_from: UtcMinute,
    /// The slot's end (exclusive). Entry is refused after it; leaving is not (an overstay is flagged).
    pub slot_until: UtcMinute,
    /// Approval status.
    pub status: BookingStatus,
    /// The host who booked the visit.
    pub host: PersonId,
    /// Purpose of the visit, as the host wrote it.
    pub purpose: Box<str>,
    /// The booking's single-use pass has been used to enter, somewhere on the campus (as the
    /// centre last said).
    pub pass_used_entry: bool,
    /// The booking's single-use pass has been used to leave.
    pub pass_used_exit: bool,
}

impl VisitorBooking {
    /// Whether the centre says the booking's single-use pass was used in `direction`.
    pub fn pass_used(&self, direction: super::Direction) -> bool {
        match direction {
            super::Direction::Entry => self.pass_used_entry,
            super::Direction::Exit => self.pass_used_exit,
        }
    }

    /// Whether the booking is for `vehicle`.
    pub fn matches(&self, vehicle: PlateIdentity) -> bool {
        self.plate == vehicle.plate && self.colour.is_none_or(|c| c == vehicle.colour)
    }
}
