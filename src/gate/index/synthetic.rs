//! Synthetic snapshots for unit tests: `n` permits, each with one vehicle and one TID-bound
//! tag, with plates, EPCs and TIDs derived from the row number. Test code only.

use crate::domain::*;

pub(crate) fn plate(i: u32) -> PlateIdentity {
    let p = crate::domain::plate::PROVINCES[(i % 31) as usize];
    let letter = char::from(b'A' + ((i / 31) % 26) as u8);
    Plate::parse(&format!("{p}{letter}{:05}", i / (31 * 26)))
        .unwrap()
        .with_colour(PlateColour::Blue)
}

pub(crate) fn epc(i: u32) -> Epc {
    let b = i.to_be_bytes();
    Epc::from_bytes(&[0xE2, 0x80, 0x11, 0x60, 0, 0, 0, 0, b[0], b[1], b[2], b[3]]).unwrap()
}

pub(crate) fn tid(i: u32) -> Tid {
    let b = i.to_be_bytes();
    Tid::from_bytes(&[0xE2, 0x00, 0x68, 0x11, 0, 0, 0, 0, b[0], b[1], b[2], b[3]]).unwrap()
}

pub(crate) fn builder(n: u32) -> super::IndexBuilder {
    let departments = ["计算机学院", "物理学院", "后勤处", "图书馆", "保卫处"];
    let mut b = super::IndexBuilder::new(7);
    b.permits = (0..n)
        .map(|i| Permit {
            id: PermitId(i),
            category: PersonCategory::Staff,
            holder: Holder {
                person_id: PersonId(i / 2),
                name: format!("张{i}").into(),
                department: departments[i as usize % departments.len()].into(),
            },
            status: PermitStatus::Active,
            valid_from: UtcMinute::MIN,
            valid_until: UtcMinute::MAX,
            gates: GateRights::All(DirectionSet::BOTH),
            schedule: Schedule::always(),
            single_use: false,
            max_inside: None,
            version: 1,
        })
        .collect();
    b.vehicles = (0..n)
        .map(|i| Vehicle {
            id: VehicleId(i),
            plate: plate(i),
            permit_ids: vec![PermitId(i)].into(),
        })
        .collect();
    b.credentials = (0..n)
        .map(|i| Credential {
            epc: epc(i),
            tid: Some(tid(i)),
            vehicle_id: VehicleId(i),
        })
        .collect();
    b
}
