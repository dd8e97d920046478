//! Statistics benchmark: fills SQLite (a temporary file) and, when `DATABASE_URL` is set, a fresh
//! PostgreSQL database with passage events (10,000,000 by default; `GATEHOUSE_BENCH_EVENTS` to
//! change; `GATEHOUSE_BENCH_STORES=sqlite|postgres` for one store) through the real ingest, which
//! keeps the statistics current as it stores, over 365 days, 8 gates and 50,000 registered
//! vehicles with permits in four categories. Then it prints:
//!
//! - `fill_rate`: events per second through the ingest (statistics included);
//! - `ingest_per_event` and `stats_per_event`: the cost per event of a 5,000-event upload, and
//!   of the statistics update alone (`central::traffic::apply` on the same events, rolled back) —
//!   their difference is what storing an event costs without statistics;
//! - each dashboard query's time (median of 9 runs): flows today and over 30 days, occupancy,
//!   overstays, visitors, denials and manual opens over 30 days, peak hours over 365 days, the
//!   week comparison. The dashboard's aim is 100 ms or less each.
//!
//! Measures, does not assert; one `name value unit` line per figure. Run:
//! `cargo bench --bench statistics`.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use gatehouse::central::db::Db;
use gatehouse::central::repo::events;
use gatehouse::central::repo::stats::{self, Days};
use gatehouse::central::traffic::{apply, site_today};
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};

const GATES: i64 = 8;
const VEHICLES: i64 = 50_000;
/// Plates that are not registered (visitors, strangers).
const STRANGERS: u64 = 20_000;
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
            let name = format!("gatehouse_stats_bench_{}", std::process::id());
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

fn registered_plate(v: i64) -> String {
    format!("京A{v:05}")
}

/// Event `k` at `at_ms`: 45 % passages (registered vehicles mostly, some strangers), 45 %
/// decisions (one in ten denied), 1 % guard overrides, the rest barrier commands.
fn event(seq: u64, at_ms: i64, k: u64) -> JournalEvent {
    let at = Utc.timestamp_millis_opt(at_ms).unwrap();
    let entry = (k / 7).is_multiple_of(2);
    let direction = if entry { "entry" } else { "exit" };
    let registered = !k.is_multiple_of(5);
    let v = (k % VEHICLES as u64) as i64 + 1;
    let plate = if registered {
        registered_plate(v)
    } else {
        format!("沪B{:05}", k % STRANGERS)
    };
    let body = match k % 100 {
        0..45 => EventBody::Passage {
            direction: direction.into(),
            plate: Some(plate),
            vehicle_id: registered.then_some(v),
            permit_id: registered.then_some(v),
        },
        45..90 => {
            let granted = !k.is_multiple_of(10);
            EventBody::Decision(DecisionRecord {
                direction: direction.into(),
                credential: "tag".into(),
                epc: None,
                tid: None,
                antenna: Some(1),
                rssi_dbm: Some(-55),
                plate: Some(plate),
                granted,
                reason: if granted {
                    ReasonCode::Granted
                } else {
                    [
                        ReasonCode::DeniedExpired,
                        ReasonCode::DeniedUnknownPlate,
                        ReasonCode::DeniedPassback,
                    ][(k % 3) as usize]
                },
                flags: vec![],
                permit_id: registered.then_some(v),
                vehicle_id: registered.then_some(v),
                holder: None,
                category: None,
                data_version: 1,
                decide_ns: 900,
                camera: None,
                pass: None,
            })
        }
        90 => EventBody::Override {
            operator: format!("guard{}", k % 12),
            action: "open".into(),
            reason: "visitor_registered".into(),
            note: None,
            plate: None,
        },
        _ => EventBody::Barrier {
            action: gatehouse::wire::journal::BarrierAction::Open,
            cause: "grant".into(),
        },
    };
    JournalEvent {
        seq,
        at,
        lane: direction.into(),
        body,
    }
}

async fn fixtures(db: &Db) {
    let categories = ["staff", "student", "family", "contractor"];
    sqlx::query(
        "INSERT INTO persons (name, category, department, created_ms, updated_ms) \
         VALUES ('bench', 'staff', 'D1', 0, 0)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    for v in 1..=VEHICLES {
        sqlx::query(
            "INSERT INTO vehicles (plate, plate_colour, owner_id, created_ms, updated_ms) \
             VALUES ($1, 'blue', 1, 0, 0)",
        )
        .bind(registered_plate(v))
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO permits (category, holder_id, valid_from_ms, valid_until_ms, created_ms, \
             updated_ms) VALUES ($1, 1, 0, 4102444800000, 0, 0)",
        )
        .bind(categories[(v % 4) as usize])
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES ($1, $1)")
            .bind(v)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn run(kind: &str, db: &Db, n: u64) {
    fixtures(db).await;
    let now = Utc::now().timestamp_millis();
    let span = 365 * DAY_MS;
    let start = now - span;
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
                event(
                    next_seq[gate as usize] + j,
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
    let analyze = if db.kind() == gatehouse::central::db::DbKind::Postgres {
        "VACUUM ANALYZE"
    } else {
        "ANALYZE"
    };
    sqlx::query(analyze).execute(db.pool()).await.unwrap();

    // The cost per event of one more upload (the last hour's traffic), and of its statistics
    // alone on the same events (rolled back, so nothing counts twice).
    let gate = 1;
    let sample: Vec<JournalEvent> = (0..UPLOAD)
        .map(|j| event(next_seq[0] + j, now - 3_600_000 + j as i64 * 700, n + j))
        .collect();
    let t = Instant::now();
    events::ingest(db, chrono_tz::Asia::Shanghai, gate, &sample)
        .await
        .unwrap();
    let ingest = t.elapsed();
    let refs: Vec<&JournalEvent> = sample.iter().collect();
    let mut tx = db.pool().begin().await.unwrap();
    let t = Instant::now();
    apply(&mut tx, chrono_tz::Asia::Shanghai, gate, &refs)
        .await
        .unwrap();
    let stats_only = t.elapsed();
    tx.rollback().await.unwrap();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / UPLOAD as f64;
    println!("{kind}.ingest_per_event {:.1} us", per(ingest));
    println!("{kind}.stats_per_event {:.1} us", per(stats_only));
    println!(
        "{kind}.ingest_without_stats_per_event {:.1} us",
        per(ingest.saturating_sub(stats_only))
    );

    let today = site_today(chrono_tz::Asia::Shanghai, now);
    let last30 = Days {
        from: today - chrono::Duration::days(29),
        to: today,
    };
    let year = Days {
        from: today - chrono::Duration::days(364),
        to: today,
    };
    let day = Days {
        from: today,
        to: today,
    };
    let (d, rows) = median(|| async { stats::flows(db, day, None).await.unwrap().len() }).await;
    println!("{kind}.stats_flows_today {:.3} ms ({rows} rows)", ms(d));
    let (d, rows) = median(|| async { stats::flows(db, last30, None).await.unwrap().len() }).await;
    println!("{kind}.stats_flows_30d {:.3} ms ({rows} rows)", ms(d));
    let (d, total) = median(|| async { stats::occupancy(db).await.unwrap().total }).await;
    println!("{kind}.stats_occupancy {:.3} ms ({total} inside)", ms(d));
    let (d, rows) = median(|| async { stats::overstays(db, now).await.unwrap().len() }).await;
    println!("{kind}.stats_overstays {:.3} ms ({rows} rows)", ms(d));
    let (d, rows) = median(|| async { stats::visitors(db, last30).await.unwrap().len() }).await;
    println!("{kind}.stats_visitors_30d {:.3} ms ({rows} days)", ms(d));
    let (d, rows) = median(|| async { stats::denials(db, last30).await.unwrap().len() }).await;
    println!("{kind}.stats_denials_30d {:.3} ms ({rows} rows)", ms(d));
    let (d, rows) = median(|| async { stats::manual_opens(db, last30).await.unwrap().len() }).await;
    println!(
        "{kind}.stats_manual_opens_30d {:.3} ms ({rows} rows)",
        ms(d)
    );
    let (d, peaks) = median(|| async { stats::peak_hours(db, year).await.unwrap().peaks }).await;
    println!(
        "{kind}.stats_peak_hours_365d {:.3} ms (peaks {peaks:?})",
        ms(d)
    );
    let (d, total) = median(|| async {
        stats::week_comparison(db, today)
            .await
            .unwrap()
            .this_week_total
    })
    .await;
    println!(
        "{kind}.stats_week_comparison {:.3} ms ({total} this week)",
        ms(d)
    );
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
