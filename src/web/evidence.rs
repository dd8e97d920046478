//! What the pages show of a plate camera's read beside a decision: the plate close-up and the
//! scene photo (`/api/v1/photos/{sha256}`, with a "photo uploading" placeholder the page's
//! script swaps in and retries while the photo has not reached the centre yet), the camera's
//! raw read and confidence, a corrected plate beside the original, near-match suggestions for a
//! held low-confidence read, and the guard's plate-correction form. Shared by the console and
//! the passage search page so the two show evidence the same way.
//!
//! What it never does: read the database (callers pass the correction and suggestions), or
//! change anything (the correction form is a `fetch` to the JSON API, like every form).

use maud::{Markup, html};

use super::admin::PLATE_COLOURS;
use super::names::Names;
use crate::central::repo::corrections::Correction;
use crate::i18n::{Lang, t};
use crate::wire::journal::{PhotoKind, PlateReadRecord};

/// The camera read of an event body (a decision's `camera`, a `plate_ignored` event's), if any.
pub fn camera_of(body: &serde_json::Value) -> Option<PlateReadRecord> {
    let camera = body.get("camera")?;
    serde_json::from_value(camera.clone()).ok()
}

/// The centre's URL of a photo, or `None` for a hash that is not 64 lower-case hex digits (an
/// event body is data from a gate: it never makes a URL of anything else).
pub fn photo_url(sha256: &str) -> Option<String> {
    (sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| format!("/api/v1/photos/{sha256}"))
}

fn kind_label(lang: Lang, kind: PhotoKind) -> &'static str {
    match kind {
        PhotoKind::Plate => t(lang, "车牌特写", "Plate close-up"),
        PhotoKind::Scene => t(lang, "场景图", "Scene"),
    }
}

/// How large the photos are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Beside the lane's last decision: large enough to read the plate from the booth chair.
    Card,
    /// A thumbnail in a table row.
    Thumb,
}

/// One photo: the image (a link to the full size), and the placeholder the script shows while
/// the centre answers 404 (not uploaded yet), retrying.
fn photo(lang: Lang, kind: PhotoKind, url: &str, size: Size) -> Markup {
    let label = kind_label(lang, kind);
    let class = match size {
        Size::Card => "photo card",
        Size::Thumb => "photo thumb",
    };
    html! {
        figure class=(class) data-kind=(kind.as_str()) {
            a href=(url) target="_blank" rel="noopener" title=(label) {
                img src=(url) alt=(label) data-photo;
            }
            span.photo-wait role="status" { (t(lang, "照片上传中…", "Photo uploading…")) }
            @if size == Size::Card { figcaption { (label) } }
        }
    }
}

/// The read's photos, plate close-up first; a placeholder slot for a kind the camera did not
/// send.
pub fn photos(lang: Lang, camera: &PlateReadRecord, size: Size) -> Markup {
    let url_of = |kind: PhotoKind| {
        camera
            .photos
            .iter()
            .find(|p| p.kind == kind)
            .and_then(|p| photo_url(&p.sha256))
    };
    html! {
        div.photos {
            @for kind in [PhotoKind::Plate, PhotoKind::Scene] {
                @if let Some(url) = url_of(kind) {
                    (photo(lang, kind, &url, size))
                } @else if size == Size::Card {
                    figure.photo.card.none data-kind=(kind.as_str()) {
                        span.photo-none { (t(lang, "无照片", "No photo")) }
                        figcaption { (kind_label(lang, kind)) }
                    }
                }
            }
        }
    }
}

/// The camera's raw read, its colour and its confidence; `low`: the lane held the read for
/// its low confidence (the centre does not know each camera's threshold; the lane did).
pub fn read_line(lang: Lang, camera: &PlateReadRecord, low: bool) -> Markup {
    html! {
        p.camera-read {
            (t(lang, "相机识别：", "Camera read: "))
            strong.raw data-raw=(camera.raw_plate) { (if camera.raw_plate.is_empty() { "—" } else { camera.raw_plate.as_str() }) }
            @if let Some(c) = &camera.colour { " · " (super::admin::label_of(lang, PLATE_COLOURS, c)) }
            " · " span.confidence.low[low] data-confidence=(camera.confidence) {
                (t(lang, "置信度 ", "confidence ")) (camera.confidence) "%"
            }
        }
    }
}

/// A plate as the pages show it: the corrected plate (with the original struck beside it and
/// who corrected it, by display name) when there is a correction, else the plate as recorded.
pub fn plate(
    lang: Lang,
    names: &Names,
    recorded: Option<&str>,
    correction: Option<&Correction>,
) -> Markup {
    html! {
        @if let Some(c) = correction {
            span.plate.corrected data-corrected=(c.plate) { (c.plate) }
            " " span.original {
                (t(lang, "原识别 ", "read as ")) del { (c.original_plate.as_deref().or(recorded).unwrap_or("—")) }
                " · " (t(lang, "已更正：", "corrected by ")) (names.of(&c.operator))
            }
        } @else {
            span.plate { (recorded.unwrap_or("—")) }
        }
    }
}

/// Near matches for a held read: buttons that put the plate into the correction form (nothing
/// opens on them).
pub fn suggestions(lang: Lang, list: &[String]) -> Markup {
    html! {
        div.suggestions {
            span { (t(lang, "相近车牌（仅供参考）：", "Near matches (suggestions only): ")) }
            @if list.is_empty() { span.meta { (t(lang, "无", "none")) } }
            @for s in list {
                button.suggest type="button" data-suggest=(s) { (s) }
            }
        }
    }
}

/// The guard's form to correct the plate of event (gate, journal, seq), folded (a suggestion's
/// button unfolds it): unfolded it would push the lane's open / keep-closed buttons off a booth
/// PC's screen.
pub fn correction_form(lang: Lang, key: (i64, i64, i64), current: &str) -> Markup {
    let (gate, journal, seq) = key;
    let id = format!("{gate}-{journal}-{seq}");
    html! {
        details.correct {
            summary { (t(lang, "更正车牌", "Correct the plate")) }
            form.correct data-api={ "/api/v1/events/" (gate) "/" (journal) "/" (seq) "/plate" }
                data-done=(t(lang, "车牌已更正", "Plate corrected")) novalidate {
                div.row {
                    label for={ "fix-plate-" (id) } { (t(lang, "正确车牌", "Correct plate")) }
                    input id={ "fix-plate-" (id) } name="plate" value=(current) maxlength="12" autocomplete="off" required;
                    span.error data-error-for="plate" {}
                }
                div.row {
                    label for={ "fix-colour-" (id) } { (t(lang, "颜色", "Colour")) }
                    select id={ "fix-colour-" (id) } name="colour" {
                        option value="" { (t(lang, "— 不变 —", "— unchanged —")) }
                        @for (code, zh, en) in PLATE_COLOURS { option value=(code) { (t(lang, zh, en)) } }
                    }
                    span.error data-error-for="colour" {}
                }
                div.row {
                    label for={ "fix-note-" (id) } { (t(lang, "说明", "Note")) }
                    input id={ "fix-note-" (id) } name="note" maxlength="200" autocomplete="off";
                    span.error data-error-for="note" {}
                }
                button type="submit" { (t(lang, "保存更正", "Save correction")) }
                p.form-status role="status" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::journal::PhotoRef;

    fn read(photos: Vec<PhotoRef>) -> PlateReadRecord {
        PlateReadRecord {
            camera: "north".into(),
            event_id: "1".into(),
            raw_plate: "京A1Z345<script>".into(),
            colour: None,
            confidence: 58,
            photos,
        }
    }

    #[test]
    fn a_photo_hash_from_a_gate_makes_a_url_only_when_it_is_64_lower_case_hex_digits() {
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(
            photo_url(&good).as_deref(),
            Some(format!("/api/v1/photos/{good}").as_str())
        );
        for bad in [
            good.to_uppercase(),
            good[..63].to_string(),
            format!("{good}0"),
            format!("../../{}", &good[6..]),
            String::new(),
        ] {
            assert_eq!(photo_url(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_read_with_a_bad_photo_hash_draws_no_image_and_its_raw_text_is_escaped() {
        let photos = vec![
            PhotoRef {
                sha256: "javascript:alert(1)".into(),
                kind: PhotoKind::Plate,
                bytes: 1,
            },
            PhotoRef {
                sha256: "ab".repeat(32),
                kind: PhotoKind::Scene,
                bytes: 1,
            },
        ];
        let html = photos_and_read(&read(photos));
        assert!(!html.contains("javascript:"), "{html}");
        assert_eq!(html.matches("<img").count(), 1, "only the scene: {html}");
        assert!(html.contains("无照片"), "the plate slot says there is none");
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
    }

    fn photos_and_read(camera: &PlateReadRecord) -> String {
        html! { (photos(Lang::Zh, camera, Size::Card)) (read_line(Lang::Zh, camera, true)) }
            .into_string()
    }
}
