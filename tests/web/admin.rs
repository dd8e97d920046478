//! Browser tests of the administration pages in a real headless Chromium, against a real
//! central server whose gates (lanes on pseudo-terminals with the device simulators) sync with
//! it over the real mutual-TLS link: the exit-pass application flow from the applicant's page to
//! a barrier that opens, a bulk import that refuses a file with bad rows and then takes the
//! corrected one, and a campus-wide lockdown set on the page that locks every lane of every
//! gate. Screenshots of the main pages go to `target/web-screenshots/` (or
//! `$GATEHOUSE_SCREENSHOTS`).

use fantoccini::Locator;
use gatehouse::central::db::Actor;
use gatehouse::central::repo::credentials::{self, NewCredential};
use gatehouse::central::repo::permits::{self, PermitInput};
use sqlx::Row;

use crate::admin_support::{admin_site, applicant, id_card, person_with_car};
use crate::support::browser::{self, Browser};
use crate::support::gate::{LaneSpec, epc, hex};
use crate::support::synced_gate::wait_for_tag;
use crate::support::{PASSWORD, sqlite, wait_connected};

/// The WebDriver code of the Enter key.
const ENTER: &str = "\u{E007}";

async fn click(b: &Browser, css: &str) {
    b.find(css).await.click().await.unwrap();
}

async fn type_into(b: &Browser, css: &str, text: &str) {
    b.find(css).await.send_keys(text).await.unwrap();
}

/// Waits until a SQL query's single value is `want`.
async fn wait_db(b: &Browser, site: &crate::admin_support::AdminSite, sql: &str, want: &str) {
    b.wait_for(&format!("{sql} to be {want}"), || async {
        let row = sqlx::query(sql)
            .fetch_optional(site.db.db.pool())
            .await
            .ok()??;
        let v: String = row.try_get(0).ok()?;
        (v == want).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_pass_applied_for_approved_and_issued_on_the_pages_opens_the_barrier_at_the_gate() {
    let site = admin_site(
        sqlite().await,
        &[(1, &[LaneSpec::entry("entry"), LaneSpec::exit("exit")])],
    )
    .await;
    let Some(b) = browser::open("exit-pass application flow").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    // 李明 of the 计算机学院 (whose approver the harness signs in as) with his car, and his
    // applicant account; plus a colleague of another department, whose applications the
    // approver must not see.
    let (li, car) = person_with_car(&db, "李明", "staff", "计算机学院", "京A88888").await;
    applicant(&db, "liming", li.id).await;
    let (_, other_car) = person_with_car(&db, "王芳", "staff", "外国语学院", "京B77777").await;
    let base = site.base();
    wait_connected(&db, 1).await;

    // The applicant applies on the page, for his own car (the only one offered).
    b.sign_in(&base, "liming", PASSWORD, "/admin/applications")
        .await;
    let offered = b.text("#a-vehicle").await;
    assert!(
        offered.contains("京A88888"),
        "his car is offered: {offered}"
    );
    assert!(
        !offered.contains("京B77777"),
        "nobody else's car is: {offered}"
    );
    type_into(&b, "#a-purpose", "日常通勤").await;
    b.screenshot("admin-application-apply").await;
    click(&b, "#apply-form button[type=submit]").await;
    b.wait_text("#apply-form .form-status", "已提交").await;
    b.wait_for("the pending application listed", || async {
        b.client
            .find(Locator::Css("#applications tr[data-status=pending]"))
            .await
            .ok()
    })
    .await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM exit_pass_applications WHERE vehicle_id = $1")
        .bind(car.id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    // Another department's application, entered by the office: not the approver's to see.
    sqlx::query(
        "INSERT INTO exit_pass_applications (kind, applicant_id, department, vehicle_id, category, \
         gates, valid_from_ms, valid_until_ms, purpose, status, applied_by, created_ms, updated_ms) \
         SELECT 'permit', owner_id, '外国语学院', id, 'staff', 'all', $2, $3, '周末出差', 'pending', \
         'security', $2, $2 FROM vehicles WHERE id = $1",
    )
    .bind(other_car.id)
    .bind(chrono::Utc::now().timestamp() / 60 * 60_000)
    .bind((chrono::Utc::now().timestamp() / 60 + 525_600) * 60_000)
    .execute(db.pool())
    .await
    .unwrap();

    // The department's approver approves it on the page, with a comment.
    b.sign_in(&base, "approver", PASSWORD, "/admin/applications")
        .await;
    let rows = b.text("#applications tbody").await;
    assert!(
        rows.contains("京A88888"),
        "the approver sees their department's: {rows}"
    );
    assert!(
        !rows.contains("京B77777"),
        "and no other department's: {rows}"
    );
    type_into(&b, &format!("#comment-{id}"), "同意").await;
    b.screenshot("admin-application-approve").await;
    click(&b, &format!("#decide-{id} button.ok")).await;
    wait_db(
        &b,
        &site,
        &format!("SELECT status FROM exit_pass_applications WHERE id = {id}"),
        "approved",
    )
    .await;

    // The security office issues it on the page and binds the windscreen tag.
    let tag = epc(0x42);
    b.sign_in(&base, "security", PASSWORD, "/admin/applications")
        .await;
    type_into(&b, &format!("#epc-{id}"), &hex(&tag)).await;
    b.screenshot("admin-application-issue").await;
    click(&b, &format!("#issue-{id} button.primary")).await;
    wait_db(
        &b,
        &site,
        &format!("SELECT status FROM exit_pass_applications WHERE id = {id}"),
        "issued",
    )
    .await;
    b.wait_for("the issued application listed", || async {
        b.client
            .find(Locator::Css(&format!(
                "#applications tr[data-application=\"{id}\"][data-status=issued]"
            )))
            .await
            .ok()
    })
    .await;
    full_screenshot(&b, "admin-applications-zh").await;

    // The permit and tag reach the gate over the real sync; the car drives in.
    let gate = site.gate(1);
    wait_for_tag(gate, &tag).await;
    let passage = gate.drive_through("entry", &tag).await;
    assert_eq!(passage.decision.reason.as_str(), "granted");
    assert_eq!(passage.decision.plate.as_deref(), Some("京A88888"));

    // The passage comes back up to the centre and into the statistics page.
    b.wait_for("the passage to reach the centre", || async {
        let n: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(passages), 0) FROM stats_flows")
            .fetch_one(db.pool())
            .await
            .ok()?;
        (n >= 1).then_some(())
    })
    .await;
    b.goto(&format!("{base}/admin/stats")).await;
    let entries = b.text("[data-figure=entries]").await;
    assert_eq!(entries, "1", "the statistics count the entry");
    full_screenshot(&b, "admin-stats-zh").await;
    // The same page in English, back on the same page.
    click(&b, "#lang-switch").await;
    b.wait_text("main.admin h1", "Traffic statistics").await;
    b.screenshot("admin-stats-en").await;
    b.close().await;
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_with_bad_rows_lists_each_line_and_reason_in_chinese_imports_nothing_then_the_corrected_file_imports()
 {
    let site = admin_site(sqlite().await, &[]).await;
    let Some(b) = browser::open("bulk import").await else {
        site.shutdown().await;
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let header = "姓名,类别,部门,电话,身份证号\n";
    let bad = dir.path().join("人员-有错误.csv");
    std::fs::write(
        &bad,
        format!(
            "{header}张伟,staff,计算机学院,13800000001,{a}\n\
             ,student,计算机学院,13800000002,{b}\n\
             刘洋,teacher,外国语学院,13800000003,{c}\n\
             陈静,staff,外国语学院,13800000004,{a}\n\
             赵磊,student,数学学院,13800000005,{d}\n",
            a = id_card(1),
            b = id_card(2),
            c = id_card(3),
            d = id_card(4),
        ),
    )
    .unwrap();
    let good = dir.path().join("人员-已改正.csv");
    std::fs::write(
        &good,
        format!(
            "{header}张伟,staff,计算机学院,13800000001,{a}\n\
             孙丽,student,计算机学院,13800000002,{b}\n\
             刘洋,staff,外国语学院,13800000003,{c}\n\
             陈静,staff,外国语学院,13800000004,{e}\n\
             赵磊,student,数学学院,13800000005,{d}\n",
            a = id_card(1),
            b = id_card(2),
            c = id_card(3),
            d = id_card(4),
            e = id_card(5),
        ),
    )
    .unwrap();
    let base = site.base();
    b.sign_in(&base, "security", PASSWORD, "/admin/import")
        .await;

    // The dry run of the bad file: every bad row with its line and a reason in Chinese.
    type_into(&b, "#import-file", bad.to_str().unwrap()).await;
    click(&b, "#import-check").await;
    b.wait_for("the check to finish", || async {
        (b.js("return document.body.dataset.importState || ''").await == "refused").then_some(())
    })
    .await;
    let lines = b
        .js("return Array.from(document.querySelectorAll('#import-errors tbody tr')).map(r => [Number(r.dataset.line), r.cells[2].textContent])")
        .await;
    let lines: Vec<(i64, String)> = serde_json::from_value(lines).unwrap();
    let numbers: Vec<i64> = lines.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        numbers,
        vec![3, 4, 5],
        "each bad row, by its line: {lines:?}"
    );
    assert!(lines[0].1.contains("姓名不能为空"), "{lines:?}");
    assert!(lines[1].1.contains("类别“teacher”无效"), "{lines:?}");
    assert!(lines[2].1.contains("身份证号与第 2 行重复"), "{lines:?}");
    assert!(
        b.text("#import-report .summary")
            .await
            .contains("未导入任何数据"),
        "the page says nothing was imported"
    );
    let commit_disabled = b
        .js("return document.getElementById('import-commit').disabled")
        .await;
    assert_eq!(
        commit_disabled, true,
        "a file with bad rows cannot be committed"
    );
    assert_eq!(site.count("SELECT COUNT(*) FROM persons").await, 0);
    full_screenshot(&b, "admin-import-errors-zh").await;

    // The corrected file: checked, then imported, all of it.
    type_into(&b, "#import-file", good.to_str().unwrap()).await;
    click(&b, "#import-check").await;
    b.wait_for("the corrected file to pass", || async {
        (b.js("return document.body.dataset.importState || ''").await == "checked").then_some(())
    })
    .await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM persons").await,
        0,
        "a dry run writes nothing"
    );
    click(&b, "#import-commit").await;
    b.wait_for("the import to finish", || async {
        (b.js("return document.body.dataset.importState || ''").await == "imported").then_some(())
    })
    .await;
    b.wait_text("#import-report .summary", "已导入 5 行").await;
    assert_eq!(site.count("SELECT COUNT(*) FROM persons").await, 5);
    assert_eq!(
        site.count("SELECT COUNT(*) FROM persons WHERE name = '孙丽' AND category = 'student'")
            .await,
        1
    );
    b.screenshot("admin-import-done-zh").await;

    // The people page lists them, with ID-card numbers in full for the security office and
    // masked for the administration's viewer.
    b.goto(&format!("{base}/admin/persons?department=计算机学院"))
        .await;
    let table = b.text("#persons").await;
    assert!(
        table.contains("孙丽") && table.contains(&id_card(2)),
        "{table}"
    );
    full_screenshot(&b, "admin-persons-zh").await;
    b.sign_in(&base, "viewer", PASSWORD, "/admin/persons").await;
    let table = b.text("#persons").await;
    assert!(table.contains("孙丽"), "{table}");
    assert!(
        !table.contains(&id_card(2)),
        "a viewer sees no full ID-card number: {table}"
    );
    assert!(
        table.contains("138****0002"),
        "phones are masked for a viewer: {table}"
    );
    b.close().await;
    site.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_wide_lockdown_set_on_the_page_after_its_confirmation_locks_every_lane_of_both_gates_and_a_permitted_tag_no_longer_opens()
 {
    let site = admin_site(
        sqlite().await,
        &[
            (1, &[LaneSpec::entry("entry"), LaneSpec::exit("exit")]),
            (2, &[LaneSpec::entry("entry")]),
        ],
    )
    .await;
    let Some(b) = browser::open("campus lockdown").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    // A staff car with a valid permit for every gate and a tag.
    let (holder, car) = person_with_car(&db, "周强", "staff", "计算机学院", "京A66666").await;
    let tag = epc(0x51);
    let office = Actor {
        operator_id: None,
        name: "测试保卫处".into(),
    };
    credentials::create(
        &db,
        &office,
        NewCredential {
            epc: hex(&tag),
            tid: None,
            vehicle_id: car.id,
            status: "active".into(),
        },
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let minute = |t: chrono::DateTime<chrono::Utc>| {
        chrono::DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).unwrap()
    };
    permits::create(
        &db,
        &office,
        &PermitInput {
            category: "staff".into(),
            holder_id: holder.id,
            valid_from: minute(now - chrono::Duration::hours(1)),
            valid_until: minute(now + chrono::Duration::days(30)),
            gates: "all".into(),
            schedule: String::new(),
            single_use: false,
            max_inside: None,
            vehicle_ids: vec![car.id],
        },
    )
    .await
    .unwrap();
    for id in [1, 2] {
        wait_connected(&db, id).await;
        wait_for_tag(site.gate(id), &tag).await;
    }

    let base = site.base();
    b.sign_in(&base, "security", PASSWORD, "/admin/gates").await;
    b.screenshot("admin-gates-normal-zh").await;
    // With the keyboard: the lockdown button opens the confirmation dialog.
    b.find("#campus-lockdown")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    b.wait_text("#campus-dialog", "确认全校封闭").await;
    assert!(b.text("#campus-dialog .consequence").await.contains("锁闭"));
    type_into(&b, "#campus-reason", "校内突发事件，封闭校园").await;
    // Not confirmed yet: nothing is sent.
    b.find("#campus-submit")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    b.wait_text("#campus-form .form-status", "请先勾选确认框")
        .await;
    assert_eq!(
        site.count("SELECT COUNT(*) FROM gates WHERE mode <> 'normal'")
            .await,
        0,
        "no gate changes before the confirmation"
    );
    b.screenshot("admin-gates-lockdown-confirm-zh").await;
    b.find("#campus-confirm")
        .await
        .send_keys(" ")
        .await
        .unwrap();
    b.find("#campus-submit")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();

    // Every lane of both gates becomes locked closed, through each gate's sync.
    for (id, lanes) in [(1, &["entry", "exit"][..]), (2, &["entry"][..])] {
        for lane in lanes {
            site.gate(id)
                .wait_status(lane, "locked closed by the campus lockdown", |s| {
                    s.mode == "locked_closed"
                })
                .await;
        }
    }
    assert_eq!(
        site.count("SELECT COUNT(*) FROM gates WHERE mode = 'locked_closed'")
            .await,
        2
    );
    assert_eq!(
        site.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'set_mode' AND after_json LIKE '%校内突发事件%'"
        )
        .await,
        2,
        "each gate's change is audited with the reason"
    );
    // The permitted tag opens nothing at either gate now.
    for id in [1, 2] {
        let gate = site.gate(id);
        let (_, decision) = gate.present("entry", &tag).await;
        assert!(!decision.granted, "gate {id}: {decision:?}");
        assert_eq!(decision.reason.as_str(), "denied_lane_locked", "gate {id}");
        gate.lane("entry").assert_never_opened();
        gate.back_away("entry", &tag).await;
    }
    // The page shows what the gates themselves report.
    b.wait_for("the gates to report their locked lanes", || async {
        b.goto(&format!("{base}/admin/gates")).await;
        let n = b
            .js("return document.querySelectorAll('[data-reported=locked_closed]').length")
            .await;
        (n == 3).then_some(())
    })
    .await;
    full_screenshot(&b, "admin-gates-lockdown-zh").await;
    b.close().await;
    site.shutdown().await;
}

/// A screenshot of the whole page (the window grown to the page's height, then restored).
async fn full_screenshot(b: &Browser, name: &str) {
    let height = b
        .js("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
        .await
        .as_f64()
        .unwrap_or(768.0) as u32;
    b.client
        .set_window_size(1366, height.max(768) + 20)
        .await
        .unwrap();
    b.screenshot(name).await;
    b.client.set_window_size(1366, 768).await.unwrap();
}

/// A passage, decision or override by a gate, `minutes` after 00:00 of `day` (Asia/Shanghai).
fn at(day: chrono::NaiveDate, minutes: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
        + chrono::Duration::minutes(minutes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statistics_page_and_the_daily_report_show_a_known_days_traffic_as_charts_and_tables() {
    use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};
    let site = admin_site(sqlite().await, &[]).await;
    let Some(b) = browser::open("statistics page").await else {
        site.shutdown().await;
        return;
    };
    let db = site.db.db.clone();
    let office = Actor {
        operator_id: None,
        name: "测试保卫处".into(),
    };
    // Three staff cars and two students' cars, each with a permit of its category.
    let mut cars = Vec::new();
    for (i, (name, category)) in [
        ("教师甲", "staff"),
        ("教师乙", "staff"),
        ("教师丙", "staff"),
        ("学生甲", "student"),
        ("学生乙", "student"),
    ]
    .into_iter()
    .enumerate()
    {
        let (person, car) =
            person_with_car(&db, name, category, "计算机学院", &format!("京A1000{i}")).await;
        let permit = permits::create(
            &db,
            &office,
            &PermitInput {
                category: category.into(),
                holder_id: person.id,
                valid_from: chrono::DateTime::from_timestamp(0, 0).unwrap(),
                valid_until: chrono::DateTime::from_timestamp(4_102_444_800, 0).unwrap(),
                gates: "all".into(),
                schedule: String::new(),
                single_use: false,
                max_inside: None,
                vehicle_ids: vec![car.id],
            },
        )
        .await
        .unwrap();
        cars.push((car, permit));
    }
    // Yesterday's traffic: 08:05–08:25 three staff cars in at the north gate; 09:10–09:20 two
    // students' cars and, at 10:00, an unregistered car in at the south gate; 17:30–17:40 two
    // staff cars out at the north gate; two expired-permit denials (north), one unknown tag
    // (south); three manual opens (guard ×2 visitor registered, guard2 ×1 device fault).
    let day = gatehouse::central::traffic::site_today(
        chrono_tz::Asia::Shanghai,
        gatehouse::central::db::now_ms(),
    ) - chrono::Duration::days(1);
    let passage = |car: usize, direction: &str| EventBody::Passage {
        direction: direction.into(),
        plate: Some(cars[car].0.plate.clone()),
        vehicle_id: Some(cars[car].0.id),
        permit_id: Some(cars[car].1.id),
    };
    let denial = |reason: &str| {
        EventBody::Decision(DecisionRecord {
            direction: "entry".into(),
            credential: "tag".into(),
            epc: None,
            tid: None,
            antenna: Some(1),
            rssi_dbm: Some(-55),
            plate: None,
            granted: false,
            reason: gatehouse::domain::ReasonCode::from_code(reason).expect("a reason code"),
            flags: vec![],
            permit_id: None,
            vehicle_id: None,
            holder: None,
            category: None,
            data_version: 1,
            decide_ns: 900,
            camera: None,
            pass: None,
        })
    };
    let open = |guard: &str, reason: &str| EventBody::Override {
        operator: guard.into(),
        action: "open".into(),
        reason: reason.into(),
        note: None,
        plate: None,
    };
    let north = vec![
        (485, "entry", passage(0, "entry")),
        (495, "entry", passage(1, "entry")),
        (505, "entry", passage(2, "entry")),
        (600, "entry", denial("denied_expired")),
        (610, "entry", denial("denied_expired")),
        (700, "entry", open("guard", "visitor_registered")),
        (710, "entry", open("guard", "visitor_registered")),
        (1050, "exit", passage(0, "exit")),
        (1060, "exit", passage(1, "exit")),
    ];
    let south = vec![
        (550, "entry", passage(3, "entry")),
        (560, "entry", passage(4, "entry")),
        (
            600,
            "entry",
            EventBody::Passage {
                direction: "entry".into(),
                plate: Some("沪B12345".into()),
                vehicle_id: None,
                permit_id: None,
            },
        ),
        (620, "entry", denial("denied_unknown_tag")),
        (630, "entry", open("guard2", "device_fault")),
    ];
    // The day's journals go in through the centre's ingest, as the sync's events-up route
    // hands a gate's upload to it (the server's own state is on its runtime: this one shares
    // its database).
    let ingest = gatehouse::central::state::AppState::new(db.clone());
    for (gate, events) in [(1, north), (2, south)] {
        let journal: Vec<JournalEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, (minutes, lane, body))| JournalEvent {
                seq: i as u64 + 1,
                at: at(day, minutes),
                lane: lane.into(),
                body,
            })
            .collect();
        gatehouse::central::ingest::accept(&ingest, gate, &journal)
            .await
            .unwrap();
    }

    let base = site.base();
    b.sign_in(&base, "viewer", PASSWORD, "/admin").await;
    b.goto(&format!("{base}/admin/stats?from={day}&to={day}"))
        .await;
    let figure = |name: &'static str| {
        let b = &b;
        async move { b.text(&format!("[data-figure={name}]")).await }
    };
    assert_eq!(figure("entries").await, "6");
    assert_eq!(figure("exits").await, "2");
    assert_eq!(figure("denials").await, "3");
    assert_eq!(figure("manual_opens").await, "3");
    assert_eq!(
        figure("occupancy").await,
        "4",
        "1 staff, 2 students, 1 unregistered inside"
    );
    assert!(b.text("#peaks").await.contains("08:00–08:59"));
    let cell = |css: String| {
        let b = &b;
        async move { b.text(&css).await }
    };
    assert_eq!(
        cell("#flows tr[data-gate=\"1\"][data-direction=entry] td[data-category=staff]".into())
            .await,
        "3"
    );
    assert_eq!(
        cell("#flows tr[data-gate=\"2\"][data-direction=entry] td[data-category=student]".into())
            .await,
        "2"
    );
    assert_eq!(
        cell(
            "#flows tr[data-gate=\"2\"][data-direction=entry] td[data-category=unregistered]"
                .into()
        )
        .await,
        "1"
    );
    assert_eq!(
        cell("#flows tr[data-gate=\"1\"][data-direction=exit] td[data-category=staff]".into())
            .await,
        "2"
    );
    assert_eq!(
        cell("#denials tr[data-reason=denied_expired] td.num".into()).await,
        "2"
    );
    assert_eq!(
        cell("#denials tr[data-reason=denied_unknown_tag] td.num".into()).await,
        "1"
    );
    assert_eq!(
        cell("#manual-opens tr[data-guard=guard][data-reason=visitor_registered] td.num".into())
            .await,
        "2"
    );
    assert_eq!(
        cell("#occupancy tr[data-category=student] td.num".into()).await,
        "2"
    );
    assert!(
        b.text("#denials").await.contains("通行证已过期"),
        "reasons in words"
    );
    let bars = b
        .js("return document.querySelectorAll('svg.chart rect').length")
        .await;
    assert!(
        bars.as_u64().unwrap() > 24,
        "the charts are drawn on the server: {bars}"
    );
    full_screenshot(&b, "admin-stats-day-zh").await;
    // The printable daily report of the same day.
    b.goto(&format!("{base}/admin/stats/daily?date={day}"))
        .await;
    assert_eq!(figure("entries").await, "6");
    let print_css = b
        .js("return Array.from(document.styleSheets).some(s => { try { return Array.from(s.cssRules).some(r => r.media && r.media.mediaText === 'print'); } catch (e) { return false; } })")
        .await;
    assert_eq!(print_css, true, "the report has a print layout");
    full_screenshot(&b, "admin-daily-report-zh").await;
    click(&b, "#lang-switch").await;
    b.wait_text("main.admin h1", "daily report").await;
    full_screenshot(&b, "admin-daily-report-en").await;
    b.close().await;
    site.shutdown().await;
}
