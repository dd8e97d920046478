//! Site settings (`/api/v1/settings`) and the duty rule they switch, on SQLite and PostgreSQL:
//! the office reads the settings, only an administrator changes them, every change is audited
//! with the settings before and after, a bad value is refused field by field in both languages
//! and saves nothing; with `require_duty_for_open` a guard not on duty at the gate is refused a
//! manual open and a visitor registration (409, audited), and passes once signed in there or
//! with the setting off, while the security office is never asked for duty.

use axum::http::{Method, StatusCode};
use chrono::Utc;
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{TestApp, count, each_database};

const SETTINGS: &str = "/api/v1/settings";
const COMMAND: &str = "/api/v1/console/gates/1/lanes/entry/command";

#[tokio::test]
async fn the_office_reads_the_settings_only_an_administrator_changes_them_and_each_change_is_audited()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let (status, defaults) = app
            .call(Method::GET, SETTINGS, Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{defaults}");
        assert_eq!(defaults["province"], "京");
        assert_eq!(defaults["require_duty_for_open"], true);
        assert_eq!(
            app.status(Method::GET, SETTINGS, Some(Role::Security))
                .await,
            StatusCode::OK
        );
        for role in [Role::Guard, Role::Viewer, Role::Approver, Role::Applicant] {
            assert_eq!(
                app.status(Method::GET, SETTINGS, Some(role)).await,
                StatusCode::FORBIDDEN,
                "{role:?} reads nothing"
            );
        }
        assert_eq!(
            app.status(Method::GET, SETTINGS, None).await,
            StatusCode::UNAUTHORIZED
        );
        let change = json!({"province": "浙", "require_duty_for_open": false});
        for role in [Role::Security, Role::Guard] {
            let (status, _) = app
                .call(Method::PUT, SETTINGS, Some(role), Some(change.clone()))
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} changes nothing");
        }
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'site_settings'"
            )
            .await,
            0
        );
        let (status, saved) = app
            .call(Method::PUT, SETTINGS, Some(Role::Admin), Some(change))
            .await;
        assert_eq!(status, StatusCode::OK, "{saved}");
        assert_eq!(saved["province"], "浙");
        assert_eq!(saved["require_duty_for_open"], false);
        assert_eq!(
            saved["verdict_fade_s"], 30,
            "a field left out keeps its value"
        );
        let (_, read) = app
            .call(Method::GET, SETTINGS, Some(Role::Security), None)
            .await;
        assert_eq!(read, saved);
        let row = sqlx::query(
            "SELECT operator_name, action, before_json, after_json FROM audit_log \
             WHERE entity = 'site_settings'",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>(1), "update");
        let before: Value = serde_json::from_str(&row.get::<String, _>(2)).unwrap();
        let after: Value = serde_json::from_str(&row.get::<String, _>(3)).unwrap();
        assert_eq!(before["province"], "京");
        assert_eq!(after["province"], "浙");
        assert_eq!(after["require_duty_for_open"], false);
    }
}

#[tokio::test]
async fn bad_settings_are_refused_field_by_field_in_both_languages_and_nothing_is_saved() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let bad = json!({"province": "北", "verdict_fade_s": 0, "alarm_withdraw_s": 99999,
            "unstaffed_alert_min": -5});
        let (status, zh) = app
            .call_lang(
                Method::PUT,
                SETTINGS,
                Some(Role::Admin),
                Some(bad.clone()),
                "zh-CN",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{zh}");
        let fields: Vec<&str> = zh["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "province",
                "verdict_fade_s",
                "alarm_withdraw_s",
                "unstaffed_alert_min"
            ]
        );
        assert!(
            zh["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("不是省份简称"),
            "{zh}"
        );
        assert!(
            zh["fields"][1]["message"]
                .as_str()
                .unwrap()
                .contains("应在 5 到 3600 秒之间"),
            "{zh}"
        );
        let (_, en) = app
            .call_lang(Method::PUT, SETTINGS, Some(Role::Admin), Some(bad), "en")
            .await;
        assert!(
            en["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not a province abbreviation"),
            "{en}"
        );
        assert!(
            en["fields"][3]["message"]
                .as_str()
                .unwrap()
                .contains("between 0 and 1440 min"),
            "{en}"
        );
        // Two provinces, an unknown setting, a number as text: refused too.
        for body in [
            json!({"province": "京沪"}),
            json!({"province": ""}),
            json!({"colour": "red"}),
            json!({"verdict_fade_s": "30"}),
        ] {
            let (status, answer) = app
                .call(Method::PUT, SETTINGS, Some(Role::Admin), Some(body.clone()))
                .await;
            assert!(status.is_client_error(), "{body}: {status} {answer}");
        }
        let (_, read) = app
            .call(Method::GET, SETTINGS, Some(Role::Admin), None)
            .await;
        assert_eq!(read["province"], "京", "nothing was saved");
        assert_eq!(read["verdict_fade_s"], 30);
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'site_settings'"
            )
            .await,
            0
        );
    }
}

fn visit() -> Value {
    json!({"gate_id": 1, "lane": "entry", "plate": "ａｍ１２０５", "province": "浙",
        "driver_name": "李四", "driver_phone": "13812345678", "host_name": "王老师",
        "department": "计算机学院", "purpose": "送货",
        "expected_departure": (Utc::now() + chrono::Duration::hours(2)).to_rfc3339()})
}

/// The message of a 409, in `lang`.
async fn refusal(app: &TestApp, path: &str, role: Role, body: Value, lang: &str) -> String {
    let (status, answer) = app
        .call_lang(Method::POST, path, Some(role), Some(body), lang)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
    answer["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_guard_not_on_duty_at_the_gate_may_not_open_or_register_there_and_the_refusal_is_audited()
{
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        sqlx::query(
            "INSERT INTO lanes (gate_id, lane_key, name, direction, created_ms, updated_ms) \
             VALUES (1, 'entry', '入口', 'entry', 0, 0)",
        )
        .execute(app.db.pool())
        .await
        .unwrap();
        let open = json!({"command": "open", "reason": "emergency_vehicle"});
        let zh = refusal(&app, COMMAND, Role::Guard, open.clone(), "zh-CN").await;
        assert!(zh.contains("请先在本岗亭签到上岗"), "{zh}");
        let en = refusal(&app, COMMAND, Role::Guard, open.clone(), "en").await;
        assert!(en.contains("Sign in on duty at this booth first"), "{en}");
        let zh = refusal(&app, "/api/v1/visits", Role::Guard, visit(), "zh-CN").await;
        assert!(zh.contains("请先在本岗亭签到上岗"), "{zh}");
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM visits").await, 0);
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command'"
            )
            .await,
            0,
            "nothing was sent"
        );
        let rows = sqlx::query(
            "SELECT operator_name, entity, entity_id, after_json FROM audit_log \
             WHERE action = 'manual_command_refused' ORDER BY id",
        )
        .fetch_all(app.db.pool())
        .await
        .unwrap();
        assert_eq!(rows.len(), 3, "every refusal is audited");
        assert_eq!(rows[0].get::<String, _>(1), "lane");
        assert_eq!(rows[0].get::<String, _>(2), "1/entry");
        let after: Value = serde_json::from_str(&rows[2].get::<String, _>(3)).unwrap();
        assert_eq!(after["command"], "register_visitor");
        assert_eq!(after["on_duty_at"], Value::Null);

        // On duty at another gate is not on duty here.
        sqlx::query(
            "INSERT INTO duty_records (operator_id, gate_id, started_ms) VALUES ($1, 2, 0)",
        )
        .bind(app.operator_id(Role::Guard))
        .execute(app.db.pool())
        .await
        .unwrap();
        let zh = refusal(&app, COMMAND, Role::Guard, open.clone(), "zh-CN").await;
        assert!(zh.contains("其他大门"), "{zh}");

        // The security office needs no duty: it gets as far as the gate (offline here).
        let office = refusal(&app, COMMAND, Role::Security, open.clone(), "zh-CN").await;
        assert!(office.contains("闸口离线"), "{office}");

        // Signed in at this gate, the guard gets as far as the gate too, and registers.
        let (status, duty) = app
            .call(
                Method::POST,
                "/api/v1/duty/sign-in",
                Some(Role::Guard),
                Some(json!({"gate_id": 1})),
            )
            .await;
        assert!(status.is_success(), "{duty}");
        let on_duty = refusal(&app, COMMAND, Role::Guard, open.clone(), "zh-CN").await;
        assert!(on_duty.contains("闸口离线"), "{on_duty}");
        let (status, registered) = app
            .call(
                Method::POST,
                "/api/v1/visits",
                Some(Role::Guard),
                Some(visit()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{registered}");
        assert_eq!(registered["visit"]["plate"], "浙AM1205");

        // Off duty, with the setting off: no duty asked.
        app.call(
            Method::POST,
            "/api/v1/duty/sign-off",
            Some(Role::Guard),
            None,
        )
        .await;
        refusal(&app, COMMAND, Role::Guard, open.clone(), "zh-CN").await;
        let (status, _) = app
            .call(
                Method::PUT,
                SETTINGS,
                Some(Role::Admin),
                Some(json!({"require_duty_for_open": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let free = refusal(&app, COMMAND, Role::Guard, open, "zh-CN").await;
        assert!(free.contains("闸口离线"), "{free}");
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'manual_command_refused'"
            )
            .await,
            5,
            "3 refusals, the one at another gate's duty, the one after signing off"
        );
    }
}
