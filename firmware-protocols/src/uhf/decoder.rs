//! A streaming decoder for 0xA0 frames: bytes in, typed frames out, line noise dropped and counted.
//!
//! It resynchronises the way tokio-modbus's RTU codec does: when the bytes at the front cannot
//! start a valid frame (not 0xA0, a `Len` below 3, or a complete frame with a bad checksum) it drops
//! ONE byte, counts it, and rescans from the next byte. A partial frame waits for more bytes.
//!
//! It never returns an error, never panics on input, and never does IO or reads a clock: the
//! caller decides when the line has been quiet long enough to call [`Decoder::discard_partial`].

use std::fmt;
use std::marker::PhantomData;

use super::{HEAD, HostFrame, MIN_LEN, ReaderFrame, UhfFrame};

/// Decodes host commands (what a reader, or its emulator, receives).
pub type HostDecoder = Decoder<HostFrame>;
/// Decodes reader replies (what the gate controller receives).
pub type ReaderDecoder = Decoder<ReaderFrame>;

/// A streaming 0xA0 framer yielding frames of type `F`.
///
/// Memory: the decoder holds the bytes pushed and not yet taken out. Once [`Decoder::next_frame`]
/// has returned `None`, what remains is one partial frame, shorter than
/// [`super::MAX_FRAME_LEN`] bytes. Accounting: every byte pushed is, at any time, exactly one of
/// consumed (part of a returned frame), dropped, or still buffered.
pub struct Decoder<F> {
    buf: Vec<u8>,
    /// Index of the first byte not yet consumed or dropped.
    start: usize,
    dropped: u64,
    consumed: u64,
    frames: u64,
    _frame: PhantomData<fn() -> F>,
}

/// What the bytes at the front of the buffer are.
enum Front {
    Empty,
    /// A head that may start a frame, but not all of it is here.
    Partial,
    /// This many bytes cannot start a frame.
    Noise(usize),
    /// A checksum-valid frame of this many bytes.
    Frame(usize),
}

fn classify(buf: &[u8]) -> Front {
    match buf.first() {
        None => return Front::Empty,
        // Everything up to the next head is noise; dropping it in one go counts the same as
        // dropping it byte by byte.
        Some(&b) if b != HEAD => {
            return Front::Noise(buf.iter().position(|&b| b == HEAD).unwrap_or(buf.len()));
        }
        Some(_) => {}
    }
    let Some(&len) = buf.get(1) else {
        return Front::Partial;
    };
    if len < MIN_LEN {
        return Front::Noise(1);
    }
    let total = usize::from(len) + 2;
    let Some(frame) = buf.get(..total) else {
        return Front::Partial;
    };
    if frame.iter().fold(0u8, |s, b| s.wrapping_add(*b)) != 0 {
        return Front::Noise(1);
    }
    Front::Frame(total)
}

impl<F: UhfFrame> Decoder<F> {
    /// An empty decoder.
    pub fn new() -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            dropped: 0,
            consumed: 0,
            frames: 0,
            _frame: PhantomData,
        }
    }

    /// Appends received bytes. Call [`Decoder::next_frame`] until it returns `None` afterwards.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` when the buffer holds only a partial frame (or nothing).
    pub fn next_frame(&mut self) -> Option<F> {
        loop {
            match classify(&self.buf[self.start..]) {
                Front::Empty => {
                    self.buf.clear();
                    self.start = 0;
                    return None;
                }
                Front::Partial => return None,
                Front::Noise(n) => self.drop_bytes(n),
                Front::Frame(total) => {
                    let frame = &self.buf[self.start..self.start + total];
                    let decoded = F::from_parts(frame[2], frame[3], &frame[4..total - 1]);
                    self.start += total;
                    self.consumed += total as u64;
                    self.frames += 1;
                    return Some(decoded);
                }
            }
        }
    }

    /// An iterator over the frames complete so far.
    pub fn frames(&mut self) -> impl Iterator<Item = F> + '_ {
        std::iter::from_fn(move || self.next_frame())
    }

    /// Treats a partial frame at the front as noise: drops bytes (counted) until a complete frame
    /// is at the front or the buffer is empty.
    ///
    /// Call it when the line has been silent for longer than a frame takes to arrive, so a stray
    /// 0xA0 in noise (whose `Len` announces bytes that will never come) cannot hold up the frames
    /// behind it. Complete frames stay for [`Decoder::next_frame`].
    pub fn discard_partial(&mut self) {
        loop {
            match classify(&self.buf[self.start..]) {
                Front::Empty | Front::Frame(_) => return,
                Front::Partial => self.drop_bytes(1),
                Front::Noise(n) => self.drop_bytes(n),
            }
        }
    }

    fn drop_bytes(&mut self, n: usize) {
        self.start += n;
        self.dropped += n as u64;
    }

    /// Bytes dropped as noise so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Bytes that were part of returned frames so far.
    pub fn consumed_bytes(&self) -> u64 {
        self.consumed
    }

    /// Frames returned so far.
    pub fn frames_decoded(&self) -> u64 {
        self.frames
    }

    /// Bytes held, neither consumed nor dropped yet.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }
}

impl<F: UhfFrame> Default for Decoder<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> fmt::Debug for Decoder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("frame", &std::any::type_name::<F>())
            .field("buffered", &(self.buf.len() - self.start))
            .field("dropped", &self.dropped)
            .field("consumed", &self.consumed)
            .field("frames", &self.frames)
            .finish()
    }
}
