//! Permits (出门证) on the central server: the repository, then
//! the API, each behaviour on SQLite and (with `DATABASE_URL`) PostgreSQL.

use chrono::{DateTime, TimeZone, Utc};
use gatehouse::central::db::{Actor, Db, Page, RepoError};
use gatehouse::central::repo::permits::{
    self, Action, ActionError, PermitInput, PermitQuery, PermitStatus,
};

// ---------------------------------------------------------------------------------------------
// Fixtures: persons and vehicles are written with plain SQL (their repositories are not
// this file's subject).

pub(crate) async fn person(db: &Db, name: &str, department: &str) -> i64 {
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

pub(crate) async fn vehicle(db: &Db, plate: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO vehicles (plate, plate_colour, created_ms, updated_ms) \
         VALUES ($1, 'blue', 0, 0) RETURNING id",
    )
    .bind(plate)
    .fetch_one(db.pool())
    .await
    .unwrap()
}

pub(crate) fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

pub(crate) fn actor() -> Actor {
    Actor {
        operator_id: None,
        name: "tester".into(),
    }
}

pub(crate) fn permit_input(holder_id: i64, vehicle_ids: Vec<i64>) -> PermitInput {
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

pub(crate) async fn audit_actions(db: &Db, entity: &str, id: i64) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE entity = $1 AND entity_id = $2 ORDER BY id",
    )
    .bind(entity)
    .bind(id.to_string())
    .fetch_all(db.pool())
    .await
    .unwrap()
}

pub(crate) async fn change_ops(db: &Db, entity: &str, id: i64) -> Vec<String> {
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
    for t in crate::harness::each_database().await {
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
    for t in crate::harness::each_database().await {
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
    for t in crate::harness::each_database().await {
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
    for t in crate::harness::each_database().await {
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

/// The interleaving the concurrent test can only hope for, forced: the update reads version 1
/// (its early check passes) while another transaction has already moved the row to version 2
/// but not committed. Only the conditional `UPDATE … AND version = $2` can refuse it now.
/// PostgreSQL only: it shows who waits on a lock (`pg_stat_activity`), so the test knows the
/// update is queued without sleeping; SQLite has no such view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_passed_its_version_check_loses_to_a_commit_it_waited_for_on_postgres() {
    let Some(url) = crate::harness::postgres_url() else {
        return;
    };
    let t = crate::harness::postgres(&url).await;
    let db = t.db.clone();
    let holder = person(&db, "赵六", "").await;
    let v1 = vehicle(&db, "京A12345").await;
    let p = permits::create(&db, &actor(), &permit_input(holder, vec![]))
        .await
        .unwrap();
    let mut other = db.pool().begin().await.unwrap();
    sqlx::query(
        "UPDATE permits SET category = 'contractor', version = version + 1 \
         WHERE id = $1 AND version = 1",
    )
    .bind(p.id)
    .execute(&mut *other)
    .await
    .unwrap();
    let racer = {
        let db = db.clone();
        tokio::spawn(async move {
            permits::update(&db, &actor(), p.id, 1, &permit_input(holder, vec![v1])).await
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the update never queued"
        );
        tokio::task::yield_now().await;
    }
    other.commit().await.unwrap();
    let result = racer.await.unwrap();
    assert!(
        matches!(result, Err(RepoError::Stale { current: 2 })),
        "{result:?}"
    );
    let now = permits::get(&db, p.id).await.unwrap();
    assert_eq!(
        (now.category.as_str(), now.vehicle_ids.len()),
        ("contractor", 0)
    );
}

#[tokio::test]
async fn suspend_revoke_and_reactivate_follow_the_status_rules_and_are_audited_by_name() {
    for t in crate::harness::each_database().await {
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
    for t in crate::harness::each_database().await {
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
    for t in crate::harness::each_database().await {
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
// Permits: API.

use std::sync::Arc;

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count};
use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};

pub(crate) const ALL_ROLES: [Role; 5] = [
    Role::Admin,
    Role::Security,
    Role::Guard,
    Role::Approver,
    Role::Viewer,
];

pub(crate) fn permit_body(holder_id: i64, vehicle_ids: &[i64]) -> Value {
    json!({
        "category": "staff",
        "holder_id": holder_id,
        "valid_from": "2025-01-01T00:00:00Z",
        "valid_until": "2030-01-01T00:00:00+08:00",
        "gates": "1;2:exit",
        "schedule": "mon-fri 07:00-22:00",
        "max_inside": 1,
        "vehicle_ids": vehicle_ids,
    })
}

pub(crate) fn fields(body: &Value) -> Vec<(String, String)> {
    body["fields"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) async fn create_permit(app: &TestApp, holder: i64, vehicles: &[i64]) -> Value {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/permits",
            Some(Role::Security),
            Some(permit_body(holder, vehicles)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn a_permit_is_created_read_with_its_etag_replaced_with_if_match_and_deleted_by_an_admin() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let holder = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        let (v1, v2) = (
            vehicle(&app.db, "京A12345").await,
            vehicle(&app.db, "京B23456").await,
        );
        let (status, headers, created) = app
            .call_with_headers(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Admin),
                Some(permit_body(holder, &[v1])),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{:?}: {created}", app.kind);
        assert_eq!(headers["etag"], "\"1\"");
        assert_eq!(created["valid_until"], "2029-12-31T16:00:00Z");
        assert_eq!(created["holder_department"], APPROVER_DEPARTMENT);
        let id = created["id"].as_i64().unwrap();
        let path = format!("/api/v1/permits/{id}");

        let (status, headers, got) = app
            .call_with_headers(Method::GET, &path, Some(Role::Viewer), None, &[])
            .await;
        assert_eq!((status, &got), (StatusCode::OK, &created));
        assert_eq!(headers["etag"], "\"1\"");

        let mut change = permit_body(holder, &[v1, v2]);
        change["gates"] = json!(" all ");
        let (status, body) = app
            .call(
                Method::PUT,
                &path,
                Some(Role::Security),
                Some(change.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "no If-Match: {body}");
        assert!(body["message"].as_str().unwrap().contains("If-Match"));

        let (status, headers, updated) = app
            .call_with_headers(
                Method::PUT,
                &path,
                Some(Role::Security),
                Some(change.clone()),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(headers["etag"], "\"2\"");
        assert_eq!(updated["vehicle_ids"], json!([v1, v2]));
        assert_eq!(updated["gates"], "all");

        let (status, body) = app
            .call_lang(
                Method::GET,
                "/api/v1/permits?plate=京b·234",
                Some(Role::Guard),
                None,
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], 1);
        assert_eq!(body["items"][0]["id"], id);

        let (status, body) = app
            .call(Method::DELETE, &path, Some(Role::Security), None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = app
            .call(Method::DELETE, &path, Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = app.call(Method::GET, &path, Some(Role::Admin), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        assert_eq!(
            audit_actions(&app.db, "permit", id).await,
            ["create", "update", "delete"]
        );
    }
}

#[tokio::test]
async fn a_put_with_an_old_etag_is_a_409_stale_version_carrying_the_current_version() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let holder = person(&app.db, "张三", "").await;
        let id = create_permit(&app, holder, &[]).await["id"]
            .as_i64()
            .unwrap();
        let path = format!("/api/v1/permits/{id}");
        let headers = [("if-match", "\"1\"")];
        let (status, _, _) = app
            .call_with_headers(
                Method::PUT,
                &path,
                Some(Role::Admin),
                Some(permit_body(holder, &[])),
                &headers,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let mut change = permit_body(holder, &[]);
        change["category"] = json!("contractor");
        let (status, _, body) = app
            .call_with_headers(
                Method::PUT,
                &path,
                Some(Role::Admin),
                Some(change),
                &headers,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{:?}: {body}", app.kind);
        assert_eq!(body["code"], "stale_version");
        assert_eq!(body["current_version"], 2);
        let (_, got) = app.call(Method::GET, &path, Some(Role::Admin), None).await;
        assert_eq!(got["category"], "staff", "the stale update changed nothing");
        let (status, _, body) = app
            .call_with_headers(
                Method::PUT,
                &path,
                Some(Role::Admin),
                Some(permit_body(holder, &[])),
                &[("if-match", "*")],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_puts_from_the_same_version_give_exactly_one_200_and_one_409() {
    for t in crate::harness::each_database().await {
        let app = Arc::new(TestApp::spawn(t).await);
        let holder = person(&app.db, "张三", "").await;
        let (v1, v2) = (
            vehicle(&app.db, "京A12345").await,
            vehicle(&app.db, "京B23456").await,
        );
        let id = create_permit(&app, holder, &[]).await["id"]
            .as_i64()
            .unwrap();
        for round in 1..=8 {
            let etag = format!("\"{round}\"");
            let mut tasks = Vec::new();
            for (role, vehicle) in [(Role::Admin, v1), (Role::Security, v2)] {
                let (app, etag) = (app.clone(), etag.clone());
                tasks.push(tokio::spawn(async move {
                    app.call_with_headers(
                        Method::PUT,
                        &format!("/api/v1/permits/{id}"),
                        Some(role),
                        Some(permit_body(holder, &[vehicle])),
                        &[("if-match", &etag)],
                    )
                    .await
                }));
            }
            let mut statuses = Vec::new();
            for task in tasks {
                let (status, _, body) = task.await.unwrap();
                if status == StatusCode::CONFLICT {
                    assert_eq!(body["code"], "stale_version");
                    assert_eq!(body["current_version"], round + 1);
                }
                statuses.push(status);
            }
            statuses.sort();
            assert_eq!(
                statuses,
                [StatusCode::OK, StatusCode::CONFLICT],
                "{:?} round {round}",
                app.kind
            );
        }
        let (_, got) = app
            .call(
                Method::GET,
                &format!("/api/v1/permits/{id}"),
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(got["version"], 9);
        assert_eq!(got["vehicle_ids"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn permits_need_a_session_and_only_admin_and_security_change_them() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let holder = person(&app.db, "张三", "物理学院").await;
        let id = create_permit(&app, holder, &[]).await["id"]
            .as_i64()
            .unwrap();
        let path = format!("/api/v1/permits/{id}");
        for (method, path) in [
            (Method::GET, "/api/v1/permits".to_string()),
            (Method::GET, path.clone()),
            (Method::DELETE, path.clone()),
        ] {
            let (status, body) = app.call(method, &path, None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{:?} {path}", app.kind);
            assert_eq!(body["code"], "unauthenticated");
        }
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                None,
                Some(permit_body(holder, &[])),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        for role in [Role::Guard, Role::Approver, Role::Viewer] {
            let (status, _) = app
                .call(
                    Method::POST,
                    "/api/v1/permits",
                    Some(role),
                    Some(permit_body(holder, &[])),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} creates");
            let (status, _, _) = app
                .call_with_headers(
                    Method::PUT,
                    &path,
                    Some(role),
                    Some(permit_body(holder, &[])),
                    &[("if-match", "\"1\"")],
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} updates");
            let (status, _) = app
                .call(
                    Method::POST,
                    &format!("{path}/suspend"),
                    Some(role),
                    Some(json!({"reason": "x"})),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} suspends");
        }
        for role in [Role::Admin, Role::Security, Role::Guard, Role::Viewer] {
            let (status, _) = app.call(Method::GET, &path, Some(role), None).await;
            assert_eq!(status, StatusCode::OK, "{role:?} reads");
        }
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM permits").await, 1);
        assert_eq!(
            count(&app.db, "SELECT version FROM permits").await,
            1,
            "no refused call changed the permit"
        );
    }
}

#[tokio::test]
async fn an_approver_sees_only_permits_whose_holder_is_in_their_department() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let own = person(&app.db, "张三", APPROVER_DEPARTMENT).await;
        let other = person(&app.db, "李四", "物理学院").await;
        let own_id = create_permit(&app, own, &[]).await["id"].as_i64().unwrap();
        let other_id = create_permit(&app, other, &[]).await["id"]
            .as_i64()
            .unwrap();
        let (status, body) = app
            .call(Method::GET, "/api/v1/permits", Some(Role::Approver), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{:?}", app.kind);
        assert_eq!(body["total"], 1);
        assert_eq!(body["items"][0]["id"], own_id);
        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/permits?department=物理学院",
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!((status, body["total"].as_i64()), (StatusCode::OK, Some(0)));
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/permits/{own_id}"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/permits/{other_id}"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (_, body) = app
            .call(Method::GET, "/api/v1/permits", Some(Role::Viewer), None)
            .await;
        assert_eq!(body["total"], 2);
    }
}

#[tokio::test]
async fn every_bad_permit_field_is_a_422_naming_it_and_nothing_is_stored() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let holder = person(&app.db, "张三", "").await;
        let v1 = vehicle(&app.db, "京A12345").await;
        let body = json!({
            "category": "teacher",
            "holder_id": holder + 100,
            "valid_from": "2025-01-01T08:30:15Z",
            "valid_until": "2024-01-01T00:00:00Z",
            "gates": "north",
            "schedule": "someday 25:00-26:00",
            "max_inside": 0,
            "vehicle_ids": [v1, v1, v1 + 100],
        });
        let (status, resp) = app
            .call(
                Method::POST,
                "/api/v1/permits",
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
        assert_eq!(resp["code"], "validation_failed");
        let mut got = fields(&resp);
        got.sort();
        let mut want: Vec<(String, String)> = [
            ("category", "invalid_category"),
            ("holder_id", "unknown_person"),
            ("valid_from", "not_whole_minute"),
            ("valid_until", "reversed_window"),
            ("gates", "invalid_gates"),
            ("schedule", "invalid_schedule"),
            ("max_inside", "out_of_range"),
            ("vehicle_ids[1]", "duplicate_vehicle"),
            ("vehicle_ids[2]", "unknown_vehicle"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        want.sort();
        assert_eq!(got, want);

        let mut unknown_gate = permit_body(holder, &[]);
        unknown_gate["gates"] = json!("1;7:exit");
        let (status, resp) = app
            .call_lang(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Admin),
                Some(unknown_gate),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            fields(&resp),
            [("gates".to_string(), "unknown_gate".to_string())]
        );
        assert_eq!(resp["fields"][0]["message"], "no such gate: 7");

        let mut extra = permit_body(holder, &[]);
        extra["status"] = json!("revoked");
        let (status, resp) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Admin),
                Some(extra),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&resp)[0].1, "unknown_field");

        let (status, resp) = app
            .call(
                Method::GET,
                "/api/v1/permits?status=expired&valid_at=yesterday",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let got: Vec<String> = fields(&resp).into_iter().map(|f| f.0).collect();
        assert_eq!(got, ["status", "valid_at"]);

        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM permits").await, 0);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM permit_vehicles").await,
            0
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'permit'"
            )
            .await,
            0
        );

        // A bad update leaves the permit as it was.
        let id = create_permit(&app, holder, &[v1]).await["id"]
            .as_i64()
            .unwrap();
        let mut bad = permit_body(holder, &[v1 + 100]);
        bad["valid_until"] = json!("2020-01-01T00:00:00Z");
        let (status, _, _) = app
            .call_with_headers(
                Method::PUT,
                &format!("/api/v1/permits/{id}"),
                Some(Role::Admin),
                Some(bad),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let stored = permits::get(&app.db, id).await.unwrap();
        assert_eq!((stored.version, stored.vehicle_ids), (1, vec![v1]));
    }
}

#[tokio::test]
async fn suspend_revoke_and_reactivate_take_a_reason_and_an_illegal_one_names_the_current_status() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let holder = person(&app.db, "张三", "").await;
        let id = create_permit(&app, holder, &[]).await["id"]
            .as_i64()
            .unwrap();
        let path = |a: &str| format!("/api/v1/permits/{id}/{a}");
        let (status, body) = app
            .call(
                Method::POST,
                &path("suspend"),
                Some(Role::Security),
                Some(json!({"reason": "  "})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", app.kind);
        assert_eq!(
            fields(&body),
            [("reason".to_string(), "required".to_string())]
        );
        let (status, headers, body) = app
            .call_with_headers(
                Method::POST,
                &path("suspend"),
                Some(Role::Security),
                Some(json!({"reason": "标签丢失"})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["status"].as_str(), body["status_reason"].as_str()),
            (Some("suspended"), Some("标签丢失"))
        );
        assert_eq!(headers["etag"], "\"2\"");
        let (status, _, body) = app
            .call_with_headers(
                Method::POST,
                &path("revoke"),
                Some(Role::Admin),
                Some(json!({"reason": "x"})),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::CONFLICT, Some("stale_version"))
        );
        let (status, body) = app
            .call(
                Method::POST,
                &path("reactivate"),
                Some(Role::Security),
                Some(json!({"reason": "找到了"})),
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("active"))
        );
        let (status, body) = app
            .call(
                Method::POST,
                &path("revoke"),
                Some(Role::Security),
                Some(json!({"reason": "离校"})),
            )
            .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("revoked"))
        );
        let (status, body) = app
            .call(
                Method::POST,
                &path("reactivate"),
                Some(Role::Security),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "conflict");
        assert!(
            body["message"].as_str().unwrap().contains("已吊销"),
            "{body}"
        );
        let (_, body) = app
            .call_lang(
                Method::POST,
                &path("suspend"),
                Some(Role::Security),
                Some(json!({"reason": "x"})),
                "en",
            )
            .await;
        assert_eq!(
            body["message"],
            "The permit is revoked; it cannot be suspended"
        );
        assert_eq!(
            audit_actions(&app.db, "permit", id).await,
            ["create", "suspend", "reactivate", "revoke"]
        );
        let reason: String =
            sqlx::query_scalar("SELECT after_json FROM audit_log WHERE action = 'reactivate'")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        assert!(
            reason.contains("找到了"),
            "the reactivation's reason is audited: {reason}"
        );
    }
}

#[tokio::test]
async fn permits_are_searched_by_status_category_department_holder_and_validity_through_the_api() {
    for t in crate::harness::each_database().await {
        let app = TestApp::spawn(t).await;
        let a_holder = person(&app.db, "张三", "Physics").await;
        let b_holder = person(&app.db, "李四", "计算机学院").await;
        let a = create_permit(&app, a_holder, &[]).await["id"]
            .as_i64()
            .unwrap();
        let mut body = permit_body(b_holder, &[]);
        body["category"] = json!("contractor");
        body["valid_from"] = json!("2031-01-01T00:00:00Z");
        body["valid_until"] = json!("2031-02-01T00:00:00Z");
        let (_, b) = app
            .call(
                Method::POST,
                "/api/v1/permits",
                Some(Role::Admin),
                Some(body),
            )
            .await;
        let b = b["id"].as_i64().unwrap();
        app.call(
            Method::POST,
            &format!("/api/v1/permits/{b}/suspend"),
            Some(Role::Admin),
            Some(json!({"reason": "x"})),
        )
        .await;
        for (query, want) in [
            ("", vec![b, a]),
            ("?status=suspended", vec![b]),
            ("?category=staff", vec![a]),
            ("?department=PHYSICS", vec![a]),
            (&format!("?holder_id={b_holder}") as &str, vec![b]),
            ("?valid_at=2031-01-15T00:00:00Z", vec![b]),
            ("?valid_at=2026-01-15T08:00:00%2B08:00", vec![a]),
            ("?per_page=1&page=2", vec![a]),
        ] {
            let (status, body) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/permits{query}"),
                    Some(Role::Viewer),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{:?} {query}: {body}", app.kind);
            let ids: Vec<i64> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, want, "{query}");
        }
    }
}
