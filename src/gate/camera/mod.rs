//! Plate cameras (车牌识别一体机) as lane devices: what a camera's push says, whatever its make.
//!
//! What it is for: cameras push their reads to the gate over HTTP on the cabinet network. Each
//! make's payload is parsed by a sans-IO driver here into one [`CameraPush`]; the gate's camera
//! listener stores the photos, maps the camera's channel to a lane and hands the lane a
//! [`PlateSighting`]. The lane decides it like a tag read (same engine, same journal).
//!
//! The drivers, one per [`CameraKind`], all behind [`CameraDriver`] (or [`parse`] by kind):
//! - [`hikvision`]: ISAPI listening mode (`multipart/form-data` with an `EventNotificationAlert`
//!   XML part and JPEG parts, or the XML alone);
//! - [`alarm_info`]: the `AlarmInfoPlate` JSON push of the common all-in-one plate cameras;
//! - [`webhook`]: a plain JSON webhook, for anything else.
//!
//! Every driver refuses what it cannot vouch for with a [`CameraError`] that says precisely what
//! was wrong (the listener answers it to the camera as a 400): a photo that is not a JPEG, text
//! that is not UTF-8 (no GBK guessing), a field out of range, a body cut short.
//!
//! What it never does: IO, clock reads, decisions. The listener and the lane do those.

pub mod alarm_info;
pub mod hikvision;
mod multipart;
mod payload;
pub mod webhook;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::domain::{Direction, Plate, PlateColour, PlateIdentity};
use crate::gate::config::CameraKind;
use crate::wire::journal::{PhotoKind, PhotoRef, PlateReadRecord};

pub use payload::is_no_plate;

/// What one push from a camera says: a plate read, or only that the camera is alive.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraMessage {
    /// A plate read (possibly of a vehicle without a readable plate: see [`is_no_plate`]).
    Read(CameraPush),
    /// A keep-alive: the camera is there, it read nothing.
    Heartbeat,
}

/// A camera make's payload parser: sans-IO, from the push's `Content-Type` and body bytes.
pub trait CameraDriver {
    /// Parses one push.
    fn parse(&self, content_type: Option<&str>, body: &[u8]) -> Result<CameraMessage, CameraError>;
}

/// The driver for a configured camera kind.
pub fn driver(kind: CameraKind) -> &'static dyn CameraDriver {
    match kind {
        CameraKind::Hikvision => &hikvision::Hikvision,
        CameraKind::AlarmInfoPlate => &alarm_info::AlarmInfoPlate,
        CameraKind::Webhook => &webhook::Webhook,
    }
}

/// Parses one push from a camera of `kind`, and bounds what every read carries into the
/// journal: an event id of 1–128 bytes, a plate text of at most 32 characters.
pub fn parse(
    kind: CameraKind,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<CameraMessage, CameraError> {
    let message = driver(kind).parse(content_type, body)?;
    if let CameraMessage::Read(push) = &message {
        let id = push.event_id.trim();
        if id.is_empty() || id.len() > 128 {
            return Err(CameraError::Field {
                field: "event id",
                value: id.chars().take(40).collect(),
                why: "must be 1 to 128 bytes",
            });
        }
        if push.plate_text.chars().count() > 32 {
            return Err(CameraError::Field {
                field: "plate",
                value: push.plate_text.chars().take(40).collect(),
                why: "is too long for a plate (at most 32 characters)",
            });
        }
    }
    Ok(message)
}

/// Why a push was refused. Each message names the part or field and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// Nothing was sent.
    #[error("the body is empty")]
    Empty,
    /// The push's `Content-Type` is not one this kind of camera sends.
    #[error("content type {found:?} is not accepted here (expected {expected})")]
    ContentType {
        found: String,
        expected: &'static str,
    },
    /// The multipart envelope is malformed.
    #[error("multipart body: {0}")]
    Multipart(String),
    /// The body (or a part of it) ends before it should.
    #[error("the body is truncated: {0}")]
    Truncated(String),
    /// Text that must be UTF-8 is not (cameras set to GBK must be switched to UTF-8).
    #[error(
        "{what} is not UTF-8 (invalid byte at offset {offset}); set the camera to UTF-8, GBK is not accepted"
    )]
    NotUtf8 { what: &'static str, offset: usize },
    /// The XML does not parse.
    #[error("XML: {0}")]
    Xml(String),
    /// The JSON does not parse or has the wrong shape.
    #[error("JSON: {0}")]
    Json(String),
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(&'static str),
    /// A field has a value that cannot be right.
    #[error("field {field}: {value:?} {why}")]
    Field {
        field: &'static str,
        value: String,
        why: &'static str,
    },
    /// A photo is not valid base64.
    #[error("{what}: not valid base64 ({detail})")]
    Base64 { what: String, detail: String },
    /// A photo does not start with the JPEG start-of-image marker (FF D8).
    #[error("{what} is not a JPEG (it does not start with FF D8)")]
    NotJpeg { what: String },
}

/// One camera read as a driver parsed it, photos still in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraPush {
    /// The camera's own id of the event (a repeat of the same push carries the same id).
    pub event_id: String,
    /// The plate text as sent (trimmed; a colour word some firmwares put in front, `蓝京A12345`,
    /// is split off into `colour`).
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
    /// The sighting of `push` by camera `camera`, once its photos are stored as `photos`: the
    /// plate is parsed ([`Plate::parse`]: full-width characters, separators) with the reported
    /// colour, blue when none was reported; a text that is no plate (`无车牌`, `unknown`, a
    /// misread) leaves `plate` empty and the lane journals the read without deciding on it.
    pub fn new(
        camera: &str,
        push: &CameraPush,
        min_confidence: u8,
        photos: Vec<PhotoRef>,
    ) -> PlateSighting {
        let plate = if is_no_plate(&push.plate_text) {
            None
        } else {
            Plate::parse(&push.plate_text)
                .ok()
                .map(|p| p.with_colour(push.colour.unwrap_or(PlateColour::Blue)))
        };
        PlateSighting {
            camera: camera.to_string(),
            event_id: push.event_id.clone(),
            plate_text: push.plate_text.clone(),
            plate,
            colour: push.colour,
            confidence: push.confidence,
            min_confidence,
            direction: push.direction,
            photos,
        }
    }

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
