//! Fuzz target `led_frames`: the check in `fuzz/checks/led_frames.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/led_frames.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
