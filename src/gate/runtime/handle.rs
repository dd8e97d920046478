//! The running gate controller: [`GateHandle`] opens the store and the journal, builds the
//! index, starts each lane's thread and watches it, swaps in new index snapshots and carries
//! guard and centre commands to the lanes. It never decides and never touches a device.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::io_task::IoTask;
use super::lane_task::pass_lane::{PassReply, PassScan};
use super::lane_task::{LaneCommand, LaneTask, Shared, parse_mode};
use super::qr_task::qr_loop;
use super::reader_task::reader_loop;
use super::status::LaneStatus;
use crate::domain::{GateId, LaneId};
use crate::gate::camera::{PlateSighting, SightingOutcome};
use crate::gate::config::{AntiPassbackSetting, GateConfig, parse_anti_passback};
use crate::gate::decision::AntiPassback;
use crate::gate::index::Index;
use crate::gate::journal::{Journal, JournalError, JournalStats};
use crate::gate::lane::Mode;
use crate::gate::pass_check::{PassBook, PassKeys};
use crate::gate::photos::PhotoStore;
use crate::gate::presence::{Presence, PresenceTable, PresenceView};
use crate::gate::store::{PresenceRecord, SnapshotPart, Store, StoreError};
use crate::wire::pass::PassKeyWire;
use crate::wire::rows::Update;

/// Why the gate controller could not start, or could not carry out a change or a command.
/// Each kind is kept apart so that a caller can tell the store from a lane that has stopped.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The data directory cannot be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The local store failed (open, read, write, or a row it refuses).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal cannot be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The decision index cannot be built from what the store holds.
    #[error("building the permit index from the store")]
    Index(#[source] StoreError),
    /// A full snapshot was refused; nothing changed.
    #[error("replacing the data with a snapshot")]
    Snapshot(#[source] StoreError),
    /// The worker applying a change to the index ended abnormally.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// `gate.timezone` is not a time zone.
    #[error("gate.timezone: {0}")]
    TimeZone(String),
    /// `gate.anti_passback` is not a policy.
    #[error("{0}")]
    AntiPassback(String),
    /// A lane's thread cannot be started.
    #[error("cannot start the thread of lane {lane}")]
    LaneThread {
        lane: String,
        #[source]
        source: std::io::Error,
    },
    /// No lane by that id at this gate.
    #[error("no lane {0:?} at this gate")]
    NoLane(String),
    /// The lane no longer takes commands.
    #[error("lane {0} has stopped")]
    LaneStopped(String),
    /// The photo store cannot be opened or written.
    #[error(transparent)]
    Photo(#[from] crate::gate::photos::PhotoError),
    /// `[display]` is refused (an unknown placeholder, a broken template).
    #[error(transparent)]
    Display(#[from] crate::gate::display::DisplayConfigError),
}

/// A running gate controller.
#[derive(Debug)]
pub struct GateHandle {
    shared: Arc<Shared>,
    lanes: HashMap<String, mpsc::Sender<LaneCommand>>,
    status: HashMap<String, watch::Receiver<LaneStatus>>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// Set once when a lane died (see [`GateHandle::lane_failure`]).
    lane_failed: watch::Sender<Option<String>>,
    /// `[display]`, checked at start: what the lanes show and speak.
    display: Arc<crate::gate::display::Templates>,
    /// `[realtime] cpu_wake_latency_us`: the request lasts while this file is open.
    _wake_latency: Option<std::fs::File>,
}

/// Builds the decision index from what the store holds.
pub async fn build_index(store: &Store) -> Result<Index, GateError> {
    store.load_index().await.map_err(GateError::Index)
}

fn anti_passback(setting: AntiPassbackSetting) -> AntiPassback {
    match setting {
        AntiPassbackSetting::Off => AntiPassback::Off,
        AntiPassbackSetting::Hard => AntiPassback::Hard,
        AntiPassbackSetting::Soft => AntiPassback::Soft,
        AntiPassbackSetting::Timed(m) => AntiPassback::Timed {
            minutes: m.min(u32::from(u16::MAX)) as u16,
        },
    }
}

impl GateHandle {
    /// Opens the store and journal, builds the index and starts every lane. Serial ports that
    /// cannot be opened yet are retried in the background (the device is offline meanwhile).
    pub async fn start(config: GateConfig) -> Result<GateHandle, GateError> {
        super::realtime::lock_memory(&config.realtime);
        let wake_latency = super::realtime::hold_cpu_wake_latency(&config.realtime);
        let display = Arc::new(crate::gate::display::Templates::from_config(
            &config.display,
        )?);
        std::fs::create_dir_all(&config.gate.data_dir).map_err(|source| GateError::DataDir {
            path: config.gate.data_dir.clone(),
            source,
        })?;
        let store = Store::open(&config.gate.data_dir.join("store.db")).await?;
        let journal = Arc::new(
            Journal::open(
                &config.gate.data_dir.join("journal.db"),
                config.journal.capacity,
            )
            .await?,
        );
        let index = build_index(&store).await?;
        let mut presence = PresenceTable::new();
        for record in store.load_presence().await? {
            let since = DateTime::<Utc>::from_timestamp_millis(record.since_ms).unwrap_or_default();
            presence.set_vehicle(
                record.vehicle_id,
                if record.inside {
                    Presence::Inside {
                        since,
                        gate: GateId(record.gate),
                    }
                } else {
                    Presence::Outside { since }
                },
            );
        }
        for permit in store.load_consumed().await? {
            presence.consume(permit);
        }
        let mut passes = PassBook::default();
        for (booking, direction) in store.load_consumed_passes().await? {
            passes.consume(booking, direction);
        }
        passes.keys = pass_keys(&store.load_pass_keys().await?);
        let tz: Tz = config
            .gate
            .timezone
            .parse()
            .map_err(|e: chrono_tz::ParseError| GateError::TimeZone(e.to_string()))?;
        let passback = anti_passback(
            parse_anti_passback(&config.gate.anti_passback).map_err(GateError::AntiPassback)?,
        );
        let shared = Arc::new(Shared {
            gate: GateId(config.gate.id),
            tz,
            passback,
            index: RwLock::new(Arc::new(index)),
            presence: Mutex::new(presence),
            journal,
            store,
            cameras: Mutex::new(std::collections::BTreeMap::new()),
            passes: Mutex::new(passes),
            photos: Arc::new(PhotoStore::open_with(
                &config.gate.data_dir.join("photos"),
                config.photos,
            )?),
        });
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut lanes = HashMap::new();
        let mut status = HashMap::new();
        let (lane_failed, _) = watch::channel(None);
        {
            let (journal, stop) = (shared.journal.clone(), shutdown.clone());
            tasks.spawn(async move {
                crate::supervise::restarting(
                    "journal checkpoint",
                    stop.clone(),
                    crate::supervise::Backoff::default(),
                    move || {
                        let (journal, stop) = (journal.clone(), stop.clone());
                        async move {
                            checkpoint_loop(journal, stop).await;
                            Ok(())
                        }
                    },
                )
                .await;
            });
        }
        for (number, lane_config) in config.lanes.iter().enumerate() {
            let (cmd_tx, cmd_rx) = mpsc::channel(64);
            let (reader_tx, reader_rx) = mpsc::channel(256);
            // Unbounded: a barrier command is never dropped or delayed for lack of room; there
            // are at most a few per vehicle.
            let (io_tx, io_rx) = mpsc::unbounded_channel();
            let (io_reports_tx, io_reports_rx) = mpsc::channel(16);
            let (status_tx, status_rx) = watch::channel(LaneStatus {
                lane: lane_config.id.clone(),
                ..LaneStatus::default()
            });
            let mode = match shared.store.lane_mode(&lane_config.id).await? {
                Some(text) => parse_mode(&text).unwrap_or(Mode::Normal),
                None => Mode::Normal,
            };
            let task = LaneTask::new(
                LaneId(number as u16 + 1),
                lane_config.clone(),
                shared.clone(),
                mode,
                status_tx.clone(),
                io_tx,
            );
            let io = IoTask::new(
                lane_config.clone(),
                shared.journal.clone(),
                status_tx.clone(),
            )
            .run(io_rx, io_reports_tx, shutdown.clone());
            let qr = qr_loop(
                lane_config.clone(),
                shared.journal.clone(),
                cmd_tx.clone(),
                status_tx.clone(),
                shutdown.clone(),
            );
            let reader = reader_loop(
                lane_config.clone(),
                shared.journal.clone(),
                reader_tx,
                status_tx,
                tid_needed(shared.clone()),
                shutdown.clone(),
            );
            let lane = task.run(reader_rx, cmd_rx, io_reports_rx, shutdown.clone());
            let (realtime, lane_id) = (config.realtime.clone(), lane_config.id.clone());
            let finished = spawn_lane_thread(&lane_config.id, async move {
                // First thing on the lane's own thread, before any part runs.
                super::realtime::apply_to_lane_thread(&realtime, &lane_id);
                tokio::join!(io, reader, qr, lane);
            })?;
            tasks.spawn(watch_lane(
                lane_config.id.clone(),
                finished,
                shutdown.clone(),
                lane_failed.clone(),
            ));
            if let Some(screen) = &lane_config.screen {
                tasks.spawn(crate::gate::display::screen::run(
                    lane_config.id.clone(),
                    screen.clone(),
                    display.clone(),
                    status_rx.clone(),
                    shutdown.clone(),
                ));
            }
            lanes.insert(lane_config.id.clone(), cmd_tx);
            status.insert(lane_config.id.clone(), status_rx);
        }
        Ok(GateHandle {
            shared,
            lanes,
            status,
            shutdown,
            tasks,
            lane_failed,
            display,
            _wake_latency: wake_latency,
        })
    }

    /// What the lanes show and speak (`[display]`, checked at start).
    pub fn display_templates(&self) -> Arc<crate::gate::display::Templates> {
        self.display.clone()
    }

    /// Resolves when a lane has died — its thread panicked, or its parts ended before the gate
    /// was stopped — with one line saying which and why. A lane is never left half-dead: the
    /// caller stops the gate and exits non-zero (systemd's `Restart=on-failure` starts it anew).
    pub async fn lane_failure(&self) -> String {
        let mut failed = self.lane_failed.subscribe();
        match failed.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // Never: the handle holds the sender.
            Err(_) => std::future::pending().await,
        }
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.shared.journal
    }

    /// The shared state (store, index).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Writes an update to the store, then swaps in the next index whole: the current one
    /// with the update applied as a delta ([`Index::apply`], proportional to the update), or,
    /// for a full snapshot, a delta the index refuses, or an index mostly garbage, one rebuilt
    /// from the store. An update that carries no rows only records its data version.
    pub async fn apply_update(&self, update: &Update) -> Result<(), GateError> {
        let store = &self.shared.store;
        let _only_writer = store.lock_updates().await;
        store.apply(update).await?;
        if crate::wire::rows::update_is_empty(update) {
            return Ok(());
        }
        let current = self.shared.index();
        let next = if update.replace_all || current.wants_rebuild() {
            None
        } else {
            let delta = update.to_delta()?;
            match tokio::task::spawn_blocking(move || current.apply(delta)).await? {
                Ok(next) => Some(next),
                Err(e) => {
                    tracing::warn!(error = %e, "the update does not apply to the index as a delta; rebuilding it from the store");
                    None
                }
            }
        };
        let next = match next {
            Some(next) => next,
            None => build_index(store).await?,
        };
        let previous = std::mem::replace(
            &mut *self.shared.index.write().expect("index lock poisoned"),
            Arc::new(next),
        );
        // Freed outside the lock: a replaced full index is hundreds of megabytes.
        drop(previous);
        Ok(())
    }

    /// Takes the site's public pass keys as the centre sent them (the whole list: a key left
    /// out is no longer accepted): written to the store first, so a gate restarted offline
    /// still verifies passes, then used by the lanes at once. Entries whose key is not 32 bytes
    /// of hex are left out and logged.
    pub async fn set_pass_keys(&self, keys: &[PassKeyWire]) -> Result<(), GateError> {
        let parsed = pass_keys(keys);
        self.shared.store.set_pass_keys(keys).await?;
        self.shared
            .passes
            .lock()
            .expect("pass book lock poisoned")
            .keys = parsed;
        Ok(())
    }

    /// Hands a text to a lane as if its QR scanner had sent it, and returns what the lane did
    /// (tests and tools; the scanner's own texts come through `qr_task`). A scan that waits
    /// for the camera's read answers [`PassReply::WaitCamera`] and is not sent again.
    pub async fn pass_scan(&self, lane: &str, text: &str) -> Result<PassReply, GateError> {
        let (reply, answer) = oneshot::channel();
        let sender = self
            .lanes
            .get(lane)
            .ok_or_else(|| GateError::NoLane(lane.to_string()))?;
        sender
            .send(LaneCommand::Pass(PassScan {
                text: text.to_string(),
                camera_wait_over: false,
                reply: Some(reply),
            }))
            .await
            .map_err(|_| GateError::LaneStopped(lane.to_string()))?;
        answer
            .await
            .map_err(|_| GateError::LaneStopped(lane.to_string()))
    }

    /// Replaces all data with a full snapshot whose rows arrive in `parts` as it streams in
    /// ([`Store::replace_all`]): the store is written on one thread while the rows are
    /// converted and the index built from them on another (nothing is read back), then the
    /// index is swapped in whole. Nothing changes — store or index — if any row is bad, the
    /// rows do not make an index, or `parts` closes without its end (a cut-off stream).
    pub async fn apply_snapshot(
        &self,
        parts: tokio::sync::mpsc::Receiver<SnapshotPart>,
    ) -> Result<(), GateError> {
        let store = &self.shared.store;
        let _only_writer = store.lock_updates().await;
        let next = store
            .replace_all(parts, |s| s.build())
            .await
            .map_err(GateError::Snapshot)?;
        let previous = std::mem::replace(
            &mut *self.shared.index.write().expect("index lock poisoned"),
            Arc::new(next),
        );
        drop(previous);
        Ok(())
    }

    /// Applies presence learnt from the centre (a vehicle seen at another gate): in memory at
    /// once, then written through to the store. A record older than what the gate knows of the
    /// vehicle changes nothing.
    pub async fn apply_presence(&self, records: &[PresenceRecord]) -> Result<(), GateError> {
        let mut fresh = Vec::with_capacity(records.len());
        {
            let mut presence = self.shared.presence.lock().expect("presence lock poisoned");
            for r in records {
                let since = DateTime::<Utc>::from_timestamp_millis(r.since_ms).unwrap_or_default();
                let newer = match presence.vehicle(r.vehicle_id) {
                    Presence::Unknown => true,
                    Presence::Inside { since: s, .. } | Presence::Outside { since: s } => since > s,
                };
                if newer {
                    presence.set_vehicle(
                        r.vehicle_id,
                        if r.inside {
                            Presence::Inside {
                                since,
                                gate: GateId(r.gate),
                            }
                        } else {
                            Presence::Outside { since }
                        },
                    );
                    fresh.push(*r);
                }
            }
        }
        for r in fresh {
            self.shared.store.set_presence(r).await?;
        }
        Ok(())
    }

    /// The ids of this gate's lanes, sorted.
    pub fn lane_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lanes.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Sends a command to a lane and waits until the lane has carried it out (for guard and
    /// mode commands).
    pub async fn command(&self, lane: &str, command: LaneCommand) -> Result<(), GateError> {
        let (done_tx, done_rx) = oneshot::channel();
        let command = match command {
            LaneCommand::Guard {
                operator,
                command,
                reason,
                note,
                plate,
                ..
            } => LaneCommand::Guard {
                operator,
                command,
                reason,
                note,
                plate,
                done: Some(done_tx),
            },
            LaneCommand::SetMode { mode, by, .. } => LaneCommand::SetMode {
                mode,
                by,
                done: Some(done_tx),
            },
            other => {
                drop(done_tx);
                other
            }
        };
        let sender = self
            .lanes
            .get(lane)
            .ok_or_else(|| GateError::NoLane(lane.to_string()))?;
        sender
            .send(command)
            .await
            .map_err(|_| GateError::LaneStopped(lane.to_string()))?;
        let _ = done_rx.await;
        Ok(())
    }

    /// Hands a plate camera's read to its lane and waits until the lane has journalled what it
    /// did with it (the camera is answered only then).
    ///
    /// While the journal cannot write, the lane still acts on the read (a barrier is never held
    /// up by the disk) but the read is not durable yet: this answers
    /// [`GateError::Journal`] (`NotWritten`), so the camera is not told "received" and sends it
    /// again; the repeat is a [`SightingOutcome::Duplicate`] (the lane does nothing twice), and
    /// is answered `Ok` once the journal has written what waited in memory.
    pub async fn camera_read(
        &self,
        lane: &str,
        sighting: PlateSighting,
    ) -> Result<SightingOutcome, GateError> {
        let (done, outcome) = oneshot::channel();
        let sender = self
            .lanes
            .get(lane)
            .ok_or_else(|| GateError::NoLane(lane.to_string()))?;
        sender
            .send(LaneCommand::Camera { sighting, done })
            .await
            .map_err(|_| GateError::LaneStopped(lane.to_string()))?;
        let outcome = outcome
            .await
            .map_err(|_| GateError::LaneStopped(lane.to_string()))?;
        // Not failing now means everything committed or kept before this point is written (the
        // backlog is written, in order, before the journal stops failing).
        let stats = self.shared.journal.stats().await;
        if stats.write_failing {
            return Err(GateError::Journal(JournalError::NotWritten {
                cause: "the journal cannot write".into(),
                waiting: stats.waiting,
                lost: stats.lost,
            }));
        }
        Ok(outcome)
    }

    /// Every lane's live status.
    pub fn status(&self) -> Vec<LaneStatus> {
        let mut all: Vec<LaneStatus> = self.status.values().map(|rx| rx.borrow().clone()).collect();
        all.sort_by(|a, b| a.lane.cmp(&b.lane));
        all
    }

    /// A receiver of one lane's live status.
    pub fn watch_lane(&self, lane: &str) -> Option<watch::Receiver<LaneStatus>> {
        self.status.get(lane).cloned()
    }

    /// Journal counters.
    pub async fn journal_stats(&self) -> JournalStats {
        self.shared.journal.stats().await
    }

    /// Stops every task and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The keys of the centre's list the gate can use; malformed entries are logged and left out.
fn pass_keys(wire: &[PassKeyWire]) -> PassKeys {
    let (keys, bad) = PassKeys::from_wire(wire);
    if !bad.is_empty() {
        tracing::warn!(?bad, "pass keys that are not 32 bytes of hex were left out");
    }
    keys
}

/// Runs a lane's three parts (reader, I/O, state machine) on a thread of their own, on a
/// single-threaded runtime with its own timers and device polling: a tag report wakes one
/// thread, and the decision, the journal commit and the OPEN written to the I/O module follow
/// on it without a hand-off between threads (each such hop is a wake-up at the scheduler's
/// mercy on a busy machine), and nothing else the gate does (sync, snapshots, the booth's HTTP)
/// runs in between. The receiver resolves when the lane's parts have all stopped.
/// A panic in any part ends the thread; the receiver then carries the panic message.
fn spawn_lane_thread(
    lane: &str,
    parts: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<oneshot::Receiver<Result<(), String>>, GateError> {
    crate::supervise::spawn_runtime_thread(format!("lane-{lane}"), parts).map_err(|source| {
        GateError::LaneThread {
            lane: lane.to_string(),
            source,
        }
    })
}

/// Which new tags' first reads wait for their TID: those whose credential has a bound TID, the
/// only ones the decision's clone check looks at (`gate::reader`'s module header).
fn tid_needed(shared: Arc<Shared>) -> crate::gate::reader::TidNeeded {
    Arc::new(move |epc: &[u8]| {
        crate::domain::Epc::from_bytes(epc).is_ok_and(|epc| {
            shared
                .index()
                .credential(&epc)
                .is_some_and(|c| c.tid().is_some())
        })
    })
}

/// Waits for a lane's thread to end; an end before the gate is stopped is logged and reported
/// through `failed` ([`GateHandle::lane_failure`]).
async fn watch_lane(
    lane: String,
    finished: oneshot::Receiver<Result<(), String>>,
    shutdown: CancellationToken,
    failed: watch::Sender<Option<String>>,
) {
    let why = match finished.await {
        Ok(Ok(())) if shutdown.is_cancelled() => return,
        Ok(Ok(())) => "stopped unexpectedly".to_string(),
        Ok(Err(panic)) => format!("panicked: {panic}"),
        Err(_) => "ended without a word".to_string(),
    };
    tracing::error!(lane, %why, "a lane stopped; the gate controller stops with it");
    failed.send_if_modified(|slot| {
        let first = slot.is_none();
        if first {
            *slot = Some(format!("lane {lane} {why}"));
        }
        first
    });
}

/// Checkpoints the journal every [`CHECKPOINT_INTERVAL`](crate::gate::journal::CHECKPOINT_INTERVAL)
/// and, while it cannot write, tries to write what waits in memory ([`Journal::retry`]).
async fn checkpoint_loop(journal: Arc<Journal>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(crate::gate::journal::CHECKPOINT_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => {
                // Its failure is already reported (log, /readyz, /metrics, the centre).
                let writing = journal.retry().await.unwrap_or(false);
                if let Err(e) = journal.checkpoint().await
                    && writing
                {
                    tracing::warn!(error = %e, "journal checkpoint failed");
                }
            }
        }
    }
    if let Err(e) = journal.retry().await {
        let stats = journal.stats().await;
        tracing::error!(error = %e, waiting = stats.waiting, "stopping while the journal cannot write: the events waiting in memory are lost");
    }
    let _ = journal.checkpoint().await;
}
