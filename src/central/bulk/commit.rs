//! Writing checked rows: every row, its audit entry and its change-log entry in one
//! transaction, in multi-row INSERTs, with ids drawn before the rows are written.
//!
//! What it never does: check a row (only rows [`super::check()`] passed reach it), or write part
//! of an import.

use std::sync::atomic::Ordering;

use sqlx::{AnyConnection, Row};

use super::{Prepared, Progress};
use crate::central::db::{Actor, Arg, Db, DbKind, RepoError, now_ms};
use crate::central::repo::persons;

/// Rows per multi-row INSERT: SQLite runs small statements fastest through sqlx (see
/// `repo::events`), PostgreSQL saves a round trip per row.
fn batch(db: &Db) -> usize {
    match db.kind() {
        DbKind::Sqlite => 10,
        DbKind::Postgres => 500,
    }
}

/// `n` fresh ids for `table`, so its rows can be written in multi-row INSERTs and still be
/// audited by id (neither database promises the order of `RETURNING` rows). The one dialect
/// difference of this module: PostgreSQL draws them from the identity sequence; SQLite counts
/// on from the largest id — a concurrent insert then fails this transaction (all or nothing)
/// instead of colliding silently.
async fn allocate_ids(
    conn: &mut AnyConnection,
    kind: DbKind,
    table: &str,
    n: usize,
) -> Result<Vec<i64>, RepoError> {
    if n == 0 {
        return Ok(vec![]);
    }
    match kind {
        DbKind::Postgres => {
            let sql = format!(
                "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id \
                 FROM generate_series(1, $1) ORDER BY 1"
            );
            let rows = sqlx::query(&sql)
                .bind(n as i64)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
        }
        DbKind::Sqlite => {
            let max: i64 = sqlx::query(&format!("SELECT COALESCE(MAX(id), 0) AS m FROM {table}"))
                .fetch_one(&mut *conn)
                .await?
                .try_get("m")?;
            Ok((1..=n as i64).map(|k| max + k).collect())
        }
    }
}

/// Inserts `values` into `target` (see [`crate::central::db::insert_values`]) a batch at a
/// time, counting each batch into `progress`.
async fn insert_counted(
    conn: &mut sqlx::AnyConnection,
    target: &str,
    values: &[Vec<Arg>],
    batch: usize,
    progress: &Progress,
) -> Result<(), RepoError> {
    for chunk in values.chunks(batch) {
        crate::central::db::insert_values(conn, target, chunk, batch, "").await?;
        progress
            .done
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Writes checked rows in one transaction: each row, its audit entry (`import`) and its
/// change-log entry, plus one summary audit entry. Returns the rows written.
pub async fn commit(
    db: &Db,
    actor: &Actor,
    rows: &Prepared,
    progress: &Progress,
) -> Result<u64, RepoError> {
    progress.set_phase("importing");
    let now = now_ms();
    let batch = batch(db);
    let mut tx = db.begin().await?;
    // (entity, id, the row as audited)
    let mut written: Vec<(&'static str, i64, serde_json::Value)> = Vec::with_capacity(rows.len());
    let mut values: Vec<Vec<Arg>> = Vec::with_capacity(rows.len());
    match rows {
        Prepared::Persons(list) => {
            let ids = allocate_ids(&mut tx, db.kind(), "persons", list.len()).await?;
            for (p, id) in list.iter().zip(ids) {
                values.push(vec![
                    id.into(),
                    p.name.as_str().into(),
                    p.category.as_str().into(),
                    p.department.as_str().into(),
                    p.phone.as_str().into(),
                    p.id_card.as_str().into(),
                    now.into(),
                    now.into(),
                    p.staff_no.as_str().into(),
                    p.email.as_str().into(),
                ]);
                let mut v = serde_json::to_value(p).unwrap_or_default();
                v["id"] = id.into();
                written.push((persons::ENTITY, id, v));
            }
            let target = "persons (id, name, category, department, phone, id_card, created_ms, \
                 updated_ms, staff_no, email)";
            insert_counted(&mut tx, target, &values, batch, progress).await?;
        }
        Prepared::Vehicles(list) => {
            let ids = allocate_ids(&mut tx, db.kind(), "vehicles", list.len()).await?;
            for (v, id) in list.iter().zip(ids) {
                values.push(vec![
                    id.into(),
                    v.plate.as_str().into(),
                    v.plate_colour.as_str().into(),
                    v.vehicle_type.as_str().into(),
                    v.owner_id.into(),
                    v.note.as_str().into(),
                    now.into(),
                    now.into(),
                ]);
                let json = serde_json::json!({"id": id, "plate": v.plate, "plate_colour": v.plate_colour,
                    "vehicle_type": v.vehicle_type, "owner_id": v.owner_id, "note": v.note});
                written.push((crate::central::repo::vehicles::ENTITY, id, json));
            }
            let target = "vehicles (id, plate, plate_colour, vehicle_type, owner_id, note, created_ms, updated_ms)";
            insert_counted(&mut tx, target, &values, batch, progress).await?;
        }
        Prepared::Permits(list) => {
            let ids = allocate_ids(&mut tx, db.kind(), "permits", list.len()).await?;
            let mut links = Vec::with_capacity(list.len());
            for (p, id) in list.iter().zip(ids) {
                values.push(vec![
                    id.into(),
                    p.category.as_str().into(),
                    p.holder_id.into(),
                    p.valid_from_ms.into(),
                    p.valid_until_ms.into(),
                    p.gates.as_str().into(),
                    p.schedule.as_str().into(),
                    i64::from(p.single_use).into(),
                    "active".into(),
                    "".into(),
                    1i64.into(),
                    now.into(),
                    now.into(),
                ]);
                links.push(vec![Arg::Int(id), Arg::Int(p.vehicle_id)]);
                let json = serde_json::json!({"id": id, "category": p.category,
                    "holder_id": p.holder_id, "vehicle_ids": [p.vehicle_id],
                    "valid_from_ms": p.valid_from_ms, "valid_until_ms": p.valid_until_ms,
                    "gates": p.gates, "schedule": p.schedule, "single_use": p.single_use,
                    "status": "active", "version": 1});
                written.push((crate::central::repo::permits::ENTITY, id, json));
            }
            let target = "permits (id, category, holder_id, valid_from_ms, valid_until_ms, gates, \
                     schedule, single_use, status, status_reason, version, created_ms, updated_ms)";
            insert_counted(&mut tx, target, &values, batch, progress).await?;
            crate::central::db::insert_values(
                &mut tx,
                "permit_vehicles (permit_id, vehicle_id)",
                &links,
                batch,
                "",
            )
            .await?;
        }
    }
    let audits: Vec<Vec<Arg>> = written
        .iter()
        .map(|(entity, id, json)| {
            vec![
                now.into(),
                actor.operator_id.into(),
                actor.name.as_str().into(),
                "import".into(),
                (*entity).into(),
                id.to_string().into(),
                Arg::OptText(None),
                json.to_string().into(),
            ]
        })
        .collect();
    crate::central::db::insert_values(
        &mut tx,
        "audit_log (at_ms, operator_id, operator_name, action, entity, entity_id, before_json, after_json)",
        &audits,
        batch, "",)
    .await?;
    let changes: Vec<Vec<Arg>> = written
        .iter()
        .map(|(entity, id, _)| {
            vec![
                now.into(),
                (*entity).into(),
                id.to_string().into(),
                "upsert".into(),
            ]
        })
        .collect();
    crate::central::db::insert_values(
        &mut tx,
        "change_log (at_ms, entity, entity_id, op)",
        &changes,
        batch,
        "",
    )
    .await?;
    let summary = serde_json::json!({"rows": written.len()});
    crate::central::db::audit(
        &mut tx,
        actor,
        "bulk_import",
        written.first().map_or("import", |w| w.0),
        "",
        None,
        Some(&summary),
    )
    .await?;
    tx.commit().await?;
    Ok(written.len() as u64)
}
