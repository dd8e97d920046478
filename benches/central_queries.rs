//! Central database benchmark: fills SQLite (a temporary file) and, when `DATABASE_URL` is set, a
//! fresh PostgreSQL database with passage events (10,000,000 by default;
//! `GATEHOUSE_BENCH_EVENTS` to change) through the repository's batched ingest, plus 100,000
//! persons with one permit each across 50 departments, then times three office queries (median
//! of several runs) and prints their query plans:
//!
//! - `plate_30d`: the events of one plate in the last 30 days (first page);
//! - `gate_page_1000`: page 1,000 (50 per page) of one gate's events, with the total;
//! - `department_permits`: every permit held by people of one department.
//!
//! Measures, does not assert; prints one `name value unit` line per figure (plans as `plan …`
//! lines). Run: `cargo bench --bench central_queries`.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use gatehouse::central::db::Filter;
use gatehouse::central::db::{Db, DbKind, Page};
use gatehouse::central::repo::events::{self, EventQuery};
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};
use sqlx::Row;

const GATES: i64 = 20;
const PLATES: u64 = 100_000;
const PERSONS: i64 = 100_000;
const DEPARTMENTS: i64 = 50;
/// Events per ingest call (one transaction), as a reconnecting gate would upload them.
const UPLOAD: u64 = 5_000;
const RUNS: usize = 9;
const DAY_MS: i64 = 86_400_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n: u64 = std::env::var("GATEHOUSE_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000_000);
        println!("events {n} count");
        // GATEHOUSE_BENCH_STORES=sqlite|postgres measures one store only (default: both).
        let stores = std::env::var("GATEHOUSE_BENCH_STORES").unwrap_or_default();
        let wants = |store: &str| stores.is_empty() || stores == store;
        let dir = tempfile::tempdir().unwrap();
        if wants("sqlite") {
            let sqlite = Db::open_sqlite(&dir.path().join("bench.db")).await.unwrap();
            run("sqlite", &sqlite, n).await;
            sqlite.close().await;
        }
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
            && wants("postgres")
        {
            let name = format!("gatehouse_bench_{}", std::process::id());
            let admin = Db::connect(&url).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(admin.pool())
                .await
                .unwrap();
            let base = &url[..url.rfind('/').unwrap()];
            let pg = Db::open(&format!("{base}/{name}")).await.unwrap();
            run("postgres", &pg, n).await;
            pg.close().await;
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(admin.pool())
                .await
                .unwrap();
            admin.close().await;
        }
    });
}

fn plate(k: u64) -> String {
    format!("京A{k:05}")
}

fn event(seq: u64, at_ms: i64, k: u64) -> JournalEvent {
    let granted = !k.is_multiple_of(10);
    JournalEvent {
        seq,
        at: Utc.timestamp_millis_opt(at_ms).unwrap(),
        lane: if k.is_multiple_of(2) { "entry" } else { "exit" }.into(),
        body: EventBody::Decision(DecisionRecord {
            direction: if k.is_multiple_of(2) { "entry" } else { "exit" }.into(),
            credential: "tag".into(),
            epc: Some(format!("E20030988819{k:012X}")),
            tid: None,
            antenna: Some(1),
            rssi_dbm: Some(-55),
            plate: Some(plate(k % PLATES)),
            granted,
            reason: if granted {
                ReasonCode::Granted
            } else {
                ReasonCode::DeniedExpired
            },
            flags: vec![],
            permit_id: Some((k % PLATES) as i64 + 1),
            vehicle_id: Some((k % PLATES) as i64 + 1),
            holder: None,
            category: Some("staff".into()),
            data_version: 1,
            decide_ns: 900,
            camera: None,
            pass: None,
        }),
    }
}

async fn run(kind: &str, db: &Db, n: u64) {
    let now = Utc::now().timestamp_millis();
    let span = 365 * DAY_MS;
    let start = now - span;

    // Persons and permits, 500 rows per statement.
    let t = Instant::now();
    let mut tx = db.pool().begin().await.unwrap();
    for chunk in (1..=PERSONS).collect::<Vec<_>>().chunks(500) {
        let mut w = Filter::new();
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let (id, name, dep) = (
                    w.arg(*i),
                    w.arg(format!("P{i}")),
                    w.arg(format!("D{:02}", i % DEPARTMENTS)),
                );
                format!("({id}, {name}, 'staff', {dep}, 0, 0)")
            })
            .collect();
        let sql = format!(
            "INSERT INTO persons (id, name, category, department, created_ms, updated_ms) VALUES {}",
            rows.join(", ")
        );
        w.bind(sqlx::query(&sql)).execute(&mut *tx).await.unwrap();
        let mut w = Filter::new();
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| {
                let (id, from, until) = (w.arg(*i), w.arg(start), w.arg(now + span));
                format!("({id}, 'staff', {id}, {from}, {until}, 0, 0)")
            })
            .collect();
        let sql = format!(
            "INSERT INTO permits (id, category, holder_id, valid_from_ms, valid_until_ms, \
             created_ms, updated_ms) VALUES {}",
            rows.join(", ")
        );
        w.bind(sqlx::query(&sql)).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    println!(
        "{kind}.fill_persons_permits {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Passage events through the repository's ingest: uploads of UPLOAD events, round-robin over
    // the gates, times spread evenly over the last year.
    let t = Instant::now();
    let mut next_seq = vec![1u64; GATES as usize];
    let mut k = 0u64;
    let mut upload = 0i64;
    while k < n {
        let gate = upload % GATES;
        let len = UPLOAD.min(n - k);
        let batch: Vec<JournalEvent> = (0..len)
            .map(|j| {
                let i = k + j;
                let seq = next_seq[gate as usize] + j;
                event(
                    seq,
                    start + (i as i128 * span as i128 / n as i128) as i64,
                    i,
                )
            })
            .collect();
        let out = events::ingest(db, chrono_tz::Asia::Shanghai, gate + 1, &batch)
            .await
            .unwrap();
        assert_eq!(out.stored, len);
        next_seq[gate as usize] += len;
        k += len;
        upload += 1;
        if upload % 200 == 0 {
            eprintln!(
                "{kind}: {k} events, {:.0}/s",
                k as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{kind}.fill_events {secs:.1} s");
    println!("{kind}.fill_rate {:.0} events/s", n as f64 / secs);
    let analyze = if db.kind() == DbKind::Postgres {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    sqlx::query(analyze).execute(db.pool()).await.unwrap();

    // 1. The events of plate X in the last 30 days.
    // The plate of the newest event: it has events in the last 30 days at any count.
    let x = plate((n - 1) % PLATES);
    let q1 = EventQuery {
        plate: Some(x.clone()),
        from_ms: Some(now - 30 * DAY_MS),
        ..Default::default()
    };
    let (d, found) = median(|| async {
        events::search(db, &q1, Page::default())
            .await
            .unwrap()
            .total
    })
    .await;
    println!("{kind}.plate_30d {:.3} ms ({found} events)", ms(d));
    // 2. Page 1,000 of gate Y's events.
    let q2 = EventQuery {
        gate_id: Some(7),
        ..Default::default()
    };
    let page = Page {
        limit: 50,
        offset: 999 * 50,
    };
    let (d, total) = median(|| async { events::search(db, &q2, page).await.unwrap().total }).await;
    println!("{kind}.gate_page_1000 {:.3} ms (of {total} events)", ms(d));
    // 3. All permits of department Z (plain SQL, the statement whose plan is printed below).
    let q3 = "SELECT p.id, p.category, p.valid_from_ms, p.valid_until_ms, p.status FROM permits p \
              JOIN persons h ON h.id = p.holder_id WHERE h.department = $1 ORDER BY p.id";
    let (d, rows) = median(|| async {
        sqlx::query(q3)
            .bind("D17")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .len()
    })
    .await;
    println!("{kind}.department_permits {:.3} ms ({rows} permits)", ms(d));

    // The plans (the same SQL the repository builds for these filters).
    let order = "ORDER BY at_ms DESC, gate_id DESC, seq DESC LIMIT 50 OFFSET 49950";
    for (name, sql, args) in [
        (
            "plate_30d",
            format!("SELECT * FROM passage_events WHERE plate = $1 AND at_ms >= $2 {order}"),
            vec![x.clone(), (now - 30 * DAY_MS).to_string()],
        ),
        (
            "plate_30d_count",
            "SELECT COUNT(*) FROM passage_events WHERE plate = $1 AND at_ms >= $2".to_string(),
            vec![x.clone(), (now - 30 * DAY_MS).to_string()],
        ),
        (
            "gate_page_1000",
            format!("SELECT * FROM passage_events WHERE gate_id = $1 {order}"),
            vec!["7".into()],
        ),
        (
            "gate_count",
            "SELECT COUNT(*) FROM passage_events WHERE gate_id = $1".to_string(),
            vec!["7".into()],
        ),
        ("department_permits", q3.to_string(), vec!["D17".into()]),
    ] {
        // Literal values: EXPLAIN through the Any driver cannot bind on every database.
        let mut sql = sql;
        for (i, a) in args.iter().enumerate().rev() {
            let lit = if a.parse::<i64>().is_ok() {
                a.clone()
            } else {
                format!("'{a}'")
            };
            sql = sql.replace(&format!("${}", i + 1), &lit);
        }
        let explain = match db.kind() {
            DbKind::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
            DbKind::Postgres => format!("EXPLAIN {sql}"),
        };
        let rows = sqlx::query(&explain).fetch_all(db.pool()).await.unwrap();
        let lines: Vec<String> = rows
            .iter()
            .map(|r| match db.kind() {
                DbKind::Sqlite => r.try_get::<String, _>(3).unwrap(),
                DbKind::Postgres => r.try_get::<String, _>(0).unwrap(),
            })
            .collect();
        let full_scan = lines.iter().any(|l| {
            (l.contains("SCAN passage_events") && !l.contains("INDEX"))
                || (l.contains("SCAN permits") && !l.contains("INDEX"))
                || l.contains("Seq Scan on passage_events")
                || l.contains("Seq Scan on permits")
        });
        println!("{kind}.{name}.uses_index {} bool", u8::from(!full_scan));
        for l in lines {
            println!("plan {kind}.{name}: {}", l.trim_end());
        }
    }
}

async fn median<F, Fut, T>(f: F) -> (Duration, T)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    (times[RUNS / 2], last.unwrap())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
