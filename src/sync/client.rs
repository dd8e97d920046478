//! The gate's side of sync: pull data down, push events up, take commands, report health.
//!
//! Each direction is a **single step** the tests call directly, and the runner wraps each in a
//! thin loop that backs off after a failure:
//! - [`SyncClient::pull_once`] — with no data yet, streams a full snapshot; otherwise long-polls
//!   for the changes after the gate's data version and applies them: blacklist entries and
//!   withdrawals (revoked/suspended/deleted permits, withdrawn tags, locks) first, as their own
//!   update, then presence from the other gates, then everything else. The version is recorded
//!   only with the data, in one store transaction, so a crash re-fetches rather than skips.
//! - [`SyncClient::sync_once`] — the outbox: the journal's events after the acknowledged
//!   sequence, one batch, acknowledged by the centre's highest contiguous sequence. Returns
//!   [`Outbox::Synced`] or [`Outbox::Empty`].
//! - [`SyncClient::commands_once`] — long-polls for commands, carries each out on the lanes
//!   and acknowledges it.
//! - [`SyncClient::health_once`] — reports devices, modes, journal fill, data version and the
//!   gate's clock; learns the clock offset.
//!
//! Offline: decisions never wait for the network (they read the in-memory index). After
//! `offline_after_ms` without reaching the centre, the runner applies the gate's offline
//! policy (set centrally): `cached` changes nothing; `locked_closed` / `locked_open` put every
//! lane in that mode until the centre is reachable again, then restore the lanes' modes.
//!
//! What it never does: decide, touch a device, or mark an event delivered that the centre has
//! not stored (only the centre's acknowledgement moves the journal's delivered mark).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::central::commands::GateCommand;
use crate::domain::VehicleId;
use crate::gate::lane::{GuardCommand, GuardOpenReason, Mode};
use crate::gate::runtime::{GateHandle, LaneCommand, mode_name, parse_mode};
use crate::gate::store::{PresenceRecord, Update};
use crate::sync::wire::{
    Changes, CommandResult, EventAck, EventBatch, GateSettings, HealthAck, HealthReport,
    JournalHealth, LaneHealth, PendingCommand, PresenceRow, SnapshotLine, update_is_empty,
};

/// Why a sync step failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The centre could not be reached, or the exchange broke off.
    #[error("cannot reach the centre: {0}")]
    Transport(#[from] reqwest::Error),
    /// The centre answered with an error.
    #[error("the centre refused the request ({status}): {body}")]
    Refused { status: u16, body: String },
    /// The centre's answer does not follow the protocol (e.g. a cut-off snapshot).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The gate could not apply what it received, or read its journal.
    #[error("gate: {0}")]
    Gate(String),
}

fn gate_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::Gate(e.to_string())
}

/// What one outbox step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// A batch went up; the centre has everything up to `acknowledged`.
    Synced { sent: usize, acknowledged: u64 },
    /// Nothing to send.
    Empty,
}

/// What one pull step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// A full snapshot replaced the gate's data.
    Snapshot { version: u64, rows: u64 },
    /// Changes were applied.
    Delta { version: u64 },
    /// Nothing changed within the wait.
    Unchanged,
}

/// Timing settings of a client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub poll_wait: Duration,
    pub batch: u32,
    pub health_every: Duration,
    pub offline_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(3),
            poll_wait: Duration::from_secs(20),
            batch: 1000,
            health_every: Duration::from_secs(5),
            offline_after: Duration::from_secs(10),
        }
    }
}

#[derive(Debug)]
struct LinkState {
    offline_policy: String,
    last_contact: Instant,
    /// The lanes' modes before the offline policy changed them, to restore.
    offline_applied: Option<Vec<(String, String)>>,
}

/// A gate's connection to the centre.
#[derive(Debug)]
pub struct SyncClient {
    http: reqwest::Client,
    base: String,
    gate_id: i64,
    options: ClientOptions,
    link: Mutex<LinkState>,
}

/// A TLS client configuration (ring provider) that trusts only `ca` and presents `cert`/`key`.
pub fn client_tls(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<rustls::ClientConfig> {
    use anyhow::Context as _;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in
        CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))?
    {
        roots.add(c?)?;
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?)
}

impl SyncClient {
    /// A client for gate `gate_id` talking to `base` (e.g. `https://central:8443`). With `tls`
    /// the client only speaks HTTPS with that configuration; without (tests on loopback before
    /// the listener has TLS) it speaks plain HTTP.
    pub fn new(
        gate_id: i64,
        base: &str,
        tls: Option<rustls::ClientConfig>,
        options: ClientOptions,
    ) -> Result<SyncClient, SyncError> {
        let tls = match tls {
            Some(t) => t,
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| SyncError::Protocol(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(SyncClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            gate_id,
            options,
            link: Mutex::new(LinkState {
                offline_policy: "cached".into(),
                last_contact: Instant::now(),
                offline_applied: None,
            }),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/sync/v1{path}", self.base)
    }

    fn contact(&self) {
        self.link.lock().expect("link lock poisoned").last_contact = Instant::now();
    }

    async fn check(&self, response: reqwest::Response) -> Result<reqwest::Response, SyncError> {
        let status = response.status();
        if status.is_success() {
            self.contact();
            return Ok(response);
        }
        // The centre answered: the link is up even if the request was refused.
        self.contact();
        let body = response.text().await.unwrap_or_default();
        Err(SyncError::Refused {
            status: status.as_u16(),
            body,
        })
    }

    /// One pull step: a snapshot when the gate has no data, else the changes after its data
    /// version (waiting up to `wait` for one).
    pub async fn pull_once(&self, gate: &GateHandle, wait: Duration) -> Result<Pulled, SyncError> {
        let version = gate.shared().store.data_version().await.map_err(gate_err)?;
        if version == 0 {
            return self.snapshot(gate).await;
        }
        let response = self
            .http
            .get(self.url(&format!(
                "/changes?since={version}&wait_ms={}",
                wait.as_millis()
            )))
            .timeout(wait + Duration::from_secs(10))
            .send()
            .await?;
        let changes: Changes = self.check(response).await?.json().await?;
        if changes.reset {
            return self.snapshot(gate).await;
        }
        if changes.version == version && changes.is_empty() {
            return Ok(Pulled::Unchanged);
        }
        if let Err(e) = self.apply_changes(gate, version, changes.clone()).await {
            // The data could not be applied (e.g. it would break a reference): start over from
            // a snapshot rather than decide from a copy that diverged.
            tracing::error!(error = %e, "cannot apply the centre's changes; fetching a snapshot");
            gate.shared()
                .store
                .apply(&Update::default())
                .await
                .map_err(gate_err)?;
            return Err(e);
        }
        Ok(Pulled::Delta {
            version: changes.version,
        })
    }

    async fn apply_changes(
        &self,
        gate: &GateHandle,
        version: u64,
        mut changes: Changes,
    ) -> Result<(), SyncError> {
        if !update_is_empty(&changes.urgent) {
            changes.urgent.data_version = version;
            gate.apply_update(&changes.urgent).await.map_err(gate_err)?;
        }
        if !changes.presence.is_empty() {
            gate.apply_presence(&presence_records(&changes.presence))
                .await
                .map_err(gate_err)?;
        }
        changes.update.data_version = changes.version;
        gate.apply_update(&changes.update).await.map_err(gate_err)?;
        if let Some(settings) = changes.gate {
            self.settings(&settings);
            self.apply_modes(gate, &settings).await;
        }
        Ok(())
    }

    fn settings(&self, settings: &GateSettings) {
        self.link.lock().expect("link lock poisoned").offline_policy =
            settings.offline_policy.clone();
    }

    /// A mode changed centrally (gate or lane): every lane takes its lane's mode if the centre
    /// names the lane, else the gate's.
    async fn apply_modes(&self, gate: &GateHandle, settings: &GateSettings) {
        for lane in gate.lane_ids() {
            let wanted = settings
                .lanes
                .iter()
                .find(|l| l.lane == lane)
                .map(|l| l.mode.as_str())
                .filter(|m| *m != "normal")
                .unwrap_or(settings.mode.as_str());
            let Some(mode) = parse_mode(wanted) else {
                continue;
            };
            let current = gate
                .status()
                .into_iter()
                .find(|s| s.lane == lane)
                .map(|s| s.mode);
            if current.as_deref() != Some(mode_name(mode)) {
                let _ = gate
                    .command(
                        &lane,
                        LaneCommand::SetMode {
                            mode,
                            by: "centre".into(),
                            done: None,
                        },
                    )
                    .await;
            }
        }
    }

    /// Streams a full snapshot and replaces the gate's data with it.
    pub async fn snapshot(&self, gate: &GateHandle) -> Result<Pulled, SyncError> {
        let response = self.http.get(self.url("/snapshot")).send().await?;
        let response = self.check(response).await?;
        let mut stream = response.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut update = Update {
            replace_all: true,
            ..Update::default()
        };
        let mut presence = Vec::new();
        let mut header = None;
        let mut rows = 0u64;
        let mut end = None;
        let mut line = |text: &[u8]| -> Result<(), SyncError> {
            if text.is_empty() {
                return Ok(());
            }
            let parsed: SnapshotLine = serde_json::from_slice(text)
                .map_err(|e| SyncError::Protocol(format!("snapshot line: {e}")))?;
            if end.is_some() {
                return Err(SyncError::Protocol("data after the snapshot's end".into()));
            }
            match parsed {
                SnapshotLine::Header { version, gate } => header = Some((version, gate)),
                SnapshotLine::End { rows: n } => end = Some(n),
                other => {
                    rows += 1;
                    match other {
                        SnapshotLine::Permit(r) => update.permits.push(r),
                        SnapshotLine::Vehicle(r) => update.vehicles.push(r),
                        SnapshotLine::Credential(r) => update.credentials.push(r),
                        SnapshotLine::Blacklist(r) => update.blacklist.push(r),
                        SnapshotLine::Lock(r) => update.locks.push(r),
                        SnapshotLine::Booking(r) => update.bookings.push(r),
                        SnapshotLine::Presence(r) => presence.push(r),
                        SnapshotLine::Header { .. } | SnapshotLine::End { .. } => {}
                    }
                }
            }
            Ok(())
        };
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
                line(&buf[start..start + nl])?;
                start += nl + 1;
            }
            buf.drain(..start);
        }
        line(&buf)?;
        let Some((version, settings)) = header else {
            return Err(SyncError::Protocol("the snapshot has no header".into()));
        };
        match end {
            Some(n) if n == rows => {}
            Some(n) => {
                return Err(SyncError::Protocol(format!(
                    "the snapshot announced {n} rows and carried {rows}"
                )));
            }
            None => return Err(SyncError::Protocol("the snapshot was cut off".into())),
        }
        // Version 0 means "no data" at the gate; the centre's log starts at 1 (migration 0003).
        if version == 0 {
            return Err(SyncError::Protocol(
                "the snapshot is at version 0 (the centre's change log is empty)".into(),
            ));
        }
        update.data_version = version;
        gate.apply_snapshot(update).await.map_err(gate_err)?;
        gate.apply_presence(&presence_records(&presence))
            .await
            .map_err(gate_err)?;
        self.settings(&settings);
        // A new (or reset) gate takes the centre's lockdown or evacuation set while it was
        // away; it does not reset to `normal` a mode its lanes hold (a guard's, or a command's
        // that raced the snapshot).
        if settings.mode != "normal" {
            self.apply_modes(gate, &settings).await;
        }
        Ok(Pulled::Snapshot { version, rows })
    }

    /// One outbox step: sends the oldest batch of events the centre has not acknowledged.
    pub async fn sync_once(&self, gate: &GateHandle) -> Result<Outbox, SyncError> {
        let journal = gate.journal();
        let acked = journal.stats().await.acked_seq;
        let events = journal
            .read_after(acked, self.options.batch)
            .await
            .map_err(gate_err)?;
        let (Some(first), Some(last)) =
            (events.first().map(|e| e.seq), events.last().map(|e| e.seq))
        else {
            return Ok(Outbox::Empty);
        };
        let sent = events.len();
        let body = EventBatch {
            gate_id: self.gate_id,
            events,
        };
        let response = self
            .http
            .post(self.url("/events"))
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let ack: EventAck = self.check(response).await?.json().await?;
        // The centre stored the whole batch but misses events before it that this gate no
        // longer has to send (pruned, or lost to a power cut): the gap is the centre's alarm;
        // the gate moves on rather than resend the same batch for ever.
        let through =
            if ack.highest_contiguous + 1 < first && ack.stored + ack.duplicates == sent as u64 {
                last
            } else {
                ack.highest_contiguous
            };
        journal.acknowledge(through).await.map_err(gate_err)?;
        Ok(Outbox::Synced {
            sent,
            acknowledged: through,
        })
    }

    /// One command step: waits up to `wait` for commands, carries each out and acknowledges
    /// it. Returns how many were handled.
    pub async fn commands_once(
        &self,
        gate: &GateHandle,
        wait: Duration,
    ) -> Result<usize, SyncError> {
        let response = self
            .http
            .get(self.url(&format!("/commands?wait_ms={}", wait.as_millis())))
            .timeout(wait + Duration::from_secs(10))
            .send()
            .await?;
        let commands: Vec<PendingCommand> = self.check(response).await?.json().await?;
        for c in &commands {
            let result = match execute(gate, &c.command).await {
                Ok(()) => CommandResult {
                    done: true,
                    detail: String::new(),
                },
                Err(detail) => CommandResult {
                    done: false,
                    detail,
                },
            };
            let response = self
                .http
                .post(self.url(&format!("/commands/{}/ack", c.id)))
                .json(&result)
                .send()
                .await?;
            self.check(response).await?;
        }
        Ok(commands.len())
    }

    /// Reports the gate's health; returns the centre's view of the clock offset.
    pub async fn health_once(&self, gate: &GateHandle) -> Result<HealthAck, SyncError> {
        let stats = gate.journal_stats().await;
        let report = HealthReport {
            gate_time: chrono::Utc::now(),
            data_version: gate.shared().store.data_version().await.map_err(gate_err)?,
            journal: JournalHealth {
                last_seq: stats.last_seq,
                acknowledged: stats.acked_seq,
                stored: stats.stored,
                capacity: stats.capacity,
                fill_percent: stats.fill_percent(),
            },
            lanes: gate
                .status()
                .into_iter()
                .map(|s| LaneHealth {
                    lane: s.lane,
                    mode: s.mode,
                    state: s.state,
                    reader_online: s.reader_online,
                    io_online: s.io_online,
                })
                .collect(),
        };
        let response = self
            .http
            .post(self.url("/health"))
            .json(&report)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let ack: HealthAck = self.check(response).await?.json().await?;
        if ack.clock_warning {
            tracing::warn!(
                offset_ms = ack.clock_offset_ms,
                "this gate's clock is more than 5 s off the centre's (GB 50396)"
            );
        }
        Ok(ack)
    }

    /// Applies the offline policy if the centre has been unreachable too long, or lifts it once
    /// the centre is back. Returns whether the policy is in force.
    pub async fn enforce_offline_policy(&self, gate: &GateHandle) -> bool {
        let (policy, offline, applied) = {
            let link = self.link.lock().expect("link lock poisoned");
            (
                link.offline_policy.clone(),
                link.last_contact.elapsed() > self.options.offline_after,
                link.offline_applied.is_some(),
            )
        };
        match (offline, applied) {
            (true, false) => {
                let Some(mode) = parse_mode(&policy).filter(|m| *m != Mode::Normal) else {
                    return false; // `cached`: keep deciding from the local copy
                };
                let before: Vec<(String, String)> = gate
                    .status()
                    .into_iter()
                    .map(|s| (s.lane, s.mode))
                    .collect();
                for (lane, _) in &before {
                    let _ = gate
                        .command(
                            lane,
                            LaneCommand::SetMode {
                                mode,
                                by: "offline_policy".into(),
                                done: None,
                            },
                        )
                        .await;
                }
                tracing::warn!(policy, "the centre is unreachable: offline policy applied");
                self.link
                    .lock()
                    .expect("link lock poisoned")
                    .offline_applied = Some(before);
                true
            }
            (false, true) => {
                let before = self
                    .link
                    .lock()
                    .expect("link lock poisoned")
                    .offline_applied
                    .take()
                    .unwrap_or_default();
                for (lane, mode) in before {
                    if let Some(mode) = parse_mode(&mode) {
                        let _ = gate
                            .command(
                                &lane,
                                LaneCommand::SetMode {
                                    mode,
                                    by: "offline_policy".into(),
                                    done: None,
                                },
                            )
                            .await;
                    }
                }
                tracing::info!("the centre is reachable again: offline policy lifted");
                false
            }
            (true, true) => true,
            (false, false) => false,
        }
    }

    /// Runs every direction until `shutdown`: each step in a loop that backs off after a
    /// failure (100 ms doubling to 5 s).
    pub async fn run(self: Arc<Self>, gate: Arc<GateHandle>, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        let wait = self.options.poll_wait;
        {
            let (c, g, s) = (self.clone(), gate.clone(), shutdown.clone());
            tasks.spawn(repeat("pull", s, move || {
                let (c, g) = (c.clone(), g.clone());
                async move { c.pull_once(&g, wait).await.map(|p| p != Pulled::Unchanged) }
            }));
        }
        {
            let (c, g, s) = (self.clone(), gate.clone(), shutdown.clone());
            tasks.spawn(repeat("outbox", s, move || {
                let (c, g) = (c.clone(), g.clone());
                async move {
                    match c.sync_once(&g).await? {
                        Outbox::Synced { .. } => Ok(true),
                        Outbox::Empty => {
                            tokio::time::sleep(OUTBOX_IDLE).await;
                            Ok(false)
                        }
                    }
                }
            }));
        }
        {
            let (c, g, s) = (self.clone(), gate.clone(), shutdown.clone());
            tasks.spawn(repeat("commands", s, move || {
                let (c, g) = (c.clone(), g.clone());
                async move { c.commands_once(&g, wait).await.map(|n| n > 0) }
            }));
        }
        {
            let (c, g, s) = (self.clone(), gate.clone(), shutdown.clone());
            let every = self.options.health_every;
            tasks.spawn(async move {
                loop {
                    if let Err(e) = c.health_once(&g).await {
                        tracing::debug!(error = %e, "health report failed");
                    }
                    c.enforce_offline_policy(&g).await;
                    tokio::select! {
                        _ = s.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// How long the outbox waits before looking at an empty journal again (the bound it adds to
/// event-to-centre time).
pub const OUTBOX_IDLE: Duration = Duration::from_millis(50);

async fn repeat<F, Fut>(what: &'static str, shutdown: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, SyncError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            o = step() => o,
        };
        match outcome {
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(step = what, error = %e, "sync step failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn presence_records(rows: &[PresenceRow]) -> Vec<PresenceRecord> {
    rows.iter()
        .map(|r| PresenceRecord {
            vehicle_id: VehicleId(r.vehicle_id),
            inside: r.inside,
            since_ms: r.since_ms,
            gate: r.gate_id,
        })
        .collect()
}

/// A mode name as the centre sends it: the lane modes, plus the issue's `lockdown` and
/// `evacuation`.
fn command_mode(text: &str) -> Option<Mode> {
    match text {
        "lockdown" => Some(Mode::LockedClosed),
        "evacuation" => Some(Mode::LockedOpen),
        other => parse_mode(other),
    }
}

fn open_reason(code: &str) -> GuardOpenReason {
    match code {
        "visitor_registered" => GuardOpenReason::VisitorRegistered,
        "emergency_vehicle" => GuardOpenReason::EmergencyVehicle,
        "device_fault" => GuardOpenReason::EquipmentFault,
        "permit_holder_without_tag" => GuardOpenReason::PermitChecked,
        _ => GuardOpenReason::Other,
    }
}

/// Carries a centre's command out on the lanes; `Err` says why it was refused.
async fn execute(gate: &GateHandle, command: &GateCommand) -> Result<(), String> {
    let lanes = gate.lane_ids();
    let known = |lane: &str| -> Result<(), String> {
        if lanes.iter().any(|l| l == lane) {
            Ok(())
        } else {
            Err(format!("本门没有车道 {lane} / no lane {lane} at this gate"))
        }
    };
    match command {
        GateCommand::Guard {
            lane,
            command,
            reason,
            note,
            operator,
        } => {
            known(lane)?;
            let command = match command.as_str() {
                "open" => GuardCommand::Open(open_reason(reason)),
                "keep_closed" => GuardCommand::KeepClosed,
                "release" => GuardCommand::Release,
                other => {
                    return Err(format!(
                        "未知的指令 {other} / unknown command {other} (open, keep_closed, release)"
                    ));
                }
            };
            gate.command(
                lane,
                LaneCommand::Guard {
                    operator: operator.clone(),
                    command,
                    reason: reason.clone(),
                    note: note.clone(),
                    done: None,
                },
            )
            .await
            .map_err(|e| e.to_string())
        }
        GateCommand::SetMode { lane, mode, by } => {
            let Some(m) = command_mode(mode) else {
                return Err(format!("未知的模式 {mode} / unknown mode {mode}"));
            };
            let targets = match lane {
                Some(l) => {
                    known(l)?;
                    vec![l.clone()]
                }
                None => lanes.clone(),
            };
            for l in targets {
                gate.command(
                    &l,
                    LaneCommand::SetMode {
                        mode: m,
                        by: by.clone(),
                        done: None,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}
