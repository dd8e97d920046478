//! A full build of the index: [`IndexBuilder`] from `Vec`s of domain values, and
//! [`IndexBuild`]'s two halves ([`PermitHalf`], [`VehicleHalf`]) that the gate's start fills
//! on two threads straight from the store and then joins. A build never reads the store
//! itself, and refuses an inconsistent snapshot whole with a [`BuildError`].

use std::num::NonZeroU16;
use std::sync::Arc;

use super::arena::Chunked;
use super::table::{KeyHasher, SlotKey, SlotTable};
use super::{BuildError, Index, Lists, PackedCredential, PackedPermit, PackedVehicle, Shared};
use crate::domain::{
    BlacklistEntry, Credential, GateRights, Holder, LockEntry, Permit, PermitId, PermitStatus,
    PersonCategory, PersonId, PlateIdentity, Schedule, UtcMinute, Vehicle, VehicleId,
    VisitorBooking,
};

/// Collects the rows of one snapshot as `Vec`s of domain values and builds the [`Index`]: the
/// form for tests, a synced snapshot and the importer. The controller's start reads the store
/// straight into an [`IndexBuild`]'s two halves instead.
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    /// Version of the data this snapshot holds (monotonic, from the centre's sync).
    pub data_version: u64,
    /// Every permit, whatever its status (a revoked permit must be found to be refused by name).
    pub permits: Vec<Permit>,
    /// Every registered vehicle.
    pub vehicles: Vec<Vehicle>,
    /// Every issued tag.
    pub credentials: Vec<Credential>,
    /// Blacklist entries (expired ones may be included; they are ignored at decision time).
    pub blacklist: Vec<BlacklistEntry>,
    /// Lock-vehicle entries.
    pub locks: Vec<LockEntry>,
    /// Visitor bookings in any status.
    pub bookings: Vec<VisitorBooking>,
}

impl IndexBuilder {
    /// An empty builder for data version `data_version`.
    pub fn new(data_version: u64) -> IndexBuilder {
        IndexBuilder {
            data_version,
            ..IndexBuilder::default()
        }
    }

    /// Builds the immutable snapshot, consuming the rows.
    pub fn build(self) -> Result<Index, BuildError> {
        let build = IndexBuild::new();
        let mut permits = build.permits(self.permits.len());
        for p in &self.permits {
            permits.push(p.into())?;
        }
        drop(self.permits);
        let permits = permits.seal()?;
        let mut vehicles = build.vehicles(self.vehicles.len(), self.credentials.len());
        for v in &self.vehicles {
            vehicles.push_vehicle(v.id, v.plate, v.permit_ids.iter().copied())?;
        }
        drop(self.vehicles);
        for c in self.credentials {
            vehicles.push_credential(c)?;
        }
        build.finish(
            self.data_version,
            permits,
            vehicles.seal()?,
            self.blacklist,
            self.locks,
            self.bookings,
        )
    }
}

/// A permit's fields, borrowed: how a bulk read hands a row to [`PermitHalf`] without first
/// making a [`Permit`] (two boxed strings a row) only for the build to take it apart again.
#[derive(Debug, Clone, Copy)]
pub struct PermitFields<'a> {
    pub id: PermitId,
    pub category: PersonCategory,
    pub person: PersonId,
    pub name: &'a str,
    pub department: &'a str,
    pub status: &'a PermitStatus,
    pub valid_from: UtcMinute,
    pub valid_until: UtcMinute,
    pub gates: &'a GateRights,
    pub schedule: &'a Schedule,
    pub single_use: bool,
    pub max_inside: Option<NonZeroU16>,
    pub version: u32,
}

impl PermitFields<'_> {
    /// The permit these fields describe, as an owned domain value.
    pub fn to_permit(&self) -> Permit {
        Permit {
            id: self.id,
            category: self.category,
            holder: Holder {
                person_id: self.person,
                name: self.name.into(),
                department: self.department.into(),
            },
            status: self.status.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            gates: self.gates.clone(),
            schedule: self.schedule.clone(),
            single_use: self.single_use,
            max_inside: self.max_inside,
            version: self.version,
        }
    }
}

impl<'a> From<&'a Permit> for PermitFields<'a> {
    fn from(p: &'a Permit) -> PermitFields<'a> {
        PermitFields {
            id: p.id,
            category: p.category,
            person: p.holder.person_id,
            name: &p.holder.name,
            department: &p.holder.department,
            status: &p.status,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            gates: &p.gates,
            schedule: &p.schedule,
            single_use: p.single_use,
            max_inside: p.max_inside,
            version: p.version,
        }
    }
}

/// One full build in two halves that fill apart and meet in [`IndexBuild::finish`]: the
/// permits ([`PermitHalf`]) and the vehicles with their tags ([`VehicleHalf`]). Each half
/// converts its rows as they arrive and lays down its own hash tables when sealed, so the
/// controller's start reads and builds the two on two threads at once, the permits straight
/// from their store rows; only joining vehicles to permits is left for `finish`.
///
/// The halves share the build's key hasher; halves of different builds cannot be joined.
#[derive(Debug)]
pub struct IndexBuild {
    hasher: KeyHasher,
    /// Tells this build's halves from another's.
    id: u64,
}

/// Numbers [`IndexBuild`]s.
static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Refuses a half with more rows than a `u32` row number (plus one for "empty") addresses.
fn room_for(rows: usize) -> Result<(), BuildError> {
    if rows >= u32::MAX as usize - 1 {
        return Err(BuildError::TooManyRows);
    }
    Ok(())
}

/// A slot table of `rows` by `key`, laid down in one pass; a key found twice fails the build
/// with `twice`'s error.
fn table_of<R, K: SlotKey + PartialEq + Copy>(
    hasher: &KeyHasher,
    rows: &[R],
    key: impl Fn(&R) -> K,
    twice: impl FnOnce(K) -> BuildError,
) -> Result<SlotTable<Vec<u32>>, BuildError> {
    let keys = rows
        .iter()
        .enumerate()
        .map(|(r, row)| (hasher.hash_one(key(row)), r as u32));
    SlotTable::from_hashes(keys, |a, b| {
        key(&rows[a as usize]) == key(&rows[b as usize])
    })
    .map_err(|r| twice(key(&rows[r as usize])))
}

impl Default for IndexBuild {
    fn default() -> Self {
        IndexBuild::new()
    }
}

impl IndexBuild {
    /// A new build with its own key hasher.
    pub fn new() -> IndexBuild {
        IndexBuild {
            hasher: KeyHasher::default(),
            id: BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The empty permit half, with room for `capacity` permits.
    pub fn permits(&self, capacity: usize) -> PermitHalf {
        PermitHalf {
            build: self.id,
            hasher: self.hasher.clone(),
            shared: Shared::new(),
            rows: Vec::with_capacity(capacity),
        }
    }

    /// The empty vehicle half, with room for `vehicles` vehicles and `credentials` tags.
    pub fn vehicles(&self, vehicles: usize, credentials: usize) -> VehicleHalf {
        VehicleHalf {
            build: self.id,
            hasher: self.hasher.clone(),
            rows: Vec::with_capacity(vehicles),
            permits: Vec::with_capacity(vehicles),
            credentials: Vec::with_capacity(credentials),
        }
    }

    /// Joins the sealed halves and the lists into the snapshot of `data_version`: each
    /// vehicle's permits found by id (a vehicle holding a permit that is not there fails the
    /// build), and the reverse, each permit's vehicles.
    ///
    /// # Panics
    /// If a half comes from another build (a programming error: its tables hash differently).
    pub fn finish(
        self,
        data_version: u64,
        permits: PermitTable,
        vehicles: VehicleTable,
        blacklist: Vec<BlacklistEntry>,
        locks: Vec<LockEntry>,
        bookings: Vec<VisitorBooking>,
    ) -> Result<Index, BuildError> {
        assert!(
            permits.build == self.id && vehicles.build == self.id,
            "index halves from another build"
        );
        let hasher = self.hasher;
        let PermitTable {
            mut shared,
            mut rows,
            by_permit,
            person_permits,
            by_person,
            ..
        } = permits;
        let VehicleTable {
            rows: vehicle_rows,
            permits: mut vehicle_permits,
            credentials,
            by_vehicle,
            by_plate,
            by_epc,
            ..
        } = vehicles;

        // Each vehicle's permit ids become permit rows, in place; count each permit's vehicles.
        let mut permit_vehicle_count = vec![0u32; rows.len()];
        for v in vehicle_rows.iter() {
            let s = v.permits_start as usize;
            for p in &mut vehicle_permits[s..s + usize::from(v.permits_len)] {
                let id = PermitId(*p);
                let r = by_permit
                    .find(hasher.hash_one(id), |r| rows[r as usize].id == id)
                    .ok_or(BuildError::UnknownPermit {
                        vehicle: v.id,
                        permit: id,
                    })?;
                *p = r;
                permit_vehicle_count[r as usize] += 1;
            }
        }

        // Permit → vehicles (the reverse), for max_inside quotas.
        let mut start = 0u32;
        for (row, count) in rows.iter_mut().zip(&permit_vehicle_count) {
            row.vehicles_start = start;
            row.vehicles_len = u16::try_from(*count).map_err(|_| BuildError::TooManyRows)?;
            start += count;
        }
        let mut fill = permit_vehicle_count;
        fill.fill(0);
        let mut permit_vehicles = vec![0u32; start as usize];
        for (vi, v) in vehicle_rows.iter().enumerate() {
            let s = v.permits_start as usize;
            for &p in &vehicle_permits[s..s + usize::from(v.permits_len)] {
                let at = rows[p as usize].vehicles_start + fill[p as usize];
                permit_vehicles[at as usize] = vi as u32;
                fill[p as usize] += 1;
            }
        }
        drop(fill);

        if shared.text.overflowed() {
            return Err(BuildError::TooManyRows);
        }
        shared.text.shrink_last();
        let (live_permits, live_vehicles, live_credentials) =
            (rows.len(), vehicle_rows.len(), credentials.len());
        Ok(Index {
            data_version,
            hasher,
            shared,
            permits: Chunked::from_vec(rows),
            vehicles: vehicle_rows,
            credentials,
            vehicle_permits: Chunked::from_vec(vehicle_permits),
            permit_vehicles: Chunked::from_vec(permit_vehicles),
            person_permits,
            by_permit: by_permit.into_chunked(),
            by_vehicle,
            by_plate,
            by_epc,
            by_person,
            lists: Arc::new(Lists::new(blacklist, locks, bookings)),
            live_permits,
            live_vehicles,
            live_credentials,
            garbage: 0,
        })
    }
}

/// The permit half of an [`IndexBuild`], filling.
#[derive(Debug)]
pub struct PermitHalf {
    build: u64,
    hasher: KeyHasher,
    shared: Shared,
    rows: Vec<PackedPermit>,
}

impl PermitHalf {
    /// Adds a permit (whatever its status: a revoked permit must be found to be refused by
    /// name).
    pub fn push(&mut self, p: PermitFields<'_>) -> Result<(), BuildError> {
        room_for(self.rows.len() + 1)?;
        let row = self.shared.permit_row(p);
        self.rows.push(row);
        Ok(())
    }

    /// Lays down the permit-id and person tables; a permit id given twice fails the build.
    pub fn seal(self) -> Result<PermitTable, BuildError> {
        let PermitHalf {
            build,
            hasher,
            shared,
            rows,
        } = self;
        let by_permit = table_of(&hasher, &rows, |p| p.id, BuildError::DuplicatePermit)?;

        // Person → permits: permit rows sorted by person, runs found through a slot table.
        let mut person_permits: Vec<u32> = (0..rows.len() as u32).collect();
        person_permits.sort_unstable_by_key(|&r| rows[r as usize].person);
        let run_start = |pos: usize| {
            pos == 0
                || rows[person_permits[pos - 1] as usize].person
                    != rows[person_permits[pos] as usize].person
        };
        // Sized for the people, not the permits (people often hold several).
        let people = (0..person_permits.len()).filter(|&p| run_start(p)).count();
        let mut by_person = SlotTable::for_rows(people);
        for (pos, &r) in person_permits.iter().enumerate() {
            let person = rows[r as usize].person;
            if run_start(pos) {
                by_person
                    .insert(hasher.hash_one(person), pos as u32, |_| false)
                    .ok();
            }
        }
        Ok(PermitTable {
            build,
            shared,
            rows,
            by_permit,
            person_permits: Chunked::from_vec(person_permits),
            by_person: by_person.into_chunked(),
        })
    }
}

/// The permit half of an [`IndexBuild`], sealed: ready for [`IndexBuild::finish`].
#[derive(Debug)]
pub struct PermitTable {
    build: u64,
    shared: Shared,
    /// Their links to vehicles are set by `finish`.
    rows: Vec<PackedPermit>,
    by_permit: SlotTable<Vec<u32>>,
    person_permits: Chunked<u32>,
    by_person: SlotTable,
}

/// The vehicle half of an [`IndexBuild`], filling: vehicles, then or meanwhile their tags.
#[derive(Debug)]
pub struct VehicleHalf {
    build: u64,
    hasher: KeyHasher,
    rows: Vec<PackedVehicle>,
    /// Every vehicle's permits, flattened; permit ids until `finish` finds their rows.
    permits: Vec<u32>,
    /// Their `vehicle` holds the vehicle's id until `seal` finds its row.
    credentials: Vec<PackedCredential>,
}

impl VehicleHalf {
    /// Adds a vehicle holding `permits` (at most 65,535).
    pub fn push_vehicle(
        &mut self,
        id: VehicleId,
        plate: PlateIdentity,
        permits: impl IntoIterator<Item = PermitId>,
    ) -> Result<(), BuildError> {
        room_for(self.rows.len() + 1)?;
        let start = self.permits.len();
        self.permits.extend(permits.into_iter().map(|p| p.0));
        room_for(self.permits.len())?;
        self.rows.push(PackedVehicle {
            id,
            plate,
            permits_start: start as u32,
            permits_len: u16::try_from(self.permits.len() - start)
                .map_err(|_| BuildError::TooManyRows)?,
        });
        Ok(())
    }

    /// Adds an issued tag; its vehicle may come before or after it.
    pub fn push_credential(&mut self, c: Credential) -> Result<(), BuildError> {
        room_for(self.credentials.len() + 1)?;
        self.credentials.push(PackedCredential {
            epc: c.epc,
            tid: c.tid,
            vehicle: c.vehicle_id.0,
        });
        Ok(())
    }

    /// Lays down the vehicle-id, plate and tag tables and finds each tag's vehicle. A vehicle
    /// id, plate or EPC given twice, or a tag issued to a vehicle that is not there, fails the
    /// build.
    pub fn seal(self) -> Result<VehicleTable, BuildError> {
        let VehicleHalf {
            build,
            hasher,
            rows,
            permits,
            mut credentials,
        } = self;
        let by_vehicle = table_of(&hasher, &rows, |v| v.id, BuildError::DuplicateVehicle)?;
        let by_plate = table_of(&hasher, &rows, |v| v.plate, BuildError::DuplicatePlate)?;

        for c in &mut credentials {
            let id = VehicleId(c.vehicle);
            c.vehicle = by_vehicle
                .find(hasher.hash_one(id), |r| rows[r as usize].id == id)
                .ok_or(BuildError::UnknownVehicle {
                    epc: c.epc,
                    vehicle: id,
                })?;
        }
        let by_epc = table_of(&hasher, &credentials, |c| c.epc, BuildError::DuplicateEpc)?;
        Ok(VehicleTable {
            build,
            rows: Chunked::from_vec(rows),
            permits,
            credentials: Chunked::from_vec(credentials),
            by_vehicle: by_vehicle.into_chunked(),
            by_plate: by_plate.into_chunked(),
            by_epc: by_epc.into_chunked(),
        })
    }
}

/// The vehicle half of an [`IndexBuild`], sealed: ready for [`IndexBuild::finish`].
#[derive(Debug)]
pub struct VehicleTable {
    build: u64,
    rows: Chunked<PackedVehicle>,
    /// Permit ids, as in [`VehicleHalf`].
    permits: Vec<u32>,
    credentials: Chunked<PackedCredential>,
    by_vehicle: SlotTable,
    by_plate: SlotTable,
    by_epc: SlotTable,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;
    use crate::gate::index::synthetic::*;

    fn rss_kib(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn a_snapshot_of_100k_permits_answers_every_kind_of_lookup() {
        let n = 100_000;
        let index = builder(n).build().unwrap();
        assert_eq!(index.data_version(), 7);
        assert_eq!(
            (
                index.permit_count(),
                index.vehicle_count(),
                index.credential_count()
            ),
            (n as usize, n as usize, n as usize)
        );
        for i in (0..n).step_by(997).chain([0, n - 1]) {
            let c = index.credential(&epc(i)).expect("tag found");
            assert_eq!(c.tid(), Some(tid(i)));
            let v = c.vehicle();
            assert_eq!((v.id(), v.plate()), (VehicleId(i), plate(i)));
            assert_eq!(index.vehicle_by_plate(plate(i)).unwrap().id(), VehicleId(i));
            assert_eq!(index.vehicle(VehicleId(i)).unwrap().plate(), plate(i));
            let p = index.permit(PermitId(i)).unwrap();
            assert_eq!(p.holder_name(), format!("张{i}"));
            assert_eq!(
                p.vehicles().map(|v| v.id()).collect::<Vec<_>>(),
                [VehicleId(i)]
            );
            assert_eq!(
                v.permits().map(|p| p.id()).collect::<Vec<_>>(),
                [PermitId(i)]
            );
            let mut of_person: Vec<_> = index
                .permits_of_person(PersonId(i / 2))
                .map(|p| p.id().0)
                .collect();
            of_person.sort();
            let first = i / 2 * 2;
            assert_eq!(of_person, [first, first + 1]);
        }
        assert!(index.credential(&epc(n)).is_none());
        assert!(index.vehicle_by_plate(plate(n)).is_none());
        assert!(
            index
                .vehicle_by_plate(plate(1).plate.with_colour(PlateColour::Yellow))
                .is_none()
        );
        assert!(index.permit(PermitId(n)).is_none());
        assert_eq!(index.permits_of_person(PersonId(n)).count(), 0);
        // Compactness, by the index's own accounting: under 180 bytes a permit with its
        // vehicle and tag, hash tables included, at the size where the tables' rounding up to
        // a power of two costs most (was 206 bytes before the rows shared their profiles, the
        // text lost its span table and the tables their load of 1/2: benches/README.md).
        let m = index.memory();
        let per_permit = m.total() / n as usize;
        assert!(per_permit <= 180, "{per_permit} bytes per permit: {m:?}");
    }

    #[test]
    fn departments_and_reasons_are_stored_once_however_many_permits_share_them() {
        let index = builder(1000).build().unwrap();
        let a = index.permit(PermitId(0)).unwrap().department();
        let b = index.permit(PermitId(5)).unwrap().department();
        assert_eq!(a, "计算机学院");
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn a_snapshot_with_a_duplicate_or_dangling_row_is_refused_whole() {
        let mut b = builder(10);
        b.credentials[3].epc = epc(4);
        assert_eq!(b.build().unwrap_err(), BuildError::DuplicateEpc(epc(4)));

        let mut b = builder(10);
        b.vehicles[3].plate = plate(4);
        assert_eq!(b.build().unwrap_err(), BuildError::DuplicatePlate(plate(4)));

        let mut b = builder(10);
        b.permits[3].id = PermitId(4);
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::DuplicatePermit(PermitId(4))
        );

        let mut b = builder(10);
        b.vehicles[3].id = VehicleId(4);
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::DuplicateVehicle(VehicleId(4))
        );

        let mut b = builder(10);
        b.vehicles[3].permit_ids = vec![PermitId(99)].into();
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::UnknownPermit {
                vehicle: VehicleId(3),
                permit: PermitId(99)
            }
        );

        let mut b = builder(10);
        b.credentials[3].vehicle_id = VehicleId(99);
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::UnknownVehicle {
                epc: epc(3),
                vehicle: VehicleId(99)
            }
        );
    }

    #[test]
    fn an_empty_snapshot_builds_and_finds_nothing() {
        let index = IndexBuilder::new(0).build().unwrap();
        assert!(index.credential(&epc(0)).is_none());
        assert!(index.vehicle_by_plate(plate(0)).is_none());
    }

    #[test]
    #[should_panic(expected = "index halves from another build")]
    fn halves_of_two_builds_are_never_joined() {
        let (one, other) = (IndexBuild::new(), IndexBuild::new());
        let permits = one.permits(0).seal().unwrap();
        let vehicles = other.vehicles(0, 0).seal().unwrap();
        let _ = one.finish(1, permits, vehicles, vec![], vec![], vec![]);
    }

    /// Measures a million permits. Run by hand, in release:
    /// `cargo test --release --lib gate::index::build::tests::measure_a_million -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement, run by hand in release mode"]
    fn measure_a_million_permits_build_time_and_memory() {
        let n = 1_000_000;
        let before = rss_kib("VmRSS:").unwrap_or(0);
        let rows = builder(n);
        let with_rows = rss_kib("VmRSS:").unwrap_or(0);
        let t = std::time::Instant::now();
        let index = rows.build().unwrap();
        let build = t.elapsed();
        let after = rss_kib("VmRSS:").unwrap_or(0);
        let m = index.memory();
        println!(
            "1M permits: build {build:?}; index {:.1} MiB (rows {:.1}, tables {:.1}, text {:.1}); \
             RSS before rows {} MiB, with rows {} MiB, after build {} MiB, peak {} MiB",
            m.total() as f64 / 1048576.0,
            m.rows as f64 / 1048576.0,
            m.tables as f64 / 1048576.0,
            m.text as f64 / 1048576.0,
            before / 1024,
            with_rows / 1024,
            after / 1024,
            rss_kib("VmHWM:").unwrap_or(0) / 1024,
        );
        assert!(index.credential(&epc(n - 1)).is_some());
    }
}
