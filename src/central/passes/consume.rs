//! A pass's use at ingest: a granted decision on a single-use pass consumes its direction on the
//! booking (`pass_used_entry_ms` / `pass_used_exit_ms`), once, with the booking's change-log
//! entry so that every other gate learns it with its next delta; an entry on a pass marks an
//! approved booking arrived, and the exit of a single-use pass marks it left.
//!
//! Runs in the ingest transaction on exactly the events stored now, so a re-sent upload changes
//! nothing twice; the conditional UPDATEs make it idempotent even so.
//!
//! What it never does: refuse or alter an event (a use the centre would not have allowed is
//! still recorded: the gate decided offline), or queue a notice (the caller does, after commit).

use serde_json::json;
use sqlx::AnyConnection;

use crate::central::db::{Actor, RepoError, audit, record_change};
use crate::central::repo::bookings::ENTITY;
use crate::wire::journal::{EventBody, JournalEvent};

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
