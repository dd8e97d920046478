//! Outside vehicles end to end at the centre: events posted as gates upload them (through the
//! real ingest, `central::ingest::accept`) — a plate the lane denied, the guard's open, the
//! passage the lane journalled without a plate — become outside-vehicle visits with their
//! plate, colour, photos, gates and dwell, counted per day, gate, province and dwell time, with
//! overstays and repeat visitors (booth-registered visitors: `statistics.rs`); the exports read
//! back; a tag/plate mismatch and a cloned tag raise the office's alarms, once each.

use std::io::Cursor;

use axum::http::{Method, StatusCode};
use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::ingest::accept;
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{
    DecisionRecord, EventBody, JournalEvent, PhotoKind, PhotoRef, PlateReadRecord,
};
use serde_json::{Value, json};

use crate::harness::{TestApp, each_database};

/// The test day in Shanghai.
pub(crate) const DAY: &str = "2026-03-02";

/// `h:m:s` on `DAY` in Shanghai (UTC+8).
pub(crate) fn on_day(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap() - chrono::Duration::hours(8)
}

/// A fake photo digest, distinct per `tag`.
pub(crate) fn sha(tag: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(tag.as_bytes()))
}

pub(crate) fn camera(raw: &str, event: &str, confidence: u8) -> PlateReadRecord {
    PlateReadRecord {
        camera: "cam-1".into(),
        event_id: event.into(),
        raw_plate: raw.into(),
        colour: Some("blue".into()),
        confidence,
        photos: vec![
            PhotoRef {
                sha256: sha(&format!("{event}-plate")),
                kind: PhotoKind::Plate,
                bytes: 20_000,
            },
            PhotoRef {
                sha256: sha(&format!("{event}-scene")),
                kind: PhotoKind::Scene,
                bytes: 200_000,
            },
        ],
    }
}

pub(crate) fn record(direction: &str, plate: &str, reason: ReasonCode) -> DecisionRecord {
    DecisionRecord {
        direction: direction.into(),
        credential: "plate".into(),
        epc: None,
        tid: None,
        antenna: None,
        rssi_dbm: None,
        plate: Some(plate.into()),
        granted: reason == ReasonCode::Granted,
        reason,
        flags: vec![],
        permit_id: None,
        vehicle_id: None,
        holder: None,
        category: None,
        data_version: 1,
        decide_ns: 1000,
        camera: Some(Box::new(camera(plate, &format!("{plate}-{direction}"), 95))),
        pass: None,
    }
}

pub(crate) fn ev(seq: u64, at: DateTime<Utc>, lane: &str, body: EventBody) -> JournalEvent {
    JournalEvent {
        seq,
        at,
        lane: lane.into(),
        body,
    }
}

/// A plate read the lane denied as unknown.
pub(crate) fn denied(seq: u64, at: DateTime<Utc>, lane: &str, plate: &str) -> JournalEvent {
    let mut d = record(lane, plate, ReasonCode::DeniedUnknownPlate);
    d.camera = Some(Box::new(camera(
        plate,
        &format!("{plate}-{seq}-{lane}"),
        95,
    )));
    ev(seq, at, lane, EventBody::Decision(d))
}

/// A camera read the lane did not act on.
pub(crate) fn ignored(seq: u64, at: DateTime<Utc>, lane: &str, plate: &str) -> JournalEvent {
    ev(
        seq,
        at,
        lane,
        EventBody::PlateIgnored {
            camera: camera(plate, &format!("{plate}-{seq}-{lane}"), 88),
            why: "no_vehicle".into(),
        },
    )
}

/// The guard opened the lane.
pub(crate) fn open(
    seq: u64,
    at: DateTime<Utc>,
    lane: &str,
    reason: &str,
    note: Option<String>,
) -> JournalEvent {
    ev(
        seq,
        at,
        lane,
        EventBody::Override {
            operator: "guard".into(),
            action: "open".into(),
            reason: reason.into(),
            note,
            plate: None,
        },
    )
}

/// A vehicle drove through; `plate` as the lane journalled it (none after a guard's open).
pub(crate) fn passed(
    seq: u64,
    at: DateTime<Utc>,
    lane: &str,
    plate: Option<&str>,
    permit_id: Option<i64>,
) -> JournalEvent {
    ev(
        seq,
        at,
        lane,
        EventBody::Passage {
            direction: lane.into(),
            plate: plate.map(String::from),
            vehicle_id: None,
            permit_id,
        },
    )
}

pub(crate) async fn get(app: &TestApp, role: Role, path: &str) -> Value {
    let (status, body) = app.call(Method::GET, path, Some(role), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Two outside vehicles and a staff car on `DAY`: 沪C34567 in at 北门 09:00 (denied, the guard
/// opens), out at 南门 10:59:50 (a read the lane ignored, the guard opens), in again 14:00 and
/// out 14:10 by plate; 苏E12345 in at 09:10 and still inside; 京A12345 with its permit.
pub(crate) async fn drive(app: &TestApp) {
    let g1 = vec![
        denied(1, on_day(9, 0, 0), "entry", "沪C34567"),
        open(2, on_day(9, 0, 20), "entry", "official_business", None),
        passed(3, on_day(9, 0, 30), "entry", None, None),
        denied(4, on_day(9, 10, 0), "entry", "苏E12345"),
        open(
            5,
            on_day(9, 10, 5),
            "entry",
            "other",
            Some("delivery".into()),
        ),
        passed(6, on_day(9, 10, 10), "entry", None, None),
        // A permit holder: no outside vehicle.
        passed(7, on_day(9, 20, 0), "entry", Some("京A12345"), Some(1)),
        denied(8, on_day(14, 0, 0), "entry", "沪C34567"),
        open(9, on_day(14, 0, 5), "entry", "official_business", None),
        passed(10, on_day(14, 0, 10), "entry", None, None),
        // The lane put the plate on this passage itself.
        passed(11, on_day(14, 10, 10), "exit", Some("沪c34567"), None),
    ];
    let g2 = vec![
        ignored(1, on_day(10, 59, 30), "exit", "沪C34567"),
        open(2, on_day(10, 59, 40), "exit", "official_business", None),
        passed(3, on_day(10, 59, 50), "exit", None, None),
    ];
    // Gate 1 in two uploads (the second re-sends one event), then gate 2.
    let a = accept(&app.state, 1, &g1[..4]).await.unwrap();
    assert_eq!(a.stored, 4);
    let b = accept(&app.state, 1, &g1[3..]).await.unwrap();
    assert_eq!((b.stored, b.duplicates), (7, 1));
    accept(&app.state, 2, &g2).await.unwrap();
    // Sent again, nothing changes.
    let c = accept(&app.state, 2, &g2).await.unwrap();
    assert_eq!(c.stored, 0);
}

#[tokio::test]
async fn outside_vehicles_let_in_by_the_guard_are_visits_with_plate_photos_gates_and_dwell() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        drive(&app).await;
        let list = get(
            &app,
            Role::Security,
            &format!("/api/v1/outside-vehicles?from={DAY}&to={DAY}"),
        )
        .await;
        assert_eq!(list["total"], 3, "{:?}: {list}", app.kind);
        let items = list["items"].as_array().unwrap();
        // Newest first: 沪C34567's second visit, 苏E12345, 沪C34567's first.
        let plates: Vec<&str> = items.iter().map(|v| v["plate"].as_str().unwrap()).collect();
        assert_eq!(plates, ["沪C34567", "苏E12345", "沪C34567"]);
        let first = &items[2];
        assert_eq!(first["colour"], "blue");
        assert_eq!(first["province"], "沪");
        assert_eq!(first["province_zh"], "上海");
        assert_eq!(first["province_en"], "Shanghai");
        assert_eq!(first["gate_in"], 1);
        assert_eq!(first["gate_in_name"], "北门");
        assert_eq!(first["gate_out"], 2);
        assert_eq!(first["gate_out_name"], "南门");
        assert_eq!(first["dwell_s"], 2 * 3600 - 40);
        assert_eq!(first["visitor"], false);
        assert_eq!(first["overstay"], false);
        // The photos of the read it came in by and of the one it went out by.
        let photos: Vec<&str> = first["photos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sha256"].as_str().unwrap())
            .collect();
        assert_eq!(
            photos,
            [
                sha("沪C34567-1-entry-plate").as_str(),
                sha("沪C34567-1-entry-scene").as_str(),
                sha("沪C34567-1-exit-plate").as_str(),
                sha("沪C34567-1-exit-scene").as_str(),
            ]
        );
        assert_eq!(first["photos"][0]["kind"], "plate");
        // Still inside since 09:10 on a day long past: an overstay, its dwell counting on.
        let inside = &items[1];
        assert_eq!(inside["at_out"], Value::Null);
        assert_eq!(inside["overstay"], true);
        assert!(inside["dwell_s"].as_i64().unwrap() > 8 * 3600);
        assert_eq!(items[0]["dwell_s"], 600);

        let only_inside = get(
            &app,
            Role::Security,
            &format!("/api/v1/outside-vehicles?from={DAY}&inside=true"),
        )
        .await;
        assert_eq!(only_inside["total"], 1);
        assert_eq!(only_inside["items"][0]["plate"], "苏E12345");
        let by_plate = get(&app, Role::Admin, "/api/v1/outside-vehicles?plate=c345").await;
        assert_eq!(by_plate["total"], 2);

        // The guard-let-through passages carry the plate they were identified by.
        let (plate, n): (Option<String>, i64) = {
            let row = sqlx::query(
                "SELECT plate FROM passage_events WHERE gate_id = 2 AND seq = 3 AND journal_no = 0",
            )
            .fetch_one(app.db.pool())
            .await
            .unwrap();
            let count = sqlx::query("SELECT COUNT(*) AS n FROM outside_vehicle_visits")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
            (
                sqlx::Row::try_get(&row, "plate").unwrap(),
                sqlx::Row::try_get(&count, "n").unwrap(),
            )
        };
        assert_eq!((plate.as_deref(), n), (Some("沪C34567"), 3));
    }
}

#[tokio::test]
async fn outside_vehicle_statistics_count_per_day_gate_province_dwell_overstays_and_repeats() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        drive(&app).await;
        let s = get(
            &app,
            Role::Security,
            &format!("/api/v1/stats/outside-vehicles?from={DAY}&min_visits=2"),
        )
        .await;
        assert_eq!(
            s["per_day"],
            json!([{"day": DAY, "vehicles": 2, "visits": 3, "visitors": 0}]),
            "{:?}",
            app.kind
        );
        assert_eq!(
            s["per_gate"],
            json!([{"gate_id": 1, "gate_name": "北门", "visits": 3}])
        );
        assert_eq!(
            s["per_province"],
            json!([
                {"province": "沪", "name_zh": "上海", "name_en": "Shanghai", "visits": 2},
                {"province": "苏", "name_zh": "江苏", "name_en": "Jiangsu", "visits": 1},
            ])
        );
        let dwell: Vec<(String, i64)> = s["dwell"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["bucket"].as_str().unwrap().to_string(),
                    b["visits"].as_i64().unwrap(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(
            dwell,
            [
                ("lt_15m".to_string(), 1),
                ("1h_2h".to_string(), 1),
                ("inside".to_string(), 1)
            ]
        );
        assert_eq!(s["overstays"], 1);
        assert_eq!(
            s["repeat_visitors"],
            json!([{"plate": "沪C34567", "visits": 2}])
        );
        // A one-hour threshold: the two-hour visit overstayed too.
        let strict = get(
            &app,
            Role::Security,
            &format!("/api/v1/stats/outside-vehicles?from={DAY}&overstay_hours=1"),
        )
        .await;
        assert_eq!(strict["overstays"], 2);
        assert_eq!(
            strict["repeat_visitors"],
            json!([]),
            "three visits by default"
        );
        // Another day: nothing.
        let empty = get(
            &app,
            Role::Security,
            "/api/v1/stats/outside-vehicles?from=2026-03-03",
        )
        .await;
        assert_eq!(empty["per_day"], json!([]));
        assert_eq!(empty["overstays"], 0);

        // The office's figures: a guard and a viewer may not; bad input is a 422, not a 500.
        for role in [Role::Guard, Role::Viewer] {
            assert_eq!(
                app.status(Method::GET, "/api/v1/stats/outside-vehicles", Some(role))
                    .await,
                StatusCode::FORBIDDEN
            );
        }
        for bad in [
            "/api/v1/stats/outside-vehicles?from=yesterday",
            "/api/v1/stats/outside-vehicles?min_visits=1",
            "/api/v1/stats/outside-vehicles?overstay_hours=0",
            "/api/v1/outside-vehicles?from=3%20March",
            "/api/v1/stats/outside-vehicles/export?format=pdf",
            "/api/v1/stats/outside-vehicles/export?format=csv&table=cars",
        ] {
            let (status, body) = app.call(Method::GET, bad, Some(Role::Admin), None).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        }
    }
}

/// A GET as the security office (zh-CN) with the body as raw bytes.
pub(crate) async fn download(app: &TestApp, path: &str) -> Vec<u8> {
    let request = axum::http::Request::builder()
        .uri(path)
        .header(
            "authorization",
            format!("Bearer {}", app.token(Role::Security)),
        )
        .header("accept-language", "zh-CN")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app_router(app), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

fn app_router(app: &TestApp) -> axum::Router {
    gatehouse::web::site(app.state.clone())
}

pub(crate) fn xlsx_rows(bytes: Vec<u8>) -> Vec<Vec<String>> {
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
    let sheet = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&sheet).unwrap();
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::String(s) => s.clone(),
                    Data::Float(f) => f.to_string(),
                    Data::Int(i) => i.to_string(),
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn outside_vehicle_exports_read_back_as_csv_and_xlsx() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        drive(&app).await;
        let csv = download(
            &app,
            &format!("/api/v1/stats/outside-vehicles/export?format=csv&from={DAY}"),
        )
        .await;
        assert!(csv.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("车牌,车牌颜色,归属地,入口大门"),
            "{}",
            lines[0]
        );
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[3].starts_with(
                "沪C34567,blue,上海,北门,2026-03-02 09:00:30,南门,2026-03-02 10:59:50,119,否"
            ),
            "{}",
            lines[3]
        );

        let rows = xlsx_rows(
            download(
                &app,
                &format!(
                    "/api/v1/stats/outside-vehicles/export?format=xlsx&from={DAY}&table=per_province"
                ),
            )
            .await,
        );
        assert_eq!(
            rows,
            vec![
                vec!["归属地".to_string(), "到访次数".to_string()],
                vec!["上海".to_string(), "2".to_string()],
                vec!["江苏".to_string(), "1".to_string()],
            ]
        );
        let rows = xlsx_rows(
            download(
                &app,
                &format!(
                    "/api/v1/stats/outside-vehicles/export?format=xlsx&from={DAY}&table=dwell"
                ),
            )
            .await,
        );
        assert_eq!(rows.len(), 9);
        assert_eq!(rows[3], vec!["1–2 小时".to_string(), "1".to_string()]);
    }
}

fn tag_decision(seq: u64, reason: ReasonCode, flags: Vec<String>, read: &str) -> JournalEvent {
    let mut d = record("entry", "京A12345", reason);
    d.credential = "tag".into();
    d.epc = Some("E2003412B802011912345678".into());
    d.tid = Some("E2801160200074CF085B0A2D".into());
    d.flags = flags;
    d.granted = reason == ReasonCode::Granted;
    d.camera = Some(Box::new(camera(read, &format!("mismatch-{seq}"), 97)));
    ev(
        seq,
        on_day(8, 0, seq as u32),
        "entry",
        EventBody::Decision(d),
    )
}

#[tokio::test]
async fn a_tag_plate_mismatch_and_a_cloned_tag_raise_alarms_the_office_sees_once_each() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let events = vec![
            tag_decision(1, ReasonCode::DeniedPlateMismatch, vec![], "苏E99999"),
            tag_decision(
                2,
                ReasonCode::Granted,
                vec!["plate_mismatch".into()],
                "苏E88888",
            ),
            tag_decision(3, ReasonCode::DeniedTagTidMismatch, vec![], "京A12345"),
            // An ordinary grant raises nothing.
            tag_decision(4, ReasonCode::Granted, vec![], "京A12345"),
        ];
        accept(&app.state, 1, &events).await.unwrap();
        // Sent again (the gate did not hear the answer): no second alarm.
        accept(&app.state, 1, &events).await.unwrap();
        let alarms = get(&app, Role::Security, "/api/v1/alarms").await;
        let mut got: Vec<(String, String)> = alarms
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["kind"].as_str().unwrap().to_string(),
                    a["note"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(got.len(), 3, "{:?}: {alarms}", app.kind);
        assert_eq!(got[0].0, "cloned_tag");
        assert!(got[0].1.contains("疑似克隆标签"), "{}", got[0].1);
        assert!(got[0].1.contains("E2801160200074CF085B0A2D"));
        assert_eq!(
            (got[1].0.as_str(), got[2].0.as_str()),
            ("plate_mismatch", "plate_mismatch")
        );
        let notes = format!("{} {}", got[1].1, got[2].1);
        assert!(notes.contains("标签与车牌不符"), "{notes}");
        assert!(notes.contains("suspected cloned or moved tag"), "{notes}");
        assert!(
            notes.contains("苏E99999") && notes.contains("苏E88888"),
            "{notes}"
        );
        assert!(
            notes.contains("(let in, flagged)") && notes.contains("(denied)"),
            "{notes}"
        );
        assert_eq!(alarms[0]["gate_id"], 1);
    }
}

#[tokio::test]
async fn an_exit_uploaded_before_its_entry_is_matched_to_it_and_an_exit_alone_stands_alone() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        // Gate 2 uploads 粤B12345's exit first; gate 1 its entry afterwards.
        let g2 = vec![
            ignored(1, on_day(12, 0, 0), "exit", "粤B12345"),
            open(2, on_day(12, 0, 5), "exit", "other", Some("leaving".into())),
            passed(3, on_day(12, 0, 10), "exit", None, None),
            // 闽D00001 leaves; nobody saw it come in.
            ignored(4, on_day(12, 30, 0), "exit", "闽D00001"),
            open(
                5,
                on_day(12, 30, 5),
                "exit",
                "other",
                Some("leaving".into()),
            ),
            passed(6, on_day(12, 30, 10), "exit", None, None),
        ];
        accept(&app.state, 2, &g2).await.unwrap();
        let g1 = vec![
            denied(1, on_day(11, 0, 0), "entry", "粤B12345"),
            open(2, on_day(11, 0, 5), "entry", "official_business", None),
            passed(3, on_day(11, 0, 10), "entry", None, None),
        ];
        accept(&app.state, 1, &g1).await.unwrap();
        let list = get(
            &app,
            Role::Security,
            &format!("/api/v1/outside-vehicles?from={DAY}"),
        )
        .await;
        assert_eq!(list["total"], 2, "{:?}: {list}", app.kind);
        let yue = &list["items"][1];
        assert_eq!(yue["plate"], "粤B12345");
        assert_eq!(
            (yue["gate_in"].clone(), yue["gate_out"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(yue["dwell_s"], 3600);
        assert_eq!(yue["photos"].as_array().unwrap().len(), 4);
        let min = &list["items"][0];
        assert_eq!(min["plate"], "闽D00001");
        assert_eq!(
            (min["at_in"].clone(), min["dwell_s"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(min["overstay"], false);
        let s = get(
            &app,
            Role::Security,
            &format!("/api/v1/stats/outside-vehicles?from={DAY}"),
        )
        .await;
        let buckets: Vec<(&str, i64)> = s["dwell"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["bucket"].as_str().unwrap(), b["visits"].as_i64().unwrap()))
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(buckets, [("1h_2h", 1), ("unknown", 1)]);
        assert_eq!(
            s["per_gate"],
            json!([
                {"gate_id": 1, "gate_name": "北门", "visits": 1},
                {"gate_id": 2, "gate_name": "南门", "visits": 1},
            ])
        );
    }
}

#[tokio::test]
async fn a_guards_plate_correction_moves_the_visit_it_identified_to_the_corrected_plate() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        drive(&app).await;
        // 苏E12345's entry was identified by gate 1's read number 4: it was 苏E12346.
        let mut tx = app.db.begin().await.unwrap();
        let n = gatehouse::central::outside::apply_correction(
            &mut tx,
            1,
            0,
            4,
            "苏E12346",
            Some("yellow"),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(n, 1);
        let list = get(&app, Role::Security, "/api/v1/outside-vehicles?inside=true").await;
        assert_eq!(list["items"][0]["plate"], "苏E12346", "{:?}", app.kind);
        assert_eq!(list["items"][0]["colour"], "yellow");
        // A read that identified no visit changes nothing.
        let mut tx = app.db.begin().await.unwrap();
        let n = gatehouse::central::outside::apply_correction(&mut tx, 1, 0, 2, "苏E00000", None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(n, 0);
    }
}
