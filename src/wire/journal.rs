//! Journal events as the gate records them and uploads them, and as the centre stores them:
//! the per-gate sequence number, the journal's identity and each event's body.
//!
//! The JSON of these types is the upload's wire form and the centre's stored form, so field
//! names and codes never change meaning. This module never does IO.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::ReasonCode;

/// A per-gate event sequence number. The first event is 1.
pub type Seq = u64;

/// The journal's identity as the gate sends it with its uploads (the wire form too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalIdentity {
    /// 128 random bits in lower-case hex, created with the journal and never changed.
    pub id: String,
    /// The journal existed before journals had ids and got its id at migration: its sequence
    /// numbers continue those the centre stored for the gate without an id.
    #[serde(default)]
    pub from_legacy: bool,
}

/// One journalled event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    pub seq: Seq,
    /// When it happened, by the gate's clock.
    pub at: DateTime<Utc>,
    /// The lane's id within its gate (e.g. `entry`, `exit`, `two-way`); empty for an event of
    /// the whole gate (`journal_write_failed`).
    pub lane: String,
    pub body: EventBody,
}

/// What happened. This is the wire form too: the gate uploads it as is, and the centre stores
/// it. Codes are stable snake_case strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A credential was presented and decided (granted, or denied with its reason).
    Decision(DecisionRecord),
    /// The controller commanded the barrier.
    Barrier {
        action: BarrierAction,
        /// Why: `grant`, `guard`, `locked_open`, `fire`, `auto_close`, `startup`, ...
        cause: String,
    },
    /// A vehicle drove through the lane (it crossed and cleared the safety loop).
    Passage {
        direction: String,
        plate: Option<String>,
        vehicle_id: Option<i64>,
        permit_id: Option<i64>,
    },
    /// A guard opened or held the lane by hand.
    Override {
        operator: String,
        action: String,
        /// One of the reason codes (visitor_registered, police_fire_ambulance, ...).
        reason: String,
        note: Option<String>,
        /// The plate of the vehicle the guard let through or held (normalised), when the guard
        /// named one; absent in events of gates of the previous release.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plate: Option<String>,
    },
    /// The lane's mode changed (normal, locked_closed, locked_open, manual_only_*).
    ModeChange {
        from: String,
        to: String,
        by: String,
    },
    /// A device went offline, came back, or reported a fault.
    Device {
        device: String,
        status: String,
        detail: String,
    },
    /// The lane itself saw a fault (arm did not reach its limit, I/O read failed, tamper).
    LaneFault { fault: String, detail: String },
    /// A plate camera read the lane did not act on (no vehicle on the loop and none within the
    /// window, a repeat, the lane busy with another vehicle): still journalled, with its
    /// photos, because a checkpoint (卡口) records every vehicle it sees.
    PlateIgnored {
        camera: PlateReadRecord,
        why: String,
    },
    /// A tag was read but not acted on (e.g. no vehicle on the presence loop: a skim, a
    /// neighbouring lane or an attack). Journalled once per tag hold time.
    TagIgnored {
        epc: String,
        antenna: u8,
        rssi_dbm: i16,
        why: String,
    },
    /// The journal passed its alarm threshold.
    JournalAlarm { stored: u64, capacity: u64 },
    /// The journal could not write from `since` until `until` (disk full, read-only
    /// filesystem). The `kept` events of that time were written just before this one, each
    /// with its own time; `lost` more arrived while the in-memory backlog was full and are gone
    /// (the first at `lost_from`, the last at `lost_to`).
    JournalWriteFailed {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        /// The first failure, as SQLite reported it.
        error: String,
        /// Commits that could not be written when they happened.
        failed_commits: u64,
        kept: u64,
        lost: u64,
        lost_from: Option<DateTime<Utc>>,
        lost_to: Option<DateTime<Utc>>,
    },
}

impl EventBody {
    /// The stable kind code stored beside the body for filtering.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Decision(_) => "decision",
            EventBody::Barrier { .. } => "barrier",
            EventBody::Passage { .. } => "passage",
            EventBody::Override { .. } => "override",
            EventBody::ModeChange { .. } => "mode_change",
            EventBody::Device { .. } => "device",
            EventBody::LaneFault { .. } => "lane_fault",
            EventBody::TagIgnored { .. } => "tag_ignored",
            EventBody::PlateIgnored { .. } => "plate_ignored",
            EventBody::JournalAlarm { .. } => "journal_alarm",
            EventBody::JournalWriteFailed { .. } => "journal_write_failed",
        }
    }
}

/// A decided credential, as journalled and uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub direction: String,
    /// `tag` or `plate`.
    pub credential: String,
    /// The tag's EPC in upper-case hex, for tag reads.
    pub epc: Option<String>,
    pub tid: Option<String>,
    pub antenna: Option<u8>,
    pub rssi_dbm: Option<i16>,
    pub plate: Option<String>,
    pub granted: bool,
    /// Why it was granted or denied; on the link, its stable code (`granted`,
    /// `denied_revoked`, ...: [`ReasonCode::as_str`]).
    #[serde(with = "reason_code")]
    pub reason: ReasonCode,
    pub flags: Vec<String>,
    pub permit_id: Option<i64>,
    pub vehicle_id: Option<i64>,
    pub holder: Option<String>,
    pub category: Option<String>,
    /// The permit data version the decision was made on.
    pub data_version: u64,
    /// Decision time in nanoseconds, for the latency histogram.
    pub decide_ns: u64,
    /// The plate camera's read this decision was made on or cross-checked with (absent for a
    /// tag read no camera saw, and in events of gates without cameras).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<Box<PlateReadRecord>>,
    /// The visitor pass this decision was made on (`credential` is `pass`): which booking,
    /// and whether its use consumes it. Absent for every other credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<PassUse>,
}

/// A visitor pass as a decision journals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassUse {
    /// The booking the pass was issued for (as the pass says, even when refused).
    pub booking_id: i64,
    /// The key id that signed it.
    pub key_id: u16,
    /// One entry and one exit campus-wide: a granted passage consumes that direction.
    pub single_use: bool,
}

/// What a plate camera (车牌识别一体机) reported, as journalled: enough to show the guard and
/// the office what was read, how sure the camera was, and where the photos are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlateReadRecord {
    /// The camera's name in gate.toml.
    pub camera: String,
    /// The camera's own id of this event (de-duplication of a repeated push).
    pub event_id: String,
    /// The plate text as the camera sent it (trimmed), kept even when it is no valid plate.
    pub raw_plate: String,
    /// The plate colour the camera reported (`PlateColour` code), if any.
    pub colour: Option<String>,
    /// The camera's confidence, 0–100.
    pub confidence: u8,
    /// The read's photos (plate close-up, scene), stored at the gate by content hash.
    pub photos: Vec<PhotoRef>,
}

/// A photo kept as evidence, named by the SHA-256 of its bytes (how it is stored at the gate,
/// uploaded exactly once, and fetched from the centre).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// Lower-case hex SHA-256 of the JPEG bytes.
    pub sha256: String,
    /// What the photo shows.
    pub kind: PhotoKind,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a photo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoKind {
    /// The plate close-up (车牌特写).
    Plate,
    /// The whole scene (场景图).
    Scene,
}

impl PhotoKind {
    /// The stable code (`plate`, `scene`).
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoKind::Plate => "plate",
            PhotoKind::Scene => "scene",
        }
    }
}

/// A barrier command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarrierAction {
    Open,
    Close,
    Hold,
    Release,
}

/// A [`ReasonCode`] as its stable code on the link. An unknown code is refused: the centre
/// must be upgraded before its gates learn new reasons (the gate keeps the batch and retries).
mod reason_code {
    use super::*;

    pub(super) fn serialize<S: Serializer>(reason: &ReasonCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(reason.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ReasonCode, D::Error> {
        let code = String::deserialize(d)?;
        ReasonCode::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code {code:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The JSON a gate and a centre of the previous release exchange: the bytes on the link
    // must not change when the types do.

    #[test]
    fn a_decision_event_serialises_to_the_bytes_the_link_carries() {
        let event = JournalEvent {
            seq: 42,
            at: "2026-03-01T08:30:05.250Z".parse().unwrap(),
            lane: "entry".into(),
            body: EventBody::Decision(DecisionRecord {
                direction: "entry".into(),
                credential: "tag".into(),
                epc: Some("E2801160600002054E2F".into()),
                tid: None,
                antenna: Some(1),
                rssi_dbm: Some(-52),
                plate: Some("京A12345".into()),
                granted: false,
                reason: ReasonCode::DeniedRevoked,
                flags: vec!["blacklist_alarm_guard".into()],
                permit_id: Some(7),
                vehicle_id: Some(9),
                holder: Some("张三".into()),
                category: Some("staff".into()),
                data_version: 1234,
                decide_ns: 5678,
                camera: None,
                pass: None,
            }),
        };
        let json = concat!(
            r#"{"seq":42,"at":"2026-03-01T08:30:05.250Z","lane":"entry","body":{"kind":"decision","#,
            r#""direction":"entry","credential":"tag","epc":"E2801160600002054E2F","tid":null,"#,
            r#""antenna":1,"rssi_dbm":-52,"plate":"京A12345","granted":false,"#,
            r#""reason":"denied_revoked","flags":["blacklist_alarm_guard"],"permit_id":7,"#,
            r#""vehicle_id":9,"holder":"张三","category":"staff","data_version":1234,"#,
            r#""decide_ns":5678}}"#
        );
        assert_eq!(serde_json::to_string(&event).unwrap(), json);
        assert_eq!(serde_json::from_str::<JournalEvent>(json).unwrap(), event);
    }

    #[test]
    fn a_decision_with_an_unknown_reason_code_is_refused_by_name() {
        let json = concat!(
            r#"{"direction":"entry","credential":"tag","epc":null,"tid":null,"antenna":null,"#,
            r#""rssi_dbm":null,"plate":null,"granted":false,"reason":"denied_by_moon","#,
            r#""flags":[],"permit_id":null,"vehicle_id":null,"holder":null,"category":null,"#,
            r#""data_version":1,"decide_ns":1}"#
        );
        let err = serde_json::from_str::<DecisionRecord>(json).unwrap_err();
        assert!(err.to_string().contains("denied_by_moon"), "{err}");
    }
}
