//! Accepting a gate's uploaded events: store them exactly once ([`repo::events::ingest`]), then
//! tell the live pages about the ones that are new. The sync endpoint calls this, never the
//! repository directly, so every stored event also reaches the live view.
//!
//! What it never does: authenticate the gate (the sync layer has done so and passes the gate's
//! id from its certificate), or publish an event that was already stored.

use std::sync::Arc;

use crate::central::api::AppState;
use crate::central::db::RepoError;
use crate::central::live::LiveMessage;
use crate::central::repo::events::{self, IngestOutcome};
use crate::gate::journal::JournalEvent;

/// Stores `events` uploaded by `gate_id` and publishes the newly stored ones.
pub async fn accept(
    state: &AppState,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    let before = events::watermark(&state.db, gate_id).await?;
    let outcome = events::ingest(&state.db, gate_id, events).await?;
    crate::metrics::ingested(gate_id, outcome.stored as u64);
    if outcome.stored > 0 {
        // Events above the old watermark, once each and in order. (An event above a gap that
        // an earlier upload already stored can be published twice; the live view shows the
        // latest state, so a repeat is harmless.)
        let mut fresh: Vec<JournalEvent> =
            events.iter().filter(|e| e.seq > before).cloned().collect();
        fresh.sort_by_key(|e| e.seq);
        fresh.dedup_by_key(|e| e.seq);
        if !fresh.is_empty() {
            state.live.publish(LiveMessage::Events {
                gate_id,
                events: Arc::from(fresh),
            });
        }
    }
    Ok(outcome)
}
