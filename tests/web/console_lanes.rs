//! The live lanes as a guard reads them over time, in a real headless Chromium (zh-CN) against
//! a real centre and gate 1 on simulated devices: a verdict shows its age and fades once older
//! than the site's `verdict_fade_s`; a vehicle following under the raised arm shows on the lane
//! as tailgating (尾随/未授权通过) in its own style, not as a passage; a manual open starts with
//! the lane's last read plate, the guard keeps or edits it, and the plate reaches the gate's
//! journal, the lane, the recent passages, the events API and the audit; the on-duty booth's
//! gate comes first and, with the guard's other gate compact beside it, 2 gates × 2 lanes fit
//! a 1366×768 booth PC. Screenshots: `target/web-screenshots/lanes-*.png`.

use gatehouse::central::db::Actor;
use gatehouse::central::repo::settings;
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::journal::EventBody;
use serde_json::{Value, json};

use crate::support::browser::{self, Browser};
use crate::support::gate::epc;
use crate::support::site::{Site, site, site_on, wait_arm_open};
use crate::support::{Api, PASSWORD, each_database};

/// Sets the site's `verdict_fade_s`.
async fn fade_after(site: &Site, seconds: u32) {
    let mut s = settings::load(&site.db.db).await.unwrap();
    s.verdict_fade_s = seconds;
    settings::save(&site.db.db, &Actor::system(), &s)
        .await
        .unwrap();
}

/// Signs operator `username` in on duty at `gate` through the API.
async fn on_duty(site: &Site, username: &str, gate: i64) {
    Api::new(&site.central, &site.db.db, username)
        .await
        .call(
            reqwest::Method::POST,
            "/api/v1/duty/sign-in",
            Some(json!({ "gate_id": gate })),
        )
        .await;
}

/// The bounding box `[top, bottom, left, right]` of the first element matching `css`.
async fn rect(b: &Browser, css: &str) -> [f64; 4] {
    let v = b
        .js(&format!(
            "var e = document.querySelector({css:?}); if (!e) return null; \
             var r = e.getBoundingClientRect(); return [r.top, r.bottom, r.left, r.right];"
        ))
        .await;
    assert!(!v.is_null(), "no element {css}");
    let n = |i: usize| v[i].as_f64().unwrap();
    [n(0), n(1), n(2), n(3)]
}

#[tokio::test]
async fn a_lane_verdict_shows_its_age_and_fades_once_older_than_the_site_setting() {
    let site = site().await;
    fade_after(&site, 3).await;
    let Some(b) = browser::open("lanes verdict fades").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    // A revoked permit at the exit: a red 禁止通行; the car turns away (a car still on the loop
    // is read and denied again and again, and its verdict stays new).
    site.gate.present("exit", &epc(2)).await;
    site.gate.back_away("exit", &epc(2)).await;
    let card = "#lane-status-1-exit";
    b.wait_text(&format!("{card} .verdict"), "禁止通行").await;
    let age = b.wait_text(&format!("{card} .age"), "秒前").await;
    let fresh = b
        .js(&format!(
            "var c = document.querySelector('{card} .current'); \
             return [c.classList.contains('stale'), parseFloat(getComputedStyle(c.querySelector('.verdict')).opacity)]"
        ))
        .await;
    assert_eq!(fresh[0], false, "a new verdict looks live ({age})");
    assert!(fresh[1].as_f64().unwrap() > 0.99, "{fresh}");
    assert!(
        b.text(&format!("{card} .stale-mark")).await.is_empty(),
        "no old mark on a live verdict"
    );
    b.screenshot("lanes-verdict-fresh-1366x768").await;
    // The age counts up by itself, and after 3 s the verdict is dimmed and marked as old.
    b.wait_for("the verdict to fade", || async {
        let stale = b
            .js(&format!(
                "return document.querySelector('{card} .current').classList.contains('stale')"
            ))
            .await;
        (stale == true).then_some(())
    })
    .await;
    assert_eq!(b.text(&format!("{card} .stale-mark")).await, "（已过时）");
    let later = b.text(&format!("{card} .age")).await;
    let secs: u32 = later.trim_end_matches(" 秒前").parse().unwrap();
    assert!(secs >= 3, "the age is the event's: {later}");
    let faded = b
        .js(&format!(
            "var v = document.querySelector('{card} .verdict'), s = getComputedStyle(v); \
             return [parseFloat(s.opacity), s.filter]"
        ))
        .await;
    assert!(
        faded[0].as_f64().unwrap() < 0.6 && faded[1].as_str().unwrap().contains("grayscale"),
        "an old red verdict is dimmed and grey: {faded}"
    );
    b.screenshot("lanes-verdict-stale-1366x768").await;
    // A page loaded after the fade draws it faded at once.
    b.set_viewport(1024, 768).await;
    b.goto(&format!("{base}/console")).await;
    b.wait_live().await;
    b.wait_text(&format!("{card} .stale-mark"), "已过时").await;
    b.screenshot("lanes-verdict-stale-1024x768").await;
    // A new vehicle is live again.
    site.gate.present("exit", &epc(2)).await;
    b.wait_for("a new verdict to look live", || async {
        let v = b
            .js(&format!(
                "var c = document.querySelector('{card} .current'); return c && !c.classList.contains('stale')"
            ))
            .await;
        (v == true).then_some(())
    })
    .await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_vehicle_following_under_the_raised_arm_shows_on_the_lane_as_tailgating_not_as_a_passage()
{
    let site = site().await;
    let Some(b) = browser::open("lanes tailgating").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    // The permitted car is let through; a car without a tag follows it under the raised arm
    // before the arm can close (as in the gate's own test of the alarm).
    let gate = &site.gate;
    let lane = gate.lane("entry");
    let tag = epc(1);
    let (_, decision) = gate.present("entry", &tag).await;
    assert!(decision.granted);
    lane.wait_arm(ArmState::Open).await;
    lane.tag_out_of_field(&tag);
    lane.set_safety(true);
    gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_presence(true);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    gate.wait_event("the permitted car's passage", |e| {
        matches!(
            e.body,
            EventBody::Passage {
                vehicle_id: Some(_),
                ..
            }
        )
    })
    .await;
    lane.set_safety(true);
    lane.wait_polls(2).await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    gate.wait_event("the unauthorized passage", |e| {
        matches!(&e.body, EventBody::LaneFault { fault, .. } if fault == "unauthorized_passage")
    })
    .await;

    let card = "#lane-status-1-entry";
    b.wait_text(&format!("{card} .verdict"), "尾随/未授权通过")
        .await;
    let style = b
        .js(&format!(
            "var v = document.querySelector('{card} .verdict'), s = getComputedStyle(v); \
             return [v.className, s.backgroundImage, s.backgroundColor]"
        ))
        .await;
    assert!(
        style[0].as_str().unwrap().contains("tailgate"),
        "its own style: {style}"
    );
    assert!(
        style[1].as_str().unwrap().contains("gradient"),
        "striped, not the green of a grant or the red of a denial: {style}"
    );
    let text = b.text(card).await;
    assert!(
        !text.contains("放行") || text.contains("未经放行"),
        "{text}"
    );
    b.wait_text("#recent-1 tr.tailgate", "尾随/未授权通过")
        .await;
    // The follower's anonymous passage is the alarm's row, not an ordinary "passed" row.
    let anonymous = b
        .js("return Array.prototype.filter.call(document.querySelectorAll('#recent-1 tr.passage'), \
             function (r) { return r.querySelector('.plate-cell').textContent.trim() === '—'; }).length")
        .await;
    assert_eq!(anonymous, 0, "no anonymous passage row beside the alarm");
    // The manual form no longer offers the permitted car's plate: the tailgater is not it.
    b.wait_for("the entry's plate field to be emptied", || async {
        let v = b
            .js("return document.querySelector('#plate-1-entry').value")
            .await;
        (v == "").then_some(())
    })
    .await;
    b.screenshot("lanes-tailgating-1366x768").await;
    b.set_viewport(1024, 768).await;
    b.screenshot("lanes-tailgating-1024x768").await;
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_manual_open_starts_with_the_lanes_last_read_plate_and_records_the_plate_the_guard_confirmed()
 {
    for db in each_database().await {
        let kind = db.kind;
        let site = site_on(db).await;
        let Some(b) = browser::open("lanes manual open plate").await else {
            return;
        };
        manual_open_plate(&site, &b).await;
        b.close().await;
        site.finish().await;
        eprintln!("manual open plate: passed on {kind:?}");
    }
}

async fn manual_open_plate(site: &Site, b: &Browser) {
    on_duty(site, "guard", 1).await;
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    // Nothing read at the entry yet: its plate field is empty.
    let entry_plate = b.find("#plate-1-entry").await;
    assert_eq!(
        entry_plate.prop("value").await.unwrap().as_deref(),
        Some("")
    );
    // A revoked permit's car at the exit: the form starts with its plate.
    site.gate.present("exit", &epc(2)).await;
    b.wait_text("#lane-status-1-exit .verdict", "禁止通行")
        .await;
    b.wait_for("the exit's plate to be filled in", || async {
        let v = b
            .js("return document.querySelector('#plate-1-exit').value")
            .await;
        (v == "京B54321").then_some(())
    })
    .await;
    // The guard keeps it and opens.
    let form = "#gate-1 article.lane:nth-child(2) form.command";
    b.find(&format!("{form} select"))
        .await
        .select_by_value("permit_holder_without_tag")
        .await
        .unwrap();
    b.find(&format!("{form} button.open"))
        .await
        .click()
        .await
        .unwrap();
    wait_arm_open(&site.gate, "exit").await;
    let journalled = site
        .gate
        .wait_event(
            "the exit's override",
            |e| matches!(&e.body, EventBody::Override { plate: Some(p), .. } if p == "京B54321"),
        )
        .await;
    assert_eq!(journalled.lane, "exit");
    b.wait_text("#lane-status-1-exit .verdict", "手动抬杆")
        .await;
    b.wait_text("#lane-status-1-exit .plate-big", "京B54321")
        .await;
    let row = b.wait_text("#recent-1 tr.override", "京B54321").await;
    // The car drives out under the raised arm: its passage carries the plate the guard named.
    let exit = site.gate.lane("exit");
    exit.tag_out_of_field(&epc(2));
    exit.set_safety(true);
    site.gate.wait_lane_state("exit", "passing").await;
    exit.set_presence(false);
    exit.wait_polls(2).await;
    exit.set_safety(false);
    site.gate
        .wait_event(
            "the exit's passage",
            |e| matches!(&e.body, EventBody::Passage { plate: Some(p), .. } if p == "京B54321"),
        )
        .await;
    assert!(
        row.contains("门卫 李师傅") && !row.contains("guard"),
        "the override names the guard by display name: {row}"
    );

    // At the entry the guard types a plate the way it comes: a bad one is refused at the field…
    let form = "#gate-1 article.lane:first-child form.command";
    b.find(&format!("{form} select"))
        .await
        .select_by_value("official_business")
        .await
        .unwrap();
    entry_plate.send_keys("12345").await.unwrap();
    b.find(&format!("{form} button.open"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("the plate's error", || async {
        let t = b.text(&format!("{form} [data-error-for=plate]")).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    site.gate.lane("entry").assert_never_opened();
    // …and full-width lower case is taken and normalised.
    entry_plate.clear().await.unwrap();
    entry_plate.send_keys("浙ａｍ１２０５").await.unwrap();
    b.find(&format!("{form} button.open"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_text(&format!("{form} .form-status"), "闸口已执行")
        .await;
    site.gate
        .wait_event(
            "the entry's override",
            |e| matches!(&e.body, EventBody::Override { plate: Some(p), .. } if p == "浙AM1205"),
        )
        .await;
    b.wait_text("#lane-status-1-entry .plate-big", "浙AM1205")
        .await;
    b.wait_text("#recent-1", "浙AM1205").await;
    b.screenshot("lanes-manual-open-plate-1366x768").await;
    b.set_viewport(1024, 768).await;
    b.screenshot("lanes-manual-open-plate-1024x768").await;

    // The events API finds the override by its plate, and the audit entry names it.
    let api = Api::new(&site.central, &site.db.db, "security").await;
    let found: Value = api
        .call(
            reqwest::Method::GET,
            "/api/v1/events?kind=override&plate=%E6%B5%99AM1205",
            None,
        )
        .await;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{found}");
    assert_eq!(items[0]["plate"], "浙AM1205");
    assert_eq!(items[0]["body"]["plate"], "浙AM1205");
    // The passage search finds the passage the guard let through by that plate.
    let passages = b
        .wait_for("the passage in the passage search", || async {
            let found: Value = api
                .call(
                    reqwest::Method::GET,
                    "/api/v1/passages?plate=%E4%BA%ACB54321&kind=passage",
                    None,
                )
                .await;
            (found["total"].as_i64() == Some(1)).then_some(found)
        })
        .await;
    assert_eq!(passages["items"][0]["plate"], "京B54321", "{passages}");
    let audited = site
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command' \
             AND after_json LIKE '%浙AM1205%'",
        )
        .await;
    assert_eq!(audited, 1, "the audit entry carries the plate");
}

#[tokio::test]
async fn the_on_duty_booths_gate_comes_first_and_two_gates_of_two_lanes_fit_a_booth_pc_screen() {
    let site = site().await;
    // Gate 2 gets a second lane, and the guard works at both gates.
    sqlx::query(
        "INSERT INTO lanes (gate_id, lane_key, name, direction, created_ms, updated_ms) \
         VALUES (2, 'exit', '出口', 'exit', 0, 0)",
    )
    .execute(site.db.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO operator_gates (operator_id, gate_id) \
         SELECT id, 2 FROM operators WHERE username = 'guard'",
    )
    .execute(site.db.db.pool())
    .await
    .unwrap();
    let Some(b) = browser::open("lanes booth first").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    // Not on duty: both gates in full, in order.
    let order = "return Array.prototype.map.call(document.querySelectorAll('section.gate'), \
                 function (s) { return s.id + ' ' + s.className; })";
    assert_eq!(b.js(order).await, json!(["gate-1 gate", "gate-2 gate"]));
    // On duty at the south gate (2): it comes first, in full; the north gate is compact.
    on_duty(&site, "guard", 2).await;
    b.goto(&format!("{base}/console")).await;
    b.wait_live().await;
    assert_eq!(
        b.js(order).await,
        json!(["gate-2 gate booth", "gate-1 gate compact"])
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#gate-1 form.command').length")
            .await,
        0,
        "the other gate has no forms"
    );

    // On duty at the north gate, with a grant at its entry and a blacklisted car at its exit.
    on_duty(&site, "guard", 1).await;
    site.gate.present("entry", &epc(1)).await;
    site.gate.present("exit", &epc(3)).await;
    b.goto(&format!("{base}/console")).await;
    b.wait_live().await;
    assert_eq!(
        b.js(order).await,
        json!(["gate-1 gate booth", "gate-2 gate compact"])
    );
    b.wait_text("#lane-status-1-entry .verdict", "放行").await;
    b.wait_text("#lane-status-1-exit .verdict", "黑名单").await;
    // The browser opens at 1366×768 (browser::open).
    for (width, height) in [(1366u32, 768u32), (1024, 768)] {
        if width != 1366 {
            b.set_viewport(width, height).await;
        }
        let size = format!("{width}x{height}");
        let (scroll, viewport, offenders) = b.horizontal_overflow().await;
        assert!(
            scroll <= viewport && offenders.is_empty(),
            "{size}: {scroll} px wide in {viewport}; sticking out: {offenders:#?}"
        );
        // The plates stay whole inside their lane cards, and the form's fields never overlap.
        let broken = b
            .js("var out = []; document.querySelectorAll('article.lane').forEach(function (a) { \
                   var c = a.getBoundingClientRect(); \
                   a.querySelectorAll('.plate-big, form.command .field').forEach(function (e) { \
                     var r = e.getBoundingClientRect(); \
                     if (r.width > 0 && (r.right > c.right + 0.5 || r.left < c.left - 0.5)) out.push(e.className); }); \
                   var f = Array.prototype.map.call(a.querySelectorAll('form.command .field'), function (e) { return e.getBoundingClientRect(); }); \
                   for (var i = 0; i < f.length; i++) for (var j = i + 1; j < f.length; j++) \
                     if (f[i].left < f[j].right - 0.5 && f[j].left < f[i].right - 0.5 && \
                         f[i].top < f[j].bottom - 0.5 && f[j].top < f[i].bottom - 0.5) out.push('overlap ' + i + '/' + j); }); \
                 return out;")
            .await;
        assert_eq!(
            broken,
            json!([]),
            "{size}: broken plates or overlapping fields"
        );
        b.screenshot(&format!("lanes-booth-first-{size}")).await;
    }
    // At 1366×768: the booth gate's verdicts, plates and forms, and the other gate's lanes,
    // all on the first screen.
    b.set_viewport(1366, 768).await;
    for css in [
        "#lane-status-1-entry .verdict",
        "#lane-status-1-entry .plate-big",
        "#gate-1 article.lane:nth-child(1) form.command button.keep",
        "#lane-status-1-exit .verdict",
        "#lane-status-1-exit .plate-big",
        "#gate-1 article.lane:nth-child(2) form.command button.keep",
        "#lane-status-2-entry .verdict",
        "#lane-status-2-exit .verdict",
    ] {
        let [top, bottom, _, right] = rect(&b, css).await;
        assert!(
            top >= 0.0 && bottom <= 768.0 && right <= 1366.0,
            "{css} is at {top}..{bottom} (right {right}), not on the first screen"
        );
    }
    // The same in English: booth vocabulary, the other gates' heading, the verdicts' ages.
    b.goto(&format!("{base}/lang?to=en&next=/console")).await;
    b.wait_live().await;
    b.wait_text("#other-gates-title", "Other gates").await;
    b.wait_text("#gate-1 article.lane:nth-child(1) button.open", "Raise")
        .await;
    b.wait_text("#gate-1 article.lane:nth-child(1) button.keep", "Keep down")
        .await;
    b.wait_text("#lane-status-1-exit .verdict", "BLACKLIST")
        .await;
    b.wait_text("#lane-status-1-exit .age", "ago").await;
    b.screenshot("lanes-booth-first-en-1366x768").await;
    b.close().await;
    site.finish().await;
}
