//! Modbus RTU frames as the lane I/O module speaks them: typed requests and responses, their
//! encoders, and streaming decoders for both directions (docs/protocols.md#lane-io-module).
//!
//! An RTU ADU is `slave | function | data | CRC lo | CRC hi`, at most [`MAX_ADU_LEN`] bytes, with
//! CRC-16/MODBUS over everything before the CRC. Only the functions a relay/input module needs
//! are typed (read coils 0x01, read discrete inputs 0x02, write single coil 0x05, write multiple
//! coils 0x0F, and exceptions); every other well-formed frame becomes an `Other` variant, never an
//! error.
//!
//! # Who uses this
//! The gate controller talks to the module through tokio-modbus's RTU client, which is generic over
//! any `AsyncRead + AsyncWrite`. The *emulator* of the module (`gatehouse::sim::lane_io`) uses this
//! codec instead of tokio-modbus's RTU server, because that server is hard-wired to
//! `tokio_serial::SerialStream` (it cannot run over `tokio::io::duplex`) and ends its serve loop on
//! the first undecodable frame, where a device on a noisy RS-485 line must resynchronise and keep
//! answering. The [`ResponseDecoder`] is the client half, used by tests to read what the emulator
//! sends and to cross-check tokio-modbus.
//!
//! # Finding frames without timing
//! RTU delimits frames by ≥ 3.5 character times of silence. This module never sees time, so
//! [`RequestDecoder`] and [`ResponseDecoder`] find frame ends from the function code and the
//! byte-count fields and accept a frame only if its CRC checks. On a CRC mismatch or an impossible
//! header (slave address 248–255, function 0, a length over 256 bytes) they drop **one** byte,
//! count it ([`RequestDecoder::dropped_bytes`]) and rescan from the next byte, so a valid frame
//! that follows garbage is still found. Line noise is never an error and never a panic.
//!
//! For a function whose length cannot be derived from its header (not one of the standard
//! functions, e.g. 0x08 diagnostics or a vendor code) the decoder takes the *shortest* prefix of
//! at least 4 bytes whose CRC checks, and waits for more bytes (up to 256) while there is none.
//! This is a heuristic: a frame with a CRC-valid shorter prefix (a 2⁻¹⁶ chance per byte) is cut
//! short. It is enough for the emulator, which answers every such frame with exception 01.
//!
//! A header that promises more bytes than ever arrive (garbage that looks like the start of a
//! long frame) would hold the decoder waiting. The caller owns the clock: when it has seen the
//! line silent for longer than a frame gap it calls [`RequestDecoder::line_idle`], which declares
//! an incomplete frame broken and rescans what follows it — what the 3.5-character rule does on a
//! real line.
//!
//! Between calls the raw buffer holds less than one maximum ADU (a longer incomplete window is
//! always resolved by a drop); decoded frames queue until [`RequestDecoder::next_frame`] takes
//! them, so callers drain after each `push`.
//!
//! This module never does IO, never reads a clock and never allocates without bound on noise.

use std::collections::VecDeque;

use thiserror::Error;

/// The longest RTU ADU, address and CRC included.
///
/// Modbus over Serial Line Specification and Implementation Guide V1.02, §2.5.1.1 (page 13):
/// "The maximum size of a MODBUS RTU frame is 256 bytes."
pub const MAX_ADU_LEN: usize = 256;

/// The highest unicast slave address; 0 is broadcast and 248–255 are reserved.
///
/// Modbus over Serial Line V1.02, §2.2 (page 7): "1 – 247 slave individual addresses".
pub const MAX_SLAVE: u8 = 247;

/// The broadcast address: every slave executes a write, none answers.
pub const BROADCAST: u8 = 0;

/// The most coils or inputs one read may ask for (0x07D0).
///
/// Modbus Application Protocol Specification V1.1b3, §6.1 and §6.2 (pages 12–13).
pub const MAX_READ_BITS: u16 = 2000;

/// The most coils one write-multiple-coils request may carry (0x07B0).
///
/// Modbus Application Protocol Specification V1.1b3, §6.11 (page 29).
pub const MAX_WRITE_BITS: u16 = 1968;

/// Read coils.
pub const FC_READ_COILS: u8 = 0x01;
/// Read discrete inputs.
pub const FC_READ_DISCRETE_INPUTS: u8 = 0x02;
/// Write single coil.
pub const FC_WRITE_SINGLE_COIL: u8 = 0x05;
/// Write multiple coils.
pub const FC_WRITE_MULTIPLE_COILS: u8 = 0x0F;

/// Set on the function code of an exception response.
const EXCEPTION_FLAG: u8 = 0x80;
/// Slave address, function code, two CRC bytes.
const MIN_ADU_LEN: usize = 4;
const COIL_ON_WIRE: u16 = 0xFF00;
const COIL_OFF_WIRE: u16 = 0x0000;

/// The value field of a write-single-coil request or its echo.
///
/// The spec allows only 0xFF00 (on) and 0x0000 (off); any other value is kept as
/// [`CoilValue::Illegal`] so that a server can answer it with exception 03 (illegal data value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoilValue {
    /// 0xFF00.
    On,
    /// 0x0000.
    Off,
    /// Anything else (never 0xFF00 or 0x0000 when built with [`CoilValue::from_wire`]).
    Illegal(u16),
}

impl CoilValue {
    /// Reads the 16-bit wire value.
    pub fn from_wire(value: u16) -> CoilValue {
        match value {
            COIL_ON_WIRE => CoilValue::On,
            COIL_OFF_WIRE => CoilValue::Off,
            other => CoilValue::Illegal(other),
        }
    }

    /// The 16-bit wire value.
    pub fn to_wire(self) -> u16 {
        match self {
            CoilValue::On => COIL_ON_WIRE,
            CoilValue::Off => COIL_OFF_WIRE,
            CoilValue::Illegal(value) => value,
        }
    }

    /// `Some(on)` for a legal value, `None` for an illegal one.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            CoilValue::On => Some(true),
            CoilValue::Off => Some(false),
            CoilValue::Illegal(_) => None,
        }
    }
}

impl From<bool> for CoilValue {
    fn from(on: bool) -> CoilValue {
        if on { CoilValue::On } else { CoilValue::Off }
    }
}

/// A Modbus exception code (Modbus Application Protocol V1.1b3, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionCode {
    /// 01: the function code is not supported.
    IllegalFunction,
    /// 02: the address (or address + quantity) is outside the device's points.
    IllegalDataAddress,
    /// 03: a value in the request is not allowed (quantity out of range, bad coil value).
    IllegalDataValue,
    /// 04: the device failed while executing the request.
    ServerDeviceFailure,
    /// 06: the device is busy; retry later.
    ServerDeviceBusy,
    /// Any other code (never one of the above when built with `From<u8>`).
    Other(u8),
}

impl From<u8> for ExceptionCode {
    fn from(code: u8) -> ExceptionCode {
        match code {
            0x01 => ExceptionCode::IllegalFunction,
            0x02 => ExceptionCode::IllegalDataAddress,
            0x03 => ExceptionCode::IllegalDataValue,
            0x04 => ExceptionCode::ServerDeviceFailure,
            0x06 => ExceptionCode::ServerDeviceBusy,
            other => ExceptionCode::Other(other),
        }
    }
}

impl From<ExceptionCode> for u8 {
    fn from(code: ExceptionCode) -> u8 {
        match code {
            ExceptionCode::IllegalFunction => 0x01,
            ExceptionCode::IllegalDataAddress => 0x02,
            ExceptionCode::IllegalDataValue => 0x03,
            ExceptionCode::ServerDeviceFailure => 0x04,
            ExceptionCode::ServerDeviceBusy => 0x06,
            ExceptionCode::Other(other) => other,
        }
    }
}

/// A request PDU (what a master sends).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// 0x01: read `quantity` coils from `address`.
    ReadCoils {
        /// First coil.
        address: u16,
        /// How many (the spec allows 1–2000; others are sent as given and refused by a server).
        quantity: u16,
    },
    /// 0x02: read `quantity` discrete inputs from `address`.
    ReadDiscreteInputs {
        /// First input.
        address: u16,
        /// How many (1–2000 by the spec).
        quantity: u16,
    },
    /// 0x05: set one coil.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// On, off, or an illegal value a server answers with exception 03.
        value: CoilValue,
    },
    /// 0x0F: set `values.len()` coils from `address` (1–1968 of them).
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// One entry per coil, first coil first.
        values: Vec<bool>,
    },
    /// Any other function, with its data as sent. Also a 0x0F request whose quantity and byte
    /// count disagree or are out of range: its length is known from the byte count, but it cannot
    /// be typed, and a server answers it with exception 03.
    Other {
        /// The function code (1–127).
        function: u8,
        /// Everything between the function code and the CRC.
        data: Vec<u8>,
    },
}

impl Request {
    /// The function code this request is sent with.
    pub fn function_code(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => FC_READ_COILS,
            Request::ReadDiscreteInputs { .. } => FC_READ_DISCRETE_INPUTS,
            Request::WriteSingleCoil { .. } => FC_WRITE_SINGLE_COIL,
            Request::WriteMultipleCoils { .. } => FC_WRITE_MULTIPLE_COILS,
            Request::Other { function, .. } => *function,
        }
    }
}

/// A response PDU (what a slave answers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Response {
    /// 0x01: coil states, first coil first.
    ///
    /// On the wire bits come packed in bytes, so a decoded reply holds `byte count × 8` bits, the
    /// padding (zero) bits included; the master knows how many it asked for. Encoding pads with
    /// `false` to a whole byte.
    ReadCoils {
        /// The bits.
        bits: Vec<bool>,
    },
    /// 0x02: discrete input states, packed like [`Response::ReadCoils`].
    ReadDiscreteInputs {
        /// The bits.
        bits: Vec<bool>,
    },
    /// 0x05: the echo of a write-single-coil request.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// The value written.
        value: CoilValue,
    },
    /// 0x0F: the acknowledgement of a write-multiple-coils request.
    WriteMultipleCoils {
        /// First coil.
        address: u16,
        /// How many coils were written.
        quantity: u16,
    },
    /// An exception: the request's `function` (1–127; sent with bit 7 set) and a code.
    Exception {
        /// The function code of the refused request, without the 0x80 flag.
        function: u8,
        /// Why it was refused.
        code: ExceptionCode,
    },
    /// Any other function's reply, data as sent.
    Other {
        /// The function code (1–127).
        function: u8,
        /// Everything between the function code and the CRC.
        data: Vec<u8>,
    },
}

impl Response {
    /// The function code on the wire (with 0x80 set for an exception).
    pub fn function_code(&self) -> u8 {
        match self {
            Response::ReadCoils { .. } => FC_READ_COILS,
            Response::ReadDiscreteInputs { .. } => FC_READ_DISCRETE_INPUTS,
            Response::WriteSingleCoil { .. } => FC_WRITE_SINGLE_COIL,
            Response::WriteMultipleCoils { .. } => FC_WRITE_MULTIPLE_COILS,
            Response::Exception { function, .. } => function | EXCEPTION_FLAG,
            Response::Other { function, .. } => *function,
        }
    }
}

/// A request addressed to a slave: one whole ADU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestFrame {
    /// Slave address: 1–247, or 0 for broadcast.
    pub slave: u8,
    /// The request.
    pub request: Request,
}

/// A response from a slave: one whole ADU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResponseFrame {
    /// Slave address (1–247), echoing the request.
    pub slave: u8,
    /// The response.
    pub response: Response,
}

/// Why a typed frame cannot be put on the wire. Only programming errors end up here: the
/// encoders refuse what no decoder could read back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// Slave addresses 248–255 are reserved.
    #[error("slave address {0} is reserved (valid: 0 broadcast, 1-247)")]
    ReservedSlave(u8),
    /// Function code 0 and codes with bit 7 set (the exception flag) cannot be sent as a function.
    #[error("function code {0:#04x} is not valid (1-127)")]
    InvalidFunction(u8),
    /// A write-multiple-coils request must carry 1–1968 coils.
    #[error("{0} coils cannot be written in one request (1-1968)")]
    QuantityOutOfRange(usize),
    /// The ADU would exceed 256 bytes.
    #[error("a {0}-byte frame exceeds the 256-byte RTU limit")]
    TooLong(usize),
    /// An `Other` frame whose data length disagrees with what its function code implies: a
    /// decoder would cut it elsewhere.
    #[error("data of function {function:#04x} does not have the length its header implies")]
    InconsistentLength {
        /// The function code.
        function: u8,
    },
}

impl RequestFrame {
    /// Encodes the whole ADU, CRC included.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the whole ADU to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.slave > MAX_SLAVE {
            return Err(EncodeError::ReservedSlave(self.slave));
        }
        let function = self.request.function_code();
        check_function(function)?;
        let start = out.len();
        out.push(self.slave);
        out.push(function);
        match &self.request {
            Request::ReadCoils { address, quantity }
            | Request::ReadDiscreteInputs { address, quantity } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&quantity.to_be_bytes());
            }
            Request::WriteSingleCoil { address, value } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&value.to_wire().to_be_bytes());
            }
            Request::WriteMultipleCoils { address, values } => {
                let Ok(quantity @ 1..=MAX_WRITE_BITS) = u16::try_from(values.len()) else {
                    out.truncate(start);
                    return Err(EncodeError::QuantityOutOfRange(values.len()));
                };
                let packed = pack_bits(values);
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&quantity.to_be_bytes());
                // At most 1968 / 8 = 246 bytes: fits the count byte.
                out.push(packed.len() as u8);
                out.extend_from_slice(&packed);
            }
            Request::Other { data, .. } => out.extend_from_slice(data),
        }
        finish(out, start, request_len)
    }
}

impl ResponseFrame {
    /// Encodes the whole ADU, CRC included.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(16);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the whole ADU to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.slave > MAX_SLAVE {
            return Err(EncodeError::ReservedSlave(self.slave));
        }
        if let Response::Exception { function, .. } | Response::Other { function, .. } =
            &self.response
        {
            check_function(*function)?;
        }
        let start = out.len();
        out.push(self.slave);
        out.push(self.response.function_code());
        match &self.response {
            Response::ReadCoils { bits } | Response::ReadDiscreteInputs { bits } => {
                let packed = pack_bits(bits);
                let Ok(count) = u8::try_from(packed.len()) else {
                    out.truncate(start);
                    return Err(EncodeError::TooLong(packed.len() + 5));
                };
                out.push(count);
                out.extend_from_slice(&packed);
            }
            Response::WriteSingleCoil { address, value } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&value.to_wire().to_be_bytes());
            }
            Response::WriteMultipleCoils { address, quantity } => {
                out.extend_from_slice(&address.to_be_bytes());
                out.extend_from_slice(&quantity.to_be_bytes());
            }
            Response::Exception { code, .. } => out.push(u8::from(*code)),
            Response::Other { data, .. } => out.extend_from_slice(data),
        }
        finish(out, start, response_len)
    }
}

fn check_function(function: u8) -> Result<(), EncodeError> {
    if function == 0 || function & EXCEPTION_FLAG != 0 {
        return Err(EncodeError::InvalidFunction(function));
    }
    Ok(())
}

/// Appends the CRC, then checks that a decoder would find exactly this frame's length.
fn finish(
    out: &mut Vec<u8>,
    start: usize,
    len_of: fn(&[u8]) -> FrameLen,
) -> Result<(), EncodeError> {
    let crc = crate::checksum::crc16_modbus(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    let len = out.len() - start;
    if len > MAX_ADU_LEN {
        out.truncate(start);
        return Err(EncodeError::TooLong(len));
    }
    match len_of(&out[start..]) {
        FrameLen::Known(n) if n == len => Ok(()),
        FrameLen::Unknown => Ok(()),
        _ => {
            let function = out[start + 1];
            out.truncate(start);
            Err(EncodeError::InconsistentLength { function })
        }
    }
}

/// Packs bits LSB-first: the first bit is bit 0 of the first byte; pads with zeros.
fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut packed = vec![0u8; bits.len().div_ceil(8)];
    for (i, _) in bits.iter().enumerate().filter(|(_, on)| **on) {
        packed[i / 8] |= 1 << (i % 8);
    }
    packed
}

fn unpack_bits(packed: &[u8]) -> Vec<bool> {
    packed
        .iter()
        .flat_map(|byte| (0..8).map(move |i| byte & (1 << i) != 0))
        .collect()
}

/// What a frame header says about the frame's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameLen {
    /// Not enough bytes yet to know.
    NeedMore,
    /// Cannot be the start of a frame: drop a byte.
    Impossible,
    /// The whole ADU, CRC included, is this long (≤ 256).
    Known(usize),
    /// The function code does not tell: search for a CRC-valid end.
    Unknown,
}

fn known(len: usize) -> FrameLen {
    if len > MAX_ADU_LEN {
        FrameLen::Impossible
    } else {
        FrameLen::Known(len)
    }
}

/// The ADU length of a request starting at `buf[0]`. Lengths of the standard functions follow
/// the Modbus Application Protocol V1.1b3, §6 (the same table as tokio-modbus `codec/rtu.rs`).
fn request_len(buf: &[u8]) -> FrameLen {
    match buf {
        [] => FrameLen::NeedMore,
        [slave, ..] if *slave > MAX_SLAVE => FrameLen::Impossible,
        [_] => FrameLen::NeedMore,
        [_, function, ..] if *function == 0 || function & EXCEPTION_FLAG != 0 => {
            FrameLen::Impossible
        }
        [_, 0x01..=0x06, ..] => known(8),
        [_, 0x07 | 0x0B | 0x0C | 0x11, ..] => known(4),
        // Address, quantity, byte count, values.
        [_, 0x0F | 0x10, ..] => buf
            .get(6)
            .map_or(FrameLen::NeedMore, |count| known(9 + usize::from(*count))),
        [_, 0x16, ..] => known(10),
        // Read address, read quantity, write address, write quantity, byte count, values.
        [_, 0x17, ..] => buf
            .get(10)
            .map_or(FrameLen::NeedMore, |count| known(13 + usize::from(*count))),
        [_, 0x18, ..] => known(6),
        _ => FrameLen::Unknown,
    }
}

/// The ADU length of a response starting at `buf[0]`.
fn response_len(buf: &[u8]) -> FrameLen {
    match buf {
        [] => FrameLen::NeedMore,
        [slave, ..] if *slave > MAX_SLAVE => FrameLen::Impossible,
        [_] => FrameLen::NeedMore,
        [_, 0x00 | 0x80, ..] => FrameLen::Impossible,
        [_, 0x81..=0xFF, ..] => known(5),
        [_, 0x01..=0x04 | 0x0C | 0x11 | 0x17, ..] => buf
            .get(2)
            .map_or(FrameLen::NeedMore, |count| known(5 + usize::from(*count))),
        [_, 0x05 | 0x06 | 0x0B | 0x0F | 0x10, ..] => known(8),
        [_, 0x07, ..] => known(5),
        [_, 0x16, ..] => known(10),
        [_, 0x18, ..] => match buf.get(2..4) {
            Some(&[hi, lo]) => known(6 + usize::from(u16::from_be_bytes([hi, lo]))),
            _ => FrameLen::NeedMore,
        },
        _ => FrameLen::Unknown,
    }
}

fn parse_request(slave: u8, function: u8, data: &[u8]) -> RequestFrame {
    let word = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let request = match (function, data.len()) {
        (FC_READ_COILS, 4) => Request::ReadCoils {
            address: word(0),
            quantity: word(2),
        },
        (FC_READ_DISCRETE_INPUTS, 4) => Request::ReadDiscreteInputs {
            address: word(0),
            quantity: word(2),
        },
        (FC_WRITE_SINGLE_COIL, 4) => Request::WriteSingleCoil {
            address: word(0),
            value: CoilValue::from_wire(word(2)),
        },
        (FC_WRITE_MULTIPLE_COILS, 5..) => {
            let quantity = word(2);
            let count = usize::from(data[4]);
            let consistent = (1..=MAX_WRITE_BITS).contains(&quantity)
                && count == usize::from(quantity).div_ceil(8)
                && data.len() == 5 + count;
            if consistent {
                let mut values = unpack_bits(&data[5..]);
                values.truncate(usize::from(quantity));
                Request::WriteMultipleCoils {
                    address: word(0),
                    values,
                }
            } else {
                Request::Other {
                    function,
                    data: data.to_vec(),
                }
            }
        }
        _ => Request::Other {
            function,
            data: data.to_vec(),
        },
    };
    RequestFrame { slave, request }
}

fn parse_response(slave: u8, function: u8, data: &[u8]) -> ResponseFrame {
    let word = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let response = match (function, data.len()) {
        (FC_READ_COILS, 1..) => Response::ReadCoils {
            bits: unpack_bits(&data[1..]),
        },
        (FC_READ_DISCRETE_INPUTS, 1..) => Response::ReadDiscreteInputs {
            bits: unpack_bits(&data[1..]),
        },
        (FC_WRITE_SINGLE_COIL, 4) => Response::WriteSingleCoil {
            address: word(0),
            value: CoilValue::from_wire(word(2)),
        },
        (FC_WRITE_MULTIPLE_COILS, 4) => Response::WriteMultipleCoils {
            address: word(0),
            quantity: word(2),
        },
        (0x81..=0xFF, 1) => Response::Exception {
            function: function & !EXCEPTION_FLAG,
            code: ExceptionCode::from(data[0]),
        },
        _ => Response::Other {
            function,
            data: data.to_vec(),
        },
    };
    ResponseFrame { slave, response }
}

/// One step of CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF, no final XOR).
fn crc_step(mut crc: u16, byte: u8) -> u16 {
    crc ^= u16::from(byte);
    for _ in 0..8 {
        crc = if crc & 1 != 0 {
            (crc >> 1) ^ 0xA001
        } else {
            crc >> 1
        };
    }
    crc
}

/// CRC-16/MODBUS with no final XOR, sent low byte first, leaves a zero register when run over a
/// whole frame, CRC included: that is how both checks below work.
fn crc_valid(frame: &[u8]) -> bool {
    frame.iter().fold(0xFFFF, |crc, b| crc_step(crc, *b)) == 0
}

/// The shortest CRC-valid frame (of at least 4 bytes and at most 256) at the start of `window`.
fn shortest_crc_valid(window: &[u8]) -> Option<usize> {
    let mut crc = 0xFFFF;
    for (i, byte) in window.iter().take(MAX_ADU_LEN).enumerate() {
        crc = crc_step(crc, *byte);
        if crc == 0 && i + 1 >= MIN_ADU_LEN {
            return Some(i + 1);
        }
    }
    None
}

/// The byte buffer and resynchronisation shared by both decoders.
#[derive(Debug, Default)]
struct Scanner {
    buf: Vec<u8>,
    /// Bytes before `start` are consumed; compacted after each call.
    start: usize,
    dropped: u64,
}

impl Scanner {
    /// Finds frames in the buffer; `flush` treats an incomplete frame as broken (line idle).
    fn scan<F>(
        &mut self,
        len_of: fn(&[u8]) -> FrameLen,
        parse: fn(u8, u8, &[u8]) -> F,
        flush: bool,
        out: &mut VecDeque<(F, Vec<u8>)>,
    ) {
        loop {
            let window = &self.buf[self.start..];
            if window.is_empty() {
                break;
            }
            let complete = match len_of(window) {
                FrameLen::Impossible => None,
                FrameLen::Known(n) if window.len() >= n => {
                    Some(n).filter(|n| crc_valid(&window[..*n]))
                }
                FrameLen::Unknown => {
                    let end = shortest_crc_valid(window);
                    if end.is_none() && window.len() < MAX_ADU_LEN && !flush {
                        break;
                    }
                    end
                }
                FrameLen::NeedMore | FrameLen::Known(_) => {
                    if !flush {
                        break;
                    }
                    None
                }
            };
            match complete {
                Some(n) => {
                    out.push_back((
                        parse(window[0], window[1], &window[2..n - 2]),
                        window[..n].to_vec(),
                    ));
                    self.start += n;
                }
                None => {
                    self.dropped += 1;
                    self.start += 1;
                }
            }
        }
        self.buf.drain(..self.start);
        self.start = 0;
    }
}

/// The server side: finds requests in the bytes a slave receives.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    scanner: Scanner,
    /// Decoded frames with the bytes each was decoded from.
    ready: VecDeque<(RequestFrame, Vec<u8>)>,
}

impl RequestDecoder {
    /// An empty decoder.
    pub fn new() -> RequestDecoder {
        RequestDecoder::default()
    }

    /// Adds received bytes and decodes every frame they complete.
    pub fn push(&mut self, bytes: &[u8]) {
        self.scanner.buf.extend_from_slice(bytes);
        self.scanner
            .scan(request_len, parse_request, false, &mut self.ready);
    }

    /// The caller saw the line silent for longer than a frame gap: an incomplete frame at the
    /// head of the buffer will never complete, so drop it byte by byte and decode what follows.
    /// Leaves the buffer empty.
    pub fn line_idle(&mut self) {
        self.scanner
            .scan(request_len, parse_request, true, &mut self.ready);
    }

    /// The next decoded request, oldest first.
    pub fn next_frame(&mut self) -> Option<RequestFrame> {
        self.ready.pop_front().map(|(frame, _)| frame)
    }

    /// The next decoded request with the exact bytes it was decoded from, CRC included
    /// (a decoded frame always encodes back to them: the fuzz target checks it).
    pub fn next_frame_with_bytes(&mut self) -> Option<(RequestFrame, Vec<u8>)> {
        self.ready.pop_front()
    }

    /// How many bytes were dropped while resynchronising, since this decoder was made.
    pub fn dropped_bytes(&self) -> u64 {
        self.scanner.dropped
    }

    /// Bytes received but not yet part of a frame (always fewer than 256).
    pub fn buffered(&self) -> usize {
        self.scanner.buf.len()
    }
}

/// The client side: finds responses in the bytes a master receives.
#[derive(Debug, Default)]
pub struct ResponseDecoder {
    scanner: Scanner,
    /// Decoded frames with the bytes each was decoded from.
    ready: VecDeque<(ResponseFrame, Vec<u8>)>,
}

impl ResponseDecoder {
    /// An empty decoder.
    pub fn new() -> ResponseDecoder {
        ResponseDecoder::default()
    }

    /// Adds received bytes and decodes every frame they complete.
    pub fn push(&mut self, bytes: &[u8]) {
        self.scanner.buf.extend_from_slice(bytes);
        self.scanner
            .scan(response_len, parse_response, false, &mut self.ready);
    }

    /// See [`RequestDecoder::line_idle`].
    pub fn line_idle(&mut self) {
        self.scanner
            .scan(response_len, parse_response, true, &mut self.ready);
    }

    /// The next decoded response, oldest first.
    pub fn next_frame(&mut self) -> Option<ResponseFrame> {
        self.ready.pop_front().map(|(frame, _)| frame)
    }

    /// The next decoded response with the exact bytes it was decoded from, CRC included
    /// (a decoded frame always encodes back to them: the fuzz target checks it).
    pub fn next_frame_with_bytes(&mut self) -> Option<(ResponseFrame, Vec<u8>)> {
        self.ready.pop_front()
    }

    /// How many bytes were dropped while resynchronising, since this decoder was made.
    pub fn dropped_bytes(&self) -> u64 {
        self.scanner.dropped
    }

    /// Bytes received but not yet part of a frame (always fewer than 256).
    pub fn buffered(&self) -> usize {
        self.scanner.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::crc16_modbus;

    #[test]
    fn bitwise_crc_agrees_with_the_catalogue_crc() {
        let data = b"123456789";
        let crc = data.iter().fold(0xFFFF, |crc, b| crc_step(crc, *b));
        assert_eq!(crc, crc16_modbus(data));
        assert_eq!(crc, 0x4B37);
    }

    #[test]
    fn a_frame_with_its_crc_appended_low_byte_first_leaves_a_zero_register() {
        let mut frame = vec![0x01, 0x05, 0x00, 0x00, 0xFF, 0x00];
        frame.extend_from_slice(&crc16_modbus(&frame).to_le_bytes());
        assert!(crc_valid(&frame));
        frame[7] ^= 1;
        assert!(!crc_valid(&frame));
    }

    #[test]
    fn the_buffer_never_holds_a_whole_adu_after_a_push() {
        let mut decoder = RequestDecoder::new();
        // Unknown function 0x41 and no CRC-valid end: dropped once 256 bytes are in.
        for i in 0..2000u32 {
            decoder.push(&[0x01, 0x41, (i % 251) as u8]);
            assert!(decoder.buffered() < MAX_ADU_LEN);
        }
    }
}
