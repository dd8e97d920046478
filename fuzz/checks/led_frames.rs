//! Check: arbitrary bytes, in chunks the input chooses, into the LED lane screen's decoder (the
//! simulator's side of the screen link). It may not panic, every byte must end up in a decoded
//! frame, be counted as dropped, or still be buffered (then dropped by `flush_partial`), and
//! every decoded frame must encode back to a frame that decodes to itself.
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use firmware_protocols::led::{CRC_LEN, Decoder, HEADER_LEN};

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    // The first byte picks the chunk size, so the fuzzer explores frames split across pushes.
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::new();
    let mut framed = 0u64;
    for piece in data.chunks(chunk) {
        decoder.push(piece);
        while let Some(frame) = decoder.next_frame() {
            let bytes = frame.to_bytes();
            assert_eq!(bytes.len(), HEADER_LEN + frame.data().len() + CRC_LEN);
            let mut again = Decoder::new();
            again.push(&bytes);
            assert_eq!(again.next_frame().as_ref(), Some(&frame));
            framed += bytes.len() as u64;
        }
    }
    decoder.flush_partial();
    assert_eq!(decoder.buffered(), 0);
    assert_eq!(framed + decoder.dropped_bytes(), data.len() as u64);
}
