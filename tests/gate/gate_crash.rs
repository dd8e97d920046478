//! Crash safety of the gate controller: the real `gatehouse gate run` binary is killed with
//! SIGKILL at random moments during simulated traffic, again and again. Afterwards the journal's
//! sequence numbers must be contiguous with nothing duplicated, and every OPEN the barrier
//! actually received must have its journalled event (the journal commits before the command).
//!
//! The simulated reader and lane I/O module run in this test process on real pseudo-terminals,
//! so they outlive every controller instance, exactly as devices on a gate outlive a reboot.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use firmware_protocols::lane_io::LaneCoil;
use gatehouse::gate::journal::{BarrierAction, EventBody, Journal};
use gatehouse::gate::store::{CredentialRow, PermitRow, Store, Update, VehicleRow};
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane_io::{LaneIoModule, LaneIoModuleConfig};
use gatehouse::sim::uhf_reader::{FieldTag, ReaderControl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::Instant;

const KILLS: usize = 50;
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
        update.permits.push(PermitRow {
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
        update.vehicles.push(VehicleRow {
            id: n,
            plate: format!("京A{:05}", 10000 + n),
            colour: "blue".into(),
            permit_ids: vec![n],
        });
        update.credentials.push(CredentialRow {
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

fn spawn_controller(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["gate", "run", "--config"])
        .arg(config)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the gatehouse binary starts")
}

/// Drives vehicles through the lane until told to stop: tag into the field, onto the presence
/// loop, wait (briefly) for the arm, cross the safety loop, leave.
async fn traffic(
    reader: ReaderControl,
    io: LaneIoModule,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let mut vehicles = 0;
    let mut n = 0;
    while !*stop.borrow() {
        n = n % TAGS + 1;
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
        // A gap longer than the close delay, so the arm comes down between vehicles.
        let deadline = Instant::now() + Duration::from_millis(800);
        while io.arm() != ArmState::Closed && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        vehicles += 1;
    }
    vehicles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_no_event_and_leaves_no_open_without_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let reader_link = dir.path().join("reader");
    let io_link = dir.path().join("io");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    seed_permits(&dir.path().join("data")).await;
    let config = write_config(dir.path(), &reader_link, &io_link);
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(traffic(reader.clone(), io.clone(), stop_rx));

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    let mut rng = Lcg(seed);
    for _ in 0..KILLS {
        let mut child = spawn_controller(&config, &log);
        tokio::time::sleep(Duration::from_millis(250 + rng.next(900))).await;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        for releaser in &releasers {
            releaser.release().unwrap();
        }
    }
    stop_tx.send(true).unwrap();
    let vehicles = traffic.await.unwrap();
    serve_reader.abort();
    serve_io.abort();

    let journal = Journal::open(&dir.path().join("data/journal.db"), 1_000_000)
        .await
        .unwrap();
    let events = journal.read_after(0, u32::MAX).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "sequence numbers are contiguous from 1, none repeated"
    );

    // Every OPEN the module executed has a journalled OPEN committed before it (one to one).
    let journal_opens: Vec<DateTime<Utc>> = events
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                EventBody::Barrier {
                    action: BarrierAction::Open,
                    ..
                }
            )
        })
        .map(|e| e.at)
        .collect();
    // An OPEN is the contact being made: the controller sends a write whose answer timed out
    // again (writing a coil is idempotent), so a second "on" while the contact is already made
    // is the same OPEN, not another one.
    let mut contact_made = false;
    let mut repeated_writes = 0;
    let mut module_opens: Vec<DateTime<Utc>> = Vec::new();
    for c in io.coil_log().iter() {
        if c.coil != Some(LaneCoil::Open) || c.refused.is_some() {
            continue;
        }
        match c.on {
            Some(true) if !contact_made => {
                contact_made = true;
                module_opens.push(
                    base.1 + chrono::Duration::from_std(c.at.duration_since(base.0)).unwrap(),
                );
            }
            Some(true) => repeated_writes += 1,
            Some(false) => contact_made = false,
            None => {}
        }
    }
    let mut kinds = std::collections::BTreeMap::new();
    for e in &events {
        let key = match &e.body {
            EventBody::Decision(d) => format!("decision:{}", d.reason),
            EventBody::Device { device, status, .. } => format!("device:{device}:{status}"),
            EventBody::LaneFault { fault, .. } => format!("lane_fault:{fault}"),
            other => other.kind().to_string(),
        };
        *kinds.entry(key).or_insert(0) += 1;
    }
    println!("events by kind: {kinds:?}");
    println!(
        "{KILLS} kills, {vehicles} vehicles, {} events, {} OPENs journalled, {} OPENs at the barrier \
         ({repeated_writes} repeated writes of a made OPEN contact)",
        events.len(),
        journal_opens.len(),
        module_opens.len()
    );
    let module_closes = io
        .coil_log()
        .iter()
        .filter(|c| c.coil == Some(LaneCoil::Close) && c.on == Some(true))
        .count();
    assert!(module_closes > 0, "the arm was closed between vehicles too");
    assert!(
        module_opens.len() >= KILLS / 2,
        "traffic really opened the barrier ({} OPENs)",
        module_opens.len()
    );
    let mut next = 0;
    for (i, at) in module_opens.iter().enumerate() {
        // The earliest unmatched journalled OPEN that was committed before this one arrived.
        while next < journal_opens.len() && journal_opens[next] < *at - chrono::Duration::seconds(5)
        {
            next += 1;
        }
        assert!(
            next < journal_opens.len()
                && journal_opens[next] <= *at + chrono::Duration::milliseconds(20),
            "OPEN #{i} at the barrier ({at}) has no journalled OPEN before it\n\
             journalled OPENs: {journal_opens:?}\nOPENs at the barrier: {module_opens:?}\n\
             the controllers' log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        next += 1;
    }
}
