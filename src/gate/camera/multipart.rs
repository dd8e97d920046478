//! A small sans-IO `multipart/*` parser (RFC 2046 §5.1, RFC 7578) for camera pushes: the whole
//! body is in memory already (the listener bounds it), so parts are slices of it, not streams.
//!
//! What it is for: Hikvision's listening mode posts `multipart/form-data` with an XML part and
//! JPEG parts. Cameras differ in the details, so this accepts what RFC 2046 allows and cameras
//! send: a quoted or bare boundary, a preamble before the first delimiter, transport padding
//! after a delimiter, CRLF (or a bare LF from sloppy firmware) line ends, and an epilogue. It
//! refuses a body without its closing delimiter (cut short) and a part without its header end.
//!
//! What it never does: decode a part's transfer encoding (cameras send binary) or look at what a
//! part means (the driver does).

use bytes::Bytes;

use super::CameraError;

/// One part: its headers that matter, and its bytes (sharing the body's buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    /// `name` of `Content-Disposition`, if any.
    pub name: Option<String>,
    /// `filename` of `Content-Disposition`, if any.
    pub filename: Option<String>,
    /// `Content-Type`, lower-cased, parameters dropped; `None` when absent.
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// The `boundary` parameter of a `multipart/*` content type, or why there is none.
pub(super) fn boundary(content_type: &str) -> Result<String, CameraError> {
    let bad = |m: &str| CameraError::Multipart(m.to_string());
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
    if !media.starts_with("multipart/") {
        return Err(bad("the content type is not multipart"));
    }
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => quoted
                .strip_suffix('"')
                .ok_or_else(|| bad("the boundary's closing quote is missing"))?,
            None => value,
        };
        if value.is_empty() || value.len() > 70 {
            return Err(bad("the boundary must be 1 to 70 characters"));
        }
        return Ok(value.to_string());
    }
    Err(bad("the content type has no boundary parameter"))
}

/// Splits `body` into its parts.
pub(super) fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, CameraError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter: at the very start, or after a preamble ending in a line break.
    let mut at = if body.starts_with(delimiter) {
        0
    } else {
        find_delimiter(body, 0, delimiter)
            .map(|(_, next)| next - delimiter.len())
            .ok_or_else(|| {
                CameraError::Multipart(format!(
                    "the boundary {boundary:?} from the content type does not occur in the body"
                ))
            })?
    };
    let mut parts = Vec::new();
    loop {
        // `at` is at a delimiter; what follows it says whether it closes the body.
        let after = at + delimiter.len();
        let rest = &body[after..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then a line break.
        let padding = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        let line_end = match &rest[padding..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            [] | [b'\r'] => {
                return Err(CameraError::Truncated(format!(
                    "part {} has no headers (the closing delimiter --{boundary}-- is missing)",
                    parts.len() + 1
                )));
            }
            _ => {
                return Err(CameraError::Multipart(format!(
                    "a delimiter is followed by text on its line (part {})",
                    parts.len() + 1
                )));
            }
        };
        let start = after + padding + line_end;
        let index = parts.len() + 1;
        let Some((end, next)) = find_delimiter(body, start, delimiter) else {
            return Err(CameraError::Truncated(format!(
                "part {index} is not closed (the delimiter --{boundary} after it is missing)"
            )));
        };
        parts.push(part(body.slice(start..end), index)?);
        at = next - delimiter.len();
    }
}

/// The next delimiter line at or after `from`: returns where the content before it ends
/// (before its CRLF or LF) and where the delimiter's own text ends.
fn find_delimiter(body: &[u8], from: usize, delimiter: &[u8]) -> Option<(usize, usize)> {
    let mut search = from;
    while search < body.len() {
        let lf = search + memchr(b'\n', &body[search..])?;
        let line = lf + 1;
        if body[line..].starts_with(delimiter) {
            let end = if lf > from && body[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            return Some((end.max(from), line + delimiter.len()));
        }
        search = line;
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

/// One part's headers and body.
fn part(raw: Bytes, index: usize) -> Result<Part, CameraError> {
    // Headers end at the first empty line.
    let (head_end, body_start) = if raw.starts_with(b"\r\n") {
        (0, 2)
    } else if raw.starts_with(b"\n") {
        (0, 1)
    } else {
        match find(&raw, b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| find(&raw, b"\n\n").map(|i| (i, i + 2)))
        {
            Some(found) => found,
            None => {
                return Err(CameraError::Truncated(format!(
                    "part {index}'s headers do not end (no empty line before its content)"
                )));
            }
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut part = Part {
        name: None,
        filename: None,
        content_type: None,
        body: raw.slice(body_start..),
    };
    for line in head.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-type") {
            let media = value.split(';').next().unwrap_or("").trim();
            part.content_type = Some(media.to_ascii_lowercase());
        } else if key.eq_ignore_ascii_case("content-disposition") {
            part.name = disposition_param(value, "name");
            part.filename = disposition_param(value, "filename");
        }
    }
    Ok(part)
}

/// A parameter of a `Content-Disposition` value (`form-data; name="x"; filename="y.jpg"`).
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_boundary_and_a_bare_one_are_both_read() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"MIME_boundary\"").unwrap(),
            "MIME_boundary"
        );
        assert_eq!(
            boundary("Multipart/Form-Data;charset=utf-8;boundary=abc").unwrap(),
            "abc"
        );
        assert!(boundary("multipart/form-data").is_err());
        assert!(boundary("application/xml; boundary=x").is_err());
    }

    #[test]
    fn parts_are_split_after_a_preamble_with_padding_and_an_epilogue() {
        let body = Bytes::from_static(
            b"this is a preamble\r\n--b1  \r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.xml\"\r\n\
              Content-Type: text/xml; charset=utf-8\r\n\r\n<x/>\r\n--b1\r\n\
              Content-Type: image/jpeg\r\n\r\n\xff\xd8\r\n\r\n\xff\xd9\r\n--b1--\r\nepilogue",
        );
        let parts = parse(&body, "b1").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_deref(), Some("a"));
        assert_eq!(parts[0].filename.as_deref(), Some("a.xml"));
        assert_eq!(parts[0].content_type.as_deref(), Some("text/xml"));
        assert_eq!(&parts[0].body[..], b"<x/>");
        // CRLFs inside a part's content are content.
        assert_eq!(&parts[1].body[..], b"\xff\xd8\r\n\r\n\xff\xd9");
    }

    #[test]
    fn bare_lf_line_ends_are_tolerated() {
        let body = Bytes::from_static(b"--b\nContent-Type: text/xml\n\n<x/>\n--b--\n");
        let parts = parse(&body, "b").unwrap();
        assert_eq!(&parts[0].body[..], b"<x/>");
    }

    #[test]
    fn a_body_cut_short_is_truncated_not_a_shorter_part() {
        let body = Bytes::from_static(b"--b\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff");
        let err = parse(&body, "b").unwrap_err();
        assert!(matches!(err, CameraError::Truncated(_)), "{err}");
        let body = Bytes::from_static(b"--b\r\nContent-Type: image/jpeg\r\n");
        assert!(matches!(
            parse(&body, "b").unwrap_err(),
            CameraError::Truncated(_)
        ));
        let body = Bytes::from_static(b"--b");
        assert!(matches!(
            parse(&body, "b").unwrap_err(),
            CameraError::Truncated(_)
        ));
        let body = Bytes::from_static(b"no delimiter at all");
        assert!(matches!(
            parse(&body, "b").unwrap_err(),
            CameraError::Multipart(_)
        ));
    }
}
