//! Sending commands to a gate — a guard's or the office's manual open / keep closed, and mode
//! changes ([`GateCommand`]) — over the gate's sync connection, and waiting for the gate's
//! acknowledgement.
//!
//! Delivery: [`send`] writes the command to `gate_commands` (audited in the same transaction);
//! the gate's command long poll, on whichever central instance it is connected to, is woken
//! (by the instance's watcher, or at once by PostgreSQL's NOTIFY) and hands it over; the gate
//! carries it out and acknowledges it (audited); [`send`] waits for that acknowledgement in
//! the database. A gate not heard from for 15 s is offline; a command not delivered within its
//! time to live is never delivered later (a stale "open" must not lift a barrier).
//!
//! What it never does: check who may command which gate (the API's policy and the console's
//! gate scoping do), or carry a command out itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::central::db::{Actor, RepoError};
use crate::central::state::AppState;
use crate::wire::command::GateCommand;

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

/// How long [`send`] waits for the gate's acknowledgement.
pub const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How often [`send`] looks for the acknowledgement.
const ACK_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Sends `command` to `gate_id` on behalf of `actor`, records it in the audit log, and waits
/// for the gate's acknowledgement.
pub async fn send(
    state: &AppState,
    gate_id: i64,
    command: GateCommand,
    actor: &Actor,
) -> Result<CommandAck, CommandError> {
    use crate::central::repo::sync as repo;
    let seen = repo::last_seen(&state.db, gate_id).await?;
    let now = crate::central::db::now_ms();
    if seen.is_none_or(|s| now - s > repo::SILENT_AFTER_MS) {
        return Err(CommandError::GateOffline);
    }
    let body = serde_json::to_value(&command).expect("commands serialise");
    let ttl = ACK_TIMEOUT.as_millis() as i64;
    let command_id = repo::queue_command(&state.db, gate_id, &body, actor, ttl).await?;
    let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
    loop {
        if let Some((acked_ms, done, detail)) = repo::command_outcome(&state.db, command_id).await?
        {
            if !done {
                return Err(CommandError::Refused(detail));
            }
            return Ok(CommandAck {
                gate_id,
                command_id,
                acked_at: crate::central::repo::audit::at(acked_ms),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CommandError::Timeout);
        }
        tokio::time::sleep(ACK_POLL).await;
    }
}
