//! Commands from the centre to a gate — a guard's or the office's manual open / keep closed,
//! and mode changes — delivered over the gate's sync connection and acknowledged by the gate.
//!
//! CONTRACT (fixed so the console and the sync layer can be built side by side): the types and
//! the signature of [`send`] are what the console calls. The delivery itself belongs to the sync
//! layer; until it lands, every gate is reported offline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::central::api::AppState;
use crate::central::db::{Actor, RepoError};

/// What a gate is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GateCommand {
    /// A guard's command on one lane: `open`, `keep_closed` or `release`, with a reason code
    /// (visitor_registered, permit_holder_without_tag, emergency_vehicle, official_business,
    /// device_fault, other) and the guard's note.
    Guard {
        lane: String,
        command: String,
        reason: String,
        note: Option<String>,
        operator: String,
    },
    /// Set the mode of one lane, or of every lane of the gate (`lane: None`).
    SetMode {
        lane: Option<String>,
        mode: String,
        by: String,
    },
}

/// The gate's acknowledgement: it carried the command out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAck {
    pub gate_id: i64,
    pub command_id: i64,
    pub acked_at: DateTime<Utc>,
}

/// Why a command was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The gate has no sync connection to any central instance.
    #[error("gate is offline")]
    GateOffline,
    /// The gate did not acknowledge in time; it may still carry the command out.
    #[error("gate did not acknowledge in time")]
    Timeout,
    /// The gate refused the command (unknown lane, bad mode, ...).
    #[error("gate refused the command: {0}")]
    Refused(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Sends `command` to `gate_id` on behalf of `actor`, records it in the audit log, and waits
/// for the gate's acknowledgement.
pub async fn send(
    state: &AppState,
    gate_id: i64,
    command: GateCommand,
    actor: &Actor,
) -> Result<CommandAck, CommandError> {
    let _ = (state, gate_id, command, actor);
    Err(CommandError::GateOffline)
}
