//! Golden byte vectors for the UHF reader 0xA0 protocol: every vector of
//! docs/protocols.md#uhf-test-vectors, encoded from typed frames and decoded back, with a comment
//! on every byte.
//!
//! These tests only compare bytes and values; they never do IO.

use firmware_protocols::uhf::{
    BROADCAST, BufferedTag, EncodeError, FreqAnt, HostCommand, HostDecoder, HostFrame,
    InventoryCmd, InventoryDone, OutputPower, ReadTag, ReaderDecoder, ReaderFrame, ReaderReply,
    Rssi, Session, StatusCode, TagData, TagReport, Target, UhfFrame, mem_bank,
};

/// The TID of the read-memory vectors: class E2, Impinj (`801`), model `160`, then the serial.
const TID: [u8; 12] = [
    0xE2, 0x80, 0x11, 0x60, 0x20, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC,
];

const EPC: [u8; 12] = [
    0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0x21, 0x40, 0x36, 0x9E,
];

/// Encodes `frame`, checks the bytes, decodes them in one push and byte by byte, checks the frame.
fn host_golden(frame: HostFrame, bytes: &[u8]) {
    assert_eq!(frame.to_bytes().unwrap(), bytes, "encoding {frame:?}");
    let mut whole = HostDecoder::new();
    whole.push(bytes);
    assert_eq!(whole.next_frame(), Some(frame.clone()));
    assert_eq!(whole.next_frame(), None);
    assert_eq!(whole.dropped_bytes(), 0);
    let mut bytewise = HostDecoder::new();
    let mut got = Vec::new();
    for b in bytes {
        bytewise.push(&[*b]);
        got.extend(bytewise.frames());
    }
    assert_eq!(got, vec![frame]);
}

fn reader_golden(frame: ReaderFrame, bytes: &[u8]) {
    assert_eq!(frame.to_bytes().unwrap(), bytes, "encoding {frame:?}");
    let mut whole = ReaderDecoder::new();
    whole.push(bytes);
    assert_eq!(whole.next_frame(), Some(frame.clone()));
    assert_eq!(whole.next_frame(), None);
    assert_eq!(whole.dropped_bytes(), 0);
    let mut bytewise = ReaderDecoder::new();
    let mut got = Vec::new();
    for b in bytes {
        bytewise.push(&[*b]);
        got.extend(bytewise.frames());
    }
    assert_eq!(got, vec![frame]);
}

#[test]
fn real_time_inventory_to_address_1_matches_the_vector() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::RealTimeInventory { repeat: 0xFF },
        },
        &[
            0xA0, // head
            0x04, // len: address, cmd, repeat, check
            0x01, // address 1
            0x89, // cmd: real-time inventory
            0xFF, // repeat: fastest round
            0xD3, // check
        ],
    );
}

#[test]
fn real_time_inventory_broadcast_matches_the_vector() {
    host_golden(
        HostFrame {
            address: BROADCAST,
            command: HostCommand::RealTimeInventory { repeat: 0xFF },
        },
        &[
            0xA0, // head
            0x04, // len
            0xFF, // address: broadcast
            0x89, // cmd: real-time inventory
            0xFF, // repeat: fastest round
            0xD5, // check
        ],
    );
}

#[test]
fn session_inventory_s1_a_matches_the_vector() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::SessionInventory {
                session: Session::S1,
                target: Target::A,
                repeat: 1,
            },
        },
        &[
            0xA0, // head
            0x06, // len: address, cmd, 3 data, check
            0x01, // address 1
            0x8B, // cmd: session inventory
            0x01, // session S1
            0x00, // target A
            0x01, // repeat 1
            0xCC, // check
        ],
    );
}

#[test]
fn reset_matches_the_vector() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::Reset,
        },
        &[
            0xA0, // head
            0x03, // len: address, cmd, check
            0x01, // address 1
            0x70, // cmd: reset
            0xEC, // check
        ],
    );
}

#[test]
fn get_firmware_version_matches_the_vector() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::GetFirmwareVersion,
        },
        &[
            0xA0, // head
            0x03, // len
            0x01, // address 1
            0x72, // cmd: get firmware version
            0xEA, // check
        ],
    );
}

#[test]
fn set_work_antenna_0_matches_the_vector() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::SetWorkAntenna { antenna: 0 },
        },
        &[
            0xA0, // head
            0x04, // len
            0x01, // address 1
            0x74, // cmd: set work antenna
            0x00, // antenna 0
            0xE7, // check
        ],
    );
}

#[test]
fn tag_report_matches_the_vector_and_reads_minus_50_dbm_on_antenna_0_at_902_mhz() {
    let frame = ReaderFrame {
        address: 1,
        reply: ReaderReply::Tag {
            cmd: InventoryCmd::RealTime,
            report: TagReport {
                freq_ant: FreqAnt::new(7, 0),
                pc: 0x3000,
                epc: EPC.to_vec(),
                rssi: Rssi(0x4F),
                phase: None,
            },
        },
    };
    reader_golden(
        frame.clone(),
        &[
            0xA0, // head
            0x13, // len = 7 + 12-byte EPC
            0x01, // address 1
            0x89, // cmd echoed: real-time inventory
            0x1C, // FreqAnt: freq index 7 (bits 7..2), antenna 0 (bits 1..0)
            0x30, 0x00, // PC 0x3000: 6 words = 12-byte EPC
            0xE2, 0x00, 0x30, 0x98, // EPC bytes 0..4
            0x88, 0x19, 0x00, 0x72, // EPC bytes 4..8
            0x21, 0x40, 0x36, 0x9E, // EPC bytes 8..12
            0x4F, // RSSI: 79 − 129 = −50 dBm, bank bit clear
            0x36, // check
        ],
    );
    let ReaderReply::Tag { report, .. } = frame.reply else {
        unreachable!()
    };
    assert_eq!(report.dbm(), -50);
    assert_eq!(report.antenna(), 0);
    assert_eq!(report.freq_ant.freq_khz(), Some(902_000));
}

#[test]
fn completion_matches_the_vector() {
    reader_golden(
        ReaderFrame {
            address: 1,
            reply: ReaderReply::InventoryDone {
                cmd: InventoryCmd::RealTime,
                done: InventoryDone {
                    antenna: 0,
                    read_rate: 42,
                    total_read: 300,
                    trailing: None,
                },
            },
        },
        &[
            0xA0, // head
            0x0A, // len: completion
            0x01, // address 1
            0x89, // cmd echoed: real-time inventory
            0x00, // antenna 0
            0x00, 0x2A, // read rate 42/s
            0x00, 0x00, 0x01, 0x2C, // total read 300
            0x75, // check
        ],
    );
}

#[test]
fn antenna_missing_error_matches_the_vector() {
    reader_golden(
        ReaderFrame {
            address: 1,
            reply: ReaderReply::Status {
                cmd: 0x89,
                code: StatusCode::AntennaMissing,
            },
        },
        &[
            0xA0, // head
            0x04, // len: bare status reply
            0x01, // address 1
            0x89, // cmd echoed: real-time inventory
            0x22, // error: antenna missing
            0xB0, // check
        ],
    );
}

#[test]
fn captured_buffer_reply_matches_the_vector_and_its_tag_crc_checks() {
    let tag = BufferedTag {
        count: 1,
        pc: 0x3000,
        epc: EPC.to_vec(),
        tag_crc: 0x4DD4,
        rssi: Rssi(0x4B),
        freq_ant: FreqAnt(0x30),
        inventory_count: 7,
    };
    assert!(tag.crc_ok());
    reader_golden(
        ReaderFrame {
            address: 1,
            reply: ReaderReply::BufferedTag(tag),
        },
        &[
            0xA0, // head
            0x19, // len: 25
            0x01, // address 1
            0x90, // cmd: get inventory buffer
            0x00, 0x01, // tag count 1
            0x10, // data length 16: PC + EPC + CRC
            0x30, 0x00, // PC 0x3000
            0xE2, 0x00, 0x30, 0x98, // EPC bytes 0..4
            0x88, 0x19, 0x00, 0x72, // EPC bytes 4..8
            0x21, 0x40, 0x36, 0x9E, // EPC bytes 8..12
            0x4D, 0xD4, // tag CRC-16/GENIBUS, high byte first
            0x4B, // RSSI: 75 − 129 = −54 dBm
            0x30, // FreqAnt: freq index 12, antenna 0
            0x07, // inventory count 7
            0xE0, // check
        ],
    );
}

#[test]
fn a_completion_with_len_0x0b_is_accepted() {
    let bytes = ReaderFrame {
        address: 1,
        reply: ReaderReply::InventoryDone {
            cmd: InventoryCmd::Session,
            done: InventoryDone {
                antenna: 2,
                read_rate: 42,
                total_read: 300,
                trailing: Some(0x07),
            },
        },
    }
    .to_bytes()
    .unwrap();
    assert_eq!(bytes[1], 0x0B);
    let mut dec = ReaderDecoder::new();
    dec.push(&bytes);
    let Some(ReaderFrame {
        reply: ReaderReply::InventoryDone { done, .. },
        ..
    }) = dec.next_frame()
    else {
        panic!("not a completion")
    };
    assert_eq!(
        (done.antenna, done.read_rate, done.total_read),
        (2, 42, 300)
    );
}

#[test]
fn a_tag_report_with_phase_keeps_the_phase() {
    let frame = ReaderFrame {
        address: 1,
        reply: ReaderReply::Tag {
            cmd: InventoryCmd::RealTime,
            report: TagReport {
                freq_ant: FreqAnt::new(7, 3),
                pc: 0x3000,
                epc: EPC.to_vec(),
                rssi: Rssi::from_dbm(-60, true),
                phase: Some(0x1234),
            },
        },
    };
    let bytes = frame.to_bytes().unwrap();
    assert_eq!(bytes[1], 9 + 12, "Len = 9 + N with phase");
    let mut dec = ReaderDecoder::new();
    dec.push(&bytes);
    let got = dec.next_frame().unwrap();
    assert_eq!(got, frame);
    let ReaderReply::Tag { report, .. } = got.reply else {
        unreachable!()
    };
    assert_eq!(
        report.antenna(),
        7,
        "bank bit 7 of RSSI selects antennas 4–7"
    );
    assert_eq!(report.dbm(), -60);
}

#[test]
fn a_checksum_valid_frame_with_an_unexpected_layout_decodes_as_unknown() {
    // 0x89 with three data bytes fits neither a tag report nor a completion.
    let raw = [0xA0, 0x06, 0x01, 0x89, 0x01, 0x02, 0x03];
    let check = firmware_protocols::checksum::uhf_check(&raw);
    let mut dec = ReaderDecoder::new();
    dec.push(&raw);
    dec.push(&[check]);
    assert_eq!(
        dec.next_frame(),
        Some(ReaderFrame {
            address: 1,
            reply: ReaderReply::Unknown {
                cmd: 0x89,
                data: vec![1, 2, 3]
            }
        })
    );
    let mut host = HostDecoder::new();
    host.push(&raw);
    host.push(&[check]);
    assert_eq!(
        host.next_frame().unwrap().command,
        HostCommand::Other {
            cmd: 0x89,
            data: vec![1, 2, 3]
        }
    );
}

#[test]
fn set_output_power_has_a_one_byte_and_a_four_byte_form() {
    let all = HostFrame {
        address: 1,
        command: HostCommand::SetOutputPower(OutputPower::All(30)),
    };
    assert_eq!(all.to_bytes().unwrap()[..5], [0xA0, 0x04, 0x01, 0x76, 30]);
    let each = HostFrame {
        address: 1,
        command: HostCommand::SetOutputPower(OutputPower::PerAntenna([30, 29, 28, 27])),
    };
    assert_eq!(
        each.to_bytes().unwrap()[..8],
        [0xA0, 0x07, 0x01, 0x76, 30, 29, 28, 27]
    );
}

#[test]
fn status_codes_map_every_byte_and_back() {
    for b in 0..=255u8 {
        assert_eq!(StatusCode::from_byte(b).to_byte(), b);
    }
    assert_eq!(StatusCode::from_byte(0x10), StatusCode::Success);
    assert_eq!(StatusCode::from_byte(0x36), StatusCode::NoTag);
    assert_eq!(StatusCode::from_byte(0x45), StatusCode::Parameter(0x45));
    assert_eq!(StatusCode::from_byte(0x57), StatusCode::OutputPower(0x57));
    assert_eq!(StatusCode::from_byte(0x99), StatusCode::Other(0x99));
}

#[test]
fn frames_that_cannot_exist_are_refused_by_the_encoder() {
    let long = HostFrame {
        address: 1,
        command: HostCommand::Other {
            cmd: 0x99,
            data: vec![0; 253],
        },
    };
    assert_eq!(long.to_bytes(), Err(EncodeError::TooLong { len: 253 }));
    let longest = HostFrame {
        address: 1,
        command: HostCommand::Other {
            cmd: 0x99,
            data: vec![0; 252],
        },
    };
    assert_eq!(longest.to_bytes().unwrap().len(), 257);
    let mismatched = ReaderFrame {
        address: 1,
        reply: ReaderReply::Tag {
            cmd: InventoryCmd::RealTime,
            report: TagReport {
                freq_ant: FreqAnt(0),
                pc: 0x3000,
                epc: vec![1, 2, 3, 4],
                rssi: Rssi(0),
                phase: None,
            },
        },
    };
    assert_eq!(
        mismatched.to_bytes(),
        Err(EncodeError::EpcLengthMismatch {
            pc: 0x3000,
            epc_len: 4
        })
    );
}

#[test]
fn a_bad_checksum_drops_one_byte_at_a_time_and_the_next_frame_is_still_found() {
    let mut bytes = vec![0xA0, 0x03, 0x01, 0x70, 0xED]; // reset with a wrong check (EC is right)
    bytes.extend_from_slice(&[0xA0, 0x03, 0x01, 0x72, 0xEA]); // get firmware version
    let mut dec = HostDecoder::new();
    dec.push(&bytes);
    assert_eq!(
        dec.next_frame().map(|f| f.command),
        Some(HostCommand::GetFirmwareVersion)
    );
    assert_eq!(dec.dropped_bytes(), 5);
    assert_eq!(dec.consumed_bytes(), 5);
}

#[test]
fn a_stray_head_in_silence_is_discarded_on_request() {
    let mut dec = ReaderDecoder::new();
    dec.push(&[0xA0, 0xF0, 0x01]); // announces 242 bytes that never come
    assert_eq!(dec.next_frame(), None);
    assert_eq!(dec.buffered_len(), 3);
    dec.discard_partial();
    assert_eq!(dec.buffered_len(), 0);
    assert_eq!(dec.dropped_bytes(), 3);
}

#[test]
fn read_tid_with_the_zero_password_matches_the_vector() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::ReadTag(ReadTag::tid()),
        },
        &[
            0xA0, // head
            0x0A, // len: address, cmd, 7 data bytes, check
            0x01, // address 1
            0x81, // cmd: read tag memory
            0x02, // MemBank 2: TID
            0x00, // WordAdd: from word 0
            0x06, // WordCnt: 6 words = 12 bytes
            0x00, 0x00, 0x00, 0x00, // access password 0
            0xCC, // check
        ],
    );
}

#[test]
fn read_tid_without_a_password_is_the_three_byte_form() {
    host_golden(
        HostFrame {
            address: 1,
            command: HostCommand::ReadTag(ReadTag {
                bank: mem_bank::TID,
                word_address: 0,
                word_count: 6,
                password: None,
            }),
        },
        &[
            0xA0, // head
            0x06, // len: address, cmd, 3 data bytes, check
            0x01, // address 1
            0x81, // cmd: read tag memory
            0x02, // MemBank 2: TID
            0x00, // WordAdd 0
            0x06, // WordCnt 6
            0xD0, // check
        ],
    );
}

#[test]
fn a_tag_memory_reply_matches_the_vector_and_splits_epc_crc_and_tid() {
    let frame = ReaderFrame {
        address: 1,
        reply: ReaderReply::TagData(TagData {
            tag_count: 1,
            pc: 0x3000,
            epc: EPC.to_vec(),
            tag_crc: 0x4DD4,
            data: TID.to_vec(),
            freq_ant: FreqAnt::new(7, 0),
            read_count: 1,
        }),
    };
    reader_golden(
        frame.clone(),
        &[
            0xA0, // head
            0x25, // len = 3 + TagCount(2) + DataLen(1) + 28 + ReadLen, FreqAnt, ReadCount
            0x01, // address 1
            0x81, // cmd echoed: read tag memory
            0x00, 0x01, // TagCount: one tag answered
            0x1C, // DataLen 28 = PC 2 + EPC 12 + CRC 2 + data 12
            0x30, 0x00, // PC 0x3000
            0xE2, 0x00, 0x30, 0x98, // EPC bytes 0..4
            0x88, 0x19, 0x00, 0x72, // EPC bytes 4..8
            0x21, 0x40, 0x36, 0x9E, // EPC bytes 8..12
            0x4D, 0xD4, // tag CRC over PC + EPC (CRC-16/GENIBUS)
            0xE2, 0x80, 0x11, 0x60, // TID words 0..2: class E2, maker 801, model 160
            0x20, 0x00, 0x12, 0x34, // TID words 2..4: serial
            0x56, 0x78, 0x9A, 0xBC, // TID words 4..6: serial
            0x0C, // ReadLen: 12 bytes of data
            0x1C, // FreqAnt: freq index 7, antenna 0
            0x01, // ReadCount
            0xD3, // check
        ],
    );
    let ReaderReply::TagData(tag) = frame.reply else {
        unreachable!()
    };
    assert!(tag.crc_ok());
    assert_eq!(TagData::crc_for(0x3000, &EPC), 0x4DD4);
}

#[test]
fn a_failed_tag_read_is_a_status_and_a_read_reply_whose_lengths_disagree_is_unknown() {
    // A read no tag answered: a bare status with the read's command code.
    let mut decoder = ReaderDecoder::new();
    let no_tag = ReaderFrame {
        address: 1,
        reply: ReaderReply::Status {
            cmd: 0x81,
            code: StatusCode::NoTag,
        },
    };
    decoder.push(&no_tag.to_bytes().unwrap());
    assert_eq!(decoder.next_frame(), Some(no_tag));
    // ReadLen 0x20 is more than DataLen leaves after PC and CRC: not a tag memory reply.
    let bad = firmware_protocols::uhf::RawFrame {
        address: 1,
        cmd: 0x81,
        data: vec![
            0x00, 0x01, 0x06, 0x30, 0x00, 0xAA, 0xBB, 0x11, 0x22, 0x20, 0x1C, 0x01,
        ],
    };
    decoder.push(&bad.to_bytes().unwrap());
    assert!(matches!(
        decoder.next_frame(),
        Some(ReaderFrame {
            reply: ReaderReply::Unknown { cmd: 0x81, .. },
            ..
        })
    ));
    // Too much EPC and data for one frame is refused by the encoder.
    let huge = ReaderFrame {
        address: 1,
        reply: ReaderReply::TagData(TagData {
            tag_count: 1,
            pc: 0,
            epc: vec![0; 200],
            tag_crc: 0,
            data: vec![0; 50],
            freq_ant: FreqAnt(0),
            read_count: 1,
        }),
    };
    assert!(matches!(huge.to_bytes(), Err(EncodeError::TooLong { .. })));
}
