//! Ctrl-C or systemd's SIGTERM stops the real binary cleanly at any moment — including the
//! instant it reports itself running, when a signal falling between two waits must not be lost
//! with the controller running on.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gatehouse::serial::pty::PtyDevice;
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts `gatehouse <args>`, waits for `running` on stderr, sends `signal` at once and returns
/// the exit status (panics if it has not stopped within ten seconds).
async fn stop_as_soon_as_running(args: &[&str], running: &str, signal: Signal) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("GATEHOUSE_DATABASE_URL")
        .env("GATEHOUSE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.contains(running) {
                return true;
            }
        }
        false
    })
    .await
    .expect("the program reports itself running");
    assert!(seen, "the program stopped before it reported {running:?}");
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{args:?} still runs ten seconds after {signal}"))
        .unwrap();
    assert!(status.success(), "{args:?} after {signal}: {status}");
}

fn gate_toml(dir: &Path, reader: &Path, io: &Path) -> String {
    format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
         [lane.reader]\nport = \"{}\"\n[lane.io]\nport = \"{}\"\n",
        dir.join("data").display(),
        reader.display(),
        io.display()
    )
}

#[tokio::test]
async fn the_gate_controller_stops_cleanly_on_a_signal_sent_the_moment_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody answers on the device lines: stopping must not wait for them either.
    let reader = PtyDevice::create(Some(&dir.path().join("reader"))).unwrap();
    let io = PtyDevice::create(Some(&dir.path().join("io"))).unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, gate_toml(dir.path(), reader.path(), io.path())).unwrap();
    let config = config.to_str().unwrap();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        stop_as_soon_as_running(
            &["gate", "run", "--config", config],
            "gate controller running",
            signal,
        )
        .await;
    }
}

#[tokio::test]
async fn the_central_server_stops_cleanly_on_a_signal_sent_the_moment_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
            dir.path().join("central").display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGINT] {
        stop_as_soon_as_running(
            &["server", "run", "--config", config],
            "central server running",
            signal,
        )
        .await;
    }
}
