//! Visitor passes at the lane: what the lane task does with a text from its QR scanner
//! (`runtime::qr_task`). The rules are `gate::pass_check`'s; this is the lane's part:
//!
//! - **A vehicle must be on the presence loop**, as for tags: a pass scanned with none opens
//!   nothing, is counted in [`crate::gate::runtime::LaneStatus::passes_ignored_no_vehicle`] and logged (someone
//!   holding a phone to the scanner from the pavement).
//! - **Repeats**: scanners send a code again and again while it is held in front of them; the
//!   same text for the vehicle on the loop is decided once (forgotten when the vehicle leaves
//!   or the next one arrives, like the cross-check's reads).
//! - **Camera cross-check**, when the lane has a plate camera: the pass's plate must be the
//!   camera's read of the vehicle (same text, or one look-alike character apart — the camera's
//!   usual error; the pass carries no colour). A mismatch is `denied_pass_plate_mismatch`,
//!   flagged `plate_mismatch` with the camera's record, under `[lane.plate] on_mismatch =
//!   "deny"` (under `"flag"` the pass's own verdict stands, flagged). If the camera has not read
//!   the vehicle yet, the pass **waits** for that read up to `cross_check_window_ms` and is
//!   decided as soon as it comes; when the window passes without one it is decided without
//!   the check and flagged `no_camera_read` (a camera that cannot read a dirty plate must not
//!   lock visitors out; the flag and the pass's own signed plate are the office's evidence).
//! - **Same lane machine** as every credential (`decided`): a lane in manual-only or locked
//!   mode refuses a granted pass as it refuses a granted tag.
//! - **Single use**: a grant the lane acts on consumes (booking, direction) at once — in memory
//!   and in the gate store — so a second scan is refused as used even before the car moves,
//!   with the centre down, and after a restart.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::super::plate_reads::{PassSeen, pass_plate_matches};
use super::{LaneTask, Pending};
use crate::domain::{Direction, Plate, ReasonCode};
use crate::gate::config::LaneDirection;
use crate::gate::decision::Flags;
use crate::gate::lane::{LaneState, MachineInput};
use crate::gate::pass_check::{PassDecision, PassInput, check_pass};
use crate::gate::presence::PresenceView;
use crate::gate::qr::QrDirection;
use crate::wire::journal::{DecisionRecord, PassUse};

/// A text from the lane's QR scanner, handed to the lane task.
#[derive(Debug)]
pub struct PassScan {
    /// The scanned text.
    pub text: String,
    /// The scan waited for the camera's read and the wait is over: decide without it.
    pub camera_wait_over: bool,
    /// Answered with what the lane did.
    pub reply: Option<oneshot::Sender<PassReply>>,
}

/// What the lane did with a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassReply {
    /// Decided and journalled (after the lane machine had its say).
    Decided {
        /// Whether the lane let the vehicle through on it.
        granted: bool,
        /// The reason journalled.
        reason: ReasonCode,
    },
    /// Not acted on, and why (`no_vehicle_on_loop`, `repeat_scan`, `vehicle_left`, …).
    Ignored(&'static str),
    /// Waiting for the camera's read of the vehicle: send the scan again with
    /// `camera_wait_over` after this long (it is decided earlier if the read comes).
    WaitCamera(Duration),
}

impl LaneTask {
    /// A scanned text (see the module header).
    pub(super) async fn on_pass(&mut self, scan: PassScan) {
        let reply = self.pass_scanned(scan.text, scan.camera_wait_over).await;
        if let Some(r) = scan.reply {
            let _ = r.send(reply);
        }
    }

    async fn pass_scanned(&mut self, text: String, wait_over: bool) -> PassReply {
        if !self.present {
            if wait_over {
                return PassReply::Ignored("vehicle_left");
            }
            self.status
                .send_modify(|s| s.passes_ignored_no_vehicle += 1);
            tracing::info!(lane = %self.config.id, "a pass was scanned with no vehicle on the loop; ignored");
            return PassReply::Ignored("no_vehicle_on_loop");
        }
        let now = Instant::now();
        match &self.vehicle.pass {
            Some(seen) if seen.text == text => match seen.waiting_until {
                None => return PassReply::Ignored("repeat_scan"),
                Some(_) if !wait_over => return PassReply::Ignored("waiting_for_camera"),
                Some(_) => {}
            },
            Some(_) if wait_over => return PassReply::Ignored("superseded"),
            None if wait_over => return PassReply::Ignored("vehicle_left"),
            _ => {}
        }
        let has_camera = !self.shared.cameras_of(&self.config.id).is_empty();
        if has_camera && self.vehicle.plate.is_none() && !wait_over {
            let window = Duration::from_millis(self.config.plate.cross_check_window_ms);
            self.vehicle.pass = Some(PassSeen {
                text,
                waiting_until: Some(now + window),
            });
            return PassReply::WaitCamera(window);
        }
        self.vehicle.pass = Some(PassSeen {
            text: text.clone(),
            waiting_until: None,
        });
        let (granted, reason) = self.decide_pass(&text, has_camera).await;
        PassReply::Decided { granted, reason }
    }

    /// After a camera read: a pass waiting for the vehicle's read is decided now.
    pub(super) async fn pass_after_camera(&mut self) {
        let Some(text) = self
            .vehicle
            .pass
            .as_ref()
            .filter(|p| p.waiting_until.is_some() && self.vehicle.plate.is_some())
            .map(|p| p.text.clone())
        else {
            return;
        };
        self.vehicle.pass = Some(PassSeen {
            text: text.clone(),
            waiting_until: None,
        });
        self.decide_pass(&text, true).await;
    }

    /// The direction a pass is decided for: the lane's, or on a two-way lane the scanner's.
    fn pass_direction(&self) -> Direction {
        match self.config.direction {
            LaneDirection::Entry => Direction::Entry,
            LaneDirection::Exit => Direction::Exit,
            LaneDirection::TwoWay => match self.config.qr.as_ref().and_then(|q| q.direction) {
                Some(QrDirection::Exit) => Direction::Exit,
                _ => Direction::Entry,
            },
        }
    }

    /// Decides a pass, cross-checks it with the camera's read, feeds it to the machine and
    /// journals it; consumes a single-use pass the lane acted on.
    async fn decide_pass(&mut self, text: &str, has_camera: bool) -> (bool, ReasonCode) {
        let out = self.machine.step(self.now(), MachineInput::Read);
        self.handle(out, "grant", Vec::new()).await;
        let direction = self.pass_direction();
        let index = self.shared.index();
        let input = PassInput {
            text,
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
            let book = self.shared.passes.lock().expect("pass book lock poisoned");
            check_pass(&index, &*presence as &dyn PresenceView, &book, &input)
        };
        let decide_ns = started.elapsed().as_nanos() as u64;
        let mut record = pass_record(&decision, direction, decide_ns);
        let (effects, consume) = (decision.effects, decision.consume);
        let pass_plate = decision
            .claims
            .as_ref()
            .filter(|_| decision.plate.is_some())
            .and_then(|c| Plate::parse(&c.plate).ok());
        drop(decision);
        drop(index);
        if let Some(pass_plate) = pass_plate {
            match self.vehicle.plate.clone() {
                Some(seen) if !pass_plate_matches(pass_plate, &seen.sighting) => {
                    if record.granted {
                        record = self.mismatch(record, &seen.sighting, seen.granted);
                        if record.reason == ReasonCode::DeniedPlateMismatch {
                            record.reason = ReasonCode::DeniedPassPlateMismatch;
                        }
                    } else {
                        record.camera = Some(Box::new(seen.sighting.record()));
                        record.flags.push("plate_mismatch".into());
                    }
                }
                Some(seen) => record.camera = Some(Box::new(seen.sighting.record())),
                None if has_camera => record.flags.push("no_camera_read".into()),
                None => {}
            }
        }
        if record.granted {
            self.pending = Some(Pending {
                effects,
                record: record.clone(),
            });
        }
        let (granted, reason) = self.decided(record, direction).await;
        // Used up only if the arm is (going) up for it: a grant the machine could not act on
        // (no vehicle seen by the machine yet, a race with the loop) leaves the pass unused.
        let acted = matches!(
            self.machine.state(),
            LaneState::Opening
                | LaneState::Open
                | LaneState::Passing
                | LaneState::ClosePending
                | LaneState::HeldOpen
        );
        if granted
            && acted
            && let Some((booking, direction)) = consume
        {
            self.shared
                .passes
                .lock()
                .expect("pass book lock poisoned")
                .consume(booking, direction);
            if let Err(e) = self
                .shared
                .store
                .consume_pass(booking, direction, Utc::now().timestamp_millis())
                .await
            {
                tracing::error!(error = %e, "cannot store a used pass");
            }
        }
        (granted, reason)
    }
}

/// The journal record of a pass decision.
fn pass_record(d: &PassDecision<'_>, direction: Direction, decide_ns: u64) -> DecisionRecord {
    let mut flags = Vec::new();
    if d.flags.contains(Flags::SOFT_PASSBACK) {
        flags.push("soft_passback".to_string());
    }
    if let Some(hit) = d.blacklist {
        flags.push(format!("blacklist_alarm_{:?}", hit.alarm).to_ascii_lowercase());
    }
    DecisionRecord {
        direction: direction.as_str().into(),
        credential: "pass".into(),
        epc: None,
        tid: None,
        antenna: None,
        rssi_dbm: None,
        plate: d.plate.map(|p| p.plate.as_str().to_string()),
        granted: d.granted,
        reason: d.reason,
        flags,
        permit_id: None,
        vehicle_id: None,
        holder: d.booking.map(|b| b.visitor_name.to_string()),
        category: d.plate.map(|_| "visitor".to_string()),
        data_version: d.data_version,
        decide_ns,
        camera: None,
        pass: d.claims.as_ref().map(|c| PassUse {
            booking_id: i64::from(c.booking_id),
            key_id: c.key_id,
            single_use: c.single_use,
        }),
    }
}
