//! Gates and lanes on the central server, against SQLite and PostgreSQL: the repository
//! (management, a mode change audited as `set_mode` with its reason), then the API (admins
//! write, security sets modes, guards see only their own gates).

use crate::harness::TestApp;
use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Page;
use gatehouse::central::repo::audit::{self as audit_repo, AuditQuery};
use gatehouse::central::repo::gates::{self, GateQuery, NewGate, NewLane};
use serde_json::json;

use crate::harness::count;
use crate::lists::officer;

// ---------------------------------------------------------------------------------------------
// The repository.

#[tokio::test]
async fn gates_and_lanes_are_managed_and_a_mode_change_is_audited_as_set_mode_with_its_reason() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let north = gates::create(
            db,
            &officer(),
            NewGate {
                name: "北门".into(),
                name_en: String::new(),
                anti_passback: "timed:15".into(),
                offline_policy: "cached".into(),
                enabled: true,
            },
        )
        .await
        .unwrap();
        assert_eq!((north.mode.as_str(), north.enabled), ("normal", true));
        let lane = gates::create_lane(
            db,
            &officer(),
            north.id,
            NewLane {
                lane_key: "entry".into(),
                name: "入口".into(),
                name_en: String::new(),
                direction: "entry".into(),
                mode: "normal".into(),
                settings: serde_json::json!({"reader": {"power_dbm": 27}})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
        )
        .await
        .unwrap();
        assert_eq!(lane.settings["reader"]["power_dbm"], 27);
        // The same key twice in one gate is a conflict.
        let dup = gates::create_lane(
            db,
            &officer(),
            north.id,
            NewLane {
                lane_key: "entry".into(),
                name: String::new(),
                name_en: String::new(),
                direction: "exit".into(),
                mode: "normal".into(),
                settings: Default::default(),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(dup, gatehouse::central::db::RepoError::Conflict(_)),
            "{dup:?}"
        );
        assert_eq!(
            gates::lanes(db, north.id).await.unwrap(),
            vec![lane.clone()]
        );

        let locked = gates::set_mode(db, &officer(), north.id, "locked_closed", "incident drill")
            .await
            .unwrap();
        assert_eq!(locked.mode, "locked_closed");
        let entry = &audit_repo::search(
            db,
            &AuditQuery {
                action: Some("set_mode".into()),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap()
        .items[0];
        assert_eq!(entry.entity_id, north.id.to_string());
        assert_eq!(entry.before.as_ref().unwrap()["mode"], "normal");
        assert_eq!(entry.after.as_ref().unwrap()["reason"], "incident drill");

        let south = gates::create(
            db,
            &officer(),
            NewGate {
                name: "南门".into(),
                name_en: String::new(),
                anti_passback: "off".into(),
                offline_policy: "locked_closed".into(),
                enabled: false,
            },
        )
        .await
        .unwrap();
        let only_south = GateQuery {
            only: Some(vec![south.id]),
            ..Default::default()
        };
        assert_eq!(
            gates::search(db, &only_south, Page::default())
                .await
                .unwrap()
                .items,
            vec![south.clone()]
        );
        let named = GateQuery {
            name: Some("北".into()),
            ..Default::default()
        };
        assert_eq!(
            gates::search(db, &named, Page::default())
                .await
                .unwrap()
                .items,
            vec![locked]
        );

        // Deleting a gate takes its lanes with it, each audited.
        gates::delete(db, &officer(), north.id).await.unwrap();
        assert_eq!(count(db, "SELECT COUNT(*) FROM lanes").await, 0);
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'lane' AND action = 'delete'"
            )
            .await,
            1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The API.

#[tokio::test]
async fn gates_are_written_by_admins_moded_by_security_and_guards_see_only_their_own() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        // Lists: a guard sees gate 1 only; another gate's details and lanes are a 403.
        let (_, all) = app
            .call(Method::GET, "/api/v1/gates", Some(Role::Viewer), None)
            .await;
        assert_eq!(all["total"], 2);
        let (_, own) = app
            .call(Method::GET, "/api/v1/gates", Some(Role::Guard), None)
            .await;
        assert_eq!(
            (own["total"].as_i64(), own["items"][0]["id"].as_i64()),
            (Some(1), Some(1))
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/gates/1", Some(Role::Guard))
                .await,
            StatusCode::OK
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/gates/2", Some(Role::Guard))
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/gates/2/lanes", Some(Role::Guard))
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/gates", Some(Role::Approver))
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/gates", None).await,
            StatusCode::UNAUTHORIZED
        );

        let gate = json!({"name": "东门", "anti_passback": "timed:30", "offline_policy": "cached"});
        assert_eq!(
            app.call(
                Method::POST,
                "/api/v1/gates",
                Some(Role::Security),
                Some(gate.clone())
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        let (s, east) = app
            .call(Method::POST, "/api/v1/gates", Some(Role::Admin), Some(gate))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{east}");
        let id = east["id"].as_i64().unwrap();
        assert_eq!(
            (east["mode"].as_str(), east["enabled"].as_bool()),
            (Some("normal"), Some(true))
        );
        let (s, err) = app
            .call(
                Method::POST,
                "/api/v1/gates",
                Some(Role::Admin),
                Some(json!({"name": "", "anti_passback": "timed:0", "offline_policy": "panic"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = err["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["name", "anti_passback", "offline_policy"]);
        let (s, err) = app
            .call(
                Method::PUT,
                &format!("/api/v1/gates/{id}"),
                Some(Role::Admin),
                Some(json!({"name": "东门", "mode": "locked_open"})),
            )
            .await;
        assert_eq!(
            (s, err["fields"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("mode")),
            "the mode changes only through /mode"
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM gates").await, 3);

        // Lanes.
        let lane = json!({"lane_key": "entry-1", "name": "入口一", "direction": "entry", "settings": {"reader": "tcp://10.0.0.5"}});
        let (s, l) = app
            .call(
                Method::POST,
                &format!("/api/v1/gates/{id}/lanes"),
                Some(Role::Admin),
                Some(lane.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{l}");
        let (s, dup) = app
            .call(
                Method::POST,
                &format!("/api/v1/gates/{id}/lanes"),
                Some(Role::Admin),
                Some(lane),
            )
            .await;
        assert_eq!(
            (s, dup["code"].as_str()),
            (StatusCode::CONFLICT, Some("conflict"))
        );
        let (s, err) = app.call(Method::POST, &format!("/api/v1/gates/{id}/lanes"), Some(Role::Admin),
            Some(json!({"lane_key": "Entry 1", "direction": "sideways", "mode": "off", "settings": [1]}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = err["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["lane_key", "direction", "mode", "settings"]);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM lanes").await, 1);
        let lane_id = l["id"].as_i64().unwrap();
        let (s, l2) = app.call(Method::PUT, &format!("/api/v1/gates/{id}/lanes/{lane_id}"), Some(Role::Admin),
            Some(json!({"lane_key": "entry-1", "direction": "two_way", "mode": "manual_only_exit"}))).await;
        assert_eq!(
            (s, l2["mode"].as_str()),
            (StatusCode::OK, Some("manual_only_exit"))
        );
        assert_eq!(
            app.status(
                Method::GET,
                &format!("/api/v1/gates/1/lanes/{lane_id}"),
                Some(Role::Admin)
            )
            .await,
            StatusCode::NOT_FOUND,
            "a lane of another gate"
        );
        let (_, lanes) = app
            .call(
                Method::GET,
                &format!("/api/v1/gates/{id}/lanes"),
                Some(Role::Viewer),
                None,
            )
            .await;
        assert_eq!(lanes.as_array().unwrap().len(), 1);

        // Mode: admin and security, with a reason, audited as set_mode.
        assert_eq!(
            app.call(
                Method::POST,
                "/api/v1/gates/1/mode",
                Some(Role::Guard),
                Some(json!({"mode": "locked_open", "reason": "fire"}))
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        let (s, err) = app
            .call(
                Method::POST,
                "/api/v1/gates/1/mode",
                Some(Role::Security),
                Some(json!({"mode": "emergency"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["fields"].as_array().unwrap().len(), 2);
        let (s, g) = app
            .call(
                Method::POST,
                "/api/v1/gates/1/mode",
                Some(Role::Security),
                Some(json!({"mode": "locked_closed", "reason": "校内突发事件"})),
            )
            .await;
        assert_eq!(
            (s, g["mode"].as_str()),
            (StatusCode::OK, Some("locked_closed"))
        );
        let (_, log) = app
            .call(
                Method::GET,
                "/api/v1/audit?action=set_mode&operator=SECURITY",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(log["total"], 1);
        assert_eq!(log["items"][0]["after"]["reason"], "校内突发事件");

        // Delete: lanes go with the gate; a gate a guard is bound to stays.
        assert_eq!(
            app.status(
                Method::DELETE,
                &format!("/api/v1/gates/{id}"),
                Some(Role::Admin)
            )
            .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM lanes").await, 0);
        assert_eq!(
            app.status(Method::DELETE, "/api/v1/gates/1", Some(Role::Admin))
                .await,
            StatusCode::CONFLICT
        );
    }
}

#[tokio::test]
async fn gates_and_lanes_take_an_english_name_that_only_admins_set_and_the_gates_never_sync() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let (s, lane) = app
            .call(
                Method::POST,
                "/api/v1/gates/1/lanes",
                Some(Role::Admin),
                Some(json!({"lane_key": "entry", "name": "入口", "name_en": "In", "direction": "entry"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{lane}");
        assert_eq!(lane["name_en"], "In");
        let lane_id = lane["id"].as_i64().unwrap();
        let head = gatehouse::central::repo::sync::change_head(&app.db)
            .await
            .unwrap();
        let names = json!({"name": "北门", "name_en": "North Gate"});
        assert_eq!(
            app.call(
                Method::PUT,
                "/api/v1/gates/1/names",
                Some(Role::Security),
                Some(names.clone())
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        let (s, gate) = app
            .call(
                Method::PUT,
                "/api/v1/gates/1/names",
                Some(Role::Admin),
                Some(names),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{gate}");
        assert_eq!(
            (gate["name"].as_str(), gate["name_en"].as_str()),
            (Some("北门"), Some("North Gate"))
        );
        let (s, renamed) = app
            .call(
                Method::PUT,
                &format!("/api/v1/gates/1/lanes/{lane_id}/names"),
                Some(Role::Admin),
                Some(json!({"name": "东侧入口", "name_en": "East entry"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{renamed}");
        assert_eq!(
            renamed["settings"], lane["settings"],
            "nothing but the names changes"
        );
        // Bad names: a gate without a Chinese name, an English name too long — in words.
        let (s, err) = app
            .call(
                Method::PUT,
                "/api/v1/gates/1/names",
                Some(Role::Admin),
                Some(json!({"name": " ", "name_en": "x".repeat(101)})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = err["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["name", "name_en"]);
        // Audited as `rename` with both names; the gates' change log is untouched.
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'rename'"
            )
            .await,
            2
        );
        assert_eq!(
            gatehouse::central::repo::sync::change_head(&app.db)
                .await
                .unwrap(),
            head,
            "renaming writes nothing the gates sync"
        );
        let g = gates::get(&app.db, 1).await.unwrap();
        assert_eq!(g.name_in(gatehouse::i18n::Lang::En), "North Gate");
        assert_eq!(g.name_in(gatehouse::i18n::Lang::Zh), "北门");
        let l = gates::get_lane(&app.db, 1, lane_id).await.unwrap();
        assert_eq!(l.name_in(gatehouse::i18n::Lang::En), "East entry");
    }
}
