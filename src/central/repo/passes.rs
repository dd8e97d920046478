//! Visitor passes in SQL for the sync and ingest code (which live under `repo` and must not
//! depend on [`crate::central::passes`]): the public pass keys a gate is sent, and a pass's use
//! at ingest.
//!
//! A pass's use: a granted decision on a single-use pass consumes its direction on the
//! booking (`pass_used_entry_ms` / `pass_used_exit_ms`), once, with the booking's change-log
//! entry so that every other gate learns it with its next delta; an entry on a pass marks an
//! approved booking arrived, and the exit of a single-use pass marks it left. It runs in the
//! ingest transaction on exactly the events stored now, so a re-sent upload changes nothing
//! twice; the conditional UPDATEs make it idempotent even so.
//!
//! What it never does: refuse or alter an event (a use the centre would not have allowed is
//! still recorded: the gate decided offline), or queue a notice (the caller does, after commit).

use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::bookings::ENTITY;
use crate::central::db::{Actor, RepoError, audit, record_change};
use crate::wire::journal::{EventBody, JournalEvent};
use crate::wire::pass::PassKeyWire;

/// The change-log entity of a pass key (`entity_id` is its kid): a change re-sends every
/// gate's settings.
pub const PASS_KEY: &str = "pass_key";

/// A visitor who entered on a pass (for the host's notice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassArrival {
    pub booking_id: i64,
    pub gate_id: i64,
    pub at_ms: i64,
}

/// Applies the granted pass decisions among `fresh` (events of `gate_id` stored now) to their
/// bookings. Returns the entries (for [`crate::central::notify::Notice::VisitorArrived`]).
pub async fn consume(
    conn: &mut AnyConnection,
    gate_id: i64,
    fresh: &[&JournalEvent],
) -> Result<Vec<PassArrival>, RepoError> {
    let mut arrivals = Vec::new();
    for e in fresh {
        let EventBody::Decision(d) = &e.body else {
            continue;
        };
        let Some(pass) = &d.pass else { continue };
        if !d.granted {
            continue;
        }
        let at_ms = e.at.timestamp_millis();
        let booking_id = pass.booking_id;
        let entry = match d.direction.as_str() {
            "entry" => true,
            "exit" => false,
            _ => continue,
        };
        let mut changed = false;
        if pass.single_use {
            let column = if entry {
                "pass_used_entry_ms"
            } else {
                "pass_used_exit_ms"
            };
            let n = sqlx::query(&format!(
                "UPDATE visitor_bookings SET {column} = $2 WHERE id = $1 AND {column} IS NULL"
            ))
            .bind(booking_id)
            .bind(at_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            changed |= n > 0;
        }
        let (from, to, stamp) = if entry {
            ("approved", "arrived", "arrived_ms")
        } else {
            ("arrived", "left", "left_ms")
        };
        // A multiple-use pass's exit does not end the booking: the visitor may come back.
        if entry || pass.single_use {
            let n = sqlx::query(&format!(
                "UPDATE visitor_bookings SET status = $3, {stamp} = $2, updated_ms = $2 \
                 WHERE id = $1 AND status = $4"
            ))
            .bind(booking_id)
            .bind(at_ms)
            .bind(to)
            .bind(from)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if n > 0 {
                audit(
                    conn,
                    &Actor::system(),
                    if entry { "arrive" } else { "leave" },
                    ENTITY,
                    booking_id,
                    Some(&json!({ "status": from })),
                    Some(&json!({ "status": to, "gate_id": gate_id, "credential": "pass" })),
                )
                .await?;
                changed = true;
            }
        }
        if changed {
            record_change(conn, ENTITY, booking_id, "upsert").await?;
        }
        if entry {
            arrivals.push(PassArrival {
                booking_id,
                gate_id,
                at_ms,
            });
        }
    }
    Ok(arrivals)
}

/// The public pass keys a gate is sent now: the current ones and those still in their
/// overlap, by kid.
pub async fn keys_for_gates(
    conn: &mut sqlx::AnyConnection,
    now_ms: i64,
) -> Result<Vec<PassKeyWire>, RepoError> {
    let rows = sqlx::query(
        "SELECT kid, public_key, retire_after_ms FROM pass_keys \
         WHERE retire_after_ms IS NULL OR retire_after_ms > $1 ORDER BY kid",
    )
    .bind(now_ms)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PassKeyWire {
                kid: r.try_get::<i64, _>("kid")?.clamp(0, i64::from(u16::MAX)) as u16,
                public_key: r.try_get("public_key")?,
                retire_after_ms: r.try_get("retire_after_ms")?,
            })
        })
        .collect()
}
