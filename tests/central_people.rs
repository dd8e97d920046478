//! Persons, vehicles and credentials on the central server: the repositories (CRUD, search,
//! pagination, audit and change-log rows, uniqueness) and the admin API over them (roles, masks,
//! validation, nothing written on bad input), each on SQLite and PostgreSQL.

mod central_support;

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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
    for t in central_support::each_database().await {
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
