//! Fuzz target `camera_push`: the check in `fuzz/checks/camera_push.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/camera_push.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
