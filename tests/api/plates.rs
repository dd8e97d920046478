//! One bad plate, one answer: every route that takes a plate refuses a mistyped one with the same
//! status, the same field-error code and the same message, in Chinese and in English — and a
//! bulk import's report names the same code and message for the row.

use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};

use crate::harness::{APPROVER_DEPARTMENT, TestApp, each_database};

/// Not a province abbreviation: refused by the parser with a reason that names the character.
const BAD: &str = "北A12345";
/// [`BAD`] in a URL.
const BAD_IN_URL: &str = "%E5%8C%97A12345";

/// An RFC 3339 whole minute `hours` from now.
fn in_hours(hours: i64) -> String {
    let t = chrono::Utc::now().timestamp() + hours * 3600;
    chrono::DateTime::from_timestamp(t / 60 * 60, 0)
        .unwrap()
        .to_rfc3339()
}

/// The created resource's id, after asserting it was created.
async fn create(app: &TestApp, path: &str, role: Role, body: Value) -> i64 {
    let (status, created) = app.call(Method::POST, path, Some(role), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created["id"].as_i64().unwrap()
}

/// The plate's field error in a refusal: (field, code, message).
fn plate_error(route: &str, status: StatusCode, body: &Value) -> (String, String, String) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route}: {body}");
    let fields = body["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("{route}: {body}"));
    let plate = fields
        .iter()
        .find(|f| matches!(f["field"].as_str(), Some("plate" | "subject")))
        .unwrap_or_else(|| panic!("{route}: no plate field error in {body}"));
    (
        plate["field"].as_str().unwrap().to_string(),
        plate["code"].as_str().unwrap().to_string(),
        plate["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_bad_plate_gets_the_same_status_code_and_message_from_every_route_that_takes_one() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let owner = create(
            &app,
            "/api/v1/persons",
            Role::Security,
            json!({"name": "张三", "category": "staff", "department": APPROVER_DEPARTMENT}),
        )
        .await;
        let vehicle_body =
            |plate: &str| json!({"plate": plate, "plate_colour": "blue", "owner_id": owner});
        let vehicle = create(
            &app,
            "/api/v1/vehicles",
            Role::Security,
            vehicle_body("京A12345"),
        )
        .await;
        let booking_body = |plate: &str| {
            json!({"host_id": owner, "purpose": "学术讲座", "plate": plate, "plate_colour": "blue",
                "driver_name": "周九", "driver_phone": "13812345678",
                "slot_from": in_hours(1), "slot_until": in_hours(3)})
        };
        let booking = create(
            &app,
            "/api/v1/bookings",
            Role::Approver,
            booking_body("京B12345"),
        )
        .await;
        let blacklist_body = |plate: &str| json!({"subject_kind": "plate", "subject": plate, "reason": "冲卡", "alarm_level": "urgent"});
        let entry = create(
            &app,
            "/api/v1/blacklist",
            Role::Security,
            blacklist_body("京C12345"),
        )
        .await;
        let lock_body = |plate: &str| json!({"plate": plate, "reason": "欠费"});
        let lock = create(&app, "/api/v1/locks", Role::Security, lock_body("京D12345")).await;
        let visit_body = json!({"gate_id": 1, "lane": "entry", "plate": BAD, "driver_name": "周九",
            "driver_phone": "13812345678", "host_name": "张三", "department": APPROVER_DEPARTMENT,
            "purpose": "送货", "expected_departure": in_hours(2)});

        let routes: Vec<(Method, String, Role, Option<Value>)> = vec![
            (
                Method::POST,
                "/api/v1/vehicles".into(),
                Role::Security,
                Some(vehicle_body(BAD)),
            ),
            (
                Method::PUT,
                format!("/api/v1/vehicles/{vehicle}"),
                Role::Security,
                Some(vehicle_body(BAD)),
            ),
            (
                Method::GET,
                format!("/api/v1/vehicles/by-plate/{BAD_IN_URL}"),
                Role::Security,
                None,
            ),
            (
                Method::POST,
                "/api/v1/visits".into(),
                Role::Guard,
                Some(visit_body),
            ),
            (
                Method::POST,
                "/api/v1/bookings".into(),
                Role::Approver,
                Some(booking_body(BAD)),
            ),
            (
                Method::PUT,
                format!("/api/v1/bookings/{booking}"),
                Role::Approver,
                Some(booking_body(BAD)),
            ),
            (
                Method::POST,
                "/api/v1/blacklist".into(),
                Role::Security,
                Some(blacklist_body(BAD)),
            ),
            (
                Method::PUT,
                format!("/api/v1/blacklist/{entry}"),
                Role::Security,
                Some(blacklist_body(BAD)),
            ),
            (
                Method::POST,
                "/api/v1/locks".into(),
                Role::Security,
                Some(lock_body(BAD)),
            ),
            (
                Method::PUT,
                format!("/api/v1/locks/{lock}"),
                Role::Security,
                Some(lock_body(BAD)),
            ),
            (
                Method::GET,
                format!("/api/v1/events?plate={BAD_IN_URL}"),
                Role::Security,
                None,
            ),
        ];
        for (lang, message) in [
            ("zh-CN", "“北”不是省份简称"),
            ("en", "'北' is not a province abbreviation"),
        ] {
            // A spreadsheet row of a vehicle import: its report names the same code and text.
            let file = format!("车牌号,车主身份证号,车牌颜色\n{BAD},,蓝牌\n").into_bytes();
            let report = crate::bulk_import::import(&app, "vehicles", false, file, lang).await;
            let row = report["errors"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["column"] == "plate"))
                .unwrap_or_else(|| panic!("import ({lang}): no plate error in {report}"));
            assert_eq!(
                row["code"], "plate_unknown_province",
                "import ({lang}): {report}"
            );
            assert_eq!(row["message"], message, "import ({lang}): {report}");

            for (method, path, role, body) in &routes {
                let route = format!("{method} {path} ({lang})");
                let (status, refusal) = app
                    .call_lang(method.clone(), path, Some(*role), body.clone(), lang)
                    .await;
                let (_, code, got) = plate_error(&route, status, &refusal);
                assert_eq!(code, "plate_unknown_province", "{route}: {refusal}");
                assert_eq!(got, message, "{route}: {refusal}");
            }
        }

        // The guard's lookup takes partial plates: a bad one is a search, never a refusal.
        let (status, found) = app
            .call(
                Method::GET,
                &format!("/api/v1/console/plates?q={BAD_IN_URL}"),
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
    }
}
