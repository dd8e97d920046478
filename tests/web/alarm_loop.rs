//! Alarms that close the loop, in a real headless Chromium (zh-CN) against a real central
//! server: the booth's F9 asks for a second F9 or Enter (Esc cancels, nothing stored); the
//! guard sees 已送达 and then who acknowledged the alarm, when and what was done; a security
//! officer on an administration page gets the banner and its sound, cleared once the alarm is
//! acknowledged; the office's banner clears when every alarm is; a guard withdraws a false
//! alarm and the office sees it withdrawn; a gate's tailgating raises an alarm the office sees
//! in words. Screenshots at 1366×768 and 1024×768 go to `target/web-screenshots/`.

use gatehouse::wire::journal::{EventBody, JournalEvent};
use reqwest::Method;
use serde_json::json;

use crate::admin_support::{AdminSite, admin_site};
use crate::support::browser::{self, Browser};
use crate::support::{Api, PASSWORD, sqlite};

const F9: &str = "\u{E039}";
const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// The campus (gates 1 and 2, one operator per role), no gate running: the alarms need none.
async fn campus() -> AdminSite {
    admin_site(sqlite().await, &[]).await
}

async fn press(b: &Browser, key: &str) {
    b.find("body").await.send_keys(key).await.unwrap();
}

/// Screenshots of the page at 1366×768 and at 1024×768 (then back to 1366×768).
async fn shots(b: &Browser, name: &str) {
    b.screenshot(&format!("{name}-1366")).await;
    b.set_viewport(1024, 768).await;
    b.screenshot(&format!("{name}-1024")).await;
    b.set_viewport(1366, 768).await;
}

/// Waits until `css` matches `n` elements.
async fn wait_count(b: &Browser, css: &str, n: i64) {
    b.wait_for(&format!("{n} of {css}"), || async {
        let found = b
            .js(&format!("return document.querySelectorAll({css:?}).length"))
            .await;
        (found.as_i64() == Some(n)).then_some(())
    })
    .await
}

/// Waits until the page's alarm stream has delivered its first state.
async fn wait_alarms_live(b: &Browser) {
    b.wait_for("the alarm stream", || async {
        (b.js("return document.body.dataset.alarmsLive || ''").await == "connected").then_some(())
    })
    .await
}

/// How many times the page sounded.
async fn beeps(b: &Browser) -> i64 {
    b.js("return Number(document.body.dataset.beeps || 0)")
        .await
        .as_i64()
        .unwrap()
}

/// Whether the element `css` is hidden (or absent).
async fn hidden(b: &Browser, css: &str) -> bool {
    b.js(&format!(
        "var e = document.querySelector({css:?}); return !e || e.hidden;"
    ))
    .await
    .as_bool()
    .unwrap()
}

/// The guard at the booth, signed in on the console with the alarm stream connected.
async fn booth(site: &AdminSite) -> Option<Browser> {
    let b = browser::open("alarm loop (booth)").await?;
    b.sign_in(&site.base(), "guard", PASSWORD, "/console").await;
    wait_alarms_live(&b).await;
    Some(b)
}

/// `who` on `path`, with the alarm stream connected.
async fn officer(site: &AdminSite, who: &str, path: &str) -> Browser {
    let b = browser::open("alarm loop (office)").await.unwrap();
    b.sign_in(&site.base(), who, PASSWORD, path).await;
    wait_alarms_live(&b).await;
    b
}

/// Raises the booth alarm through the API as `who` at gate 1; returns its id.
async fn raise_as(site: &AdminSite, who: &str) -> i64 {
    let api = Api::new(&site.central, &site.db.db, who).await;
    api.call(Method::POST, "/api/v1/alarms", Some(json!({"gate_id": 1})))
        .await["id"]
        .as_i64()
        .unwrap()
}

/// Acknowledges alarm `id` through the API as security with `action`.
async fn acknowledge(site: &AdminSite, id: i64, action: &str) {
    let api = Api::new(&site.central, &site.db.db, "security").await;
    api.call(
        Method::POST,
        &format!("/api/v1/alarms/{id}/acknowledge"),
        Some(json!({"action": action})),
    )
    .await;
}

/// At /office: chooses `action` (its code) for alarm `id`, types `note`, and submits, in one
/// step (the list is re-rendered live whenever an alarm changes).
async fn acknowledge_on_page(office: &Browser, id: i64, action: &str, note: &str) {
    let form = format!("#alarms li[data-alarm=\"{id}\"] form.ack");
    office.find(&form).await;
    office
        .js(&format!(
            "var f = document.querySelector({form:?}); f.elements.action.value = {action:?}; \
             f.elements.note.value = {note:?}; f.requestSubmit(); return true;"
        ))
        .await;
}

#[tokio::test]
async fn a_guards_f9_asks_for_a_second_f9_or_enter_and_escape_cancels_without_an_alarm() {
    let site = campus().await;
    let Some(b) = booth(&site).await else {
        return;
    };
    // The first F9 only asks.
    press(&b, F9).await;
    b.wait_text("#alarm-confirm", "再按一次 F9 或回车确认报警")
        .await;
    shots(&b, "alarm-confirm").await;
    // Esc cancels: nothing stored, the prompt gone.
    press(&b, ESCAPE).await;
    b.wait_text("#alarm-confirm", "已取消报警").await;
    b.wait_for("the prompt to go", || async {
        hidden(&b, "#alarm-confirm").await.then_some(())
    })
    .await;
    // A second F9 after a cancel asks again; so does a click on the button.
    press(&b, F9).await;
    b.wait_text("#alarm-confirm", "再按一次").await;
    press(&b, ESCAPE).await;
    b.wait_for("the prompt to go", || async {
        hidden(&b, "#alarm-confirm").await.then_some(())
    })
    .await;
    assert_eq!(site.count("SELECT COUNT(*) FROM alarms").await, 0);

    // F9 then Enter raises it, once.
    press(&b, F9).await;
    b.wait_text("#alarm-confirm", "再按一次").await;
    press(&b, ENTER).await;
    b.wait_text("#my-alarm", "已送达").await;
    assert!(
        b.text("#flash").await.is_empty(),
        "the status says it; nothing else to read"
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM alarms").await, 1);
    // F9, F9 raises another.
    press(&b, F9).await;
    press(&b, F9).await;
    b.wait_for("the second alarm", || async {
        (site.count("SELECT COUNT(*) FROM alarms").await == 2).then_some(())
    })
    .await;
    b.close().await;
    site.shutdown().await;
}

#[tokio::test]
async fn the_guard_sees_the_alarm_stored_then_who_acknowledged_it_when_and_what_was_done() {
    let site = campus().await;
    let Some(guard) = booth(&site).await else {
        return;
    };
    let office = officer(&site, "security", "/office").await;
    press(&guard, F9).await;
    press(&guard, ENTER).await;
    guard.wait_text("#my-alarm", "已送达").await;
    guard.wait_text("#my-alarm", "等待确认").await;
    shots(&guard, "alarm-booth-stored").await;
    let id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM alarms")
        .fetch_one(site.db.db.pool())
        .await
        .unwrap();

    // The office: the alarm in words, by display name, with the acknowledgement form.
    office.wait_text("#alarms", "一键报警 · 北门").await;
    let list = office.text("#alarms").await;
    assert!(list.contains("门卫 李师傅"), "{list}");
    assert!(!list.contains("guard"), "no user name: {list}");
    office.wait_text("#alarm-banner", "未处置报警 1 条").await;
    shots(&office, "alarm-office-open").await;

    // Acknowledging needs what was done.
    acknowledge_on_page(&office, id, "", "").await;
    office
        .wait_text("#alarms .form-status", "请选择处置情况")
        .await;
    acknowledge_on_page(&office, id, "dispatched", "巡逻队已到北门").await;
    office
        .wait_text(&format!("#alarms li[data-alarm=\"{id}\"]"), "保卫处 刘科长")
        .await;
    let item = office
        .text(&format!("#alarms li[data-alarm=\"{id}\"]"))
        .await;
    assert!(
        item.contains("已确认：已派人到场（巡逻队已到北门）"),
        "{item}"
    );
    shots(&office, "alarm-office-acknowledged").await;

    // The guard sees who, when and what.
    let text = guard.wait_text("#my-alarm", "保卫处 刘科长").await;
    assert!(text.contains("已确认：已派人到场"), "{text}");
    assert!(
        regex_like_time(&text),
        "the time of the acknowledgement: {text}"
    );
    assert_eq!(
        guard
            .js("return document.querySelector('#my-alarm').dataset.state")
            .await,
        "acknowledged"
    );
    assert!(
        hidden(&guard, "#my-alarm button.withdraw").await,
        "nothing to withdraw now"
    );
    shots(&guard, "alarm-booth-acknowledged").await;
    guard.close().await;
    office.close().await;
    site.shutdown().await;
}

/// Whether `text` holds an `HH:MM` time.
fn regex_like_time(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == ':'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    })
}

#[tokio::test]
async fn a_security_officer_on_an_admin_page_gets_the_banner_and_the_sound_and_it_clears_when_acknowledged()
 {
    let site = campus().await;
    let Some(admin) = browser::open("alarm loop (admin page)").await else {
        return;
    };
    admin
        .sign_in(&site.base(), "security", PASSWORD, "/admin/persons")
        .await;
    wait_alarms_live(&admin).await;
    assert!(hidden(&admin, "#alarm-banner").await, "no alarm, no banner");
    let before = beeps(&admin).await;

    let id = raise_as(&site, "guard").await;
    let text = admin.wait_text("#alarm-banner", "未处置报警 1 条").await;
    assert!(text.contains("一键报警") && text.contains("北门"), "{text}");
    assert!(text.contains("门卫 李师傅"), "by display name: {text}");
    assert_eq!(
        admin
            .find("#alarm-banner a")
            .await
            .attr("href")
            .await
            .unwrap()
            .as_deref(),
        Some("/office")
    );
    admin
        .wait_for("the sound", || async {
            (beeps(&admin).await > before).then_some(())
        })
        .await;
    shots(&admin, "alarm-admin-banner").await;
    // Another administration page: the banner is there too, without sounding again.
    admin.goto(&format!("{}/admin", site.base())).await;
    wait_alarms_live(&admin).await;
    admin.wait_text("#alarm-banner", "未处置报警 1 条").await;
    assert_eq!(beeps(&admin).await, 0, "no new alarm, no new sound");

    // Acknowledged elsewhere (the office's API): the banner clears.
    acknowledge(&site, id, "phoned").await;
    admin
        .wait_for("the banner to clear", || async {
            hidden(&admin, "#alarm-banner").await.then_some(())
        })
        .await;
    admin.close().await;
    site.shutdown().await;
}

#[tokio::test]
async fn the_office_banner_clears_when_every_alarm_is_acknowledged() {
    let site = campus().await;
    let Some(office) = browser::open("alarm loop (office banner)").await else {
        return;
    };
    office
        .sign_in(&site.base(), "security", PASSWORD, "/office")
        .await;
    office.wait_live().await;
    wait_alarms_live(&office).await;
    let first = raise_as(&site, "guard").await;
    let second = raise_as(&site, "guard").await;
    office.wait_text("#alarm-banner", "未处置报警 2 条").await;
    assert!(beeps(&office).await >= 1, "the office hears it");

    acknowledge_on_page(&office, first, "phoned", "").await;
    office.wait_text("#alarm-banner", "未处置报警 1 条").await;
    acknowledge_on_page(&office, second, "other", "门卫误触，已电话核实").await;
    office
        .wait_for("the banner to clear", || async {
            hidden(&office, "#alarm-banner").await.then_some(())
        })
        .await;
    wait_count(&office, "#alarms li.open", 0).await;
    office
        .wait_text(
            &format!("#alarms li[data-alarm=\"{second}\"]"),
            "其他（门卫误触，已电话核实）",
        )
        .await;
    shots(&office, "alarm-office-all-acknowledged").await;
    office.close().await;
    site.shutdown().await;
}

#[tokio::test]
async fn a_guard_withdraws_a_false_alarm_and_the_office_sees_it_withdrawn_with_who_and_when() {
    let site = campus().await;
    let Some(guard) = booth(&site).await else {
        return;
    };
    let office = officer(&site, "security", "/office").await;
    press(&guard, F9).await;
    press(&guard, F9).await;
    guard.wait_text("#my-alarm", "已送达").await;
    office.wait_text("#alarm-banner", "未处置报警 1 条").await;
    // Two clicks: the first asks.
    guard
        .find("#my-alarm button.withdraw")
        .await
        .click()
        .await
        .unwrap();
    guard
        .wait_text("#my-alarm button.withdraw", "再点一次")
        .await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM alarms WHERE withdrawn_ms IS NOT NULL")
            .await,
        0
    );
    guard
        .find("#my-alarm button.withdraw")
        .await
        .click()
        .await
        .unwrap();
    // The button says so at once; the live status then names who withdrew it, and when.
    let text = guard.wait_text("#my-alarm", "已撤销（误报） · ").await;
    assert!(text.contains("门卫 李师傅"), "{text}");
    shots(&guard, "alarm-booth-withdrawn").await;

    let item = office.wait_text("#alarms li", "已撤销（误报）").await;
    assert!(
        item.contains("门卫 李师傅") && regex_like_time(&item),
        "{item}"
    );
    office
        .wait_for("the banner to clear", || async {
            hidden(&office, "#alarm-banner").await.then_some(())
        })
        .await;
    // Nothing left to acknowledge.
    wait_count(&office, "#alarms form.ack", 0).await;
    shots(&office, "alarm-office-withdrawn").await;
    guard.close().await;
    office.close().await;
    site.shutdown().await;
}

#[tokio::test]
async fn tailgating_at_a_lane_raises_a_tailgating_alarm_the_office_sees_in_words() {
    let site = campus().await;
    let Some(office) = browser::open("alarm loop (tailgating)").await else {
        return;
    };
    office
        .sign_in(&site.base(), "security", PASSWORD, "/office")
        .await;
    // The gate's upload goes in through the centre's ingest, as the sync's events-up route
    // hands it over (the server's own state is on its runtime: this one shares its database).
    let ingest = gatehouse::central::state::AppState::new(site.db.db.clone());
    let fault = JournalEvent {
        seq: 1,
        at: chrono::Utc::now(),
        lane: "entry".into(),
        body: EventBody::LaneFault {
            fault: "unauthorized_passage".into(),
            detail: "a vehicle passed without a grant".into(),
        },
    };
    gatehouse::central::ingest::accept(&ingest, 1, &[fault])
        .await
        .unwrap();
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM alarms")
        .fetch_all(site.db.db.pool())
        .await
        .unwrap();
    assert_eq!(kinds, ["tailgating"]);
    office.goto(&format!("{}/office", site.base())).await;
    let item = office
        .wait_text("#alarms li[data-kind=tailgating]", "尾随/未授权通过")
        .await;
    assert!(item.contains("北门 · 入口"), "gate and lane: {item}");
    assert!(item.contains("系统"), "{item}");
    assert!(
        !item.contains("tailgating") && !item.contains("entry"),
        "{item}"
    );
    office.wait_text("#alarm-banner", "尾随/未授权通过").await;
    shots(&office, "alarm-office-tailgating").await;
    office.close().await;
    site.shutdown().await;
}
