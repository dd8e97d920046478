//! Gate lane benchmark. Measures, does not assert; prints one `name value unit` line
//! per figure.
//!
//! With `GATEHOUSE_BENCH_PERMITS` permits (default 1,000,000; `--smoke` 10,000), one vehicle and
//! one tag each, in the gate's SQLite store:
//! - the time to start the controller, which loads them into the decision index (and that
//!   load alone, then in the two steps a synced snapshot takes), and the index's size and the
//!   process's resident memory afterwards;
//! - the in-process decision time alone (random tags, p50/p99/max);
//! - the journal commit alone, and the resident memory of the real `gatehouse gate run` on the
//!   same store;
//! - over real pseudo-terminals, **tag → OPEN**: from the last byte of a tag report written on
//!   the reader's line to the first byte of the OPEN command read on the I/O module's line, with
//!   the real lane runtime in between (reader driver, filter, decision, journal commit, Modbus
//!   write), at the **shipped defaults** (`poll_ms` 50, `poll_pause_ms` 200), in variants run
//!   one after the other in the same process (an A/B in the same minutes), each printed with its
//!   prefix (`quiet.tag_to_open_p99`, `spin.tag_to_open_p99`, …; `GATEHOUSE_BENCH_VARIANTS`
//!   picks some):
//!   - `floor`: not the lane at all but a minimal controller (`gate_latency/floor.rs`: two
//!     threads, blocking reads, every tag opens) on the same device ends: what the ptys, the
//!     bench's own wake-ups and the machine's idle states cost. Every other variant also prints
//!     `over_floor_p50`/`over_floor_p99`, what the lane adds to it (same run);
//!   - `quiet`: nothing else running;
//!   - `floor_awake`, `quiet_awake`: the floor and the lane with idle CPUs kept polling
//!     (`[realtime] cpu_wake_latency_us = 0`: what waking a halted CPU costs; needs write
//!     access to `/dev/cpu_dma_latency`, else the gate warns and the variant equals `quiet`);
//!   - `quiet_nopause`: `poll_pause_ms = 0`, the behaviour before polls paused for an imminent
//!     OPEN (what an input poll in flight costs);
//!   - `quiet_tid`: tags whose credentials have a bound TID, so the driver ends the round and
//!     reads the TID before the decision, as it did for every new tag before (what that costs);
//!   - `spin`: a child process busy-looping (not pinned: the scheduler places it; on a 2-core
//!     machine it takes one core);
//!   - `spin_fifo`: the same, with `[realtime] lane_priority = 50` (SCHED_FIFO);
//!   - `spin_pinned`: the same, with `lane_cpus` = the last CPU (the spinner unpinned);
//!   - `spin_fifo_pinned`: both;
//!   - `quiet_mlock`: `lock_memory = true` (last: `mlockall` stays for the rest of the process).
//!
//! The device ends behave like a site's, not like the driver expects: the **I/O module** answers
//! every request `GATEHOUSE_BENCH_IO_DELAY_MS` after it arrives (default 15: a request and its
//! answer at the shipped 9600 baud take about that on the wire), so an OPEN decided while a poll
//! is on the line waits for it; the **reader** runs rounds of `GATEHOUSE_BENCH_ROUND_MS` (default
//! 10), reporting a tag mid-round and ending the round at its end, and answers a TID read (0x81)
//! `GATEHOUSE_BENCH_TID_DELAY_MS` later (default 10). A vehicle arrives on the presence loop;
//! once a poll has seen it the bench waits a random 0–50 ms and puts the tag in the field, which
//! the reader reports in its next round. Then the vehicle drives through and the arm closes.
//! Each variant runs `GATEHOUSE_BENCH_DECISIONS` cycles (default 1,000; `--smoke` 10), about a
//! quarter second each at the 50 ms poll. `GATEHOUSE_BENCH_POLL_MS` changes the poll interval.
//! With every variant: the share of CPU time the hypervisor stole meanwhile (`host_steal`: on a
//! virtual machine the tail is mostly the host's when that is more than a few percent) and the
//! load average.
//!
//! Run: `cargo bench --bench gate_latency` (`-- --smoke`: small, a few seconds' worth of cycles).

use std::sync::atomic::{AtomicU64, Ordering};
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

#[path = "gate_latency/floor.rs"]
mod floor;

/// Permits whose tags have a bound TID (the `quiet_tid` variant draws from these).
const TID_TAGS: u32 = 1_000;

fn epc(n: u32) -> [u8; 12] {
    let mut epc = [0xE2, 0x00, 0x30, 0x98, 0, 0, 0, 0, 0x21, 0x40, 0x36, 0x9E];
    epc[4..8].copy_from_slice(&n.to_be_bytes());
    epc
}

/// The factory TID of tag `epc` (12 bytes, the six words the driver reads).
fn tid_of(epc: &[u8; 12]) -> Vec<u8> {
    let mut tid = vec![0xE2, 0x80, 0x11, 0x60];
    tid.extend_from_slice(&epc[4..12]);
    tid
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
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

async fn fill_store(store: &Store, permits: u32) {
    let chunk = 50_000;
    let mut first = 1;
    while first <= permits {
        let last = (first + chunk - 1).min(permits);
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
                tid: (n <= TID_TAGS).then(|| hex::encode_upper(tid_of(&epc(n)))),
                vehicle_id: n,
            });
        }
        store.apply(&update).await.expect("bench data is valid");
        first = last + 1;
    }
}

/// How the device ends behave (see the module header).
#[derive(Debug, Clone, Copy)]
struct Devices {
    io_delay: Duration,
    round: Duration,
    tid_delay: Duration,
}

/// What the fake devices share with the bench loop.
#[derive(Default)]
struct Bench {
    /// The tag to report in the reader's next round.
    pending_tag: Mutex<Option<[u8; 12]>>,
    /// Just before the tag report was written (its last byte is on the line a few µs later,
    /// so the figure errs long by the write call).
    tag_sent: Mutex<Option<Instant>>,
    /// When the read holding the first byte of an OPEN arrived.
    open_seen: Mutex<Option<Instant>>,
    inputs: Mutex<[bool; 8]>,
    /// Bumped by the bench at every change of `inputs`.
    inputs_version: AtomicU64,
    /// The `inputs_version` the last answered poll carried.
    answered_version: AtomicU64,
    /// Polls that were on the line when an OPEN arrived right after their answer (the OPEN
    /// waited for them).
    open_after_poll: AtomicU64,
    opened: Notify,
    closed: Notify,
}

/// A reader's answer to a TID read (0x81) for `epc`: one tag, its TID.
fn reply_tid(epc: &[u8; 12], out: &mut Vec<u8>) {
    let pc = pc_for_epc_len(12).unwrap();
    ReaderFrame {
        address: 1,
        reply: ReaderReply::TagData(firmware_protocols::uhf::TagData {
            tag_count: 1,
            pc,
            epc: epc.to_vec(),
            tag_crc: firmware_protocols::uhf::TagData::crc_for(pc, epc),
            data: tid_of(epc),
            freq_ant: FreqAnt::new(7, 0),
            read_count: 1,
        }),
    }
    .encode(out)
    .unwrap();
}

/// A reader as a site has one: each real-time inventory is a round of `round`, a tag in the
/// field reported mid-round, the completion at its end; a TID read answered `tid_delay` later.
/// It does what it is asked, whatever the driver expects of it.
async fn reader_end(mut dev: PtyDevice, bench: Arc<Bench>, devices: Devices) {
    let mut field: Option<[u8; 12]> = None;
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
                tokio::time::sleep(devices.tid_delay).await;
                if let Some(tag) = field {
                    out.clear();
                    reply_tid(&tag, &mut out);
                    if dev.write_all(&out).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            if !matches!(frame.command, HostCommand::RealTimeInventory { .. }) {
                continue;
            }
            tokio::time::sleep(devices.round / 2).await;
            // The tag stays in the field for this round only: the next cycle puts the next one.
            field = bench.pending_tag.lock().unwrap().take();
            if let Some(tag) = field {
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
                if dev.write_all(&out).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(devices.round / 2).await;
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
            if dev.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

/// An I/O module that answers each request `io_delay` after it arrived (the time a request and
/// its answer take on a 9600-baud line), one at a time, as RTU is.
async fn io_end(mut dev: PtyDevice, bench: Arc<Bench>, devices: Devices) {
    let mut decoder = RequestDecoder::new();
    let mut buf = [0u8; 256];
    let mut last_was_poll_until: Option<Instant> = None;
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
            let answer_at = arrived + devices.io_delay;
            let polled_version = matches!(frame.request, Request::ReadDiscreteInputs { .. })
                .then(|| bench.inputs_version.load(Ordering::SeqCst));
            let response = match frame.request {
                Request::ReadDiscreteInputs { quantity, .. } => {
                    last_was_poll_until = Some(answer_at);
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
                            // Within a millisecond of a poll's answer: it waited for that poll.
                            if last_was_poll_until.is_some_and(|t| {
                                arrived.duration_since(t) < Duration::from_millis(1)
                            }) {
                                bench.open_after_poll.fetch_add(1, Ordering::SeqCst);
                            }
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
                    last_was_poll_until = None;
                    Response::WriteSingleCoil { address, value }
                }
                other => Response::Exception {
                    function: other.function_code(),
                    code: firmware_protocols::modbus::ExceptionCode::IllegalFunction,
                },
            };
            tokio::time::sleep_until(answer_at.into()).await;
            let bytes = ResponseFrame {
                slave: frame.slave,
                response,
            }
            .encode()
            .unwrap();
            if dev.write_all(&bytes).await.is_err() {
                return;
            }
            if let Some(version) = polled_version {
                // Counted once answered: the lane has (nearly) seen these inputs.
                bench.answered_version.fetch_max(version, Ordering::SeqCst);
            }
        }
    }
}

/// Changes the module's inputs; then waits until a poll that read them has been answered (so
/// the lane saw the change), or `limit` passes.
async fn set_inputs(bench: &Bench, limit: Duration, change: impl FnOnce(&mut [bool; 8])) {
    let version = {
        let mut inputs = bench.inputs.lock().unwrap();
        change(&mut inputs);
        bench.inputs_version.fetch_add(1, Ordering::SeqCst) + 1
    };
    let until = Instant::now() + limit;
    while bench.answered_version.load(Ordering::SeqCst) < version && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The answer is on the line: give the lane a moment to read it.
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// One tag→OPEN variant.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    /// The minimal controller (`floor.rs`) instead of the real lane.
    floor: bool,
    /// Idle CPUs kept polling (`[realtime] cpu_wake_latency_us = 0`; the floor holds
    /// `/dev/cpu_dma_latency` itself).
    awake: bool,
    spin: bool,
    poll_pause: bool,
    tid_bound: bool,
    priority: u8,
    pinned: bool,
    mlock: bool,
}

/// The plain lane on a quiet machine; every other variant changes one or two things.
const QUIET: Variant = Variant {
    name: "quiet",
    floor: false,
    awake: false,
    spin: false,
    poll_pause: true,
    tid_bound: false,
    priority: 0,
    pinned: false,
    mlock: false,
};

const VARIANTS: &[Variant] = &[
    Variant {
        name: "floor",
        floor: true,
        ..QUIET
    },
    QUIET,
    Variant {
        name: "quiet_nopause",
        poll_pause: false,
        ..QUIET
    },
    Variant {
        name: "quiet_tid",
        tid_bound: true,
        ..QUIET
    },
    Variant {
        name: "floor_awake",
        floor: true,
        awake: true,
        ..QUIET
    },
    Variant {
        name: "quiet_awake",
        awake: true,
        ..QUIET
    },
    Variant {
        name: "spin",
        spin: true,
        ..QUIET
    },
    Variant {
        name: "spin_fifo",
        spin: true,
        priority: 50,
        ..QUIET
    },
    Variant {
        name: "spin_pinned",
        spin: true,
        pinned: true,
        ..QUIET
    },
    Variant {
        name: "spin_fifo_pinned",
        spin: true,
        priority: 50,
        pinned: true,
        ..QUIET
    },
    Variant {
        name: "quiet_mlock",
        mlock: true,
        ..QUIET
    },
];

/// A child process busy-looping until killed (this binary run with `--spin`).
fn spinner() -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--spin")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

struct Knobs {
    permits: u32,
    decisions: usize,
    poll_ms: u64,
    devices: Devices,
}

/// Runs one variant: a fresh controller on the store in `data`, new pseudo-terminals, the
/// device ends, `decisions` cycles; prints the variant's figures.
/// Returns the variant's tag → OPEN p50 and p99 in µs.
async fn run_variant(
    v: Variant,
    knobs: &Knobs,
    dir: &std::path::Path,
    data: &std::path::Path,
) -> (f64, f64) {
    eprintln!("gate_latency: variant {}", v.name);
    let reader_dev = PtyDevice::create(Some(&dir.join(format!("reader-{}", v.name)))).unwrap();
    let io_dev = PtyDevice::create(Some(&dir.join(format!("io-{}", v.name)))).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = GateConfig::parse(&format!(
        r#"
[gate]
id = 1
data_dir = "{data}"
anti_passback = "off"
[realtime]
lane_priority = {priority}
lock_memory = {mlock}
lane_cpus = {cpus}
{awake}
[[lane]]
id = "entry"
direction = "entry"
close_delay_ms = 0
[lane.reader]
port = "{reader}"
tag_hold_ms = 1
[lane.io]
port = "{io}"
poll_ms = {poll_ms}
poll_pause_ms = {pause}
[lane.io.map]
pulse_ms = 1
"#,
        data = data.display(),
        reader = reader_dev.path().display(),
        io = io_dev.path().display(),
        poll_ms = knobs.poll_ms,
        priority = v.priority,
        mlock = v.mlock,
        cpus = if v.pinned {
            format!("[{}]", cpus - 1)
        } else {
            "[]".into()
        },
        pause = if v.poll_pause { 200 } else { 0 },
        awake = if v.awake {
            "cpu_wake_latency_us = 0"
        } else {
            ""
        },
    ))
    .unwrap();
    config.realtime.validate().unwrap();
    let bench = Arc::new(Bench::default());
    bench.inputs.lock().unwrap()[3] = true; // the arm starts down
    let (reader_path, io_path) = (&reader_dev.path().to_owned(), &io_dev.path().to_owned());
    let reader = tokio::spawn(reader_end(reader_dev, bench.clone(), knobs.devices));
    let io = tokio::spawn(io_end(io_dev, bench.clone(), knobs.devices));
    // The floor asks for awake CPUs itself, as the gate does with `cpu_wake_latency_us`.
    let _awake = (v.floor && v.awake).then(floor::hold_cpus_awake);
    let gate = if v.floor {
        floor::start(reader_path, io_path);
        None
    } else {
        Some(GateHandle::start(config).await.unwrap())
    };
    let mut spin = v.spin.then(spinner);
    // Let the controller settle (reader online, first polls) and the spinner take its core.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut latencies = Vec::with_capacity(knobs.decisions);
    // Misses by kind: no OPEN within 2 s; OPEN but the tag-sent instant missing; OPEN seen
    // before the tag was sent (an OPEN left over from the previous cycle).
    let (mut no_open, mut no_sent, mut stale_open) = (0u64, 0u64, 0u64);
    let mut consecutive = 0;
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let cycle_start = Instant::now();
    let ticks_start = cpu_ticks();
    let load_start = loadavg();
    let limit = Duration::from_millis(knobs.poll_ms * 10 + 500);
    for i in 0..knobs.decisions {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let range = if v.tid_bound {
            TID_TAGS.min(knobs.permits)
        } else {
            knobs.permits - TID_TAGS.min(knobs.permits / 2)
        };
        let offset = if v.tid_bound {
            0
        } else {
            TID_TAGS.min(knobs.permits / 2)
        };
        let n = (x % u64::from(range)) as u32 + 1 + offset;
        // A vehicle on the presence loop.
        set_inputs(&bench, limit, |i| i[0] = true).await;
        // The tag comes into the field a random 0-50 ms after the lane saw the vehicle.
        tokio::time::sleep(Duration::from_micros((x >> 20) % 50_000)).await;
        *bench.open_seen.lock().unwrap() = None;
        *bench.tag_sent.lock().unwrap() = None;
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
                assert!(consecutive < 20, "the lane stopped opening at decision {i}");
            }
        }
        // The vehicle drives through: presence clears, the safety loop is crossed.
        set_inputs(&bench, limit, |i| {
            i[0] = false;
            i[1] = true;
        })
        .await;
        let closed = bench.closed.notified();
        set_inputs(&bench, limit, |i| i[1] = false).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
        // The lane sees the closed limit and is idle again.
        set_inputs(&bench, limit, |_| {}).await;
    }
    let elapsed = cycle_start.elapsed();
    let ticks_end = cpu_ticks();
    if let Some(child) = spin.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    latencies.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    let name = |figure: &str| format!("{}.{figure}", v.name);
    line(&name("io_poll_interval"), knobs.poll_ms as f64, "ms");
    line(
        &name("host_steal"),
        (ticks_end.0 - ticks_start.0) as f64 * 100.0 / (ticks_end.1 - ticks_start.1).max(1) as f64,
        "%",
    );
    line(&name("loadavg_1m"), (load_start + loadavg()) / 2.0, "load");
    line(
        &name("tag_to_open_decisions"),
        latencies.len() as f64,
        "count",
    );
    line(
        &name("tag_to_open_missed"),
        (no_open + no_sent + stale_open) as f64,
        "count",
    );
    line(
        &name("tag_to_open_p50"),
        us(percentile(&latencies, 0.5)),
        "us",
    );
    line(
        &name("tag_to_open_p90"),
        us(percentile(&latencies, 0.9)),
        "us",
    );
    line(
        &name("tag_to_open_p99"),
        us(percentile(&latencies, 0.99)),
        "us",
    );
    line(
        &name("tag_to_open_p999"),
        us(percentile(&latencies, 0.999)),
        "us",
    );
    line(
        &name("tag_to_open_max"),
        us(latencies.last().copied().unwrap_or(0)),
        "us",
    );
    line(
        &name("tag_to_open_over_1ms"),
        latencies.iter().filter(|&&ns| ns > 1_000_000).count() as f64,
        "count",
    );
    line(
        &name("open_waited_for_poll"),
        bench.open_after_poll.load(Ordering::SeqCst) as f64,
        "count",
    );
    line(
        &name("lane_cycles_per_second"),
        knobs.decisions as f64 / elapsed.as_secs_f64(),
        "1/s",
    );
    if let Some(gate) = gate {
        gate.shutdown().await;
    }
    reader.abort();
    io.abort();
    (
        us(percentile(&latencies, 0.5)),
        us(percentile(&latencies, 0.99)),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--spin") {
        // The noise: a process that never sleeps.
        let mut x: u64 = 1;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    let smoke = std::env::args().any(|a| a == "--smoke");
    let permits: u32 = env_or(
        "GATEHOUSE_BENCH_PERMITS",
        if smoke { 10_000 } else { 1_000_000 },
    );
    let knobs = Knobs {
        permits,
        decisions: env_or("GATEHOUSE_BENCH_DECISIONS", if smoke { 10 } else { 1_000 }),
        poll_ms: env_or("GATEHOUSE_BENCH_POLL_MS", 50),
        devices: Devices {
            io_delay: Duration::from_millis(env_or("GATEHOUSE_BENCH_IO_DELAY_MS", 15)),
            round: Duration::from_millis(env_or("GATEHOUSE_BENCH_ROUND_MS", 10)),
            tid_delay: Duration::from_millis(env_or("GATEHOUSE_BENCH_TID_DELAY_MS", 10)),
        },
    };
    let wanted: Option<Vec<String>> = std::env::var("GATEHOUSE_BENCH_VARIANTS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    // "1m" for the default million, else the count: the figure names say the size.
    let size = if permits.is_multiple_of(1_000_000) {
        format!("{}m", permits / 1_000_000)
    } else if permits.is_multiple_of(1_000) {
        format!("{}k", permits / 1_000)
    } else {
        permits.to_string()
    };
    let sized = |name: &str| name.replace("1m", &size);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    let started = Instant::now();
    {
        let store = Store::open(&data.join("store.db")).await.unwrap();
        fill_store(&store, permits).await;
    }
    line(
        &sized("store_write_1m_permits"),
        started.elapsed().as_secs_f64(),
        "s",
    );

    // The start, the index and the in-process decision, on a controller whose devices are
    // silent pseudo-terminals (nothing on the line: this part measures no IO).
    let reader_dev = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io_dev = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let config = GateConfig::parse(&format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\nanti_passback = \"off\"\n[[lane]]\nid = \"entry\"\n\
         direction = \"entry\"\n[lane.reader]\nport = \"{}\"\n[lane.io]\nport = \"{}\"\n",
        data.display(),
        reader_dev.path().display(),
        io_dev.path().display(),
    ))
    .unwrap();
    let rss_before = rss_mib();
    let started = Instant::now();
    let gate = GateHandle::start(config).await.unwrap();
    line(
        &sized("gate_start_load_1m_permits"),
        started.elapsed().as_secs_f64(),
        "s",
    );
    let index = gate.shared().index();
    line(
        &sized("index_size_1m_permits"),
        index.memory().total() as f64 / 1024.0 / 1024.0,
        "MiB",
    );
    line("rss_before_start", rss_before, "MiB");
    line(&sized("rss_after_start_1m_permits"), rss_mib(), "MiB");

    // In-process decision time alone.
    let presence = PresenceTable::new();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut times = Vec::with_capacity(100_000);
    let mut granted = 0;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % u64::from(permits)) as u32 + 1;
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
    gate.shutdown().await;
    drop((reader_dev, io_dev));

    // Loading again, apart from the rest of the start (after the resident-memory figure,
    // which it would inflate): as the start does it (the store read straight into the index),
    // then in the two steps a synced snapshot or the importer takes (domain values, then the
    // index built from them).
    {
        let store = Store::open(&data.join("store.db")).await.unwrap();
        let started = Instant::now();
        let index = store.load_index().await.unwrap();
        line(
            &sized("store_load_index_1m_permits"),
            started.elapsed().as_secs_f64(),
            "s",
        );
        drop(index);
        let started = Instant::now();
        let snapshot = store.load().await.unwrap();
        line(
            &sized("store_load_1m_permits"),
            started.elapsed().as_secs_f64(),
            "s",
        );
        let started = Instant::now();
        let index = snapshot.build().unwrap();
        line(
            &sized("index_build_1m_permits"),
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
        for _ in 0..if smoke { 500 } else { 10_000 } {
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

    // Tag report to OPEN over the pseudo-terminals, through the real lane runtime, variant by
    // variant (see the module header).
    let mut figures = Vec::new();
    for v in VARIANTS {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.iter().any(|n| n == v.name))
        {
            continue;
        }
        figures.push((v.name, run_variant(*v, &knobs, dir.path(), &data).await));
    }
    // What the lane adds over the minimal controller on the same devices, same run (the
    // `_awake` variants over the floor with awake CPUs).
    let floor_of = |name: &str| {
        let floor = if name.ends_with("_awake") {
            "floor_awake"
        } else {
            "floor"
        };
        figures.iter().find(|(n, _)| *n == floor).map(|&(_, f)| f)
    };
    for &(name, (p50, p99)) in figures.iter().filter(|(n, _)| !n.starts_with("floor")) {
        if let Some((f50, f99)) = floor_of(name) {
            line(&format!("{name}.over_floor_p50"), p50 - f50, "us");
            line(&format!("{name}.over_floor_p99"), p99 - f99, "us");
        }
    }
    if VARIANTS.iter().any(|v| v.mlock) {
        let _ = nix::sys::mman::munlockall();
    }

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
    line(
        &sized("controller_rss_1m_permits"),
        kib("VmRSS:") / 1024.0,
        "MiB",
    );
    line(
        &sized("controller_rss_1m_permits_mb"),
        kib("VmRSS:") * 1024.0 / 1e6,
        "MB",
    );
    // What the resident set is made of: heap and stacks (anonymous), the mapped binary and
    // libraries (file), SQLite's shared-memory WAL index (shmem).
    line(
        &sized("controller_rss_anon_1m_permits"),
        kib("RssAnon:") / 1024.0,
        "MiB",
    );
    line(
        &sized("controller_rss_file_1m_permits"),
        kib("RssFile:") / 1024.0,
        "MiB",
    );
    line(
        &sized("controller_rss_shmem_1m_permits"),
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
