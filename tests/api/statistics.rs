//! Traffic statistics: a known traffic pattern driven through the real ingest path
//! (`central::ingest::accept`), with repeats inside uploads, re-sent uploads, gaps and uploads out
//! of time order across gates, and every figure checked exactly through the API — hourly flows,
//! vehicles on campus, overstays, visitors, denials by reason, manual opens, peak hours and the
//! week comparison — then the exports (XLSX read back with calamine, CSV with BOM and header) and
//! the printable daily report. Visitors registered at the booth, whose cars the guard lets
//! through, count as visitors (visitors per day, overstays), not as unregistered.

use std::io::Cursor;

use axum::http::{Method, StatusCode};
use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::ingest::accept;
use gatehouse::central::live::LiveMessage;
use gatehouse::central::state::AppState;
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};
use serde_json::{Value, json};

use crate::harness::{TestApp, each_database};
use crate::outside_vehicles as ov;

/// The test day, a Monday, in Shanghai: 2026-03-02.
const DAY: &str = "2026-03-02";

/// `h:m` on `DAY` in Shanghai (UTC+8).
fn on_day(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap() - chrono::Duration::hours(8)
}

/// `h:m` on Tuesday of the week before, in Shanghai.
fn last_week(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 24, h, m, 0).unwrap() - chrono::Duration::hours(8)
}

fn passage(
    seq: u64,
    at: DateTime<Utc>,
    direction: &str,
    plate: &str,
    vehicle_id: Option<i64>,
    permit_id: Option<i64>,
) -> JournalEvent {
    JournalEvent {
        seq,
        at,
        lane: direction.into(),
        body: EventBody::Passage {
            direction: direction.into(),
            plate: Some(plate.into()),
            vehicle_id,
            permit_id,
        },
    }
}

fn decision(seq: u64, at: DateTime<Utc>, plate: &str, reason: &str) -> JournalEvent {
    JournalEvent {
        seq,
        at,
        lane: "entry".into(),
        body: EventBody::Decision(DecisionRecord {
            direction: "entry".into(),
            credential: "plate".into(),
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: Some(plate.into()),
            granted: reason.starts_with("granted"),
            reason: ReasonCode::from_code(reason).expect("a reason code"),
            flags: vec![],
            permit_id: None,
            vehicle_id: None,
            holder: None,
            category: None,
            data_version: 1,
            decide_ns: 1000,
            camera: None,
            pass: None,
        }),
    }
}

fn guard(seq: u64, at: DateTime<Utc>, action: &str, reason: &str) -> JournalEvent {
    JournalEvent {
        seq,
        at,
        lane: "entry".into(),
        body: EventBody::Override {
            operator: "guard".into(),
            action: action.into(),
            reason: reason.into(),
            note: None,
            plate: None,
        },
    }
}

async fn insert_id(app: &TestApp, sql: &str, binds: &[&str]) -> i64 {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    let row = q.fetch_one(app.db.pool()).await.unwrap();
    sqlx::Row::try_get(&row, "id").unwrap()
}

/// Fixtures: a staff permit for 京A12345, a student permit for 京B23456, approved visitor
/// bookings for 沪C34567 (08:00–10:00) and 苏G55555 (09:00–10:00). Returns (vehicle 1,
/// vehicle 2, staff permit, first booking).
async fn fixtures(app: &TestApp) -> (i64, i64, i64, i64) {
    let person = insert_id(
        app,
        "INSERT INTO persons (name, category, department, created_ms, updated_ms) \
         VALUES ('张三', 'staff', '计算机学院', 0, 0) RETURNING id",
        &[],
    )
    .await;
    let mut vehicles = vec![];
    for plate in ["京A12345", "京B23456"] {
        vehicles.push(
            insert_id(
                app,
                &format!(
                    "INSERT INTO vehicles (plate, plate_colour, owner_id, created_ms, updated_ms) \
                     VALUES ($1, 'blue', {person}, 0, 0) RETURNING id"
                ),
                &[plate],
            )
            .await,
        );
    }
    let mut permits = vec![];
    for (category, vehicle) in [("staff", vehicles[0]), ("student", vehicles[1])] {
        let id = insert_id(
            app,
            &format!(
                "INSERT INTO permits (category, holder_id, valid_from_ms, valid_until_ms, \
                 created_ms, updated_ms) VALUES ($1, {person}, 0, 4102444800000, 0, 0) RETURNING id"
            ),
            &[category],
        )
        .await;
        sqlx::query("INSERT INTO permit_vehicles (permit_id, vehicle_id) VALUES ($1, $2)")
            .bind(id)
            .bind(vehicle)
            .execute(app.db.pool())
            .await
            .unwrap();
        permits.push(id);
    }
    let mut bookings = vec![];
    for (plate, from, until) in [
        ("沪C34567", on_day(8, 0), on_day(10, 0)),
        ("苏G55555", on_day(9, 0), on_day(10, 0)),
    ] {
        bookings.push(
            insert_id(
                app,
                &format!(
                    "INSERT INTO visitor_bookings (host_id, department, plate, slot_from_ms, \
                     slot_until_ms, status, created_ms, updated_ms) VALUES ({person}, '计算机学院', \
                     $1, {}, {}, 'approved', 0, 0) RETURNING id",
                    from.timestamp_millis(),
                    until.timestamp_millis()
                ),
                &[plate],
            )
            .await,
        );
    }
    (vehicles[0], vehicles[1], permits[0], bookings[0])
}

/// The stored seqs the live view was told about, from every message waiting.
fn published(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<LiveMessage>>,
) -> Vec<(i64, Vec<u64>)> {
    let mut out = vec![];
    while let Ok(m) = rx.try_recv() {
        let LiveMessage::Events { gate_id, events } = &*m else {
            continue;
        };
        out.push((*gate_id, events.iter().map(|e| e.seq).collect()));
    }
    out
}

async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.call(Method::GET, path, Some(Role::Viewer), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Drives the pattern; returns the first booking's id.
async fn drive(app: &TestApp) -> i64 {
    let (v1, v2, staff_permit, booking) = fixtures(app).await;
    let g1 = vec![
        decision(1, on_day(7, 9), "京A12345", "granted"),
        passage(
            2,
            on_day(7, 10),
            "entry",
            "京A12345",
            Some(v1),
            Some(staff_permit),
        ),
        decision(3, on_day(7, 20), "京D99999", "denied_unknown_plate"),
        decision(4, on_day(7, 25), "京D99999", "denied_unknown_plate"),
        guard(5, on_day(7, 40), "open", "visitor_registered"),
        passage(6, on_day(7, 41), "entry", "京D99999", None, None),
        // Spelled in lower case: normalised like every plate.
        passage(7, on_day(8, 5), "entry", "沪c34567", None, None),
        passage(8, on_day(8, 30), "entry", "京B23456", Some(v2), None),
        decision(9, on_day(9, 15), "京A12345", "denied_wrong_direction"),
        guard(10, on_day(9, 30), "open", "police_fire_ambulance"),
        passage(
            11,
            on_day(17, 45),
            "exit",
            "京A12345",
            Some(v1),
            Some(staff_permit),
        ),
        passage(12, last_week(10, 0), "entry", "京F00001", None, None),
        passage(13, last_week(10, 30), "exit", "京F00001", None, None),
    ];
    let g2 = vec![
        passage(1, on_day(12, 0), "exit", "京B23456", Some(v2), None),
        passage(2, on_day(12, 30), "entry", "京B23456", Some(v2), None),
        guard(3, on_day(12, 31), "open", "visitor_registered"),
        decision(4, on_day(13, 0), "京E11111", "denied_blacklisted"),
        // Earlier by the clock than the three above, later by sequence.
        passage(5, on_day(8, 10), "exit", "京D99999", None, None),
        passage(6, on_day(9, 5), "entry", "苏G55555", None, None),
        // After the booking's slot: still a visitor, by the entry it follows.
        passage(7, on_day(10, 40), "exit", "苏G55555", None, None),
        guard(8, on_day(13, 5), "keep_closed", "visitor_registered"),
    ];
    let state = AppState::new(app.db.clone());
    let mut rx = state.live.subscribe();

    // Gate 2 sends its newest events first (a gap below them)…
    let a = accept(&state, 2, &g2[4..]).await.unwrap();
    assert_eq!((a.stored, a.duplicates, a.highest_contiguous), (4, 0, 0));
    assert_eq!(a.stored_seqs, vec![5, 6, 7, 8]);
    // …gate 1 an upload with repeats inside it…
    let mut upload: Vec<JournalEvent> = g1[..7].to_vec();
    upload.push(g1[2].clone());
    upload.push(g1[6].clone());
    let b = accept(&state, 1, &upload).await.unwrap();
    assert_eq!((b.stored, b.duplicates, b.highest_contiguous), (7, 2, 7));
    // …gate 2 everything (four already stored)…
    let c = accept(&state, 2, &g2).await.unwrap();
    assert_eq!((c.stored, c.duplicates, c.highest_contiguous), (4, 4, 8));
    assert_eq!(c.stored_seqs, vec![1, 2, 3, 4]);
    // …gate 1 the rest, overlapping what it sent…
    let d = accept(&state, 1, &g1[4..]).await.unwrap();
    assert_eq!((d.stored, d.duplicates, d.highest_contiguous), (6, 3, 13));
    // …and gate 1 re-sends everything: nothing is stored, counted or published again.
    let e = accept(&state, 1, &g1).await.unwrap();
    assert_eq!((e.stored, e.duplicates, e.highest_contiguous), (0, 13, 13));
    assert!(e.stored_seqs.is_empty());

    assert_eq!(
        published(&mut rx),
        vec![
            (2, vec![5, 6, 7, 8]),
            (1, vec![1, 2, 3, 4, 5, 6, 7]),
            (2, vec![1, 2, 3, 4]),
            (1, vec![8, 9, 10, 11, 12, 13]),
        ],
        "exactly the stored events are published, once each, in order"
    );
    booking
}

#[tokio::test]
async fn a_known_traffic_pattern_through_the_real_ingest_gives_every_figure_exactly() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let booking = drive(&app).await;

        // Hourly flows: (hour, gate, direction, category, passages), in the API's order.
        let flows = get(&app, &format!("/api/v1/stats/flows?from={DAY}")).await;
        let got: Vec<(i64, i64, &str, &str, i64)> = flows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["day"], DAY);
                (
                    r["hour"].as_i64().unwrap(),
                    r["gate_id"].as_i64().unwrap(),
                    r["direction"].as_str().unwrap(),
                    r["category"].as_str().unwrap(),
                    r["passages"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (7, 1, "entry", "staff", 1),
                (7, 1, "entry", "unregistered", 1),
                (8, 1, "entry", "student", 1),
                (8, 1, "entry", "visitor", 1),
                (8, 2, "exit", "unregistered", 1),
                (9, 2, "entry", "visitor", 1),
                (10, 2, "exit", "visitor", 1),
                (12, 2, "entry", "student", 1),
                (12, 2, "exit", "student", 1),
                (17, 1, "exit", "staff", 1),
            ],
            "{:?}",
            app.kind
        );
        assert_eq!(
            flows[0]["hour_start"],
            json!(on_day(7, 0).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        );
        let gate2 = get(&app, &format!("/api/v1/stats/flows?from={DAY}&gate_id=2")).await;
        assert_eq!(gate2.as_array().unwrap().len(), 5);

        // On campus now: 京B23456 (re-entered at 12:30) and the overstaying visitor 沪C34567.
        // 京D99999's exit arrived before its entry and still wins (later by the clock).
        assert_eq!(
            get(&app, "/api/v1/stats/occupancy").await,
            json!({"total": 2, "by_category": [
                {"category": "student", "vehicles": 1},
                {"category": "visitor", "vehicles": 1},
            ]})
        );

        let before = Utc::now();
        let overstays = get(&app, "/api/v1/stats/overstays").await;
        let after = Utc::now();
        let list = overstays.as_array().unwrap();
        assert_eq!(list.len(), 1, "{overstays}");
        let o = &list[0];
        assert_eq!(o["plate"], "沪C34567");
        assert_eq!(o["vehicle_key"], "p:沪C34567");
        assert_eq!(o["category"], "visitor");
        assert_eq!(o["gate_id"], 1);
        assert_eq!(o["booking_id"], booking);
        let leave = on_day(10, 0);
        assert_eq!(
            o["expected_leave_at"],
            json!(leave.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        );
        assert_eq!(
            o["entered_at"],
            json!(on_day(8, 5).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        );
        let overdue = o["overdue_minutes"].as_i64().unwrap();
        assert!(
            ((before - leave).num_minutes()..=(after - leave).num_minutes()).contains(&overdue),
            "{overdue}"
        );

        assert_eq!(
            get(
                &app,
                &format!("/api/v1/stats/visitors?from=2026-03-01&to={DAY}")
            )
            .await,
            json!([
                {"day": "2026-03-01", "entries": 0, "vehicles": 0},
                {"day": DAY, "entries": 2, "vehicles": 2},
            ])
        );
        assert_eq!(
            get(&app, &format!("/api/v1/stats/denials?from={DAY}")).await,
            json!([
                {"day": DAY, "gate_id": 1, "reason": "denied_unknown_plate", "denials": 2},
                {"day": DAY, "gate_id": 1, "reason": "denied_wrong_direction", "denials": 1},
                {"day": DAY, "gate_id": 2, "reason": "denied_blacklisted", "denials": 1},
            ])
        );
        assert_eq!(
            get(&app, &format!("/api/v1/stats/manual-opens?from={DAY}")).await,
            json!([
                {"day": DAY, "gate_id": 1, "operator": "guard", "reason": "police_fire_ambulance", "opens": 1},
                {"day": DAY, "gate_id": 1, "operator": "guard", "reason": "visitor_registered", "opens": 1},
                {"day": DAY, "gate_id": 2, "operator": "guard", "reason": "visitor_registered", "opens": 1},
            ])
        );

        let peaks = get(&app, &format!("/api/v1/stats/peak-hours?from={DAY}")).await;
        let hours: Vec<(i64, i64, i64)> = peaks["hours"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["passages"].as_i64().unwrap() > 0)
            .map(|h| {
                assert_eq!(
                    h["passages"].as_i64().unwrap(),
                    h["entries"].as_i64().unwrap() + h["exits"].as_i64().unwrap()
                );
                (
                    h["hour"].as_i64().unwrap(),
                    h["entries"].as_i64().unwrap(),
                    h["exits"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            hours,
            vec![
                (7, 2, 0),
                (8, 2, 1),
                (9, 1, 0),
                (10, 0, 1),
                (12, 1, 1),
                (17, 0, 1)
            ]
        );
        assert_eq!(peaks["hours"].as_array().unwrap().len(), 24);
        assert_eq!(peaks["peaks"], json!([8, 7, 12]));

        let week = get(&app, &format!("/api/v1/stats/weekly?date={DAY}")).await;
        assert_eq!(week["this_week_from"], DAY);
        assert_eq!(week["last_week_from"], "2026-02-23");
        assert_eq!(
            (
                week["this_week_total"].as_i64(),
                week["last_week_total"].as_i64()
            ),
            (Some(10), Some(2))
        );
        assert_eq!(
            week["days"][0],
            json!({"weekday": 1, "this_week": 10, "last_week": 0})
        );
        assert_eq!(
            week["days"][1],
            json!({"weekday": 2, "this_week": 0, "last_week": 2})
        );
    }
}

#[tokio::test]
async fn an_exported_statistics_table_reads_back_the_same_as_xlsx_and_as_csv_with_a_bom() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        drive(&app).await;
        let json_rows = get(&app, &format!("/api/v1/stats/manual-opens?from={DAY}")).await;

        let (status, headers, bytes) = fetch_bytes(
            &app,
            &format!("/api/v1/stats/export?table=manual_opens&format=xlsx&from={DAY}"),
            Role::Security,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["content-type"],
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("gatehouse-manual_opens-2026-03-02-2026-03-02.xlsx")
        );
        let mut book = Xlsx::new(Cursor::new(bytes)).unwrap();
        let sheet = book.worksheet_range("manual_opens").unwrap();
        let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
        assert_eq!(
            rows[0],
            ["日期", "大门", "门卫", "原因", "手动抬杆次数"]
                .map(|h| Data::String(h.into()))
                .to_vec()
        );
        let expected: Vec<Vec<Data>> = json_rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                vec![
                    Data::String(r["day"].as_str().unwrap().into()),
                    Data::Float(r["gate_id"].as_f64().unwrap()),
                    Data::String(r["operator"].as_str().unwrap().into()),
                    Data::String(r["reason"].as_str().unwrap().into()),
                    Data::Float(r["opens"].as_f64().unwrap()),
                ]
            })
            .collect();
        assert_eq!(rows[1..].to_vec(), expected);

        let (status, headers, body) = app
            .call_with_headers(
                Method::GET,
                &format!("/api/v1/stats/export?table=flows&format=csv&from={DAY}"),
                Some(Role::Admin),
                None,
                &[("accept-language", "en")],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        let text = body.as_str().unwrap();
        assert!(text.starts_with('\u{feff}'), "UTF-8 BOM for Excel");
        let mut lines = text.trim_start_matches('\u{feff}').lines();
        assert_eq!(
            lines.next(),
            Some("day,hour,gate,direction,category,passages")
        );
        assert_eq!(lines.next(), Some("2026-03-02,7,1,entry,staff,1"));
        assert_eq!(lines.count(), 9);

        // Bad parameters: precise 422s in the user's language; the guard may not export.
        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/stats/export?table=flows&format=pdf",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["field"], "format");
        assert!(
            body["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("csv 或 xlsx")
        );
        let (status, body) = app
            .call_lang(
                Method::GET,
                "/api/v1/stats/export?table=people&format=csv",
                Some(Role::Admin),
                None,
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["fields"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("no statistics table \"people\"")
        );
        let (status, body) = app
            .call_lang(
                Method::GET,
                "/api/v1/stats/flows?from=2026-03-05&to=2026-03-01",
                Some(Role::Viewer),
                None,
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["message"], "to is before from");
        let (status, _) = app
            .call(
                Method::GET,
                "/api/v1/stats/export?table=flows&format=csv",
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

/// A GET as `role` with the body as raw bytes (the harness's `call` reads bodies as text).
async fn fetch_bytes(
    app: &TestApp,
    path: &str,
    role: Role,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use tower::ServiceExt;
    let router = gatehouse::web::site(AppState::new(app.db.clone()));
    let request = axum::http::Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {}", app.token(role)))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

#[tokio::test]
async fn the_daily_report_is_one_printable_page_with_inline_charts_and_no_outside_resources() {
    let app = TestApp::spawn(crate::harness::sqlite().await).await;
    drive(&app).await;
    let (status, headers, body) = app
        .call_with_headers(
            Method::GET,
            &format!("/api/v1/stats/daily-report?date={DAY}"),
            Some(Role::Security),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let html = body.as_str().unwrap();
    assert!(html.contains("校园车辆通行日报 — 2026-03-02 星期一"));
    assert!(html.contains("<svg"), "inline SVG charts");
    assert!(html.contains("@media print"));
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(banned), "{banned} in the report");
    }
    // The summary figures of the day.
    for cell in [
        "<th>入校</th><td>6</td>",
        "<th>出校</th><td>4</td>",
        "<th>当前在校车辆</th><td>2</td>",
        "<th>拒绝通行</th><td>4</td>",
        "<th>手动抬杆</th><td>3</td>",
        "<td>沪C34567</td>",
        "08:00–08:59",
    ] {
        assert!(html.contains(cell), "{cell} missing from the report");
    }
}

/// The site day of an instant (Shanghai).
fn site_day(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string()
}

/// Registers a visitor at the booth of gate 1's entry lane through the API, as a guard does.
async fn register(app: &TestApp, plate: &str) -> i64 {
    let departure = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    app.call(
        Method::POST,
        "/api/v1/duty/sign-in",
        Some(Role::Guard),
        Some(json!({"gate_id": 1})),
    )
    .await; // on duty at gate 1: required to open (issue 20)
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/visits",
            Some(Role::Guard),
            Some(json!({
                "gate_id": 1, "lane": "entry", "plate": plate, "driver_name": "王五",
                "driver_phone": "13800138000", "host_name": "李老师", "department": "计算机学院",
                "purpose": "送货", "expected_departure": departure,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["visit"]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_booth_registered_visitor_counts_as_a_visitor_in_visitors_per_day_and_overstays() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        for (gate, lane) in [(1, "entry"), (2, "exit")] {
            sqlx::query(
                "INSERT INTO lanes (gate_id, lane_key, direction, created_ms, updated_ms) \
                 VALUES ($1, $2, $2, 0, 0)",
            )
            .bind(gate)
            .bind(lane)
            .execute(app.db.pool())
            .await
            .unwrap();
        }
        // 浙A88888 registered (the note names the registration); 皖B66666 registered by a
        // booth whose gate sends no note: linked by lane, time and the camera's plate.
        let first = register(&app, "浙A88888").await;
        let second = register(&app, "皖B66666").await;
        // Both were registered six minutes ago; the first was expected to leave a minute ago.
        let now = Utc::now();
        sqlx::query("UPDATE visits SET arrived_ms = $1")
            .bind((now - chrono::Duration::minutes(6)).timestamp_millis())
            .execute(app.db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE visits SET expected_departure_ms = $1 WHERE id = $2")
            .bind((now - chrono::Duration::minutes(1)).timestamp_millis())
            .bind(first)
            .execute(app.db.pool())
            .await
            .unwrap();
        let at = |s: i64| now - chrono::Duration::seconds(s);
        let g1 = vec![
            ov::denied(1, at(300), "entry", "浙A88888"),
            ov::open(
                2,
                at(290),
                "entry",
                "visitor_registered",
                // What the registration sent with its open (the gate journals it as it came).
                Some(gatehouse::central::outside::registration_note(first)),
            ),
            ov::passed(3, at(280), "entry", None, None),
            ov::denied(4, at(200), "entry", "皖B66666"),
            ov::open(5, at(190), "entry", "visitor_registered", None),
            ov::passed(6, at(180), "entry", None, None),
        ];
        accept(&app.state, 1, &g1).await.unwrap();
        // 皖B66666 drives out at gate 2 (a read the lane ignored, the guard opens).
        let g2 = vec![
            ov::ignored(1, at(60), "exit", "皖B66666"),
            ov::open(2, at(55), "exit", "other", Some("visitor leaving".into())),
            ov::passed(3, at(50), "exit", None, None),
        ];
        accept(&app.state, 2, &g2).await.unwrap();

        let list = ov::get(&app, Role::Security, "/api/v1/outside-vehicles").await;
        let items = list["items"].as_array().unwrap();
        let by_plate = |p: &str| items.iter().find(|v| v["plate"] == p).unwrap().clone();
        let a = by_plate("浙A88888");
        assert_eq!(
            (a["visitor"].clone(), a["visit_id"].clone()),
            (json!(true), json!(first))
        );
        assert_eq!(a["overstay"], true, "{a}");
        let b = by_plate("皖B66666");
        assert_eq!(
            (b["visitor"].clone(), b["visit_id"].clone()),
            (json!(true), json!(second))
        );
        assert_eq!(b["dwell_s"], 130);
        assert_eq!(b["overstay"], false);

        // Visitors per day: both (the gap this closes: they counted as unregistered).
        let day = site_day(at(300));
        let visitors = get(&app, &format!("/api/v1/stats/visitors?from={day}")).await;
        assert_eq!(
            (
                visitors[0]["entries"].clone(),
                visitors[0]["vehicles"].clone()
            ),
            (json!(2), json!(2)),
            "{:?}: {visitors}",
            app.kind
        );
        let flows = get(&app, &format!("/api/v1/stats/flows?from={day}")).await;
        let unregistered: i64 = flows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["category"] == "unregistered")
            .map(|r| r["passages"].as_i64().unwrap())
            .sum();
        assert_eq!(unregistered, 0, "{flows}");
        // Overstays: the first, still inside past its registration's departure.
        let overstays = ov::get(&app, Role::Viewer, "/api/v1/stats/overstays").await;
        let plates: Vec<&str> = overstays
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["plate"].as_str().unwrap())
            .collect();
        assert_eq!(plates, ["浙A88888"], "{overstays}");
        // The second's exit closed its registration; the first is still open.
        let open_visits = ov::get(&app, Role::Security, "/api/v1/visits").await;
        let ids: Vec<i64> = open_visits
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [first]);
    }
}
