//! Changes to a snapshot: [`IndexDelta`] and [`Index::apply`], which makes the next snapshot
//! from the current one without rebuilding what the change does not touch. One step per
//! table, in an order that keeps every table's keys matching its rows while entries move.
//! It never changes the snapshot it starts from (decisions in flight keep reading it).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use super::table::KeyHasher;
use super::{BuildError, DeltaError, Index, Lists, PackedCredential, PackedVehicle, RUN_END};
use crate::domain::{
    BlacklistEntry, BlacklistId, BookingId, Credential, Epc, LockEntry, LockId, Permit, PermitId,
    PersonId, Vehicle, VehicleId, VisitorBooking,
};

#[cfg(test)]
mod tests;

/// A change to a snapshot, in domain values: rows to add or replace (permits, vehicles and list
/// entries by id, credentials by EPC) and keys to delete. It means what the gate store's
/// `Update` means: a deleted vehicle takes its tags with it, a deleted permit is struck from
/// the vehicles that held it.
#[derive(Debug, Clone, Default)]
pub struct IndexDelta {
    /// The data version of the snapshot after the change.
    pub data_version: u64,
    pub permits: Vec<Permit>,
    pub delete_permits: Vec<PermitId>,
    pub vehicles: Vec<Vehicle>,
    pub delete_vehicles: Vec<VehicleId>,
    pub credentials: Vec<Credential>,
    pub delete_credentials: Vec<Epc>,
    pub blacklist: Vec<BlacklistEntry>,
    pub delete_blacklist: Vec<BlacklistId>,
    pub locks: Vec<LockEntry>,
    pub delete_locks: Vec<LockId>,
    pub bookings: Vec<VisitorBooking>,
    pub delete_bookings: Vec<BookingId>,
}

/// Refuses a delta that names one key twice.
fn once<K: Hash + Eq + std::fmt::Display>(
    what: &str,
    keys: impl Iterator<Item = K>,
) -> Result<(), DeltaError> {
    let mut seen = HashSet::new();
    for k in keys {
        if seen.contains(&k) {
            return Err(DeltaError::Ambiguous(format!("{what} {k}")));
        }
        seen.insert(k);
    }
    Ok(())
}

impl IndexDelta {
    /// Refuses a delta that names a key twice (written twice, or written and deleted).
    fn names_each_key_once(&self) -> Result<(), DeltaError> {
        once(
            "permit",
            self.permits
                .iter()
                .map(|p| p.id)
                .chain(self.delete_permits.iter().copied()),
        )?;
        once(
            "vehicle",
            self.vehicles
                .iter()
                .map(|v| v.id)
                .chain(self.delete_vehicles.iter().copied()),
        )?;
        once(
            "tag",
            self.credentials
                .iter()
                .map(|c| c.epc)
                .chain(self.delete_credentials.iter().copied()),
        )?;
        once(
            "blacklist entry",
            self.blacklist
                .iter()
                .map(|b| b.id)
                .chain(self.delete_blacklist.iter().copied()),
        )?;
        once(
            "lock entry",
            self.locks
                .iter()
                .map(|l| l.id)
                .chain(self.delete_locks.iter().copied()),
        )?;
        once(
            "booking",
            self.bookings
                .iter()
                .map(|b| b.id)
                .chain(self.delete_bookings.iter().copied()),
        )
    }
}

impl Index {
    /// The next snapshot: this one with `delta` applied, without rebuilding what the delta does
    /// not touch. `self` is unchanged (decisions in flight keep reading it); the result shares
    /// every chunk the delta did not write. The cost is proportional to the delta (plus a scan
    /// of the tags when vehicles are deleted), not to the snapshot.
    ///
    /// Refused (and nothing is made) when the result would be inconsistent — the same
    /// [`BuildError`]s a full build gives — or when the delta names a key twice.
    pub fn apply(&self, delta: IndexDelta) -> Result<Index, DeltaError> {
        delta.names_each_key_once()?;
        if self.permits.len() + delta.permits.len() >= u32::MAX as usize - 1
            || self.vehicles.len() + delta.vehicles.len() >= u32::MAX as usize - 1
            || self.credentials.len() + delta.credentials.len() >= u32::MAX as usize - 1
        {
            return Err(BuildError::TooManyRows.into());
        }
        let IndexDelta {
            data_version,
            permits,
            delete_permits,
            vehicles,
            delete_vehicles,
            credentials,
            delete_credentials,
            blacklist,
            delete_blacklist,
            locks,
            delete_locks,
            bookings,
            delete_bookings,
        } = delta;

        let mut ix = self.clone();
        ix.data_version = data_version;
        let hasher = self.hasher.clone();

        // Read before any row changes, so that every table's keys still match its rows while
        // entries are removed.
        let (persons, old_runs) =
            unlink_person_runs(self, &mut ix, &hasher, &permits, &delete_permits);
        let deleted_vehicles = unlink_plates(self, &mut ix, &hasher, &vehicles, delete_vehicles);

        let (struck, joined) = write_permits(&mut ix, &hasher, permits, &delete_permits, &persons);
        let (relist, written) =
            write_vehicles(self, &mut ix, &hasher, vehicles, &deleted_vehicles, struck)?;
        write_credentials(
            &mut ix,
            &hasher,
            credentials,
            &delete_credentials,
            &deleted_vehicles,
        )?;
        relink_permit_vehicles(&mut ix, &written, relist)?;
        append_person_runs(&mut ix, &hasher, persons, &old_runs, &joined);
        write_lists(
            self,
            &mut ix,
            (blacklist, delete_blacklist),
            (locks, delete_locks),
            (bookings, delete_bookings),
        );
        if ix.shared.text.overflowed() {
            return Err(BuildError::TooManyRows.into());
        }
        Ok(ix)
    }
}

/// Whether permit row `r` is still the row of its id (not deleted, not replaced).
fn permit_alive(ix: &Index, r: u32) -> bool {
    ix.find_permit(ix.permits.get(r as usize).id) == Some(r)
}

/// Step 1, the person table: finds whose permit runs change, remembers their runs as they are
/// in `old`, and takes those runs out of the person table (they are appended anew in step 6).
fn unlink_person_runs(
    old: &Index,
    ix: &mut Index,
    hasher: &KeyHasher,
    permits: &[Permit],
    delete_permits: &[PermitId],
) -> (HashSet<PersonId>, HashMap<PersonId, Vec<u32>>) {
    let mut persons: HashSet<PersonId> = HashSet::new();
    for id in delete_permits {
        if let Some(p) = old.permit(*id) {
            persons.insert(p.person_id());
        }
    }
    for p in permits {
        match old.permit(p.id) {
            Some(old) if old.person_id() == p.holder.person_id => {}
            Some(old) => {
                persons.insert(old.person_id());
                persons.insert(p.holder.person_id);
            }
            None => {
                persons.insert(p.holder.person_id);
            }
        }
    }
    let old_runs: HashMap<PersonId, Vec<u32>> = persons
        .iter()
        .map(|&p| (p, old.person_rows(p).collect()))
        .collect();
    for &person in &persons {
        let removed = ix.by_person.remove(
            hasher.hash_one(person),
            |pos| old.person_at(pos as usize) == Some(person),
            |pos| {
                old.person_at(pos as usize)
                    .map_or(0, |p| hasher.hash_one(p))
            },
        );
        if removed.is_some() {
            ix.garbage += old_runs[&person].len();
        }
    }
    (persons, old_runs)
}

/// Step 1, the plate table: vehicles that are deleted or change plate leave it now (written
/// ones return in step 3). Returns the rows of the vehicles the delta deletes.
fn unlink_plates(
    old: &Index,
    ix: &mut Index,
    hasher: &KeyHasher,
    vehicles: &[Vehicle],
    delete_vehicles: Vec<VehicleId>,
) -> HashSet<u32> {
    let delete_vehicles: HashSet<VehicleId> = delete_vehicles.into_iter().collect();
    let mut deleted_vehicles: HashSet<u32> = HashSet::new();
    for id in &delete_vehicles {
        if let Some(v) = old.find_vehicle(*id) {
            deleted_vehicles.insert(v);
        }
    }
    for v in vehicles {
        if let Some(r) = old.find_vehicle(v.id)
            && old.vehicles.get(r as usize).plate != v.plate
        {
            deleted_vehicles.insert(r); // leaves the plate table only; see below
        }
    }
    for &r in &deleted_vehicles {
        let plate = old.vehicles.get(r as usize).plate;
        ix.by_plate.remove(
            hasher.hash_one(plate),
            |x| x == r,
            |x| hasher.hash_one(old.vehicles.get(x as usize).plate),
        );
    }
    deleted_vehicles.retain(|&r| delete_vehicles.contains(&old.vehicles.get(r as usize).id));
    deleted_vehicles
}

/// Step 2, permits: deleted ones leave (and are struck from their vehicles), others are
/// written in place or appended. Returns the vehicle rows that held a deleted permit, and the
/// permit rows that join the runs of `persons`.
fn write_permits(
    ix: &mut Index,
    hasher: &KeyHasher,
    permits: Vec<Permit>,
    delete_permits: &[PermitId],
    persons: &HashSet<PersonId>,
) -> (HashSet<u32>, Vec<(PersonId, u32)>) {
    let mut struck: HashSet<u32> = HashSet::new();
    for id in delete_permits {
        let Some(r) = ix.by_permit.remove(
            hasher.hash_one(id),
            |r| ix.permits.get(r as usize).id == *id,
            |r| hasher.hash_one(ix.permits.get(r as usize).id),
        ) else {
            continue;
        };
        ix.live_permits -= 1;
        ix.garbage += 1;
        let row = ix.permits.get(r as usize);
        let s = row.vehicles_start as usize;
        for i in s..s + usize::from(row.vehicles_len) {
            struck.insert(*ix.permit_vehicles.get(i));
        }
    }
    let mut joined: Vec<(PersonId, u32)> = Vec::new();
    for p in permits {
        let person = p.holder.person_id;
        let mut row = ix.shared.permit_row((&p).into());
        match ix.find_permit(row.id) {
            Some(r) => {
                let slot = ix.permits.get_mut(r as usize);
                row.vehicles_start = slot.vehicles_start;
                row.vehicles_len = slot.vehicles_len;
                *slot = row;
                if persons.contains(&person) {
                    joined.push((person, r));
                }
            }
            None => {
                let id = row.id;
                let r = ix.permits.push(row) as u32;
                ix.by_permit
                    .reserve_one(|x| hasher.hash_one(ix.permits.get(x as usize).id));
                let _ = ix.by_permit.insert(hasher.hash_one(id), r, |_| false);
                ix.live_permits += 1;
                joined.push((person, r));
            }
        }
    }
    (struck, joined)
}

/// Step 3, vehicles: deleted ones leave (with their tags); written ones get their permit list
/// appended when it changed; plates go back into the plate table; vehicles that held a deleted
/// permit (and were not written) lose it. Returns the permit rows whose vehicles must be listed
/// again, and the vehicle rows written.
fn write_vehicles(
    old: &Index,
    ix: &mut Index,
    hasher: &KeyHasher,
    vehicles: Vec<Vehicle>,
    deleted_vehicles: &HashSet<u32>,
    mut struck: HashSet<u32>,
) -> Result<(HashSet<u32>, Vec<u32>), DeltaError> {
    let mut relist: HashSet<u32> = HashSet::new();
    for &v in deleted_vehicles {
        let id = old.vehicles.get(v as usize).id;
        ix.by_vehicle.remove(
            hasher.hash_one(id),
            |x| x == v,
            |x| hasher.hash_one(ix.vehicles.get(x as usize).id),
        );
        ix.live_vehicles -= 1;
        ix.garbage += 1;
        let row = ix.vehicles.get(v as usize);
        let s = row.permits_start as usize;
        for i in s..s + usize::from(row.permits_len) {
            relist.insert(*ix.vehicle_permits.get(i));
        }
    }
    let mut plates: Vec<u32> = Vec::new();
    let mut written: Vec<u32> = Vec::new();
    for v in vehicles {
        let mut rows = Vec::with_capacity(v.permit_ids.len());
        for pid in v.permit_ids.iter() {
            rows.push(ix.find_permit(*pid).ok_or(BuildError::UnknownPermit {
                vehicle: v.id,
                permit: *pid,
            })?);
        }
        let len = u16::try_from(rows.len()).map_err(|_| BuildError::TooManyRows)?;
        match ix.find_vehicle(v.id) {
            Some(r) => {
                let old = ix.vehicles.get(r as usize).clone();
                let s = old.permits_start as usize;
                let old_rows: Vec<u32> = (s..s + usize::from(old.permits_len))
                    .map(|i| *ix.vehicle_permits.get(i))
                    .collect();
                let mut start = old.permits_start;
                if old_rows != rows {
                    relist.extend(old_rows.iter().copied().chain(rows.iter().copied()));
                    start = ix.vehicle_permits.len() as u32;
                    for &p in &rows {
                        ix.vehicle_permits.push(p);
                    }
                    ix.garbage += old_rows.len();
                }
                let slot = ix.vehicles.get_mut(r as usize);
                slot.permits_start = start;
                slot.permits_len = len;
                if old.plate != v.plate {
                    slot.plate = v.plate;
                    plates.push(r);
                }
                struck.remove(&r);
                written.push(r);
            }
            None => {
                let start = ix.vehicle_permits.len() as u32;
                for &p in &rows {
                    ix.vehicle_permits.push(p);
                }
                let r = ix.vehicles.push(PackedVehicle {
                    id: v.id,
                    plate: v.plate,
                    permits_start: start,
                    permits_len: len,
                }) as u32;
                ix.by_vehicle
                    .reserve_one(|x| hasher.hash_one(ix.vehicles.get(x as usize).id));
                let _ = ix.by_vehicle.insert(hasher.hash_one(v.id), r, |_| false);
                ix.live_vehicles += 1;
                relist.extend(rows.iter().copied());
                plates.push(r);
                written.push(r);
            }
        }
    }
    for r in plates {
        let plate = ix.vehicles.get(r as usize).plate;
        ix.by_plate
            .reserve_one(|x| hasher.hash_one(ix.vehicles.get(x as usize).plate));
        ix.by_plate
            .insert(hasher.hash_one(plate), r, |x| {
                ix.vehicles.get(x as usize).plate == plate
            })
            .map_err(|_| BuildError::DuplicatePlate(plate))?;
    }
    // Vehicles that held a deleted permit (and were not written) lose it.
    for v in struck {
        if deleted_vehicles.contains(&v) {
            continue;
        }
        let row = ix.vehicles.get(v as usize).clone();
        let s = row.permits_start as usize;
        let old: Vec<u32> = (s..s + usize::from(row.permits_len))
            .map(|i| *ix.vehicle_permits.get(i))
            .collect();
        let kept: Vec<u32> = old
            .iter()
            .copied()
            .filter(|&p| permit_alive(ix, p))
            .collect();
        let start = ix.vehicle_permits.len() as u32;
        for &p in &kept {
            ix.vehicle_permits.push(p);
        }
        ix.garbage += old.len();
        let slot = ix.vehicles.get_mut(v as usize);
        slot.permits_start = start;
        slot.permits_len = kept.len() as u16;
    }
    Ok((relist, written))
}

/// Step 4, tags: deleted ones and those of deleted vehicles leave; written ones replace the
/// row of their EPC or are appended.
fn write_credentials(
    ix: &mut Index,
    hasher: &KeyHasher,
    credentials: Vec<Credential>,
    delete_credentials: &[Epc],
    deleted_vehicles: &HashSet<u32>,
) -> Result<(), DeltaError> {
    let mut gone: Vec<u32> = delete_credentials
        .iter()
        .filter_map(|epc| ix.find_epc(epc))
        .collect();
    if !deleted_vehicles.is_empty() {
        gone.extend(
            ix.credentials
                .iter()
                .enumerate()
                .filter(|(r, c)| {
                    deleted_vehicles.contains(&c.vehicle) && ix.find_epc(&c.epc) == Some(*r as u32)
                })
                .map(|(r, _)| r as u32),
        );
    }
    gone.sort_unstable();
    gone.dedup();
    for r in gone {
        let epc = ix.credentials.get(r as usize).epc;
        let removed = ix.by_epc.remove(
            hasher.hash_one(epc),
            |x| x == r,
            |x| hasher.hash_one(ix.credentials.get(x as usize).epc),
        );
        if removed.is_some() {
            ix.live_credentials -= 1;
            ix.garbage += 1;
        }
    }
    for c in credentials {
        let vehicle = ix
            .find_vehicle(c.vehicle_id)
            .ok_or(BuildError::UnknownVehicle {
                epc: c.epc,
                vehicle: c.vehicle_id,
            })?;
        let row = PackedCredential {
            epc: c.epc,
            tid: c.tid,
            vehicle,
        };
        match ix.find_epc(&c.epc) {
            Some(r) => *ix.credentials.get_mut(r as usize) = row,
            None => {
                let r = ix.credentials.push(row) as u32;
                ix.by_epc
                    .reserve_one(|x| hasher.hash_one(ix.credentials.get(x as usize).epc));
                let _ = ix.by_epc.insert(hasher.hash_one(c.epc), r, |_| false);
                ix.live_credentials += 1;
            }
        }
    }
    Ok(())
}

/// Step 5, permit → vehicles, for every permit whose holders changed.
fn relink_permit_vehicles(
    ix: &mut Index,
    written: &[u32],
    relist: HashSet<u32>,
) -> Result<(), DeltaError> {
    let vehicle_alive =
        |ix: &Index, v: u32| ix.find_vehicle(ix.vehicles.get(v as usize).id) == Some(v);
    let holds = |ix: &Index, v: u32, p: u32| {
        let row = ix.vehicles.get(v as usize);
        let s = row.permits_start as usize;
        (s..s + usize::from(row.permits_len)).any(|i| *ix.vehicle_permits.get(i) == p)
    };
    let mut newly: HashMap<u32, Vec<u32>> = HashMap::new();
    for &v in written {
        let row = ix.vehicles.get(v as usize);
        let s = row.permits_start as usize;
        for i in s..s + usize::from(row.permits_len) {
            let p = *ix.vehicle_permits.get(i);
            if relist.contains(&p) {
                newly.entry(p).or_default().push(v);
            }
        }
    }
    for p in relist {
        if !permit_alive(ix, p) {
            continue;
        }
        let row = ix.permits.get(p as usize);
        let s = row.vehicles_start as usize;
        let old: Vec<u32> = (s..s + usize::from(row.vehicles_len))
            .map(|i| *ix.permit_vehicles.get(i))
            .collect();
        let mut list: Vec<u32> = old
            .iter()
            .copied()
            .filter(|&v| vehicle_alive(ix, v) && holds(ix, v, p))
            .collect();
        for &v in newly.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if !list.contains(&v) {
                list.push(v);
            }
        }
        if list == old {
            continue;
        }
        let len = u16::try_from(list.len()).map_err(|_| BuildError::TooManyRows)?;
        let start = ix.permit_vehicles.len() as u32;
        for &v in &list {
            ix.permit_vehicles.push(v);
        }
        ix.garbage += old.len();
        let slot = ix.permits.get_mut(p as usize);
        slot.vehicles_start = start;
        slot.vehicles_len = len;
    }
    Ok(())
}

/// Step 6, the person table: a new run for every person whose permits changed.
fn append_person_runs(
    ix: &mut Index,
    hasher: &KeyHasher,
    persons: HashSet<PersonId>,
    old_runs: &HashMap<PersonId, Vec<u32>>,
    joined: &[(PersonId, u32)],
) {
    for person in persons {
        let mut run: Vec<u32> = old_runs[&person]
            .iter()
            .copied()
            .filter(|&r| permit_alive(ix, r) && ix.permits.get(r as usize).person == person)
            .collect();
        for &(p, r) in joined {
            if p == person && !run.contains(&r) {
                run.push(r);
            }
        }
        if run.is_empty() {
            continue;
        }
        let pos = ix.person_permits.len() as u32;
        for r in run {
            ix.person_permits.push(r);
        }
        ix.person_permits.push(RUN_END);
        ix.by_person.reserve_one(|x| {
            let r = *ix.person_permits.get(x as usize);
            hasher.hash_one(ix.permits.get(r as usize).person)
        });
        let _ = ix.by_person.insert(hasher.hash_one(person), pos, |_| false);
    }
}

/// Step 7, the lists: rebuilt whole if any of them changed. Each pair is the entries written
/// and the ids deleted.
fn write_lists(
    old: &Index,
    ix: &mut Index,
    (blacklist, delete_blacklist): (Vec<BlacklistEntry>, Vec<BlacklistId>),
    (locks, delete_locks): (Vec<LockEntry>, Vec<LockId>),
    (bookings, delete_bookings): (Vec<VisitorBooking>, Vec<BookingId>),
) {
    let lists_changed = !(blacklist.is_empty()
        && delete_blacklist.is_empty()
        && locks.is_empty()
        && delete_locks.is_empty()
        && bookings.is_empty()
        && delete_bookings.is_empty());
    if lists_changed {
        let drop_black: HashSet<BlacklistId> = delete_blacklist
            .iter()
            .copied()
            .chain(blacklist.iter().map(|e| e.id))
            .collect();
        let drop_lock: HashSet<LockId> = delete_locks
            .iter()
            .copied()
            .chain(locks.iter().map(|e| e.id))
            .collect();
        let drop_booking: HashSet<BookingId> = delete_bookings
            .iter()
            .copied()
            .chain(bookings.iter().map(|e| e.id))
            .collect();
        let mut black: Vec<BlacklistEntry> = old
            .lists
            .blacklist
            .iter()
            .filter(|e| !drop_black.contains(&e.id))
            .cloned()
            .collect();
        black.extend(blacklist);
        black.sort_by_key(|e| e.id);
        let mut lock: Vec<LockEntry> = old
            .lists
            .locks
            .iter()
            .filter(|e| !drop_lock.contains(&e.id))
            .cloned()
            .collect();
        lock.extend(locks);
        lock.sort_by_key(|e| e.id);
        let mut book: Vec<VisitorBooking> = old
            .lists
            .bookings
            .iter()
            .filter(|e| !drop_booking.contains(&e.id))
            .cloned()
            .collect();
        book.extend(bookings);
        book.sort_by_key(|e| e.id);
        ix.lists = Arc::new(Lists::new(black, lock, book));
    }
}
