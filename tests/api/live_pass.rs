//! One live pass per vehicle and kind, through the API on SQLite and PostgreSQL: a second
//! permit of the same kind for a vehicle whose pass is live and overlaps is a 409 naming the
//! live pass (number, holder, validity) in Chinese and English, unless an `override_reason`
//! says why — then it is stored with the permit and in its audit entry. A renewal that starts
//! when the old pass ends, a pass of the other kind, and a revoked old pass duplicate nothing.
//! An application's issue follows the same rule. The pickers find persons by name or number and
//! vehicles by plates typed in full width or lower case, within the caller's scope.

use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count, each_database};

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, b) = app
        .call(Method::POST, path, Some(Role::Security), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {b}");
    b
}

/// A person of `department` with a vehicle: (person id, vehicle id).
async fn owner(app: &TestApp, name: &str, department: &str, plate: &str) -> (i64, i64) {
    let person = created(
        app,
        "/api/v1/persons",
        json!({"name": name, "category": "staff", "department": department,
               "phone": "13812345678"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let vehicle = created(
        app,
        "/api/v1/vehicles",
        json!({"plate": plate, "plate_colour": "blue", "owner_id": person}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    (person, vehicle)
}

fn permit(holder: i64, vehicle: i64, from: &str, until: &str) -> Value {
    json!({"category": "staff", "holder_id": holder, "vehicle_ids": [vehicle],
           "valid_from": from, "valid_until": until})
}

#[tokio::test]
async fn a_second_live_pass_of_the_same_kind_is_refused_without_a_reason_and_audited_with_one() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (holder, car) = owner(&app, "张伟", "计算机学院", "京A12345").await;
        let first = created(
            &app,
            "/api/v1/permits",
            permit(holder, car, "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        )
        .await;
        let first_id = first["id"].as_i64().unwrap();
        assert_eq!(first["override_reason"], "");

        // The same kind, overlapping: refused, naming the live pass, in both languages.
        let second = permit(holder, car, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Security),
                Some(second.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "车辆 京A12345 已有有效的车辆通行证 {first_id}号（持证人 张伟，有效期 2026-01-01 08:00 — 2099-01-01 08:00）"
            )),
            "{message}"
        );
        assert!(message.contains("请填写重复发证原因"), "{message}");
        let (status, body) = app
            .call_lang(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Security),
                Some(second.clone()),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["message"].as_str().unwrap().starts_with(&format!(
                "vehicle 京A12345 already holds live vehicle pass no. {first_id} (holder 张伟"
            )),
            "{body}"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM permits").await,
            1,
            "nothing written"
        );
        // A blank reason is no reason.
        let mut blank = second.clone();
        blank["override_reason"] = json!("   ");
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Security),
                Some(blank),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);

        // With a reason: issued, the reason stored with the permit and audited.
        let mut with_reason = second.clone();
        with_reason["override_reason"] = json!("换车过渡期，旧证月底收回");
        let body = created(&app, "/api/v1/permits", with_reason).await;
        let id = body["id"].as_i64().unwrap();
        assert_eq!(body["override_reason"], "换车过渡期，旧证月底收回");
        let (_, fetched) = app
            .call(
                Method::GET,
                &format!("/api/v1/permits/{id}"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(fetched["override_reason"], "换车过渡期，旧证月底收回");
        let audited: String = sqlx::query_scalar(
            "SELECT after_json FROM audit_log WHERE entity = 'permit' AND entity_id = $1 \
             AND action = 'create'",
        )
        .bind(id.to_string())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert!(audited.contains("换车过渡期，旧证月底收回"), "{audited}");

        // What duplicates nothing: a renewal from the day the live passes end, a one-off pass
        // (the other kind), and a vehicle whose pass was revoked.
        let renewal = created(
            &app,
            "/api/v1/permits",
            permit(holder, car, "2099-01-01T00:00:00Z", "2100-01-01T00:00:00Z"),
        )
        .await;
        assert_eq!(renewal["override_reason"], "");
        let mut one_off = permit(holder, car, "2027-03-01T00:00:00Z", "2027-03-02T00:00:00Z");
        one_off["single_use"] = json!(true);
        created(&app, "/api/v1/permits", one_off.clone()).await;
        // …but a second one-off pass over the same days is a duplicate of that kind.
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Security),
                Some(one_off),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            body["message"].as_str().unwrap().contains("一次性出门证"),
            "{body}"
        );
        let (other, bike) = owner(&app, "王芳", "外国语学院", "京B22222").await;
        let old = created(
            &app,
            "/api/v1/permits",
            permit(other, bike, "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        )
        .await;
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/permits/{}/revoke", old["id"]),
                Some(Role::Security),
                Some(json!({"reason": "车辆已出售"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        created(
            &app,
            "/api/v1/permits",
            permit(other, bike, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"),
        )
        .await;
        // A reason over 200 characters is a field error.
        let mut long = permit(other, bike, "2027-06-01T00:00:00Z", "2028-01-01T00:00:00Z");
        long["override_reason"] = json!("长".repeat(201));
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Security),
                Some(long),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["fields"][0]["field"], "override_reason");
    }
}

#[tokio::test]
async fn issuing_an_application_for_a_vehicle_with_a_live_pass_needs_a_reason() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (person, car) = owner(&app, "李明", APPROVER_DEPARTMENT, "京A88888").await;
        created(
            &app,
            "/api/v1/permits",
            permit(person, car, "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        )
        .await;
        let (status, a) = app
            .call(
                Method::POST,
                "/api/v1/applications",
                Some(Role::Approver),
                Some(
                    json!({"kind": "permit", "applicant_id": person, "vehicle_id": car,
                    "category": "staff", "gates": "1:exit", "valid_from": "2027-01-01T00:00:00Z",
                    "valid_until": "2027-06-01T00:00:00Z", "purpose": "新学期"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        let id = a["id"].as_i64().unwrap();
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/approve"),
                Some(Role::Approver),
                Some(json!({"comment": "同意"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let issue = format!("/api/v1/applications/{id}/issue");
        let (status, body) = app
            .call(Method::POST, &issue, Some(Role::Security), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("车辆 京A88888 已有有效的车辆通行证"),
            "{body}"
        );
        let (_, still) = app
            .call(
                Method::GET,
                &format!("/api/v1/applications/{id}"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(still["status"], "approved", "nothing issued");
        let (status, issued) = app
            .call(
                Method::POST,
                &issue,
                Some(Role::Security),
                Some(json!({"override_reason": "原证仅限北门，新学期需南门出"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        assert_eq!(
            issued["permit"]["override_reason"],
            "原证仅限北门，新学期需南门出"
        );
        assert_eq!(issued["permit"]["gates"], "1:exit");
        assert_eq!(issued["application"]["status"], "issued");
    }
}

#[tokio::test]
async fn the_pickers_find_people_by_name_or_number_and_vehicles_by_plates_typed_any_way_within_scope()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (li, li_car) = owner(&app, "李明", APPROVER_DEPARTMENT, "浙AM1205").await;
        let (wang, _) = owner(&app, "王芳", "外国语学院", "浙AM1206").await;
        created(
            &app,
            "/api/v1/permits",
            permit(li, li_car, "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        )
        .await;
        let get = |role: Role, path: String| {
            let app = &app;
            async move {
                let (status, body) = app.call(Method::GET, &path, Some(role), None).await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                body.as_array().unwrap().clone()
            }
        };
        // By name, by number; the office sees every department.
        let found = get(Role::Security, "/api/v1/pickers/persons?q=%E6%9D%8E".into()).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["name"], "李明");
        assert_eq!(found[0]["category_label"], "教职工");
        let found = get(Role::Security, format!("/api/v1/pickers/persons?q={wang}")).await;
        assert_eq!(found[0]["id"], wang);
        // Full width and lower case, with the live pass the vehicle holds.
        let q = "%EF%BD%81%EF%BD%8D%EF%BC%91%EF%BC%92"; // ａｍ１２
        let found = get(Role::Security, format!("/api/v1/pickers/vehicles?q={q}")).await;
        let plates: Vec<&str> = found.iter().map(|v| v["plate"].as_str().unwrap()).collect();
        assert_eq!(plates, ["浙AM1205", "浙AM1206"]);
        assert_eq!(found[0]["owner_name"], "李明");
        assert_eq!(found[0]["live_passes"][0]["kind_label"], "车辆通行证");
        assert_eq!(
            found[0]["live_passes"][0]["validity"],
            "2026-01-01 08:00 — 2099-01-01 08:00"
        );
        assert_eq!(found[1]["live_passes"], json!([]));
        let found = get(Role::Security, "/api/v1/pickers/vehicles?q=am1205".into()).await;
        assert_eq!(found.len(), 1);
        let found = get(
            Role::Security,
            format!("/api/v1/pickers/vehicles?q=am&owner_id={wang}"),
        )
        .await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["plate"], "浙AM1206");
        // An approver: their department's people and vehicles only.
        let found = get(Role::Approver, "/api/v1/pickers/persons?q=".into()).await;
        let names: Vec<&str> = found.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["李明"]);
        let found = get(Role::Approver, "/api/v1/pickers/vehicles?q=am".into()).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["plate"], "浙AM1205");
        // Roles that fill no form are refused.
        let (status, _) = app
            .call(
                Method::GET,
                "/api/v1/pickers/persons?q=",
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
