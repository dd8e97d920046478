//! Plate corrections on SQLite and PostgreSQL: a guard corrects a camera's misread plate on a
//! stored decision (`POST /api/v1/events/{gate}/{journal}/{seq}/plate`), the event keeps the
//! camera's original read, a second correction replaces the first and each is audited; a bad
//! plate is refused with the plate rules' own code and message in both languages; guards only
//! at their own gates; an unknown event or one that names no plate is refused.

use axum::http::{Method, StatusCode};
use chrono::{TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use gatehouse::central::api::auth::Role;
use gatehouse::central::repo::events;
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{
    BarrierAction, DecisionRecord, EventBody, JournalEvent, PhotoKind, PhotoRef, PlateReadRecord,
};
use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{TestApp, count, each_database};

/// A camera decision at gate lane `entry`: the camera read `raw` with `confidence`.
fn camera_decision(seq: u64, at_ms: i64, raw: &str, confidence: u8) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc.timestamp_millis_opt(at_ms).unwrap(),
        lane: "entry".into(),
        body: EventBody::Decision(DecisionRecord {
            direction: "entry".into(),
            credential: "plate".into(),
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: Some(raw.into()),
            granted: false,
            reason: ReasonCode::HeldLowConfidence,
            flags: vec![],
            permit_id: None,
            vehicle_id: None,
            holder: None,
            category: None,
            data_version: 1,
            decide_ns: 1000,
            camera: Some(Box::new(PlateReadRecord {
                camera: "north-entry".into(),
                event_id: format!("evt-{seq}"),
                raw_plate: raw.into(),
                colour: Some("blue".into()),
                confidence,
                photos: vec![PhotoRef {
                    sha256: "ab".repeat(32),
                    kind: PhotoKind::Plate,
                    bytes: 20_000,
                }],
            })),
            pass: None,
        }),
    }
}

fn barrier(seq: u64, at_ms: i64) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc.timestamp_millis_opt(at_ms).unwrap(),
        lane: "entry".into(),
        body: EventBody::Barrier {
            action: BarrierAction::Open,
            cause: "guard".into(),
        },
    }
}

async fn ingest(app: &TestApp, gate: i64, batch: &[JournalEvent]) {
    events::ingest(&app.db, Shanghai, gate, batch)
        .await
        .unwrap();
}

async fn correct(app: &TestApp, role: Role, path: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::POST, path, Some(role), Some(body)).await
}

#[tokio::test]
async fn a_guard_corrects_a_misread_plate_the_event_keeps_the_cameras_read_and_each_correction_is_audited()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let t0 = Utc::now().timestamp_millis() - 60_000;
        ingest(&app, 1, &[camera_decision(1, t0, "京A8B345", 62)]).await;
        let body_before: String = sqlx::query_scalar(
            "SELECT body FROM passage_events WHERE gate_id = 1 AND journal_no = 0 AND seq = 1",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();

        // The guard of gate 1 types it with a separator and in lower case: stored normalised.
        let path = "/api/v1/events/1/0/1/plate";
        let (s, first) = correct(
            &app,
            Role::Guard,
            path,
            json!({"plate": "京a·88345", "colour": "blue", "note": "看照片是 88345"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{first}");
        assert_eq!(first["plate"], "京A88345");
        assert_eq!(first["original_plate"], "京A8B345");
        assert_eq!(first["original_colour"], "blue");
        assert_eq!(first["operator"], "guard");

        // The event is untouched: its body and plate column are what the gate sent.
        let row = sqlx::query(
            "SELECT plate, body FROM passage_events WHERE gate_id = 1 AND journal_no = 0 AND seq = 1",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>("plate"), "京A8B345");
        assert_eq!(row.get::<String, _>("body"), body_before);

        // The office corrects it again (a yellow plate after all): it replaces the first.
        let (s, second) = correct(
            &app,
            Role::Security,
            path,
            json!({"plate": "京A88346", "colour": "yellow"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{second}");
        assert_eq!(
            (
                second["plate"].as_str(),
                second["colour"].as_str(),
                second["original_plate"].as_str()
            ),
            (Some("京A88346"), Some("yellow"), Some("京A8B345")),
            "the original is still the camera's read, not the first correction"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM plate_corrections").await,
            1
        );

        // Two audit entries: the first replaced the camera's read, the second the first.
        let audit = sqlx::query(
            "SELECT operator_name, entity, entity_id, before_json, after_json FROM audit_log \
             WHERE action = 'plate_correction' ORDER BY id",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(audit.len(), 2);
        let json_of = |r: &sqlx::any::AnyRow, c: &str| -> Value {
            serde_json::from_str(&r.get::<String, _>(c)).unwrap()
        };
        assert_eq!(audit[0].get::<String, _>("operator_name"), "guard");
        assert_eq!(audit[0].get::<String, _>("entity"), "passage_event");
        assert_eq!(audit[0].get::<String, _>("entity_id"), "1/0/1");
        assert_eq!(json_of(&audit[0], "before_json")["plate"], "京A8B345");
        assert_eq!(json_of(&audit[0], "after_json")["plate"], "京A88345");
        assert_eq!(audit[1].get::<String, _>("operator_name"), "security");
        assert_eq!(json_of(&audit[1], "before_json")["plate"], "京A88345");
        assert_eq!(json_of(&audit[1], "after_json")["plate"], "京A88346");
    }
}

#[tokio::test]
async fn an_invalid_corrected_plate_is_refused_with_the_plate_rules_code_and_message_in_both_languages()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let t0 = Utc::now().timestamp_millis() - 60_000;
        ingest(&app, 1, &[camera_decision(1, t0, "京A8B345", 62)]).await;
        let path = "/api/v1/events/1/0/1/plate";
        let body = json!({"plate": "京A1234", "colour": "purple", "note": "x".repeat(201)});
        let (s, zh) = app
            .call_lang(
                Method::POST,
                path,
                Some(Role::Guard),
                Some(body.clone()),
                "zh-CN",
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{zh}");
        let field = |v: &Value, name: &str| -> (String, String) {
            let f = v["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["field"] == name)
                .unwrap_or_else(|| panic!("no {name} error in {v}"));
            (
                f["code"].as_str().unwrap().into(),
                f["message"].as_str().unwrap().into(),
            )
        };
        assert_eq!(
            field(&zh, "plate"),
            (
                "plate_wrong_length".into(),
                "车牌号有 6 个字符；普通车牌 7 个，新能源车牌 8 个".into()
            )
        );
        assert_eq!(field(&zh, "colour").0, "invalid_plate_colour");
        assert!(field(&zh, "colour").1.contains("purple"));
        assert_eq!(field(&zh, "note").0, "too_long");
        let (_, en) = app
            .call_lang(Method::POST, path, Some(Role::Guard), Some(body), "en")
            .await;
        assert_eq!(
            field(&en, "plate").1,
            "the plate has 6 characters; ordinary plates have 7 and new-energy plates 8"
        );
        // An unknown field is refused too, and nothing was stored.
        let (s, _) = correct(
            &app,
            Role::Guard,
            path,
            json!({"plate": "京A88345", "granted": true}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM plate_corrections").await,
            0
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'plate_correction'"
            )
            .await,
            0
        );
    }
}

#[tokio::test]
async fn a_guard_corrects_only_at_their_own_gates_and_an_unknown_or_plateless_event_is_refused() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let t0 = Utc::now().timestamp_millis() - 60_000;
        ingest(
            &app,
            1,
            &[camera_decision(1, t0, "京A8B345", 62), barrier(2, t0 + 10)],
        )
        .await;
        ingest(&app, 2, &[camera_decision(1, t0, "沪B1234S", 55)]).await;
        let good = json!({"plate": "京A88345"});

        // The harness guard works at gate 1 only; viewers and approvers may not correct.
        let (s, _) = correct(
            &app,
            Role::Guard,
            "/api/v1/events/2/0/1/plate",
            good.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        for role in [Role::Viewer, Role::Approver, Role::Applicant] {
            let (s, _) = correct(&app, role, "/api/v1/events/1/0/1/plate", good.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{role:?}");
        }
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/events/1/0/1/plate",
                None,
                Some(good.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // The office corrects at any gate.
        let (s, _) = correct(
            &app,
            Role::Security,
            "/api/v1/events/2/0/1/plate",
            good.clone(),
        )
        .await;
        assert_eq!(s, StatusCode::OK);

        // No such event: 404 with a message; a barrier movement names no plate: 409.
        let (s, missing) = app
            .call_lang(
                Method::POST,
                "/api/v1/events/1/0/99/plate",
                Some(Role::Guard),
                Some(good.clone()),
                "zh-CN",
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(missing["message"], "没有这条通行记录");
        let (s, plateless) = app
            .call_lang(
                Method::POST,
                "/api/v1/events/1/0/2/plate",
                Some(Role::Guard),
                Some(good.clone()),
                "en",
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{plateless}");
        assert!(
            plateless["message"]
                .as_str()
                .unwrap()
                .contains("names no plate"),
            "{plateless}"
        );
        // A path that is no event key is refused before anything is looked up.
        let (s, _) = correct(&app, Role::Guard, "/api/v1/events/1/x/1/plate", good).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM plate_corrections").await,
            1
        );
    }
}

#[tokio::test]
async fn the_corrections_of_a_page_of_events_are_read_in_one_go_by_their_keys() {
    use gatehouse::central::db::Actor;
    use gatehouse::central::repo::corrections::{self, NewCorrection};
    use gatehouse::domain::Plate;
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let t0 = Utc::now().timestamp_millis() - 60_000;
        let batch: Vec<JournalEvent> = (1..=150)
            .map(|seq| camera_decision(seq, t0 + seq as i64, "京A8B345", 62))
            .collect();
        ingest(&app, 1, &batch).await;
        let fix = |plate: &str| NewCorrection {
            plate: Plate::parse(plate).unwrap(),
            colour: None,
            note: String::new(),
        };
        for seq in [2, 101, 150] {
            corrections::correct(&app.db, &Actor::system(), (1, 0, seq), &fix("京A88345"))
                .await
                .unwrap();
        }
        // More keys than one statement takes, and keys of events that have none.
        let keys: Vec<_> = (1..=150)
            .map(|seq| (1, 0, seq))
            .chain([(2, 0, 2)])
            .collect();
        let found = corrections::for_events(&app.db, &keys).await.unwrap();
        let mut seqs: Vec<i64> = found.keys().map(|k| k.2).collect();
        seqs.sort();
        assert_eq!(seqs, vec![2, 101, 150]);
        assert_eq!(found[&(1, 0, 101)].plate, "京A88345");
        assert_eq!(
            found[&(1, 0, 101)].operator,
            "",
            "the system has no operator name"
        );
        assert!(
            corrections::for_events(&app.db, &[])
                .await
                .unwrap()
                .is_empty()
        );
    }
}
