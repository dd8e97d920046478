//! The central lists — blacklist and vehicle locks — against SQLite and PostgreSQL: the
//! repositories first, then the API. The fixtures here serve the gates and events tests too.

use gatehouse::central::db::{Actor, Db, Page, now_ms};
use gatehouse::central::repo::audit::{self as audit_repo, AuditQuery};
use gatehouse::central::repo::blacklist::{self, BlacklistQuery, NewBlacklistEntry, Subject};
use gatehouse::central::repo::locks::{self, LockQuery, NewVehicleLock};
use gatehouse::domain::{AlarmLevel, Epc, Plate, PlateColour};

pub(crate) fn officer() -> Actor {
    Actor {
        operator_id: None,
        name: "officer".into(),
    }
}

pub(crate) async fn person(db: &Db, name: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(
        "INSERT INTO persons (name, category, created_ms, updated_ms) VALUES ($1, 'staff', 0, 0) \
         RETURNING id",
    )
    .bind(name)
    .fetch_one(db.pool())
    .await
    .unwrap()
    .try_get("id")
    .unwrap()
}

pub(crate) fn plate_entry(plate: &str, from_ms: i64, until_ms: Option<i64>) -> NewBlacklistEntry {
    NewBlacklistEntry {
        subject: Subject::Plate {
            plate: Plate::parse(plate).unwrap(),
            colour: Some(PlateColour::Blue),
        },
        reason: "stolen".into(),
        alarm_level: AlarmLevel::Urgent,
        valid_from_ms: from_ms,
        valid_until_ms: until_ms,
    }
}

#[tokio::test]
async fn a_blacklist_entry_is_stored_normalised_searched_lifted_and_audited_in_one_transaction() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let now = now_ms();
        let e = blacklist::create(db, &officer(), plate_entry("京a·12345", now - 1000, None))
            .await
            .unwrap();
        assert_eq!(e.subject, "京A12345");
        assert_eq!(e.subject_kind, "plate");
        assert_eq!(e.plate_colour.as_deref(), Some("blue"));
        assert_eq!(e.alarm_level, "urgent");
        assert!(e.active);
        assert_eq!(blacklist::get(db, e.id).await.unwrap(), e);

        let tag = blacklist::create(
            db,
            &officer(),
            NewBlacklistEntry {
                subject: Subject::Tag(Epc::from_hex("e2003098881900722140369e").unwrap()),
                reason: "lost tag".into(),
                alarm_level: AlarmLevel::Silent,
                valid_from_ms: now + 3_600_000,
                valid_until_ms: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(tag.subject, "E2003098881900722140369E");
        assert!(
            !tag.active,
            "an entry that starts in an hour is not in force yet"
        );

        // Search: partial plate, kind, active-at.
        let q = BlacklistQuery {
            subject: Some(gatehouse::domain::plate::normalise_fragment("a１２")),
            ..Default::default()
        };
        let found = blacklist::search(db, &q, Page::default()).await.unwrap();
        assert_eq!((found.total, found.items[0].id), (1, e.id));
        let q = BlacklistQuery {
            kind: Some("tag".into()),
            ..Default::default()
        };
        assert_eq!(
            blacklist::search(db, &q, Page::default())
                .await
                .unwrap()
                .items,
            vec![tag.clone()]
        );
        let q = BlacklistQuery {
            active_at_ms: Some(now),
            ..Default::default()
        };
        let active = blacklist::search(db, &q, Page::default()).await.unwrap();
        assert_eq!(
            active.items.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![e.id]
        );

        // Lift: ends now, audited; a second lift changes nothing.
        let lifted = match blacklist::lift(db, &officer(), e.id).await.unwrap() {
            blacklist::Lifted::Lifted(row) => row,
            other => panic!("{other:?}"),
        };
        assert!(!lifted.active);
        assert!(lifted.valid_until.unwrap().timestamp_millis() <= now_ms());
        assert!(matches!(
            blacklist::lift(db, &officer(), e.id).await.unwrap(),
            blacklist::Lifted::AlreadyEnded(_)
        ));
        // A future entry lifted ends at its start: it never comes into force.
        let lifted_tag = match blacklist::lift(db, &officer(), tag.id).await.unwrap() {
            blacklist::Lifted::Lifted(row) => row,
            other => panic!("{other:?}"),
        };
        assert_eq!(lifted_tag.valid_until, Some(lifted_tag.valid_from));

        let log = audit_repo::search(
            db,
            &AuditQuery {
                entity: Some("blacklist".into()),
                entity_id: Some(e.id.to_string()),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
        let actions: Vec<&str> = log.items.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, vec!["lift", "create"], "newest first");
        assert_eq!(log.items[0].operator_name, "officer");
        assert_eq!(log.items[0].before.as_ref().unwrap()["active"], true);
        assert_eq!(log.items[0].after.as_ref().unwrap()["active"], false);
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM change_log WHERE entity = 'blacklist'"
            )
            .await,
            4
        );

        blacklist::delete(db, &officer(), e.id).await.unwrap();
        assert!(matches!(
            blacklist::get(db, e.id).await,
            Err(gatehouse::central::db::RepoError::NotFound)
        ));
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM change_log WHERE entity = 'blacklist' AND op = 'delete'"
            )
            .await,
            1
        );
    }
}

#[tokio::test]
async fn a_blacklisted_person_must_exist_and_a_refused_entry_leaves_nothing_behind() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let entry = |id| NewBlacklistEntry {
            subject: Subject::Person(id),
            reason: "high-risk person".into(),
            alarm_level: AlarmLevel::Guard,
            valid_from_ms: 0,
            valid_until_ms: None,
        };
        let err = blacklist::create(db, &officer(), entry(4242))
            .await
            .unwrap_err();
        assert!(
            matches!(err, gatehouse::central::db::RepoError::Reference(_)),
            "{err:?}"
        );
        assert_eq!(count(db, "SELECT COUNT(*) FROM blacklist").await, 0);
        assert_eq!(count(db, "SELECT COUNT(*) FROM audit_log").await, 0);
        assert_eq!(count(db, "SELECT COUNT(*) FROM change_log").await, 0);

        let pid = person(db, "李四").await;
        let e = blacklist::create(db, &officer(), entry(pid)).await.unwrap();
        assert_eq!(e.subject, pid.to_string());
    }
}

#[tokio::test]
async fn a_vehicle_lock_is_stored_updated_searched_by_partial_plate_and_lifted() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let now = now_ms();
        let new = NewVehicleLock {
            plate: Plate::parse("沪B·D12345").unwrap(),
            colour: None,
            reason: "unpaid fines".into(),
            valid_from_ms: now - 10,
            valid_until_ms: Some(now + 86_400_000),
        };
        let lock = locks::create(db, &officer(), new.clone()).await.unwrap();
        assert_eq!(lock.plate, "沪BD12345");
        assert_eq!(lock.plate_colour, None);
        assert!(lock.active);

        let updated = locks::update(
            db,
            &officer(),
            lock.id,
            NewVehicleLock {
                colour: Some(PlateColour::Green),
                reason: "court order".into(),
                ..new
            },
        )
        .await
        .unwrap();
        assert_eq!(updated.plate_colour.as_deref(), Some("green"));
        assert_eq!(updated.reason, "court order");

        let q = LockQuery {
            plate: Some("bd12".into()),
            active_at_ms: Some(now),
        };
        assert_eq!(
            locks::search(db, &q, Page::default()).await.unwrap().items,
            vec![updated]
        );
        let q = LockQuery {
            active_at_ms: Some(now + 2 * 86_400_000),
            ..Default::default()
        };
        assert_eq!(
            locks::search(db, &q, Page::default()).await.unwrap().total,
            0
        );

        assert!(matches!(
            locks::lift(db, &officer(), lock.id).await.unwrap(),
            locks::Lifted::Lifted(l) if !l.active
        ));
        let actions = audit_repo::search(
            db,
            &AuditQuery {
                entity: Some("vehicle_lock".into()),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.action)
        .collect::<Vec<_>>();
        assert_eq!(actions, vec!["lift", "update", "create"]);
    }
}

// ---------------------------------------------------------------------------------------------
// The API.

use crate::harness::{TestApp, count};
use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::json;

pub(crate) const READ_ROLES: [Role; 4] = [Role::Admin, Role::Security, Role::Guard, Role::Viewer];

#[tokio::test]
async fn the_blacklist_api_stores_lifts_searches_and_names_every_bad_field_in_both_languages() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let body = json!({"subject_kind": "plate", "subject": "京ａ·12345", "plate_colour": "blue",
            "reason": "被盗车辆", "alarm_level": "urgent"});
        assert_eq!(
            app.call(Method::POST, "/api/v1/blacklist", None, Some(body.clone()))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        for role in [Role::Guard, Role::Viewer, Role::Approver] {
            let (s, _) = app
                .call(
                    Method::POST,
                    "/api/v1/blacklist",
                    Some(role),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{role:?}");
        }
        let (s, e) = app
            .call(
                Method::POST,
                "/api/v1/blacklist",
                Some(Role::Security),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        assert_eq!(
            (e["subject"].as_str(), e["active"].as_bool()),
            (Some("京A12345"), Some(true))
        );
        let id = e["id"].as_i64().unwrap();
        for role in READ_ROLES {
            let (s, page) = app
                .call(
                    Method::GET,
                    "/api/v1/blacklist?subject=a１2&kind=plate",
                    Some(role),
                    None,
                )
                .await;
            assert_eq!(
                (s, page["total"].as_i64()),
                (StatusCode::OK, Some(1)),
                "{role:?}"
            );
        }
        assert_eq!(
            app.status(Method::GET, "/api/v1/blacklist", Some(Role::Approver))
                .await,
            StatusCode::FORBIDDEN
        );

        // Every wrong field at once, nothing stored.
        let before = count(&app.db, "SELECT COUNT(*) FROM blacklist").await;
        let bad = json!({"subject_kind": "plate", "subject": "京AI2345", "plate_colour": "pink",
            "alarm_level": "loud", "valid_from": "2026-03-01T08:00:00+08:00",
            "valid_until": "2026-02-01T08:00:00+08:00"});
        let (s, err) = app
            .call_lang(
                Method::POST,
                "/api/v1/blacklist",
                Some(Role::Admin),
                Some(bad.clone()),
                "en",
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<(&str, &str)> = err["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("plate_colour", "invalid_colour"),
                ("subject", "plate_forbidden_letter"),
                ("reason", "required"),
                ("alarm_level", "invalid_alarm_level"),
                ("valid_until", "reversed_window")
            ]
        );
        assert!(
            err["fields"][1]["message"]
                .as_str()
                .unwrap()
                .contains("never used on plates"),
            "{err}"
        );
        let (_, zh) = app
            .call(
                Method::POST,
                "/api/v1/blacklist",
                Some(Role::Admin),
                Some(bad),
            )
            .await;
        assert!(
            zh["fields"][1]["message"]
                .as_str()
                .unwrap()
                .contains("不用于车牌"),
            "{zh}"
        );
        for (body, field, code) in [
            (
                json!({"subject_kind": "person", "subject": "999", "reason": "x"}),
                "subject",
                "unknown_person",
            ),
            (
                json!({"subject_kind": "tag", "subject": "XYZ", "reason": "x"}),
                "subject",
                "invalid_epc",
            ),
            (
                json!({"subject_kind": "tag", "subject": "E200", "plate_colour": "blue", "reason": "x"}),
                "plate_colour",
                "not_allowed",
            ),
            (
                json!({"subject_kind": "car", "subject": "x", "reason": "x"}),
                "subject_kind",
                "invalid_kind",
            ),
            (
                json!({"subject_kind": "plate", "subject": "京A12345", "reason": "x", "valid_from": "tomorrow"}),
                "valid_from",
                "invalid_time",
            ),
            (
                json!({"subject_kind": "plate", "subject": "京A12345", "reason": "x", "colour": "blue"}),
                "colour",
                "unknown_field",
            ),
        ] {
            let (s, err) = app
                .call(
                    Method::POST,
                    "/api/v1/blacklist",
                    Some(Role::Admin),
                    Some(body),
                )
                .await;
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
            assert_eq!(
                (
                    err["fields"][0]["field"].as_str(),
                    err["fields"][0]["code"].as_str()
                ),
                (Some(field), Some(code)),
                "{err}"
            );
        }
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM blacklist").await,
            before
        );

        // Replace, lift (twice: 409), delete.
        let (s, upd) = app.call(Method::PUT, &format!("/api/v1/blacklist/{id}"), Some(Role::Admin),
            Some(json!({"subject_kind": "tag", "subject": "e2003098881900722140369e", "reason": "丢失的标签"}))).await;
        assert_eq!(
            (s, upd["subject"].as_str()),
            (StatusCode::OK, Some("E2003098881900722140369E"))
        );
        let (s, lifted) = app
            .call(
                Method::POST,
                &format!("/api/v1/blacklist/{id}/lift"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(
            (s, lifted["active"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        let (s, again) = app
            .call_lang(
                Method::POST,
                &format!("/api/v1/blacklist/{id}/lift"),
                Some(Role::Security),
                None,
                "en",
            )
            .await;
        assert_eq!(
            (s, again["message"].as_str()),
            (
                StatusCode::CONFLICT,
                Some("This blacklist entry has already ended")
            )
        );
        let (s, page) = app
            .call(
                Method::GET,
                "/api/v1/blacklist?active_at=2030-01-01T00:00:00Z",
                Some(Role::Viewer),
                None,
            )
            .await;
        assert_eq!((s, page["total"].as_i64()), (StatusCode::OK, Some(0)));
        assert_eq!(
            app.status(
                Method::DELETE,
                &format!("/api/v1/blacklist/{id}"),
                Some(Role::Guard)
            )
            .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(
                Method::DELETE,
                &format!("/api/v1/blacklist/{id}"),
                Some(Role::Admin)
            )
            .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.status(
                Method::GET,
                &format!("/api/v1/blacklist/{id}"),
                Some(Role::Admin)
            )
            .await,
            StatusCode::NOT_FOUND
        );
        let (_, log) = app
            .call(
                Method::GET,
                &format!("/api/v1/audit?entity=blacklist&entity_id={id}"),
                Some(Role::Security),
                None,
            )
            .await;
        let actions: Vec<&str> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, vec!["delete", "lift", "update", "create"]);
        assert_eq!(log["items"][0]["operator_name"], "admin");
    }
}

#[tokio::test]
async fn the_lock_api_locks_a_vehicle_lifts_it_and_refuses_a_bad_plate_without_storing_it() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let (s, lock) = app.call(Method::POST, "/api/v1/locks", Some(Role::Admin),
            Some(json!({"plate": "沪b d12345", "reason": "欠费", "valid_until": "2099-01-01T00:00:00Z"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{lock}");
        assert_eq!(lock["plate"], "沪BD12345");
        let id = lock["id"].as_i64().unwrap();
        assert_eq!(
            app.call(
                Method::POST,
                "/api/v1/locks",
                Some(Role::Viewer),
                Some(json!({}))
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        for role in READ_ROLES {
            let (s, page) = app
                .call(Method::GET, "/api/v1/locks?plate=bd1", Some(role), None)
                .await;
            assert_eq!(
                (s, page["total"].as_i64()),
                (StatusCode::OK, Some(1)),
                "{role:?}"
            );
        }
        let (s, err) = app
            .call(
                Method::POST,
                "/api/v1/locks",
                Some(Role::Security),
                Some(json!({"plate": "京A1234", "plate_colour": "green", "reason": " "})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = err["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["plate", "reason"]);
        assert_eq!(err["fields"][0]["code"], "plate_wrong_length");
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM vehicle_locks").await,
            1
        );
        let (s, lifted) = app
            .call(
                Method::POST,
                &format!("/api/v1/locks/{id}/lift"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(
            (s, lifted["active"].as_bool()),
            (StatusCode::OK, Some(false))
        );
        let (s, _) = app
            .call(
                Method::PUT,
                &format!("/api/v1/locks/{id}"),
                Some(Role::Security),
                Some(json!({"plate": "沪BD12345", "plate_colour": "green", "reason": "复核"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            app.status(Method::GET, "/api/v1/locks/999", Some(Role::Admin))
                .await,
            StatusCode::NOT_FOUND
        );
    }
}
