//! Deltas against whole builds: random change sequences, copy-on-write sharing, refusals.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::*;
use crate::gate::index::synthetic::*;
use crate::gate::index::*;

/// A tiny deterministic generator (xorshift64) for the change sequences below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the gate store would hold: the rows by key, changed by the store's rules.
#[derive(Default, Clone)]
struct Model {
    permits: std::collections::BTreeMap<u32, Permit>,
    vehicles: std::collections::BTreeMap<u32, Vehicle>,
    credentials: std::collections::BTreeMap<Epc, Credential>,
    blacklist: std::collections::BTreeMap<u32, BlacklistEntry>,
}

impl Model {
    fn from(b: &IndexBuilder) -> Model {
        Model {
            permits: b.permits.iter().map(|p| (p.id.0, p.clone())).collect(),
            vehicles: b.vehicles.iter().map(|v| (v.id.0, v.clone())).collect(),
            credentials: b.credentials.iter().map(|c| (c.epc, *c)).collect(),
            blacklist: b.blacklist.iter().map(|e| (e.id.0, e.clone())).collect(),
        }
    }

    fn builder(&self, version: u64) -> IndexBuilder {
        IndexBuilder {
            data_version: version,
            permits: self.permits.values().cloned().collect(),
            vehicles: self.vehicles.values().cloned().collect(),
            credentials: self.credentials.values().copied().collect(),
            blacklist: self.blacklist.values().cloned().collect(),
            ..IndexBuilder::default()
        }
    }

    fn apply(&mut self, d: &IndexDelta) {
        for id in &d.delete_permits {
            self.permits.remove(&id.0);
            for v in self.vehicles.values_mut() {
                v.permit_ids = v.permit_ids.iter().copied().filter(|p| p != id).collect();
            }
        }
        for id in &d.delete_vehicles {
            self.vehicles.remove(&id.0);
            self.credentials.retain(|_, c| c.vehicle_id != *id);
        }
        for epc in &d.delete_credentials {
            self.credentials.remove(epc);
        }
        for id in &d.delete_blacklist {
            self.blacklist.remove(&id.0);
        }
        for p in &d.permits {
            self.permits.insert(p.id.0, p.clone());
        }
        for v in &d.vehicles {
            self.vehicles.insert(v.id.0, v.clone());
        }
        for c in &d.credentials {
            self.credentials.insert(c.epc, *c);
        }
        for e in &d.blacklist {
            self.blacklist.insert(e.id.0, e.clone());
        }
    }
}

fn permit(id: u32, person: u32, revoked: bool) -> Permit {
    let mut b = builder(1);
    let mut p = b.permits.remove(0);
    p.id = PermitId(id);
    p.holder.person_id = PersonId(person);
    p.holder.name = format!("持证人{id}-{person}").into();
    // What permits share (their profile in the index) varies too.
    p.category = [
        PersonCategory::Staff,
        PersonCategory::Student,
        PersonCategory::Family,
        PersonCategory::Contractor,
    ][id as usize % 4];
    p.single_use = id.is_multiple_of(7);
    p.max_inside = std::num::NonZeroU16::new((id % 3) as u16);
    p.valid_until = UtcMinute(1_000_000 + id % 5);
    p.version = id % 11;
    if revoked {
        p.status = PermitStatus::Revoked {
            reason: format!("离校{}", id % 3).into(),
        };
    }
    p
}

/// A random change that a centre could send: permits revoked, re-assigned, added and
/// deleted; vehicles added, re-plated, re-permitted and deleted; tags issued, moved and
/// withdrawn; blacklist entries added and lifted.
fn random_delta(rng: &mut Rng, m: &Model, version: u64, next_id: &mut u32) -> IndexDelta {
    let mut d = IndexDelta {
        data_version: version,
        ..IndexDelta::default()
    };
    let mut used_permits = HashSet::new();
    let mut used_vehicles = HashSet::new();
    let mut used_epcs = HashSet::new();
    let pick = |rng: &mut Rng, keys: Vec<u32>| -> Option<u32> {
        (!keys.is_empty()).then(|| keys[rng.below(keys.len() as u64) as usize])
    };
    for _ in 0..1 + rng.below(6) {
        match rng.below(10) {
            0 | 1 => {
                // Revoke or re-assign an existing permit.
                if let Some(id) = pick(rng, m.permits.keys().copied().collect())
                    && used_permits.insert(id)
                {
                    let person = if rng.below(2) == 0 {
                        m.permits[&id].holder.person_id.0
                    } else {
                        rng.below(40) as u32
                    };
                    d.permits.push(permit(id, person, rng.below(2) == 0));
                }
            }
            2 => {
                *next_id += 1;
                used_permits.insert(*next_id);
                d.permits
                    .push(permit(*next_id, rng.below(40) as u32, false));
            }
            3 => {
                if let Some(id) = pick(rng, m.permits.keys().copied().collect())
                    && used_permits.insert(id)
                {
                    d.delete_permits.push(PermitId(id));
                }
            }
            4 | 5 => {
                // A new or changed vehicle holding some live permits.
                let id = if rng.below(2) == 0 {
                    *next_id += 1;
                    *next_id
                } else {
                    match pick(rng, m.vehicles.keys().copied().collect()) {
                        Some(id) => id,
                        None => continue,
                    }
                };
                if !used_vehicles.insert(id) {
                    continue;
                }
                let live: Vec<u32> = m
                    .permits
                    .keys()
                    .copied()
                    .filter(|p| !d.delete_permits.contains(&PermitId(*p)))
                    .collect();
                let mut held = Vec::new();
                for _ in 0..rng.below(3) {
                    if let Some(p) = pick(rng, live.clone())
                        && !held.contains(&PermitId(p))
                    {
                        held.push(PermitId(p));
                    }
                }
                let plate = match m.vehicles.get(&id) {
                    Some(v) if rng.below(2) == 0 => v.plate,
                    _ => {
                        *next_id += 1;
                        plate(100_000 + *next_id)
                    }
                };
                d.vehicles.push(Vehicle {
                    id: VehicleId(id),
                    plate,
                    permit_ids: held.into(),
                });
            }
            6 => {
                if let Some(id) = pick(rng, m.vehicles.keys().copied().collect())
                    && used_vehicles.insert(id)
                {
                    d.delete_vehicles.push(VehicleId(id));
                }
            }
            7 => {
                // Issue a new tag, or move an existing one, to a vehicle that stays.
                let stays: Vec<u32> = m
                    .vehicles
                    .keys()
                    .copied()
                    .filter(|v| !d.delete_vehicles.contains(&VehicleId(*v)))
                    .collect();
                let Some(v) = pick(rng, stays) else { continue };
                let epc = if rng.below(2) == 0 {
                    *next_id += 1;
                    epc(200_000 + *next_id)
                } else {
                    let epcs: Vec<Epc> = m.credentials.keys().copied().collect();
                    if epcs.is_empty() {
                        continue;
                    }
                    epcs[rng.below(epcs.len() as u64) as usize]
                };
                if used_epcs.insert(epc) {
                    d.credentials.push(Credential {
                        epc,
                        tid: None,
                        vehicle_id: VehicleId(v),
                    });
                }
            }
            8 => {
                let epcs: Vec<Epc> = m.credentials.keys().copied().collect();
                if !epcs.is_empty() {
                    let epc = epcs[rng.below(epcs.len() as u64) as usize];
                    if used_epcs.insert(epc) {
                        d.delete_credentials.push(epc);
                    }
                }
            }
            _ => {
                let id = rng.below(8) as u32;
                if d.blacklist.iter().any(|e| e.id.0 == id)
                    || d.delete_blacklist.contains(&BlacklistId(id))
                {
                    continue;
                }
                if rng.below(2) == 0 {
                    d.delete_blacklist.push(BlacklistId(id));
                } else {
                    d.blacklist.push(BlacklistEntry {
                        id: BlacklistId(id),
                        subject: BlacklistSubject::Plate {
                            plate: plate(id).plate,
                            colour: None,
                        },
                        reason: "被盗车辆".into(),
                        from: UtcMinute::MIN,
                        until: UtcMinute::MAX,
                        alarm: AlarmLevel::Urgent,
                    });
                }
            }
        }
    }
    // A vehicle written in this delta may not hold a permit the delta deletes, and a tag
    // may not go to a vehicle the delta deletes (the centre never sends either).
    for v in &mut d.vehicles {
        v.permit_ids = v
            .permit_ids
            .iter()
            .copied()
            .filter(|p| !d.delete_permits.contains(p))
            .collect();
    }
    d
}

/// Everything a decision can ask, as plain values, for every key the test ever used.
fn answers(index: &Index, keys: u32) -> Vec<String> {
    let now = UtcMinute(1);
    let mut out = vec![format!(
        "counts {} {} {}",
        index.permit_count(),
        index.vehicle_count(),
        index.credential_count()
    )];
    for i in 0..keys {
        if let Some(p) = index.permit(PermitId(i)) {
            let mut vs: Vec<u32> = p.vehicles().map(|v| v.id().0).collect();
            vs.sort();
            out.push(format!(
                "permit {i} {:?} {} {} {} {:?} {:?} {:?} {:?} {} {:?} {:?} {:?} {}",
                p.status(),
                p.person_id(),
                p.holder_name(),
                p.department(),
                p.gates(),
                vs,
                p.category(),
                p.schedule(),
                p.single_use(),
                p.max_inside(),
                p.valid_from(),
                p.valid_until(),
                p.version()
            ));
        }
        if let Some(v) = index.vehicle(VehicleId(i)) {
            let ps: Vec<u32> = v.permits().map(|p| p.id().0).collect();
            out.push(format!("vehicle {i} {} {ps:?}", v.plate()));
        }
        for plate in [plate(i), plate(100_000 + i)] {
            if let Some(v) = index.vehicle_by_plate(plate) {
                out.push(format!("plate {plate} {}", v.id()));
            }
            if index.blacklist_for_plate(plate, now).next().is_some() {
                out.push(format!("blacklisted {plate}"));
            }
        }
        for epc in [epc(i), epc(200_000 + i)] {
            if let Some(c) = index.credential(&epc) {
                out.push(format!("tag {epc} {:?} {}", c.tid(), c.vehicle().id()));
            }
        }
        let mut of: Vec<u32> = index
            .permits_of_person(PersonId(i))
            .map(|p| p.id().0)
            .collect();
        of.sort();
        if !of.is_empty() {
            out.push(format!("person {i} {of:?}"));
        }
    }
    out
}

#[test]
fn a_delta_applied_to_a_snapshot_answers_every_lookup_like_a_snapshot_built_whole() {
    let start = builder(60);
    let mut model = Model::from(&start);
    let mut index = start.build().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut next_id = 1_000;
    let mut applied = 0;
    for version in 8..600u64 {
        let delta = random_delta(&mut rng, &model, version, &mut next_id);
        let before = answers(&index, next_id + 1);
        match index.apply(delta.clone()) {
            Ok(next) => {
                model.apply(&delta);
                let whole = model.builder(version).build().unwrap_or_else(|e| {
                    panic!("delta {version} applied, but the whole build refuses: {e}")
                });
                assert_eq!(
                    answers(&next, next_id + 1),
                    answers(&whole, next_id + 1),
                    "after delta {version}: {delta:?}"
                );
                assert_eq!(next.data_version(), version);
                // The previous snapshot, still held by decisions in flight, is unchanged.
                assert_eq!(answers(&index, next_id + 1), before);
                index = next;
                applied += 1;
            }
            Err(e) => {
                // Refused only when a whole build of the same rows is refused too.
                let mut m = model.clone();
                m.apply(&delta);
                assert!(
                    m.builder(version).build().is_err(),
                    "delta {version} refused ({e}) but the rows are consistent: {delta:?}"
                );
            }
        }
    }
    assert!(applied > 500, "{applied} deltas applied");
    assert!(index.garbage() > 0);
}

#[test]
fn a_100k_permit_snapshot_changed_by_deltas_answers_like_one_built_whole_and_stays_compact() {
    let n = 100_000;
    let start = builder(n);
    let mut model = Model::from(&start);
    let mut index = start.build().unwrap();
    let fresh_bytes = index.memory().total();
    let mut rng = Rng(0x5eed_1234_abcd_0100);
    let mut next_id = n + 1_000;
    for version in 8..60u64 {
        let delta = random_delta(&mut rng, &model, version, &mut next_id);
        if let Ok(next) = index.apply(delta.clone()) {
            model.apply(&delta);
            index = next;
        }
    }
    let whole = model.builder(60).build().unwrap();
    assert_eq!(answers(&index, next_id + 1), answers(&whole, next_id + 1));
    // By the index's own accounting: the deltas added a few rows' worth, not a copy.
    let (changed, rebuilt) = (index.memory().total(), whole.memory().total());
    assert!(
        changed < fresh_bytes + fresh_bytes / 10 && rebuilt <= fresh_bytes + fresh_bytes / 10,
        "{fresh_bytes} bytes built, {changed} after the deltas, {rebuilt} rebuilt"
    );
}

#[test]
fn a_revocation_among_100k_permits_copies_a_few_chunks_and_leaves_the_old_snapshot_alone() {
    let index = builder(100_000).build().unwrap();
    let mut revoked = permit(70_000, 35_000, true);
    revoked.holder.name = "张70000".into();
    let next = index
        .apply(IndexDelta {
            data_version: 8,
            permits: vec![revoked],
            ..IndexDelta::default()
        })
        .unwrap();
    assert!(matches!(
        next.permit(PermitId(70_000)).unwrap().status(),
        StatusRef::Revoked(_)
    ));
    assert_eq!(
        index.permit(PermitId(70_000)).unwrap().status(),
        StatusRef::Active
    );
    // Shared chunks: all but the one permit chunk (and the text's last chunk).
    let shared = index
        .permits
        .chunks
        .iter()
        .zip(&next.permits.chunks)
        .filter(|(a, b)| Arc::ptr_eq(a, b))
        .count();
    assert_eq!(shared, index.permits.chunks.len() - 1);
    assert!(Arc::ptr_eq(
        &index.by_epc.slots.chunks[0],
        &next.by_epc.slots.chunks[0]
    ));
    assert_eq!(next.permit_count(), 100_000);
    let mut of: Vec<u32> = next
        .permits_of_person(PersonId(35_000))
        .map(|p| p.id().0)
        .collect();
    of.sort();
    assert_eq!(of, [70_000, 70_001]);
}

#[test]
fn a_delta_that_names_a_permit_twice_or_breaks_a_reference_is_refused() {
    let index = builder(10).build().unwrap();
    let twice = IndexDelta {
        permits: vec![permit(3, 1, true)],
        delete_permits: vec![PermitId(3)],
        ..IndexDelta::default()
    };
    assert!(matches!(index.apply(twice), Err(DeltaError::Ambiguous(_))));
    let dangling = IndexDelta {
        vehicles: vec![Vehicle {
            id: VehicleId(77),
            plate: plate(77),
            permit_ids: vec![PermitId(99)].into(),
        }],
        ..IndexDelta::default()
    };
    assert_eq!(
        index.apply(dangling).unwrap_err(),
        DeltaError::Build(BuildError::UnknownPermit {
            vehicle: VehicleId(77),
            permit: PermitId(99)
        })
    );
    let taken = IndexDelta {
        vehicles: vec![Vehicle {
            id: VehicleId(77),
            plate: plate(4),
            permit_ids: vec![].into(),
        }],
        ..IndexDelta::default()
    };
    assert_eq!(
        index.apply(taken).unwrap_err(),
        DeltaError::Build(BuildError::DuplicatePlate(plate(4)))
    );
}
