//! Passage events and the audit log on the central server, against SQLite and PostgreSQL: the
//! repository (ingesting a gate's events once each with the contiguous watermark, searching by
//! their copied fields), then the API (newest first, guards kept to their own gates; the audit
//! log read by admin and security only).

use crate::harness::TestApp;
use axum::http::{Method, StatusCode};
use chrono::{TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Db, Page};
use gatehouse::central::repo::events::{self, EventQuery};
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::{DecisionRecord, EventBody, JournalEvent};
use serde_json::json;

use crate::harness::count;

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
            reason: if granted {
                ReasonCode::Granted
            } else {
                ReasonCode::DeniedRevoked
            },
            flags: vec![],
            permit_id: Some(7),
            vehicle_id: Some(9),
            holder: Some("张三".into()),
            category: Some("staff".into()),
            data_version: 3,
            decide_ns: 1200,
            camera: None,
            pass: None,
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

// ---------------------------------------------------------------------------------------------
// The repository.

#[tokio::test]
async fn ingesting_a_gates_events_twice_stores_each_once_and_reports_the_contiguous_watermark() {
    for t in crate::harness::each_database().await {
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
        let first = events::ingest(db, Shanghai, 1, &batch).await.unwrap();
        assert_eq!(
            (first.stored, first.duplicates, first.highest_contiguous),
            (1200, 0, 1200)
        );
        let again = events::ingest(db, Shanghai, 1, &batch[100..300])
            .await
            .unwrap();
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
        let gap = events::ingest(db, Shanghai, 1, &late).await.unwrap();
        assert_eq!(
            (gap.stored, gap.duplicates, gap.highest_contiguous),
            (1, 1, 1200)
        );
        // Above the watermark too, an event sent again is a duplicate and another event under
        // its number a conflict, kept aside.
        let resent = events::ingest(db, Shanghai, 1, &late[..1]).await.unwrap();
        assert_eq!(
            (resent.stored, resent.duplicates, resent.conflicts),
            (0, 1, 0)
        );
        let rewound = events::ingest(db, Shanghai, 1, &[decision(1202, t0, "京B54321", false)])
            .await
            .unwrap();
        assert_eq!(
            (rewound.stored, rewound.conflicts, rewound.quarantined_seqs),
            (0, 1, vec![1202])
        );
        let fill = events::ingest(db, Shanghai, 1, &[passage(1201, t0, "京A12345")])
            .await
            .unwrap();
        assert_eq!(fill.highest_contiguous, 1202);
        assert_eq!(events::watermark(db, 1).await.unwrap(), 1202);
        // Another gate's numbering is its own.
        let other = events::ingest(db, Shanghai, 2, &batch[..10]).await.unwrap();
        assert_eq!((other.stored, other.highest_contiguous), (10, 10));
        assert_eq!(events::watermark(db, 2).await.unwrap(), 10);

        // Sequence number 0 cannot come from a journal: refused, nothing stored.
        assert!(
            events::ingest(db, Shanghai, 3, &[passage(0, t0, "京A12345")])
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
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let t0 = Utc::now().timestamp_millis() - 3_600_000;
        let evs = vec![
            decision(1, t0, "京A12345", true),
            decision(2, t0 + 1000, "京A12345", false),
            passage(3, t0 + 2000, "京a·12345"),
            decision(4, t0 + 3000, "沪B99999", true),
        ];
        events::ingest(db, Shanghai, 1, &evs).await.unwrap();
        events::ingest(db, Shanghai, 2, &[decision(1, t0 + 2000, "京A12345", true)])
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

#[tokio::test]
async fn the_events_api_filters_newest_first_and_keeps_guards_to_their_own_gates() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let t0 = Utc::now().timestamp_millis() - 600_000;
        events::ingest(
            &app.db,
            Shanghai,
            1,
            &[
                decision(1, t0, "京A12345", true),
                passage(2, t0 + 10, "京A12345"),
                decision(3, t0 + 20, "沪B99999", false),
            ],
        )
        .await
        .unwrap();
        events::ingest(
            &app.db,
            Shanghai,
            2,
            &[decision(1, t0 + 5, "京A12345", true)],
        )
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
            app.status(Method::GET, "/api/v1/events?gate_id=2", Some(Role::Guard))
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/events", Some(Role::Approver))
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.status(Method::GET, "/api/v1/events", None).await,
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
            app.status(
                Method::GET,
                "/api/v1/events?per_page=501",
                Some(Role::Admin)
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}

#[tokio::test]
async fn the_audit_log_is_read_by_admin_and_security_only_and_no_route_changes_it() {
    for t in crate::harness::each_database().await {
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
                app.status(Method::GET, "/api/v1/audit", Some(role)).await,
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
