//! A fresh central database per test, of every kind available (copied from the API tests'
//! `central_support`, which this binary cannot reach).
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when `DATABASE_URL`
//! points at a server: each test gets its own freshly created database, dropped afterwards.
//! Under CI (`CI=true`) a missing `DATABASE_URL` is a failure, never a silent skip.

use std::sync::atomic::{AtomicU32, Ordering};

use gatehouse::central::db::{Db, DbKind};

/// A fresh database for one test; dropped (PostgreSQL) or deleted (SQLite) with it.
pub(crate) struct TestDb {
    pub(crate) db: Db,
    pub(crate) kind: DbKind,
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

/// The PostgreSQL server to test against, if any. Panics under CI when there is none.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but DATABASE_URL is not set: the PostgreSQL suite must run in CI")
        }
        _ => None,
    }
}

/// A fresh SQLite database.
pub(crate) async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("central.db"))
        .await
        .unwrap();
    TestDb {
        db,
        kind: DbKind::Sqlite,
        _dir: Some(dir),
        pg_admin: None,
    }
}

/// A fresh PostgreSQL database on the `DATABASE_URL` server.
pub(crate) async fn postgres(admin_url: &str) -> TestDb {
    let name = format!(
        "gatehouse_sync_test_{}_{}_{}",
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
        _dir: None,
        pg_admin: Some((admin_url.to_string(), name)),
    }
}

/// One fresh database of every kind available: SQLite, and PostgreSQL when configured.
pub(crate) async fn each_database() -> Vec<TestDb> {
    let mut dbs = vec![sqlite().await];
    if let Some(url) = postgres_url() {
        dbs.push(postgres(&url).await);
    }
    dbs
}
