//! The centre's event ingest against PostgreSQL's own binary `COPY` of the same rows (issue 22:
//! "ingest at COPY speed"). Measures, does not assert times; prints one `name value unit` line
//! per figure on standard output (progress on standard error). It does assert that what it
//! measured is right: every variant stores exactly the same rows (count and a SHA-256 over the
//! key columns and the body), and the ingest's statistics count every passage.
//!
//! The rows are what lanes journal (as in `benches/sync.rs`): each gate has 5,000 registered
//! vehicles, seeded at the centre with their persons, permits and tags so that the statistics
//! resolve real categories and the presence paths run, coming every 10 s of gate time,
//! alternately entering and leaving, each journalled as the lane task does (the granted tag
//! decision, the barrier's opening, the passage, the barrier's closing); one arrival in 40 is an
//! unknown tag, denied (a decision only). `GATEHOUSE_BENCH_EVENTS` events in all (default
//! 200,000; `--smoke`: 4,000) over `GATEHOUSE_BENCH_INGEST_GATES` gates (default 4), in
//! uploads of 1,000 (what a gate sends at most).
//!
//! Each round, on PostgreSQL (`DATABASE_URL`), on a fresh database:
//! - `ingest_direct`: the gates at once, each calling `central::ingest::accept_from` (what the
//!   sync endpoint calls) for its uploads one after the other, with its journal's id: events
//!   stored exactly once, statistics, presence, outside vehicles, passes, watermark, alarms,
//!   live publication — everything an upload does but HTTP and TLS;
//! - `ingest_mtls`: the same uploads posted by the gates to the real `/sync/v1/events`
//!   endpoint over mutual TLS, each with its own certificate (on a second fresh database, the
//!   endpoint's own: the rows must not collide with the direct ingest's);
//! - `copy_binary`: the baseline the issue states its goal against — the same `passage_events`
//!   rows (same columns, as the centre derives them) sent by `COPY … FROM STDIN (FORMAT
//!   binary)`, encoded here by hand, one COPY per upload of 1,000 (each its own transaction, as
//!   an upload is), the gates at once on their own connections, into a table of the same shape
//!   (`CREATE TABLE … (LIKE passage_events INCLUDING ALL)`: the same primary key and indexes) on
//!   the same database;
//! - `copy_binary_bulk`: the same with one COPY per gate for all its rows (COPY's best case);
//! - `insert`: the same rows by plain multi-row INSERTs (500 a statement, one transaction per
//!   1,000), the earlier baseline (`benches/sync.rs`).
//!
//! Odd rounds run the variants in that order, even rounds in the reverse order, so a host's
//! drift favours none. Each round prints every rate and the ratios `ingest_vs_copy` (the
//! target: ≥ 50 %), `ingest_mtls_vs_copy`, `ingest_vs_copy_bulk` and `ingest_vs_insert`; then
//! the medians over `GATEHOUSE_BENCH_INGEST_ROUNDS` rounds (default 3; `--smoke`: 1).
//!
//! On SQLite (a second figure; COPY does not exist there) the same rows are ingested directly
//! and inserted by the baseline's INSERTs (10 a statement), and the ratio printed.
//!
//! Run: `cargo bench --bench ingest` (full), `cargo bench --bench ingest -- --smoke`.

#[path = "../tests/common/sync_link.rs"]
mod sync_link;

use std::time::Instant;

use chrono::Utc;
use gatehouse::central::db::{Db, DbKind};
use gatehouse::central::state::AppState;
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{
    BarrierAction, DecisionRecord, EventBody, JournalEvent, JournalIdentity,
};
use gatehouse::wire::sync::{EventAck, EventBatch};
use sha2::Digest as _;
use sqlx::Row;
use sync_link::{SitePki, SyncServer};

/// Events per upload, as a gate sends them at most.
const UPLOAD: usize = 1_000;
/// Registered vehicles per gate (gate `g` has vehicles and permits
/// `(g - 1) * VEHICLES_PER_GATE + 1 ..= g * VEHICLES_PER_GATE`).
const VEHICLES_PER_GATE: i64 = 5_000;
/// The columns of `passage_events` every variant writes, in this order.
const COLUMNS: &str = "gate_id, journal_no, seq, lane, kind, at_ms, received_ms, plate, \
                       vehicle_id, permit_id, direction, granted, reason, body";

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn line(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The variants a round measures, in the order of odd rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Direct,
    Mtls,
    Copy,
    CopyBulk,
    Insert,
    JsonInsert,
    Staged,
}

/// Every variant, in the order of odd rounds.
const ALL: [Variant; 7] = [
    Variant::Direct,
    Variant::Mtls,
    Variant::Copy,
    Variant::CopyBulk,
    Variant::Insert,
    Variant::JsonInsert,
    Variant::Staged,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Direct => "ingest_direct",
            Variant::Mtls => "ingest_mtls",
            Variant::Copy => "copy_binary",
            Variant::CopyBulk => "copy_binary_bulk",
            Variant::Insert => "insert",
            Variant::JsonInsert => "events_json_insert",
            Variant::Staged => "copy_staging_insert",
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let events = knob(
        "GATEHOUSE_BENCH_EVENTS",
        if smoke { 4_000 } else { 200_000 },
    );
    let gates = knob("GATEHOUSE_BENCH_INGEST_GATES", 4).max(1);
    let rounds = if smoke {
        1
    } else {
        knob("GATEHOUSE_BENCH_INGEST_ROUNDS", 3).max(1)
    };
    let dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(&dir.path().join("pki"));
    let per_gate = events / gates;
    let batches: Vec<Vec<JournalEvent>> =
        (1..=gates as i64).map(|g| synthetic(g, per_gate)).collect();
    eprintln!(
        "ingest: {} events over {gates} gates, {rounds} round(s)",
        per_gate * gates
    );

    let pg_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    if let Some(url) = &pg_url {
        let mut figures: Vec<Vec<(Variant, f64)>> = Vec::new();
        for round in 1..=rounds {
            let rates = pg_round(url, &pki, &batches, round).await;
            print_round("postgres", gates, round, &rates);
            figures.push(rates);
        }
        print_medians("postgres", gates, &figures);
    } else {
        eprintln!("ingest: DATABASE_URL unset, PostgreSQL skipped");
    }
    if std::env::var("GATEHOUSE_BENCH_STORES").map_or(true, |s| s.contains("sqlite")) {
        let mut figures = Vec::new();
        for round in 1..=rounds {
            let rates = sqlite_round(dir.path(), &batches, round).await;
            print_round("sqlite", gates, round, &rates);
            figures.push(rates);
        }
        print_medians("sqlite", gates, &figures);
    }
}

/// Whether `v` is among the variants `GATEHOUSE_BENCH_INGEST_VARIANTS` names (comma-separated
/// names as printed, e.g. `ingest_direct,copy_binary` to profile those two; default: all).
fn chosen(v: Variant) -> bool {
    std::env::var("GATEHOUSE_BENCH_INGEST_VARIANTS")
        .map_or(true, |list| list.split(',').any(|n| n.trim() == v.name()))
}

fn rate_of(rates: &[(Variant, f64)], v: Variant) -> Option<f64> {
    rates.iter().find(|(w, _)| *w == v).map(|(_, r)| *r)
}

/// The ratios a round's rates give (name, %).
fn ratios(rates: &[(Variant, f64)]) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    let pairs = [
        ("ingest_vs_copy", Variant::Direct, Variant::Copy),
        ("ingest_mtls_vs_copy", Variant::Mtls, Variant::Copy),
        ("ingest_vs_copy_bulk", Variant::Direct, Variant::CopyBulk),
        ("ingest_vs_insert", Variant::Direct, Variant::Insert),
        ("ingest_mtls_vs_insert", Variant::Mtls, Variant::Insert),
        (
            "ingest_vs_events_json_insert",
            Variant::Direct,
            Variant::JsonInsert,
        ),
        (
            "events_json_insert_vs_copy",
            Variant::JsonInsert,
            Variant::Copy,
        ),
        (
            "copy_staging_insert_vs_copy",
            Variant::Staged,
            Variant::Copy,
        ),
    ];
    for (name, a, b) in pairs {
        if let (Some(a), Some(b)) = (rate_of(rates, a), rate_of(rates, b)) {
            out.push((name, a / b * 100.0));
        }
    }
    out
}

fn print_round(db: &str, gates: usize, round: usize, rates: &[(Variant, f64)]) {
    for (v, r) in rates {
        line(
            &format!("{db}_{}_{gates}_gates_round{round}", v.name()),
            *r,
            "events/s",
        );
    }
    for (name, pct) in ratios(rates) {
        line(&format!("{db}_{name}_round{round}"), pct, "%");
    }
}

fn print_medians(db: &str, gates: usize, rounds: &[Vec<(Variant, f64)>]) {
    for v in ALL {
        let all: Vec<f64> = rounds.iter().filter_map(|r| rate_of(r, v)).collect();
        if !all.is_empty() {
            line(
                &format!("{db}_{}_{gates}_gates", v.name()),
                median(&all),
                "events/s",
            );
        }
    }
    let per_round: Vec<Vec<(&str, f64)>> = rounds.iter().map(|r| ratios(r)).collect();
    for (i, (name, _)) in per_round[0].iter().enumerate() {
        let all: Vec<f64> = per_round.iter().map(|r| r[i].1).collect();
        line(&format!("{db}_{name}"), median(&all), "%");
        if all.len() > 1 {
            let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            line(&format!("{db}_{name}_min"), lo, "%");
            line(&format!("{db}_{name}_max"), hi, "%");
        }
    }
}

/// One PostgreSQL round: every variant's rate (events/s), after checking they stored the same.
async fn pg_round(
    url: &str,
    pki: &SitePki,
    batches: &[Vec<JournalEvent>],
    round: usize,
) -> Vec<(Variant, f64)> {
    let gates = batches.len() as i64;
    let admin = Db::connect(url).await.unwrap();
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    let names: Vec<String> = (0..2)
        .map(|i| format!("gatehouse_bench_ingest_{}_{i}", std::process::id()))
        .collect();
    for n in &names {
        for sql in [
            format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"),
            format!("CREATE DATABASE {n}"),
        ] {
            sqlx::query(&sql).execute(admin.pool()).await.unwrap();
        }
    }
    let main_url = format!("{base}/{}", names[0]);
    let mtls_url = format!("{base}/{}", names[1]);
    let db = Db::open(&main_url).await.unwrap();
    let mtls_db = Db::open(&mtls_url).await.unwrap();
    for d in [&db, &mtls_db] {
        seed(d, gates).await;
    }
    for table in [
        "bench_copy",
        "bench_copy_bulk",
        "bench_insert",
        "bench_json",
        "bench_staged",
    ] {
        sqlx::query(&format!(
            "CREATE TABLE {table} (LIKE passage_events INCLUDING ALL)"
        ))
        .execute(db.pool())
        .await
        .unwrap();
    }
    // A native connection per gate for COPY (the Any driver has no COPY).
    let pg = sqlx::postgres::PgPoolOptions::new()
        .max_connections(gates as u32)
        .connect(&main_url)
        .await
        .unwrap();
    let mut order: Vec<Variant> = ALL.into_iter().filter(|v| chosen(*v)).collect();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    let mut rates = Vec::new();
    for &v in &order {
        eprintln!("ingest: postgres round {round}: {}", v.name());
        let rate = match v {
            Variant::Direct => direct(&db, batches).await,
            Variant::Mtls => mtls(&mtls_db, &mtls_url, pki, batches).await,
            Variant::Copy => copy(&pg, "bench_copy", batches, false).await,
            Variant::CopyBulk => copy(&pg, "bench_copy_bulk", batches, true).await,
            Variant::Insert => insert(&db, "bench_insert", batches, 500).await,
            Variant::JsonInsert => json_insert(&pg, "bench_json", batches).await,
            Variant::Staged => staged(&pg, "bench_staged", batches).await,
        };
        rates.push((v, rate));
    }
    // Every variant stored exactly the same rows: all of them.
    let want = batches.iter().map(Vec::len).sum::<usize>() as i64;
    let mut reference: Option<(i64, String)> = None;
    for &v in &order {
        let (d, table) = match v {
            Variant::Direct => (&db, "passage_events"),
            Variant::Mtls => (&mtls_db, "passage_events"),
            Variant::Copy => (&db, "bench_copy"),
            Variant::CopyBulk => (&db, "bench_copy_bulk"),
            Variant::Insert => (&db, "bench_insert"),
            Variant::JsonInsert => (&db, "bench_json"),
            Variant::Staged => (&db, "bench_staged"),
        };
        let got = digest(d, table).await;
        assert_eq!(got.0, want, "{} must store every event once", v.name());
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_eq!(
                &got,
                r,
                "{} must store exactly the rows {} stored",
                v.name(),
                order[0].name()
            ),
        }
    }
    line(
        &format!("postgres_rows_same_in_every_variant_round{round}"),
        want as f64,
        "rows",
    );
    if chosen(Variant::Direct) {
        check_statistics(&db).await;
    }
    if chosen(Variant::Mtls) {
        check_statistics(&mtls_db).await;
    }
    pg.close().await;
    db.close().await;
    mtls_db.close().await;
    for n in &names {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
            .execute(admin.pool())
            .await;
    }
    admin.close().await;
    rates
}

/// One SQLite round: the direct ingest and the INSERT baseline, checked equal.
async fn sqlite_round(
    dir: &std::path::Path,
    batches: &[Vec<JournalEvent>],
    round: usize,
) -> Vec<(Variant, f64)> {
    let path = dir.join(format!("ingest-{round}.db"));
    let db = Db::open_sqlite(&path).await.unwrap();
    seed(&db, batches.len() as i64).await;
    // The same shape as passage_events, with its primary key and indexes.
    let shape: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'passage_events'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let mut ddl = vec![shape.replacen("passage_events", "bench_insert", 1)];
    for r in sqlx::query(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'passage_events' \
         AND sql IS NOT NULL",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    {
        let sql: String = r.get("sql");
        ddl.push(
            sql.replace("ON passage_events", "ON bench_insert")
                .replacen("INDEX ", "INDEX bench_", 1),
        );
    }
    for sql in ddl {
        sqlx::query(&sql).execute(db.pool()).await.unwrap();
    }
    let mut order: Vec<Variant> = [Variant::Direct, Variant::Insert]
        .into_iter()
        .filter(|v| chosen(*v))
        .collect();
    if round.is_multiple_of(2) {
        order.reverse();
    }
    let mut rates = Vec::new();
    for v in order {
        eprintln!("ingest: sqlite round {round}: {}", v.name());
        let rate = match v {
            Variant::Direct => direct(&db, batches).await,
            _ => insert(&db, "bench_insert", batches, 10).await,
        };
        rates.push((v, rate));
    }
    let want = batches.iter().map(Vec::len).sum::<usize>() as i64;
    let mut reference: Option<(i64, String)> = None;
    for (v, table) in [
        (Variant::Direct, "passage_events"),
        (Variant::Insert, "bench_insert"),
    ] {
        if !chosen(v) {
            continue;
        }
        let got = digest(&db, table).await;
        assert_eq!(got.0, want, "{} must store every event once", v.name());
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_eq!(&got, r, "the INSERT must store exactly the ingest's rows"),
        }
    }
    line(
        &format!("sqlite_rows_same_in_every_variant_round{round}"),
        want as f64,
        "rows",
    );
    if chosen(Variant::Direct) {
        check_statistics(&db).await;
    }
    db.close().await;
    rates
}

/// The journal gate `g` uploads from.
fn journal(g: i64) -> JournalIdentity {
    JournalIdentity {
        id: format!("0000000000000000000000000000{g:04x}"),
        from_legacy: false,
    }
}

/// The gates at once through `ingest::accept_from`, one upload after the other each.
async fn direct(db: &Db, batches: &[Vec<JournalEvent>]) -> f64 {
    let state = AppState::new(db.clone());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, evs) in batches.iter().enumerate() {
        let state = state.clone();
        let evs = evs.clone();
        let g = g as i64 + 1;
        tasks.push(tokio::spawn(async move {
            let j = journal(g);
            for chunk in evs.chunks(UPLOAD) {
                let out = gatehouse::central::ingest::accept_from(&state, g, Some(&j), chunk)
                    .await
                    .unwrap();
                assert_eq!(out.stored as usize, chunk.len());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    rate(batches, t)
}

/// The gates at once posting their uploads to `/sync/v1/events` over mutual TLS.
async fn mtls(db: &Db, url: &str, pki: &SitePki, batches: &[Vec<JournalEvent>]) -> f64 {
    let server = SyncServer::start(AppState::new(db.clone()), Some(url.to_string()), pki).await;
    let bodies: Vec<Vec<Vec<u8>>> = batches
        .iter()
        .enumerate()
        .map(|(g, evs)| {
            evs.chunks(UPLOAD)
                .map(|chunk| {
                    serde_json::to_vec(&EventBatch {
                        gate_id: g as i64 + 1,
                        journal: Some(journal(g as i64 + 1)),
                        events: chunk.to_vec(),
                    })
                    .unwrap()
                })
                .collect()
        })
        .collect();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, gate_bodies) in bodies.into_iter().enumerate() {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(pki.client_tls(g as i64 + 1))
            .build()
            .unwrap();
        let url = format!("{}/sync/v1/events", server.url());
        tasks.push(tokio::spawn(async move {
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
    for task in tasks {
        refused += task.await.unwrap();
    }
    let r = rate(batches, t);
    server.shutdown().await;
    if refused > 0 {
        eprintln!("ingest: {refused} uploads refused and sent again");
    }
    r
}

fn rate(batches: &[Vec<JournalEvent>], since: Instant) -> f64 {
    batches.iter().map(Vec::len).sum::<usize>() as f64 / since.elapsed().as_secs_f64()
}

/// The gates at once writing their rows by binary COPY into `table`: one COPY per upload, or
/// with `bulk` one for all the gate's rows.
async fn copy(pg: &sqlx::PgPool, table: &str, batches: &[Vec<JournalEvent>], bulk: bool) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, evs) in batches.iter().enumerate() {
        let pg = pg.clone();
        let evs = evs.clone();
        let sql = format!("COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)");
        tasks.push(tokio::spawn(async move {
            let mut conn = pg.acquire().await.unwrap();
            let per = if bulk { evs.len().max(1) } else { UPLOAD };
            for chunk in evs.chunks(per) {
                let data = copy_binary(g as i64 + 1, 1, Utc::now().timestamp_millis(), chunk);
                let mut sink = conn.copy_in_raw(&sql).await.unwrap();
                sink.send(data).await.unwrap();
                let n = sink.finish().await.unwrap();
                assert_eq!(n as usize, chunk.len());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rate(batches, t)
}

/// The ingest's own INSERT of the events alone (`repo::events`' statement: the rows as one JSON
/// parameter unpacked by `json_to_recordset`), one transaction per upload, the gates at once:
/// what storing the events costs the ingest before anything else it does.
async fn json_insert(pg: &sqlx::PgPool, table: &str, batches: &[Vec<JournalEvent>]) -> f64 {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        s: i64,
        l: &'a str,
        k: &'a str,
        a: i64,
        p: Option<String>,
        v: Option<i64>,
        m: Option<i64>,
        d: Option<String>,
        g: Option<i64>,
        r: Option<String>,
        b: &'a EventBody,
    }
    let sql = format!(
        "INSERT INTO {table} ({COLUMNS}) SELECT $1, $4, s, l, k, a, $2, p, v, m, d, g, r, \
         b::text FROM json_to_recordset($3::json) AS t(s bigint, l text, k text, a bigint, \
         p text, v bigint, m bigint, d text, g bigint, r text, b json)"
    );
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, evs) in batches.iter().enumerate() {
        let pg = pg.clone();
        let evs = evs.clone();
        let sql = sql.clone();
        tasks.push(tokio::spawn(async move {
            for chunk in evs.chunks(UPLOAD) {
                let rows: Vec<Row> = chunk
                    .iter()
                    .map(|e| {
                        let (p, v, m, d, g, r) = columns(&e.body);
                        Row {
                            s: e.seq as i64,
                            l: &e.lane,
                            k: e.body.kind(),
                            a: e.at.timestamp_millis(),
                            p,
                            v,
                            m,
                            d,
                            g,
                            r,
                            b: &e.body,
                        }
                    })
                    .collect();
                let mut tx = pg.begin().await.unwrap();
                sqlx::query(&sql)
                    .bind(g as i64 + 1)
                    .bind(Utc::now().timestamp_millis())
                    .bind(serde_json::to_string(&rows).unwrap())
                    .bind(1i64)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rate(batches, t)
}

/// The option the issue names: per upload, in one transaction, binary COPY into a temporary
/// staging table (emptied at commit) and one `INSERT … SELECT … ON CONFLICT DO NOTHING
/// RETURNING seq` from it into the events table, the gates at once.
async fn staged(pg: &sqlx::PgPool, table: &str, batches: &[Vec<JournalEvent>]) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, evs) in batches.iter().enumerate() {
        let pg = pg.clone();
        let evs = evs.clone();
        let table = table.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = pg.acquire().await.unwrap();
            sqlx::query(&format!(
                "CREATE TEMPORARY TABLE IF NOT EXISTS staging_events \
                 (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ))
            .execute(&mut *conn)
            .await
            .unwrap();
            let copy_sql = format!("COPY staging_events ({COLUMNS}) FROM STDIN (FORMAT binary)");
            let insert_sql = format!(
                "INSERT INTO {table} ({COLUMNS}) SELECT {COLUMNS} FROM staging_events \
                 ON CONFLICT (gate_id, journal_no, seq) DO NOTHING RETURNING seq"
            );
            for chunk in evs.chunks(UPLOAD) {
                let data = copy_binary(g as i64 + 1, 1, Utc::now().timestamp_millis(), chunk);
                let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
                let mut sink = tx.copy_in_raw(&copy_sql).await.unwrap();
                sink.send(data).await.unwrap();
                sink.finish().await.unwrap();
                let stored = sqlx::query(&insert_sql).fetch_all(&mut *tx).await.unwrap();
                assert_eq!(stored.len(), chunk.len());
                tx.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rate(batches, t)
}

/// `events` as PostgreSQL's binary COPY format: the signature, no flags, no extension; each
/// row its field count and each field its length (-1: NULL) and bytes, in network order; the
/// trailer.
fn copy_binary(gate: i64, journal_no: i64, received: i64, events: &[JournalEvent]) -> Vec<u8> {
    fn int(b: &mut Vec<u8>, v: i64) {
        b.extend_from_slice(&8i32.to_be_bytes());
        b.extend_from_slice(&v.to_be_bytes());
    }
    fn text(b: &mut Vec<u8>, v: &str) {
        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    fn null(b: &mut Vec<u8>) {
        b.extend_from_slice(&(-1i32).to_be_bytes());
    }
    let mut b = Vec::with_capacity(19 + events.len() * 600);
    b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    for e in events {
        let (plate, vehicle, permit, direction, granted, reason) = columns(&e.body);
        b.extend_from_slice(&14i16.to_be_bytes());
        int(&mut b, gate);
        int(&mut b, journal_no);
        int(&mut b, e.seq as i64);
        text(&mut b, &e.lane);
        text(&mut b, e.body.kind());
        int(&mut b, e.at.timestamp_millis());
        int(&mut b, received);
        match &plate {
            Some(p) => text(&mut b, p),
            None => null(&mut b),
        }
        for v in [vehicle, permit] {
            match v {
                Some(v) => int(&mut b, v),
                None => null(&mut b),
            }
        }
        match &direction {
            Some(d) => text(&mut b, d),
            None => null(&mut b),
        }
        match granted {
            Some(g) => int(&mut b, g),
            None => null(&mut b),
        }
        match &reason {
            Some(r) => text(&mut b, r),
            None => null(&mut b),
        }
        text(&mut b, &serde_json::to_string(&e.body).unwrap());
    }
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b
}

/// The gates at once writing their rows into `table` by multi-row INSERTs of `per_stmt` rows,
/// one transaction per upload; no duplicate check, watermark, statistics or presence.
async fn insert(db: &Db, table: &str, batches: &[Vec<JournalEvent>], per_stmt: usize) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (g, evs) in batches.iter().enumerate() {
        let db = db.clone();
        let evs = evs.clone();
        let table = table.to_string();
        tasks.push(tokio::spawn(async move {
            let gate = g as i64 + 1;
            // SQLite takes one writer at a time: wait for the lock rather than fail.
            for batch in evs.chunks(UPLOAD) {
                let mut tx = db.begin().await.unwrap();
                for chunk in batch.chunks(per_stmt) {
                    let mut sql = format!("INSERT INTO {table} ({COLUMNS}) VALUES ");
                    for i in 0..chunk.len() {
                        if i > 0 {
                            sql.push(',');
                        }
                        sql.push('(');
                        for c in 0..14 {
                            if c > 0 {
                                sql.push(',');
                            }
                            sql.push_str(&format!("${}", i * 14 + c + 1));
                        }
                        sql.push(')');
                    }
                    let mut q = sqlx::query(&sql);
                    let received = Utc::now().timestamp_millis();
                    for e in chunk {
                        let (plate, vehicle, permit, direction, granted, reason) = columns(&e.body);
                        q = q
                            .bind(gate)
                            .bind(1i64)
                            .bind(e.seq as i64)
                            .bind(e.lane.clone())
                            .bind(e.body.kind())
                            .bind(e.at.timestamp_millis())
                            .bind(received)
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
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    rate(batches, t)
}

/// The rows of `table` (count, and a SHA-256 over every column but the receiving time, in key
/// order).
async fn digest(db: &Db, table: &str) -> (i64, String) {
    let rows = sqlx::query(&format!(
        "SELECT gate_id, journal_no, seq, lane, kind, at_ms, plate, vehicle_id, permit_id, \
         direction, granted, reason, body FROM {table} ORDER BY gate_id, journal_no, seq"
    ))
    .fetch_all(db.pool())
    .await
    .unwrap();
    let mut h = sha2::Sha256::new();
    for r in &rows {
        let key = format!(
            "{}|{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}\n",
            r.get::<i64, _>("gate_id"),
            r.get::<i64, _>("journal_no"),
            r.get::<i64, _>("seq"),
            r.get::<String, _>("lane"),
            r.get::<String, _>("kind"),
            r.get::<i64, _>("at_ms"),
            r.get::<Option<String>, _>("plate"),
            r.get::<Option<i64>, _>("vehicle_id"),
            r.get::<Option<i64>, _>("permit_id"),
            r.get::<Option<String>, _>("direction"),
            r.get::<Option<i64>, _>("granted"),
            r.get::<Option<String>, _>("reason"),
            r.get::<String, _>("body"),
        );
        h.update(key.as_bytes());
    }
    (rows.len() as i64, hex::encode(h.finalize()))
}

/// The ingest counted every passage in the flows, resolved the seeded vehicles' category and
/// recorded their presence.
async fn check_statistics(db: &Db) {
    let passages: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM passage_events WHERE kind = 'passage' \
         AND direction IN ('entry', 'exit')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let counted: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(passages), 0) AS BIGINT) FROM stats_flows \
         WHERE category = 'staff'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(counted, passages, "every passage counted, as staff");
    let present: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vehicle_presence")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(passages == 0 || present > 0, "presence recorded");
}

/// Gates `1..=gates` and their vehicles, persons, permits and tags, straight into the centre.
async fn seed(db: &Db, gates: i64) {
    for g in 1..=gates {
        sqlx::query("INSERT INTO gates (id, name, created_ms, updated_ms) VALUES ($1, $2, 0, 0)")
            .bind(g)
            .bind(format!("门{g}"))
            .execute(db.pool())
            .await
            .unwrap();
    }
    let n = gates * VEHICLES_PER_GATE;
    let mut tx = db.pool().begin().await.unwrap();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(100) {
        let rows =
            |f: &dyn Fn(i64) -> String| chunk.iter().map(|&i| f(i)).collect::<Vec<_>>().join(",");
        let stmts = [
            format!(
                "INSERT INTO persons (id, name, category, department, created_ms, updated_ms) \
                 VALUES {}",
                rows(&|i| format!("({i}, '持证人{i}', 'staff', '计算机学院', 0, 0)"))
            ),
            format!(
                "INSERT INTO vehicles (id, plate, plate_colour, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '{}', 'blue', 0, 0)", plate(i)))
            ),
            format!(
                "INSERT INTO permits (id, category, holder_id, valid_from_ms, valid_until_ms, \
                 gates, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, 'staff', {i}, 0, 4102444800000, 'all', 0, 0)"))
            ),
            format!(
                "INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES {}",
                rows(&|i| format!("({i}, {i})"))
            ),
            format!(
                "INSERT INTO credentials (id, epc, vehicle_id, created_ms, updated_ms) VALUES {}",
                rows(&|i| format!("({i}, '{}', {i}, 0, 0)", epc(i)))
            ),
        ];
        for s in stmts {
            sqlx::query(&s).execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    if db.kind() == DbKind::Postgres {
        sqlx::query("ANALYZE").execute(db.pool()).await.unwrap();
    }
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

/// `n` events of gate `gate`'s journal as its lanes write them (see the header).
fn synthetic(gate: i64, n: usize) -> Vec<JournalEvent> {
    let t0 = Utc::now() - chrono::Duration::hours(48);
    let mut out: Vec<JournalEvent> = Vec::with_capacity(n + 4);
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
