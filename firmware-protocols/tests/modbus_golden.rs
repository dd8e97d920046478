//! Golden vectors for the Modbus RTU codec: every frame of docs/protocols.md#modbus-test-vectors,
//! encoded from its typed form and decoded back, byte by byte.

use firmware_protocols::modbus::{
    CoilValue, ExceptionCode, Request, RequestDecoder, RequestFrame, Response, ResponseDecoder,
    ResponseFrame,
};

/// Encodes `frame`, checks the bytes, then decodes the bytes and checks the frame, with nothing
/// dropped and nothing left over.
fn request_vector(frame: RequestFrame, bytes: &[u8]) {
    assert_eq!(frame.encode().unwrap(), bytes, "encoding {frame:?}");
    let mut decoder = RequestDecoder::new();
    decoder.push(bytes);
    assert_eq!(decoder.next_frame(), Some(frame));
    assert_eq!(decoder.next_frame(), None);
    assert_eq!(decoder.dropped_bytes(), 0);
    assert_eq!(decoder.buffered(), 0);
}

fn response_vector(frame: ResponseFrame, bytes: &[u8]) {
    assert_eq!(frame.encode().unwrap(), bytes, "encoding {frame:?}");
    let mut decoder = ResponseDecoder::new();
    decoder.push(bytes);
    assert_eq!(decoder.next_frame(), Some(frame));
    assert_eq!(decoder.next_frame(), None);
    assert_eq!(decoder.dropped_bytes(), 0);
    assert_eq!(decoder.buffered(), 0);
}

fn bits(byte: u8) -> Vec<bool> {
    (0..8).map(|i| byte & (1 << i) != 0).collect()
}

#[test]
fn coil_0_on_encodes_and_decodes_as_in_the_spec() {
    request_vector(
        RequestFrame {
            slave: 1,
            request: Request::WriteSingleCoil {
                address: 0,
                value: CoilValue::On,
            },
        },
        &[
            0x01, // slave 1
            0x05, // write single coil
            0x00, 0x00, // coil address 0 (OPEN), big-endian
            0xFF, 0x00, // 0xFF00 = on
            0x8C, 0x3A, // CRC-16/MODBUS 0x3A8C, low byte first
        ],
    );
}

#[test]
fn coil_0_off_encodes_and_decodes_as_in_the_spec() {
    request_vector(
        RequestFrame {
            slave: 1,
            request: Request::WriteSingleCoil {
                address: 0,
                value: CoilValue::Off,
            },
        },
        &[
            0x01, // slave 1
            0x05, // write single coil
            0x00, 0x00, // coil 0
            0x00, 0x00, // 0x0000 = off
            0xCD, 0xCA, // CRC 0xCACD, low byte first
        ],
    );
}

#[test]
fn coil_1_on_encodes_and_decodes_as_in_the_spec() {
    request_vector(
        RequestFrame {
            slave: 1,
            request: Request::WriteSingleCoil {
                address: 1,
                value: CoilValue::On,
            },
        },
        &[
            0x01, // slave 1
            0x05, // write single coil
            0x00, 0x01, // coil 1 (CLOSE)
            0xFF, 0x00, // on
            0xDD, 0xFA, // CRC 0xFADD, low byte first
        ],
    );
}

#[test]
fn the_echo_of_a_coil_write_is_the_request_itself() {
    response_vector(
        ResponseFrame {
            slave: 1,
            response: Response::WriteSingleCoil {
                address: 0,
                value: CoilValue::On,
            },
        },
        &[
            0x01, // slave 1
            0x05, // write single coil
            0x00, 0x00, // coil 0
            0xFF, 0x00, // on
            0x8C, 0x3A, // CRC, identical to the request's
        ],
    );
}

#[test]
fn reading_8_coils_and_its_reply_encode_and_decode_as_in_the_spec() {
    request_vector(
        RequestFrame {
            slave: 1,
            request: Request::ReadCoils {
                address: 0,
                quantity: 8,
            },
        },
        &[
            0x01, // slave 1
            0x01, // read coils
            0x00, 0x00, // from coil 0
            0x00, 0x08, // 8 coils
            0x3D, 0xCC, // CRC 0xCC3D, low byte first
        ],
    );
    response_vector(
        ResponseFrame {
            slave: 1,
            response: Response::ReadCoils { bits: bits(0x05) },
        },
        &[
            0x01, // slave 1
            0x01, // read coils
            0x01, // 1 data byte follows
            0x05, // coils 0 and 2 on (bit 0 = coil 0)
            0x91, 0x8B, // CRC 0x8B91, low byte first
        ],
    );
}

#[test]
fn reading_8_inputs_and_its_reply_encode_and_decode_as_in_the_spec() {
    request_vector(
        RequestFrame {
            slave: 1,
            request: Request::ReadDiscreteInputs {
                address: 0,
                quantity: 8,
            },
        },
        &[
            0x01, // slave 1
            0x02, // read discrete inputs
            0x00, 0x00, // from input 0
            0x00, 0x08, // 8 inputs
            0x79, 0xCC, // CRC 0xCC79, low byte first
        ],
    );
    let reply = ResponseFrame {
        slave: 1,
        response: Response::ReadDiscreteInputs { bits: bits(0x03) },
    };
    response_vector(
        reply.clone(),
        &[
            0x01, // slave 1
            0x02, // read discrete inputs
            0x01, // 1 data byte follows
            0x03, // inputs 0 (presence) and 1 (safety) on
            0xE1, 0x89, // CRC 0x89E1, low byte first
        ],
    );
    let Response::ReadDiscreteInputs { bits } = reply.response else {
        unreachable!()
    };
    assert_eq!(bits, [true, true, false, false, false, false, false, false]);
}

#[test]
fn writing_4_coils_and_its_reply_encode_and_decode_as_in_the_spec() {
    request_vector(
        RequestFrame {
            slave: 1,
            request: Request::WriteMultipleCoils {
                address: 0,
                values: vec![true; 4],
            },
        },
        &[
            0x01, // slave 1
            0x0F, // write multiple coils
            0x00, 0x00, // from coil 0
            0x00, 0x04, // 4 coils
            0x01, // 1 data byte follows
            0x0F, // 0b1111: coils 0-3 on
            0x7E, 0x92, // CRC 0x927E, low byte first
        ],
    );
    response_vector(
        ResponseFrame {
            slave: 1,
            response: Response::WriteMultipleCoils {
                address: 0,
                quantity: 4,
            },
        },
        &[
            0x01, // slave 1
            0x0F, // write multiple coils
            0x00, 0x00, // from coil 0
            0x00, 0x04, // 4 coils written
            0x54, 0x08, // CRC 0x0854, low byte first
        ],
    );
}

#[test]
fn an_illegal_address_exception_to_read_coils_encodes_and_decodes_as_in_the_spec() {
    response_vector(
        ResponseFrame {
            slave: 1,
            response: Response::Exception {
                function: 0x01,
                code: ExceptionCode::IllegalDataAddress,
            },
        },
        &[
            0x01, // slave 1
            0x81, // read coils (0x01) with the exception flag 0x80
            0x02, // exception 02: illegal data address
            0xC1, 0x91, // CRC 0x91C1, low byte first
        ],
    );
}

#[test]
fn a_coil_value_other_than_on_or_off_is_kept_for_the_server_to_refuse() {
    let frame = RequestFrame {
        slave: 1,
        request: Request::WriteSingleCoil {
            address: 0,
            value: CoilValue::from_wire(0x1234),
        },
    };
    let bytes = frame.encode().unwrap();
    assert_eq!(&bytes[..6], &[0x01, 0x05, 0x00, 0x00, 0x12, 0x34]);
    let mut decoder = RequestDecoder::new();
    decoder.push(&bytes);
    let decoded = decoder.next_frame().unwrap();
    assert_eq!(
        decoded.request,
        Request::WriteSingleCoil {
            address: 0,
            value: CoilValue::Illegal(0x1234)
        }
    );
}

#[test]
fn a_write_multiple_coils_whose_byte_count_disagrees_with_its_quantity_decodes_as_other() {
    // 01 0F 0000 0009 01 FF: nine coils need two data bytes, not one.
    let body = [0x01, 0x0F, 0x00, 0x00, 0x00, 0x09, 0x01, 0xFF];
    let crc = firmware_protocols::checksum::crc16_modbus(&body).to_le_bytes();
    let mut decoder = RequestDecoder::new();
    decoder.push(&body);
    decoder.push(&crc);
    assert_eq!(
        decoder.next_frame().unwrap().request,
        Request::Other {
            function: 0x0F,
            data: body[2..].to_vec()
        }
    );
}

#[test]
fn an_unknown_function_is_found_by_its_crc() {
    // 01 41 AA BB + CRC: function 0x41 has no standard length.
    let frame = RequestFrame {
        slave: 1,
        request: Request::Other {
            function: 0x41,
            data: vec![0xAA, 0xBB],
        },
    };
    let bytes = frame.encode().unwrap();
    let mut decoder = RequestDecoder::new();
    decoder.push(&bytes[..3]);
    assert_eq!(decoder.next_frame(), None, "no CRC-valid end yet: wait");
    decoder.push(&bytes[3..]);
    assert_eq!(decoder.next_frame(), Some(frame));
    assert_eq!(decoder.dropped_bytes(), 0);
}

#[test]
fn a_frame_split_across_pushes_is_decoded_once_complete() {
    let bytes = [0x01, 0x0F, 0x00, 0x00, 0x00, 0x04, 0x01, 0x0F, 0x7E, 0x92];
    let mut decoder = RequestDecoder::new();
    for byte in &bytes[..9] {
        decoder.push(&[*byte]);
        assert_eq!(decoder.next_frame(), None);
    }
    decoder.push(&bytes[9..]);
    assert!(decoder.next_frame().is_some());
    assert_eq!(decoder.dropped_bytes(), 0);
}

#[test]
fn a_corrupted_crc_costs_bytes_not_the_following_frame() {
    let mut line = vec![0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3B]; // CRC hi byte wrong
    line.extend_from_slice(&[0x01, 0x05, 0x00, 0x01, 0xFF, 0x00, 0xDD, 0xFA]);
    let mut decoder = RequestDecoder::new();
    decoder.push(&line);
    // Dropping byte by byte reaches `8C 3B`: slave 140, function 0x3B, whose length no header
    // tells, and no CRC-valid end follows yet. Without timing the decoder cannot tell that from
    // a frame still arriving, so it waits; the silence after the master's request settles it.
    assert_eq!(decoder.next_frame(), None);
    decoder.line_idle();
    assert_eq!(
        decoder.next_frame().unwrap().request,
        Request::WriteSingleCoil {
            address: 1,
            value: CoilValue::On
        }
    );
    assert_eq!(decoder.next_frame(), None);
    assert_eq!(decoder.dropped_bytes(), 8);
}

#[test]
fn garbage_promising_a_long_frame_is_dropped_when_the_line_goes_idle() {
    // 01 0F 0000 0400 80: a write of 1024 coils would need 137 more bytes; they never come.
    let mut line = vec![0x01, 0x0F, 0x00, 0x00, 0x04, 0x00, 0x80];
    line.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x00, 0x08, 0x3D, 0xCC]);
    let mut decoder = RequestDecoder::new();
    decoder.push(&line);
    assert_eq!(
        decoder.next_frame(),
        None,
        "the head frame is still arriving"
    );
    decoder.line_idle();
    assert_eq!(
        decoder.next_frame().unwrap().request,
        Request::ReadCoils {
            address: 0,
            quantity: 8
        }
    );
    assert_eq!(decoder.dropped_bytes(), 7);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn encoders_refuse_frames_no_decoder_could_read_back() {
    use firmware_protocols::modbus::EncodeError;
    let frame = |slave, request| RequestFrame { slave, request };
    let read = Request::ReadCoils {
        address: 0,
        quantity: 1,
    };
    assert_eq!(
        frame(248, read.clone()).encode(),
        Err(EncodeError::ReservedSlave(248))
    );
    assert_eq!(
        frame(
            1,
            Request::WriteMultipleCoils {
                address: 0,
                values: vec![]
            }
        )
        .encode(),
        Err(EncodeError::QuantityOutOfRange(0))
    );
    assert_eq!(
        frame(
            1,
            Request::Other {
                function: 0x81,
                data: vec![]
            }
        )
        .encode(),
        Err(EncodeError::InvalidFunction(0x81))
    );
    assert_eq!(
        frame(
            1,
            Request::Other {
                function: 0x03,
                data: vec![0; 3]
            }
        )
        .encode(),
        Err(EncodeError::InconsistentLength { function: 0x03 })
    );
    assert_eq!(
        frame(
            1,
            Request::Other {
                function: 0x41,
                data: vec![0; 253]
            }
        )
        .encode(),
        Err(EncodeError::TooLong(257))
    );
}
