//! The QR/barcode scanner's UART line protocol (docs/protocols.md §3): the module sends each
//! decoded code as text and then CR or CRLF (some send a lone LF), usually 9600 8N1. There is
//! no framing beyond the line end and no checksum, so this decoder only splits lines and
//! protects the gate from what a noisy or hostile line can send.
//!
//! [`LineDecoder`] is sans-IO: bytes in ([`LineDecoder::push`]), decoded texts out
//! ([`LineDecoder::next_line`]). It never ends the stream and never panics:
//! - control bytes other than the line ends (NUL, ESC, DEL, …), and whole lines that are not
//!   UTF-8, are dropped and counted ([`LineCounters::dropped_bytes`]);
//! - a line longer than [`MAX_LINE`] is dropped whole, up to its line end, and counted
//!   ([`LineCounters::overlong_lines`]) — it cannot be a pass, and it must not grow a buffer;
//! - empty lines (the LF of a CRLF, a CR split from its LF across reads) are skipped.
//!
//! What it never does: decide what a text means (a pass, another code), IO, clocks.

/// The longest line kept, in bytes: a pass token is at most 512 characters
/// (`gatehouse::wire::pass::MAX_TOKEN_LEN`, ASCII base64url), so a longer line is not a pass.
pub const MAX_LINE: usize = 512;

const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// What the decoder has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounters {
    /// Lines handed out.
    pub lines: u64,
    /// Bytes dropped as noise: control bytes, non-UTF-8 lines, overlong lines.
    pub dropped_bytes: u64,
    /// Lines longer than [`MAX_LINE`], dropped.
    pub overlong_lines: u64,
}

/// Splits a scanner's byte stream into decoded texts.
#[derive(Debug, Default)]
pub struct LineDecoder {
    /// The current line's bytes so far (at most [`MAX_LINE`]).
    line: Vec<u8>,
    /// Complete lines not yet taken.
    ready: std::collections::VecDeque<String>,
    /// The current line overflowed: drop until its end.
    discarding: bool,
    counters: LineCounters,
}

impl LineDecoder {
    /// An empty decoder.
    pub fn new() -> LineDecoder {
        LineDecoder::default()
    }

    /// The counters so far.
    pub fn counters(&self) -> LineCounters {
        self.counters
    }

    /// Feeds bytes as they came off the line (any split).
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                CR | LF => self.end_line(),
                _ if self.discarding => self.counters.dropped_bytes += 1,
                // Control bytes (TAB included: scanners never send one inside a code) and DEL.
                0x00..=0x1F | 0x7F => self.counters.dropped_bytes += 1,
                _ if self.line.len() >= MAX_LINE => {
                    self.discarding = true;
                    self.counters.overlong_lines += 1;
                    self.counters.dropped_bytes += self.line.len() as u64 + 1;
                    self.line.clear();
                }
                _ => self.line.push(b),
            }
        }
    }

    /// The next complete text, oldest first.
    pub fn next_line(&mut self) -> Option<String> {
        self.ready.pop_front()
    }

    /// How many bytes of an unfinished line are held.
    pub fn pending(&self) -> usize {
        self.line.len()
    }

    fn end_line(&mut self) {
        if self.discarding {
            self.discarding = false;
            return;
        }
        if self.line.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.line);
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.counters.lines += 1;
                self.ready.push_back(text);
            }
            Err(e) => self.counters.dropped_bytes += e.as_bytes().len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(d: &mut LineDecoder) -> Vec<String> {
        std::iter::from_fn(|| d.next_line()).collect()
    }

    #[test]
    fn a_text_ended_by_cr_crlf_or_lf_is_one_line() {
        let mut d = LineDecoder::new();
        // "GHP1.AB" CR | "x" CR LF | "y" LF
        d.push(b"GHP1.AB\rx\r\ny\n");
        assert_eq!(lines(&mut d), ["GHP1.AB", "x", "y"]);
        assert_eq!(d.counters().lines, 3);
        assert_eq!(d.counters().dropped_bytes, 0);
    }

    #[test]
    fn a_line_split_across_reads_and_a_crlf_split_between_reads_give_one_line() {
        let mut d = LineDecoder::new();
        d.push(b"GHP1.");
        assert_eq!(d.next_line(), None);
        assert_eq!(d.pending(), 5);
        d.push(b"ABC\r");
        assert_eq!(lines(&mut d), ["GHP1.ABC"]);
        // The LF of that CRLF comes with the next read: no empty line.
        d.push(b"\nnext\r");
        d.push(b"\n");
        assert_eq!(lines(&mut d), ["next"]);
    }

    #[test]
    fn control_bytes_are_dropped_and_counted_and_the_line_survives() {
        let mut d = LineDecoder::new();
        d.push(b"\x00\x1bGHP1\x00.A\x7f\r\n");
        assert_eq!(lines(&mut d), ["GHP1.A"]);
        assert_eq!(d.counters().dropped_bytes, 4);
    }

    #[test]
    fn a_line_that_is_not_utf8_is_dropped_and_counted() {
        let mut d = LineDecoder::new();
        d.push(b"\xff\xfeab\r\nok\r\n");
        assert_eq!(lines(&mut d), ["ok"]);
        assert_eq!(d.counters().dropped_bytes, 4);
        // UTF-8 text is kept (a plate in a code).
        d.push("京A12345\r".as_bytes());
        assert_eq!(lines(&mut d), ["京A12345"]);
    }

    #[test]
    fn an_overlong_line_is_dropped_whole_and_the_next_line_is_read() {
        let mut d = LineDecoder::new();
        d.push(&vec![b'A'; MAX_LINE]);
        d.push(b"BBBB");
        d.push(b"CC\r\nGHP1.ok\r\n");
        assert_eq!(lines(&mut d), ["GHP1.ok"]);
        assert_eq!(d.counters().overlong_lines, 1);
        assert_eq!(d.counters().dropped_bytes, (MAX_LINE + 6) as u64);
        // Exactly MAX_LINE is kept.
        d.push(&vec![b'A'; MAX_LINE]);
        d.push(b"\r");
        assert_eq!(lines(&mut d)[0].len(), MAX_LINE);
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic_or_grow_the_line_past_the_bound(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..700), 0..8)
        ) {
            let mut d = LineDecoder::new();
            for c in &chunks {
                d.push(c);
                prop_assert!(d.pending() <= MAX_LINE);
                while let Some(line) = d.next_line() {
                    prop_assert!(!line.is_empty() && line.len() <= MAX_LINE);
                    prop_assert!(!line.bytes().any(|b| b < 0x20 || b == 0x7f));
                }
            }
        }

        #[test]
        fn printable_texts_come_out_as_sent_whatever_the_split(
            texts in proptest::collection::vec("[!-~]{1,80}", 1..5),
            crlf in any::<bool>(),
            split in 0usize..400,
        ) {
            let end = if crlf { "\r\n" } else { "\r" };
            let bytes: Vec<u8> = texts.iter().flat_map(|t| format!("{t}{end}").into_bytes()).collect();
            let at = split.min(bytes.len());
            let mut d = LineDecoder::new();
            d.push(&bytes[..at]);
            d.push(&bytes[at..]);
            prop_assert_eq!(lines(&mut d), texts);
        }
    }
}
