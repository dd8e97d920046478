//! The fuzz corpus, replayed: every input committed under `fuzz/corpus/<target>/` (seeds and
//! what fuzzing kept) runs through the same check as the fuzz target of that name
//! (`fuzz/checks/<target>.rs`), so a finding that was fixed stays fixed, on the stable
//! toolchain, in seconds. Fuzzing itself (`cargo fuzz run`, nightly) is by hand; see README.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

#[path = "../../fuzz/checks/bulk_import.rs"]
mod bulk_import;
#[path = "../../fuzz/checks/camera_push.rs"]
mod camera_push;
#[path = "../../fuzz/checks/led_frames.rs"]
mod led_frames;
#[path = "../../fuzz/checks/modbus_frames.rs"]
mod modbus_frames;
#[path = "../../fuzz/checks/modbus_link.rs"]
mod modbus_link;
#[path = "../../fuzz/checks/snapshot_stream.rs"]
mod snapshot_stream;
#[path = "../../fuzz/checks/uhf_decoder.rs"]
mod uhf_decoder;

use firmware_protocols::uhf::{HostFrame, ReaderFrame};

/// Runs `check` on every input of `target`'s corpus; fails naming each input that panics.
/// An empty or missing corpus fails too: a replay of nothing proves nothing.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable corpus entry").path())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no input", dir.display());
    let mut findings = Vec::new();
    for input in &inputs {
        let data = std::fs::read(input).expect("a readable corpus input");
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            findings.push(input.display().to_string());
        }
    }
    assert!(
        findings.is_empty(),
        "{target}: {} of {} inputs fail their check: {findings:?}",
        findings.len(),
        inputs.len()
    );
}

#[test]
fn every_modbus_frames_corpus_input_decodes_and_encodes_back_to_its_own_bytes() {
    replay("modbus_frames", modbus_frames::check);
}

#[test]
fn every_modbus_link_corpus_input_gives_the_answer_its_reply_frame_says() {
    replay("modbus_link", modbus_link::check);
}

#[test]
fn every_snapshot_stream_corpus_input_reads_the_same_in_any_chunks() {
    replay("snapshot_stream", snapshot_stream::check);
}

#[test]
fn every_camera_push_corpus_input_is_a_read_a_heartbeat_or_a_refusal_within_the_drivers_limits() {
    replay("camera_push", camera_push::check);
}

#[test]
fn every_bulk_import_corpus_input_is_read_or_refused_without_a_panic() {
    replay("bulk_import", bulk_import::check);
}

#[test]
fn every_uhf_reader_frames_corpus_input_keeps_the_decoder_accounting_exact() {
    replay("uhf_reader_frames", uhf_decoder::check::<ReaderFrame>);
}

#[test]
fn every_uhf_host_commands_corpus_input_keeps_the_decoder_accounting_exact() {
    replay("uhf_host_commands", uhf_decoder::check::<HostFrame>);
}

#[test]
fn every_led_frames_corpus_input_keeps_the_screen_decoder_accounting_exact() {
    replay("led_frames", led_frames::check);
}
