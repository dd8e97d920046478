//! Fuzz target `uhf_host_commands`: the check in `fuzz/checks/uhf_host_commands.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/uhf_host_commands.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
