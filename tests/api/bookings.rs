//! Visitor bookings (访客预约) on the central server: the repository's steps and searches, then
//! the API (who books for which department, validation, edits, the OpenAPI document), each
//! behaviour on SQLite and (with `DATABASE_URL`) PostgreSQL.

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count};
use axum::http::{Method, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Page, RepoError};
use gatehouse::central::repo::bookings::{
    self, BookingQuery, BookingStatus, NewBooking, Transition, TransitionError,
};
use serde_json::{Value, json};

use crate::permits::{ALL_ROLES, actor, at, audit_actions, change_ops, fields, person};

// ---------------------------------------------------------------------------------------------
// Visitor bookings: repository.

fn new_booking(host_id: i64, plate: &str) -> NewBooking {
    let from = Utc::now() + Duration::days(1);
    let from = Utc
        .timestamp_opt(from.timestamp() / 60 * 60, 0)
        .single()
        .unwrap();
    NewBooking {
        host_id,
        department: "计算机学院".into(),
        purpose: "讲座".into(),
        plate: plate.into(),
        plate_colour: Some("blue".into()),
        driver_name: "周九".into(),
        driver_phone: "13812345678".into(),
        slot_from: from,
        slot_until: from + Duration::hours(2),
        walk_in: false,
    }
}

#[tokio::test]
async fn a_booking_goes_from_pending_through_approved_and_arrived_to_left_with_each_step_audited() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let host = person(db, "张三", "计算机学院").await;
        let b = bookings::create(db, &actor(), &new_booking(host, "京A12345"))
            .await
            .unwrap();
        assert_eq!(b.status, BookingStatus::Pending, "{:?}", t.kind);
        assert_eq!(b.host_name, "张三");
        let b2 = bookings::transition(db, &actor(), b.id, Transition::Approve)
            .await
            .unwrap();
        assert_eq!(b2.status, BookingStatus::Approved);
        let b3 = bookings::transition(db, &actor(), b.id, Transition::Arrive)
            .await
            .unwrap();
        assert_eq!(b3.status, BookingStatus::Arrived);
        assert!(b3.arrived_at.is_some());
        let b4 = bookings::transition(db, &actor(), b.id, Transition::Leave)
            .await
            .unwrap();
        assert_eq!(b4.status, BookingStatus::Left);
        assert!(b4.left_at.is_some());
        assert_eq!(bookings::get(db, b.id).await.unwrap(), b4);
        assert_eq!(
            audit_actions(db, "visitor_booking", b.id).await,
            ["create", "approve", "arrive", "leave"]
        );
        assert_eq!(change_ops(db, "visitor_booking", b.id).await.len(), 4);
    }
}

#[tokio::test]
async fn an_illegal_booking_step_names_the_current_status_and_changes_nothing() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let host = person(db, "张三", "计算机学院").await;
        let b = bookings::create(db, &actor(), &new_booking(host, "京A12345"))
            .await
            .unwrap();
        for step in [Transition::Arrive, Transition::Leave, Transition::NoShow] {
            assert!(matches!(
                bookings::transition(db, &actor(), b.id, step).await,
                Err(TransitionError::Illegal {
                    current: BookingStatus::Pending
                })
            ));
        }
        bookings::transition(db, &actor(), b.id, Transition::Reject)
            .await
            .unwrap();
        for step in [Transition::Approve, Transition::Cancel] {
            assert!(matches!(
                bookings::transition(db, &actor(), b.id, step).await,
                Err(TransitionError::Illegal {
                    current: BookingStatus::Rejected
                })
            ));
        }
        assert!(matches!(
            bookings::update(db, &actor(), b.id, &new_booking(host, "京B23456")).await,
            Err(TransitionError::Illegal {
                current: BookingStatus::Rejected
            })
        ));
        assert_eq!(bookings::get(db, b.id).await.unwrap().plate, "京A12345");
        assert_eq!(
            audit_actions(db, "visitor_booking", b.id).await,
            ["create", "reject"]
        );
        assert!(matches!(
            bookings::transition(db, &actor(), b.id + 1, Transition::Approve).await,
            Err(TransitionError::Repo(RepoError::NotFound))
        ));
    }
}

#[tokio::test]
async fn a_walk_in_is_stored_as_arrived_and_a_pending_booking_can_be_edited() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let host = person(db, "张三", "计算机学院").await;
        let mut walk_in = new_booking(host, "京A12345");
        walk_in.walk_in = true;
        let w = bookings::create(db, &actor(), &walk_in).await.unwrap();
        assert_eq!(w.status, BookingStatus::Arrived, "{:?}", t.kind);
        assert!(w.arrived_at.is_some());
        let b = bookings::create(db, &actor(), &new_booking(host, "京A12345"))
            .await
            .unwrap();
        let mut edit = new_booking(host, "京B23456");
        edit.plate_colour = None;
        let e = bookings::update(db, &actor(), b.id, &edit).await.unwrap();
        assert_eq!(
            (e.plate.as_str(), e.plate_colour.clone()),
            ("京B23456", None)
        );
        assert_eq!(
            audit_actions(db, "visitor_booking", b.id).await,
            ["create", "update"]
        );
    }
}

#[tokio::test]
async fn bookings_are_found_by_partial_plate_host_department_status_and_day() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let h1 = person(db, "张三", "计算机学院").await;
        let h2 = person(db, "李四", "Physics").await;
        let mut n1 = new_booking(h1, "京A12345");
        n1.slot_from = at(2030, 5, 1, 1, 0); // 09:00 in Shanghai
        n1.slot_until = at(2030, 5, 1, 3, 0);
        let mut n2 = new_booking(h2, "沪C34567");
        n2.department = "Physics".into();
        n2.slot_from = at(2030, 5, 1, 17, 0); // 2030-05-02 01:00 in Shanghai
        n2.slot_until = at(2030, 5, 1, 18, 0);
        let b1 = bookings::create(db, &actor(), &n1).await.unwrap();
        let b2 = bookings::create(db, &actor(), &n2).await.unwrap();
        bookings::transition(db, &actor(), b2.id, Transition::Approve)
            .await
            .unwrap();
        let ids = |q: BookingQuery| async move {
            let page = bookings::search(db, &q, Page::default()).await.unwrap();
            assert_eq!(page.total, page.items.len() as i64);
            page.items.iter().map(|b| b.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(BookingQuery::default()).await,
            [b1.id, b2.id],
            "{:?}",
            t.kind
        );
        let plate = |p: &str| BookingQuery {
            plate: Some(p.into()),
            ..BookingQuery::default()
        };
        assert_eq!(ids(plate("A123")).await, [b1.id]);
        assert_eq!(ids(plate("34567")).await, [b2.id]);
        assert_eq!(ids(plate("_")).await, Vec::<i64>::new());
        let q = BookingQuery {
            host_id: Some(h2),
            ..BookingQuery::default()
        };
        assert_eq!(ids(q).await, [b2.id]);
        let q = BookingQuery {
            department: Some("PHYSICS".into()),
            ..BookingQuery::default()
        };
        assert_eq!(ids(q).await, [b2.id]);
        let q = BookingQuery {
            scope_department: Some("计算机学院".into()),
            ..BookingQuery::default()
        };
        assert_eq!(ids(q).await, [b1.id]);
        let q = BookingQuery {
            status: Some(BookingStatus::Approved),
            ..BookingQuery::default()
        };
        assert_eq!(ids(q).await, [b2.id]);
        // 2030-05-01 in Shanghai is [2030-04-30T16:00Z, 2030-05-01T16:00Z).
        let q = BookingQuery {
            overlapping: Some((at(2030, 4, 30, 16, 0), at(2030, 5, 1, 16, 0))),
            ..BookingQuery::default()
        };
        assert_eq!(ids(q).await, [b1.id]);
        let q = BookingQuery {
            overlapping: Some((at(2030, 5, 1, 16, 0), at(2030, 5, 2, 16, 0))),
            ..BookingQuery::default()
        };
        assert_eq!(ids(q).await, [b2.id]);
    }
}

// ---------------------------------------------------------------------------------------------
// Visitor bookings: API.

/// An RFC 3339 whole minute `hours` from now.
fn in_hours(hours: i64) -> String {
    let t = Utc::now() + Duration::hours(hours);
    Utc.timestamp_opt(t.timestamp() / 60 * 60, 0)
        .single()
        .unwrap()
        .to_rfc3339()
}

fn booking_body(host_id: i64, plate: &str) -> Value {
    json!({
        "host_id": host_id,
        "purpose": "学术讲座",
        "plate": plate,
        "plate_colour": "blue",
        "driver_name": "周九",
        "driver_phone": "138 1234 5678",
        "slot_from": in_hours(1),
        "slot_until": in_hours(3),
    })
}

#[tokio::test]
async fn a_booking_is_made_by_the_departments_approver_approved_arrives_and_leaves() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let host = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        let (status, b) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Approver),
                Some(booking_body(host, "京ａ·12345")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{:?}: {b}", app.kind);
        assert_eq!(b["status"], "pending");
        assert_eq!(b["plate"], "京A12345");
        assert_eq!(
            b["department"], APPROVER_DEPARTMENT,
            "defaults to the host's"
        );
        assert_eq!(b["driver_phone"], "13812345678");
        let id = b["id"].as_i64().unwrap();
        let step = |s: &str| format!("/api/v1/bookings/{id}/{s}");

        let (status, _) = app
            .call(Method::POST, &step("approve"), Some(Role::Guard), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app
            .call(Method::POST, &step("arrive"), Some(Role::Approver), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = app
            .call(Method::POST, &step("arrive"), Some(Role::Guard), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "not approved yet: {body}");
        assert_eq!(body["message"], "预约当前状态为“待审批”，不能登记到达");

        let (status, body) = app
            .call(Method::POST, &step("approve"), Some(Role::Approver), None)
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("approved"))
        );
        let (status, body) = app
            .call(Method::POST, &step("arrive"), Some(Role::Guard), None)
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("arrived"))
        );
        assert!(body["arrived_at"].is_string());

        let (_, seen) = app
            .call(
                Method::GET,
                &format!("/api/v1/bookings/{id}"),
                Some(Role::Viewer),
                None,
            )
            .await;
        assert_eq!(
            seen["driver_phone"], "138****5678",
            "a viewer sees a masked phone"
        );
        let (_, seen) = app
            .call(
                Method::GET,
                &format!("/api/v1/bookings/{id}"),
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(
            seen["driver_phone"], "13812345678",
            "the guard calls the driver"
        );

        let (status, body) = app
            .call(Method::POST, &step("leave"), Some(Role::Guard), None)
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("left"))
        );
        let (status, body) = app
            .call_lang(
                Method::POST,
                &step("cancel"),
                Some(Role::Security),
                None,
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["message"],
            "The booking is left; it cannot be cancelled"
        );
        assert_eq!(
            audit_actions(&app.db, "visitor_booking", id).await,
            ["create", "approve", "arrive", "leave"]
        );
    }
}

#[tokio::test]
async fn booking_roles_are_enforced_per_department_and_guards_register_only_walk_ins() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let own = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        let other = person(&app.db, "李四", "物理学院").await;
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                None,
                Some(booking_body(own, "京A12345")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{:?}", app.kind);
        let (status, _) = app.call(Method::GET, "/api/v1/bookings", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        for role in [Role::Viewer, Role::Guard] {
            let (status, _) = app
                .call(
                    Method::POST,
                    "/api/v1/bookings",
                    Some(role),
                    Some(booking_body(own, "京A12345")),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} pre-books");
        }
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Approver),
                Some(booking_body(other, "京A12345")),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "an approver books for another department"
        );
        let mut walk_in = booking_body(other, "京B23456");
        walk_in["walk_in"] = json!(true);
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Approver),
                Some(walk_in.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "approvers do not register walk-ins"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM visitor_bookings").await,
            0
        );

        let (status, w) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Guard),
                Some(walk_in),
            )
            .await;
        assert_eq!(
            (status, w["status"].as_str()),
            (StatusCode::CREATED, Some("arrived")),
            "{w}"
        );

        let (status, b) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Security),
                Some(booking_body(other, "京C34567")),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let other_id = b["id"].as_i64().unwrap();
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{other_id}/approve"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "another department's booking"
        );
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/bookings/{other_id}"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, list) = app
            .call(Method::GET, "/api/v1/bookings", Some(Role::Approver), None)
            .await;
        assert_eq!(list["total"], 0, "nothing of the approver's department yet");
        for role in ALL_ROLES {
            let (status, _) = app
                .call(Method::GET, "/api/v1/bookings", Some(role), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{role:?} lists");
        }
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{other_id}/cancel"),
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, b) = app
            .call(
                Method::POST,
                &format!("/api/v1/bookings/{other_id}/cancel"),
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(
            (status, b["status"].as_str()),
            (StatusCode::OK, Some("cancelled"))
        );
    }
}

#[tokio::test]
async fn every_bad_booking_field_is_a_422_naming_it_and_nothing_is_stored() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let host = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        let body = json!({
            "host_id": host + 100,
            "plate": "X12345",
            "plate_colour": "pink",
            "driver_name": " ",
            "driver_phone": "12345",
            "slot_from": in_hours(3),
            "slot_until": in_hours(1),
        });
        let (status, resp) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Admin),
                Some(body),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}: {resp}",
            app.kind
        );
        let mut got = fields(&resp);
        got.sort();
        let mut want: Vec<(String, String)> = [
            ("host_id", "unknown_person"),
            ("plate", "plate_unknown_province"),
            ("plate_colour", "invalid_plate_colour"),
            ("driver_name", "required"),
            ("driver_phone", "invalid_phone"),
            ("slot_until", "reversed_window"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        want.sort();
        assert_eq!(got, want);
        assert!(
            resp["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["message"] == "“X”不是省份简称"),
            "{resp}"
        );

        let mut long = booking_body(host, "京A12345");
        long["slot_until"] = json!(in_hours(24 * 8));
        let (status, resp) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Admin),
                Some(long),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            fields(&resp),
            [("slot_until".to_string(), "slot_too_long".to_string())]
        );

        let mut past = booking_body(host, "京A12345");
        past["slot_from"] = json!(in_hours(-3));
        past["slot_until"] = json!(in_hours(-1));
        let (_, resp) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Admin),
                Some(past),
            )
            .await;
        assert_eq!(
            fields(&resp),
            [("slot_until".to_string(), "slot_in_past".to_string())]
        );

        let mut seconds = booking_body(host, "京A12345");
        seconds["slot_from"] = json!("2030-01-01T08:00:30Z");
        seconds["slot_until"] = json!("2030-01-01T09:00:00Z");
        let (_, resp) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Admin),
                Some(seconds),
            )
            .await;
        assert_eq!(
            fields(&resp),
            [("slot_from".to_string(), "not_whole_minute".to_string())]
        );

        let (status, resp) = app
            .call(
                Method::GET,
                "/api/v1/bookings?date=2030-13-01&status=gone",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let got: Vec<String> = fields(&resp).into_iter().map(|f| f.0).collect();
        assert_eq!(got, ["status", "date"]);

        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM visitor_bookings").await,
            0
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'visitor_booking'"
            )
            .await,
            0
        );
    }
}

#[tokio::test]
async fn a_pending_booking_is_edited_and_bookings_are_searched_by_plate_status_host_and_day() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let host = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        let other = person(&app.db, "李四", "Physics").await;
        let (_, a) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Admin),
                Some(booking_body(host, "京A12345")),
            )
            .await;
        let a = a["id"].as_i64().unwrap();
        let mut later = booking_body(other, "沪C34567");
        later["slot_from"] = json!("2030-05-01T17:00:00Z");
        later["slot_until"] = json!("2030-05-01T18:00:00Z");
        later["driver_phone"] = json!("010-62345678");
        let (status, b) = app
            .call(
                Method::POST,
                "/api/v1/bookings",
                Some(Role::Admin),
                Some(later.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{:?}: {b}", app.kind);
        let b = b["id"].as_i64().unwrap();

        later["plate"] = json!("沪C34568");
        later["purpose"] = json!("送货");
        let (status, edited) = app
            .call(
                Method::PUT,
                &format!("/api/v1/bookings/{b}"),
                Some(Role::Security),
                Some(later.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{edited}");
        assert_eq!(
            (edited["plate"].as_str(), edited["purpose"].as_str()),
            (Some("沪C34568"), Some("送货"))
        );
        app.call(
            Method::POST,
            &format!("/api/v1/bookings/{b}/approve"),
            Some(Role::Admin),
            None,
        )
        .await;
        let (status, resp) = app
            .call(
                Method::PUT,
                &format!("/api/v1/bookings/{b}"),
                Some(Role::Security),
                Some(later),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{resp}");
        assert!(resp["message"].as_str().unwrap().contains("已批准"));

        for (query, want) in [
            ("", vec![a, b]),
            ("?plate=c3456", vec![b]),
            ("?plate=京A", vec![a]),
            ("?status=approved", vec![b]),
            (&format!("?host_id={host}") as &str, vec![a]),
            ("?department=physics", vec![b]),
            ("?date=2030-05-02", vec![b]),
            ("?date=2030-05-01", vec![]),
        ] {
            let (status, body) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/bookings{query}"),
                    Some(Role::Viewer),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let ids: Vec<i64> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, want, "{query}");
            if let Some(first) = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == b)
            {
                assert_eq!(first["driver_phone"], "010-****5678");
            }
        }
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_permit_and_booking_route() {
    let t = crate::harness::sqlite().await;
    let app = TestApp::spawn(t).await;
    let (status, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for (path, method) in [
        ("/api/v1/permits", "get"),
        ("/api/v1/permits", "post"),
        ("/api/v1/permits/{id}", "get"),
        ("/api/v1/permits/{id}", "put"),
        ("/api/v1/permits/{id}", "delete"),
        ("/api/v1/permits/{id}/suspend", "post"),
        ("/api/v1/permits/{id}/revoke", "post"),
        ("/api/v1/permits/{id}/reactivate", "post"),
        ("/api/v1/bookings", "get"),
        ("/api/v1/bookings", "post"),
        ("/api/v1/bookings/{id}", "get"),
        ("/api/v1/bookings/{id}", "put"),
        ("/api/v1/bookings/{id}/approve", "post"),
        ("/api/v1/bookings/{id}/reject", "post"),
        ("/api/v1/bookings/{id}/cancel", "post"),
        ("/api/v1/bookings/{id}/arrive", "post"),
        ("/api/v1/bookings/{id}/leave", "post"),
        ("/api/v1/bookings/{id}/no-show", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["Permit"].is_object());
}
