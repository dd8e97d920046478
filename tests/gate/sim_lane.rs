//! The simulated lane end to end: vehicles driving the reader and I/O module emulators, watched
//! over real pseudo-terminals by a controller-side stand-in written here (tokio-serial with the
//! `firmware_protocols::uhf` decoder for the reader, the tokio-modbus RTU client for the I/O
//! module — the real controller runtime is tested elsewhere), and the `gatehouse sim lane`
//! binary started and stopped with SIGINT.
//!
//! Nothing sleeps to let things settle: every wait is on a condition, under a deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firmware_protocols::lane_io::{LaneCoil, LaneInputs, LaneIoMap};
use firmware_protocols::uhf::{HostCommand, HostFrame, ReaderDecoder, ReaderReply, UhfFrame};
use gatehouse::serial::pty::is_hangup;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane::{SimLane, SimLaneConfig, Traffic, TrafficReport};
use gatehouse::sim::uhf_reader::FieldTag;
use gatehouse::sim::vehicle::{Vehicle, VehicleOutcome, VehicleTiming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// Longest any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);
/// The arm's travel time in these tests.
const TRAVEL: Duration = Duration::from_millis(300);
/// How often the stand-in controller samples its devices.
const SAMPLE: Duration = Duration::from_millis(10);

const EPC_A: [u8; 12] = [
    0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0x21, 0x40, 0x36, 0x9E,
];

fn lane_in(dir: &Path) -> SimLane {
    let mut config = SimLaneConfig::new(dir.join("reader"), dir.join("io"));
    config.io.travel = TRAVEL;
    config.replug_delay = Duration::from_millis(50);
    SimLane::start(config).expect("start the simulated lane")
}

/// A driver quick enough for tests, with phases long enough to be sampled.
fn quick_driver(patience: Duration) -> VehicleTiming {
    VehicleTiming {
        patience,
        pull_off: Duration::from_millis(150),
        loops_overlap: Duration::from_millis(250),
        safety_dwell: Duration::from_millis(600),
        poll: Duration::from_millis(10),
    }
}

fn tag_a() -> FieldTag {
    FieldTag::new(EPC_A, 1, -58)
}

/// The controller's end of the reader's line.
struct ReaderHost {
    port: SerialStream,
    decoder: ReaderDecoder,
}

impl ReaderHost {
    fn open(link: &Path) -> ReaderHost {
        ReaderHost {
            port: tokio_serial::new(link.to_string_lossy(), 115_200)
                .open_native_async()
                .expect("open the reader's link with tokio-serial"),
            decoder: ReaderDecoder::new(),
        }
    }

    /// One inventory round: the (EPC, antenna, dBm) of every tag reported, sorted.
    async fn inventory(&mut self) -> Vec<(Vec<u8>, u8, i16)> {
        let frame = HostFrame {
            address: 1,
            command: HostCommand::RealTimeInventory { repeat: 1 },
        };
        self.port
            .write_all(&frame.to_bytes().unwrap())
            .await
            .unwrap();
        let mut tags = Vec::new();
        let mut buf = [0u8; 512];
        timeout(DEADLINE, async {
            loop {
                while let Some(frame) = self.decoder.next_frame() {
                    match frame.reply {
                        ReaderReply::Tag { report, .. } => {
                            tags.push((report.epc.clone(), report.antenna(), report.dbm()))
                        }
                        ReaderReply::InventoryDone { .. } => return,
                        other => panic!("unexpected answer to an inventory: {other:?}"),
                    }
                }
                let n = self.port.read(&mut buf).await.expect("read the reader");
                assert!(n > 0, "the reader hung up mid-answer");
                self.decoder.push(&buf[..n]);
            }
        })
        .await
        .expect("the inventory completed in time");
        tags.sort();
        tags
    }

    async fn epcs(&mut self) -> Vec<Vec<u8>> {
        self.inventory().await.into_iter().map(|t| t.0).collect()
    }
}

/// The controller's end of the I/O module's line.
struct IoHost {
    ctx: Context,
    map: LaneIoMap,
}

impl IoHost {
    fn open(link: &Path) -> IoHost {
        let serial = tokio_serial::new(link.to_string_lossy(), 19_200)
            .open_native_async()
            .expect("open the I/O module's link with tokio-serial");
        IoHost {
            ctx: tokio_modbus::client::rtu::attach_slave(serial, Slave(1)),
            map: LaneIoMap::default(),
        }
    }

    async fn inputs(&mut self) -> LaneInputs {
        let span = self.map.input_span();
        let bits = timeout(
            DEADLINE,
            self.ctx.read_discrete_inputs(span.start, span.count),
        )
        .await
        .expect("read inputs timed out")
        .expect("transport or protocol error")
        .expect("exception");
        self.map.inputs_from_bits(span.start, &bits).unwrap()
    }

    async fn write_coil(&mut self, coil: LaneCoil, on: bool) {
        let address = self.map.coil_address(coil);
        timeout(DEADLINE, self.ctx.write_single_coil(address, on))
            .await
            .expect("write timed out")
            .expect("transport or protocol error")
            .expect("exception");
    }

    /// A pulse of the map's length on `coil`.
    async fn pulse(&mut self, coil: LaneCoil) {
        self.write_coil(coil, true).await;
        tokio::time::sleep(self.map.pulse()).await;
        self.write_coil(coil, false).await;
    }

    /// Samples the inputs until `check` holds; fails at the deadline.
    async fn until(&mut self, what: &str, check: impl Fn(&LaneInputs) -> bool) -> LaneInputs {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let inputs = self.inputs().await;
            if check(&inputs) {
                return inputs;
            }
            assert!(Instant::now() < deadline, "never {what}: {inputs:?}");
            tokio::time::sleep(SAMPLE).await;
        }
    }
}

/// Waits, under the deadline, until `check` holds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "never {what}");
        tokio::time::sleep(SAMPLE).await;
    }
}

fn is_link_to_a_pty(link: &Path) -> bool {
    std::fs::read_link(link).is_ok_and(|target| target.starts_with("/dev/pts"))
}

#[tokio::test]
async fn a_tagged_vehicle_is_in_the_readers_inventory_and_on_the_presence_loop_only_while_it_is_at_the_lane()
 {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut reader = ReaderHost::open(lane.reader_port().link());
    let mut io = IoHost::open(lane.io_port().link());
    assert_eq!(reader.inventory().await, vec![]);
    assert!(!io.inputs().await.presence);

    let vehicle = Vehicle::tagged(tag_a())
        .unwrap()
        .with_timing(quick_driver(Duration::from_millis(1500)));
    let (passage, seen) = tokio::join!(lane.drive(&vehicle), async {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let tags = reader.inventory().await;
            let inputs = io.inputs().await;
            if !tags.is_empty() || inputs.presence {
                // Both are set together on arrival: whichever was sampled first, the other
                // must hold now too.
                let tags = reader.inventory().await;
                let inputs = io.inputs().await;
                return (tags, inputs);
            }
            assert!(Instant::now() < deadline, "the vehicle never arrived");
            tokio::time::sleep(SAMPLE).await;
        }
    });
    let (tags_at_lane, inputs_at_lane) = seen;
    assert_eq!(tags_at_lane, vec![(EPC_A.to_vec(), 1, -58)]);
    assert!(inputs_at_lane.presence && !inputs_at_lane.safety);

    // Nothing opened it: it backed out, and took its tag with it.
    assert_eq!(passage.outcome, VehicleOutcome::GaveUp);
    assert_eq!(reader.inventory().await, vec![]);
    let inputs = io.inputs().await;
    assert!(!inputs.presence && !inputs.safety);
    lane.shutdown().await;
}

#[tokio::test]
async fn a_vehicle_waits_and_passes_once_open_is_pulsed_crossing_presence_then_safety_then_clear() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut io = IoHost::open(lane.io_port().link());
    let vehicle = Vehicle::untagged().with_timing(quick_driver(DEADLINE));

    let (passage, (pulse_at, phases)) = tokio::join!(lane.drive(&vehicle), async {
        io.until("presence", |i| i.presence).await;
        // It waits: the arm is down and it is still there a moment later.
        assert!(io.inputs().await.closed_limit);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = io.inputs().await;
        assert!(waiting.presence && !waiting.safety && waiting.closed_limit);

        io.pulse(LaneCoil::Open).await;
        let pulse_at = lane
            .io()
            .coil_log()
            .iter()
            .find(|c| c.coil == Some(LaneCoil::Open) && c.on == Some(true))
            .expect("the module logged the OPEN pulse")
            .at;
        // Every distinct (presence, safety) the loops go through until both are clear.
        let mut phases = vec![(waiting.presence, waiting.safety)];
        let deadline = Instant::now() + DEADLINE;
        loop {
            let inputs = io.inputs().await;
            let phase = (inputs.presence, inputs.safety);
            if phases.last() != Some(&phase) {
                phases.push(phase);
            }
            if phase == (false, false) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the vehicle never left: {phases:?}"
            );
            tokio::time::sleep(SAMPLE).await;
        }
        (pulse_at, phases)
    });

    assert_eq!(
        phases,
        vec![(true, false), (true, true), (false, true), (false, false)],
        "presence → presence+safety → safety → clear"
    );
    let VehicleOutcome::Passed { waited } = passage.outcome else {
        panic!("the vehicle did not pass: {passage:?}");
    };
    let opened_at = passage.opened_at.expect("the arm opened");
    assert_eq!(opened_at - passage.arrived_at, waited);
    // The arm reached its limit one travel time after the pulse (the vehicle saw it rising and
    // took the barrier's own deadline; allow for a late look under load).
    let after_pulse = opened_at - pulse_at;
    assert!(
        after_pulse >= TRAVEL && after_pulse < TRAVEL + Duration::from_millis(100),
        "open limit {after_pulse:?} after the pulse"
    );
    assert!(waited > TRAVEL + Duration::from_millis(100));
    assert!(passage.left_at > opened_at);
    assert_eq!(lane.io().arm(), ArmState::Open);
    lane.shutdown().await;
}

#[tokio::test]
async fn a_vehicle_gives_up_and_backs_out_when_nothing_opens_within_its_patience() {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut reader = ReaderHost::open(lane.reader_port().link());
    let mut io = IoHost::open(lane.io_port().link());
    let patience = Duration::from_millis(600);
    let vehicle = Vehicle::tagged(tag_a())
        .unwrap()
        .with_timing(quick_driver(patience));

    let passage = lane.drive(&vehicle).await;

    assert_eq!(passage.outcome, VehicleOutcome::GaveUp);
    assert_eq!(passage.opened_at, None);
    assert!(passage.left_at - passage.arrived_at >= patience);
    assert!(lane.io().coil_log().is_empty(), "nothing was commanded");
    let inputs = io.inputs().await;
    assert!(!inputs.presence && !inputs.safety && inputs.closed_limit);
    assert_eq!(reader.epcs().await, Vec::<Vec<u8>>::new());
    lane.shutdown().await;
}

#[tokio::test]
async fn the_lanes_links_exist_while_it_runs_and_each_port_comes_back_at_the_same_link_after_a_hang_up()
 {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let reader_link = lane.reader_port().link().to_path_buf();
    let io_link = lane.io_port().link().to_path_buf();
    assert!(is_link_to_a_pty(&reader_link) && is_link_to_a_pty(&io_link));

    let vehicle = Vehicle::tagged(tag_a())
        .unwrap()
        .with_timing(quick_driver(Duration::from_secs(60)));
    tokio::select! {
        passage = lane.drive(&vehicle) => panic!("the vehicle left early: {passage:?}"),
        () = async {
            let mut reader = ReaderHost::open(&reader_link);
            let mut io = IoHost::open(&io_link);
            io.until("presence", |i| i.presence).await;
            assert_eq!(reader.epcs().await, vec![EPC_A.to_vec()]);

            // The reader's port goes away: the controller's read ends in a hang-up.
            lane.reader().hang_up();
            let mut buf = [0u8; 16];
            match timeout(DEADLINE, reader.port.read(&mut buf)).await.expect("hang-up seen") {
                Ok(0) => {}
                Ok(n) => panic!("read {n} bytes from a hung-up reader"),
                Err(e) => assert!(is_hangup(&e), "not a hang-up: {e}"),
            }
            drop(reader);
            timeout(DEADLINE, lane.reader_port().wait_for_session(2))
                .await
                .expect("the reader's port came back");
            // (The kernel may hand out the same /dev/pts number again: only the link counts.)
            assert!(is_link_to_a_pty(&reader_link));
            // Same link, new pseudo-terminal, same reader: the vehicle is still in the field.
            let mut reader = ReaderHost::open(&reader_link);
            assert_eq!(reader.epcs().await, vec![EPC_A.to_vec()]);

            // The I/O module's port too; the loops survive it.
            drop(io);
            lane.io_port().unplug();
            timeout(DEADLINE, lane.io_port().wait_for_session(2))
                .await
                .expect("the I/O module's port came back");
            let mut io = IoHost::open(&io_link);
            assert!(io.inputs().await.presence);
        } => {}
    }
    // The vehicle was taken off the lane halfway: it left nothing behind.
    assert!(lane.reader().field().is_empty());
    assert!(!lane.io().barrier().presence());

    lane.shutdown().await;
    assert!(std::fs::symlink_metadata(&reader_link).is_err());
    assert!(std::fs::symlink_metadata(&io_link).is_err());
}

#[tokio::test]
async fn traffic_sends_its_vehicles_one_at_a_time_and_only_tagged_ones_pass_a_controller_that_opens_for_tags()
 {
    let dir = tempfile::tempdir().unwrap();
    let lane = lane_in(dir.path());
    let mut reader = ReaderHost::open(lane.reader_port().link());
    let mut io = IoHost::open(lane.io_port().link());
    // Every arrival waits at least for the arm to be back down after the previous vehicle.
    let mut traffic = Traffic::new(vec![Some(tag_a()), None], Duration::from_millis(1500)).unwrap();
    traffic.count = Some(3);
    traffic.timing = quick_driver(Duration::from_millis(700));

    let mut reports: Vec<TrafficReport> = Vec::new();
    let run = lane.run_traffic(&traffic, |r| reports.push(r.clone()));
    // The stand-in controller: OPEN for a vehicle on the presence loop whose tag is read,
    // CLOSE once the loops are clear behind an open arm.
    let controller = async {
        loop {
            let inputs = io.inputs().await;
            if inputs.presence && inputs.closed_limit && !reader.epcs().await.is_empty() {
                io.pulse(LaneCoil::Open).await;
            } else if inputs.open_limit && !inputs.vehicle_on_a_loop() {
                io.pulse(LaneCoil::Close).await;
            }
            tokio::time::sleep(SAMPLE).await;
        }
    };
    let tally = tokio::select! {
        tally = timeout(DEADLINE, run) => tally.expect("the traffic ran in time"),
        () = controller => unreachable!(),
    };

    assert_eq!((tally.passed, tally.gave_up), (2, 1));
    let outcomes: Vec<_> = reports
        .iter()
        .map(|r| (r.index, r.epc.clone(), r.passage.passed()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (0, Some(EPC_A.to_vec()), true),
            (1, None, false),
            (2, Some(EPC_A.to_vec()), true),
        ]
    );
    for pair in reports.windows(2) {
        assert!(
            pair[1].passage.arrived_at >= pair[0].passage.left_at,
            "two vehicles on the lane at once"
        );
        assert!(pair[1].passage.arrived_at - pair[0].passage.arrived_at >= traffic.every);
    }
    lane.shutdown().await;
}

#[tokio::test]
async fn the_sim_lane_command_publishes_its_links_and_sigint_stops_it_cleanly_removing_them() {
    let dir = tempfile::tempdir().unwrap();
    let reader_link: PathBuf = dir.path().join("run/reader");
    let io_link: PathBuf = dir.path().join("run/io");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["sim", "lane", "--reader-link"])
        .arg(&reader_link)
        .arg("--io-link")
        .arg(&io_link)
        .args(["--tag", "E2003098881900722140369E", "--vehicles", "0"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start gatehouse sim lane");

    eventually("both links appear", || {
        is_link_to_a_pty(&reader_link) && is_link_to_a_pty(&io_link)
    })
    .await;
    // The devices behind the links answer.
    assert_eq!(
        ReaderHost::open(&reader_link).inventory().await,
        vec![],
        "no vehicle is sent with --vehicles 0"
    );
    assert!(IoHost::open(&io_link).inputs().await.closed_limit);

    let pid = nix::unistd::Pid::from_raw(child.id().expect("running") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = timeout(DEADLINE, child.wait())
        .await
        .expect("it exits after SIGINT")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(std::fs::symlink_metadata(&reader_link).is_err());
    assert!(std::fs::symlink_metadata(&io_link).is_err());
}
