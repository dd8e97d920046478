//! The RS-485 LED/voice lane screen (4-line 车道屏 with a speaker), sans-IO: its frame, an
//! encoder, a resynchronising decoder for the screen side (the simulator), and GBK text that
//! fits a frame (docs/protocols.md §4).
//!
//! Frame: `DA | VR=0x64 | PN(2) | CMD | DL | DATA(DL ≤ 255) | CRC-16/MODBUS (low byte first)`,
//! the CRC over every byte before it. Two captures are verified byte for byte (see the tests);
//! what DATA holds for the text commands (0x62, 0x6F) is not documented anywhere we found, so
//! this module only frames bytes: the command layouts are the driver's business
//! (`gatehouse::gate::display::screen`), where the guesses are kept behind a trait.
//!
//! What it never does: IO, time, or guessing at a command's meaning.

use encoding_rs::GBK;
use thiserror::Error;

use crate::checksum::crc16_modbus;

/// The protocol byte in every frame (docs/protocols.md §4, both captures: `VR=0x64`).
pub const VR: u8 = 0x64;
/// Bytes before DATA: DA, VR, PN (2), CMD, DL.
pub const HEADER_LEN: usize = 6;
/// Bytes after DATA: the CRC.
pub const CRC_LEN: usize = 2;
/// DATA's longest length: DL is one byte (docs/protocols.md §4: `DATA(≤255)`).
pub const MAX_DATA: usize = 255;
/// The packet number both captures carry (`FF FF`: "no packet numbering").
pub const PN_NONE: u16 = 0xFFFF;

/// A frame's command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `0x00`: connect, DATA = the screen's password in ASCII (capture: `"159753"`).
    Connect,
    /// `0x30`: voice, probably (capture: DATA `01 31`).
    Voice,
    /// `0x62`: a text command (layout not known).
    Text62,
    /// `0x6F`: a text command (layout not known).
    Text6F,
    /// Any other command byte, kept as it came.
    Other(u8),
}

impl Command {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Command::Connect => 0x00,
            Command::Voice => 0x30,
            Command::Text62 => 0x62,
            Command::Text6F => 0x6F,
            Command::Other(b) => b,
        }
    }

    /// The command of a wire byte (never fails: unknown bytes are [`Command::Other`]).
    pub fn from_byte(b: u8) -> Command {
        match b {
            0x00 => Command::Connect,
            0x30 => Command::Voice,
            0x62 => Command::Text62,
            0x6F => Command::Text6F,
            other => Command::Other(other),
        }
    }
}

/// Why a frame cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// DATA longer than DL can say.
    #[error("lane screen frame data is {0} bytes; at most {MAX_DATA} fit")]
    DataTooLong(usize),
}

/// One lane screen frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The screen's address (DA; `0x00` in both captures).
    pub address: u8,
    /// The packet number (PN), sent high byte first (a guess: both captures carry `FF FF`).
    pub packet: u16,
    /// The command.
    pub command: Command,
    data: Vec<u8>,
}

impl Frame {
    /// A frame; fails when `data` is longer than [`MAX_DATA`].
    pub fn new(
        address: u8,
        packet: u16,
        command: Command,
        data: Vec<u8>,
    ) -> Result<Frame, FrameError> {
        if data.len() > MAX_DATA {
            return Err(FrameError::DataTooLong(data.len()));
        }
        Ok(Frame {
            address,
            packet,
            command,
            data,
        })
    }

    /// DATA.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Appends the frame's bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let [pn_hi, pn_lo] = self.packet.to_be_bytes();
        out.extend_from_slice(&[
            self.address,
            VR,
            pn_hi,
            pn_lo,
            self.command.byte(),
            // `new` keeps DATA within one byte's count.
            self.data.len() as u8,
        ]);
        out.extend_from_slice(&self.data);
        let crc = crc16_modbus(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// The frame's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.data.len() + CRC_LEN);
        self.emit(&mut out);
        out
    }
}

/// The screen side's streaming decoder: feed it whatever the line delivered, take whole frames
/// out. Noise and broken frames are dropped a byte at a time and counted; nothing is an error.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    dropped: u64,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes dropped so far while resynchronising.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Bytes held that do not make a whole frame yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops a partial frame (the line went quiet in the middle of one); counts its bytes.
    pub fn flush_partial(&mut self) {
        self.dropped += self.buf.len() as u64;
        self.buf.clear();
    }

    /// The next whole frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            // Sync on VR, the one constant byte, in the second position.
            if self.buf.len() >= 2 && self.buf[1] != VR {
                self.drop_one();
                continue;
            }
            match whole_frame_at(&self.buf, 0) {
                Some(true) => {}
                Some(false) => {
                    self.drop_one();
                    continue;
                }
                None => {
                    // Incomplete: noise may have made a header that claims a long DATA. A
                    // whole valid frame further on proves it; skip to that frame.
                    let later =
                        (1..self.buf.len()).find(|&i| whole_frame_at(&self.buf, i) == Some(true));
                    match later {
                        Some(i) => {
                            self.buf.drain(..i);
                            self.dropped += i as u64;
                            continue;
                        }
                        None => return None,
                    }
                }
            }
            let len = HEADER_LEN + usize::from(self.buf[5]) + CRC_LEN;
            let frame = Frame {
                address: self.buf[0],
                packet: u16::from_be_bytes([self.buf[2], self.buf[3]]),
                command: Command::from_byte(self.buf[4]),
                data: self.buf[HEADER_LEN..len - CRC_LEN].to_vec(),
            };
            self.buf.drain(..len);
            return Some(frame);
        }
    }

    fn drop_one(&mut self) {
        self.buf.remove(0);
        self.dropped += 1;
    }
}

/// Whether a frame starting at `at` is whole and valid (`Some(true)`), whole but broken
/// (`Some(false)`), or not whole yet (`None`).
fn whole_frame_at(buf: &[u8], at: usize) -> Option<bool> {
    let buf = &buf[at..];
    if buf.len() < HEADER_LEN {
        return None;
    }
    if buf[1] != VR {
        return Some(false);
    }
    let len = HEADER_LEN + usize::from(buf[5]) + CRC_LEN;
    if buf.len() < len {
        return None;
    }
    let crc = u16::from_le_bytes([buf[len - 2], buf[len - 1]]);
    Some(crc16_modbus(&buf[..len - CRC_LEN]) == crc)
}

/// What became of a text on its way to GBK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GbkText {
    /// The GBK bytes.
    pub bytes: Vec<u8>,
    /// Characters GBK lacks, each replaced by [`REPLACEMENT`].
    pub replaced: usize,
    /// Whether the text was cut (on a character boundary) to fit.
    pub truncated: bool,
}

/// What stands in for a character GBK cannot say.
pub const REPLACEMENT: char = '?';

/// Encodes `text` in GBK in at most `max` bytes: a character GBK lacks becomes
/// [`REPLACEMENT`], and a text too long is cut before the first character that does not fit
/// whole (never in the middle of a two-byte character).
pub fn encode_gbk(text: &str, max: usize) -> GbkText {
    let mut out = GbkText::default();
    let mut one = [0u8; 4];
    for c in text.chars() {
        let (bytes, _, unmappable) = GBK.encode(c.encode_utf8(&mut one));
        let bytes = if unmappable {
            out.replaced += 1;
            std::borrow::Cow::Owned(vec![REPLACEMENT as u8])
        } else {
            bytes
        };
        if out.bytes.len() + bytes.len() > max {
            out.truncated = true;
            break;
        }
        out.bytes.extend_from_slice(&bytes);
    }
    out
}

/// Decodes GBK bytes (the simulator's side); malformed sequences become U+FFFD.
pub fn decode_gbk(bytes: &[u8]) -> String {
    GBK.decode_without_bom_handling(bytes).0.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// docs/protocols.md §4, verified capture 1: probably voice.
    const VOICE_CAPTURE: [u8; 10] = [
        0x00, // DA: screen address 0
        0x64, // VR
        0xFF, 0xFF, // PN: none
        0x30, // CMD: voice
        0x02, // DL: 2 data bytes
        0x01, 0x31, // DATA: 01, "1"
        0x0B, 0x52, // CRC-16/MODBUS 0x520B, low byte first
    ];

    /// docs/protocols.md §4, verified capture 2: connect with the password "159753".
    const CONNECT_CAPTURE: [u8; 14] = [
        0x00, // DA
        0x64, // VR
        0xFF, 0xFF, // PN: none
        0x00, // CMD: connect
        0x06, // DL: 6 data bytes
        0x31, 0x35, 0x39, 0x37, 0x35, 0x33, // DATA: "159753"
        0xFB, 0x06, // CRC-16/MODBUS 0x06FB, low byte first
    ];

    #[test]
    fn the_voice_capture_is_encoded_byte_for_byte() {
        let frame = Frame::new(0, PN_NONE, Command::Voice, vec![0x01, 0x31]).unwrap();
        assert_eq!(frame.to_bytes(), VOICE_CAPTURE);
    }

    #[test]
    fn the_connect_capture_is_encoded_byte_for_byte() {
        let frame = Frame::new(0, PN_NONE, Command::Connect, b"159753".to_vec()).unwrap();
        assert_eq!(frame.to_bytes(), CONNECT_CAPTURE);
    }

    #[test]
    fn both_captures_decode_to_their_frames() {
        let mut d = Decoder::new();
        d.push(&VOICE_CAPTURE);
        d.push(&CONNECT_CAPTURE);
        let voice = d.next_frame().unwrap();
        assert_eq!(
            (voice.address, voice.packet, voice.command, voice.data()),
            (0, 0xFFFF, Command::Voice, &[0x01, 0x31][..])
        );
        let connect = d.next_frame().unwrap();
        assert_eq!(connect.command, Command::Connect);
        assert_eq!(connect.data(), b"159753");
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.dropped_bytes(), 0);
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut d = Decoder::new();
        d.push(&CONNECT_CAPTURE[..9]);
        assert_eq!(d.next_frame(), None);
        d.push(&CONNECT_CAPTURE[9..]);
        assert_eq!(d.next_frame().unwrap().command, Command::Connect);
    }

    #[test]
    fn noise_and_a_corrupted_frame_are_dropped_and_counted_and_the_next_frame_still_decodes() {
        let mut d = Decoder::new();
        let mut bad = VOICE_CAPTURE;
        bad[7] ^= 0x40;
        d.push(&[0x55, 0x64, 0xAA]);
        d.push(&bad);
        d.push(&CONNECT_CAPTURE);
        let f = d.next_frame().unwrap();
        assert_eq!(f.command, Command::Connect);
        assert_eq!(d.dropped_bytes(), 3 + bad.len() as u64);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn unknown_commands_are_kept_not_refused() {
        let frame = Frame::new(3, 7, Command::Other(0x99), vec![1, 2, 3]).unwrap();
        let mut d = Decoder::new();
        d.push(&frame.to_bytes());
        assert_eq!(d.next_frame().unwrap(), frame);
    }

    #[test]
    fn data_longer_than_255_bytes_is_refused() {
        assert_eq!(
            Frame::new(0, PN_NONE, Command::Text62, vec![0; 256]),
            Err(FrameError::DataTooLong(256))
        );
        assert!(Frame::new(0, PN_NONE, Command::Text62, vec![0; 255]).is_ok());
    }

    #[test]
    fn chinese_text_is_encoded_in_gbk() {
        let t = encode_gbk("欢迎光临", MAX_DATA);
        // GBK: 欢 BB B6, 迎 D3 AD, 光 B9 E2, 临 C1 D9.
        assert_eq!(t.bytes, [0xBB, 0xB6, 0xD3, 0xAD, 0xB9, 0xE2, 0xC1, 0xD9]);
        assert_eq!((t.replaced, t.truncated), (0, false));
        assert_eq!(decode_gbk(&t.bytes), "欢迎光临");
    }

    #[test]
    fn characters_gbk_lacks_are_replaced() {
        let t = encode_gbk("京A😀1", MAX_DATA);
        assert_eq!(decode_gbk(&t.bytes), "京A?1");
        assert_eq!(t.replaced, 1);
    }

    #[test]
    fn overlong_text_is_cut_on_a_character_boundary() {
        // 5 bytes of room: "A" (1) + 京 (2) + 津 (2) fit, 冀 does not.
        let t = encode_gbk("A京津冀", 5);
        assert_eq!(decode_gbk(&t.bytes), "A京津");
        assert!(t.truncated);
        // 4 bytes: "A京" (3), and half of 津 is never sent.
        let t = encode_gbk("A京津冀", 4);
        assert_eq!(t.bytes.len(), 3);
        assert_eq!(decode_gbk(&t.bytes), "A京");
    }

    proptest! {
        #[test]
        fn any_frame_round_trips(address: u8, packet: u16, cmd: u8,
                                 data in proptest::collection::vec(any::<u8>(), 0..=255)) {
            let frame = Frame::new(address, packet, Command::from_byte(cmd), data).unwrap();
            let mut d = Decoder::new();
            d.push(&frame.to_bytes());
            prop_assert_eq!(d.next_frame(), Some(frame));
            prop_assert_eq!(d.dropped_bytes(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_every_byte_is_accounted_for(
            bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut d = Decoder::new();
            d.push(&bytes);
            let mut framed = 0usize;
            while let Some(f) = d.next_frame() {
                framed += HEADER_LEN + f.data().len() + CRC_LEN;
            }
            prop_assert_eq!(framed + d.dropped_bytes() as usize + d.buffered(), bytes.len());
        }

        #[test]
        fn gbk_text_always_fits_and_decodes_to_a_prefix(text in "\\PC{0,80}", max in 0usize..64) {
            let t = encode_gbk(&text, max);
            prop_assert!(t.bytes.len() <= max);
            let back = decode_gbk(&t.bytes);
            prop_assert!(!back.contains(char::REPLACEMENT_CHARACTER), "{}", back);
        }
    }
}
