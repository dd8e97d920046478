//! Check: arbitrary bytes, in arbitrary chunks, into a UHF 0xA0 decoder — of reader replies
//! (`F = ReaderFrame`, what the gate controller decodes: target `uhf_reader_frames`) or of
//! host commands (`F = HostFrame`, what the reader emulator decodes: `uhf_host_commands`).
//!
//! It checks that the decoder never panics, that every byte pushed is consumed, dropped or still
//! buffered, that at most one partial frame stays buffered after draining, and that every decoded
//! frame re-encodes to exactly the bytes it came from. It never does IO.
//!
//! Shared by both fuzz targets and the corpus replay in `tests/gate/`.

use std::fmt::Debug;

use firmware_protocols::uhf::{Decoder, MAX_FRAME_LEN, RawFrame, UhfFrame};

/// Runs one input; panics on a finding.
pub(crate) fn check<F: UhfFrame + PartialEq + Debug>(data: &[u8]) {
    // The first two bytes choose the chunk sizes (1–32 bytes, alternating), the rest is the stream.
    let (sizes, stream) = match data {
        [a, b, rest @ ..] => ([usize::from(a % 32) + 1, usize::from(b % 32) + 1], rest),
        _ => return,
    };
    let mut typed = Decoder::<F>::new();
    let mut raw = firmware_protocols::uhf::Decoder::<RawFrame>::new();
    let mut pushed = 0u64;
    let mut offset = 0;
    let mut turn = 0;
    while offset < stream.len() {
        let end = (offset + sizes[turn % 2]).min(stream.len());
        let chunk = &stream[offset..end];
        offset = end;
        turn += 1;
        typed.push(chunk);
        raw.push(chunk);
        pushed += chunk.len() as u64;
        while let Some(frame) = typed.next_frame() {
            let original = raw.next_frame().expect("both decoders share one framer");
            let bytes = frame.to_bytes().expect("a decoded frame always re-encodes");
            assert_eq!(bytes, original.to_bytes().expect("raw frames re-encode"));
            let mut again = Decoder::<F>::new();
            again.push(&bytes);
            assert_eq!(again.next_frame().as_ref(), Some(&frame));
        }
        assert!(raw.next_frame().is_none(), "both decoders share one framer");
        assert_eq!(
            typed.dropped_bytes() + typed.consumed_bytes() + typed.buffered_len() as u64,
            pushed
        );
        assert!(typed.buffered_len() < MAX_FRAME_LEN);
    }
    // At the end of the stream, treat what is left as stale: complete frames still come out,
    // the rest is dropped, and nothing stays buffered.
    while typed.buffered_len() > 0 {
        typed.discard_partial();
        while let Some(frame) = typed.next_frame() {
            let _: F = frame;
        }
    }
    assert_eq!(typed.dropped_bytes() + typed.consumed_bytes(), pushed);
}
