//! The pass rules one by one, on a small index, with real Ed25519 keys and signatures.

use super::*;
use crate::domain::permit::DirectionSet;
use crate::domain::{
    AlarmLevel, BlacklistEntry, BlacklistId, BlacklistSubject, LockEntry, LockId, PersonId,
};
use crate::gate::index::IndexBuilder;
use crate::gate::presence::{Presence, PresenceTable};
use crate::wire::pass::{PassGates, public_key_hex, sign};
use chrono::TimeZone;
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;

fn key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn ten() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap()
}

fn claims() -> PassClaims {
    let now = UtcMinute::from_datetime(ten());
    PassClaims {
        key_id: 1,
        booking_id: 11,
        plate: "苏E88888".into(),
        valid_from: UtcMinute(now.0 - 60),
        valid_until: UtcMinute(now.0 + 60),
        single_use: true,
        gates: PassGates::Some(vec![
            (GateId(1), DirectionSet::BOTH),
            (GateId(2), DirectionSet::ENTRY),
        ]),
    }
}

fn book(k: &Ed25519KeyPair, retire_after_ms: Option<i64>) -> PassBook {
    let (keys, bad) = PassKeys::from_wire(&[PassKeyWire {
        kid: 1,
        public_key: public_key_hex(k),
        retire_after_ms,
    }]);
    assert!(bad.is_empty());
    PassBook {
        keys,
        ..PassBook::default()
    }
}

fn booking(status: BookingStatus) -> VisitorBooking {
    VisitorBooking {
        id: BookingId(11),
        plate: Plate::parse("苏E88888").unwrap(),
        colour: None,
        visitor_name: "王先生".into(),
        slot_from: UtcMinute::MIN,
        slot_until: UtcMinute::MAX,
        status,
        host: PersonId(7),
        purpose: "讲座".into(),
        pass_used_entry: false,
        pass_used_exit: false,
    }
}

fn index_with(f: impl FnOnce(&mut IndexBuilder)) -> Index {
    let mut b = IndexBuilder::new(3);
    f(&mut b);
    b.build().unwrap()
}

fn input(text: &str, direction: Direction) -> PassInput<'_> {
    PassInput {
        text,
        gate: GateId(1),
        lane: LaneId(1),
        direction,
        now: ten(),
        tz: chrono_tz::Asia::Shanghai,
        passback: AntiPassback::Hard,
    }
}

fn reason(index: &Index, book: &PassBook, text: &str, direction: Direction) -> ReasonCode {
    check_pass(index, &PresenceTable::new(), book, &input(text, direction)).reason
}

#[test]
fn a_valid_pass_is_granted_as_a_visitor_and_names_what_to_consume() {
    let k = key();
    let text = sign(&claims(), &k).unwrap();
    let index = index_with(|_| {});
    let d = check_pass(
        &index,
        &PresenceTable::new(),
        &book(&k, None),
        &input(&text, Direction::Entry),
    );
    assert!(d.granted);
    assert_eq!(d.reason, ReasonCode::GrantedPass);
    assert_eq!(d.consume, Some((BookingId(11), Direction::Entry)));
    assert_eq!(
        d.effects.presence,
        Some(PresenceEffect::VisitorInside {
            booking: BookingId(11),
            gate: GateId(1)
        })
    );
    assert_eq!(d.plate.unwrap().plate.as_str(), "苏E88888");
    assert_eq!(d.data_version, 3);
    // A multiple-use pass consumes nothing.
    let text = sign(
        &PassClaims {
            single_use: false,
            ..claims()
        },
        &k,
    )
    .unwrap();
    let d = check_pass(
        &index,
        &PresenceTable::new(),
        &book(&k, None),
        &input(&text, Direction::Exit),
    );
    assert!(d.granted);
    assert_eq!(d.consume, None);
}

#[test]
fn a_changed_byte_an_unknown_key_or_a_retired_key_is_forged_and_noise_is_malformed() {
    let k = key();
    let text = sign(&claims(), &k).unwrap();
    let index = index_with(|_| {});
    let mut changed: Vec<char> = text.chars().collect();
    let i = changed.len() - 20;
    changed[i] = if changed[i] == 'A' { 'B' } else { 'A' };
    let changed: String = changed.into_iter().collect();
    let d = check_pass(
        &index,
        &PresenceTable::new(),
        &book(&k, None),
        &input(&changed, Direction::Entry),
    );
    assert_eq!(d.reason, ReasonCode::DeniedPassForged);
    assert_eq!(d.plate, None, "a forged pass's plate is not trusted");
    assert_eq!(
        reason(&index, &book(&key(), None), &text, Direction::Entry),
        ReasonCode::DeniedPassForged
    );
    assert_eq!(
        reason(&index, &PassBook::default(), &text, Direction::Entry),
        ReasonCode::DeniedPassForged
    );
    // Retired one millisecond before the scan; still in its overlap at the scan.
    let ms = ten().timestamp_millis();
    assert_eq!(
        reason(&index, &book(&k, Some(ms - 1)), &text, Direction::Entry),
        ReasonCode::DeniedPassForged
    );
    assert_eq!(
        reason(&index, &book(&k, Some(ms)), &text, Direction::Entry),
        ReasonCode::GrantedPass
    );
    for noise in ["", "hello", "GHP1.!!", "https://example.com/"] {
        assert_eq!(
            reason(&index, &book(&k, None), noise, Direction::Entry),
            ReasonCode::DeniedPassMalformed
        );
    }
}

#[test]
fn window_gate_and_direction_are_checked_to_the_minute() {
    let k = key();
    let b = book(&k, None);
    let index = index_with(|_| {});
    let now = UtcMinute::from_datetime(ten());
    let at = |c: PassClaims| sign(&c, &k).unwrap();
    assert_eq!(
        reason(
            &index,
            &b,
            &at(PassClaims {
                valid_from: UtcMinute(now.0 + 1),
                ..claims()
            }),
            Direction::Entry
        ),
        ReasonCode::DeniedPassNotYetValid
    );
    assert_eq!(
        reason(
            &index,
            &b,
            &at(PassClaims {
                valid_from: now,
                ..claims()
            }),
            Direction::Entry
        ),
        ReasonCode::GrantedPass,
        "from is inclusive"
    );
    assert_eq!(
        reason(
            &index,
            &b,
            &at(PassClaims {
                valid_until: now,
                ..claims()
            }),
            Direction::Entry
        ),
        ReasonCode::DeniedPassExpired,
        "until is exclusive"
    );
    let only_two = PassClaims {
        gates: PassGates::Some(vec![(GateId(2), DirectionSet::BOTH)]),
        ..claims()
    };
    assert_eq!(
        reason(&index, &b, &at(only_two), Direction::Entry),
        ReasonCode::DeniedPassWrongGate
    );
    let entry_only = PassClaims {
        gates: PassGates::Every(DirectionSet::ENTRY),
        ..claims()
    };
    assert_eq!(
        reason(&index, &b, &at(entry_only.clone()), Direction::Exit),
        ReasonCode::DeniedPassWrongDirection
    );
    assert_eq!(
        reason(&index, &b, &at(entry_only), Direction::Entry),
        ReasonCode::GrantedPass
    );
}

#[test]
fn a_cancelled_or_rejected_booking_revokes_its_pass_and_an_unknown_booking_does_not() {
    let k = key();
    let b = book(&k, None);
    let text = sign(&claims(), &k).unwrap();
    for (status, expected) in [
        (BookingStatus::Cancelled, ReasonCode::DeniedPassRevoked),
        (BookingStatus::Rejected, ReasonCode::DeniedPassRevoked),
        (BookingStatus::Approved, ReasonCode::GrantedPass),
    ] {
        let index = index_with(|i| i.bookings = vec![booking(status)]);
        assert_eq!(
            reason(&index, &b, &text, Direction::Entry),
            expected,
            "{status:?}"
        );
    }
    assert_eq!(
        reason(&index_with(|_| {}), &b, &text, Direction::Entry),
        ReasonCode::GrantedPass
    );
}

#[test]
fn a_single_use_pass_is_used_by_a_grant_here_or_by_the_centres_word_per_direction() {
    let k = key();
    let mut b = book(&k, None);
    let text = sign(&claims(), &k).unwrap();
    let index = index_with(|_| {});
    b.consume(BookingId(11), Direction::Entry);
    assert_eq!(
        reason(&index, &b, &text, Direction::Entry),
        ReasonCode::DeniedPassUsed
    );
    assert_eq!(
        reason(&index, &b, &text, Direction::Exit),
        ReasonCode::GrantedPass
    );
    let b = book(&k, None);
    let index = index_with(|i| {
        let mut used = booking(BookingStatus::Approved);
        used.pass_used_exit = true;
        i.bookings = vec![used];
    });
    assert_eq!(
        reason(&index, &b, &text, Direction::Exit),
        ReasonCode::DeniedPassUsed
    );
    assert_eq!(
        reason(&index, &b, &text, Direction::Entry),
        ReasonCode::GrantedPass
    );
    // A multiple-use pass is never used up.
    let many = sign(
        &PassClaims {
            single_use: false,
            ..claims()
        },
        &k,
    )
    .unwrap();
    assert_eq!(
        reason(&index, &b, &many, Direction::Exit),
        ReasonCode::GrantedPass
    );
}

#[test]
fn the_blacklist_refuses_the_plate_in_any_colour_before_everything_else() {
    let k = key();
    let b = book(&k, None);
    // Expired and blacklisted: the blacklist is reported.
    let now = UtcMinute::from_datetime(ten());
    let text = sign(
        &PassClaims {
            valid_until: now,
            ..claims()
        },
        &k,
    )
    .unwrap();
    let index = index_with(|i| {
        i.blacklist = vec![BlacklistEntry {
            id: BlacklistId(5),
            subject: BlacklistSubject::Plate {
                plate: Plate::parse("苏E88888").unwrap(),
                colour: Some(PlateColour::Yellow),
            },
            reason: "".into(),
            from: UtcMinute::MIN,
            until: UtcMinute::MAX,
            alarm: AlarmLevel::Urgent,
        }]
    });
    let d = check_pass(
        &index,
        &PresenceTable::new(),
        &b,
        &input(&text, Direction::Entry),
    );
    assert_eq!(d.reason, ReasonCode::DeniedBlacklisted);
    assert_eq!(d.blacklist.map(|h| h.id), Some(BlacklistId(5)));
}

#[test]
fn anti_passback_applies_to_entries_and_the_lock_list_to_exits() {
    let k = key();
    let b = book(&k, None);
    let text = sign(
        &PassClaims {
            single_use: false,
            ..claims()
        },
        &k,
    )
    .unwrap();
    let index = index_with(|i| {
        i.locks = vec![LockEntry {
            id: LockId(1),
            plate: Plate::parse("苏E88888").unwrap(),
            colour: None,
            reason: "事故待处理".into(),
            from: UtcMinute::MIN,
            until: UtcMinute::MAX,
        }]
    });
    let mut presence = PresenceTable::new();
    presence.set_visitor(
        BookingId(11),
        Presence::Inside {
            since: ten(),
            gate: GateId(1),
        },
    );
    let entry = check_pass(&index, &presence, &b, &input(&text, Direction::Entry));
    assert_eq!(entry.reason, ReasonCode::DeniedPassback);
    let exit = check_pass(&index, &presence, &b, &input(&text, Direction::Exit));
    assert_eq!(exit.reason, ReasonCode::DeniedLockedVehicle);
    assert_eq!(exit.effects, Effects::default());
}
