//! The lane's I/O task: the one owner of a lane's Modbus link to its I/O module. It carries out
//! barrier commands, releases OPEN/CLOSE pulses after `pulse_ms`, and polls the inputs every
//! `poll_ms`, reporting each poll to the lane task.
//!
//! Why a task of its own: Modbus RTU carries one request at a time. Were the lane task to poll,
//! a tag read that arrived while a poll was on the wire would wait for that poll's answer, then
//! for the decision and the journal commit, one after the other. With the link here, the lane
//! task decides and journals while a poll is in flight, and the OPEN goes on the wire the
//! moment the bus is free: a waiting command is always taken before the next poll.
//!
//! **Polls pause while an OPEN may be imminent.** A poll on the wire holds the line until the
//! module answers (a few milliseconds at 115200 baud, 15–20 at the default 9600): an OPEN
//! decided meanwhile waits for that answer, and at the shipped 50 ms poll interval that was one
//! vehicle in three to ten (`benches/gate_latency.rs`). So while a vehicle stands on the loop in
//! normal mode with nothing read yet (the lane's state `vehicle_present`: the next thing on the
//! line is most likely its OPEN), the task starts a poll only once the last one is
//! `[lane.io] poll_pause_ms` old (default 200): the inputs are read every `poll_pause_ms`
//! instead of every `poll_ms` until the read comes (or the vehicle leaves). The inputs it does
//! not read meanwhile cannot move the arm except for the fire linkage, which
//! is seen at most `poll_pause_ms` later; the arm is down and still, so the safety loop does not
//! matter. `poll_pause_ms = 0` keeps polling every `poll_ms`.
//!
//! A module that answers "busy" (Modbus exception 06, or 05) is asked again: a command after a
//! short pause, up to the configured retries; a poll is skipped a couple of times before the
//! inputs count as unknown. Any other exception fails the command (journalled) or the poll.
//!
//! It reopens the link with backoff after a transport or protocol error (a tokio-modbus context
//! is unusable after one), releases both pulse contacts whenever it opens the link (a controller
//! killed mid-pulse must not leave OPEN or CLOSE made) and when it stops, and journals the module
//! going offline and online, and commands that failed.
//!
//! It also drives the signal light (`[lane.light]`, [`crate::gate::display::light`]): the
//! light coil follows the lane's live state, written only when the colour the state asks for
//! changes (and once after the link is opened), never in a loop, and always after any barrier
//! command that is waiting — a light is never ahead of an OPEN on the bus. A light write that
//! fails is tried again only when the link has been reopened or the colour changes. When the
//! task stops it leaves the light red.
//!
//! What it never does: decide whether the barrier moves. The lane task journals every command
//! before it sends it here; this task only carries it out.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use firmware_protocols::lane_io::{LaneCoil, LaneInputs};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::device::{Backoff, device_event};
use super::status::LaneStatus;
use crate::gate::config::LaneConfig;
use crate::gate::display::{LightColour, light};
use crate::gate::io::{IoError, IoLink};
use crate::gate::journal::Journal;
use crate::gate::lane::BarrierCommand;
use crate::wire::journal::EventBody;

/// One input poll, as the lane task is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IoReport {
    /// The module answered with these inputs.
    Inputs(LaneInputs),
    /// The module could not be read (link down, timeout, bad answer): the lane must treat its
    /// inputs as unknown.
    Failed,
}

/// How long a pulse contact that could not be released waits before the next try.
const RELEASE_RETRY: Duration = Duration::from_millis(50);

/// How long a command answered "busy" waits before it is sent again (Modbus Application Protocol
/// V1.1b3, §7: exception 06 means "retransmit later"; 05 "acknowledge, still working" likewise).
const BUSY_PAUSE: Duration = Duration::from_millis(20);

/// Polls answered "busy" in a row that are skipped (the lane keeps its last sample one poll
/// longer) before the inputs count as unknown: a module that is busy now and then is not a
/// failed module, and must not flap the lane into a fault at the poll rate.
const BUSY_POLLS_SKIPPED: u32 = 2;

/// Whether a module's exception answer means "try again shortly" rather than "failed".
fn is_busy(e: &IoError) -> bool {
    matches!(
        e,
        IoError::Exception(
            tokio_modbus::ExceptionCode::ServerDeviceBusy
                | tokio_modbus::ExceptionCode::Acknowledge
        )
    )
}

pub(crate) struct IoTask {
    config: LaneConfig,
    journal: Arc<Journal>,
    status: watch::Sender<LaneStatus>,
    link: Option<IoLink>,
    /// What was last journalled: `None` before the first attempt.
    online: Option<bool>,
    backoff: Backoff,
    retry_at: Instant,
    /// Pulse contacts made, and when each must be released.
    pulses: Vec<(Instant, LaneCoil)>,
    /// Polls answered "busy" since the last good one.
    busy_polls: u32,
    /// The lane's live state, which the signal light follows.
    lane_state: watch::Receiver<LaneStatus>,
    /// What the light coil is known to be on this link (`None`: unknown, write it).
    light_written: Option<bool>,
    /// The last value tried on this link, so a failing write is not repeated in a loop.
    light_tried: Option<bool>,
    /// When the last poll was started (for `poll_pause_ms`).
    last_poll: Instant,
}

impl IoTask {
    pub(crate) fn new(
        config: LaneConfig,
        journal: Arc<Journal>,
        status: watch::Sender<LaneStatus>,
    ) -> IoTask {
        IoTask {
            lane_state: status.subscribe(),
            light_written: None,
            light_tried: None,
            config,
            journal,
            status,
            link: None,
            online: None,
            backoff: Backoff::new(),
            retry_at: Instant::now(),
            pulses: Vec::new(),
            busy_polls: 0,
            last_poll: Instant::now(),
        }
    }

    /// Whether this poll is skipped: a vehicle waits on the loop for its read, so the line is
    /// kept free for its OPEN, and the last poll is less than `poll_pause_ms` old (module header).
    fn poll_paused(&self) -> bool {
        let pause = Duration::from_millis(self.config.io.poll_pause_ms);
        if pause.is_zero() || self.last_poll.elapsed() >= pause {
            return false;
        }
        let lane = self.lane_state.borrow();
        lane.state == "vehicle_present" && lane.mode == "normal"
    }

    /// Runs until `shutdown`, or until the lane task has gone (its report channel closed).
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<BarrierCommand>,
        reports: mpsc::Sender<IoReport>,
        shutdown: CancellationToken,
    ) {
        let mut poll = tokio::time::interval(Duration::from_millis(self.config.io.poll_ms));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = || Instant::now() + Duration::from_secs(3600);
        loop {
            let pulse_at = self.pulses.iter().map(|(at, _)| *at).min();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.execute(command).await,
                _ = tokio::time::sleep_until(pulse_at.unwrap_or_else(far)), if pulse_at.is_some() => {
                    self.release_pulses().await
                }
                // After commands and pulses (biased): the light never delays the barrier.
                Ok(()) = self.lane_state.changed(), if self.config.light.enabled => {
                    self.update_light().await
                }
                // A tick while polls pause is let go: the next one asks again.
                _ = poll.tick() => {
                    if !self.poll_paused()
                        && let Some(report) = self.poll().await
                        && reports.send(report).await.is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Leave the arm as it is, but never a pulse contact made, nor a green light.
        if let Some(link) = self.link.as_mut() {
            let _ = link.release_pulse_contacts().await;
            if self.config.light.enabled {
                let red = light::coil_on(&self.config.light, LightColour::Red);
                let _ = link.write_coil(LaneCoil::Light, red).await;
            }
        }
    }

    /// Writes the light coil if the lane's state asks for another colour than the coil shows
    /// (and this value has not already failed on this link).
    async fn update_light(&mut self) {
        if !self.config.light.enabled {
            return;
        }
        let colour = light::colour_for(
            &self.config.light,
            &self.lane_state.borrow_and_update().state,
        );
        let on = light::coil_on(&self.config.light, colour);
        if self.light_written == Some(on) || self.light_tried == Some(on) {
            return;
        }
        let Some(link) = self.link.as_mut() else {
            // Written once the link is open (after the next poll).
            return;
        };
        self.light_tried = Some(on);
        match link.write_coil(LaneCoil::Light, on).await {
            Ok(()) => self.light_written = Some(on),
            Err(e) => {
                if e.needs_reconnect() {
                    self.link = None;
                }
                self.light_written = None;
                tracing::warn!(lane = %self.config.id, ?colour, error = %e, "cannot set the signal light; trying again after a reconnect or the next change");
            }
        }
    }

    async fn journal(&mut self, body: EventBody) {
        if let Err(e) = self.journal.append(Utc::now(), &self.config.id, body).await {
            tracing::error!(lane = %self.config.id, error = %e, "cannot journal an I/O event; carrying on");
        }
    }

    /// Makes sure the link is open; returns whether it is.
    async fn ensure_link(&mut self) -> bool {
        if self.link.is_some() {
            return true;
        }
        if Instant::now() < self.retry_at {
            return false;
        }
        let opened = match IoLink::open(&self.config.io) {
            Ok(mut link) => match link.release_pulse_contacts().await {
                Ok(()) => Ok(link),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        match opened {
            Ok(link) => {
                self.link = Some(link);
                // A fresh link: the light coil's state is unknown, write it once.
                self.light_written = None;
                self.light_tried = None;
                self.backoff.reset();
                true
            }
            Err(why) => {
                self.retry_at = Instant::now() + self.backoff.take();
                self.offline(why).await;
                false
            }
        }
    }

    async fn offline(&mut self, why: String) {
        self.status.send_modify(|s| s.io_online = false);
        if self.online != Some(false) {
            tracing::warn!(lane = %self.config.id, error = %why, "I/O module offline");
            self.journal(device_event("io", "offline", why)).await;
            self.online = Some(false);
        }
    }

    async fn online(&mut self) {
        self.status.send_modify(|s| s.io_online = true);
        if self.online != Some(true) {
            self.journal(device_event("io", "online", String::new()))
                .await;
            self.online = Some(true);
        }
    }

    /// Polls the inputs: `None` when the module answered "busy" and this poll is skipped.
    async fn poll(&mut self) -> Option<IoReport> {
        self.last_poll = Instant::now();
        if !self.ensure_link().await {
            return Some(IoReport::Failed);
        }
        let link = self.link.as_mut().expect("ensured above");
        match link.read_inputs().await {
            Ok(inputs) => {
                self.busy_polls = 0;
                self.online().await;
                if self.light_written.is_none() {
                    self.update_light().await;
                }
                Some(IoReport::Inputs(inputs))
            }
            Err(e) if is_busy(&e) && self.busy_polls < BUSY_POLLS_SKIPPED => {
                self.busy_polls += 1;
                None
            }
            Err(e) => {
                if e.needs_reconnect() {
                    self.link = None;
                }
                self.offline(e.to_string()).await;
                Some(IoReport::Failed)
            }
        }
    }

    async fn execute(&mut self, command: BarrierCommand) {
        let pulse = Duration::from_millis(u64::from(self.config.io.map.pulse_ms));
        let (coil, on, pulse_off) = match command {
            BarrierCommand::Open => (LaneCoil::Open, true, Some(pulse)),
            BarrierCommand::Close => (LaneCoil::Close, true, Some(pulse)),
            BarrierCommand::StopOn => (LaneCoil::Stop, true, None),
            BarrierCommand::StopOff => (LaneCoil::Stop, false, None),
        };
        // Writing a coil is idempotent: a command whose answer did not come is sent again, on a
        // fresh link (a late answer must not be taken for the next request's).
        let mut attempt = 0;
        let failure = loop {
            if !self.ensure_link().await {
                break "I/O module offline".to_string();
            }
            let link = self.link.as_mut().expect("ensured above");
            match link.write_coil(coil, on).await {
                Ok(()) => {
                    if let Some(pulse) = pulse_off {
                        self.pulses.retain(|(_, c)| *c != coil);
                        self.pulses.push((Instant::now() + pulse, coil));
                    }
                    return;
                }
                Err(e) => {
                    if e.needs_reconnect() {
                        self.link = None;
                    }
                    if matches!(e, IoError::Timeout(_)) && attempt < self.config.io.retries {
                        attempt += 1;
                        continue;
                    }
                    if is_busy(&e) && attempt < self.config.io.retries {
                        attempt += 1;
                        tokio::time::sleep(BUSY_PAUSE).await;
                        continue;
                    }
                    break e.to_string();
                }
            }
        };
        tracing::error!(lane = %self.config.id, ?command, error = %failure, "barrier command failed");
        self.journal(EventBody::LaneFault {
            fault: "command_failed".into(),
            detail: format!("{command:?}: {failure}"),
        })
        .await;
    }

    async fn release_pulses(&mut self) {
        let now = Instant::now();
        let due: Vec<LaneCoil> = self
            .pulses
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, c)| *c)
            .collect();
        self.pulses.retain(|(at, _)| *at > now);
        for coil in due {
            if !self.ensure_link().await {
                // Released when the link is back (opening it releases both pulse contacts).
                return;
            }
            let link = self.link.as_mut().expect("ensured above");
            if let Err(e) = link.write_coil(coil, false).await {
                if e.needs_reconnect() {
                    self.link = None;
                }
                tracing::error!(lane = %self.config.id, ?coil, error = %e, "cannot release a pulse");
                // Try again shortly: a made contact must not be forgotten.
                self.pulses.push((Instant::now() + RELEASE_RETRY, coil));
            }
        }
    }
}
