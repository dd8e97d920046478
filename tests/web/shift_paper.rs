//! The booth's figures and paperwork in a real headless Chromium against a real site (central
//! server, gate 1 on simulated lanes, the real sync): vehicles on campus by category on the
//! console, the shift report (交班报表) with its print view and exports and its link from the
//! handover note, the visitor slip (临时通行单) with its serial, and the office's duty records.
//! Screenshots: `target/web-screenshots/paper-*.png`.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Actor;
use gatehouse::central::repo::alarms;
use gatehouse::central::repo::operators::{self, NewOperator};
use gatehouse::password::hash_password_blocking;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::browser::{self, Browser};
use crate::support::gate::epc;
use crate::support::site::{Site, site};
use crate::support::{Api, PASSWORD, http};

/// Two hours from now, as the booth's `datetime-local` field sends it (Asia/Shanghai).
fn soon() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(2))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

fn visitor(plate: &str) -> Value {
    json!({
        "gate_id": 1, "lane": "entry", "plate": plate, "driver_name": "赵师傅",
        "driver_phone": "13812345678", "host_name": "李老师", "department": "化学学院",
        "purpose": "送实验试剂", "expected_departure": soon(),
    })
}

/// The count shown for `category` on the console.
async fn shown(b: &Browser, category: &str) -> String {
    b.text(&format!("#figures li[data-category='{category}'] .n"))
        .await
}

async fn wait_shown(b: &Browser, category: &str, n: &str) {
    b.wait_for(&format!("{category} inside to show {n}"), || async {
        (shown(b, category).await == n).then_some(())
    })
    .await;
}

/// Waits until the centre has `n` rows for `sql` (a COUNT).
async fn wait_count(site: &Site, b: &Browser, sql: &str, n: i64) {
    b.wait_for(&format!("{sql} = {n}"), || async {
        (site.count(sql).await >= n).then_some(())
    })
    .await;
}

/// Emulates print media: the print stylesheet applied to the screen.
async fn as_printed(b: &Browser) {
    b.js("document.querySelectorAll('link[media=print]').forEach(function (l) { l.media = 'all'; }); return true;")
        .await;
}

/// The computed `display` of the first element matching `css` ("" if none).
async fn display(b: &Browser, css: &str) -> String {
    b.js(&format!(
        "var e = document.querySelector({css:?}); return e ? getComputedStyle(e).display : '';"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

#[tokio::test]
async fn the_console_counts_vehicles_on_campus_by_category_as_a_tagged_car_enters_and_a_visitor_is_registered()
 {
    let site = site().await;
    let Some(b) = browser::open("figures").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    b.wait_text("#figures", "在校车辆").await;
    // (Read by polling: the live stream's first updates re-render the figures meanwhile.)
    for c in ["staff", "student", "visitor", "unregistered"] {
        wait_shown(&b, c, "0").await;
    }
    for label in ["教职工", "学生", "访客", "未登记车辆"] {
        b.wait_text("#figures ul.cats", label).await;
    }

    // A staff car drives in: the figures follow the live lanes without a reload.
    site.gate.drive_through("entry", &epc(1)).await;
    wait_shown(&b, "staff", "1").await;
    b.wait_text("#inside-total", "1").await;

    // A visitor registered at the booth counts at once (before its entry reaches the centre).
    let api = Api::new(&site.central, &site.db.db, "guard").await;
    // The guard registers at the booth they are on duty at (duty is required to open).
    api.call(
        Method::POST,
        "/api/v1/duty/sign-in",
        Some(json!({"gate_id": 1})),
    )
    .await;
    api.call(Method::POST, "/api/v1/visits", Some(visitor("浙AM1205")))
        .await;
    wait_shown(&b, "visitor", "1").await;
    b.wait_text("#inside-total", "2").await;
    wait_shown(&b, "staff", "1").await;
    b.set_viewport(1366, 768).await;
    b.screenshot("paper-console-figures-1366").await;
    b.set_viewport(1024, 768).await;
    b.screenshot("paper-console-figures-1024").await;
    b.close().await;
    site.finish().await;
}

/// Creates the night guard at gate 1 (the next shift).
async fn night_guard(site: &Site) {
    operators::create(
        &site.db.db,
        &Actor::system(),
        NewOperator {
            username: "guard_night".into(),
            display_name: "门卫 夜班张师傅".into(),
            password_hash: hash_password_blocking(PASSWORD),
            roles: vec![Role::Guard.as_str().into()],
            gates: vec![1],
            department: String::new(),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_shift_report_counts_the_guards_duty_prints_cleanly_exports_the_same_numbers_and_the_next_shift_opens_it_from_the_handover_note()
 {
    let site = site().await;
    night_guard(&site).await;
    let Some(b) = browser::open("shift report").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.find("section.duty form[data-api='/api/v1/duty/sign-in'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "当前值班").await;

    // The shift: a staff car in and out, a revoked tag denied, a manual open with a reason,
    // a visitor registered, an alarm raised and acknowledged by the office.
    site.gate.drive_through("entry", &epc(1)).await;
    site.gate.drive_through("exit", &epc(1)).await;
    let (_, denied) = site.gate.present("entry", &epc(2)).await;
    assert!(!denied.granted);
    site.gate.back_away("entry", &epc(2)).await;
    let api = Api::new(&site.central, &site.db.db, "guard").await;
    api.call(
        Method::POST,
        "/api/v1/console/gates/1/lanes/exit/command",
        Some(json!({"command": "open", "reason": "official_business", "note": "市政检查"})),
    )
    .await;
    api.call(Method::POST, "/api/v1/visits", Some(visitor("浙AM1205")))
        .await;
    let alarm = api
        .call(
            Method::POST,
            "/api/v1/alarms",
            Some(json!({"gate_id": 1, "note": "有人闯杆"})),
        )
        .await;
    let security: i64 = sqlx::query_scalar("SELECT id FROM operators WHERE username = 'security'")
        .fetch_one(site.db.db.pool())
        .await
        .unwrap();
    alarms::acknowledge(
        &site.db.db,
        &Actor {
            operator_id: Some(security),
            name: "security".into(),
        },
        alarm["id"].as_i64().unwrap(),
        "dispatched",
        "巡逻队已到场",
    )
    .await
    .unwrap();
    wait_count(
        &site,
        &b,
        "SELECT COUNT(*) FROM passage_events WHERE kind = 'passage'",
        2,
    )
    .await;
    wait_count(
        &site,
        &b,
        "SELECT COUNT(*) FROM passage_events WHERE kind = 'decision' AND granted = 0",
        1,
    )
    .await;

    // The report of the current duty.
    b.find("#shift-report-link").await.click().await.unwrap();
    b.wait_url("/console/shift").await;
    b.wait_text("#report-guard", "门卫 李师傅").await;
    assert!(b.text("#report-gate").await.contains("北门"));
    assert!(b.text("#report-period").await.contains("值班中"));
    let total = |k: &'static str| {
        let b = &b;
        async move { b.text(&format!("td[data-total='{k}']")).await }
    };
    let flows = b.text("#flows").await;
    let events: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT lane, kind, direction FROM passage_events ORDER BY seq")
            .fetch_all(site.db.db.pool())
            .await
            .unwrap();
    assert_eq!(total("entries").await, "1", "{flows} {events:?}");
    assert_eq!(total("exits").await, "1");
    assert_eq!(total("denials").await, "1");
    // The official-business open and the visitor registration's open (its reason: a visitor).
    assert_eq!(total("manual_opens").await, "2");
    assert_eq!(total("visitors").await, "1");
    assert_eq!(total("alarms").await, "1 (1)");
    let flows = b.text("#flows").await;
    assert!(flows.contains("入口") && flows.contains("出口"), "{flows}");
    let denials = b.text("#denials").await;
    assert!(
        denials.contains("通行证已吊销"),
        "denials in words: {denials}"
    );
    let opens = b.text("#manual-opens").await;
    assert!(
        opens.contains("门卫 李师傅")
            && opens.contains("公务车辆")
            && opens.contains("市政检查")
            && opens.contains("访客已登记")
            && opens.contains("浙AM1205")
            && !opens.contains("visit"),
        "{opens}"
    );
    assert!(b.text("#visitors").await.contains("浙AM1205"));
    let alarm_rows = b.text("#alarms").await;
    assert!(
        alarm_rows.contains("一键报警") && alarm_rows.contains("保卫处 刘科长"),
        "{alarm_rows}"
    );
    let page = b.text("main").await;
    for code in ["official_business", "denied_", "guard", "manual"] {
        assert!(
            !page.contains(code),
            "no code or user name {code:?} on the page: {page}"
        );
    }
    b.set_viewport(1366, 768).await;
    b.screenshot("paper-shift-report-1366").await;
    b.set_viewport(1024, 768).await;
    b.screenshot("paper-shift-report-1024").await;
    assert!(
        b.horizontal_overflow().await.0 <= 1024,
        "the report fits a tablet's width"
    );

    // On paper: no navigation and no buttons, black on white, the paper's own header kept.
    as_printed(&b).await;
    assert_eq!(display(&b, "header.top").await, "none");
    assert_eq!(display(&b, ".paper-tools").await, "none");
    assert_eq!(display(&b, "button").await, "none");
    assert_ne!(display(&b, "header.paper-head").await, "none");
    let ink = b
        .js("return [getComputedStyle(document.body).color, getComputedStyle(document.body).backgroundColor];")
        .await;
    assert_eq!(ink, json!(["rgb(0, 0, 0)", "rgb(255, 255, 255)"]));
    b.set_viewport(794, 960).await;
    b.screenshot("paper-shift-report-print").await;
    b.set_viewport(1366, 768).await;

    // The exports say the same, in words.
    let duty: i64 = b
        .js("return Number(document.querySelector('main.shift').dataset.duty);")
        .await
        .as_i64()
        .unwrap();
    let csv = b
        .client
        .execute_async(
            "var done = arguments[arguments.length - 1]; \
             fetch(document.getElementById('export-csv').href, {credentials: 'same-origin'}) \
             .then(function (r) { return r.text(); }).then(done, function (e) { done(String(e)); });",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv
        .as_str()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .to_string();
    for line in [
        "合计,进场车次,1",
        "合计,出场车次,1",
        "合计,拒绝通行,1",
        "合计,手动抬杆,2",
        "合计,访客登记,1",
        "合计,报警,1",
    ] {
        assert!(csv.contains(line), "{line} in {csv}");
    }
    assert!(csv.contains("拒绝原因,通行证已吊销,1"), "{csv}");
    let token = site.central.token(&site.db.db, "guard").await;
    let xlsx = http()
        .get(
            site.central
                .url(&format!("/api/v1/duty/{duty}/report?format=xlsx")),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(xlsx.status().is_success(), "{}", xlsx.status());
    let bytes = xlsx.bytes().await.unwrap();
    let mut book = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = book.worksheet_range("shift").unwrap();
    let totals: Vec<(String, f64)> = sheet
        .rows()
        .filter(|r| r[0] == Data::String("合计".into()))
        .map(|r| {
            let n = match &r[2] {
                Data::Float(f) => *f,
                Data::Int(i) => *i as f64,
                _ => -1.0,
            };
            (r[1].to_string(), n)
        })
        .collect();
    for (item, n) in [
        ("进场车次", 1.0),
        ("出场车次", 1.0),
        ("拒绝通行", 1.0),
        ("手动抬杆", 2.0),
        ("访客登记", 1.0),
    ] {
        assert!(
            totals.contains(&(item.to_string(), n)),
            "{item} {n} in {totals:?}"
        );
    }

    // Signing off leaves the next shift a note with the report's link.
    b.goto(&site.central.url("/console")).await;
    b.find("section.duty form[data-api='/api/v1/duty/sign-off'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "尚未签到上岗").await;
    b.find("#logout").await.click().await.unwrap();
    b.wait_url("/login").await;
    b.sign_in(&base, "guard_night", PASSWORD, "/console").await;
    let notes = b.wait_text("section.duty ul.notes", "交班报表").await;
    assert!(
        notes.contains("门卫 李师傅") && notes.contains("未留言"),
        "{notes}"
    );
    b.find("section.duty ul.notes a.report")
        .await
        .click()
        .await
        .unwrap();
    b.wait_url(&format!("/console/shift/{duty}")).await;
    b.wait_text("#report-guard", "门卫 李师傅").await;
    assert_eq!(total("entries").await, "1");
    assert!(
        !b.text("#report-period").await.contains("值班中"),
        "the duty is over"
    );
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_visitor_slip_shows_plate_host_window_and_a_serial_that_a_reprint_keeps_and_the_next_slip_does_not_share()
 {
    let site = site().await;
    let Some(b) = browser::open("visitor slip").await else {
        return;
    };
    let api = Api::new(&site.central, &site.db.db, "guard").await;
    api.call(
        Method::POST,
        "/api/v1/duty/sign-in",
        Some(json!({"gate_id": 1})),
    )
    .await;
    let first = api
        .call(Method::POST, "/api/v1/visits", Some(visitor("浙AM1205")))
        .await["visit"]["id"]
        .as_i64()
        .unwrap();
    let second = api
        .call(Method::POST, "/api/v1/visits", Some(visitor("京F88888")))
        .await["visit"]["id"]
        .as_i64()
        .unwrap();
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    let year = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y")
        .to_string();
    let serial_of = |visit: i64| {
        let (b, site, year) = (&b, &site, year.clone());
        async move {
            b.goto(&site.central.url(&format!("/console/visitors/{visit}/slip")))
                .await;
            b.wait_text("#slip-serial", &format!("{year}-")).await
        }
    };
    let s1 = serial_of(first).await;
    assert_eq!(s1.len(), "2026-000001".len(), "{s1}");
    assert_eq!(b.text("#slip-plate").await, "浙AM1205");
    let host = b.text("#slip-host").await;
    assert!(
        host.contains("李老师") && host.contains("化学学院"),
        "{host}"
    );
    let window = b.text("#slip-window").await;
    assert!(window.contains(" – ") && window.contains(&year), "{window}");
    assert!(b.text("#slip-gate").await.contains("北门"));
    assert_eq!(b.text("#slip-guard").await, "门卫 李师傅");
    b.set_viewport(1366, 768).await;
    b.screenshot("paper-visitor-slip-1366").await;
    b.set_viewport(1024, 768).await;
    b.screenshot("paper-visitor-slip-1024").await;
    as_printed(&b).await;
    assert_eq!(display(&b, "header.top").await, "none");
    assert_eq!(display(&b, "button").await, "none");
    b.set_viewport(794, 960).await;
    b.screenshot("paper-visitor-slip-print").await;
    b.set_viewport(1366, 768).await;

    assert_eq!(
        serial_of(first).await,
        s1,
        "a second print keeps the serial"
    );
    let s2 = serial_of(second).await;
    assert_ne!(s2, s1, "two slips, two serials");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM visit_slips").await,
        2,
        "one serial per visit"
    );
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn the_office_lists_duty_records_with_their_reports_and_filters_them_by_gate() {
    let site = site().await;
    let Some(b) = browser::open("duty records").await else {
        return;
    };
    let north = Api::new(&site.central, &site.db.db, "guard").await;
    north
        .call(
            Method::POST,
            "/api/v1/duty/sign-in",
            Some(json!({"gate_id": 1})),
        )
        .await;
    north
        .call(Method::POST, "/api/v1/duty/sign-off", None)
        .await;
    let south = Api::new(&site.central, &site.db.db, "guard2").await;
    south
        .call(
            Method::POST,
            "/api/v1/duty/sign-in",
            Some(json!({"gate_id": 2})),
        )
        .await;
    let base = site.central.url("");
    b.sign_in(&base, "security", PASSWORD, "/office/duty").await;
    let all = b.wait_text("#duty-records", "门卫 王师傅").await;
    assert!(
        all.contains("门卫 李师傅") && all.contains("值班中"),
        "{all}"
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#duty-records tr[data-duty]').length;")
            .await,
        json!(2)
    );
    b.set_viewport(1366, 768).await;
    b.screenshot("paper-duty-records-1366").await;

    // Only 南门.
    b.js("document.getElementById('f-gate').value = '2'; document.querySelector('form.filters').submit(); return true;")
        .await;
    b.wait_for("the filtered list", || async {
        (b.js("return document.querySelectorAll('#duty-records tr[data-duty]').length;")
            .await
            == json!(1))
        .then_some(())
    })
    .await;
    let south_only = b.text("#duty-records").await;
    assert!(
        south_only.contains("门卫 王师傅") && !south_only.contains("门卫 李师傅"),
        "{south_only}"
    );
    assert_eq!(
        b.js("return document.querySelector('#duty-records tr[data-duty]').dataset.gate;")
            .await,
        json!("2")
    );
    b.set_viewport(1024, 768).await;
    b.screenshot("paper-duty-records-1024").await;
    // Its report opens from the list.
    b.find("#duty-records tr[data-duty] a")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#report-guard", "门卫 王师傅").await;
    assert!(b.text("#report-gate").await.contains("南门"));
    b.close().await;
    site.finish().await;
}
