//! Table tests of the lane decision (`gatehouse::gate::decision::decide`) through the public API:
//! one small campus snapshot, one row per rule, each row a read and the expected outcome.

use std::num::NonZeroU16;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use gatehouse::domain::*;
use gatehouse::gate::decision::{AntiPassback, CredentialRead, DecisionInput, Flags, decide};
use gatehouse::gate::index::{Index, IndexBuilder};
use gatehouse::gate::presence::{Presence, PresenceTable};

const TZ: Tz = chrono_tz::Asia::Shanghai;
const NORTH: GateId = GateId(1);
const SOUTH: GateId = GateId(2);

/// Wednesday 2025-03-05 at `h:m`, Shanghai time.
fn wed(h: u32, m: u32) -> DateTime<Utc> {
    TZ.with_ymd_and_hms(2025, 3, 5, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn min(t: DateTime<Utc>) -> UtcMinute {
    UtcMinute::from_datetime(t)
}

fn plate(s: &str) -> PlateIdentity {
    Plate::parse(s).unwrap().with_colour(PlateColour::Blue)
}

fn epc(n: u8) -> Epc {
    Epc::from_bytes(&[0xE2, 0x80, 0x68, 0x90, 0, 0, 0, 0, 0, 0, 0, n]).unwrap()
}

fn tid(n: u8) -> Tid {
    Tid::from_bytes(&[0xE2, 0x00, 0x34, 0x12, 0, 0, 0, n]).unwrap()
}

fn permit(id: u32, person: u32, f: impl FnOnce(&mut Permit)) -> Permit {
    let mut p = Permit {
        id: PermitId(id),
        category: PersonCategory::Staff,
        holder: Holder {
            person_id: PersonId(person),
            name: format!("持证人{id}").into(),
            department: "后勤处".into(),
        },
        status: PermitStatus::Active,
        valid_from: min(wed(0, 0)),
        valid_until: min(TZ
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc)),
        gates: GateRights::All(DirectionSet::BOTH),
        schedule: Schedule::always(),
        single_use: false,
        max_inside: None,
        version: 1,
    };
    f(&mut p);
    p
}

/// Vehicle n: plate 京A0000n… (as given), tag n bound to TID n, holding `permits`.
struct Car {
    n: u8,
    plate: &'static str,
    permits: Vec<Permit>,
}

fn campus() -> Index {
    let cars = vec![
        Car {
            n: 1,
            plate: "京A10001",
            permits: vec![permit(1, 1, |_| {})],
        },
        Car {
            n: 2,
            plate: "京A10002",
            permits: vec![permit(2, 2, |p| {
                p.status = PermitStatus::Suspended {
                    reason: "未年检".into(),
                }
            })],
        },
        Car {
            n: 3,
            plate: "京A10003",
            permits: vec![permit(3, 3, |p| {
                p.status = PermitStatus::Revoked {
                    reason: "离校".into(),
                }
            })],
        },
        Car {
            n: 4,
            plate: "京A10004",
            permits: vec![permit(4, 4, |p| p.valid_until = min(wed(10, 0)))],
        },
        Car {
            n: 5,
            plate: "京A10005",
            permits: vec![permit(5, 5, |p| p.valid_from = min(wed(10, 1)))],
        },
        Car {
            n: 6,
            plate: "京A10006",
            permits: vec![permit(6, 6, |p| {
                p.gates = GateRights::Only(
                    vec![GateRight {
                        gate: NORTH,
                        directions: DirectionSet::ENTRY,
                    }]
                    .into(),
                )
            })],
        },
        Car {
            n: 7,
            plate: "京A10007",
            permits: vec![permit(7, 7, |p| {
                p.schedule = Schedule::new(vec![
                    TimeWindow::new(Weekdays::WORKDAYS, 7 * 60, 9 * 60).unwrap(),
                ])
            })],
        },
        Car {
            n: 8,
            plate: "京A10008",
            permits: vec![permit(8, 8, |p| {
                p.single_use = true;
                p.category = PersonCategory::Contractor
            })],
        },
        Car {
            n: 9,
            plate: "京A10009",
            permits: vec![permit(9, 9, |p| p.max_inside = NonZeroU16::new(1))],
        },
        Car {
            n: 10,
            plate: "京A10010",
            permits: vec![],
        },
        Car {
            n: 11,
            plate: "京A10011",
            permits: vec![permit(11, 11, |_| {})],
        },
        Car {
            n: 12,
            plate: "京A10012",
            permits: vec![permit(12, 99, |_| {})],
        },
        Car {
            n: 13,
            plate: "京A10013",
            permits: vec![
                permit(131, 13, |p| p.valid_until = min(wed(1, 0))),
                permit(132, 13, |p| {
                    p.gates = GateRights::Only(
                        vec![GateRight {
                            gate: NORTH,
                            directions: DirectionSet::BOTH,
                        }]
                        .into(),
                    )
                }),
            ],
        },
        Car {
            n: 14,
            plate: "粤BD12345",
            permits: vec![
                permit(141, 14, |p| {
                    p.status = PermitStatus::Revoked {
                        reason: "旧证".into(),
                    }
                }),
                permit(142, 14, |p| p.category = PersonCategory::Family),
            ],
        },
    ];
    let mut b = IndexBuilder::new(2025_0305);
    for c in cars {
        b.vehicles.push(Vehicle {
            id: VehicleId(c.n.into()),
            plate: plate(c.plate),
            permit_ids: c.permits.iter().map(|p| p.id).collect(),
        });
        b.credentials.push(Credential {
            epc: epc(c.n),
            tid: Some(tid(c.n)),
            vehicle_id: VehicleId(c.n.into()),
        });
        b.permits.extend(c.permits);
    }
    // Car 15 shares permit 9 (max_inside 1) and is inside.
    b.vehicles.push(Vehicle {
        id: VehicleId(15),
        plate: plate("京A10015"),
        permit_ids: vec![PermitId(9)].into(),
    });
    // Car 16 is registered but holds no permit and has no booking.
    b.vehicles.push(Vehicle {
        id: VehicleId(16),
        plate: plate("京A10016"),
        permit_ids: Box::new([]),
    });
    let forever = (UtcMinute::MIN, UtcMinute::MAX);
    b.blacklist = vec![
        BlacklistEntry {
            id: BlacklistId(1),
            subject: BlacklistSubject::Tag(epc(200)),
            reason: "挂失".into(),
            from: forever.0,
            until: forever.1,
            alarm: AlarmLevel::Guard,
        },
        BlacklistEntry {
            id: BlacklistId(2),
            subject: BlacklistSubject::Plate {
                plate: plate("沪C66666").plate,
                colour: None,
            },
            reason: "涉案".into(),
            from: forever.0,
            until: forever.1,
            alarm: AlarmLevel::Urgent,
        },
        BlacklistEntry {
            id: BlacklistId(3),
            subject: BlacklistSubject::Person(PersonId(99)),
            reason: "高风险人员".into(),
            from: forever.0,
            until: forever.1,
            alarm: AlarmLevel::Urgent,
        },
    ];
    b.locks = vec![LockEntry {
        id: LockId(1),
        plate: plate("京A10011").plate,
        colour: Some(PlateColour::Blue),
        reason: "事故待处理".into(),
        from: forever.0,
        until: forever.1,
    }];
    let booking = |id, p: &str, status, from, until| VisitorBooking {
        id: BookingId(id),
        plate: plate(p).plate,
        colour: None,
        visitor_name: "访客".into(),
        slot_from: min(from),
        slot_until: min(until),
        status,
        host: PersonId(1),
        purpose: "学术交流".into(),
        pass_used_entry: false,
        pass_used_exit: false,
    };
    b.bookings = vec![
        booking(
            1,
            "苏E20001",
            BookingStatus::Approved,
            wed(9, 0),
            wed(12, 0),
        ),
        booking(
            2,
            "苏E20002",
            BookingStatus::Approved,
            wed(14, 0),
            wed(16, 0),
        ),
        booking(3, "苏E20003", BookingStatus::Pending, wed(9, 0), wed(12, 0)),
        // Car 10 (no permit) is also booked as a visitor today.
        booking(
            4,
            "京A10010",
            BookingStatus::Approved,
            wed(9, 0),
            wed(12, 0),
        ),
    ];
    b.build().expect("campus snapshot is consistent")
}

fn presence() -> PresenceTable {
    let mut t = PresenceTable::new();
    t.consume(PermitId(8));
    t.set_vehicle(
        VehicleId(15),
        Presence::Inside {
            since: wed(8, 0),
            gate: SOUTH,
        },
    );
    t.set_vehicle(VehicleId(1), Presence::Outside { since: wed(8, 0) });
    t.set_vehicle(
        VehicleId(14),
        Presence::Inside {
            since: wed(9, 55),
            gate: NORTH,
        },
    );
    t
}

#[derive(Clone, Copy)]
enum Read {
    Tag(u8),
    Cloned(u8),
    Plate(&'static str),
}

struct Row {
    what: &'static str,
    read: Read,
    gate: GateId,
    direction: Direction,
    passback: AntiPassback,
    expect: ReasonCode,
    permit: Option<u32>,
}

fn row(what: &'static str, read: Read, direction: Direction, expect: ReasonCode) -> Row {
    Row {
        what,
        read,
        gate: NORTH,
        direction,
        passback: AntiPassback::Hard,
        expect,
        permit: None,
    }
}

#[test]
fn each_rule_of_the_decision_gives_its_reason_code_in_the_product_order() {
    use Direction::{Entry, Exit};
    use ReasonCode as R;
    let rows = vec![
        Row {
            permit: Some(1),
            ..row("a valid permit enters", Read::Tag(1), Entry, R::Granted)
        },
        Row {
            permit: Some(1),
            ..row(
                "a valid permit leaves by plate",
                Read::Plate("京A10001"),
                Exit,
                R::Granted,
            )
        },
        row(
            "a lost tag on the blacklist is refused though unknown",
            Read::Tag(200),
            Entry,
            R::DeniedBlacklisted,
        ),
        row(
            "a blacklisted plate is refused",
            Read::Plate("沪C66666"),
            Entry,
            R::DeniedBlacklisted,
        ),
        Row {
            permit: Some(12),
            ..row(
                "a blacklisted holder's car is refused",
                Read::Tag(12),
                Entry,
                R::DeniedBlacklisted,
            )
        },
        Row {
            permit: Some(2),
            ..row(
                "a suspended permit",
                Read::Tag(2),
                Entry,
                R::DeniedSuspended,
            )
        },
        Row {
            permit: Some(3),
            ..row("a revoked permit", Read::Tag(3), Exit, R::DeniedRevoked)
        },
        Row {
            permit: Some(4),
            ..row(
                "a permit that ended at 10:00 is expired at 10:00",
                Read::Tag(4),
                Entry,
                R::DeniedExpired,
            )
        },
        Row {
            permit: Some(5),
            ..row(
                "a permit starting 10:01 is not yet valid at 10:00",
                Read::Tag(5),
                Entry,
                R::DeniedNotYetValid,
            )
        },
        Row {
            permit: Some(6),
            ..row(
                "an entry-only north permit may enter north",
                Read::Tag(6),
                Entry,
                R::Granted,
            )
        },
        Row {
            permit: Some(6),
            ..row(
                "an entry-only permit may not leave",
                Read::Tag(6),
                Exit,
                R::DeniedWrongDirection,
            )
        },
        Row {
            gate: SOUTH,
            permit: Some(6),
            ..row(
                "a north-only permit at the south gate",
                Read::Tag(6),
                Entry,
                R::DeniedWrongGate,
            )
        },
        Row {
            permit: Some(7),
            ..row(
                "a 07:00-09:00 permit at 10:00",
                Read::Tag(7),
                Entry,
                R::DeniedOutsideSchedule,
            )
        },
        Row {
            permit: Some(8),
            ..row(
                "a used single-use pass",
                Read::Tag(8),
                Exit,
                R::DeniedSingleUseConsumed,
            )
        },
        Row {
            permit: Some(9),
            ..row(
                "a shared permit whose other car is inside",
                Read::Tag(9),
                Entry,
                R::DeniedPermitQuota,
            )
        },
        Row {
            permit: Some(9),
            ..row(
                "the quota does not stop leaving",
                Read::Tag(9),
                Exit,
                R::Granted,
            )
        },
        Row {
            permit: Some(142),
            ..row(
                "a car recorded inside cannot enter again",
                Read::Tag(14),
                Entry,
                R::DeniedPassback,
            )
        },
        Row {
            passback: AntiPassback::Timed { minutes: 3 },
            permit: Some(142),
            ..row(
                "timed passback lets it in after the window",
                Read::Tag(14),
                Entry,
                R::Granted,
            )
        },
        Row {
            passback: AntiPassback::Timed { minutes: 10 },
            ..row(
                "timed passback refuses it within the window",
                Read::Tag(14),
                Entry,
                R::DeniedPassback,
            )
        },
        Row {
            permit: Some(11),
            ..row("a locked car may enter", Read::Tag(11), Entry, R::Granted)
        },
        Row {
            permit: Some(11),
            ..row(
                "a locked car may not leave",
                Read::Tag(11),
                Exit,
                R::DeniedLockedVehicle,
            )
        },
        Row {
            permit: Some(1),
            ..row(
                "a tag answering with another TID is a clone",
                Read::Cloned(1),
                Entry,
                R::DeniedTagTidMismatch,
            )
        },
        Row {
            permit: Some(132),
            ..row(
                "the permit closest to granting is reported",
                Read::Tag(13),
                Entry,
                R::DeniedWrongGate,
            )
            .with_gate(SOUTH)
        },
        Row {
            permit: Some(132),
            ..row(
                "any granting permit of several wins",
                Read::Tag(13),
                Entry,
                R::Granted,
            )
        },
        Row {
            permit: Some(142),
            ..row(
                "a revoked old permit does not hide the current one",
                Read::Tag(14),
                Exit,
                R::Granted,
            )
        },
        row(
            "a booked visitor in the slot",
            Read::Plate("苏E20001"),
            Entry,
            R::GrantedVisitor,
        ),
        row(
            "a car without permit but booked today",
            Read::Tag(10),
            Entry,
            R::GrantedVisitor,
        ),
        row(
            "a booked visitor before the slot",
            Read::Plate("苏E20002"),
            Entry,
            R::DeniedVisitorOutsideSlot,
        ),
        row(
            "a visitor whose booking is pending",
            Read::Plate("苏E20003"),
            Entry,
            R::DeniedVisitorNotApproved,
        ),
        Row {
            permit: Some(9),
            ..row(
                "a car inside under a shared permit cannot enter again",
                Read::Plate("京A10015"),
                Entry,
                R::DeniedPassback,
            )
        },
        row(
            "a car registered without permit nor booking",
            Read::Plate("京A10016"),
            Entry,
            R::DeniedNoPermit,
        ),
        row("an unknown tag", Read::Tag(201), Entry, R::DeniedUnknownTag),
        row(
            "an unknown plate",
            Read::Plate("浙A88888"),
            Entry,
            R::DeniedUnknownPlate,
        ),
    ];
    let index = campus();
    let presence = presence();
    for r in rows {
        let read = match r.read {
            Read::Tag(n) => CredentialRead::Tag {
                epc: epc(n),
                tid: Some(tid(n)),
            },
            Read::Cloned(n) => CredentialRead::Tag {
                epc: epc(n),
                tid: Some(tid(250)),
            },
            Read::Plate(p) => CredentialRead::Plate(plate(p)),
        };
        let input = DecisionInput {
            read,
            gate: r.gate,
            lane: LaneId(1),
            direction: r.direction,
            now: wed(10, 0),
            tz: TZ,
            passback: r.passback,
        };
        let d = decide(&index, &presence, &input);
        assert_eq!(d.reason, r.expect, "{}", r.what);
        assert_eq!(d.granted, r.expect.is_grant(), "{}", r.what);
        assert_eq!(d.data_version, 2025_0305, "{}", r.what);
        if let Some(p) = r.permit {
            assert_eq!(d.permit_id, Some(PermitId(p)), "{}", r.what);
        }
        if !d.granted {
            assert_eq!(
                d.effects,
                Default::default(),
                "{}: a denial records nothing",
                r.what
            );
        }
    }
}

impl Row {
    fn with_gate(mut self, gate: GateId) -> Row {
        self.gate = gate;
        self
    }
}

#[test]
fn a_booking_denial_is_reported_for_a_car_without_permit_after_its_slot_and_a_shared_permit_car_may_leave()
 {
    let index = campus();
    let input = DecisionInput {
        read: CredentialRead::Tag {
            epc: epc(10),
            tid: None,
        },
        gate: NORTH,
        lane: LaneId(1),
        direction: Direction::Entry,
        now: wed(13, 0), // after car 10's visitor slot
        tz: TZ,
        passback: AntiPassback::Off,
    };
    assert_eq!(
        decide(&index, &presence(), &input).reason,
        ReasonCode::DeniedVisitorOutsideSlot
    );
    let input = DecisionInput {
        read: CredentialRead::Plate(plate("京A10015")),
        passback: AntiPassback::Off,
        direction: Direction::Exit,
        ..input
    };
    assert_eq!(
        decide(&index, &presence(), &input).reason,
        ReasonCode::Granted
    );
}

#[test]
fn an_exit_by_a_vehicle_recorded_outside_is_granted_and_flagged() {
    let index = campus();
    let input = DecisionInput {
        read: CredentialRead::Tag {
            epc: epc(1),
            tid: Some(tid(1)),
        },
        gate: NORTH,
        lane: LaneId(2),
        direction: Direction::Exit,
        now: wed(10, 0),
        tz: TZ,
        passback: AntiPassback::Hard,
    };
    let d = decide(&index, &presence(), &input);
    assert!(d.granted);
    assert!(d.flags.contains(Flags::EXIT_WITHOUT_ENTRY));
}
