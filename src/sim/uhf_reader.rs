//! A software long-range UHF reader: the reader's end of 0xA0 (docs/protocols.md#uhf-reader),
//! served over any `AsyncRead + AsyncWrite` transport, with faults a test can switch on.
//!
//! [`ReaderControl`] is the reader: its field of tags, its settings, its faults and its counters
//! live in the handle (cloneable, shared), so they survive a hang-up and a later
//! [`ReaderControl::serve`] on a new transport. Every byte it injects as noise or corrupts is
//! counted in [`ReaderStats`], so a test can compare the count with a decoder's drop counter.
//!
//! Simplifications, on purpose: an inventory reports every tag in the field once (on whichever
//! antenna the tag is, not only the work antenna) whatever its repeat count; 0x8A gets the 7-byte
//! completion of 0x89; and host bytes that arrive while a command runs are queued, not lost as on
//! a real reader. A read-memory command (0x81) is answered for the TID bank only: one frame per
//! tag whose TID holds the words asked for (a tag without a TID, or with a shorter one, stays
//! silent as a real tag would), or status 36 (no tag) when none answers; other banks get a
//! parameter error. The access password is not checked.
//!
//! It never opens a port or a pseudo-terminal itself (the caller hands it a transport), and it
//! never sleeps except for the configured inventory delay.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use firmware_protocols::uhf::{
    FreqAnt, HEAD, HostCommand, HostDecoder, HostFrame, InventoryCmd, InventoryDone, OutputPower,
    ReadTag, ReaderFrame, ReaderReply, Rssi, StatusCode, TagData, TagReport, UhfFrame, mem_bank,
    pc_for_epc_len,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tracing::debug;

/// Default reader address (the vectors of docs/protocols.md#uhf-test-vectors use 1).
pub const DEFAULT_ADDRESS: u8 = 1;

/// Default inventory delay: real readers take a few milliseconds per round.
pub const DEFAULT_INVENTORY_DELAY: Duration = Duration::from_millis(2);

/// Frequency indexes the emulator hops over: 920.5–924.5 MHz, the Chinese 920–925 MHz band,
/// at index 7 = 902.0 MHz plus 0.5 MHz per step (docs/protocols.md#replies).
const CHINA_BAND: std::ops::RangeInclusive<u8> = 44..=52;

/// Parameter-error code the emulator answers for an antenna it does not have. The 0xA0 protocol
/// reserves 0x41–0x4F for parameter errors; which code means which parameter varies by firmware.
const PARAMETER_ERROR: StatusCode = StatusCode::Parameter(0x41);

/// A tag in the reader's field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTag {
    /// The EPC: an even number of bytes, at most 62 (the PC word's 5-bit word count).
    pub epc: Vec<u8>,
    /// Antenna 0–7 that sees it (4–7 only exist on 8-port readers).
    pub antenna: u8,
    /// Signal strength it is read at, −129..=−2 dBm (what the 7-bit RSSI can say).
    pub rssi_dbm: i16,
    /// The tag's factory TID (a tag credential may be bound to it); not reported by
    /// inventory, answered to a read of the TID bank (0x81). A cloned tag carries another tag's
    /// EPC but keeps its own TID.
    pub tid: Option<Vec<u8>>,
}

impl FieldTag {
    /// A tag without a TID.
    pub fn new(epc: impl Into<Vec<u8>>, antenna: u8, rssi_dbm: i16) -> Self {
        FieldTag {
            epc: epc.into(),
            antenna,
            rssi_dbm,
            tid: None,
        }
    }

    /// The same tag with a TID.
    pub fn with_tid(mut self, tid: impl Into<Vec<u8>>) -> Self {
        self.tid = Some(tid.into());
        self
    }
}

/// Why a tag cannot be put in the field: no reader could report it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTag {
    /// The PC word can only announce an even EPC length up to 62 bytes.
    #[error("EPC of {0} bytes: it must be an even number of bytes, at most 62")]
    EpcLength(usize),
    /// Only antennas 0–7 exist.
    #[error("antenna {0}: readers have antennas 0–7")]
    Antenna(u8),
    /// The RSSI byte carries −129..=−2 dBm.
    #[error("{0} dBm: the RSSI byte carries −129..=−2 dBm")]
    Rssi(i16),
    /// A TID is whole 16-bit words, and at most 64 bytes here (real TIDs are 4–12).
    #[error("TID of {0} bytes: it must be an even number of bytes, 2 to 64")]
    TidLength(usize),
}

/// Random line noise on outgoing frames, drawn from a seeded generator so a run can be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Noise {
    /// Percentage of outgoing frames whose checksum is corrupted. A frame is only corrupted when
    /// no byte after its head is 0xA0, so a resynchronising decoder drops exactly its length; a
    /// frame that does not qualify is sent intact.
    pub corrupt_percent: u8,
    /// Percentage of outgoing frames preceded by garbage (bytes that are never 0xA0).
    pub garbage_percent: u8,
    /// Longest garbage burst, in bytes (at least 1 is used).
    pub max_garbage_len: u8,
    /// Seed of the generator.
    pub seed: u64,
}

/// What the reader has done, counted since the control handle was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaderStats {
    /// Command frames addressed to this reader (or broadcast) that it decoded.
    pub commands: u64,
    /// Commands whose answer has been prepared (counted together with its bytes in `bytes_sent`).
    pub commands_answered: u64,
    /// Commands ignored: addressed to another reader, or received while silent.
    pub commands_ignored: u64,
    /// Host bytes its decoder dropped as noise.
    pub host_bytes_dropped: u64,
    /// Frames sent, corrupted or not.
    pub frames_sent: u64,
    /// Frames sent with a corrupted checksum.
    pub frames_corrupted: u64,
    /// Bytes of the corrupted frames (a decoder drops all of them).
    pub corrupted_bytes: u64,
    /// Garbage bytes sent between frames.
    pub garbage_bytes: u64,
    /// Every byte sent: frames, corrupted frames and garbage. Counted when an answer is prepared,
    /// just before it is written, so once a host has decoded or dropped this many bytes it has the
    /// whole answer (a hang-up during the write can leave it counting bytes never delivered).
    pub bytes_sent: u64,
}

impl ReaderStats {
    /// Bytes a resynchronising decoder must drop: garbage plus corrupted frames.
    pub fn injected_bytes(&self) -> u64 {
        self.garbage_bytes + self.corrupted_bytes
    }

    /// Frames sent intact.
    pub fn intact_frames(&self) -> u64 {
        self.frames_sent - self.frames_corrupted
    }
}

/// Why [`ReaderControl::serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeEnd {
    /// The host side closed the transport (read returned end of file).
    HostClosed,
    /// [`ReaderControl::hang_up`] was called: drop the transport so the host sees the line go,
    /// and serve a new one later if wanted.
    HungUp,
}

/// The emulated reader: its field, settings, faults and counters, shared by every clone.
#[derive(Debug, Clone)]
pub struct ReaderControl {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    hang_up: Notify,
    /// Woken each time a command frame has been handled (answered or ignored).
    activity: Notify,
}

#[derive(Debug)]
struct State {
    address: u8,
    firmware: (u8, u8),
    field: Vec<FieldTag>,
    work_antenna: u8,
    output_power: Option<OutputPower>,
    inventory_delay: Duration,
    /// How long a TID read (0x81) takes instead of `inventory_delay`, when set.
    tid_read_delay: Option<Duration>,
    silent: bool,
    next_inventory_error: Option<StatusCode>,
    /// Answered to every inventory while set (an antenna unplugged).
    inventory_error: Option<StatusCode>,
    pending_garbage: usize,
    pending_corruptions: u64,
    noise: Noise,
    rng: u64,
    hop: u8,
    stats: ReaderStats,
}

impl Default for ReaderControl {
    fn default() -> Self {
        Self::new()
    }
}

impl ReaderControl {
    /// A reader at [`DEFAULT_ADDRESS`] with an empty field and no faults.
    pub fn new() -> Self {
        Self::with_address(DEFAULT_ADDRESS)
    }

    /// A reader at `address` (it also answers broadcast frames, from its own address).
    pub fn with_address(address: u8) -> Self {
        ReaderControl {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    address,
                    firmware: (1, 0),
                    field: Vec::new(),
                    work_antenna: 0,
                    output_power: None,
                    inventory_delay: DEFAULT_INVENTORY_DELAY,
                    tid_read_delay: None,
                    silent: false,
                    next_inventory_error: None,
                    inventory_error: None,
                    pending_garbage: 0,
                    pending_corruptions: 0,
                    noise: Noise::default(),
                    rng: 0x9E37_79B9_7F4A_7C15,
                    hop: 0,
                    stats: ReaderStats::default(),
                }),
                hang_up: Notify::new(),
                activity: Notify::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a test double; keep serving.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader's address.
    pub fn address(&self) -> u8 {
        self.lock().address
    }

    /// Sets the version the reader reports to 0x72.
    pub fn set_firmware_version(&self, major: u8, minor: u8) {
        self.lock().firmware = (major, minor);
    }

    /// Puts a tag in the field (replacing a tag with the same EPC).
    pub fn put_tag(&self, tag: FieldTag) -> Result<(), BadTag> {
        if pc_for_epc_len(tag.epc.len()).is_none() {
            return Err(BadTag::EpcLength(tag.epc.len()));
        }
        if tag.antenna > 7 {
            return Err(BadTag::Antenna(tag.antenna));
        }
        if !(Rssi::MIN_DBM..=Rssi::MAX_DBM).contains(&tag.rssi_dbm) {
            return Err(BadTag::Rssi(tag.rssi_dbm));
        }
        if let Some(tid) = &tag.tid
            && (tid.is_empty() || tid.len() % 2 == 1 || tid.len() > 64)
        {
            return Err(BadTag::TidLength(tid.len()));
        }
        let mut state = self.lock();
        state.field.retain(|t| t.epc != tag.epc);
        debug!(epc = %hex(&tag.epc), antenna = tag.antenna, "uhf sim: tag enters the field");
        state.field.push(tag);
        Ok(())
    }

    /// Takes the tag with this EPC out of the field; returns it if it was there.
    pub fn take_tag(&self, epc: &[u8]) -> Option<FieldTag> {
        let mut state = self.lock();
        let i = state.field.iter().position(|t| t.epc == epc)?;
        debug!(epc = %hex(epc), "uhf sim: tag leaves the field");
        Some(state.field.remove(i))
    }

    /// Empties the field.
    pub fn clear_field(&self) {
        self.lock().field.clear();
    }

    /// The tags in the field, in the order they were put there.
    pub fn field(&self) -> Vec<FieldTag> {
        self.lock().field.clone()
    }

    /// The antenna last set with 0x74.
    pub fn work_antenna(&self) -> u8 {
        self.lock().work_antenna
    }

    /// The output power last set with 0x76, if any.
    pub fn output_power(&self) -> Option<OutputPower> {
        self.lock().output_power
    }

    /// Answers the next inventory command with this status code instead of tags
    /// (e.g. [`StatusCode::AntennaMissing`]).
    pub fn fail_next_inventory(&self, code: StatusCode) {
        self.lock().next_inventory_error = Some(code);
    }

    /// Answers every inventory with this status code until set back to `None` (an antenna
    /// unplugged, a reader fault that does not clear by itself).
    pub fn set_inventory_error(&self, code: Option<StatusCode>) {
        self.lock().inventory_error = code;
    }

    /// Sends `n` garbage bytes (never 0xA0) just before the next frame.
    pub fn inject_garbage(&self, n: usize) {
        self.lock().pending_garbage += n;
    }

    /// Corrupts the checksum of the next `n` frames that qualify (see [`Noise::corrupt_percent`]).
    pub fn corrupt_next_frames(&self, n: u64) {
        self.lock().pending_corruptions += n;
    }

    /// Sets random noise on every outgoing frame from now on (restarting its generator).
    pub fn set_noise(&self, noise: Noise) {
        let mut state = self.lock();
        state.noise = noise;
        // xorshift needs a non-zero state.
        state.rng = noise.seed | 1;
    }

    /// When silent, the reader decodes and counts commands but answers none.
    pub fn set_silent(&self, silent: bool) {
        self.lock().silent = silent;
    }

    /// How long an inventory takes before its first report.
    pub fn set_inventory_delay(&self, delay: Duration) {
        self.lock().inventory_delay = delay;
    }

    /// How long a read-memory command (the driver's TID read) takes before its answer; `None`
    /// (the default): the inventory delay. A slow reader, or one from another maker, answers it
    /// late.
    pub fn set_tid_read_delay(&self, delay: Option<Duration>) {
        self.lock().tid_read_delay = delay;
    }

    /// Hangs up: the running [`ReaderControl::serve`] returns [`ServeEnd::HungUp`] (or, if none is
    /// running, the next one does at once).
    pub fn hang_up(&self) {
        debug!("uhf sim: hang-up requested");
        self.shared.hang_up.notify_one();
    }

    /// The counters so far.
    pub fn stats(&self) -> ReaderStats {
        self.lock().stats
    }

    /// Waits until at least `n` command frames have been handled (answered or ignored) since the
    /// handle was made. Lets a test know a command reached the reader even when no answer will.
    pub async fn handled_commands(&self, n: u64) {
        loop {
            let notified = self.shared.activity.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let stats = self.stats();
            if stats.commands_answered + stats.commands_ignored >= n {
                return;
            }
            notified.await;
        }
    }

    /// Serves the reader side of the protocol on `transport` until the host closes it, the
    /// transport fails (`Err`), or [`ReaderControl::hang_up`] is called.
    pub async fn serve<T>(&self, mut transport: T) -> io::Result<ServeEnd>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let mut decoder = HostDecoder::new();
        let mut buf = [0u8; 512];
        debug!(address = self.address(), "uhf sim: serving");
        loop {
            let n = tokio::select! {
                biased;
                () = self.shared.hang_up.notified() => return Ok(self.hung_up()),
                read = transport.read(&mut buf) => read?,
            };
            if n == 0 {
                debug!("uhf sim: host closed the transport");
                return Ok(ServeEnd::HostClosed);
            }
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame() {
                tokio::select! {
                    biased;
                    () = self.shared.hang_up.notified() => return Ok(self.hung_up()),
                    done = self.answer(&mut transport, frame) => done?,
                }
                self.shared.activity.notify_waiters();
            }
            self.lock().stats.host_bytes_dropped = decoder.dropped_bytes();
        }
    }

    fn hung_up(&self) -> ServeEnd {
        debug!("uhf sim: hung up");
        ServeEnd::HungUp
    }

    async fn answer<T>(&self, transport: &mut T, frame: HostFrame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin,
    {
        let (delay, is_inventory) = {
            let mut state = self.lock();
            if frame.address != state.address && frame.address != firmware_protocols::uhf::BROADCAST
            {
                debug!(
                    to = frame.address,
                    "uhf sim: command for another reader, ignored"
                );
                state.stats.commands_ignored += 1;
                return Ok(());
            }
            state.stats.commands += 1;
            if state.silent {
                debug!(?frame.command, "uhf sim: silent, command ignored");
                state.stats.commands_ignored += 1;
                return Ok(());
            }
            match frame.command {
                HostCommand::ReadTag(_) => {
                    (state.tid_read_delay.unwrap_or(state.inventory_delay), true)
                }
                _ => (
                    state.inventory_delay,
                    InventoryCmd::from_code(frame.command.code()).is_some(),
                ),
            }
        };
        if is_inventory && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let bytes = {
            let mut state = self.lock();
            let replies = state.replies_to(&frame.command);
            let mut out = Vec::new();
            for reply in replies {
                let frame = ReaderFrame {
                    address: state.address,
                    reply,
                };
                state.emit(&frame, &mut out);
            }
            state.stats.commands_answered += 1;
            state.stats.bytes_sent += out.len() as u64;
            out
        };
        debug!(command = ?frame.command, bytes = bytes.len(), "uhf sim: answering");
        transport.write_all(&bytes).await?;
        transport.flush().await
    }
}

impl State {
    /// The replies to one command, faults of the inventory kind applied.
    fn replies_to(&mut self, command: &HostCommand) -> Vec<ReaderReply> {
        let status = |cmd: u8, code: StatusCode| ReaderReply::Status { cmd, code };
        match command {
            HostCommand::Reset => vec![status(command.code(), StatusCode::Success)],
            HostCommand::GetFirmwareVersion => vec![ReaderReply::FirmwareVersion {
                major: self.firmware.0,
                minor: self.firmware.1,
            }],
            HostCommand::SetWorkAntenna { antenna } => {
                if *antenna < 4 {
                    self.work_antenna = *antenna;
                    vec![status(command.code(), StatusCode::Success)]
                } else {
                    vec![status(command.code(), PARAMETER_ERROR)]
                }
            }
            HostCommand::SetOutputPower(power) => {
                self.output_power = Some(*power);
                vec![status(command.code(), StatusCode::Success)]
            }
            HostCommand::RealTimeInventory { .. } => self.inventory(InventoryCmd::RealTime),
            HostCommand::SessionInventory { .. } => self.inventory(InventoryCmd::Session),
            HostCommand::FastSwitchInventory(_) => self.inventory(InventoryCmd::FastSwitch),
            HostCommand::ReadTag(read) => self.read_memory(read),
            HostCommand::Other { cmd, .. } => vec![status(*cmd, StatusCode::Fail)],
        }
    }

    /// One round: every tag in the field once, whatever the command's repeat count, then a
    /// completion (the 7-byte form, also for 0x8A, whose real completion layout differs).
    fn inventory(&mut self, cmd: InventoryCmd) -> Vec<ReaderReply> {
        if let Some(code) = self.next_inventory_error.take().or(self.inventory_error) {
            return vec![ReaderReply::Status {
                cmd: cmd.code(),
                code,
            }];
        }
        let band_len = CHINA_BAND.end() - CHINA_BAND.start() + 1;
        let mut replies = Vec::with_capacity(self.field.len() + 1);
        for tag in &self.field {
            let freq = CHINA_BAND.start() + self.hop % band_len;
            self.hop = self.hop.wrapping_add(1) % band_len;
            replies.push(ReaderReply::Tag {
                cmd,
                report: TagReport {
                    freq_ant: FreqAnt::new(freq, tag.antenna),
                    // put_tag checked the EPC length.
                    pc: pc_for_epc_len(tag.epc.len()).unwrap_or(0),
                    epc: tag.epc.clone(),
                    rssi: Rssi::from_dbm(tag.rssi_dbm, tag.antenna >= 4),
                    phase: None,
                },
            });
        }
        let reads = self.field.len();
        replies.push(ReaderReply::InventoryDone {
            cmd,
            done: InventoryDone {
                antenna: self.work_antenna,
                read_rate: u16::try_from(reads).unwrap_or(u16::MAX),
                total_read: u32::try_from(reads).unwrap_or(u32::MAX),
                trailing: None,
            },
        });
        replies
    }

    /// A read-memory command: one [`TagData`] per tag whose TID covers the words asked for.
    fn read_memory(&mut self, read: &ReadTag) -> Vec<ReaderReply> {
        let code = HostCommand::ReadTag(*read).code();
        if read.bank != mem_bank::TID || read.word_count == 0 {
            return vec![ReaderReply::Status {
                cmd: code,
                code: PARAMETER_ERROR,
            }];
        }
        if let Some(error) = self.inventory_error {
            return vec![ReaderReply::Status {
                cmd: code,
                code: error,
            }];
        }
        let from = usize::from(read.word_address) * 2;
        let to = from + usize::from(read.word_count) * 2;
        let band_len = CHINA_BAND.end() - CHINA_BAND.start() + 1;
        let answering: Vec<(Vec<u8>, Vec<u8>, u8)> = self
            .field
            .iter()
            .filter_map(|t| {
                let words = t.tid.as_ref()?.get(from..to)?;
                Some((t.epc.clone(), words.to_vec(), t.antenna))
            })
            .collect();
        if answering.is_empty() {
            return vec![ReaderReply::Status {
                cmd: code,
                code: StatusCode::NoTag,
            }];
        }
        let count = u16::try_from(answering.len()).unwrap_or(u16::MAX);
        answering
            .into_iter()
            .map(|(epc, data, antenna)| {
                let freq = CHINA_BAND.start() + self.hop % band_len;
                self.hop = self.hop.wrapping_add(1) % band_len;
                // put_tag checked the EPC length.
                let pc = pc_for_epc_len(epc.len()).unwrap_or(0);
                ReaderReply::TagData(TagData {
                    tag_count: count,
                    pc,
                    tag_crc: TagData::crc_for(pc, &epc),
                    epc,
                    data,
                    freq_ant: FreqAnt::new(freq, antenna),
                    read_count: 1,
                })
            })
            .collect()
    }

    /// Appends one frame to `out`, with garbage before it and its checksum corrupted as the
    /// faults ask, counting every injected and corrupted byte.
    fn emit(&mut self, frame: &ReaderFrame, out: &mut Vec<u8>) {
        let mut bytes = Vec::new();
        if let Err(e) = frame.encode(&mut bytes) {
            // Only reachable through a bug here: put_tag refuses tags that cannot be encoded.
            tracing::error!(error = %e, "uhf sim: reply could not be encoded, not sent");
            return;
        }
        let mut garbage = std::mem::take(&mut self.pending_garbage);
        let noise = self.noise;
        if noise.garbage_percent > 0 && self.roll() % 100 < u64::from(noise.garbage_percent) {
            garbage += 1 + (self.roll() % u64::from(noise.max_garbage_len.max(1))) as usize;
        }
        for _ in 0..garbage {
            let b = self.roll() as u8;
            out.push(if b == HEAD { !HEAD } else { b });
        }
        self.stats.garbage_bytes += garbage as u64;

        let corrupt = self.pending_corruptions > 0
            || (noise.corrupt_percent > 0 && self.roll() % 100 < u64::from(noise.corrupt_percent));
        let last = bytes.len() - 1;
        // Corrupt only frames with no 0xA0 after the head: otherwise a decoder rescanning the
        // frame's own bytes could start a phantom frame there and the drop count would be off.
        if corrupt && !bytes[1..last].contains(&HEAD) {
            let bad = if bytes[last] ^ 0xFF == HEAD {
                bytes[last] ^ 0x0F
            } else {
                bytes[last] ^ 0xFF
            };
            bytes[last] = bad;
            self.pending_corruptions = self.pending_corruptions.saturating_sub(1);
            self.stats.frames_corrupted += 1;
            self.stats.corrupted_bytes += bytes.len() as u64;
            debug!(len = bytes.len(), "uhf sim: frame corrupted");
        }
        self.stats.frames_sent += 1;
        out.extend_from_slice(&bytes);
    }

    /// xorshift64: deterministic for a seed, good enough to place faults.
    fn roll(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
