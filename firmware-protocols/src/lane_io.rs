//! Which coil and which discrete input of a lane's Modbus I/O module means what
//! (docs/protocols.md#points).
//!
//! A [`LaneIoMap`] names the module's slave address, the four coils the controller drives
//! ([`LaneCoil`]: OPEN pulse, CLOSE pulse, STOP/hold, light/alarm), the six inputs it reads
//! ([`LaneInputs`]: presence loop, safety loop, open limit, closed limit, fire linkage, tamper),
//! and how long an OPEN or CLOSE pulse lasts. The defaults are Gatehouse's standard wiring; every
//! address can be changed per lane in the TOML configuration (the struct is serde
//! `Deserialize`), and [`LaneIoMap::validate`] refuses a map that puts two signals on one point.
//!
//! # Fail-safe
//! Loop detectors are wired fail-safe: a faulty loop reads as *occupied*, which keeps the arm up.
//! This module keeps that property on its side: [`LaneIoMap::inputs_from_bits`] refuses (rather
//! than guesses) when the bits read do not cover every mapped input, and
//! [`LaneInputs::vehicle_on_a_loop`] is the one question a controller asks before a CLOSE. A
//! controller that cannot read the inputs (timeout, CRC, exception, short reply) must treat the
//! lane as occupied: never CLOSE, leave the arm as it is, tell the guard.
//!
//! This module never talks Modbus itself and never does IO; it only maps addresses.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::modbus::MAX_SLAVE;

/// A coil the controller drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaneCoil {
    /// OPEN contact: a pulse raises the arm.
    Open,
    /// CLOSE contact: a pulse lowers the arm (the controller must check the loops first).
    Close,
    /// STOP / hold: held on while the arm must not move (lockdown, fault).
    Stop,
    /// Lane signal light or alarm output.
    Light,
}

impl LaneCoil {
    /// Every coil, in default address order.
    pub const ALL: [LaneCoil; 4] = [
        LaneCoil::Open,
        LaneCoil::Close,
        LaneCoil::Stop,
        LaneCoil::Light,
    ];
}

/// A discrete input the controller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LaneInput {
    /// Presence loop before the arm.
    Presence,
    /// Safety loop under / after the arm.
    Safety,
    /// Arm open limit switch (开到位).
    OpenLimit,
    /// Arm closed limit switch (关到位).
    ClosedLimit,
    /// Fire-alarm linkage: forces the arm open.
    Fire,
    /// Cabinet tamper switch.
    Tamper,
}

impl LaneInput {
    /// Every input, in default address order.
    pub const ALL: [LaneInput; 6] = [
        LaneInput::Presence,
        LaneInput::Safety,
        LaneInput::OpenLimit,
        LaneInput::ClosedLimit,
        LaneInput::Fire,
        LaneInput::Tamper,
    ];
}

/// Coil addresses (0-based Modbus addresses, as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoilAddresses {
    /// OPEN pulse (default 0).
    pub open: u16,
    /// CLOSE pulse (default 1).
    pub close: u16,
    /// STOP / hold (default 2).
    pub stop: u16,
    /// Light / alarm (default 3).
    pub light: u16,
}

impl Default for CoilAddresses {
    fn default() -> CoilAddresses {
        CoilAddresses {
            open: 0,
            close: 1,
            stop: 2,
            light: 3,
        }
    }
}

/// Discrete input addresses (0-based Modbus addresses, as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputAddresses {
    /// Presence loop (default 0).
    pub presence: u16,
    /// Safety loop (default 1).
    pub safety: u16,
    /// Open limit (default 2).
    pub open_limit: u16,
    /// Closed limit (default 3).
    pub closed_limit: u16,
    /// Fire linkage (default 4).
    pub fire: u16,
    /// Tamper (default 5).
    pub tamper: u16,
}

impl Default for InputAddresses {
    fn default() -> InputAddresses {
        InputAddresses {
            presence: 0,
            safety: 1,
            open_limit: 2,
            closed_limit: 3,
            fire: 4,
            tamper: 5,
        }
    }
}

/// One lane's I/O module: where it is on the bus and what each point means.
///
/// In TOML every field is optional and defaults to the standard wiring:
/// ```toml
/// slave = 1
/// pulse_ms = 500
/// [coils]
/// open = 0
/// [inputs]
/// presence = 0
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaneIoMap {
    /// Modbus slave address of the module, 1–247 (default 1).
    pub slave: u8,
    /// How long the controller holds OPEN or CLOSE on for one pulse, in ms (default 500).
    pub pulse_ms: u32,
    /// Coil addresses.
    pub coils: CoilAddresses,
    /// Input addresses.
    pub inputs: InputAddresses,
}

impl Default for LaneIoMap {
    fn default() -> LaneIoMap {
        LaneIoMap {
            slave: 1,
            pulse_ms: 500,
            coils: CoilAddresses::default(),
            inputs: InputAddresses::default(),
        }
    }
}

/// Why a [`LaneIoMap`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LaneIoMapError {
    /// The slave address is broadcast (0) or reserved (248–255).
    #[error("slave address {0} is not a unicast address (1-247)")]
    SlaveAddress(u8),
    /// A zero-length pulse would never close the contact.
    #[error("the pulse length must be at least 1 ms")]
    ZeroPulse,
    /// Two coils share an address.
    #[error("coils {first:?} and {second:?} are both mapped to coil {address}")]
    SharedCoil {
        /// The address.
        address: u16,
        /// One coil.
        first: LaneCoil,
        /// The other.
        second: LaneCoil,
    },
    /// Two inputs share an address.
    #[error("inputs {first:?} and {second:?} are both mapped to input {address}")]
    SharedInput {
        /// The address.
        address: u16,
        /// One input.
        first: LaneInput,
        /// The other.
        second: LaneInput,
    },
}

/// A contiguous range of addresses: what one read request must cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First address.
    pub start: u16,
    /// How many points (at least 1).
    pub count: u16,
}

impl Span {
    fn covering(addresses: impl Iterator<Item = u16>) -> Span {
        let (low, high) = addresses.fold((u16::MAX, 0), |(lo, hi), a| (lo.min(a), hi.max(a)));
        Span {
            start: low,
            count: high - low + 1,
        }
    }

    /// Whether `address` lies in the span.
    pub fn contains(&self, address: u16) -> bool {
        address >= self.start && u32::from(address) < u32::from(self.start) + u32::from(self.count)
    }
}

/// The inputs of one lane, as read in one go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneInputs {
    /// A vehicle is on the presence loop (or the loop is faulty).
    pub presence: bool,
    /// A vehicle is on the safety loop (or the loop is faulty).
    pub safety: bool,
    /// The arm is fully open.
    pub open_limit: bool,
    /// The arm is fully closed.
    pub closed_limit: bool,
    /// The fire alarm demands the lane open.
    pub fire: bool,
    /// The cabinet is open.
    pub tamper: bool,
}

impl LaneInputs {
    /// Whether either loop reports a vehicle: while true the controller must not command CLOSE.
    /// A faulty loop reads as occupied, so this is also true for a broken detector.
    pub fn vehicle_on_a_loop(&self) -> bool {
        self.presence || self.safety
    }

    /// The value of one input.
    pub fn get(&self, input: LaneInput) -> bool {
        match input {
            LaneInput::Presence => self.presence,
            LaneInput::Safety => self.safety,
            LaneInput::OpenLimit => self.open_limit,
            LaneInput::ClosedLimit => self.closed_limit,
            LaneInput::Fire => self.fire,
            LaneInput::Tamper => self.tamper,
        }
    }
}

/// The bits read do not cover a mapped input: the read cannot be trusted as lane state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("input {input:?} at address {address} is not among the bits read")]
pub struct MissingInput {
    /// The input that was not read.
    pub input: LaneInput,
    /// Its address.
    pub address: u16,
}

impl LaneIoMap {
    /// Checks the slave address, the pulse length and that no two signals share a point.
    pub fn validate(&self) -> Result<(), LaneIoMapError> {
        if self.slave == 0 || self.slave > MAX_SLAVE {
            return Err(LaneIoMapError::SlaveAddress(self.slave));
        }
        if self.pulse_ms == 0 {
            return Err(LaneIoMapError::ZeroPulse);
        }
        for (i, first) in LaneCoil::ALL.iter().enumerate() {
            for second in &LaneCoil::ALL[i + 1..] {
                let address = self.coil_address(*first);
                if address == self.coil_address(*second) {
                    return Err(LaneIoMapError::SharedCoil {
                        address,
                        first: *first,
                        second: *second,
                    });
                }
            }
        }
        for (i, first) in LaneInput::ALL.iter().enumerate() {
            for second in &LaneInput::ALL[i + 1..] {
                let address = self.input_address(*first);
                if address == self.input_address(*second) {
                    return Err(LaneIoMapError::SharedInput {
                        address,
                        first: *first,
                        second: *second,
                    });
                }
            }
        }
        Ok(())
    }

    /// The pulse length.
    pub fn pulse(&self) -> Duration {
        Duration::from_millis(u64::from(self.pulse_ms))
    }

    /// The address of a coil.
    pub fn coil_address(&self, coil: LaneCoil) -> u16 {
        match coil {
            LaneCoil::Open => self.coils.open,
            LaneCoil::Close => self.coils.close,
            LaneCoil::Stop => self.coils.stop,
            LaneCoil::Light => self.coils.light,
        }
    }

    /// The coil mapped at `address`, if any.
    pub fn coil_at(&self, address: u16) -> Option<LaneCoil> {
        LaneCoil::ALL
            .into_iter()
            .find(|coil| self.coil_address(*coil) == address)
    }

    /// The address of an input.
    pub fn input_address(&self, input: LaneInput) -> u16 {
        match input {
            LaneInput::Presence => self.inputs.presence,
            LaneInput::Safety => self.inputs.safety,
            LaneInput::OpenLimit => self.inputs.open_limit,
            LaneInput::ClosedLimit => self.inputs.closed_limit,
            LaneInput::Fire => self.inputs.fire,
            LaneInput::Tamper => self.inputs.tamper,
        }
    }

    /// The input mapped at `address`, if any.
    pub fn input_at(&self, address: u16) -> Option<LaneInput> {
        LaneInput::ALL
            .into_iter()
            .find(|input| self.input_address(*input) == address)
    }

    /// The smallest range of inputs one read must cover to see every mapped input (0..6 by
    /// default).
    pub fn input_span(&self) -> Span {
        Span::covering(LaneInput::ALL.into_iter().map(|i| self.input_address(i)))
    }

    /// The smallest range of coils covering every mapped coil (0..4 by default).
    pub fn coil_span(&self) -> Span {
        Span::covering(LaneCoil::ALL.into_iter().map(|c| self.coil_address(c)))
    }

    /// Builds the lane's inputs from bits read starting at address `start` (as returned by a
    /// read-discrete-inputs request; extra bits, such as a reply's padding, are ignored).
    /// Refuses, rather than guessing, when a mapped input is not among them.
    pub fn inputs_from_bits(&self, start: u16, bits: &[bool]) -> Result<LaneInputs, MissingInput> {
        let bit = |input: LaneInput| {
            let address = self.input_address(input);
            address
                .checked_sub(start)
                .and_then(|offset| bits.get(usize::from(offset)).copied())
                .ok_or(MissingInput { input, address })
        };
        Ok(LaneInputs {
            presence: bit(LaneInput::Presence)?,
            safety: bit(LaneInput::Safety)?,
            open_limit: bit(LaneInput::OpenLimit)?,
            closed_limit: bit(LaneInput::ClosedLimit)?,
            fire: bit(LaneInput::Fire)?,
            tamper: bit(LaneInput::Tamper)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_map_is_the_standard_wiring_and_valid() {
        let map = LaneIoMap::default();
        assert_eq!(map.validate(), Ok(()));
        assert_eq!(map.slave, 1);
        assert_eq!(map.pulse(), Duration::from_millis(500));
        let coils: Vec<u16> = LaneCoil::ALL.iter().map(|c| map.coil_address(*c)).collect();
        assert_eq!(coils, [0, 1, 2, 3]);
        let inputs: Vec<u16> = LaneInput::ALL
            .iter()
            .map(|i| map.input_address(*i))
            .collect();
        assert_eq!(inputs, [0, 1, 2, 3, 4, 5]);
        assert_eq!(map.input_span(), Span { start: 0, count: 6 });
        assert_eq!(map.coil_span(), Span { start: 0, count: 4 });
    }

    #[test]
    fn two_inputs_on_one_address_are_refused() {
        let mut map = LaneIoMap::default();
        map.inputs.tamper = map.inputs.presence;
        assert_eq!(
            map.validate(),
            Err(LaneIoMapError::SharedInput {
                address: 0,
                first: LaneInput::Presence,
                second: LaneInput::Tamper
            })
        );
    }

    #[test]
    fn two_coils_on_one_address_are_refused() {
        let mut map = LaneIoMap::default();
        map.coils.light = map.coils.close;
        assert!(matches!(
            map.validate(),
            Err(LaneIoMapError::SharedCoil { address: 1, .. })
        ));
    }

    #[test]
    fn broadcast_and_reserved_slave_addresses_are_refused() {
        for slave in [0, 248, 255] {
            let map = LaneIoMap {
                slave,
                ..LaneIoMap::default()
            };
            assert_eq!(map.validate(), Err(LaneIoMapError::SlaveAddress(slave)));
        }
    }

    #[test]
    fn inputs_are_read_relative_to_the_start_address_of_the_read() {
        let map = LaneIoMap {
            inputs: InputAddresses {
                presence: 12,
                safety: 10,
                open_limit: 11,
                closed_limit: 13,
                fire: 14,
                tamper: 15,
            },
            ..LaneIoMap::default()
        };
        assert_eq!(
            map.input_span(),
            Span {
                start: 10,
                count: 6
            }
        );
        let bits = [true, false, false, true, false, false, false, false];
        let inputs = map.inputs_from_bits(10, &bits).unwrap();
        assert!(inputs.safety && inputs.closed_limit);
        assert!(!inputs.presence && !inputs.open_limit && !inputs.fire && !inputs.tamper);
        assert!(inputs.vehicle_on_a_loop());
    }

    #[test]
    fn a_read_that_misses_a_mapped_input_is_refused_not_guessed() {
        let map = LaneIoMap::default();
        assert_eq!(
            map.inputs_from_bits(0, &[false; 5]),
            Err(MissingInput {
                input: LaneInput::Tamper,
                address: 5
            })
        );
        assert_eq!(
            map.inputs_from_bits(1, &[false; 8]),
            Err(MissingInput {
                input: LaneInput::Presence,
                address: 0
            })
        );
    }

    #[test]
    fn coils_and_inputs_are_found_by_address() {
        let map = LaneIoMap::default();
        assert_eq!(map.coil_at(2), Some(LaneCoil::Stop));
        assert_eq!(map.coil_at(7), None);
        assert_eq!(map.input_at(4), Some(LaneInput::Fire));
        assert_eq!(map.input_at(6), None);
    }
}
