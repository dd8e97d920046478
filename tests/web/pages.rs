//! Page-level HTTP tests: every page route's protection, the session cookie and CSRF, a guard
//! confined to their own gates, and the console's JSON endpoints refusing bad input in both
//! languages with nothing saved — on SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gatehouse::central::api::policy::Access;
use gatehouse::central::db::Db;
use gatehouse::central::state::AppState;
use gatehouse::web::PAGES;
use gatehouse::web::site as app;
use serde_json::{Value, json};
use sqlx::Row;
use tower::ServiceExt;

use crate::support::{OPERATORS, each_database, seed};

struct Pages {
    state: AppState,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Pages {
    async fn new(db: &Db) -> Pages {
        seed(db).await;
        Pages {
            state: AppState::new(db.clone()),
        }
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = if response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"))
        {
            String::new()
        } else {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Signs in through the API as a browser does; returns (cookie header, CSRF token).
    async fn sign_in(&self, username: &str) -> (String, String) {
        let r = self.send(crate::support::harness::login(username)).await;
        assert_eq!(r.status, StatusCode::OK, "{username} signs in: {}", r.body);
        let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        (cookie, r.json()["csrf_token"].as_str().unwrap().to_string())
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut b = Request::get(path);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(
        &self,
        path: &str,
        cookie: &str,
        csrf: Option<&str>,
        lang: &str,
        body: Value,
    ) -> Reply {
        let mut b = Request::post(path)
            .header(header::COOKIE, cookie)
            .header("content-type", "application/json")
            .header("accept-language", lang);
        if let Some(csrf) = csrf {
            b = b.header("x-csrf-token", csrf);
        }
        self.send(b.body(Body::from(body.to_string())).unwrap())
            .await
    }
}

fn concrete(route: &str) -> String {
    match route {
        "/lang" => "/lang?to=en&next=%2Fconsole".into(),
        other => other.replace("{file}", "gatehouse.css"),
    }
}

/// Two hours from now, as a booth's `datetime-local` field sends it (Asia/Shanghai).
fn soon() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(2))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[tokio::test]
async fn every_page_needs_a_session_and_its_role_and_signed_out_browsers_go_to_sign_in() {
    let db = crate::support::sqlite().await;
    let pages = Pages::new(&db.db).await;
    let mut cookies = std::collections::HashMap::new();
    for (username, _, _) in OPERATORS {
        cookies.insert(*username, pages.sign_in(username).await.0);
    }
    for (route, access) in PAGES {
        let path = concrete(route);
        let anonymous = pages.get(&path, None).await;
        match access {
            Access::Public => assert!(
                anonymous.status.is_success() || anonymous.status.is_redirection(),
                "{route} is public: {}",
                anonymous.status
            ),
            _ => {
                assert_eq!(
                    anonymous.status,
                    StatusCode::SEE_OTHER,
                    "{route} without a session"
                );
                let to = anonymous.headers[header::LOCATION].to_str().unwrap();
                assert!(
                    to.starts_with("/login?next="),
                    "{route} sends to sign-in, not {to}"
                );
            }
        }
        if let Access::Roles(roles) = access {
            for (username, role, _) in OPERATORS {
                let r = pages.get(&path, Some(&cookies[username])).await;
                if roles.contains(role) {
                    // A route naming a record (`{duty_id}`) is admitted and answers that
                    // the record does not exist.
                    let missing_record =
                        route.contains("_id}") && r.status == StatusCode::NOT_FOUND;
                    assert!(
                        r.status.is_success() || missing_record,
                        "{username} may see {route}: {}",
                        r.status
                    );
                } else {
                    assert_eq!(
                        r.status,
                        StatusCode::FORBIDDEN,
                        "{username} may not see {route}"
                    );
                    assert!(
                        r.body.contains("无权访问"),
                        "the refusal is explained in zh-CN"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_and_unsafe_requests_need_the_csrf_token() {
    let db = crate::support::sqlite().await;
    let pages = Pages::new(&db.db).await;
    let r = pages.send(crate::support::harness::login("guard")).await;
    let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let (cookie, csrf) = pages.sign_in("guard").await;
    let page = pages.get("/console", Some(&cookie)).await;
    assert!(
        page.body.contains(&format!("content=\"{csrf}\"")),
        "the page carries the CSRF token"
    );
    let alarm = json!({"gate_id": 1});
    let without = pages
        .post("/api/v1/alarms", &cookie, None, "zh-CN", alarm.clone())
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN, "no token: refused");
    let wrong = pages
        .post(
            "/api/v1/alarms",
            &cookie,
            Some("forged"),
            "zh-CN",
            alarm.clone(),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::FORBIDDEN,
        "a forged token: refused"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alarms")
        .fetch_one(db.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing was raised without the token");
    let with = pages
        .post("/api/v1/alarms", &cookie, Some(&csrf), "zh-CN", alarm)
        .await;
    assert_eq!(with.status, StatusCode::CREATED, "{}", with.body);
}

#[tokio::test]
async fn a_guard_sees_and_acts_only_on_their_own_gates() {
    for db in each_database().await {
        let pages = Pages::new(&db.db).await;
        let (cookie, csrf) = pages.sign_in("guard").await;
        let console = pages.get("/console", Some(&cookie)).await;
        assert!(console.body.contains("北门"), "gate 1 is shown");
        assert!(
            !console.body.contains("南门"),
            "gate 2 is not shown to gate 1's guard"
        );
        let visitors = pages.get("/console/visitors", Some(&cookie)).await;
        assert!(
            !visitors.body.contains("南门"),
            "gate 2's lanes are not offered for visits"
        );
        let reason = json!({"command": "open", "reason": "emergency_vehicle"});
        let other = pages
            .post(
                "/api/v1/console/gates/2/lanes/entry/command",
                &cookie,
                Some(&csrf),
                "zh-CN",
                reason.clone(),
            )
            .await;
        assert_eq!(
            other.status,
            StatusCode::FORBIDDEN,
            "no command on another gate"
        );
        let visit = json!({"gate_id": 2, "lane": "entry", "plate": "京A12345", "driver_name": "李四",
            "driver_phone": "13812345678", "host_name": "王老师", "department": "计算机学院",
            "purpose": "送货", "expected_departure": soon()});
        let r = pages
            .post("/api/v1/visits", &cookie, Some(&csrf), "zh-CN", visit)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no visit at another gate");
        let r = pages
            .post(
                "/api/v1/alarms",
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({"gate_id": 2}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no alarm at another gate");
        let r = pages
            .post(
                "/api/v1/duty/sign-in",
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({"gate_id": 2}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no duty at another gate");
        let audit: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command'")
                .fetch_one(db.db.pool())
                .await
                .unwrap();
        assert_eq!(audit, 0, "nothing was sent or recorded for the other gate");
        pages
            .post(
                "/api/v1/duty/sign-in",
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({"gate_id": 1}),
            )
            .await; // on duty at gate 1: required to open (issue 20)
        // The same guard at their own gate gets through the door (the gate is offline until
        // the sync delivers commands, which the answer says).
        let own = pages
            .post(
                "/api/v1/console/gates/1/lanes/entry/command",
                &cookie,
                Some(&csrf),
                "zh-CN",
                reason,
            )
            .await;
        assert_eq!(own.status, StatusCode::CONFLICT, "{}", own.body);
        assert!(
            own.json()["message"].as_str().unwrap().contains("闸口离线"),
            "{}",
            own.body
        );
    }
}

#[tokio::test]
async fn a_manual_command_without_a_reason_is_refused_in_both_languages_and_nothing_is_recorded() {
    for db in each_database().await {
        let pages = Pages::new(&db.db).await;
        let (cookie, csrf) = pages.sign_in("guard").await;
        pages
            .post(
                "/api/v1/duty/sign-in",
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({"gate_id": 1}),
            )
            .await; // on duty at gate 1: required to open (issue 20)
        let path = "/api/v1/console/gates/1/lanes/entry/command";
        let zh = pages
            .post(
                path,
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({"command": "open"}),
            )
            .await;
        assert_eq!(zh.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(zh.json()["fields"][0]["field"], "reason");
        assert!(
            zh.json()["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("请选择原因"),
            "{}",
            zh.body
        );
        let en = pages
            .post(
                path,
                &cookie,
                Some(&csrf),
                "en",
                json!({"command": "open", "reason": "other"}),
            )
            .await;
        assert_eq!(en.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(en.json()["fields"][0]["field"], "note");
        assert!(
            en.json()["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("Explain"),
            "{}",
            en.body
        );
        let audit: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command'")
                .fetch_one(db.db.pool())
                .await
                .unwrap();
        assert_eq!(audit, 0, "a refused command is not sent nor recorded");
        // With a reason it is sent and audited, with what became of it.
        let ok = pages
            .post(
                path,
                &cookie,
                Some(&csrf),
                "en",
                json!({"command": "open", "reason": "official_business", "note": "市政府车辆"}),
            )
            .await;
        assert_eq!(
            ok.status,
            StatusCode::CONFLICT,
            "gate offline until the sync delivers: {}",
            ok.body
        );
        assert!(
            ok.json()["message"]
                .as_str()
                .unwrap()
                .contains("Gate offline")
        );
        let row = sqlx::query("SELECT operator_name, entity_id, after_json FROM audit_log WHERE action = 'manual_command'")
            .fetch_one(db.db.pool())
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), "guard");
        assert_eq!(row.get::<String, _>(1), "1/entry");
        let after: Value = serde_json::from_str(&row.get::<String, _>(2)).unwrap();
        assert_eq!(after["reason"], "official_business");
        assert_eq!(after["outcome"], "gate_offline");
    }
}

#[tokio::test]
async fn a_visit_with_bad_fields_is_refused_field_by_field_and_nothing_is_saved() {
    for db in each_database().await {
        let pages = Pages::new(&db.db).await;
        let (cookie, csrf) = pages.sign_in("guard").await;
        pages
            .post(
                "/api/v1/duty/sign-in",
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({"gate_id": 1}),
            )
            .await; // on duty at gate 1: required to open (issue 20)
        let bad = json!({"gate_id": 1, "lane": "entry", "plate": "京A1234", "driver_name": "",
            "driver_phone": "123", "host_name": "王老师", "department": "计算机学院",
            "purpose": "送货", "expected_departure": "2001-01-01T10:00"});
        let r = pages
            .post("/api/v1/visits", &cookie, Some(&csrf), "zh-CN", bad.clone())
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let fields: Vec<String> = r.json()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            fields,
            ["plate", "driver_name", "driver_phone", "expected_departure"]
        );
        let en = pages
            .post("/api/v1/visits", &cookie, Some(&csrf), "en", bad)
            .await;
        assert!(
            en.body.contains("expected departure must be later"),
            "{}",
            en.body
        );
        let visits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM visits")
            .fetch_one(db.db.pool())
            .await
            .unwrap();
        assert_eq!(visits, 0);
        // A good one, typed sloppily, is stored normalised and listed; leaving closes it once.
        let good = json!({"gate_id": 1, "lane": "entry", "plate": "京ａ·12345", "driver_name": "李四",
            "driver_phone": "138 1234 5678", "host_name": "王老师", "department": "计算机学院",
            "purpose": "送货", "expected_departure": soon()});
        let r = pages
            .post("/api/v1/visits", &cookie, Some(&csrf), "zh-CN", good)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.json()["visit"]["plate"], "京A12345");
        assert_eq!(r.json()["barrier"], "gate_offline");
        let id = r.json()["visit"]["id"].as_i64().unwrap();
        let left = pages
            .post(
                &format!("/api/v1/visits/{id}/leave"),
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({}),
            )
            .await;
        assert_eq!(left.status, StatusCode::OK, "{}", left.body);
        assert!(left.json()["left_at"].is_string());
        let again = pages
            .post(
                &format!("/api/v1/visits/{id}/leave"),
                &cookie,
                Some(&csrf),
                "zh-CN",
                json!({}),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn plate_lookup_finds_bookings_by_exact_plate_and_only_suggests_near_matches() {
    let db = crate::support::sqlite().await;
    let pages = Pages::new(&db.db).await;
    sqlx::query("INSERT INTO persons (name, category, department, created_ms, updated_ms) VALUES ('王老师', 'staff', '计算机学院', 0, 0)")
        .execute(db.db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO visitor_bookings (host_id, department, purpose, plate, driver_name, driver_phone, \
         slot_from_ms, slot_until_ms, status, created_ms, updated_ms) \
         VALUES (1, '计算机学院', '讲座', '沪B85201', '赵六', '13900001111', 0, 4102444800000, 'approved', 0, 0)",
    )
    .execute(db.db.pool())
    .await
    .unwrap();
    let (cookie, _) = pages.sign_in("guard").await;
    let exact = pages
        .get("/api/v1/console/plates?q=%E6%B2%AAB85201", Some(&cookie))
        .await;
    assert_eq!(
        exact.json()["bookings"][0]["driver_name"],
        "赵六",
        "{}",
        exact.body
    );
    // "B8S2O1" misreads 8→B, 5→S, 0→O: suggested, no booking returned for it.
    let near = pages
        .get("/api/v1/console/plates?q=B8S2O1", Some(&cookie))
        .await;
    assert_eq!(near.json()["bookings"].as_array().unwrap().len(), 0);
    assert_eq!(near.json()["suggestions"][0], "沪B85201", "{}", near.body);
}
