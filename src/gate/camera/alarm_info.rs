//! The JSON push of the common Chinese all-in-one plate cameras (车牌识别一体机: Vzenith/臻识 and
//! the many makes that copied its protocol): each read is posted as
//! `{"AlarmInfoPlate": {"ipaddr", "serialno", "channel", "result": {"PlateResult": {…}}}}`.
//!
//! Read from `PlateResult`: `license` (UTF-8 text; `_无_` when no plate was found), `colorType`,
//! `confidence` (0–100), `plateid` (the camera's running read number: the event id is
//! `<serialno>:<plateid>`, or `<serialno>:<sec>.<usec>` without it), `timeStamp.Timeval.sec` and
//! `usec`, `imageFile` (base64 scene JPEG) and `imageFragmentFile` (base64 plate close-up).
//! Numbers are accepted as JSON numbers or numeric strings (firmwares differ).
//!
//! `colorType` codes: 0 unknown, 1 blue (蓝), 2 yellow (黄), 3 white (白), 4 black (黑),
//! 5 green (绿, new-energy small), 6 yellow-green (黄绿, new-energy large; newer firmwares).
//! Unknown codes carry no colour (the read is kept; the lane then assumes blue).
//!
//! `direction` in this protocol is the movement in the picture (left/right/up/down), not entry or
//! exit, so it is not mapped: the read takes the lane's direction.
//!
//! Heartbeats: `{"heartbeat": …}`, an `AlarmInfoPlate` with `heartbeat` and no `result`, and the
//! I/O-trigger push `{"AlarmGioIn": …}` all say only that the camera is alive.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::payload::{base64_jpeg, confidence, plate_text, utf8};
use super::{CameraDriver, CameraError, CameraImage, CameraMessage, CameraPush};
use crate::domain::PlateColour;
use crate::wire::journal::PhotoKind;

/// The `AlarmInfoPlate` JSON push driver.
#[derive(Debug, Clone, Copy)]
pub struct AlarmInfoPlate;

/// What the camera expects back once the read is journalled.
pub const RESPONSE_OK: &str = r#"{"Response_AlarmInfoPlate":{"info":"ok"}}"#;

impl CameraDriver for AlarmInfoPlate {
    fn parse(&self, content_type: Option<&str>, body: &[u8]) -> Result<CameraMessage, CameraError> {
        check_json_content_type(content_type)?;
        if body.is_empty() {
            return Err(CameraError::Empty);
        }
        let text = utf8("the JSON body", body)?;
        let root: Value = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        if root.get("heartbeat").is_some() || root.get("AlarmGioIn").is_some() {
            return Ok(CameraMessage::Heartbeat);
        }
        let info = root
            .get("AlarmInfoPlate")
            .ok_or(CameraError::Missing("AlarmInfoPlate"))?;
        let Some(result) = info.get("result") else {
            if info.get("heartbeat").is_some() {
                return Ok(CameraMessage::Heartbeat);
            }
            return Err(CameraError::Missing("AlarmInfoPlate.result"));
        };
        let plate = result
            .get("PlateResult")
            .ok_or(CameraError::Missing("AlarmInfoPlate.result.PlateResult"))?;
        let license = plate
            .get("license")
            .and_then(Value::as_str)
            .ok_or(CameraError::Missing("PlateResult.license"))?;
        let (plate_text, prefix_colour) = plate_text(license);
        let colour = match plate.get("colorType") {
            Some(v) => colour(integer("PlateResult.colorType", v)?),
            None => None,
        }
        .or(prefix_colour);
        let confidence = confidence(
            "PlateResult.confidence",
            number(
                "PlateResult.confidence",
                plate
                    .get("confidence")
                    .ok_or(CameraError::Missing("PlateResult.confidence"))?,
            )?,
        )?;
        let timeval = plate.get("timeStamp").and_then(|t| t.get("Timeval"));
        let (sec, usec) = match timeval {
            Some(tv) => (
                tv.get("sec")
                    .map(|v| integer("PlateResult.timeStamp.Timeval.sec", v))
                    .transpose()?,
                tv.get("usec")
                    .map(|v| integer("PlateResult.timeStamp.Timeval.usec", v))
                    .transpose()?,
            ),
            None => (None, None),
        };
        let at = match sec {
            Some(sec) => Some(
                DateTime::<Utc>::from_timestamp(sec, 0)
                    .map(|t| {
                        t + chrono::Duration::microseconds(usec.unwrap_or(0).clamp(0, 999_999))
                    })
                    .ok_or_else(|| CameraError::Field {
                        field: "PlateResult.timeStamp.Timeval.sec",
                        value: sec.to_string(),
                        why: "is not a time",
                    })?,
            ),
            None => None,
        };
        let serial = info.get("serialno").and_then(Value::as_str).unwrap_or("");
        let event_id = match plate.get("plateid") {
            Some(id) => format!("{serial}:{}", integer("PlateResult.plateid", id)?),
            None => match sec {
                Some(sec) => format!("{serial}:{sec}.{:06}", usec.unwrap_or(0)),
                None => {
                    return Err(CameraError::Missing(
                        "PlateResult.plateid (or timeStamp, to identify the read)",
                    ));
                }
            },
        };
        let channel = match info.get("channel") {
            Some(c) => Some(
                u32::try_from(integer("AlarmInfoPlate.channel", c)?).map_err(|_| {
                    CameraError::Field {
                        field: "AlarmInfoPlate.channel",
                        value: c.to_string(),
                        why: "is not a channel number",
                    }
                })?,
            ),
            None => None,
        };
        let mut images = Vec::new();
        for (field, kind) in [
            ("imageFragmentFile", PhotoKind::Plate),
            ("imageFile", PhotoKind::Scene),
        ] {
            match plate.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.is_empty() => {}
                Some(Value::String(s)) => images.push(CameraImage {
                    kind,
                    jpeg: base64_jpeg(&format!("PlateResult.{field}"), s)?,
                }),
                Some(other) => {
                    return Err(CameraError::Field {
                        field: if kind == PhotoKind::Plate {
                            "PlateResult.imageFragmentFile"
                        } else {
                            "PlateResult.imageFile"
                        },
                        value: short(other),
                        why: "is not a base64 string",
                    });
                }
            }
        }
        Ok(CameraMessage::Read(CameraPush {
            event_id,
            plate_text,
            colour,
            confidence,
            direction: None,
            channel,
            at,
            images,
        }))
    }
}

/// The JSON pushes come as `application/json` (or, from old firmwares, `text/plain` or with no
/// content type at all); anything else is refused.
pub(super) fn check_json_content_type(content_type: Option<&str>) -> Result<(), CameraError> {
    let media = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.is_empty()
        || media == "application/json"
        || media == "text/json"
        || media == "text/plain"
        || media == "application/x-www-form-urlencoded"
    {
        Ok(())
    } else {
        Err(CameraError::ContentType {
            found: media,
            expected: "application/json",
        })
    }
}

/// A serde_json error as a refusal: a body cut short is truncated, the rest is bad JSON.
pub(super) fn json_error(e: &serde_json::Error) -> CameraError {
    if e.is_eof() {
        CameraError::Truncated(format!("the JSON ends early ({e})"))
    } else {
        CameraError::Json(e.to_string())
    }
}

/// `colorType` → colour (see the module header).
fn colour(code: i64) -> Option<PlateColour> {
    match code {
        1 => Some(PlateColour::Blue),
        2 => Some(PlateColour::Yellow),
        3 => Some(PlateColour::White),
        4 => Some(PlateColour::Black),
        5 => Some(PlateColour::Green),
        6 => Some(PlateColour::YellowGreen),
        _ => None,
    }
}

fn number(field: &'static str, v: &Value) -> Result<f64, CameraError> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| CameraError::Field {
        field,
        value: short(v),
        why: "is not a number",
    })
}

fn integer(field: &'static str, v: &Value) -> Result<i64, CameraError> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| CameraError::Field {
        field,
        value: short(v),
        why: "is not a whole number",
    })
}

/// A value for an error message, cut to a readable length.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn push(extra: &str) -> String {
        format!(
            r#"{{"AlarmInfoPlate":{{"channel":0,"deviceName":"IVS","ipaddr":"192.168.1.100",
            "serialno":"e1b5bd45-8a5e2c6c","result":{{"PlateResult":{{"license":"苏E·D12345",
            "colorType":5,"confidence":"92","direction":4,"plateid":812,"triggerType":8,
            "timeStamp":{{"Timeval":{{"sec":1779070532,"usec":250000}}}},
            "imageFile":"{}","imageFragmentFile":"{}"{extra}}}}}}}}}"#,
            b64(b"\xff\xd8scene\xff\xd9"),
            b64(b"\xff\xd8plate\xff\xd9")
        )
    }

    #[test]
    fn a_plate_result_is_a_read_with_both_photos() {
        let CameraMessage::Read(read) = AlarmInfoPlate
            .parse(Some("application/json"), push("").as_bytes())
            .unwrap()
        else {
            panic!("not a read")
        };
        assert_eq!(read.event_id, "e1b5bd45-8a5e2c6c:812");
        assert_eq!(read.plate_text, "苏E·D12345");
        assert_eq!(read.colour, Some(PlateColour::Green));
        assert_eq!(read.confidence, 92);
        assert_eq!(read.channel, Some(0));
        assert_eq!(read.direction, None);
        assert_eq!(read.at.unwrap().timestamp_micros(), 1_779_070_532_250_000);
        assert_eq!(read.images.len(), 2);
        assert_eq!(read.images[0].kind, PhotoKind::Plate);
        assert_eq!(&read.images[0].jpeg[..], b"\xff\xd8plate\xff\xd9");
        assert_eq!(read.images[1].kind, PhotoKind::Scene);
    }

    #[test]
    fn heartbeats_in_their_three_forms_are_not_reads() {
        for body in [
            r#"{"heartbeat":{"countid":12,"serialno":"e1b5"}}"#,
            r#"{"AlarmInfoPlate":{"serialno":"e1b5","heartbeat":1}}"#,
            r#"{"AlarmGioIn":{"serialno":"e1b5","result":{"TriggerResult":{"source":0,"value":1}}}}"#,
        ] {
            assert_eq!(
                AlarmInfoPlate.parse(None, body.as_bytes()).unwrap(),
                CameraMessage::Heartbeat,
                "{body}"
            );
        }
    }

    #[test]
    fn colour_codes_map_as_documented_and_unknown_codes_carry_no_colour() {
        let codes: Vec<_> = (0..8).map(colour).collect();
        assert_eq!(
            codes,
            [
                None,
                Some(PlateColour::Blue),
                Some(PlateColour::Yellow),
                Some(PlateColour::White),
                Some(PlateColour::Black),
                Some(PlateColour::Green),
                Some(PlateColour::YellowGreen),
                None
            ]
        );
    }

    #[test]
    fn bad_pushes_are_refused_with_the_field_that_is_wrong() {
        let err = |body: &str| {
            AlarmInfoPlate
                .parse(Some("application/json"), body.as_bytes())
                .unwrap_err()
                .to_string()
        };
        let full = push("");
        assert!(err(&full[..full.len() / 2]).starts_with("the body is truncated"));
        assert_eq!(
            err(&full.replace("\"92\"", "\"high\"")),
            "field PlateResult.confidence: \"\\\"high\\\"\" is not a number"
        );
        let not_jpeg = full.replace(&b64(b"\xff\xd8scene\xff\xd9"), &b64(b"GIF89a"));
        assert_eq!(
            err(&not_jpeg),
            "PlateResult.imageFile is not a JPEG (it does not start with FF D8)"
        );
        assert_eq!(err(r#"{"other":1}"#), "missing field AlarmInfoPlate");
        assert!(
            AlarmInfoPlate
                .parse(Some("image/jpeg"), full.as_bytes())
                .is_err()
        );
    }
}
