//! The UHF reader emulator against a controller-side decoder, over real byte transports:
//! `tokio::io::duplex` for the in-process cases, and a real pseudo-terminal that the controller
//! side opens with tokio-serial, exactly as it opens a USB–RS-485 adaptor on a gate.
//!
//! The controller side here is written the way the gate driver talks to a reader: it sends encoded
//! host frames and decodes whatever comes back with `ReaderDecoder`. Nothing sleeps to let things
//! settle: every wait is on bytes or frames, under a timeout.

use std::time::Duration;

use firmware_protocols::uhf::{
    HostCommand, HostFrame, InventoryCmd, OutputPower, ReaderDecoder, ReaderFrame, ReaderReply,
    Session, StatusCode, Target, UhfFrame,
};
use gatehouse::serial::pty::{PtyDevice, is_hangup};
use gatehouse::sim::uhf_reader::{FieldTag, Noise, ReaderControl, ServeEnd};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// How long any single exchange may take before the test fails.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

const EPC_A: [u8; 12] = [
    0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0x21, 0x40, 0x36, 0x9E,
];
const EPC_B: [u8; 12] = [
    0xE2, 0x80, 0x11, 0x70, 0x00, 0x00, 0x02, 0x0C, 0x5B, 0x7D, 0x41, 0x2F,
];
const EPC_C: [u8; 4] = [0x30, 0x14, 0x12, 0x34];

/// The controller end of the line: a transport, a decoder, and the emulator's handle to know
/// when an answer is complete.
struct Host<T> {
    io: T,
    decoder: ReaderDecoder,
    reader: ReaderControl,
    /// Commands sent through this host.
    sent: u64,
    /// The reader's answered + ignored count when this host started.
    base_done: u64,
    /// The reader's sent-byte count when this host started.
    base_bytes: u64,
}

/// One command's answer as the controller saw it.
#[derive(Debug, Default)]
struct Answer {
    frames: Vec<ReaderFrame>,
}

impl Answer {
    /// (EPC, antenna, dBm) of every tag report, sorted.
    fn tags(&self) -> Vec<(Vec<u8>, u8, i16)> {
        let mut tags: Vec<_> = self
            .frames
            .iter()
            .filter_map(|f| match &f.reply {
                ReaderReply::Tag { report, .. } => {
                    Some((report.epc.clone(), report.antenna(), report.dbm()))
                }
                _ => None,
            })
            .collect();
        tags.sort();
        tags
    }

    fn ends_with_completion(&self) -> bool {
        matches!(
            self.frames.last().map(|f| &f.reply),
            Some(ReaderReply::InventoryDone { .. })
        )
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Host<T> {
    fn new(io: T, reader: &ReaderControl) -> Self {
        let stats = reader.stats();
        Host {
            io,
            decoder: ReaderDecoder::new(),
            reader: reader.clone(),
            sent: 0,
            base_done: stats.commands_answered + stats.commands_ignored,
            base_bytes: stats.bytes_sent,
        }
    }

    async fn send(&mut self, command: HostCommand) {
        let frame = HostFrame {
            address: 1,
            command,
        };
        self.io.write_all(&frame.to_bytes().unwrap()).await.unwrap();
        self.io.flush().await.unwrap();
        self.sent += 1;
    }

    /// Reads until the reader has answered every command sent and every byte it sent has been
    /// decoded or dropped. The emulator counts an answer's bytes before writing them, so once the
    /// decoder has accounted for all of them the answer is complete.
    async fn answer(&mut self) -> Answer {
        let mut answer = Answer::default();
        let mut buf = [0u8; 1024];
        tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            loop {
                answer.frames.extend(self.decoder.frames());
                let stats = self.reader.stats();
                let accounted = self.decoder.consumed_bytes() + self.decoder.dropped_bytes();
                let done = stats.commands_answered + stats.commands_ignored - self.base_done;
                if done >= self.sent && accounted == stats.bytes_sent - self.base_bytes {
                    return;
                }
                let n = self.io.read(&mut buf).await.expect("read from the reader");
                assert!(n > 0, "the reader hung up mid-answer");
                self.decoder.push(&buf[..n]);
            }
        })
        .await
        .expect("the reader answered in time");
        answer
    }

    async fn exchange(&mut self, command: HostCommand) -> Answer {
        self.send(command).await;
        self.answer().await
    }
}

fn put_three_tags(reader: &ReaderControl) -> Vec<(Vec<u8>, u8, i16)> {
    reader.put_tag(FieldTag::new(EPC_A, 0, -50)).unwrap();
    reader
        .put_tag(FieldTag::new(EPC_B, 1, -63).with_tid([0xE2, 0x80, 0x11, 0x70]))
        .unwrap();
    reader.put_tag(FieldTag::new(EPC_C, 6, -71)).unwrap();
    let mut expected = vec![
        (EPC_A.to_vec(), 0, -50),
        (EPC_B.to_vec(), 1, -63),
        (EPC_C.to_vec(), 6, -71),
    ];
    expected.sort();
    expected
}

/// Starts the emulator on one end of a duplex pipe; returns the other end and the serve task.
fn serve_on_duplex(
    reader: &ReaderControl,
) -> (
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<std::io::Result<ServeEnd>>,
) {
    let (host_end, reader_end) = tokio::io::duplex(4096);
    let reader = reader.clone();
    let task = tokio::spawn(async move { reader.serve(reader_end).await });
    (host_end, task)
}

#[tokio::test]
async fn inventory_over_a_duplex_returns_exactly_the_tags_placed_in_the_field() {
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);

    let answer = host
        .exchange(HostCommand::RealTimeInventory { repeat: 0xFF })
        .await;
    assert_eq!(answer.tags(), expected);
    assert!(answer.ends_with_completion());
    assert_eq!(
        answer.frames.len(),
        4,
        "one report per tag, then a completion"
    );

    let session = host
        .exchange(HostCommand::SessionInventory {
            session: Session::S1,
            target: Target::A,
            repeat: 1,
        })
        .await;
    assert_eq!(session.tags(), expected);
    assert!(session.frames.iter().all(|f| matches!(
        f.reply,
        ReaderReply::Tag {
            cmd: InventoryCmd::Session,
            ..
        } | ReaderReply::InventoryDone {
            cmd: InventoryCmd::Session,
            ..
        }
    )));
    assert_eq!(host.decoder.dropped_bytes(), 0);
}

#[tokio::test]
async fn a_tag_taken_out_of_the_field_is_no_longer_reported_and_an_empty_field_reports_only_completion()
 {
    let reader = ReaderControl::new();
    put_three_tags(&reader);
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);

    assert!(reader.take_tag(&EPC_B).is_some());
    let answer = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    let epcs: Vec<_> = answer.tags().into_iter().map(|t| t.0).collect();
    assert_eq!(epcs, vec![EPC_C.to_vec(), EPC_A.to_vec()]);

    reader.clear_field();
    let empty = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    assert_eq!(empty.frames.len(), 1);
    assert!(empty.ends_with_completion());
}

#[tokio::test]
async fn the_next_inventory_can_be_made_to_fail_with_antenna_missing_and_the_one_after_works() {
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);

    reader.fail_next_inventory(StatusCode::AntennaMissing);
    let failed = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    assert_eq!(
        failed.frames,
        vec![ReaderFrame {
            address: 1,
            reply: ReaderReply::Status {
                cmd: 0x89,
                code: StatusCode::AntennaMissing
            }
        }]
    );
    let ok = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    assert_eq!(ok.tags(), expected);
}

#[tokio::test]
async fn settings_commands_are_answered_and_unknown_commands_fail() {
    let reader = ReaderControl::new();
    reader.set_firmware_version(8, 3);
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);

    let reply = |answer: Answer| {
        assert_eq!(answer.frames.len(), 1, "{answer:?}");
        answer.frames[0].reply.clone()
    };
    let ok = |cmd| ReaderReply::Status {
        cmd,
        code: StatusCode::Success,
    };
    assert_eq!(reply(host.exchange(HostCommand::Reset).await), ok(0x70));
    assert_eq!(
        reply(host.exchange(HostCommand::GetFirmwareVersion).await),
        ReaderReply::FirmwareVersion { major: 8, minor: 3 }
    );
    assert_eq!(
        reply(
            host.exchange(HostCommand::SetWorkAntenna { antenna: 2 })
                .await
        ),
        ok(0x74)
    );
    assert_eq!(reader.work_antenna(), 2);
    assert!(matches!(
        reply(
            host.exchange(HostCommand::SetWorkAntenna { antenna: 9 })
                .await
        ),
        ReaderReply::Status {
            cmd: 0x74,
            code: StatusCode::Parameter(_)
        }
    ));
    assert_eq!(
        reply(
            host.exchange(HostCommand::SetOutputPower(OutputPower::All(30)))
                .await
        ),
        ok(0x76)
    );
    assert_eq!(reader.output_power(), Some(OutputPower::All(30)));
    assert_eq!(
        reply(
            host.exchange(HostCommand::Other {
                cmd: 0x66,
                data: vec![1]
            })
            .await
        ),
        ReaderReply::Status {
            cmd: 0x66,
            code: StatusCode::Fail
        }
    );
}

#[tokio::test]
async fn a_silent_reader_answers_nothing_until_it_speaks_again() {
    let reader = ReaderControl::new();
    put_three_tags(&reader);
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);

    reader.set_silent(true);
    host.send(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    tokio::time::timeout(EXCHANGE_TIMEOUT, reader.handled_commands(1))
        .await
        .expect("the command reached the reader");
    let stats = reader.stats();
    assert_eq!((stats.commands_ignored, stats.bytes_sent), (1, 0));

    reader.set_silent(false);
    let answer = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    // Everything the host received is the answer to the second command: three reports and a
    // completion, and not one byte more (the reader's byte counter covers all it ever sent).
    assert_eq!(answer.frames.len(), 4);
    assert_eq!(answer.tags().len(), 3);
    assert_eq!(
        host.decoder.consumed_bytes(),
        reader.stats().bytes_sent,
        "the silent command got no answer"
    );
}

#[tokio::test]
async fn garbage_and_corrupted_frames_over_a_duplex_are_dropped_and_counted_exactly() {
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    reader.set_noise(Noise {
        corrupt_percent: 10,
        garbage_percent: 10,
        max_garbage_len: 16,
        seed: 7,
    });
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);

    let mut intact = 0u64;
    for _ in 0..200 {
        let answer = host
            .exchange(HostCommand::RealTimeInventory { repeat: 1 })
            .await;
        for tag in answer.tags() {
            assert!(expected.contains(&tag), "unexpected {tag:?}");
        }
        intact += answer.frames.len() as u64;
    }
    let stats = reader.stats();
    assert!(stats.frames_corrupted > 20, "{stats:?}");
    assert!(stats.garbage_bytes > 20, "{stats:?}");
    assert_eq!(intact, stats.intact_frames());
    assert_eq!(host.decoder.dropped_bytes(), stats.injected_bytes());
}

#[tokio::test]
async fn a_hang_up_ends_serving_and_the_field_survives_to_the_next_session() {
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    let (io, task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);
    assert_eq!(
        host.exchange(HostCommand::RealTimeInventory { repeat: 1 })
            .await
            .tags(),
        expected
    );

    reader.hang_up();
    assert_eq!(task.await.unwrap().unwrap(), ServeEnd::HungUp);
    let mut buf = [0u8; 16];
    assert_eq!(
        host.io.read(&mut buf).await.unwrap(),
        0,
        "the host sees end of file once the reader's end is dropped"
    );

    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);
    let answer = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    assert_eq!(answer.tags(), expected);
}

#[tokio::test]
async fn a_reader_ignores_commands_for_another_address_and_answers_broadcast() {
    let reader = ReaderControl::with_address(3);
    put_three_tags(&reader);
    let (mut io, _task) = serve_on_duplex(&reader);
    for address in [1u8, 0xFF] {
        let frame = HostFrame {
            address,
            command: HostCommand::GetFirmwareVersion,
        };
        io.write_all(&frame.to_bytes().unwrap()).await.unwrap();
    }
    let mut decoder = ReaderDecoder::new();
    let mut buf = [0u8; 64];
    let frame = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        loop {
            if let Some(frame) = decoder.next_frame() {
                return frame;
            }
            let n = io.read(&mut buf).await.unwrap();
            decoder.push(&buf[..n]);
        }
    })
    .await
    .unwrap();
    assert_eq!(frame.address, 3, "answers carry the reader's own address");
    assert!(matches!(frame.reply, ReaderReply::FirmwareVersion { .. }));
    assert_eq!(reader.stats().commands_ignored, 1);
}

/// Starts the emulator on a new pseudo-terminal published at `link`; the task owns the device,
/// so when serving ends the master closes and the controller sees a hang-up.
fn serve_on_pty(
    reader: &ReaderControl,
    link: &std::path::Path,
) -> tokio::task::JoinHandle<std::io::Result<ServeEnd>> {
    let device = PtyDevice::create(Some(link)).expect("create a pseudo-terminal");
    assert_eq!(device.path(), link);
    let reader = reader.clone();
    tokio::spawn(async move { reader.serve(device).await })
}

/// Opens the reader's port the way the gate controller opens a real one.
fn open_port(link: &std::path::Path) -> SerialStream {
    tokio_serial::new(link.to_string_lossy(), 115_200)
        .open_native_async()
        .expect("open the pseudo-terminal with tokio-serial")
}

#[tokio::test]
async fn inventory_over_a_pseudo_terminal_opened_with_tokio_serial_returns_exactly_the_tags_in_the_field()
 {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("north-entry-reader");
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    let _task = serve_on_pty(&reader, &link);
    let mut host = Host::new(open_port(&link), &reader);

    let answer = host
        .exchange(HostCommand::RealTimeInventory { repeat: 0xFF })
        .await;
    // EPC, antenna (6 is antenna 2 of the high bank, RSSI bit 7) and dBm as placed.
    assert_eq!(answer.tags(), expected);
    assert!(answer.ends_with_completion());
    assert_eq!(answer.frames.len(), 4);
    assert_eq!(host.decoder.dropped_bytes(), 0);
}

#[tokio::test]
async fn over_a_pseudo_terminal_corrupted_frames_and_garbage_are_dropped_and_counted_exactly_over_many_rounds()
 {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    reader.set_noise(Noise {
        corrupt_percent: 10,
        garbage_percent: 10,
        max_garbage_len: 24,
        seed: 2026,
    });
    let _task = serve_on_pty(&reader, &link);
    let mut host = Host::new(open_port(&link), &reader);

    let rounds = 300;
    let mut intact = 0u64;
    let mut complete_rounds = 0;
    for _ in 0..rounds {
        let answer = host
            .exchange(HostCommand::RealTimeInventory { repeat: 1 })
            .await;
        for tag in answer.tags() {
            assert!(expected.contains(&tag), "a tag not in the field: {tag:?}");
        }
        if answer.tags() == expected && answer.ends_with_completion() {
            complete_rounds += 1;
        }
        intact += answer.frames.len() as u64;
    }
    let stats = reader.stats();
    assert_eq!(stats.frames_sent, rounds * 4);
    assert!(
        stats.frames_corrupted >= 30 && stats.garbage_bytes >= 100,
        "the noise was real: {stats:?}"
    );
    assert!(complete_rounds > rounds / 2, "most rounds are untouched");
    assert_eq!(
        intact,
        stats.intact_frames(),
        "every intact frame was decoded"
    );
    assert_eq!(
        host.decoder.dropped_bytes(),
        stats.injected_bytes(),
        "the decoder dropped exactly what the reader injected"
    );
    assert_eq!(host.decoder.buffered_len(), 0);
}

#[tokio::test]
async fn a_hang_up_is_a_disconnect_for_the_controller_and_the_same_link_can_be_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("reader");
    let reader = ReaderControl::new();
    let expected = put_three_tags(&reader);
    let task = serve_on_pty(&reader, &link);
    let mut host = Host::new(open_port(&link), &reader);
    assert_eq!(
        host.exchange(HostCommand::RealTimeInventory { repeat: 1 })
            .await
            .tags(),
        expected
    );

    reader.hang_up();
    assert_eq!(task.await.unwrap().unwrap(), ServeEnd::HungUp);
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(EXCHANGE_TIMEOUT, host.io.read(&mut buf))
        .await
        .expect("a hang-up ends the controller's read");
    match read {
        Ok(0) => {}
        Ok(n) => panic!("read {n} bytes from a hung-up reader"),
        Err(e) => assert!(is_hangup(&e), "not a hang-up: {e}"),
    }
    drop(host);

    // The field changes while the line is down; the reader keeps its state.
    reader.take_tag(&EPC_C).unwrap();
    let _task = serve_on_pty(&reader, &link);
    let mut host = Host::new(open_port(&link), &reader);
    let answer = host
        .exchange(HostCommand::RealTimeInventory { repeat: 1 })
        .await;
    let epcs: Vec<_> = answer.tags().into_iter().map(|t| t.0).collect();
    assert_eq!(epcs, vec![EPC_A.to_vec(), EPC_B.to_vec()]);
}

const TID_A: [u8; 12] = [
    0xE2, 0x80, 0x11, 0x60, 0x20, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC,
];

#[tokio::test]
async fn a_tid_read_is_answered_with_each_tags_tid_and_tags_without_one_stay_silent() {
    let reader = ReaderControl::new();
    reader
        .put_tag(FieldTag::new(EPC_A, 0, -50).with_tid(TID_A))
        .unwrap();
    // A tag whose TID is shorter than the six words asked for cannot answer them.
    reader
        .put_tag(FieldTag::new(EPC_B, 1, -63).with_tid([0xE2, 0x80, 0x11, 0x70]))
        .unwrap();
    reader.put_tag(FieldTag::new(EPC_C, 2, -60)).unwrap();
    let (io, _task) = serve_on_duplex(&reader);
    let mut host = Host::new(io, &reader);
    let answer = host
        .exchange(HostCommand::ReadTag(firmware_protocols::uhf::ReadTag::tid()))
        .await;
    let tags: Vec<_> = answer
        .frames
        .iter()
        .filter_map(|f| match &f.reply {
            ReaderReply::TagData(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tags.len(), 1, "{:?}", answer.frames);
    assert_eq!(tags[0].epc, EPC_A);
    assert_eq!(tags[0].data, TID_A);
    assert_eq!(tags[0].tag_count, 1);
    assert!(tags[0].crc_ok());

    // With no tag able to answer, the read fails with "no tag".
    reader.clear_field();
    let answer = host
        .exchange(HostCommand::ReadTag(firmware_protocols::uhf::ReadTag::tid()))
        .await;
    assert!(matches!(
        answer.frames.as_slice(),
        [ReaderFrame {
            reply: ReaderReply::Status {
                cmd: 0x81,
                code: StatusCode::NoTag
            },
            ..
        }]
    ));
}

#[tokio::test]
async fn the_gate_driver_reads_a_new_tags_tid_once_and_reports_it_with_every_read() {
    use gatehouse::gate::reader::{ReaderEvent, ReaderLink};
    let reader = ReaderControl::new();
    reader
        .put_tag(FieldTag::new(EPC_A, 0, -50).with_tid(TID_A))
        .unwrap();
    reader.put_tag(FieldTag::new(EPC_C, 1, -60)).unwrap();
    let (io, _task) = serve_on_duplex(&reader);
    let mut link = ReaderLink::new(io, reader.address(), Duration::from_millis(500));
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let (counters_tx, mut counters_rx) = tokio::sync::watch::channel(Default::default());
    let run = tokio::spawn(async move {
        link.run(&tx, |c| {
            let _ = counters_tx.send(c);
        })
        .await
    });
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 || seen.values().any(|n: &u32| *n < 3) {
        let event = tokio::time::timeout(EXCHANGE_TIMEOUT, rx.recv())
            .await
            .expect("reads keep coming")
            .expect("the driver runs");
        let ReaderEvent::Tag(read) = event else {
            panic!("unexpected {event:?}");
        };
        let expected: Option<Vec<u8>> = (read.epc == EPC_A).then(|| TID_A.to_vec());
        assert_eq!(read.tid, expected, "{read:?}");
        *seen.entry(read.epc.clone()).or_insert(0) += 1;
    }
    // Both tags were new in the first round only: one TID read, however many rounds ran.
    let counters = *counters_rx.borrow_and_update();
    assert_eq!(counters.tid_reads, 1, "{counters:?}");
    assert_eq!(
        counters.tid_missing, 1,
        "the tag without a TID: {counters:?}"
    );
    run.abort();
}
