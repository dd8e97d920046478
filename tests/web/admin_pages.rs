//! The administration pages over plain HTTP (no browser): every page renders for its roles in
//! zh-CN and English with every input labelled; the applicant role applies only for itself and
//! its own vehicle; an approver's page lists only their department's applications; ID-card and
//! phone numbers are masked for roles that do not need them.

use gatehouse::central::db::Db;
use gatehouse::central::repo::persons::mask_id_card;
use reqwest::header::{AUTHORIZATION, COOKIE};
use serde_json::json;

use crate::admin_support::{applicant, id_card, person_with_car};
use crate::support::http_no_redirects as http;
use crate::support::sync_link::SitePki;
use crate::support::{Central, TestDb, each_database, seed};

/// A page as `username` sees it, in `lang`: (status, body).
async fn page(central: &Central, db: &Db, username: &str, path: &str, lang: &str) -> (u16, String) {
    let token = central.token(db, username).await;
    let r = http()
        .get(central.url(path))
        .header(COOKIE, format!("gh_session={token}; gh_lang={lang}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The ids of inputs with no `<label for=…>`, and the unlabelled inputs outside any `<label>`.
fn unlabelled(html: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for tag in ["<input", "<select", "<textarea"] {
        let mut from = 0;
        while let Some(i) = html[from..].find(tag) {
            let at = from + i;
            let end = html[at..].find('>').map_or(html.len(), |e| at + e);
            let element = &html[at..end];
            from = end;
            let attr = |name: &str| {
                let key = format!(" {name}=\"");
                element.find(&key).map(|s| {
                    let rest = &element[s + key.len()..];
                    rest[..rest.find('"').unwrap_or(rest.len())].to_string()
                })
            };
            if matches!(attr("type").as_deref(), Some("hidden")) {
                continue;
            }
            let inside_label = html[..at].rfind("<label") > html[..at].rfind("</label>");
            match attr("id") {
                Some(id) if html.contains(&format!("for=\"{id}\"")) || inside_label => {}
                Some(id) => missing.push(id),
                None if inside_label => {}
                None => missing.push(element.chars().take(80).collect()),
            }
        }
    }
    missing
}

/// The harness campus on `t`, its central server started with a fresh site PKI (its sync port is
/// unused here); the PKI directory lives as long as the returned guard.
async fn campus(t: &TestDb) -> (Central, tempfile::TempDir) {
    seed(&t.db).await;
    let dir = tempfile::tempdir().unwrap();
    let pki = SitePki::create(dir.path());
    (Central::start(t, &pki).await, dir)
}

#[tokio::test]
async fn every_admin_page_renders_for_its_roles_in_chinese_and_english_with_every_input_labelled() {
    for t in each_database().await {
        let (mut central, _pki) = campus(&t).await;
        let pages = [
            ("/admin", "管理概览", "Administration"),
            (
                "/admin/applications",
                "出门证申请",
                "Exit-pass applications",
            ),
            (
                "/admin/applications?kind=one_off",
                "一次性出门证",
                "One-off exit passes",
            ),
            ("/admin/bookings", "访客预约", "Visitor bookings"),
            ("/admin/persons", "人员", "People"),
            ("/admin/vehicles", "车辆", "Vehicles"),
            ("/admin/permits", "通行证", "Permits"),
            ("/admin/lists", "黑名单与锁车", "Blacklist and locks"),
            ("/admin/gates", "全校封闭", "Lock down the campus"),
            ("/admin/import", "批量导入", "Bulk import"),
            ("/admin/stats", "通行统计", "Traffic statistics"),
            (
                "/admin/stats/daily",
                "校园车辆通行日报",
                "Campus vehicle traffic daily report",
            ),
            ("/admin/audit", "审计日志", "Audit log"),
            ("/admin/operators", "操作员与角色", "Operators and roles"),
        ];
        for (path, zh, en) in pages {
            let (status, body) = page(&central, &t.db, "admin", path, "zh").await;
            assert_eq!(status, 200, "{path}");
            assert!(body.contains(zh), "{path} in Chinese shows {zh}");
            assert!(body.contains("lang=\"zh-CN\""), "{path}");
            assert_eq!(
                unlabelled(&body),
                Vec::<String>::new(),
                "{path}: inputs without a label"
            );
            let (status, body) = page(&central, &t.db, "admin", path, "en").await;
            assert_eq!(status, 200, "{path}");
            assert!(body.contains(en), "{path} in English shows {en}");
            for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
                assert!(
                    !body.contains(outside),
                    "{path} loads nothing from outside ({outside})"
                );
            }
        }
        // The forms send the local times typed into them with the site zone's offset, which
        // the page carries (the harness's zone is the default, Asia/Shanghai).
        let (_, body) = page(&central, &t.db, "admin", "/admin/permits", "zh").await;
        assert!(
            body.contains("data-utc-offset=\"+08:00\""),
            "the site offset"
        );
        // The side navigation offers only what the role may open.
        let (_, body) = page(&central, &t.db, "viewer", "/admin", "zh").await;
        assert!(body.contains("href=\"/admin/stats\""));
        assert!(!body.contains("href=\"/admin/operators\""));
        assert!(!body.contains("href=\"/admin/gates\""));
        let (status, _) = page(&central, &t.db, "viewer", "/admin/gates", "zh").await;
        assert_eq!(status, 403);
        let (status, _) = page(&central, &t.db, "approver", "/admin/applications", "zh").await;
        assert_eq!(status, 200);
        let (status, _) = page(&central, &t.db, "guard", "/admin/stats", "zh").await;
        assert_eq!(status, 403);
        central.stop().await;
    }
}

#[tokio::test]
async fn an_applicant_applies_only_for_themselves_and_a_vehicle_registered_to_them() {
    for t in each_database().await {
        let (mut central, _pki) = campus(&t).await;
        let db = &t.db;
        let (me, mine) = person_with_car(db, "李明", "staff", "计算机学院", "京A11111").await;
        let (other, theirs) =
            person_with_car(db, "王芳", "student", "计算机学院", "京A22222").await;
        applicant(db, "liming", me.id).await;
        let token = central.token(&t.db, "liming").await;
        let apply = |applicant_id: i64, vehicle_id: i64| {
            let token = token.clone();
            let url = central.url("/api/v1/applications");
            async move {
                http()
                    .post(url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .json(&json!({
                        "kind": "permit", "applicant_id": applicant_id, "vehicle_id": vehicle_id,
                        "category": "staff", "valid_from": "2027-01-01T00:00:00+08:00",
                        "valid_until": "2027-06-01T00:00:00+08:00", "purpose": "通勤"
                    }))
                    .send()
                    .await
                    .unwrap()
            }
        };
        // Someone else, or someone else's car: refused with the field named, nothing stored.
        let r = apply(other.id, theirs.id).await;
        assert_eq!(r.status().as_u16(), 422);
        let body: serde_json::Value = r.json().await.unwrap();
        let fields: Vec<&str> = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["applicant_id", "vehicle_id"], "{body}");
        let r = apply(me.id, theirs.id).await;
        assert_eq!(r.status().as_u16(), 422);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exit_pass_applications")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(n, 0, "nothing was stored");
        // Himself, his own car: accepted, and his list shows only his.
        let r = apply(me.id, mine.id).await;
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
        let list: serde_json::Value = http()
            .get(central.url("/api/v1/applications"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["total"], 1, "{list}");
        // He may not decide it.
        let id = list["items"][0]["id"].as_i64().unwrap();
        let r = http()
            .post(central.url(&format!("/api/v1/applications/{id}/approve")))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403);
        central.stop().await;
    }
}

#[tokio::test]
async fn id_card_and_phone_numbers_are_shown_in_full_to_the_security_office_and_masked_for_viewers()
{
    for t in each_database().await {
        let (mut central, _pki) = campus(&t).await;
        let card = id_card(7);
        sqlx::query(
            "INSERT INTO persons (name, category, department, phone, id_card, created_ms, updated_ms) \
             VALUES ('张三', 'staff', '计算机学院', '13912345678', $1, 0, 0)",
        )
        .bind(&card)
        .execute(t.db.pool())
        .await
        .unwrap();
        let (_, office) = page(&central, &t.db, "security", "/admin/persons", "zh").await;
        assert!(office.contains(&card) && office.contains("13912345678"));
        let (_, viewer) = page(&central, &t.db, "viewer", "/admin/persons", "zh").await;
        assert!(viewer.contains("张三"));
        assert!(!viewer.contains(&card) && !viewer.contains("13912345678"));
        assert!(viewer.contains(&mask_id_card(&card)) && viewer.contains("139****5678"));
        // A viewer cannot probe masked phone digits through the search either.
        let (_, probe) = page(&central, &t.db, "viewer", "/admin/persons?q=1391234", "zh").await;
        assert!(
            !probe.contains("张三"),
            "a viewer's search does not match phone digits"
        );
        central.stop().await;
    }
}

#[tokio::test]
async fn a_contractors_booking_stays_pending_until_the_department_and_then_the_security_office_approve()
 {
    for t in each_database().await {
        let (mut central, _pki) = campus(&t).await;
        let (host, _) = person_with_car(&t.db, "赵工", "staff", "计算机学院", "京A33333").await;
        let approver = central.token(&t.db, "approver").await;
        let security = central.token(&t.db, "security").await;
        let slot_from = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp() / 60 * 60;
        let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
        let book = |category: &'static str, plate: &'static str| {
            let url = central.url("/api/v1/bookings");
            let token = approver.clone();
            let body = json!({
                "host_id": host.id, "plate": plate, "driver_name": "钱师傅",
                "driver_phone": "13900001111", "purpose": "施工", "category": category,
                "slot_from": at(slot_from), "slot_until": at(slot_from + 4 * 3600),
            });
            async move {
                let r = http()
                    .post(url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                r.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_i64()
                    .unwrap()
            }
        };
        let approve = |id: i64, token: String| {
            let url = central.url(&format!("/api/v1/bookings/{id}/approve"));
            async move {
                let r = http()
                    .post(url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<serde_json::Value>().await.unwrap())
            }
        };
        // An ordinary visitor: the department's approval is enough.
        let visitor = book("visitor", "京A44444").await;
        let (status, b) = approve(visitor, approver.clone()).await;
        assert_eq!((status, b["status"].as_str()), (200, Some("approved")));
        // A contractor: the department approves, the booking stays pending (no gate opens).
        let contractor = book("contractor", "京A55555").await;
        let (status, _) = approve(contractor, security.clone()).await;
        assert_eq!(
            status, 409,
            "the security office cannot approve before the department"
        );
        let (status, b) = approve(contractor, approver.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(b["status"], "pending", "{b}");
        assert_eq!(b["department_approved_by"], "approver");
        let (status, b) = approve(contractor, approver.clone()).await;
        assert_eq!(status, 409, "the department's approval counts once: {b}");
        assert!(
            b["message"].as_str().unwrap().contains("等待保卫处审批"),
            "{b}"
        );
        // Then the security office: approved.
        let (status, b) = approve(contractor, security.clone()).await;
        assert_eq!(
            (status, b["status"].as_str()),
            (200, Some("approved")),
            "{b}"
        );
        let audit: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE entity = 'visitor_booking' AND action IN ('approve_department', 'approve')",
        )
        .fetch_one(t.db.pool())
        .await
        .unwrap();
        assert_eq!(
            audit, 3,
            "both approvals of the contractor and the visitor's are audited"
        );
        // An unknown category is refused, naming the field.
        let r = http()
            .post(central.url("/api/v1/bookings"))
            .header(AUTHORIZATION, format!("Bearer {approver}"))
            .json(&json!({
                "host_id": host.id, "plate": "京A66666", "driver_name": "钱师傅",
                "driver_phone": "13900001111", "category": "vip",
                "slot_from": at(slot_from), "slot_until": at(slot_from + 3600),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["fields"][0]["field"], "category", "{body}");
        central.stop().await;
    }
}
