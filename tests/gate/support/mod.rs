//! The gate test harness: a real [`GateHandle`] wired to emulated devices through real
//! pseudo-terminals. The handle is shared (`Arc`) so a sync client can run beside the test;
//! `tests/sync` uses this same file.
//!
//! [`spawn_gate`] creates, for each lane, a UHF reader emulator and a lane I/O module emulator,
//! each serving the master end of a pty published at a stable symlink in a temporary directory;
//! writes a [`GateConfig`] with short timings that names those links; and starts the controller,
//! which opens the links with tokio-serial exactly as it opens USB–RS-485 adaptors on a gate.
//! Nothing is mocked: every tag read and every coil write crosses a pty as protocol bytes.
//!
//! Helpers drive a vehicle through a lane (presence on, tag in the field, wait for the arm,
//! safety on, presence off, safety off), seed permits, and wait for journal events, lane states
//! and arm positions — always on a condition with a deadline, never a bare sleep.
//!
//! With [`GateOptions::qr`] each lane also gets a simulated QR pass scanner on a pty
//! (`[lane.qr]`), and [`TestGate::scan`] sends a pass's text through it.
//!
//! The lanes record when the test put a vehicle on or took it off a loop, so
//! [`TestLane::assert_no_close_over_vehicle`] can check the I/O module's coil log against the
//! loops: CLOSE must never be written while either loop was occupied.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use firmware_protocols::lane_io::{LaneCoil, LaneIoMap};
use gatehouse::domain::UtcMinute;
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::runtime::{GateHandle, LaneStatus};
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane_io::{CoilCommand, LaneIoModule, LaneIoModuleConfig};
use gatehouse::sim::qr_scanner::{LineEnding, QrScanner};
use gatehouse::sim::uhf_reader::{FieldTag, ReaderControl, ServeEnd};
use gatehouse::wire::journal::{BarrierAction, DecisionRecord, EventBody, JournalEvent};
use gatehouse::wire::rows::{CredentialRecord, PermitRecord, Update, VehicleRecord};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long any one awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// How often a polled condition is checked.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// Short lane timings, so a whole vehicle passage takes about a second.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// Input poll period (`io.poll_ms`).
    pub poll_ms: u64,
    /// Arm hold after the loops clear (`close_delay_ms`).
    pub close_delay_ms: u64,
    /// Limit timeout (`arm_timeout_ms`).
    pub arm_timeout_ms: u64,
    /// The emulated barrier's travel time.
    pub travel: Duration,
    /// OPEN/CLOSE pulse length (`io.map.pulse_ms`).
    pub pulse_ms: u32,
    /// Modbus answer timeout (`io.timeout_ms`).
    pub io_timeout_ms: u64,
    /// Same-tag hold (`reader.tag_hold_ms`).
    pub tag_hold_ms: u64,
    /// Reader answer timeout (`reader.timeout_ms`).
    pub reader_timeout_ms: u64,
    /// The reader emulator's delay per inventory round (keeps the always-on inventory loop from
    /// spinning a core).
    pub inventory_delay: Duration,
}

impl Default for Timings {
    fn default() -> Timings {
        Timings {
            poll_ms: 20,
            close_delay_ms: 300,
            arm_timeout_ms: 2000,
            travel: Duration::from_millis(300),
            pulse_ms: 100,
            io_timeout_ms: 100,
            tag_hold_ms: 1000,
            reader_timeout_ms: 300,
            inventory_delay: Duration::from_millis(15),
        }
    }
}

/// One lane to build.
#[derive(Debug, Clone, Copy)]
pub struct LaneSpec {
    pub id: &'static str,
    /// `entry`, `exit` or `two_way` (antenna 0 faces entries, antenna 1 exits).
    pub direction: &'static str,
}

impl LaneSpec {
    pub fn entry(id: &'static str) -> LaneSpec {
        LaneSpec {
            id,
            direction: "entry",
        }
    }

    pub fn exit(id: &'static str) -> LaneSpec {
        LaneSpec {
            id,
            direction: "exit",
        }
    }
}

/// How to build the gate.
#[derive(Debug, Clone)]
pub struct GateOptions {
    pub gate_id: u16,
    /// `off`, `hard`, `soft`, `timed:N`.
    pub anti_passback: &'static str,
    pub timings: Timings,
    /// Where the gate keeps store.db and journal.db (default: `data` in the gate's temporary
    /// directory); a test puts it on a filesystem it controls (a small tmpfs, to fill).
    pub data_dir: Option<PathBuf>,
    /// `journal.capacity` (default: the configuration's).
    pub journal_capacity: Option<u64>,
    /// TOML appended to every `[[lane]]` (e.g. a `[lane.plate]` table).
    pub lane_extra: &'static str,
    /// Give every lane a QR pass scanner (`[lane.qr]`) on a pty: [`TestGate::scan`].
    pub qr: bool,
}

impl Default for GateOptions {
    fn default() -> GateOptions {
        GateOptions {
            gate_id: 1,
            anti_passback: "hard",
            timings: Timings::default(),
            data_dir: None,
            journal_capacity: None,
            lane_extra: "",
            qr: false,
        }
    }
}

/// When the test changed a loop, so coil writes can be checked against it.
#[derive(Debug, Clone, Copy)]
struct LoopChange {
    at: Instant,
    presence: bool,
    safety: bool,
}

/// One emulated lane: its reader, its I/O module, and the test's record of its loops.
#[derive(Debug)]
pub struct TestLane {
    pub id: String,
    pub io: LaneIoModule,
    pub reader: ReaderControl,
    reader_link: PathBuf,
    replug: Arc<Notify>,
    /// The lane's simulated QR scanner, with [`GateOptions::qr`].
    pub qr: Option<tokio::sync::Mutex<QrScanner>>,
    loops: Mutex<Vec<LoopChange>>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestLane {
    fn record_loops(&self, at: Instant, presence: Option<bool>, safety: Option<bool>) {
        let mut loops = self.loops.lock().unwrap();
        let last = loops.last().copied().unwrap_or(LoopChange {
            at,
            presence: false,
            safety: false,
        });
        loops.push(LoopChange {
            at,
            presence: presence.unwrap_or(last.presence),
            safety: safety.unwrap_or(last.safety),
        });
    }

    /// Puts a vehicle on (or takes it off) the presence loop. A loop taken "on" is recorded from
    /// just before the call, "off" from just after it: the record errs toward occupied.
    pub fn set_presence(&self, on: bool) {
        let before = Instant::now();
        self.io.set_presence(on);
        let at = if on { before } else { Instant::now() };
        self.record_loops(at, Some(on), None);
    }

    /// Puts a vehicle on (or takes it off) the safety loop; recorded as [`Self::set_presence`].
    /// Returns the instant recorded.
    pub fn set_safety(&self, on: bool) -> Instant {
        let before = Instant::now();
        self.io.set_safety(on);
        let at = if on { before } else { Instant::now() };
        self.record_loops(at, None, Some(on));
        at
    }

    /// Whether either loop was occupied at `at`, by the test's record.
    pub fn vehicle_on_loops_at(&self, at: Instant) -> bool {
        let loops = self.loops.lock().unwrap();
        loops
            .iter()
            .rev()
            .find(|c| c.at <= at)
            .is_some_and(|c| c.presence || c.safety)
    }

    /// Puts a tag in the reader's field on antenna 0 at a strong signal.
    pub fn tag_in_field(&self, epc: &[u8]) {
        self.reader
            .put_tag(FieldTag::new(epc.to_vec(), 0, -45))
            .expect("a valid test tag");
    }

    /// Takes the tag out of the reader's field.
    pub fn tag_out_of_field(&self, epc: &[u8]) {
        self.reader.take_tag(epc);
    }

    /// Every coil write that turned `coil` on, in order.
    pub fn coil_on_writes(&self, coil: LaneCoil) -> Vec<CoilCommand> {
        self.io
            .coil_log()
            .into_iter()
            .filter(|c| c.coil == Some(coil) && c.on == Some(true))
            .collect()
    }

    /// Every OPEN (coil 0 on) written so far.
    pub fn opens(&self) -> Vec<CoilCommand> {
        self.coil_on_writes(LaneCoil::Open)
    }

    /// Every CLOSE (coil 1 on) written so far.
    pub fn closes(&self) -> Vec<CoilCommand> {
        self.coil_on_writes(LaneCoil::Close)
    }

    /// Fails if the I/O module ever received an OPEN.
    pub fn assert_never_opened(&self) {
        let opens = self.opens();
        assert!(
            opens.is_empty(),
            "lane {}: OPEN written {} time(s): {opens:?}",
            self.id,
            opens.len()
        );
    }

    /// Fails if a CLOSE reached the I/O module while the test had a vehicle on either loop.
    pub fn assert_no_close_over_vehicle(&self) {
        for close in self.closes() {
            assert!(
                !self.vehicle_on_loops_at(close.at),
                "lane {}: CLOSE written while a vehicle was on a loop: {close:?}\nloops: {:?}",
                self.id,
                self.loops.lock().unwrap()
            );
        }
    }

    /// Waits until the arm is in `state`.
    pub async fn wait_arm(&self, state: ArmState) {
        wait_for(&format!("lane {}: arm {state:?}", self.id), || async {
            (self.io.arm() == state).then_some(())
        })
        .await
    }

    /// Waits until the I/O module has executed `n` more requests than now (a condition that
    /// proves the controller has polled several times, in place of a sleep).
    pub async fn wait_polls(&self, n: u64) {
        let from = self.io.requests_executed();
        wait_for(&format!("lane {}: {n} I/O requests", self.id), || async {
            (self.io.requests_executed() >= from + n).then_some(())
        })
        .await
    }

    /// Waits until the reader emulator has handled `n` more commands than now.
    pub async fn wait_inventories(&self, n: u64) {
        let s = self.reader.stats();
        let from = s.commands_answered + s.commands_ignored;
        tokio::time::timeout(DEADLINE, self.reader.handled_commands(from + n))
            .await
            .unwrap_or_else(|_| panic!("lane {}: reader never handled {n} commands", self.id));
    }

    /// Hangs the reader up: its pty goes away (the controller's port reads a hang-up) and the
    /// link disappears until [`Self::plug_reader_back`].
    pub fn hang_up_reader(&self) {
        self.reader.hang_up();
    }

    /// Creates the reader's pty again at the same link and serves it.
    pub fn plug_reader_back(&self) {
        self.replug.notify_one();
    }

    /// Whether the reader's link exists (the pty is plugged in).
    pub fn reader_plugged(&self) -> bool {
        self.reader_link.exists()
    }
}

/// A running gate with emulated lanes. Dropping it aborts the emulators; call
/// [`TestGate::shutdown`] to stop the controller cleanly.
#[derive(Debug)]
pub struct TestGate {
    handle: Option<Arc<GateHandle>>,
    pub lanes: Vec<TestLane>,
    pub config: GateConfig,
    /// Kept for the life of the gate: data directory and pty links.
    pub dir: tempfile::TempDir,
    data_version: Mutex<u64>,
}

impl Drop for TestGate {
    fn drop(&mut self) {
        for lane in &self.lanes {
            for task in &lane.tasks {
                task.abort();
            }
        }
    }
}

/// Starts a gate with default options and the given lanes.
pub async fn spawn_gate(lanes: &[LaneSpec]) -> TestGate {
    spawn_gate_with(lanes, GateOptions::default()).await
}

/// Starts a gate: emulators on ptys, a configuration naming their links, the controller.
pub async fn spawn_gate_with(lanes: &[LaneSpec], options: GateOptions) -> TestGate {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let t = options.timings;
    let mut test_lanes = Vec::new();
    let mut toml = format!(
        "[gate]\nid = {}\nname = \"test gate\"\ndata_dir = \"{}\"\nanti_passback = \"{}\"\n",
        options.gate_id,
        options
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"))
            .display(),
        options.anti_passback
    );
    if let Some(capacity) = options.journal_capacity {
        toml += &format!("[journal]\ncapacity = {capacity}\n");
    }
    for spec in lanes {
        let reader_link = dir.path().join(format!("{}-reader", spec.id));
        let io_link = dir.path().join(format!("{}-io", spec.id));
        let (reader, replug, reader_task) = start_reader(&reader_link, t.inventory_delay);
        let (io, io_task) = start_io(&io_link, t.travel);
        toml += &format!(
            "\n[[lane]]\nid = \"{id}\"\ndirection = \"{dir}\"\nclose_delay_ms = {close}\n\
             arm_timeout_ms = {arm}\n\
             [lane.reader]\nport = \"{rp}\"\ntag_hold_ms = {hold}\ntimeout_ms = {rt}\n{antennas}\
             [lane.io]\nport = \"{ip}\"\npoll_ms = {poll}\ntimeout_ms = {it}\nretries = 1\n\
             [lane.io.map]\npulse_ms = {pulse}\n",
            id = spec.id,
            dir = spec.direction,
            antennas = if spec.direction == "two_way" {
                "antennas = { 0 = \"entry\", 1 = \"exit\" }\n"
            } else {
                ""
            },
            close = t.close_delay_ms,
            arm = t.arm_timeout_ms,
            rp = reader_link.display(),
            hold = t.tag_hold_ms,
            rt = t.reader_timeout_ms,
            ip = io_link.display(),
            poll = t.poll_ms,
            it = t.io_timeout_ms,
            pulse = t.pulse_ms,
        );
        toml += options.lane_extra;
        let qr = options.qr.then(|| {
            let link = dir.path().join(format!("{}-qr", spec.id));
            toml += &format!("[lane.qr]\nport = \"{}\"\n", link.display());
            tokio::sync::Mutex::new(
                QrScanner::create(&link, LineEnding::Cr).expect("a QR scanner pty"),
            )
        });
        test_lanes.push(TestLane {
            qr,
            id: spec.id.to_string(),
            io,
            reader,
            reader_link,
            replug,
            loops: Mutex::new(Vec::new()),
            tasks: vec![reader_task, io_task],
        });
    }
    let config = GateConfig::parse(&toml).expect("the test configuration parses");
    config.validate().expect("the test configuration is valid");
    let handle = GateHandle::start(config.clone())
        .await
        .expect("the gate starts");
    let gate = TestGate {
        handle: Some(Arc::new(handle)),
        lanes: test_lanes,
        config,
        dir,
        data_version: Mutex::new(0),
    };
    gate.wait_ready().await;
    gate
}

fn start_reader(
    link: &Path,
    inventory_delay: Duration,
) -> (ReaderControl, Arc<Notify>, JoinHandle<()>) {
    let reader = ReaderControl::new();
    reader.set_inventory_delay(inventory_delay);
    let replug = Arc::new(Notify::new());
    let device = PtyDevice::create(Some(link)).expect("a reader pty");
    let task = tokio::spawn({
        let reader = reader.clone();
        let replug = replug.clone();
        let link = link.to_path_buf();
        async move {
            let mut device = Some(device);
            loop {
                let dev = match device.take() {
                    Some(d) => d,
                    None => PtyDevice::create(Some(&link)).expect("a reader pty again"),
                };
                match reader.serve(dev).await {
                    // The pty was dropped with `serve`'s transport: unplugged until asked back.
                    Ok(ServeEnd::HungUp) => replug.notified().await,
                    Ok(ServeEnd::HostClosed) => {}
                    Err(e) => panic!("reader emulator failed: {e}"),
                }
            }
        }
    });
    (reader, replug, task)
}

fn start_io(link: &Path, travel: Duration) -> (LaneIoModule, JoinHandle<()>) {
    let io = LaneIoModule::new(LaneIoModuleConfig {
        map: LaneIoMap::default(),
        travel,
        ..LaneIoModuleConfig::default()
    })
    .expect("a valid I/O module");
    let mut device = PtyDevice::create(Some(link)).expect("an I/O pty");
    let task = tokio::spawn({
        let io = io.clone();
        async move {
            // The pty holds its slave open, so the module never reads end of file: serve until
            // the test ends.
            while io.serve(&mut device).await.is_ok() {}
        }
    });
    (io, task)
}

/// Polls `check` every few milliseconds until it returns `Some`, or fails the test after
/// [`DEADLINE`] naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

impl TestGate {
    /// The running controller.
    pub fn handle(&self) -> &GateHandle {
        self.handle.as_ref().expect("the gate is running")
    }

    /// The running controller, shared (for a sync client's runner).
    pub fn shared_handle(&self) -> Arc<GateHandle> {
        self.handle.as_ref().expect("the gate is running").clone()
    }

    /// The lane with this id.
    pub fn lane(&self, id: &str) -> &TestLane {
        self.lanes
            .iter()
            .find(|l| l.id == id)
            .unwrap_or_else(|| panic!("no lane {id}"))
    }

    /// Waits until every lane's reader and I/O module are online and every lane is idle.
    pub async fn wait_ready(&self) {
        for lane in &self.lanes {
            let qr = lane.qr.is_some();
            self.wait_status(&lane.id, "devices online and lane idle", |s| {
                s.reader_online && s.io_online && s.state == "idle" && (s.qr_online || !qr)
            })
            .await;
        }
    }

    /// Sends `text` from `lane`'s simulated QR scanner (text then CR) over its pty, as a visitor
    /// holding a pass to the scanner; needs [`GateOptions::qr`].
    pub async fn scan(&self, lane: &str, text: &str) {
        self.scan_raw(lane, format!("{text}\r").as_bytes()).await
    }

    /// Sends raw bytes from `lane`'s simulated QR scanner (noise, split lines).
    pub async fn scan_raw(&self, lane: &str, bytes: &[u8]) {
        self.lane(lane)
            .qr
            .as_ref()
            .unwrap_or_else(|| panic!("lane {lane} has no QR scanner (GateOptions::qr)"))
            .lock()
            .await
            .send_raw(bytes)
            .await
            .expect("the scanner's pty takes the bytes");
    }

    /// Applies an update to the store and the live index (bumping the data version).
    pub async fn seed(&self, mut update: Update) {
        let version = {
            let mut v = self.data_version.lock().unwrap();
            *v += 1;
            *v
        };
        update.data_version = version;
        self.handle()
            .apply_update(&update)
            .await
            .expect("the update applies");
    }

    /// Every journalled event, oldest first.
    pub async fn events(&self) -> Vec<JournalEvent> {
        self.handle()
            .journal()
            .read_after(0, u32::MAX)
            .await
            .expect("the journal reads")
    }

    /// The highest sequence number journalled so far.
    pub async fn last_seq(&self) -> u64 {
        self.handle().journal_stats().await.last_seq
    }

    /// Waits for the first event after `after` that `pred` accepts.
    pub async fn wait_event_after(
        &self,
        after: u64,
        what: &str,
        pred: impl Fn(&JournalEvent) -> bool,
    ) -> JournalEvent {
        wait_for(&format!("journal event: {what}"), || async {
            self.events()
                .await
                .into_iter()
                .find(|e| e.seq > after && pred(e))
        })
        .await
    }

    /// Waits for the first event (of the whole journal) that `pred` accepts.
    pub async fn wait_event(
        &self,
        what: &str,
        pred: impl Fn(&JournalEvent) -> bool,
    ) -> JournalEvent {
        self.wait_event_after(0, what, pred).await
    }

    /// Waits for a decision on `lane` after `after`, and returns it.
    pub async fn wait_decision(&self, lane: &str, after: u64) -> (u64, DecisionRecord) {
        let e = self
            .wait_event_after(after, &format!("a decision on lane {lane}"), |e| {
                e.lane == lane && matches!(e.body, EventBody::Decision(_))
            })
            .await;
        match e.body {
            EventBody::Decision(d) => (e.seq, d),
            _ => unreachable!(),
        }
    }

    /// A lane's live status.
    pub fn status(&self, lane: &str) -> LaneStatus {
        self.handle()
            .watch_lane(lane)
            .unwrap_or_else(|| panic!("no lane {lane}"))
            .borrow()
            .clone()
    }

    /// Waits until a lane's status satisfies `pred`.
    pub async fn wait_status(&self, lane: &str, what: &str, pred: impl Fn(&LaneStatus) -> bool) {
        let mut rx = self
            .handle()
            .watch_lane(lane)
            .unwrap_or_else(|| panic!("no lane {lane}"));
        let outcome = tokio::time::timeout(DEADLINE, rx.wait_for(|s| pred(s))).await;
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => panic!("lane {lane} stopped while waiting for {what}"),
            Err(_) => panic!(
                "timed out waiting for lane {lane}: {what}; status {:?}",
                self.status(lane)
            ),
        }
    }

    /// Waits until the lane's state machine is in `state` (snake_case, e.g. `vehicle_present`).
    pub async fn wait_lane_state(&self, lane: &str, state: &str) {
        self.wait_status(lane, &format!("state {state}"), |s| s.state == state)
            .await
    }

    /// A vehicle drives onto the presence loop; returns once the lane has seen it.
    pub async fn arrive(&self, lane: &str) {
        self.lane(lane).set_presence(true);
        self.wait_lane_state(lane, "vehicle_present").await;
    }

    /// A vehicle that was not let through backs away: presence off, the tag leaves the field,
    /// and the lane returns to idle.
    pub async fn back_away(&self, lane: &str, epc: &[u8]) {
        let l = self.lane(lane);
        l.tag_out_of_field(epc);
        l.set_presence(false);
        self.wait_lane_state(lane, "idle").await;
    }

    /// A vehicle with tag `epc` arrives at `lane` and is read; returns the decision journalled
    /// for it (the tag stays in the field).
    pub async fn present(&self, lane: &str, epc: &[u8]) -> (u64, DecisionRecord) {
        let after = self.last_seq().await;
        self.arrive(lane).await;
        self.lane(lane).tag_in_field(epc);
        self.wait_decision(lane, after).await
    }

    /// A vehicle drives up, is read, waits for the arm, drives under it and away. Asserts it
    /// was granted; returns when the lane is idle again with the arm closed, with the instant
    /// the test cleared the safety loop.
    pub async fn drive_through(&self, lane: &str, epc: &[u8]) -> Passage {
        let l = self.lane(lane);
        let (decision_seq, decision) = self.present(lane, epc).await;
        assert!(
            decision.granted,
            "lane {lane}: expected a grant, got {decision:?}"
        );
        l.wait_arm(ArmState::Open).await;
        // The vehicle drives on: its tag leaves the field, it crosses the safety loop and leaves
        // the presence loop, then clears the safety loop.
        l.tag_out_of_field(epc);
        l.set_safety(true);
        self.wait_lane_state(lane, "passing").await;
        l.set_presence(false);
        l.wait_polls(2).await;
        let safety_cleared = l.set_safety(false);
        l.wait_arm(ArmState::Closed).await;
        self.wait_lane_state(lane, "idle").await;
        Passage {
            decision_seq,
            decision,
            safety_cleared,
        }
    }

    /// Stops the controller and waits for its tasks.
    pub async fn shutdown(mut self) {
        if let Some(mut handle) = self.handle.take() {
            // A task that was just stopped (a camera listener's health tick, a connection being
            // closed) may still hold the handle for a moment.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match Arc::try_unwrap(handle) {
                    Ok(handle) => return handle.shutdown().await,
                    Err(shared) if Instant::now() < deadline => {
                        handle = shared;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(_) => panic!("stop the sync runner before shutting the gate down"),
                }
            }
        }
    }

    /// Stops the controller if nothing else holds it; otherwise (a page server's connection
    /// task may still hold a clone, e.g. the web tests' booth page) leaves it to stop with its
    /// last holder.
    pub async fn shutdown_lenient(mut self) {
        if let Some(handle) = self.handle.take().and_then(|h| Arc::try_unwrap(h).ok()) {
            handle.shutdown().await;
        }
    }
}

/// What a granted passage looked like.
#[derive(Debug, Clone)]
pub struct Passage {
    /// The decision's sequence number.
    pub decision_seq: u64,
    pub decision: DecisionRecord,
    /// When the test cleared the safety loop.
    pub safety_cleared: Instant,
}

/// The current UTC minute.
pub fn now_minute() -> u32 {
    UtcMinute::from_datetime(Utc::now()).0
}

/// An active staff permit for every gate, valid from a day ago for a day.
pub fn permit(id: u32) -> PermitRecord {
    let now = now_minute();
    PermitRecord {
        id,
        category: "staff".into(),
        holder_id: 1000 + id,
        holder_name: format!("持证人{id}"),
        department: "计算机学院".into(),
        status: "active".into(),
        status_reason: String::new(),
        valid_from: now - 24 * 60,
        valid_until: now + 24 * 60,
        gates: "all".into(),
        schedule: String::new(),
        single_use: false,
        max_inside: None,
        version: 1,
    }
}

/// A 12-byte EPC whose last byte is `n`.
pub fn epc(n: u8) -> [u8; 12] {
    [
        0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0x21, 0x40, 0x36, n,
    ]
}

/// Upper-case hex, as the journal writes EPCs.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// One vehicle with plate `plate` (blue), holding `permit`, with tag `epc`.
pub fn vehicle_with_tag(vehicle_id: u32, plate: &str, permit: PermitRecord, epc: &[u8]) -> Update {
    Update {
        vehicles: vec![VehicleRecord {
            id: vehicle_id,
            plate: plate.into(),
            colour: "blue".into(),
            permit_ids: vec![permit.id],
        }],
        credentials: vec![CredentialRecord {
            epc: hex(epc),
            tid: None,
            vehicle_id,
        }],
        permits: vec![permit],
        ..Update::default()
    }
}

/// Whether `e` is a barrier command event with this action.
pub fn is_barrier(e: &JournalEvent, action: BarrierAction) -> bool {
    matches!(&e.body, EventBody::Barrier { action: a, .. } if *a == action)
}
