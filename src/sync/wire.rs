//! The sync protocol's wire types: JSON over HTTP (HTTP/2 when TLS negotiates it), one DTO per
//! message. Domain types are not `Serialize`; these are the boundary. Rows of data reuse the
//! gate store's row DTOs ([`PermitRow`], …), which are the text form both sides validate.
//!
//! Endpoints (all under the mutual-TLS listener; the gate is named by its certificate):
//! - `GET  /sync/v1/snapshot` — everything the gate decides from, as NDJSON lines
//!   ([`SnapshotLine`]): a header with the data version, the rows, an end line with the count.
//! - `GET  /sync/v1/changes?since=V&wait_ms=N` — long poll: answers at once when the change log
//!   is past `V`, else when it moves, else after `wait_ms` with nothing ([`Changes`]).
//! - `POST /sync/v1/events` — a batch of journal events ([`EventBatch`] → [`EventAck`]).
//! - `GET  /sync/v1/commands?wait_ms=N` — long poll for commands ([`PendingCommand`]s).
//! - `POST /sync/v1/commands/{id}/ack` — the gate's [`CommandResult`].
//! - `POST /sync/v1/health` — a [`HealthReport`] → [`HealthAck`].
//!
//! This module never does IO.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::central::commands::GateCommand;
use crate::gate::journal::JournalEvent;
use crate::gate::store::{
    BlacklistRow, BookingRow, CredentialRow, LockRow, PermitRow, Update, VehicleRow,
};

/// Path prefix of every sync endpoint.
pub const PREFIX: &str = "/sync/v1";

/// The longest a long poll may be asked to wait.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Events per upload batch the centre accepts.
pub const MAX_BATCH: usize = 5_000;

/// One line of the snapshot stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum SnapshotLine {
    /// First line: the data version (change-log sequence) the snapshot is at, and the gate's
    /// settings.
    Header {
        version: u64,
        gate: GateSettings,
    },
    Permit(PermitRow),
    Vehicle(VehicleRow),
    Credential(CredentialRow),
    Blacklist(BlacklistRow),
    Lock(LockRow),
    Booking(BookingRow),
    Presence(PresenceRow),
    /// Last line: how many row lines came before it (a cut-off stream is detected).
    End {
        rows: u64,
    },
}

/// The gate's own settings from the centre.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GateSettings {
    /// `normal`, `locked_closed`, `locked_open`.
    pub mode: String,
    /// `off`, `hard`, `soft`, `timed:MINUTES`.
    pub anti_passback: String,
    /// `cached`, `locked_closed`, `locked_open`: what the gate does while it cannot reach the centre.
    pub offline_policy: String,
    pub enabled: bool,
    /// Lanes configured centrally: key and mode.
    pub lanes: Vec<LaneSettings>,
}

/// A lane's central settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneSettings {
    pub lane: String,
    pub mode: String,
    /// Device settings as JSON text.
    pub settings: String,
}

/// Where a vehicle was last seen passing any gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRow {
    pub vehicle_id: u32,
    pub inside: bool,
    /// UTC milliseconds of the passage.
    pub since_ms: i64,
    pub gate_id: u16,
}

/// The answer to a changes poll.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Changes {
    /// The data version after applying this answer (the highest change-log sequence covered).
    pub version: u64,
    /// The gate cannot catch up by deltas (it is ahead of the centre, e.g. after a restore):
    /// it must fetch a snapshot. The other fields are empty.
    pub reset: bool,
    /// Blacklist entries and permit/credential withdrawals: applied before anything else.
    pub urgent: Update,
    /// Everything else.
    pub update: Update,
    /// Presence changes from every gate (applied without rebuilding the index).
    pub presence: Vec<PresenceRow>,
    /// The gate's settings, when they changed.
    pub gate: Option<GateSettings>,
}

impl Changes {
    /// Whether the answer carries nothing to apply.
    pub fn is_empty(&self) -> bool {
        !self.reset
            && update_is_empty(&self.urgent)
            && update_is_empty(&self.update)
            && self.presence.is_empty()
            && self.gate.is_none()
    }
}

/// Whether an update carries no rows.
pub fn update_is_empty(u: &Update) -> bool {
    !u.replace_all
        && u.permits.is_empty()
        && u.delete_permits.is_empty()
        && u.vehicles.is_empty()
        && u.delete_vehicles.is_empty()
        && u.credentials.is_empty()
        && u.delete_credentials.is_empty()
        && u.blacklist.is_empty()
        && u.delete_blacklist.is_empty()
        && u.locks.is_empty()
        && u.delete_locks.is_empty()
        && u.bookings.is_empty()
        && u.delete_bookings.is_empty()
}

/// A batch of journal events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The gate the events belong to; must be the certificate's gate.
    pub gate_id: i64,
    pub events: Vec<JournalEvent>,
}

/// The centre's answer to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    /// Every event 1..=this is stored centrally: the gate may mark them delivered.
    pub highest_contiguous: u64,
    pub stored: u64,
    pub duplicates: u64,
}

/// A command waiting for the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCommand {
    pub id: i64,
    pub command: GateCommand,
}

/// What the gate did with a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// True: carried out; false: refused with `detail`.
    pub done: bool,
    #[serde(default)]
    pub detail: String,
}

/// The gate's periodic health report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The gate's clock when it sent the report.
    pub gate_time: DateTime<Utc>,
    pub data_version: u64,
    pub journal: JournalHealth,
    pub lanes: Vec<LaneHealth>,
}

/// The journal's fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHealth {
    pub last_seq: u64,
    pub acknowledged: u64,
    pub stored: u64,
    pub capacity: u64,
    pub fill_percent: u64,
}

/// One lane's devices and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneHealth {
    pub lane: String,
    pub mode: String,
    pub state: String,
    pub reader_online: bool,
    pub io_online: bool,
}

/// The centre's answer to a health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthAck {
    pub server_time: DateTime<Utc>,
    /// Gate clock minus centre clock, in milliseconds (positive: the gate is ahead).
    pub clock_offset_ms: i64,
    /// Above 5 s (GB 50396): the gate must correct its clock; the centre shows a warning.
    pub clock_warning: bool,
}

/// An error body from a sync endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncErrorBody {
    pub code: String,
    pub message: String,
}
