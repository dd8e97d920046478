//! Fuzz target `modbus_frames`: the check in `fuzz/checks/modbus_frames.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/modbus_frames.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
