//! One simulated gate of the fleet: the real wire contract over its own mutual-TLS client, as
//! `crate::sync::client` speaks it, with the lanes and the journal played in memory.
//!
//! - **Down**: a first snapshot (read to its end line, its version kept), then the changes long
//!   poll after that version; each answer's withdrawals are checked against the revocations the
//!   run makes, and the moment each one arrives is noted.
//! - **Commands**: the commands long poll, each command acknowledged as refused (a simulated
//!   gate has no lanes to carry it out; the fleet sends none).
//! - **Health**: a [`HealthReport`] every 5 s.
//! - **Up**: each lane journals a passage every `passage_every` (decision granted, barrier
//!   open; 4.2 s later the passage and the barrier closing; one arrival in 40 an unknown tag,
//!   denied); the outbox uploads the unacknowledged events at once, oldest first, as one
//!   [`EventBatch`] with the gate's [`JournalIdentity`]; the centre's `highest_contiguous`
//!   acknowledges them; a failed upload is counted and sent again.
//!
//! Nothing here decides: the fleet measures the centre, not the lanes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::ReasonCode;
use crate::wire::journal::{
    BarrierAction, DecisionRecord, EventBody, JournalEvent, JournalIdentity,
};
use crate::wire::sync::{
    Changes, CommandResult, EventAck, EventBatch, HealthReport, JournalHealth, LaneHealth,
    PendingCommand, SnapshotLine,
};

use super::stats::Samples;

/// How long a long poll is asked to wait (the real gate's default).
pub const POLL_WAIT: Duration = Duration::from_secs(20);
/// How often a gate reports its health (the real gate's default).
pub const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// Events per upload at most (the real gate's default batch).
const BATCH: usize = 1000;
/// The wait after a failed request before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// What the whole fleet shares: the revocations' commit times, and the samples.
#[derive(Debug, Default)]
pub struct Shared {
    /// Permit id → when the revocation began to commit (set by the revoker).
    pub revoked_at: Mutex<HashMap<u32, Instant>>,
    /// Event made → acknowledged as stored by the centre.
    pub event_to_centre: Samples,
    /// Revocation commit → seen in a changes answer, per (gate, revocation).
    pub revocation: Samples,
    /// Per gate: plates of its recent granted decisions and when each was made, for the
    /// consoles' live delay.
    pub recent_plates: Mutex<HashMap<i64, Vec<(String, Instant)>>>,
    /// Uploads the centre refused (an error status).
    pub uploads_refused: std::sync::atomic::AtomicU64,
    /// Uploads that failed on the way (no answer) and were sent again.
    pub uploads_retried: std::sync::atomic::AtomicU64,
    /// Requests of any other kind that failed.
    pub other_failures: std::sync::atomic::AtomicU64,
    /// When the measured window began (the whole fleet connected): events made before it are
    /// not sampled.
    pub window_start: std::sync::OnceLock<Instant>,
}

impl Shared {
    /// Whether something made at `made` falls in the measured window.
    pub fn measured(&self, made: Instant) -> bool {
        self.window_start.get().is_some_and(|w| made >= *w)
    }
}

/// A fault injected on purpose, to see the fleet's checks fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// This gate ignores the withdrawals in its changes answers.
    DropRevocationsAt(i64),
    /// This gate's outbox forgets one batch it made (never uploads it).
    LoseUploadAt(i64),
}

impl Fault {
    /// `drop-revocations:GATE` or `lose-upload:GATE`.
    pub fn parse(text: &str) -> Result<Fault, String> {
        const EXPECTED: &str = "expected drop-revocations:GATE or lose-upload:GATE";
        let (kind, gate) = text.split_once(':').ok_or(EXPECTED)?;
        let gate: i64 = gate.parse().map_err(|_| EXPECTED.to_string())?;
        match kind {
            "drop-revocations" => Ok(Fault::DropRevocationsAt(gate)),
            "lose-upload" => Ok(Fault::LoseUploadAt(gate)),
            _ => Err(EXPECTED.into()),
        }
    }
}

/// What a simulated gate is told.
#[derive(Debug, Clone)]
pub struct GateSpec {
    pub gate_id: i64,
    pub base: String,
    pub lanes: u32,
    pub passage_every: Duration,
    /// The vehicles (= permits) this gate's lanes carry, in turn.
    pub vehicles: Vec<u32>,
    pub fault: Option<Fault>,
}

/// What a simulated gate did, for the checks at the end.
#[derive(Debug, Default, Clone)]
pub struct GateResult {
    pub gate_id: i64,
    pub made: u64,
    pub acknowledged: u64,
    /// Permit ids whose withdrawal reached this gate.
    pub revocations_seen: Vec<u32>,
    pub snapshot_version: u64,
    pub snapshot_rows: u64,
}

/// A vehicle's plate at the fleet: an ordinary plate made from its id.
pub fn plate(i: u32) -> String {
    const SERIAL: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXY";
    let mut n = i as usize;
    let authority = letters[n % letters.len()] as char;
    n /= letters.len();
    let mut serial = String::new();
    for _ in 0..5 {
        serial.push(SERIAL[n % SERIAL.len()] as char);
        n /= SERIAL.len();
    }
    format!("京{authority}{serial}")
}

/// A vehicle's tag EPC at the fleet.
pub fn epc(i: u32) -> String {
    format!("E2003098{i:08X}2140369E")
}

/// The in-memory journal: events made, the acknowledged mark, a wake-up for the outbox.
#[derive(Debug, Default)]
struct Journal {
    events: Mutex<Vec<(JournalEvent, Instant)>>,
    acked: std::sync::atomic::AtomicU64,
    made: Notify,
}

impl Journal {
    fn push(&self, lane: &str, body: EventBody) -> Instant {
        let now = Instant::now();
        {
            let mut events = self.events.lock().expect("journal lock poisoned");
            let seq = events.len() as u64 + 1;
            events.push((
                JournalEvent {
                    seq,
                    at: chrono::Utc::now(),
                    lane: lane.into(),
                    body,
                },
                now,
            ));
        }
        self.made.notify_one();
        now
    }

    fn made(&self) -> u64 {
        self.events.lock().expect("journal lock poisoned").len() as u64
    }
}

/// A gate's HTTP client: its own certificate, its own connections.
pub fn client(tls: rustls::ClientConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
}

/// Reads a snapshot to its end line; returns its version and rows.
pub async fn snapshot(
    http: &reqwest::Client,
    base: &str,
) -> Result<(u64, u64), Box<dyn std::error::Error + Send + Sync>> {
    let mut response = http
        .get(format!("{base}/sync/v1/snapshot"))
        .timeout(Duration::from_secs(120))
        .send()
        .await?
        .error_for_status()?;
    let mut buf: Vec<u8> = Vec::new();
    let (mut version, mut rows) = (None, 0u64);
    while let Some(chunk) = response.chunk().await? {
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: SnapshotLine = serde_json::from_slice(&buf[..end])?;
            buf.drain(..=end);
            match line {
                SnapshotLine::Header(h) => version = Some(h.version),
                SnapshotLine::End { rows: total } => {
                    if total != rows {
                        return Err(format!("the end line counts {total} rows, {rows} came").into());
                    }
                    let version = version.ok_or("no header line")?;
                    return Ok((version, rows));
                }
                other => rows += other.rows() as u64,
            }
        }
    }
    Err("the snapshot ended without its end line".into())
}

/// Runs gate `spec` until `stop`, then uploads what is left (for at most `drain`) and returns
/// what it did.
pub async fn run(
    spec: GateSpec,
    http: reqwest::Client,
    shared: Arc<Shared>,
    stop: CancellationToken,
    drain: Duration,
    connected: Arc<std::sync::atomic::AtomicU32>,
) -> GateResult {
    let journal = Arc::new(Journal::default());
    let identity = JournalIdentity {
        id: format!("{:032x}", 0x000f_1ee7_0000_0000_u128 + spec.gate_id as u128),
        from_legacy: false,
    };
    // The first snapshot, tried until it comes (the centre may be busy with the others').
    let (version, rows) = loop {
        match snapshot(&http, &spec.base).await {
            Ok(v) => break v,
            Err(e) => {
                tracing::debug!(gate = spec.gate_id, error = %e, "snapshot failed; again");
                shared
                    .other_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    () = stop.cancelled() => return GateResult { gate_id: spec.gate_id, ..GateResult::default() },
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
    };
    connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let version = Arc::new(std::sync::atomic::AtomicU64::new(version));
    let traffic = stop.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(pull(
        spec.clone(),
        http.clone(),
        shared.clone(),
        version.clone(),
        seen.clone(),
        stop.clone(),
    ));
    tasks.spawn(commands(
        spec.clone(),
        http.clone(),
        shared.clone(),
        stop.clone(),
    ));
    tasks.spawn(health(
        spec.clone(),
        http.clone(),
        shared.clone(),
        journal.clone(),
        version.clone(),
        stop.clone(),
    ));
    for lane in 0..spec.lanes {
        tasks.spawn(lane_traffic(
            spec.clone(),
            lane,
            journal.clone(),
            shared.clone(),
            traffic.clone(),
        ));
    }
    // The outbox may call it done only once no lane can make another event: a lane that
    // ticked as the run stopped journals its arrival after `stop`, and an outbox that had
    // already found its journal empty used to leave those events unsent.
    let lanes_done = CancellationToken::new();
    let outbox = tokio::spawn(outbox(
        spec.clone(),
        http.clone(),
        identity,
        journal.clone(),
        shared.clone(),
        Ending {
            stop: stop.clone(),
            lanes_done: lanes_done.clone(),
        },
        drain,
    ));
    stop.cancelled().await;
    while tasks.join_next().await.is_some() {}
    lanes_done.cancel();
    let _ = outbox.await;
    let acknowledged = journal.acked.load(std::sync::atomic::Ordering::SeqCst);
    let revocations_seen = seen.lock().expect("seen lock poisoned").clone();
    GateResult {
        gate_id: spec.gate_id,
        made: journal.made(),
        acknowledged,
        revocations_seen,
        snapshot_version: version.load(std::sync::atomic::Ordering::SeqCst),
        snapshot_rows: rows,
    }
}

/// The changes long poll: notes each revocation's arrival.
async fn pull(
    spec: GateSpec,
    http: reqwest::Client,
    shared: Arc<Shared>,
    version: Arc<std::sync::atomic::AtomicU64>,
    seen: Arc<Mutex<Vec<u32>>>,
    stop: CancellationToken,
) {
    let drop_revocations = spec.fault == Some(Fault::DropRevocationsAt(spec.gate_id));
    loop {
        let since = version.load(std::sync::atomic::Ordering::SeqCst);
        let request = http
            .get(format!(
                "{}/sync/v1/changes?since={since}&wait_ms={}",
                spec.base,
                POLL_WAIT.as_millis()
            ))
            .timeout(POLL_WAIT + Duration::from_secs(10))
            .send();
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            r = request => r,
        };
        let changes: Result<Changes, reqwest::Error> = match answer {
            Ok(r) => match r.error_for_status() {
                Ok(r) => r.json().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let changes = match changes {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(gate = spec.gate_id, error = %e, "changes poll failed");
                shared
                    .other_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RETRY_AFTER) => continue,
                }
            }
        };
        let now = Instant::now();
        if changes.reset {
            if let Ok((v, _)) = snapshot(&http, &spec.base).await {
                version.store(v, std::sync::atomic::Ordering::SeqCst);
            }
            continue;
        }
        if !drop_revocations {
            let withdrawn = changes
                .urgent
                .permits
                .iter()
                .filter(|p| p.status != "active")
                .map(|p| p.id)
                .chain(changes.urgent.delete_permits.iter().copied());
            let revoked = shared.revoked_at.lock().expect("revoked lock poisoned");
            let mut seen = seen.lock().expect("seen lock poisoned");
            for id in withdrawn {
                if let Some(at) = revoked.get(&id)
                    && !seen.contains(&id)
                {
                    seen.push(id);
                    shared.revocation.push(now.saturating_duration_since(*at));
                }
            }
        }
        version.store(changes.version, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The commands long poll; a command is acknowledged as not carried out.
async fn commands(
    spec: GateSpec,
    http: reqwest::Client,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let request = http
            .get(format!(
                "{}/sync/v1/commands?wait_ms={}",
                spec.base,
                POLL_WAIT.as_millis()
            ))
            .timeout(POLL_WAIT + Duration::from_secs(10))
            .send();
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            r = request => r,
        };
        let pending: Result<Vec<PendingCommand>, reqwest::Error> = match answer {
            Ok(r) => match r.error_for_status() {
                Ok(r) => r.json().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match pending {
            Ok(pending) => {
                for c in pending {
                    let _ = http
                        .post(format!("{}/sync/v1/commands/{}/ack", spec.base, c.id))
                        .json(&CommandResult {
                            done: false,
                            detail: "simulated gate".into(),
                        })
                        .send()
                        .await;
                }
            }
            Err(_) => {
                shared
                    .other_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RETRY_AFTER) => {}
                }
            }
        }
    }
}

/// A health report every [`HEALTH_EVERY`].
async fn health(
    spec: GateSpec,
    http: reqwest::Client,
    shared: Arc<Shared>,
    journal: Arc<Journal>,
    version: Arc<std::sync::atomic::AtomicU64>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(HEALTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let made = journal.made();
        let acked = journal.acked.load(std::sync::atomic::Ordering::SeqCst);
        let report = HealthReport {
            gate_time: chrono::Utc::now(),
            data_version: version.load(std::sync::atomic::Ordering::SeqCst),
            journal: JournalHealth {
                last_seq: made,
                acknowledged: acked,
                stored: made - acked.min(made),
                capacity: 1_000_000,
                fill_percent: 0,
                write_failing: false,
                write_failures: 0,
            },
            lanes: (0..spec.lanes)
                .map(|l| LaneHealth {
                    lane: lane_name(l).into(),
                    mode: "normal".into(),
                    state: "idle".into(),
                    reader_online: true,
                    io_online: true,
                    cameras: Vec::new(),
                })
                .collect(),
        };
        let sent = http
            .post(format!("{}/sync/v1/health", spec.base))
            .json(&report)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        if sent.is_err() {
            shared
                .other_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

pub(super) fn lane_name(lane: u32) -> &'static str {
    match lane {
        0 => "in",
        1 => "out",
        _ => "extra",
    }
}

/// A decision record as the lane journals it: vehicle `v`'s tag granted, or an unknown tag
/// `v` denied.
fn decision(direction: &str, v: u32, granted: bool) -> DecisionRecord {
    DecisionRecord {
        direction: direction.into(),
        credential: "tag".into(),
        epc: Some(epc(v)),
        tid: None,
        antenna: Some(1),
        rssi_dbm: Some(-52),
        plate: granted.then(|| plate(v)),
        granted,
        reason: if granted {
            ReasonCode::Granted
        } else {
            ReasonCode::DeniedUnknownTag
        },
        flags: Vec::new(),
        permit_id: granted.then_some(i64::from(v)),
        vehicle_id: granted.then_some(i64::from(v)),
        holder: granted.then(|| format!("持证人{v}")),
        category: granted.then(|| "staff".into()),
        data_version: 1,
        decide_ns: 900,
        camera: None,
        pass: None,
    }
}

/// One lane's traffic: a passage every `passage_every`, from a random-looking phase.
async fn lane_traffic(
    spec: GateSpec,
    lane: u32,
    journal: Arc<Journal>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let period = spec.passage_every;
    // Spread the lanes over the period, so the fleet's uploads are not in step.
    let phase = (spec.gate_id as u64 * 7919 + u64::from(lane) * 104_729) % 1000;
    let first = period.mul_f64(phase as f64 / 1000.0);
    let mut every = tokio::time::interval_at(Instant::now() + first, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let name = lane_name(lane);
    let direction = if lane.is_multiple_of(2) {
        "entry"
    } else {
        "exit"
    };
    let mut arrival: u64 = 0;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        arrival += 1;
        if arrival.is_multiple_of(40) {
            let stranger = 90_000_000 + spec.gate_id as u32 * 1000 + (arrival % 1000) as u32;
            journal.push(
                name,
                EventBody::Decision(decision(direction, stranger, false)),
            );
            continue;
        }
        let v = spec.vehicles
            [(arrival as usize * spec.lanes as usize + lane as usize) % spec.vehicles.len()];
        let made = journal.push(name, EventBody::Decision(decision(direction, v, true)));
        {
            let mut recent = shared.recent_plates.lock().expect("plates lock poisoned");
            let list = recent.entry(spec.gate_id).or_default();
            list.push((plate(v), made));
            if list.len() > 8 {
                list.remove(0);
            }
        }
        journal.push(
            name,
            EventBody::Barrier {
                action: BarrierAction::Open,
                cause: "grant".into(),
            },
        );
        // The vehicle crosses the loops; the arm closes behind it.
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(4200).min(period / 2)) => {}
        }
        journal.push(
            name,
            EventBody::Passage {
                direction: direction.into(),
                plate: Some(plate(v)),
                vehicle_id: Some(i64::from(v)),
                permit_id: Some(i64::from(v)),
            },
        );
        journal.push(
            name,
            EventBody::Barrier {
                action: BarrierAction::Close,
                cause: "auto_close".into(),
            },
        );
    }
}

/// How a gate's run ends, as its outbox sees it.
struct Ending {
    /// The run is over: no new long polls, no new traffic.
    stop: CancellationToken,
    /// Every lane has stopped: the journal will not grow any more.
    lanes_done: CancellationToken,
}

/// The outbox: uploads what is not acknowledged as soon as it is made; after `stop`, goes on
/// until the lanes have stopped and everything is acknowledged, or `drain` has passed.
async fn outbox(
    spec: GateSpec,
    http: reqwest::Client,
    identity: JournalIdentity,
    journal: Arc<Journal>,
    shared: Arc<Shared>,
    ending: Ending,
    drain: Duration,
) {
    let Ending { stop, lanes_done } = ending;
    use std::sync::atomic::Ordering;
    let lose = spec.fault == Some(Fault::LoseUploadAt(spec.gate_id));
    let mut lost_once = false;
    let mut deadline: Option<Instant> = None;
    loop {
        let acked = journal.acked.load(Ordering::SeqCst);
        let batch: Vec<(JournalEvent, Instant)> = {
            let events = journal.events.lock().expect("journal lock poisoned");
            events
                .iter()
                .skip(acked as usize)
                .take(BATCH)
                .cloned()
                .collect()
        };
        if batch.is_empty() {
            if lanes_done.is_cancelled() {
                return;
            }
            tokio::select! {
                () = journal.made.notified() => {}
                () = lanes_done.cancelled() => {}
            }
            continue;
        }
        if stop.is_cancelled() {
            let at = *deadline.get_or_insert_with(|| Instant::now() + drain);
            if Instant::now() >= at {
                return;
            }
        }
        // The fault: the first batch after the tenth event is dropped on the floor, as a
        // gate that marked events delivered without the centre's word would.
        if lose && !lost_once && acked >= 10 {
            lost_once = true;
            let top = batch.last().map_or(acked, |(e, _)| e.seq);
            journal.acked.store(top, Ordering::SeqCst);
            continue;
        }
        let body = EventBatch {
            gate_id: spec.gate_id,
            journal: Some(identity.clone()),
            events: batch.iter().map(|(e, _)| e.clone()).collect(),
        };
        let sent = http
            .post(format!("{}/sync/v1/events", spec.base))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let ack: Result<EventAck, String> = match sent {
            Ok(r) if r.status().is_success() => r.json().await.map_err(|e| e.to_string()),
            Ok(r) => {
                shared.uploads_refused.fetch_add(1, Ordering::Relaxed);
                Err(format!("refused: {}", r.status()))
            }
            Err(e) => {
                shared.uploads_retried.fetch_add(1, Ordering::Relaxed);
                Err(e.to_string())
            }
        };
        match ack {
            Ok(ack) => {
                let now = Instant::now();
                let (first, last) = (batch[0].0.seq, batch[batch.len() - 1].0.seq);
                // As the real outbox does (`SyncClient::sync_once`): a centre that stored the
                // whole batch but misses events before it (the gap is its alarm) lets the gate
                // move on rather than resend the same batch for ever.
                let through = if ack.highest_contiguous + 1 < first
                    && ack.stored + ack.duplicates + ack.conflicts == batch.len() as u64
                {
                    last
                } else {
                    ack.highest_contiguous
                };
                for (e, made) in &batch {
                    if e.seq <= through && e.seq > acked && shared.measured(*made) {
                        shared
                            .event_to_centre
                            .push(now.saturating_duration_since(*made));
                    }
                }
                journal.acked.fetch_max(through, Ordering::SeqCst);
                if through < last {
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
            Err(e) => {
                tracing::debug!(gate = spec.gate_id, error = %e, "upload failed; again");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}
