//! The gate's in-memory lookup snapshot: every permit, vehicle, tag credential and list row the
//! lane decides from, indexed for O(1) lookups by EPC, plate + colour, permit id, vehicle id and
//! person.
//!
//! What it is for: a full build ([`IndexBuild`]) makes an immutable [`Index`] tagged with a
//! `data_version` from two halves filled apart — the permits, and the vehicles with their tags
//! — so the gate's start reads and indexes each half on its own thread straight from the store
//! ([`crate::gate::store::Store::load_index`]); [`IndexBuilder::build`] is the same build from
//! plain `Vec`s of domain values (a synced snapshot, tests). [`Index::apply`] makes the next
//! snapshot from a change ([`IndexDelta`]) without rebuilding the whole. The runtime swaps
//! whole snapshots behind an `Arc`: a decision sees one snapshot, never half an update.
//!
//! How a change stays cheap: every large array (rows, link arrays, hash-table slots, text) is
//! stored in fixed-size chunks behind `Arc`s (`Chunked`). Cloning an index clones only the
//! chunk pointers (a few thousand for a million permits); writing a row copies just the chunk
//! it lives in (copy-on-write). So a revocation among a million permits copies a few pages,
//! and the old snapshot, still read by decisions in flight, is untouched. Rows that a change
//! leaves unreachable (a replaced vehicle's permit list, a deleted tag) stay in the arrays as
//! garbage until the next full build; [`Index::garbage`] counts them.
//!
//! What it never does: IO, clock reads, decisions (see [`crate::gate::decision`]) or edits to a
//! snapshot someone holds. A snapshot with an inconsistency (duplicate EPC, a vehicle pointing
//! at a permit that does not exist, …) is refused whole with a [`BuildError`], so the gate keeps
//! deciding from the previous good snapshot rather than from a silently repaired one; a delta
//! that would make one is refused the same way.
//!
//! Memory: a million permits must fit comfortably in a lane controller. Rows are compact (u32 ids,
//! interned departments, reasons, gate rights and schedules, chunked text, inline 16-byte plates
//! and EPCs) and the hash indexes are open-addressing tables of `u32` row numbers (4 bytes a
//! slot, load ≤ 3/4 after a build and before a table grows) whose keys live in the rows
//! themselves; ids hash in blocks of neighbouring slots (`KeyHasher`), so lookups by id in
//! id order walk the tables in order, and a full build lays each table down in one sorted
//! pass (`SlotTable::from_hashes`). Build time, start-up load and index size: `cargo bench --bench
//! gate_latency` (history: benches/README.md).
//!
//! Where things are: this module holds the snapshot ([`Index`]), its rows and its lookups;
//! `arena` the chunked storage and text; `table` the hash tables; `build` the full build;
//! `delta` the changes.

mod arena;
mod build;
mod delta;
#[cfg(test)]
pub(crate) mod synthetic;
mod table;

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU16;
use std::sync::Arc;

use crate::domain::{
    BlacklistEntry, BlacklistSubject, Epc, GateRights, LockEntry, PermitId, PermitStatus,
    PersonCategory, PersonId, PlateIdentity, Schedule, Tid, UtcMinute, VehicleId, VisitorBooking,
};
use arena::{Chunked, Text, TextArena, ValueInterner, intern_shared};
use table::{KeyHasher, SlotTable};

pub(crate) use arena::TextMap;
pub use build::{
    IndexBuild, IndexBuilder, PermitFields, PermitHalf, PermitTable, VehicleHalf, VehicleTable,
};
pub use delta::IndexDelta;

/// Why a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two permits share an id.
    #[error("permit {0} appears twice")]
    DuplicatePermit(PermitId),
    /// Two vehicles share an id.
    #[error("vehicle {0} appears twice")]
    DuplicateVehicle(VehicleId),
    /// Two vehicles share a plate and colour.
    #[error("plate {0} belongs to two vehicles")]
    DuplicatePlate(PlateIdentity),
    /// Two credentials share an EPC.
    #[error("tag {0} is issued twice")]
    DuplicateEpc(Epc),
    /// A vehicle holds a permit that is not in the snapshot.
    #[error("vehicle {vehicle} holds permit {permit}, which is not in the snapshot")]
    UnknownPermit {
        /// The vehicle.
        vehicle: VehicleId,
        /// The missing permit.
        permit: PermitId,
    },
    /// A credential is issued to a vehicle that is not in the snapshot.
    #[error("tag {epc} is issued to vehicle {vehicle}, which is not in the snapshot")]
    UnknownVehicle {
        /// The tag.
        epc: Epc,
        /// The missing vehicle.
        vehicle: VehicleId,
    },
    /// More rows of one kind than a `u32` row number can address, or more than 4 GiB of text.
    #[error("more than 4 billion rows of one kind, or 4 GiB of text")]
    TooManyRows,
}

/// Why [`Index::apply`] did not make the next snapshot. Either way the caller still has the
/// previous snapshot; it may build the next one whole from the store instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The result would be an inconsistent snapshot.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The delta names a key twice (written twice, or written and deleted), which only the
    /// store's order of statements settles.
    #[error("the change names {0} more than once")]
    Ambiguous(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum StatusKind {
    Active,
    Suspended,
    Revoked,
}

/// A permit as the snapshot stores it: what is its own inline (36 bytes), its holder's name by
/// reference, what it shares with other permits as one [`Profile`], and where its vehicles are
/// listed in `permit_vehicles`.
#[derive(Debug, Clone)]
struct PackedPermit {
    id: PermitId,
    version: u32,
    valid_from: UtcMinute,
    valid_until: UtcMinute,
    person: PersonId,
    name: Text,
    /// Row of `Shared::profiles`.
    profile: u32,
    vehicles_start: u32,
    vehicles_len: u16,
}

/// What a permit has in common with many others: category, department, status and reason,
/// gate rights, schedule, single use and quota. A site has a few hundred distinct ones, so a
/// permit row holds one `u32` for them instead of 21 bytes of fields (160 MB over ten
/// million permits; benches/README.md, gate_scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Profile {
    department: Text,
    /// Status reason; meaningless when `status` is `Active`.
    reason: Text,
    gates: u32,
    schedule: u32,
    max_inside: Option<NonZeroU16>,
    category: PersonCategory,
    status: StatusKind,
    single_use: bool,
}

/// A vehicle as the snapshot stores it; its permits are listed in `vehicle_permits`.
#[derive(Debug, Clone)]
struct PackedVehicle {
    id: VehicleId,
    plate: PlateIdentity,
    permits_start: u32,
    permits_len: u16,
}

/// A tag as the snapshot stores it: `vehicle` is the row of its vehicle.
#[derive(Debug, Clone)]
struct PackedCredential {
    epc: Epc,
    tid: Option<Tid>,
    vehicle: u32,
}

/// Ends a person's run appended by a change in `person_permits` (never a row number).
const RUN_END: u32 = u32::MAX;

/// The text, gate-rights, schedule and profile tables a permit row refers to.
#[derive(Debug, Clone)]
struct Shared {
    text: TextArena,
    gate_rights: Arc<ValueInterner<GateRights>>,
    schedules: Arc<ValueInterner<Schedule>>,
    profiles: Arc<ValueInterner<Profile>>,
    /// The profile interned last: neighbouring permits mostly share one, and a build then
    /// skips the hash lookup.
    last_profile: Option<(Profile, u32)>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            text: TextArena::default(),
            gate_rights: Arc::new(ValueInterner::new()),
            schedules: Arc::new(ValueInterner::new()),
            profiles: Arc::new(ValueInterner::new()),
            last_profile: None,
        }
    }

    /// A permit's row, its links to vehicles left empty.
    fn permit_row(&mut self, p: PermitFields<'_>) -> PackedPermit {
        let (status, reason) = match p.status {
            PermitStatus::Active => (StatusKind::Active, self.text.intern("")),
            PermitStatus::Suspended { reason } => (StatusKind::Suspended, self.text.intern(reason)),
            PermitStatus::Revoked { reason } => (StatusKind::Revoked, self.text.intern(reason)),
        };
        let profile = Profile {
            department: self.text.intern(p.department),
            reason,
            gates: intern_shared(&mut self.gate_rights, p.gates),
            schedule: intern_shared(&mut self.schedules, p.schedule),
            max_inside: p.max_inside,
            category: p.category,
            status,
            single_use: p.single_use,
        };
        let profile = match self.last_profile {
            Some((last, i)) if last == profile => i,
            _ => {
                let i = intern_shared(&mut self.profiles, &profile);
                self.last_profile = Some((profile, i));
                i
            }
        };
        PackedPermit {
            id: p.id,
            version: p.version,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            person: p.person,
            name: self.text.push(p.name),
            profile,
            vehicles_start: 0,
            vehicles_len: 0,
        }
    }

    /// Heap bytes of the shared tables that grow with the rows (the profiles; gate rights and
    /// schedules are few and small).
    fn profile_bytes(&self) -> usize {
        self.profiles.values.capacity() * std::mem::size_of::<Profile>() * 2
    }
}

/// The blacklist, lock list and bookings with their lookup maps: small, rebuilt whole when
/// one of them changes.
#[derive(Debug, Default)]
struct Lists {
    blacklist: Vec<BlacklistEntry>,
    black_plate: HashMap<crate::domain::Plate, Vec<u32>>,
    black_tag: HashMap<Epc, Vec<u32>>,
    black_person: HashMap<PersonId, Vec<u32>>,
    locks: Vec<LockEntry>,
    lock_by_plate: HashMap<crate::domain::Plate, Vec<u32>>,
    bookings: Vec<VisitorBooking>,
    booking_by_plate: HashMap<crate::domain::Plate, Vec<u32>>,
    /// Booking id → row (a pass names its booking; its status says whether it was revoked).
    booking_by_id: HashMap<crate::domain::BookingId, u32>,
}

impl Lists {
    fn new(
        blacklist: Vec<BlacklistEntry>,
        locks: Vec<LockEntry>,
        bookings: Vec<VisitorBooking>,
    ) -> Lists {
        let mut black_plate: HashMap<_, Vec<u32>> = HashMap::new();
        let mut black_tag: HashMap<Epc, Vec<u32>> = HashMap::new();
        let mut black_person: HashMap<PersonId, Vec<u32>> = HashMap::new();
        for (i, e) in blacklist.iter().enumerate() {
            let i = i as u32;
            match e.subject {
                BlacklistSubject::Plate { plate, .. } => {
                    black_plate.entry(plate).or_default().push(i)
                }
                BlacklistSubject::Tag(epc) => black_tag.entry(epc).or_default().push(i),
                BlacklistSubject::Person(p) => black_person.entry(p).or_default().push(i),
            }
        }
        let mut lock_by_plate: HashMap<_, Vec<u32>> = HashMap::new();
        for (i, l) in locks.iter().enumerate() {
            lock_by_plate.entry(l.plate).or_default().push(i as u32);
        }
        let mut booking_by_plate: HashMap<_, Vec<u32>> = HashMap::new();
        let mut booking_by_id = HashMap::with_capacity(bookings.len());
        for (i, b) in bookings.iter().enumerate() {
            booking_by_plate.entry(b.plate).or_default().push(i as u32);
            booking_by_id.insert(b.id, i as u32);
        }
        Lists {
            blacklist,
            black_plate,
            black_tag,
            black_person,
            locks,
            lock_by_plate,
            bookings,
            booking_by_plate,
            booking_by_id,
        }
    }
}

/// An immutable snapshot of everything a lane decides from. Build one with [`IndexBuilder`];
/// make the next one with [`Index::apply`]. Cloning is cheap (chunks are shared).
#[derive(Debug, Clone)]
pub struct Index {
    data_version: u64,
    hasher: KeyHasher,
    shared: Shared,
    permits: Chunked<PackedPermit>,
    vehicles: Chunked<PackedVehicle>,
    credentials: Chunked<PackedCredential>,
    vehicle_permits: Chunked<u32>,
    permit_vehicles: Chunked<u32>,
    /// Permit rows grouped by person: the builder's sorted runs, then runs appended by changes
    /// (each ended by [`RUN_END`]).
    person_permits: Chunked<u32>,
    by_permit: SlotTable,
    by_vehicle: SlotTable,
    by_plate: SlotTable,
    by_epc: SlotTable,
    /// Person → the position of their run in `person_permits`.
    by_person: SlotTable,
    lists: Arc<Lists>,
    live_permits: usize,
    live_vehicles: usize,
    live_credentials: usize,
    /// Rows and link entries left unreachable by changes since the build.
    garbage: usize,
}

/// A permit's status as seen through the index (reasons borrowed from the snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRef<'i> {
    /// In force.
    Active,
    /// Suspended, with the reason.
    Suspended(&'i str),
    /// Revoked, with the reason.
    Revoked(&'i str),
}

/// A permit in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct PermitView<'i> {
    index: &'i Index,
    row: &'i PackedPermit,
}

impl<'i> PermitView<'i> {
    /// Identity.
    pub fn id(&self) -> PermitId {
        self.row.id
    }
    /// Version from the centre.
    pub fn version(&self) -> u32 {
        self.row.version
    }
    fn profile(&self) -> &'i Profile {
        &self.index.shared.profiles.values[self.row.profile as usize]
    }
    /// Holder category.
    pub fn category(&self) -> PersonCategory {
        self.profile().category
    }
    /// Holder.
    pub fn person_id(&self) -> PersonId {
        self.row.person
    }
    /// Holder's name.
    pub fn holder_name(&self) -> &'i str {
        self.index.shared.text.get(self.row.name)
    }
    /// Holder's department.
    pub fn department(&self) -> &'i str {
        self.index.shared.text.get(self.profile().department)
    }
    /// Status with its reason.
    pub fn status(&self) -> StatusRef<'i> {
        let text = &self.index.shared.text;
        let profile = self.profile();
        match profile.status {
            StatusKind::Active => StatusRef::Active,
            StatusKind::Suspended => StatusRef::Suspended(text.get(profile.reason)),
            StatusKind::Revoked => StatusRef::Revoked(text.get(profile.reason)),
        }
    }
    /// First valid minute (inclusive).
    pub fn valid_from(&self) -> UtcMinute {
        self.row.valid_from
    }
    /// End of validity (exclusive).
    pub fn valid_until(&self) -> UtcMinute {
        self.row.valid_until
    }
    /// Gates and directions.
    pub fn gates(&self) -> &'i GateRights {
        &self.index.shared.gate_rights.values[self.profile().gates as usize]
    }
    /// Weekday/time windows.
    pub fn schedule(&self) -> &'i Schedule {
        &self.index.shared.schedules.values[self.profile().schedule as usize]
    }
    /// Whether it is a one-off pass.
    pub fn single_use(&self) -> bool {
        self.profile().single_use
    }
    /// How many of its vehicles may be inside at once.
    pub fn max_inside(&self) -> Option<NonZeroU16> {
        self.profile().max_inside
    }
    /// The vehicles holding this permit.
    pub fn vehicles(&self) -> impl ExactSizeIterator<Item = VehicleView<'i>> + use<'i> {
        let index = self.index;
        let s = self.row.vehicles_start as usize;
        (s..s + usize::from(self.row.vehicles_len)).map(move |i| VehicleView {
            index,
            row: index.vehicles.get(*index.permit_vehicles.get(i) as usize),
        })
    }
}

/// A vehicle in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct VehicleView<'i> {
    index: &'i Index,
    row: &'i PackedVehicle,
}

impl<'i> VehicleView<'i> {
    /// Identity.
    pub fn id(&self) -> VehicleId {
        self.row.id
    }
    /// Plate and colour.
    pub fn plate(&self) -> PlateIdentity {
        self.row.plate
    }
    /// The permits it holds, in the order the store gave them.
    pub fn permits(&self) -> impl ExactSizeIterator<Item = PermitView<'i>> + use<'i> {
        let index = self.index;
        let s = self.row.permits_start as usize;
        (s..s + usize::from(self.row.permits_len)).map(move |i| PermitView {
            index,
            row: index.permits.get(*index.vehicle_permits.get(i) as usize),
        })
    }
}

/// A tag credential in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct CredentialView<'i> {
    index: &'i Index,
    row: &'i PackedCredential,
}

impl<'i> CredentialView<'i> {
    /// The EPC.
    pub fn epc(&self) -> Epc {
        self.row.epc
    }
    /// The bound factory TID, if any.
    pub fn tid(&self) -> Option<Tid> {
        self.row.tid
    }
    /// The vehicle it is issued to.
    pub fn vehicle(&self) -> VehicleView<'i> {
        VehicleView {
            index: self.index,
            row: self.index.vehicles.get(self.row.vehicle as usize),
        }
    }
}

/// Approximate heap bytes of a snapshot, by part (see [`Index::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Permit, vehicle and credential rows plus their link arrays.
    pub rows: usize,
    /// The hash tables.
    pub tables: usize,
    /// Names and other text.
    pub text: usize,
}

impl MemoryUse {
    /// Sum of the parts.
    pub fn total(&self) -> usize {
        self.rows + self.tables + self.text
    }
}

impl Index {
    /// The version of the data this snapshot was built from.
    pub fn data_version(&self) -> u64 {
        self.data_version
    }

    /// Number of permits.
    pub fn permit_count(&self) -> usize {
        self.live_permits
    }

    /// Number of vehicles.
    pub fn vehicle_count(&self) -> usize {
        self.live_vehicles
    }

    /// Number of tag credentials.
    pub fn credential_count(&self) -> usize {
        self.live_credentials
    }

    /// Rows and link entries that changes since the last full build left unreachable; a full
    /// build (from the store) drops them.
    pub fn garbage(&self) -> usize {
        self.garbage
    }

    /// Whether so much of the snapshot is garbage that the next change should rebuild it whole:
    /// more garbage than live rows.
    pub fn wants_rebuild(&self) -> bool {
        self.garbage > 10_000 && self.garbage > self.live_permits + self.live_vehicles
    }

    fn find_permit(&self, id: PermitId) -> Option<u32> {
        self.by_permit.find(self.hasher.hash_one(id), |r| {
            self.permits.get(r as usize).id == id
        })
    }

    fn find_vehicle(&self, id: VehicleId) -> Option<u32> {
        self.by_vehicle.find(self.hasher.hash_one(id), |r| {
            self.vehicles.get(r as usize).id == id
        })
    }

    fn find_epc(&self, epc: &Epc) -> Option<u32> {
        self.by_epc.find(self.hasher.hash_one(epc), |r| {
            self.credentials.get(r as usize).epc == *epc
        })
    }

    /// The permit rows of `person`'s run.
    fn person_rows(&self, person: PersonId) -> impl Iterator<Item = u32> + use<'_> {
        let start = self.by_person.find(self.hasher.hash_one(person), |pos| {
            self.person_at(pos as usize) == Some(person)
        });
        let (from, to) = match start {
            Some(s) => (s as usize, self.person_permits.len()),
            None => (0, 0),
        };
        (from..to)
            .map(move |i| *self.person_permits.get(i))
            .take_while(move |&r| r != RUN_END && self.permits.get(r as usize).person == person)
    }

    /// The person whose run starts at `pos`.
    fn person_at(&self, pos: usize) -> Option<PersonId> {
        match *self.person_permits.get(pos) {
            RUN_END => None,
            r => Some(self.permits.get(r as usize).person),
        }
    }

    /// The credential whose EPC is `epc`.
    pub fn credential(&self, epc: &Epc) -> Option<CredentialView<'_>> {
        let r = self.find_epc(epc)?;
        Some(CredentialView {
            index: self,
            row: self.credentials.get(r as usize),
        })
    }

    /// The vehicle with this plate and colour.
    pub fn vehicle_by_plate(&self, plate: PlateIdentity) -> Option<VehicleView<'_>> {
        let r = self.by_plate.find(self.hasher.hash_one(plate), |r| {
            self.vehicles.get(r as usize).plate == plate
        })?;
        Some(VehicleView {
            index: self,
            row: self.vehicles.get(r as usize),
        })
    }

    /// The vehicle with this id.
    pub fn vehicle(&self, id: VehicleId) -> Option<VehicleView<'_>> {
        let r = self.find_vehicle(id)?;
        Some(VehicleView {
            index: self,
            row: self.vehicles.get(r as usize),
        })
    }

    /// The permit with this id.
    pub fn permit(&self, id: PermitId) -> Option<PermitView<'_>> {
        let r = self.find_permit(id)?;
        Some(PermitView {
            index: self,
            row: self.permits.get(r as usize),
        })
    }

    /// The permits held by `person`.
    pub fn permits_of_person(
        &self,
        person: PersonId,
    ) -> impl Iterator<Item = PermitView<'_>> + use<'_> {
        self.person_rows(person).map(move |r| PermitView {
            index: self,
            row: self.permits.get(r as usize),
        })
    }

    /// Blacklist entries about `plate` (any colour entry, or one naming its colour) in force at `now`.
    pub fn blacklist_for_plate(
        &self,
        plate: PlateIdentity,
        now: UtcMinute,
    ) -> impl Iterator<Item = &BlacklistEntry> + use<'_> {
        self.list_hits(&self.lists.black_plate, &plate.plate, now)
            .filter(move |e| match e.subject {
                BlacklistSubject::Plate { colour, .. } => colour.is_none_or(|c| c == plate.colour),
                _ => false,
            })
    }

    /// Blacklist entries about the tag `epc` in force at `now`.
    pub fn blacklist_for_tag(
        &self,
        epc: &Epc,
        now: UtcMinute,
    ) -> impl Iterator<Item = &BlacklistEntry> + use<'_> {
        self.list_hits(&self.lists.black_tag, epc, now)
    }

    /// Blacklist entries about `person` in force at `now`.
    pub fn blacklist_for_person(
        &self,
        person: PersonId,
        now: UtcMinute,
    ) -> impl Iterator<Item = &BlacklistEntry> + use<'_> {
        self.list_hits(&self.lists.black_person, &person, now)
    }

    fn list_hits<'a, K: Hash + Eq>(
        &'a self,
        map: &'a HashMap<K, Vec<u32>>,
        key: &K,
        now: UtcMinute,
    ) -> impl Iterator<Item = &'a BlacklistEntry> + use<'a, K> {
        map.get(key)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(move |&i| &self.lists.blacklist[i as usize])
            .filter(move |e| now.within(e.from, e.until))
    }

    /// Lock entries on `plate` in force at `now`.
    pub fn locks_for(
        &self,
        plate: PlateIdentity,
        now: UtcMinute,
    ) -> impl Iterator<Item = &LockEntry> + use<'_> {
        self.lists
            .lock_by_plate
            .get(&plate.plate)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(move |&i| &self.lists.locks[i as usize])
            .filter(move |l| l.matches(plate) && now.within(l.from, l.until))
    }

    /// Visitor bookings for `plate`, in any status and slot.
    pub fn bookings_for(
        &self,
        plate: PlateIdentity,
    ) -> impl Iterator<Item = &VisitorBooking> + use<'_> {
        self.lists
            .booking_by_plate
            .get(&plate.plate)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(move |&i| &self.lists.bookings[i as usize])
            .filter(move |b| b.matches(plate))
    }

    /// The visitor booking with this id, in any status (cancelled and rejected ones are kept:
    /// they revoke their passes).
    pub fn booking(&self, id: crate::domain::BookingId) -> Option<&VisitorBooking> {
        self.lists
            .booking_by_id
            .get(&id)
            .map(|&i| &self.lists.bookings[i as usize])
    }

    /// Approximate heap use of the large parts (rows, tables, text); the small lists are left out.
    pub fn memory(&self) -> MemoryUse {
        use std::mem::size_of;
        MemoryUse {
            rows: self.permits.len() * size_of::<PackedPermit>()
                + self.vehicles.len() * size_of::<PackedVehicle>()
                + self.credentials.len() * size_of::<PackedCredential>()
                + (self.vehicle_permits.len()
                    + self.permit_vehicles.len()
                    + self.person_permits.len())
                    * 4
                + self.shared.profile_bytes(),
            tables: self.by_permit.bytes()
                + self.by_vehicle.bytes()
                + self.by_plate.bytes()
                + self.by_epc.bytes()
                + self.by_person.bytes(),
            text: self.shared.text.bytes(),
        }
    }
}
