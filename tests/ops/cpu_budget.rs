//! CPU budget: a gate controller and the demo stay under a stated share of one core while busy
//! processes compete for the cores.
//!
//! Why: a lane thread that spins (a deadline handed back already due, a loop that retries at
//! once) burns a core exactly when the cabinet is busy, and makes it busier; with the machine
//! loaded the demo's lane threads once took 40–130 % of a core. What is measured is the process's
//! CPU time (`utime + stime` from `/proc/<pid>/stat`) over a bounded window, not wall time, while
//! [`BUSY_PROCESSES`] spinning shell loops (which stop by themselves when the test process is
//! gone) keep the cores busy. On a machine loaded by others a spinning thread may get less than
//! the limit (a fair share of two cores among twenty runnable threads is 10 %), so the process
//! must also stay under what one busy loop got in the same window.
//!
//! Figures are noisy: the machine is shared with other builds; the limits below say what was
//! measured, more than once, and leave a margin.
//!
//! The gate is the real `gatehouse gate run` with three lanes on simulators served over real
//! pseudo-terminals, in the situations that spun: one lane idle, one held open by a fire alarm
//! long past its arm timeout, and one whose I/O module stopped answering while its close was
//! pending. The demo is the real `gatehouse demo` with its traffic.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane::{SimLane, SimLaneConfig};

/// Spinning processes competing for the machine's two cores.
const BUSY_PROCESSES: usize = 2;
/// How long CPU time is counted.
const WINDOW: Duration = Duration::from_secs(10);
/// The gate's limit, in per cent of one core. Measured with the fix: 3.4–3.9 % (load 16–25 from
/// other builds); before it: 13.6–18.3 % on the same loaded machine, when a busy loop got 6 %
/// (each spinning lane thread takes a busy loop's share; on a quiet machine that is most of a
/// core).
const GATE_LIMIT_PERCENT: f64 = 12.0;
/// The demo's limit, in per cent of one core (two gates, three lanes, the centre, the simulators
/// and their traffic in one process). Measured: 6.5–11.1 % with busy processes on the loaded
/// machine, 14–17 % on a quieter one without them.
const DEMO_LIMIT_PERCENT: f64 = 35.0;

/// Only one budget is measured at a time: two would compete with each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Busy shell loops, one process each, that stop by themselves once this test process has gone
/// (even killed), and are killed when dropped.
struct Busy(Vec<Child>);

impl Busy {
    fn start() -> Busy {
        Busy(
            (0..BUSY_PROCESSES)
                .map(|_| {
                    // `kill` and `:` are shell builtins: the loop only spins, it forks nothing.
                    Command::new("sh")
                        .args(["-c", "while kill -0 $PPID 2>/dev/null; do :; done"])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("a busy loop starts")
                })
                .collect(),
        )
    }

    /// The busy loops' CPU time so far, in clock ticks.
    fn cpu_ticks(&self) -> Vec<u64> {
        self.0.iter().map(|c| cpu_ticks(c.id())).collect()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed when the test ends, whatever happens.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The process's CPU time so far (user + system, all threads), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// CPU shares over one window, in per cent of one core.
#[derive(Debug)]
struct Shares {
    /// The measured process.
    process: f64,
    /// The least any busy loop got: what a thread that never sleeps gets on this machine now.
    busy_loop: f64,
}

/// The share of one core `pid` used over [`WINDOW`] with busy processes running, and the share
/// one busy loop got meanwhile.
async fn measure(pid: u32) -> Shares {
    let busy = Busy::start();
    // Let the competition start before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ticks, busy_ticks, started) = (cpu_ticks(pid), busy.cpu_ticks(), Instant::now());
    tokio::time::sleep(WINDOW).await;
    let (ticks_after, busy_after) = (cpu_ticks(pid), busy.cpu_ticks());
    let per_cent = |t: u64| 100.0 * t as f64 / clock_ticks() / started.elapsed().as_secs_f64();
    Shares {
        process: per_cent(ticks_after - ticks),
        busy_loop: busy_after
            .iter()
            .zip(&busy_ticks)
            .map(|(a, b)| per_cent(a - b))
            .fold(f64::INFINITY, f64::min),
    }
}

/// Asserts `shares` are within `limit` per cent of a core and, with `under_a_busy_loop`, under
/// one busy loop's share: on a machine loaded by others a spinning thread gets no more than a
/// busy loop does, which may be under the limit; it still gets as much as one. (Not for the
/// demo, which does real work on many threads: under heavy load it needs about what a loop gets.)
fn assert_within(what: &str, shares: &Shares, limit: f64, under_a_busy_loop: bool) {
    eprintln!(
        "{what}, {BUSY_PROCESSES} busy processes: {:.1} % of one core over {WINDOW:?} \
         (a busy loop got {:.1} %)",
        shares.process, shares.busy_loop
    );
    assert!(
        shares.process < limit,
        "{what} used {:.1} % of a core (limit {limit} %)",
        shares.process
    );
    assert!(
        !under_a_busy_loop || shares.process < shares.busy_loop,
        "{what} used {:.1} % of a core, more than a busy loop's {:.1} %: something spins",
        shares.process,
        shares.busy_loop
    );
}

/// Waits until `pred` holds, up to `limit`.
async fn wait_until(what: &str, limit: Duration, mut pred: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !pred() {
        assert!(Instant::now() < until, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `output` on a thread until a line contains `running`; the rest is drained.
fn wait_for_line(output: impl std::io::Read + Send + 'static, running: &str, limit: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let running = running.to_string();
    std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if !told && line.contains(&running) {
                told = true;
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the program did not report itself running in {limit:?}"));
}

fn lane_toml(id: &str, direction: &str, dir: &Path, extra: &str) -> String {
    let antennas = if direction == "two_way" {
        "antennas = { 0 = \"entry\", 1 = \"exit\" }\n"
    } else {
        ""
    };
    format!(
        "\n[[lane]]\nid = \"{id}\"\ndirection = \"{direction}\"\n{extra}\
         [lane.reader]\nport = \"{reader}\"\n{antennas}\
         [lane.io]\nport = \"{io}\"\n",
        reader = dir.join(format!("{id}-reader")).display(),
        io = dir.join(format!("{id}-io")).display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_with_three_lanes_through_a_fire_alarm_and_a_silent_io_module_stays_under_its_cpu_budget_on_a_busy_machine()
 {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = |id: &str| {
        let mut config = SimLaneConfig::new(
            dir.path().join(format!("{id}-reader")),
            dir.path().join(format!("{id}-io")),
        );
        // An unplugged port stays away for the whole test.
        config.replug_delay = Duration::from_secs(120);
        SimLane::start(config).expect("the simulated lane starts")
    };
    let (quiet, fire, silent) = (sim("entry"), sim("exit"), sim("both"));
    let mut toml = format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
        dir.path().join("data").display()
    );
    toml += &lane_toml("entry", "entry", dir.path(), "");
    // Short arm timeout and long close delay: the fire lane is past its timeout and the silent
    // lane's close is still pending when counting starts.
    toml += &lane_toml("exit", "exit", dir.path(), "arm_timeout_ms = 2000\n");
    toml += &lane_toml("both", "two_way", dir.path(), "close_delay_ms = 3000\n");
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, toml).unwrap();
    let mut gate = Killed(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["gate", "run", "--config"])
            .arg(&config)
            .env_remove("DATABASE_URL")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env("GATEHOUSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gatehouse binary starts"),
    );
    let stderr = gate.0.stderr.take().expect("stderr piped");
    wait_for_line(stderr, "gate controller running", Duration::from_secs(60));
    let polls = |lane: &SimLane| lane.io().requests_executed();
    for lane in [&quiet, &fire, &silent] {
        let from = polls(lane);
        wait_until("every I/O module polled", Duration::from_secs(30), || {
            polls(lane) > from + 3
        })
        .await;
    }

    // A fire alarm holds two lanes open (evacuation).
    fire.io().set_fire(true);
    silent.io().set_fire(true);
    for lane in [&fire, &silent] {
        wait_until("the arm is up", Duration::from_secs(30), || {
            lane.io().arm() == ArmState::Open
        })
        .await;
    }
    // On one it ends: once the controller has read that (two polls later) its close is pending,
    // and then its I/O module stops answering (a cable pulled in the cabinet).
    silent.io().set_fire(false);
    let from = polls(&silent);
    wait_until("the end of the alarm read", Duration::from_secs(10), || {
        polls(&silent) > from + 2
    })
    .await;
    silent.io().set_silent(true);
    // Past the fire lane's arm timeout and the silent lane's close delay.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        silent.io().arm(),
        ArmState::Open,
        "the silent lane's arm stays as it is"
    );

    let shares = measure(gate.0.id()).await;
    assert_within(
        "the gate (3 lanes: idle, fire, I/O silent)",
        &shares,
        GATE_LIMIT_PERCENT,
        true,
    );
    drop(gate);
    for lane in [quiet, fire, silent] {
        lane.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_with_its_traffic_stays_under_its_cpu_budget_on_a_busy_machine() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Killed(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--every-ms",
                "800",
                "--data-dir",
            ])
            .arg(dir.path().join("demo"))
            .env_remove("DATABASE_URL")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env("GATEHOUSE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the gatehouse binary starts"),
    );
    // Seeding the demo campus in a debug build on a busy machine takes a while; the banner
    // names the centre once everything runs, and the traffic starts with it.
    let stdout = demo.0.stdout.take().expect("stdout piped");
    wait_for_line(stdout, "central: http://", Duration::from_secs(120));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shares = measure(demo.0.id()).await;
    assert_within(
        "the demo with its traffic",
        &shares,
        DEMO_LIMIT_PERCENT,
        false,
    );
}
