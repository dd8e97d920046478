//! A file cannot knock the central server over: bulk import against a real `gatehouse server
//! run` child process (so its memory is its own to measure), with a sparse XLSX whose one far
//! cell spans the whole sheet, zip bombs (honest and forged sizes), a 60 MiB CSV and three
//! imports at once, while `/healthz` keeps answering; plus the import's limits and the 413
//! messages in process.
//!
//! Memory is the child's peak resident set (`VmHWM`, reset through `/proc/PID/clear_refs`
//! before each import) less its resident set just before: the growth one import causes. The
//! child also runs under `ulimit -v` so a regression fails the test instead of the machine.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gatehouse::central::api::auth::Role;
use gatehouse::central::bulk::{self, Kind};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bulk_import::finish_within;
use crate::harness::{TestApp, free_port, id_card, sqlite};
use crate::server_cli::data_dir_config;

const MIB: u64 = 1024 * 1024;

/// A persons CSV of `rows` good rows, each followed by `extra` columns an HR export carries
/// and the import ignores.
fn persons_csv(rows: usize, extra: usize) -> Vec<u8> {
    let mut csv = String::from("\u{feff}身份证号,姓名,部门,类别,电话");
    for k in 0..extra {
        csv.push_str(&format!(",备用{k}"));
    }
    csv.push('\n');
    for i in 0..rows {
        csv.push_str(&format!(
            "{},学生{i},计算机学院,学生,1381234{:04}",
            id_card(i),
            i % 10_000
        ));
        for k in 0..extra {
            csv.push_str(&format!(",备注{k}"));
        }
        csv.push('\n');
    }
    csv.into_bytes()
}

/// The file a 1.5 KB upload was: a header and one cell at XFD1048576, the last cell of a
/// sheet, so its declared extent is 1,048,576 × 16,384 cells.
fn sparse_xlsx() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "姓名").unwrap();
    sheet.write_string(0, 1, "类别").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    book.save_to_buffer().unwrap()
}

/// An XLSX whose shared-string table is one 300 MiB string (a ~300 KiB upload). With
/// `forged_size`, both its headers declare that size instead of the true one.
fn zip_bomb(forged_size: Option<u32>) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "姓名").unwrap();
    sheet.write_string(0, 1, "类别").unwrap();
    let small = book.save_to_buffer().unwrap();
    let mut source = zip::ZipArchive::new(std::io::Cursor::new(small)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    const BOMB: &str = "xl/sharedStrings.xml";
    let mut has_strings = false;
    for i in 0..source.len() {
        let mut entry = source.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        out.start_file(name.as_str(), options).unwrap();
        if name == BOMB {
            has_strings = true;
            out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"3\" uniqueCount=\"3\"><si><t>\xE5\xA7\x93\xE5\x90\x8D</t></si><si><t>\xE7\xB1\xBB\xE5\x88\xAB</t></si><si><t>").unwrap();
            let chunk = vec![b'a'; MIB as usize];
            for _ in 0..300 {
                out.write_all(&chunk).unwrap();
            }
            out.write_all(b"</t></si></sst>").unwrap();
        } else {
            std::io::copy(&mut entry, &mut out).unwrap();
        }
    }
    assert!(has_strings, "rust_xlsxwriter writes {BOMB}");
    let mut bytes = out.finish().unwrap().into_inner();
    if let Some(size) = forged_size {
        forge_size(&mut bytes, BOMB, size);
    }
    bytes
}

/// Overwrites `name`'s uncompressed size in its local header and its central-directory entry.
fn forge_size(zip: &mut [u8], name: &str, size: u32) {
    let mut patched = 0;
    for at in 0..zip.len().saturating_sub(46) {
        let sig = &zip[at..at + 4];
        let (name_len_at, name_at, size_at) = match sig {
            b"PK\x03\x04" => (at + 26, at + 30, at + 22),
            b"PK\x01\x02" => (at + 28, at + 46, at + 24),
            _ => continue,
        };
        let len = u16::from_le_bytes([zip[name_len_at], zip[name_len_at + 1]]) as usize;
        if zip.get(name_at..name_at + len) == Some(name.as_bytes()) {
            zip[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "both headers of {name} forged");
}

/// A `gatehouse server run` child on SQLite, signed in as its administrator.
struct Server {
    child: Child,
    port: u16,
    token: String,
    _dir: tempfile::TempDir,
}

/// How much address space the child may reserve: far above any ceiling below, far below what
/// would hurt the machine.
const ADDRESS_SPACE_KIB: u64 = 8 * 1024 * 1024;

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = data_dir_config(dir.path());
        // Overridable to run these tests against another build (an older one, to see them fail).
        let bin = std::env::var("GATEHOUSE_BIN_UNDER_TEST")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gatehouse").to_string());
        let created = Command::new(&bin)
            .args(["server", "create-admin", "--config"])
            .arg(&config)
            .env("GATEHOUSE_ADMIN_PASSWORD", "Lantern-Orchid-7319")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        let port = free_port();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
            ))
            .arg(&bin)
            .args(["server", "run", "--config"])
            .arg(&config)
            .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            port,
            token: String::new(),
            _dir: dir,
        };
        let login = br#"{"username":"admin","password":"Lantern-Orchid-7319"}"#;
        for _ in 0..200 {
            if let Some((200, body)) = server
                .http("POST", "/api/v1/auth/login", "application/json", login)
                .await
            {
                let body: Value = serde_json::from_str(&body).unwrap();
                server.token = body["token"].as_str().unwrap().to_string();
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not answer");
    }

    /// One request on its own connection: status and body, or None if the server is gone.
    async fn http(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Option<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
             Authorization: Bearer {}\r\nAccept-Language: en\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.token,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let response = String::from_utf8_lossy(&response);
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let (_, body) = response.split_once("\r\n\r\n")?;
        Some((status, body.to_string()))
    }

    /// `VmRSS` and `VmHWM` of the child, in bytes.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server is running");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap()
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Imports `file` as a dry run and waits for the job's report; with the peak memory
    /// growth (bytes) the import caused.
    async fn import(&self, kind: &str, file: &[u8]) -> (Value, u64) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
        let (before, _) = self.memory();
        let report = self.import_only(kind, file).await;
        let (_, peak) = self.memory();
        (report, peak.saturating_sub(before))
    }

    async fn import_only(&self, kind: &str, file: &[u8]) -> Value {
        let path = format!("/api/v1/bulk/{kind}/import?commit=false");
        let (status, body) = self
            .http("POST", &path, "application/octet-stream", file)
            .await
            .expect("the server is up after the upload");
        assert_eq!(status, 202, "{body}");
        let job: Value = serde_json::from_str(&body).unwrap();
        let job = job["job_id"].as_u64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body) = self
                .http(
                    "GET",
                    &format!("/api/v1/bulk/jobs/{job}"),
                    "text/plain",
                    b"",
                )
                .await
                .expect("the server is still up while it imports");
            assert_eq!(status, 200, "{body}");
            let report: Value = serde_json::from_str(&body).unwrap();
            if report["state"] != "running" {
                return report;
            }
            assert!(Instant::now() < deadline, "the import did not finish");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn healthz(&self) -> bool {
        matches!(
            self.http("GET", "/healthz", "text/plain", b"").await,
            Some((200, _))
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sparse sheet's far cell is refused by its column, its grid never allocated.
const SPARSE_CEILING: u64 = 32 * MIB;

#[tokio::test]
async fn a_sparse_xlsx_with_one_cell_at_xfd1048576_is_refused_within_32_mib_and_healthz_answers() {
    let server = Server::start().await;
    let file = sparse_xlsx();
    assert!(file.len() < 8 * 1024, "a {} byte upload", file.len());
    let (report, growth) = server.import("persons", &file).await;
    println!(
        "sparse XLSX ({} bytes): peak growth {} KiB",
        file.len(),
        growth / 1024
    );
    assert_eq!(report["state"], "failed", "{report}");
    let failure = report["failure"].as_str().unwrap();
    assert!(failure.contains("XFD1048576"), "{failure}");
    assert!(failure.contains("256"), "{failure}");
    assert!(growth < SPARSE_CEILING, "grew {} MiB", growth / MIB);
    assert!(server.healthz().await);
}

/// A bomb is refused from its declared sizes, or stopped at the inflation limit.
const BOMB_CEILING: u64 = 32 * MIB;

#[tokio::test]
async fn a_zip_bomb_xlsx_is_refused_within_32_mib_whether_its_sizes_are_honest_or_forged() {
    let server = Server::start().await;
    let honest = zip_bomb(None);
    assert!(honest.len() < 4 * MIB as usize, "{} bytes", honest.len());
    let (report, growth) = server.import("persons", &honest).await;
    println!(
        "zip bomb ({} bytes, 300 MiB inflated): peak growth {} KiB",
        honest.len(),
        growth / 1024
    );
    assert_eq!(report["state"], "failed", "{report}");
    let failure = report["failure"].as_str().unwrap();
    assert!(failure.contains("xl/sharedStrings.xml"), "{failure}");
    assert!(failure.contains("96 MiB"), "{failure}");
    assert!(growth < BOMB_CEILING, "grew {} MiB", growth / MIB);

    let forged = zip_bomb(Some(4096));
    let (report, growth) = server.import("persons", &forged).await;
    println!(
        "zip bomb with a forged 4 KiB size: peak growth {} KiB",
        growth / 1024
    );
    assert_eq!(report["state"], "failed", "{report}");
    assert!(growth < BOMB_CEILING, "grew {} MiB", growth / MIB);
    assert!(server.healthz().await);
}

/// The upload itself (60 MiB, collected once more into one buffer) plus the kept cells of
/// 100,000 rows; the ignored columns cost nothing.
const CSV_CEILING: u64 = 200 * MIB;

#[tokio::test]
async fn a_60_mib_csv_of_100_000_rows_is_checked_within_200_mib_while_healthz_answers() {
    let server = Server::start().await;
    let file = persons_csv(bulk::MAX_ROWS, 66);
    assert!(
        file.len() as u64 >= 60 * MIB && (file.len() as u64) < 64 * MIB,
        "{}",
        file.len()
    );
    let started = Instant::now();
    let (report, growth) = server.import("persons", &file).await;
    println!(
        "60 MiB CSV ({} bytes, {} rows): checked in {:?}, peak growth {} MiB",
        file.len(),
        bulk::MAX_ROWS,
        started.elapsed(),
        growth / MIB
    );
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(report["valid_rows"], bulk::MAX_ROWS as u64, "{report}");
    assert!(growth < CSV_CEILING, "grew {} MiB", growth / MIB);
    assert!(server.healthz().await);
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_p99_stays_under_250_ms_during_three_concurrent_imports() {
    let server = std::sync::Arc::new(Server::start().await);
    let file = std::sync::Arc::new(persons_csv(50_000, 20));
    let imports: Vec<_> = (0..3)
        .map(|_| {
            let (server, file) = (server.clone(), file.clone());
            tokio::spawn(async move { server.import_only("persons", &file).await })
        })
        .collect();
    let mut latencies = Vec::new();
    while imports.iter().any(|i| !i.is_finished()) {
        let started = Instant::now();
        assert!(server.healthz().await, "healthz answers during the imports");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for import in imports {
        let report = import.await.unwrap();
        assert_eq!(report["state"], "done", "{report}");
        assert_eq!(report["valid_rows"], 50_000, "{report}");
    }
    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1],
    );
    println!(
        "/healthz during three concurrent 50,000-row imports ({} bytes each): {} samples, \
         p50 {p50:?}, p99 {p99:?}, max {max:?}",
        file.len(),
        latencies.len()
    );
    assert!(latencies.len() >= 20, "{} samples", latencies.len());
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?}");
}

async fn post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    lang: &str,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(
            "authorization",
            format!("Bearer {}", app.token(Role::Security)),
        )
        .header("content-type", content_type)
        .header("accept-language", lang)
        .body(Body::from(body))
        .unwrap();
    let (status, _, body) = app.send(request).await;
    (status, body)
}

#[tokio::test]
async fn each_413_names_the_limit_of_the_route_it_came_from_in_both_languages() {
    let app = TestApp::spawn(sqlite().await).await;
    let big = vec![b'a'; gatehouse::central::api::bulk::IMPORT_LIMIT + 1];
    let (status, body) = post(
        &app,
        "/api/v1/bulk/persons/import",
        "text/csv",
        big.clone(),
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(
        body["message"],
        "The request body is over this route's 64 MiB limit"
    );
    let (_, body) = post(
        &app,
        "/api/v1/bulk/persons/import",
        "text/csv",
        big,
        "zh-CN",
    )
    .await;
    assert_eq!(body["message"], "请求内容超过此接口 64 MiB 的上限");

    let json = vec![b' '; gatehouse::central::api::BODY_LIMIT + 1];
    let (status, body) = post(
        &app,
        "/api/v1/persons",
        "application/json",
        json.clone(),
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        body["message"],
        "The request body is over this route's 1 MiB limit"
    );
    let (_, body) = post(&app, "/api/v1/persons", "application/json", json, "zh-CN").await;
    assert_eq!(body["message"], "请求内容超过此接口 1 MiB 的上限");
}

fn refusal(kind: Kind, file: &[u8]) -> String {
    bulk::read(kind, file)
        .expect_err("refused")
        .0
        .get(gatehouse::i18n::Lang::En)
        .to_string()
}

#[test]
fn a_file_over_the_row_column_or_cell_limits_is_refused_naming_where() {
    let mut rows = String::from("name,category\n");
    for i in 0..bulk::MAX_ROWS {
        rows.push_str(&format!("p{i},staff\n"));
    }
    let sheet = bulk::read(Kind::Persons, rows.as_bytes()).unwrap();
    assert_eq!(sheet.rows.len(), bulk::MAX_ROWS);
    rows.push_str("one,more\n");
    let over = refusal(Kind::Persons, rows.as_bytes());
    assert!(
        over.contains("more than 100000 data rows") && over.contains("line 100002"),
        "{over}"
    );

    let mut wide = String::from("name,category\nAnn,staff");
    wide.push_str(&",".repeat(bulk::MAX_COLUMNS - 2));
    wide.push_str(",x\n");
    let over = refusal(Kind::Persons, wide.as_bytes());
    assert!(over.contains("Cell IW2") && over.contains("256"), "{over}");

    let long = format!("name,category,note\nAnn,staff,{}\n", "长".repeat(2000));
    let over = refusal(Kind::Persons, long.as_bytes());
    assert!(
        over.contains("Cell C2 is too long (6000 bytes; the limit is 4096 bytes)"),
        "{over}"
    );
}

#[test]
fn only_the_columns_the_import_reads_are_kept() {
    let csv = "籍贯,姓名,宿舍,类别\nS1,张三,3-201,学生\n\n,,,\nS2,李四,,staff\n";
    let sheet = bulk::read(Kind::Persons, csv.as_bytes()).unwrap();
    assert_eq!(sheet.header, ["姓名", "类别"]);
    assert_eq!(
        sheet.rows,
        [
            (2, vec!["张三".to_string(), "学生".to_string()]),
            (5, vec!["李四".to_string(), "staff".to_string()])
        ]
    );
}

#[tokio::test]
async fn a_report_lists_the_first_1000_errors_and_counts_them_all() {
    let app = TestApp::spawn(sqlite().await).await;
    let mut csv = String::from("name,category\n");
    for i in 0..1500 {
        csv.push_str(&format!("p{i},nobody\n"));
    }
    let (status, body) = post(
        &app,
        "/api/v1/bulk/persons/import?commit=true",
        "text/csv",
        csv.into_bytes(),
        "en",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = body["job_id"].as_u64().unwrap();
    let report = finish_within(&app, job, "en", Duration::from_secs(60)).await;
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(report["imported"], 0);
    assert_eq!(report["valid_rows"], 0);
    assert_eq!(report["error_count"], 1500);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(
        errors.len(),
        gatehouse::central::bulk::jobs::MAX_REPORTED_ERRORS
    );
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[999]["line"], 1001);
}
