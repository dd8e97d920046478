//! Property tests for the UHF reader 0xA0 protocol: round trips of every frame type on both sides,
//! and the streaming decoder's behaviour on arbitrary and noisy byte streams fed in random chunks.
//!
//! These tests never do IO.

use firmware_protocols::uhf::{
    AntennaStay, BufferedTag, Decoder, FastSwitch, FreqAnt, HostCommand, HostFrame, InventoryCmd,
    InventoryDone, MAX_DATA_LEN, MAX_FRAME_LEN, OutputPower, RawFrame, ReadTag, ReaderFrame,
    ReaderReply, Rssi, Session, StatusCode, TagData, TagReport, Target, UhfFrame, pc_for_epc_len,
};
use proptest::prelude::*;

fn session() -> impl Strategy<Value = Session> {
    prop_oneof![
        Just(Session::S0),
        Just(Session::S1),
        Just(Session::S2),
        Just(Session::S3)
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::A), Just(Target::B)]
}

fn host_command() -> impl Strategy<Value = HostCommand> {
    prop_oneof![
        Just(HostCommand::Reset),
        Just(HostCommand::GetFirmwareVersion),
        any::<u8>().prop_map(|antenna| HostCommand::SetWorkAntenna { antenna }),
        any::<u8>().prop_map(|p| HostCommand::SetOutputPower(OutputPower::All(p))),
        any::<[u8; 4]>().prop_map(|p| HostCommand::SetOutputPower(OutputPower::PerAntenna(p))),
        any::<u8>().prop_map(|repeat| HostCommand::RealTimeInventory { repeat }),
        (session(), target(), any::<u8>()).prop_map(|(session, target, repeat)| {
            HostCommand::SessionInventory {
                session,
                target,
                repeat,
            }
        }),
        (
            prop::collection::vec(any::<(u8, u8)>(), 1..=FastSwitch::MAX_STEPS),
            any::<u8>(),
            any::<u8>()
        )
            .prop_map(|(steps, interval, repeat)| {
                HostCommand::FastSwitchInventory(FastSwitch {
                    steps: steps
                        .into_iter()
                        .map(|(antenna, stay)| AntennaStay { antenna, stay })
                        .collect(),
                    interval,
                    repeat,
                })
            }),
        (any::<(u8, u8, u8)>(), any::<Option<[u8; 4]>>()).prop_map(
            |((bank, word_address, word_count), password)| HostCommand::ReadTag(ReadTag {
                bank,
                word_address,
                word_count,
                password,
            })
        ),
        // `Other` round-trips exactly when its bytes fit no typed layout; that is the documented
        // contract, so keep only those (a known cmd with odd data is kept, e.g. reset with data).
        (
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN)
        )
            .prop_filter_map("fits a typed layout", |(cmd, data)| {
                matches!(
                    HostCommand::from_parts(cmd, &data),
                    HostCommand::Other { .. }
                )
                .then_some(HostCommand::Other { cmd, data })
            }),
    ]
}

fn host_frame() -> impl Strategy<Value = HostFrame> {
    (any::<u8>(), host_command()).prop_map(|(address, command)| HostFrame { address, command })
}

fn inventory_cmd() -> impl Strategy<Value = InventoryCmd> {
    prop_oneof![
        Just(InventoryCmd::RealTime),
        Just(InventoryCmd::FastSwitch),
        Just(InventoryCmd::Session)
    ]
}

fn tag_report() -> impl Strategy<Value = TagReport> {
    (
        0usize..=31,
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<Option<u16>>(),
    )
        .prop_flat_map(|(words, pc_low, freq_ant, rssi, phase)| {
            let pc = pc_for_epc_len(words * 2).unwrap() | (pc_low & 0x07FF);
            prop::collection::vec(any::<u8>(), words * 2).prop_map(move |epc| TagReport {
                freq_ant: FreqAnt(freq_ant),
                pc,
                epc,
                rssi: Rssi(rssi),
                phase,
            })
        })
}

fn reader_reply() -> impl Strategy<Value = ReaderReply> {
    prop_oneof![
        (inventory_cmd(), tag_report()).prop_map(|(cmd, report)| ReaderReply::Tag { cmd, report }),
        // A Len-0x0B completion with a read rate of 0x0800–0x17FF has the length of a tag report
        // and reads back as one (documented rule 4 on `ReaderReply`), so rates with a trailing
        // byte stay below 0x0800 — more than any of these readers does per second.
        (
            inventory_cmd(),
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<Option<u8>>()
        )
            .prop_map(|(cmd, antenna, rate, total_read, trailing)| {
                let read_rate = if trailing.is_some() {
                    rate % 0x0800
                } else {
                    rate
                };
                ReaderReply::InventoryDone {
                    cmd,
                    done: InventoryDone {
                        antenna,
                        read_rate,
                        total_read,
                        trailing,
                    },
                }
            }),
        (any::<u8>(), any::<u8>()).prop_map(|(cmd, code)| ReaderReply::Status {
            cmd,
            code: StatusCode::from_byte(code)
        }),
        any::<(u8, u8)>().prop_map(|(major, minor)| ReaderReply::FirmwareVersion { major, minor }),
        (
            any::<(u16, u16, u16, u8, u8)>(),
            prop::collection::vec(any::<u8>(), 0..=62),
            prop::collection::vec(any::<u8>(), 0..=64),
        )
            .prop_map(
                |((tag_count, pc, tag_crc, freq_ant, read_count), epc, data)| {
                    ReaderReply::TagData(TagData {
                        tag_count,
                        pc,
                        epc,
                        tag_crc,
                        data,
                        freq_ant: FreqAnt(freq_ant),
                        read_count,
                    })
                }
            ),
        (
            any::<u16>(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 0..=BufferedTag::MAX_EPC_LEN),
            any::<u16>(),
            any::<(u8, u8, u8)>()
        )
            .prop_map(
                |(count, pc, epc, tag_crc, (rssi, freq_ant, inventory_count))| {
                    ReaderReply::BufferedTag(BufferedTag {
                        count,
                        pc,
                        epc,
                        tag_crc,
                        rssi: Rssi(rssi),
                        freq_ant: FreqAnt(freq_ant),
                        inventory_count,
                    })
                }
            ),
        (
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN)
        )
            .prop_filter_map("fits a typed layout", |(cmd, data)| {
                matches!(
                    ReaderReply::from_parts(cmd, &data),
                    ReaderReply::Unknown { .. }
                )
                .then_some(ReaderReply::Unknown { cmd, data })
            }),
    ]
}

fn reader_frame() -> impl Strategy<Value = ReaderFrame> {
    (any::<u8>(), reader_reply()).prop_map(|(address, reply)| ReaderFrame { address, reply })
}

/// Noise that never contains the head byte 0xA0.
///
/// Noise containing 0xA0 can, by chance, hold a checksum-valid frame (then the decoder is right
/// to return it) or a head whose `Len` swallows the start of the next real frame. Without 0xA0
/// every noise byte is dropped on its own, so "all frames found, and exactly the noise dropped" is
/// an exact property, not a probable one.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_map(|b| if b == 0xA0 { 0xA1 } else { b }),
        0..40,
    )
}

/// Splits `bytes` at the given cut points (taken modulo the length) and decodes chunk by chunk,
/// draining after each push; checks the accounting and the buffer bound after every chunk.
fn decode_in_chunks<F: UhfFrame>(bytes: &[u8], cuts: &[usize]) -> (Vec<F>, Decoder<F>) {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| c % (bytes.len() + 1))
        .chain([0, bytes.len()])
        .collect();
    points.sort_unstable();
    let mut dec = Decoder::<F>::new();
    let mut frames = Vec::new();
    let mut pushed = 0u64;
    for w in points.windows(2) {
        let chunk = &bytes[w[0]..w[1]];
        dec.push(chunk);
        pushed += chunk.len() as u64;
        frames.extend(dec.frames());
        assert_eq!(
            dec.dropped_bytes() + dec.consumed_bytes() + dec.buffered_len() as u64,
            pushed,
            "every byte pushed is consumed, dropped or buffered"
        );
        assert!(
            dec.buffered_len() < MAX_FRAME_LEN,
            "after draining, at most one partial frame is held"
        );
    }
    (frames, dec)
}

proptest! {
    #[test]
    fn every_host_frame_decodes_to_itself(frame in host_frame()) {
        let bytes = frame.to_bytes().unwrap();
        prop_assert!(bytes.len() <= MAX_FRAME_LEN);
        let (frames, dec) = decode_in_chunks::<HostFrame>(&bytes, &[]);
        prop_assert_eq!(frames, vec![frame]);
        prop_assert_eq!(dec.dropped_bytes(), 0);
    }

    #[test]
    fn every_reader_frame_decodes_to_itself(frame in reader_frame()) {
        let bytes = frame.to_bytes().unwrap();
        prop_assert!(bytes.len() <= MAX_FRAME_LEN);
        let (frames, dec) = decode_in_chunks::<ReaderFrame>(&bytes, &[]);
        prop_assert_eq!(frames, vec![frame]);
        prop_assert_eq!(dec.dropped_bytes(), 0);
    }

    #[test]
    fn every_raw_frame_decodes_to_itself(
        address in any::<u8>(),
        cmd in any::<u8>(),
        data in prop::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN),
    ) {
        let frame = RawFrame { address, cmd, data };
        let (frames, _) = decode_in_chunks::<RawFrame>(&frame.to_bytes().unwrap(), &[]);
        prop_assert_eq!(frames, vec![frame]);
    }

    #[test]
    fn any_checksum_valid_frame_reencodes_to_the_same_bytes_on_both_sides(
        address in any::<u8>(),
        cmd in prop_oneof![Just(0x70u8), Just(0x72), Just(0x74), Just(0x76), Just(0x89),
                           Just(0x8A), Just(0x8B), Just(0x90), Just(0x81), any::<u8>()],
        data in prop::collection::vec(any::<u8>(), 0..=80),
    ) {
        // Every typed layout is canonical, so decoding never loses or invents a byte.
        let bytes = RawFrame { address, cmd, data }.to_bytes().unwrap();
        let (reader, _) = decode_in_chunks::<ReaderFrame>(&bytes, &[]);
        prop_assert_eq!(reader.len(), 1);
        prop_assert_eq!(&reader[0].to_bytes().unwrap(), &bytes);
        let (host, _) = decode_in_chunks::<HostFrame>(&bytes, &[]);
        prop_assert_eq!(host.len(), 1);
        prop_assert_eq!(&host[0].to_bytes().unwrap(), &bytes);
    }

    #[test]
    fn arbitrary_bytes_in_arbitrary_chunks_never_panic_and_are_all_accounted_for(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..32),
    ) {
        let (_, mut reader) = decode_in_chunks::<ReaderFrame>(&bytes, &cuts);
        let (_, host) = decode_in_chunks::<HostFrame>(&bytes, &cuts);
        prop_assert_eq!(reader.dropped_bytes(), host.dropped_bytes(), "framing is shared");
        // Discarding a stale partial can leave complete frames at the front: drain and repeat.
        while reader.buffered_len() > 0 {
            reader.discard_partial();
            reader.frames().for_each(drop);
        }
        prop_assert_eq!(reader.dropped_bytes() + reader.consumed_bytes(), bytes.len() as u64);
    }

    #[test]
    fn arbitrary_bytes_made_mostly_of_heads_never_panic(
        bytes in prop::collection::vec(prop_oneof![Just(0xA0u8), any::<u8>()], 0..1024),
        cuts in prop::collection::vec(any::<usize>(), 0..32),
    ) {
        let (_, dec) = decode_in_chunks::<ReaderFrame>(&bytes, &cuts);
        prop_assert!(dec.buffered_len() < MAX_FRAME_LEN);
    }

    #[test]
    fn reader_frames_between_noise_are_all_found_in_order_and_only_the_noise_is_dropped(
        parts in prop::collection::vec((noise(), reader_frame()), 0..12),
        tail in noise(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut bytes = Vec::new();
        let mut noise_len = 0u64;
        for (n, frame) in &parts {
            bytes.extend_from_slice(n);
            noise_len += n.len() as u64;
            frame.encode(&mut bytes).unwrap();
        }
        bytes.extend_from_slice(&tail);
        noise_len += tail.len() as u64;
        let (frames, dec) = decode_in_chunks::<ReaderFrame>(&bytes, &cuts);
        let expected: Vec<ReaderFrame> = parts.into_iter().map(|(_, f)| f).collect();
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(dec.dropped_bytes(), noise_len);
        prop_assert_eq!(dec.buffered_len(), 0);
    }

    #[test]
    fn host_frames_between_noise_are_all_found_in_order_and_only_the_noise_is_dropped(
        parts in prop::collection::vec((noise(), host_frame()), 0..12),
        tail in noise(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut bytes = Vec::new();
        let mut noise_len = 0u64;
        for (n, frame) in &parts {
            bytes.extend_from_slice(n);
            noise_len += n.len() as u64;
            frame.encode(&mut bytes).unwrap();
        }
        bytes.extend_from_slice(&tail);
        noise_len += tail.len() as u64;
        let (frames, dec) = decode_in_chunks::<HostFrame>(&bytes, &cuts);
        let expected: Vec<HostFrame> = parts.into_iter().map(|(_, f)| f).collect();
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(dec.dropped_bytes(), noise_len);
    }

    #[test]
    fn a_frame_with_a_broken_checksum_costs_exactly_its_length_when_its_body_holds_no_head(
        frame in reader_frame(),
        next in reader_frame(),
        flip in 1u8..=255,
    ) {
        let mut bytes = frame.to_bytes().unwrap();
        // Exactness needs no 0xA0 after the head (it could start a phantom frame); skip those.
        prop_assume!(!bytes[1..bytes.len() - 1].contains(&0xA0));
        let last = bytes.len() - 1;
        bytes[last] ^= flip;
        prop_assume!(bytes[last] != 0xA0);
        let broken_len = bytes.len() as u64;
        next.encode(&mut bytes).unwrap();
        let (frames, dec) = decode_in_chunks::<ReaderFrame>(&bytes, &[]);
        prop_assert_eq!(frames, vec![next]);
        prop_assert_eq!(dec.dropped_bytes(), broken_len);
    }
}
