//! What every camera driver checks the same way: text is UTF-8, photos are JPEGs (base64 or raw),
//! confidences are 0–100, plate text is trimmed and "no plate" is recognised whatever the make
//! calls it.
//!
//! What it is for: one rule per check, so the three drivers refuse the same things with the same
//! messages. What it never does: parse a plate (that is `domain::plate`) or guess a colour.

use base64::Engine as _;
use bytes::Bytes;

use super::CameraError;
use crate::domain::PlateColour;

/// `bytes` as UTF-8 text, or which byte is not.
pub(super) fn utf8<'a>(what: &'static str, bytes: &'a [u8]) -> Result<&'a str, CameraError> {
    std::str::from_utf8(bytes).map_err(|e| CameraError::NotUtf8 {
        what,
        offset: e.valid_up_to(),
    })
}

/// `bytes` if they start with the JPEG start-of-image marker, else why not.
pub(super) fn jpeg(what: &str, bytes: Bytes) -> Result<Bytes, CameraError> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        Ok(bytes)
    } else {
        Err(CameraError::NotJpeg {
            what: what.to_string(),
        })
    }
}

/// A base64 JPEG as the JSON pushes carry it: standard alphabet, padding optional, line breaks
/// and a `data:image/jpeg;base64,` prefix tolerated (some firmwares wrap at 76 columns).
pub(super) fn base64_jpeg(what: &str, text: &str) -> Result<Bytes, CameraError> {
    let text = text
        .split_once(";base64,")
        .filter(|(head, _)| head.starts_with("data:"))
        .map_or(text, |(_, data)| data);
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        engine.decode(compact)
    } else {
        engine.decode(text)
    };
    let bytes = decoded.map_err(|e| CameraError::Base64 {
        what: what.to_string(),
        detail: e.to_string(),
    })?;
    jpeg(what, Bytes::from(bytes))
}

/// A confidence that must be 0–100.
pub(super) fn confidence(field: &'static str, value: f64) -> Result<u8, CameraError> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Ok(value.round() as u8)
    } else {
        Err(CameraError::Field {
            field,
            value: value.to_string(),
            why: "is not a confidence from 0 to 100",
        })
    }
}

/// Plate text as the lane should see it: surrounding blanks and C-string NULs removed; a colour
/// word some firmwares put in front (`蓝京A12345`) split off and returned.
pub(super) fn plate_text(raw: &str) -> (String, Option<PlateColour>) {
    let text = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let mut chars = text.chars();
    let colour = match chars.next() {
        Some('蓝') => Some(PlateColour::Blue),
        Some('黄') => Some(PlateColour::Yellow),
        Some('绿') => Some(PlateColour::Green),
        Some('白') => Some(PlateColour::White),
        Some('黑') => Some(PlateColour::Black),
        _ => None,
    };
    let rest = chars.as_str();
    // Only when a province (or another plate start) follows: `黑A12345` is a Heilongjiang plate.
    let plate_follows = rest
        .chars()
        .next()
        .is_some_and(|c| crate::domain::plate::PROVINCES.contains(&c))
        && rest.chars().count() >= 7;
    match colour {
        Some(colour) if plate_follows => (rest.to_string(), Some(colour)),
        _ => (text.to_string(), None),
    }
}

/// Whether a camera's plate text means "no plate read" (`无车牌`, `_无_`, `unknown`, …): the
/// vehicle was seen, its plate was not.
pub fn is_no_plate(text: &str) -> bool {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    t.is_empty()
        || ["无车牌", "无牌", "无牌车", "_无_", "无", "未识别", "车牌"].contains(&t)
        || ["unknown", "none", "no plate", "noplate", "null"]
            .iter()
            .any(|w| t.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_photos_decode_with_line_breaks_a_data_prefix_and_no_padding() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xD9];
        let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
        assert_eq!(&base64_jpeg("p", &b64).unwrap()[..], &jpeg);
        let wrapped = format!("{}\r\n{}", &b64[..4], &b64[4..]);
        assert_eq!(&base64_jpeg("p", &wrapped).unwrap()[..], &jpeg);
        let data = format!("data:image/jpeg;base64,{}", b64.trim_end_matches('='));
        assert_eq!(&base64_jpeg("p", &data).unwrap()[..], &jpeg);
    }

    #[test]
    fn a_photo_that_is_not_a_jpeg_or_not_base64_is_refused_by_name() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n");
        assert_eq!(
            base64_jpeg("imageFile", &png).unwrap_err().to_string(),
            "imageFile is not a JPEG (it does not start with FF D8)"
        );
        let err = base64_jpeg("imageFile", "@@@@").unwrap_err().to_string();
        assert!(err.starts_with("imageFile: not valid base64"), "{err}");
    }

    #[test]
    fn plate_text_is_trimmed_and_a_leading_colour_word_is_split_off_only_before_a_province() {
        assert_eq!(plate_text(" 京A12345\0\0"), ("京A12345".into(), None));
        assert_eq!(
            plate_text("蓝京A12345"),
            ("京A12345".into(), Some(PlateColour::Blue))
        );
        // Heilongjiang: 黑 is the province here, not a colour.
        assert_eq!(plate_text("黑A12345"), ("黑A12345".into(), None));
        assert!(is_no_plate("无车牌") && is_no_plate("_无_") && is_no_plate(" Unknown "));
        assert!(!is_no_plate("京A12345"));
    }

    #[test]
    fn a_confidence_outside_0_to_100_is_refused() {
        assert_eq!(confidence("c", 97.6).unwrap(), 98);
        assert!(confidence("c", 101.0).is_err());
        assert!(confidence("c", -1.0).is_err());
        assert!(confidence("c", f64::NAN).is_err());
    }
}
