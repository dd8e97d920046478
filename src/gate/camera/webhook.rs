//! A plain JSON webhook, for any camera or middleware that can be made to post it:
//!
//! ```json
//! {"event_id": "cam7-000812", "plate": "京A12345", "colour": "blue", "confidence": 93,
//!  "direction": "entry", "channel": 1, "at": "2026-05-18T10:15:32+08:00",
//!  "images": [{"kind": "plate", "jpeg_base64": "/9j/…"}, {"kind": "scene", "jpeg_base64": "/9j/…"}]}
//! ```
//!
//! `event_id`, `plate` and `confidence` (0–100) are required; `colour` is one of `blue`, `yellow`,
//! `green`, `yellow_green`, `white`, `black` (absent, `null` or `unknown`: not reported);
//! `direction` is `entry` or `exit` (absent: the lane's); `channel` picks the lane (see
//! `[[camera]] channels`); `at` is RFC 3339 and only recorded. A keep-alive is
//! `{"heartbeat": true}`. Unknown fields are ignored (a middleware may add its own).
//!
//! What it never does: IO, or accept an image that is not a base64 JPEG.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::alarm_info::{check_json_content_type, json_error};
use super::payload::{base64_jpeg, confidence, plate_text, utf8};
use super::{CameraDriver, CameraError, CameraImage, CameraMessage, CameraPush};
use crate::domain::{Direction, PlateColour};
use crate::wire::journal::PhotoKind;

/// The plain JSON webhook driver.
#[derive(Debug, Clone, Copy)]
pub struct Webhook;

#[derive(Deserialize)]
struct Body {
    event_id: String,
    plate: String,
    #[serde(default)]
    colour: Option<String>,
    confidence: f64,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    channel: Option<u32>,
    #[serde(default)]
    at: Option<DateTime<chrono::FixedOffset>>,
    #[serde(default)]
    images: Vec<Image>,
}

#[derive(Deserialize)]
struct Image {
    kind: PhotoKind,
    jpeg_base64: String,
}

impl CameraDriver for Webhook {
    fn parse(&self, content_type: Option<&str>, body: &[u8]) -> Result<CameraMessage, CameraError> {
        check_json_content_type(content_type)?;
        if body.is_empty() {
            return Err(CameraError::Empty);
        }
        let text = utf8("the JSON body", body)?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        if value.get("heartbeat").is_some() && value.get("plate").is_none() {
            return Ok(CameraMessage::Heartbeat);
        }
        let body: Body = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            CameraError::Json(format!("{path}: {}", e.into_inner()))
        })?;
        if body.event_id.trim().is_empty() || body.event_id.len() > 128 {
            return Err(CameraError::Field {
                field: "event_id",
                value: body.event_id.chars().take(40).collect(),
                why: "must be 1 to 128 bytes",
            });
        }
        let (plate, prefix_colour) = plate_text(&body.plate);
        let colour = match body.colour.as_deref() {
            None | Some("") | Some("unknown") => None,
            Some(code) => Some(
                PlateColour::from_code(code).ok_or_else(|| CameraError::Field {
                    field: "colour",
                    value: code.to_string(),
                    why: "is not blue, yellow, green, yellow_green, white, black or unknown",
                })?,
            ),
        }
        .or(prefix_colour);
        let direction = match body.direction.as_deref() {
            None | Some("") => None,
            Some("entry") => Some(Direction::Entry),
            Some("exit") => Some(Direction::Exit),
            Some(other) => {
                return Err(CameraError::Field {
                    field: "direction",
                    value: other.to_string(),
                    why: "is not entry or exit",
                });
            }
        };
        let images = body
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                Ok(CameraImage {
                    kind: image.kind,
                    jpeg: base64_jpeg(&format!("images[{i}].jpeg_base64"), &image.jpeg_base64)?,
                })
            })
            .collect::<Result<Vec<_>, CameraError>>()?;
        Ok(CameraMessage::Read(CameraPush {
            event_id: body.event_id.trim().to_string(),
            plate_text: plate,
            colour,
            confidence: confidence("confidence", body.confidence)?,
            direction,
            channel: body.channel,
            at: body.at.map(|t| t.with_timezone(&Utc)),
            images,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_read_carries_its_direction_colour_and_photos() {
        let body = r#"{"event_id":"cam7-812","plate":"粤Z·1234港","colour":"black",
            "confidence":88.6,"direction":"exit","channel":3,"at":"2026-05-18T10:15:32+08:00",
            "images":[{"kind":"plate","jpeg_base64":"/9j/2Q=="}],"vendor":"x"}"#;
        let CameraMessage::Read(read) = Webhook
            .parse(Some("application/json"), body.as_bytes())
            .unwrap()
        else {
            panic!("not a read")
        };
        assert_eq!(read.event_id, "cam7-812");
        assert_eq!(read.plate_text, "粤Z·1234港");
        assert_eq!(read.colour, Some(PlateColour::Black));
        assert_eq!(read.confidence, 89);
        assert_eq!(read.direction, Some(Direction::Exit));
        assert_eq!(read.channel, Some(3));
        assert_eq!(&read.images[0].jpeg[..], b"\xff\xd8\xff\xd9");
        assert_eq!(
            Webhook.parse(None, br#"{"heartbeat":true}"#).unwrap(),
            CameraMessage::Heartbeat
        );
    }

    #[test]
    fn a_webhook_with_a_wrong_field_is_refused_naming_it() {
        let err = |body: &str| {
            Webhook
                .parse(None, body.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"event_id":"a","confidence":90}"#).contains("missing field `plate`"));
        assert!(
            err(r#"{"event_id":"a","plate":"京A12345","confidence":90,"images":[{"kind":"side","jpeg_base64":""}]}"#)
                .contains("images[0].kind")
        );
        assert_eq!(
            err(r#"{"event_id":"a","plate":"京A12345","confidence":90,"direction":"in"}"#),
            "field direction: \"in\" is not entry or exit"
        );
        assert_eq!(
            err(r#"{"event_id":"a","plate":"京A12345","confidence":90,"colour":"pink"}"#),
            "field colour: \"pink\" is not blue, yellow, green, yellow_green, white, black or unknown"
        );
    }
}
