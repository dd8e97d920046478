//! JPEGs a simulated plate camera sends: a plate close-up with the plate's text on the plate's
//! colour, and a scene photo of the lane whose size can be chosen (the camera bench posts
//! ~200 KB photos, the demo small ones).
//!
//! Why it exists: the gate stores, uploads and shows camera photos as evidence; the simulator,
//! the demo and the benches need real JPEGs of realistic size without shipping image files.
//!
//! Text is drawn with a built-in 5×7 bitmap font of digits and the letters A–Z. There are no
//! Chinese glyphs: the province character is drawn as its two-letter ISO 3166-2:CN code in a
//! small box (京 → `BJ`, 粤 → `GD`), and any other non-ASCII character (警, 学, 使 …) as an empty
//! box. The image is evidence-shaped, not a rendering of a real plate; the plate's text travels in
//! the push itself. Everything is deterministic for a given input and seed. It never reads a file
//! or a clock.

use jpeg_encoder::{ColorType, Encoder, EncodingError};

use crate::domain::PlateColour;

/// An RGB picture being drawn.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Why a picture could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// JPEG sides are at most 65,535 pixels and at least 1.
    #[error("a {width}×{height} picture cannot be a JPEG (1–65535 pixels a side)")]
    Size {
        /// Width asked for.
        width: usize,
        /// Height asked for.
        height: usize,
    },
    /// The encoder refused.
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] EncodingError),
}

impl Canvas {
    /// A picture filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Result<Canvas, ImageError> {
        if width == 0 || height == 0 || width > 65_535 || height > 65_535 {
            return Err(ImageError::Size { width, height });
        }
        let mut rgb = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            rgb.extend_from_slice(&background);
        }
        Ok(Canvas { width, height, rgb })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Sets one pixel; outside the picture does nothing.
    pub fn put(&mut self, x: usize, y: usize, colour: Rgb) {
        if x < self.width && y < self.height {
            let i = (y * self.width + x) * 3;
            self.rgb[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// Fills a rectangle (clipped to the picture).
    pub fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, colour: Rgb) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                self.put(xx, yy, colour);
            }
        }
    }

    /// Draws a rectangle's outline `t` pixels thick.
    pub fn frame(&mut self, x: usize, y: usize, w: usize, h: usize, t: usize, colour: Rgb) {
        self.fill(x, y, w, t, colour);
        self.fill(x, (y + h).saturating_sub(t), w, t, colour);
        self.fill(x, y, t, h, colour);
        self.fill((x + w).saturating_sub(t), y, t, h, colour);
    }

    /// Draws one glyph of the built-in font, each font pixel `scale` pixels square.
    fn glyph(&mut self, c: char, x: usize, y: usize, scale: usize, colour: Rgb) {
        let Some(rows) = glyph_rows(c) else {
            // No glyph: an empty box the size of one.
            self.frame(x, y, 5 * scale, 7 * scale, scale.max(1), colour);
            return;
        };
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    self.fill(x + col * scale, y + row * scale, scale, scale, colour);
                }
            }
        }
    }

    /// Draws ASCII text with the built-in font (letters upper-cased); returns the width drawn.
    pub fn text(&mut self, text: &str, x: usize, y: usize, scale: usize, colour: Rgb) -> usize {
        let mut cx = x;
        for c in text.chars() {
            if c != ' ' {
                self.glyph(c.to_ascii_uppercase(), cx, y, scale, colour);
            }
            cx += 6 * scale;
        }
        cx - x
    }

    /// Copies `other` into this picture with its top-left corner at (x, y), clipped.
    pub fn blit(&mut self, other: &Canvas, x: usize, y: usize) {
        for yy in 0..other.height {
            for xx in 0..other.width {
                let i = (yy * other.width + xx) * 3;
                let c = [other.rgb[i], other.rgb[i + 1], other.rgb[i + 2]];
                self.put(x + xx, y + yy, c);
            }
        }
    }

    /// Encodes the picture as a baseline JFIF JPEG at `quality` (1–100).
    pub fn jpeg(&self, quality: u8) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        let encoder = Encoder::new(&mut out, quality.clamp(1, 100));
        // new() refused sides over 65,535.
        encoder.encode(
            &self.rgb,
            self.width as u16,
            self.height as u16,
            ColorType::Rgb,
        )?;
        Ok(out)
    }
}

/// Background and text colours of a plate of this colour.
pub fn plate_colours(colour: PlateColour) -> (Rgb, Rgb) {
    const WHITE: Rgb = [245, 245, 245];
    const BLACK: Rgb = [20, 20, 20];
    match colour {
        PlateColour::Blue => ([20, 70, 180], WHITE),
        PlateColour::Yellow => ([245, 190, 20], BLACK),
        PlateColour::Green => ([120, 210, 140], BLACK),
        PlateColour::YellowGreen => ([190, 220, 80], BLACK),
        PlateColour::White => (WHITE, BLACK),
        PlateColour::Black => (BLACK, WHITE),
    }
}

/// Width and height of a plate close-up.
pub const PLATE_SIZE: (usize, usize) = (320, 96);

/// A plate close-up: the plate's colour, a border, the province code and the serial.
pub fn plate_picture(plate_text: &str, colour: PlateColour) -> Canvas {
    let (background, ink) = plate_colours(colour);
    let (w, h) = PLATE_SIZE;
    let mut c = Canvas::new(w, h, background).expect("a fixed, valid size");
    c.frame(3, 3, w - 6, h - 6, 3, ink);
    let mut chars = plate_text.chars();
    let mut x = 14;
    // The largest glyphs that fit: six pixels a font pixel for 7-character plates, smaller for
    // the 8-character new-energy ones.
    let rest = plate_text.chars().count().saturating_sub(1).max(1);
    let scale = ((w - 14 - 42 - 12 - 14) / (rest * 6)).clamp(2, 6);
    let top = (h - 7 * 6) / 2;
    if let Some(first) = chars.next() {
        match province_code(first) {
            Some(code) => {
                // Two small glyphs in a box where the province character stands.
                c.frame(x - 2, top - 2, 2 * 6 * 3 + 4, 7 * 6 + 4, 1, ink);
                c.text(code, x + 1, top + 10, 3, ink);
                x += 42;
            }
            None => {
                c.glyph(first.to_ascii_uppercase(), x, top, 6, ink);
                x += 36;
            }
        }
    }
    for (i, ch) in chars.enumerate() {
        if i == 1 {
            // The separator dot after the issuing authority's letter.
            c.fill(x, top + 18, scale, scale, ink);
            x += 2 * scale;
        }
        c.glyph(
            ch.to_ascii_uppercase(),
            x,
            top + (6 - scale) * 7 / 2,
            scale,
            ink,
        );
        x += 6 * scale;
    }
    c
}

/// A plate close-up as a JPEG.
pub fn plate_jpeg(plate_text: &str, colour: PlateColour) -> Result<Vec<u8>, ImageError> {
    plate_picture(plate_text, colour).jpeg(85)
}

/// A scene photo of `width`×`height`: road, a car with the plate on it, sensor noise, and a
/// caption (camera and plate code) at the top. `seed` varies the noise.
pub fn scene_picture(
    plate_text: &str,
    colour: PlateColour,
    caption: &str,
    width: usize,
    height: usize,
    seed: u64,
) -> Result<Canvas, ImageError> {
    let mut c = Canvas::new(width, height, [90, 95, 100])?;
    let mut rng = seed | 1;
    // Road and sky in bands with noise: real photos do not compress to nothing.
    for y in 0..height {
        let base: Rgb = if y < height / 3 {
            [150, 175, 200]
        } else {
            [85, 88, 92]
        };
        for x in 0..width {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let n = (rng & 0x3F) as i16 - 32;
            let px = base.map(|v| (i16::from(v) + n).clamp(0, 255) as u8);
            c.put(x, y, px);
        }
    }
    // The car: a body and windscreen, the plate below centre.
    let (cw, ch) = (width / 2, height / 2);
    let (cx, cy) = (width / 4, height / 3);
    c.fill(cx, cy, cw, ch, [160, 30, 35]);
    c.fill(cx + cw / 8, cy + ch / 10, cw * 3 / 4, ch / 3, [40, 50, 60]);
    let plate = plate_picture(plate_text, colour);
    if plate.width() <= width && plate.height() <= height {
        let px = (width - plate.width()) / 2;
        let py = (cy + ch * 2 / 3).min(height - plate.height());
        c.blit(&plate, px, py);
    }
    let scale = (width / 320).clamp(1, 4);
    let ascii: String = caption
        .chars()
        .map(|ch| if ch.is_ascii() { ch } else { '?' })
        .collect();
    c.text(&ascii, 8, 8, scale, [255, 255, 255]);
    Ok(c)
}

/// A scene photo JPEG of about `target_bytes` (within ~15 %, at least 2 KB): the size is found by
/// encoding at a guessed resolution and rescaling once or twice.
pub fn scene_jpeg_of_about(
    plate_text: &str,
    colour: PlateColour,
    caption: &str,
    target_bytes: usize,
    seed: u64,
) -> Result<Vec<u8>, ImageError> {
    let target = target_bytes.max(2_048) as f64;
    // Noisy 16:9 photos at quality 80 take about 0.55 bytes a pixel.
    let mut area = target / 0.55;
    let mut best = Vec::new();
    for _ in 0..3 {
        let w = ((area * 16.0 / 9.0).sqrt() as usize).clamp(64, 8_000) & !7;
        let h = (w * 9 / 16).max(48) & !7;
        let jpeg = scene_picture(plate_text, colour, caption, w, h, seed)?.jpeg(80)?;
        let ratio = target / jpeg.len() as f64;
        best = jpeg;
        if (0.87..=1.15).contains(&ratio) {
            break;
        }
        area *= ratio;
    }
    Ok(best)
}

/// The ISO 3166-2:CN code of a province abbreviation, as drawn on the close-up.
pub fn province_code(c: char) -> Option<&'static str> {
    Some(match c {
        '京' => "BJ",
        '津' => "TJ",
        '冀' => "HE",
        '晋' => "SX",
        '蒙' => "NM",
        '辽' => "LN",
        '吉' => "JL",
        '黑' => "HL",
        '沪' => "SH",
        '苏' => "JS",
        '浙' => "ZJ",
        '皖' => "AH",
        '闽' => "FJ",
        '赣' => "JX",
        '鲁' => "SD",
        '豫' => "HA",
        '鄂' => "HB",
        '湘' => "HN",
        '粤' => "GD",
        '桂' => "GX",
        '琼' => "HI",
        '渝' => "CQ",
        '川' => "SC",
        '贵' => "GZ",
        '云' => "YN",
        '藏' => "XZ",
        '陕' => "SN",
        '甘' => "GS",
        '青' => "QH",
        '宁' => "NX",
        '新' => "XJ",
        _ => return None,
    })
}

/// Rows (top first, bit 4 = leftmost column) of the 5×7 glyph of `c`, if the font has one.
fn glyph_rows(c: char) -> Option<[u8; 7]> {
    Some(match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_jpeg(b: &[u8]) -> bool {
        b.starts_with(&[0xFF, 0xD8]) && b.ends_with(&[0xFF, 0xD9])
    }

    #[test]
    fn a_plate_close_up_is_a_jpeg_and_differs_by_text_and_colour() {
        let a = plate_jpeg("京A12345", PlateColour::Blue).unwrap();
        let b = plate_jpeg("京A12346", PlateColour::Blue).unwrap();
        let c = plate_jpeg("京A12345", PlateColour::Yellow).unwrap();
        assert!(is_jpeg(&a) && is_jpeg(&b) && is_jpeg(&c));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, plate_jpeg("京A12345", PlateColour::Blue).unwrap());
    }

    #[test]
    fn the_plate_text_is_drawn_in_the_ink_colour_on_the_plate_colour() {
        let blank = plate_picture("", PlateColour::Blue);
        let drawn = plate_picture("粤B8AB23", PlateColour::Blue);
        let (bg, ink) = plate_colours(PlateColour::Blue);
        let count = |c: &Canvas, colour: Rgb| c.rgb.chunks(3).filter(|p| *p == colour).count();
        assert!(count(&drawn, ink) > count(&blank, ink) + 500);
        assert!(count(&drawn, bg) > count(&drawn, ink));
    }

    #[test]
    fn a_scene_photo_comes_out_near_the_size_asked_for() {
        for target in [20_000, 200_000] {
            let jpeg =
                scene_jpeg_of_about("京A12345", PlateColour::Blue, "cam-1", target, 7).unwrap();
            assert!(is_jpeg(&jpeg));
            let ratio = jpeg.len() as f64 / target as f64;
            assert!(
                (0.75..=1.3).contains(&ratio),
                "{target}: {} bytes",
                jpeg.len()
            );
        }
    }

    #[test]
    fn an_impossible_picture_size_is_an_error_not_a_panic() {
        assert!(matches!(
            Canvas::new(0, 10, [0; 3]),
            Err(ImageError::Size { .. })
        ));
        assert!(scene_picture("京A12345", PlateColour::Blue, "", 70_000, 10, 1).is_err());
    }
}
