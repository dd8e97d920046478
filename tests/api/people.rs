//! Persons, vehicles and credentials on the central server: the repositories (CRUD, search,
//! pagination, audit and change-log rows, uniqueness) and the admin API over them (roles, masks,
//! validation, nothing written on bad input), each on SQLite and PostgreSQL.

use gatehouse::central::db::{Actor, Db, Page, RepoError};
use gatehouse::central::repo::credentials::{self, CredentialSearch, NewCredential};
use gatehouse::central::repo::persons::{self, NewPerson, PersonSearch};
use gatehouse::central::repo::vehicles::{self, NewVehicle, VehicleSearch};

fn admin() -> Actor {
    Actor {
        operator_id: None,
        name: "test-admin".into(),
    }
}

fn person(name: &str, category: &str, department: &str, phone: &str) -> NewPerson {
    NewPerson {
        name: name.into(),
        category: category.into(),
        department: department.into(),
        phone: phone.into(),
        id_card: "11010519491231002X".into(),
    }
}

fn vehicle(plate: &str, colour: &str, owner_id: i64) -> NewVehicle {
    NewVehicle {
        plate: plate.into(),
        plate_colour: colour.into(),
        vehicle_type: "car".into(),
        owner_id,
        note: String::new(),
    }
}

fn credential(epc: &str, vehicle_id: i64) -> NewCredential {
    NewCredential {
        epc: epc.into(),
        tid: None,
        vehicle_id,
        status: "active".into(),
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

/// The audit actions and change-log ops recorded for one entity, oldest first.
async fn trail(db: &Db, entity: &str, id: i64) -> (Vec<String>, Vec<String>) {
    use sqlx::Row;
    let audits = sqlx::query(
        "SELECT action FROM audit_log WHERE entity = $1 AND entity_id = $2 ORDER BY id",
    )
    .bind(entity)
    .bind(id.to_string())
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>("action"))
    .collect();
    let changes =
        sqlx::query("SELECT op FROM change_log WHERE entity = $1 AND entity_id = $2 ORDER BY seq")
            .bind(entity)
            .bind(id.to_string())
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("op"))
            .collect();
    (audits, changes)
}

// ---------------------------------------------------------------------------------------------
// Repositories

#[tokio::test]
async fn a_person_is_created_read_updated_and_deleted_with_an_audit_and_change_entry_each() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let p = persons::create(
            db,
            &admin(),
            person("张伟", "staff", "计算机学院", "13812345678"),
        )
        .await
        .unwrap();
        assert_eq!(p.name, "张伟");
        assert_eq!(p.id_card, "11010519491231002X", "stored in full");
        assert_eq!(persons::get(db, p.id).await.unwrap(), p);

        let mut changed = person("张伟", "student", "数学学院", "13900001111");
        changed.id_card = String::new();
        let q = persons::update(db, &admin(), p.id, changed).await.unwrap();
        assert_eq!(q.category, "student");
        assert_eq!(q.department, "数学学院");
        assert_eq!(q.created_at, p.created_at);

        persons::delete(db, &admin(), p.id).await.unwrap();
        assert!(matches!(
            persons::get(db, p.id).await,
            Err(RepoError::NotFound)
        ));
        assert!(matches!(
            persons::delete(db, &admin(), p.id).await,
            Err(RepoError::NotFound)
        ));
        let (audits, changes) = trail(db, "person", p.id).await;
        assert_eq!(audits, ["create", "update", "delete"], "{:?}", t.kind);
        assert_eq!(changes, ["upsert", "upsert", "delete"], "{:?}", t.kind);
        let before_after = count(
            db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'update' \
             AND before_json LIKE '%staff%' AND after_json LIKE '%student%'",
        )
        .await;
        assert_eq!(before_after, 1, "the update's audit holds before and after");
    }
}

#[tokio::test]
async fn persons_are_searched_by_name_or_phone_substring_category_and_department_a_page_at_a_time()
{
    for t in crate::harness::each_database().await {
        let db = &t.db;
        for (name, cat, dept, phone) in [
            ("Zhang Wei", "staff", "CS", "13812345678"),
            ("zhang li", "student", "CS", "13900000000"),
            ("王芳", "staff", "Maths", "13712340000"),
            ("100%_sure", "visitor", "", ""),
        ] {
            persons::create(db, &admin(), person(name, cat, dept, phone))
                .await
                .unwrap();
        }
        let find =
            |text: Option<&str>, phone: bool, cat: Option<&str>, dept: Option<&str>| PersonSearch {
                text: text.map(str::to_string),
                text_matches_phone: phone,
                category: cat.map(str::to_string),
                department: dept.map(str::to_string),
            };
        let names = |p: &gatehouse::central::db::Paged<persons::Person>| {
            p.items.iter().map(|x| x.name.clone()).collect::<Vec<_>>()
        };

        let r = persons::search(db, &find(Some("ZHANG"), false, None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(names(&r), ["Zhang Wei", "zhang li"], "case-insensitive");
        let r = persons::search(db, &find(Some("1234"), true, None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(names(&r), ["Zhang Wei", "王芳"], "phone substring");
        let r = persons::search(db, &find(Some("1234"), false, None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(r.total, 0, "phones are matched only when asked");
        let r = persons::search(db, &find(Some("%_"), false, None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(names(&r), ["100%_sure"], "% and _ are literal");
        let r = persons::search(
            db,
            &find(None, false, Some("staff"), Some("CS")),
            Page::default(),
        )
        .await
        .unwrap();
        assert_eq!(names(&r), ["Zhang Wei"]);

        let page = Page {
            limit: 2,
            offset: 2,
        };
        let r = persons::search(db, &PersonSearch::default(), page)
            .await
            .unwrap();
        assert_eq!(r.total, 4);
        assert_eq!(names(&r), ["王芳", "100%_sure"], "{:?}", t.kind);
    }
}

#[tokio::test]
async fn a_person_holding_a_vehicle_or_a_permit_is_not_deleted() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let p = persons::create(db, &admin(), person("张伟", "staff", "", ""))
            .await
            .unwrap();
        let v = vehicles::create(db, &admin(), vehicle("京A12345", "blue", p.id))
            .await
            .unwrap();
        let err = persons::delete(db, &admin(), p.id).await.unwrap_err();
        assert!(matches!(err, RepoError::Reference(_)), "{err}");
        assert_eq!(
            persons::holdings(db, p.id).await.unwrap(),
            persons::Holdings {
                permits: 0,
                vehicles: 1,
                bookings: 0
            }
        );
        vehicles::delete(db, &admin(), v.id).await.unwrap();

        sqlx::query(
            "INSERT INTO permits (category, holder_id, valid_from_ms, valid_until_ms, created_ms, \
             updated_ms) VALUES ('staff', $1, 0, 1, 0, 0)",
        )
        .bind(p.id)
        .execute(db.pool())
        .await
        .unwrap();
        let err = persons::delete(db, &admin(), p.id).await.unwrap_err();
        assert!(err.to_string().contains("1 permits"), "{err}");
        assert!(persons::get(db, p.id).await.is_ok(), "{:?}", t.kind);
        let (audits, _) = trail(db, "person", p.id).await;
        assert_eq!(audits, ["create"], "a refused delete leaves no audit entry");
    }
}

#[tokio::test]
async fn a_vehicle_is_registered_found_by_plate_updated_and_deleted_with_its_trail() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let owner = persons::create(db, &admin(), person("张伟", "staff", "", ""))
            .await
            .unwrap();
        let v = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
            .await
            .unwrap();
        assert_eq!(v.owner_id, Some(owner.id));
        assert_eq!(v.owner_name.as_deref(), Some("张伟"));
        assert_eq!(vehicles::get(db, v.id).await.unwrap(), v);
        assert_eq!(
            vehicles::by_plate(db, "京A12345", None).await.unwrap(),
            vec![v.clone()]
        );
        assert!(
            vehicles::by_plate(db, "京A12345", Some("yellow"))
                .await
                .unwrap()
                .is_empty()
        );

        let mut changed = vehicle("京A12345", "blue", owner.id);
        changed.vehicle_type = "suv".into();
        changed.note = "白色".into();
        let u = vehicles::update(db, &admin(), v.id, changed).await.unwrap();
        assert_eq!((u.vehicle_type.as_str(), u.note.as_str()), ("suv", "白色"));

        vehicles::delete(db, &admin(), v.id).await.unwrap();
        assert!(matches!(
            vehicles::get(db, v.id).await,
            Err(RepoError::NotFound)
        ));
        let (audits, changes) = trail(db, "vehicle", v.id).await;
        assert_eq!(audits, ["create", "update", "delete"], "{:?}", t.kind);
        assert_eq!(changes, ["upsert", "upsert", "delete"]);
    }
}

#[tokio::test]
async fn the_same_plate_and_colour_cannot_be_registered_twice_but_another_colour_can() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let owner = persons::create(db, &admin(), person("张伟", "staff", "", ""))
            .await
            .unwrap();
        let first = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
            .await
            .unwrap();
        let err = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::Conflict(m) if m.contains("京A12345")),
            "{err}"
        );
        let yellow = vehicles::create(db, &admin(), vehicle("京A12345", "yellow", owner.id))
            .await
            .unwrap();
        let err = vehicles::update(
            db,
            &admin(),
            yellow.id,
            vehicle("京A12345", "blue", owner.id),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RepoError::Conflict(_)), "{err}");
        assert_eq!(
            vehicles::by_plate(db, "京A12345", None)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            vehicles::get(db, yellow.id).await.unwrap().plate_colour,
            "yellow"
        );
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'vehicle'"
            )
            .await,
            2,
            "refusals are not audited ({:?}, first {})",
            t.kind,
            first.id
        );
    }
}

#[tokio::test]
async fn vehicles_are_searched_by_partial_plate_owner_and_type() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let a = persons::create(db, &admin(), person("A", "staff", "", ""))
            .await
            .unwrap();
        let b = persons::create(db, &admin(), person("B", "staff", "", ""))
            .await
            .unwrap();
        vehicles::create(db, &admin(), vehicle("京A12345", "blue", a.id))
            .await
            .unwrap();
        let mut truck = vehicle("京B12399", "yellow", b.id);
        truck.vehicle_type = "truck".into();
        vehicles::create(db, &admin(), truck).await.unwrap();
        vehicles::create(db, &admin(), vehicle("沪C88888", "blue", b.id))
            .await
            .unwrap();
        let plates = |r: &gatehouse::central::db::Paged<vehicles::Vehicle>| {
            r.items.iter().map(|v| v.plate.clone()).collect::<Vec<_>>()
        };
        let find = |plate: Option<&str>, owner: Option<i64>, ty: Option<&str>| VehicleSearch {
            plate: plate.map(str::to_string),
            owner_id: owner,
            vehicle_type: ty.map(str::to_string),
        };
        let r = vehicles::search(db, &find(Some("123"), None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(plates(&r), ["京A12345", "京B12399"]);
        let r = vehicles::search(db, &find(None, Some(b.id), None), Page::default())
            .await
            .unwrap();
        assert_eq!(plates(&r), ["京B12399", "沪C88888"]);
        let r = vehicles::search(
            db,
            &find(Some("京"), Some(b.id), Some("truck")),
            Page::default(),
        )
        .await
        .unwrap();
        assert_eq!(plates(&r), ["京B12399"]);
        let r = vehicles::search(
            db,
            &VehicleSearch::default(),
            Page {
                limit: 1,
                offset: 1,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (r.total, plates(&r)),
            (3, vec!["京B12399".to_string()]),
            "{:?}",
            t.kind
        );
    }
}

#[tokio::test]
async fn a_vehicle_with_a_credential_is_not_deleted() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let owner = persons::create(db, &admin(), person("张伟", "staff", "", ""))
            .await
            .unwrap();
        let v = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
            .await
            .unwrap();
        credentials::create(db, &admin(), credential("E200AA", v.id))
            .await
            .unwrap();
        let err = vehicles::delete(db, &admin(), v.id).await.unwrap_err();
        assert!(matches!(err, RepoError::Reference(_)), "{err} {:?}", t.kind);
        assert!(vehicles::get(db, v.id).await.is_ok());
    }
}

#[tokio::test]
async fn a_credential_is_issued_reported_lost_searched_by_epc_prefix_and_deleted() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let owner = persons::create(db, &admin(), person("张伟", "staff", "", ""))
            .await
            .unwrap();
        let v1 = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
            .await
            .unwrap();
        let v2 = vehicles::create(db, &admin(), vehicle("京A54321", "blue", owner.id))
            .await
            .unwrap();
        let mut bound = credential("E2003098881900722140369E", v1.id);
        bound.tid = Some("E2801130200020A1".into());
        let c = credentials::create(db, &admin(), bound).await.unwrap();
        assert_eq!(c.plate, "京A12345");
        assert_eq!(c.tid.as_deref(), Some("E2801130200020A1"));
        credentials::create(db, &admin(), credential("E2003098FFFF", v2.id))
            .await
            .unwrap();
        credentials::create(db, &admin(), credential("3000ABCD", v2.id))
            .await
            .unwrap();

        let mut lost = credential("E2003098881900722140369E", v1.id);
        lost.status = "lost".into();
        let u = credentials::update(db, &admin(), c.id, lost).await.unwrap();
        assert_eq!((u.status.as_str(), u.tid.as_deref()), ("lost", None));

        let find =
            |prefix: Option<&str>, vehicle: Option<i64>, status: Option<&str>| CredentialSearch {
                epc_prefix: prefix.map(str::to_string),
                vehicle_id: vehicle,
                status: status.map(str::to_string),
            };
        let epcs = |r: &gatehouse::central::db::Paged<credentials::Credential>| {
            r.items.iter().map(|c| c.epc.clone()).collect::<Vec<_>>()
        };
        let r = credentials::search(db, &find(Some("E2003098"), None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(epcs(&r), ["E2003098881900722140369E", "E2003098FFFF"]);
        let r = credentials::search(db, &find(Some("3098"), None, None), Page::default())
            .await
            .unwrap();
        assert_eq!(r.total, 0, "a prefix, not a substring");
        let r = credentials::search(db, &find(None, Some(v2.id), None), Page::default())
            .await
            .unwrap();
        assert_eq!(epcs(&r), ["E2003098FFFF", "3000ABCD"]);
        let r = credentials::search(db, &find(None, None, Some("lost")), Page::default())
            .await
            .unwrap();
        assert_eq!(epcs(&r), ["E2003098881900722140369E"]);

        credentials::delete(db, &admin(), c.id).await.unwrap();
        let (audits, changes) = trail(db, "credential", c.id).await;
        assert_eq!(audits, ["create", "update", "delete"], "{:?}", t.kind);
        assert_eq!(changes, ["upsert", "upsert", "delete"]);
    }
}

#[tokio::test]
async fn an_epc_is_issued_only_once() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let owner = persons::create(db, &admin(), person("张伟", "staff", "", ""))
            .await
            .unwrap();
        let v = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
            .await
            .unwrap();
        credentials::create(db, &admin(), credential("E200AA", v.id))
            .await
            .unwrap();
        let err = credentials::create(db, &admin(), credential("E200AA", v.id))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoError::Conflict(m) if m.contains("E200AA")),
            "{err} {:?}",
            t.kind
        );
        assert_eq!(count(db, "SELECT COUNT(*) FROM credentials").await, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// The API

use crate::harness::{APPROVER_DEPARTMENT, TestApp};
use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};

async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for t in crate::harness::each_database().await {
        apps.push(TestApp::spawn(t).await);
    }
    apps
}

/// Percent-encodes a path segment or query value (plates are not ASCII).
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `(field, code)` pairs of a 422 body.
fn field_codes(body: &Value) -> Vec<(String, String)> {
    body["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {body}"))
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, out) = app
        .call(Method::POST, path, Some(Role::Admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {out}");
    out
}

async fn api_person(app: &TestApp, name: &str, department: &str) -> i64 {
    post(
        app,
        "/api/v1/persons",
        json!({"name": name, "category": "staff", "department": department,
               "phone": "138 1234 5678", "id_card": "11010519491231002x"}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

async fn api_vehicle(app: &TestApp, plate: &str, owner: i64) -> i64 {
    post(
        app,
        "/api/v1/vehicles",
        json!({"plate": plate, "plate_colour": "blue", "owner_id": owner}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn security_creates_reads_replaces_searches_and_deletes_a_person_through_the_api() {
    for app in apps().await {
        let (status, p) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Security),
                Some(
                    json!({"name": " 张伟 ", "category": "staff", "department": "计算机学院",
                            "phone": "138-1234-5678", "id_card": "11010519491231002x"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{p}");
        assert_eq!(p["name"], "张伟", "trimmed");
        assert_eq!(
            p["phone"], "13812345678",
            "separators removed, shown in full"
        );
        assert_eq!(
            p["id_card"], "11010519491231002X",
            "normalised, shown in full"
        );
        let id = p["id"].as_i64().unwrap();
        let path = format!("/api/v1/persons/{id}");

        let (status, got) = app.call(Method::GET, &path, Some(Role::Admin), None).await;
        assert_eq!((status, &got), (StatusCode::OK, &p));

        let (status, put) = app
            .call(
                Method::PUT,
                &path,
                Some(Role::Admin),
                Some(json!({"name": "张伟", "category": "student"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{put}");
        assert_eq!(
            (&put["category"], &put["department"], &put["id_card"]),
            (&json!("student"), &json!(""), &json!("")),
            "PUT replaces every field"
        );

        let (status, page) = app
            .call(
                Method::GET,
                "/api/v1/persons?q=%E5%BC%A0&category=student&per_page=10",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 1);
        assert_eq!((&page["page"], &page["per_page"]), (&json!(1), &json!(10)));
        assert_eq!(page["items"][0]["id"], id);

        let (status, body) = app
            .call(Method::DELETE, &path, Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app
            .call_lang(Method::GET, &path, Some(Role::Admin), None, "en")
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], format!("person {id} does not exist"));

        let (audits, changes) = trail(&app.db, "person", id).await;
        assert_eq!(audits, ["create", "update", "delete"], "{:?}", app.kind);
        assert_eq!(changes, ["upsert", "upsert", "delete"]);
        let who: Vec<String> = {
            use sqlx::Row;
            sqlx::query("SELECT operator_name FROM audit_log WHERE entity = 'person' ORDER BY id")
                .fetch_all(app.db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.get("operator_name"))
                .collect()
        };
        assert_eq!(who, ["security", "admin", "admin"]);
    }
}

#[tokio::test]
async fn id_cards_and_phones_are_masked_for_every_role_but_admin_and_security() {
    for app in apps().await {
        let id = api_person(&app, "张伟", APPROVER_DEPARTMENT).await;
        let path = format!("/api/v1/persons/{id}");
        for role in [Role::Admin, Role::Security] {
            let (status, p) = app.call(Method::GET, &path, Some(role), None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                (&p["id_card"], &p["phone"]),
                (&json!("11010519491231002X"), &json!("13812345678")),
                "{role:?}"
            );
        }
        for role in [Role::Guard, Role::Viewer, Role::Approver] {
            let (status, p) = app.call(Method::GET, &path, Some(role), None).await;
            assert_eq!(status, StatusCode::OK, "{role:?}: {p}");
            assert_eq!(
                (&p["id_card"], &p["phone"]),
                (&json!("1101**********002X"), &json!("138****5678")),
                "{role:?}"
            );
            let (_, page) = app
                .call(Method::GET, "/api/v1/persons", Some(role), None)
                .await;
            assert_eq!(
                page["items"][0]["id_card"], "1101**********002X",
                "{role:?}"
            );
            assert_eq!(page["items"][0]["phone"], "138****5678", "{role:?}");
        }
        assert!(
            !serde_json::to_string(
                &app.call(Method::GET, "/api/v1/persons", Some(Role::Guard), None)
                    .await
                    .1
            )
            .unwrap()
            .contains("13812345678"),
            "{:?}",
            app.kind
        );
    }
}

#[tokio::test]
async fn only_admin_and_security_find_a_person_by_phone_digits() {
    for app in apps().await {
        api_person(&app, "张伟", "").await;
        for (role, found) in [
            (Role::Admin, 1),
            (Role::Security, 1),
            (Role::Guard, 0),
            (Role::Viewer, 0),
        ] {
            let (status, page) = app
                .call(Method::GET, "/api/v1/persons?q=1234", Some(role), None)
                .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(page["total"], found, "{role:?} {:?}", app.kind);
        }
        let (_, page) = app
            .call(
                Method::GET,
                "/api/v1/persons?q=%E5%BC%A0",
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(page["total"], 1, "guards find persons by name");
    }
}

#[tokio::test]
async fn an_approver_reads_only_the_persons_of_their_own_department() {
    for app in apps().await {
        let own = api_person(&app, "本院", APPROVER_DEPARTMENT).await;
        let other = api_person(&app, "外院", "数学学院").await;
        let (status, page) = app
            .call(Method::GET, "/api/v1/persons", Some(Role::Approver), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 1);
        assert_eq!(page["items"][0]["id"], own);
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/persons/{own}"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/api/v1/persons/{other}"),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = app
            .call(
                Method::GET,
                &format!("/api/v1/persons?department={}", enc("数学学院")),
                Some(Role::Approver),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{:?}", app.kind);
        let (status, _) = app
            .call(Method::GET, "/api/v1/vehicles", Some(Role::Approver), None)
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "approvers do not read vehicles"
        );
    }
}

#[tokio::test]
async fn people_endpoints_need_a_session_and_only_admin_and_security_write() {
    for app in apps().await {
        let person = api_person(&app, "张伟", "").await;
        let vehicle = api_vehicle(&app, "京A12345", person).await;
        let credential = post(
            &app,
            "/api/v1/credentials",
            json!({"epc": "E200AA", "vehicle_id": vehicle}),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let person_body = json!({"name": "李四", "category": "staff"});
        let vehicle_body = json!({"plate": "京B12345", "plate_colour": "blue", "owner_id": person});
        let credential_body = json!({"epc": "E200BB", "vehicle_id": vehicle});
        let writes = [
            (
                Method::POST,
                "/api/v1/persons".to_string(),
                Some(person_body.clone()),
            ),
            (
                Method::PUT,
                format!("/api/v1/persons/{person}"),
                Some(person_body),
            ),
            (Method::DELETE, format!("/api/v1/persons/{person}"), None),
            (
                Method::POST,
                "/api/v1/vehicles".to_string(),
                Some(vehicle_body.clone()),
            ),
            (
                Method::PUT,
                format!("/api/v1/vehicles/{vehicle}"),
                Some(vehicle_body),
            ),
            (Method::DELETE, format!("/api/v1/vehicles/{vehicle}"), None),
            (
                Method::POST,
                "/api/v1/credentials".to_string(),
                Some(credential_body.clone()),
            ),
            (
                Method::PUT,
                format!("/api/v1/credentials/{credential}"),
                Some(credential_body),
            ),
            (
                Method::DELETE,
                format!("/api/v1/credentials/{credential}"),
                None,
            ),
        ];
        for (method, path, body) in &writes {
            let (status, _) = app.call(method.clone(), path, None, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a session"
            );
            for role in [Role::Guard, Role::Viewer, Role::Approver] {
                let (status, out) = app
                    .call(method.clone(), path, Some(role), body.clone())
                    .await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {role:?}: {out}"
                );
                assert_eq!(out["code"], "forbidden");
            }
        }
        let reads = [
            "/api/v1/persons".to_string(),
            format!("/api/v1/persons/{person}"),
            "/api/v1/vehicles".to_string(),
            format!("/api/v1/vehicles/{vehicle}"),
            format!("/api/v1/vehicles/by-plate/{}", enc("京A12345")),
            "/api/v1/credentials".to_string(),
            format!("/api/v1/credentials/{credential}"),
        ];
        for path in &reads {
            let (status, _) = app.call(Method::GET, path, None, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path}");
            for role in [Role::Admin, Role::Security, Role::Guard, Role::Viewer] {
                let (status, out) = app.call(Method::GET, path, Some(role), None).await;
                assert_eq!(status, StatusCode::OK, "GET {path} as {role:?}: {out}");
            }
        }
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM persons").await, 1);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vehicles").await, 1);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM credentials").await, 1);
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action <> 'create'"
            )
            .await,
            0,
            "refused writes leave no trace ({:?})",
            app.kind
        );
    }
}

#[tokio::test]
async fn an_invalid_person_is_refused_field_by_field_and_nothing_is_stored() {
    for app in apps().await {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Admin),
                Some(
                    json!({"name": "  ", "category": "teacher", "phone": "call me",
                            "id_card": "110105194912310021"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(
            field_codes(&body),
            pairs(&[
                ("name", "required"),
                ("category", "invalid_category"),
                ("phone", "invalid_phone"),
                ("id_card", "id_card_check_digit"),
            ])
        );
        assert!(
            body["fields"][3]["message"]
                .as_str()
                .unwrap()
                .contains("校验位"),
            "zh-CN by default: {body}"
        );
        let (_, en) = app
            .call_lang(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Admin),
                Some(json!({"name": "张伟", "category": "staff", "id_card": "11010519491331002X"})),
                "en",
            )
            .await;
        assert_eq!(
            field_codes(&en),
            pairs(&[("id_card", "id_card_birth_date")])
        );
        assert_eq!(
            en["fields"][0]["message"],
            "the birth date in the ID card number is not a valid date"
        );
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/persons",
                Some(Role::Admin),
                Some(json!({"name": "张伟", "category": "staff", "role": "boss"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field_codes(&body), pairs(&[("role", "unknown_field")]));

        let id = api_person(&app, "张伟", "").await;
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/api/v1/persons/{id}"),
                Some(Role::Admin),
                Some(json!({"name": "李四", "category": "staff", "id_card": "1234"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM persons").await, 1);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM persons WHERE name = '张伟'").await,
            1,
            "the refused PUT changed nothing ({:?})",
            app.kind
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'person'"
            )
            .await,
            1
        );
    }
}

#[tokio::test]
async fn deleting_a_person_who_owns_a_vehicle_is_a_conflict_naming_what_they_hold() {
    for app in apps().await {
        let person = api_person(&app, "张伟", "").await;
        api_vehicle(&app, "京A12345", person).await;
        let (status, body) = app
            .call_lang(
                Method::DELETE,
                &format!("/api/v1/persons/{person}"),
                Some(Role::Admin),
                None,
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["message"],
            format!(
                "person {person} still holds 0 permits, 1 vehicles and 0 visitor bookings; \
                 remove those first"
            )
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM persons").await,
            1,
            "{:?}",
            app.kind
        );
    }
}

#[tokio::test]
async fn a_plate_typed_full_width_and_lower_case_is_stored_normalised_and_looked_up_exactly() {
    for app in apps().await {
        let owner = api_person(&app, "张伟", "").await;
        let v = post(
            &app,
            "/api/v1/vehicles",
            json!({"plate": "京ａ·１２３４５", "plate_colour": "blue", "owner_id": owner,
                   "vehicle_type": "suv", "note": " 白色 "}),
        )
        .await;
        assert_eq!(v["plate"], "京A12345");
        assert_eq!(
            (&v["vehicle_type"], &v["note"]),
            (&json!("suv"), &json!("白色"))
        );
        assert_eq!(v["owner_name"], "张伟");

        for typed in ["京a12345", "京A-12345", "京Ａ12345"] {
            let (status, found) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/vehicles/by-plate/{}", enc(typed)),
                    Some(Role::Guard),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{typed}: {found}");
            assert_eq!(found, json!([v.clone()]), "{typed}");
        }
        let (status, _) = app
            .call(
                Method::GET,
                &format!(
                    "/api/v1/vehicles/by-plate/{}?plate_colour=yellow",
                    enc("京A12345")
                ),
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = app
            .call_lang(
                Method::GET,
                &format!("/api/v1/vehicles/by-plate/{}", enc("京B54321")),
                Some(Role::Guard),
                None,
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body["message"],
            "no vehicle is registered with plate 京B54321"
        );
        let (status, body) = app
            .call(
                Method::GET,
                &format!("/api/v1/vehicles/by-plate/{}", enc("京A1234")),
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", app.kind);
        assert_eq!(
            field_codes(&body),
            pairs(&[("plate", "plate_wrong_length")])
        );
    }
}

#[tokio::test]
async fn registering_the_same_plate_and_colour_twice_is_a_conflict_naming_the_plate() {
    for app in apps().await {
        let owner = api_person(&app, "张伟", "").await;
        let first = api_vehicle(&app, "京A12345", owner).await;
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/vehicles",
                Some(Role::Admin),
                Some(json!({"plate": "京a 12345", "plate_colour": "blue", "owner_id": owner})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "conflict");
        assert_eq!(body["message"], "车牌 京A12345（蓝牌）已登记为另一辆车");
        let second = post(
            &app,
            "/api/v1/vehicles",
            json!({"plate": "京A12345", "plate_colour": "yellow", "owner_id": owner}),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let (status, body) = app
            .call_lang(
                Method::PUT,
                &format!("/api/v1/vehicles/{second}"),
                Some(Role::Admin),
                Some(json!({"plate": "京A12345", "plate_colour": "blue", "owner_id": owner})),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["message"],
            "plate 京A12345 (blue) is already registered to another vehicle"
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vehicles").await, 2);
        let (_, still) = app
            .call(
                Method::GET,
                &format!("/api/v1/vehicles/{second}"),
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(
            still["plate_colour"], "yellow",
            "{:?} first {first}",
            app.kind
        );
    }
}

#[tokio::test]
async fn an_invalid_vehicle_is_refused_field_by_field_and_nothing_is_stored() {
    for app in apps().await {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/vehicles",
                Some(Role::Admin),
                Some(
                    json!({"plate": "京A1234I", "plate_colour": "pink", "vehicle_type": "tank",
                            "owner_id": 999}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            pairs(&[
                ("plate", "plate_forbidden_letter"),
                ("plate_colour", "invalid_plate_colour"),
                ("vehicle_type", "invalid_vehicle_type"),
                ("owner_id", "unknown_owner"),
            ])
        );
        assert_eq!(
            body["fields"][0]["message"],
            "第 7 位的字母“I”不用于车牌（易与数字混淆）"
        );
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/vehicles",
                Some(Role::Admin),
                Some(json!({"plate": "京A12345", "plate_colour": "blue"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        // The skeleton's extractor names the body, not the missing field, in `field`; the
        // message names it.
        assert_eq!(field_codes(&body)[0].1, "missing_field");
        assert!(
            body["fields"][0]["message"]
                .as_str()
                .unwrap()
                .contains("owner_id"),
            "{body}"
        );
        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/vehicles?vehicle_type=tank&colour=red",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body)[0].0,
            "colour",
            "unknown query parameters are refused"
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vehicles").await, 0);
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE entity = 'vehicle'"
            )
            .await,
            0,
            "{:?}",
            app.kind
        );
    }
}

#[tokio::test]
async fn vehicles_are_searched_by_a_partial_plate_in_any_spelling_by_owner_and_by_type() {
    for app in apps().await {
        let a = api_person(&app, "A", "").await;
        let b = api_person(&app, "B", "").await;
        api_vehicle(&app, "京A12345", a).await;
        api_vehicle(&app, "京B12399", b).await;
        post(
            &app,
            "/api/v1/vehicles",
            json!({"plate": "沪C88888", "plate_colour": "yellow", "owner_id": b,
                   "vehicle_type": "truck"}),
        )
        .await;
        let plates = |page: &Value| -> Vec<String> {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["plate"].as_str().unwrap().to_string())
                .collect()
        };
        let get = |query: String| {
            let app = &app;
            async move {
                let (status, page) = app
                    .call(
                        Method::GET,
                        &format!("/api/v1/vehicles?{query}"),
                        Some(Role::Viewer),
                        None,
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{query}: {page}");
                page
            }
        };
        assert_eq!(
            plates(&get(format!("plate={}", enc("ａ１2"))).await),
            ["京A12345"]
        );
        assert_eq!(
            plates(&get("plate=123".into()).await),
            ["京A12345", "京B12399"]
        );
        assert_eq!(
            plates(&get(format!("owner_id={b}")).await),
            ["京B12399", "沪C88888"]
        );
        assert_eq!(
            plates(&get("vehicle_type=truck".into()).await),
            ["沪C88888"]
        );
        let page = get("page=2&per_page=2".into()).await;
        assert_eq!(
            (plates(&page), &page["total"]),
            (vec!["沪C88888".to_string()], &json!(3))
        );
        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/vehicles?per_page=501",
                Some(Role::Viewer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", app.kind);
        assert_eq!(field_codes(&body), pairs(&[("per_page", "out_of_range")]));
    }
}

#[tokio::test]
async fn a_credential_is_issued_in_lower_case_hex_stored_upper_case_reported_lost_and_deleted() {
    for app in apps().await {
        let owner = api_person(&app, "张伟", "").await;
        let vehicle = api_vehicle(&app, "京A12345", owner).await;
        let c = post(
            &app,
            "/api/v1/credentials",
            json!({"epc": "e200 3098 8819 0072 2140 369e", "tid": "e2801130200020a1",
                   "vehicle_id": vehicle}),
        )
        .await;
        assert_eq!(c["epc"], "E2003098881900722140369E");
        assert_eq!(c["tid"], "E2801130200020A1");
        assert_eq!(
            (&c["status"], &c["plate"]),
            (&json!("active"), &json!("京A12345"))
        );
        let id = c["id"].as_i64().unwrap();
        let path = format!("/api/v1/credentials/{id}");

        let (status, found) = app
            .call(
                Method::GET,
                "/api/v1/credentials?epc=e2003098",
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["items"], json!([c.clone()]));
        let (_, found) = app
            .call(
                Method::GET,
                &format!("/api/v1/credentials?vehicle_id={vehicle}&status=active"),
                Some(Role::Viewer),
                None,
            )
            .await;
        assert_eq!(found["total"], 1);

        let (status, lost) = app
            .call(
                Method::PUT,
                &path,
                Some(Role::Security),
                Some(json!({"epc": "E2003098881900722140369E", "tid": "",
                            "vehicle_id": vehicle, "status": "lost"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{lost}");
        assert_eq!(
            (&lost["status"], &lost["tid"]),
            (&json!("lost"), &Value::Null)
        );
        let (_, found) = app
            .call(
                Method::GET,
                "/api/v1/credentials?status=active",
                Some(Role::Guard),
                None,
            )
            .await;
        assert_eq!(found["total"], 0);

        let (status, _) = app
            .call(
                Method::DELETE,
                &format!("/api/v1/vehicles/{vehicle}"),
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "a vehicle with a tag stays");

        let (status, _) = app
            .call(Method::DELETE, &path, Some(Role::Admin), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.call(Method::GET, &path, Some(Role::Admin), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (audits, changes) = trail(&app.db, "credential", id).await;
        assert_eq!(audits, ["create", "update", "delete"], "{:?}", app.kind);
        assert_eq!(changes, ["upsert", "upsert", "delete"]);
    }
}

#[tokio::test]
async fn an_invalid_credential_is_refused_field_by_field_and_nothing_is_stored() {
    for app in apps().await {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/credentials",
                Some(Role::Admin),
                Some(json!({"epc": "XYZ", "tid": "123", "vehicle_id": 999, "status": "stolen"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            field_codes(&body),
            pairs(&[
                ("epc", "tag_not_hex"),
                ("tid", "tag_not_hex"),
                ("status", "invalid_status"),
                ("vehicle_id", "unknown_vehicle"),
            ])
        );
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/credentials",
                Some(Role::Admin),
                Some(json!({"epc": "00".repeat(17), "vehicle_id": 999})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field_codes(&body)[0], ("epc".into(), "tag_too_long".into()));
        let (status, body) = app
            .call(
                Method::GET,
                "/api/v1/credentials?epc=E2G",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field_codes(&body), pairs(&[("epc", "tag_not_hex")]));
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM credentials").await, 0);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM change_log").await,
            0,
            "{:?}",
            app.kind
        );
    }
}

#[tokio::test]
async fn issuing_an_epc_twice_is_a_conflict_naming_it() {
    for app in apps().await {
        let owner = api_person(&app, "张伟", "").await;
        let vehicle = api_vehicle(&app, "京A12345", owner).await;
        post(
            &app,
            "/api/v1/credentials",
            json!({"epc": "E200AA", "vehicle_id": vehicle}),
        )
        .await;
        let (status, body) = app
            .call_lang(
                Method::POST,
                "/api/v1/credentials",
                Some(Role::Admin),
                Some(json!({"epc": "e2 00 aa", "vehicle_id": vehicle})),
                "en",
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body["message"],
            "EPC E200AA is already issued as another credential"
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM credentials").await,
            1,
            "{:?}",
            app.kind
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_people_endpoint_with_its_tag() {
    let doc = serde_json::to_value(gatehouse::central::api::openapi()).unwrap();
    for (path, methods, tag) in [
        ("/api/v1/persons", &["get", "post"][..], "persons"),
        (
            "/api/v1/persons/{id}",
            &["get", "put", "delete"][..],
            "persons",
        ),
        ("/api/v1/vehicles", &["get", "post"][..], "vehicles"),
        (
            "/api/v1/vehicles/{id}",
            &["get", "put", "delete"][..],
            "vehicles",
        ),
        (
            "/api/v1/vehicles/by-plate/{plate}",
            &["get"][..],
            "vehicles",
        ),
        ("/api/v1/credentials", &["get", "post"][..], "credentials"),
        (
            "/api/v1/credentials/{id}",
            &["get", "put", "delete"][..],
            "credentials",
        ),
    ] {
        for m in methods {
            let op = &doc["paths"][path][m];
            assert_eq!(op["tags"][0], tag, "{m} {path}: {op}");
        }
    }
    for schema in [
        "Person",
        "NewPerson",
        "Vehicle",
        "NewVehicle",
        "Credential",
        "NewCredential",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}
