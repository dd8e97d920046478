//! The domain: plates, permits, schedules, blacklists — the types the gate decides from and the
//! central server stores and edits.
//!
//! What it is for: one vocabulary shared by the gate controller and the centre. Each type states its
//! own invariants (a [`Plate`] is always normalised and classified, a [`TimeWindow`] never holds a
//! minute past midnight, an [`Epc`] is never longer than 16 bytes).
//!
//! What it never does: IO, clock reads (every time-dependent method takes `now`), or serialisation —
//! these are not wire types (wire DTOs live at the boundary, beside the API and the sync protocol).
//! It holds no indexes either: the gate's lookup snapshot is [`crate::gate::index`].

mod ids;
pub mod lists;
pub mod permit;
pub mod plate;
pub mod plate_match;
pub mod reason;
pub mod tag;
pub mod text;
mod time;
pub mod vehicle;

pub use ids::{BlacklistId, BookingId, GateId, LaneId, LockId, PermitId, PersonId, VehicleId};
pub use lists::{
    AlarmLevel, BlacklistEntry, BlacklistSubject, BookingStatus, LockEntry, VisitorBooking,
};
pub use permit::{
    Direction, DirectionSet, GateRefusal, GateRight, GateRights, Holder, Permit, PermitStatus,
    PersonCategory, Schedule, ScheduleError, TimeWindow, Weekdays,
};
pub use plate::{Plate, PlateColour, PlateError, PlateIdentity, PlateKind};
pub use reason::ReasonCode;
pub use tag::{Epc, TagBytesError, Tid};
pub use time::UtcMinute;
pub use vehicle::{Credential, Vehicle};
