//! What keeps a tag's OPEN fast at the shipped poll settings, over real pseudo-terminals with the
//! simulators: while a vehicle waits on the loop for its read, the I/O task starts no input poll
//! (`[lane.io] poll_pause_ms`), so the OPEN never waits for a poll's answer on the half-duplex
//! line — and the pause is bounded: polling resumes after it even if no read comes.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_polls_pause_while_a_vehicle_waits_for_its_read_and_resume_after_the_pause() {
    // Polls every 20 ms; the pause is the default 200 ms.
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let lane = gate.lane("entry");
    let before = lane.io.requests_executed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = lane.io.requests_executed() - before;
    assert!(
        idle >= 4,
        "an idle lane polls every 20 ms: {idle} polls in 200 ms"
    );

    gate.arrive("entry").await;
    let seen = lane.io.requests_executed();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let paused = lane.io.requests_executed() - seen;
    assert_eq!(
        paused, 0,
        "no poll may hold the line while the vehicle waits for its read"
    );

    // No read came: the inputs are still read, every poll_pause_ms, and the lane sees the loops.
    tokio::time::sleep(Duration::from_millis(480)).await;
    let slow = lane.io.requests_executed() - seen;
    assert!(
        (1..=4).contains(&slow),
        "polls every 200 ms while the vehicle waits: {slow} in 600 ms"
    );
    lane.set_presence(false);
    gate.wait_lane_state("entry", "idle").await;

    // And a vehicle that is read opens as before.
    let tag = epc(3);
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &tag))
        .await;
    let (_, decision) = gate.present("entry", &tag).await;
    assert!(decision.granted, "{decision:?}");
    lane.wait_arm(gatehouse::sim::barrier::ArmState::Open).await;
}

/// The controller's lane thread `lane-<id>` in process `pid`: its thread id.
fn lane_thread(pid: u32, lane: &str) -> Option<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    tasks.flatten().find_map(|t| {
        let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
        (comm.trim() == format!("lane-{lane}"))
            .then(|| t.file_name().to_string_lossy().into_owned())
    })
}

/// (scheduling policy, real-time priority) of a thread, from `/proc/<pid>/task/<tid>/stat`
/// (fields 41 and 40; 1 is SCHED_FIFO).
fn policy(pid: u32, tid: &str) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses: field 3 is the first.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (
        fields[41 - 3].parse().unwrap(),
        fields[40 - 3].parse().unwrap(),
    )
}

fn status_field(path: &str, key: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// Runs the real controller with `[realtime]` on, optionally under `setpriv` dropping the
/// capabilities it needs; returns its pid, the lane thread's id and the log so far (the child
/// is killed on drop).
async fn run_realtime_controller(
    dir: &std::path::Path,
    drop_caps: bool,
) -> (tokio::process::Child, u32, String, String) {
    use tokio::io::AsyncBufReadExt;
    let reader = gatehouse::serial::pty::PtyDevice::create(Some(&dir.join("reader"))).unwrap();
    let io = gatehouse::serial::pty::PtyDevice::create(Some(&dir.join("io"))).unwrap();
    let config = dir.join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[gate]\nid = 1\ndata_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[realtime]\nlane_priority = 10\nlock_memory = true\n\
             lane_cpus = [0]\n[[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
             [lane.reader]\nport = \"{}\"\n[lane.io]\nport = \"{}\"\n",
            dir.join("data").display(),
            reader.path().display(),
            io.path().display()
        ),
    )
    .unwrap();
    let mut command = if drop_caps {
        let mut c = tokio::process::Command::new("setpriv");
        c.args([
            "--bounding-set",
            "-sys_nice,-ipc_lock",
            "--inh-caps",
            "-sys_nice,-ipc_lock",
            env!("CARGO_BIN_EXE_gatehouse"),
        ]);
        c
    } else {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
    };
    let mut child = command
        .args(["gate", "run", "--config"])
        .arg(&config)
        .env("GATEHOUSE_LOG", "info")
        .env("GATEHOUSE_LOG_FORMAT", "text")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start gatehouse gate run");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let read = async {
        // Both: the controller is running, and the lane thread has said what it applied.
        while !(log.contains("gate controller running") && log.contains("SCHED_FIFO")) {
            let mut text = String::new();
            if stderr.read_line(&mut text).await.unwrap() == 0 {
                panic!("the controller stopped: {log}");
            }
            log += &text;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("the controller did not report its lane: {log}"));
    // Keep the ptys open as long as the child runs: leak them into the test's lifetime.
    std::mem::forget((reader, io));
    let pid = child.id().expect("running");
    let tid = lane_thread(pid, "entry").expect("a lane-entry thread");
    (child, pid, tid, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realtime_options_are_applied_to_the_lane_threads_at_start_or_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    // With the privileges (this test runs as root, as CI does): applied.
    let (child, pid, tid, log) = run_realtime_controller(&dir.path().join("a"), false).await;
    assert_eq!(policy(pid, &tid), (1, 10), "SCHED_FIFO at 10: {log}");
    assert_eq!(
        status_field(
            &format!("/proc/{pid}/task/{tid}/status"),
            "Cpus_allowed_list:"
        ),
        "0"
    );
    let locked = status_field(&format!("/proc/{pid}/status"), "VmLck:");
    assert!(
        locked.trim_end_matches(" kB").parse::<u64>().unwrap() > 0,
        "memory locked: {locked}"
    );
    assert!(log.contains("realtime: memory locked"), "{log}");
    drop(child);

    // Without CAP_SYS_NICE and CAP_IPC_LOCK: the lane runs on the normal scheduler, and says so.
    let (child, pid, tid, log) = run_realtime_controller(&dir.path().join("b"), true).await;
    assert_eq!(policy(pid, &tid).0, 0, "SCHED_OTHER: {log}");
    assert!(log.contains("SCHED_FIFO refused"), "{log}");
    // Pinning needs no privilege.
    assert_eq!(
        status_field(
            &format!("/proc/{pid}/task/{tid}/status"),
            "Cpus_allowed_list:"
        ),
        "0"
    );
    drop(child);
}
