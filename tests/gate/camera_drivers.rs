//! The plate camera drivers against realistic pushes (see `camera_payloads`), through the one
//! entry point the listener uses (`gate::camera::parse`): what each make's push becomes, and
//! that every malformed push is refused with a reason, never a panic and never half a read.

use crate::camera_payloads::*;
use gatehouse::domain::{Direction, PlateColour};
use gatehouse::gate::camera::{CameraError, CameraMessage, CameraPush, PlateSighting, parse};
use gatehouse::gate::config::CameraKind;
use gatehouse::wire::journal::PhotoKind;

fn read(kind: CameraKind, content_type: &str, body: &[u8]) -> CameraPush {
    match parse(kind, Some(content_type), body) {
        Ok(CameraMessage::Read(push)) => push,
        other => panic!("expected a read, got {other:?}"),
    }
}

fn refused(kind: CameraKind, content_type: &str, body: &[u8]) -> CameraError {
    match parse(kind, Some(content_type), body) {
        Err(e) => e,
        Ok(m) => panic!("expected a refusal, got {m:?}"),
    }
}

#[test]
fn a_hikvision_multipart_alert_is_one_read_with_its_plate_close_up_and_scene() {
    let (plate_jpeg, scene_jpeg) = (jpeg(3_000, 1), jpeg(40_000, 2));
    let xml = hik_alert(
        "7c1f0e4a-2b9d-4c1e-9f00-3a5b6c7d8e9f",
        "京A12345",
        "blue",
        97,
        1,
    );
    let (content_type, body) = hik_multipart(
        &xml,
        &[
            ("licensePlatePicture", &plate_jpeg),
            ("detectionPicture", &scene_jpeg),
        ],
    );
    let push = read(CameraKind::Hikvision, &content_type, &body);
    assert_eq!(push.event_id, "7c1f0e4a-2b9d-4c1e-9f00-3a5b6c7d8e9f");
    assert_eq!(push.plate_text, "京A12345");
    assert_eq!(push.colour, Some(PlateColour::Blue));
    assert_eq!(push.confidence, 97);
    assert_eq!(push.channel, Some(1));
    // `forward` is relative to the camera's mounting: not mapped to entry or exit.
    assert_eq!(push.direction, None);
    assert_eq!(push.images.len(), 2);
    assert_eq!(push.images[0].kind, PhotoKind::Plate);
    assert_eq!(&push.images[0].jpeg[..], &plate_jpeg[..]);
    assert_eq!(push.images[1].kind, PhotoKind::Scene);
    assert_eq!(&push.images[1].jpeg[..], &scene_jpeg[..]);
}

#[test]
fn a_hikvision_alert_with_an_unquoted_boundary_and_bare_lf_lines_still_parses() {
    let xml = hik_alert("u-2", "沪B·D12345", "green", 90, 1);
    let body = format!(
        "--abc\nContent-Type: text/xml\n\n{xml}\n--abc\nContent-Type: image/jpeg\n\
         Content-Disposition: form-data; name=\"licensePlatePicture\"\n\n"
    );
    let mut body = body.into_bytes();
    body.extend_from_slice(&jpeg(100, 3));
    body.extend_from_slice(b"\n--abc--");
    let push = read(
        CameraKind::Hikvision,
        "multipart/form-data; boundary=abc",
        &body,
    );
    assert_eq!(push.plate_text, "沪B·D12345");
    assert_eq!(push.colour, Some(PlateColour::Green));
    assert_eq!(push.images.len(), 1);
}

#[test]
fn a_hikvision_keep_alive_is_a_heartbeat_not_a_read() {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" \
               xmlns=\"http://www.hikvision.com/ver20/XMLSchema\"><ipAddress>192.168.10.64</ipAddress>\
               <channelID>1</channelID><dateTime>2026-05-18T10:15:32+08:00</dateTime>\
               <activePostCount>0</activePostCount><eventType>videoloss</eventType>\
               <eventState>inactive</eventState><eventDescription>videoloss alarm</eventDescription>\
               </EventNotificationAlert>";
    assert_eq!(
        parse(
            CameraKind::Hikvision,
            Some("application/xml"),
            xml.as_bytes()
        )
        .unwrap(),
        CameraMessage::Heartbeat
    );
    let (content_type, body) = hik_multipart(xml, &[]);
    assert_eq!(
        parse(CameraKind::Hikvision, Some(&content_type), &body).unwrap(),
        CameraMessage::Heartbeat
    );
}

#[test]
fn a_hikvision_push_cut_off_inside_a_picture_is_refused_as_truncated() {
    let xml = hik_alert("u-3", "京A12345", "blue", 97, 1);
    let (content_type, body) = hik_multipart(&xml, &[("detectionPicture", &jpeg(20_000, 4))]);
    for cut in [body.len() - 10, body.len() / 2, xml.len() / 2] {
        let err = refused(CameraKind::Hikvision, &content_type, &body[..cut]);
        assert!(
            matches!(err, CameraError::Truncated(_)),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_hikvision_picture_that_is_not_a_jpeg_refuses_the_whole_push_naming_the_part() {
    let xml = hik_alert("u-4", "京A12345", "blue", 97, 1);
    let png = b"\x89PNG\r\n\x1a\n0000".to_vec();
    let (content_type, body) = hik_multipart(&xml, &[("licensePlatePicture", &png)]);
    assert_eq!(
        refused(CameraKind::Hikvision, &content_type, &body).to_string(),
        "picture part \"licensePlatePicture.jpg\" is not a JPEG (it does not start with FF D8)"
    );
}

#[test]
fn an_alarm_info_plate_push_is_a_read_with_its_base64_photos() {
    let (scene, plate) = (jpeg(30_000, 5), jpeg(2_000, 6));
    let push = read(
        CameraKind::AlarmInfoPlate,
        "application/json",
        alarm_info(812, "粤Ｂ·Ｄ１２３４５", 95, &scene, &plate).as_bytes(),
    );
    assert_eq!(push.event_id, "e1b5bd45-8a5e2c6c:812");
    assert_eq!(push.plate_text, "粤Ｂ·Ｄ１２３４５");
    assert_eq!(push.colour, Some(PlateColour::Blue));
    assert_eq!(push.confidence, 95);
    assert_eq!(push.channel, Some(0));
    assert_eq!(push.at.unwrap().timestamp_millis(), 1_779_070_532_481);
    let kinds: Vec<_> = push.images.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [PhotoKind::Plate, PhotoKind::Scene]);
    assert_eq!(&push.images[0].jpeg[..], &plate[..]);
    assert_eq!(&push.images[1].jpeg[..], &scene[..]);
}

#[test]
fn a_push_in_gbk_is_refused_as_not_utf8() {
    // "京A12345" with 京 in GBK (BE A9), as a camera left on its factory encoding sends it.
    let mut body =
        br#"{"AlarmInfoPlate":{"serialno":"x","result":{"PlateResult":{"license":""#.to_vec();
    body.extend_from_slice(b"\xbe\xa9A12345");
    body.extend_from_slice(br#"","confidence":90,"plateid":1}}}}"#);
    let err = refused(CameraKind::AlarmInfoPlate, "application/json", &body);
    assert!(matches!(err, CameraError::NotUtf8 { .. }), "{err}");
    assert!(err.to_string().contains("GBK is not accepted"), "{err}");
}

#[test]
fn a_webhook_read_keeps_its_direction_and_channel() {
    let photo = jpeg(500, 7);
    let push = read(
        CameraKind::Webhook,
        "application/json; charset=utf-8",
        webhook("hook-1", "京A12345", Some(2), &photo)
            .replace("\"channel\"", "\"direction\":\"exit\",\"channel\"")
            .as_bytes(),
    );
    assert_eq!(push.event_id, "hook-1");
    assert_eq!(push.direction, Some(Direction::Exit));
    assert_eq!(push.channel, Some(2));
    assert_eq!(&push.images[0].jpeg[..], &photo[..]);
}

#[test]
fn hostile_bodies_are_refused_by_every_driver_without_a_panic() {
    let bodies: [&[u8]; 7] = [
        b"",
        b"\xff\xfe\x00",
        b"{",
        b"[]",
        b"<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>",
        b"--b\r\n\r\n--b--",
        &[b'{'; 10_000],
    ];
    for kind in [
        CameraKind::Hikvision,
        CameraKind::AlarmInfoPlate,
        CameraKind::Webhook,
    ] {
        for content_type in [
            "application/json",
            "application/xml",
            "multipart/form-data; boundary=b",
        ] {
            for body in bodies {
                // Anything but a panic; none of these is a read.
                let result = parse(kind, Some(content_type), body);
                assert!(
                    !matches!(result, Ok(CameraMessage::Read(_))),
                    "{kind:?} {content_type} {:?}: {result:?}",
                    String::from_utf8_lossy(&body[..body.len().min(40)])
                );
            }
        }
    }
}

#[test]
fn a_sighting_parses_full_width_plates_takes_the_reported_colour_and_blue_when_none() {
    let push = |plate: &str, colour| CameraPush {
        event_id: "e".into(),
        plate_text: plate.into(),
        colour,
        confidence: 90,
        direction: None,
        channel: None,
        at: None,
        images: Vec::new(),
    };
    let sighting = PlateSighting::new("cam", &push("京Ａ·１２３４５", None), 80, Vec::new());
    let plate = sighting.plate.unwrap();
    assert_eq!(plate.plate.as_str(), "京A12345");
    assert_eq!(plate.colour, PlateColour::Blue);
    assert_eq!(sighting.min_confidence, 80);
    let green = PlateSighting::new(
        "cam",
        &push("苏ED12345", Some(PlateColour::Green)),
        80,
        vec![],
    );
    assert_eq!(green.plate.unwrap().colour, PlateColour::Green);
    // No plate read, or text that is no plate: a sighting without a plate (still journalled).
    for text in ["无车牌", "_无_", "unknown", "京A1234"] {
        let s = PlateSighting::new("cam", &push(text, None), 80, Vec::new());
        assert!(s.plate.is_none(), "{text}");
        assert_eq!(s.record().raw_plate, text);
    }
}

#[test]
fn an_event_id_or_plate_text_too_long_to_journal_is_refused() {
    let long_id = "u".repeat(129);
    let xml = hik_alert(&long_id, "京A12345", "blue", 97, 1);
    let err = refused(CameraKind::Hikvision, "application/xml", xml.as_bytes()).to_string();
    assert!(err.starts_with("field event id:"), "{err}");
    let xml = hik_alert("ok", &"京".repeat(33), "blue", 97, 1);
    let err = refused(CameraKind::Hikvision, "application/xml", xml.as_bytes()).to_string();
    assert!(err.contains("is too long for a plate"), "{err}");
}

#[test]
fn every_cut_of_a_push_short_of_its_end_is_refused_never_half_a_read() {
    let xml = hik_alert("cut-1", "京A12345", "blue", 97, 1);
    let (content_type, body) = hik_multipart(
        &xml,
        &[
            ("licensePlatePicture", &jpeg(300, 1)),
            ("detectionPicture", &jpeg(600, 2)),
        ],
    );
    // Everything up to the end of the closing delimiter `--…--` is needed.
    let closing = body.len() - "\r\n".len();
    for cut in 0..closing {
        let result = parse(CameraKind::Hikvision, Some(&content_type), &body[..cut]);
        assert!(
            result.is_err(),
            "cut at {cut} of {}: {result:?}",
            body.len()
        );
    }
    assert!(matches!(
        parse(CameraKind::Hikvision, Some(&content_type), &body[..closing]),
        Ok(CameraMessage::Read(_))
    ));
    let json = alarm_info(9, "京A12345", 90, &jpeg(300, 3), &jpeg(200, 4));
    for cut in 0..json.len() {
        let result = parse(CameraKind::AlarmInfoPlate, None, &json.as_bytes()[..cut]);
        assert!(result.is_err(), "cut at {cut}: {result:?}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_a_driver(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        kind in 0..3usize,
        content_type in 0..4usize,
    ) {
        let kind = [CameraKind::Hikvision, CameraKind::AlarmInfoPlate, CameraKind::Webhook][kind];
        let content_type = [
            "application/json",
            "application/xml",
            "multipart/form-data; boundary=b",
            "text/plain",
        ][content_type];
        let _ = parse(kind, Some(content_type), &body);
        // A multipart envelope around the bytes, so the part parser sees them too.
        let mut wrapped = b"--b\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        wrapped.extend_from_slice(&body);
        wrapped.extend_from_slice(b"\r\n--b--");
        let _ = parse(kind, Some(content_type), &wrapped);
    }
}
