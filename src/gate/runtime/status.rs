//! A lane's live state as its tasks report it: for the status file, the console, the booth
//! and tests. Plain data; it never drives the lane.

use serde::Serialize;

use crate::wire::journal::DecisionRecord;

/// A lane's live state, for the status file, the console and tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LaneStatus {
    pub lane: String,
    pub state: String,
    pub mode: String,
    pub reader_online: bool,
    pub io_online: bool,
    pub last_decision: Option<DecisionRecord>,
    pub tags_ignored_no_vehicle: u64,
    pub decisions: u64,
    pub reader_dropped_bytes: u64,
}
