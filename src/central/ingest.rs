//! Accepting a gate's uploaded events: store them exactly once ([`repo::events::ingest`], which
//! also keeps the statistics current), then tell the live pages about exactly the ones stored. The sync endpoint calls this, never the
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

/// Stores `events` uploaded by `gate_id` (updating the statistics in the same transaction) and
/// publishes exactly the events stored now, once each, in sequence order.
pub async fn accept(
    state: &AppState,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<IngestOutcome, RepoError> {
    let outcome = events::ingest(&state.db, gate_id, events).await?;
    crate::metrics::ingested(gate_id, outcome.stored as u64);
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
    Ok(outcome)
}
