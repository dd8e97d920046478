//! The long-range UHF reader "0xA0" serial protocol (R2000-module readers), both sides, sans-IO.
//!
//! Frame, in both directions (docs/protocols.md#line-and-frame):
//! `Head=0xA0 | Len | Address | Cmd | Data… | Check`, where `Len` counts the bytes after itself
//! (Check included) and `Check` is the two's complement of the byte sum from Head to the last
//! data byte ([`crate::checksum::uhf_check`]).
//!
//! - [`HostFrame`] / [`HostCommand`]: what the gate controller sends to the reader.
//! - [`ReaderFrame`] / [`ReaderReply`]: what the reader answers (tag reports, completions,
//!   status codes, firmware version, buffered tags, tag memory read with 0x81).
//! - [`Decoder`]: a streaming, resynchronising framer, generic over the frame type it yields
//!   ([`HostDecoder`], [`ReaderDecoder`], or [`RawFrame`] for frames not interpreted at all).
//!
//! Decoding never fails: a frame whose checksum is valid but whose data does not fit the layout
//! expected for its `Cmd` becomes an `Other` / `Unknown` variant carrying the raw bytes, and line
//! noise is dropped and counted by the decoder. Encoding fails only for frames that cannot exist on
//! the wire ([`EncodeError`]).
//!
//! This module never does IO, never reads a clock, never sleeps and never panics on input bytes.

mod decoder;
mod host;
mod reader;

pub use decoder::{Decoder, HostDecoder, ReaderDecoder};
pub use host::{
    AntennaStay, FastSwitch, HostCommand, HostFrame, OutputPower, ReadTag, Session, Target,
    mem_bank,
};
pub use reader::{
    BufferedTag, FreqAnt, InventoryCmd, InventoryDone, ReaderFrame, ReaderReply, Rssi, StatusCode,
    TagData, TagReport, epc_len_from_pc, pc_for_epc_len,
};

use crate::checksum::uhf_check;

/// First byte of every frame, in both directions (docs/protocols.md#line-and-frame).
pub const HEAD: u8 = 0xA0;

/// Smallest valid `Len`: Address, Cmd and Check always follow the Len byte
/// (docs/protocols.md#line-and-frame).
pub const MIN_LEN: u8 = 3;

/// Longest possible frame: `Len` is one byte (at most 255) and counts the bytes after itself, so a
/// frame is at most Head + Len + 255 = 257 bytes (docs/protocols.md#line-and-frame).
pub const MAX_FRAME_LEN: usize = 257;

/// Most data bytes one frame can carry: the 255 bytes `Len` can count, minus Address, Cmd, Check.
pub const MAX_DATA_LEN: usize = 252;

/// The broadcast address: every reader on the bus acts on it (addresses 0–254 name one reader;
/// docs/protocols.md#line-and-frame).
pub const BROADCAST: u8 = 0xFF;

/// Command codes (docs/protocols.md#commands-the-host-sends). Replies echo the command code
/// they answer.
pub mod cmd {
    /// Reset the reader.
    pub const RESET: u8 = 0x70;
    /// Get the firmware version.
    pub const GET_FIRMWARE_VERSION: u8 = 0x72;
    /// Set the work antenna (0–3).
    pub const SET_WORK_ANTENNA: u8 = 0x74;
    /// Set the RF output power.
    pub const SET_OUTPUT_POWER: u8 = 0x76;
    /// Read a tag memory bank (the TID, for the driver): one reply per tag read
    /// (docs/protocols.md#reading-a-tags-tid).
    pub const READ_TAG: u8 = 0x81;
    /// Real-time inventory: one reply per tag read, then a completion frame.
    pub const REAL_TIME_INVENTORY: u8 = 0x89;
    /// Fast antenna-switching inventory.
    pub const FAST_SWITCH_INVENTORY: u8 = 0x8A;
    /// Session inventory (session 0–3, target A/B).
    pub const SESSION_INVENTORY: u8 = 0x8B;
    /// Read one buffered tag and its buffer count (captured reply in docs/protocols.md#replies).
    pub const GET_INVENTORY_BUFFER: u8 = 0x90;
}

/// Why a frame could not be encoded. Nothing is written to the output when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The frame's data would not fit the one-byte `Len`.
    #[error(
        "frame data of {len} bytes exceeds the {MAX_DATA_LEN}-byte maximum of the 0xA0 protocol"
    )]
    TooLong {
        /// The data length asked for.
        len: usize,
    },
    /// A tag report's EPC length disagrees with the word count in its PC, so no reader could
    /// have sent it and no decoder would read it back as a tag report.
    #[error("EPC of {epc_len} bytes does not match PC {pc:#06x} (which announces {} bytes)", epc_len_from_pc(*pc))]
    EpcLengthMismatch {
        /// The protocol-control word.
        pc: u16,
        /// The EPC length given.
        epc_len: usize,
    },
}

/// Types a [`Decoder`] can produce from a checksum-valid frame.
///
/// `from_parts` never fails: data that does not fit the layout for `cmd` must become a variant
/// that keeps the raw bytes.
pub trait UhfFrame: Sized {
    /// Builds the frame from the fields of a checksum-valid frame.
    fn from_parts(address: u8, cmd: u8, data: &[u8]) -> Self;
    /// Appends the whole frame (head to checksum) to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// The whole frame as a new vector.
    fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// A frame with its checksum checked but its data not interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawFrame {
    /// Reader address (0–254, or [`BROADCAST`]).
    pub address: u8,
    /// Command code.
    pub cmd: u8,
    /// The data bytes between Cmd and Check.
    pub data: Vec<u8>,
}

impl UhfFrame for RawFrame {
    fn from_parts(address: u8, cmd: u8, data: &[u8]) -> Self {
        RawFrame {
            address,
            cmd,
            data: data.to_vec(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_frame(out, self.address, self.cmd, &self.data)
    }
}

/// Appends `Head | Len | address | cmd | data | Check` to `out`.
pub(crate) fn write_frame(
    out: &mut Vec<u8>,
    address: u8,
    cmd: u8,
    data: &[u8],
) -> Result<(), EncodeError> {
    if data.len() > MAX_DATA_LEN {
        return Err(EncodeError::TooLong { len: data.len() });
    }
    let start = out.len();
    // Len counts Address, Cmd, the data and Check; fits in a byte because data ≤ 252.
    let len = (data.len() + 3) as u8;
    out.extend_from_slice(&[HEAD, len, address, cmd]);
    out.extend_from_slice(data);
    let check = uhf_check(&out[start..]);
    out.push(check);
    Ok(())
}
