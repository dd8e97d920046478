//! The offline pass decision: a scanned text in, granted or refused with a stable reason out.
//!
//! What it is for: a visitor shows the signed pass the centre issued for an approved booking
//! (`crate::wire::pass`); the lane decides it from what the gate holds, with the centre down.
//! [`check_pass`] is a pure function of the [`Index`] snapshot, the runtime's presence view,
//! the gate's [`PassBook`] (public pass keys and the single-use passes it granted) and a
//! [`PassInput`] (`now` included). The rules, in order:
//!
//! 1. **The signature**, with the key the pass names among the gate's keys: the current one and
//!    any rotated-out key still in its overlap (a key past its `retire_after_ms` is as unknown
//!    as a made-up one: its passes are forged). Not a pass at all: malformed.
//! 2. **Blacklist on the pass's plate, failing closed**: the pass carries no plate colour, so an
//!    entry about the plate text in *any* colour refuses it (as `decision` puts the blacklist
//!    before everything else).
//! 3. **Window** to the minute (`valid_from` inclusive, `valid_until` exclusive), then **gate**,
//!    then **direction** at that gate.
//! 4. **Revoked**: the gate knows the booking as cancelled or rejected. A gate that does not
//!    know the booking at all accepts a validly signed pass (it may not have synced it yet).
//! 5. **Used** (single-use passes, per direction, campus-wide): consumed by a grant at this
//!    gate ([`PassBook`]), or the centre's `pass_used_entry/exit` on the booking row.
//! 6. Entries: **anti-passback** on the visitor booking's presence, as for a booked plate.
//!    Exits: the **lock list** on the plate (any colour).
//!
//! A grant's [`Effects`] are a visitor booking's (entry → inside, exit → outside); a single-use
//! grant also names the (booking, direction) to consume, which the lane records at the grant
//! (not at the passage: the second scan must be refused even before the car has moved).
//!
//! What it never does: IO, clock reads, mutation, or trusting a claim before its signature
//! checked (a refused pass's claims are only reported, never decided on).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::decision::{AntiPassback, BlacklistHit, CredentialRead, DecisionInput, Flags, passback};
use super::index::Index;
use super::presence::{Effects, PresenceEffect, PresenceView};
use crate::domain::{
    BookingId, BookingStatus, Direction, GateId, LaneId, Plate, PlateColour, PlateIdentity,
    ReasonCode, UtcMinute, VisitorBooking,
};
use crate::wire::pass::{PassClaims, PassError, PassKeyWire, read_unverified, verify};

/// One public pass key as the gate holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassKey {
    /// The key id passes name.
    pub kid: u16,
    /// The Ed25519 public key.
    pub key: [u8; 32],
    /// After this instant (UTC milliseconds) the key's passes are refused; `None`: current.
    pub retire_after_ms: Option<i64>,
}

/// The site's public pass keys at this gate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassKeys {
    keys: Vec<PassKey>,
}

impl PassKeys {
    /// The keys of a list as the centre sends it; entries whose hex is not a 32-byte key are
    /// left out (returned apart, for a log line).
    pub fn from_wire(wire: &[PassKeyWire]) -> (PassKeys, Vec<u16>) {
        let mut keys = Vec::with_capacity(wire.len());
        let mut bad = Vec::new();
        for w in wire {
            match w.key_bytes() {
                Some(key) => keys.push(PassKey {
                    kid: w.kid,
                    key,
                    retire_after_ms: w.retire_after_ms,
                }),
                None => bad.push(w.kid),
            }
        }
        (PassKeys { keys }, bad)
    }

    /// The key `kid` if it is accepted at `now` (current, or within its overlap).
    pub fn key_for(&self, kid: u16, now: DateTime<Utc>) -> Option<[u8; 32]> {
        let now_ms = now.timestamp_millis();
        self.keys
            .iter()
            .find(|k| k.kid == kid)
            .filter(|k| k.retire_after_ms.is_none_or(|until| now_ms <= until))
            .map(|k| k.key)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held (every pass is then refused as forged).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What the gate knows about passes besides the index: the keys, and the single-use passes it
/// granted itself (kept in memory by the runtime, written through to the store).
#[derive(Debug, Clone, Default)]
pub struct PassBook {
    /// The public pass keys.
    pub keys: PassKeys,
    consumed: HashSet<(BookingId, Direction)>,
}

impl PassBook {
    /// Records that the single-use pass of `booking` was used in `direction` here.
    pub fn consume(&mut self, booking: BookingId, direction: Direction) {
        self.consumed.insert((booking, direction));
    }

    /// Whether this gate granted the single-use pass of `booking` in `direction`.
    pub fn consumed(&self, booking: BookingId, direction: Direction) -> bool {
        self.consumed.contains(&(booking, direction))
    }
}

/// One scanned text and where and when it was scanned.
#[derive(Debug, Clone, Copy)]
pub struct PassInput<'t> {
    /// The scanner's text.
    pub text: &'t str,
    /// The gate.
    pub gate: GateId,
    /// The lane.
    pub lane: LaneId,
    /// The direction the lane decides for.
    pub direction: Direction,
    /// The instant of the scan.
    pub now: DateTime<Utc>,
    /// The site's time zone (carried to the anti-passback rule).
    pub tz: Tz,
    /// The gate's anti-passback policy.
    pub passback: AntiPassback,
}

/// The outcome of one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassDecision<'i> {
    /// Whether the vehicle may pass.
    pub granted: bool,
    /// Why (stable code).
    pub reason: ReasonCode,
    /// Extra facts (soft passback).
    pub flags: Flags,
    /// What the pass says: verified, or — for a forged pass — as read, for the record only.
    pub claims: Option<PassClaims>,
    /// The pass's plate, once its signature checked (colour from the booking, else blue).
    pub plate: Option<PlateIdentity>,
    /// The booking, when the gate knows it.
    pub booking: Option<&'i VisitorBooking>,
    /// The blacklist entry that refused it.
    pub blacklist: Option<BlacklistHit>,
    /// The index snapshot's data version.
    pub data_version: u64,
    /// What to record when the vehicle passes (empty unless granted).
    pub effects: Effects,
    /// The single-use pass to mark used at the grant.
    pub consume: Option<(BookingId, Direction)>,
}

impl<'i> PassDecision<'i> {
    fn deny(mut self, reason: ReasonCode) -> PassDecision<'i> {
        self.granted = false;
        self.reason = reason;
        self.effects = Effects::default();
        self.consume = None;
        self
    }
}

/// Decides one scanned text. See the module documentation for the order of the rules.
pub fn check_pass<'i, P: PresenceView + ?Sized>(
    index: &'i Index,
    presence: &P,
    book: &PassBook,
    input: &PassInput<'_>,
) -> PassDecision<'i> {
    let now = UtcMinute::from_datetime(input.now);
    let mut d = PassDecision {
        granted: false,
        reason: ReasonCode::DeniedPassMalformed,
        flags: Flags::NONE,
        claims: None,
        plate: None,
        booking: None,
        blacklist: None,
        data_version: index.data_version(),
        effects: Effects::default(),
        consume: None,
    };

    // 1. Signature.
    let claims = match verify(input.text, |kid| book.keys.key_for(kid, input.now)) {
        Ok(c) => c,
        Err(PassError::Malformed(_)) => return d.deny(ReasonCode::DeniedPassMalformed),
        Err(PassError::Forged) => {
            d.claims = read_unverified(input.text).ok();
            return d.deny(ReasonCode::DeniedPassForged);
        }
    };
    let booking_id = BookingId(claims.booking_id);
    let booking = index.booking(booking_id);
    d.booking = booking;
    let Ok(plate) = Plate::parse(&claims.plate) else {
        d.claims = Some(claims);
        return d.deny(ReasonCode::DeniedPassMalformed);
    };
    let identity = plate.with_colour(booking.and_then(|b| b.colour).unwrap_or(PlateColour::Blue));
    d.plate = Some(identity);
    let single_use = claims.single_use;
    let allowed = claims.gates.at(input.gate);
    let (valid_from, valid_until) = (claims.valid_from, claims.valid_until);
    d.claims = Some(claims);

    // 2. Blacklist on the plate, any colour.
    if let Some(e) = PlateColour::ALL
        .into_iter()
        .find_map(|c| index.blacklist_for_plate(plate.with_colour(c), now).next())
    {
        d.blacklist = Some(BlacklistHit {
            id: e.id,
            alarm: e.alarm,
        });
        return d.deny(ReasonCode::DeniedBlacklisted);
    }

    // 3. Window, gate, direction.
    if now < valid_from {
        return d.deny(ReasonCode::DeniedPassNotYetValid);
    }
    if now >= valid_until {
        return d.deny(ReasonCode::DeniedPassExpired);
    }
    if allowed == crate::domain::permit::DirectionSet::NONE {
        return d.deny(ReasonCode::DeniedPassWrongGate);
    }
    if !allowed.contains(input.direction) {
        return d.deny(ReasonCode::DeniedPassWrongDirection);
    }

    // 4. Revoked.
    if booking
        .is_some_and(|b| matches!(b.status, BookingStatus::Cancelled | BookingStatus::Rejected))
    {
        return d.deny(ReasonCode::DeniedPassRevoked);
    }

    // 5. Used.
    if single_use
        && (book.consumed(booking_id, input.direction)
            || booking.is_some_and(|b| b.pass_used(input.direction)))
    {
        return d.deny(ReasonCode::DeniedPassUsed);
    }

    // 6. Anti-passback on entries, the lock list on exits.
    match input.direction {
        Direction::Entry => {
            let as_decision = DecisionInput {
                read: CredentialRead::Plate(identity),
                gate: input.gate,
                lane: input.lane,
                direction: input.direction,
                now: input.now,
                tz: input.tz,
                passback: input.passback,
            };
            if let Err(r) = passback(&as_decision, presence.visitor(booking_id), &mut d.flags) {
                return d.deny(r);
            }
        }
        Direction::Exit => {
            if PlateColour::ALL
                .into_iter()
                .any(|c| index.locks_for(plate.with_colour(c), now).next().is_some())
            {
                return d.deny(ReasonCode::DeniedLockedVehicle);
            }
        }
    }

    d.granted = true;
    d.reason = ReasonCode::GrantedPass;
    d.effects.presence = Some(match input.direction {
        Direction::Entry => PresenceEffect::VisitorInside {
            booking: booking_id,
            gate: input.gate,
        },
        Direction::Exit => PresenceEffect::VisitorOutside {
            booking: booking_id,
        },
    });
    d.consume = single_use.then_some((booking_id, input.direction));
    d
}

#[cfg(test)]
mod tests;
