//! Vehicles and their credentials (RFID tags) on the central server: the repositories
//! (registration, plate and EPC uniqueness, search, what blocks a delete, the audit and
//! change-log trail) and the admin API over them (plates in any spelling, validation, conflicts),
//! each on SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Db, Page, RepoError};
use gatehouse::central::repo::credentials::{self, CredentialSearch};
use gatehouse::central::repo::persons::{self, Person};
use gatehouse::central::repo::vehicles::{self, Vehicle, VehicleSearch};
use serde_json::{Value, json};

use crate::harness::count;
use crate::people::{
    admin, api_person, api_vehicle, apps, credential, enc, field_codes, pairs, person, post, trail,
    vehicle,
};

// ---------------------------------------------------------------------------------------------
// Repositories

/// 张伟 (staff) and his blue 京A12345, registered by the admin: (owner, vehicle).
async fn zhang_wei_and_car(db: &Db) -> (Person, Vehicle) {
    let owner = persons::create(db, &admin(), person("张伟", "staff", "", ""))
        .await
        .unwrap();
    let car = vehicles::create(db, &admin(), vehicle("京A12345", "blue", owner.id))
        .await
        .unwrap();
    (owner, car)
}

#[tokio::test]
async fn a_vehicle_is_registered_found_by_plate_updated_and_deleted_with_its_trail() {
    for t in crate::harness::each_database().await {
        let db = &t.db;
        let (owner, v) = zhang_wei_and_car(db).await;
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
        let (owner, first) = zhang_wei_and_car(db).await;
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
        let (_, v) = zhang_wei_and_car(db).await;
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
        let (owner, v1) = zhang_wei_and_car(db).await;
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
        let (_, v) = zhang_wei_and_car(db).await;
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
