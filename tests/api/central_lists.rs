//! The central lists — blacklist, vehicle locks, gates and lanes, passage events and the audit
//! log — against SQLite and PostgreSQL: the repositories first, then the API.

use chrono::{TimeZone, Utc};
use gatehouse::central::db::{Actor, Db, Page, now_ms};
use gatehouse::central::repo::audit::{self as audit_repo, AuditQuery};
use gatehouse::central::repo::blacklist::{self, BlacklistQuery, NewBlacklistEntry, Subject};
use gatehouse::central::repo::events::{self, EventQuery};
use gatehouse::central::repo::gates::{self, GateQuery, NewGate, NewLane};
use gatehouse::central::repo::locks::{self, LockQuery, NewVehicleLock};
use gatehouse::domain::{AlarmLevel, Epc, Plate, PlateColour};
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};

fn officer() -> Actor {
    Actor {
        operator_id: None,
        name: "officer".into(),
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

async fn person(db: &Db, name: &str) -> i64 {
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

fn plate_entry(plate: &str, from_ms: i64, until_ms: Option<i64>) -> NewBlacklistEntry {
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

fn decision(seq: u64, at_ms: i64, plate: &str, granted: bool) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc.timestamp_millis_opt(at_ms).unwrap(),
        lane: "entry".into(),
        body: EventBody::Decision(DecisionRecord {
            direction: "entry".into(),
            credential: "tag".into(),
            epc: Some("E2003098881900722140369E".into()),
            tid: None,
            antenna: Some(1),
            rssi_dbm: Some(-52),
            plate: Some(plate.into()),
            granted,
            reason: if granted { "granted" } else { "denied_revoked" }.into(),
            flags: vec![],
            permit_id: Some(7),
            vehicle_id: Some(9),
            holder: Some("张三".into()),
            category: Some("staff".into()),
            data_version: 3,
            decide_ns: 1200,
        }),
    }
}

fn passage(seq: u64, at_ms: i64, plate: &str) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc.timestamp_millis_opt(at_ms).unwrap(),
        lane: "exit".into(),
        body: EventBody::Passage {
            direction: "exit".into(),
            plate: Some(plate.into()),
            vehicle_id: Some(9),
            permit_id: Some(7),
        },
    }
}

#[tokio::test]
async fn a_blacklist_entry_is_stored_normalised_searched_lifted_and_audited_in_one_transaction() {
    for t in crate::central_support::each_database().await {
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
            subject: Some(blacklist::normalise_fragment("a１２")),
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
    for t in crate::central_support::each_database().await {
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
    for t in crate::central_support::each_database().await {
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

#[tokio::test]
async fn gates_and_lanes_are_managed_and_a_mode_change_is_audited_as_set_mode_with_its_reason() {
    for t in crate::central_support::each_database().await {
        let db = &t.db;
        let north = gates::create(
            db,
            &officer(),
            NewGate {
                name: "北门".into(),
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

#[tokio::test]
async fn ingesting_a_gates_events_twice_stores_each_once_and_reports_the_contiguous_watermark() {
    for t in crate::central_support::each_database().await {
        let db = &t.db;
        let t0 = Utc::now().timestamp_millis() - 60_000;
        let batch: Vec<JournalEvent> = (1..=1200)
            .map(|seq| {
                if seq % 2 == 0 {
                    passage(seq, t0 + seq as i64, "京A·12345")
                } else {
                    decision(seq, t0 + seq as i64, "京a12345", seq % 3 != 0)
                }
            })
            .collect();
        let first = events::ingest(db, 1, &batch).await.unwrap();
        assert_eq!(
            (first.stored, first.duplicates, first.highest_contiguous),
            (1200, 0, 1200)
        );
        let again = events::ingest(db, 1, &batch[100..300]).await.unwrap();
        assert_eq!(
            (again.stored, again.duplicates, again.highest_contiguous),
            (0, 200, 1200)
        );
        assert_eq!(count(db, "SELECT COUNT(*) FROM passage_events").await, 1200);

        // A gap holds the watermark back until it is filled; repeats within one upload count once.
        let late = vec![
            decision(1202, t0, "京A12345", true),
            decision(1202, t0, "京A12345", true),
        ];
        let gap = events::ingest(db, 1, &late).await.unwrap();
        assert_eq!(
            (gap.stored, gap.duplicates, gap.highest_contiguous),
            (1, 1, 1200)
        );
        let fill = events::ingest(db, 1, &[passage(1201, t0, "京A12345")])
            .await
            .unwrap();
        assert_eq!(fill.highest_contiguous, 1202);
        assert_eq!(events::watermark(db, 1).await.unwrap(), 1202);
        // Another gate's numbering is its own.
        let other = events::ingest(db, 2, &batch[..10]).await.unwrap();
        assert_eq!((other.stored, other.highest_contiguous), (10, 10));
        assert_eq!(events::watermark(db, 2).await.unwrap(), 10);

        // Sequence number 0 cannot come from a journal: refused, nothing stored.
        assert!(
            events::ingest(db, 3, &[passage(0, t0, "京A12345")])
                .await
                .is_err()
        );
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM passage_events WHERE gate_id = 3").await,
            0
        );
    }
}

#[tokio::test]
async fn stored_events_keep_the_gates_time_and_are_searched_newest_first_by_their_copied_fields() {
    for t in crate::central_support::each_database().await {
        let db = &t.db;
        let t0 = Utc::now().timestamp_millis() - 3_600_000;
        let evs = vec![
            decision(1, t0, "京A12345", true),
            decision(2, t0 + 1000, "京A12345", false),
            passage(3, t0 + 2000, "京a·12345"),
            decision(4, t0 + 3000, "沪B99999", true),
        ];
        events::ingest(db, 1, &evs).await.unwrap();
        events::ingest(db, 2, &[decision(1, t0 + 2000, "京A12345", true)])
            .await
            .unwrap();

        let all = events::search(db, &EventQuery::default(), Page::default())
            .await
            .unwrap();
        let order: Vec<(i64, i64)> = all.items.iter().map(|e| (e.gate_id, e.seq)).collect();
        assert_eq!(
            order,
            vec![(1, 4), (2, 1), (1, 3), (1, 2), (1, 1)],
            "newest first, ties by gate"
        );
        let e = all
            .items
            .iter()
            .find(|e| (e.gate_id, e.seq) == (1, 2))
            .unwrap();
        assert_eq!(
            e.at.timestamp_millis(),
            t0 + 1000,
            "the gate's time is kept"
        );
        assert!(e.received_at > e.at);
        assert_eq!(e.plate.as_deref(), Some("京A12345"));
        assert_eq!(
            (e.granted, e.reason.as_deref()),
            (Some(false), Some("denied_revoked"))
        );
        assert_eq!((e.vehicle_id, e.permit_id), (Some(9), Some(7)));
        assert_eq!(e.body["kind"], "decision");
        assert_eq!(e.body["holder"], "张三");
        let p = all.items.iter().find(|e| e.kind == "passage").unwrap();
        assert_eq!(
            (p.plate.as_deref(), p.direction.as_deref(), p.granted),
            (Some("京A12345"), Some("exit"), None)
        );

        let q = |f: &dyn Fn(&mut EventQuery)| {
            let mut q = EventQuery::default();
            f(&mut q);
            q
        };
        let search = |q: EventQuery| async move {
            events::search(db, &q, Page::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|e| (e.gate_id, e.seq))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            search(q(&|q| q.plate = Some("京A12345".into())))
                .await
                .len(),
            4
        );
        assert_eq!(search(q(&|q| q.gate_id = Some(2))).await, vec![(2, 1)]);
        assert_eq!(search(q(&|q| q.only_gates = Some(vec![]))).await, vec![]);
        assert_eq!(search(q(&|q| q.granted = Some(false))).await, vec![(1, 2)]);
        assert_eq!(
            search(q(&|q| q.kind = Some("passage".into()))).await,
            vec![(1, 3)]
        );
        assert_eq!(
            search(q(&|q| q.lane = Some("exit".into()))).await,
            vec![(1, 3)]
        );
        assert_eq!(
            search(q(&|q| q.reason = Some("denied_revoked".into()))).await,
            vec![(1, 2)]
        );
        assert_eq!(
            search(q(&|q| {
                q.from_ms = Some(t0 + 1000);
                q.until_ms = Some(t0 + 3000);
            }))
            .await,
            vec![(2, 1), (1, 3), (1, 2)]
        );
        let page2 = events::search(
            db,
            &EventQuery::default(),
            Page {
                limit: 2,
                offset: 2,
            },
        )
        .await
        .unwrap();
        assert_eq!(page2.total, 5);
        assert_eq!(
            page2
                .items
                .iter()
                .map(|e| (e.gate_id, e.seq))
                .collect::<Vec<_>>(),
            vec![(1, 3), (1, 2)]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The API.

use crate::central_support::TestApp;
use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::json;

const READ_ROLES: [Role; 4] = [Role::Admin, Role::Security, Role::Guard, Role::Viewer];

#[tokio::test]
async fn the_blacklist_api_stores_lifts_searches_and_names_every_bad_field_in_both_languages() {
    for t in crate::central_support::each_database().await {
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
            app.call(Method::GET, "/api/v1/blacklist", Some(Role::Approver), None)
                .await
                .0,
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
                ("subject", "invalid_plate"),
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
            app.call(
                Method::DELETE,
                &format!("/api/v1/blacklist/{id}"),
                Some(Role::Guard),
                None
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(
                Method::DELETE,
                &format!("/api/v1/blacklist/{id}"),
                Some(Role::Admin),
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.call(
                Method::GET,
                &format!("/api/v1/blacklist/{id}"),
                Some(Role::Admin),
                None
            )
            .await
            .0,
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
    for t in crate::central_support::each_database().await {
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
        assert_eq!(err["fields"][0]["code"], "invalid_plate");
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
            app.call(Method::GET, "/api/v1/locks/999", Some(Role::Admin), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn gates_are_written_by_admins_moded_by_security_and_guards_see_only_their_own() {
    for t in crate::central_support::each_database().await {
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
            app.call(Method::GET, "/api/v1/gates/1", Some(Role::Guard), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            app.call(Method::GET, "/api/v1/gates/2", Some(Role::Guard), None)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(
                Method::GET,
                "/api/v1/gates/2/lanes",
                Some(Role::Guard),
                None
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Method::GET, "/api/v1/gates", Some(Role::Approver), None)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Method::GET, "/api/v1/gates", None, None).await.0,
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
            app.call(
                Method::GET,
                &format!("/api/v1/gates/1/lanes/{lane_id}"),
                Some(Role::Admin),
                None
            )
            .await
            .0,
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
            app.call(
                Method::DELETE,
                &format!("/api/v1/gates/{id}"),
                Some(Role::Admin),
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM lanes").await, 0);
        assert_eq!(
            app.call(Method::DELETE, "/api/v1/gates/1", Some(Role::Admin), None)
                .await
                .0,
            StatusCode::CONFLICT
        );
    }
}

#[tokio::test]
async fn the_events_api_filters_newest_first_and_keeps_guards_to_their_own_gates() {
    for t in crate::central_support::each_database().await {
        let app = TestApp::spawn(t).await;
        let t0 = Utc::now().timestamp_millis() - 600_000;
        events::ingest(
            &app.db,
            1,
            &[
                decision(1, t0, "京A12345", true),
                passage(2, t0 + 10, "京A12345"),
                decision(3, t0 + 20, "沪B99999", false),
            ],
        )
        .await
        .unwrap();
        events::ingest(&app.db, 2, &[decision(1, t0 + 5, "京A12345", true)])
            .await
            .unwrap();

        let (s, all) = app
            .call(Method::GET, "/api/v1/events", Some(Role::Viewer), None)
            .await;
        assert_eq!((s, all["total"].as_i64()), (StatusCode::OK, Some(4)));
        assert_eq!(all["items"][0]["seq"], 3);
        let (_, own) = app
            .call(Method::GET, "/api/v1/events", Some(Role::Guard), None)
            .await;
        assert_eq!(own["total"], 3, "a guard sees gate 1 only");
        assert_eq!(
            app.call(
                Method::GET,
                "/api/v1/events?gate_id=2",
                Some(Role::Guard),
                None
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Method::GET, "/api/v1/events", Some(Role::Approver), None)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Method::GET, "/api/v1/events", None, None).await.0,
            StatusCode::UNAUTHORIZED
        );

        let (_, plate) = app
            .call(
                Method::GET,
                "/api/v1/events?plate=%E4%BA%ACa%C2%B712345&kind=decision",
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(plate["total"], 2);
        let (_, denied) = app
            .call(
                Method::GET,
                "/api/v1/events?granted=false&reason=denied_revoked&gate_id=1&lane=entry",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(
            (
                denied["total"].as_i64(),
                denied["items"][0]["plate"].as_str()
            ),
            (Some(1), Some("沪B99999"))
        );
        let (s, err) = app
            .call_lang(
                Method::GET,
                "/api/v1/events?plate=%E4%BA%ACI&from=yesterday",
                Some(Role::Admin),
                None,
                "en",
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> = err["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec!["plate", "from"]);
        assert_eq!(
            app.call(
                Method::GET,
                "/api/v1/events?per_page=501",
                Some(Role::Admin),
                None
            )
            .await
            .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}

#[tokio::test]
async fn the_audit_log_is_read_by_admin_and_security_only_and_no_route_changes_it() {
    for t in crate::central_support::each_database().await {
        let app = TestApp::spawn(t).await;
        let (s, _) = app
            .call(
                Method::POST,
                "/api/v1/locks",
                Some(Role::Admin),
                Some(json!({"plate": "京A12345", "reason": "测试"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        for role in [Role::Guard, Role::Viewer, Role::Approver] {
            assert_eq!(
                app.call(Method::GET, "/api/v1/audit", Some(role), None)
                    .await
                    .0,
                StatusCode::FORBIDDEN,
                "{role:?}"
            );
        }
        let (s, log) = app
            .call(
                Method::GET,
                "/api/v1/audit?entity=vehicle_lock&from=2000-01-01T00:00:00Z",
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!((s, log["total"].as_i64()), (StatusCode::OK, Some(1)));
        let id = log["items"][0]["id"].as_i64().unwrap();
        let snapshot = |db: Db| async move {
            use sqlx::Row;
            sqlx::query("SELECT id, at_ms, operator_name, action, entity, entity_id, after_json FROM audit_log ORDER BY id")
                .fetch_all(db.pool()).await.unwrap().iter()
                .map(|r| format!("{}|{}|{}|{}|{}|{}|{:?}", r.get::<i64, _>(0), r.get::<i64, _>(1), r.get::<String, _>(2),
                    r.get::<String, _>(3), r.get::<String, _>(4), r.get::<String, _>(5), r.get::<Option<String>, _>(6)))
                .collect::<Vec<_>>()
        };
        let before = snapshot(app.db.clone()).await;
        for (method, path) in [
            (Method::PUT, format!("/api/v1/audit/{id}")),
            (Method::DELETE, format!("/api/v1/audit/{id}")),
            (Method::PATCH, format!("/api/v1/audit/{id}")),
            (Method::POST, "/api/v1/audit".to_string()),
            (Method::DELETE, "/api/v1/audit".to_string()),
            (Method::PUT, "/api/v1/audit".to_string()),
        ] {
            let (s, _) = app
                .call(
                    method.clone(),
                    &path,
                    Some(Role::Admin),
                    Some(json!({"action": "nothing"})),
                )
                .await;
            assert!(
                s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {s}"
            );
        }
        assert_eq!(snapshot(app.db.clone()).await, before);
    }
}
