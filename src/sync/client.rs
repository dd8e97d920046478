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
//!   [`Outbox::Synced`] or [`Outbox::Empty`]. The runner steps again at once after a batch
//!   (events that came while it was on its way make the next one) and, on an empty journal,
//!   waits for the journal's next commit, so an event leaves the gate as soon as it is durable.
//! - [`SyncClient::commands_once`] — long-polls for commands, carries each out on the lanes
//!   and acknowledges it.
//! - [`SyncClient::photos_once`] — the camera photos the centre lacks, on a loop and
//!   connections of their own beside the outbox (`sync/photos.rs`).
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

use crate::domain::{DirectionSet, VehicleId};
use crate::gate::journal::JournalError;
use crate::gate::lane::{GuardCommand, GuardOpenReason, Mode};
use crate::gate::runtime::{GateError, GateHandle, LaneCommand, mode_name, parse_mode};
use crate::gate::store::{PresenceRecord, SnapshotPart, StoreError};
use crate::wire::command::{GateCommand, GuardAction, LaneMode};
use crate::wire::rows::{PassageRecord, Update, update_is_empty};
use crate::wire::sync::{
    Changes, CommandResult, EventAck, EventBatch, GateSettings, HealthAck, HealthReport,
    JournalHealth, LaneHealth, PendingCommand, SNAPSHOT_FORMAT, SnapshotHeader, SnapshotLine,
};

/// Why a sync step failed, by who must react: the network or TLS (retry), the centre's refusal
/// (its status and body), a centre that broke the protocol, or the gate's own store, journal
/// or lanes.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The centre could not be reached, or the exchange broke off (connection, TLS handshake,
    /// timeout, a body that did not arrive or did not decode).
    #[error("cannot reach the centre: {0}")]
    Transport(#[from] reqwest::Error),
    /// The client's TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The centre answered with an error.
    #[error("the centre refused the request ({}): {body}", .status.as_u16())]
    Refused {
        status: reqwest::StatusCode,
        body: String,
    },
    /// The centre's answer does not follow the protocol (e.g. a cut-off snapshot).
    #[error("protocol: {0}")]
    Protocol(#[from] ProtocolError),
    /// The gate's store could not be read or written.
    #[error("gate: {0}")]
    Store(#[from] StoreError),
    /// The gate's journal could not be read or acknowledged.
    #[error("gate: {0}")]
    Journal(#[from] JournalError),
    /// The gate could not apply what it received, or carry it out.
    #[error("gate: {}", with_causes(.0))]
    Gate(#[from] GateError),
    /// The gate's photo store could not be read or written.
    #[error("gate: photos: {0}")]
    Photos(String),
    /// The gate's store stopped taking a snapshot without saying why.
    #[error("gate: the store stopped taking the snapshot")]
    StoreStopped,
}

/// How a centre's answer broke the sync protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("snapshot line {line}: {source}")]
    BadLine {
        /// The line's first 80 bytes.
        line: String,
        source: serde_json::Error,
    },
    #[error("data after the snapshot's end")]
    AfterEnd,
    #[error("a second snapshot header")]
    SecondHeader,
    #[error("snapshot rows before its header")]
    RowsBeforeHeader,
    #[error(
        "the centre sent snapshot format {0}, this gate reads format {SNAPSHOT_FORMAT}: \
         upgrade the centre and the gates together"
    )]
    Format(u32),
    #[error("the snapshot is at version 0 (the centre's change log is empty)")]
    VersionZero,
    #[error("the snapshot was cut off in the middle of a line")]
    CutInLine,
    #[error("the snapshot has no header")]
    NoHeader,
    #[error("the snapshot announced {announced} rows and carried {carried}")]
    Miscounted { announced: u64, carried: u64 },
    #[error("the snapshot was cut off")]
    CutOff,
}

impl From<std::convert::Infallible> for LinkError {
    fn from(e: std::convert::Infallible) -> LinkError {
        match e {}
    }
}

/// An error and each of its causes, `: `-separated (as a log line shows them).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
    /// Photos go on connections of their own, so a large or slow upload never queues in front
    /// of events on the same connection.
    pub(super) photo_http: reqwest::Client,
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
    ) -> Result<SyncClient, LinkError> {
        let tls = match tls {
            Some(t) => t,
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        let client = || {
            reqwest::Client::builder()
                .use_preconfigured_tls(tls.clone())
                .connect_timeout(options.connect_timeout)
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(60))
                .build()
        };
        let (http, photo_http) = (client()?, client()?);
        Ok(SyncClient {
            http,
            photo_http,
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

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/sync/v1{path}", self.base)
    }

    fn contact(&self) {
        self.link.lock().expect("link lock poisoned").last_contact = Instant::now();
    }

    pub(super) async fn check(
        &self,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, LinkError> {
        let status = response.status();
        if status.is_success() {
            self.contact();
            return Ok(response);
        }
        // The centre answered: the link is up even if the request was refused.
        self.contact();
        let body = response.text().await.unwrap_or_default();
        Err(LinkError::Refused { status, body })
    }

    /// One pull step: a snapshot when the gate has no data, else the changes after its data
    /// version (waiting up to `wait` for one).
    pub async fn pull_once(&self, gate: &GateHandle, wait: Duration) -> Result<Pulled, LinkError> {
        let version = gate.shared().store.data_version().await?;
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
            gate.shared().store.apply(&Update::default()).await?;
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
    ) -> Result<(), LinkError> {
        if !update_is_empty(&changes.urgent) {
            changes.urgent.data_version = version;
            gate.apply_update(&changes.urgent).await?;
        }
        if !changes.presence.is_empty() {
            gate.apply_presence(&presence_records(&changes.presence))
                .await?;
        }
        changes.update.data_version = changes.version;
        gate.apply_update(&changes.update).await?;
        if let Some(settings) = changes.gate {
            self.settings(&settings);
            // An empty list is "no word on the keys" (older centres, settings sent for a mode
            // change): the gate keeps the keys it has rather than refusing every pass.
            if !settings.pass_keys.is_empty() {
                gate.set_pass_keys(&settings.pass_keys).await?;
            }
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
    pub async fn snapshot(&self, gate: &GateHandle) -> Result<Pulled, LinkError> {
        let response = self.http.get(self.url("/snapshot")).send().await?;
        let response = self.check(response).await?;
        let done = apply_snapshot_stream(gate, response.bytes_stream()).await?;
        self.settings(&done.settings);
        if !done.settings.pass_keys.is_empty() {
            gate.set_pass_keys(&done.settings.pass_keys).await?;
        }
        // A new (or reset) gate takes the centre's lockdown or evacuation set while it was
        // away; it does not reset to `normal` a mode its lanes hold (a guard's, or a command's
        // that raced the snapshot).
        if done.settings.mode != "normal" {
            self.apply_modes(gate, &done.settings).await;
        }
        Ok(Pulled::Snapshot {
            version: done.version,
            rows: done.rows,
        })
    }

    /// One outbox step: sends the oldest batch of events the centre has not acknowledged.
    pub async fn sync_once(&self, gate: &GateHandle) -> Result<Outbox, LinkError> {
        let journal = gate.journal();
        let acked = journal.stats().await.acked_seq;
        let events = journal.read_after(acked, self.options.batch).await?;
        let (Some(first), Some(last)) =
            (events.first().map(|e| e.seq), events.last().map(|e| e.seq))
        else {
            return Ok(Outbox::Empty);
        };
        let sent = events.len();
        let body = EventBatch {
            gate_id: self.gate_id,
            journal: Some(journal.identity().clone()),
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
        let through = if ack.highest_contiguous + 1 < first
            && ack.stored + ack.duplicates + ack.conflicts == sent as u64
        {
            last
        } else {
            ack.highest_contiguous
        };
        journal.acknowledge(through).await?;
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
    ) -> Result<usize, LinkError> {
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
    pub async fn health_once(&self, gate: &GateHandle) -> Result<HealthAck, LinkError> {
        let stats = gate.journal_stats().await;
        let report = HealthReport {
            gate_time: chrono::Utc::now(),
            data_version: gate.shared().store.data_version().await?,
            journal: JournalHealth {
                last_seq: stats.last_seq,
                acknowledged: stats.acked_seq,
                stored: stats.stored,
                capacity: stats.capacity,
                fill_percent: stats.fill_percent(),
                write_failing: stats.write_failing,
                write_failures: stats.write_failures,
            },
            lanes: gate
                .status()
                .into_iter()
                .map(|s| LaneHealth {
                    cameras: gate.shared().cameras_of(&s.lane),
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
    /// failure (100 ms doubling to 5 s). Each direction is supervised: one that panics is
    /// logged and started anew ([`crate::supervise::restarting`]), so the gate never stops
    /// syncing one way without a word.
    pub async fn run(self: Arc<Self>, gate: Arc<GateHandle>, shutdown: CancellationToken) {
        use crate::supervise::{Backoff, restarting};
        let mut tasks = JoinSet::new();
        let wait = self.options.poll_wait;
        let (c, g) = (self.clone(), gate.clone());
        spawn_repeating(&mut tasks, "sync pull", "pull", &shutdown, move || {
            let (c, g) = (c.clone(), g.clone());
            async move { c.pull_once(&g, wait).await.map(|p| p != Pulled::Unchanged) }
        });
        let (c, g) = (self.clone(), gate.clone());
        // Subscribed before the first step: no commit is missed between a step and its wait.
        let written = Arc::new(tokio::sync::Mutex::new(gate.journal().subscribe_written()));
        spawn_repeating(&mut tasks, "sync outbox", "outbox", &shutdown, move || {
            let (c, g, written) = (c.clone(), g.clone(), written.clone());
            async move {
                let mut written = written.lock().await;
                written.borrow_and_update();
                match c.sync_once(&g).await? {
                    // More may have come while the batch was on its way: straight on.
                    Outbox::Synced { .. } => Ok(true),
                    Outbox::Empty => {
                        let _ = tokio::time::timeout(OUTBOX_IDLE, written.changed()).await;
                        Ok(false)
                    }
                }
            }
        });
        let (c, g) = (self.clone(), gate.clone());
        spawn_repeating(
            &mut tasks,
            "sync commands",
            "commands",
            &shutdown,
            move || {
                let (c, g) = (c.clone(), g.clone());
                async move { c.commands_once(&g, wait).await.map(|n| n > 0) }
            },
        );
        let (c, g) = (self.clone(), gate.clone());
        spawn_repeating(&mut tasks, "sync photos", "photos", &shutdown, move || {
            let (c, g) = (c.clone(), g.clone());
            async move { c.photos_step(&g.shared().photos).await }
        });
        let (c, g, s) = (self.clone(), gate.clone(), shutdown.clone());
        let every = self.options.health_every;
        tasks.spawn(restarting(
            "sync health",
            shutdown.clone(),
            Backoff::default(),
            move || {
                let (c, g, s) = (c.clone(), g.clone(), s.clone());
                async move {
                    loop {
                        if let Err(e) = c.health_once(&g).await {
                            tracing::debug!(error = %e, "health report failed");
                        }
                        c.enforce_offline_policy(&g).await;
                        tokio::select! {
                            _ = s.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(every) => {}
                        }
                    }
                }
            },
        ));
        while tasks.join_next().await.is_some() {}
    }
}

/// The longest the outbox waits on an empty journal before looking again. It is woken the
/// moment an event is committed ([`crate::gate::journal::Journal::subscribe_written`]); this
/// only bounds the wait if a wake-up were ever missed.
pub const OUTBOX_IDLE: Duration = Duration::from_secs(1);

/// A snapshot the gate has applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedSnapshot {
    pub version: u64,
    pub rows: u64,
    pub settings: GateSettings,
}

/// Applies a snapshot stream (the body of `GET /sync/v1/snapshot`) to the gate while it
/// arrives: each chunk's complete lines are parsed at once ([`SnapshotReader`]) and their rows
/// handed to the gate's store, which converts and writes them as they come
/// ([`GateHandle::apply_snapshot`]); only a stream that ends with its end line, carrying the
/// rows that line counts, is committed. A cut-off, malformed or miscounted stream changes
/// nothing at the gate: its store and index stay as they were. Presence rows follow once the
/// data is in.
pub async fn apply_snapshot_stream<B, E>(
    gate: &GateHandle,
    stream: impl futures::Stream<Item = Result<B, E>>,
) -> Result<AppliedSnapshot, LinkError>
where
    B: AsRef<[u8]>,
    E: Into<LinkError>,
{
    let (parts_tx, parts_rx) = tokio::sync::mpsc::channel(16);
    let feed = async move {
        let mut stream = std::pin::pin!(stream);
        let mut reader = SnapshotReader::default();
        let mut parts = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Some(e.into()))?;
            reader.chunk(chunk.as_ref(), &mut parts).map_err(Some)?;
            for part in parts.drain(..) {
                // A closed channel: the store stopped (a bad row); its error says why.
                parts_tx.send(part).await.map_err(|_| None)?;
            }
        }
        let done = reader.finish().map_err(Some)?;
        parts_tx
            .send(SnapshotPart::End {
                data_version: done.version,
            })
            .await
            .map_err(|_| None)?;
        Ok::<_, Option<LinkError>>(done)
    };
    let (applied, fed) = tokio::join!(gate.apply_snapshot(parts_rx), feed);
    let done = match (fed, applied) {
        (Err(Some(e)), _) => return Err(e),
        (_, Err(e)) => return Err(LinkError::Gate(e)),
        (Err(None), Ok(())) => return Err(LinkError::StoreStopped),
        (Ok(done), Ok(())) => done,
    };
    gate.apply_presence(&presence_records(&done.presence))
        .await?;
    Ok(AppliedSnapshot {
        version: done.version,
        rows: done.rows,
        settings: done.settings,
    })
}

/// What a complete snapshot stream said besides its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotDone {
    pub version: u64,
    pub settings: GateSettings,
    pub rows: u64,
    pub presence: Vec<PassageRecord>,
}

/// Reads a snapshot stream chunk by chunk: splits the lines, parses each, checks the order
/// (header first, in this binary's [`SNAPSHOT_FORMAT`]; nothing after the end) and turns row
/// batches into the store's [`SnapshotPart`]s; [`SnapshotReader::finish`] checks that the
/// stream ended with its end line and that the rows add up to its count. It never does IO.
#[derive(Debug, Default)]
pub struct SnapshotReader {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    header: Option<SnapshotHeader>,
    rows: u64,
    end: Option<u64>,
    presence: Vec<PassageRecord>,
}

impl SnapshotReader {
    /// Takes the next chunk of the stream; the parts its complete lines carry are appended to
    /// `out`.
    pub fn chunk(&mut self, bytes: &[u8], out: &mut Vec<SnapshotPart>) -> Result<(), LinkError> {
        let mut rest = bytes;
        if !self.partial.is_empty() {
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                self.partial.extend_from_slice(rest);
                return Ok(());
            };
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..nl]);
            rest = &rest[nl + 1..];
            self.line(&line, out)?;
        }
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.line(&rest[..nl], out)?;
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    fn line(&mut self, text: &[u8], out: &mut Vec<SnapshotPart>) -> Result<(), LinkError> {
        if text.is_empty() {
            return Ok(());
        }
        let line: SnapshotLine =
            serde_json::from_slice(text).map_err(|source| ProtocolError::BadLine {
                line: String::from_utf8_lossy(&text[..text.len().min(80)]).into_owned(),
                source,
            })?;
        if self.end.is_some() {
            return Err(ProtocolError::AfterEnd.into());
        }
        let header = matches!(line, SnapshotLine::Header(_));
        if header != self.header.is_none() {
            return Err(if header {
                ProtocolError::SecondHeader
            } else {
                ProtocolError::RowsBeforeHeader
            }
            .into());
        }
        self.rows += line.rows() as u64;
        let part = match line {
            SnapshotLine::Header(h) => {
                if h.format != SNAPSHOT_FORMAT {
                    return Err(ProtocolError::Format(h.format).into());
                }
                // Version 0 means "no data" at the gate; the centre's log starts at 1.
                if h.version == 0 {
                    return Err(ProtocolError::VersionZero.into());
                }
                self.header = Some(h);
                return Ok(());
            }
            SnapshotLine::End { rows } => {
                self.end = Some(rows);
                return Ok(());
            }
            SnapshotLine::Presence(rows) => {
                self.presence
                    .extend(rows.into_iter().map(PassageRecord::from));
                return Ok(());
            }
            SnapshotLine::Permits(rows) => {
                SnapshotPart::Permits(rows.into_iter().map(Into::into).collect())
            }
            SnapshotLine::Vehicles(rows) => {
                SnapshotPart::Vehicles(rows.into_iter().map(Into::into).collect())
            }
            SnapshotLine::Credentials(rows) => {
                SnapshotPart::Credentials(rows.into_iter().map(Into::into).collect())
            }
            SnapshotLine::Blacklist(rows) => SnapshotPart::Blacklist(rows),
            SnapshotLine::Locks(rows) => SnapshotPart::Locks(rows),
            SnapshotLine::Bookings(rows) => SnapshotPart::Bookings(rows),
        };
        out.push(part);
        Ok(())
    }

    /// The stream has ended: it must have had its header and its end line, and carried the
    /// rows the end line counts.
    pub fn finish(self) -> Result<SnapshotDone, LinkError> {
        if !self.partial.is_empty() {
            return Err(ProtocolError::CutInLine.into());
        }
        let Some(header) = self.header else {
            return Err(ProtocolError::NoHeader.into());
        };
        match self.end {
            Some(n) if n == self.rows => {}
            Some(n) => {
                return Err(ProtocolError::Miscounted {
                    announced: n,
                    carried: self.rows,
                }
                .into());
            }
            None => return Err(ProtocolError::CutOff.into()),
        }
        Ok(SnapshotDone {
            version: header.version,
            settings: header.gate,
            rows: self.rows,
            presence: self.presence,
        })
    }
}

/// Spawns one supervised direction on `tasks`: `step` [`repeat`]ed (logged as `what`) until
/// `shutdown`, started anew by [`crate::supervise::restarting`] (named `task`) if it panics.
fn spawn_repeating<F, Fut>(
    tasks: &mut JoinSet<u64>,
    task: &'static str,
    what: &'static str,
    shutdown: &CancellationToken,
    step: F,
) where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<bool, LinkError>> + Send + 'static,
{
    use crate::supervise::{Backoff, restarting};
    let s = shutdown.clone();
    tasks.spawn(restarting(
        task,
        shutdown.clone(),
        Backoff::default(),
        move || {
            let (s, step) = (s.clone(), step.clone());
            async move {
                repeat(what, s, step).await;
                Ok(())
            }
        },
    ));
}

async fn repeat<F, Fut>(what: &'static str, shutdown: CancellationToken, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, LinkError>>,
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

fn presence_records(rows: &[PassageRecord]) -> Vec<PresenceRecord> {
    rows.iter()
        .map(|r| PresenceRecord {
            vehicle_id: VehicleId(r.vehicle_id),
            inside: r.inside,
            since_ms: r.since_ms,
            gate: r.gate_id,
        })
        .collect()
}

/// The lane mode a command names (`lockdown` and `evacuation` are the office's names for the
/// locked modes).
fn command_mode(mode: LaneMode) -> Mode {
    match mode {
        LaneMode::Normal => Mode::Normal,
        LaneMode::LockedClosed | LaneMode::Lockdown => Mode::LockedClosed,
        LaneMode::LockedOpen | LaneMode::Evacuation => Mode::LockedOpen,
        LaneMode::ManualOnly => Mode::ManualOnly(DirectionSet::BOTH),
        LaneMode::ManualOnlyEntry => Mode::ManualOnly(DirectionSet::ENTRY),
        LaneMode::ManualOnlyExit => Mode::ManualOnly(DirectionSet::EXIT),
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
            plate,
        } => {
            known(lane)?;
            let command = match command {
                GuardAction::Open => GuardCommand::Open(open_reason(reason)),
                GuardAction::KeepClosed => GuardCommand::KeepClosed,
                GuardAction::Release => GuardCommand::Release,
            };
            gate.command(
                lane,
                LaneCommand::Guard {
                    operator: operator.clone(),
                    command,
                    reason: reason.clone(),
                    note: note.clone(),
                    plate: plate.clone(),
                    done: None,
                },
            )
            .await
            .map_err(|e| e.to_string())
        }
        GateCommand::SetMode { lane, mode, by } => {
            let m = command_mode(*mode);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::rows::{LockRecord, PermitRecord};
    use crate::wire::sync::{CredentialWire, PermitWire, PresenceWire, VehicleWire};

    fn permit(id: u32) -> PermitWire {
        PermitWire::from(crate::gate::store::tests::permit_row(id))
    }

    /// A stream of 3 permits, 2 vehicles, a tag, a lock and a presence row: 8 rows.
    fn lines() -> Vec<SnapshotLine> {
        vec![
            SnapshotLine::Header(SnapshotHeader {
                format: SNAPSHOT_FORMAT,
                version: 7,
                gate: GateSettings::default(),
            }),
            SnapshotLine::Permits(vec![permit(1), permit(2)]),
            SnapshotLine::Permits(vec![permit(3)]),
            SnapshotLine::Vehicles(vec![
                VehicleWire(1, "京A12345".into(), "blue".into(), vec![1]),
                VehicleWire(2, "京B12345".into(), "blue".into(), vec![2, 3]),
            ]),
            SnapshotLine::Credentials(vec![CredentialWire("E200AB".into(), None, 1)]),
            SnapshotLine::Locks(vec![LockRecord {
                id: 1,
                plate: "京A12345".into(),
                colour: None,
                reason: "欠费".into(),
                valid_from: 0,
                valid_until: 10,
            }]),
            SnapshotLine::Presence(vec![PresenceWire(1, true, 1_000, 2)]),
            SnapshotLine::End { rows: 8 },
        ]
    }

    fn text(lines: &[SnapshotLine]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut out, l).unwrap();
            out.push(b'\n');
        }
        out
    }

    fn read(bytes: &[u8], chunk: usize) -> Result<(Vec<SnapshotPart>, SnapshotDone), LinkError> {
        let mut reader = SnapshotReader::default();
        let mut parts = Vec::new();
        for c in bytes.chunks(chunk) {
            reader.chunk(c, &mut parts)?;
        }
        Ok((parts, reader.finish()?))
    }

    fn protocol(r: Result<(Vec<SnapshotPart>, SnapshotDone), LinkError>) -> String {
        match r {
            Err(LinkError::Protocol(m)) => m.to_string(),
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn a_snapshot_reads_the_same_rows_however_the_network_splits_it() {
        let bytes = text(&lines());
        let (whole, done) = read(&bytes, bytes.len()).unwrap();
        assert_eq!(done.version, 7);
        assert_eq!(done.rows, 8);
        assert_eq!(
            done.presence,
            vec![PassageRecord {
                vehicle_id: 1,
                inside: true,
                since_ms: 1_000,
                gate_id: 2
            }]
        );
        assert_eq!(whole.len(), 5);
        let SnapshotPart::Permits(p) = &whole[0] else {
            panic!("permits first, got {:?}", whole[0]);
        };
        assert_eq!(p[1], PermitRecord::from(permit(2)));
        for chunk in [1, 2, 7, 100] {
            let (parts, again) = read(&bytes, chunk).unwrap();
            assert_eq!(
                (parts, again),
                (whole.clone(), done.clone()),
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_snapshot_without_its_end_line_is_refused_as_cut_off() {
        let mut l = lines();
        l.pop();
        assert_eq!(protocol(read(&text(&l), 64)), "the snapshot was cut off");
    }

    #[test]
    fn a_snapshot_cut_off_in_the_middle_of_a_line_is_refused() {
        let bytes = text(&lines());
        assert!(protocol(read(&bytes[..bytes.len() - 3], 64)).contains("middle of a line"));
    }

    #[test]
    fn an_end_line_that_counts_other_rows_is_refused() {
        let mut l = lines();
        *l.last_mut().unwrap() = SnapshotLine::End { rows: 10 };
        assert_eq!(
            protocol(read(&text(&l), 64)),
            "the snapshot announced 10 rows and carried 8"
        );
    }

    #[test]
    fn a_malformed_row_is_refused_naming_its_line() {
        let mut bytes = text(&lines());
        bytes.extend_from_slice(b"");
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace(r#"[1,"E200AB"]"#, "x")
            .replace(r#"["E200AB",null,1]"#, r#"["E200AB",null]"#);
        let m = protocol(read(text.as_bytes(), 64));
        assert!(m.starts_with("snapshot line {\"t\":\"credentials\""), "{m}");
    }

    #[test]
    fn a_header_of_another_format_or_out_of_place_is_refused() {
        let mut l = lines();
        let SnapshotLine::Header(h) = &mut l[0] else {
            unreachable!()
        };
        h.format = 1;
        assert!(protocol(read(&text(&l), 64)).contains("snapshot format 1"));

        let mut l = lines();
        l.swap(0, 1);
        assert_eq!(
            protocol(read(&text(&l), 64)),
            "snapshot rows before its header"
        );

        let mut l = lines();
        l.insert(2, l[0].clone());
        assert_eq!(protocol(read(&text(&l), 64)), "a second snapshot header");

        let mut l = lines();
        l.push(SnapshotLine::Locks(Vec::new()));
        assert_eq!(
            protocol(read(&text(&l), 64)),
            "data after the snapshot's end"
        );
    }

    #[test]
    fn a_format_1_line_is_not_read_as_rows() {
        // Format 1 sent one object per row; a gate of format 2 refuses it rather than guess.
        let old = br#"{"t":"header","version":3,"gate":{"mode":"normal","anti_passback":"off","offline_policy":"cached","enabled":true,"lanes":[]}}"#;
        let mut bytes = old.to_vec();
        bytes.push(b'\n');
        assert!(protocol(read(&bytes, 64)).starts_with("snapshot line"));
    }
}
