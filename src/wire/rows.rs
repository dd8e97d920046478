//! The data rows a gate decides from, in the text form both sides validate: the centre's
//! snapshot and changes send them, the gate's CSV import reads them, the gate's store keeps
//! them. [`Update`] is a batch of them applied all or nothing.
//!
//! Each row converts to its domain value with `to_domain`, which says what is wrong with a bad
//! row. This module never does IO and never decides.

use std::num::NonZeroU16;

use serde::{Deserialize, Serialize};

use crate::domain::text::{TextError, parse_category, parse_gate_rights, parse_schedule};
use crate::domain::{
    AlarmLevel, BlacklistEntry, BlacklistId, BlacklistSubject, BookingId, BookingStatus,
    Credential, Epc, GateRights, Holder, LockEntry, LockId, Permit, PermitId, PermitStatus,
    PersonId, Plate, PlateColour, PlateIdentity, Schedule, Tid, UtcMinute, Vehicle, VehicleId,
    VisitorBooking,
};

/// A permit as the rows of an update carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermitRecord {
    pub id: u32,
    /// staff, student, family, contractor, official, visitor.
    pub category: String,
    pub holder_id: u32,
    pub holder_name: String,
    #[serde(default)]
    pub department: String,
    /// active, suspended, revoked.
    pub status: String,
    #[serde(default)]
    pub status_reason: String,
    /// UTC minutes since the epoch, inclusive.
    pub valid_from: u32,
    /// UTC minutes since the epoch, exclusive.
    pub valid_until: u32,
    /// Gate rights in text form (`all`, `1;2:exit`).
    pub gates: String,
    /// Schedule in text form (empty = always).
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub single_use: bool,
    #[serde(default)]
    pub max_inside: Option<u16>,
    #[serde(default = "one")]
    pub version: u32,
}

fn one() -> u32 {
    1
}

impl PermitRecord {
    /// Converts to the domain, saying what is wrong.
    pub fn to_domain(&self) -> Result<Permit, TextError> {
        self.to_domain_with(parse_gate_rights, parse_schedule)
    }

    /// [`PermitRecord::to_domain`] with the parsers of the gate-rights and schedule texts
    /// given (a bulk load parses each distinct text once and hands out copies).
    pub fn to_domain_with(
        &self,
        gates: impl FnOnce(&str) -> Result<GateRights, TextError>,
        schedule: impl FnOnce(&str) -> Result<Schedule, TextError>,
    ) -> Result<Permit, TextError> {
        let status = match self.status.as_str() {
            "active" => PermitStatus::Active,
            "suspended" => PermitStatus::Suspended {
                reason: self.status_reason.as_str().into(),
            },
            "revoked" => PermitStatus::Revoked {
                reason: self.status_reason.as_str().into(),
            },
            other => {
                return Err(TextError(format!(
                    "status {other:?} is not active, suspended or revoked"
                )));
            }
        };
        if self.valid_until <= self.valid_from {
            return Err(TextError("valid_until must be after valid_from".into()));
        }
        Ok(Permit {
            id: PermitId(self.id),
            category: parse_category(&self.category)?,
            holder: Holder {
                person_id: PersonId(self.holder_id),
                name: self.holder_name.as_str().into(),
                department: self.department.as_str().into(),
            },
            status,
            valid_from: UtcMinute(self.valid_from),
            valid_until: UtcMinute(self.valid_until),
            gates: gates(&self.gates)?,
            schedule: schedule(&self.schedule)?,
            single_use: self.single_use,
            max_inside: self.max_inside.and_then(NonZeroU16::new),
            version: self.version,
        })
    }
}

/// A vehicle as the rows of an update carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleRecord {
    pub id: u32,
    pub plate: String,
    /// blue, yellow, green, yellow_green, white, black.
    pub colour: String,
    pub permit_ids: Vec<u32>,
}

/// A plate colour's code, saying what is wrong.
pub fn parse_colour(text: &str) -> Result<PlateColour, TextError> {
    PlateColour::from_code(text).ok_or_else(|| {
        TextError(format!(
            "plate colour {text:?} is not blue, yellow, green, yellow_green, white or black"
        ))
    })
}

/// A plate's text, saying what is wrong.
pub fn parse_plate(text: &str) -> Result<Plate, TextError> {
    Plate::parse(text).map_err(|e| TextError(format!("plate {text:?}: {e}")))
}

impl VehicleRecord {
    pub fn to_domain(&self) -> Result<Vehicle, TextError> {
        Ok(Vehicle {
            id: VehicleId(self.id),
            plate: PlateIdentity {
                plate: parse_plate(&self.plate)?,
                colour: parse_colour(&self.colour)?,
            },
            permit_ids: self.permit_ids.iter().copied().map(PermitId).collect(),
        })
    }
}

/// A tag credential as the rows of an update carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRecord {
    /// EPC in hex.
    pub epc: String,
    /// TID in hex, when the credential is bound to the tag's factory TID.
    #[serde(default)]
    pub tid: Option<String>,
    pub vehicle_id: u32,
}

impl CredentialRecord {
    pub fn to_domain(&self) -> Result<Credential, TextError> {
        Ok(Credential {
            epc: Epc::from_hex(&self.epc)
                .map_err(|e| TextError(format!("EPC {:?}: {e}", self.epc)))?,
            tid: self
                .tid
                .as_deref()
                .map(|t| Tid::from_hex(t).map_err(|e| TextError(format!("TID {t:?}: {e}"))))
                .transpose()?,
            vehicle_id: VehicleId(self.vehicle_id),
        })
    }
}

/// A blacklist entry as the rows of an update carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistRecord {
    pub id: u32,
    /// plate, tag or person.
    pub subject_kind: String,
    /// Plate text, EPC hex or person id.
    pub subject: String,
    #[serde(default)]
    pub colour: Option<String>,
    #[serde(default)]
    pub reason: String,
    pub valid_from: u32,
    pub valid_until: u32,
    /// silent, guard, urgent.
    #[serde(default = "guard")]
    pub alarm: String,
}

fn guard() -> String {
    "guard".into()
}

impl BlacklistRecord {
    pub fn to_domain(&self) -> Result<BlacklistEntry, TextError> {
        let subject = match self.subject_kind.as_str() {
            "plate" => BlacklistSubject::Plate {
                plate: parse_plate(&self.subject)?,
                colour: self.colour.as_deref().map(parse_colour).transpose()?,
            },
            "tag" => BlacklistSubject::Tag(
                Epc::from_hex(&self.subject).map_err(|e| TextError(format!("EPC: {e}")))?,
            ),
            "person" => BlacklistSubject::Person(PersonId(self.subject.parse().map_err(|_| {
                TextError(format!("person id {:?} is not a number", self.subject))
            })?)),
            other => {
                return Err(TextError(format!(
                    "subject_kind {other:?} is not plate, tag or person"
                )));
            }
        };
        let alarm = match self.alarm.as_str() {
            "silent" => AlarmLevel::Silent,
            "guard" => AlarmLevel::Guard,
            "urgent" => AlarmLevel::Urgent,
            other => {
                return Err(TextError(format!(
                    "alarm {other:?} is not silent, guard or urgent"
                )));
            }
        };
        Ok(BlacklistEntry {
            id: BlacklistId(self.id),
            subject,
            reason: self.reason.as_str().into(),
            from: UtcMinute(self.valid_from),
            until: UtcMinute(self.valid_until),
            alarm,
        })
    }
}

/// A lock-vehicle entry (must not leave) as the rows of an update carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRecord {
    pub id: u32,
    pub plate: String,
    #[serde(default)]
    pub colour: Option<String>,
    #[serde(default)]
    pub reason: String,
    pub valid_from: u32,
    pub valid_until: u32,
}

impl LockRecord {
    pub fn to_domain(&self) -> Result<LockEntry, TextError> {
        Ok(LockEntry {
            id: LockId(self.id),
            plate: parse_plate(&self.plate)?,
            colour: self.colour.as_deref().map(parse_colour).transpose()?,
            reason: self.reason.as_str().into(),
            from: UtcMinute(self.valid_from),
            until: UtcMinute(self.valid_until),
        })
    }
}

/// A visitor booking as the rows of an update carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingRecord {
    pub id: u32,
    pub plate: String,
    #[serde(default)]
    pub colour: Option<String>,
    #[serde(default)]
    pub visitor_name: String,
    #[serde(default)]
    pub host_id: u32,
    #[serde(default)]
    pub purpose: String,
    pub slot_from: u32,
    pub slot_until: u32,
    /// pending, approved, rejected, cancelled.
    pub status: String,
    /// The booking's single-use pass has been used to enter (somewhere on the campus).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_used_entry: bool,
    /// The booking's single-use pass has been used to leave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_used_exit: bool,
}

impl BookingRecord {
    pub fn to_domain(&self) -> Result<VisitorBooking, TextError> {
        let status = match self.status.as_str() {
            "pending" => BookingStatus::Pending,
            "approved" => BookingStatus::Approved,
            "rejected" => BookingStatus::Rejected,
            "cancelled" => BookingStatus::Cancelled,
            other => {
                return Err(TextError(format!(
                    "booking status {other:?} is not pending, approved, rejected or cancelled"
                )));
            }
        };
        Ok(VisitorBooking {
            id: BookingId(self.id),
            plate: parse_plate(&self.plate)?,
            colour: self.colour.as_deref().map(parse_colour).transpose()?,
            visitor_name: self.visitor_name.as_str().into(),
            slot_from: UtcMinute(self.slot_from),
            slot_until: UtcMinute(self.slot_until),
            status,
            host: PersonId(self.host_id),
            purpose: self.purpose.as_str().into(),
            pass_used_entry: self.pass_used_entry,
            pass_used_exit: self.pass_used_exit,
        })
    }
}

/// Where a vehicle was last seen passing any gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassageRecord {
    pub vehicle_id: u32,
    pub inside: bool,
    /// UTC milliseconds of the passage.
    pub since_ms: i64,
    pub gate_id: u16,
}

/// A batch of changes, applied all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Update {
    /// The data version the store has after this update.
    pub data_version: u64,
    /// Replace everything (a full snapshot) instead of merging.
    pub replace_all: bool,
    pub permits: Vec<PermitRecord>,
    pub delete_permits: Vec<u32>,
    pub vehicles: Vec<VehicleRecord>,
    pub delete_vehicles: Vec<u32>,
    pub credentials: Vec<CredentialRecord>,
    /// EPCs in hex.
    pub delete_credentials: Vec<String>,
    pub blacklist: Vec<BlacklistRecord>,
    pub delete_blacklist: Vec<u32>,
    pub locks: Vec<LockRecord>,
    pub delete_locks: Vec<u32>,
    pub bookings: Vec<BookingRecord>,
    pub delete_bookings: Vec<u32>,
}

/// Whether an update carries no rows.
pub fn update_is_empty(u: &Update) -> bool {
    !u.replace_all
        && u.permits.is_empty()
        && u.delete_permits.is_empty()
        && u.vehicles.is_empty()
        && u.delete_vehicles.is_empty()
        && u.credentials.is_empty()
        && u.delete_credentials.is_empty()
        && u.blacklist.is_empty()
        && u.delete_blacklist.is_empty()
        && u.locks.is_empty()
        && u.delete_locks.is_empty()
        && u.bookings.is_empty()
        && u.delete_bookings.is_empty()
}
