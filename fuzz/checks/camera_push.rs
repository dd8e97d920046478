//! Check: the gate's plate camera drivers (`gate::camera::parse`) on arbitrary bytes, as each
//! kind of camera (the first byte picks the kind and the content type). A push comes from any
//! device on the cabinet network, so it never panics: it is a read, a heartbeat or a refusal,
//! and a read keeps to the drivers' limits (a confidence of at most 100, an event id and plate
//! text of bounded length, photos that are JPEGs).
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use gatehouse::gate::camera::{CameraMessage, parse};
use gatehouse::gate::config::CameraKind;

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = [
        CameraKind::Hikvision,
        CameraKind::AlarmInfoPlate,
        CameraKind::Webhook,
    ][usize::from(pick % 3)];
    let content_type = [
        Some("multipart/form-data; boundary=MIME_boundary"),
        Some("application/json"),
        Some("application/xml"),
        None,
    ][usize::from(pick / 3 % 4)];
    let Ok(CameraMessage::Read(push)) = parse(kind, content_type, body) else {
        return;
    };
    assert!(push.confidence <= 100, "confidence {}", push.confidence);
    assert!(
        push.event_id.len() <= 128,
        "event id {} bytes",
        push.event_id.len()
    );
    assert!(
        push.plate_text.chars().count() <= 32,
        "plate {:?}",
        push.plate_text
    );
    for image in &push.images {
        assert!(
            image.jpeg.starts_with(&[0xFF, 0xD8]),
            "a photo that is no JPEG"
        );
    }
}
