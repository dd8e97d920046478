//! Hikvision ANPR cameras in ISAPI "listening mode" (HTTP 监听 / 报警服务器): the camera posts
//! each event to the gate as `multipart/form-data` with an `EventNotificationAlert` XML part and
//! one JPEG part per picture, or the XML alone (`application/xml`) when pictures are not uploaded.
//!
//! Read from an `ANPR` alert: `ANPR/licensePlate`, `ANPR/plateColor`, `ANPR/confidenceLevel`,
//! `dateTime`, `UUID` (the event id; `channelID` + `dateTime` + `activePostCount` when a firmware
//! sends no UUID), `channelID`. Pictures: a part named or filed as `licensePlatePicture` is the
//! plate close-up, every other JPEG part (`detectionPicture`, `vehiclePicture`, …) the scene.
//! `vehicleDetection` alerts with an `ANPR/licensePlate` (DeepinView cameras) are reads too. Any
//! other `eventType` (firmwares send `videoloss`/`inactive` every few seconds as a keep-alive)
//! is a heartbeat, not a read.
//!
//! `ANPR/direction` (`forward`/`reverse`) is the vehicle's travel relative to how the camera is
//! mounted, not entry or exit, so it is not mapped: the read takes the lane's direction (a
//! camera watching a two-way lane should use one channel per direction, see `channels`).
//!
//! What it never does: IO, or accept a picture that is not a JPEG or text that is not UTF-8.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use quick_xml::events::Event;

use super::multipart;
use super::payload::{confidence, jpeg, plate_text, utf8};
use super::{CameraDriver, CameraError, CameraImage, CameraMessage, CameraPush};
use crate::domain::PlateColour;
use crate::wire::journal::PhotoKind;

/// The Hikvision ISAPI listening-mode driver.
#[derive(Debug, Clone, Copy)]
pub struct Hikvision;

impl CameraDriver for Hikvision {
    fn parse(&self, content_type: Option<&str>, body: &[u8]) -> Result<CameraMessage, CameraError> {
        if body.is_empty() {
            return Err(CameraError::Empty);
        }
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media.starts_with("multipart/") {
            let boundary = multipart::boundary(content_type.unwrap_or(""))?;
            let body = Bytes::copy_from_slice(body);
            let parts = multipart::parse(&body, &boundary)?;
            from_parts(parts)
        } else if media.is_empty() || media.ends_with("/xml") || media == "text/plain" {
            let alert = Alert::parse(utf8("the EventNotificationAlert XML", body)?)?;
            alert.into_message(Vec::new())
        } else {
            Err(CameraError::ContentType {
                found: media,
                expected: "multipart/form-data or application/xml",
            })
        }
    }
}

fn from_parts(parts: Vec<multipart::Part>) -> Result<CameraMessage, CameraError> {
    let mut alert = None;
    let mut images = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let label = part
            .filename
            .clone()
            .or_else(|| part.name.clone())
            .unwrap_or_else(|| format!("part {}", i + 1));
        let ct = part.content_type.as_deref().unwrap_or("");
        let lower = label.to_ascii_lowercase();
        let is_xml = ct.ends_with("/xml")
            || lower.ends_with(".xml")
            || part.body.starts_with(b"<?xml")
            || part.body.starts_with(b"<EventNotificationAlert");
        let is_image = ct.starts_with("image/")
            || lower.ends_with(".jpg")
            || lower.ends_with(".jpeg")
            || lower.contains("picture");
        if is_xml {
            if alert.is_some() {
                return Err(CameraError::Multipart(format!(
                    "two EventNotificationAlert parts (the second is {label:?})"
                )));
            }
            alert = Some(Alert::parse(utf8(
                "the EventNotificationAlert XML part",
                &part.body,
            )?)?);
        } else if is_image {
            let kind = if lower.contains("licenseplate") || lower.contains("plate") {
                PhotoKind::Plate
            } else {
                PhotoKind::Scene
            };
            images.push(CameraImage {
                kind,
                jpeg: jpeg(&format!("picture part {label:?}"), part.body)?,
            });
        }
        // Other parts (some firmwares add a text summary) carry nothing we use.
    }
    let alert = alert.ok_or_else(|| {
        CameraError::Multipart("no EventNotificationAlert XML part in the body".into())
    })?;
    alert.into_message(images)
}

/// The fields of an `EventNotificationAlert` that matter, as text.
#[derive(Debug, Default)]
struct Alert {
    event_type: Option<String>,
    channel: Option<String>,
    date_time: Option<String>,
    uuid: Option<String>,
    active_post_count: Option<String>,
    plate: Option<String>,
    colour: Option<String>,
    confidence: Option<String>,
}

impl Alert {
    fn parse(xml: &str) -> Result<Alert, CameraError> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut alert = Alert::default();
        let mut root_seen = false;
        loop {
            let event = reader.read_event().map_err(|e| match e {
                // Every syntax error quick-xml reports is something left open at the end.
                quick_xml::Error::Syntax(e) => {
                    CameraError::Truncated(format!("the XML ends early ({e})"))
                }
                e => CameraError::Xml(format!("at byte {}: {e}", reader.error_position())),
            })?;
            match event {
                Event::Start(e) => {
                    let name = e.local_name().as_ref().to_string();
                    if path.is_empty() {
                        if name != "EventNotificationAlert" {
                            return Err(CameraError::Xml(format!(
                                "the root element is <{name}>, not <EventNotificationAlert>"
                            )));
                        }
                        root_seen = true;
                    }
                    path.push(name);
                    text.clear();
                }
                Event::Empty(e) if path.is_empty() => {
                    let name = e.local_name().as_ref().to_string();
                    return Err(CameraError::Xml(if name == "EventNotificationAlert" {
                        "the EventNotificationAlert is empty".into()
                    } else {
                        format!("the root element is <{name}>, not <EventNotificationAlert>")
                    }));
                }
                Event::Text(t) => text.push_str(&t.xml10_content()),
                Event::CData(t) => text.push_str(&t),
                Event::GeneralRef(r) => match r.resolve_char_ref() {
                    Ok(Some(c)) => text.push(c),
                    Ok(None) => text.push_str(match &*r {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "apos" => "'",
                        "quot" => "\"",
                        other => {
                            return Err(CameraError::Xml(format!("unknown entity &{other};")));
                        }
                    }),
                    Err(e) => return Err(CameraError::Xml(e.to_string())),
                },
                Event::End(_) => {
                    let value = std::mem::take(&mut text).trim().to_string();
                    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                    let slot = match segments.as_slice() {
                        [_, "eventType"] => Some(&mut alert.event_type),
                        [_, "channelID"] | [_, "dynChannelID"] => Some(&mut alert.channel),
                        [_, "dateTime"] => Some(&mut alert.date_time),
                        [_, "UUID"] => Some(&mut alert.uuid),
                        [_, "activePostCount"] => Some(&mut alert.active_post_count),
                        [_, "ANPR", "licensePlate"] => Some(&mut alert.plate),
                        [_, "ANPR", "plateColor"] => Some(&mut alert.colour),
                        [_, "ANPR", "confidenceLevel"] => Some(&mut alert.confidence),
                        _ => None,
                    };
                    if let Some(slot) = slot {
                        slot.get_or_insert(value);
                    }
                    path.pop();
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !root_seen {
            return Err(CameraError::Xml(
                "no <EventNotificationAlert> element".into(),
            ));
        }
        if !path.is_empty() {
            return Err(CameraError::Truncated(format!(
                "the XML ends inside <{}>",
                path.join("/")
            )));
        }
        Ok(alert)
    }

    fn into_message(self, images: Vec<CameraImage>) -> Result<CameraMessage, CameraError> {
        let event_type = self.event_type.ok_or(CameraError::Missing("eventType"))?;
        // DeepinView and traffic cameras in "vehicle detection" mode send the same ANPR block
        // under `vehicleDetection`; without a plate that is a vehicle count, not a read.
        let anpr = event_type.eq_ignore_ascii_case("ANPR")
            || (event_type.eq_ignore_ascii_case("vehicleDetection") && self.plate.is_some());
        if !anpr {
            return Ok(CameraMessage::Heartbeat);
        }
        let raw = self
            .plate
            .ok_or(CameraError::Missing("ANPR/licensePlate"))?;
        let (plate_text, prefix_colour) = plate_text(&raw);
        let colour = self.colour.as_deref().and_then(colour).or(prefix_colour);
        let confidence = match self.confidence.as_deref() {
            Some(c) => confidence(
                "ANPR/confidenceLevel",
                c.parse::<f64>().map_err(|_| CameraError::Field {
                    field: "ANPR/confidenceLevel",
                    value: c.to_string(),
                    why: "is not a number",
                })?,
            )?,
            None => return Err(CameraError::Missing("ANPR/confidenceLevel")),
        };
        let channel = match self.channel.as_deref() {
            Some(c) => Some(c.parse::<u32>().map_err(|_| CameraError::Field {
                field: "channelID",
                value: c.to_string(),
                why: "is not a channel number",
            })?),
            None => None,
        };
        let at = match self.date_time.as_deref() {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(t)
                    .map_err(|_| CameraError::Field {
                        field: "dateTime",
                        value: t.to_string(),
                        why: "is not an ISO 8601 time with an offset",
                    })?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let event_id = match self.uuid.filter(|u| !u.is_empty()) {
            Some(uuid) => uuid,
            None => format!(
                "{}:{}:{}",
                channel.unwrap_or(1),
                self.date_time.as_deref().ok_or(CameraError::Missing(
                    "UUID (or dateTime, to identify the event)"
                ))?,
                self.active_post_count.as_deref().unwrap_or("1")
            ),
        };
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

/// `ANPR/plateColor`: Hikvision's colour words. `unknown`, `other`, the civil-aviation plates
/// (not road plates) and words a newer firmware may add carry no colour: the read is kept (a
/// refusal would make the camera retry it for ever) and the lane assumes blue.
fn colour(word: &str) -> Option<PlateColour> {
    Some(match word.to_ascii_lowercase().as_str() {
        "blue" => PlateColour::Blue,
        "yellow" => PlateColour::Yellow,
        "white" => PlateColour::White,
        "black" => PlateColour::Black,
        "green" | "newenergygreen" | "gradientgreen" => PlateColour::Green,
        "yellowgreen" | "newenergyyellowgreen" | "yellow_green" => PlateColour::YellowGreen,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.168.1.64</ipAddress>
<channelID>2</channelID>
<dateTime>2026-05-18T10:15:32+08:00</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<ANPR>
<licensePlate>京Ａ·12345</licensePlate>
<direction>forward</direction>
<confidenceLevel>97</confidenceLevel>
<plateColor>yellow</plateColor>
<pictureInfoList><pictureInfo><type>licensePlatePicture</type></pictureInfo></pictureInfoList>
</ANPR>
<UUID>c0a8-0140-5b3e &amp; 1</UUID>
</EventNotificationAlert>"#;

    #[test]
    fn an_anpr_alert_alone_is_a_read_without_photos() {
        let CameraMessage::Read(push) = Hikvision
            .parse(Some("application/xml; charset=UTF-8"), XML.as_bytes())
            .unwrap()
        else {
            panic!("not a read")
        };
        assert_eq!(push.plate_text, "京Ａ·12345");
        assert_eq!(push.colour, Some(PlateColour::Yellow));
        assert_eq!(push.confidence, 97);
        assert_eq!(push.channel, Some(2));
        assert_eq!(push.event_id, "c0a8-0140-5b3e & 1");
        assert_eq!(push.at.unwrap().to_rfc3339(), "2026-05-18T02:15:32+00:00");
        assert_eq!(push.direction, None);
        assert!(push.images.is_empty());
    }

    #[test]
    fn a_vehicle_detection_alert_with_a_plate_is_a_read() {
        let xml = XML.replace(">ANPR</eventType>", ">vehicleDetection</eventType>");
        assert!(matches!(
            Hikvision.parse(None, xml.as_bytes()).unwrap(),
            CameraMessage::Read(_)
        ));
    }

    #[test]
    fn a_videoloss_alert_is_a_heartbeat() {
        let xml = "<EventNotificationAlert><eventType>videoloss</eventType>\
                   <eventState>inactive</eventState></EventNotificationAlert>";
        assert_eq!(
            Hikvision.parse(Some("text/xml"), xml.as_bytes()).unwrap(),
            CameraMessage::Heartbeat
        );
    }

    #[test]
    fn bad_alerts_are_refused_with_the_field_that_is_wrong() {
        let err = |xml: &str| {
            Hikvision
                .parse(Some("application/xml"), xml.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&XML.replace("<confidenceLevel>97", "<confidenceLevel>170")),
            "field ANPR/confidenceLevel: \"170\" is not a confidence from 0 to 100"
        );
        let purple = XML.replace("yellow</plate", "purple</plate");
        let Ok(CameraMessage::Read(read)) = Hikvision.parse(None, purple.as_bytes()) else {
            panic!("an unknown colour word refused the read")
        };
        assert_eq!(read.colour, None);
        assert!(
            err(&XML[..XML.len() - 30]).starts_with("the body is truncated: the XML ends early"),
            "{}",
            err(&XML[..XML.len() - 30])
        );
        assert_eq!(
            err(&XML[..XML.len() - 40]),
            "the body is truncated: the XML ends inside <EventNotificationAlert/UUID>"
        );
        assert_eq!(
            err("<Other/>"),
            "XML: the root element is <Other>, not <EventNotificationAlert>"
        );
        assert!(
            err(&XML.replace("<licensePlate>京Ａ·12345</licensePlate>", ""))
                .contains("missing field ANPR/licensePlate")
        );
        let gbk = b"<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>\xbe\xa9A12345</licensePlate></ANPR></EventNotificationAlert>";
        assert!(
            Hikvision
                .parse(Some("application/xml"), gbk)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
        assert!(matches!(
            Hikvision
                .parse(Some("application/json"), b"{}")
                .unwrap_err(),
            CameraError::ContentType { .. }
        ));
    }
}
