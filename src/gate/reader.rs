//! The UHF reader driver: the controller's end of the 0xA0 link (docs/protocols.md#uhf-reader).
//!
//! A reader's real-time inventory runs its rounds and stops, so the driver re-issues it as soon
//! as the completion (or an error status) arrives: the reader is always inventorying. Every tag
//! report becomes a [`TagRead`] sent to the lane runtime; line noise is dropped and counted by
//! the decoder and never ends the link. A read that stays silent past the timeout is retried;
//! [`SILENT_ROUNDS_OFFLINE`] silent rounds in a row, or a hang-up, end [`ReaderLink::run`] so the
//! caller can mark the reader offline and reopen it with backoff.
//!
//! TIDs (docs/protocols.md#reading-a-tags-tid): an inventory reports only EPCs, so the first time
//! an EPC shows up the driver holds that read back, ends the round, sends one read-memory command
//! on the TID bank (0x81, which every tag in the field answers with its EPC and TID), and then
//! forwards the held read with the TID it got. The EPC→TID pair is cached while the tag keeps
//! being seen ([`TID_CACHE_IDLE`]), so every later read of it is forwarded at once with the cached
//! TID: a tag's first decision waits one extra command exchange (a few milliseconds on the line),
//! its repeats wait nothing. A tag that does not answer the TID read (a reader without 0x81, a
//! radio miss, a TID shorter than [`ReadTag::TID_WORDS`] words) is forwarded without a TID, which
//! the decision accepts — the same as before TIDs were read.
//!
//! Only EPCs whose TID the decision will look at wait for it. The lane runtime tells the driver
//! which those are ([`ReaderLink::with_tid_needed`]: a credential with a bound TID, the clone
//! check of `gate::decision`); any other EPC — no bound TID, unknown, not an EPC at all — is
//! forwarded the moment its report is decoded, without ending the round or reading its TID, so
//! its OPEN does not wait for the reader's round to end nor for a TID exchange (measured: a
//! reader that ends its round 10 ms after the report and answers 0x81 in 10 ms kept every such
//! vehicle waiting about 20 ms; `benches/gate_latency.rs`). The clone check keeps its guarantee:
//! a credential with a bound TID is decided only with the TID read (or without one when the
//! reader does not answer, as before). The one gap is a TID bound by a sync in the microseconds
//! between the report and the decision: that read is decided without a TID, as a reader
//! without 0x81 would have it.
//!
//! Filtering is separate and pure ([`TagFilter`]): an RSSI floor and a tag hold time that
//! suppresses repeats of a tag the lane already acted on. The lane runtime applies it only while
//! the presence loop is occupied — a read with no vehicle on the loop is a skim, a neighbouring
//! lane or an attack, and opens nothing. This module never decides anything.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use firmware_protocols::uhf::{
    HostCommand, HostFrame, ReadTag, ReaderDecoder, ReaderReply, StatusCode, UhfFrame,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Silent inventory rounds in a row after which the reader counts as offline.
pub const SILENT_ROUNDS_OFFLINE: u32 = 3;

/// How long an EPC→TID pair is kept after the tag was last seen. A car on the loop is seen every
/// round (a few milliseconds apart); the next car with the same EPC — a clone — comes seconds
/// later, after the entry is gone, and has its own TID read.
pub const TID_CACHE_IDLE: Duration = Duration::from_secs(1);

/// Most EPCs the TID cache holds; past it, entries not seen for the longest go first.
const TID_CACHE_MAX: usize = 256;

/// One tag seen by the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRead {
    pub epc: Vec<u8>,
    /// The tag's TID, when the reader read it (see the module header).
    pub tid: Option<Vec<u8>>,
    pub antenna: u8,
    pub rssi_dbm: i16,
    /// When the driver decoded it (monotonic).
    pub at: Instant,
}

/// What the driver reports to the lane runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    Tag(TagRead),
    /// The reader answered an inventory with an error (e.g. antenna missing).
    DeviceError(StatusCode),
}

/// Why [`ReaderLink::run`] ended.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("cannot open reader port {path}: {source}")]
    Open {
        path: String,
        source: tokio_serial::Error,
    },
    #[error("reader hung up")]
    HungUp,
    #[error("reader link failed: {0}")]
    Transport(#[from] std::io::Error),
    #[error("reader silent for {rounds} inventory rounds")]
    Silent { rounds: u32 },
    #[error("the lane runtime stopped listening")]
    Closed,
}

/// Which EPCs' first reads wait for their TID (see the module header): `true` for an EPC whose
/// TID the decision checks.
pub type TidNeeded = std::sync::Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Counters the driver keeps (for metrics and `gate status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderCounters {
    pub frames: u64,
    pub tags: u64,
    /// TID reads sent (one per round that saw a new EPC).
    pub tid_reads: u64,
    /// New EPCs forwarded at once because the decision does not check their TID.
    pub tid_not_needed: u64,
    /// New EPCs whose TID the reader did not report.
    pub tid_missing: u64,
    pub dropped_bytes: u64,
    pub timeouts: u64,
}

/// An open link to one reader.
pub struct ReaderLink<T> {
    transport: T,
    decoder: ReaderDecoder,
    address: u8,
    timeout: Duration,
    counters: ReaderCounters,
    /// The last round ended with an error status instead of its completion.
    round_failed: bool,
    /// EPC → (TID if the tag reported one, when the tag was last seen).
    tids: HashMap<Vec<u8>, (Option<Vec<u8>>, Instant)>,
    /// Which new EPCs wait for their TID (`None`: all of them).
    tid_needed: Option<TidNeeded>,
}

/// How long the link rests after the reader answered an inventory with an error status (an
/// antenna missing, a fault): asked again at once, a faulty reader would be polled at line
/// speed, about a thousand rounds a second, taking the lane's thread with it. A vehicle waits
/// at most this long to be read once the fault clears.
pub const ERROR_PAUSE: Duration = Duration::from_millis(200);

impl<T> fmt::Debug for ReaderLink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderLink")
            .field("address", &self.address)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Opens a reader's serial port (8N1 at the given speed).
pub fn open_port(path: &Path, baud: u32) -> Result<tokio_serial::SerialStream, ReaderError> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(path.to_string_lossy(), baud)
        .open_native_async()
        .map_err(|source| ReaderError::Open {
            path: path.display().to_string(),
            source,
        })
}

impl<T: AsyncRead + AsyncWrite + Unpin> ReaderLink<T> {
    /// Wraps any transport (a serial port, a pseudo-terminal, an in-memory pipe).
    pub fn new(transport: T, address: u8, timeout: Duration) -> ReaderLink<T> {
        ReaderLink {
            transport,
            decoder: ReaderDecoder::new(),
            address,
            timeout,
            counters: ReaderCounters::default(),
            round_failed: false,
            tids: HashMap::new(),
            tid_needed: None,
        }
    }

    /// Reads the TID of a new EPC only when `needed` says the decision checks it; every other
    /// new EPC is forwarded at once, without a TID. Without this, every new EPC waits for its TID.
    pub fn with_tid_needed(mut self, needed: TidNeeded) -> ReaderLink<T> {
        self.tid_needed = Some(needed);
        self
    }

    /// The driver's counters so far (bytes dropped as noise included).
    pub fn counters(&self) -> ReaderCounters {
        ReaderCounters {
            dropped_bytes: self.decoder.dropped_bytes(),
            ..self.counters
        }
    }

    /// Inventories forever, sending every tag to `events`, until the link fails, the reader goes
    /// silent or the receiver is gone. `on_counters` is called after each round.
    pub async fn run(
        &mut self,
        events: &mpsc::Sender<ReaderEvent>,
        mut on_counters: impl FnMut(ReaderCounters),
    ) -> ReaderError {
        let mut silent = 0;
        loop {
            match self.inventory_round(events).await {
                Ok(true) => {
                    silent = 0;
                    if self.round_failed {
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                }
                Ok(false) => {
                    silent += 1;
                    self.counters.timeouts += 1;
                    if silent >= SILENT_ROUNDS_OFFLINE {
                        return ReaderError::Silent { rounds: silent };
                    }
                }
                Err(e) => return e,
            }
            on_counters(self.counters());
        }
    }

    /// Sends one real-time inventory and forwards its tag reports until the completion; reads
    /// the TIDs of EPCs not in the cache before forwarding those. Returns `Ok(false)` if the
    /// reader stayed silent past the timeout.
    async fn inventory_round(
        &mut self,
        events: &mpsc::Sender<ReaderEvent>,
    ) -> Result<bool, ReaderError> {
        self.send(HostCommand::RealTimeInventory { repeat: 1 })
            .await?;
        let mut held: Vec<TagRead> = Vec::new();
        let mut buf = [0u8; 512];
        let deadline = tokio::time::Instant::now() + self.timeout;
        let answered = 'round: loop {
            let Some(n) = self.read_some(&mut buf, deadline).await? else {
                return Ok(false);
            };
            let at = Instant::now();
            self.decoder.push(&buf[..n]);
            while let Some(frame) = self.decoder.next_frame() {
                self.counters.frames += 1;
                match frame.reply {
                    ReaderReply::Tag { report, .. } => {
                        self.counters.tags += 1;
                        let mut read = TagRead {
                            antenna: report.antenna(),
                            rssi_dbm: report.dbm(),
                            epc: report.epc,
                            tid: None,
                            at,
                        };
                        match self.tids.get_mut(&read.epc) {
                            Some((tid, seen)) => {
                                *seen = at;
                                read.tid = tid.clone();
                                forward(events, ReaderEvent::Tag(read)).await?;
                            }
                            None if held.iter().any(|h| h.epc == read.epc) => {}
                            None if self.tid_needed.as_ref().is_some_and(|f| !f(&read.epc)) => {
                                self.counters.tid_not_needed += 1;
                                forward(events, ReaderEvent::Tag(read)).await?;
                            }
                            None => held.push(read),
                        }
                    }
                    ReaderReply::InventoryDone { .. } => {
                        self.round_failed = false;
                        break 'round true;
                    }
                    ReaderReply::Status { code, .. } => {
                        self.round_failed = code != StatusCode::Success;
                        if self.round_failed {
                            forward(events, ReaderEvent::DeviceError(code)).await?;
                        }
                        break 'round true;
                    }
                    // Replies to nothing we asked (another host's command, a buffered tag, a
                    // late TID read): counted as frames, otherwise ignored.
                    _ => {}
                }
            }
        };
        if !held.is_empty() {
            self.read_tids(&mut held).await?;
            for read in held {
                forward(events, ReaderEvent::Tag(read)).await?;
            }
        }
        self.forget_gone_tags();
        Ok(answered)
    }

    /// Reads the TID bank of every tag in the field and fills in the TIDs of `held` (new EPCs),
    /// caching each EPC→TID pair. A silent reader or an error status leaves them without a TID.
    async fn read_tids(&mut self, held: &mut [TagRead]) -> Result<(), ReaderError> {
        self.counters.tid_reads += 1;
        self.send(HostCommand::ReadTag(ReadTag::tid())).await?;
        let mut got: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut buf = [0u8; 512];
        let deadline = tokio::time::Instant::now() + self.timeout;
        'read: loop {
            let Some(n) = self.read_some(&mut buf, deadline).await? else {
                break 'read;
            };
            self.decoder.push(&buf[..n]);
            while let Some(frame) = self.decoder.next_frame() {
                self.counters.frames += 1;
                match frame.reply {
                    ReaderReply::TagData(tag) => {
                        let expected = usize::from(tag.tag_count);
                        // A TID whose tag CRC fails was garbled in the air: not trusted.
                        if tag.crc_ok() && !tag.data.is_empty() {
                            got.insert(tag.epc, tag.data);
                        }
                        if got.len() >= expected {
                            break 'read;
                        }
                    }
                    ReaderReply::Status { .. } => break 'read,
                    _ => {}
                }
            }
        }
        let now = Instant::now();
        for read in held.iter_mut() {
            read.tid = got.get(&read.epc).cloned();
            if read.tid.is_none() {
                self.counters.tid_missing += 1;
            }
            self.tids
                .insert(read.epc.clone(), (read.tid.clone(), read.at.max(now)));
        }
        // Tags already cached answered too: keep them fresh.
        for (epc, tid) in got {
            if let Some(entry) = self.tids.get_mut(&epc)
                && entry.0.as_ref() == Some(&tid)
            {
                entry.1 = now;
            }
        }
        Ok(())
    }

    /// Drops cached TIDs of tags not seen for [`TID_CACHE_IDLE`], and the stalest past the cap.
    fn forget_gone_tags(&mut self) {
        let now = Instant::now();
        self.tids
            .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < TID_CACHE_IDLE);
        while self.tids.len() > TID_CACHE_MAX {
            let Some(oldest) = self
                .tids
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(epc, _)| epc.clone())
            else {
                break;
            };
            self.tids.remove(&oldest);
        }
    }

    /// Writes one command frame.
    async fn send(&mut self, command: HostCommand) -> Result<(), ReaderError> {
        let mut out = Vec::with_capacity(16);
        HostFrame {
            address: self.address,
            command,
        }
        .encode(&mut out)
        .expect("the driver's commands always encode");
        self.transport.write_all(&out).await?;
        Ok(())
    }

    /// Reads what the line has, or `None` once `deadline` passes (dropping a partial frame: bytes
    /// of an answer to a timed-out command are stale and would only delay resynchronisation).
    async fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: tokio::time::Instant,
    ) -> Result<Option<usize>, ReaderError> {
        match tokio::time::timeout_at(deadline, self.transport.read(buf)).await {
            Err(_elapsed) => {
                self.decoder.discard_partial();
                Ok(None)
            }
            Ok(Ok(0)) => Err(ReaderError::HungUp),
            Ok(Ok(n)) => Ok(Some(n)),
            Ok(Err(e)) if crate::serial::pty::is_hangup(&e) => Err(ReaderError::HungUp),
            Ok(Err(e)) => Err(e.into()),
        }
    }
}

/// Sends an event to the lane runtime.
async fn forward(
    events: &mpsc::Sender<ReaderEvent>,
    event: ReaderEvent,
) -> Result<(), ReaderError> {
    events.send(event).await.map_err(|_| ReaderError::Closed)
}

/// Which reads the lane acts on: strong enough, and not a repeat of a tag acted on within the
/// hold time. Pure: time is an argument.
#[derive(Debug)]
pub struct TagFilter {
    rssi_floor_dbm: i16,
    hold: Duration,
    acted: HashMap<Vec<u8>, Instant>,
}

/// Why a read was not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Weaker than the RSSI floor.
    Weak,
    /// The same tag was acted on within the hold time.
    Held,
}

impl TagFilter {
    pub fn new(rssi_floor_dbm: i16, hold: Duration) -> TagFilter {
        TagFilter {
            rssi_floor_dbm,
            hold,
            acted: HashMap::new(),
        }
    }

    /// Should the lane act on this read? If yes, the tag is held from `now`.
    pub fn admit(&mut self, read: &TagRead, now: Instant) -> Result<(), Suppressed> {
        if read.rssi_dbm < self.rssi_floor_dbm {
            return Err(Suppressed::Weak);
        }
        if let Some(at) = self.acted.get(&read.epc)
            && now.saturating_duration_since(*at) < self.hold
        {
            return Err(Suppressed::Held);
        }
        // Keep the map small: forget tags whose hold has long passed.
        if self.acted.len() > 256 {
            let hold = self.hold;
            self.acted
                .retain(|_, at| now.saturating_duration_since(*at) < hold);
        }
        self.acted.insert(read.epc.clone(), now);
        Ok(())
    }

    /// Forgets every hold (e.g. when the lane's vehicle left, the next one starts fresh).
    pub fn clear(&mut self) {
        self.acted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(epc: u8, dbm: i16) -> TagRead {
        TagRead {
            epc: vec![epc; 12],
            tid: None,
            antenna: 0,
            rssi_dbm: dbm,
            at: Instant::now(),
        }
    }

    #[test]
    fn a_read_below_the_rssi_floor_is_not_acted_on() {
        let mut filter = TagFilter::new(-70, Duration::from_secs(3));
        let now = Instant::now();
        assert_eq!(filter.admit(&read(1, -71), now), Err(Suppressed::Weak));
        assert_eq!(filter.admit(&read(1, -70), now), Ok(()));
    }

    #[test]
    fn a_tag_is_held_for_the_hold_time_then_acted_on_again() {
        let mut filter = TagFilter::new(-90, Duration::from_secs(3));
        let t0 = Instant::now();
        assert_eq!(filter.admit(&read(1, -50), t0), Ok(()));
        assert_eq!(
            filter.admit(&read(1, -50), t0 + Duration::from_millis(2999)),
            Err(Suppressed::Held)
        );
        assert_eq!(
            filter.admit(&read(2, -50), t0 + Duration::from_millis(10)),
            Ok(())
        );
        assert_eq!(
            filter.admit(&read(1, -50), t0 + Duration::from_secs(3)),
            Ok(())
        );
    }
}
