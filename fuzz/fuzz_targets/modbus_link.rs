//! Fuzz target `modbus_link`: the check in `fuzz/checks/modbus_link.rs` (the corpus replay in
//! `tests/gate/fuzz_corpus.rs` runs the same check on every committed input).

#![no_main]

#[path = "../checks/modbus_link.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::check(data));
