//! Bulk import and export on SQLite and PostgreSQL: tens of thousands of people, vehicles and
//! permits from CSV and XLSX; a file with bad rows reports each one (line, column, reason in the
//! user's language) and imports nothing, then the corrected file imports; exports read back with
//! calamine match the data, and CSV exports carry a BOM and a header.

use std::io::Cursor;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use calamine::{Data, Reader, Xlsx};
use gatehouse::central::api::auth::Role;
use serde_json::Value;

use crate::harness::{TestApp, count, each_database, id_card};

/// A valid ordinary plate for `i` (provinces × 5 digits).
fn plate(i: usize) -> String {
    let provinces = ['京', '沪', '苏', '浙', '粤'];
    format!("{}A{:05}", provinces[i % 5], i / 5)
}

async fn start(app: &TestApp, kind: &str, commit: bool, file: Vec<u8>, lang: &str) -> u64 {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/bulk/{kind}/import?commit={commit}"))
        .header(
            "authorization",
            format!("Bearer {}", app.token(Role::Security)),
        )
        .header("content-type", "application/octet-stream")
        .header("accept-language", lang)
        .body(Body::from(file))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["job_id"].as_u64().unwrap()
}

/// Polls the job until it has finished; returns its report.
async fn finish(app: &TestApp, job: u64, lang: &str) -> Value {
    finish_within(app, job, lang, Duration::from_secs(300)).await
}

/// Polls the job until it has finished, which it must `within`; returns its report.
pub(crate) async fn finish_within(app: &TestApp, job: u64, lang: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, report) = app
            .call_lang(
                Method::GET,
                &format!("/api/v1/bulk/jobs/{job}"),
                Some(Role::Security),
                None,
                lang,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{report}");
        if report["state"] != "running" {
            return report;
        }
        assert!(
            report["processed"].as_u64() <= report["total"].as_u64(),
            "{report}"
        );
        assert!(
            Instant::now() < deadline,
            "the import did not finish: {report}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn import(
    app: &TestApp,
    kind: &str,
    commit: bool,
    file: Vec<u8>,
    lang: &str,
) -> Value {
    let job = start(app, kind, commit, file, lang).await;
    finish(app, job, lang).await
}

fn xlsx(rows: &[Vec<String>]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, cell).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn tens_of_thousands_of_people_vehicles_and_permits_import_from_csv_and_xlsx() {
    const N: usize = 20_000;
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let kind = app.kind;

        // People: CSV with a BOM, Chinese headers in an HR system's order, Chinese categories.
        let mut csv = String::from("\u{feff}身份证号,姓名,部门,类别,电话,工号\n");
        for i in 0..N {
            csv.push_str(&format!(
                "{},学生{i},计算机学院,{},1381234{:04},S{i}\n",
                id_card(i),
                if i % 2 == 0 { "学生" } else { "教职工" },
                i % 10_000
            ));
        }
        let started = Instant::now();
        let report = import(&app, "persons", true, csv.into_bytes(), "zh-CN").await;
        println!(
            "{kind:?}.bulk_import_persons {N} rows {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(report["state"], "done", "{report}");
        assert_eq!(report["errors"], serde_json::json!([]));
        assert_eq!(report["imported"], N);
        assert_eq!(
            (report["processed"].as_u64(), report["total"].as_u64()),
            (Some(2 * N as u64), Some(2 * N as u64))
        );
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM persons").await,
            N as i64
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM persons WHERE category = 'student'"
            )
            .await,
            (N / 2) as i64
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'import'"
            )
            .await,
            N as i64
        );
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM change_log WHERE entity = 'person'"
            )
            .await,
            N as i64
        );

        // Vehicles: XLSX with English headers.
        let mut rows = vec![
            [
                "plate",
                "plate_colour",
                "vehicle_type",
                "owner_id_card",
                "note",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for i in 0..N {
            rows.push(vec![
                plate(i),
                "蓝".into(),
                "轿车".into(),
                id_card(i),
                String::new(),
            ]);
        }
        let started = Instant::now();
        let report = import(&app, "vehicles", true, xlsx(&rows), "zh-CN").await;
        println!(
            "{kind:?}.bulk_import_vehicles {N} rows {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(report["state"], "done", "{report}");
        assert_eq!(report["imported"], N, "{}", report["errors"]);
        let owner_ok = count(
            &app.db,
            "SELECT COUNT(*) FROM vehicles v JOIN persons p ON p.id = v.owner_id",
        )
        .await;
        assert_eq!(owner_ok, N as i64);

        // Permits: CSV, local times.
        let mut csv =
            String::from("holder_id_card,plate,category,valid_from,valid_until,gates,single_use\n");
        for i in 0..N {
            csv.push_str(&format!(
                "{},{},staff,2026-03-01,2026-08-31 22:00,{},否\n",
                id_card(i),
                plate(i),
                if i % 3 == 0 { "1;2:exit" } else { "all" }
            ));
        }
        let started = Instant::now();
        let report = import(&app, "permits", true, csv.into_bytes(), "zh-CN").await;
        println!(
            "{kind:?}.bulk_import_permits {N} rows {:.2} s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(report["imported"], N, "{}", report["errors"]);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM permit_vehicles").await,
            N as i64
        );
        // 2026-03-01 00:00 in Shanghai is 2026-02-28 16:00 UTC.
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM permits WHERE valid_from_ms = 1772294400000"
            )
            .await,
            N as i64
        );
        // The same plates again: every row is a duplicate, nothing is written.
        let report = import(&app, "vehicles", true, xlsx(&rows[..3]), "en").await;
        assert_eq!(report["imported"], 0);
        assert_eq!(report["errors"][0]["line"], 2);
        assert_eq!(
            report["errors"][0]["message"],
            format!("vehicle {} (blue) is already registered", plate(0))
        );
    }
}

#[tokio::test]
async fn a_file_with_bad_rows_imports_nothing_and_lists_each_error_then_the_corrected_file_imports()
{
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let good = |i: usize| format!("张{i},staff,保卫处,13812345678,{}\n", id_card(i));
        let mut bad_id = id_card(2);
        bad_id.replace_range(17.., if bad_id.ends_with('0') { "1" } else { "0" });
        let file = format!(
            "name,category,department,phone,id_card\n{}{}{}{}{}{}",
            good(1),
            format_args!("李四,staff,保卫处,13812345678,{bad_id}\n"),
            format_args!(",student,,,{}\n", id_card(3)),
            format_args!("王五,staff,,,{}\n", id_card(1)),
            format_args!("赵六,dean,,12,\n"),
            good(6),
        );
        // Dry run: every bad row, with its line, in Chinese by default.
        let report = import(&app, "persons", false, file.clone().into_bytes(), "zh-CN").await;
        assert_eq!(report["state"], "done");
        assert_eq!(report["commit"], false);
        let errors: Vec<(u64, &str, &str)> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["line"].as_u64().unwrap(),
                    e["column"].as_str().unwrap(),
                    e["code"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            errors,
            vec![
                (3, "id_card", "id_card_check_digit"),
                (4, "name", "required"),
                (5, "id_card", "duplicate_in_file"),
                (6, "category", "invalid_category"),
                (6, "phone", "invalid_phone"),
            ]
        );
        assert_eq!(report["errors"][2]["message"], "身份证号与第 2 行重复");
        assert_eq!(report["valid_rows"], 2);
        // Committing the same file writes nothing at all.
        let audits = count(&app.db, "SELECT COUNT(*) FROM audit_log").await;
        let report = import(&app, "persons", true, file.into_bytes(), "en").await;
        assert_eq!(report["imported"], 0);
        assert_eq!(report["errors"].as_array().unwrap().len(), 5);
        assert_eq!(report["errors"][1]["message"], "the name is required");
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM persons").await, 0);
        assert_eq!(
            count(&app.db, "SELECT COUNT(*) FROM audit_log").await,
            audits
        );

        // The corrected file imports, all of it.
        let fixed = format!(
            "name,category,department,phone,id_card\n{}{}{}{}{}{}",
            good(1),
            good(2),
            good(3),
            good(4),
            good(5),
            good(6)
        );
        let report = import(&app, "persons", true, fixed.into_bytes(), "zh-CN").await;
        assert_eq!(report["imported"], 6, "{report}");
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM persons").await, 6);

        // An XLSX file's bad rows are numbered as the spreadsheet shows them.
        let rows = vec![
            ["车牌号", "车主身份证号", "车牌颜色"]
                .map(String::from)
                .to_vec(),
            vec![plate(1), id_card(1), "蓝牌".into()],
            vec!["京A1234".into(), id_card(2), "蓝".into()],
            vec![plate(3), id_card(999), "紫".into()],
        ];
        let report = import(&app, "vehicles", true, xlsx(&rows), "en").await;
        let errors: Vec<(u64, &str)> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["line"].as_u64().unwrap(), e["column"].as_str().unwrap()))
            .collect();
        assert_eq!(
            errors,
            vec![(3, "plate"), (4, "plate_colour"), (4, "owner_id_card")]
        );
        assert_eq!(count(&app.db, "SELECT COUNT(*) FROM vehicles").await, 0);

        // Whole-file problems: a missing column, a file that is not UTF-8.
        let report = import(
            &app,
            "vehicles",
            false,
            b"plate\n\xBE\xA9A12345\n".to_vec(),
            "en",
        )
        .await;
        assert_eq!(report["state"], "failed");
        assert!(
            report["failure"]
                .as_str()
                .unwrap()
                .starts_with("line 2 is not UTF-8"),
            "{report}"
        );
        let report = import(
            &app,
            "vehicles",
            false,
            "车牌号\n京A12345\n".as_bytes().to_vec(),
            "zh-CN",
        )
        .await;
        assert_eq!(report["errors"][0]["line"], 1);
        assert_eq!(
            report["errors"][0]["message"],
            "表头缺少“车主身份证号”（owner_id_card）列"
        );
    }
}

#[tokio::test]
async fn exported_people_and_vehicles_read_back_with_calamine_match_the_data() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let mut csv = String::from("name,category,department,phone,id_card\n");
        for i in 0..5 {
            csv.push_str(&format!(
                "张{i},staff,计算机学院,1381234567{i},{}\n",
                id_card(i)
            ));
        }
        assert_eq!(
            import(&app, "persons", true, csv.into_bytes(), "zh-CN").await["imported"],
            5
        );
        let (status, _, body) = app
            .call_with_headers(
                Method::GET,
                "/api/v1/bulk/persons/export?format=csv",
                Some(Role::Admin),
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let text = body.as_str().unwrap();
        assert!(
            text.starts_with("\u{feff}编号,姓名,类别,部门,电话,身份证号,工号/学号,邮箱\n"),
            "{text}"
        );

        // Read back the XLSX export.
        use tower::ServiceExt;
        let router = gatehouse::web::site(gatehouse::central::state::AppState::new(app.db.clone()));
        let response = router
            .oneshot(
                Request::builder()
                    .uri("/api/v1/bulk/persons/export?format=xlsx")
                    .header(
                        "authorization",
                        format!("Bearer {}", app.token(Role::Security)),
                    )
                    .header("accept-language", "en")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut book = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
        let sheet = book.worksheet_range("persons").unwrap();
        let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
        assert_eq!(
            rows[0],
            [
                "id",
                "name",
                "category",
                "department",
                "phone",
                "id_card",
                "staff_no",
                "email"
            ]
            .map(|h| Data::String(h.into()))
        );
        let stored = sqlx::query("SELECT id, name, phone, id_card FROM persons ORDER BY id")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 6);
        for (row, r) in rows[1..].iter().zip(&stored) {
            use sqlx::Row;
            assert_eq!(row[0], Data::Float(r.get::<i64, _>("id") as f64));
            assert_eq!(row[1], Data::String(r.get("name")));
            assert_eq!(row[2], Data::String("staff".into()));
            assert_eq!(row[3], Data::String("计算机学院".into()));
            // The security office sees the numbers in full.
            assert_eq!(row[4], Data::String(r.get("phone")));
            assert_eq!(row[5], Data::String(r.get("id_card")));
        }
        // The export re-imports as a dry run: every person is already registered.
        let mut again = Vec::new();
        for row in &rows {
            again.push(row.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        }
        let report = import(&app, "persons", false, xlsx(&again), "en").await;
        assert_eq!(report["errors"].as_array().unwrap().len(), 5);
        assert_eq!(report["errors"][0]["code"], "already_registered");

        // Other roles may not export at all.
        for role in [Role::Guard, Role::Viewer, Role::Approver] {
            let (status, _) = app
                .call(
                    Method::GET,
                    "/api/v1/bulk/persons/export?format=csv",
                    Some(role),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
        }
    }
}
