//! Camera pushes as the cameras send them, for the driver and listener tests: a Hikvision
//! `multipart/form-data` ANPR alert (XML part, plate close-up and scene JPEG parts), an
//! `AlarmInfoPlate` JSON push with base64 photos, a plain JSON webhook, and JPEG-like photos.
//!
//! The shapes follow the makes' documented payloads (ISAPI `EventNotificationAlert` 2.0; the
//! all-in-one cameras' `AlarmInfoPlate`/`PlateResult`); values are made up.

use base64::Engine as _;

/// A JPEG-shaped photo of about `size` bytes: SOI, a JFIF APP0 segment, filler (which contains
/// CRLF and `--` sequences, as real compressed data can), EOI. `seed` makes photos differ.
pub(crate) fn jpeg(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    let filler = [
        seed,
        0x0D,
        0x0A,
        b'-',
        b'-',
        0x00,
        0xFF,
        0x00,
        seed.wrapping_mul(7),
    ];
    while bytes.len() + 2 < size.max(24) {
        bytes.extend_from_slice(&filler);
    }
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// Standard base64.
pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An `EventNotificationAlert` for an ANPR read.
pub(crate) fn hik_alert(
    uuid: &str,
    plate: &str,
    colour: &str,
    confidence: u8,
    channel: u32,
) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.168.10.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:3c:21:0a</macAddress>
<channelID>{channel}</channelID>
<dateTime>2026-05-18T10:15:32+08:00</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>North gate entry</channelName>
<ANPR>
<country>CHN</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>forward</direction>
<confidenceLevel>{confidence}</confidenceLevel>
<plateType>92TypeCivil</plateType>
<plateColor>{colour}</plateColor>
<licenseBright>0</licenseBright>
<vehicleType>vehicle</vehicleType>
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type><dataType>0</dataType></pictureInfo>
<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type><dataType>0</dataType></pictureInfo>
</pictureInfoList>
</ANPR>
<UUID>{uuid}</UUID>
</EventNotificationAlert>
"#
    )
}

/// A Hikvision listening-mode body: a preamble, the XML part, then each `(name, bytes)` as a
/// JPEG part, CRLF line ends, the closing delimiter and an epilogue. Returns the content type
/// (with a quoted boundary) and the body.
pub(crate) fn hik_multipart(xml: &str, pictures: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "MIME_boundary-7d3e1c";
    let mut body = b"This is a multi-part message in MIME format.\r\n".to_vec();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\n\
             Content-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
            xml.len()
        )
        .as_bytes(),
    );
    body.extend_from_slice(xml.as_bytes());
    for (name, bytes) in pictures {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.jpg\"\r\n\
                 Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                bytes.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary=\"{boundary}\""),
        body,
    )
}

/// An `AlarmInfoPlate` push (colour code 1 = blue), with the scene and the plate close-up.
pub(crate) fn alarm_info(
    plateid: u32,
    license: &str,
    confidence: u8,
    scene: &[u8],
    plate: &[u8],
) -> String {
    serde_json::json!({
        "AlarmInfoPlate": {
            "channel": 0,
            "deviceName": "IVS",
            "ipaddr": "192.168.10.65",
            "serialno": "e1b5bd45-8a5e2c6c",
            "user_data": "",
            "result": {
                "PlateResult": {
                    "bright": 0,
                    "carBright": 0,
                    "carColor": 0,
                    "colorType": 1,
                    "colorValue": 0,
                    "confidence": confidence,
                    "direction": 4,
                    "license": license,
                    "location": {"RECT": {"bottom": 655, "left": 840, "right": 1060, "top": 600}},
                    "plateid": plateid,
                    "timeStamp": {"Timeval": {"sec": 1_779_070_532u64, "usec": 481_000}},
                    "timeUsed": 0,
                    "triggerType": 8,
                    "type": 1,
                    "imageFile": b64(scene),
                    "imageFileLen": scene.len(),
                    "imageFragmentFile": b64(plate),
                    "imageFragmentFileLen": plate.len(),
                }
            }
        }
    })
    .to_string()
}

/// A plain JSON webhook read.
pub(crate) fn webhook(event_id: &str, plate: &str, channel: Option<u32>, photo: &[u8]) -> String {
    serde_json::json!({
        "event_id": event_id,
        "plate": plate,
        "colour": "blue",
        "confidence": 91,
        "channel": channel,
        "at": "2026-05-18T10:15:32+08:00",
        "images": [{"kind": "plate", "jpeg_base64": b64(photo)}],
    })
    .to_string()
}
