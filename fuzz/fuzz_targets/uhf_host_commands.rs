//! Fuzz target `uhf_host_commands`: the check in `fuzz/checks/uhf_decoder.rs` with `HostFrame` (the corpus
//! replay in `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/uhf_decoder.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check::<firmware_protocols::uhf::HostFrame>(data));
