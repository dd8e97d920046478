//! Every person, vehicle or permit as a [`Table`] in the import's columns (plus the id, and a
//! permit's status), so an exported file can be edited and imported elsewhere. ID-card and phone
//! numbers are masked unless the caller says the reader sees them in full.
//!
//! What it never does: decide who may export (the API does), or render the file
//! ([`crate::central::export`] does).

use std::collections::HashMap;

use chrono_tz::Tz;
use sqlx::Row;

use super::Kind;
use crate::central::db::{Db, RepoError};
use crate::central::export::{Cell, Table};
use crate::central::repo::persons::{mask_id_card, mask_phone};
use crate::i18n::Msg;

/// Every row `sql` returns.
async fn all_rows(pool: &sqlx::AnyPool, sql: &str) -> Result<Vec<sqlx::any::AnyRow>, RepoError> {
    Ok(sqlx::query(sql).fetch_all(pool).await?)
}

/// Every row of `kind`, ID-card and phone numbers in full when `full`, masked otherwise; times
/// in the site's zone `tz`, `YYYY-MM-DD HH:MM`.
pub async fn table(db: &Db, kind: Kind, full: bool, tz: Tz) -> Result<Table, RepoError> {
    let id_card = |s: String| if full { s } else { mask_id_card(&s) };
    let phone = |s: String| if full { s } else { mask_phone(&s) };
    // An e-mail address keeps only its domain for callers who may not see it in full.
    let email = |s: String| match s.split_once('@') {
        Some((_, domain)) if !full => format!("***@{domain}"),
        _ => s,
    };
    let pool = db.pool();
    let columns = |extra: &[(&'static str, &'static str)]| {
        let mut c = vec![Msg::new("编号", "id")];
        c.extend(
            kind.columns()
                .iter()
                .map(|(key, zh, _)| Msg::new(*zh, *key)),
        );
        c.extend(extra.iter().map(|(zh, en)| Msg::new(*zh, *en)));
        c
    };
    let local = |ms: i64| {
        crate::central::repo::audit::at(ms)
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    Ok(match kind {
        Kind::Persons => Table {
            name: "persons",
            columns: columns(&[]),
            rows: all_rows(
                pool,
                "SELECT id, name, category, department, phone, id_card, staff_no, email FROM persons \
                 ORDER BY id",
            )
            .await?
            .iter()
            .map(|r| {
                vec![
                    Cell::Int(r.get("id")),
                    Cell::Text(r.get("name")),
                    Cell::Text(r.get("category")),
                    Cell::Text(r.get("department")),
                    Cell::Text(phone(r.get("phone"))),
                    Cell::Text(id_card(r.get("id_card"))),
                    Cell::Text(r.get("staff_no")),
                    Cell::Text(email(r.get("email"))),
                ]
            })
            .collect(),
        },
        Kind::Vehicles => Table {
            name: "vehicles",
            columns: columns(&[]),
            rows: all_rows(
                pool,
                "SELECT v.id, v.plate, v.plate_colour, v.vehicle_type, p.id_card, v.note \
                 FROM vehicles v LEFT JOIN persons p ON p.id = v.owner_id ORDER BY v.id",
            )
            .await?
            .iter()
            .map(|r| {
                vec![
                    Cell::Int(r.get("id")),
                    Cell::Text(r.get("plate")),
                    Cell::Text(r.get("plate_colour")),
                    Cell::Text(r.get("vehicle_type")),
                    Cell::Text(id_card(
                        r.get::<Option<String>, _>("id_card").unwrap_or_default(),
                    )),
                    Cell::Text(r.get("note")),
                ]
            })
            .collect(),
        },
        Kind::Permits => {
            let rows = all_rows(
                pool,
                "SELECT pm.id, p.id_card, pm.category, pm.valid_from_ms, pm.valid_until_ms, \
                 pm.gates, pm.schedule, pm.single_use, pm.status FROM permits pm \
                 JOIN persons p ON p.id = pm.holder_id ORDER BY pm.id",
            )
            .await?;
            let mut plates: HashMap<i64, Vec<String>> = HashMap::new();
            for r in all_rows(
                pool,
                "SELECT pv.permit_id, v.plate FROM permit_vehicles pv \
                 JOIN vehicles v ON v.id = pv.vehicle_id ORDER BY pv.permit_id, v.id",
            )
            .await?
            {
                plates
                    .entry(r.get("permit_id"))
                    .or_default()
                    .push(r.get("plate"));
            }
            Table {
                name: "permits",
                columns: columns(&[("状态", "status")]),
                rows: rows
                    .iter()
                    .map(|r| {
                        let id: i64 = r.get("id");
                        vec![
                            Cell::Int(id),
                            Cell::Text(id_card(r.get("id_card"))),
                            Cell::Text(plates.remove(&id).unwrap_or_default().join(";")),
                            Cell::Text(r.get("category")),
                            Cell::Text(local(r.get("valid_from_ms"))),
                            Cell::Text(local(r.get("valid_until_ms"))),
                            Cell::Text(r.get("gates")),
                            Cell::Text(r.get("schedule")),
                            Cell::Text(
                                if r.get::<i64, _>("single_use") != 0 {
                                    "是"
                                } else {
                                    "否"
                                }
                                .into(),
                            ),
                            Cell::Text(r.get("status")),
                        ]
                    })
                    .collect(),
            }
        }
    })
}
