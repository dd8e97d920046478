//! Plate cameras (车牌识别一体机) as lane devices: what a camera's push says, whatever its make.
//!
//! What it is for: cameras push their reads to the gate over HTTP on the cabinet network. Each
//! make's payload is parsed by a sans-IO driver here into one [`CameraPush`]; the gate's camera
//! listener stores the photos, maps the camera's channel to a lane and hands the lane a
//! [`PlateSighting`]. The lane decides it like a tag read (same engine, same journal).
//!
//! What it never does: IO, clock reads, decisions. The listener and the lane do those.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::domain::{Direction, PlateColour, PlateIdentity};
use crate::wire::journal::{PhotoKind, PhotoRef, PlateReadRecord};

/// One camera read as a driver parsed it, photos still in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraPush {
    /// The camera's own id of the event (a repeat of the same push carries the same id).
    pub event_id: String,
    /// The plate text as sent (trimmed).
    pub plate_text: String,
    /// The colour the camera reported, if it did and it is one we know.
    pub colour: Option<PlateColour>,
    /// Confidence 0–100.
    pub confidence: u8,
    /// The direction the camera saw the vehicle travel, if it reports one.
    pub direction: Option<Direction>,
    /// The camera's channel (a camera may watch several lanes), if it reports one.
    pub channel: Option<u32>,
    /// The camera's clock at the read, if it reports one (never used to decide).
    pub at: Option<DateTime<Utc>>,
    /// The photos in the push.
    pub images: Vec<CameraImage>,
}

/// A JPEG from a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraImage {
    /// What it shows.
    pub kind: PhotoKind,
    /// The JPEG bytes.
    pub jpeg: Bytes,
}

/// A camera read as the lane gets it: photos already stored, lane and confidence policy known.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateSighting {
    /// The camera's name in gate.toml.
    pub camera: String,
    /// The camera's event id.
    pub event_id: String,
    /// The text as sent.
    pub plate_text: String,
    /// The plate, when the text parses (with the reported colour, blue when none).
    pub plate: Option<PlateIdentity>,
    /// The reported colour.
    pub colour: Option<PlateColour>,
    /// Confidence 0–100.
    pub confidence: u8,
    /// Below this confidence the read never opens by itself.
    pub min_confidence: u8,
    /// The direction the camera reported, if any.
    pub direction: Option<Direction>,
    /// The stored photos.
    pub photos: Vec<PhotoRef>,
}

impl PlateSighting {
    /// The journal's record of this read.
    pub fn record(&self) -> PlateReadRecord {
        PlateReadRecord {
            camera: self.camera.clone(),
            event_id: self.event_id.clone(),
            raw_plate: self.plate_text.clone(),
            colour: self.colour.map(|c| c.as_str().to_string()),
            confidence: self.confidence,
            photos: self.photos.clone(),
        }
    }
}

/// What the lane did with a sighting, once it is durably journalled (the listener answers the
/// camera 200 only then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SightingOutcome {
    /// Decided (and the barrier commanded if granted).
    Decided {
        /// Whether the lane let the vehicle through.
        granted: bool,
        /// The decision's reason code.
        reason: crate::domain::ReasonCode,
    },
    /// Low confidence: shown to the guard, who decides.
    Held,
    /// Journalled but not acted on, with why (`no_vehicle_on_loop`, …).
    Ignored(String),
    /// The same camera event was already journalled: nothing done again.
    Duplicate,
}
