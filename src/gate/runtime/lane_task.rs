//! The lane task: owns a lane's [`Lane`] state machine. On every tag read it applies the
//! [`TagFilter`] while the presence loop is occupied, decides against the current index
//! snapshot, journals the decision and the barrier commands the machine answers with in one
//! commit, and only then hands the commands to the I/O task. It steps the machine on every
//! input poll and at its deadlines. It never touches a device itself.
//!
//! # Plate camera reads
//! A camera's read ([`LaneCommand::Camera`]) is a credential like a tag, decided by the same
//! engine and journalled with the camera's record (confidence, photo references). Each read gets
//! exactly one journal event that carries it, and the camera is answered once that event (or,
//! for a read waiting for its vehicle, its `camera_events` row) is committed — never later:
//! a camera never waits for a vehicle.
//! - **Repeats**: a read whose (camera, event id) the journal already has does nothing
//!   ([`SightingOutcome::Duplicate`]); the journal records every read it carries in the same
//!   commit, so this holds across a restart.
//! - **Low confidence** (below the camera's `min_confidence`): never opens. Journalled as a
//!   decision `held_low_confidence` (not granted), shown in [`LaneStatus::held`] with near
//!   matches until the guard gives a command at this lane, the vehicle leaves the loop, or — for
//!   a read with no vehicle on the loop — the presence window passes.
//! - **A vehicle on the loop**: decided (`DecisionRecord.camera` set), unless the vehicle's tag
//!   was decided within `cross_check_window_ms` (below).
//! - **No vehicle on the loop** (cameras read before the loop): the latest such read waits
//!   `presence_window_ms`. It is committed at receipt as a *waiting* row in `camera_events`
//!   (no event yet), and the camera is answered `Ignored("waiting_for_vehicle")`. If a vehicle
//!   reaches the loop in time the read is decided for it then (its decision carries it);
//!   otherwise it is journalled `plate_ignored` with why `no_vehicle_within_window`, or
//!   `superseded` when a newer read takes its place, or `gate_restarted` if the gate stopped
//!   first. A read of the plate of the vehicle that left the loop within the window is that
//!   vehicle's late read (`vehicle_left`), not a read for the next one. Text that is no plate:
//!   `unreadable_plate`.
//! - **Dual identification**: a tag and a plate read of the vehicle on the loop within
//!   `cross_check_window_ms`, either order, are checked against each other: the tag's
//!   registered plate must be the camera's (text, and colour when the camera reported one).
//!   A matching pair is one decision: the second read is journalled as evidence only
//!   (`plate_ignored`/`tag_ignored` with why `matches_tag_decision`/`matches_plate_decision`)
//!   and nothing is decided or opened again. A mismatch is journalled as a decision carrying
//!   both the EPC and the camera record (`plate` and `vehicle_id` are the tag's; the camera's
//!   text is in `camera.raw_plate`), flagged `plate_mismatch`: under `on_mismatch = "deny"` it is
//!   `denied_plate_mismatch` and the lane does not open on it; if the first credential had
//!   already opened the arm (a plate read after a granted tag, or the reverse), the arm is not
//!   pulled down on a vehicle — the decision also carries the flag `opened_before_cross_check`,
//!   for the office's alarm. Under `"flag"` the tag's own verdict stands, flagged. Once a pair
//!   disagreed, later reads of that vehicle are judged against it whatever the window (a tag
//!   re-read after its hold must not open what the check refused).
//! - **Never blocking**: a read costs the lane one primary-key look-up and one commit; photos
//!   are on disk before the read reaches the lane, and tag reads are served first (the loop is
//!   biased to the reader).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use firmware_protocols::lane_io::LaneInputs;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::device::device_event;
use super::fault_point::fault_after_open_commit;
use super::io_task::IoReport;
use super::plate_reads::{
    Departed, PlateSeen, SUGGESTIONS, TagSeen, VehicleReads, Waiting, near_plates, plates_match,
};
use super::status::{HeldRead, LaneStatus};
use crate::domain::{Direction, Epc, GateId, LaneId, PlateIdentity, ReasonCode};
use crate::gate::camera::{PlateSighting, SightingOutcome};
use crate::gate::config::{AntennaDirection, LaneConfig, LaneDirection, PlateMismatchPolicy};
use crate::gate::decision::{AntiPassback, CredentialRead, DecisionInput, Flags, decide};
use crate::gate::index::Index;
use crate::gate::journal::{Journal, JournalError};
use crate::gate::lane::{
    BarrierCommand, GuardCommand, GuardOpenReason, Lane, LaneEvent, LaneOutput, LaneSignals,
    LaneState, MachineInput, Mode, OpenCause,
};
use crate::gate::photos::PhotoStore;
use crate::gate::presence::{PresenceTable, PresenceView};
use crate::gate::reader::{ReaderEvent, TagFilter, TagRead};
use crate::gate::store::{PresenceRecord, Store};
use crate::wire::journal::{BarrierAction, DecisionRecord, EventBody, PlateReadRecord};
use crate::wire::sync::CameraHealth;

pub(super) mod pass_lane;

/// What a guard or the centre asks a lane to do.
#[derive(Debug)]
pub enum LaneCommand {
    /// Open (or keep closed, or release) by hand, with a reason. Always journalled.
    Guard {
        operator: String,
        command: GuardCommand,
        /// The reason code (visitor_registered, permit_holder_without_tag, emergency_vehicle,
        /// official_business, device_fault, other).
        reason: String,
        note: Option<String>,
        /// The plate the guard named for the vehicle (normalised), journalled with the
        /// override.
        plate: Option<String>,
        done: Option<oneshot::Sender<()>>,
    },
    /// Change the lane's mode.
    SetMode {
        mode: Mode,
        by: String,
        done: Option<oneshot::Sender<()>>,
    },
    /// A plate presented another way than a tag (typed by the guard, a camera, a QR pass),
    /// decided by the same rules.
    Plate {
        plate: PlateIdentity,
        direction: Direction,
    },
    /// A plate camera's read; `done` is answered once what the lane did is journalled.
    Camera {
        sighting: PlateSighting,
        done: oneshot::Sender<SightingOutcome>,
    },
    /// A text from the lane's QR scanner (`pass_lane`).
    Pass(pass_lane::PassScan),
}

/// The state shared by a gate's lanes.
#[derive(Debug)]
pub struct Shared {
    pub gate: GateId,
    pub tz: Tz,
    pub passback: AntiPassback,
    pub(super) index: RwLock<Arc<Index>>,
    pub(super) presence: Mutex<PresenceTable>,
    pub journal: Arc<Journal>,
    pub store: Store,
    /// The camera reads' photos.
    pub photos: Arc<PhotoStore>,
    /// Each plate camera's lane and whether it is online (kept by the camera listener, sent to
    /// the centre in the health report like the readers').
    pub cameras: Mutex<BTreeMap<String, (String, bool)>>,
    /// The public pass keys and the single-use passes granted here (`gate::pass_check`).
    pub passes: Mutex<crate::gate::pass_check::PassBook>,
}

impl Shared {
    /// Records camera `name` of `lane` as online or not.
    pub fn set_camera(&self, name: &str, lane: &str, online: bool) {
        self.cameras
            .lock()
            .expect("camera health lock poisoned")
            .insert(name.to_string(), (lane.to_string(), online));
    }

    /// The health of `lane`'s cameras, by name.
    pub fn cameras_of(&self, lane: &str) -> Vec<CameraHealth> {
        self.cameras
            .lock()
            .expect("camera health lock poisoned")
            .iter()
            .filter(|(_, (of, _))| of == lane)
            .map(|(name, (_, online))| CameraHealth {
                name: name.clone(),
                online: *online,
            })
            .collect()
    }

    /// The current index snapshot.
    pub fn index(&self) -> Arc<Index> {
        self.index.read().expect("index lock poisoned").clone()
    }
}

/// Parses a stored mode name.
pub fn parse_mode(text: &str) -> Option<Mode> {
    use crate::domain::DirectionSet;
    Some(match text {
        "normal" => Mode::Normal,
        "locked_closed" => Mode::LockedClosed,
        "locked_open" => Mode::LockedOpen,
        "manual_only" => Mode::ManualOnly(DirectionSet::BOTH),
        "manual_only_entry" => Mode::ManualOnly(DirectionSet::ENTRY),
        "manual_only_exit" => Mode::ManualOnly(DirectionSet::EXIT),
        _ => return None,
    })
}

/// The stable name of a mode.
pub fn mode_name(mode: Mode) -> &'static str {
    use crate::domain::DirectionSet;
    match mode {
        Mode::Normal => "normal",
        Mode::LockedClosed => "locked_closed",
        Mode::LockedOpen => "locked_open",
        Mode::ManualOnly(d) if d == DirectionSet::ENTRY => "manual_only_entry",
        Mode::ManualOnly(d) if d == DirectionSet::EXIT => "manual_only_exit",
        Mode::ManualOnly(_) => "manual_only",
    }
}

fn state_name(state: LaneState) -> String {
    let debug = format!("{state:?}");
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn signals(inputs: LaneInputs) -> LaneSignals {
    LaneSignals {
        presence: inputs.presence,
        safety: inputs.safety,
        open_limit: inputs.open_limit,
        closed_limit: inputs.closed_limit,
        fire: inputs.fire,
        tamper: inputs.tamper,
    }
}

/// A granted decision waiting for its vehicle to pass.
#[derive(Debug, Clone)]
struct Pending {
    effects: crate::gate::presence::Effects,
    record: DecisionRecord,
}

/// How long a lane waits before ticking again when its machine hands back a deadline already
/// due without changing state (which it must not): one input poll.
const RETICK_FLOOR: Duration = Duration::from_millis(50);

pub(super) struct LaneTask {
    number: LaneId,
    config: LaneConfig,
    shared: Arc<Shared>,
    machine: Lane,
    epoch: Instant,
    /// Barrier commands to the lane's I/O task, sent after they are journalled.
    io: mpsc::UnboundedSender<BarrierCommand>,
    present: bool,
    filter: TagFilter,
    skims: TagFilter,
    pending: Option<Pending>,
    /// The plate a guard named when opening by hand: the anonymous passage that follows is
    /// journalled with it.
    guard_plate: Option<String>,
    deadline: Option<Instant>,
    status: watch::Sender<LaneStatus>,
    last_reader_error: Option<(u8, Instant)>,
    metrics: crate::metrics::LaneMetrics,
    /// The presence loop as the last good input poll saw it (for arrivals and departures).
    loop_occupied: bool,
    /// The tag and plate reads of the vehicle on the loop (for the cross-check).
    vehicle: VehicleReads,
    /// A plate read that came before its vehicle.
    waiting: Option<Waiting>,
    /// The vehicle that last left the loop.
    departed: Option<Departed>,
    /// When a held read with no vehicle on the loop stops being shown.
    held_until: Option<Instant>,
}

impl LaneTask {
    pub(super) fn new(
        number: LaneId,
        config: LaneConfig,
        shared: Arc<Shared>,
        mode: Mode,
        status: watch::Sender<LaneStatus>,
        io: mpsc::UnboundedSender<BarrierCommand>,
    ) -> LaneTask {
        let mut machine = Lane::new(crate::gate::lane::LaneTimings {
            close_delay: Duration::from_millis(config.close_delay_ms),
            limit_timeout: Duration::from_millis(config.arm_timeout_ms),
        });
        let epoch = Instant::now();
        if mode != Mode::Normal {
            let _ = machine.step(Duration::ZERO, MachineInput::SetMode(mode));
        }
        let hold = Duration::from_millis(config.reader.tag_hold_ms);
        status.send_modify(|s| s.mode = mode_name(mode).into());
        let metrics = crate::metrics::LaneMetrics::new(shared.gate.0, &config.id);
        LaneTask {
            number,
            filter: TagFilter::new(config.reader.rssi_floor_dbm, hold),
            skims: TagFilter::new(config.reader.rssi_floor_dbm, hold),
            config,
            shared,
            machine,
            epoch,
            io,
            present: false,
            pending: None,
            guard_plate: None,
            deadline: None,
            status,
            last_reader_error: None,
            metrics,
            loop_occupied: false,
            vehicle: VehicleReads::default(),
            waiting: None,
            departed: None,
            held_until: None,
        }
    }

    pub(super) async fn run(
        mut self,
        mut reader: mpsc::Receiver<ReaderEvent>,
        mut commands: mpsc::Receiver<LaneCommand>,
        mut io_reports: mpsc::Receiver<IoReport>,
        shutdown: CancellationToken,
    ) {
        let far = || Instant::now() + Duration::from_secs(3600);
        loop {
            let deadline = self.deadline;
            let plate_deadline = self.plate_deadline();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(event) = reader.recv() => self.on_reader(event).await,
                Some(command) = commands.recv() => self.on_command(command).await,
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(far)), if deadline.is_some() => {
                    self.deadline = None;
                    let before = self.machine.state();
                    self.step(MachineInput::Tick, "auto", Vec::new()).await;
                    self.never_spin(before);
                }
                Some(report) = io_reports.recv() => self.on_io(report).await,
                _ = tokio::time::sleep_until(plate_deadline.unwrap_or_else(far)), if plate_deadline.is_some() => {
                    self.on_plate_deadline().await;
                }
            }
        }
    }

    fn now(&self) -> Duration {
        Instant::now().duration_since(self.epoch)
    }

    /// After a tick that left the state as it was: a deadline that is already due again would
    /// make this loop tick at once, for ever, burning the core the other lanes need. The machine
    /// never hands one out (`lane_machine` property tests); should it ever, the lane ticks again
    /// after [`RETICK_FLOOR`] instead, and says so.
    fn never_spin(&mut self, before: LaneState) {
        let now = Instant::now();
        if let Some(deadline) = self.deadline
            && deadline <= now
            && self.machine.state() == before
        {
            tracing::error!(lane = %self.config.id, state = ?before, "the lane machine handed back a deadline already due; ticking again later");
            self.deadline = Some(now + RETICK_FLOOR);
        }
    }

    /// Commits `bodies` in one commit. A failure never stops the lane: the journal keeps what
    /// it cannot write (and reports its failure itself, once, rather than once per event).
    async fn journal(&mut self, bodies: &[EventBody]) {
        if bodies.is_empty() {
            return;
        }
        let result = self
            .shared
            .journal
            .append_batch(Utc::now(), &self.config.id, bodies)
            .await;
        self.journalled(result);
    }

    /// Commits `bodies` (possibly none) with `waiting`, a plate read kept until its vehicle
    /// comes, in one commit; failures as [`Self::journal`].
    async fn journal_waiting(&mut self, bodies: &[EventBody], waiting: &PlateReadRecord) {
        let result = self
            .shared
            .journal
            .append_waiting(Utc::now(), &self.config.id, bodies, waiting)
            .await;
        self.journalled(result);
    }

    fn journalled(&self, result: Result<u64, JournalError>) {
        match result {
            Ok(_) => {}
            Err(e @ JournalError::NotWritten { .. }) => {
                tracing::debug!(lane = %self.config.id, error = %e, "events not journalled yet; carrying on");
            }
            Err(e) => {
                tracing::error!(lane = %self.config.id, error = %e, "cannot journal events; carrying on");
            }
        }
    }

    /// Steps the machine with an input poll's outcome.
    async fn on_io(&mut self, report: IoReport) {
        match report {
            IoReport::Inputs(inputs) => {
                self.present = inputs.presence;
                let arrived = inputs.presence && !self.loop_occupied;
                let left = !inputs.presence && self.loop_occupied;
                self.loop_occupied = inputs.presence;
                if arrived || left {
                    if left {
                        self.departed = self.vehicle.plate().map(|plate| Departed {
                            plate,
                            at: Instant::now(),
                        });
                        self.clear_held();
                    } else {
                        // A held read shown before the vehicle came now waits for it to leave.
                        self.held_until = None;
                    }
                    self.vehicle = VehicleReads::default();
                }
                // With the fire linkage active the machine opens for nothing else.
                let cause = if inputs.fire { "fire" } else { "auto" };
                self.step(MachineInput::Signals(signals(inputs)), cause, Vec::new())
                    .await;
                // A read waits only while no vehicle was seen on the loop (none there, or the
                // inputs unreadable): the first poll that sees one acts on it.
                if inputs.presence
                    && let Some(waiting) = self.waiting.take()
                {
                    let now = Instant::now();
                    if now <= waiting.until {
                        self.act_on_plate(waiting.sighting, now).await;
                    } else {
                        self.ignore_read(waiting.record, "no_vehicle_within_window")
                            .await;
                    }
                }
            }
            IoReport::Failed => {
                self.present = false;
                self.step(MachineInput::IoReadFailed, "io", Vec::new())
                    .await;
            }
        }
    }

    /// The lane's direction as journalled when no read tells it (`unknown` on a two-way lane).
    fn lane_direction(&self) -> &'static str {
        match self.config.direction {
            LaneDirection::Entry => Direction::Entry.as_str(),
            LaneDirection::Exit => Direction::Exit.as_str(),
            LaneDirection::TwoWay => "unknown",
        }
    }

    fn direction_of(&self, read: &TagRead) -> Direction {
        match self.config.direction {
            LaneDirection::Entry => Direction::Entry,
            LaneDirection::Exit => Direction::Exit,
            LaneDirection::TwoWay => match self.config.reader.antennas.get(&read.antenna) {
                Some(AntennaDirection::Exit) => Direction::Exit,
                _ => Direction::Entry,
            },
        }
    }

    async fn on_reader(&mut self, event: ReaderEvent) {
        match event {
            ReaderEvent::DeviceError(code) => {
                let raw = code.to_byte();
                let now = Instant::now();
                let repeat = self.last_reader_error.is_some_and(|(c, at)| {
                    c == raw && now.duration_since(at) < Duration::from_secs(60)
                });
                if !repeat {
                    self.last_reader_error = Some((raw, now));
                    self.journal(&[device_event("reader", "error", format!("{code:?}"))])
                        .await;
                }
            }
            ReaderEvent::Tag(read) => self.on_tag(read).await,
        }
    }

    async fn on_tag(&mut self, read: TagRead) {
        let now = Instant::now();
        let Ok(epc) = Epc::from_bytes(&read.epc) else {
            return;
        };
        if !self.present {
            // A skim, a neighbouring lane or an attack: opens nothing; journalled once per hold.
            if self.skims.admit(&read, now.into_std()).is_ok() {
                self.status.send_modify(|s| s.tags_ignored_no_vehicle += 1);
                self.journal(&[EventBody::TagIgnored {
                    epc: epc.to_string(),
                    antenna: read.antenna,
                    rssi_dbm: read.rssi_dbm,
                    why: "no_vehicle_on_loop".into(),
                }])
                .await;
            }
            return;
        }
        if self.filter.admit(&read, now.into_std()).is_err() {
            return;
        }
        let direction = self.direction_of(&read);
        let before = self.pending.clone();
        let tid = read
            .tid
            .as_deref()
            .and_then(|t| crate::domain::Tid::from_bytes(t).ok());
        let mut record = self.decide(CredentialRead::Tag { epc, tid }, direction);
        record.epc = Some(epc.to_string());
        record.antenna = Some(read.antenna);
        record.rssi_dbm = Some(read.rssi_dbm);
        let registered = self
            .shared
            .index()
            .credential(&epc)
            .map(|c| c.vehicle().plate());
        let window = Duration::from_millis(self.config.plate.cross_check_window_ms);
        if let Some(reg) = registered
            && let Some(seen) = self.vehicle.plate_to_check(now, window).cloned()
        {
            if plates_match(reg, &seen.sighting) {
                if record.granted == seen.granted {
                    // The pair agrees: one decision (the plate's), this read is evidence.
                    self.pending = before;
                    self.vehicle.tag = Some(TagSeen {
                        registered,
                        record,
                        direction,
                        at: now,
                    });
                    self.journal(&[EventBody::TagIgnored {
                        epc: epc.to_string(),
                        antenna: read.antenna,
                        rssi_dbm: read.rssi_dbm,
                        why: "matches_plate_decision".into(),
                    }])
                    .await;
                    return;
                }
                // The tag says otherwise on its own account (its own blacklist entry, a cloned
                // TID): its decision stands, with the read it was checked against.
                record.camera = Some(Box::new(seen.sighting.record()));
            } else {
                record = self.mismatch(record, &seen.sighting, seen.granted);
                if !record.granted {
                    // Whatever the plate's read let through is what passes.
                    self.pending = before;
                }
            }
        }
        self.vehicle.tag = Some(TagSeen {
            registered,
            record: record.clone(),
            direction,
            at: now,
        });
        let out = self.machine.step(self.now(), MachineInput::Read);
        self.handle(out, "grant", Vec::new()).await;
        // Acted on: the OPEN (if the arm was not already up) is with the I/O task.
        if self.decided(record, direction).await.0 {
            self.metrics.tag_to_open(read.at.elapsed());
        }
    }

    /// The decision record of a tag whose registered plate is not the camera's `sighting`
    /// (see the module header): `record` is the tag's own decision.
    fn mismatch(
        &self,
        mut record: DecisionRecord,
        sighting: &PlateSighting,
        opened_before: bool,
    ) -> DecisionRecord {
        record.camera = Some(Box::new(sighting.record()));
        record.flags.push("plate_mismatch".into());
        if self.config.plate.on_mismatch == PlateMismatchPolicy::Deny {
            record.granted = false;
            record.reason = ReasonCode::DeniedPlateMismatch;
            if opened_before {
                record.flags.push("opened_before_cross_check".into());
            }
        }
        record
    }

    /// Runs the decision and returns its journal record; remembers a grant's effects.
    fn decide(&mut self, read: CredentialRead, direction: Direction) -> DecisionRecord {
        let index = self.shared.index();
        let input = DecisionInput {
            read,
            gate: self.shared.gate,
            lane: self.number,
            direction,
            now: Utc::now(),
            tz: self.shared.tz,
            passback: self.shared.passback,
        };
        let started = std::time::Instant::now();
        let decision = {
            let presence = self.shared.presence.lock().expect("presence lock poisoned");
            decide(&index, &*presence as &dyn PresenceView, &input)
        };
        let decide_ns = started.elapsed().as_nanos() as u64;
        let mut flags = Vec::new();
        for (flag, name) in [
            (Flags::SOFT_PASSBACK, "soft_passback"),
            (Flags::TID_MISMATCH, "tid_mismatch"),
            (Flags::OVERSTAY, "overstay"),
            (Flags::EXIT_WITHOUT_ENTRY, "exit_without_entry"),
        ] {
            if decision.flags.contains(flag) {
                flags.push(name.to_string());
            }
        }
        if let Some(hit) = decision.blacklist {
            flags.push(format!("blacklist_alarm_{:?}", hit.alarm).to_ascii_lowercase());
        }
        let record = DecisionRecord {
            direction: direction.as_str().into(),
            credential: match read {
                CredentialRead::Tag { .. } => "tag".into(),
                CredentialRead::Plate(_) => "plate".into(),
            },
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: decision.plate.map(|p| p.plate.as_str().to_string()),
            granted: decision.granted,
            reason: decision.reason,
            flags,
            permit_id: decision.permit_id.map(|p| i64::from(p.0)),
            vehicle_id: decision.vehicle_id.map(|v| i64::from(v.0)),
            holder: decision.holder_name.map(str::to_string),
            category: decision.category.map(|c| c.as_str().to_string()),
            data_version: decision.data_version,
            decide_ns,
            camera: None,
            pass: None,
        };
        self.pending = decision.granted.then(|| Pending {
            effects: decision.effects,
            record: record.clone(),
        });
        record
    }

    /// Feeds a decision to the machine and journals it with whatever the machine answers;
    /// returns what the lane did (a grant the lane refuses to act on is its denial).
    async fn decided(
        &mut self,
        mut record: DecisionRecord,
        direction: Direction,
    ) -> (bool, ReasonCode) {
        let reason = record.reason;
        let granted = record.granted;
        let mut counted = reason;
        let out = self.machine.step(
            self.now(),
            MachineInput::Decision {
                granted,
                reason,
                direction,
            },
        );
        // A grant the lane refuses to act on (lockdown, manual only, fault) is journalled and
        // shown as the lane's denial; the permit fields still say which permit would have let
        // the vehicle in.
        if granted
            && let Some(lane_reason) = out.events.iter().find_map(|e| match e {
                LaneEvent::Denied(r) => Some(*r),
                _ => None,
            })
        {
            record.granted = false;
            record.reason = lane_reason;
            counted = lane_reason;
        }
        self.metrics.decision(counted, record.decide_ns);
        self.status.send_modify(|s| {
            s.decisions += 1;
            s.last_decision = Some(record.clone());
        });
        let verdict = (record.granted, record.reason);
        self.handle(out, "grant", vec![EventBody::Decision(record)])
            .await;
        verdict
    }

    async fn on_command(&mut self, command: LaneCommand) {
        match command {
            LaneCommand::Guard {
                operator,
                command,
                reason,
                note,
                plate,
                done,
            } => {
                let action = match command {
                    GuardCommand::Open(_) => "open",
                    GuardCommand::KeepClosed => "keep_closed",
                    GuardCommand::Release => "release",
                };
                if matches!(command, GuardCommand::Open(_)) {
                    self.guard_plate.clone_from(&plate);
                }
                let body = EventBody::Override {
                    operator,
                    action: action.into(),
                    reason,
                    note,
                    plate,
                };
                // The guard has decided: a held read is no longer waiting for them.
                self.clear_held();
                self.step(MachineInput::Guard(command), "guard", vec![body])
                    .await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            LaneCommand::SetMode { mode, by, done } => {
                let from = self.machine.mode();
                if let Err(e) = self
                    .shared
                    .store
                    .set_lane_mode(&self.config.id, mode_name(mode))
                    .await
                {
                    tracing::error!(error = %e, "cannot store the lane mode");
                }
                let body = EventBody::ModeChange {
                    from: mode_name(from).into(),
                    to: mode_name(mode).into(),
                    by,
                };
                self.status.send_modify(|s| s.mode = mode_name(mode).into());
                let cause = if mode == Mode::LockedOpen {
                    "locked_open"
                } else {
                    "mode"
                };
                self.step(MachineInput::SetMode(mode), cause, vec![body])
                    .await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            LaneCommand::Plate { plate, direction } => {
                let out = self.machine.step(self.now(), MachineInput::Read);
                self.handle(out, "grant", Vec::new()).await;
                let record = self.decide(CredentialRead::Plate(plate), direction);
                self.decided(record, direction).await;
            }
            LaneCommand::Camera { sighting, done } => {
                let outcome = self.on_sighting(sighting).await;
                let _ = done.send(outcome);
                self.pass_after_camera().await;
            }
            LaneCommand::Pass(scan) => self.on_pass(scan).await,
        }
    }

    /// A plate camera's read (see the module header for what becomes of it).
    async fn on_sighting(&mut self, sighting: PlateSighting) -> SightingOutcome {
        // A read without an event id cannot be told from another one: never a repeat.
        if !sighting.event_id.is_empty() && self.already_received(&sighting) {
            return SightingOutcome::Duplicate;
        }
        self.status.send_modify(|s| s.camera_reads += 1);
        let now = Instant::now();
        if sighting.confidence < sighting.min_confidence {
            return self.hold(sighting, now).await;
        }
        let Some(plate) = sighting.plate else {
            return self
                .ignore_read(sighting.record(), "unreadable_plate")
                .await;
        };
        if self.present {
            return self.act_on_plate(sighting, now).await;
        }
        let window = Duration::from_millis(self.config.plate.presence_window_ms);
        if self.departed.is_some_and(|d| {
            d.plate.plate == plate.plate && now.saturating_duration_since(d.at) <= window
        }) {
            return self.ignore_read(sighting.record(), "vehicle_left").await;
        }
        let record = sighting.record();
        let superseded: Vec<EventBody> = self
            .waiting
            .take()
            .map(|old| EventBody::PlateIgnored {
                camera: old.record,
                why: "superseded".into(),
            })
            .into_iter()
            .collect();
        self.journal_waiting(&superseded, &record).await;
        self.waiting = Some(Waiting {
            sighting,
            record,
            until: now + window,
        });
        SightingOutcome::Ignored("waiting_for_vehicle".into())
    }

    /// Whether this camera event was received before: waiting here, or known to the journal.
    fn already_received(&self, sighting: &PlateSighting) -> bool {
        let waiting = self.waiting.as_ref().is_some_and(|w| {
            w.sighting.camera == sighting.camera && w.sighting.event_id == sighting.event_id
        });
        waiting
            || self
                .shared
                .journal
                .camera_read_known(&sighting.camera, &sighting.event_id)
                .unwrap_or_else(|e| {
                    tracing::error!(lane = %self.config.id, error = %e,
                        "cannot look up a camera event; taking it as new");
                    false
                })
    }

    /// Journals a read the lane does not act on.
    async fn ignore_read(&mut self, camera: PlateReadRecord, why: &str) -> SightingOutcome {
        self.journal(&[EventBody::PlateIgnored {
            camera,
            why: why.into(),
        }])
        .await;
        SightingOutcome::Ignored(why.into())
    }

    /// The direction of a camera's read: the camera's, else the lane's (entry on a two-way lane).
    fn sighting_direction(&self, sighting: &PlateSighting) -> Direction {
        sighting.direction.unwrap_or(match self.config.direction {
            LaneDirection::Exit => Direction::Exit,
            _ => Direction::Entry,
        })
    }

    /// A confident read of a plate for the vehicle on the loop: cross-checked with its tag, or
    /// decided.
    async fn act_on_plate(&mut self, sighting: PlateSighting, now: Instant) -> SightingOutcome {
        let Some(plate) = sighting.plate else {
            return self
                .ignore_read(sighting.record(), "unreadable_plate")
                .await;
        };
        let window = Duration::from_millis(self.config.plate.cross_check_window_ms);
        if let Some(tag) = self.vehicle.tag_to_check(now, window).cloned()
            && let Some(registered) = tag.registered
        {
            if plates_match(registered, &sighting) {
                // The pair agrees: one decision (the tag's), this read is evidence.
                self.vehicle.plate = Some(PlateSeen {
                    sighting: sighting.clone(),
                    granted: tag.record.granted,
                    at: now,
                });
                // The console shows the photos beside the tag's decision.
                let camera = sighting.record();
                self.status
                    .send_if_modified(|s| match s.last_decision.as_mut() {
                        Some(d) if d.epc == tag.record.epc && d.camera.is_none() => {
                            d.camera = Some(Box::new(camera.clone()));
                            true
                        }
                        _ => false,
                    });
                return self.ignore_read(camera, "matches_tag_decision").await;
            }
            let record = self.mismatch(tag.record.clone(), &sighting, tag.record.granted);
            let (granted, reason) = self.decided(record, tag.direction).await;
            self.vehicle.plate = Some(PlateSeen {
                sighting,
                granted,
                at: now,
            });
            return SightingOutcome::Decided { granted, reason };
        }
        if self
            .vehicle
            .plate
            .as_ref()
            .is_some_and(|seen| seen.sighting.plate == Some(plate))
        {
            return self.ignore_read(sighting.record(), "repeat_read").await;
        }
        let direction = self.sighting_direction(&sighting);
        let out = self.machine.step(self.now(), MachineInput::Read);
        self.handle(out, "grant", Vec::new()).await;
        let mut record = self.decide(CredentialRead::Plate(plate), direction);
        record.camera = Some(Box::new(sighting.record()));
        let (granted, reason) = self.decided(record, direction).await;
        self.vehicle.plate = Some(PlateSeen {
            sighting,
            granted,
            at: now,
        });
        SightingOutcome::Decided { granted, reason }
    }

    /// A read too unsure to act on: journalled as held (never granted) and shown to the guard
    /// with near matches.
    async fn hold(&mut self, sighting: PlateSighting, now: Instant) -> SightingOutcome {
        let index = self.shared.index();
        let camera = sighting.record();
        let direction = self.sighting_direction(&sighting);
        let record = DecisionRecord {
            direction: direction.as_str().into(),
            credential: "plate".into(),
            epc: None,
            tid: None,
            antenna: None,
            rssi_dbm: None,
            plate: sighting.plate.map(|p| p.plate.as_str().to_string()),
            granted: false,
            reason: ReasonCode::HeldLowConfidence,
            flags: Vec::new(),
            permit_id: None,
            vehicle_id: sighting
                .plate
                .and_then(|p| index.vehicle_by_plate(p))
                .map(|v| i64::from(v.id().0)),
            holder: None,
            category: None,
            data_version: index.data_version(),
            decide_ns: 0,
            camera: Some(Box::new(camera.clone())),
            pass: None,
        };
        let held = HeldRead {
            camera: camera.camera,
            event_id: camera.event_id,
            plate_text: camera.raw_plate,
            colour: camera.colour,
            confidence: camera.confidence,
            photos: camera.photos,
            suggestions: near_plates(&index, &sighting.plate_text, SUGGESTIONS),
            at: Utc::now(),
        };
        drop(index);
        self.status.send_modify(|s| s.held = Some(held));
        if self.present {
            self.held_until = None;
            let out = self.machine.step(self.now(), MachineInput::Read);
            self.handle(out, "grant", Vec::new()).await;
            self.decided(record, direction).await;
        } else {
            self.held_until =
                Some(now + Duration::from_millis(self.config.plate.presence_window_ms));
            self.status.send_modify(|s| {
                s.decisions += 1;
                s.last_decision = Some(record.clone());
            });
            self.journal(&[EventBody::Decision(record)]).await;
        }
        SightingOutcome::Held
    }

    fn clear_held(&mut self) {
        self.held_until = None;
        self.status.send_if_modified(|s| s.held.take().is_some());
    }

    /// When the lane next has a plate read to give up on or a held read to stop showing.
    fn plate_deadline(&self) -> Option<Instant> {
        let waiting = self.waiting.as_ref().map(|w| w.until);
        match (waiting, self.held_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn on_plate_deadline(&mut self) {
        let now = Instant::now();
        if self.held_until.is_some_and(|t| t <= now) {
            self.clear_held();
        }
        if self.waiting.as_ref().is_some_and(|w| w.until <= now)
            && let Some(waiting) = self.waiting.take()
        {
            self.ignore_read(waiting.record, "no_vehicle_within_window")
                .await;
        }
    }

    async fn step(&mut self, input: MachineInput, cause: &str, bodies: Vec<EventBody>) {
        let out = self.machine.step(self.now(), input);
        self.handle(out, cause, bodies).await;
    }

    /// Journals the machine's events and commands (with `bodies` first) in one commit, then
    /// carries the commands out.
    async fn handle(&mut self, out: LaneOutput, cause: &str, mut bodies: Vec<EventBody>) {
        let mut passed = None;
        for event in &out.events {
            match event {
                LaneEvent::StateChanged { .. } => {}
                LaneEvent::VehiclePassed(cause) => passed = Some(*cause),
                // Already journalled by the runtime in richer form (the decision record, the
                // override with its operator, the mode change with who asked).
                LaneEvent::Denied(_)
                | LaneEvent::GuardOpened(_)
                | LaneEvent::GuardKeptClosed
                | LaneEvent::GuardReleased => {}
                LaneEvent::ModeChanged { .. }
                    if bodies
                        .iter()
                        .any(|b| matches!(b, EventBody::ModeChange { .. })) => {}
                other => bodies.push(lane_event_body(other)),
            }
        }
        if let Some(open_cause) = passed {
            match self.pending.take() {
                Some(pending) => {
                    bodies.push(EventBody::Passage {
                        direction: pending.record.direction.clone(),
                        plate: pending.record.plate.clone(),
                        vehicle_id: pending.record.vehicle_id,
                        permit_id: pending.record.permit_id,
                    });
                    self.record_passage(&pending).await;
                }
                // A vehicle let through by the guard, or following under the raised arm: it
                // passed, but no decision identifies it.
                None => {
                    // Let through by the guard: the plate they named, if any.
                    let plate = match open_cause {
                        OpenCause::Guard => self.guard_plate.take(),
                        _ => None,
                    };
                    bodies.push(EventBody::Passage {
                        direction: self.lane_direction().into(),
                        plate,
                        vehicle_id: None,
                        permit_id: None,
                    });
                    // Nobody let this one through: it followed another vehicle, or drove under an
                    // arm the barrier's own safety reversing held up. The guard must know.
                    if !matches!(open_cause, OpenCause::Guard | OpenCause::Evacuation) {
                        bodies.push(EventBody::LaneFault {
                            fault: "unauthorized_passage".into(),
                            detail: "a vehicle passed without a grant (tailgating, or under an arm held up for safety)".into(),
                        });
                    }
                }
            }
        }
        // A grant belongs to the vehicle on the loop: once that vehicle has left without
        // passing (backed out, or turned away by a lockdown), its effects must not be recorded
        // for the next vehicle through.
        if out.events.iter().any(|e| {
            matches!(
                e,
                LaneEvent::VehicleBackedOut
                    | LaneEvent::StateChanged {
                        to: LaneState::Idle,
                        ..
                    }
            )
        }) {
            self.pending = None;
            self.guard_plate = None;
        }
        for command in &out.commands {
            let (action, cause) = match command {
                BarrierCommand::Open => (BarrierAction::Open, cause),
                BarrierCommand::Close => (BarrierAction::Close, "auto_close"),
                BarrierCommand::StopOn => (BarrierAction::Hold, cause),
                BarrierCommand::StopOff => (BarrierAction::Release, cause),
            };
            bodies.push(EventBody::Barrier {
                action,
                cause: cause.into(),
            });
        }
        self.journal(&bodies).await;
        if out.commands.contains(&BarrierCommand::Open) {
            fault_after_open_commit();
        }
        for command in out.commands {
            self.execute(command);
        }
        self.deadline = out.deadline.map(|d| self.epoch + d);
        let state = state_name(self.machine.state());
        let mode = mode_name(self.machine.mode());
        self.status.send_if_modified(|s| {
            let changed = s.state != state || s.mode != mode;
            s.state = state;
            s.mode = mode.into();
            changed
        });
    }

    async fn record_passage(&mut self, pending: &Pending) {
        let at = Utc::now();
        {
            let mut presence = self.shared.presence.lock().expect("presence lock poisoned");
            presence.record(&pending.effects, at);
        }
        use crate::gate::presence::PresenceEffect;
        let record = match pending.effects.presence {
            Some(PresenceEffect::VehicleInside { vehicle, gate }) => Some(PresenceRecord {
                vehicle_id: vehicle,
                inside: true,
                since_ms: at.timestamp_millis(),
                gate: gate.0,
            }),
            Some(PresenceEffect::VehicleOutside { vehicle }) => Some(PresenceRecord {
                vehicle_id: vehicle,
                inside: false,
                since_ms: at.timestamp_millis(),
                gate: self.shared.gate.0,
            }),
            _ => None,
        };
        if let Some(record) = record
            && let Err(e) = self.shared.store.set_presence(record).await
        {
            tracing::error!(error = %e, "cannot store presence");
        }
        if let Some(permit) = pending.effects.consume_single_use
            && let Err(e) = self
                .shared
                .store
                .consume(permit, at.timestamp_millis())
                .await
        {
            tracing::error!(error = %e, "cannot store a consumed pass");
        }
    }

    /// Hands a journalled command to the I/O task, which puts it on the wire ahead of the next
    /// input poll.
    fn execute(&mut self, command: BarrierCommand) {
        if self.io.send(command).is_err() {
            tracing::error!(lane = %self.config.id, ?command, "the lane's I/O task has ended: command not sent");
        }
    }
}

fn lane_event_body(event: &LaneEvent) -> EventBody {
    use crate::gate::lane::LaneFault;
    let fault = |fault: &str, detail: String| EventBody::LaneFault {
        fault: fault.into(),
        detail,
    };
    match event {
        LaneEvent::Fault(f) => fault(
            match f {
                LaneFault::ArmDidNotOpen => "arm_did_not_open",
                LaneFault::ArmDidNotClose => "arm_did_not_close",
                LaneFault::IoReadFailed => "io_read_failed",
                LaneFault::Tamper => "tamper",
            },
            String::new(),
        ),
        LaneEvent::IoRecovered => fault("io_recovered", String::new()),
        LaneEvent::FireAlarm { active } => fault(
            if *active {
                "fire_alarm"
            } else {
                "fire_alarm_cleared"
            },
            String::new(),
        ),
        LaneEvent::ReadWithoutVehicle => fault("read_without_vehicle", String::new()),
        LaneEvent::GrantWithoutVehicle => fault("grant_without_vehicle", String::new()),
        LaneEvent::GrantNotActed => fault("grant_not_acted", "mode or fault".into()),
        LaneEvent::Denied(reason) => fault("denied", reason.as_str().into()),
        LaneEvent::GuardOpened(reason) => fault("guard_opened", guard_reason(*reason).into()),
        LaneEvent::GuardKeptClosed => fault("guard_kept_closed", String::new()),
        LaneEvent::GuardReleased => fault("guard_released", String::new()),
        LaneEvent::ModeChanged { from, to } => EventBody::ModeChange {
            from: mode_name(*from).into(),
            to: mode_name(*to).into(),
            by: "lane".into(),
        },
        LaneEvent::VehiclePassed(_) | LaneEvent::StateChanged { .. } => {
            fault("internal", format!("{event:?}"))
        }
        LaneEvent::VehicleBackedOut => fault("vehicle_backed_out", String::new()),
    }
}

/// The stable code of a guard's open reason.
pub fn guard_reason(reason: GuardOpenReason) -> &'static str {
    match reason {
        GuardOpenReason::VisitorRegistered => "visitor_registered",
        GuardOpenReason::EmergencyVehicle => "emergency_vehicle",
        GuardOpenReason::EquipmentFault => "device_fault",
        GuardOpenReason::PermitChecked => "permit_holder_without_tag",
        GuardOpenReason::Other => "other",
    }
}
