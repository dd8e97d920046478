//! Backups of Gatehouse's SQLite files (the central database, a gate's store and journal):
//! [`backup`] takes a consistent copy of a live database with SQLite's `VACUUM INTO` (readers and
//! the writer carry on meanwhile), [`restore`] puts a checked copy in place of a stopped one.
//!
//! Nothing half-written stays behind: a copy is written to `NAME.partial` and renamed into
//! place only when complete; a restore moves the current file (and its WAL) aside instead of
//! deleting it. PostgreSQL is backed up with its own tools (README, Deployment).
//!
//! What it never does: overwrite an existing backup, restore over a database whose server is
//! running (the caller checks that), or restore a file whose schema is newer than this binary.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

/// Why a backup or restore was refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists; choose a new file name")]
    Exists(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Database { path: PathBuf, source: sqlx::Error },
    #[error("{path} fails SQLite's integrity check: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{0} is not a Gatehouse database (it has no migration table)")]
    NotGatehouse(PathBuf),
    #[error(
        "{path} has a schema newer than this gatehouse binary (migration {version}); restore it with the version that wrote it"
    )]
    SchemaNewer { path: PathBuf, version: i64 },
}

async fn open_read_only(path: &Path) -> Result<SqliteConnection, BackupError> {
    if !path.exists() {
        return Err(BackupError::Missing(path.to_path_buf()));
    }
    let db = |source| BackupError::Database {
        path: path.to_path_buf(),
        source,
    };
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(db)?
        .filename(path)
        .read_only(true);
    SqliteConnection::connect_with(&options).await.map_err(db)
}

/// Writes a consistent copy of the SQLite database at `source` to `dest` (which must not
/// exist), while the database stays in use.
pub async fn backup(source: &Path, dest: &Path) -> Result<(), BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    let partial = partial(dest);
    let _ = std::fs::remove_file(&partial);
    let mut conn = open_read_only(source).await?;
    let written = sqlx::query("VACUUM INTO $1")
        .bind(partial.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    if let Err(source) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(BackupError::Database {
            path: dest.to_path_buf(),
            source,
        });
    }
    std::fs::rename(&partial, dest).map_err(|source| BackupError::Io {
        path: dest.to_path_buf(),
        source,
    })
}

/// Checks a backup: SQLite's integrity check and the newest migration it carries, which must
/// be at most `known` (the newest this binary has). Returns that migration's version.
pub async fn check(path: &Path, known: i64) -> Result<i64, BackupError> {
    let mut conn = open_read_only(path).await?;
    let db = |source| BackupError::Database {
        path: path.to_path_buf(),
        source,
    };
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(db)?;
    if integrity != "ok" {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            message: integrity,
        });
    }
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(|_| BackupError::NotGatehouse(path.to_path_buf()))?;
    let _ = conn.close().await;
    let version = version.ok_or_else(|| BackupError::NotGatehouse(path.to_path_buf()))?;
    if version > known {
        return Err(BackupError::SchemaNewer {
            path: path.to_path_buf(),
            version,
        });
    }
    Ok(version)
}

/// Puts the backup `from` in place of the database `to` (whose server must be stopped). The
/// current file, if any, and its WAL are moved aside to `to.before-restore-UNIXTIME[-wal]`;
/// returns that path. Migrations newer than the backup are applied when the server next
/// opens it.
pub async fn restore(from: &Path, to: &Path, known: i64) -> Result<Option<PathBuf>, BackupError> {
    check(from, known).await?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    let partial = partial(to);
    std::fs::copy(from, &partial).map_err(io(&partial))?;
    let mut aside = None;
    if to.exists() {
        let stamp = chrono::Utc::now().timestamp();
        let moved = PathBuf::from(format!("{}.before-restore-{stamp}", to.display()));
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", to.display()));
            if side.exists() {
                let target = PathBuf::from(format!("{}{suffix}", moved.display()));
                std::fs::rename(&side, &target).map_err(io(&side))?;
            }
        }
        std::fs::rename(to, &moved).map_err(io(to))?;
        aside = Some(moved);
    }
    std::fs::rename(&partial, to).map_err(io(to))?;
    Ok(aside)
}

fn partial(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", path.display()))
}
