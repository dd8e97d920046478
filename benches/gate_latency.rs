//! Gate lane benchmark. Measures, does not assert; prints one `name value unit` line
//! per figure.
//!
//! With 1,000,000 permits (one vehicle and one tag each) in the gate's SQLite store:
//! - the time to start the controller, which loads them into the decision index (and that
//!   load alone, then in the two steps a synced snapshot takes), and the index's size and the
//!   process's resident memory afterwards;
//! - the in-process decision time alone (random tags, p50/p99/max);
//! - over real pseudo-terminals, the time from the **last byte of a tag report** written on the
//!   reader's line to the **first byte of the OPEN command** read on the I/O module's line, with
//!   the real lane runtime in between (filter, decision, journal commit, Modbus write), over at
//!   least 10,000 decisions (`GATEHOUSE_BENCH_DECISIONS` to change), with the share of CPU time
//!   the hypervisor stole meanwhile (`tag_to_open_host_steal`: on a virtual machine the tail is
//!   mostly the host's when that is more than a few percent);
//! - the journal commit alone, and the resident memory of the real `gatehouse gate run` on the
//!   same store.
//!
//! The device ends are minimal byte-level responders written here (not the full simulators), so
//! that the instants taken are exactly those of the bytes. The I/O module is polled every
//! `GATEHOUSE_BENCH_POLL_MS` (default 1 ms, to run 10,000 vehicles quickly; the shipped default
//! is 50 ms): an OPEN decided while a poll is on the wire waits for its answer.
//!
//! Run: `cargo bench --bench gate_latency`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firmware_protocols::modbus::{CoilValue, Request, RequestDecoder, Response, ResponseFrame};
use firmware_protocols::uhf::{
    FreqAnt, HostCommand, HostDecoder, InventoryCmd, InventoryDone, ReaderFrame, ReaderReply, Rssi,
    TagReport, UhfFrame, pc_for_epc_len,
};
use gatehouse::domain::{Direction, Epc, GateId, LaneId};
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::decision::{AntiPassback, CredentialRead, DecisionInput, decide};
use gatehouse::gate::presence::PresenceTable;
use gatehouse::gate::runtime::GateHandle;
use gatehouse::gate::store::Store;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::wire::rows::{CredentialRecord, PermitRecord, Update, VehicleRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const PERMITS: u32 = 1_000_000;

fn epc(n: u32) -> [u8; 12] {
    let mut epc = [0xE2, 0x00, 0x30, 0x98, 0, 0, 0, 0, 0x21, 0x40, 0x36, 0x9E];
    epc[4..8].copy_from_slice(&n.to_be_bytes());
    epc
}

fn plate(n: u32) -> String {
    // 京 + authority letter + 5 digits: 26 × 100,000 distinct ordinary plates.
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    format!(
        "京{}{:05}",
        letters[(n / 100_000) as usize % letters.len()] as char,
        n % 100_000
    )
}

fn line(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

/// The machine's CPU time so far, from `/proc/stat`: (stolen by the hypervisor, all), in ticks.
/// On a virtual machine a vCPU the host has descheduled stalls whatever runs on it; the share
/// stolen while the lane runs says how much of the tail is the host's.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn fill_store(store: &Store) {
    let chunk = 50_000;
    let mut first = 1;
    while first <= PERMITS {
        let last = (first + chunk - 1).min(PERMITS);
        let mut update = Update {
            data_version: u64::from(last),
            ..Update::default()
        };
        for n in first..=last {
            update.permits.push(PermitRecord {
                id: n,
                category: "staff".into(),
                holder_id: n,
                holder_name: format!("教职工{n}"),
                department: "计算机学院".into(),
                status: "active".into(),
                status_reason: String::new(),
                valid_from: 0,
                valid_until: u32::MAX,
                gates: "all".into(),
                schedule: String::new(),
                single_use: false,
                max_inside: None,
                version: 1,
            });
            update.vehicles.push(VehicleRecord {
                id: n,
                plate: plate(n),
                colour: "blue".into(),
                permit_ids: vec![n],
            });
            update.credentials.push(CredentialRecord {
                epc: hex::encode_upper(epc(n)),
                tid: None,
                vehicle_id: n,
            });
        }
        store.apply(&update).await.expect("bench data is valid");
        first = last + 1;
    }
}

/// What the fake devices share with the bench loop.
#[derive(Default)]
struct Bench {
    /// The tag to report at the next inventory.
    pending_tag: Mutex<Option<[u8; 12]>>,
    /// Just before the tag report was written (its last byte is on the line a few µs later,
    /// so the figure errs long by the write call).
    tag_sent: Mutex<Option<Instant>>,
    /// When the read holding the first byte of an OPEN arrived.
    open_seen: Mutex<Option<Instant>>,
    inputs: Mutex<[bool; 8]>,
    input_reads: std::sync::atomic::AtomicU64,
    opened: Notify,
    closed: Notify,
}

/// A reader's answer to the driver's TID read (0x81) for `epc`: one tag, a TID made from it.
fn reply_tid(epc: &[u8; 12], out: &mut Vec<u8>) {
    let pc = pc_for_epc_len(12).unwrap();
    let mut tid = vec![0xE2, 0x80, 0x11, 0x60];
    tid.extend_from_slice(&epc[4..12]);
    ReaderFrame {
        address: 1,
        reply: ReaderReply::TagData(firmware_protocols::uhf::TagData {
            tag_count: 1,
            pc,
            epc: epc.to_vec(),
            tag_crc: firmware_protocols::uhf::TagData::crc_for(pc, epc),
            data: tid,
            freq_ant: FreqAnt::new(7, 0),
            read_count: 1,
        }),
    }
    .encode(out)
    .unwrap();
}

async fn reader_end(mut dev: PtyDevice, bench: Arc<Bench>) {
    let mut last_tag: Option<[u8; 12]> = None;
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
            if let HostCommand::ReadTag(_) = frame.command {
                // The driver reads a new tag's TID before forwarding it: answer as a reader
                // does, so the figure includes that exchange.
                if let Some(tag) = last_tag {
                    out.clear();
                    reply_tid(&tag, &mut out);
                    dev.write_all(&out).await.unwrap();
                }
                continue;
            }
            if !matches!(frame.command, HostCommand::RealTimeInventory { .. }) {
                continue;
            }
            let tag = bench.pending_tag.lock().unwrap().take();
            last_tag = tag;
            if let Some(tag) = tag {
                out.clear();
                ReaderFrame {
                    address: 1,
                    reply: ReaderReply::Tag {
                        cmd: InventoryCmd::RealTime,
                        report: TagReport {
                            freq_ant: FreqAnt::new(7, 0),
                            pc: pc_for_epc_len(12).unwrap(),
                            epc: tag.to_vec(),
                            rssi: Rssi::from_dbm(-50, false),
                            phase: None,
                        },
                    },
                }
                .encode(&mut out)
                .unwrap();
                // Taken just before the write: the lane, on its own thread, may act on the
                // report before this task runs again after writing it.
                *bench.tag_sent.lock().unwrap() = Some(Instant::now());
                dev.write_all(&out).await.unwrap();
            } else {
                // A real reader spends milliseconds per round; don't spin the controller.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            out.clear();
            ReaderFrame {
                address: 1,
                reply: ReaderReply::InventoryDone {
                    cmd: InventoryCmd::RealTime,
                    done: InventoryDone {
                        antenna: 0,
                        read_rate: 40,
                        total_read: 1,
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

async fn io_end(mut dev: PtyDevice, bench: Arc<Bench>) {
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
                    bench
                        .input_reads
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let inputs = *bench.inputs.lock().unwrap();
                    Response::ReadDiscreteInputs {
                        bits: inputs.iter().copied().take(usize::from(quantity)).collect(),
                    }
                }
                Request::WriteSingleCoil { address, value } => {
                    let on = value == CoilValue::On;
                    let mut inputs = bench.inputs.lock().unwrap();
                    match (address, on) {
                        (0, true) => {
                            *bench.open_seen.lock().unwrap() = Some(arrived);
                            inputs[2] = true; // open limit
                            inputs[3] = false;
                            bench.opened.notify_one();
                        }
                        (1, true) => {
                            inputs[2] = false;
                            inputs[3] = true; // closed limit
                            bench.closed.notify_one();
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

/// Waits until the controller has read the inputs twice since now (so it saw the change).
async fn two_polls(bench: &Bench) {
    use std::sync::atomic::Ordering;
    let start = bench.input_reads.load(Ordering::SeqCst);
    while bench.input_reads.load(Ordering::SeqCst) < start + 2 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let decisions: usize = std::env::var("GATEHOUSE_BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let poll_ms: u64 = std::env::var("GATEHOUSE_BENCH_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    let started = Instant::now();
    {
        let store = Store::open(&data.join("store.db")).await.unwrap();
        fill_store(&store).await;
    }
    line(
        "store_write_1m_permits",
        started.elapsed().as_secs_f64(),
        "s",
    );

    let reader_dev = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io_dev = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let config = GateConfig::parse(&format!(
        r#"
[gate]
id = 1
data_dir = "{data}"
anti_passback = "off"
[[lane]]
id = "entry"
direction = "entry"
close_delay_ms = 0
[lane.reader]
port = "{reader}"
tag_hold_ms = 1
[lane.io]
port = "{io}"
baud = 115200
poll_ms = {poll_ms}
[lane.io.map]
pulse_ms = 1
"#,
        data = data.display(),
        reader = reader_dev.path().display(),
        io = io_dev.path().display(),
        poll_ms = poll_ms,
    ))
    .unwrap();
    let bench = Arc::new(Bench::default());
    bench.inputs.lock().unwrap()[3] = true; // the arm starts down
    tokio::spawn(reader_end(reader_dev, bench.clone()));
    tokio::spawn(io_end(io_dev, bench.clone()));

    let rss_before = rss_mib();
    let started = Instant::now();
    let gate = GateHandle::start(config).await.unwrap();
    line(
        "gate_start_load_1m_permits",
        started.elapsed().as_secs_f64(),
        "s",
    );
    let index = gate.shared().index();
    line(
        "index_size_1m_permits",
        index.memory().total() as f64 / 1024.0 / 1024.0,
        "MiB",
    );
    line("rss_before_start", rss_before, "MiB");
    line("rss_after_start_1m_permits", rss_mib(), "MiB");

    // In-process decision time alone.
    let presence = PresenceTable::new();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut times = Vec::with_capacity(100_000);
    let mut granted = 0;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % u64::from(PERMITS)) as u32 + 1;
        let input = DecisionInput {
            read: CredentialRead::Tag {
                epc: Epc::from_bytes(&epc(n)).unwrap(),
                tid: None,
            },
            gate: GateId(1),
            lane: LaneId(1),
            direction: Direction::Entry,
            now: chrono::Utc::now(),
            tz: chrono_tz::Asia::Shanghai,
            passback: AntiPassback::Off,
        };
        let t = Instant::now();
        let d = decide(&index, &presence, &input);
        times.push(t.elapsed().as_nanos() as u64);
        granted += usize::from(d.granted);
    }
    assert_eq!(granted, 100_000, "every bench tag has a valid permit");
    times.sort_unstable();
    line(
        "decide_in_process_p50",
        percentile(&times, 0.5) as f64,
        "ns",
    );
    line(
        "decide_in_process_p99",
        percentile(&times, 0.99) as f64,
        "ns",
    );
    line("decide_in_process_max", *times.last().unwrap() as f64, "ns");
    drop(index);

    // Loading again, apart from the rest of the start (after the resident-memory figure,
    // which it would inflate): as the start does it (the store read straight into the index),
    // then in the two steps a synced snapshot or the importer takes (domain values, then the
    // index built from them).
    {
        let store = Store::open(&data.join("store.db")).await.unwrap();
        let started = Instant::now();
        let index = store.load_index().await.unwrap();
        line(
            "store_load_index_1m_permits",
            started.elapsed().as_secs_f64(),
            "s",
        );
        drop(index);
        let started = Instant::now();
        let snapshot = store.load().await.unwrap();
        line(
            "store_load_1m_permits",
            started.elapsed().as_secs_f64(),
            "s",
        );
        let started = Instant::now();
        let index = snapshot.build().unwrap();
        line(
            "index_build_1m_permits",
            started.elapsed().as_secs_f64(),
            "s",
        );
        drop(index);
    }

    // The journal commit alone (a decision and its OPEN, as the lane commits them), with the
    // controller's checkpoint running beside it as in production, and without (to see what the
    // checkpoint costs the commit's tail).
    for checkpointing in [true, false] {
        use gatehouse::gate::journal::{CHECKPOINT_INTERVAL, Journal};
        use gatehouse::wire::journal::{BarrierAction, EventBody};
        let file = format!("journal-bench-{checkpointing}.db");
        let journal = Arc::new(
            Journal::open(&dir.path().join(file), 1_000_000)
                .await
                .unwrap(),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let checkpoints = tokio::spawn({
            let (journal, stop) = (journal.clone(), stop.clone());
            async move {
                let mut every = tokio::time::interval(CHECKPOINT_INTERVAL);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = every.tick(), if checkpointing => { let _ = journal.checkpoint().await; }
                    }
                }
            }
        });
        let bodies = [
            EventBody::Barrier {
                action: BarrierAction::Open,
                cause: "grant".into(),
            },
            EventBody::Barrier {
                action: BarrierAction::Close,
                cause: "auto_close".into(),
            },
        ];
        let mut times = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            let t = Instant::now();
            journal
                .append_batch(chrono::Utc::now(), "entry", &bodies)
                .await
                .unwrap();
            times.push(t.elapsed().as_nanos() as u64);
            // A lane commits a few times per vehicle, not back to back.
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        stop.cancel();
        checkpoints.await.unwrap();
        times.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        let name = if checkpointing {
            "journal_commit"
        } else {
            "journal_commit_no_checkpoint"
        };
        line(&format!("{name}_p50"), us(percentile(&times, 0.5)), "us");
        line(&format!("{name}_p99"), us(percentile(&times, 0.99)), "us");
        line(&format!("{name}_max"), us(*times.last().unwrap()), "us");
    }

    // Tag report to OPEN over the pseudo-terminals, through the real lane runtime.
    let mut latencies = Vec::with_capacity(decisions);
    // Misses by kind: no OPEN within 2 s; OPEN but the tag-sent instant missing; OPEN seen
    // before the tag was sent (an OPEN left over from the previous cycle).
    let (mut no_open, mut no_sent, mut stale_open) = (0u64, 0u64, 0u64);
    let mut consecutive = 0;
    let cycle_start = Instant::now();
    let ticks_start = cpu_ticks();
    for i in 0..decisions {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % u64::from(PERMITS)) as u32 + 1;
        bench.inputs.lock().unwrap()[0] = true; // a vehicle on the presence loop
        two_polls(&bench).await;
        *bench.open_seen.lock().unwrap() = None;
        *bench.pending_tag.lock().unwrap() = Some(epc(n));
        let opened = tokio::time::timeout(Duration::from_secs(2), bench.opened.notified()).await;
        let sent = bench.tag_sent.lock().unwrap().take();
        let seen = bench.open_seen.lock().unwrap().take();
        match (opened, sent, seen) {
            (Ok(()), Some(sent), Some(seen)) if seen >= sent => {
                consecutive = 0;
                latencies.push(seen.duration_since(sent).as_nanos() as u64)
            }
            (Ok(()), Some(_), Some(_)) => stale_open += 1,
            (Ok(()), None, _) => no_sent += 1,
            _ => {
                no_open += 1;
                consecutive += 1;
                assert!(consecutive < 50, "the lane stopped opening at decision {i}");
            }
        }
        // The vehicle drives through: presence clears, the safety loop is crossed.
        {
            let mut inputs = bench.inputs.lock().unwrap();
            inputs[0] = false;
            inputs[1] = true;
        }
        two_polls(&bench).await;
        bench.inputs.lock().unwrap()[1] = false;
        let _ = tokio::time::timeout(Duration::from_secs(2), bench.closed.notified()).await;
    }
    let elapsed = cycle_start.elapsed();
    let ticks_end = cpu_ticks();
    latencies.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    line("tag_to_open_io_poll_interval", poll_ms as f64, "ms");
    line(
        "tag_to_open_host_steal",
        (ticks_end.0 - ticks_start.0) as f64 * 100.0 / (ticks_end.1 - ticks_start.1).max(1) as f64,
        "%",
    );
    line("tag_to_open_decisions", latencies.len() as f64, "count");
    line("tag_to_open_missed_no_open", no_open as f64, "count");
    line("tag_to_open_missed_no_tag_sent", no_sent as f64, "count");
    line("tag_to_open_missed_stale_open", stale_open as f64, "count");
    line("tag_to_open_p50", us(percentile(&latencies, 0.5)), "us");
    line("tag_to_open_p90", us(percentile(&latencies, 0.9)), "us");
    line("tag_to_open_p99", us(percentile(&latencies, 0.99)), "us");
    line("tag_to_open_p999", us(percentile(&latencies, 0.999)), "us");
    line(
        "tag_to_open_over_1ms",
        latencies.iter().filter(|&&ns| ns > 1_000_000).count() as f64,
        "count",
    );
    line("tag_to_open_max", us(*latencies.last().unwrap()), "us");
    line(
        "lane_cycles_per_second",
        decisions as f64 / elapsed.as_secs_f64(),
        "1/s",
    );
    let stats = gate.journal_stats().await;
    line("journal_events_written", stats.last_seq as f64, "count");
    gate.shutdown().await;

    // The controller as it runs at a gate: the real binary, on the same store, its resident
    // memory once the million permits are loaded (the in-process figure above also holds this
    // benchmark's own data).
    let reader = PtyDevice::create(Some(&dir.path().join("reader2"))).unwrap();
    let io = PtyDevice::create(Some(&dir.path().join("io2"))).unwrap();
    let config_path = dir.path().join("gate2.toml");
    std::fs::write(
        &config_path,
        format!(
            "[gate]\nid = 1\ndata_dir = \"{}\"\n[[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
             [lane.reader]\nport = \"{}\"\n[lane.io]\nport = \"{}\"\n",
            data.display(),
            reader.path().display(),
            io.path().display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["gate", "run", "--config"])
        .arg(&config_path)
        .env("GATEHOUSE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    use tokio::io::AsyncBufReadExt;
    while !text.contains("gate controller running") {
        text.clear();
        if stderr.read_line(&mut text).await.unwrap() == 0 {
            panic!("the controller stopped before it ran");
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    line("controller_rss_1m_permits", kib("VmRSS:") / 1024.0, "MiB");
    line(
        "controller_rss_1m_permits_mb",
        kib("VmRSS:") * 1024.0 / 1e6,
        "MB",
    );
    // What the resident set is made of: heap and stacks (anonymous), the mapped binary and
    // libraries (file), SQLite's shared-memory WAL index (shmem).
    line(
        "controller_rss_anon_1m_permits",
        kib("RssAnon:") / 1024.0,
        "MiB",
    );
    line(
        "controller_rss_file_1m_permits",
        kib("RssFile:") / 1024.0,
        "MiB",
    );
    line(
        "controller_rss_shmem_1m_permits",
        kib("RssShmem:") / 1024.0,
        "MiB",
    );
    line(
        "controller_peak_rss_while_loading",
        kib("VmHWM:") / 1024.0,
        "MiB",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let _ = child.wait().await;
    drop((reader, io));
}
