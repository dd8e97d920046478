//! A lane's live state as its tasks report it: for the status file, the console, the booth
//! and tests. Plain data; it never drives the lane.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::wire::journal::{DecisionRecord, PhotoRef};

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
    /// A low-confidence plate read waiting for the guard (it never opens by itself), until the
    /// guard gives a command at this lane or the vehicle leaves.
    pub held: Option<HeldRead>,
    /// Plate camera reads received (repeats not counted).
    pub camera_reads: u64,
    /// The QR pass scanner's port is open (false too for a lane without one).
    pub qr_online: bool,
    /// Texts the QR scanner sent.
    pub qr_scans: u64,
    /// Bytes the QR scanner's line codec dropped as noise (control bytes, non-UTF-8 and
    /// overlong lines), since the gate started.
    pub qr_dropped_bytes: u64,
    /// Passes scanned with no vehicle on the presence loop (they open nothing).
    pub passes_ignored_no_vehicle: u64,
}

/// A plate read too unsure to act on, as the guard sees it: what the camera read, how sure it
/// was, its photos, and registered or booked plates it may have meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldRead {
    /// The camera's name.
    pub camera: String,
    /// The camera's event id.
    pub event_id: String,
    /// The text as the camera sent it.
    pub plate_text: String,
    /// The colour the camera reported (`PlateColour` code), if any.
    pub colour: Option<String>,
    /// The camera's confidence, 0–100.
    pub confidence: u8,
    /// The read's photos (plate close-up, scene).
    pub photos: Vec<PhotoRef>,
    /// Near matches among registered and booked plates (suggestions only: nothing opens on one).
    pub suggestions: Vec<String>,
    /// When the lane received it.
    pub at: DateTime<Utc>,
}
