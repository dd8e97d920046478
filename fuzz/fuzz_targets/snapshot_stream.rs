//! Fuzz target `snapshot_stream`: the check in `fuzz/checks/snapshot_stream.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/snapshot_stream.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
