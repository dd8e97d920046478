//! Accepting a gate's uploaded events: store them exactly once ([`events::ingest`], which
//! in the same transaction keeps the statistics current and records the campus-wide presence
//! the passages change), then wake the sync server's presence publisher if presence changed
//! (it announces the change to every gate) and tell the live pages about exactly the events
//! stored. The sync endpoint calls this, never the repository directly, so every stored event
//! also reaches the live view and every presence change the gates.
//!
//! An upload that SQLite refuses because another writer committed first, or that PostgreSQL
//! refuses because another upload of the same gate stored one of its events first, is tried
//! again (see `is_busy`, `is_collision`); nothing of it was written.
//!
//! What it never does: authenticate the gate (the sync layer has done so and passes the gate's
//! id from its certificate), or publish an event that was already stored.

use std::sync::Arc;

use crate::central::api::AppState;
use crate::central::db::{DbKind, RepoError};
use crate::central::live::LiveMessage;
use crate::central::repo::events::{self, IngestOutcome};
use crate::gate::journal::JournalEvent;

/// Stores `events` uploaded by `gate_id` (updating the statistics in the same transaction) and
/// publishes exactly the events stored now, once each, in sequence order.
pub async fn accept(
    state: &AppState,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    // SQLite takes one writer at a time: queue this instance's uploads rather than let them
    // collide (a centre on SQLite is a single instance).
    let _one_at_a_time = match state.db.kind() {
        DbKind::Sqlite => Some(SQLITE_INGEST.lock().await),
        DbKind::Postgres => None,
    };
    let mut attempt = 0u32;
    let outcome = loop {
        match events::ingest(&state.db, gate_id, events).await {
            Err(e) if attempt < BUSY_RETRIES && (is_busy(&e) || is_collision(&e)) => {
                attempt += 1;
                // Jitter, so that gates that collided do not collide again in step.
                let pause = 1
                    + u64::from(attempt) * 2
                    + u64::from(rand_core::RngCore::next_u32(&mut rand_core::OsRng) % 8);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => break other?,
        }
    };
    crate::metrics::ingested(gate_id, outcome.stored as u64);
    if outcome.presence_changed > 0 {
        state.presence_queued.notify_one();
    }
    if !outcome.stored_seqs.is_empty() {
        // `stored_seqs` is ascending; an upload's repeats were stored as their first copy.
        let mut seen = std::collections::HashSet::with_capacity(outcome.stored_seqs.len());
        let mut fresh: Vec<JournalEvent> = events
            .iter()
            .filter(|e| outcome.stored_seqs.binary_search(&e.seq).is_ok() && seen.insert(e.seq))
            .cloned()
            .collect();
        fresh.sort_by_key(|e| e.seq);
        state.live.publish(LiveMessage::Events {
            gate_id,
            events: Arc::from(fresh),
        });
    }
    // A fire input is an alarm at the office (and the police link), not only a lane event.
    // Every event of the upload is looked at, not only those stored now: an upload tried again
    // after this failed raises what it missed, and nothing twice.
    crate::central::alarms::from_events(&state.db, &state.live, gate_id, events).await?;
    Ok(outcome)
}

/// Uploads into SQLite, one at a time per process.
static SQLITE_INGEST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How often an upload that collided with another writer is tried again.
const BUSY_RETRIES: u32 = 20;

/// Whether SQLite refused the ingest's write because another connection wrote first. The
/// ingest's transaction begins by reading (the watermark); once another connection has
/// committed after that read, SQLite refuses the upgrade to a write at once ("database is
/// locked", `SQLITE_BUSY_SNAPSHOT`) rather than waiting out the busy timeout. Several gates
/// uploading at once meet this all the time on SQLite; nothing was written, so the upload is
/// simply tried again.
fn is_busy(e: &RepoError) -> bool {
    match e {
        RepoError::Database(sqlx::Error::Database(d)) => {
            matches!(d.code().as_deref(), Some("5" | "6" | "261" | "262" | "517"))
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}

/// Whether PostgreSQL refused the upload because another upload of the same gate stored one of
/// its events first: possible only before the gate's watermark row exists (later uploads of a
/// gate wait for each other on that row, see [`events::ingest`]). Nothing of it was written;
/// tried again, it finds those events stored and skips them.
fn is_collision(e: &RepoError) -> bool {
    match e {
        RepoError::Database(sqlx::Error::Database(d)) => {
            d.code().as_deref() == Some("23505")
                && d.constraint().is_none_or(|c| c == "passage_events_pkey")
        }
        _ => false,
    }
}
