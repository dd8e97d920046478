//! A visitor's signed pass end to end (issue 21's acceptance): a host books their visitor
//! through the API, the visitor's pass page shows the QR code, the gate receives the site's
//! pass key through the sync over mutual TLS, and then — with the centre's sync stopped — the
//! simulated QR scanner sends the pass's text at the lane over a real pty: the barrier opens
//! once, the second scan is refused as used, a pass with one byte changed is refused as forged.
//! A second visitor's booking is cancelled at the centre; once the centre is back and the
//! cancellation has reached the gate, that pass is refused as revoked. SQLite and (with
//! `DATABASE_URL`) PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Actor;
use gatehouse::central::repo::operators;
use gatehouse::domain::{BookingId, BookingStatus, ReasonCode};
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::journal::DecisionRecord;
use serde_json::json;
use tower::ServiceExt;

use crate::support::gate::{GateOptions, LaneSpec, TestGate, spawn_gate_with, wait_for};
use crate::support::harness::{APPROVER_DEPARTMENT, each_database};
use crate::support::{Central, Syncing};

/// A whole minute, `minutes` from now, in RFC 3339.
fn minute(minutes: i64) -> String {
    let t = Utc::now().timestamp() / 60 * 60 + minutes * 60;
    Utc.timestamp_opt(t, 0).single().unwrap().to_rfc3339()
}

/// A host (王老师, staff number T2003117) whose applicant account is the harness's applicant.
async fn host(central: &Central) -> i64 {
    let db = &central.app.db;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO persons (name, category, department, phone, id_card, staff_no, email, \
         created_ms, updated_ms) VALUES ('王老师', 'staff', $1, '13812345678', '', 'T2003117', \
         'wang@example.edu.cn', 0, 0) RETURNING id",
    )
    .bind(APPROVER_DEPARTMENT)
    .fetch_one(db.pool())
    .await
    .unwrap();
    let office = Actor {
        operator_id: None,
        name: "tester".into(),
    };
    operators::link_person(db, &office, central.app.operator_id(Role::Applicant), id)
        .await
        .unwrap();
    id
}

/// The host books `plate` for the coming hours, approved at once; the booking's id.
async fn host_books(central: &Central, plate: &str) -> i64 {
    let (status, b) = central
        .app
        .call(
            Method::POST,
            "/api/v1/host/visits",
            Some(Role::Applicant),
            Some(json!({
                "province": "苏",
                "plate": plate,
                "visitor_name": "李娜",
                "visitor_phone": "13912345678",
                "purpose": "学术交流",
                "slot_from": minute(0),
                "slot_until": minute(180),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(b["status"], "approved", "{b}");
    b["id"].as_i64().unwrap()
}

/// The booking's pass as the office's API shows it: its page and its text.
async fn pass_of(central: &Central, booking: i64) -> (String, String) {
    let info = central
        .call(
            Method::GET,
            &format!("/api/v1/bookings/{booking}/pass"),
            Role::Security,
            None,
        )
        .await;
    (
        info["link"].as_str().expect("a pass page").to_string(),
        info["token"].as_str().expect("the pass text").to_string(),
    )
}

/// The public page at `path`, as a visitor's phone gets it (not signed in).
async fn page(central: &Central, path: &str) -> (StatusCode, String) {
    let response = gatehouse::web::site(central.app.state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The pass's text with one byte of its signed content changed (still well-formed base64url).
fn one_byte_changed(text: &str) -> String {
    let (prefix, body) = text.split_at(gatehouse::wire::pass::PREFIX.len());
    let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
    // The booking id's last byte: the claims still parse, the signature no longer fits.
    bytes[6] ^= 0x01;
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&bytes))
}

/// A vehicle drives onto the entry loop and its driver holds `text` to the scanner; the decision.
async fn scan_at_entry(gate: &TestGate, text: &str) -> DecisionRecord {
    gate.arrive("entry").await;
    let after = gate.last_seq().await;
    gate.scan("entry", text).await;
    gate.wait_decision("entry", after).await.1
}

/// The vehicle at the entry backs away (refused) or drives on (let in); the lane is idle again.
async fn leave_entry(gate: &TestGate, opened: bool) {
    let l = gate.lane("entry");
    if opened {
        l.wait_arm(ArmState::Open).await;
        l.set_safety(true);
        gate.wait_lane_state("entry", "passing").await;
        l.set_presence(false);
        l.wait_polls(2).await;
        l.set_safety(false);
        l.wait_arm(ArmState::Closed).await;
    } else {
        l.set_presence(false);
        l.wait_polls(2).await;
    }
    gate.wait_lane_state("entry", "idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_visitor_enters_once_on_the_pass_with_the_centre_stopped_and_a_replayed_forged_or_revoked_pass_never_opens()
 {
    for t in each_database().await {
        let keys = tempfile::tempdir().unwrap();
        let key_dir = gatehouse::pki::pass_key_dir(keys.path());
        gatehouse::pki::new_pass_key(&key_dir, Utc::now()).unwrap();
        let central = Central::start_with_pass_keys(t, &key_dir).await;
        host(&central).await;

        // The host books two visitors; the first visitor's page shows the pass as a QR code.
        let first = host_books(&central, "ｅ·８８８８８").await;
        let second = host_books(&central, "E66666").await;
        let (link, text) = pass_of(&central, first).await;
        let (status, html) = page(&central, &link).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<svg"), "the pass page draws the QR code");
        assert!(html.contains("苏E88888") && html.contains(&text), "{link}");
        let (_, revoked_text) = pass_of(&central, second).await;

        // The gate gets its data (the pass key among it) over mutual TLS.
        let gate = spawn_gate_with(
            &[LaneSpec::entry("entry"), LaneSpec::exit("exit")],
            GateOptions {
                qr: true,
                ..GateOptions::default()
            },
        )
        .await;
        let mut sync = Syncing::connect(&central, 1).await;
        sync.pull_snapshot(&gate).await;
        sync.run(&gate);

        // The centre stops: the gate decides alone.
        let mut central = central;
        central.stop_sync().await;
        sync.proxy.cut();

        let d = scan_at_entry(&gate, &text).await;
        assert!(d.granted, "{d:?}");
        assert_eq!(d.reason, ReasonCode::GrantedPass);
        assert_eq!(d.plate.as_deref(), Some("苏E88888"));
        assert_eq!(d.pass.as_ref().map(|p| p.booking_id), Some(first));
        leave_entry(&gate, true).await;
        assert_eq!(
            gate.lane("entry").opens().len(),
            1,
            "the barrier opened once"
        );

        // The same pass again (photographed, forwarded): used.
        let d = scan_at_entry(&gate, &text).await;
        assert_eq!(d.reason, ReasonCode::DeniedPassUsed, "{d:?}");
        leave_entry(&gate, false).await;
        // One byte changed: forged.
        let d = scan_at_entry(&gate, &one_byte_changed(&revoked_text)).await;
        assert_eq!(d.reason, ReasonCode::DeniedPassForged, "{d:?}");
        leave_entry(&gate, false).await;
        assert_eq!(gate.lane("entry").opens().len(), 1, "no second OPEN");

        // The office cancels the second visit; the centre comes back and the cancellation
        // reaches the gate like any change; that pass is then refused as revoked.
        central
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{second}/cancel"),
                Role::Security,
                None,
            )
            .await;
        central.restart_sync().await;
        sync.proxy.restore();
        wait_for("the cancellation to reach the gate", || async {
            let index = gate.handle().shared().index();
            let b = index.booking(BookingId(second as u32))?;
            (b.status == BookingStatus::Cancelled).then_some(())
        })
        .await;
        let d = scan_at_entry(&gate, &revoked_text).await;
        assert_eq!(d.reason, ReasonCode::DeniedPassRevoked, "{d:?}");
        leave_entry(&gate, false).await;
        assert_eq!(gate.lane("entry").opens().len(), 1);
        gate.lane("entry").assert_no_close_over_vehicle();

        // The entry reached the centre once it was back: the pass is used there too.
        wait_for("the entry to reach the centre", || async {
            let used: Option<i64> =
                sqlx::query_scalar("SELECT pass_used_entry_ms FROM visitor_bookings WHERE id = $1")
                    .bind(first)
                    .fetch_one(central.app.db.pool())
                    .await
                    .ok()?;
            used.map(|_| ())
        })
        .await;
        sync.stop().await;
        gate.shutdown().await;
    }
}
