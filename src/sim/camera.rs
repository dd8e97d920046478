//! A simulated plate camera (车牌识别一体机): builds a plate read's push exactly as the two common
//! camera kinds send it, and posts it to a gate's camera listener
//! (`POST http://<gate>/camera/<name>`).
//!
//! Why it exists: `gatehouse sim camera`, the demo and the camera bench need camera traffic with
//! real JPEGs and the real body layouts, and the drivers' tests need payloads built the way a
//! camera builds them.
//!
//! - [`CameraKind::Hikvision`]: ISAPI "listening mode" — `multipart/form-data` with an
//!   `EventNotificationAlert` XML part (`anpr.xml`; `eventType` `ANPR`, `channelID`, `dateTime`,
//!   `UUID`, and under `ANPR`: `licensePlate`, `plateColor`, `confidenceLevel`, `direction`,
//!   `pictureInfoList`), then `licensePlatePicture.jpg` (the close-up) and `detectionPicture.jpg`
//!   (the scene).
//! - [`CameraKind::AlarmInfoPlate`]: the JSON push of the common Chinese all-in-one cameras —
//!   `{"AlarmInfoPlate": {"channel", "deviceName", "ipaddr", "serialno", "result": {"PlateResult":
//!   {"license", "colorType", "confidence", "direction", "plateid", "timeStamp": {"Timeval":
//!   {"sec", "usec"}}, "imageFile" (scene, base64 JPEG), "imageFileLen", "imageFragmentFile"
//!   (close-up, base64), "imageFragmentFileLen", …}}}}`. `colorType` codes: 0 unknown, 1 blue,
//!   2 yellow, 3 white, 4 black, 5 green, 6 yellow-green (the vendor lists 0–5; 6 is our
//!   assumption for new-energy large vehicles).
//!
//! It never decides and never reads the gate's state; the only IO is the HTTP post.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, FixedOffset, Utc};

use crate::domain::{Direction, PlateColour};
use crate::sim::plate_image::{ImageError, plate_jpeg, scene_jpeg_of_about};

/// The multipart boundary the simulated Hikvision camera uses (cameras send a fixed one).
pub const HIKVISION_BOUNDARY: &str = "MIME_boundary";

/// Which payload a camera sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraKind {
    /// Hikvision ISAPI multipart.
    Hikvision,
    /// The `AlarmInfoPlate` JSON push.
    AlarmInfoPlate,
}

impl CameraKind {
    /// The kind's name in gate.toml and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            CameraKind::Hikvision => "hikvision",
            CameraKind::AlarmInfoPlate => "alarm_info_plate",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<CameraKind> {
        match name {
            "hikvision" => Some(CameraKind::Hikvision),
            "alarm_info_plate" => Some(CameraKind::AlarmInfoPlate),
            _ => None,
        }
    }
}

/// One read a simulated camera reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateShot {
    /// The plate text the camera recognised (possibly a misread).
    pub plate: String,
    /// The colour it recognised.
    pub colour: PlateColour,
    /// Its confidence, 0–100.
    pub confidence: u8,
    /// The camera's event id (a repeated push repeats it).
    pub event_id: u64,
    /// The camera's channel.
    pub channel: u32,
    /// Which way the vehicle moved, if the camera reports it.
    pub direction: Option<Direction>,
    /// The camera's clock.
    pub at: DateTime<Utc>,
}

/// The photos of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShotImages {
    /// The plate close-up.
    pub plate: Vec<u8>,
    /// The scene.
    pub scene: Vec<u8>,
}

impl ShotImages {
    /// Draws both photos for `shot`, the scene of about `scene_bytes`.
    pub fn draw(shot: &PlateShot, caption: &str, scene_bytes: usize) -> Result<Self, ImageError> {
        Ok(ShotImages {
            plate: plate_jpeg(&shot.plate, shot.colour)?,
            scene: scene_jpeg_of_about(
                &shot.plate,
                shot.colour,
                caption,
                scene_bytes,
                shot.event_id,
            )?,
        })
    }
}

/// A push ready to send: its content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The `Content-Type` header.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Builds the push of `kind` for `shot` with `images`.
pub fn payload(kind: CameraKind, shot: &PlateShot, images: &ShotImages) -> Payload {
    match kind {
        CameraKind::Hikvision => hikvision(shot, images),
        CameraKind::AlarmInfoPlate => alarm_info_plate(shot, images),
    }
}

/// The camera's clock as Hikvision writes it: local time with the offset (China, +08:00).
fn camera_time(at: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    at.with_timezone(&china)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// Hikvision's `plateColor` values.
pub fn hikvision_colour(colour: PlateColour) -> &'static str {
    match colour {
        PlateColour::Blue => "blue",
        PlateColour::Yellow => "yellow",
        PlateColour::White => "white",
        PlateColour::Black => "black",
        PlateColour::Green => "green",
        PlateColour::YellowGreen => "yellowGreen",
    }
}

/// The `AlarmInfoPlate` `colorType` code.
pub fn alarm_info_colour(colour: PlateColour) -> u8 {
    match colour {
        PlateColour::Blue => 1,
        PlateColour::Yellow => 2,
        PlateColour::White => 3,
        PlateColour::Black => 4,
        PlateColour::Green => 5,
        PlateColour::YellowGreen => 6,
    }
}

/// The event's UUID as Hikvision writes it, derived from the event id so a repeat matches.
fn event_uuid(event_id: u64) -> String {
    let hi = event_id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (hi >> 32) as u32,
        (hi >> 16) as u16,
        (hi & 0xFFF) as u16,
        (event_id >> 48) & 0xFFF,
        event_id & 0xFFFF_FFFF_FFFF
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `EventNotificationAlert` XML of a read.
pub fn hikvision_xml(shot: &PlateShot) -> String {
    let direction = match shot.direction {
        Some(Direction::Exit) => "reverse",
        _ => "forward",
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.0.2.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:00:00:01</macAddress>
<channelID>{channel}</channelID>
<dateTime>{at}</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>Camera {channel}</channelName>
<ANPR>
<country>CN</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>{direction}</direction>
<confidenceLevel>{confidence}</confidenceLevel>
<plateType>unknown</plateType>
<plateColor>{colour}</plateColor>
<licenseBright>0</licenseBright>
<vehicleType>vehicle</vehicleType>
<detectDir>8</detectDir>
<detectType>0</detectType>
<pictureInfoList>
<pictureInfo>
<fileName>licensePlatePicture.jpg</fileName>
<type>licensePlatePicture</type>
<dataType>0</dataType>
</pictureInfo>
<pictureInfo>
<fileName>detectionPicture.jpg</fileName>
<type>detectionPicture</type>
<dataType>0</dataType>
</pictureInfo>
</pictureInfoList>
<originalLicensePlate>{plate}</originalLicensePlate>
</ANPR>
<UUID>{uuid}</UUID>
</EventNotificationAlert>
"#,
        channel = shot.channel,
        at = camera_time(shot.at),
        plate = xml_escape(&shot.plate),
        confidence = shot.confidence,
        colour = hikvision_colour(shot.colour),
        uuid = event_uuid(shot.event_id),
    )
}

fn part(body: &mut Vec<u8>, name: &str, content_type: &str, bytes: &[u8]) {
    body.extend_from_slice(
        format!(
            "--{HIKVISION_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n");
}

fn hikvision(shot: &PlateShot, images: &ShotImages) -> Payload {
    let xml = hikvision_xml(shot);
    let mut body = Vec::with_capacity(xml.len() + images.plate.len() + images.scene.len() + 1024);
    part(&mut body, "anpr.xml", "application/xml", xml.as_bytes());
    part(
        &mut body,
        "licensePlatePicture.jpg",
        "image/jpeg",
        &images.plate,
    );
    part(
        &mut body,
        "detectionPicture.jpg",
        "image/jpeg",
        &images.scene,
    );
    body.extend_from_slice(format!("--{HIKVISION_BOUNDARY}--\r\n").as_bytes());
    Payload {
        content_type: format!("multipart/form-data; boundary={HIKVISION_BOUNDARY}"),
        body,
    }
}

fn alarm_info_plate(shot: &PlateShot, images: &ShotImages) -> Payload {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sec = shot.at.timestamp();
    let usec = shot.at.timestamp_subsec_micros();
    let direction = match shot.direction {
        Some(Direction::Exit) => 2,
        Some(Direction::Entry) => 1,
        None => 0,
    };
    let json = serde_json::json!({
        "AlarmInfoPlate": {
            "channel": shot.channel,
            "deviceName": "IVS",
            "ipaddr": "192.0.2.100",
            "serialno": "5a1b2c3d-00000001",
            "result": {
                "PlateResult": {
                    "license": shot.plate,
                    "colorType": alarm_info_colour(shot.colour),
                    "colorValue": 0,
                    "confidence": shot.confidence,
                    "direction": direction,
                    "plateid": shot.event_id,
                    "triggerType": 8,
                    "type": 1,
                    "timeStamp": { "Timeval": { "sec": sec, "usec": usec } },
                    "location": { "RECT": { "left": 400, "top": 500, "right": 560, "bottom": 548 } },
                    "imageFile": b64.encode(&images.scene),
                    "imageFileLen": images.scene.len(),
                    "imageFragmentFile": b64.encode(&images.plate),
                    "imageFragmentFileLen": images.plate.len(),
                }
            }
        }
    });
    Payload {
        content_type: "application/json".into(),
        body: serde_json::to_vec(&json).expect("a JSON value always serialises"),
    }
}

/// Why a post failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The gate could not be reached or did not answer in time.
    #[error("cannot post to {url}: {source}")]
    Http {
        /// Where.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The gate answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// Where.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
        /// The start of its body.
        body: String,
    },
}

/// The listener URL of camera `name` at a gate whose camera listener is `gate` (a base URL such as
/// `http://127.0.0.1:8088`).
pub fn camera_url(gate: &str, name: &str) -> String {
    format!("{}/camera/{name}", gate.trim_end_matches('/'))
}

/// A client for posting pushes (HTTP/1.1, as cameras speak; plain HTTP on the cabinet network,
/// though reqwest is built with rustls and wants a configuration: ours, with no roots).
pub fn client(timeout: Duration) -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .http1_only()
        .build()
        .expect("a client with a preconfigured rustls configuration builds")
}

/// Posts `payload` to `url`; returns the gate's answer body once it answered 2xx.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    payload: &Payload,
) -> Result<String, PostError> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, &payload.content_type)
        .body(payload.body.clone())
        .send()
        .await
        .map_err(|source| PostError::Http {
            url: url.to_string(),
            source,
        })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(PostError::Status {
            url: url.to_string(),
            status,
            body: body.chars().take(200).collect(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shot() -> PlateShot {
        PlateShot {
            plate: "京A12345".into(),
            colour: PlateColour::Blue,
            confidence: 95,
            event_id: 42,
            channel: 1,
            direction: Some(Direction::Entry),
            at: DateTime::from_timestamp(1_765_000_000, 0).unwrap(),
        }
    }

    fn is_jpeg(b: &[u8]) -> bool {
        b.starts_with(&[0xFF, 0xD8]) && b.ends_with(&[0xFF, 0xD9])
    }

    /// The parts of a multipart body: (headers, content).
    fn parts(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
        let delimiter = format!("--{boundary}");
        let mut out = Vec::new();
        let mut rest = body;
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        assert!(
            rest.starts_with(delimiter.as_bytes()),
            "starts with the boundary"
        );
        loop {
            rest = &rest[delimiter.len()..];
            if rest.starts_with(b"--") {
                break;
            }
            rest = rest.strip_prefix(b"\r\n").expect("CRLF after a boundary");
            let end = find(rest, b"\r\n\r\n").expect("headers end");
            let headers = String::from_utf8(rest[..end].to_vec()).unwrap();
            rest = &rest[end + 4..];
            let next = find(rest, format!("\r\n{delimiter}").as_bytes()).expect("next boundary");
            out.push((headers, rest[..next].to_vec()));
            rest = &rest[next + 2..];
        }
        out
    }

    #[test]
    fn a_hikvision_push_is_multipart_with_the_anpr_xml_then_the_close_up_and_the_scene() {
        let images = ShotImages::draw(&shot(), "cam", 20_000).unwrap();
        let p = payload(CameraKind::Hikvision, &shot(), &images);
        assert_eq!(
            p.content_type,
            "multipart/form-data; boundary=MIME_boundary"
        );
        assert!(p.body.ends_with(b"--MIME_boundary--\r\n"));
        let parts = parts(&p.body, HIKVISION_BOUNDARY);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].0.contains("name=\"anpr.xml\""));
        assert!(parts[0].0.contains("Content-Type: application/xml"));
        let xml = String::from_utf8(parts[0].1.clone()).unwrap();
        for field in [
            "<eventType>ANPR</eventType>",
            "<licensePlate>京A12345</licensePlate>",
            "<plateColor>blue</plateColor>",
            "<confidenceLevel>95</confidenceLevel>",
            "<direction>forward</direction>",
            "<channelID>1</channelID>",
            "<dateTime>2025-12-06T13:46:40+08:00</dateTime>",
        ] {
            assert!(xml.contains(field), "{field} in {xml}");
        }
        assert!(xml.contains("<UUID>") && xml.contains("</EventNotificationAlert>"));
        assert!(parts[1].0.contains("name=\"licensePlatePicture.jpg\""));
        assert!(parts[2].0.contains("name=\"detectionPicture.jpg\""));
        assert!(
            parts[1]
                .0
                .contains(&format!("Content-Length: {}", parts[1].1.len()))
        );
        assert_eq!(parts[1].1, images.plate);
        assert_eq!(parts[2].1, images.scene);
        assert!(is_jpeg(&parts[1].1) && is_jpeg(&parts[2].1));
        // A repeat of the same event carries the same UUID; another event another one.
        let again = hikvision_xml(&shot());
        let other = hikvision_xml(&PlateShot {
            event_id: 43,
            ..shot()
        });
        let uuid = |x: &str| {
            x.split("<UUID>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(uuid(&xml), uuid(&again));
        assert_ne!(uuid(&xml), uuid(&other));
    }

    #[test]
    fn an_alarm_info_plate_push_is_json_with_base64_jpegs() {
        let images = ShotImages::draw(&shot(), "cam", 20_000).unwrap();
        let p = payload(CameraKind::AlarmInfoPlate, &shot(), &images);
        assert_eq!(p.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        let info = &v["AlarmInfoPlate"];
        assert!(info["ipaddr"].is_string() && info["serialno"].is_string());
        let r = &info["result"]["PlateResult"];
        assert_eq!(r["license"], "京A12345");
        assert_eq!(r["colorType"], 1);
        assert_eq!(r["confidence"], 95);
        assert_eq!(r["plateid"], 42);
        assert_eq!(r["timeStamp"]["Timeval"]["sec"], 1_765_000_000);
        let b64 = base64::engine::general_purpose::STANDARD;
        let scene = b64.decode(r["imageFile"].as_str().unwrap()).unwrap();
        let plate = b64
            .decode(r["imageFragmentFile"].as_str().unwrap())
            .unwrap();
        assert!(is_jpeg(&scene) && is_jpeg(&plate));
        assert_eq!(r["imageFileLen"], scene.len());
        assert_eq!(r["imageFragmentFileLen"], plate.len());
        assert_eq!(scene, images.scene);
    }

    #[test]
    fn camera_urls_name_the_camera_under_the_gates_listener() {
        assert_eq!(
            camera_url("http://127.0.0.1:8088/", "north-entry"),
            "http://127.0.0.1:8088/camera/north-entry"
        );
        assert_eq!(
            CameraKind::from_name("hikvision"),
            Some(CameraKind::Hikvision)
        );
        assert_eq!(CameraKind::from_name("webhook"), None);
    }
}
