//! Identifiers of the domain's rows: small copyable newtypes so that a permit id can never be
//! passed where a vehicle id is expected.
//!
//! Ids are assigned by the centre; `u32` is ample for one campus (and keeps the gate's snapshot of a
//! million permits small). Gates and lanes are `u16`. This module never allocates ids.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_type!(
    /// A permit (exit pass, 出门证).
    PermitId(u32)
);
id_type!(
    /// A registered vehicle.
    VehicleId(u32)
);
id_type!(
    /// A person: a permit holder, a host, a blacklisted person.
    PersonId(u32)
);
id_type!(
    /// A gate (大门): one checkpoint with one or more lanes.
    GateId(u16)
);
id_type!(
    /// A lane of a gate: one barrier, one set of loops, one reader.
    LaneId(u16)
);
id_type!(
    /// A visitor booking (访客预约).
    BookingId(u32)
);
id_type!(
    /// A blacklist entry (黑名单).
    BlacklistId(u32)
);
id_type!(
    /// A lock-vehicle entry (锁车).
    LockId(u32)
);
