//! Signed visitor passes (访客通行码): the token the centre issues when a booking is approved,
//! shown as a QR code, and verified by a gate **offline** with the site's public pass keys.
//!
//! Why a signature and not a look-up: a gate must let a visitor in while the network is down,
//! and a pass must not be forgeable by anyone who has seen one. The centre signs the pass's
//! claims with the site's Ed25519 pass key (made and rotated by `gatehouse pki pass-key`); the
//! gates hold only the public keys (they reach them through the sync, in
//! [`crate::wire::sync::GateSettings::pass_keys`]), so a gate that is stolen or read out can
//! verify passes but never make one.
//!
//! The token is compact so that the QR code stays small and a cheap scanner reads it at a
//! glance: `GHP1.` and then base64url (no padding) of the binary claims followed by the 64-byte
//! signature over them. QR scanners send plain ASCII, which base64url is.
//!
//! ```text
//! claims: version u8 (1) | key id u16 | booking id u32 | valid from u32 | valid until u32
//!         (UTC minutes since the epoch, until exclusive) | flags u8 (bit 0 single use,
//!         bit 1 every gate) | directions u8 (with "every gate") or count u8 + count × (gate
//!         u16 | directions u8) | plate length u8 | plate UTF-8 (normalised)
//! all integers big-endian; directions: bit 0 entry, bit 1 exit
//! ```
//!
//! What it never does: decide whether the pass opens (window, gate, direction, single use and
//! revocation are the gate's decision, `gate::pass_check`), read a clock, or do IO.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::domain::permit::DirectionSet;
use crate::domain::{Direction, GateId, UtcMinute};

/// What every pass token starts with (the format's version is in the name).
pub const PREFIX: &str = "GHP1.";

/// The longest token text a gate reads; anything longer is not a pass (a scanner's line is
/// bounded by this before it is decoded).
pub const MAX_TOKEN_LEN: usize = 512;

/// The claims' format version inside the token.
const VERSION: u8 = 1;
const SIGNATURE_LEN: usize = 64;
const FLAG_SINGLE_USE: u8 = 1;
const FLAG_EVERY_GATE: u8 = 2;

/// Where a pass may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassGates {
    /// Every gate of the site, in these directions.
    Every(DirectionSet),
    /// These gates, each in its directions (at most 255).
    Some(Vec<(GateId, DirectionSet)>),
}

impl PassGates {
    /// The directions the pass allows at `gate` (none if the gate is not listed).
    pub fn at(&self, gate: GateId) -> DirectionSet {
        match self {
            PassGates::Every(d) => *d,
            PassGates::Some(list) => list
                .iter()
                .find(|(g, _)| *g == gate)
                .map(|(_, d)| *d)
                .unwrap_or(DirectionSet::NONE),
        }
    }
}

/// What a pass says. Signed as a whole: changing any byte of it makes the signature fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassClaims {
    /// The pass key that signed it.
    pub key_id: u16,
    /// The visitor booking it was issued for (its revocation is the booking's).
    pub booking_id: u32,
    /// The visitor's plate, normalised (`京A12345`).
    pub plate: String,
    /// First minute of validity (inclusive).
    pub valid_from: UtcMinute,
    /// End of validity (exclusive).
    pub valid_until: UtcMinute,
    /// One entry and one exit, campus-wide; otherwise any number within the window.
    pub single_use: bool,
    /// Where it may be used.
    pub gates: PassGates,
}

impl PassClaims {
    /// Whether the pass allows `direction` at `gate` (window and use not checked).
    pub fn allows(&self, gate: GateId, direction: Direction) -> bool {
        self.gates.at(gate).contains(direction)
    }
}

/// Why a text is not a valid pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    /// Not a pass at all: another QR code, a truncated scan, noise.
    #[error("not a pass: {0}")]
    Malformed(&'static str),
    /// Well-formed, but no known key made its signature (changed, made up, or signed with a
    /// key the gate does not hold or that was retired).
    #[error("the pass's signature is not valid")]
    Forged,
}

/// A pass key's public half as the gates receive it through the sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassKeyWire {
    /// The key id passes name.
    pub kid: u16,
    /// The Ed25519 public key, 32 bytes in lower-case hex.
    pub public_key: String,
    /// After this instant (UTC milliseconds) passes signed with the key are no longer accepted
    /// (a rotated-out key's overlap ends); `None` while the key is current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_after_ms: Option<i64>,
}

impl PassKeyWire {
    /// The 32 key bytes, if the hex is well formed.
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        let bytes = hex::decode(&self.public_key).ok()?;
        bytes.try_into().ok()
    }
}

/// The text of a pass (what the QR code holds), signed with `key` (a PKCS#8 Ed25519 key as
/// `gatehouse pki pass-key` writes it). Fails only on claims that cannot be encoded (a plate
/// over 255 bytes, more than 255 gates).
pub fn sign(claims: &PassClaims, key: &Ed25519KeyPair) -> Result<String, PassError> {
    let mut bytes = encode_claims(claims)?;
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(signature.as_ref());
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes)))
}

/// The public key of a signing key, as the gates receive it.
pub fn public_key_hex(key: &Ed25519KeyPair) -> String {
    hex::encode(key.public_key().as_ref())
}

/// Reads a scanned text and checks its signature with the key its claims name. `key_for`
/// returns the 32-byte public key of a key id the caller accepts (current or still in its
/// overlap), `None` otherwise. Surrounding whitespace is ignored.
pub fn verify(
    text: &str,
    key_for: impl Fn(u16) -> Option<[u8; 32]>,
) -> Result<PassClaims, PassError> {
    let (claims, signed, signature) = parse(text)?;
    let key = key_for(claims.key_id).ok_or(PassError::Forged)?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&signed, &signature)
        .map_err(|_| PassError::Forged)?;
    Ok(claims)
}

/// Reads a pass's claims **without** checking the signature (for showing what a refused pass
/// said; never for deciding).
pub fn read_unverified(text: &str) -> Result<PassClaims, PassError> {
    parse(text).map(|(claims, _, _)| claims)
}

fn parse(text: &str) -> Result<(PassClaims, Vec<u8>, Vec<u8>), PassError> {
    let text = text.trim();
    if text.len() > MAX_TOKEN_LEN {
        return Err(PassError::Malformed("too long"));
    }
    let body = text
        .strip_prefix(PREFIX)
        .ok_or(PassError::Malformed("no GHP1. prefix"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| PassError::Malformed("not base64url"))?;
    if bytes.len() <= SIGNATURE_LEN {
        return Err(PassError::Malformed("too short"));
    }
    let (signed, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let claims = decode_claims(signed)?;
    Ok((claims, signed.to_vec(), signature.to_vec()))
}

fn directions_byte(d: DirectionSet) -> u8 {
    u8::from(d.contains(Direction::Entry)) | (u8::from(d.contains(Direction::Exit)) << 1)
}

fn directions_of(b: u8) -> Result<DirectionSet, PassError> {
    match b {
        0 => Ok(DirectionSet::NONE),
        1 => Ok(DirectionSet::ENTRY),
        2 => Ok(DirectionSet::EXIT),
        3 => Ok(DirectionSet::BOTH),
        _ => Err(PassError::Malformed("bad directions")),
    }
}

fn encode_claims(c: &PassClaims) -> Result<Vec<u8>, PassError> {
    let mut out = Vec::with_capacity(32 + c.plate.len());
    out.push(VERSION);
    out.extend_from_slice(&c.key_id.to_be_bytes());
    out.extend_from_slice(&c.booking_id.to_be_bytes());
    out.extend_from_slice(&c.valid_from.0.to_be_bytes());
    out.extend_from_slice(&c.valid_until.0.to_be_bytes());
    let mut flags = 0;
    if c.single_use {
        flags |= FLAG_SINGLE_USE;
    }
    match &c.gates {
        PassGates::Every(d) => {
            out.push(flags | FLAG_EVERY_GATE);
            out.push(directions_byte(*d));
        }
        PassGates::Some(list) => {
            out.push(flags);
            let n = u8::try_from(list.len()).map_err(|_| PassError::Malformed("too many gates"))?;
            out.push(n);
            for (gate, d) in list {
                out.extend_from_slice(&gate.0.to_be_bytes());
                out.push(directions_byte(*d));
            }
        }
    }
    let n = u8::try_from(c.plate.len()).map_err(|_| PassError::Malformed("plate too long"))?;
    out.push(n);
    out.extend_from_slice(c.plate.as_bytes());
    Ok(out)
}

/// A cursor over the claims' bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PassError> {
        if self.0.len() < n {
            return Err(PassError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, PassError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PassError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, PassError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn decode_claims(bytes: &[u8]) -> Result<PassClaims, PassError> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err(PassError::Malformed("unknown version"));
    }
    let key_id = r.u16()?;
    let booking_id = r.u32()?;
    let valid_from = UtcMinute(r.u32()?);
    let valid_until = UtcMinute(r.u32()?);
    let flags = r.u8()?;
    if flags & !(FLAG_SINGLE_USE | FLAG_EVERY_GATE) != 0 {
        return Err(PassError::Malformed("unknown flags"));
    }
    let gates = if flags & FLAG_EVERY_GATE != 0 {
        PassGates::Every(directions_of(r.u8()?)?)
    } else {
        let n = r.u8()?;
        let mut list = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let gate = GateId(r.u16()?);
            list.push((gate, directions_of(r.u8()?)?));
        }
        PassGates::Some(list)
    };
    let n = usize::from(r.u8()?);
    let plate = std::str::from_utf8(r.take(n)?)
        .map_err(|_| PassError::Malformed("plate not UTF-8"))?
        .to_string();
    if !r.0.is_empty() {
        return Err(PassError::Malformed("trailing bytes"));
    }
    Ok(PassClaims {
        key_id,
        booking_id,
        plate,
        valid_from,
        valid_until,
        single_use: flags & FLAG_SINGLE_USE != 0,
        gates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn claims() -> PassClaims {
        PassClaims {
            key_id: 3,
            booking_id: 4711,
            plate: "京A12345".into(),
            valid_from: UtcMinute(29_000_000),
            valid_until: UtcMinute(29_000_600),
            single_use: true,
            gates: PassGates::Some(vec![
                (GateId(1), DirectionSet::BOTH),
                (GateId(2), DirectionSet::ENTRY),
            ]),
        }
    }

    fn keys_of(k: &Ed25519KeyPair) -> impl Fn(u16) -> Option<[u8; 32]> + '_ {
        move |kid| (kid == 3).then(|| k.public_key().as_ref().try_into().unwrap())
    }

    #[test]
    fn a_signed_pass_verifies_with_its_key_and_says_what_was_signed() {
        let k = key();
        let text = sign(&claims(), &k).unwrap();
        assert!(text.starts_with(PREFIX));
        assert!(text.is_ascii());
        assert!(text.len() < 160, "{} characters", text.len());
        assert_eq!(verify(&text, keys_of(&k)).unwrap(), claims());
        assert_eq!(
            verify(&format!(" {text}\r\n"), keys_of(&k)).unwrap(),
            claims()
        );
        let every = PassClaims {
            gates: PassGates::Every(DirectionSet::BOTH),
            single_use: false,
            ..claims()
        };
        let text = sign(&every, &k).unwrap();
        assert_eq!(verify(&text, keys_of(&k)).unwrap(), every);
    }

    #[test]
    fn a_pass_with_any_byte_changed_is_forged_or_malformed_never_valid() {
        let k = key();
        let text = sign(&claims(), &k).unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&text[PREFIX.len()..]).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            let changed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(verify(&changed, keys_of(&k)).is_err(), "byte {i} changed");
            bytes[i] ^= 0x01;
        }
        // One character of the text changed.
        let mut chars: Vec<char> = text.chars().collect();
        let last = chars.len() - 10;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        let changed: String = chars.into_iter().collect();
        assert_eq!(verify(&changed, keys_of(&k)), Err(PassError::Forged));
    }

    #[test]
    fn a_pass_signed_by_another_key_or_an_unknown_key_id_is_forged() {
        let k = key();
        let other = key();
        let text = sign(&claims(), &other).unwrap();
        assert_eq!(verify(&text, keys_of(&k)), Err(PassError::Forged));
        let text = sign(
            &PassClaims {
                key_id: 9,
                ..claims()
            },
            &k,
        )
        .unwrap();
        assert_eq!(verify(&text, keys_of(&k)), Err(PassError::Forged));
    }

    #[test]
    fn texts_that_are_not_passes_are_malformed_and_never_panic() {
        let k = key();
        for text in [
            "",
            "GHP1.",
            "GHP1.!!!!",
            "https://example.com/",
            "GHP1.AAAA",
            &"GHP1.".repeat(200),
            "GHP1.\u{0}\u{7f}",
        ] {
            assert!(
                matches!(verify(text, keys_of(&k)), Err(PassError::Malformed(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_pass_allows_only_its_gates_and_directions() {
        let c = claims();
        assert!(c.allows(GateId(1), Direction::Exit));
        assert!(c.allows(GateId(2), Direction::Entry));
        assert!(!c.allows(GateId(2), Direction::Exit));
        assert!(!c.allows(GateId(3), Direction::Entry));
    }
}
