//! Fuzz target `uhf_reader_frames`: the check in `fuzz/checks/uhf_decoder.rs` with `ReaderFrame` (the corpus
//! replay in `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/uhf_decoder.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check::<firmware_protocols::uhf::ReaderFrame>(data));
