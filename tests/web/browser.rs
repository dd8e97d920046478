//! Browser tests: the booth console, visitor registration, the alarm and the booth fallback
//! page in a real headless Chromium, against a real central server and a real gate whose lanes
//! run on pseudo-terminals with the device simulators. Screenshots go to
//! `target/web-screenshots/` (or `$GATEHOUSE_SCREENSHOTS`).

use std::time::Duration;

use axum::routing::post;
use gatehouse::central::repo::events::{self, EventQuery};
use gatehouse::gate::booth::{BoothConfig, BoothGuard};
use gatehouse::gate::store::BlacklistRow;
use gatehouse::sim::barrier::ArmState;
use sqlx::Row;
use tokio::sync::mpsc;

use crate::support::browser;
use crate::support::gate::{
    LaneSpec, TestGate, epc, now_minute, permit, spawn_gate, vehicle_with_tag,
};
use crate::support::{Central, PASSWORD, TestDb, forward_gate_events, seed, sqlite};

/// A central server with gates 1 and 2, and gate 1 running on simulated lanes `entry` and
/// `exit` with three vehicles: 京A12345 (valid permit, tag 1), 京B54321 (revoked permit,
/// tag 2) and 京C66666 (blacklisted plate, tag 3).
struct Site {
    gate: TestGate,
    central: Central,
    db: TestDb,
}

async fn site() -> Site {
    let db = sqlite().await;
    seed(&db.db).await;
    let central = Central::start(&db.db).await;
    let gate = spawn_gate(&[LaneSpec::entry("entry"), LaneSpec::exit("exit")]).await;
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;
    let mut revoked = permit(2);
    revoked.status = "revoked".into();
    gate.seed(vehicle_with_tag(2, "京B54321", revoked, &epc(2)))
        .await;
    let mut blacklisted = vehicle_with_tag(3, "京C66666", permit(3), &epc(3));
    blacklisted.blacklist = vec![BlacklistRow {
        id: 1,
        subject_kind: "plate".into(),
        subject: "京C66666".into(),
        colour: None,
        reason: "测试黑名单".into(),
        valid_from: now_minute() - 60,
        valid_until: now_minute() + 60,
        alarm: "urgent".into(),
    }];
    gate.seed(blacklisted).await;
    Site { gate, central, db }
}

impl Site {
    /// Uploads the gate's new events to the centre (the stand-in for the sync).
    async fn sync(&self) {
        forward_gate_events(&self.central.state, 1, &self.gate).await;
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.db.pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_guard_sees_a_granted_vehicle_within_a_second_and_a_denial_with_its_reason_in_chinese_and_english()
 {
    let site = site().await;
    let Some(b) = browser::open("live view").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;

    // A vehicle with a valid tag at the entry lane.
    let (_, decision) = site.gate.present("entry", &epc(1)).await;
    assert!(decision.granted);
    // The centre learns of it (through the stand-in for the sync); from then on the push to the
    // page is the console's job, and must take well under a second.
    let received = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    site.sync().await;
    b.wait_text("#lane-status-1-entry .verdict", "放行").await;
    // When the page applied the update, by the same clock (the browser runs on this machine).
    let applied = b
        .js("return Number(document.body.dataset.updated)")
        .await
        .as_i64()
        .unwrap();
    let latency = Duration::from_millis((applied - received).max(0) as u64);
    assert!(
        latency < Duration::from_secs(1),
        "granted shown {latency:?} after the centre got it"
    );
    eprintln!("granted: shown {latency:?} after the centre received the decision");
    let card = b.text("#lane-status-1-entry").await;
    for expected in ["京A12345", "持证人1", "教职工", "E200309888190072214036"] {
        assert!(card.contains(expected), "the lane shows {expected}: {card}");
    }

    // A vehicle whose permit was revoked, at the exit lane.
    let (_, denied) = site.gate.present("exit", &epc(2)).await;
    assert_eq!(denied.reason, "denied_revoked");
    site.sync().await;
    b.wait_text("#lane-status-1-exit .verdict", "禁止通行")
        .await;
    b.wait_text("#lane-status-1-exit .reason", "通行证已吊销")
        .await;
    assert!(
        b.text("#recent-1").await.contains("京B54321"),
        "recent passages list it"
    );
    b.screenshot("console-live-zh").await;

    // A blacklisted vehicle: a visible alert and a sound.
    site.gate.back_away("exit", &epc(2)).await;
    site.gate.present("exit", &epc(3)).await;
    site.sync().await;
    b.wait_text("#alert", "黑名单车辆").await;
    let beeps = b
        .js("return Number(document.body.dataset.beeps || 0)")
        .await;
    assert!(beeps.as_i64().unwrap() >= 1, "the alert sounded");
    b.wait_for("the blacklist verdict style", || async {
        let class = b
            .client
            .find(fantoccini::Locator::Css("#lane-status-1-exit .verdict"))
            .await
            .ok()?
            .attr("class")
            .await
            .ok()??;
        class.contains("blacklist").then_some(())
    })
    .await;
    b.screenshot("console-live-blacklist").await;

    // Switch to English: the same lanes, in English.
    b.find("#lang-switch").await.click().await.unwrap();
    b.wait_text("#lane-status-1-entry .verdict", "GRANTED")
        .await;
    b.wait_text("#lane-status-1-exit .reason", "BLACKLISTED")
        .await;
    b.wait_text("#recent-1", "Permit revoked").await;
    b.screenshot("console-live-en").await;
    b.close().await;
    site.gate.shutdown().await;
}

#[tokio::test]
async fn a_manual_open_without_a_reason_is_refused_and_with_one_it_is_sent_and_audited_using_the_keyboard_alone()
 {
    let site = site().await;
    let Some(b) = browser::open("manual open").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    let form = "#gate-1 article.lane:first-child form.command";
    b.find(&format!("{form} button.open"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_text(&format!("{form} .form-status"), "请选择原因")
        .await;
    let invalid = b
        .find(&format!("{form} select"))
        .await
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(
        invalid.as_deref(),
        Some("true"),
        "the reason field is marked"
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command'")
            .await,
        0
    );
    site.gate.lane("entry").assert_never_opened();

    // Keyboard only: Alt+1 goes to lane 1's reason, arrows choose, Tab to the note, Enter sends.
    let body = b.find("body").await;
    body.send_keys("\u{E00A}1\u{E000}").await.unwrap();
    let active = b.client.active_element().await.unwrap();
    assert_eq!(
        active.attr("id").await.unwrap().as_deref(),
        Some("reason-1-entry")
    );
    active.send_keys("\u{E015}\u{E015}\u{E015}").await.unwrap(); // ↓↓↓: police/fire/ambulance
    active.send_keys("\u{E004}").await.unwrap(); // Tab
    let note = b.client.active_element().await.unwrap();
    assert_eq!(
        note.attr("id").await.unwrap().as_deref(),
        Some("note-1-entry")
    );
    note.send_keys("120急救车\u{E007}").await.unwrap(); // Enter submits (Open)
    b.wait_text(&format!("{form} .form-status"), "闸口离线")
        .await;
    let row = sqlx::query(
        "SELECT operator_name, after_json FROM audit_log WHERE action = 'manual_command'",
    )
    .fetch_one(site.db.db.pool())
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), "guard");
    let after: serde_json::Value = serde_json::from_str(&row.get::<String, _>(1)).unwrap();
    assert_eq!(after["reason"], "emergency_vehicle");
    assert_eq!(after["command"], "open");
    assert_eq!(after["note"], "120急救车");
    b.close().await;
    site.gate.shutdown().await;
}

#[tokio::test]
#[ignore = "needs gate sync delivery (issue 5); enabled at merge"]
async fn a_manual_open_with_a_reason_raises_the_simulated_arm_and_appears_in_the_audit_log() {
    let site = site().await;
    let Some(b) = browser::open("manual open delivered").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    let form = "#gate-1 article.lane:first-child form.command";
    b.find(&format!("{form} select"))
        .await
        .select_by_value("emergency_vehicle")
        .await
        .unwrap();
    b.find(&format!("{form} button.open"))
        .await
        .click()
        .await
        .unwrap();
    site.gate.lane("entry").wait_arm(ArmState::Open).await;
    b.wait_text(&format!("{form} .form-status"), "闸口已执行")
        .await;
    site.sync().await;
    b.wait_text("#lane-status-1-entry .verdict", "手动抬杆")
        .await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command' AND after_json LIKE '%\"done\"%'").await,
        1
    );
    b.close().await;
    site.gate.shutdown().await;
}

#[tokio::test]
async fn a_visitor_registered_through_the_form_is_recorded_and_leaves_and_an_invalid_plate_saves_nothing()
 {
    let site = site().await;
    let Some(b) = browser::open("visitor registration").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console/visitors")
        .await;
    let fill = |id: &'static str, text: &'static str| {
        let b = &b;
        async move {
            let e = b.find(&format!("#{id}")).await;
            e.clear().await.unwrap();
            e.send_keys(text).await.unwrap();
        }
    };
    // 京 + "A1234": one character short.
    fill("plate", "a1234").await;
    fill("driver_name", "李四").await;
    fill("driver_phone", "13812345678").await;
    fill("host_name", "王老师").await;
    fill("department", "计算机学院").await;
    fill("purpose", "学术交流").await;
    b.find("#visit-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let message = b.wait_text("[data-error-for=plate]", "车牌").await;
    assert!(!message.is_empty());
    b.screenshot("visitor-registration-invalid-plate").await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM visits").await,
        0,
        "nothing saved"
    );

    fill("plate", "a·12345").await;
    b.find("#visit-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#visit-form .form-status", "已登记").await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM visits WHERE plate = '京A12345' AND left_ms IS NULL")
            .await,
        1
    );
    // The page reloads with the visitor on campus; the guard records the departure.
    b.wait_text("#open-visits", "京A12345").await;
    b.screenshot("visitor-registration").await;
    b.find("#open-visits tr[data-plate='京A12345'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("the visit to close", || async {
        (site
            .count("SELECT COUNT(*) FROM visits WHERE left_ms IS NOT NULL")
            .await
            == 1)
            .then_some(())
    })
    .await;
    b.wait_for("the list to drop it", || async {
        (!b.text("#open-visits").await.contains("京A12345")).then_some(())
    })
    .await;
    b.close().await;
    site.gate.shutdown().await;
}

#[tokio::test]
async fn the_alarm_button_appears_on_the_security_office_page_at_once_and_calls_the_police_webhook()
{
    let site = site().await;
    // The police link: a webhook receiver that hands over what it gets.
    let (tx, mut rx) = mpsc::unbounded_channel::<serde_json::Value>();
    let hook = axum::Router::new().route(
        "/police",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    let hook_task = tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    gatehouse::central::repo::alarms::set_webhook(
        &site.db.db,
        &gatehouse::central::db::Actor::system(),
        Some(&format!("http://{hook_addr}/police")),
    )
    .await
    .unwrap();

    let Some(office) = browser::open("alarm (office)").await else {
        return;
    };
    let base = site.central.url("");
    office.sign_in(&base, "security", PASSWORD, "/office").await;
    office.wait_live().await;
    let booth = browser::open("alarm (booth)").await.unwrap();
    booth.sign_in(&base, "guard", PASSWORD, "/console").await;
    // F9: the one-button alarm, from the keyboard.
    booth
        .find("body")
        .await
        .send_keys("\u{E039}")
        .await
        .unwrap();
    booth.wait_text("#flash", "已报警").await;
    office.wait_text("#alert", "一键报警").await;
    office.wait_text("#alarms", "北门").await;
    assert!(office.text("#alarms").await.contains("guard"));
    let call = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(call["event"], "alarm");
    assert_eq!(call["alarm"]["gate_name"], "北门");
    assert_eq!(call["alarm"]["raised_by"], "guard");
    office.wait_text("#alarms", "sent").await;
    office.screenshot("office-alarm").await;
    office.find("#alarms button").await.click().await.unwrap();
    office.wait_text("#alarms", "已确认").await;
    booth.close().await;
    office.close().await;
    hook_task.abort();
    site.gate.shutdown().await;
}

#[tokio::test]
async fn with_the_central_server_stopped_the_booth_page_opens_the_lane_and_the_override_reaches_the_centre_after_restart()
 {
    let Site { gate, central, db } = site().await;
    let hash = gatehouse::central::api::auth::hash_password_blocking("Booth-PIN-2468");
    let booth_router = gatehouse::gate::booth::routes(
        gate.shared_handle(),
        BoothConfig {
            guard: vec![BoothGuard {
                username: "guard".into(),
                password_hash: hash,
            }],
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let booth_url = format!("http://{}", listener.local_addr().unwrap());
    let booth_task =
        tokio::spawn(async move { axum::serve(listener, booth_router).await.unwrap() });
    central.stop().await;

    let Some(b) = browser::open("booth fallback").await else {
        return;
    };
    b.goto(&booth_url).await;
    b.find("#username").await.send_keys("guard").await.unwrap();
    b.find("#password").await.send_keys("wrong").await.unwrap();
    b.find("form.login button").await.click().await.unwrap();
    b.wait_text("[role=alert]", "用户名或密码错误").await;
    b.find("#username").await.send_keys("guard").await.unwrap();
    b.find("#password")
        .await
        .send_keys("Booth-PIN-2468")
        .await
        .unwrap();
    b.find("form.login button").await.click().await.unwrap();
    // Without a reason nothing moves.
    b.find("#lane-entry button.open")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#booth-result", "请选择原因").await;
    gate.lane("entry").assert_never_opened();
    b.find("#reason-entry")
        .await
        .select_by_value("emergency_vehicle")
        .await
        .unwrap();
    b.find("#note-entry")
        .await
        .send_keys("119 消防车")
        .await
        .unwrap();
    b.find("#lane-entry button.open")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#booth-result", "已抬杆").await;
    gate.lane("entry").wait_arm(ArmState::Open).await;
    b.screenshot("booth-fallback").await;

    // The centre comes back; the gate's journal (with the override) reaches it.
    let central = Central::start(&db.db).await;
    forward_gate_events(&central.state, 1, &gate).await;
    let q = EventQuery {
        kind: Some("override".into()),
        ..EventQuery::default()
    };
    let found = events::search(
        &db.db,
        &q,
        gatehouse::central::db::Page {
            limit: 10,
            offset: 0,
        },
    )
    .await
    .unwrap()
    .items;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].body["operator"], "guard");
    assert_eq!(found[0].body["reason"], "emergency_vehicle");
    assert_eq!(found[0].body["note"], "119 消防车");
    // …and the security office sees it in the manual opens per guard.
    b.sign_in(&central.url(""), "security", PASSWORD, "/office")
        .await;
    b.wait_text("#manual-opens tr[data-guard=guard] .opens", "1")
        .await;
    b.close().await;
    booth_task.abort();
    gate.shutdown().await;
}
