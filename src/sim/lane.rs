//! A simulated lane: one UHF reader emulator and one lane I/O module emulator, each served on a
//! pseudo-terminal published at a fixed link path, plus the vehicles that use the lane.
//!
//! What it is for: running a whole lane's devices for the demo (`gatehouse sim lane`) and for
//! end-to-end tests, where a gate controller opens the two links exactly as it opens serial
//! adaptors. [`ServedPort`] keeps one emulator on its link for as long as it lives: when the port
//! is unplugged (for the reader, [`ReaderControl::hang_up`]; for either, [`ServedPort::unplug`])
//! the pseudo-terminal is dropped — the controller sees a hang-up and the link disappears — and
//! after [`ServedPort::replug_delay`] a new one is created at the same link. The emulators' state
//! (field, arm, loops) lives in their handles and survives. [`SimLane`] bundles the two ports and
//! drives [`Vehicle`]s; [`SimLane::run_traffic`] sends a stream of them.
//!
//! What it never does: talk to the controller, decide anything, or read the bytes on the lines
//! (the emulators do). Links are removed when the lane shuts down or is dropped.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::lane_io::{LaneIoModule, LaneIoModuleConfig, LaneIoModuleError};
use super::uhf_reader::{FieldTag, ReaderControl};
use super::vehicle::{LaneDevices, Passage, Vehicle, VehicleTiming};
use crate::serial::pty::PtyDevice;

/// How long an unplugged port stays away before it comes back, by default.
pub const DEFAULT_REPLUG_DELAY: Duration = Duration::from_millis(200);

/// Which emulator a [`ServedPort`] serves.
#[derive(Debug, Clone)]
enum Emulator {
    Reader(ReaderControl),
    Io(LaneIoModule),
}

/// One emulator kept on a pseudo-terminal at a fixed link, re-served after each hang-up.
#[derive(Debug)]
pub struct ServedPort {
    link: PathBuf,
    emulator: Emulator,
    replug_delay: Duration,
    unplug: std::sync::Arc<Notify>,
    sessions: watch::Receiver<u64>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ServedPort {
    /// Serves `reader` on a new pseudo-terminal linked at `link` (replacing what was there). The
    /// link exists when this returns. Must be called inside a Tokio runtime.
    pub fn reader(
        reader: ReaderControl,
        link: &Path,
        replug_delay: Duration,
    ) -> io::Result<ServedPort> {
        ServedPort::start(Emulator::Reader(reader), link, replug_delay)
    }

    /// Serves `module` on a new pseudo-terminal linked at `link` (replacing what was there). The
    /// link exists when this returns. Must be called inside a Tokio runtime.
    pub fn io_module(
        module: LaneIoModule,
        link: &Path,
        replug_delay: Duration,
    ) -> io::Result<ServedPort> {
        ServedPort::start(Emulator::Io(module), link, replug_delay)
    }

    fn start(emulator: Emulator, link: &Path, replug_delay: Duration) -> io::Result<ServedPort> {
        let first = PtyDevice::create(Some(link))?;
        let (sessions_tx, sessions) = watch::channel(1);
        let unplug = std::sync::Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(supervise(
            emulator.clone(),
            first,
            link.to_path_buf(),
            replug_delay,
            unplug.clone(),
            sessions_tx,
            shutdown.clone(),
        ));
        Ok(ServedPort {
            link: link.to_path_buf(),
            emulator,
            replug_delay,
            unplug,
            sessions,
            shutdown,
            task: Some(task),
        })
    }

    /// The link path a controller opens.
    pub fn link(&self) -> &Path {
        &self.link
    }

    /// How long an unplugged port stays away.
    pub fn replug_delay(&self) -> Duration {
        self.replug_delay
    }

    /// How many pseudo-terminals have been created at the link so far (1 at start, one more after
    /// each hang-up once the port is back).
    pub fn sessions(&self) -> u64 {
        *self.sessions.borrow()
    }

    /// Waits until at least `n` pseudo-terminals have been created (the port is back after
    /// `n - 1` hang-ups). Returns at once if the port has shut down.
    pub async fn wait_for_session(&self, n: u64) {
        let mut sessions = self.sessions.clone();
        let _ = sessions.wait_for(|s| *s >= n).await;
    }

    /// Unplugs the port: the current pseudo-terminal is dropped (the controller sees a hang-up,
    /// the link disappears) and a new one appears at the link after the replug delay. For the
    /// reader this is [`ReaderControl::hang_up`].
    pub fn unplug(&self) {
        match &self.emulator {
            Emulator::Reader(reader) => reader.hang_up(),
            Emulator::Io(_) => self.unplug.notify_one(),
        }
    }

    /// Stops serving and waits until the pseudo-terminal is closed and the link removed.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServedPort {
    fn drop(&mut self) {
        // The task drops its pseudo-terminal (and so removes the link) when it sees this.
        self.shutdown.cancel();
    }
}

/// Serves the emulator on `device`, then on a new device at `link` after each hang-up, until
/// `shutdown`.
async fn supervise(
    emulator: Emulator,
    first: PtyDevice,
    link: PathBuf,
    replug_delay: Duration,
    unplug: std::sync::Arc<Notify>,
    sessions: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let mut device = Some(first);
    loop {
        if let Some(current) = device.take() {
            info!(link = %link.display(), tty = %current.tty_path().display(), "sim: port up");
            let ended = tokio::select! {
                () = shutdown.cancelled() => return,
                ended = serve_once(&emulator, current, &unplug) => ended,
            };
            // The device is dropped by now: the link is gone until the next one.
            info!(link = %link.display(), why = %ended, "sim: port down");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(replug_delay.max(Duration::from_millis(1))) => {}
        }
        match PtyDevice::create(Some(&link)) {
            Ok(next) => {
                device = Some(next);
                sessions.send_modify(|s| *s += 1);
            }
            Err(e) => {
                warn!(link = %link.display(), error = %e, "sim: cannot create the port, retrying")
            }
        }
    }
}

/// Serves one pseudo-terminal until it hangs up; says why it ended.
async fn serve_once(emulator: &Emulator, device: PtyDevice, unplug: &Notify) -> String {
    match emulator {
        Emulator::Reader(reader) => match reader.serve(device).await {
            Ok(end) => format!("{end:?}"),
            Err(e) => format!("transport error: {e}"),
        },
        Emulator::Io(module) => tokio::select! {
            () = unplug.notified() => "unplugged".to_owned(),
            served = module.serve(device) => match served {
                Ok(()) => "host closed".to_owned(),
                Err(e) => format!("transport error: {e}"),
            },
        },
    }
}

/// Where and how a [`SimLane`] is built.
#[derive(Debug, Clone)]
pub struct SimLaneConfig {
    /// The link the reader's pseudo-terminal is published at.
    pub reader_link: PathBuf,
    /// The link the I/O module's pseudo-terminal is published at.
    pub io_link: PathBuf,
    /// The reader's address on its line.
    pub reader_address: u8,
    /// The I/O module (its map, points, arm travel time).
    pub io: LaneIoModuleConfig,
    /// How long an unplugged port stays away.
    pub replug_delay: Duration,
}

impl SimLaneConfig {
    /// A lane at these links, with the default reader address, module and replug delay.
    pub fn new(reader_link: impl Into<PathBuf>, io_link: impl Into<PathBuf>) -> SimLaneConfig {
        SimLaneConfig {
            reader_link: reader_link.into(),
            io_link: io_link.into(),
            reader_address: super::uhf_reader::DEFAULT_ADDRESS,
            io: LaneIoModuleConfig::default(),
            replug_delay: DEFAULT_REPLUG_DELAY,
        }
    }
}

/// Why a lane could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimLaneError {
    /// The I/O module's configuration is invalid.
    #[error("lane I/O module: {0}")]
    Io(#[from] LaneIoModuleError),
    /// A pseudo-terminal or its link could not be created.
    #[error("cannot create the port at {link}: {source}")]
    Port {
        /// The link.
        link: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A running simulated lane: both emulators on their links, and the vehicles' way in.
#[derive(Debug)]
pub struct SimLane {
    devices: LaneDevices,
    reader_port: ServedPort,
    io_port: ServedPort,
}

impl SimLane {
    /// Creates both emulators and serves them at their links; both links exist when this
    /// returns. Must be called inside a Tokio runtime.
    pub fn start(config: SimLaneConfig) -> Result<SimLane, SimLaneError> {
        let reader = ReaderControl::with_address(config.reader_address);
        let io = LaneIoModule::new(config.io)?;
        let port_error = |link: &Path| {
            let link = link.to_path_buf();
            move |source| SimLaneError::Port { link, source }
        };
        let reader_port =
            ServedPort::reader(reader.clone(), &config.reader_link, config.replug_delay)
                .map_err(port_error(&config.reader_link))?;
        let io_port = ServedPort::io_module(io.clone(), &config.io_link, config.replug_delay)
            .map_err(port_error(&config.io_link))?;
        Ok(SimLane {
            devices: LaneDevices::new(reader, io),
            reader_port,
            io_port,
        })
    }

    /// The reader emulator's control handle.
    pub fn reader(&self) -> &ReaderControl {
        self.devices.reader()
    }

    /// The I/O module emulator's control handle.
    pub fn io(&self) -> &LaneIoModule {
        self.devices.io()
    }

    /// Both handles, as vehicles use them.
    pub fn devices(&self) -> &LaneDevices {
        &self.devices
    }

    /// The reader's port (its link, hang-ups, sessions).
    pub fn reader_port(&self) -> &ServedPort {
        &self.reader_port
    }

    /// The I/O module's port (its link, hang-ups, sessions).
    pub fn io_port(&self) -> &ServedPort {
        &self.io_port
    }

    /// Drives one vehicle through the lane (see [`Vehicle::drive`]).
    pub async fn drive(&self, vehicle: &Vehicle) -> Passage {
        vehicle.drive(&self.devices).await
    }

    /// Sends the vehicles of `traffic` through the lane, calling `report` as each one's visit
    /// ends, and returns the tally. Cancelling the future takes the vehicles on the lane away.
    pub async fn run_traffic(
        &self,
        traffic: &Traffic,
        mut report: impl FnMut(&TrafficReport),
    ) -> TrafficTally {
        let mut tally = TrafficTally::default();
        let mut on_lane = FuturesUnordered::new();
        let mut next_arrival = Instant::now();
        let mut sent = 0u64;
        loop {
            let more = !traffic.mix.is_empty() && traffic.count.is_none_or(|n| sent < n);
            if !more && on_lane.is_empty() {
                return tally;
            }
            // Sequential traffic waits for the lane to be empty before the next arrival.
            let may_send = more && (traffic.overlap || on_lane.is_empty());
            tokio::select! {
                biased;
                Some(done) = on_lane.next() => {
                    let done: TrafficReport = done;
                    tally.count(&done.passage);
                    report(&done);
                }
                () = tokio::time::sleep_until(next_arrival), if may_send => {
                    let index = sent;
                    let vehicle = traffic.vehicle(index);
                    sent += 1;
                    next_arrival = Instant::now() + traffic.every;
                    let devices = &self.devices;
                    on_lane.push(async move {
                        let passage = vehicle.drive(devices).await;
                        TrafficReport {
                            index,
                            epc: vehicle.tag().map(|t| t.epc.clone()),
                            passage,
                        }
                    });
                }
            }
        }
    }

    /// Stops both emulators and waits until their links are removed.
    pub async fn shutdown(self) {
        self.reader_port.shutdown().await;
        self.io_port.shutdown().await;
    }
}

/// A stream of vehicles for [`SimLane::run_traffic`].
#[derive(Debug, Clone)]
pub struct Traffic {
    /// The vehicles' tags, used in turn (cycling): `None` is a vehicle without a tag. An empty
    /// mix sends no vehicle.
    pub mix: Vec<Option<FieldTag>>,
    /// Time between one vehicle's arrival and the next one's. Without
    /// [`Traffic::overlap`] the next also waits until the previous has left.
    pub every: Duration,
    /// How many vehicles to send; `None` for no end.
    pub count: Option<u64>,
    /// Let the next vehicle arrive on time even if the previous one is still on the lane (two on
    /// the loops at once: a queue, a tailgater). Off by default.
    pub overlap: bool,
    /// Every vehicle's driver timing.
    pub timing: VehicleTiming,
}

impl Traffic {
    /// Vehicles with these tags, one after another, one arriving every `every` at most.
    /// Every tag is checked as [`Vehicle::tagged`] checks it.
    pub fn new(
        mix: Vec<Option<FieldTag>>,
        every: Duration,
    ) -> Result<Traffic, super::uhf_reader::BadTag> {
        for tag in mix.iter().flatten() {
            Vehicle::tagged(tag.clone())?;
        }
        Ok(Traffic {
            mix,
            every,
            count: None,
            overlap: false,
            timing: VehicleTiming::default(),
        })
    }

    /// The `index`-th vehicle (0-based) of the stream.
    fn vehicle(&self, index: u64) -> Vehicle {
        let slot = (index % self.mix.len() as u64) as usize;
        let vehicle = match &self.mix[slot] {
            // Checked in `new`; a tag added to `mix` afterwards that the reader refuses is
            // driven without its tag (the reader would never report it either).
            Some(tag) => Vehicle::tagged(tag.clone()).unwrap_or_else(|e| {
                warn!(error = %e, "sim: a tag of the traffic mix is refused, vehicle untagged");
                Vehicle::untagged()
            }),
            None => Vehicle::untagged(),
        };
        vehicle.with_timing(self.timing)
    }
}

/// One vehicle's visit, as [`SimLane::run_traffic`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficReport {
    /// The vehicle's place in the stream, from 0.
    pub index: u64,
    /// Its tag's EPC, if it had one.
    pub epc: Option<Vec<u8>>,
    /// How the visit went.
    pub passage: Passage,
}

/// Counts of a traffic run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficTally {
    /// Vehicles that drove through.
    pub passed: u64,
    /// Vehicles that backed out.
    pub gave_up: u64,
    /// Sum of the passed vehicles' waits (arrival to open limit).
    pub total_wait: Duration,
}

impl TrafficTally {
    fn count(&mut self, passage: &Passage) {
        match passage.outcome {
            super::vehicle::VehicleOutcome::Passed { waited } => {
                self.passed += 1;
                self.total_wait += waited;
            }
            super::vehicle::VehicleOutcome::GaveUp => self.gave_up += 1,
        }
    }
}
