//! Registered vehicles and the tag credentials that identify them at a lane.
//!
//! Never validates plates itself (a [`PlateIdentity`] is already valid) and never reads tags.

use super::{Epc, PermitId, PlateIdentity, Tid, VehicleId};

/// A registered vehicle: its plate and colour, and the permits it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    /// Identity.
    pub id: VehicleId,
    /// Plate and colour.
    pub plate: PlateIdentity,
    /// Permits this vehicle holds (any one granting is enough).
    pub permit_ids: Box<[PermitId]>,
}

/// A UHF windscreen tag issued to a vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    /// The EPC the reader reports.
    pub epc: Epc,
    /// The factory TID the credential is bound to, when it was recorded at issue. A read that
    /// carries a different TID is a cloned tag.
    pub tid: Option<Tid>,
    /// The vehicle the tag is issued to.
    pub vehicle_id: VehicleId,
}
