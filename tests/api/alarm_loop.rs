//! Alarms that close the loop, on SQLite and PostgreSQL: an acknowledgement says what was done
//! (a choice, and a note with 其他), is stored, audited and refused a second time with who did
//! it; the guard who raised a booth alarm withdraws it within the site's `alarm_withdraw_s`
//! (audited, no longer open, a pending police-link delivery stopped) and is refused after the
//! window in both languages; another guard may not; and a gate's tailgating lane fault raises
//! one `tailgating` alarm however often the upload is sent.

use axum::http::{Method, StatusCode};
use chrono::Utc;
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Actor;
use gatehouse::central::repo::{alarms, settings};
use gatehouse::wire::journal::{EventBody, JournalEvent};
use serde_json::{Value, json};

use crate::harness::{TestApp, count, each_database};

/// The guard (gate 1) presses the alarm button; returns the alarm.
async fn raise(app: &TestApp) -> Value {
    let (s, alarm) = app
        .call(
            Method::POST,
            "/api/v1/alarms",
            Some(Role::Guard),
            Some(json!({"gate_id": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{alarm}");
    alarm
}

/// The site's withdrawal window set to `seconds` (as an administrator would).
async fn withdraw_window(app: &TestApp, seconds: u32) {
    let mut s = settings::load(&app.db).await.unwrap();
    s.alarm_withdraw_s = seconds;
    settings::save(&app.db, &Actor::system(), &s).await.unwrap();
}

#[tokio::test]
async fn an_alarm_acknowledgement_records_what_was_done_and_is_audited_and_refused_twice() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let alarm = raise(&app).await;
        let path = format!("/api/v1/alarms/{}/acknowledge", alarm["id"]);

        // What was done is required, and "other" needs words.
        let (s, e) = app
            .call(
                Method::POST,
                &path,
                Some(Role::Security),
                Some(json!({"action": ""})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["fields"][0]["field"], "action");
        assert!(
            e["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("请选择处置情况")
        );
        let (s, e) = app
            .call_lang(
                Method::POST,
                &path,
                Some(Role::Security),
                Some(json!({"action": "other", "note": " "})),
                "en",
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["fields"][0]["field"], "note");
        assert!(
            e["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("say what was done")
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM alarms WHERE acknowledged_ms IS NOT NULL"
            )
            .await,
            0,
            "nothing acknowledged by a refused request"
        );

        let (s, done) = app
            .call(
                Method::POST,
                &path,
                Some(Role::Security),
                Some(json!({"action": "dispatched", "note": "巡逻队王队长已到北门"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["ack_action"], "dispatched");
        assert_eq!(done["ack_note"], "巡逻队王队长已到北门");
        assert_eq!(done["acknowledged_by"], "security");
        assert!(done["acknowledged_at"].is_string());
        let after: String = sqlx::query_scalar(
            "SELECT after_json FROM audit_log WHERE entity = 'alarm' AND action = 'acknowledge'",
        )
        .fetch_one(app.db.pool())
        .await
        .unwrap();
        let after: Value = serde_json::from_str(&after).unwrap();
        assert_eq!(after["action"], "dispatched");
        assert_eq!(after["note"], "巡逻队王队长已到北门");

        // A second acknowledgement (another officer on a stale page) says who came first.
        let (s, e) = app
            .call(
                Method::POST,
                &path,
                Some(Role::Admin),
                Some(json!({"action": "phoned"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(
            e["message"].as_str().unwrap().contains("保卫处 刘科长"),
            "{e}"
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'alarm' AND action = 'acknowledge'"
            )
            .await,
            1
        );
        // Guards do not acknowledge.
        let (s, _) = app
            .call(
                Method::POST,
                &path,
                Some(Role::Guard),
                Some(json!({"action": "phoned"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_guard_withdraws_a_false_alarm_within_the_window_and_the_office_no_longer_counts_it_open()
{
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        // A police link is configured: the booth alarm is being delivered.
        alarms::set_webhook(&app.db, &Actor::system(), Some("http://127.0.0.1:9/police"))
            .await
            .unwrap();
        let alarm = raise(&app).await;
        let id = alarm["id"].as_i64().unwrap();
        assert_eq!(alarms::open(&app.db, 10).await.unwrap().0, 1);

        let path = format!("/api/v1/alarms/{id}/withdraw");
        let (s, done) = app.call(Method::POST, &path, Some(Role::Guard), None).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["withdrawn_by"], "guard");
        assert!(done["withdrawn_at"].is_string());
        assert_ne!(
            done["webhook_status"], "pending",
            "a withdrawn alarm's delivery is not retried"
        );
        assert_eq!(
            alarms::open(&app.db, 10).await.unwrap().0,
            0,
            "no longer open"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM audit_log WHERE entity = 'alarm' AND action = 'withdraw' AND operator_name = 'guard'").await,
            1
        );
        // Withdrawn twice, or acknowledged after: refused, saying who withdrew it.
        let (s, e) = app.call(Method::POST, &path, Some(Role::Guard), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(
            e["message"].as_str().unwrap().contains("门卫 李师傅"),
            "{e}"
        );
        let (s, e) = app
            .call(
                Method::POST,
                &format!("/api/v1/alarms/{id}/acknowledge"),
                Some(Role::Security),
                Some(json!({"action": "false_alarm"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e["message"].as_str().unwrap().contains("撤销"), "{e}");
    }
}

#[tokio::test]
async fn an_alarm_is_not_withdrawn_after_the_window_nor_by_another_guard_and_the_refusal_says_why()
{
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        withdraw_window(&app, 1).await;
        let alarm = raise(&app).await;
        let id = alarm["id"].as_i64().unwrap();
        let path = format!("/api/v1/alarms/{id}/withdraw");

        // The viewer role may not withdraw anything.
        assert_eq!(
            app.status(Method::POST, &path, Some(Role::Viewer)).await,
            StatusCode::FORBIDDEN
        );
        // Past the one-second window (backdated, rather than slept through).
        sqlx::query("UPDATE alarms SET raised_ms = raised_ms - 5000 WHERE id = $1")
            .bind(id)
            .execute(app.db.pool())
            .await
            .unwrap();
        let (s, e) = app.call(Method::POST, &path, Some(Role::Guard), None).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        let zh = e["message"].as_str().unwrap();
        assert!(zh.contains("1 秒内撤销") && zh.contains("保卫处"), "{zh}");
        let (s, e) = app
            .call_lang(Method::POST, &path, Some(Role::Guard), None, "en")
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert!(
            e["message"].as_str().unwrap().contains("only within 1 s"),
            "{e}"
        );
        assert_eq!(alarms::open(&app.db, 10).await.unwrap().0, 1, "still open");
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'alarm' AND action = 'withdraw'"
            )
            .await,
            0
        );
    }
}

#[tokio::test]
async fn only_the_guard_who_raised_an_alarm_or_the_office_may_withdraw_it() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        // An alarm someone else (the office, at the booth) raised at gate 1.
        let (s, alarm) = app
            .call(
                Method::POST,
                "/api/v1/alarms",
                Some(Role::Security),
                Some(json!({"gate_id": 1})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let path = format!("/api/v1/alarms/{}/withdraw", alarm["id"]);
        assert_eq!(
            app.status(Method::POST, &path, Some(Role::Guard)).await,
            StatusCode::FORBIDDEN,
            "a guard withdraws only their own alarm"
        );
        let (s, done) = app.call(Method::POST, &path, Some(Role::Admin), None).await;
        assert_eq!(s, StatusCode::OK, "{done}");
        assert_eq!(done["withdrawn_by"], "admin");
    }
}

/// The lane fault a gate journals when a vehicle passes without a grant.
fn tailgating(seq: u64) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc::now(),
        lane: "entry".into(),
        body: EventBody::LaneFault {
            fault: "unauthorized_passage".into(),
            detail: "a vehicle passed without a grant".into(),
        },
    }
}

#[tokio::test]
async fn a_tailgating_lane_fault_raises_one_tailgating_alarm_with_its_lane_however_often_it_is_uploaded()
 {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let batch = [tailgating(1)];
        for _ in 0..2 {
            gatehouse::central::ingest::accept(&app.state, 1, &batch)
                .await
                .unwrap();
        }
        let raised = alarms::of_kind(&app.db, 1, gatehouse::central::alarms::TAILGATING)
            .await
            .unwrap();
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].note, "entry", "the lane it happened at");
        assert_eq!(
            raised[0].webhook_status, "none",
            "the office's, not the police's"
        );
        assert!(raised[0].is_open());
        // A second vehicle through later is its own alarm.
        gatehouse::central::ingest::accept(&app.state, 1, &[tailgating(2)])
            .await
            .unwrap();
        assert_eq!(
            alarms::of_kind(&app.db, 1, "tailgating")
                .await
                .unwrap()
                .len(),
            2
        );
    }
}
