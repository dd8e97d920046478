//! The booth's everyday flows in a real headless Chromium against a real site (central server,
//! gate 1 on simulated lanes, the real sync): duty sign-in and a handover note the next shift
//! reads, overstaying visitors listed first, registering a visitor with the keyboard alone, and
//! every form control of every page carrying a label.

use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Actor, now_ms};
use gatehouse::central::repo::operators::{self, NewOperator};
use gatehouse::central::repo::visits::{self, NewVisit};
use gatehouse::password::hash_password_blocking;
use sqlx::Row;

use crate::support::PASSWORD;
use crate::support::browser::{self, Browser};
use crate::support::site::{BOOTH_PASSWORD, Site, site, wait_arm_open};

/// Creates another guard at gate 1 (the next shift).
async fn night_guard(site: &Site) {
    operators::create(
        &site.db.db,
        &Actor::system(),
        NewOperator {
            username: "guard_night".into(),
            display_name: "夜班门卫".into(),
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
async fn a_guard_signs_in_to_a_booth_and_the_next_shift_reads_the_handover_note() {
    let site = site().await;
    night_guard(&site).await;
    let Some(b) = browser::open("duty and handover").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_text("#duty-status", "尚未签到上岗").await;

    // Duty: sign in at 北门.
    b.find("section.duty form[data-api='/api/v1/duty/sign-in'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "当前值班").await;
    assert!(b.text("#duty-status").await.contains("北门"));
    let duty = sqlx::query(
        "SELECT d.gate_id, d.ended_ms FROM duty_records d JOIN operators o ON o.id = d.operator_id \
         WHERE o.username = 'guard'",
    )
    .fetch_one(site.db.db.pool())
    .await
    .unwrap();
    assert_eq!(duty.get::<i64, _>(0), 1);
    assert_eq!(duty.get::<Option<i64>, _>(1), None, "on duty");

    // A note for the next shift, then off duty.
    let note = "北门出口道闸抬杆偏慢，已报修";
    b.find("#handover-note")
        .await
        .send_keys(note)
        .await
        .unwrap();
    b.find("section.duty form[data-api='/api/v1/duty/notes'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("section.duty ul.notes", note).await;
    b.screenshot("console-duty").await;
    b.find("section.duty form[data-api='/api/v1/duty/sign-off'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "尚未签到上岗").await;
    assert_eq!(
        site.count(
            "SELECT COUNT(*) FROM duty_records d JOIN operators o ON o.id = d.operator_id \
             WHERE o.username = 'guard' AND d.ended_ms IS NOT NULL"
        )
        .await,
        1,
        "the day shift's duty is closed"
    );
    b.find("#logout").await.click().await.unwrap();
    b.wait_url("/login").await;

    // The next shift signs in and reads the note, with who left it.
    b.sign_in(&base, "guard_night", PASSWORD, "/console").await;
    let notes = b.wait_text("section.duty ul.notes", note).await;
    assert!(
        notes.contains("门卫 李师傅"),
        "the note names its author by display name: {notes}"
    );
    assert!(!notes.contains("guard"), "never by user name: {notes}");
    // The note links the shift report of the duty it closed.
    let href = b
        .find("section.duty ul.notes a.report")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.starts_with("/console/shift/"), "{href}");
    b.find("section.duty form[data-api='/api/v1/duty/sign-in'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "当前值班").await;
    assert_eq!(
        site.count(
            "SELECT COUNT(*) FROM duty_records d JOIN operators o ON o.id = d.operator_id \
             WHERE o.username = 'guard_night' AND d.gate_id = 1 AND d.ended_ms IS NULL"
        )
        .await,
        1
    );
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_visitor_past_the_expected_departure_is_listed_first_as_overstaying() {
    let site = site().await;
    // Two visitors registered earlier at 北门: one expected out half an hour ago, one in two
    // hours.
    let now = now_ms();
    for (plate, arrived, expected) in [
        ("京E22222", now - 3_600_000, now + 7_200_000),
        ("京D11111", now - 3 * 3_600_000, now - 1_800_000),
    ] {
        let visit = visits::create(
            &site.db.db,
            &Actor::system(),
            &NewVisit {
                booking_id: None,
                gate_id: 1,
                lane: "entry".into(),
                plate: plate.into(),
                driver_name: "访客".into(),
                driver_phone: "13812345678".into(),
                host_name: "王老师".into(),
                department: "计算机学院".into(),
                purpose: "送货".into(),
                expected_departure_ms: expected,
            },
        )
        .await
        .unwrap();
        sqlx::query("UPDATE visits SET arrived_ms = $1 WHERE id = $2")
            .bind(arrived)
            .bind(visit.id)
            .execute(site.db.db.pool())
            .await
            .unwrap();
    }
    let Some(b) = browser::open("overstay").await else {
        return;
    };
    b.sign_in(
        &site.central.url(""),
        "guard",
        PASSWORD,
        "/console/visitors",
    )
    .await;
    let first = b.find("#open-visits tbody tr:first-child").await;
    assert_eq!(
        first.attr("data-plate").await.unwrap().as_deref(),
        Some("京D11111"),
        "the overstay comes first"
    );
    assert!(first.text().await.unwrap().contains("超时"));
    assert!(
        first
            .attr("class")
            .await
            .unwrap()
            .is_some_and(|c| c.contains("overstay")),
        "the overstay is highlighted"
    );
    let second = b.find("#open-visits tr[data-plate='京E22222']").await;
    assert!(!second.text().await.unwrap().contains("超时"));
    // Above the fold too, beside the form: only the overstay.
    let panel = b.wait_text("#overstays", "京D11111").await;
    assert!(!panel.contains("京E22222"), "{panel}");
    assert!(b.text("#overstays-title").await.contains("(1)"));
    b.screenshot("visitors-overstay").await;
    b.find("#lang-switch").await.click().await.unwrap();
    b.wait_text("#open-visits tr[data-plate='京D11111']", "OVERSTAY")
        .await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_guard_registers_a_visitor_with_the_keyboard_alone() {
    let site = site().await;
    sqlx::query("INSERT INTO duty_records (operator_id, gate_id, started_ms) SELECT id, 1, 0 FROM operators WHERE username = 'guard'").execute(site.db.db.pool()).await.unwrap(); // on duty at gate 1: required to open (issue 20)
    // The visitor's car waits on the entry lane's loop.
    site.gate.arrive("entry").await;
    let Some(b) = browser::open("keyboard registration").await else {
        return;
    };
    b.sign_in(&site.central.url(""), "guard", PASSWORD, "/console")
        .await;
    // F4: to the registration form, with the cursor in the plate field.
    b.find("body").await.send_keys("\u{E034}").await.unwrap();
    b.wait_url("/console/visitors").await;
    let focused = b
        .wait_for("the plate field to have the focus", || async {
            let id = b.js("return document.activeElement.id").await;
            (id == "plate").then_some(id)
        })
        .await;
    assert_eq!(focused, "plate");
    // Type each field and Tab to the next; Enter registers (the departure is pre-filled).
    let keys = [
        "苏e·66666\u{E004}",
        "赵六\u{E004}",
        "13912345678\u{E004}",
        "刘教授\u{E004}",
        "物理学院\u{E004}",
        "设备维修\u{E007}",
    ];
    for text in keys {
        let active = b.client.active_element().await.unwrap();
        active.send_keys(text).await.unwrap();
    }
    b.wait_text("#visit-form .form-status", "已登记").await;
    let row = sqlx::query(
        "SELECT plate, driver_name, host_name, department, purpose FROM visits WHERE left_ms IS NULL",
    )
    .fetch_one(site.db.db.pool())
    .await
    .unwrap();
    assert_eq!(
        row.get::<String, _>(0),
        "苏E66666",
        "province typed in full"
    );
    assert_eq!(row.get::<String, _>(1), "赵六");
    assert_eq!(row.get::<String, _>(2), "刘教授");
    assert_eq!(row.get::<String, _>(3), "物理学院");
    assert_eq!(row.get::<String, _>(4), "设备维修");
    wait_arm_open(&site.gate, "entry").await;
    // F2 back to the live lanes, Alt+L to English.
    b.wait_text("#open-visits", "苏E66666").await;
    b.find("body").await.send_keys("\u{E032}").await.unwrap();
    b.wait_url("/console").await;
    b.find("body")
        .await
        .send_keys("\u{E00A}l\u{E000}")
        .await
        .unwrap();
    b.wait_text("nav", "Live lanes").await;
    b.close().await;
    site.finish().await;
}

/// Every visible form control of the page with no label (`<label for>` or wrapping label);
/// and how many controls it has.
async fn unlabelled(b: &Browser) -> (Vec<String>, usize) {
    let v = b
        .js("var all = Array.prototype.filter.call(document.querySelectorAll('input, select, textarea'), \
               function (e) { return e.type !== 'hidden'; }); \
             return [all.filter(function (e) { return !e.labels || e.labels.length === 0 || \
               Array.prototype.every.call(e.labels, function (l) { return !l.textContent.trim(); }); }) \
               .map(function (e) { return e.outerHTML; }), all.length];")
        .await;
    let missing = v[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (missing, v[1].as_u64().unwrap() as usize)
}

#[tokio::test]
async fn every_input_select_and_textarea_of_every_page_has_a_label() {
    let site = site().await;
    let booth = site.serve_booth().await;
    let Some(b) = browser::open("labels").await else {
        return;
    };
    let base = site.central.url("");
    // Sign-in page (and the booth's), then each page of the console, as guard and as office.
    let mut checked = Vec::new();
    b.goto(&format!("{base}/login")).await;
    b.find("#username").await;
    checked.push(("/login", unlabelled(&b).await));
    b.goto(&booth).await;
    b.find("#username").await;
    checked.push(("booth sign-in", unlabelled(&b).await));
    b.booth_sign_in("guard", BOOTH_PASSWORD).await;
    b.find("#reason-entry").await;
    checked.push(("booth", unlabelled(&b).await));
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.find("#handover-note").await;
    checked.push(("/console", unlabelled(&b).await));
    b.goto(&format!("{base}/console/visitors")).await;
    b.find("#visit-form").await;
    checked.push(("/console/visitors", unlabelled(&b).await));
    b.goto(&format!("{base}/passages")).await;
    b.find("#f-plate").await;
    checked.push(("/passages", unlabelled(&b).await));
    b.find("#logout").await.click().await.unwrap();
    b.wait_url("/login").await;
    b.sign_in(&base, "security", PASSWORD, "/office").await;
    checked.push(("/office", unlabelled(&b).await));
    for (page, (missing, total)) in &checked {
        assert!(
            missing.is_empty(),
            "{page}: controls without a label: {missing:#?}"
        );
        eprintln!("{page}: {total} labelled controls");
    }
    // Not vacuous: the forms are there.
    let total = |page: &str| checked.iter().find(|(p, _)| *p == page).unwrap().1.1;
    assert!(total("/login") >= 2);
    assert!(total("booth") >= 4, "reason and note per lane");
    assert!(
        total("/console") >= 5,
        "reasons, notes and the handover note"
    );
    assert!(total("/console/visitors") >= 9);
    assert!(
        total("/passages") >= 6,
        "plate, times, gate, outcome, outside"
    );
    b.close().await;
    site.finish().await;
}
