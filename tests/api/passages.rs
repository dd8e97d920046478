//! The passage search (卡口过车记录): every vehicle a lane saw — decisions, camera reads the
//! lane did not act on, passages (those the guard let through under the plate they were
//! identified by) — found by plate fragment, time range, gate, outcome and outside vehicles
//! only, with the read's colour, confidence and photos; guards see only their gates; the
//! matches export as CSV and XLSX.

use axum::http::{Method, StatusCode};
use gatehouse::central::api::auth::Role;
use gatehouse::central::ingest::accept;
use gatehouse::domain::ReasonCode;
use gatehouse::wire::journal::EventBody;
use serde_json::{Value, json};

use crate::harness::{TestApp, each_database};
use crate::outside_vehicles::{DAY, download, drive, ev, get, on_day, record, sha, xlsx_rows};

/// (gate, seq) of each item, in the order served.
fn keys(page: &Value) -> Vec<(i64, i64)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["gate_id"].as_i64().unwrap(), i["seq"].as_i64().unwrap()))
        .collect()
}

/// `drive`'s traffic plus a low-confidence read held for the guard at gate 2.
async fn traffic(app: &TestApp) {
    drive(app).await;
    let mut held = record("exit", "鲁B12345", ReasonCode::HeldLowConfidence);
    held.camera.as_mut().unwrap().confidence = 41;
    accept(
        &app.state,
        2,
        &[ev(4, on_day(16, 0, 0), "exit", EventBody::Decision(held))],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn passages_are_found_by_plate_fragment_time_gate_and_outcome_with_their_photos() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        traffic(&app).await;
        let page = get(
            &app,
            Role::Security,
            &format!("/api/v1/passages?plate=c345&from={DAY}&to={DAY}"),
        )
        .await;
        assert_eq!(
            keys(&page),
            [(1, 11), (1, 10), (1, 8), (2, 3), (2, 1), (1, 3), (1, 1)],
            "{:?}: {page}",
            app.kind
        );
        assert_eq!(
            (page["total"].clone(), page["page"].clone()),
            (json!(7), json!(1))
        );
        let first = &page["items"][6];
        assert_eq!(first["kind"], "decision");
        assert_eq!(first["gate_name"], "北门");
        assert_eq!(first["lane"], "entry");
        assert_eq!(first["direction"], "entry");
        assert_eq!(first["credential"], "plate");
        assert_eq!(first["plate"], "沪C34567");
        assert_eq!(first["colour"], "blue");
        assert_eq!(first["granted"], false);
        assert_eq!(first["reason"], "denied_unknown_plate");
        assert_eq!(first["outside"], true);
        assert_eq!(first["confidence"], 95);
        assert_eq!(first["corrected_plate"], Value::Null);
        assert_eq!(
            first["photos"],
            json!([
                {"sha256": sha("沪C34567-1-entry-plate"), "kind": "plate"},
                {"sha256": sha("沪C34567-1-entry-scene"), "kind": "scene"},
            ])
        );
        let ignored = &page["items"][4];
        assert_eq!(ignored["kind"], "plate_ignored");
        assert_eq!(ignored["reason"], "no_vehicle");
        assert_eq!(ignored["confidence"], 88);
        assert_eq!(ignored["granted"], Value::Null);
        // The guard let it through; the passage is found under the plate it was identified by.
        // with the photos of the read it followed.
        assert_eq!(page["items"][3]["kind"], "passage");
        assert_eq!(page["items"][3]["plate"], "沪C34567");
        assert_eq!(page["items"][3]["confidence"], 88);
        assert_eq!(
            page["items"][3]["photos"][1],
            json!({"sha256": sha("沪C34567-1-exit-scene"), "kind": "scene"})
        );
        assert_eq!(
            page["items"][5]["photos"][0]["sha256"],
            sha("沪C34567-1-entry-plate")
        );

        for (query, expected) in [
            ("outcome=denied", vec![(1, 8), (1, 4), (1, 1)]),
            ("outcome=held", vec![(2, 4)]),
            ("outcome=ignored", vec![(2, 1)]),
            ("outcome=granted", vec![]),
            ("gate_id=2", vec![(2, 4), (2, 3), (2, 1)]),
            ("gate_id=2&kind=passage", vec![(2, 3)]),
            (
                "from=2026-03-02T10:00&to=2026-03-02T12:00",
                vec![(2, 3), (2, 1)],
            ),
            (
                "from=2026-03-02T01:00:00Z&to=2026-03-02T01:20:00Z",
                vec![(1, 6), (1, 4), (1, 3), (1, 1)],
            ),
        ] {
            let page = get(&app, Role::Admin, &format!("/api/v1/passages?{query}")).await;
            assert_eq!(keys(&page), expected, "{query}: {page}");
        }
        // Outside vehicles only: all but the permit holder's passage.
        let outside = get(
            &app,
            Role::Admin,
            "/api/v1/passages?outside=true&per_page=100",
        )
        .await;
        assert_eq!(outside["total"], 10, "{outside}");
        assert!(!keys(&outside).contains(&(1, 7)));
        let all = get(&app, Role::Admin, "/api/v1/passages?per_page=2&page=2").await;
        assert_eq!(all["total"], 11);
        assert_eq!(keys(&all), [(1, 10), (1, 8)]);
    }
}

#[tokio::test]
async fn a_guard_searches_only_their_gates_and_bad_filters_are_refused_clearly() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        traffic(&app).await;
        // The test guard is posted at gate 1.
        let own = get(&app, Role::Guard, "/api/v1/passages?plate=C345").await;
        assert_eq!(keys(&own), [(1, 11), (1, 10), (1, 8), (1, 3), (1, 1)]);
        assert_eq!(
            app.status(Method::GET, "/api/v1/passages?gate_id=2", Some(Role::Guard))
                .await,
            StatusCode::FORBIDDEN
        );
        for role in [Role::Viewer, Role::Approver, Role::Applicant] {
            assert_eq!(
                app.status(Method::GET, "/api/v1/passages", Some(role))
                    .await,
                StatusCode::FORBIDDEN,
                "{role:?}"
            );
        }
        for (bad, field) in [
            ("/api/v1/passages?outcome=maybe", "outcome"),
            ("/api/v1/passages?kind=barrier", "kind"),
            ("/api/v1/passages?plate=A%0012", "plate"),
            ("/api/v1/outside-vehicles?plate=A%0012", "plate"),
            ("/api/v1/passages?from=tomorrow", "from"),
            ("/api/v1/passages?to=2026-13-01", "to"),
            ("/api/v1/passages?plate=AAAAAAAAAAAAAAAAAAAA", "plate"),
            ("/api/v1/passages/export?format=doc", "format"),
        ] {
            let (status, body) = app.call(Method::GET, bad, Some(Role::Admin), None).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
            assert!(body.to_string().contains(field), "{bad}: {body}");
        }
    }
}

#[tokio::test]
async fn the_passage_search_exports_as_csv_and_xlsx_that_read_back() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        traffic(&app).await;
        let csv = download(&app, "/api/v1/passages/export?format=csv&plate=C345").await;
        assert!(csv.starts_with(b"\xEF\xBB\xBF"));
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(
            lines[0].starts_with("时间,大门,车道,方向,记录类型,凭证,车牌"),
            "{}",
            lines[0]
        );
        assert!(
            lines[7].starts_with(
                "2026-03-02 09:00:00,北门,entry,entry,decision,plate,沪C34567,,blue,否,denied_unknown_plate"
            ),
            "{}",
            lines[7]
        );
        assert!(lines[7].contains(&format!("plate:{}", sha("沪C34567-1-entry-plate"))));

        let rows =
            xlsx_rows(download(&app, "/api/v1/passages/export?format=xlsx&outcome=held").await);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0][6], "车牌");
        assert_eq!(rows[1][6], "鲁B12345");
        assert_eq!(rows[1][10], "held_low_confidence");
        assert_eq!(rows[1][14], "41");
    }
}
