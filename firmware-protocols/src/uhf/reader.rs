//! Reader-to-host frames of the 0xA0 protocol: tag reports, inventory completions, status codes,
//! the firmware version and buffered tags.
//!
//! Replies are told apart by `Cmd` and by `Len` (docs/protocols.md#replies). A checksum-valid
//! frame that fits none of the layouts below decodes as [`ReaderReply::Unknown`]. This module
//! never does IO and never panics on input bytes.

use super::{EncodeError, MAX_DATA_LEN, UhfFrame, cmd, write_frame};
use crate::checksum::crc16_genibus;

/// One frame from a reader to the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReaderFrame {
    /// Address of the reader that sent it.
    pub address: u8,
    /// The reply.
    pub reply: ReaderReply,
}

/// What a reader says (docs/protocols.md#replies).
///
/// Decoding rules, in order:
/// 1. one data byte (Len = 4), any `Cmd`: [`ReaderReply::Status`];
/// 2. `Cmd` 0x72 with two data bytes: [`ReaderReply::FirmwareVersion`];
/// 3. an inventory `Cmd` (0x89, 0x8A, 0x8B) whose length matches the EPC length announced by its PC
///    (Len = 7 + N, or 9 + N with phase): [`ReaderReply::Tag`];
/// 4. an inventory `Cmd` with Len 0x0A or 0x0B: [`ReaderReply::InventoryDone`]. Len 0x0B is also
///    the length of a tag report with a 4-byte EPC (or a 2-byte EPC with phase); rule 3 wins, because
///    the completion would then need a read rate of 2048/s or more, beyond what these readers do;
/// 5. `Cmd` 0x90 whose DataLen matches the frame length: [`ReaderReply::BufferedTag`];
/// 6. `Cmd` 0x81 whose DataLen and ReadLen fit the frame: [`ReaderReply::TagData`];
/// 7. anything else: [`ReaderReply::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReaderReply {
    /// One tag read during an inventory.
    Tag {
        /// Which inventory command this answers.
        cmd: InventoryCmd,
        /// The read.
        report: TagReport,
    },
    /// The end of an inventory command. Its fields are diagnostics: sources split the data bytes
    /// differently, so do not base decisions on them.
    InventoryDone {
        /// Which inventory command this ends.
        cmd: InventoryCmd,
        /// The counters.
        done: InventoryDone,
    },
    /// A bare status reply (Len = 4), for any command.
    Status {
        /// The command this answers.
        cmd: u8,
        /// What happened.
        code: StatusCode,
    },
    /// Answer to 0x72.
    FirmwareVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// Answer to 0x90: one tag from the reader's inventory buffer.
    BufferedTag(BufferedTag),
    /// Answer to 0x81: one tag's EPC and the memory words read from it (its TID, for the
    /// driver).
    TagData(TagData),
    /// A checksum-valid frame with no typed layout.
    Unknown {
        /// Command code.
        cmd: u8,
        /// Raw data bytes.
        data: Vec<u8>,
    },
}

/// The inventory commands whose replies carry tag reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InventoryCmd {
    /// 0x89 real-time inventory.
    RealTime,
    /// 0x8A fast antenna-switching inventory.
    FastSwitch,
    /// 0x8B session inventory.
    Session,
}

impl InventoryCmd {
    /// The command code.
    pub fn code(self) -> u8 {
        match self {
            InventoryCmd::RealTime => cmd::REAL_TIME_INVENTORY,
            InventoryCmd::FastSwitch => cmd::FAST_SWITCH_INVENTORY,
            InventoryCmd::Session => cmd::SESSION_INVENTORY,
        }
    }

    /// The inventory command with this code, if it is one.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            cmd::REAL_TIME_INVENTORY => Some(InventoryCmd::RealTime),
            cmd::FAST_SWITCH_INVENTORY => Some(InventoryCmd::FastSwitch),
            cmd::SESSION_INVENTORY => Some(InventoryCmd::Session),
            _ => None,
        }
    }
}

/// The `FreqAnt` byte: bits 7..2 frequency index, bits 1..0 antenna 0–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FreqAnt(pub u8);

impl FreqAnt {
    /// Packs a frequency index (0–63, higher bits ignored) and an antenna (0–3, higher bits ignored).
    pub fn new(freq_index: u8, antenna: u8) -> Self {
        FreqAnt((freq_index << 2) | (antenna & 0x03))
    }

    /// Frequency index: 0–6 = 865.0–868.0 MHz, 7–59 = 902.0–928.0 MHz, in 0.5 MHz steps.
    pub fn freq_index(self) -> u8 {
        self.0 >> 2
    }

    /// Antenna 0–3 within its bank (see [`Rssi::high_bank`]).
    pub fn antenna(self) -> u8 {
        self.0 & 0x03
    }

    /// Carrier frequency in kHz for indexes 0–59 (docs/protocols.md#replies), `None` beyond.
    pub fn freq_khz(self) -> Option<u32> {
        let i = u32::from(self.freq_index());
        match i {
            0..=6 => Some(865_000 + 500 * i),
            7..=59 => Some(902_000 + 500 * (i - 7)),
            _ => None,
        }
    }
}

/// The raw RSSI byte: bits 6..0 signal strength, bit 7 the antenna bank on 8-port readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rssi(pub u8);

impl Rssi {
    /// Lowest dBm the 7 bits can express (raw 0).
    pub const MIN_DBM: i16 = -129;
    /// Highest dBm the 7 bits can express (raw 0x7F).
    pub const MAX_DBM: i16 = -2;

    /// Signal strength in dBm: `(raw & 0x7F) − 129` (docs/protocols.md#replies).
    pub fn dbm(self) -> i16 {
        i16::from(self.0 & 0x7F) - 129
    }

    /// Bit 7: on 8-port readers, set when the antenna is 4–7 (ports 5–8).
    pub fn high_bank(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// Encodes a dBm value (clamped to −129..=−2) and the bank bit.
    pub fn from_dbm(dbm: i16, high_bank: bool) -> Self {
        let raw = (dbm.clamp(Self::MIN_DBM, Self::MAX_DBM) + 129) as u8;
        Rssi(raw | if high_bank { 0x80 } else { 0 })
    }
}

/// EPC length in bytes announced by a PC word: `((PC >> 11) & 0x1F) * 2`
/// (docs/protocols.md#replies).
pub fn epc_len_from_pc(pc: u16) -> usize {
    usize::from((pc >> 11) & 0x1F) * 2
}

/// The PC word (other bits zero) announcing an EPC of `len` bytes, if `len` is even and ≤ 62.
pub fn pc_for_epc_len(len: usize) -> Option<u16> {
    (len.is_multiple_of(2) && len <= 62).then_some(((len / 2) as u16) << 11)
}

/// One tag read: `FreqAnt | PC(2, big-endian) | EPC(N) | RSSI [| Phase(2)]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagReport {
    /// Frequency index and antenna.
    pub freq_ant: FreqAnt,
    /// Protocol-control word; its bits 15..11 give the EPC length in words.
    pub pc: u16,
    /// The EPC; its length must equal [`epc_len_from_pc`]`(pc)`.
    pub epc: Vec<u8>,
    /// Signal strength and antenna bank.
    pub rssi: Rssi,
    /// Phase, when the firmware appends it (Len = 9 + N).
    pub phase: Option<u16>,
}

impl TagReport {
    /// Antenna 0–7: the `FreqAnt` antenna, plus 4 when the RSSI bank bit is set.
    pub fn antenna(&self) -> u8 {
        self.freq_ant.antenna() + if self.rssi.high_bank() { 4 } else { 0 }
    }

    /// Signal strength in dBm.
    pub fn dbm(&self) -> i16 {
        self.rssi.dbm()
    }

    fn parse(data: &[u8]) -> Option<Self> {
        let (&freq_ant, rest) = data.split_first()?;
        let pc = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
        let n = epc_len_from_pc(pc);
        let phase = if data.len() == 4 + n {
            None
        } else if data.len() == 6 + n {
            Some(u16::from_be_bytes([data[4 + n], data[5 + n]]))
        } else {
            return None;
        };
        Some(TagReport {
            freq_ant: FreqAnt(freq_ant),
            pc,
            epc: data[3..3 + n].to_vec(),
            rssi: Rssi(data[3 + n]),
            phase,
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.epc.len() != epc_len_from_pc(self.pc) {
            return Err(EncodeError::EpcLengthMismatch {
                pc: self.pc,
                epc_len: self.epc.len(),
            });
        }
        out.push(self.freq_ant.0);
        out.extend_from_slice(&self.pc.to_be_bytes());
        out.extend_from_slice(&self.epc);
        out.push(self.rssi.0);
        if let Some(phase) = self.phase {
            out.extend_from_slice(&phase.to_be_bytes());
        }
        Ok(())
    }
}

/// The completion counters: `AntID | ReadRate(2) | TotalRead(4) [| one more byte]`, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InventoryDone {
    /// Antenna the round ended on.
    pub antenna: u8,
    /// Reads per second.
    pub read_rate: u16,
    /// Reads during the command.
    pub total_read: u32,
    /// The eighth data byte some firmware sends (Len = 0x0B); meaning unknown, kept as is.
    /// A completion with this set and a read rate of 0x0800–0x17FF reads back as a tag report
    /// (see [`ReaderReply`] rule 4).
    pub trailing: Option<u8>,
}

impl InventoryDone {
    fn parse(data: &[u8]) -> Option<Self> {
        let trailing = match data.len() {
            7 => None,
            8 => Some(data[7]),
            _ => return None,
        };
        Some(InventoryDone {
            antenna: data[0],
            read_rate: u16::from_be_bytes([data[1], data[2]]),
            total_read: u32::from_be_bytes([data[3], data[4], data[5], data[6]]),
            trailing,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.antenna);
        out.extend_from_slice(&self.read_rate.to_be_bytes());
        out.extend_from_slice(&self.total_read.to_be_bytes());
        out.extend(self.trailing);
    }
}

/// One tag out of the reader's buffer (reply to 0x90):
/// `Count(2) | DataLen | PC(2) | EPC | TagCRC(2) | RSSI | FreqAnt | InvCount`, where DataLen counts
/// PC + EPC + CRC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BufferedTag {
    /// Tags in the buffer.
    pub count: u16,
    /// Protocol-control word as the tag sent it (not checked against the EPC length: DataLen
    /// delimits the EPC).
    pub pc: u16,
    /// The EPC.
    pub epc: Vec<u8>,
    /// The tag's Gen2 CRC over PC + EPC (CRC-16/GENIBUS).
    pub tag_crc: u16,
    /// Signal strength and antenna bank.
    pub rssi: Rssi,
    /// Frequency index and antenna.
    pub freq_ant: FreqAnt,
    /// How many times the tag was read.
    pub inventory_count: u8,
}

impl BufferedTag {
    /// Most EPC bytes that fit one frame: [`MAX_DATA_LEN`] minus the 10 other data bytes.
    pub const MAX_EPC_LEN: usize = MAX_DATA_LEN - 10;

    /// Whether `tag_crc` is the CRC-16/GENIBUS of PC + EPC.
    pub fn crc_ok(&self) -> bool {
        let mut bytes = self.pc.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.epc);
        crc16_genibus(&bytes) == self.tag_crc
    }

    fn parse(data: &[u8]) -> Option<Self> {
        let data_len = usize::from(*data.get(2)?);
        if data_len < 4 || data.len() != 3 + data_len + 3 {
            return None;
        }
        let body = &data[3..3 + data_len];
        let tail = &data[3 + data_len..];
        Some(BufferedTag {
            count: u16::from_be_bytes([data[0], data[1]]),
            pc: u16::from_be_bytes([body[0], body[1]]),
            epc: body[2..data_len - 2].to_vec(),
            tag_crc: u16::from_be_bytes([body[data_len - 2], body[data_len - 1]]),
            rssi: Rssi(tail[0]),
            freq_ant: FreqAnt(tail[1]),
            inventory_count: tail[2],
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.epc.len() > Self::MAX_EPC_LEN {
            return Err(EncodeError::TooLong {
                len: self.epc.len() + 10,
            });
        }
        out.extend_from_slice(&self.count.to_be_bytes());
        out.push((self.epc.len() + 4) as u8);
        out.extend_from_slice(&self.pc.to_be_bytes());
        out.extend_from_slice(&self.epc);
        out.extend_from_slice(&self.tag_crc.to_be_bytes());
        out.extend_from_slice(&[self.rssi.0, self.freq_ant.0, self.inventory_count]);
        Ok(())
    }
}

/// One tag's answer to a read-memory command (0x81):
/// `TagCount(2) | DataLen | PC(2) | EPC | TagCRC(2) | Data | ReadLen | FreqAnt | ReadCount`,
/// where DataLen counts PC + EPC + TagCRC + Data and ReadLen counts Data
/// (docs/protocols.md#reading-a-tags-tid). Unlike a tag report it carries no RSSI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagData {
    /// How many tags answered the command (one frame each).
    pub tag_count: u16,
    /// Protocol-control word as the tag sent it (DataLen and ReadLen delimit the EPC).
    pub pc: u16,
    /// The EPC.
    pub epc: Vec<u8>,
    /// The tag's Gen2 CRC over PC + EPC (CRC-16/GENIBUS).
    pub tag_crc: u16,
    /// The words read, two bytes each, high byte first as stored in the tag.
    pub data: Vec<u8>,
    /// Frequency index and antenna.
    pub freq_ant: FreqAnt,
    /// How many times the tag answered the read.
    pub read_count: u8,
}

impl TagData {
    /// Most EPC + data bytes that fit one frame: [`MAX_DATA_LEN`] minus the 10 other bytes.
    pub const MAX_EPC_AND_DATA_LEN: usize = MAX_DATA_LEN - 10;

    /// Whether `tag_crc` is the CRC-16/GENIBUS of PC + EPC.
    pub fn crc_ok(&self) -> bool {
        let mut bytes = self.pc.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.epc);
        crc16_genibus(&bytes) == self.tag_crc
    }

    /// The tag CRC a tag computes for this PC and EPC.
    pub fn crc_for(pc: u16, epc: &[u8]) -> u16 {
        let mut bytes = pc.to_be_bytes().to_vec();
        bytes.extend_from_slice(epc);
        crc16_genibus(&bytes)
    }

    fn parse(data: &[u8]) -> Option<Self> {
        let data_len = usize::from(*data.get(2)?);
        if data.len() != 3 + data_len + 3 {
            return None;
        }
        let read_len = usize::from(data[3 + data_len]);
        // PC and tag CRC are always there; the EPC may be empty.
        let epc_len = data_len.checked_sub(4 + read_len)?;
        let body = &data[3..3 + data_len];
        Some(TagData {
            tag_count: u16::from_be_bytes([data[0], data[1]]),
            pc: u16::from_be_bytes([body[0], body[1]]),
            epc: body[2..2 + epc_len].to_vec(),
            tag_crc: u16::from_be_bytes([body[2 + epc_len], body[3 + epc_len]]),
            data: body[4 + epc_len..].to_vec(),
            freq_ant: FreqAnt(data[4 + data_len]),
            read_count: data[5 + data_len],
        })
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let payload = self.epc.len() + self.data.len();
        if payload > Self::MAX_EPC_AND_DATA_LEN {
            return Err(EncodeError::TooLong { len: payload + 10 });
        }
        out.extend_from_slice(&self.tag_count.to_be_bytes());
        // Fits: payload + 4 ≤ 246.
        out.push((payload + 4) as u8);
        out.extend_from_slice(&self.pc.to_be_bytes());
        out.extend_from_slice(&self.epc);
        out.extend_from_slice(&self.tag_crc.to_be_bytes());
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&[self.data.len() as u8, self.freq_ant.0, self.read_count]);
        Ok(())
    }
}

/// The one-byte status / error code of a bare reply (docs/protocols.md#replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// 0x10.
    Success,
    /// 0x11.
    Fail,
    /// 0x22: the antenna is not connected.
    AntennaMissing,
    /// 0x31.
    InventoryError,
    /// 0x36: no tag answered.
    NoTag,
    /// 0x38: the inventory buffer is empty.
    BufferEmpty,
    /// 0x41–0x4F: a parameter was rejected; carries the code.
    Parameter(u8),
    /// 0x53: the RF chip did not respond.
    RfChipNoResponse,
    /// 0x54 or 0x57: an output power problem; carries the code.
    OutputPower(u8),
    /// Any other code.
    Other(u8),
}

impl StatusCode {
    /// The byte on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            StatusCode::Success => 0x10,
            StatusCode::Fail => 0x11,
            StatusCode::AntennaMissing => 0x22,
            StatusCode::InventoryError => 0x31,
            StatusCode::NoTag => 0x36,
            StatusCode::BufferEmpty => 0x38,
            StatusCode::RfChipNoResponse => 0x53,
            StatusCode::Parameter(c) | StatusCode::OutputPower(c) | StatusCode::Other(c) => c,
        }
    }

    /// The code for a byte; every byte maps to exactly one code and back.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0x10 => StatusCode::Success,
            0x11 => StatusCode::Fail,
            0x22 => StatusCode::AntennaMissing,
            0x31 => StatusCode::InventoryError,
            0x36 => StatusCode::NoTag,
            0x38 => StatusCode::BufferEmpty,
            0x41..=0x4F => StatusCode::Parameter(b),
            0x53 => StatusCode::RfChipNoResponse,
            0x54 | 0x57 => StatusCode::OutputPower(b),
            _ => StatusCode::Other(b),
        }
    }

    /// Whether this is 0x10.
    pub fn is_success(self) -> bool {
        self == StatusCode::Success
    }
}

impl ReaderReply {
    /// The command code this reply is sent with.
    pub fn code(&self) -> u8 {
        match self {
            ReaderReply::Tag { cmd, .. } | ReaderReply::InventoryDone { cmd, .. } => cmd.code(),
            ReaderReply::Status { cmd, .. } | ReaderReply::Unknown { cmd, .. } => *cmd,
            ReaderReply::FirmwareVersion { .. } => cmd::GET_FIRMWARE_VERSION,
            ReaderReply::BufferedTag(_) => cmd::GET_INVENTORY_BUFFER,
            ReaderReply::TagData(_) => cmd::READ_TAG,
        }
    }

    /// Interprets the data of a reply frame by the rules on [`ReaderReply`]; never fails.
    pub fn from_parts(code: u8, data: &[u8]) -> Self {
        if let &[status] = data {
            return ReaderReply::Status {
                cmd: code,
                code: StatusCode::from_byte(status),
            };
        }
        if let (cmd::GET_FIRMWARE_VERSION, &[major, minor]) = (code, data) {
            return ReaderReply::FirmwareVersion { major, minor };
        }
        if let Some(inv) = InventoryCmd::from_code(code) {
            if let Some(report) = TagReport::parse(data) {
                return ReaderReply::Tag { cmd: inv, report };
            }
            if let Some(done) = InventoryDone::parse(data) {
                return ReaderReply::InventoryDone { cmd: inv, done };
            }
        }
        if code == cmd::GET_INVENTORY_BUFFER
            && let Some(tag) = BufferedTag::parse(data)
        {
            return ReaderReply::BufferedTag(tag);
        }
        if code == cmd::READ_TAG
            && let Some(tag) = TagData::parse(data)
        {
            return ReaderReply::TagData(tag);
        }
        ReaderReply::Unknown {
            cmd: code,
            data: data.to_vec(),
        }
    }

    fn write_data(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ReaderReply::Tag { report, .. } => report.write(out)?,
            ReaderReply::InventoryDone { done, .. } => done.write(out),
            ReaderReply::Status { code, .. } => out.push(code.to_byte()),
            ReaderReply::FirmwareVersion { major, minor } => {
                out.extend_from_slice(&[*major, *minor])
            }
            ReaderReply::BufferedTag(tag) => tag.write(out)?,
            ReaderReply::TagData(tag) => tag.write(out)?,
            ReaderReply::Unknown { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

impl UhfFrame for ReaderFrame {
    fn from_parts(address: u8, cmd: u8, data: &[u8]) -> Self {
        ReaderFrame {
            address,
            reply: ReaderReply::from_parts(cmd, data),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut data = Vec::new();
        self.reply.write_data(&mut data)?;
        write_frame(out, self.address, self.reply.code(), &data)
    }
}
