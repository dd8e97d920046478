//! Host-to-reader frames of the 0xA0 protocol: the commands the gate controller sends.
//!
//! Each typed command has exactly one byte layout; anything else with a valid checksum decodes as
//! [`HostCommand::Other`]. This module never does IO and never panics on input bytes.

use super::{EncodeError, UhfFrame, cmd, write_frame};

/// One command frame from the host (gate controller) to a reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostFrame {
    /// Address of the reader this is for (0–254, or [`super::BROADCAST`]).
    pub address: u8,
    /// The command.
    pub command: HostCommand,
}

/// A command to the reader (docs/protocols.md#commands-the-host-sends).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostCommand {
    /// 0x70, no data.
    Reset,
    /// 0x72, no data.
    GetFirmwareVersion,
    /// 0x74 with one byte. Readers accept 0–3 (0–7 on 8-port models); other values are still
    /// encoded and decoded as given, so the reader (or its emulator) can answer a parameter error.
    SetWorkAntenna {
        /// Antenna index.
        antenna: u8,
    },
    /// 0x76 with one byte (all antennas) or four (one per antenna).
    SetOutputPower(OutputPower),
    /// 0x89 with one byte.
    RealTimeInventory {
        /// Rounds per antenna; 0xFF asks for the fastest round.
        repeat: u8,
    },
    /// 0x8B with `Session | Target | Repeat`.
    SessionInventory {
        /// Gen2 session (S1 recommended for polling).
        session: Session,
        /// Inventoried flag to select.
        target: Target,
        /// Rounds per antenna.
        repeat: u8,
    },
    /// 0x8A, antenna/stay pairs then interval and repeat (see [`FastSwitch`]).
    FastSwitchInventory(FastSwitch),
    /// 0x81 `MemBank | WordAdd | WordCnt [| Password(4)]`: read a memory bank of every tag in
    /// the field (or of the tag selected with the access-EPC match). Each tag read answers one
    /// [`super::ReaderReply::TagData`] frame.
    ReadTag(ReadTag),
    /// Any other command, or a known command whose data does not fit its typed layout.
    ///
    /// Encoded as given. Decoding the result gives back `Other` only when `cmd`/`data` do not
    /// match a typed layout above; otherwise it gives the typed variant.
    Other {
        /// Command code.
        cmd: u8,
        /// Raw data bytes.
        data: Vec<u8>,
    },
}

/// The data of a read-memory command (0x81; docs/protocols.md#reading-a-tags-tid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadTag {
    /// Memory bank: 0 reserved, 1 EPC, 2 TID, 3 user ([`mem_bank`]). Other values are encoded
    /// as given, so a reader (or its emulator) can answer a parameter error.
    pub bank: u8,
    /// First word (16 bits) to read.
    pub word_address: u8,
    /// Words to read (a TID is 2 to 6 words; [`ReadTag::tid`] asks for 6).
    pub word_count: u8,
    /// The access password, when the firmware expects one (all zero for an unlocked tag); the
    /// frame then carries 7 data bytes instead of 3.
    pub password: Option<[u8; 4]>,
}

/// Memory bank numbers of an EPC Gen2 tag, as the 0x81 command takes them.
pub mod mem_bank {
    /// Reserved bank (kill and access passwords).
    pub const RESERVED: u8 = 0;
    /// EPC bank (CRC, PC, EPC).
    pub const EPC: u8 = 1;
    /// TID bank: the chip maker's identifier and serial, written at the factory.
    pub const TID: u8 = 2;
    /// User memory.
    pub const USER: u8 = 3;
}

impl ReadTag {
    /// Words of TID the driver reads: 96 bits, the length of the serialised TID of the common
    /// Impinj Monza and NXP UCODE chips (class E2 allocation, word 0 on).
    pub const TID_WORDS: u8 = 6;

    /// Reads [`ReadTag::TID_WORDS`] words of the TID bank from word 0, with the all-zero
    /// access password (TID is never read-locked on Gen2 tags).
    pub fn tid() -> Self {
        ReadTag {
            bank: mem_bank::TID,
            word_address: 0,
            word_count: Self::TID_WORDS,
            password: Some([0; 4]),
        }
    }
}

/// Output power for command 0x76, in dBm as the reader takes it (typically 0–33).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputPower {
    /// One byte: the same power on every antenna.
    All(u8),
    /// Four bytes: antennas 0–3 in order.
    PerAntenna([u8; 4]),
}

/// Gen2 inventory session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Session {
    /// Session 0.
    S0,
    /// Session 1 (recommended for polling: a read tag stays quiet for a short while).
    S1,
    /// Session 2.
    S2,
    /// Session 3.
    S3,
}

/// Gen2 inventoried-flag target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Flag A (byte 0).
    A,
    /// Flag B (byte 1).
    B,
}

/// The data of a fast antenna-switching inventory (0x8A).
///
/// Layouts of 0x8A vary between firmware: the common 4-port R2000 layout is
/// `Ant0 Stay0 Ant1 Stay1 Ant2 Stay2 Ant3 Stay3 Interval Repeat`, 8-port firmware sends eight pairs,
/// and some firmware adds session/target/phase bytes. This type accepts 1–8 antenna/stay pairs
/// followed by `Interval | Repeat`; any other length decodes as [`HostCommand::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FastSwitch {
    /// Antennas to visit in order, each with its stay (rounds on that antenna; 0 skips it).
    pub steps: Vec<AntennaStay>,
    /// Pause between antennas, in milliseconds.
    pub interval: u8,
    /// How many times to run the whole sequence.
    pub repeat: u8,
}

/// One antenna visit in a [`FastSwitch`] sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AntennaStay {
    /// Antenna index.
    pub antenna: u8,
    /// Rounds on that antenna.
    pub stay: u8,
}

impl FastSwitch {
    /// Most antenna/stay pairs the typed layout accepts (8-port readers).
    pub const MAX_STEPS: usize = 8;
}

impl Session {
    fn to_byte(self) -> u8 {
        match self {
            Session::S0 => 0,
            Session::S1 => 1,
            Session::S2 => 2,
            Session::S3 => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Session::S0,
            1 => Session::S1,
            2 => Session::S2,
            3 => Session::S3,
            _ => return None,
        })
    }
}

impl Target {
    fn to_byte(self) -> u8 {
        match self {
            Target::A => 0,
            Target::B => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Target::A),
            1 => Some(Target::B),
            _ => None,
        }
    }
}

impl HostCommand {
    /// The command code this command is sent with.
    pub fn code(&self) -> u8 {
        match self {
            HostCommand::Reset => cmd::RESET,
            HostCommand::GetFirmwareVersion => cmd::GET_FIRMWARE_VERSION,
            HostCommand::SetWorkAntenna { .. } => cmd::SET_WORK_ANTENNA,
            HostCommand::SetOutputPower(_) => cmd::SET_OUTPUT_POWER,
            HostCommand::RealTimeInventory { .. } => cmd::REAL_TIME_INVENTORY,
            HostCommand::SessionInventory { .. } => cmd::SESSION_INVENTORY,
            HostCommand::FastSwitchInventory(_) => cmd::FAST_SWITCH_INVENTORY,
            HostCommand::ReadTag(_) => cmd::READ_TAG,
            HostCommand::Other { cmd, .. } => *cmd,
        }
    }

    /// Appends this command's data bytes (between Cmd and Check) to `out`.
    fn write_data(&self, out: &mut Vec<u8>) {
        match self {
            HostCommand::Reset | HostCommand::GetFirmwareVersion => {}
            HostCommand::SetWorkAntenna { antenna } => out.push(*antenna),
            HostCommand::SetOutputPower(OutputPower::All(p)) => out.push(*p),
            HostCommand::SetOutputPower(OutputPower::PerAntenna(p)) => out.extend_from_slice(p),
            HostCommand::RealTimeInventory { repeat } => out.push(*repeat),
            HostCommand::SessionInventory {
                session,
                target,
                repeat,
            } => out.extend_from_slice(&[session.to_byte(), target.to_byte(), *repeat]),
            HostCommand::FastSwitchInventory(fs) => {
                for step in &fs.steps {
                    out.extend_from_slice(&[step.antenna, step.stay]);
                }
                out.extend_from_slice(&[fs.interval, fs.repeat]);
            }
            HostCommand::ReadTag(r) => {
                out.extend_from_slice(&[r.bank, r.word_address, r.word_count]);
                if let Some(password) = r.password {
                    out.extend_from_slice(&password);
                }
            }
            HostCommand::Other { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Interprets the data of a command frame; never fails.
    pub fn from_parts(code: u8, data: &[u8]) -> Self {
        Self::typed(code, data).unwrap_or_else(|| HostCommand::Other {
            cmd: code,
            data: data.to_vec(),
        })
    }

    fn typed(code: u8, data: &[u8]) -> Option<Self> {
        Some(match (code, data) {
            (cmd::RESET, []) => HostCommand::Reset,
            (cmd::GET_FIRMWARE_VERSION, []) => HostCommand::GetFirmwareVersion,
            (cmd::SET_WORK_ANTENNA, &[antenna]) => HostCommand::SetWorkAntenna { antenna },
            (cmd::SET_OUTPUT_POWER, &[p]) => HostCommand::SetOutputPower(OutputPower::All(p)),
            (cmd::SET_OUTPUT_POWER, &[a, b, c, d]) => {
                HostCommand::SetOutputPower(OutputPower::PerAntenna([a, b, c, d]))
            }
            (cmd::REAL_TIME_INVENTORY, &[repeat]) => HostCommand::RealTimeInventory { repeat },
            (cmd::SESSION_INVENTORY, &[s, t, repeat]) => HostCommand::SessionInventory {
                session: Session::from_byte(s)?,
                target: Target::from_byte(t)?,
                repeat,
            },
            (cmd::READ_TAG, &[bank, word_address, word_count]) => HostCommand::ReadTag(ReadTag {
                bank,
                word_address,
                word_count,
                password: None,
            }),
            (cmd::READ_TAG, &[bank, word_address, word_count, a, b, c, d]) => {
                HostCommand::ReadTag(ReadTag {
                    bank,
                    word_address,
                    word_count,
                    password: Some([a, b, c, d]),
                })
            }
            (cmd::FAST_SWITCH_INVENTORY, data)
                if data.len().is_multiple_of(2)
                    && data.len() >= 4
                    && data.len() <= 2 * FastSwitch::MAX_STEPS + 2 =>
            {
                let (pairs, tail) = data.split_at(data.len() - 2);
                HostCommand::FastSwitchInventory(FastSwitch {
                    steps: pairs
                        .chunks_exact(2)
                        .map(|p| AntennaStay {
                            antenna: p[0],
                            stay: p[1],
                        })
                        .collect(),
                    interval: tail[0],
                    repeat: tail[1],
                })
            }
            _ => return None,
        })
    }
}

impl UhfFrame for HostFrame {
    fn from_parts(address: u8, cmd: u8, data: &[u8]) -> Self {
        HostFrame {
            address,
            command: HostCommand::from_parts(cmd, data),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut data = Vec::new();
        self.command.write_data(&mut data);
        write_frame(out, self.address, self.command.code(), &data)
    }
}
