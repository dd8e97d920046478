//! The central server's test harness, shared by every test binary (`tests/api`, `tests/sync`,
//! `tests/web`, `tests/ops`, each including it by `#[path]`): a fresh database per test of each
//! kind ([`each_database`]), and the API over it with one signed-in operator per role
//! ([`TestApp`]). It never starts a network listener: the binaries that serve over TCP or TLS
//! (sync, web) build that on top.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when `DATABASE_URL`
//! points at a server: each test gets its own freshly created database, dropped afterwards.
//! Under CI (`CI=true`) a missing `DATABASE_URL` is a failure, never a silent skip.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

use gatehouse::central::db::{Db, DbKind};

/// A fresh database for one test; dropped (PostgreSQL) or deleted (SQLite) with it.
pub struct TestDb {
    pub db: Db,
    pub kind: DbKind,
    /// What `db` was opened with (`sqlite://PATH` or `postgres://…/NAME`), for a connection of
    /// one's own outside its pool or a second server instance on the same database.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_admin.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(admin) = Db::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(admin.pool())
                                .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether the tests run under CI, where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The PostgreSQL server to test against, if any. Panics under CI when there is none.
pub fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if ci() => {
            panic!("CI=true but DATABASE_URL is not set: the PostgreSQL suite must run in CI")
        }
        _ => None,
    }
}

/// A fresh SQLite database.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("central.db");
    let db = Db::open_sqlite(&path).await.unwrap();
    let url = format!("sqlite://{}", path.display());
    TestDb {
        db,
        kind: DbKind::Sqlite,
        url,
        _dir: Some(dir),
        pg_admin: None,
    }
}

/// A fresh PostgreSQL database on the `DATABASE_URL` server.
pub async fn postgres(admin_url: &str) -> TestDb {
    let name = format!(
        "gatehouse_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let admin = Db::connect(admin_url)
        .await
        .expect("DATABASE_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(admin.pool())
        .await
        .unwrap();
    admin.close().await;
    let url = match admin_url.rfind('/') {
        Some(i) if admin_url[..i].contains("://") && i > admin_url.find("://").unwrap() + 2 => {
            let (base, rest) = admin_url.split_at(i);
            let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
            format!("{base}/{name}{query}")
        }
        _ => format!("{admin_url}/{name}"),
    };
    let db = Db::open(&url).await.unwrap();
    TestDb {
        db,
        kind: DbKind::Postgres,
        url,
        _dir: None,
        pg_admin: Some((admin_url.to_string(), name)),
    }
}

/// One fresh database of every kind available: SQLite, and PostgreSQL when configured.
pub async fn each_database() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    if let Some(url) = postgres_url() {
        dbs.push(postgres(&url).await);
    }
    dbs
}

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use gatehouse::central::api::auth::{Role, create_session};
use gatehouse::central::db::Actor;
use gatehouse::central::repo::operators::{self, NewOperator, Operator};
use gatehouse::central::state::AppState;
use gatehouse::password::hash_password_blocking;
use gatehouse::web::site as app;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The password of every operator the harness creates.
pub const PASSWORD: &str = "Gatehouse-Test-2026";

/// The department the harness's approver approves for.
pub const APPROVER_DEPARTMENT: &str = "计算机学院";

/// `POST /api/v1/auth/login` as `username` with [`PASSWORD`].
pub fn login(username: &str) -> Request<Body> {
    Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"username": username, "password": PASSWORD}).to_string(),
        ))
        .unwrap()
}

/// A request without a body that carries `token` as its bearer.
pub fn bearer(method: Method, path: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// A loopback port free a moment ago (bound and released at once), for a server to be told.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The single number `sql` selects (a `COUNT(*)`, say) from `db`.
pub async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// The hash of [`PASSWORD`], computed once.
pub fn password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password_blocking(PASSWORD))
}

/// Creates operator `username` (display name [`display_name_of`], the harness [`PASSWORD`]) with
/// one role, working at `gates` (none: every gate); an approver approves for
/// [`APPROVER_DEPARTMENT`].
pub async fn create_operator(db: &Db, username: &str, role: Role, gates: &[i64]) -> Operator {
    operators::create(
        db,
        &Actor::system(),
        NewOperator {
            username: username.into(),
            display_name: display_name_of(username),
            password_hash: password_hash().into(),
            roles: vec![role.as_str().into()],
            gates: gates.to_vec(),
            department: if role == Role::Approver {
                APPROVER_DEPARTMENT.into()
            } else {
                String::new()
            },
        },
    )
    .await
    .unwrap()
}

/// The display name the harness gives operator `username`: Chinese, as a site's would be
/// (门卫 李师傅), so the pages' text can be checked for user names that leak through.
pub fn display_name_of(username: &str) -> String {
    match username {
        "admin" => "管理员 张主任".into(),
        "security" => "保卫处 刘科长".into(),
        "guard" => "门卫 李师傅".into(),
        "guard2" => "门卫 王师傅".into(),
        "viewer" => "值班员 赵老师".into(),
        "approver" => "审批人 陈老师".into(),
        "applicant" => "教师 周老师".into(),
        // Any other test operator: a Chinese name too (never its user name, which the page
        // scan would flag), told apart by a number from its user name.
        other => format!(
            "测试员 {}",
            other
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 1000
        ),
    }
}

/// `body` (the first 17 digits of a 身份证号) with its GB 11643 check digit: a valid
/// 18-character ID-card number.
pub fn with_check_digit(body: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// A valid ID-card number, a different one for each `i` below 900 × 20,000.
pub fn id_card(i: usize) -> String {
    let days = (i / 900) as i64;
    let birth = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).unwrap() + chrono::Duration::days(days);
    with_check_digit(&format!(
        "110105{}{:03}",
        birth.format("%Y%m%d"),
        100 + i % 900
    ))
}

/// The API over a fresh database, with gates 1 and 2 and one signed-in operator per role
/// (`<role>` user names; the guard works at gate 1 only).
pub struct TestApp {
    pub db: Db,
    pub kind: DbKind,
    pub state: AppState,
    pub url: String,
    router: axum::Router,
    tokens: HashMap<Role, String>,
    ids: HashMap<Role, i64>,
    _t: TestDb,
}

impl TestApp {
    pub async fn spawn(t: TestDb) -> TestApp {
        let db = t.db.clone();
        for (id, name) in [(1, "北门"), (2, "南门")] {
            // No explicit id: PostgreSQL's identity sequence would not advance past it, and the
            // next gate created through the API would collide with gate 1.
            let row = sqlx::query(
                "INSERT INTO gates (name, created_ms, updated_ms) VALUES ($1, 0, 0) RETURNING id",
            )
            .bind(name)
            .fetch_one(db.pool())
            .await
            .unwrap();
            assert_eq!(sqlx::Row::try_get::<i64, _>(&row, "id").unwrap(), id as i64);
        }
        let mut tokens = HashMap::new();
        let mut ids = HashMap::new();
        for role in Role::ALL {
            let gates: &[i64] = if role == Role::Guard { &[1] } else { &[] };
            let op = create_operator(&db, role.as_str(), role, gates).await;
            let session = create_session(&db, op.id, 3_600_000).await.unwrap();
            tokens.insert(role, session.token);
            ids.insert(role, op.id);
        }
        let state = AppState::new(db.clone());
        TestApp {
            router: app(state.clone()),
            state,
            url: t.url.clone(),
            db,
            kind: t.kind,
            tokens,
            ids,
            _t: t,
        }
    }

    /// The same app with its state changed (e.g. the photo storage), its router built anew.
    pub fn with_state(mut self, change: impl FnOnce(&mut AppState)) -> TestApp {
        change(&mut self.state);
        self.router = app(self.state.clone());
        self
    }

    /// The bearer token of the operator with `role`.
    pub fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    /// The database URL to LISTEN on for other instances' changes (PostgreSQL only).
    pub fn listen_url(&self) -> Option<String> {
        (self.kind == DbKind::Postgres).then(|| self.url.clone())
    }

    /// The operator id of the operator with `role`.
    pub fn operator_id(&self, role: Role) -> i64 {
        self.ids[&role]
    }

    /// Sends a raw request and returns status, headers and the body as JSON (Null if empty,
    /// a JSON string if not JSON).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, body)
    }

    /// A request as `role` (None: not signed in) with a JSON body and extra headers.
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        role: Option<Role>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(role) = role {
            builder = builder.header("authorization", format!("Bearer {}", self.token(role)));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        self.send(request).await
    }

    /// A request as `role` with a JSON body; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        role: Option<Role>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_with_headers(method, path, role, body, &[]).await;
        (status, body)
    }

    /// The status of a request without a body as `role` (None: not signed in).
    pub async fn status(&self, method: Method, path: &str, role: Option<Role>) -> StatusCode {
        self.call(method, path, role, None).await.0
    }

    /// Like [`TestApp::call`], asking for messages in `lang` (e.g. "en", "zh-CN").
    pub async fn call_lang(
        &self,
        method: Method,
        path: &str,
        role: Option<Role>,
        body: Option<Value>,
        lang: &str,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self
            .call_with_headers(method, path, role, body, &[("accept-language", lang)])
            .await;
        (status, body)
    }
}

/// The central API as the site office, for the setup a test needs; every call must succeed.
/// Implemented in-process (`tests/sync`) and over HTTP (`tests/web`).
#[allow(async_fn_in_trait)]
pub trait Office {
    /// POSTs `body` to `path` as security; returns the JSON answer.
    async fn post(&self, path: &str, body: Value) -> Value;

    /// A person `name` (staff), a vehicle `plate` (blue) with tag `epc` and an active staff
    /// permit for every gate, created through the API. Returns (vehicle id, permit id).
    async fn issue(&self, name: &str, plate: &str, epc: &str) -> (i64, i64) {
        let person = json!({"name": name, "category": "staff", "department": APPROVER_DEPARTMENT});
        let person = self.post("/api/v1/persons", person).await["id"]
            .as_i64()
            .unwrap();
        let vehicle = json!({"plate": plate, "plate_colour": "blue", "owner_id": person});
        let vehicle = self.post("/api/v1/vehicles", vehicle).await["id"]
            .as_i64()
            .unwrap();
        let tag = json!({"epc": epc, "vehicle_id": vehicle});
        self.post("/api/v1/credentials", tag).await;
        let permit = json!({
            "category": "staff",
            "holder_id": person,
            "valid_from": "2025-01-01T00:00:00Z",
            "valid_until": "2035-01-01T00:00:00+08:00",
            "gates": "all",
            "vehicle_ids": [vehicle],
        });
        let permit = self.post("/api/v1/permits", permit).await["id"]
            .as_i64()
            .unwrap();
        (vehicle, permit)
    }

    /// Revokes a permit.
    async fn revoke(&self, permit: i64) {
        let path = format!("/api/v1/permits/{permit}/revoke");
        self.post(&path, json!({"reason": "离校"})).await;
    }

    /// Blacklists a plate (urgent alarm).
    async fn blacklist_plate(&self, plate: &str) {
        let entry = json!({"subject_kind": "plate", "subject": plate, "reason": "被盗车辆",
            "alarm_level": "urgent"});
        self.post("/api/v1/blacklist", entry).await;
    }
}
