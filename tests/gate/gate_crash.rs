//! Crash safety of the gate controller: the real `gatehouse gate run` binary is killed with
//! SIGKILL during simulated traffic, again and again. Afterwards the journal's sequence numbers
//! must be contiguous with nothing duplicated, and every OPEN the barrier actually received must
//! be matched, one to one and in order, to an OPEN journalled before it in one commit with the
//! granted decision for the tag that was in the field (the journal commits before the command).
//!
//! The window that matters — from the commit of a decision and its OPEN to the OPEN on the
//! wire — is microseconds wide, and kills at random moments almost never land in it. So each
//! run is killed one of three ways, at random:
//! - at a random moment (250–1150 ms after start);
//! - by the controller itself, at its fault point right after the OPEN's commit and before the
//!   hand-off to the I/O task (`GATEHOUSE_FAULT=kill_after_open_commit:1`, debug builds only):
//!   the OPEN must be journalled and never reach the barrier;
//! - by the I/O simulator, the instant the OPEN write arrives and before it answers: the OPEN
//!   must already be journalled. Were the commit made after the send (or on another thread
//!   that lags it), this is where the test would fail.
//!
//! The test counts the kills that landed in the window (checked against the journal and the
//! module's coil log, not taken on trust) and requires some of each kind.
//!
//! The simulated reader and lane I/O module run in this test process on real pseudo-terminals,
//! so they outlive every controller instance, exactly as devices on a gate outlive a reboot.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use firmware_protocols::lane_io::LaneCoil;
use gatehouse::gate::journal::Journal;
use gatehouse::gate::store::Store;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane_io::{LaneIoModule, LaneIoModuleConfig};
use gatehouse::sim::uhf_reader::{FieldTag, ReaderControl};
use gatehouse::wire::journal::{BarrierAction, EventBody};
use gatehouse::wire::rows::{CredentialRecord, PermitRecord, Update, VehicleRecord};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

const KILLS: usize = 50;
/// How long a run that waits for its OPEN may last before the test kills it anyway.
const RUN_LIMIT: Duration = Duration::from_secs(4);
const TAGS: u32 = 20;

fn epc(n: u32) -> Vec<u8> {
    let mut epc = vec![0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0, 0, 0, 0];
    epc[8..].copy_from_slice(&n.to_be_bytes());
    epc
}

/// A tiny deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

async fn seed_permits(data_dir: &Path) {
    let store = Store::open(&data_dir.join("store.db")).await.unwrap();
    let mut update = Update {
        data_version: 1,
        ..Update::default()
    };
    for n in 1..=TAGS {
        update.permits.push(PermitRecord {
            id: n,
            category: "staff".into(),
            holder_id: n,
            holder_name: format!("教职工{n}"),
            department: "保卫处".into(),
            status: "active".into(),
            status_reason: String::new(),
            valid_from: 0,
            valid_until: u32::MAX,
            gates: "all".into(),
            schedule: String::new(),
            single_use: false,
            max_inside: None,
            version: 1,
        });
        update.vehicles.push(VehicleRecord {
            id: n,
            plate: format!("京A{:05}", 10000 + n),
            colour: "blue".into(),
            permit_ids: vec![n],
        });
        update.credentials.push(CredentialRecord {
            epc: hex::encode_upper(epc(n)),
            tid: None,
            vehicle_id: n,
        });
    }
    store.apply(&update).await.unwrap();
}

fn write_config(dir: &Path, reader: &Path, io: &Path) -> std::path::PathBuf {
    let path = dir.join("gate.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[gate]
id = 1
data_dir = "{data}"
anti_passback = "off"
[journal]
capacity = 1000000
[[lane]]
id = "entry"
direction = "entry"
close_delay_ms = 150
arm_timeout_ms = 3000
[lane.reader]
port = "{reader}"
tag_hold_ms = 400
timeout_ms = 300
[lane.io]
port = "{io}"
baud = 19200
poll_ms = 20
timeout_ms = 200
[lane.io.map]
pulse_ms = 100
"#,
            data = dir.join("data").display(),
            reader = reader.display(),
            io = io.display(),
        ),
    )
    .unwrap();
    path
}

fn spawn_controller(config: &Path, log: &Path, fault: Option<&str>) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    if let Some(fault) = fault {
        command.env("GATEHOUSE_FAULT", fault);
    }
    command
        .args(["gate", "run", "--config"])
        .arg(config)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the gatehouse binary starts")
}

/// Which vehicle (tag number) was in the field when: (tag, put in, taken out).
type FieldLog = Arc<Mutex<Vec<(u32, Instant, Option<Instant>)>>>;

/// Drives vehicles through the lane until told to stop: tag into the field, onto the presence
/// loop, wait (briefly) for the arm, cross the safety loop, leave.
async fn traffic(
    reader: ReaderControl,
    io: LaneIoModule,
    field: FieldLog,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let mut vehicles = 0;
    let mut n = 0;
    while !*stop.borrow() {
        n = n % TAGS + 1;
        field.lock().unwrap().push((n, Instant::now(), None));
        reader.put_tag(FieldTag::new(epc(n), 0, -50)).unwrap();
        io.set_presence(true);
        let deadline = Instant::now() + Duration::from_millis(1200);
        while io.arm() != ArmState::Open && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        io.set_safety(true);
        tokio::time::sleep(Duration::from_millis(60)).await;
        io.set_presence(false);
        tokio::time::sleep(Duration::from_millis(60)).await;
        io.set_safety(false);
        reader.take_tag(&epc(n));
        field.lock().unwrap().last_mut().unwrap().2 = Some(Instant::now());
        // A gap longer than the close delay, so the arm comes down between vehicles.
        let deadline = Instant::now() + Duration::from_millis(800);
        while io.arm() != ArmState::Closed && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        vehicles += 1;
    }
    vehicles
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// The test kills the controller at a random moment.
    Random,
    /// The controller kills itself between the OPEN's commit and its hand-off to the I/O task.
    AfterCommit,
    /// The I/O simulator kills the controller the instant the OPEN arrives on the wire.
    AtWire,
}

/// OPEN writes that made the contact so far (a repeated write of a made contact, after an
/// answer timed out, is the same OPEN).
fn wire_opens(io: &LaneIoModule) -> Vec<Instant> {
    let mut made = false;
    let mut opens = Vec::new();
    for c in io.coil_log() {
        if c.coil != Some(LaneCoil::Open) || c.refused.is_some() {
            continue;
        }
        match c.on {
            Some(true) if !made => {
                made = true;
                opens.push(c.at);
            }
            Some(false) => made = false,
            _ => {}
        }
    }
    opens
}

/// The last journalled barrier command, read from the file the killed controller left.
fn last_barrier_event(journal_db: &Path) -> Option<(u64, EventBody)> {
    let conn = rusqlite::Connection::open(journal_db).unwrap();
    conn.query_row(
        "SELECT seq, body FROM events WHERE kind = 'barrier' ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
    )
    .ok()
    .map(|(seq, body)| (seq, serde_json::from_str(&body).unwrap()))
}

fn is_open(body: &EventBody) -> bool {
    matches!(
        body,
        EventBody::Barrier {
            action: BarrierAction::Open,
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_and_between_commit_and_send_loses_no_event_and_leaves_no_open_without_its_decision()
 {
    let dir = tempfile::tempdir().unwrap();
    let reader_link = dir.path().join("reader");
    let io_link = dir.path().join("io");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    seed_permits(&dir.path().join("data")).await;
    let config = write_config(dir.path(), &reader_link, &io_link);
    let journal_db = dir.path().join("data/journal.db");
    let log = dir.path().join("controller.log");

    let reader_dev = PtyDevice::create(Some(&reader_link)).unwrap();
    let io_dev = PtyDevice::create(Some(&io_link)).unwrap();
    // A controller killed with SIGKILL leaves the tty's exclusive flag set; free it as the
    // kernel frees a real adaptor whose user died.
    let releasers = [reader_dev.releaser().unwrap(), io_dev.releaser().unwrap()];
    let reader = ReaderControl::new();
    let io = LaneIoModule::new(LaneIoModuleConfig {
        travel: Duration::from_millis(150),
        ..LaneIoModuleConfig::default()
    })
    .unwrap();
    // The controller the simulator is to kill at its next OPEN (0: none).
    let kill_at_wire = Arc::new(AtomicI32::new(0));
    let killed_at_wire = Arc::new(AtomicU64::new(0));
    io.on_coil_write({
        let (pid, killed) = (kill_at_wire.clone(), killed_at_wire.clone());
        move |c| {
            if c.coil == Some(LaneCoil::Open) && c.on == Some(true) {
                let pid = pid.swap(0, Ordering::SeqCst);
                if pid != 0 {
                    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
                    killed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    // The devices are served for the whole test, whatever happens to the controller.
    let serve_reader = tokio::spawn({
        let reader = reader.clone();
        async move { reader.serve(reader_dev).await }
    });
    let serve_io = tokio::spawn({
        let io = io.clone();
        async move { io.serve(io_dev).await }
    });

    let base = (Instant::now(), Utc::now());
    let to_utc =
        |at: Instant| base.1 + chrono::Duration::from_std(at.duration_since(base.0)).unwrap();
    let field: FieldLog = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(traffic(reader.clone(), io.clone(), field.clone(), stop_rx));

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Lcg(seed);
    // The fault point is compiled into debug builds only.
    let fault_point = cfg!(debug_assertions);
    let mut runs = std::collections::BTreeMap::<&str, usize>::new();
    let (mut after_commit, mut at_wire) = (0, 0);
    for _ in 0..KILLS {
        let kind = match rng.next(3) {
            1 if fault_point => Kill::AfterCommit,
            2 => Kill::AtWire,
            _ => Kill::Random,
        };
        let opens_before = wire_opens(&io).len();
        let last_before = last_barrier_event(&journal_db).map(|(seq, _)| seq);
        let mut child = spawn_controller(
            &config,
            &log,
            (kind == Kill::AfterCommit).then_some("kill_after_open_commit:1"),
        );
        let pid = child.id() as i32;
        if kind == Kill::AtWire {
            kill_at_wire.store(pid, Ordering::SeqCst);
        }
        let limit = match kind {
            Kill::Random => Duration::from_millis(250 + rng.next(900)),
            _ => RUN_LIMIT,
        };
        let started = Instant::now();
        let mut died_by_itself = false;
        while started.elapsed() < limit {
            if child.try_wait().unwrap().is_some() {
                died_by_itself = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        kill_at_wire.store(0, Ordering::SeqCst);
        if !died_by_itself {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        child.wait().unwrap();
        for releaser in &releasers {
            releaser.release().unwrap();
        }
        // What this run left: did the kill land between the OPEN's commit and its send?
        let opens_after = wire_opens(&io).len();
        let last = last_barrier_event(&journal_db);
        let new_open_journalled = last
            .as_ref()
            .is_some_and(|(seq, body)| Some(*seq) != last_before && is_open(body));
        let landed = match kind {
            // The last thing it did was commit an OPEN, which never reached the barrier.
            Kill::AfterCommit => {
                died_by_itself && new_open_journalled && opens_after == opens_before
            }
            // Killed as its OPEN arrived (the only one of the run), already journalled.
            Kill::AtWire => died_by_itself && opens_after == opens_before + 1,
            // By chance: the last thing it did was commit an OPEN that never went out.
            Kill::Random => new_open_journalled && opens_after == opens_before,
        };
        if kind == Kill::AtWire && died_by_itself {
            assert!(
                new_open_journalled,
                "the OPEN that reached the barrier as the controller died was not journalled \
                 before it (last barrier event {last:?})\nthe controllers' log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let key = match (kind, landed) {
            (Kill::Random, false) => "random moment",
            (Kill::Random, true) => "random moment, by chance after an OPEN's commit",
            (Kill::AfterCommit, true) => "after the OPEN's commit, before its send",
            (Kill::AtWire, true) => "as the OPEN arrived on the wire",
            (Kill::AfterCommit | Kill::AtWire, false) => "waiting for an OPEN (killed by the test)",
        };
        *runs.entry(key).or_default() += 1;
        after_commit += usize::from(kind != Kill::AtWire && landed);
        at_wire += usize::from(kind == Kill::AtWire && landed);
    }
    stop_tx.send(true).unwrap();
    let vehicles = traffic.await.unwrap();
    serve_reader.abort();
    serve_io.abort();

    let journal = Journal::open(&journal_db, 1_000_000).await.unwrap();
    let events = journal.read_after(0, u32::MAX).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "sequence numbers are contiguous from 1, none repeated"
    );

    // Every journalled OPEN is one commit with the granted decision it carries out.
    let mut journal_opens: Vec<(DateTime<Utc>, String)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if !is_open(&e.body) {
            continue;
        }
        // The same commit: the events before it with the same time.
        let decision = events[..i]
            .iter()
            .rev()
            .take_while(|d| d.at == e.at)
            .find(|d| matches!(d.body, EventBody::Decision(_)));
        match decision.map(|d| &d.body) {
            Some(EventBody::Decision(d)) if d.granted => {
                journal_opens.push((e.at, d.epc.clone().unwrap_or_default()));
            }
            other => panic!(
                "OPEN #{} is not journalled with a granted decision: {other:?}",
                e.seq
            ),
        }
    }
    let module_opens = wire_opens(&io);
    let field = field.lock().unwrap().clone();
    let in_field = |at: Instant| {
        field
            .iter()
            .rev()
            .find(|(_, put, _)| *put <= at)
            .map(|(n, _, _)| hex::encode_upper(epc(*n)))
    };
    let mut kinds = std::collections::BTreeMap::new();
    for e in &events {
        let key = match &e.body {
            EventBody::Decision(d) => format!("decision:{}", d.reason.as_str()),
            EventBody::Device { device, status, .. } => format!("device:{device}:{status}"),
            EventBody::LaneFault { fault, .. } => format!("lane_fault:{fault}"),
            other => other.kind().to_string(),
        };
        *kinds.entry(key).or_insert(0) += 1;
    }
    println!("events by kind: {kinds:?}");
    println!("runs by how they were killed: {runs:?}");
    println!(
        "{KILLS} kills, {vehicles} vehicles, {} events, {} OPENs journalled, {} OPENs at the barrier; \
         kills inside the commit→send window: {} ({after_commit} after the commit, before the send; \
         {at_wire} as the OPEN arrived, before the module answered)",
        events.len(),
        journal_opens.len(),
        module_opens.len(),
        after_commit + at_wire,
    );
    let module_closes = io
        .coil_log()
        .iter()
        .filter(|c| c.coil == Some(LaneCoil::Close) && c.on == Some(true))
        .count();
    assert!(module_closes > 0, "the arm was closed between vehicles too");
    assert!(
        module_opens.len() >= KILLS / 5,
        "traffic really opened the barrier ({} OPENs)",
        module_opens.len()
    );
    assert_eq!(
        killed_at_wire.load(Ordering::SeqCst) as usize,
        at_wire,
        "every kill the simulator made left exactly one OPEN on the wire"
    );
    assert!(
        at_wire > 0,
        "some kills landed as the OPEN arrived: {runs:?}"
    );
    if fault_point {
        assert!(
            after_commit > 0,
            "some kills landed between the commit and the send: {runs:?}"
        );
    } else {
        println!("release build: the controller's fault point is compiled out");
    }

    // Each OPEN at the barrier, in order, has its own journalled OPEN for the tag then in the
    // field, committed before it arrived (the clocks are one machine's; 20 ms of slack for
    // converting the module's instants). Journalled OPENs that never arrived are skipped: a kill
    // between commit and send leaves exactly those.
    let mut next = 0;
    for (i, at) in module_opens.iter().enumerate() {
        let at_utc = to_utc(*at);
        let tag = in_field(*at);
        while next < journal_opens.len()
            && (journal_opens[next].0 < at_utc - chrono::Duration::seconds(5)
                || Some(&journal_opens[next].1) != tag.as_ref())
            && journal_opens[next].0 <= at_utc + chrono::Duration::milliseconds(20)
        {
            next += 1;
        }
        assert!(
            next < journal_opens.len()
                && journal_opens[next].0 <= at_utc + chrono::Duration::milliseconds(20)
                && Some(&journal_opens[next].1) == tag.as_ref(),
            "OPEN #{i} at the barrier ({at_utc}, tag {tag:?} in the field) has no journalled \
             OPEN with its decision before it\njournalled OPENs: {journal_opens:?}\n\
             OPENs at the barrier: {module_opens:?}\nthe controllers' log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        next += 1;
    }
}
