//! Ten million permits at one gate (issue 22): does a lane controller with a city-wide
//! permit list still fit in 2 GB, start in seconds and decide in microseconds? Measures, does
//! not assert times; prints one `name value unit` line per figure.
//!
//! Setup (not measured): a gate store of N permits, each with one vehicle and one tag (N =
//! 10,000,000; `--smoke` 100,000; `GATEHOUSE_BENCH_PERMITS` to choose), written once through
//! rusqlite into a store the real migrations made, and kept in
//! `target/gate_scale/n<N>-schema<V>-data<D>/` (V: the newest gate-store migration, D: this
//! bench's data format) so that later runs start at once. Delete the directory to write it
//! again.
//!
//! Figures:
//! - the store's size on disk, and per permit;
//! - the real `gatehouse gate run` on that store: its start (spawn to the "gate controller
//!   running" log line, the index loaded) and the CPU time it took by then (both threads), its resident memory one second later split into
//!   anonymous (heap), file (binary, libraries) and shared memory (SQLite's WAL index), and its
//!   peak resident memory (VmHWM: the high-water mark while loading);
//! - in this process: `Store::load_index` alone, the index's own accounting of its heap bytes
//!   (rows, hash tables, text) and per permit;
//! - `decide` over 1,000,000 random tags (half issued, half unknown): p50, p99, p999, max.
//!
//! Run: `cargo bench --bench gate_scale` (full), `cargo bench --bench gate_scale -- --smoke`.
//! `GATEHOUSE_BENCH_BIN=path/to/gatehouse` starts that controller instead of this tree's (to
//! compare two builds on the same store).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gatehouse::domain::{Direction, Epc, GateId, LaneId};
use gatehouse::gate::decision::{AntiPassback, CredentialRead, DecisionInput, decide};
use gatehouse::gate::presence::PresenceTable;
use gatehouse::gate::store::Store;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::wire::rows::parse_plate;
use tokio::io::AsyncBufReadExt;

const FULL: u32 = 10_000_000;
const SMOKE: u32 = 100_000;
/// Decisions timed in process.
const DECISIONS: usize = 1_000_000;
/// The format of the rows this bench writes: bump it when `write_store` changes, so that a
/// kept store of the old form is not reused.
const DATA_FORMAT: u32 = 1;

fn line(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Permit `n`'s tag: a 96-bit EPC with `n` in it (as `gate_latency` makes them).
fn epc(n: u32) -> [u8; 12] {
    let mut epc = [0xE2, 0x00, 0x30, 0x98, 0, 0, 0, 0, 0x21, 0x40, 0x36, 0x9E];
    epc[4..8].copy_from_slice(&n.to_be_bytes());
    epc
}

/// Permit `n`'s plate: province + authority letter + 5 digits, 31 × 24 × 100,000 distinct.
fn plate(n: u32) -> String {
    const PROVINCES: [&str; 31] = [
        "京", "津", "沪", "渝", "冀", "豫", "云", "辽", "黑", "湘", "皖", "鲁", "新", "苏", "浙",
        "赣", "鄂", "桂", "甘", "晋", "蒙", "陕", "吉", "闽", "贵", "粤", "青", "藏", "川", "宁",
        "琼",
    ];
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let block = (n / 100_000) as usize;
    format!(
        "{}{}{:05}",
        PROVINCES[(block / letters.len()) % PROVINCES.len()],
        letters[block % letters.len()] as char,
        n % 100_000
    )
}

/// The newest gate-store migration's number: the store's schema version.
fn schema_version() -> u32 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/gate-store");
    std::fs::read_dir(dir)
        .expect("the gate-store migrations")
        .filter_map(|e| e.ok()?.file_name().to_str()?.get(..4)?.parse().ok())
        .max()
        .unwrap_or(0)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Writes permits 1..=n (one vehicle and one tag each) into the store at `path`, made by the
/// real migrations, in the stored text forms (`Store::replace_all`'s writer writes the same).
fn write_store(path: &Path, n: u32) {
    let mut db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch("PRAGMA synchronous = OFF;").unwrap();
    let tx = db.transaction().unwrap();
    tx.execute_batch("DROP INDEX IF EXISTS vehicles_plate;")
        .unwrap();
    {
        let mut permit = tx
            .prepare(
                "INSERT INTO permits (id, category, holder_id, holder_name, department, status, \
                 status_reason, valid_from, valid_until, gates, schedule, single_use, max_inside, \
                 version) VALUES (?1, 'staff', ?1, ?2, '计算机学院', 'active', '', 0, ?3, 'all', \
                 '', 0, NULL, 1)",
            )
            .unwrap();
        let mut vehicle = tx
            .prepare(
                "INSERT INTO vehicles (id, plate, colour, permit_ids) VALUES (?1, ?2, 'blue', ?3)",
            )
            .unwrap();
        let mut credential = tx
            .prepare("INSERT INTO credentials (epc, tid, vehicle_id) VALUES (?1, NULL, ?2)")
            .unwrap();
        for i in 1..=n {
            permit
                .execute(rusqlite::params![i, format!("教职工{i}"), u32::MAX])
                .unwrap();
            let plate = parse_plate(&plate(i))
                .expect("bench plates parse")
                .to_string();
            vehicle
                .execute(rusqlite::params![i, plate, i.to_string()])
                .unwrap();
            credential
                .execute(rusqlite::params![hex::encode_upper(epc(i)), i])
                .unwrap();
            if i % 1_000_000 == 0 {
                eprintln!("gate_scale: {i} permits written");
            }
        }
    }
    tx.execute_batch(&format!(
        "CREATE UNIQUE INDEX vehicles_plate ON vehicles (plate, colour);\
         UPDATE store_state SET data_version = {n} WHERE id = 1;"
    ))
    .unwrap();
    tx.commit().unwrap();
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
}

/// The kept data directory for `n` permits, its store written first if it is not there yet.
async fn data_dir(n: u32) -> PathBuf {
    let dir = target_dir()
        .join("gate_scale")
        .join(format!("n{n}-schema{}-data{DATA_FORMAT}", schema_version()));
    let ready = dir.join("ready");
    if ready.exists() {
        eprintln!("gate_scale: reusing the store in {}", dir.display());
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    eprintln!(
        "gate_scale: writing {n} permits into {} (once)",
        dir.display()
    );
    drop(Store::open(&dir.join("store.db")).await.unwrap());
    let path = dir.join("store.db");
    tokio::task::spawn_blocking(move || write_store(&path, n))
        .await
        .unwrap();
    std::fs::write(&ready, b"").unwrap();
    eprintln!(
        "gate_scale: store written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    dir
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The real controller on the store in `data`: its start and resident memory.
async fn controller(data: &Path, n: u32) {
    let dir = tempfile::tempdir().unwrap();
    let reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let config_path = dir.path().join("gate.toml");
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
    let started = Instant::now();
    // `GATEHOUSE_BENCH_BIN`: another build of the controller on the same store (an A/B).
    let bin = std::env::var_os("GATEHOUSE_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_gatehouse")),
        PathBuf::from,
    );
    let mut child = tokio::process::Command::new(bin)
        .args(["gate", "run", "--config"])
        .arg(&config_path)
        .env("GATEHOUSE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    while !text.contains("gate controller running") {
        text.clear();
        if stderr.read_line(&mut text).await.unwrap() == 0 {
            panic!("the controller stopped before it ran");
        }
    }
    let start = started.elapsed();
    // Its CPU time by then (user + system, in USER_HZ = 100 ticks a second): on a machine
    // busy with other work the wall time above stretches, this does not.
    let cpu = std::fs::read_to_string(format!("/proc/{}/stat", child.id().unwrap()))
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse().ok())
                .collect();
            Some(fields.iter().sum::<u64>() as f64 / 100.0)
        })
        .unwrap_or(f64::NAN);
    // Keep reading its log so that it never blocks on a full pipe.
    tokio::spawn(async move {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).await.unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    line("controller_start", start.as_secs_f64(), "s");
    line("controller_start_cpu", cpu, "s");
    line("controller_rss", mib("VmRSS:"), "MiB");
    line("controller_rss_mb", mib("VmRSS:") * 1.048576, "MB");
    line("controller_rss_anon", mib("RssAnon:"), "MiB");
    line("controller_rss_file", mib("RssFile:"), "MiB");
    line("controller_rss_shmem", mib("RssShmem:"), "MiB");
    line("controller_peak_rss", mib("VmHWM:"), "MiB");
    line("controller_peak_rss_mb", mib("VmHWM:") * 1.048576, "MB");
    line(
        "controller_rss_per_permit",
        mib("VmRSS:") * 1048576.0 / f64::from(n),
        "B",
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let _ = child.wait().await;
    drop((reader, io));
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let n: u32 = std::env::var("GATEHOUSE_BENCH_PERMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { SMOKE } else { FULL });
    assert!(
        n > 0 && n < u32::MAX / 2,
        "GATEHOUSE_BENCH_PERMITS out of range"
    );
    line("permits", f64::from(n), "count");
    let data = data_dir(n).await;
    let store_path = data.join("store.db");

    let on_disk = file_size(&store_path) + file_size(&data.join("store.db-wal"));
    line("store_size", on_disk as f64 / 1048576.0, "MiB");
    line("store_size_per_permit", on_disk as f64 / f64::from(n), "B");

    controller(&data, n).await;

    // In this process: the load alone and the index's own accounting.
    let store = Store::open(&store_path).await.unwrap();
    let started = Instant::now();
    let index = store.load_index().await.unwrap();
    line("store_load_index", started.elapsed().as_secs_f64(), "s");
    assert_eq!(index.permit_count(), n as usize, "every permit loaded");
    let m = index.memory();
    let per = |bytes: usize| bytes as f64 / f64::from(n);
    line("index_heap", m.total() as f64 / 1048576.0, "MiB");
    line("index_heap_per_permit", per(m.total()), "B");
    line("index_rows_per_permit", per(m.rows), "B");
    line("index_tables_per_permit", per(m.tables), "B");
    line("index_text_per_permit", per(m.text), "B");

    // Decisions: random tags, even draws issued, odd draws never issued.
    let presence = PresenceTable::new();
    let now = chrono::Utc::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut present = Vec::with_capacity(DECISIONS / 2);
    let mut absent = Vec::with_capacity(DECISIONS / 2);
    let mut granted = 0usize;
    for i in 0..DECISIONS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let issued = i % 2 == 0;
        let k = (x % u64::from(n)) as u32 + 1;
        let input = DecisionInput {
            read: CredentialRead::Tag {
                epc: Epc::from_bytes(&epc(if issued { k } else { n + k })).unwrap(),
                tid: None,
            },
            gate: GateId(1),
            lane: LaneId(1),
            direction: Direction::Entry,
            now,
            tz: chrono_tz::Asia::Shanghai,
            passback: AntiPassback::Off,
        };
        let t = Instant::now();
        let d = decide(&index, &presence, &input);
        let ns = t.elapsed().as_nanos() as u64;
        granted += usize::from(d.granted);
        if issued {
            present.push(ns)
        } else {
            absent.push(ns)
        }
    }
    assert_eq!(
        granted,
        present.len(),
        "every issued tag is let in, no unknown one"
    );
    let mut all: Vec<u64> = present.iter().chain(&absent).copied().collect();
    for v in [&mut all, &mut present, &mut absent] {
        v.sort_unstable();
    }
    line("decide_p50", percentile(&all, 0.5) as f64, "ns");
    line("decide_p99", percentile(&all, 0.99) as f64, "ns");
    line("decide_p999", percentile(&all, 0.999) as f64, "ns");
    line("decide_max", *all.last().unwrap() as f64, "ns");
    line("decide_issued_p99", percentile(&present, 0.99) as f64, "ns");
    line("decide_unknown_p99", percentile(&absent, 0.99) as f64, "ns");
}
