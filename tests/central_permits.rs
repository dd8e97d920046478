//! Permits (出门证) and visitor bookings (访客预约) on the central server: the repositories, then
//! the API, each behaviour on SQLite and (with `DATABASE_URL`) PostgreSQL.

mod central_support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use gatehouse::central::db::{Actor, Db, Page, RepoError};
use gatehouse::central::repo::bookings::{
    self, BookingQuery, BookingStatus, NewBooking, Transition, TransitionError,
};
use gatehouse::central::repo::permits::{
    self, Action, ActionError, PermitInput, PermitQuery, PermitStatus,
};

// ---------------------------------------------------------------------------------------------
// Fixtures: persons, vehicles and gates are written with plain SQL (their repositories are not
// this file's subject).

async fn person(db: &Db, name: &str, department: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO persons (name, category, department, phone, id_card, created_ms, updated_ms) \
         VALUES ($1, 'staff', $2, '', '', 0, 0) RETURNING id",
    )
    .bind(name)
    .bind(department)
    .fetch_one(db.pool())
    .await
    .unwrap()
}

async fn vehicle(db: &Db, plate: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO vehicles (plate, plate_colour, created_ms, updated_ms) \
         VALUES ($1, 'blue', 0, 0) RETURNING id",
    )
    .bind(plate)
    .fetch_one(db.pool())
    .await
    .unwrap()
}

async fn gate(db: &Db, id: i64) {
    sqlx::query("INSERT INTO gates (id, name, created_ms, updated_ms) VALUES ($1, $2, 0, 0)")
        .bind(id)
        .bind(format!("gate {id}"))
        .execute(db.pool())
        .await
        .unwrap();
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn actor() -> Actor {
    Actor {
        operator_id: None,
        name: "tester".into(),
    }
}

fn permit_input(holder_id: i64, vehicle_ids: Vec<i64>) -> PermitInput {
    PermitInput {
        category: "staff".into(),
        holder_id,
        valid_from: at(2025, 1, 1, 0, 0),
        valid_until: at(2026, 1, 1, 0, 0),
        gates: "1;2:exit".into(),
        schedule: "mon-fri 07:00-22:00".into(),
        single_use: false,
        max_inside: Some(1),
        vehicle_ids,
    }
}

async fn audit_actions(db: &Db, entity: &str, id: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE entity = $1 AND entity_id = $2 ORDER BY id",
    )
    .bind(entity)
    .bind(id.to_string())
    .fetch_all(db.pool())
    .await
    .unwrap()
}

async fn change_ops(db: &Db, entity: &str, id: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT op FROM change_log WHERE entity = $1 AND entity_id = $2 ORDER BY seq",
    )
    .bind(entity)
    .bind(id.to_string())
    .fetch_all(db.pool())
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Permits: repository.

#[tokio::test]
async fn a_permit_is_stored_with_its_vehicles_audited_and_logged_for_the_gates() {
    for t in central_support::each_database().await {
        let db = &t.db;
        let holder = person(db, "张三", "计算机学院").await;
        let (v1, v2) = (vehicle(db, "京A12345").await, vehicle(db, "京B23456").await);
        let created = permits::create(db, &actor(), &permit_input(holder, vec![v2, v1]))
            .await
            .unwrap();
        assert_eq!(created.vehicle_ids, vec![v1, v2], "{:?}", t.kind);
        assert_eq!(created.version, 1);
        assert_eq!(created.status, PermitStatus::Active);
        assert_eq!(created.holder_name, "张三");
        assert_eq!(created.holder_department, "计算机学院");
        assert_eq!(created.valid_from, at(2025, 1, 1, 0, 0));
        assert_eq!(created.max_inside, Some(1));
        assert_eq!(permits::get(db, created.id).await.unwrap(), created);
        assert_eq!(audit_actions(db, "permit", created.id).await, ["create"]);
        assert_eq!(change_ops(db, "permit", created.id).await, ["upsert"]);
        assert!(matches!(
            permits::get(db, created.id + 100).await,
            Err(RepoError::NotFound)
        ));
    }
}

#[tokio::test]
async fn an_update_replaces_fields_and_vehicles_and_bumps_the_version() {
    for t in central_support::each_database().await {
        let db = &t.db;
        let holder = person(db, "李四", "物理学院").await;
        let (v1, v2) = (vehicle(db, "京A12345").await, vehicle(db, "沪C34567").await);
        let p = permits::create(db, &actor(), &permit_input(holder, vec![v1]))
            .await
            .unwrap();
        let mut input = permit_input(holder, vec![v2]);
        input.gates = "all".into();
        input.max_inside = None;
        let updated = permits::update(db, &actor(), p.id, 1, &input)
            .await
            .unwrap();
        assert_eq!(updated.version, 2, "{:?}", t.kind);
        assert_eq!(updated.vehicle_ids, vec![v2]);
        assert_eq!(updated.gates, "all");
        assert_eq!(updated.max_inside, None);
        assert_eq!(
            audit_actions(db, "permit", p.id).await,
            ["create", "update"]
        );
        let before: String = sqlx::query_scalar(
            "SELECT before_json FROM audit_log WHERE entity = 'permit' AND action = 'update'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        let before: serde_json::Value = serde_json::from_str(&before).unwrap();
        assert_eq!(before["version"], 1);
        assert_eq!(before["vehicle_ids"], serde_json::json!([v1]));
    }
}

#[tokio::test]
async fn an_update_based_on_an_old_version_is_refused_with_the_current_version_and_changes_nothing()
{
    for t in central_support::each_database().await {
        let db = &t.db;
        let holder = person(db, "王五", "").await;
        let v1 = vehicle(db, "京A12345").await;
        let p = permits::create(db, &actor(), &permit_input(holder, vec![v1]))
            .await
            .unwrap();
        permits::update(db, &actor(), p.id, 1, &permit_input(holder, vec![]))
            .await
            .unwrap();
        let err = permits::update(db, &actor(), p.id, 1, &permit_input(holder, vec![v1]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RepoError::Stale { current: 2 }),
            "{:?}: {err:?}",
            t.kind
        );
        assert_eq!(
            permits::get(db, p.id).await.unwrap().vehicle_ids,
            Vec::<i64>::new()
        );
        assert!(matches!(
            permits::update(db, &actor(), p.id + 9, 1, &permit_input(holder, vec![])).await,
            Err(RepoError::NotFound)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_updates_from_the_same_version_exactly_one_wins_in_the_repository() {
    for t in central_support::each_database().await {
        let db = &t.db;
        let holder = person(db, "赵六", "").await;
        let (v1, v2) = (vehicle(db, "京A12345").await, vehicle(db, "京B23456").await);
        let p = permits::create(db, &actor(), &permit_input(holder, vec![]))
            .await
            .unwrap();
        for round in 0..10 {
            let version = permits::get(db, p.id).await.unwrap().version;
            let (a, b) = (db.clone(), db.clone());
            let (ia, ib) = (
                permit_input(holder, vec![v1]),
                permit_input(holder, vec![v2]),
            );
            let ta =
                tokio::spawn(
                    async move { permits::update(&a, &actor(), p.id, version, &ia).await },
                );
            let tb =
                tokio::spawn(
                    async move { permits::update(&b, &actor(), p.id, version, &ib).await },
                );
            let results = [ta.await.unwrap(), tb.await.unwrap()];
            let wins = results.iter().filter(|r| r.is_ok()).count();
            let stale = results
                .iter()
                .filter(
                    |r| matches!(r, Err(RepoError::Stale { current }) if *current == version + 1),
                )
                .count();
            assert_eq!(
                (wins, stale),
                (1, 1),
                "{:?} round {round}: {results:?}",
                t.kind
            );
            let now = permits::get(db, p.id).await.unwrap();
            assert_eq!(now.version, version + 1);
            assert_eq!(now.vehicle_ids.len(), 1);
        }
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'update'").await,
            10
        );
    }
}

#[tokio::test]
async fn suspend_revoke_and_reactivate_follow_the_status_rules_and_are_audited_by_name() {
    for t in central_support::each_database().await {
        let db = &t.db;
        let holder = person(db, "钱七", "").await;
        let p = permits::create(db, &actor(), &permit_input(holder, vec![]))
            .await
            .unwrap();
        let s = permits::act(db, &actor(), p.id, Some(1), Action::Suspend, "lost tag")
            .await
            .unwrap();
        assert_eq!(
            (s.status, s.status_reason.as_str(), s.version),
            (PermitStatus::Suspended, "lost tag", 2),
            "{:?}",
            t.kind
        );
        assert!(matches!(
            permits::act(db, &actor(), p.id, None, Action::Suspend, "again").await,
            Err(ActionError::Illegal {
                current: PermitStatus::Suspended
            })
        ));
        assert!(matches!(
            permits::act(db, &actor(), p.id, Some(1), Action::Reactivate, "").await,
            Err(ActionError::Repo(RepoError::Stale { current: 2 }))
        ));
        let a = permits::act(db, &actor(), p.id, None, Action::Reactivate, "ignored")
            .await
            .unwrap();
        assert_eq!(
            (a.status, a.status_reason.as_str()),
            (PermitStatus::Active, "")
        );
        let r = permits::act(
            db,
            &actor(),
            p.id,
            None,
            Action::Revoke,
            "left the university",
        )
        .await
        .unwrap();
        assert_eq!(r.status, PermitStatus::Revoked);
        assert!(matches!(
            permits::act(db, &actor(), p.id, None, Action::Reactivate, "").await,
            Err(ActionError::Illegal {
                current: PermitStatus::Revoked
            })
        ));
        assert_eq!(
            audit_actions(db, "permit", p.id).await,
            ["create", "suspend", "reactivate", "revoke"]
        );
        assert_eq!(change_ops(db, "permit", p.id).await.len(), 4);
    }
}

#[tokio::test]
async fn deleting_a_permit_removes_its_vehicle_links_and_logs_a_delete_for_the_gates() {
    for t in central_support::each_database().await {
        let db = &t.db;
        let holder = person(db, "孙八", "").await;
        let v1 = vehicle(db, "京A12345").await;
        let p = permits::create(db, &actor(), &permit_input(holder, vec![v1]))
            .await
            .unwrap();
        assert!(matches!(
            permits::delete(db, &actor(), p.id, Some(5)).await,
            Err(RepoError::Stale { current: 1 })
        ));
        permits::delete(db, &actor(), p.id, None).await.unwrap();
        assert!(matches!(
            permits::get(db, p.id).await,
            Err(RepoError::NotFound)
        ));
        assert_eq!(count(db, "SELECT COUNT(*) FROM permit_vehicles").await, 0);
        assert_eq!(
            audit_actions(db, "permit", p.id).await,
            ["create", "delete"]
        );
        assert_eq!(change_ops(db, "permit", p.id).await, ["upsert", "delete"]);
        assert!(matches!(
            permits::delete(db, &actor(), p.id, None).await,
            Err(RepoError::NotFound)
        ));
    }
}

#[tokio::test]
async fn permits_are_found_by_holder_plate_department_status_category_and_validity() {
    for t in central_support::each_database().await {
        let db = &t.db;
        let cs = person(db, "张三", "计算机学院").await;
        let ph = person(db, "李四", "Physics").await;
        let (v1, v2) = (vehicle(db, "京A12345").await, vehicle(db, "沪C34567").await);
        let a = permits::create(db, &actor(), &permit_input(cs, vec![v1]))
            .await
            .unwrap();
        let mut input = permit_input(ph, vec![v2]);
        input.category = "contractor".into();
        input.valid_from = at(2026, 1, 1, 0, 0);
        input.valid_until = at(2026, 2, 1, 0, 0);
        let b = permits::create(db, &actor(), &input).await.unwrap();
        permits::act(db, &actor(), b.id, None, Action::Suspend, "x")
            .await
            .unwrap();
        let ids = |q: PermitQuery| async move {
            let page = permits::search(db, &q, Page::default()).await.unwrap();
            assert_eq!(page.total, page.items.len() as i64);
            page.items.iter().map(|p| p.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(PermitQuery::default()).await,
            [b.id, a.id],
            "{:?}",
            t.kind
        );
        let q = |f: fn(&mut PermitQuery)| {
            let mut q = PermitQuery::default();
            f(&mut q);
            q
        };
        assert_eq!(
            ids(PermitQuery {
                holder_id: Some(cs),
                ..q(|_| {})
            })
            .await,
            [a.id]
        );
        assert_eq!(ids(q(|q| q.plate = Some("12345".into()))).await, [a.id]);
        assert_eq!(ids(q(|q| q.plate = Some("沪C".into()))).await, [b.id]);
        assert_eq!(
            ids(q(|q| q.plate = Some("%".into()))).await,
            Vec::<i64>::new()
        );
        assert_eq!(
            ids(PermitQuery {
                vehicle_id: Some(v2),
                ..q(|_| {})
            })
            .await,
            [b.id]
        );
        assert_eq!(
            ids(q(|q| q.department = Some("physics".into()))).await,
            [b.id]
        );
        assert_eq!(
            ids(q(|q| q.scope_department = Some("计算机学院".into()))).await,
            [a.id]
        );
        assert_eq!(
            ids(q(|q| q.status = Some(PermitStatus::Suspended))).await,
            [b.id]
        );
        assert_eq!(ids(q(|q| q.category = Some("staff".into()))).await, [a.id]);
        let valid_at = |t: DateTime<Utc>| PermitQuery {
            valid_at: Some(t),
            ..PermitQuery::default()
        };
        assert_eq!(ids(valid_at(at(2025, 6, 1, 0, 0))).await, [a.id]);
        assert_eq!(
            ids(valid_at(at(2026, 1, 1, 0, 0))).await,
            [b.id],
            "until is exclusive"
        );
        assert_eq!(ids(valid_at(at(2027, 1, 1, 0, 0))).await, Vec::<i64>::new());
        let page = permits::search(
            db,
            &PermitQuery::default(),
            Page {
                limit: 1,
                offset: 1,
            },
        )
        .await
        .unwrap();
        assert_eq!((page.total, page.items[0].id), (2, a.id));
        assert_eq!(page.items[0].vehicle_ids, vec![v1]);
    }
}

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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
