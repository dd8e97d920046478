//! Persons on the central server: the repository (CRUD, search, pagination, the audit and
//! change-log rows, what blocks a delete) and the admin API over it (roles, masks, department
//! scoping, validation, nothing written on bad input), each on SQLite and PostgreSQL; the
//! OpenAPI document's people endpoints.

use gatehouse::central::db::{Actor, Db, Page, RepoError};
use gatehouse::central::repo::credentials::NewCredential;
use gatehouse::central::repo::persons::{self, NewPerson, PersonSearch};
use gatehouse::central::repo::vehicles::{self, NewVehicle};

pub(crate) fn admin() -> Actor {
    Actor {
        operator_id: None,
        name: "test-admin".into(),
    }
}

pub(crate) fn person(name: &str, category: &str, department: &str, phone: &str) -> NewPerson {
    NewPerson {
        name: name.into(),
        category: category.into(),
        department: department.into(),
        phone: phone.into(),
        id_card: "11010519491231002X".into(),
        staff_no: String::new(),
        email: String::new(),
    }
}

pub(crate) fn vehicle(plate: &str, colour: &str, owner_id: i64) -> NewVehicle {
    NewVehicle {
        plate: plate.into(),
        plate_colour: colour.into(),
        vehicle_type: "car".into(),
        owner_id,
        note: String::new(),
    }
}

pub(crate) fn credential(epc: &str, vehicle_id: i64) -> NewCredential {
    NewCredential {
        epc: epc.into(),
        tid: None,
        vehicle_id,
        status: "active".into(),
    }
}

/// The audit actions and change-log ops recorded for one entity, oldest first.
pub(crate) async fn trail(db: &Db, entity: &str, id: i64) -> (Vec<String>, Vec<String>) {
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

// ---------------------------------------------------------------------------------------------
// The API

use crate::harness::{APPROVER_DEPARTMENT, TestApp, count};
use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use serde_json::{Value, json};

pub(crate) async fn apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for t in crate::harness::each_database().await {
        apps.push(TestApp::spawn(t).await);
    }
    apps
}

/// Percent-encodes a path segment or query value (plates are not ASCII).
pub(crate) fn enc(text: &str) -> String {
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
pub(crate) fn field_codes(body: &Value) -> Vec<(String, String)> {
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

pub(crate) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub(crate) async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, out) = app
        .call(Method::POST, path, Some(Role::Admin), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {out}");
    out
}

pub(crate) async fn api_person(app: &TestApp, name: &str, department: &str) -> i64 {
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

pub(crate) async fn api_vehicle(app: &TestApp, plate: &str, owner: i64) -> i64 {
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
async fn the_openapi_document_lists_every_people_endpoint_with_its_tag() {
    let doc = serde_json::to_value(gatehouse::central::server::openapi()).unwrap();
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
