//! The booth's paperwork through the API, on SQLite and PostgreSQL: a duty's shift report
//! (交班报表) exported as CSV and XLSX with the figures of the duty's gate and time, who may read
//! it; the handover note a sign-off leaves linked to its duty; visitor slip serials (unique,
//! kept on reprint, one per visit under concurrent prints); and the unstaffed booth alert
//! (`central::unstaffed::check_once` at chosen times).

use std::io::Cursor;

use axum::http::{Method, StatusCode};
use calamine::{Data, Reader, Xlsx};
use chrono::Utc;
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Actor, audit, now_ms};
use gatehouse::central::ingest::accept;
use gatehouse::central::repo::{alarms, settings, visits};
use gatehouse::central::unstaffed::{self, BOOTH_UNSTAFFED};
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};
use serde_json::{Value, json};

use crate::harness::{TestApp, create_operator, each_database};

/// Lanes `entry` and `exit` at gate 1 (the harness's gates have none): gate 1 is a booth.
async fn lanes(app: &TestApp) {
    for (key, name, direction) in [("entry", "入口", "entry"), ("exit", "出口", "exit")] {
        sqlx::query(
            "INSERT INTO lanes (gate_id, lane_key, name, direction, created_ms, updated_ms) \
             VALUES (1, $1, $2, $3, 0, 0)",
        )
        .bind(key)
        .bind(name)
        .bind(direction)
        .execute(app.db.pool())
        .await
        .unwrap();
    }
}

fn passage(seq: u64, lane: &str, plate: &str) -> JournalEvent {
    passage_at(seq, lane, plate, 0)
}

/// A passage `offset_s` seconds from now (the gate's clock).
fn passage_at(seq: u64, lane: &str, plate: &str, offset_s: i64) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc::now() + chrono::Duration::seconds(offset_s),
        lane: lane.into(),
        body: EventBody::Passage {
            direction: lane.into(),
            plate: Some(plate.into()),
            vehicle_id: None,
            permit_id: None,
        },
    }
}

fn denied(seq: u64, plate: &str, reason: &str) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc::now(),
        lane: "entry".into(),
        body: EventBody::Decision(DecisionRecord {
            direction: "entry".into(),
            credential: "plate".into(),
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: Some(plate.into()),
            granted: false,
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

fn visit(gate_id: i64, plate: &str) -> visits::NewVisit {
    visits::NewVisit {
        booking_id: None,
        gate_id,
        lane: "entry".into(),
        plate: plate.into(),
        driver_name: "王师傅".into(),
        driver_phone: "13812345678".into(),
        host_name: "李老师".into(),
        department: "化学学院".into(),
        purpose: "送实验试剂".into(),
        expected_departure_ms: now_ms() + 7_200_000,
    }
}

fn guard_actor(app: &TestApp) -> Actor {
    Actor {
        operator_id: Some(app.operator_id(Role::Guard)),
        name: "guard".into(),
    }
}

async fn get_file(app: &TestApp, path: &str, role: Role) -> (StatusCode, Vec<u8>) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {}", app.token(role)))
        .header("accept-language", "zh-CN")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = gatehouse::web::site(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

/// (section, item) → count, from the export's rows.
fn counts(rows: &[Vec<String>]) -> std::collections::BTreeMap<(String, String), i64> {
    let mut out = std::collections::BTreeMap::new();
    for r in rows {
        if let Ok(n) = r[2].parse::<i64>() {
            *out.entry((r[0].clone(), r[1].clone())).or_default() += n;
        }
    }
    out
}

#[tokio::test]
async fn a_duty_shift_report_has_the_gates_figures_of_the_duty_and_exports_the_same_as_csv_and_xlsx()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        lanes(&app).await;
        // Before the duty: not in the report.
        accept(&app.state, 1, &[passage_at(1, "entry", "京Z00001", -60)])
            .await
            .unwrap();
        let (s, duty) = app
            .call(
                Method::POST,
                "/api/v1/duty/sign-in",
                Some(Role::Guard),
                Some(json!({"gate_id": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{duty}");
        let duty_id = duty["id"].as_i64().unwrap();

        // In the duty: 2 in and 1 out, 3 denials (2 expired, 1 blacklisted), gate 2 traffic
        // (not this booth's), a manual open, a visitor, an alarm acknowledged.
        accept(
            &app.state,
            1,
            &[
                passage(2, "entry", "京A12345"),
                passage(3, "entry", "京B23456"),
                passage(4, "exit", "京A12345"),
                denied(5, "京C11111", "denied_expired"),
                denied(6, "京C22222", "denied_expired"),
                denied(7, "京C66666", "denied_blacklisted"),
            ],
        )
        .await
        .unwrap();
        accept(&app.state, 2, &[passage(1, "entry", "京D44444")])
            .await
            .unwrap();
        let mut conn = app.db.pool().acquire().await.unwrap();
        audit(
            &mut conn,
            &guard_actor(&app),
            "manual_command",
            "lane",
            "1/entry",
            None,
            Some(
                &json!({"command": "open", "reason": "official_business", "note": "市政检查",
                "outcome": "done", "plate": "京E55555"}),
            ),
        )
        .await
        .unwrap();
        drop(conn);
        let v = visits::create(&app.db, &guard_actor(&app), &visit(1, "浙AM1205"))
            .await
            .unwrap();
        let (s, alarm) = app
            .call(
                Method::POST,
                "/api/v1/alarms",
                Some(Role::Guard),
                Some(json!({"gate_id": 1, "note": "有人闯杆"})),
            )
            .await;
        assert!(s.is_success(), "{s} {alarm}");
        let security = Actor {
            operator_id: Some(app.operator_id(Role::Security)),
            name: "security".into(),
        };
        alarms::acknowledge(
            &app.db,
            &security,
            alarm["id"].as_i64().unwrap(),
            "dispatched",
            "巡逻队已到场",
        )
        .await
        .unwrap();
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/duty/sign-off",
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        // After the duty: not in the report.
        accept(&app.state, 1, &[passage_at(8, "entry", "京Z00002", 60)])
            .await
            .unwrap();

        // The sign-off left the next shift a note linked to this duty.
        let linked = crate::harness::count(
            &app.db,
            &format!("SELECT COUNT(*) FROM handover_notes WHERE duty_id = {duty_id} AND note = ''"),
        )
        .await;
        assert_eq!(linked, 1, "the sign-off's note names the duty");

        let path = format!("/api/v1/duty/{duty_id}/report");
        let (s, csv) = get_file(&app, &format!("{path}?format=csv"), Role::Guard).await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&csv));
        assert!(csv.starts_with(b"\xEF\xBB\xBF"), "CSV with a BOM");
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header[0], "类别");
        let csv_rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        let c = counts(&csv_rows);
        let total = |item: &str| c[&("合计".to_string(), item.to_string())];
        assert_eq!(total("进场车次"), 2, "{csv_rows:?}");
        assert_eq!(total("出场车次"), 1);
        assert_eq!(total("拒绝通行"), 3);
        assert_eq!(total("手动抬杆"), 1);
        assert_eq!(total("访客登记"), 1);
        assert_eq!(total("报警"), 1);
        assert_eq!(total("报警已确认"), 1);
        assert_eq!(
            c[&("车道通行".into(), "入口 · 进".into())],
            2,
            "{csv_rows:?}"
        );
        assert_eq!(
            c[&("车道通行".into(), "出口 · 出".into())],
            1,
            "{csv_rows:?}"
        );
        assert_eq!(c[&("拒绝原因".into(), "通行证已过期".into())], 2);
        let open = csv_rows.iter().find(|r| r[0] == "手动抬杆").unwrap();
        assert_eq!(open[4], "京E55555", "the plate of the manual open");
        assert_eq!(open[5], "门卫 李师傅", "who opened, by display name");
        assert!(
            open[6].contains("公务车辆") && open[6].contains("市政检查"),
            "{open:?}"
        );
        let visitor = csv_rows.iter().find(|r| r[0] == "访客登记").unwrap();
        assert_eq!(visitor[4], v.plate);
        let alarm_row = csv_rows.iter().find(|r| r[0] == "报警").unwrap();
        assert!(alarm_row[6].contains("保卫处 刘科长"), "{alarm_row:?}");
        assert!(
            !text.contains("official_business")
                && !text.contains("denied_")
                && !text.contains("guard,"),
            "no codes or user names: {text}"
        );

        // The XLSX says the same.
        let (s, xlsx) = get_file(&app, &format!("{path}?format=xlsx"), Role::Security).await;
        assert_eq!(s, StatusCode::OK);
        let mut book = Xlsx::new(Cursor::new(xlsx)).unwrap();
        let sheet = book.worksheet_range("shift").unwrap();
        let xlsx_rows: Vec<Vec<String>> = sheet
            .rows()
            .skip(1)
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Data::Float(f) => format!("{f}"),
                        Data::Int(i) => i.to_string(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(counts(&xlsx_rows), c, "the XLSX has the CSV's figures");

        // Who may read it: not a guard of another gate, not the administration's viewers;
        // a bad format and an unknown duty are explained.
        let other = create_operator(&app.db, "guard_south", Role::Guard, &[2]).await;
        let session = gatehouse::central::api::auth::create_session(&app.db, other.id, 3_600_000)
            .await
            .unwrap();
        let request = axum::http::Request::builder()
            .uri(format!("{path}?format=csv"))
            .header("authorization", format!("Bearer {}", session.token))
            .body(axum::body::Body::empty())
            .unwrap();
        let (s, _, _) = app.send(request).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "a guard of another gate");
        assert_eq!(
            app.status(
                Method::GET,
                &format!("{path}?format=csv"),
                Some(Role::Viewer)
            )
            .await,
            StatusCode::FORBIDDEN
        );
        let (s, body) = app
            .call(
                Method::GET,
                &format!("{path}?format=pdf"),
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("csv"), "{body}");
        let (s, body) = app
            .call(
                Method::GET,
                "/api/v1/duty/999999/report?format=csv",
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }
}

#[tokio::test]
async fn a_duty_handover_note_saved_on_duty_links_the_duty_and_the_sign_off_adds_no_second_one() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (_, duty) = app
            .call(
                Method::POST,
                "/api/v1/duty/sign-in",
                Some(Role::Guard),
                Some(json!({"gate_id": 1})),
            )
            .await;
        let (s, note) = app
            .call(
                Method::POST,
                "/api/v1/duty/notes",
                Some(Role::Guard),
                Some(json!({"gate_id": 1, "note": "出口道闸偏慢"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{note}");
        assert_eq!(note["duty_id"], duty["id"]);
        app.call(
            Method::POST,
            "/api/v1/duty/sign-off",
            Some(Role::Guard),
            None,
        )
        .await;
        let notes = crate::harness::count(
            &app.db,
            &format!(
                "SELECT COUNT(*) FROM handover_notes WHERE duty_id = {}",
                duty["id"]
            ),
        )
        .await;
        assert_eq!(notes, 1);
    }
}

#[tokio::test]
async fn visitor_slip_serials_are_unique_kept_on_reprint_and_one_per_visit_under_concurrent_prints()
{
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let year = chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .format("%Y")
            .to_string();
        let mut ids = Vec::new();
        for i in 0..8 {
            let v = visits::create(
                &app.db,
                &guard_actor(&app),
                &visit(1, &format!("京F1000{i}")),
            )
            .await
            .unwrap();
            ids.push(v.id);
        }
        let slip = |id: i64| {
            let app = &app;
            async move {
                let (s, body): (StatusCode, Value) = app
                    .call(
                        Method::POST,
                        &format!("/api/v1/visits/{id}/slip"),
                        Some(Role::Guard),
                        None,
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{body}");
                body["serial"].as_str().unwrap().to_string()
            }
        };
        let first = slip(ids[0]).await;
        assert_eq!(first, format!("{year}-000001"));
        assert_eq!(slip(ids[0]).await, first, "a reprint keeps its serial");
        assert_eq!(slip(ids[1]).await, format!("{year}-000002"));
        // Six visits printed at once, each twice: one serial per visit, none shared.
        let rest: Vec<_> = ids[2..]
            .iter()
            .flat_map(|id| [slip(*id), slip(*id)])
            .collect();
        let serials = futures::future::join_all(rest).await;
        for pair in serials.chunks(2) {
            assert_eq!(pair[0], pair[1], "one serial per visit");
        }
        let mut distinct: Vec<&String> = serials.iter().step_by(2).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 6, "{serials:?}");
        assert!(
            distinct
                .iter()
                .all(|s| s.as_str() > format!("{year}-000002").as_str()
                    && s.as_str() <= format!("{year}-000008").as_str()),
            "{distinct:?}"
        );
        assert_eq!(
            crate::harness::count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'slip_issued'"
            )
            .await,
            8,
            "each serial given is audited once"
        );
        // A visit at a gate not the guard's, and no visit at all.
        let south = visits::create(&app.db, &guard_actor(&app), &visit(2, "京G77777"))
            .await
            .unwrap();
        assert_eq!(
            app.status(
                Method::POST,
                &format!("/api/v1/visits/{}/slip", south.id),
                Some(Role::Guard)
            )
            .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(
                Method::POST,
                "/api/v1/visits/999999/slip",
                Some(Role::Security)
            )
            .await,
            StatusCode::NOT_FOUND
        );
    }
}

async fn unstaffed_alarms(app: &TestApp) -> Vec<(i64, Option<i64>)> {
    sqlx::query_as::<_, (i64, Option<i64>)>(
        "SELECT gate_id, cleared_ms FROM alarms WHERE kind = 'booth_unstaffed' ORDER BY id",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn an_unstaffed_booth_raises_one_alarm_after_the_set_time_and_it_clears_when_a_guard_signs_in_on_duty()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        lanes(&app).await;
        let live = app.state.live.clone();
        let mut heard = live.subscribe();
        // A shift at gate 1 ends now; gate 2 has no lanes (not a booth).
        app.call(
            Method::POST,
            "/api/v1/duty/sign-in",
            Some(Role::Guard),
            Some(json!({"gate_id": 1})),
        )
        .await;
        app.call(
            Method::POST,
            "/api/v1/duty/sign-off",
            Some(Role::Guard),
            None,
        )
        .await;
        let ended = now_ms();
        let minute = 60_000;

        let at = |m: i64| ended + m * minute;
        let c = unstaffed::check_once(&app.db, &live, at(29)).await.unwrap();
        assert!(c.raised.is_empty(), "not yet: {c:?}");
        let c = unstaffed::check_once(&app.db, &live, at(31)).await.unwrap();
        assert_eq!(c.raised, vec![1], "after 30 minutes (the default)");
        assert!(matches!(
            &*heard.recv().await.unwrap(),
            gatehouse::central::live::LiveMessage::Alarm { gate_id: 1, .. }
        ));
        let c = unstaffed::check_once(&app.db, &live, at(90)).await.unwrap();
        assert!(c.raised.is_empty(), "once per unstaffed period: {c:?}");
        assert_eq!(unstaffed_alarms(&app).await, vec![(1, None)]);
        let (_, alarm_list) = app
            .call(Method::GET, "/api/v1/alarms", Some(Role::Security), None)
            .await;
        assert!(
            alarm_list.to_string().contains(BOOTH_UNSTAFFED),
            "the office sees it: {alarm_list}"
        );

        // A guard signs in: cleared at once.
        app.call(
            Method::POST,
            "/api/v1/duty/sign-in",
            Some(Role::Guard),
            Some(json!({"gate_id": 1})),
        )
        .await;
        let alarms_now = unstaffed_alarms(&app).await;
        assert!(
            alarms_now[0].1.is_some(),
            "cleared on sign-in: {alarms_now:?}"
        );
        let c = unstaffed::check_once(&app.db, &live, at(200))
            .await
            .unwrap();
        assert!(c.raised.is_empty() && c.cleared.is_empty(), "{c:?}");

        // Off duty again: a new period, a new alarm after the set time.
        app.call(
            Method::POST,
            "/api/v1/duty/sign-off",
            Some(Role::Guard),
            None,
        )
        .await;
        let ended = now_ms();
        let c = unstaffed::check_once(&app.db, &live, ended + 31 * minute)
            .await
            .unwrap();
        assert_eq!(c.raised, vec![1]);
        assert_eq!(unstaffed_alarms(&app).await.len(), 2);

        // A check that finds a guard on duty clears it too (an instance that missed the sign-in).
        sqlx::query(
            "INSERT INTO duty_records (operator_id, gate_id, started_ms) VALUES ($1, 1, $2)",
        )
        .bind(app.operator_id(Role::Guard))
        .bind(now_ms())
        .execute(app.db.pool())
        .await
        .unwrap();
        let c = unstaffed::check_once(&app.db, &live, ended + 40 * minute)
            .await
            .unwrap();
        assert_eq!(c.cleared, vec![1]);

        // Set to 0: off.
        sqlx::query("UPDATE duty_records SET ended_ms = $1 WHERE ended_ms IS NULL")
            .bind(now_ms())
            .execute(app.db.pool())
            .await
            .unwrap();
        let mut s = settings::load(&app.db).await.unwrap();
        s.unstaffed_alert_min = 0;
        settings::save(&app.db, &Actor::system(), &s).await.unwrap();
        let c = unstaffed::check_once(&app.db, &live, now_ms() + 1000 * minute)
            .await
            .unwrap();
        assert!(c.off && c.raised.is_empty(), "{c:?}");
        assert_eq!(unstaffed_alarms(&app).await.len(), 2);
    }
}
