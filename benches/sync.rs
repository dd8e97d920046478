//! Sync benchmark. Measures, does not assert; prints one `name value unit` line per
//! figure. The central server (API repositories + sync router) and the gate run in this process
//! and talk over loopback through the real mutual-TLS listener (`tls::serve_mtls`, the
//! database's gate check), each gate presenting its own certificate from a site PKI made for
//! the run (`tests/common/sync_link.rs`).
//!
//! - first, many gates (`sync/gates.rs`): 4 gates online at once on SQLite, PostgreSQL and two
//!   instances over one PostgreSQL — revocation to every gate and event to centre, over every
//!   (gate, change) pair — and the fan-out of revocations to 1,000 long polls over mutual TLS,
//!   each its own gate with its own certificate (`GATEHOUSE_BENCH_ONLY_GATES=1`: only these);
//! - a fresh gate syncing `GATEHOUSE_BENCH_PERMITS` permits (default 1,000,000; one vehicle and
//!   one tag each) from a SQLite centre: time, and this process's resident memory after it
//!   (centre and gate share the process);
//! - revocation-to-gate time over `GATEHOUSE_BENCH_REVOCATIONS` revocations (default 100), with
//!   the gate holding all those permits: from the revocation's commit to the gate deciding from
//!   an index that has it, p50/p99; then the decision time on the index those deltas made;
//! - event-to-centre time while online over 200 events: from the journal commit at the gate
//!   to the event's row at the centre, p50/p99; then the same over 200 camera reads whose
//!   photos (30 KB + 200 KB each) the gate's photo loop uploads at the same time, and the ratio
//!   of the two p99s (photo upload must not delay event upload);
//! - central ingest throughput from 4 gates at once, each posting batches of 1,000 to the
//!   sync endpoint over mutual TLS, on SQLite and PostgreSQL (`DATABASE_URL`),
//!   `GATEHOUSE_BENCH_EVENTS` events in all (default 200,000), beside a raw baseline measured
//!   in the same run: the same rows written by a plain batched multi-row INSERT loop (4 tasks,
//!   one transaction per 1,000), and the ratio. The events are what lanes journal: each gate
//!   has its own 5,000 registered vehicles (seeded at the centre with their permits, so the
//!   statistics resolve real categories) coming every 10 s of gate time, alternately entering
//!   and leaving, each journalled as the lane task does: the decision, the barrier opening, the
//!   passage and the barrier closing; one arrival in 40 is an unknown tag, denied (a decision
//!   only). The ingest stores every event, counts the
//!   statistics and records presence (with its change-log entry) as a real upload does; the
//!   baseline writes exactly the same `passage_events` rows (checked row by row after both
//!   runs, `ingest_<db>_rows_same_as_baseline_round<n>`) and nothing else. Both are measured
//!   in `GATEHOUSE_BENCH_INGEST_ROUNDS` rounds (default 3) on fresh databases, the ingest first
//!   in odd rounds and the baseline first in even ones, so that a host's drift through the run
//!   favours neither; each round is printed, then the medians and the ratio's lowest and
//!   highest.
//!
//! Run: `cargo bench --bench sync` (`GATEHOUSE_BENCH_PERMITS=100000` for a quick run;
//! `-- --smoke` for a small one).

#[path = "../tests/common/sync_link.rs"]
mod sync_link;

#[path = "sync/gates.rs"]
mod gates;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use gatehouse::central::db::{Actor, Db, DbKind};
use gatehouse::central::photos::Photos;
use gatehouse::central::state::AppState;
use gatehouse::domain::ReasonCode;
use gatehouse::domain::{Direction, Epc, GateId, LaneId, PermitId};
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::decision::{AntiPassback, CredentialRead, DecisionInput, decide};
use gatehouse::gate::index::StatusRef;
use gatehouse::gate::presence::PresenceTable;
use gatehouse::gate::runtime::GateHandle;
use gatehouse::sync::client::ClientOptions;
use gatehouse::wire::journal::{
    BarrierAction, DecisionRecord, EventBody, JournalEvent, PhotoKind, PlateReadRecord,
};
use gatehouse::wire::sync::{EventAck, EventBatch};
use sqlx::Row;
use sync_link::{SitePki, SyncServer};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn line(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Bulk-loads `n` persons, vehicles, tags and permits (one each) straight into the centre.
async fn seed(db: &Db, n: usize) {
    let mut tx = db.pool().begin().await.unwrap();
    let now = 0i64;
    for chunk in (1..=n as i64).collect::<Vec<_>>().chunks(100) {
        let rows =
            |f: &dyn Fn(i64) -> String| chunk.iter().map(|&i| f(i)).collect::<Vec<_>>().join(",");
        let stmts = [
            format!(
                "INSERT INTO persons (id, name, category, department, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '持证人{i}', 'staff', '计算机学院', {now}, {now})"))
            ),
            format!(
                "INSERT INTO vehicles (id, plate, plate_colour, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '{}', 'blue', {now}, {now})", plate(i)))
            ),
            format!(
                "INSERT INTO permits (id, category, holder_id, valid_from_ms, valid_until_ms, gates, \
                 created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, 'staff', {i}, 0, 4102444800000, 'all', {now}, {now})"))
            ),
            format!(
                "INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES {}",
                rows(&|i| format!("({i}, {i})"))
            ),
            format!(
                "INSERT INTO credentials (id, epc, vehicle_id, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '{}', {i}, {now}, {now})", epc(i)))
            ),
        ];
        for s in stmts {
            sqlx::query(&s).execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// The EPC of permit `i`'s tag.
fn epc(i: i64) -> String {
    format!("E2003098{i:08X}2140369E")
}

/// A valid ordinary plate for `i` (京 + letter + 5 of digits/letters without I and O).
fn plate(i: i64) -> String {
    const SERIAL: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXY";
    let mut n = i as usize;
    let authority = letters[n % letters.len()] as char;
    n /= letters.len();
    let mut serial = String::new();
    for _ in 0..5 {
        serial.push(SERIAL[n % SERIAL.len()] as char);
        n /= SERIAL.len();
    }
    format!("京{authority}{serial}")
}

async fn gate(dir: &std::path::Path) -> GateHandle {
    let toml = format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\n[[lane]]\nid = \"in\"\ndirection = \"entry\"\n\
         [lane.reader]\nport = \"{0}/no-reader\"\n[lane.io]\nport = \"{0}/no-io\"\n",
        dir.display()
    );
    GateHandle::start(GateConfig::parse(&toml).unwrap())
        .await
        .unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `--smoke`: small sizes, a few seconds (what `benches/run --smoke` is for).
    let smoke = std::env::args().any(|a| a == "--smoke");
    let size = |full: usize, small: usize| if smoke { small } else { full };
    let permits = knob("GATEHOUSE_BENCH_PERMITS", size(1_000_000, 20_000));
    let revocations = knob("GATEHOUSE_BENCH_REVOCATIONS", size(100, 10));
    let events = knob("GATEHOUSE_BENCH_EVENTS", size(200_000, 4_000));
    let dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(&dir.path().join("pki"));

    // Many gates: 4 gates online on each store, and the fan-out to many long polls.
    let sizes = gates::Sizes {
        permits: knob("GATEHOUSE_BENCH_GATES_PERMITS", size(100_000, 5_000)),
        revocations: knob("GATEHOUSE_BENCH_GATES_REVOCATIONS", size(100, 10)),
        events: knob("GATEHOUSE_BENCH_GATES_EVENTS", size(100, 10)),
        polls: knob("GATEHOUSE_BENCH_POLLS", size(1_000, 50)),
        fanout_revocations: knob("GATEHOUSE_BENCH_POLL_REVOCATIONS", size(20, 3)),
    };
    gates::run(dir.path(), &pki, &sizes).await;
    if std::env::var("GATEHOUSE_BENCH_ONLY_GATES").is_ok_and(|v| v == "1") {
        return;
    }

    // A SQLite centre with `permits` permits, and a fresh gate syncing them.
    let db = Db::open_sqlite(&dir.path().join("central.db"))
        .await
        .unwrap();
    sqlx::query("INSERT INTO gates (id, name, created_ms, updated_ms) VALUES (1, '北门', 0, 0)")
        .execute(db.pool())
        .await
        .unwrap();
    let t = Instant::now();
    seed(&db, permits).await;
    line("central_seed_permits", t.elapsed().as_secs_f64(), "s");
    let mut state = AppState::new(db.clone());
    state.photos = Photos::disk(&dir.path().join("central-photos"), 90).unwrap();
    let server = SyncServer::start(state, None, &pki).await;
    let handle = Arc::new(gate(&dir.path().join("gate")).await);
    let options = ClientOptions {
        poll_wait: Duration::from_secs(20),
        health_every: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let client = Arc::new(pki.client(1, &server.url(), options));
    let rss_before = kib("VmRSS:");
    let t = Instant::now();
    client.pull_once(&handle, Duration::ZERO).await.unwrap();
    let took = t.elapsed();
    line(
        &format!("fresh_gate_sync_{permits}_permits"),
        took.as_secs_f64(),
        "s",
    );
    line("process_rss_after_gate_sync", kib("VmRSS:") / 1024.0, "MiB");
    line(
        "process_rss_growth_during_gate_sync",
        (kib("VmRSS:") - rss_before) / 1024.0,
        "MiB",
    );
    line("process_peak_rss", kib("VmHWM:") / 1024.0, "MiB");
    // The centre's half alone: the same snapshot streamed over the same link and discarded.
    {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(pki.client_tls(1))
            .build()
            .unwrap();
        let t = Instant::now();
        let mut response = http
            .get(format!("{}/sync/v1/snapshot", server.url()))
            .send()
            .await
            .unwrap();
        let mut bytes = 0usize;
        while let Some(chunk) = response.chunk().await.unwrap() {
            bytes += chunk.len();
        }
        line("snapshot_stream_only", t.elapsed().as_secs_f64(), "s");
        line("snapshot_bytes", bytes as f64 / 1048576.0, "MiB");
    }
    line(
        "gate_index_heap",
        handle.shared().index().memory().total() as f64 / 1048576.0,
        "MiB",
    );

    // Revocations with the gate online (its runner long-polling).
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runner = tokio::spawn(client.clone().run(handle.clone(), shutdown.clone()));
    let mut reach = Vec::with_capacity(revocations);
    let actor = Actor::system();
    for i in 0..revocations {
        let id = (i * (permits / revocations.max(1)).max(1)) as i64 % permits as i64 + 1;
        gatehouse::central::repo::permits::act(
            &db,
            &actor,
            id,
            None,
            gatehouse::central::repo::permits::Action::Revoke,
            "bench",
        )
        .await
        .unwrap();
        let committed = Instant::now();
        loop {
            let index = handle.shared().index();
            if index
                .permit(PermitId(id as u32))
                .is_some_and(|p| matches!(p.status(), StatusRef::Revoked(_)))
            {
                break;
            }
            drop(index);
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        reach.push(committed.elapsed());
    }
    reach.sort();
    line(
        "gate_permits_during_revocations",
        handle.shared().index().permit_count() as f64,
        "permits",
    );
    line("revocation_to_gate_p50", percentile(&reach, 0.5), "ms");
    line("revocation_to_gate_p99", percentile(&reach, 0.99), "ms");
    line("revocation_to_gate_max", percentile(&reach, 1.0), "ms");
    line(
        "gate_index_garbage_after_revocations",
        handle.shared().index().garbage() as f64,
        "rows",
    );

    // Decisions on the index the revocations' deltas made (tags at random, some revoked).
    {
        let index = handle.shared().index();
        let presence = PresenceTable::new();
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut times = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % permits as u64) as i64 + 1;
            let input = DecisionInput {
                read: CredentialRead::Tag {
                    epc: Epc::from_hex(&epc(i)).unwrap(),
                    tid: None,
                },
                gate: GateId(1),
                lane: LaneId(1),
                direction: Direction::Entry,
                now: Utc::now(),
                tz: chrono_tz::Asia::Shanghai,
                passback: AntiPassback::Off,
            };
            let t = Instant::now();
            let d = decide(&index, &presence, &input);
            times.push(t.elapsed());
            std::hint::black_box(d.granted);
        }
        times.sort();
        line(
            "decide_after_deltas_p50",
            percentile(&times, 0.5) * 1000.0,
            "us",
        );
        line(
            "decide_after_deltas_p99",
            percentile(&times, 0.99) * 1000.0,
            "us",
        );
    }

    // Event to centre, online; then the same with each event's camera photos (a 30 KB plate
    // close-up and a 200 KB scene) stored at the gate just before it and uploaded by the photo
    // loop at the same time, in the same run.
    let up = event_to_centre(&handle, &db, 200, false).await;
    line("event_to_centre_p50", percentile(&up, 0.5), "ms");
    line("event_to_centre_p99", percentile(&up, 0.99), "ms");
    let with_photos = event_to_centre(&handle, &db, 200, true).await;
    line(
        "event_to_centre_with_photo_upload_p50",
        percentile(&with_photos, 0.5),
        "ms",
    );
    line(
        "event_to_centre_with_photo_upload_p99",
        percentile(&with_photos, 0.99),
        "ms",
    );
    line(
        "event_to_centre_p99_ratio_with_photos",
        percentile(&with_photos, 0.99) / percentile(&up, 0.99).max(1e-9),
        "x",
    );
    let photos_at_centre: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM photos")
        .fetch_one(db.pool())
        .await
        .unwrap();
    line(
        "photos_at_centre_after_run",
        photos_at_centre as f64,
        "photos",
    );
    shutdown.cancel();
    runner.await.unwrap();
    match Arc::try_unwrap(handle) {
        Ok(h) => h.shutdown().await,
        Err(_) => panic!("gate still shared"),
    }
    server.shutdown().await;

    // Ingest throughput, 4 gates at once, against a plain batched INSERT of the same rows.
    let mut stores = vec![(
        "sqlite",
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ingest.db").display()
        ),
    )];
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        stores.push(("postgres", url));
    }
    let rounds = knob("GATEHOUSE_BENCH_INGEST_ROUNDS", 3).max(1);
    for (kind, url) in stores {
        let mut ratios = Vec::new();
        let mut ingest_rates = Vec::new();
        let mut base_rates = Vec::new();
        for round in 1..=rounds {
            let (ingest_rate, base_rate) =
                ingest_round(kind, &url, dir.path(), &pki, events, round).await;
            line(
                &format!("ingest_{kind}_4_gates_over_mtls_round{round}"),
                ingest_rate,
                "events/s",
            );
            line(
                &format!("raw_insert_{kind}_4_gates_round{round}"),
                base_rate,
                "events/s",
            );
            let ratio = ingest_rate / base_rate * 100.0;
            line(&format!("ingest_vs_raw_{kind}_round{round}"), ratio, "%");
            ratios.push(ratio);
            ingest_rates.push(ingest_rate);
            base_rates.push(base_rate);
        }
        // The medians over the rounds, and the spread of the ratio.
        line(
            &format!("ingest_{kind}_4_gates_over_mtls"),
            median(&mut ingest_rates),
            "events/s",
        );
        line(
            &format!("raw_insert_{kind}_4_gates"),
            median(&mut base_rates),
            "events/s",
        );
        line(&format!("ingest_vs_raw_{kind}"), median(&mut ratios), "%");
        line(&format!("ingest_vs_raw_{kind}_min"), ratios[0], "%");
        line(
            &format!("ingest_vs_raw_{kind}_max"),
            ratios[ratios.len() - 1],
            "%",
        );
    }
}

/// The middle value (the upper middle of an even count); sorts `values`.
/// `n` events journalled 10 ms apart, each timed from its commit at the gate to its row at the
/// centre (sorted). With `photos`, each is a camera read whose two photos (30 KB, 200 KB, new
/// bytes every time) the gate stored just before, for its photo loop to upload meanwhile.
async fn event_to_centre(
    handle: &Arc<GateHandle>,
    db: &Db,
    n: usize,
    photos: bool,
) -> Vec<Duration> {
    static ROUND: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let round = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut up = Vec::with_capacity(n);
    for i in 0..n {
        let body = if photos {
            let store = handle.shared().photos.clone();
            let refs = tokio::task::spawn_blocking(move || {
                [(PhotoKind::Plate, 30_000), (PhotoKind::Scene, 200_000)]
                    .into_iter()
                    .map(|(kind, size)| {
                        let mut jpeg: Vec<u8> = (0..size)
                            .map(|b: usize| (b as u8) ^ (i as u8) ^ (round as u8))
                            .collect();
                        jpeg[..2].copy_from_slice(&[0xff, 0xd8]);
                        jpeg[2..10]
                            .copy_from_slice(&(i as u64 | (u64::from(round) << 32)).to_le_bytes());
                        store.put(kind, &jpeg).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap();
            EventBody::PlateIgnored {
                camera: PlateReadRecord {
                    camera: "bench".into(),
                    event_id: format!("{round}-{i}"),
                    raw_plate: "京A12345".into(),
                    colour: Some("blue".into()),
                    confidence: 95,
                    photos: refs,
                },
                why: "bench".into(),
            }
        } else {
            EventBody::LaneFault {
                fault: "bench".into(),
                detail: String::new(),
            }
        };
        let seq = handle
            .journal()
            .append(Utc::now(), "in", body)
            .await
            .unwrap();
        let committed = Instant::now();
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM passage_events WHERE gate_id = 1 AND seq = $1",
            )
            .bind(seq as i64)
            .fetch_one(db.pool())
            .await
            .unwrap();
            if n == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        up.push(committed.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    up.sort();
    up
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Round `round` of the ingest benchmark on fresh databases of `kind`: the ingest's rate and
/// the baseline's (events/s), the baseline measured first in even rounds.
async fn ingest_round(
    kind: &str,
    url: &str,
    dir: &std::path::Path,
    pki: &SitePki,
    events: usize,
    round: usize,
) -> (f64, f64) {
    let dir = dir.join(format!("round{round}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (ingest_db, base_db, cleanup) = fresh_pair(kind, url, &dir).await;
    for g in 1..=4 {
        sqlx::query("INSERT INTO gates (id, name, created_ms, updated_ms) VALUES ($1, $2, 0, 0)")
            .bind(g as i64)
            .bind(format!("门{g}"))
            .execute(ingest_db.pool())
            .await
            .unwrap();
    }
    seed(&ingest_db, 4 * VEHICLES_PER_GATE as usize).await;
    let listen = (kind == "postgres").then(|| ingest_db_url(url, kind));
    let ingest_server = SyncServer::start(AppState::new(ingest_db.clone()), listen, pki).await;
    let per_gate = events / 4;
    let batches: Vec<Vec<JournalEvent>> = (1..=4).map(|g| synthetic(g, per_gate)).collect();
    let bodies: Vec<Vec<Vec<u8>>> = batches
        .iter()
        .enumerate()
        .map(|(g, evs)| {
            evs.chunks(1000)
                .map(|chunk| {
                    serde_json::to_vec(&EventBatch {
                        gate_id: g as i64 + 1,
                        journal: None,
                        events: chunk.to_vec(),
                    })
                    .unwrap()
                })
                .collect()
        })
        .collect();
    // Odd rounds measure the ingest first, even rounds the baseline: a host that speeds up
    // or slows down through the run favours neither.
    let early_base = if round.is_multiple_of(2) {
        Some(raw_rate(&base_db, &batches).await)
    } else {
        None
    };
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, gate_bodies) in bodies.into_iter().enumerate() {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(pki.client_tls(g as i64 + 1))
            .build()
            .unwrap();
        let url = format!("{}/sync/v1/events", ingest_server.url());
        tasks.push(tokio::spawn(async move {
            // Refused uploads are sent again, as a gate does; counted.
            let mut refused = 0u64;
            for body in gate_bodies {
                loop {
                    let response = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    if !response.status().is_success() {
                        refused += 1;
                        continue;
                    }
                    let ack: EventAck = response.json().await.unwrap();
                    assert!(ack.highest_contiguous > 0);
                    break;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.unwrap();
    }
    let ingest_rate = (per_gate * 4) as f64 / t.elapsed().as_secs_f64();
    ingest_server.shutdown().await;
    line(
        &format!("ingest_{kind}_refused_uploads_round{round}"),
        refused as f64,
        "requests",
    );
    let base_rate = match early_base {
        Some(rate) => rate,
        None => raw_rate(&base_db, &batches).await,
    };
    let stored = stored_rows(&ingest_db).await;
    assert!(
        stored == stored_rows(&base_db).await,
        "the baseline must write exactly the rows the ingest stores"
    );
    line(
        &format!("ingest_{kind}_rows_same_as_baseline_round{round}"),
        stored.len() as f64,
        "rows",
    );
    ingest_db.close().await;
    base_db.close().await;
    cleanup.await;
    (ingest_rate, base_rate)
}

/// The baseline's rate (events/s): `batches` (one per gate) written by [`raw_insert`], the
/// gates at once.
async fn raw_rate(db: &Db, batches: &[Vec<JournalEvent>]) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, evs) in batches.iter().enumerate() {
        let db = db.clone();
        let evs = evs.clone();
        tasks.push(tokio::spawn(async move {
            raw_insert(&db, g as i64 + 1, &evs).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    batches.iter().map(Vec::len).sum::<usize>() as f64 / t.elapsed().as_secs_f64()
}

/// Registered vehicles per gate in the ingest run (gate `g` has vehicles and permits
/// `(g - 1) * VEHICLES_PER_GATE + 1 ..= g * VEHICLES_PER_GATE`).
const VEHICLES_PER_GATE: i64 = 5_000;

/// `n` events of gate `gate`'s journal as its lanes write them: its own vehicles arriving every
/// 10 s of gate time (the last two days), in rounds through all of them, entering in even
/// rounds and leaving in odd ones; each arrival journalled as the lane task does
/// (`gate::runtime`): the granted tag decision, the barrier's opening, the passage and the
/// barrier's automatic closing; every 40th arrival an unknown tag, denied (a decision only).
fn synthetic(gate: i64, n: usize) -> Vec<JournalEvent> {
    let t0 = Utc::now() - chrono::Duration::hours(48);
    let mut out: Vec<JournalEvent> = Vec::with_capacity(n + 2);
    let mut arrival = 0i64;
    let mut passages = 0i64;
    while out.len() < n {
        let at = t0 + chrono::Duration::seconds(arrival * 10);
        arrival += 1;
        let mut push = |at_ms: i64, lane: &str, body: EventBody| {
            out.push(JournalEvent {
                seq: out.len() as u64 + 1,
                at: at + chrono::Duration::milliseconds(at_ms),
                lane: lane.into(),
                body,
            })
        };
        if arrival % 40 == 0 {
            let stranger = 9_000_000 + gate * 100_000 + arrival;
            push(
                0,
                "in",
                EventBody::Decision(tag_decision("entry", stranger, false)),
            );
            continue;
        }
        let vehicle = (gate - 1) * VEHICLES_PER_GATE + passages % VEHICLES_PER_GATE + 1;
        let entry = (passages / VEHICLES_PER_GATE) % 2 == 0;
        passages += 1;
        let (direction, lane) = if entry {
            ("entry", "in")
        } else {
            ("exit", "out")
        };
        push(
            0,
            lane,
            EventBody::Decision(tag_decision(direction, vehicle, true)),
        );
        push(
            180,
            lane,
            EventBody::Barrier {
                action: BarrierAction::Open,
                cause: "grant".into(),
            },
        );
        push(
            4_200,
            lane,
            EventBody::Passage {
                direction: direction.into(),
                plate: Some(plate(vehicle)),
                vehicle_id: Some(vehicle),
                permit_id: Some(vehicle),
            },
        );
        push(
            4_200,
            lane,
            EventBody::Barrier {
                action: BarrierAction::Close,
                cause: "auto_close".into(),
            },
        );
    }
    out.truncate(n);
    out
}

/// A tag decision for vehicle `i` (its seeded tag, plate and permit), or, when denied, for an
/// unknown tag.
fn tag_decision(direction: &str, i: i64, granted: bool) -> DecisionRecord {
    DecisionRecord {
        direction: direction.into(),
        credential: "tag".into(),
        epc: Some(epc(i)),
        tid: None,
        antenna: Some(1),
        rssi_dbm: Some(-52),
        plate: granted.then(|| plate(i)),
        granted,
        reason: if granted {
            ReasonCode::Granted
        } else {
            ReasonCode::DeniedUnknownTag
        },
        flags: Vec::new(),
        permit_id: granted.then_some(i),
        vehicle_id: granted.then_some(i),
        holder: granted.then(|| format!("持证人{i}")),
        category: granted.then(|| "staff".into()),
        data_version: 1,
        decide_ns: 900,
        camera: None,
        pass: None,
    }
}

/// The columns the centre copies out of an event body (plate, vehicle, permit, direction,
/// granted, reason), for the kinds [`synthetic`] makes (plates already in normal form).
type Columns = (
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn columns(body: &EventBody) -> Columns {
    match body {
        EventBody::Decision(d) => (
            d.plate.clone(),
            d.vehicle_id,
            d.permit_id,
            Some(d.direction.clone()),
            Some(i64::from(d.granted)),
            Some(d.reason.as_str().to_string()),
        ),
        EventBody::Passage {
            direction,
            plate,
            vehicle_id,
            permit_id,
        } => (
            plate.clone(),
            *vehicle_id,
            *permit_id,
            Some(direction.clone()),
            None,
            None,
        ),
        _ => (None, None, None, None, None, None),
    }
}

/// The baseline: the same rows, multi-row INSERTs of the ingest's own batch sizes, one
/// transaction per 1,000 events, no duplicate check, no watermark, no statistics, no presence.
async fn raw_insert(db: &Db, gate: i64, events: &[JournalEvent]) {
    let per_stmt = if db.kind() == DbKind::Sqlite { 10 } else { 500 };
    for batch in events.chunks(1000) {
        let mut tx = db.pool().begin().await.unwrap();
        for chunk in batch.chunks(per_stmt) {
            let mut sql = String::from(
                "INSERT INTO passage_events (gate_id, seq, lane, kind, at_ms, received_ms, plate, \
                 vehicle_id, permit_id, direction, granted, reason, body) VALUES ",
            );
            for (i, _) in chunk.iter().enumerate() {
                let b = i * 13;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10,
                    b + 11,
                    b + 12,
                    b + 13
                ));
            }
            let mut q = sqlx::query(&sql);
            for e in chunk {
                let (plate, vehicle, permit, direction, granted, reason) = columns(&e.body);
                q = q
                    .bind(gate)
                    .bind(e.seq as i64)
                    .bind(e.lane.clone())
                    .bind(e.body.kind())
                    .bind(e.at.timestamp_millis())
                    .bind(Utc::now().timestamp_millis())
                    .bind(plate)
                    .bind(vehicle)
                    .bind(permit)
                    .bind(direction)
                    .bind(granted)
                    .bind(reason)
                    .bind(serde_json::to_string(&e.body).unwrap());
            }
            q.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// A stored event as the comparison sees it: every column but the centre's receiving time.
type StoredRow = (i64, i64, String, String, i64, Columns, String);

/// Every stored event, by gate and sequence number.
async fn stored_rows(db: &Db) -> Vec<StoredRow> {
    sqlx::query(
        "SELECT gate_id, seq, lane, kind, at_ms, plate, vehicle_id, permit_id, direction, \
         granted, reason, body FROM passage_events ORDER BY gate_id, seq",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("gate_id"),
            r.get("seq"),
            r.get("lane"),
            r.get("kind"),
            r.get("at_ms"),
            (
                r.get("plate"),
                r.get("vehicle_id"),
                r.get("permit_id"),
                r.get("direction"),
                r.get("granted"),
                r.get("reason"),
            ),
            r.get("body"),
        )
    })
    .collect()
}

/// Two fresh databases of one kind (for ingest and for the baseline) and their clean-up.
async fn fresh_pair(
    kind: &str,
    url: &str,
    dir: &std::path::Path,
) -> (
    Db,
    Db,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
) {
    if kind == "sqlite" {
        let a = Db::open_sqlite(&dir.join("ingest.db")).await.unwrap();
        let b = Db::open_sqlite(&dir.join("baseline.db")).await.unwrap();
        return (a, b, Box::pin(async {}));
    }
    let admin = Db::connect(url).await.unwrap();
    let names: Vec<String> = (0..2).map(bench_db_name).collect();
    for n in &names {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {n}"))
            .execute(admin.pool())
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {n}"))
            .execute(admin.pool())
            .await
            .unwrap();
    }
    let a = Db::open(&ingest_db_url(url, kind)).await.unwrap();
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    let b = Db::open(&format!("{base}/{}", names[1])).await.unwrap();
    let cleanup = Box::pin(async move {
        for n in &names {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                .execute(admin.pool())
                .await;
        }
        let _ = Row::len(
            &sqlx::query("SELECT 1")
                .fetch_one(admin.pool())
                .await
                .unwrap(),
        );
    });
    (a, b, cleanup)
}

fn bench_db_name(i: usize) -> String {
    format!("gatehouse_bench_sync_{}_{i}", std::process::id())
}

/// The URL of the ingest database of kind `kind` (PostgreSQL: beside the `DATABASE_URL` one).
fn ingest_db_url(url: &str, kind: &str) -> String {
    assert_eq!(kind, "postgres");
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    format!("{base}/{}", bench_db_name(0))
}
