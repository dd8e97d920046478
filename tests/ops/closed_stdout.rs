//! A closed standard output ends a command quietly: `gatehouse gate status | head -1` and the
//! like exit 0 with no panic message, for every command that prints. The reading end of the
//! pipe is closed before the command writes, so its first write meets EPIPE.

use std::path::Path;
use std::process::{Command, Stdio};

use gatehouse::gate::journal::Journal;
use gatehouse::wire::journal::{BarrierAction, EventBody};

/// Runs the binary with its standard output a pipe nobody reads; returns (success, stderr).
fn run_into_closed_pipe(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gatehouse binary starts");
    // Close our (the only) reading end at once.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_quiet(args: &[&str]) {
    let (status, stderr) = run_into_closed_pipe(args);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{args:?} ends quietly on a closed stdout, stderr: {stderr}"
    );
    assert!(status.success(), "{args:?} exits 0, got {status}: {stderr}");
}

fn gate_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("gate.toml");
    std::fs::write(
        &path,
        format!(
            "[gate]\nid = 1\nname = \"北门\"\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
             [[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
             [lane.reader]\nport = \"/dev/null\"\n[lane.io]\nport = \"/dev/null\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_printing_command_ends_quietly_when_its_standard_output_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = gate_config(dir.path());
    // A journal with more events than a pipe buffer holds, so `gate events` keeps writing.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let journal = Journal::open(&dir.path().join("data/journal.db"), 100_000)
        .await
        .unwrap();
    for _ in 0..20 {
        let batch: Vec<EventBody> = (0..100)
            .map(|_| EventBody::Barrier {
                action: BarrierAction::Open,
                cause: "guard".into(),
            })
            .collect();
        journal
            .append_batch(chrono::Utc::now(), "entry", &batch)
            .await
            .unwrap();
    }
    drop(journal);
    let config = config.to_str().unwrap();
    let pki = dir.path().join("pki");
    let pki = pki.to_str().unwrap();
    tokio::task::block_in_place(|| {
        assert_quiet(&["--help"]);
        assert_quiet(&["gate", "--help"]);
        assert_quiet(&["--version"]);
        assert_quiet(&["gate", "status", "--config", config]);
        assert_quiet(&["gate", "events", "--config", config, "--limit", "2000"]);
        assert_quiet(&[
            "gate", "events", "--config", config, "--json", "--limit", "2000",
        ]);
        assert_quiet(&["pki", "init", "--dir", pki, "--site", "测试大学"]);
        assert_quiet(&["pki", "issue-gate", "7", "--dir", pki]);
    });
}
