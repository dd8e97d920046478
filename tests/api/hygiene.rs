//! Web hygiene, on SQLite and PostgreSQL: `next=` redirects stay on the
//! site, security headers on pages and JSON, phone numbers masked for viewers in the visits
//! list, control characters refused in names and notes, armed-police plates validated, path
//! ids that do not parse answered in the API's error shape, and the OpenAPI document allowing
//! what the API really sends (`report: null`).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Actor;
use gatehouse::central::repo::visits::{self, NewVisit};
use serde_json::{Value, json};

use crate::harness::{TestApp, each_database};

async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for t in each_database().await {
        apps.push(TestApp::spawn(t).await);
    }
    apps
}

async fn get(app: &TestApp, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
    app.send(Request::get(uri).body(Body::empty()).unwrap())
        .await
}

/// A browser session's cookie for `username`.
async fn cookie(app: &TestApp, username: &str) -> String {
    let (status, headers, body) = app.send(crate::harness::login(username)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_next_path_with_a_tab_a_control_character_or_a_host_falls_back_to_the_start() {
    for app in apps().await {
        for next in [
            // The tab trick: browsers drop the tab and go to //evil.example/.
            "/%09/evil.example/",
            "/%0A/evil.example/",
            // Header splitting, and text a header cannot carry at all (never a panic).
            "/%0D%0ASet-Cookie:%20x=1",
            "/%00",
            "/%E5%8C%97%E9%97%A8",
            "/%20/evil.example/",
            "//evil.example/",
            "/%5C/evil.example/",
            "https://evil.example/",
        ] {
            let (status, headers, _) = get(&app, &format!("/lang?to=en&next={next}")).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{next}");
            assert_eq!(headers[header::LOCATION], "/", "{next}");
            let (status, _, body) = get(&app, &format!("/login?next={next}")).await;
            assert_eq!(status, StatusCode::OK, "{next}");
            let page = body.as_str().unwrap();
            assert!(page.contains("data-next=\"/\""), "{next}: {page}");
            assert!(!page.contains("evil.example"), "{next}");
        }
        // A local path of printable characters is kept as it is.
        let (status, headers, _) = get(
            &app,
            "/lang?to=zh&next=%2Fadmin%2Fpersons%3Fq%3D%25E5%25BC%25A0",
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/admin/persons?q=%E5%BC%A0");
    }
}

fn assert_security_headers(headers: &axum::http::HeaderMap, what: &str) {
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{what}");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{what}");
}

#[tokio::test]
async fn every_page_and_json_reply_carries_the_security_headers_and_personal_data_is_not_cached() {
    for app in apps().await {
        let admin = cookie(&app, "admin").await;
        let guard = cookie(&app, "guard").await;
        for (uri, session) in [
            ("/login", None),
            ("/admin/persons", Some(&admin)),
            ("/admin/stats", Some(&admin)),
            ("/console", Some(&guard)),
            ("/office", Some(&admin)),
            ("/api/v1/persons", Some(&admin)),
            ("/api/v1/auth/me", Some(&admin)),
            ("/api/v1/persons/1", Some(&admin)),
            ("/api/v1/no-such-route", Some(&admin)),
            ("/api/v1/persons", None),
            ("/api/v1/stats/export?table=flows&format=csv", Some(&admin)),
            ("/admin/operators", Some(&guard)),
        ] {
            let mut request = Request::get(uri);
            if let Some(c) = session {
                request = request.header(header::COOKIE, c);
            }
            let (status, headers, _) = app.send(request.body(Body::empty()).unwrap()).await;
            let what = format!("{uri} ({status})");
            assert_security_headers(&headers, &what);
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{what}");
        }
        // Assets keep their own cache policy (revalidated, not stored-never).
        let (status, headers, _) = get(&app, "/assets/gatehouse.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_security_headers(&headers, "/assets/gatehouse.js");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    }
}

#[tokio::test]
async fn pages_carry_no_inline_script_style_or_handler_so_the_policy_breaks_nothing() {
    for app in apps().await {
        let admin = cookie(&app, "admin").await;
        for uri in [
            "/login",
            "/console",
            "/console/visitors",
            "/office",
            "/admin",
            "/admin/persons",
            "/admin/vehicles",
            "/admin/permits",
            "/admin/applications",
            "/admin/bookings",
            "/admin/lists",
            "/admin/gates",
            "/admin/operators",
            "/admin/audit",
            "/admin/import",
            "/admin/stats",
            "/admin/stats/daily",
        ] {
            let (status, _, body) = app
                .send(
                    Request::get(uri)
                        .header(header::COOKIE, &admin)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            let page = body.as_str().unwrap();
            assert!(!page.contains(" style="), "{uri} has an inline style");
            assert!(!page.contains("<style"), "{uri} has a style element");
            assert!(!page.contains("javascript:"), "{uri}");
            for (i, _) in page.match_indices("<script") {
                let tag = &page[i..page[i..].find('>').map_or(page.len(), |e| i + e)];
                assert!(tag.contains(" src="), "{uri}: inline script {tag}");
            }
            let handler = regex_like_handler(page);
            assert!(handler.is_none(), "{uri}: inline handler {handler:?}");
        }
    }
}

/// The first ` onsomething=` attribute in `page`, if any.
fn regex_like_handler(page: &str) -> Option<String> {
    page.match_indices(" on").find_map(|(i, _)| {
        let rest = &page[i + 3..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        (!name.is_empty() && rest[name.len()..].starts_with('=')).then(|| format!("on{name}"))
    })
}

#[tokio::test]
async fn a_viewer_sees_visitors_phone_numbers_masked_and_the_booth_sees_them_whole() {
    for app in apps().await {
        for (plate, phone) in [("京A12345", "13812345678"), ("京B12345", "010-62345678")] {
            visits::create(
                &app.db,
                &Actor::system(),
                &NewVisit {
                    booking_id: None,
                    gate_id: 1,
                    lane: "entry".into(),
                    plate: plate.into(),
                    driver_name: "王五".into(),
                    driver_phone: phone.into(),
                    host_name: "李老师".into(),
                    department: "计算机学院".into(),
                    purpose: "送货".into(),
                    expected_departure_ms: gatehouse::central::db::now_ms() + 3_600_000,
                },
            )
            .await
            .unwrap();
        }
        let phones = |body: &Value| -> Vec<String> {
            let mut p: Vec<String> = body
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["driver_phone"].as_str().unwrap().to_string())
                .collect();
            p.sort();
            p
        };
        let (status, body) = app
            .call(Method::GET, "/api/v1/visits", Some(Role::Viewer), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(phones(&body), ["010-****5678", "138****5678"]);
        for role in [Role::Guard, Role::Security, Role::Admin] {
            let (status, body) = app
                .call(Method::GET, "/api/v1/visits", Some(role), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(phones(&body), ["010-62345678", "13812345678"], "{role:?}");
        }
    }
}

#[tokio::test]
async fn control_characters_in_names_and_notes_are_refused_in_both_languages_and_nothing_is_saved()
{
    for app in apps().await {
        for (name, bad) in [
            ("张\u{7}三", "U+0007"),
            ("张三\t", "U+0009"),
            ("张\n三", "U+000A"),
            ("\u{202E}三张", "U+202E"),
            ("张\u{85}三", "U+0085"),
        ] {
            for (lang, word) in [("en", "control character"), ("zh-CN", "控制字符")] {
                let (status, body) = app
                    .call_lang(
                        Method::POST,
                        "/api/v1/persons",
                        Some(Role::Admin),
                        Some(json!({"name": name, "category": "staff"})),
                        lang,
                    )
                    .await;
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
                let field = &body["fields"][0];
                assert_eq!(field["field"], "name", "{body}");
                assert_eq!(field["code"], "control_character", "{body}");
                let message = field["message"].as_str().unwrap();
                assert!(message.contains(word) && message.contains(bad), "{message}");
            }
        }
        let (_, list) = app
            .call(Method::GET, "/api/v1/persons", Some(Role::Admin), None)
            .await;
        assert_eq!(list["total"], 0, "nothing saved: {list}");

        // A note may have line breaks (it is typed in a text area), but no other control
        // character; the error names the field inside its path.
        let (status, person) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Admin),
                Some(json!({"name": "张三", "category": "staff"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{person}");
        let owner = person["id"].as_i64().unwrap();
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/vehicles",
                Some(Role::Admin),
                Some(
                    json!({"plate": "京A12345", "plate_colour": "blue", "owner_id": owner,
                            "note": "白色轿车\u{1b}[31m"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], "note", "{body}");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/vehicles",
                Some(Role::Admin),
                Some(
                    json!({"plate": "京A12345", "plate_colour": "blue", "owner_id": owner,
                            "note": "白色轿车\r\n常停东区"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["note"], "白色轿车\r\n常停东区");
    }
}

#[tokio::test]
async fn armed_police_plates_are_validated_like_the_others() {
    for app in apps().await {
        let (_, person) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Admin),
                Some(json!({"name": "张三", "category": "staff"})),
            )
            .await;
        let owner = person["id"].as_i64().unwrap();
        for bad in [
            "WJ京12$45",
            "WJ<b>x</b>",
            "WJ京1234I",
            "WJ英12345",
            "WJ京123",
        ] {
            let (status, body) = app
                .call(
                    Method::POST,
                    "/api/v1/vehicles",
                    Some(Role::Admin),
                    Some(json!({"plate": bad, "plate_colour": "white", "owner_id": owner})),
                )
                .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
            assert_eq!(body["fields"][0]["field"], "plate", "{bad}: {body}");
        }
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/vehicles",
                Some(Role::Admin),
                Some(json!({"plate": "WJ京·1234X", "plate_colour": "white", "owner_id": owner})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["plate"], "WJ京1234X");
    }
}

#[tokio::test]
async fn a_path_id_that_does_not_parse_is_a_400_in_the_error_shape_in_both_languages() {
    for app in apps().await {
        for (method, uri) in [
            (Method::GET, "/api/v1/persons/abc"),
            (Method::GET, "/api/v1/persons/99999999999999999999"),
            (Method::DELETE, "/api/v1/vehicles/1.5"),
            (Method::GET, "/api/v1/gates/1/lanes/x"),
            (Method::POST, "/api/v1/visits/%FF/leave"),
            (Method::GET, "/api/v1/bulk/jobs/-1"),
        ] {
            let (status, en) = app
                .call_lang(method.clone(), uri, Some(Role::Admin), None, "en")
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {uri}: {en}");
            assert_eq!(en["code"], "bad_request", "{uri}: {en}");
            let message = en["message"].as_str().unwrap();
            assert!(message.starts_with("path parameter"), "{message}");
            let (_, zh) = app
                .call_lang(method.clone(), uri, Some(Role::Admin), None, "zh-CN")
                .await;
            assert_eq!(zh["code"], "bad_request", "{uri}: {zh}");
            assert!(
                zh["message"].as_str().unwrap().starts_with("路径参数"),
                "{zh}"
            );
        }
    }
}

#[tokio::test]
async fn the_openapi_document_allows_the_null_report_of_a_gate_never_heard_from() {
    for app in apps().await {
        let (status, gates) = app
            .call(Method::GET, "/api/v1/sync/gates", Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{gates}");
        assert_eq!(gates[0]["report"], Value::Null, "{gates}");
        let (_, doc) = app
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        let report = &doc["components"]["schemas"]["GateHealth"]["properties"]["report"];
        let allows_null = report["type"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("null")))
            || report["nullable"] == json!(true)
            || report["oneOf"]
                .as_array()
                .is_some_and(|o| o.iter().any(|s| s["type"] == "null"));
        assert!(allows_null, "report schema: {report}");
    }
}

#[tokio::test]
async fn a_body_that_is_an_array_of_the_fields_instead_of_an_object_is_refused_and_changes_nothing()
{
    for app in apps().await {
        let body = serde_json::json!([null, null]);
        let (status, en) = app
            .call_lang(
                Method::PUT,
                "/api/v1/alarms/webhook",
                Some(Role::Admin),
                Some(body.clone()),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{en}");
        let text = en.to_string();
        assert!(text.contains("must be a JSON object"), "{text}");
        let (status, zh) = app
            .call_lang(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Admin),
                Some(serde_json::json!(["张三", "staff"])),
                "zh-CN",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{zh}");
        assert!(zh.to_string().contains("JSON 对象"), "{zh}");
    }
}
