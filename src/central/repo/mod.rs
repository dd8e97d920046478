//! Repositories: one module per resource. Each change runs in one transaction that also writes
//! the audit entry and, for data the gates hold, the change-log entry
//! ([`crate::central::db::write_change`]). Also here, the steps several repositories share:
//! deleting a row with its trail (`delete_row`) and ending a validity window now (`lift`).

pub mod alarms;
pub mod applications;
pub mod audit;
pub mod blacklist;
pub mod bookings;
pub mod corrections;
pub mod credentials;
pub mod duty;
pub mod events;
pub mod gates;
pub mod locks;
pub mod operators;
pub mod passages;
pub mod passes;
pub mod permits;
pub mod persons;
pub mod settings;
pub mod stats;
pub mod sync;
pub mod vehicles;
pub mod visit_requests;
pub mod visits;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Transaction};

use crate::central::db::{Actor, Db, Op, RepoError, now_ms, write_change};

/// The row `sql` (selecting by `$1`) returns for `id`, or [`RepoError::NotFound`].
pub(crate) async fn row_by_id(
    conn: &mut AnyConnection,
    sql: &str,
    id: i64,
) -> Result<AnyRow, RepoError> {
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(RepoError::NotFound)
}

/// The tail of a write to a row the gates hold: reads the row as it is now (`fetch`), writes
/// the change (`op`, the row `before` if there was one, and after), commits. Returns the row.
pub(crate) async fn commit_upsert<T: Serialize>(
    mut tx: Transaction<'static, Any>,
    actor: &Actor,
    op: Op<'_>,
    (entity, id): (&str, i64),
    before: Option<&T>,
    fetch: impl AsyncFn(&mut AnyConnection, i64) -> Result<T, RepoError>,
) -> Result<T, RepoError> {
    let after = fetch(&mut tx, id).await?;
    write_change(&mut tx, actor, op, entity, id, before, Some(&after)).await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes row `id` of `table` and writes the change: audited with the row as it was
/// (`before`), logged as a delete for the gates. In the caller's transaction.
pub(crate) async fn delete_row<T: Serialize>(
    conn: &mut AnyConnection,
    actor: &Actor,
    table: &str,
    entity: &str,
    id: i64,
    before: &T,
) -> Result<(), RepoError> {
    sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
        .bind(id)
        .execute(&mut *conn)
        .await?;
    write_change(conn, actor, Op::Delete, entity, id, Some(before), None).await
}

/// Deletes row `id` of `table` with its trail (see [`delete_row`]) in a transaction of its
/// own; `fetch` reads the row as it was ([`RepoError::NotFound`] when there is none).
pub(crate) async fn delete_by_id<T: Serialize>(
    db: &Db,
    actor: &Actor,
    (table, entity): (&str, &str),
    id: i64,
    fetch: impl AsyncFn(&mut AnyConnection, i64) -> Result<T, RepoError>,
) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    delete_row(&mut tx, actor, table, entity, id, &before).await?;
    tx.commit().await?;
    Ok(())
}

/// A row's validity window, as [`validity`] reads it.
pub(crate) struct Validity {
    pub from: DateTime<Utc>,
    /// `None`: until lifted.
    pub until: Option<DateTime<Utc>>,
    /// In force at the instant asked about.
    pub active: bool,
}

/// A row's validity window (`valid_from_ms`, `valid_until_ms`), and whether it is in force at
/// `now` (UTC ms).
pub(crate) fn validity(r: &AnyRow, now: i64) -> Result<Validity, RepoError> {
    use sqlx::Row;
    let from: i64 = r.try_get("valid_from_ms")?;
    let until: Option<i64> = r.try_get("valid_until_ms")?;
    Ok(Validity {
        from: audit::at(from),
        until: until.map(audit::at),
        active: from <= now && until.is_none_or(|u| u > now),
    })
}

/// What `lift` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Lifted<T> {
    /// The row now ends at the time of the lift.
    Lifted(T),
    /// It had already ended; nothing changed.
    AlreadyEnded(T),
}

/// Ends row `id` of `table` (a blacklist entry, a vehicle lock) now, audited as `lift`; one
/// that has not started yet ends at its start, so it never comes into force. One that has
/// already ended is left as it is. `fetch` reads the row, `window` gives its validity
/// (from, until).
pub(crate) async fn lift<T: Serialize>(
    db: &Db,
    actor: &Actor,
    (table, entity): (&str, &str),
    id: i64,
    fetch: impl AsyncFn(&mut AnyConnection, i64) -> Result<T, RepoError>,
    window: impl Fn(&T) -> (DateTime<Utc>, Option<DateTime<Utc>>),
) -> Result<Lifted<T>, RepoError> {
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    let now = now_ms();
    let (from, until) = window(&before);
    if until.is_some_and(|u| u.timestamp_millis() <= now) {
        return Ok(Lifted::AlreadyEnded(before));
    }
    let end = now.max(from.timestamp_millis());
    sqlx::query(&format!(
        "UPDATE {table} SET valid_until_ms = $1, updated_ms = $2 WHERE id = $3"
    ))
    .bind(end)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let after = fetch(&mut tx, id).await?;
    let op = Op::Upsert("lift");
    write_change(&mut tx, actor, op, entity, id, Some(&before), Some(&after)).await?;
    tx.commit().await?;
    Ok(Lifted::Lifted(after))
}
