//! The exit-pass application flow through the API on SQLite and PostgreSQL: apply → the
//! department's approver decides with a comment → the security office issues (permit + tag, in
//! the change log the gates sync from); wrong-state steps are 409s naming the status; approvers
//! act only for their own department; every step is audited.

use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count, each_database};

async fn created(app: &TestApp, path: &str, body: Value) -> i64 {
    let (status, b) = app
        .call(Method::POST, path, Some(Role::Security), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {b}");
    b["id"].as_i64().unwrap()
}

/// A staff member of `department` with a vehicle: (person, vehicle).
async fn applicant(app: &TestApp, department: &str, plate: &str) -> (i64, i64) {
    let person = created(
        app,
        "/api/v1/persons",
        json!({"name": "李老师", "category": "staff", "department": department,
               "phone": "13812345678", "id_card": "11010519491231002x"}),
    )
    .await;
    let vehicle = created(
        app,
        "/api/v1/vehicles",
        json!({"plate": plate, "plate_colour": "blue", "owner_id": person}),
    )
    .await;
    (person, vehicle)
}

#[tokio::test]
async fn an_application_is_approved_by_its_department_then_issued_as_a_permit_with_its_tag() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (person, vehicle) = applicant(&app, APPROVER_DEPARTMENT, "京A12345").await;

        // The department's approver enters it for their colleague.
        let (status, a) = app
            .call(
                Method::POST,
                "/api/v1/applications",
                Some(Role::Approver),
                Some(
                    json!({"kind": "permit", "applicant_id": person, "vehicle_id": vehicle,
                    "category": "staff", "valid_from": "2026-03-01T00:00:00Z",
                    "valid_until": "2026-09-01T00:00:00Z", "purpose": "日常通勤"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        let id = a["id"].as_i64().unwrap();
        assert_eq!(a["status"], "pending");
        assert_eq!(a["department"], APPROVER_DEPARTMENT);
        assert_eq!(a["plate"], "京A12345");
        assert_eq!(a["gates"], "all");
        assert_eq!(a["applied_by"], "approver");

        // Issuing before approval is refused with the status named.
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/issue"),
                Some(Role::Security),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["message"], "该申请当前状态为“待审批”，不能发证");

        // The security office does not approve; the approver does, with a comment.
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/approve"),
                Some(Role::Security),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, a) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/approve"),
                Some(Role::Approver),
                Some(json!({"comment": "同意"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(a["status"], "approved");
        assert_eq!(a["decided_by"], "approver");
        assert_eq!(a["decision_comment"], "同意");
        let (status, body) = app
            .call_lang(
                Method::POST,
                &format!("/api/v1/applications/{id}/reject"),
                Some(Role::Approver),
                Some(json!({"comment": "改主意了"})),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["message"],
            "The application is approved; it cannot be rejected"
        );

        // The security office issues it with the windscreen tag.
        let changes_before = count(&app.db, "SELECT COUNT(*) FROM change_log").await;
        let (status, issued) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/issue"),
                Some(Role::Security),
                Some(json!({"epc": "e2003098881900722140369e"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        let permit_id = issued["permit"]["id"].as_i64().unwrap();
        assert_eq!(issued["application"]["status"], "issued");
        assert_eq!(issued["application"]["permit_id"], permit_id);
        assert_eq!(issued["application"]["issued_by"], "security");
        assert_eq!(issued["credential"]["epc"], "E2003098881900722140369E");
        assert_eq!(issued["credential"]["vehicle_id"], vehicle);

        let (status, permit) = app
            .call(
                Method::GET,
                &format!("/api/v1/permits/{permit_id}"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(permit["status"], "active");
        assert_eq!(permit["holder_id"], person);
        assert_eq!(permit["vehicle_ids"], json!([vehicle]));
        assert_eq!(permit["single_use"], false);
        assert_eq!(permit["valid_from"], "2026-03-01T00:00:00Z");
        // The permit and the tag reach the gates through the change log.
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM change_log").await,
            changes_before + 2
        );
        assert_eq!(
            count(
                &app.db,
                &format!(
                    "SELECT COUNT(*) FROM change_log WHERE entity = 'permit' AND entity_id = '{permit_id}'"
                )
            )
            .await,
            1
        );

        // Every step is audited, in order.
        let actions: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT action FROM audit_log WHERE entity = 'exit_pass_application' \
             AND entity_id = '{id}' ORDER BY id"
        ))
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(actions, ["apply", "approve", "issue"]);

        // Issued is final.
        let (status, body) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/cancel"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["message"], "该申请当前状态为“已发证”，不能撤销");
    }
}

#[tokio::test]
async fn a_one_off_exit_pass_is_single_use_exit_only_and_at_most_a_week_long() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (person, vehicle) = applicant(&app, APPROVER_DEPARTMENT, "京B23456").await;
        let (status, body) = app
            .call_lang(
                Method::POST,
                "/api/v1/applications",
                Some(Role::Security),
                Some(
                    json!({"kind": "one_off", "applicant_id": person, "vehicle_id": vehicle,
                    "category": "student", "valid_from": "2026-02-10T08:00:00Z",
                    "valid_until": "2026-02-20T08:00:00Z"}),
                ),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["field"], "valid_until");
        assert_eq!(
            body["fields"][0]["message"],
            "a one-off exit pass lasts at most 7 days"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM exit_pass_applications").await,
            0
        );

        let (status, a) = app
            .call(
                Method::POST,
                "/api/v1/applications",
                Some(Role::Security),
                Some(
                    json!({"kind": "one_off", "applicant_id": person, "vehicle_id": vehicle,
                    "category": "student", "valid_from": "2026-02-10T08:00:00Z",
                    "valid_until": "2026-02-12T08:00:00Z", "purpose": "寒假离校"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{a}");
        assert_eq!(a["gates"], "all:exit");
        let id = a["id"].as_i64().unwrap();
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/approve"),
                Some(Role::Admin),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, issued) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{id}/issue"),
                Some(Role::Admin),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{issued}");
        assert_eq!(issued["permit"]["single_use"], true);
        assert_eq!(issued["permit"]["gates"], "all:exit");
        assert_eq!(issued["credential"], Value::Null);
    }
}

#[tokio::test]
async fn an_approver_acts_only_for_their_own_department_and_a_rejection_needs_a_comment() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (other, other_vehicle) = applicant(&app, "外国语学院", "沪C34567").await;
        let (mine, my_vehicle) = applicant(&app, APPROVER_DEPARTMENT, "京A12345").await;
        let body = |person: i64, vehicle: i64| {
            json!({"kind": "permit", "applicant_id": person, "vehicle_id": vehicle,
                "category": "staff", "valid_from": "2026-03-01T00:00:00Z",
                "valid_until": "2026-09-01T00:00:00Z"})
        };
        // Not for another department's people.
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/applications",
                Some(Role::Approver),
                Some(body(other, other_vehicle)),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let theirs = created(&app, "/api/v1/applications", body(other, other_vehicle)).await;
        let ours = created(&app, "/api/v1/applications", body(mine, my_vehicle)).await;
        for path in [
            format!("/api/v1/applications/{theirs}/approve"),
            format!("/api/v1/applications/{theirs}/reject"),
        ] {
            let (status, _) = app
                .call(
                    Method::POST,
                    &path,
                    Some(Role::Approver),
                    Some(json!({"comment": "x"})),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/applications/{theirs}"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // The list shows an approver only their department's.
        let (_, page) = app
            .call(
                Method::GET,
                "/api/v1/applications",
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(page["total"], 1);
        assert_eq!(page["items"][0]["id"], ours);
        let (_, page) = app
            .call(
                Method::GET,
                "/api/v1/applications?status=pending",
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(page["total"], 2);

        let (status, body) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{ours}/reject"),
                Some(Role::Approver),
                Some(json!({"comment": "  "})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["fields"][0]["message"], "驳回申请须填写意见");
        let (status, a) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{ours}/reject"),
                Some(Role::Approver),
                Some(json!({"comment": "车辆信息不全"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(a["status"], "rejected");
        assert_eq!(a["decision_comment"], "车辆信息不全");
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/applications/{ours}/issue"),
                Some(Role::Security),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM permits").await, 0);

        // Unknown people and vehicles are named by this request's fields.
        let (status, body) = app
            .call_lang(
                Method::POST,
                "/api/v1/applications",
                Some(Role::Security),
                Some(
                    json!({"kind": "permit", "applicant_id": 999, "vehicle_id": 998,
                    "category": "dean", "valid_from": "2026-03-01T00:00:30Z",
                    "valid_until": "2026-09-01T00:00:00Z"}),
                ),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let mut fields: Vec<&str> = body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            ["applicant_id", "category", "valid_from", "vehicle_id"]
        );
    }
}
