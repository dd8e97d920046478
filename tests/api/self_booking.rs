//! Self-booking (访客自助预约, issue 21 item 3): the public submit stores nothing for an invalid
//! form or a wrong host and answers a wrong host exactly like a right one; a right host gets a
//! pending booking and a notice; the status link; rate limits per source (trusted proxies
//! honoured only from a trusted proxy); hostile bodies; hosts deciding only their own
//! visitors' requests, and booking directly. Each on SQLite and (with `DATABASE_URL`)
//! PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chrono::{Duration, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::config::AuthSettings;
use gatehouse::central::db::Actor;
use gatehouse::central::rate_limit::{Limit, PublicLimits, RateLimits};
use gatehouse::central::repo::operators;
use serde_json::{Value, json};

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count, each_database};

const SUBMIT: &str = "/api/v1/public/visit-requests";

fn office() -> Actor {
    Actor {
        operator_id: None,
        name: "tester".into(),
    }
}

/// A local time tomorrow in the site's zone, `HH:MM`.
fn tomorrow(hm: &str) -> String {
    let day = (Utc::now() + Duration::days(1))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d");
    format!("{day}T{hm}")
}

fn request(host: &str) -> Value {
    json!({
        "host": host,
        "province": "浙",
        "plate": "ａｍ·１２０５",
        "visitor_name": "李娜",
        "visitor_phone": "+86 139 1234 5678",
        "visitor_email": "lina@example.com",
        "purpose": "学术交流",
        "slot_from": tomorrow("09:00"),
        "slot_until": tomorrow("11:30"),
    })
}

/// A host with staff number T2003117 and phone 13812345678, in the approvers' department.
async fn host(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO persons (name, category, department, phone, id_card, staff_no, email, \
         created_ms, updated_ms) VALUES ('王老师', 'staff', $1, '13812345678', '', 'T2003117', \
         'wang@example.edu.cn', 0, 0) RETURNING id",
    )
    .bind(APPROVER_DEPARTMENT)
    .fetch_one(app.db.pool())
    .await
    .unwrap()
}

/// The app with limits no test reaches and no answer floor, unless a test sets its own.
async fn app_with(t: crate::harness::TestDb, limits: RateLimits) -> TestApp {
    TestApp::spawn(t)
        .await
        .with_state(|s| s.public_limits = PublicLimits::new(limits))
}

fn from(peer: &str, body: &Value, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(SUBMIT)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut r = b.body(Body::from(body.to_string())).unwrap();
    let addr: SocketAddr = peer.parse().unwrap();
    r.extensions_mut().insert(ConnectInfo(addr));
    r
}

async fn stored(app: &TestApp) -> (i64, i64) {
    (
        count(&app.db, "SELECT COUNT(*) FROM visitor_bookings").await,
        count(&app.db, "SELECT COUNT(*) FROM visit_requests").await,
    )
}

fn shape(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k != "date")
        .collect();
    names.sort();
    names
}

fn keys(body: &Value) -> Vec<String> {
    let mut k: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn a_wrong_host_gets_the_same_answer_as_a_right_one_and_nothing_is_stored() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::default()).await;
        host(&app).await;
        let floor = app.state.public_limits.limits().answer_floor;
        let started = Instant::now();
        let (right_status, right_headers, right) = app
            .send(from("192.0.2.1:4000", &request("T2003117"), &[]))
            .await;
        let right_took = started.elapsed();
        assert_eq!(stored(&app).await, (1, 1));
        let started = Instant::now();
        let (wrong_status, wrong_headers, wrong) = app
            .send(from("192.0.2.2:4000", &request("T9999999"), &[]))
            .await;
        let wrong_took = started.elapsed();
        assert_eq!(right_status, StatusCode::ACCEPTED, "{right}");
        assert_eq!(wrong_status, right_status);
        assert_eq!(keys(&wrong), keys(&right));
        assert_eq!(shape(&wrong_headers), shape(&right_headers));
        let url = |b: &Value| b["status_url"].as_str().unwrap().to_string();
        assert_eq!(url(&right).len(), url(&wrong).len());
        assert_eq!(
            wrong_headers["location"].len(),
            right_headers["location"].len()
        );
        // Both answered no sooner than the floor, and neither much later.
        for took in [right_took, wrong_took] {
            assert!(took >= floor, "{took:?}");
            assert!(took < floor + StdDuration::from_secs(2), "{took:?}");
        }
        // Nothing more was stored for the wrong host.
        assert_eq!(stored(&app).await, (1, 1));
        // Both status links read "waiting for the host".
        for b in [&right, &wrong] {
            let token = url(b).trim_start_matches("/visit/s/").to_string();
            let (status, body) = app
                .call(Method::GET, &format!("{SUBMIT}/{token}"), None, None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["state"], "pending");
            assert_eq!(body["pass_url"], Value::Null);
        }
    }
}

#[tokio::test]
async fn a_right_host_found_by_staff_number_or_phone_typed_any_way_gets_a_pending_visitor_booking()
{
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        let host_id = host(&app).await;
        for (i, typed) in [
            "t2003117",
            " T2003117 ",
            "138 1234 5678",
            "+86 138-1234-5678",
        ]
        .iter()
        .enumerate()
        {
            let (status, _, body) = app.send(from("192.0.2.9:1", &request(typed), &[])).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{typed}: {body}");
            assert_eq!(stored(&app).await, (i as i64 + 1, i as i64 + 1), "{typed}");
        }
        let row = sqlx::query_as::<_, (i64, String, String, String, String, String, String)>(
            "SELECT host_id, status, category, plate, driver_phone, visitor_email, department \
             FROM visitor_bookings ORDER BY id LIMIT 1",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(
            row,
            (
                host_id,
                "pending".into(),
                "visitor".into(),
                "浙AM1205".into(),
                "13912345678".into(),
                "lina@example.com".into(),
                APPROVER_DEPARTMENT.into()
            )
        );
        // The creation is audited as the visitor's.
        assert!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'visitor_booking' AND operator_name = 'visitor'"
            )
            .await
                >= 1
        );
    }
}

#[tokio::test]
async fn an_invalid_form_is_refused_field_by_field_in_both_languages_and_stores_nothing() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        host(&app).await;
        let mut bad = request("T2003117");
        bad["plate"] = json!("A1");
        bad["visitor_phone"] = json!("12345");
        bad["visitor_email"] = json!("not an address");
        bad["visitor_name"] = json!(" ");
        bad["slot_until"] = json!(tomorrow("08:00"));
        let (status, body) = app
            .call_lang(Method::POST, SUBMIT, None, Some(bad.clone()), "zh-CN")
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let fields: Vec<&str> = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        for f in [
            "plate",
            "visitor_phone",
            "visitor_email",
            "visitor_name",
            "slot_until",
        ] {
            assert!(fields.contains(&f), "{f} missing in {body}");
        }
        assert!(
            body.to_string().contains("结束时间须晚于开始时间"),
            "{body}"
        );
        let (_, en) = app
            .call_lang(Method::POST, SUBMIT, None, Some(bad), "en")
            .await;
        assert!(
            en.to_string().contains("the end must be after the start"),
            "{en}"
        );
        // A past slot, a slot too long, a time that is not a time.
        for (field, value) in [
            ("slot_until", json!("2020-01-01T10:00")),
            ("slot_from", json!("next tuesday")),
            ("slot_from", json!("2026-13-40T99:99")),
        ] {
            let mut b = request("T2003117");
            b[field] = value;
            let (status, body) = app.call(Method::POST, SUBMIT, None, Some(b)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        }
        assert_eq!(stored(&app).await, (0, 0));
    }
}

#[tokio::test]
async fn hostile_bodies_are_refused_with_a_4xx_never_a_5xx_and_store_nothing() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        host(&app).await;
        let raw = |body: String| {
            Request::builder()
                .method(Method::POST)
                .uri(SUBMIT)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap()
        };
        let mut control = request("T2003117");
        control["visitor_name"] = json!("李\u{0007}娜");
        let mut long = request("T2003117");
        long["purpose"] = json!("长".repeat(5000));
        long["host"] = json!("1".repeat(500));
        let mut wrong_type = request("T2003117");
        wrong_type["plate"] = json!(12345);
        let mut unknown = request("T2003117");
        unknown["host_id"] = json!(1);
        let full = request("T2003117").to_string();
        let bodies = vec![
            control.to_string(),
            long.to_string(),
            wrong_type.to_string(),
            unknown.to_string(),
            full[..full.len() / 2].to_string(),
            String::new(),
            "null".into(),
            "[]".into(),
            format!("{{\"host\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)),
        ];
        for body in bodies {
            let preview: String = body.chars().take(60).collect();
            let (status, _, answer) = app.send(raw(body)).await;
            assert!(status.is_client_error(), "{preview}: {status} {answer}");
        }
        assert_eq!(stored(&app).await, (0, 0));
    }
}

#[tokio::test]
async fn a_made_up_or_altered_status_token_is_unknown() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        host(&app).await;
        let (_, _, body) = app
            .send(from("192.0.2.1:1", &request("T2003117"), &[]))
            .await;
        let token = body["status_url"]
            .as_str()
            .unwrap()
            .trim_start_matches("/visit/s/")
            .to_string();
        let mut altered = token.clone().into_bytes();
        altered[3] = if altered[3] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(altered).unwrap();
        for bad in [altered.as_str(), "0", "x".repeat(80).as_str(), "..%2f"] {
            let status = app
                .status(Method::GET, &format!("{SUBMIT}/{bad}"), None)
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        }
    }
}

fn tight(submits: u32, window: StdDuration) -> RateLimits {
    RateLimits {
        submit: Limit {
            max: submits,
            window,
        },
        read: Limit { max: 2, window },
        max_sources: 1000,
        answer_floor: StdDuration::ZERO,
    }
}

#[tokio::test]
async fn submits_over_the_limit_get_429_with_retry_after_per_source_and_recover_after_the_window() {
    for t in each_database().await {
        let window = StdDuration::from_millis(1500);
        let app = app_with(t, tight(3, window)).await;
        host(&app).await;
        let body = request("T2003117");
        for _ in 0..3 {
            let (status, _, _) = app.send(from("192.0.2.1:1", &body, &[])).await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        let (status, headers, answer) = app
            .send(from("192.0.2.1:2", &body, &[("accept-language", "zh-CN")]))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
        assert!(headers.contains_key("retry-after"));
        assert!(answer["message"].as_str().unwrap().contains("请求过于频繁"));
        // An invalid body over the limit is counted too, and stores nothing either way.
        let (status, _, _) = app
            .send(from("192.0.2.1:3", &json!({"host": 1}), &[]))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // Another source is counted apart.
        let (status, _, _) = app.send(from("192.0.2.2:1", &body, &[])).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(stored(&app).await, (4, 4));
        // Status reads have their own limit.
        let token = "0".repeat(80);
        let read = |peer: &str| {
            let mut r = Request::builder()
                .uri(format!("{SUBMIT}/{token}"))
                .body(Body::empty())
                .unwrap();
            r.extensions_mut()
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            r
        };
        assert_eq!(app.send(read("192.0.2.7:1")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.send(read("192.0.2.7:1")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            app.send(read("192.0.2.7:1")).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        // After the window the source is served again (the window is the wait, not settling).
        tokio::time::sleep(window + StdDuration::from_millis(100)).await;
        let (status, _, _) = app.send(from("192.0.2.1:4", &body, &[])).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn a_forwarded_address_counts_as_the_source_only_behind_a_trusted_proxy() {
    for t in each_database().await {
        let app = app_with(t, tight(1, StdDuration::from_secs(600)))
            .await
            .with_state(|s| {
                s.auth = Arc::new(AuthSettings {
                    trusted_proxies: vec!["10.0.0.1/32".parse().unwrap()],
                    ..AuthSettings::default()
                })
            });
        host(&app).await;
        let body = request("T2003117");
        // Through the trusted proxy, two clients are two sources.
        let via = |client: &str| [("x-forwarded-for", client.to_string())];
        for client in ["198.51.100.1", "198.51.100.2"] {
            let h = via(client);
            let (status, _, _) = app
                .send(from("10.0.0.1:1", &body, &[(h[0].0, &h[0].1)]))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{client}");
        }
        let h = via("198.51.100.1");
        let (status, _, _) = app
            .send(from("10.0.0.1:1", &body, &[(h[0].0, &h[0].1)]))
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // From an untrusted peer the header is ignored: the peer itself is the source.
        for client in ["198.51.100.3", "198.51.100.4"] {
            let h = via(client);
            let (status, _, _) = app
                .send(from("203.0.113.5:1", &body, &[(h[0].0, &h[0].1)]))
                .await;
            let expected = if client.ends_with('3') {
                StatusCode::ACCEPTED
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(status, expected, "{client}");
        }
    }
}

/// Links the harness's applicant account to `person`.
async fn link_applicant(app: &TestApp, person: i64) {
    operators::link_person(&app.db, &office(), app.operator_id(Role::Applicant), person)
        .await
        .unwrap();
}

async fn submitted_booking(app: &TestApp, host_typed: &str) -> i64 {
    let (status, _, body) = app
        .send(from("192.0.2.1:1", &request(host_typed), &[]))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    sqlx::query_scalar("SELECT MAX(id) FROM visitor_bookings")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_host_approves_or_rejects_their_own_visitors_requests_and_nobody_elses() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        let host_id = host(&app).await;
        link_applicant(&app, host_id).await;
        let mine = submitted_booking(&app, "T2003117").await;
        let mine_too = submitted_booking(&app, "13812345678").await;
        // Another host, in another department.
        let other: i64 = sqlx::query_scalar(
            "INSERT INTO persons (name, category, department, phone, id_card, staff_no, \
             created_ms, updated_ms) VALUES ('赵老师', 'staff', '物理学院', '', '', 'P100', 0, 0) \
             RETURNING id",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        let theirs = submitted_booking(&app, "P100").await;
        let step = |id: i64, what: &str| format!("/api/v1/bookings/{id}/{what}");
        // Someone else's: refused, and unchanged.
        for what in ["approve", "reject"] {
            let (status, _) = app
                .call(
                    Method::POST,
                    &step(theirs, what),
                    Some(Role::Applicant),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        }
        // A missing booking: 404.
        let (status, _) = app
            .call(
                Method::POST,
                &step(999_999, "approve"),
                Some(Role::Applicant),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A host cannot cancel (only approve or reject).
        let (status, _) = app
            .call(
                Method::POST,
                &step(mine, "cancel"),
                Some(Role::Applicant),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Their own: decided.
        let (status, body) = app
            .call(
                Method::POST,
                &step(mine, "approve"),
                Some(Role::Applicant),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "approved");
        let (status, body) = app
            .call(
                Method::POST,
                &step(mine_too, "reject"),
                Some(Role::Applicant),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "rejected");
        // The approver of the approvers' department cannot decide the physics host's visitor.
        let (status, _) = app
            .call(
                Method::POST,
                &step(theirs, "approve"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let status_of = |id: i64| {
            let db = app.db.clone();
            async move {
                sqlx::query_scalar::<_, String>("SELECT status FROM visitor_bookings WHERE id = $1")
                    .bind(id)
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(status_of(theirs).await, "pending");
        let _ = other;
    }
}

#[tokio::test]
async fn an_unlinked_applicant_decides_nothing_and_books_nobody() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        host(&app).await;
        let mine = submitted_booking(&app, "T2003117").await;
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{mine}/approve"),
                Some(Role::Applicant),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let mut own = request("x");
        own.as_object_mut().unwrap().remove("host");
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/host/visits",
                Some(Role::Applicant),
                Some(own),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_host_books_a_visitor_directly_approved_at_once_and_a_contractor_waits_for_security() {
    for t in each_database().await {
        let app = app_with(t, RateLimits::generous()).await;
        let host_id = host(&app).await;
        link_applicant(&app, host_id).await;
        let mut own = request("ignored");
        own.as_object_mut().unwrap().remove("host");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/host/visits",
                Some(Role::Applicant),
                Some(own.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "approved");
        assert_eq!(body["host_id"], host_id);
        assert_eq!(body["plate"], "浙AM1205");
        own["category"] = json!("contractor");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/host/visits",
                Some(Role::Applicant),
                Some(own.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "pending");
        assert_eq!(body["department_approved_by"], "applicant");
        let id = body["id"].as_i64().unwrap();
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{id}/approve"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "approved");
        // Invalid input stores nothing.
        own["plate"] = json!("??");
        let before = stored(&app).await;
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/host/visits",
                Some(Role::Applicant),
                Some(own),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(stored(&app).await.0, before.0);
        // Other roles may not use the host's endpoint.
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/host/visits",
                Some(Role::Approver),
                Some(request("x")),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_persons_staff_number_and_email_are_kept_checked_and_masked_for_roles_that_need_not_see_them()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Security),
                Some(
                    json!({"name": "王老师", "category": "staff", "department": APPROVER_DEPARTMENT,
                    "staff_no": " T2003117 ", "email": "wang@example.edu.cn"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["staff_no"], "T2003117");
        assert_eq!(body["email"], "wang@example.edu.cn");
        let id = body["id"].as_i64().unwrap();
        let (_, seen) = app
            .call(
                Method::GET,
                &format!("/api/v1/persons/{id}"),
                Some(Role::Viewer),
                None,
            )
            .await;
        assert_eq!(seen["email"], "w***@example.edu.cn");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Security),
                Some(json!({"name": "坏", "category": "staff", "staff_no": "T 1;DROP", "email": "a@b"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let text = body.to_string();
        assert!(
            text.contains("staff_no") && text.contains("email"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn bulk_import_reads_staff_numbers_and_emails_under_their_usual_headers_and_refuses_bad_ones()
{
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        // The columns are optional: an old file without them still imports.
        let old = "姓名,类别\n张三,staff\n".to_string();
        let report =
            crate::bulk_import::import(&app, "persons", true, old.into_bytes(), "en").await;
        assert_eq!(report["imported"], 1, "{report}");
        // Hostile cells: spaces and a semicolon, a formula, control characters, an address
        // without a domain, an oversized number. Nothing of the file is imported.
        let bad = "姓名,类别,学号,电子邮箱\n\
                   李四,student,S 1;DROP,li@example.edu.cn\n\
                   王五,student,=CMD(),wang@example.edu.cn\n\
                   赵六,student,S3\u{7},zhao@example.edu.cn\n\
                   钱七,student,S4,qian@\n\
                   孙八,student,SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS,sun@example.edu.cn\n";
        let report =
            crate::bulk_import::import(&app, "persons", true, bad.as_bytes().to_vec(), "en").await;
        let errors = report["errors"].as_array().unwrap();
        let columns: Vec<&str> = errors
            .iter()
            .map(|e| e["column"].as_str().unwrap_or(""))
            .collect();
        assert!(errors.len() >= 5, "{report}");
        assert!(
            columns.contains(&"staff_no") && columns.contains(&"email"),
            "{report}"
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM persons").await, 1);
        // The usual headers (工号, 邮箱) import.
        let good = "姓名,类别,工号,邮箱\n周九,staff,T2003117,zhou@example.edu.cn\n";
        let report =
            crate::bulk_import::import(&app, "persons", true, good.as_bytes().to_vec(), "en").await;
        assert_eq!(report["imported"], 1, "{report}");
        let (staff_no, email): (String, String) =
            sqlx::query_as("SELECT staff_no, email FROM persons WHERE name = '周九'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert_eq!(
            (staff_no.as_str(), email.as_str()),
            ("T2003117", "zhou@example.edu.cn")
        );
    }
}

#[tokio::test]
async fn the_status_page_says_where_a_request_stands_in_plain_words_and_is_rate_limited_too() {
    for t in each_database().await {
        let app = app_with(t, tight(10, StdDuration::from_secs(600))).await;
        let host_id = host(&app).await;
        link_applicant(&app, host_id).await;
        let (_, _, body) = app
            .send(from("192.0.2.1:1", &request("T2003117"), &[]))
            .await;
        let url = body["status_url"].as_str().unwrap().to_string();
        let page = |path: String, peer: &str| {
            let mut r = Request::builder().uri(path).body(Body::empty()).unwrap();
            r.extensions_mut()
                .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            r
        };
        let (status, _, html) = app.send(page(url.clone(), "192.0.2.5:1")).await;
        let html = html.as_str().unwrap().to_string();
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("等待被访人确认"), "{html}");
        assert!(
            html.contains("http-equiv=\"refresh\""),
            "pending pages reload themselves"
        );
        // Decided by the host: the page says so and, its pass not issued yet, keeps reloading.
        let id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM visitor_bookings")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{id}/reject"),
                Some(Role::Applicant),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, html) = app.send(page(url.clone(), "192.0.2.6:1")).await;
        let html = html.as_str().unwrap().to_string();
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("预约未通过"), "{html}");
        assert!(
            !html.contains("http-equiv=\"refresh\""),
            "a final state stops reloading"
        );
        // A made-up link: a plain page saying so (not the API's JSON 404).
        let (status, _, html) = app
            .send(page(format!("/visit/s/{}", "ab".repeat(40)), "192.0.2.6:1"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.as_str().unwrap().contains("没有这个预约"));
        // The third read of this source within the window (the limit is 2): 429.
        let (status, headers, html) = app.send(page(url, "192.0.2.6:1")).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key("retry-after"));
        assert!(html.as_str().unwrap().contains("请稍后再试"));
    }
}
