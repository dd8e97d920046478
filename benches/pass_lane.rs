//! Visitor pass at the lane benchmark. Measures, does not assert; prints one `name value unit`
//! line per figure. Run: `cargo bench --bench pass_lane` (`-- --smoke` for a few runs;
//! `GATEHOUSE_BENCH_PASSES` to set how many, default 1,000).
//!
//! A real gate controller (one entry lane) with a simulated QR scanner (`sim::qr_scanner`, the
//! real bytes: the pass's text then CR) and minimal byte-level reader and I/O module ends on
//! real pseudo-terminals (as in `camera` and `gate_latency`). The I/O module is polled at the
//! **shipped default** settings (`[lane.io]` as `GateConfig` defaults it: an OPEN decided while
//! a poll is on the wire waits for its answer); only the arm's close delay is 0 so that runs
//! follow each other quickly.
//!
//! - `pass_to_open_*`: from the instant the **last byte** of the scanned text (its CR) is written
//!   on the scanner's line to the **first byte of the OPEN** command read on the I/O module's
//!   line, the vehicle already on the presence loop: the QR driver, the lane task, the pass
//!   check (Ed25519 signature included), the journal commit and the Modbus write. Each run is a
//!   fresh single-use pass (its own booking), so every one is granted and consumed.
//! - `pass_check_*`: the pure decision alone (`gate::pass_check::check_pass`), in process.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use firmware_protocols::modbus::{CoilValue, Request, RequestDecoder, Response, ResponseFrame};
use firmware_protocols::uhf::{
    HostCommand, HostDecoder, InventoryCmd, InventoryDone, ReaderFrame, ReaderReply, UhfFrame,
};
use gatehouse::domain::permit::DirectionSet;
use gatehouse::domain::{Direction, GateId, LaneId, UtcMinute};
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::decision::AntiPassback;
use gatehouse::gate::index::IndexBuilder;
use gatehouse::gate::pass_check::{PassBook, PassInput, PassKeys, check_pass};
use gatehouse::gate::presence::PresenceTable;
use gatehouse::gate::runtime::GateHandle;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::qr_scanner::{LineEnding, QrScanner};
use gatehouse::wire::pass::{PassClaims, PassGates, PassKeyWire, public_key_hex, sign};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

fn line(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// What the fake I/O module shares with the bench loop.
#[derive(Default)]
struct Io {
    open_seen: Mutex<Option<Instant>>,
    inputs: Mutex<[bool; 8]>,
    input_reads: AtomicU64,
    opened: Notify,
    closed: Notify,
}

/// A reader that sees no tag: answers every inventory with its completion, a little later.
async fn reader_end(mut dev: PtyDevice) {
    let mut decoder = HostDecoder::new();
    let mut buf = [0u8; 256];
    let mut out = Vec::new();
    loop {
        let Ok(n) = dev.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            if let HostCommand::RealTimeInventory { .. } = frame.command {
                tokio::time::sleep(Duration::from_millis(20)).await;
                out.clear();
                ReaderFrame {
                    address: 1,
                    reply: ReaderReply::InventoryDone {
                        cmd: InventoryCmd::RealTime,
                        done: InventoryDone {
                            antenna: 0,
                            read_rate: 40,
                            total_read: 0,
                            trailing: None,
                        },
                    },
                }
                .encode(&mut out)
                .unwrap();
                dev.write_all(&out).await.unwrap();
            }
        }
    }
}

async fn io_end(mut dev: PtyDevice, d: Arc<Io>) {
    let mut decoder = RequestDecoder::new();
    let mut buf = [0u8; 256];
    loop {
        let Ok(n) = dev.read(&mut buf).await else {
            return;
        };
        let arrived = Instant::now();
        if n == 0 {
            return;
        }
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let response = match frame.request {
                Request::ReadDiscreteInputs { quantity, .. } => {
                    d.input_reads.fetch_add(1, Ordering::SeqCst);
                    let inputs = *d.inputs.lock().unwrap();
                    Response::ReadDiscreteInputs {
                        bits: inputs.iter().copied().take(usize::from(quantity)).collect(),
                    }
                }
                Request::WriteSingleCoil { address, value } => {
                    let on = value == CoilValue::On;
                    let mut inputs = d.inputs.lock().unwrap();
                    match (address, on) {
                        (0, true) => {
                            *d.open_seen.lock().unwrap() = Some(arrived);
                            inputs[2] = true;
                            inputs[3] = false;
                            d.opened.notify_one();
                        }
                        (1, true) => {
                            inputs[2] = false;
                            inputs[3] = true;
                            d.closed.notify_one();
                        }
                        _ => {}
                    }
                    Response::WriteSingleCoil { address, value }
                }
                other => Response::Exception {
                    function: other.function_code(),
                    code: firmware_protocols::modbus::ExceptionCode::IllegalFunction,
                },
            };
            let bytes = ResponseFrame {
                slave: frame.slave,
                response,
            }
            .encode()
            .unwrap();
            dev.write_all(&bytes).await.unwrap();
        }
    }
}

async fn polls(d: &Io, n: u64) {
    let start = d.input_reads.load(Ordering::SeqCst);
    while d.input_reads.load(Ordering::SeqCst) < start + n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The vehicle drives through: presence clears, the safety loop is crossed, the arm closes.
async fn drive_on(d: &Io) {
    {
        let mut inputs = d.inputs.lock().unwrap();
        inputs[0] = false;
        inputs[1] = true;
    }
    polls(d, 2).await;
    d.inputs.lock().unwrap()[1] = false;
    let _ = tokio::time::timeout(Duration::from_secs(5), d.closed.notified()).await;
}

fn claims(booking_id: u32) -> PassClaims {
    let now = UtcMinute::from_datetime(Utc::now());
    PassClaims {
        key_id: 1,
        booking_id,
        plate: "苏E88888".into(),
        valid_from: UtcMinute(now.0 - 60),
        valid_until: UtcMinute(now.0 + 24 * 60),
        single_use: true,
        gates: PassGates::Some(vec![(GateId(1), DirectionSet::BOTH)]),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let runs: usize = if smoke {
        20
    } else {
        std::env::var("GATEHOUSE_BENCH_PASSES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000)
    };
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let keys = vec![PassKeyWire {
        kid: 1,
        public_key: public_key_hex(&key),
        retire_after_ms: None,
    }];
    let us = |ns: u64| ns as f64 / 1000.0;

    // The pure check alone.
    let index = IndexBuilder::new(1).build().unwrap();
    let mut book = PassBook::default();
    book.keys = PassKeys::from_wire(&keys).0;
    let presence = PresenceTable::new();
    let texts: Vec<String> = (0..1000).map(|i| sign(&claims(i), &key).unwrap()).collect();
    let mut lat = Vec::with_capacity(10_000);
    for i in 0..if smoke { 200 } else { 10_000 } {
        let input = PassInput {
            text: &texts[i % texts.len()],
            gate: GateId(1),
            lane: LaneId(1),
            direction: Direction::Entry,
            now: Utc::now(),
            tz: chrono_tz::Asia::Shanghai,
            passback: AntiPassback::Hard,
        };
        let t = Instant::now();
        let d = std::hint::black_box(check_pass(&index, &presence, &book, &input));
        lat.push(t.elapsed().as_nanos() as u64);
        assert!(d.granted);
    }
    lat.sort_unstable();
    line("pass_check_p50", us(percentile(&lat, 0.5)), "us");
    line("pass_check_p99", us(percentile(&lat, 0.99)), "us");
    line("pass_token_chars", texts[0].len() as f64, "chars");

    // Scan → OPEN through the real lane.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let qr_link = dir.path().join("qr");
    let mut scanner = QrScanner::create(&qr_link, LineEnding::Cr).unwrap();
    let config = GateConfig::parse(&format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\n[[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
         close_delay_ms = 0\n[lane.reader]\nport = \"{}\"\n[lane.io]\nport = \"{}\"\n\
         {poll}[lane.qr]\nport = \"{}\"\n",
        data.display(),
        reader.path().display(),
        io.path().display(),
        qr_link.display(),
        // `GATEHOUSE_BENCH_POLL_MS` overrides the shipped default, for comparison only.
        poll = std::env::var("GATEHOUSE_BENCH_POLL_MS")
            .map(|ms| format!("poll_ms = {ms}\n"))
            .unwrap_or_default()
    ))
    .unwrap();
    config.validate().unwrap();
    line("io_poll_ms", config.lanes[0].io.poll_ms as f64, "ms");
    let d = Arc::new(Io::default());
    d.inputs.lock().unwrap()[3] = true;
    tokio::spawn(reader_end(reader));
    tokio::spawn(io_end(io, d.clone()));
    let gate = GateHandle::start(config).await.unwrap();
    gate.set_pass_keys(&keys).await.unwrap();
    let mut status = gate.watch_lane("entry").unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.qr_online && s.io_online),
    )
    .await
    .expect("the scanner and the I/O module come online")
    .unwrap();

    let mut lat = Vec::with_capacity(runs);
    let mut misses = 0u64;
    for i in 0..runs {
        let text = sign(&claims(10_000 + i as u32), &key).unwrap();
        d.inputs.lock().unwrap()[0] = true;
        polls(&d, 2).await;
        *d.open_seen.lock().unwrap() = None;
        scanner.send_raw(text.as_bytes()).await.unwrap();
        let t0 = Instant::now();
        scanner.send_raw(b"\r").await.unwrap();
        // Polled rather than notified: a notification left over from an earlier run (an OPEN
        // written twice) must not end the wait. The instant is the I/O end's, not the poll's.
        let deadline = Instant::now() + Duration::from_secs(2);
        let seen = loop {
            if let Some(seen) = d.open_seen.lock().unwrap().take() {
                break Some(seen);
            }
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        match seen {
            Some(seen) if seen >= t0 => lat.push(seen.duration_since(t0).as_nanos() as u64),
            _ => {
                misses += 1;
                let s = gate.status().into_iter().next().unwrap();
                eprintln!(
                    "run {i} missed: state {} decision {:?}",
                    s.state,
                    s.last_decision.map(|d| (d.reason, d.flags))
                );
            }
        }
        drive_on(&d).await;
    }
    lat.sort_unstable();
    line("pass_to_open_runs", lat.len() as f64, "count");
    line("pass_to_open_missed", misses as f64, "count");
    line("pass_to_open_p50", us(percentile(&lat, 0.5)), "us");
    line("pass_to_open_p99", us(percentile(&lat, 0.99)), "us");
    line(
        "pass_to_open_max",
        us(lat.last().copied().unwrap_or(0)),
        "us",
    );
    gate.shutdown().await;
}
