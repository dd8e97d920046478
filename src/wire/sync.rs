//! The sync protocol's messages: JSON over HTTP (HTTP/2 when TLS negotiates it), one DTO per
//! message. Domain types are not `Serialize`; these are the boundary. Rows of data are the
//! [`crate::wire::rows`] records ([`PermitRecord`], …), the text form both sides validate.
//!
//! Endpoints (all under the mutual-TLS listener; the gate is named by its certificate):
//! - `GET  /sync/v1/snapshot` — everything the gate decides from, as NDJSON lines
//!   ([`SnapshotLine`]): a header with the format and the data version, the rows in batches,
//!   an end line with the row count.
//! - `GET  /sync/v1/changes?since=V&wait_ms=N` — long poll: answers at once when the change log
//!   is past `V`, else when it moves, else after `wait_ms` with nothing ([`Changes`]).
//! - `POST /sync/v1/events` — a batch of journal events ([`EventBatch`] → [`EventAck`]).
//! - `GET  /sync/v1/commands?wait_ms=N` — long poll for commands ([`PendingCommand`]s).
//! - `POST /sync/v1/commands/{id}/ack` — the gate's [`CommandResult`].
//! - `POST /sync/v1/health` — a [`HealthReport`] → [`HealthAck`].
//! - `POST /sync/v1/photos/missing` — which of these photos the centre lacks
//!   ([`PhotosQuery`] → [`PhotosMissing`]).
//! - `PUT  /sync/v1/photos/{sha256}` — one photo's JPEG bytes (`image/jpeg`); the centre checks
//!   the size (at most [`MAX_PHOTO_BYTES`]) and that the bytes hash to the name, stores it once
//!   (a repeat is 200 too) and answers [`PhotoStored`]. Photos travel after their events, on a
//!   loop of their own, so they never hold events up.
//!
//! **Snapshot format 2** ([`SNAPSHOT_FORMAT`]). Each line is `{"t": KIND, "d": DATA}`. The
//! bulk rows travel in batches of up to [`SNAPSHOT_BATCH`] per line, and permits, vehicles,
//! tags and presence as positional arrays ([`PermitWire`], [`VehicleWire`],
//! [`CredentialWire`], [`PresenceWire`]) rather than objects that repeat every field name,
//! which more than doubles the bytes to write and parse (benches/README.md).
//! The end line counts rows, not lines, so a cut-off stream is still detected. The centre and
//! the gates are one binary, so there is no negotiation: a gate refuses a header of any other
//! format (upgrade the centre and the gates together).
//!
//! This module never does IO.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::wire::command::GateCommand;
use crate::wire::journal::{JournalEvent, JournalIdentity};
use crate::wire::rows::{
    BlacklistRecord, BookingRecord, CredentialRecord, LockRecord, PassageRecord, PermitRecord,
    Update, VehicleRecord, update_is_empty,
};

/// Path prefix of every sync endpoint.
pub const PREFIX: &str = "/sync/v1";

/// The longest a long poll may be asked to wait.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Events per upload batch the centre accepts.
pub const MAX_BATCH: usize = 5_000;

/// The largest photo the centre accepts (a camera push is at most 8 MiB, photos included).
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;

/// Hashes per `photos/missing` question.
pub const MAX_PHOTO_QUERY: usize = 1000;

/// The snapshot format this binary writes and reads (see the module header).
pub const SNAPSHOT_FORMAT: u32 = 2;

/// Rows per batch line of the snapshot stream.
pub const SNAPSHOT_BATCH: usize = 1000;

/// One line of the snapshot stream: `{"t": KIND, "d": DATA}` (the tag first, so a batch is
/// read straight into its rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "d", rename_all = "snake_case")]
pub enum SnapshotLine {
    /// First line: the format, the data version (change-log sequence) the snapshot is at, and
    /// the gate's settings.
    Header(SnapshotHeader),
    Permits(Vec<PermitWire>),
    Vehicles(Vec<VehicleWire>),
    Credentials(Vec<CredentialWire>),
    Blacklist(Vec<BlacklistRecord>),
    Locks(Vec<LockRecord>),
    Bookings(Vec<BookingRecord>),
    Presence(Vec<PresenceWire>),
    /// Last line: how many rows the batches before it carried (a cut-off stream is detected).
    End {
        rows: u64,
    },
}

impl SnapshotLine {
    /// The rows this line carries (0 for the header and the end).
    pub fn rows(&self) -> usize {
        match self {
            SnapshotLine::Header(_) | SnapshotLine::End { .. } => 0,
            SnapshotLine::Permits(r) => r.len(),
            SnapshotLine::Vehicles(r) => r.len(),
            SnapshotLine::Credentials(r) => r.len(),
            SnapshotLine::Blacklist(r) => r.len(),
            SnapshotLine::Locks(r) => r.len(),
            SnapshotLine::Bookings(r) => r.len(),
            SnapshotLine::Presence(r) => r.len(),
        }
    }
}

/// The snapshot's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// [`SNAPSHOT_FORMAT`] of the centre that wrote it.
    pub format: u32,
    pub version: u64,
    pub gate: GateSettings,
}

/// A [`PermitRecord`] on the snapshot wire: `[id, category, holder_id, holder_name, department,
/// status, status_reason, valid_from, valid_until, gates, schedule, single_use, max_inside,
/// version]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitWire(
    pub u32,
    pub String,
    pub u32,
    pub String,
    pub String,
    pub String,
    pub String,
    pub u32,
    pub u32,
    pub String,
    pub String,
    pub bool,
    pub Option<u16>,
    pub u32,
);

impl From<PermitRecord> for PermitWire {
    fn from(r: PermitRecord) -> PermitWire {
        PermitWire(
            r.id,
            r.category,
            r.holder_id,
            r.holder_name,
            r.department,
            r.status,
            r.status_reason,
            r.valid_from,
            r.valid_until,
            r.gates,
            r.schedule,
            r.single_use,
            r.max_inside,
            r.version,
        )
    }
}

impl From<PermitWire> for PermitRecord {
    fn from(w: PermitWire) -> PermitRecord {
        let PermitWire(
            id,
            category,
            holder_id,
            holder_name,
            department,
            status,
            status_reason,
            valid_from,
            valid_until,
            gates,
            schedule,
            single_use,
            max_inside,
            version,
        ) = w;
        PermitRecord {
            id,
            category,
            holder_id,
            holder_name,
            department,
            status,
            status_reason,
            valid_from,
            valid_until,
            gates,
            schedule,
            single_use,
            max_inside,
            version,
        }
    }
}

/// A [`VehicleRecord`] on the snapshot wire: `[id, plate, colour, [permit ids]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleWire(pub u32, pub String, pub String, pub Vec<u32>);

impl From<VehicleRecord> for VehicleWire {
    fn from(r: VehicleRecord) -> VehicleWire {
        VehicleWire(r.id, r.plate, r.colour, r.permit_ids)
    }
}

impl From<VehicleWire> for VehicleRecord {
    fn from(VehicleWire(id, plate, colour, permit_ids): VehicleWire) -> VehicleRecord {
        VehicleRecord {
            id,
            plate,
            colour,
            permit_ids,
        }
    }
}

/// A [`CredentialRecord`] on the snapshot wire: `[epc, tid or null, vehicle_id]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialWire(pub String, pub Option<String>, pub u32);

impl From<CredentialRecord> for CredentialWire {
    fn from(r: CredentialRecord) -> CredentialWire {
        CredentialWire(r.epc, r.tid, r.vehicle_id)
    }
}

impl From<CredentialWire> for CredentialRecord {
    fn from(CredentialWire(epc, tid, vehicle_id): CredentialWire) -> CredentialRecord {
        CredentialRecord {
            epc,
            tid,
            vehicle_id,
        }
    }
}

/// A [`PassageRecord`] on the snapshot wire: `[vehicle_id, inside, since_ms, gate_id]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceWire(pub u32, pub bool, pub i64, pub u16);

impl From<PassageRecord> for PresenceWire {
    fn from(r: PassageRecord) -> PresenceWire {
        PresenceWire(r.vehicle_id, r.inside, r.since_ms, r.gate_id)
    }
}

impl From<PresenceWire> for PassageRecord {
    fn from(PresenceWire(vehicle_id, inside, since_ms, gate_id): PresenceWire) -> PassageRecord {
        PassageRecord {
            vehicle_id,
            inside,
            since_ms,
            gate_id,
        }
    }
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
    /// The site's visitor-pass public keys: the current one and any rotated-out key still in
    /// its overlap (`crate::wire::pass`). Absent from older centres.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_keys: Vec<crate::wire::pass::PassKeyWire>,
}

/// A lane's central settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneSettings {
    pub lane: String,
    pub mode: String,
    /// Device settings as JSON text.
    pub settings: String,
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
    pub presence: Vec<PassageRecord>,
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

/// A batch of journal events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// The gate the events belong to; must be the certificate's gate.
    pub gate_id: i64,
    /// The journal the events come from. Absent from gates that predate journal ids: their
    /// events are the gate's id-less journal (see [`JournalIdentity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalIdentity>,
    pub events: Vec<JournalEvent>,
}

/// The centre's answer to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAck {
    /// Every event 1..=this of the batch's journal is stored centrally: the gate may mark
    /// them delivered.
    pub highest_contiguous: u64,
    pub stored: u64,
    /// Events the centre already held with the same body (re-sent): ignored.
    pub duplicates: u64,
    /// Events whose sequence number the centre already held with a *different* body (the
    /// journal rewound): kept in quarantine, alarmed, and counted here, not in `duplicates`.
    #[serde(default)]
    pub conflicts: u64,
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
    /// True while the journal cannot commit (disk full, read-only): the lanes carry on, the
    /// office must be told. Absent from older gates: false.
    #[serde(default)]
    pub write_failing: bool,
    /// Journal commits that failed since the gate started.
    #[serde(default)]
    pub write_failures: u64,
}

/// One lane's devices and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneHealth {
    pub lane: String,
    pub mode: String,
    pub state: String,
    pub reader_online: bool,
    pub io_online: bool,
    /// The lane's plate cameras (absent from gates without cameras and older gates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cameras: Vec<CameraHealth>,
}

/// A plate camera's health as its gate sees it: online while it pushes (reads or heartbeats)
/// within its `silent_after_s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraHealth {
    /// Its name in gate.toml.
    pub name: String,
    pub online: bool,
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
pub struct RefusalBody {
    pub code: String,
    pub message: String,
}

/// `POST /sync/v1/photos/missing`: the photos a gate holds and has not had confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotosQuery {
    /// Lower-case hex SHA-256 of each photo (at most [`MAX_PHOTO_QUERY`]).
    pub sha256: Vec<String>,
}

/// Which of the asked photos the centre does not hold (the others it has: confirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotosMissing {
    pub missing: Vec<String>,
}

/// The answer to a photo upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoStored {
    pub sha256: String,
    pub bytes: u64,
    /// False when the centre already had it (the upload was a repeat).
    pub created: bool,
}
