//! The lane decision: one credential read in, granted or denied with a stable reason out.
//!
//! What it is for: [`decide`] is a pure function of the [`Index`] snapshot, the runtime's
//! [`PresenceView`] and a [`DecisionInput`] (`now` and the site's time zone included). It applies
//! the product's rules in the product's order:
//!
//! 1. **Blacklist first, failing closed**: the tag's EPC (even an unknown tag), the vehicle's plate
//!    (any-colour entries match every colour), and the holder of *any* of the vehicle's permits.
//! 2. **Each permit of the vehicle**, in this order: status (suspended, revoked); validity window to
//!    the minute (`valid_from` inclusive, `valid_until` exclusive); gate, then direction at that
//!    gate (exits are checked as strictly as entries — the exit-pass rule); schedule in the site's
//!    time zone; single use already consumed; anti-passback (entries only); quota `max_inside`
//!    (entries only, counting the permit's *other* vehicles recorded inside).
//! 3. If a permit granted: the **lock list** (exits only), then the **TID binding** (a read whose
//!    TID differs from the bound one is a cloned tag; a read without a TID is accepted — not every
//!    reader reports it).
//! 4. If no permit granted: **visitor bookings** by plate and slot (only `Approved` counts). The lock
//!    list applies to visitors' exits too.
//! 5. Otherwise the most relevant denial, else unknown.
//!
//! **Several permits**: the vehicle is granted if any permit grants (the first granting permit, in
//! the order the vehicle lists them, is reported). Otherwise the reported denial is that of the
//! permit that got furthest through step 2 — the one closest to granting, e.g. "outside schedule"
//! from this year's permit rather than "expired" from last year's. Ties go to the earlier permit.
//! A visitor-booking grant beats any permit denial; a permit denial beats a booking denial.
//!
//! **Anti-passback** ([`AntiPassback`]) looks at entries: a vehicle recorded inside that tries to
//! enter again is refused (`Hard`), let in and flagged (`Soft`), or refused only within N minutes
//! of its recorded entry (`Timed`). Exits are never refused for passback (a missed entry read must
//! not trap a vehicle inside); an exit by a vehicle recorded outside is flagged.
//!
//! What it never does: IO, clock reads, mutation (the [`Effects`] say what to record once the
//! vehicle has actually passed — the lane may still not open), or heap allocation. Its cost is
//! dominated by cache misses on the snapshot (figures: benches/README.md).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::index::{Index, PermitView, StatusRef, VehicleView};
use super::presence::{Effects, Presence, PresenceEffect, PresenceView};
use crate::domain::permit::GateRefusal;
use crate::domain::{
    AlarmLevel, BlacklistId, BookingId, BookingStatus, Direction, Epc, GateId, LaneId, PermitId,
    PersonCategory, PlateIdentity, ReasonCode, Tid, UtcMinute, VehicleId,
};

/// What the lane read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRead {
    /// A UHF tag: its EPC, and its TID when the reader reports it.
    Tag {
        /// The EPC read.
        epc: Epc,
        /// The TID read, if the reader reports TIDs.
        tid: Option<Tid>,
    },
    /// A plate from a camera, a QR pass or typed by the guard (already parsed and normalised).
    Plate(PlateIdentity),
}

/// A gate's anti-passback policy (防潜回).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AntiPassback {
    /// Not checked.
    Off,
    /// A vehicle recorded inside cannot enter again before it has left.
    Hard,
    /// Such a vehicle is let in, and the decision flagged [`Flags::SOFT_PASSBACK`].
    Soft,
    /// Re-entry is refused within this many minutes of the recorded entry; later it is let in
    /// and flagged (the exit was probably missed).
    Timed {
        /// Minutes after the recorded entry during which re-entry is refused.
        minutes: u16,
    },
}

/// Everything about one read that the decision needs besides the snapshot and presence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionInput {
    /// What was read.
    pub read: CredentialRead,
    /// The gate.
    pub gate: GateId,
    /// The lane (carried into the effects; rules are per gate).
    pub lane: LaneId,
    /// The lane's direction.
    pub direction: Direction,
    /// The instant of the read.
    pub now: DateTime<Utc>,
    /// The site's time zone, for schedules (Asia/Shanghai by default).
    pub tz: Tz,
    /// The gate's anti-passback policy.
    pub passback: AntiPassback,
}

/// Extra facts about a decision, for the guard and the journal (a bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Let in although recorded inside (soft or timed-out anti-passback).
    pub const SOFT_PASSBACK: Flags = Flags(1);
    /// The read's TID differs from the bound TID (possible cloned tag), whatever the outcome.
    pub const TID_MISMATCH: Flags = Flags(1 << 1);
    /// A visitor leaving after the booked slot ended (overstay).
    pub const OVERSTAY: Flags = Flags(1 << 2);
    /// An exit by a vehicle recorded outside (its entry was missed or it passed another way).
    pub const EXIT_WITHOUT_ENTRY: Flags = Flags(1 << 3);

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn set(&mut self, other: Flags) {
        self.0 |= other.0;
    }
}

/// A blacklist hit reported with a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlacklistHit {
    /// The entry.
    pub id: BlacklistId,
    /// How loudly to raise it.
    pub alarm: AlarmLevel,
}

/// The outcome of one read. Strings are borrowed from the index snapshot (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'i> {
    /// Whether the vehicle may pass.
    pub granted: bool,
    /// Why (stable code).
    pub reason: ReasonCode,
    /// Extra facts.
    pub flags: Flags,
    /// The permit that granted, or whose denial is reported.
    pub permit_id: Option<PermitId>,
    /// That permit's version.
    pub permit_version: Option<u32>,
    /// The visitor booking that granted or was refused.
    pub booking_id: Option<BookingId>,
    /// The vehicle, when known.
    pub vehicle_id: Option<VehicleId>,
    /// The plate, when known (from the read or the tag's vehicle).
    pub plate: Option<PlateIdentity>,
    /// Permit holder's (or visitor's) name.
    pub holder_name: Option<&'i str>,
    /// Holder's category.
    pub category: Option<PersonCategory>,
    /// End of validity of the reported permit, or of the booking's slot.
    pub valid_until: Option<UtcMinute>,
    /// The blacklist entry that denied, for alarms.
    pub blacklist: Option<BlacklistHit>,
    /// The index snapshot's data version.
    pub data_version: u64,
    /// What to record if the vehicle passes (empty unless granted).
    pub effects: Effects,
}

impl<'i> Decision<'i> {
    fn new(data_version: u64) -> Decision<'i> {
        Decision {
            granted: false,
            reason: ReasonCode::DeniedUnknownTag,
            flags: Flags::NONE,
            permit_id: None,
            permit_version: None,
            booking_id: None,
            vehicle_id: None,
            plate: None,
            holder_name: None,
            category: None,
            valid_until: None,
            blacklist: None,
            data_version,
            effects: Effects::default(),
        }
    }

    fn deny(mut self, reason: ReasonCode) -> Decision<'i> {
        self.granted = false;
        self.reason = reason;
        self.effects = Effects::default();
        self
    }

    fn with_permit(mut self, p: &PermitView<'i>) -> Decision<'i> {
        self.permit_id = Some(p.id());
        self.permit_version = Some(p.version());
        self.holder_name = Some(p.holder_name());
        self.category = Some(p.category());
        self.valid_until = Some(p.valid_until());
        self
    }
}

/// How far a permit got through step 2; a later stage is a more relevant denial.
fn permit_check<P: PresenceView + ?Sized>(
    p: &PermitView<'_>,
    vehicle: &VehicleView<'_>,
    presence: &P,
    input: &DecisionInput,
    now: UtcMinute,
    flags: &mut Flags,
) -> Result<(), (u8, ReasonCode)> {
    match p.status() {
        StatusRef::Active => {}
        StatusRef::Suspended(_) => return Err((1, ReasonCode::DeniedSuspended)),
        StatusRef::Revoked(_) => return Err((1, ReasonCode::DeniedRevoked)),
    }
    if now < p.valid_from() {
        return Err((2, ReasonCode::DeniedNotYetValid));
    }
    if now >= p.valid_until() {
        return Err((2, ReasonCode::DeniedExpired));
    }
    match p.gates().check(input.gate, input.direction) {
        Ok(()) => {}
        Err(GateRefusal::WrongGate) => return Err((3, ReasonCode::DeniedWrongGate)),
        Err(GateRefusal::WrongDirection) => return Err((4, ReasonCode::DeniedWrongDirection)),
    }
    if !p.schedule().allows(input.now, input.tz) {
        return Err((5, ReasonCode::DeniedOutsideSchedule));
    }
    if p.single_use() && presence.single_use_consumed(p.id()) {
        return Err((6, ReasonCode::DeniedSingleUseConsumed));
    }
    if input.direction == Direction::Entry {
        passback(input, presence.vehicle(vehicle.id()), flags).map_err(|r| (7, r))?;
        if let Some(max) = p.max_inside() {
            let inside = p
                .vehicles()
                .filter(|v| v.id() != vehicle.id())
                .filter(|v| matches!(presence.vehicle(v.id()), Presence::Inside { .. }))
                .count();
            if inside >= usize::from(max.get()) {
                return Err((8, ReasonCode::DeniedPermitQuota));
            }
        }
    }
    Ok(())
}

/// Applies the anti-passback policy to an entry by something recorded as `was`.
pub(crate) fn passback(
    input: &DecisionInput,
    was: Presence,
    flags: &mut Flags,
) -> Result<(), ReasonCode> {
    let Presence::Inside { since, .. } = was else {
        return Ok(());
    };
    match input.passback {
        AntiPassback::Off => Ok(()),
        AntiPassback::Hard => Err(ReasonCode::DeniedPassback),
        AntiPassback::Soft => {
            flags.set(Flags::SOFT_PASSBACK);
            Ok(())
        }
        AntiPassback::Timed { minutes } => {
            if input.now < since + chrono::Duration::minutes(i64::from(minutes)) {
                Err(ReasonCode::DeniedPassback)
            } else {
                flags.set(Flags::SOFT_PASSBACK);
                Ok(())
            }
        }
    }
}

/// Decides one read. See the module documentation for the order of the rules.
pub fn decide<'i, P: PresenceView + ?Sized>(
    index: &'i Index,
    presence: &P,
    input: &DecisionInput,
) -> Decision<'i> {
    let now = UtcMinute::from_datetime(input.now);
    let mut d = Decision::new(index.data_version());

    // Resolve the read to a vehicle and a plate.
    let mut tid_mismatch = false;
    let (vehicle, plate) = match input.read {
        CredentialRead::Tag { epc, tid } => {
            if let Some(e) = index.blacklist_for_tag(&epc, now).next() {
                d.blacklist = Some(BlacklistHit {
                    id: e.id,
                    alarm: e.alarm,
                });
                if let Some(c) = index.credential(&epc) {
                    d.vehicle_id = Some(c.vehicle().id());
                    d.plate = Some(c.vehicle().plate());
                }
                return d.deny(ReasonCode::DeniedBlacklisted);
            }
            let Some(c) = index.credential(&epc) else {
                return d.deny(ReasonCode::DeniedUnknownTag);
            };
            tid_mismatch = matches!((c.tid(), tid), (Some(bound), Some(read)) if bound != read);
            let v = c.vehicle();
            (Some(v), v.plate())
        }
        CredentialRead::Plate(p) => (index.vehicle_by_plate(p), p),
    };
    d.plate = Some(plate);
    d.vehicle_id = vehicle.map(|v| v.id());
    if tid_mismatch {
        d.flags.set(Flags::TID_MISMATCH);
    }

    // 1. Blacklist: plate, then the holders of the vehicle's permits.
    if let Some(e) = index.blacklist_for_plate(plate, now).next() {
        d.blacklist = Some(BlacklistHit {
            id: e.id,
            alarm: e.alarm,
        });
        return d.deny(ReasonCode::DeniedBlacklisted);
    }
    if let Some(v) = vehicle {
        for p in v.permits() {
            if let Some(e) = index.blacklist_for_person(p.person_id(), now).next() {
                d.blacklist = Some(BlacklistHit {
                    id: e.id,
                    alarm: e.alarm,
                });
                return d.with_permit(&p).deny(ReasonCode::DeniedBlacklisted);
            }
        }
    }

    // 2. Permits.
    let mut best: Option<(u8, PermitView<'i>, ReasonCode)> = None;
    if let Some(v) = vehicle {
        for p in v.permits() {
            let mut flags = d.flags;
            match permit_check(&p, &v, presence, input, now, &mut flags) {
                Ok(()) => {
                    let mut d = d.with_permit(&p);
                    d.flags = flags;
                    // 3. Lock list, then TID binding.
                    if input.direction == Direction::Exit
                        && index.locks_for(plate, now).next().is_some()
                    {
                        return d.deny(ReasonCode::DeniedLockedVehicle);
                    }
                    if tid_mismatch {
                        return d.deny(ReasonCode::DeniedTagTidMismatch);
                    }
                    d.granted = true;
                    d.reason = ReasonCode::Granted;
                    d.effects = Effects {
                        presence: Some(match input.direction {
                            Direction::Entry => PresenceEffect::VehicleInside {
                                vehicle: v.id(),
                                gate: input.gate,
                            },
                            Direction::Exit => PresenceEffect::VehicleOutside { vehicle: v.id() },
                        }),
                        consume_single_use: p.single_use().then_some(p.id()),
                    };
                    if input.direction == Direction::Exit
                        && matches!(presence.vehicle(v.id()), Presence::Outside { .. })
                    {
                        d.flags.set(Flags::EXIT_WITHOUT_ENTRY);
                    }
                    return d;
                }
                Err((stage, reason)) => {
                    if best.is_none_or(|(s, _, _)| stage > s) {
                        best = Some((stage, p, reason));
                    }
                }
            }
        }
    }

    // 4. Visitor bookings.
    let mut booking_denial: Option<(ReasonCode, BookingId)> = None;
    let mut visitor = None;
    for b in index.bookings_for(plate) {
        if b.status != BookingStatus::Approved {
            booking_denial.get_or_insert((ReasonCode::DeniedVisitorNotApproved, b.id));
            continue;
        }
        let was = presence.visitor(b.id);
        let in_slot = now.within(b.slot_from, b.slot_until);
        let ok = match input.direction {
            Direction::Entry => in_slot,
            Direction::Exit => {
                in_slot || (now >= b.slot_until && matches!(was, Presence::Inside { .. }))
            }
        };
        if ok {
            visitor = Some(b);
            break;
        }
        booking_denial = Some((ReasonCode::DeniedVisitorOutsideSlot, b.id));
    }
    if let Some(b) = visitor {
        d.booking_id = Some(b.id);
        d.holder_name = Some(&b.visitor_name);
        d.category = Some(PersonCategory::Visitor);
        d.valid_until = Some(b.slot_until);
        if tid_mismatch {
            return d.deny(ReasonCode::DeniedTagTidMismatch);
        }
        if input.direction == Direction::Exit {
            if index.locks_for(plate, now).next().is_some() {
                return d.deny(ReasonCode::DeniedLockedVehicle);
            }
            if now >= b.slot_until {
                d.flags.set(Flags::OVERSTAY);
            }
        } else if let Err(r) = passback(input, presence.visitor(b.id), &mut d.flags) {
            return d.deny(r);
        }
        d.granted = true;
        d.reason = ReasonCode::GrantedVisitor;
        d.effects.presence = Some(match input.direction {
            Direction::Entry => PresenceEffect::VisitorInside {
                booking: b.id,
                gate: input.gate,
            },
            Direction::Exit => PresenceEffect::VisitorOutside { booking: b.id },
        });
        return d;
    }

    // 5. The most relevant denial.
    if let Some((_, p, reason)) = best {
        return d.with_permit(&p).deny(reason);
    }
    if let Some((reason, id)) = booking_denial {
        d.booking_id = Some(id);
        return d.deny(reason);
    }
    if vehicle.is_some() {
        return d.deny(ReasonCode::DeniedNoPermit);
    }
    d.deny(ReasonCode::DeniedUnknownPlate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;
    use crate::gate::index::IndexBuilder;
    use crate::gate::presence::PresenceTable;
    use chrono::TimeZone;
    use std::num::NonZeroU16;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    /// Monday 2025-03-03 at `h:m` in Shanghai.
    fn monday(h: u32, m: u32) -> DateTime<Utc> {
        TZ.with_ymd_and_hms(2025, 3, 3, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn minute(t: DateTime<Utc>) -> UtcMinute {
        UtcMinute::from_datetime(t)
    }

    fn plate(s: &str) -> PlateIdentity {
        Plate::parse(s).unwrap().with_colour(PlateColour::Blue)
    }

    fn epc(n: u8) -> Epc {
        Epc::from_bytes(&[0xE2, 0, 0, n]).unwrap()
    }

    fn tid(n: u8) -> Tid {
        Tid::from_bytes(&[0xE2, 0x80, 0, n]).unwrap()
    }

    fn permit(id: u32) -> Permit {
        Permit {
            id: PermitId(id),
            category: PersonCategory::Staff,
            holder: Holder {
                person_id: PersonId(id),
                name: "李老师".into(),
                department: "化学学院".into(),
            },
            status: PermitStatus::Active,
            valid_from: minute(monday(0, 0)),
            valid_until: minute(monday(23, 0)),
            gates: GateRights::All(DirectionSet::BOTH),
            schedule: Schedule::always(),
            single_use: false,
            max_inside: None,
            version: 3,
        }
    }

    /// One vehicle 京A12345 (id 1) with tag 1 bound to TID 1, holding the given permits.
    fn world(permits: Vec<Permit>) -> IndexBuilder {
        let mut b = IndexBuilder::new(42);
        b.vehicles = vec![Vehicle {
            id: VehicleId(1),
            plate: plate("京A12345"),
            permit_ids: permits.iter().map(|p| p.id).collect(),
        }];
        b.permits = permits;
        b.credentials = vec![Credential {
            epc: epc(1),
            tid: Some(tid(1)),
            vehicle_id: VehicleId(1),
        }];
        b
    }

    fn input(direction: Direction, now: DateTime<Utc>) -> DecisionInput {
        DecisionInput {
            read: CredentialRead::Tag {
                epc: epc(1),
                tid: Some(tid(1)),
            },
            gate: GateId(1),
            lane: LaneId(1),
            direction,
            now,
            tz: TZ,
            passback: AntiPassback::Hard,
        }
    }

    fn reason(b: IndexBuilder, presence: &PresenceTable, i: DecisionInput) -> ReasonCode {
        decide(&b.build().unwrap(), presence, &i).reason
    }

    fn entry_at_ten() -> DecisionInput {
        input(Direction::Entry, monday(10, 0))
    }

    #[test]
    fn a_valid_tag_is_granted_with_the_holder_and_the_effects_to_record() {
        let index = world(vec![permit(7)]).build().unwrap();
        let d = decide(&index, &PresenceTable::new(), &entry_at_ten());
        assert!(d.granted);
        assert_eq!(d.reason, ReasonCode::Granted);
        assert_eq!(d.permit_id, Some(PermitId(7)));
        assert_eq!(d.permit_version, Some(3));
        assert_eq!(d.vehicle_id, Some(VehicleId(1)));
        assert_eq!(d.plate, Some(plate("京A12345")));
        assert_eq!(d.holder_name, Some("李老师"));
        assert_eq!(d.category, Some(PersonCategory::Staff));
        assert_eq!(d.valid_until, Some(minute(monday(23, 0))));
        assert_eq!(d.data_version, 42);
        assert_eq!(
            d.effects.presence,
            Some(PresenceEffect::VehicleInside {
                vehicle: VehicleId(1),
                gate: GateId(1)
            })
        );
        let out = decide(
            &index,
            &PresenceTable::new(),
            &input(Direction::Exit, monday(10, 0)),
        );
        assert_eq!(
            out.effects.presence,
            Some(PresenceEffect::VehicleOutside {
                vehicle: VehicleId(1)
            })
        );
    }

    #[test]
    fn a_plate_read_finds_the_same_vehicle_as_its_tag() {
        let mut i = entry_at_ten();
        i.read = CredentialRead::Plate(plate("京A12345"));
        assert_eq!(
            reason(world(vec![permit(7)]), &PresenceTable::new(), i),
            ReasonCode::Granted
        );
        i.read = CredentialRead::Plate(
            Plate::parse("京A12345")
                .unwrap()
                .with_colour(PlateColour::Yellow),
        );
        assert_eq!(
            reason(world(vec![permit(7)]), &PresenceTable::new(), i),
            ReasonCode::DeniedUnknownPlate
        );
    }

    #[test]
    fn the_blacklist_is_checked_first_for_tag_plate_and_holder() {
        let none = PresenceTable::new();
        for subject in [
            BlacklistSubject::Tag(epc(1)),
            BlacklistSubject::Plate {
                plate: plate("京A12345").plate,
                colour: None,
            },
            BlacklistSubject::Person(PersonId(7)),
        ] {
            // Even with a revoked permit, the blacklist is what is reported.
            let mut p = permit(7);
            p.status = PermitStatus::Revoked { reason: "x".into() };
            let mut b = world(vec![permit(8), p]);
            b.blacklist = vec![BlacklistEntry {
                id: BlacklistId(5),
                subject,
                reason: "高风险".into(),
                from: UtcMinute::MIN,
                until: UtcMinute::MAX,
                alarm: AlarmLevel::Urgent,
            }];
            let index = b.build().unwrap();
            let d = decide(&index, &none, &entry_at_ten());
            assert_eq!(d.reason, ReasonCode::DeniedBlacklisted, "{subject:?}");
            assert_eq!(
                d.blacklist,
                Some(BlacklistHit {
                    id: BlacklistId(5),
                    alarm: AlarmLevel::Urgent
                })
            );
        }
    }

    #[test]
    fn a_blacklist_entry_out_of_its_window_or_for_another_colour_does_not_deny() {
        let mut b = world(vec![permit(7)]);
        b.blacklist = vec![
            BlacklistEntry {
                id: BlacklistId(1),
                subject: BlacklistSubject::Tag(epc(1)),
                reason: "".into(),
                from: UtcMinute::MIN,
                until: minute(monday(10, 0)),
                alarm: AlarmLevel::Guard,
            },
            BlacklistEntry {
                id: BlacklistId(2),
                subject: BlacklistSubject::Plate {
                    plate: plate("京A12345").plate,
                    colour: Some(PlateColour::Yellow),
                },
                reason: "".into(),
                from: UtcMinute::MIN,
                until: UtcMinute::MAX,
                alarm: AlarmLevel::Guard,
            },
        ];
        assert_eq!(
            reason(b, &PresenceTable::new(), entry_at_ten()),
            ReasonCode::Granted
        );
    }

    #[test]
    fn status_and_validity_window_deny_to_the_minute() {
        let none = PresenceTable::new();
        let mut p = permit(7);
        p.status = PermitStatus::Suspended {
            reason: "欠费".into(),
        };
        assert_eq!(
            reason(world(vec![p]), &none, entry_at_ten()),
            ReasonCode::DeniedSuspended
        );
        let mut p = permit(7);
        p.status = PermitStatus::Revoked {
            reason: "离职".into(),
        };
        assert_eq!(
            reason(world(vec![p]), &none, entry_at_ten()),
            ReasonCode::DeniedRevoked
        );

        let mut p = permit(7);
        p.valid_from = minute(monday(10, 1));
        assert_eq!(
            reason(world(vec![p.clone()]), &none, entry_at_ten()),
            ReasonCode::DeniedNotYetValid
        );
        assert_eq!(
            reason(
                world(vec![p]),
                &none,
                input(Direction::Entry, monday(10, 1))
            ),
            ReasonCode::Granted,
            "valid_from is inclusive"
        );
        let mut p = permit(7);
        p.valid_until = minute(monday(10, 0));
        assert_eq!(
            reason(world(vec![p.clone()]), &none, entry_at_ten()),
            ReasonCode::DeniedExpired
        );
        assert_eq!(
            reason(
                world(vec![p]),
                &none,
                input(Direction::Entry, monday(9, 59))
            ),
            ReasonCode::Granted,
            "valid_until is exclusive"
        );
    }

    #[test]
    fn gate_and_direction_are_checked_on_exit_as_on_entry() {
        let none = PresenceTable::new();
        let mut p = permit(7);
        p.gates = GateRights::Only(
            vec![GateRight {
                gate: GateId(1),
                directions: DirectionSet::ENTRY,
            }]
            .into(),
        );
        assert_eq!(
            reason(world(vec![p.clone()]), &none, entry_at_ten()),
            ReasonCode::Granted
        );
        assert_eq!(
            reason(
                world(vec![p.clone()]),
                &none,
                input(Direction::Exit, monday(10, 0))
            ),
            ReasonCode::DeniedWrongDirection
        );
        let mut i = entry_at_ten();
        i.gate = GateId(2);
        assert_eq!(
            reason(world(vec![p]), &none, i),
            ReasonCode::DeniedWrongGate
        );
    }

    #[test]
    fn the_schedule_is_evaluated_in_the_site_time_zone() {
        let mut p = permit(7);
        p.schedule = Schedule::new(vec![
            TimeWindow::new(Weekdays::WORKDAYS, 7 * 60, 9 * 60).unwrap(),
        ]);
        let none = PresenceTable::new();
        assert_eq!(
            reason(
                world(vec![p.clone()]),
                &none,
                input(Direction::Entry, monday(8, 0))
            ),
            ReasonCode::Granted
        );
        assert_eq!(
            reason(world(vec![p]), &none, entry_at_ten()),
            ReasonCode::DeniedOutsideSchedule
        );
    }

    #[test]
    fn a_single_use_pass_is_consumed_by_its_first_passage() {
        let mut p = permit(7);
        p.single_use = true;
        let index = world(vec![p]).build().unwrap();
        let mut presence = PresenceTable::new();
        let d = decide(&index, &presence, &input(Direction::Exit, monday(10, 0)));
        assert!(d.granted);
        assert_eq!(d.effects.consume_single_use, Some(PermitId(7)));
        presence.record(&d.effects, monday(10, 0));
        let again = decide(&index, &presence, &input(Direction::Entry, monday(10, 5)));
        assert_eq!(again.reason, ReasonCode::DeniedSingleUseConsumed);
    }

    #[test]
    fn anti_passback_refuses_soft_flags_or_times_out_a_second_entry() {
        let index = world(vec![permit(7)]).build().unwrap();
        let mut presence = PresenceTable::new();
        presence.set_vehicle(
            VehicleId(1),
            Presence::Inside {
                since: monday(9, 50),
                gate: GateId(1),
            },
        );
        let mut i = entry_at_ten();
        assert_eq!(
            decide(&index, &presence, &i).reason,
            ReasonCode::DeniedPassback
        );
        i.passback = AntiPassback::Soft;
        let d = decide(&index, &presence, &i);
        assert!(d.granted && d.flags.contains(Flags::SOFT_PASSBACK));
        i.passback = AntiPassback::Timed { minutes: 15 };
        assert_eq!(
            decide(&index, &presence, &i).reason,
            ReasonCode::DeniedPassback
        );
        i.now = monday(10, 5);
        let d = decide(&index, &presence, &i);
        assert!(d.granted && d.flags.contains(Flags::SOFT_PASSBACK));
        i.passback = AntiPassback::Off;
        assert!(decide(&index, &presence, &i).flags.is_empty());
        // Exits are never refused for passback.
        let mut o = input(Direction::Exit, monday(10, 0));
        presence.set_vehicle(
            VehicleId(1),
            Presence::Outside {
                since: monday(9, 0),
            },
        );
        let d = decide(&index, &presence, &o);
        assert!(d.granted && d.flags.contains(Flags::EXIT_WITHOUT_ENTRY));
        o.passback = AntiPassback::Off;
        assert!(decide(&index, &presence, &o).granted);
    }

    #[test]
    fn a_permit_quota_counts_the_other_vehicles_inside() {
        let mut p = permit(7);
        p.max_inside = NonZeroU16::new(1);
        let mut b = world(vec![p]);
        b.vehicles.push(Vehicle {
            id: VehicleId(2),
            plate: plate("京B22222"),
            permit_ids: vec![PermitId(7)].into(),
        });
        let index = b.build().unwrap();
        let mut presence = PresenceTable::new();
        assert!(decide(&index, &presence, &entry_at_ten()).granted);
        presence.set_vehicle(
            VehicleId(2),
            Presence::Inside {
                since: monday(9, 0),
                gate: GateId(3),
            },
        );
        assert_eq!(
            decide(&index, &presence, &entry_at_ten()).reason,
            ReasonCode::DeniedPermitQuota
        );
        assert!(decide(&index, &presence, &input(Direction::Exit, monday(10, 0))).granted);
    }

    #[test]
    fn a_locked_vehicle_may_enter_but_not_leave() {
        let mut b = world(vec![permit(7)]);
        b.locks = vec![LockEntry {
            id: LockId(1),
            plate: plate("京A12345").plate,
            colour: None,
            reason: "事故待处理".into(),
            from: UtcMinute::MIN,
            until: UtcMinute::MAX,
        }];
        let index = b.build().unwrap();
        let none = PresenceTable::new();
        assert!(decide(&index, &none, &entry_at_ten()).granted);
        let d = decide(&index, &none, &input(Direction::Exit, monday(10, 0)));
        assert_eq!(d.reason, ReasonCode::DeniedLockedVehicle);
        assert_eq!(d.effects, Effects::default());
    }

    #[test]
    fn a_tag_read_with_another_tid_is_a_clone_and_a_read_without_tid_is_accepted() {
        let index = world(vec![permit(7)]).build().unwrap();
        let none = PresenceTable::new();
        let mut i = entry_at_ten();
        i.read = CredentialRead::Tag {
            epc: epc(1),
            tid: Some(tid(9)),
        };
        let d = decide(&index, &none, &i);
        assert_eq!(d.reason, ReasonCode::DeniedTagTidMismatch);
        assert!(d.flags.contains(Flags::TID_MISMATCH));
        i.read = CredentialRead::Tag {
            epc: epc(1),
            tid: None,
        };
        assert!(decide(&index, &none, &i).granted);
    }

    #[test]
    fn with_several_permits_any_grant_wins_and_otherwise_the_closest_denial_is_reported() {
        let none = PresenceTable::new();
        let mut expired = permit(1);
        expired.valid_until = minute(monday(1, 0));
        let mut scheduled = permit(2);
        scheduled.schedule = Schedule::new(vec![TimeWindow::new(Weekdays::WEEKEND, 0, 0).unwrap()]);
        let index = world(vec![expired.clone(), scheduled.clone()])
            .build()
            .unwrap();
        let d = decide(&index, &none, &entry_at_ten());
        assert_eq!(d.reason, ReasonCode::DeniedOutsideSchedule);
        assert_eq!(d.permit_id, Some(PermitId(2)));
        let index = world(vec![expired, scheduled, permit(3)]).build().unwrap();
        let d = decide(&index, &none, &entry_at_ten());
        assert!(d.granted);
        assert_eq!(d.permit_id, Some(PermitId(3)));
    }

    fn booking(status: BookingStatus, from: DateTime<Utc>, until: DateTime<Utc>) -> VisitorBooking {
        VisitorBooking {
            id: BookingId(11),
            plate: plate("苏E88888").plate,
            colour: None,
            visitor_name: "王先生".into(),
            slot_from: minute(from),
            slot_until: minute(until),
            status,
            host: PersonId(7),
            purpose: "讲座".into(),
            pass_used_entry: false,
            pass_used_exit: false,
        }
    }

    fn visitor_read(direction: Direction, now: DateTime<Utc>) -> DecisionInput {
        let mut i = input(direction, now);
        i.read = CredentialRead::Plate(plate("苏E88888"));
        i
    }

    #[test]
    fn an_approved_booking_opens_in_its_slot_only_and_its_exit_closes_the_visit() {
        let mut b = world(vec![]);
        b.bookings = vec![booking(
            BookingStatus::Approved,
            monday(9, 0),
            monday(11, 0),
        )];
        let index = b.build().unwrap();
        let mut presence = PresenceTable::new();
        let d = decide(
            &index,
            &presence,
            &visitor_read(Direction::Entry, monday(10, 0)),
        );
        assert_eq!(d.reason, ReasonCode::GrantedVisitor);
        assert_eq!(
            (d.holder_name, d.category),
            (Some("王先生"), Some(PersonCategory::Visitor))
        );
        assert_eq!(
            decide(
                &index,
                &presence,
                &visitor_read(Direction::Entry, monday(11, 0))
            )
            .reason,
            ReasonCode::DeniedVisitorOutsideSlot
        );
        presence.record(&d.effects, monday(10, 0));
        let out = decide(
            &index,
            &presence,
            &visitor_read(Direction::Exit, monday(12, 0)),
        );
        assert_eq!(out.reason, ReasonCode::GrantedVisitor);
        assert!(out.flags.contains(Flags::OVERSTAY));
        assert_eq!(
            out.effects.presence,
            Some(PresenceEffect::VisitorOutside {
                booking: BookingId(11)
            })
        );
    }

    #[test]
    fn a_booking_not_yet_approved_opens_nothing() {
        let mut b = world(vec![]);
        b.bookings = vec![booking(BookingStatus::Pending, monday(9, 0), monday(11, 0))];
        assert_eq!(
            reason(
                b,
                &PresenceTable::new(),
                visitor_read(Direction::Entry, monday(10, 0))
            ),
            ReasonCode::DeniedVisitorNotApproved
        );
    }

    #[test]
    fn unknown_tags_unknown_plates_and_vehicles_without_permits_are_told_apart() {
        let none = PresenceTable::new();
        let mut i = entry_at_ten();
        i.read = CredentialRead::Tag {
            epc: epc(77),
            tid: None,
        };
        assert_eq!(
            reason(world(vec![permit(7)]), &none, i),
            ReasonCode::DeniedUnknownTag
        );
        i.read = CredentialRead::Plate(plate("京A99999"));
        assert_eq!(
            reason(world(vec![permit(7)]), &none, i),
            ReasonCode::DeniedUnknownPlate
        );
        assert_eq!(
            reason(world(vec![]), &none, entry_at_ten()),
            ReasonCode::DeniedNoPermit
        );
    }
}

#[cfg(test)]
mod measure {
    use super::*;
    use crate::gate::index::synthetic;
    use crate::gate::presence::PresenceTable;

    /// Run by hand, in release:
    /// `cargo test --release --lib gate::decision::measure -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement, run by hand in release mode"]
    fn measure_nanoseconds_per_decision_with_a_million_permits() {
        let n = 1_000_000u32;
        let index = synthetic::builder(n).build().unwrap();
        let presence = PresenceTable::new();
        let reads: Vec<DecisionInput> = (0..100_000u32)
            .map(|k| {
                let i = k.wrapping_mul(7919) % n;
                DecisionInput {
                    read: CredentialRead::Tag {
                        epc: synthetic::epc(i),
                        tid: Some(synthetic::tid(i)),
                    },
                    gate: GateId(1),
                    lane: LaneId(1),
                    direction: Direction::Entry,
                    now: DateTime::from_timestamp(1_740_000_000, 0).unwrap(),
                    tz: chrono_tz::Asia::Shanghai,
                    passback: AntiPassback::Hard,
                }
            })
            .collect();
        for (label, plate_reads) in [("tag", false), ("plate", true)] {
            let reads: Vec<DecisionInput> = reads
                .iter()
                .map(|r| {
                    let mut r = *r;
                    if plate_reads {
                        let CredentialRead::Tag { epc, .. } = r.read else {
                            unreachable!()
                        };
                        r.read = CredentialRead::Plate(
                            index.credential(&epc).unwrap().vehicle().plate(),
                        );
                    }
                    r
                })
                .collect();
            let t = std::time::Instant::now();
            let mut granted = 0;
            for _ in 0..10 {
                for r in &reads {
                    granted +=
                        usize::from(std::hint::black_box(decide(&index, &presence, r)).granted);
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / (10 * reads.len()) as f64;
            println!("{label} reads, 1M permits: {ns:.0} ns per decision");
            assert_eq!(granted, 10 * reads.len());
        }
    }
}
