//! The guard's booth as the context of the visitor form, plates typed any way, and the site
//! settings, in a real headless Chromium (zh-CN) against a real site (central server, gates on
//! simulated lanes, the real sync): a full-width plate with 浙 picked registers 浙AM1205 and
//! opens the lane; a guard on duty at the second gate opens the second gate's lane without
//! touching the lane list; the province picker starts at the configured province; a guard not
//! on duty is refused a manual open (at the form, audited), then opens once signed in, and
//! without signing in when the setting is off. Screenshots at 1366×768 and 1024×768.

use gatehouse::central::api::auth::Role;
use sqlx::Row;

use crate::admin_support::admin_site;
use crate::support::browser::{self, Browser};
use crate::support::gate::LaneSpec;
use crate::support::site::{site, wait_arm_open};
use crate::support::{PASSWORD, create_operator, sqlite, wait_connected};

/// Fills the visitor form's fields other than plate and lane, and submits it.
async fn fill_and_register(b: &Browser) {
    for (id, text) in [
        ("driver_name", "钱七"),
        ("driver_phone", "13912345678"),
        ("host_name", "孙老师"),
        ("department", "化学学院"),
        ("purpose", "送实验器材"),
    ] {
        b.find(&format!("#{id}"))
            .await
            .send_keys(text)
            .await
            .unwrap();
    }
    b.find("#visit-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
}

/// Chooses a reason in the lane's command form `form` and clicks its open button.
async fn open_by_hand(b: &Browser, form: &str) {
    b.js(&format!(
        "var f = document.querySelector(\"{form}\"); \
         f.querySelector('select').value = 'emergency_vehicle'; \
         f.querySelector('button.open').click();"
    ))
    .await;
}

/// Screenshots of the page at the two widths the booth PCs and tablets have.
async fn screenshots(b: &Browser, name: &str) {
    for (w, h) in [(1366, 768), (1024, 768)] {
        b.set_viewport(w, h).await;
        b.screenshot(&format!("{name}-{w}")).await;
    }
}

#[tokio::test]
async fn a_full_width_plate_typed_with_zhe_picked_registers_zhe_am1205_and_opens_the_lane() {
    let site = site().await;
    site.gate.arrive("entry").await;
    let Some(b) = browser::open("full-width plate").await else {
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
    b.goto(&format!("{base}/console/visitors")).await;
    b.wait_text("#duty-context", "北门").await;
    assert_eq!(
        b.js("return document.getElementById('province').value")
            .await,
        "京"
    );
    b.find("#province option[value='浙']")
        .await
        .click()
        .await
        .unwrap();
    b.find("#plate")
        .await
        .send_keys("ａｍ１２０５")
        .await
        .unwrap();
    assert_eq!(
        b.js("return document.getElementById('plate').value").await,
        "ａｍ１２０５",
        "typed as is"
    );
    fill_and_register(&b).await;
    b.wait_text("#visit-form .form-status", "已登记，道闸已抬起")
        .await;
    let row = sqlx::query("SELECT id, plate, gate_id, lane_key FROM visits")
        .fetch_one(site.db.db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(1), "浙AM1205");
    assert_eq!(
        (row.get::<i64, _>(2), row.get::<String, _>(3).as_str()),
        (1, "entry")
    );
    wait_arm_open(&site.gate, "entry").await;
    // After the page reloads: the slip of the visitor just registered, and on their row.
    let id = row.get::<i64, _>(0);
    b.wait_text("#just-registered", "浙AM1205").await;
    let slip = format!("/console/visitors/{id}/slip");
    let href = b
        .js("return document.querySelector('#just-registered a.slip').getAttribute('href')")
        .await;
    assert_eq!(href, slip.as_str());
    assert_eq!(b.text("#just-registered a.slip").await, "打印临时通行单");
    let row_link = b
        .js(&format!(
            "return document.querySelector('#open-visits tr[data-visit=\"{id}\"] a.slip').getAttribute('href')"
        ))
        .await;
    assert_eq!(row_link, slip.as_str());
    screenshots(&b, "visitors-registered-full-width").await;
    b.close().await;
    site.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_on_duty_at_the_second_gate_registers_a_visitor_and_the_second_gates_lane_opens() {
    let site = admin_site(
        sqlite().await,
        &[
            (1, &[LaneSpec::entry("entry"), LaneSpec::exit("exit")]),
            (2, &[LaneSpec::entry("entry")]),
        ],
    )
    .await;
    let Some(b) = browser::open("second gate").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    create_operator(&db, "guard_both", Role::Guard, &[1, 2]).await;
    wait_connected(&db, 1).await;
    wait_connected(&db, 2).await;
    site.gate(2).arrive("entry").await;
    let base = site.base();
    b.sign_in(&base, "guard_both", PASSWORD, "/console/visitors")
        .await;
    // Not on duty: told to sign in first, and the first gate's lane is listed first.
    b.wait_text("#duty-hint", "请先在").await;
    assert_eq!(
        b.js("return document.getElementById('lane').value").await,
        "1/entry"
    );
    screenshots(&b, "visitors-not-on-duty").await;
    b.goto(&format!("{base}/console")).await;
    b.find("section.duty form:has(input[name=gate_id][value='2']) button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "南门").await;
    b.goto(&format!("{base}/console/visitors")).await;
    b.wait_text("#duty-context", "南门").await;
    assert!(b.text("#duty-hint").await.is_empty());
    // The booth's lane is the default, listed first; the other gate's after it.
    let lanes = b
        .js("return Array.prototype.map.call(document.querySelectorAll('#lane option'), function (o) { return o.value; })")
        .await;
    assert_eq!(lanes, serde_json::json!(["2/entry", "1/entry"]));
    assert_eq!(
        b.js("return document.getElementById('lane').value").await,
        "2/entry"
    );
    let group = b
        .js("return document.querySelector('#lane optgroup').label")
        .await;
    assert_eq!(group, "本岗亭：南门");
    b.find("#plate").await.send_keys("B·66888").await.unwrap();
    fill_and_register(&b).await;
    b.wait_text("#visit-form .form-status", "已登记，道闸已抬起")
        .await;
    wait_arm_open(site.gate(2), "entry").await;
    site.gate(1).lane("entry").assert_never_opened();
    let row = sqlx::query("SELECT plate, gate_id, lane_key FROM visits")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "京B66888");
    assert_eq!(row.get::<i64, _>(1), 2);
    b.wait_text("#just-registered", "京B66888").await;
    screenshots(&b, "visitors-on-duty-second-gate").await;
    b.close().await;
    site.shutdown().await;
}

#[tokio::test]
async fn the_province_picker_starts_at_the_province_set_on_the_settings_page() {
    let site = site().await;
    let Some(b) = browser::open("default province").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "admin", PASSWORD, "/admin/settings").await;
    b.wait_text("#settings-form", "默认省份简称").await;
    // Every setting is explained in words.
    for id in [
        "province",
        "require_duty_for_open",
        "verdict_fade_s",
        "alarm_withdraw_s",
        "unstaffed_alert_min",
    ] {
        let meaning = b.text(&format!("#{id}-meaning")).await;
        assert!(meaning.chars().count() > 10, "{id}: {meaning:?}");
    }
    b.find("#province option[value='浙']")
        .await
        .click()
        .await
        .unwrap();
    // A bad value first: refused at its field, nothing saved.
    b.js("document.getElementById('verdict_fade_s').value = '2'")
        .await;
    b.find("#settings-save").await.click().await.unwrap();
    b.wait_text("[data-error-for='verdict_fade_s']", "应在 5 到 3600 秒之间")
        .await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM site_settings").await,
        0,
        "nothing saved"
    );
    b.js("document.getElementById('verdict_fade_s').value = '45'")
        .await;
    b.find("#settings-save").await.click().await.unwrap();
    b.wait_text("#settings-form .form-status", "已保存").await;
    screenshots(&b, "admin-settings").await;
    let stored: String =
        sqlx::query_scalar("SELECT value FROM site_settings WHERE key = 'province'")
            .fetch_one(site.db.db.pool())
            .await
            .unwrap();
    assert_eq!(stored, "\"浙\"");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE entity = 'site_settings'")
            .await,
        1
    );
    // The security office sees the settings, read-only.
    b.find("#logout").await.click().await.unwrap();
    b.wait_url("/login").await;
    b.sign_in(&base, "security", PASSWORD, "/admin/settings")
        .await;
    b.wait_text("#settings-read-only", "只有系统管理员").await;
    assert_eq!(
        b.js("return document.getElementById('province').disabled")
            .await,
        true
    );
    b.find("#logout").await.click().await.unwrap();
    b.wait_url("/login").await;
    // The guard's picker starts at 浙.
    b.sign_in(&base, "guard", PASSWORD, "/console/visitors")
        .await;
    b.find("#visit-form").await;
    assert_eq!(
        b.js("return document.getElementById('province').value")
            .await,
        "浙"
    );
    b.close().await;
    site.finish().await;
}

#[tokio::test]
async fn a_guard_not_on_duty_is_refused_a_manual_open_at_the_form_and_after_signing_in_the_same_open_works()
 {
    let site = site().await;
    site.gate.arrive("entry").await;
    let Some(b) = browser::open("duty required").await else {
        return;
    };
    let base = site.central.url("");
    b.sign_in(&base, "guard", PASSWORD, "/console").await;
    b.wait_live().await;
    let form = "#gate-1 article.lane:first-child form.command";
    open_by_hand(&b, form).await;
    b.wait_text(&format!("{form} .form-status"), "请先在本岗亭签到上岗")
        .await;
    screenshots(&b, "console-refused-not-on-duty").await;
    site.gate.lane("entry").assert_never_opened();
    let refused = sqlx::query(
        "SELECT operator_name, entity_id, after_json FROM audit_log \
         WHERE action = 'manual_command_refused'",
    )
    .fetch_one(site.db.db.pool())
    .await
    .unwrap();
    assert_eq!(refused.get::<String, _>(1), "1/entry");
    let after: serde_json::Value = serde_json::from_str(&refused.get::<String, _>(2)).unwrap();
    assert_eq!(after["command"], "open");
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command'")
            .await,
        0
    );

    // Signed in at this booth, the same open is carried out.
    b.find("section.duty form[data-api='/api/v1/duty/sign-in'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "当前值班").await;
    b.wait_live().await;
    open_by_hand(&b, form).await;
    b.wait_text(&format!("{form} .form-status"), "闸口已执行")
        .await;
    wait_arm_open(&site.gate, "entry").await;

    // With the setting off, a guard off duty opens too.
    b.find("section.duty form[data-api='/api/v1/duty/sign-off'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#duty-status", "尚未签到上岗").await;
    let admin = crate::support::Api::new(&site.central, &site.db.db, "admin").await;
    admin
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings",
            Some(serde_json::json!({"require_duty_for_open": false})),
        )
        .await;
    b.wait_live().await;
    open_by_hand(&b, form).await;
    b.wait_text(&format!("{form} .form-status"), "闸口已执行")
        .await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command_refused'")
            .await,
        1,
        "only the first open was refused"
    );
    assert_eq!(
        site.count("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command'")
            .await,
        2
    );
    b.close().await;
    site.finish().await;
}
