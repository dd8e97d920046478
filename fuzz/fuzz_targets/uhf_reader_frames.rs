//! Fuzz target `uhf_reader_frames`: the check in `fuzz/checks/uhf_reader_frames.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/uhf_reader_frames.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
