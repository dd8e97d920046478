//! Property tests for the Modbus RTU codec: round trips, noise that never panics, and frames
//! found exactly, in order, among garbage.

use firmware_protocols::modbus::{
    CoilValue, ExceptionCode, MAX_ADU_LEN, Request, RequestDecoder, RequestFrame, Response,
    ResponseDecoder, ResponseFrame,
};
use proptest::prelude::*;

/// Request function codes whose length no header tells (everything but the standard ones).
fn unknown_request_function() -> impl Strategy<Value = u8> {
    (1u8..=127).prop_filter("standard length", |f| {
        !matches!(
            f,
            0x01..=0x07 | 0x0B | 0x0C | 0x0F | 0x10 | 0x11 | 0x16 | 0x17 | 0x18
        )
    })
}

fn unknown_response_function() -> impl Strategy<Value = u8> {
    unknown_request_function()
}

/// Whether the frame has a CRC-valid proper prefix of at least 4 bytes: such an `Other` frame
/// of an unknown function is ambiguous without timing (the decoder takes the shortest), so the
/// round-trip properties leave it out. It happens about once per 2^16 candidate ends.
fn has_crc_valid_prefix(bytes: &[u8]) -> bool {
    (4..bytes.len()).any(|n| firmware_protocols::checksum::crc16_modbus(&bytes[..n]) == 0)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), any::<u16>())
            .prop_map(|(address, quantity)| Request::ReadCoils { address, quantity }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(address, quantity)| Request::ReadDiscreteInputs { address, quantity }),
        (any::<u16>(), any::<u16>()).prop_map(|(address, value)| Request::WriteSingleCoil {
            address,
            value: CoilValue::from_wire(value)
        }),
        (
            any::<u16>(),
            proptest::collection::vec(any::<bool>(), 1..=1968)
        )
            .prop_map(|(address, values)| Request::WriteMultipleCoils { address, values }),
        // Standard functions the module does not implement: their length is known.
        (
            prop_oneof![Just(0x03u8), Just(0x04), Just(0x06)],
            any::<[u8; 4]>()
        )
            .prop_map(|(function, data)| Request::Other {
                function,
                data: data.to_vec()
            }),
        (
            unknown_request_function(),
            proptest::collection::vec(any::<u8>(), 0..=252)
        )
            .prop_map(|(function, data)| Request::Other { function, data }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let packed_bits = proptest::collection::vec(any::<u8>(), 0..=250).prop_map(|bytes| {
        bytes
            .iter()
            .flat_map(|b| (0..8).map(move |i| b & (1 << i) != 0))
            .collect::<Vec<bool>>()
    });
    prop_oneof![
        packed_bits
            .clone()
            .prop_map(|bits| Response::ReadCoils { bits }),
        packed_bits.prop_map(|bits| Response::ReadDiscreteInputs { bits }),
        (any::<u16>(), any::<u16>()).prop_map(|(address, value)| Response::WriteSingleCoil {
            address,
            value: CoilValue::from_wire(value)
        }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(address, quantity)| Response::WriteMultipleCoils { address, quantity }),
        (1u8..=127, any::<u8>()).prop_map(|(function, code)| Response::Exception {
            function,
            code: ExceptionCode::from(code)
        }),
        (
            unknown_response_function(),
            proptest::collection::vec(any::<u8>(), 0..=252)
        )
            .prop_map(|(function, data)| Response::Other { function, data }),
    ]
}

fn request_frame() -> impl Strategy<Value = RequestFrame> {
    (0u8..=247, request())
        .prop_map(|(slave, request)| RequestFrame { slave, request })
        .prop_filter("ambiguous without timing", |f| {
            !has_crc_valid_prefix(&f.encode().unwrap())
        })
}

fn response_frame() -> impl Strategy<Value = ResponseFrame> {
    (1u8..=247, response())
        .prop_map(|(slave, response)| ResponseFrame { slave, response })
        .prop_filter("ambiguous without timing", |f| {
            !has_crc_valid_prefix(&f.encode().unwrap())
        })
}

/// Garbage made only of the reserved slave addresses 248–255: no frame can start on one, so
/// the decoder drops each on sight and garbage can never merge with a frame. (Garbage of any
/// byte could, with probability 2^-16 per position, complete a CRC-valid frame of its own; then
/// "exactly the frames sent" would not hold, and no decoder without timing could make it hold.)
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0xF8u8..=0xFF, 0..20)
}

/// Splits `bytes` at the given cut points (taken modulo its length).
fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

proptest! {
    #[test]
    fn a_request_decodes_to_what_was_encoded(frame in request_frame()) {
        let bytes = frame.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_ADU_LEN);
        let mut decoder = RequestDecoder::new();
        decoder.push(&bytes);
        prop_assert_eq!(decoder.next_frame(), Some(frame.clone()));
        prop_assert_eq!(decoder.next_frame(), None);
        prop_assert_eq!(decoder.dropped_bytes(), 0);
        prop_assert_eq!(decoder.buffered(), 0);

        // One byte at a time gives the same frame, only once complete.
        let mut decoder = RequestDecoder::new();
        for (i, byte) in bytes.iter().enumerate() {
            decoder.push(&[*byte]);
            if i + 1 < bytes.len() {
                prop_assert_eq!(decoder.next_frame(), None);
            }
        }
        prop_assert_eq!(decoder.next_frame(), Some(frame));
    }

    #[test]
    fn a_response_decodes_to_what_was_encoded(frame in response_frame()) {
        let bytes = frame.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_ADU_LEN);
        let mut decoder = ResponseDecoder::new();
        decoder.push(&bytes);
        prop_assert_eq!(decoder.next_frame(), Some(frame.clone()));
        prop_assert_eq!(decoder.next_frame(), None);
        prop_assert_eq!(decoder.dropped_bytes(), 0);
        prop_assert_eq!(decoder.buffered(), 0);

        let mut decoder = ResponseDecoder::new();
        for (i, byte) in bytes.iter().enumerate() {
            decoder.push(&[*byte]);
            if i + 1 < bytes.len() {
                prop_assert_eq!(decoder.next_frame(), None);
            }
        }
        prop_assert_eq!(decoder.next_frame(), Some(frame));
    }

    #[test]
    fn any_bytes_in_any_chunks_are_decoded_without_panic_and_every_byte_is_accounted_for(
        bytes in proptest::collection::vec(any::<u8>(), 0..1200),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut requests = RequestDecoder::new();
        let mut responses = ResponseDecoder::new();
        let (mut request_bytes, mut response_bytes) = (0u64, 0u64);
        for chunk in chunks(&bytes, &cuts) {
            requests.push(chunk);
            responses.push(chunk);
            prop_assert!(requests.buffered() < MAX_ADU_LEN);
            prop_assert!(responses.buffered() < MAX_ADU_LEN);
            while let Some(frame) = requests.next_frame() {
                request_bytes += frame.encode().unwrap().len() as u64;
            }
            while let Some(frame) = responses.next_frame() {
                response_bytes += frame.encode().unwrap().len() as u64;
            }
        }
        requests.line_idle();
        responses.line_idle();
        while let Some(frame) = requests.next_frame() {
            request_bytes += frame.encode().unwrap().len() as u64;
        }
        while let Some(frame) = responses.next_frame() {
            response_bytes += frame.encode().unwrap().len() as u64;
        }
        // Every byte was either part of a decoded frame or dropped, and none is left over.
        prop_assert_eq!(requests.buffered(), 0);
        prop_assert_eq!(responses.buffered(), 0);
        prop_assert_eq!(request_bytes + requests.dropped_bytes(), bytes.len() as u64);
        prop_assert_eq!(response_bytes + responses.dropped_bytes(), bytes.len() as u64);
    }

    #[test]
    fn requests_among_garbage_are_all_found_in_order(
        items in proptest::collection::vec((garbage(), request_frame()), 0..8),
        tail in garbage(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut line = Vec::new();
        let mut garbage_len = tail.len() as u64;
        for (noise, frame) in &items {
            line.extend_from_slice(noise);
            garbage_len += noise.len() as u64;
            frame.encode_into(&mut line).unwrap();
        }
        line.extend_from_slice(&tail);
        let mut decoder = RequestDecoder::new();
        let mut found = Vec::new();
        for chunk in chunks(&line, &cuts) {
            decoder.push(chunk);
            found.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
        decoder.line_idle();
        found.extend(std::iter::from_fn(|| decoder.next_frame()));
        let sent: Vec<RequestFrame> = items.into_iter().map(|(_, f)| f).collect();
        prop_assert_eq!(found, sent);
        prop_assert_eq!(decoder.dropped_bytes(), garbage_len);
    }

    #[test]
    fn responses_among_garbage_are_all_found_in_order(
        items in proptest::collection::vec((garbage(), response_frame()), 0..8),
        tail in garbage(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut line = Vec::new();
        let mut garbage_len = tail.len() as u64;
        for (noise, frame) in &items {
            line.extend_from_slice(noise);
            garbage_len += noise.len() as u64;
            frame.encode_into(&mut line).unwrap();
        }
        line.extend_from_slice(&tail);
        let mut decoder = ResponseDecoder::new();
        let mut found = Vec::new();
        for chunk in chunks(&line, &cuts) {
            decoder.push(chunk);
            found.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
        decoder.line_idle();
        found.extend(std::iter::from_fn(|| decoder.next_frame()));
        let sent: Vec<ResponseFrame> = items.into_iter().map(|(_, f)| f).collect();
        prop_assert_eq!(found, sent);
        prop_assert_eq!(decoder.dropped_bytes(), garbage_len);
    }
}
