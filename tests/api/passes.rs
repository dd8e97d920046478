//! Visitor passes (访客通行码) at the centre: an approval issues a pass signed with the site's
//! key that says the booking's plate, window and gates; cancelling revokes it; rotated keys
//! stay with the gates through their overlap and are dropped after; bad pass fields are 422s in
//! Chinese; the pass page shows the QR code and reveals nothing for an unknown link; a granted
//! single-use pass decision uploaded by a gate consumes the booking's pass once. SQLite and
//! (with `DATABASE_URL`) PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::passes;
use gatehouse::domain::permit::DirectionSet;
use gatehouse::domain::reason::ReasonCode;
use gatehouse::domain::{GateId, UtcMinute};
use gatehouse::pki;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent, PassUse};
use gatehouse::wire::pass::{self, PassGates};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count};
use crate::permits::{fields, person};

fn minute(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp() / 60 * 60, 0)
        .single()
        .unwrap()
}

/// The app with a pass key made in a temporary PKI folder; the key's public half.
async fn app_with_key(t: crate::harness::TestDb) -> (TestApp, tempfile::TempDir, [u8; 32]) {
    let app = TestApp::spawn(t).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = pki::pass_key_dir(dir.path());
    pki::new_pass_key(&keys, Utc::now()).unwrap();
    let signer = passes::start(&app.db, &keys, true).await.unwrap();
    assert_eq!(signer.kid(), Some(1));
    let public = hex::decode(&pki::list_pass_keys(&keys).unwrap()[0].public_key).unwrap();
    let app = app.with_state(|s| s.passes = signer);
    (app, dir, public.try_into().unwrap())
}

fn body(host: i64, extra: Value) -> Value {
    let mut b = json!({
        "host_id": host,
        "purpose": "学术讲座",
        "plate": "京A·12345",
        "driver_name": "周九",
        "driver_phone": "13812345678",
        "slot_from": minute(Utc::now() - Duration::minutes(10)).to_rfc3339(),
        "slot_until": minute(Utc::now() + Duration::hours(3)).to_rfc3339(),
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// A booking made and approved by the security office; its id.
async fn approved(app: &TestApp, extra: Value) -> i64 {
    let host = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
    let (status, b) = app
        .call(
            Method::POST,
            "/api/v1/bookings",
            Some(Role::Security),
            Some(body(host, extra)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (status, b) = app
        .call(
            Method::POST,
            &format!("/api/v1/bookings/{id}/approve"),
            Some(Role::Security),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    id
}

async fn pass_of(app: &TestApp, id: i64, role: Role) -> (StatusCode, Value) {
    app.call(
        Method::GET,
        &format!("/api/v1/bookings/{id}/pass"),
        Some(role),
        None,
    )
    .await
}

#[tokio::test]
async fn an_approved_booking_gets_a_pass_whose_token_verifies_and_says_its_plate_window_and_gates()
{
    for t in crate::harness::each_database().await {
        let (app, _dir, public) = app_with_key(t).await;
        let id = approved(&app, json!({"gates": "1;2:exit", "single_use": false})).await;
        let (status, info) = pass_of(&app, id, Role::Security).await;
        assert_eq!(status, StatusCode::OK, "{:?}: {info}", app.kind);
        assert_eq!(info["state"], "valid");
        assert_eq!(info["state_text"], "有效");
        let token = info["token"].as_str().unwrap();
        let claims = pass::verify(token, |kid| (kid == 1).then_some(public)).unwrap();
        let booking = gatehouse::central::repo::bookings::get(&app.db, id)
            .await
            .unwrap();
        assert_eq!(claims.booking_id as i64, id);
        assert_eq!(claims.plate, "京A12345");
        assert_eq!(
            claims.valid_from,
            UtcMinute((booking.slot_from.timestamp() / 60) as u32)
        );
        assert_eq!(
            claims.valid_until,
            UtcMinute((booking.slot_until.timestamp() / 60) as u32)
        );
        assert!(!claims.single_use);
        assert_eq!(
            claims.gates,
            PassGates::Some(vec![
                (GateId(1), DirectionSet::BOTH),
                (GateId(2), DirectionSet::EXIT)
            ])
        );
        // Another key's public half does not verify it.
        assert!(pass::verify(token, |_| Some([7u8; 32])).is_err());
        let link = info["link"].as_str().unwrap();
        assert!(link.starts_with("/pass/") && link.len() == "/pass/".len() + 22);
        assert_eq!(
            passes::link_for_booking(&app.db, id)
                .await
                .unwrap()
                .as_deref(),
            Some(link)
        );
        // The default: every gate both ways, single use.
        let id2 = approved(&app, json!({})).await;
        let (_, info2) = pass_of(&app, id2, Role::Admin).await;
        let claims = pass::read_unverified(info2["token"].as_str().unwrap()).unwrap();
        assert!(claims.single_use);
        assert_eq!(claims.gates, PassGates::Every(DirectionSet::BOTH));
        assert_ne!(info2["link"], info["link"]);
        // Only the office and the booking's department read the pass.
        assert_eq!(
            pass_of(&app, id, Role::Viewer).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            pass_of(&app, id, Role::Guard).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(pass_of(&app, id, Role::Approver).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn cancelling_an_approved_booking_revokes_its_pass_and_a_pending_one_has_none() {
    for t in crate::harness::each_database().await {
        let (app, _dir, _) = app_with_key(t).await;
        let id = approved(&app, json!({})).await;
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{id}/cancel"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, info) = pass_of(&app, id, Role::Security).await;
        assert_eq!(
            (info["state"].as_str(), info["state_text"].as_str()),
            (Some("revoked"), Some("已作废"))
        );
        assert_eq!(
            count(
                &app.db,
                &format!("SELECT COUNT(*) FROM visitor_passes WHERE booking_id = {id} AND status = 'revoked'")
            )
            .await,
            1
        );
        // A pending booking has no pass yet, and says so.
        let host = person(&app.db, "李四", APPROVER_DEPARTMENT).await;
        let (_, b) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Security),
                Some(body(host, json!({}))),
            )
            .await;
        let (status, info) = pass_of(&app, b["id"].as_i64().unwrap(), Role::Security).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["state"], "none");
        assert!(info["link"].is_null());
    }
}

#[tokio::test]
async fn without_a_pass_key_an_approval_still_succeeds_and_the_pass_says_why_there_is_none() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let id = approved(&app, json!({})).await;
        let (status, info) = pass_of(&app, id, Role::Security).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["state"], "none");
        assert!(
            info["note"].as_str().unwrap().contains("未配置通行码密钥"),
            "{info}"
        );
    }
}

#[tokio::test]
async fn a_rotated_key_is_sent_to_gates_through_its_overlap_and_dropped_after() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let dir = tempfile::tempdir().unwrap();
        let keys = pki::pass_key_dir(dir.path());
        let t0 = Utc::now() - Duration::hours(1);
        pki::new_pass_key(&keys, t0).unwrap();
        passes::start(&app.db, &keys, true).await.unwrap();
        let head = |db: &gatehouse::central::db::Db| {
            let db = db.clone();
            async move {
                count(
                    &db,
                    "SELECT COUNT(*) FROM change_log WHERE entity = 'pass_key'",
                )
                .await
            }
        };
        assert_eq!(head(&app.db).await, 1);
        // Loading the same keys again changes nothing.
        passes::start(&app.db, &keys, true).await.unwrap();
        assert_eq!(head(&app.db).await, 1);

        let now = Utc::now();
        pki::rotate_pass_key(&keys, Duration::days(8), now).unwrap();
        let signer = passes::start(&app.db, &keys, true).await.unwrap();
        assert_eq!(signer.kid(), Some(2), "the new key signs");
        assert_eq!(head(&app.db).await, 3, "key 1 rotated out, key 2 new");
        let mut conn = app.db.pool().acquire().await.unwrap();
        let sent = passes::keys_for_gates(&mut conn, now.timestamp_millis())
            .await
            .unwrap();
        assert_eq!(sent.iter().map(|k| k.kid).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            sent[0].retire_after_ms,
            Some((now + Duration::days(8)).timestamp_millis())
        );
        assert_eq!(sent[1].retire_after_ms, None);
        // In its overlap still; after it, only the new key.
        let later = (now + Duration::days(7)).timestamp_millis();
        assert_eq!(
            passes::keys_for_gates(&mut conn, later)
                .await
                .unwrap()
                .len(),
            2
        );
        let after = (now + Duration::days(8) + Duration::minutes(1)).timestamp_millis();
        let sent = passes::keys_for_gates(&mut conn, after).await.unwrap();
        assert_eq!(sent.iter().map(|k| k.kid).collect::<Vec<_>>(), vec![2]);
    }
}

#[tokio::test]
async fn bad_pass_gates_or_use_are_a_422_naming_the_field_in_chinese_and_nothing_is_stored() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let host = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        for (extra, code, zh) in [
            (
                json!({"gates": "9"}),
                "unknown_gate",
                "通行码的大门不存在：9",
            ),
            (
                json!({"gates": "1:sideways"}),
                "invalid_gates",
                "通行大门格式不正确",
            ),
            (json!({"gates": ""}), "invalid_gates", "通行大门格式不正确"),
        ] {
            let (status, b) = app
                .call(
                    Method::POST,
                    "/api/v1/bookings",
                    Some(Role::Security),
                    Some(body(host, extra.clone())),
                )
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{extra}: {b}");
            assert!(
                fields(&b).contains(&("gates".to_string(), code.to_string())),
                "{extra}: {b}"
            );
            let message = b["fields"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(zh), "{extra}: {b}");
        }
        let (status, b) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Security),
                Some(body(host, json!({"single_use": "yes"}))),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(
            fields(&b),
            vec![("single_use".to_string(), "invalid_type".to_string())]
        );
        assert!(
            b["fields"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("字段 single_use 无效"),
            "{b}"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM visitor_bookings").await,
            0
        );
    }
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let site = gatehouse::web::site(app.state.clone());
    let response = site
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_pass_page_shows_the_qr_code_and_token_and_an_unknown_link_is_a_404_that_reveals_nothing()
 {
    for t in crate::harness::each_database().await {
        let (app, _dir, _) = app_with_key(t).await;
        let id = approved(&app, json!({"gates": "1"})).await;
        let (_, info) = pass_of(&app, id, Role::Security).await;
        let link = info["link"].as_str().unwrap().to_string();
        let token = info["token"].as_str().unwrap();
        let (status, html) = page(&app, &link).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<svg"), "an inline SVG QR code");
        assert!(html.contains(token), "the token in the details");
        for words in [
            "有效",
            "请将二维码对准车道扫码器",
            "京A12345",
            "北门",
            "张三",
        ] {
            assert!(html.contains(words), "{words}");
        }
        assert!(!html.contains("13812345678"), "never the driver's phone");
        for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
            assert!(!html.contains(outside), "no outside asset: {outside}");
        }
        for bad in [
            "/pass/AAAAAAAAAAAAAAAAAAAAAA",
            "/pass/x",
            "/pass/%27%20OR%201=1",
        ] {
            let (status, html) = page(&app, bad).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
            assert!(html.contains("通行码不存在"), "{bad}: {html}");
            assert!(!html.contains("京A12345") && !html.contains("<svg"));
        }
        // Revoked: the page says so and shows no code to scan.
        app.call(
            Method::POST,
            &format!("/api/v1/bookings/{id}/cancel"),
            Some(Role::Security),
            None,
        )
        .await;
        let (status, html) = page(&app, &link).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("已作废") && !html.contains("<svg"));
    }
}

fn pass_decision(seq: u64, booking_id: i64, direction: &str, single_use: bool) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc::now(),
        lane: direction.into(),
        body: EventBody::Decision(DecisionRecord {
            direction: direction.into(),
            credential: "pass".into(),
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: Some("京A12345".into()),
            granted: true,
            reason: ReasonCode::GrantedPass,
            flags: vec![],
            permit_id: None,
            vehicle_id: None,
            holder: None,
            category: Some("visitor".into()),
            data_version: 3,
            decide_ns: 900,
            camera: None,
            pass: Some(PassUse {
                booking_id,
                key_id: 1,
                single_use,
            }),
        }),
    }
}

#[tokio::test]
async fn a_granted_single_use_pass_decision_consumes_its_direction_once_with_one_change_for_the_gates()
 {
    for t in crate::harness::each_database().await {
        let (app, _dir, _) = app_with_key(t).await;
        let id = approved(&app, json!({})).await;
        let changes = || {
            let db = app.db.clone();
            async move {
                count(
                    &db,
                    &format!(
                        "SELECT COUNT(*) FROM change_log WHERE entity = 'visitor_booking' AND entity_id = '{id}'"
                    ),
                )
                .await
            }
        };
        let before = changes().await;
        let entry = pass_decision(1, id, "entry", true);
        let out = gatehouse::central::ingest::accept(&app.state, 1, std::slice::from_ref(&entry))
            .await
            .unwrap();
        assert_eq!(out.stored, 1);
        assert_eq!(changes().await, before + 1, "one change for the gates");
        let b = gatehouse::central::repo::bookings::get(&app.db, id)
            .await
            .unwrap();
        assert!(b.pass_used_entry_at.is_some() && b.pass_used_exit_at.is_none());
        assert_eq!(b.status.as_str(), "arrived");
        // The same upload again, and another gate's entry on the same pass: nothing more.
        gatehouse::central::ingest::accept(&app.state, 1, &[entry])
            .await
            .unwrap();
        gatehouse::central::ingest::accept(&app.state, 2, &[pass_decision(1, id, "entry", true)])
            .await
            .unwrap();
        assert_eq!(changes().await, before + 1);
        let again = gatehouse::central::repo::bookings::get(&app.db, id)
            .await
            .unwrap();
        assert_eq!(again.pass_used_entry_at, b.pass_used_entry_at);
        // The exit consumes the other direction and ends the visit.
        gatehouse::central::ingest::accept(&app.state, 1, &[pass_decision(2, id, "exit", true)])
            .await
            .unwrap();
        assert_eq!(changes().await, before + 2);
        let b = gatehouse::central::repo::bookings::get(&app.db, id)
            .await
            .unwrap();
        assert!(b.pass_used_exit_at.is_some());
        assert_eq!(b.status.as_str(), "left");
        let (_, info) = pass_of(&app, id, Role::Security).await;
        assert_eq!(info["state"], "used");
    }
}

#[test]
fn the_pass_key_commands_make_a_private_key_rotate_it_with_an_overlap_and_never_print_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["pki", "pass-key"])
            .args(args)
            .args(["--dir", pki_dir])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run(&["list"]);
    assert!(ok && text.contains("no pass keys"), "{text}");
    let (ok, text) = run(&["new"]);
    assert!(ok, "{text}");
    let keys = pki::pass_key_dir(dir.path());
    let key = keys.join("pass-1.p8");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (ok, text) = run(&["new"]);
    assert!(
        !ok && text.contains("rotate"),
        "a second `new` is refused: {text}"
    );
    let (ok, text) = run(&["rotate", "--overlap-days", "3"]);
    assert!(ok && text.contains("key   2"), "{text}");
    let (ok, text) = run(&["list"]);
    assert!(
        ok && text.contains("current") && text.contains("verifies until"),
        "{text}"
    );
    // Whatever was printed, no private key is in it.
    let der = std::fs::read(&key).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
    assert!(!text.contains(&hex::encode(&der)) && !text.contains(&b64));
    let listed = pki::list_pass_keys(&keys).unwrap();
    assert_eq!(listed.len(), 2);
    let overlap = listed[0].meta.retire_after.unwrap() - listed[0].meta.created;
    assert!(overlap > Duration::days(2) && overlap < Duration::days(4));
}

#[tokio::test]
async fn a_server_that_requires_a_pass_key_refuses_to_start_without_one_and_names_the_folder() {
    for t in crate::harness::each_database().await {
        let dir = tempfile::tempdir().unwrap();
        let keys = pki::pass_key_dir(dir.path());
        let refused = passes::start(&t.db, &keys, true).await.unwrap_err();
        let text = refused.to_string();
        assert!(
            text.contains("require_key")
                && text.contains("pass-keys")
                && text.contains("pass-key new"),
            "{text}"
        );
        let signer = passes::start(&t.db, &keys, false).await.unwrap();
        assert_eq!(signer.kid(), None, "not required: starts without passes");
    }
}
