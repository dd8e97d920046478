//! Browser tests (real Chromium, zh-CN) of the administration forms that need no database ids
//! and of the charts and tables beside them (issue 20, items 5, 6 and 8): the exit-pass
//! application filled with the person and vehicle pickers and gate checkboxes; a second live
//! pass of the same kind warned about and issued only with a reason; the statistics charts'
//! axis labels, measured in the page, never overlapping at 1366 and 1024 wide, and each table
//! in its chart's order; the application, permit and statistics pages at tablet sizes with no
//! sideways scrolling, no plate broken across lines and no overlapping fields. Screenshots go to
//! `target/web-screenshots/forms-*.png`.

use fantoccini::Locator;
use gatehouse::central::db::{Actor, now_ms};
use gatehouse::central::repo::permits::{self, PermitInput};
use serde_json::Value;

use crate::admin_support::{AdminSite, admin_site, person_with_car};
use crate::support::browser::{self, Browser};
use crate::support::{PASSWORD, TestDb, each_database, sqlite};

const ENTER: &str = "\u{E007}";
const ARROW_DOWN: &str = "\u{E015}";

async fn click(b: &Browser, css: &str) {
    b.find(css).await.click().await.unwrap();
}

async fn type_into(b: &Browser, css: &str, text: &str) {
    b.find(css).await.send_keys(text).await.unwrap();
}

fn office() -> Actor {
    Actor {
        operator_id: None,
        name: "测试保卫处".into(),
    }
}

/// A live period pass (every gate, until 2099) for `vehicle` held by `holder`.
async fn live_permit(site: &AdminSite, holder: i64, vehicle: i64) -> i64 {
    permits::create(
        &site.db.db,
        &office(),
        &PermitInput {
            category: "staff".into(),
            holder_id: holder,
            valid_from: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            valid_until: chrono::DateTime::from_timestamp(4_070_908_800, 0).unwrap(),
            gates: "all".into(),
            schedule: String::new(),
            single_use: false,
            max_inside: None,
            vehicle_ids: vec![vehicle],
        },
    )
    .await
    .unwrap()
    .id
}

/// Waits until the picker `input` offers an option containing `text`.
async fn wait_option(b: &Browser, input: &str, text: &str) {
    b.wait_text(&format!("#{input}-list"), text).await;
}

/// The page's visible text.
async fn page_text(b: &Browser) -> String {
    b.js("return document.querySelector('main').innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_applies_by_finding_the_person_by_name_and_the_car_by_a_full_width_lower_case_plate_and_ticking_gates()
 {
    let site = admin_site(sqlite().await, &[]).await;
    let Some(b) = browser::open("application with pickers").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    let (li, car) = person_with_car(&db, "李明", "staff", "计算机学院", "浙AM1205").await;
    let (_, _) = person_with_car(&db, "李华", "student", "计算机学院", "浙AM1208").await;
    let base = site.base();
    b.set_viewport(1366, 768).await;
    b.sign_in(&base, "approver", PASSWORD, "/admin/applications")
        .await;
    // No id fields and no gate-rights code to type.
    let form = b.text("#apply-form").await;
    assert!(!form.contains("编号）") && !form.contains("all"), "{form}");

    // The person: typed 李, two matches, the second chosen with the arrow keys and Enter.
    type_into(&b, "#a-applicant", "李").await;
    wait_option(&b, "a-applicant", "李明").await;
    wait_option(&b, "a-applicant", "李华").await;
    assert_eq!(
        b.js("return document.querySelector('#a-applicant').getAttribute('role')")
            .await,
        "combobox"
    );
    assert_eq!(
        b.js("return document.querySelector('#a-applicant-list').getAttribute('role')")
            .await,
        "listbox"
    );
    type_into(&b, "#a-applicant", ARROW_DOWN).await;
    b.wait_text("#a-applicant-list [aria-selected=true]", "李明")
        .await;
    type_into(&b, "#a-applicant", ENTER).await;
    b.wait_for("the person chosen", || async {
        let v = b
            .js("return document.querySelector('[name=applicant_id]').value")
            .await;
        (v.as_str() == Some(li.id.to_string().as_str())).then_some(())
    })
    .await;
    // The vehicle: a plate typed in full width and lower case finds 浙AM1205.
    type_into(&b, "#a-vehicle", "ａｍ１２").await;
    wait_option(&b, "a-vehicle", "浙AM1205").await;
    let offered = b.text("#a-vehicle-list").await;
    assert!(
        !offered.contains("浙AM1208"),
        "only the applicant's cars: {offered}"
    );
    b.screenshot("forms-application-picker-1366").await;
    type_into(&b, "#a-vehicle", ENTER).await;
    b.wait_for("the vehicle chosen", || async {
        let v = b
            .js("return document.querySelector('[name=vehicle_id]').value")
            .await;
        (v.as_str() == Some(car.id.to_string().as_str())).then_some(())
    })
    .await;
    // Gates by checkbox: not all gates; 北门 out, 南门 in and out.
    let tick = |gate: &'static str, dir: &'static str| {
        let b = &b;
        async move {
            b.find(&format!(
                "#a-gates tr[data-gate=\"{gate}\"] input[data-dir={dir}]"
            ))
            .await
            .send_keys(" ")
            .await
            .unwrap();
        }
    };
    tick("all", "entry").await;
    tick("all", "exit").await;
    assert_eq!(b.text("#a-gates output").await, "未选择任何大门");
    tick("1", "exit").await;
    tick("2", "entry").await;
    tick("2", "exit").await;
    assert_eq!(
        b.text("#a-gates output").await,
        "北门（出）；南门（入、出）"
    );
    type_into(&b, "#a-purpose", "周末搬运实验器材").await;
    b.set_viewport(1024, 768).await;
    b.screenshot("forms-application-filled-1024").await;
    click(&b, "#apply-form button[type=submit]").await;
    b.wait_text("#apply-form .form-status", "已提交").await;
    let row = sqlx::query_as::<_, (i64, i64, String)>(
        "SELECT applicant_id, vehicle_id, gates FROM exit_pass_applications",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(row, (li.id, car.id, "1:exit;2".to_string()));

    // The list says it in words, never in codes.
    b.wait_for("the application listed", || async {
        b.client
            .find(Locator::Css("#applications tr[data-status=pending]"))
            .await
            .ok()
    })
    .await;
    let rows = b.text("#applications tbody").await;
    assert!(rows.contains("北门（出）；南门（入、出）"), "{rows}");
    assert!(rows.contains("待审批"), "{rows}");
    let text = page_text(&b).await;
    for code in ["1:exit", "all:exit", "pending", "(approved)", "exit_only"] {
        assert!(!text.contains(code), "{code} shown: {text}");
    }
    b.set_viewport(1366, 768).await;
    b.screenshot("forms-application-listed-1366").await;
    b.close().await;
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_pass_for_a_vehicle_is_warned_about_refused_without_a_reason_and_issued_with_one()
 {
    for t in each_database().await {
        second_pass_on(t).await;
    }
}

async fn second_pass_on(t: TestDb) {
    let site = admin_site(t, &[]).await;
    let Some(b) = browser::open("second live pass").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    let (holder, car) = person_with_car(&db, "周强", "staff", "计算机学院", "京A66666").await;
    let first = live_permit(&site, holder.id, car.id).await;
    let base = site.base();
    b.set_viewport(1366, 768).await;
    b.sign_in(&base, "security", PASSWORD, "/admin/permits")
        .await;
    click(&b, "#new-permit-panel summary").await;
    type_into(&b, "#p-holder", "周").await;
    wait_option(&b, "p-holder", "周强").await;
    type_into(&b, "#p-holder", ENTER).await;
    type_into(&b, "#p-vehicle", "a66").await;
    wait_option(&b, "p-vehicle", "京A66666").await;
    type_into(&b, "#p-vehicle", ENTER).await;
    // The warning names the live pass: number, holder, validity.
    let warning = b.wait_text(".live-warning", "京A66666").await;
    assert!(
        warning.contains(&format!("车辆通行证 {first}号"))
            && warning.contains("周强")
            && warning.contains("2026-01-01 08:00 — 2099-01-01 08:00"),
        "{warning}"
    );
    b.screenshot("forms-permit-warning-1366").await;
    // Without a reason the form says so and sends nothing.
    click(&b, "#permit-form button[type=submit]").await;
    b.wait_text(
        "#permit-form [data-error-for=override_reason]",
        "请填写重复发证原因",
    )
    .await;
    // Past the form's own check, the API refuses it: 409 with the live pass named.
    b.js("var r = document.querySelector('#override-reason'); r.required = false; r.disabled = true;")
        .await;
    click(&b, "#permit-form button[type=submit]").await;
    let refused = b
        .wait_text("#permit-form .form-status", "已有有效的车辆通行证")
        .await;
    assert!(refused.contains("京A66666"), "{refused}");
    assert_eq!(site.count("SELECT COUNT(*) FROM permits").await, 1);
    // With a reason it is issued; the reason is on the permit, in the audit log and on the page.
    type_into(&b, "#override-reason", "临时换证，旧证下周收回").await;
    click(&b, "#permit-form button[type=submit]").await;
    b.wait_text("#permit-form .form-status", "通行证已发放")
        .await;
    let stored: String = sqlx::query_scalar("SELECT override_reason FROM permits WHERE id <> $1")
        .bind(first)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(stored, "临时换证，旧证下周收回");
    assert_eq!(
        site.count(
            "SELECT COUNT(*) FROM audit_log WHERE entity = 'permit' AND action = 'create' \
             AND after_json LIKE '%临时换证，旧证下周收回%'"
        )
        .await,
        1
    );
    b.wait_text("#permits tbody", "重复发证：临时换证").await;
    let rows = b.text("#permits tbody").await;
    assert!(rows.contains("全部大门") && !rows.contains("all"), "{rows}");
    b.set_viewport(1024, 768).await;
    b.screenshot("forms-permits-1024").await;
    b.close().await;
    site.shutdown().await;
}

/// Today's statistics: flows at two gates with long names, denials and manual opens.
async fn seed_stats(site: &AdminSite) {
    let db = &site.db.db;
    let day = gatehouse::central::traffic::site_today(chrono_tz::Asia::Shanghai, now_ms());
    sqlx::query("UPDATE gates SET name = $1 WHERE id = 1")
        .bind("东校区北门（教学区主入口）")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE gates SET name = $1 WHERE id = 2")
        .bind("西校区南门（生活区）")
        .execute(db.pool())
        .await
        .unwrap();
    let mut hour_ms = 1_000_000_i64;
    for (gate, direction, category, n) in [
        (1, "entry", "staff", 40),
        (1, "exit", "staff", 35),
        (1, "entry", "student", 12),
        (2, "entry", "visitor", 9),
        (2, "exit", "visitor", 7),
        (2, "entry", "staff", 3),
    ] {
        hour_ms += 3_600_000;
        sqlx::query(
            "INSERT INTO stats_flows (hour_ms, day, hour, gate_id, direction, category, passages) \
             VALUES ($1, $2, 8, $3, $4, $5, $6)",
        )
        .bind(hour_ms)
        .bind(day.to_string())
        .bind(gate)
        .bind(direction)
        .bind(category)
        .bind(n)
        .execute(db.pool())
        .await
        .unwrap();
    }
    for (reason, n) in [
        ("denied_expired", 2),
        ("denied_unknown_tag", 7),
        ("denied_wrong_gate", 4),
        ("denied_plate_mismatch", 1),
    ] {
        sqlx::query(
            "INSERT INTO stats_denials (day, gate_id, reason, denials) VALUES ($1, 1, $2, $3)",
        )
        .bind(day.to_string())
        .bind(reason)
        .bind(n)
        .execute(db.pool())
        .await
        .unwrap();
    }
    for (operator, reason, n) in [
        ("guard", "visitor_registered", 1),
        ("guard2", "device_fault", 3),
        ("guard2", "visitor_registered", 2),
    ] {
        sqlx::query(
            "INSERT INTO stats_overrides (day, gate_id, operator, reason, opens) \
             VALUES ($1, 1, $2, $3, $4)",
        )
        .bind(day.to_string())
        .bind(operator)
        .bind(reason)
        .bind(n)
        .execute(db.pool())
        .await
        .unwrap();
    }
}

/// Pairs of axis labels of one chart whose boxes overlap, as text.
async fn overlapping_labels(b: &Browser) -> Vec<String> {
    let v = b
        .js("var out = []; \
             document.querySelectorAll('svg.chart').forEach(function (svg, n) { \
               var boxes = Array.prototype.map.call(svg.querySelectorAll('text.axis-label'), function (t) { \
                 return [t.getBoundingClientRect(), t.textContent]; }); \
               for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) { \
                 var a = boxes[i][0], c = boxes[j][0]; \
                 if (a.width && c.width && a.left < c.right - 0.5 && c.left < a.right - 0.5 && \
                     a.top < c.bottom - 0.5 && c.top < a.bottom - 0.5) \
                   out.push('chart ' + n + ': ' + boxes[i][1] + ' / ' + boxes[j][1]); } }); \
             return out;")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The full texts (tooltips) of a chart's axis labels, in order.
async fn chart_labels(b: &Browser, title: &str) -> Vec<String> {
    let v = b
        .js(&format!(
            "return Array.prototype.map.call(document.querySelectorAll(\
             'section[aria-labelledby={title}] svg.chart text.axis-label title'), \
             function (t) {{ return t.textContent; }});"
        ))
        .await;
    strings(&v)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_charts_axis_labels_never_overlap_and_each_table_follows_its_charts_order() {
    let site = admin_site(sqlite().await, &[]).await;
    let Some(b) = browser::open("chart labels").await else {
        site.shutdown().await;
        return;
    };
    seed_stats(&site).await;
    let base = site.base();
    b.sign_in(&base, "security", PASSWORD, "/admin/stats").await;
    for (width, height) in [(1366, 768), (1024, 768)] {
        b.set_viewport(width, height).await;
        b.goto(&format!("{base}/admin/stats")).await;
        b.find("#flows").await;
        let overlaps = overlapping_labels(&b).await;
        assert!(overlaps.is_empty(), "at {width}: {overlaps:#?}");
        b.js("document.querySelector('#flows-title').scrollIntoView()")
            .await;
        b.screenshot(&format!("forms-stats-charts-{width}")).await;
        b.js("document.querySelector('#denials-title').scrollIntoView()")
            .await;
        b.screenshot(&format!("forms-stats-bars-{width}")).await;
    }
    // A long label is cut short on the chart, whole in its tooltip and in the table.
    let flows = chart_labels(&b, "flows-title").await;
    let rows = strings(
        &b.js(
            "return Array.prototype.map.call(document.querySelectorAll('#flows tbody th'), \
               function (t) { return t.textContent; });",
        )
        .await,
    );
    assert_eq!(flows, rows, "the flows table in the chart's order");
    assert!(
        rows[0].starts_with("东校区北门（教学区主入口）"),
        "{rows:?}"
    );
    let denials = chart_labels(&b, "denials-title").await;
    let denial_rows = strings(
        &b.js("return Array.prototype.map.call(document.querySelectorAll('#denials tbody td:first-child'), \
               function (t) { return t.textContent; });")
            .await,
    );
    assert_eq!(
        denials, denial_rows,
        "the denials table in the chart's order"
    );
    let counts = strings(
        &b.js(
            "return Array.prototype.map.call(document.querySelectorAll('#denials tbody td.num'), \
               function (t) { return t.textContent; });",
        )
        .await,
    );
    assert_eq!(counts, ["7", "4", "2", "1"], "largest first");
    assert_eq!(denial_rows[0], "未登记的标签", "reasons in words");
    let guards = chart_labels(&b, "opens-title").await;
    let guard_rows = strings(
        &b.js("var seen = []; document.querySelectorAll('#manual-opens tbody td:first-child').forEach(\
               function (t) { if (seen.indexOf(t.textContent) < 0) seen.push(t.textContent); }); return seen;")
            .await,
    );
    assert_eq!(guards, guard_rows, "the guards in the chart's order");
    assert_eq!(guards.len(), 2);
    assert!(
        !guards.iter().any(|g| g == "guard" || g == "guard2"),
        "display names, not user names: {guards:?}"
    );
    b.close().await;
    site.shutdown().await;
}

/// Elements sticking out sideways (outside a scrolling box), inputs overlapping each other,
/// and plates that could break across lines.
async fn layout_problems(b: &Browser) -> (u64, u64, Vec<String>) {
    let v = b
        .js("var w = document.documentElement.clientWidth, out = []; \
             function scrolled(e) { for (var p = e.parentElement; p && p !== document.body; p = p.parentElement) { \
               var o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; } \
               return false; } \
             document.querySelectorAll('body *').forEach(function (e) { \
               var r = e.getBoundingClientRect(); \
               if (r.width > 0 && r.height > 0 && (r.right > w + 0.5 || r.left < -0.5) && !scrolled(e)) \
                 out.push('sticks out: ' + e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' [' + Math.round(r.left) + ', ' + Math.round(r.right) + ']'); }); \
             var fields = Array.prototype.filter.call(document.querySelectorAll('main input, main select, main textarea, main button'), \
               function (e) { var r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && e.type !== 'hidden'; }); \
             for (var i = 0; i < fields.length; i++) for (var j = i + 1; j < fields.length; j++) { \
               var a = fields[i].getBoundingClientRect(), c = fields[j].getBoundingClientRect(); \
               if (a.left < c.right - 1 && c.left < a.right - 1 && a.top < c.bottom - 1 && c.top < a.bottom - 1) \
                 out.push('overlap: ' + (fields[i].id || fields[i].name || fields[i].textContent) + ' / ' + (fields[j].id || fields[j].name || fields[j].textContent)); } \
             document.querySelectorAll('.plate').forEach(function (e) { \
               if (!e.getClientRects().length) return; \
               var s = getComputedStyle(e); \
               if (s.whiteSpace !== 'nowrap') out.push('plate may wrap: ' + e.textContent); \
               if (e.tagName !== 'TD' && e.getClientRects().length > 1) out.push('plate on two lines: ' + e.textContent); }); \
             return [document.documentElement.scrollWidth, w, out.slice(0, 20)];")
        .await;
    (
        v[0].as_u64().unwrap(),
        v[1].as_u64().unwrap(),
        strings(&v[2]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_permit_and_statistics_pages_fit_a_tablet_with_plates_on_one_line() {
    let site = admin_site(sqlite().await, &[]).await;
    let Some(b) = browser::open("admin forms at tablet sizes").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    seed_stats(&site).await;
    let (holder, car) =
        person_with_car(&db, "欧阳明轩", "staff", "马克思主义学院", "京AD12345").await;
    live_permit(&site, holder.id, car.id).await;
    sqlx::query(
        "INSERT INTO exit_pass_applications (kind, applicant_id, department, vehicle_id, category, \
         gates, valid_from_ms, valid_until_ms, purpose, status, applied_by, created_ms, updated_ms) \
         VALUES ('permit', $1, '马克思主义学院', $2, 'staff', '1:exit;2', $3, $4, '学术会议期间接送专家', \
         'approved', 'security', $3, $3)",
    )
    .bind(holder.id)
    .bind(car.id)
    .bind(now_ms() / 60_000 * 60_000)
    .bind(now_ms() / 60_000 * 60_000 + 86_400_000 * 30)
    .execute(db.pool())
    .await
    .unwrap();
    let base = site.base();
    b.sign_in(&base, "admin", PASSWORD, "/admin/applications")
        .await;
    for (width, height, size) in [(1024, 768, "1024x768"), (768, 1024, "768x1024")] {
        b.set_viewport(width, height).await;
        for (path, name) in [
            ("/admin/applications", "applications"),
            ("/admin/permits", "permits"),
            ("/admin/stats", "stats"),
        ] {
            b.goto(&format!("{base}{path}")).await;
            b.find("main h1").await;
            if name == "permits" {
                click(&b, "#new-permit-panel summary").await;
            }
            let (scroll, viewport, problems) = layout_problems(&b).await;
            assert!(
                scroll <= viewport && problems.is_empty(),
                "{path} at {size}: {scroll} px wide in {viewport}: {problems:#?}"
            );
            b.screenshot(&format!("forms-layout-{name}-{size}")).await;
        }
    }
    // The duplicate is flagged on the approved application's row, with the reason to give.
    b.set_viewport(1366, 768).await;
    b.goto(&format!("{base}/admin/applications")).await;
    let note = b.wait_text("#applications .live-note", "车辆通行证").await;
    assert!(note.contains("欧阳明轩"), "{note}");
    b.find("#applications input[name=override_reason]").await;
    b.js("document.querySelector('#list-title').scrollIntoView()")
        .await;
    b.screenshot("forms-application-duplicate-1366").await;
    b.close().await;
    site.shutdown().await;
}
