//! Backups with the real binary: a live SQLite central database is backed up and restored into
//! a new data directory with the same rows; restore refuses while the server's address is in
//! use; a gate's two files are backed up; and every database refuses a schema newer than the
//! binary (central, gate store, gate journal).

use std::path::Path;

use gatehouse::central::db::{Actor, Db};
use gatehouse::central::repo::persons::{self, NewPerson};
use gatehouse::gate::journal::Journal;
use gatehouse::gate::store::Store;

use crate::config::gatehouse;

fn server_toml(dir: &Path, listen: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"{listen}\"\ndata_dir = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

async fn names(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT name FROM persons ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_central_database_is_backed_up_and_restored_into_a_new_file_with_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let source = server_toml(&dir.path().join("a"), "127.0.0.1:0");
    std::fs::create_dir_all(dir.path().join("a/data")).unwrap();
    let db = Db::open_sqlite(&dir.path().join("a/data/central.db"))
        .await
        .unwrap();
    for name in ["张伟", "王芳", "李娜"] {
        persons::create(
            &db,
            &Actor::system(),
            NewPerson {
                name: name.into(),
                category: "staff".into(),
                department: "计算机学院".into(),
                phone: String::new(),
                id_card: String::new(),
                staff_no: String::new(),
                email: String::new(),
            },
        )
        .await
        .unwrap();
    }
    // The database stays open (its last writes still in the WAL) while the backup runs.
    let backup = dir.path().join("central-backup.db");
    let out = gatehouse(&[
        "server",
        "backup",
        "--config",
        source.to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = gatehouse(&[
        "server",
        "backup",
        "--config",
        source.to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]);
    assert!(
        !again.status.success(),
        "an existing backup is never overwritten"
    );

    // Restoring is refused while the target server's address is in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = server_toml(
        &dir.path().join("b"),
        &taken.local_addr().unwrap().to_string(),
    );
    let out = gatehouse(&[
        "server",
        "restore",
        "--config",
        busy.to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("stop the server"),
        "{stderr}"
    );
    assert!(!dir.path().join("b/data/central.db").exists());
    drop(taken);

    let target = server_toml(&dir.path().join("c"), "127.0.0.1:0");
    let out = gatehouse(&[
        "server",
        "restore",
        "--config",
        target.to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = Db::open_sqlite(&dir.path().join("c/data/central.db"))
        .await
        .unwrap();
    assert_eq!(names(&restored).await, names(&db).await);
    assert_eq!(names(&restored).await.len(), 3);
    restored.close().await;
    db.close().await;
}

#[tokio::test]
async fn a_gate_backup_copies_the_store_and_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let journal = Journal::open(&data.join("journal.db"), 1000).await.unwrap();
    journal
        .append(
            chrono::Utc::now(),
            "entry",
            gatehouse::wire::journal::EventBody::Device {
                device: "reader".into(),
                status: "online".into(),
                detail: String::new(),
            },
        )
        .await
        .unwrap();
    let store = Store::open(&data.join("store.db")).await.unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[gate]\nid = 1\ndata_dir = \"{}\"\n[[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
             [lane.reader]\nport = \"/nonexistent\"\n[lane.io]\nport = \"/nonexistent\"\n",
            data.display()
        ),
    )
    .unwrap();
    let to = dir.path().join("gate-backup");
    let out = gatehouse(&[
        "gate",
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = Journal::open(&to.join("journal.db"), 1000).await.unwrap();
    assert_eq!(copy.read_after(0, 10).await.unwrap().len(), 1);
    assert_eq!(
        Store::open(&to.join("store.db"))
            .await
            .unwrap()
            .data_version()
            .await
            .unwrap(),
        store.data_version().await.unwrap()
    );
}

/// Marks a SQLite file as migrated by a future binary.
async fn add_future_migration(path: &Path) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99991231000000, 'from the future', TRUE, X'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn every_database_refuses_a_schema_newer_than_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let newer = "newer than this gatehouse binary";

    let central = dir.path().join("central.db");
    Db::open_sqlite(&central).await.unwrap().close().await;
    add_future_migration(&central).await;
    let err = Db::open_sqlite(&central).await.unwrap_err().to_string();
    assert!(err.contains(newer), "{err}");

    let store = dir.path().join("store.db");
    drop(Store::open(&store).await.unwrap());
    add_future_migration(&store).await;
    let err = Store::open(&store).await.unwrap_err().to_string();
    assert!(err.contains(newer) && err.contains("store.db"), "{err}");

    let journal = dir.path().join("journal.db");
    drop(Journal::open(&journal, 1000).await.unwrap());
    add_future_migration(&journal).await;
    let err = Journal::open(&journal, 1000).await.unwrap_err().to_string();
    assert!(err.contains(newer) && err.contains("journal.db"), "{err}");

    // And a backup carrying such a schema is not restored.
    let config = server_toml(&dir.path().join("s"), "127.0.0.1:0");
    let out = gatehouse(&[
        "server",
        "restore",
        "--config",
        config.to_str().unwrap(),
        "--from",
        central.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("schema newer"),
        "{stderr}"
    );
}
