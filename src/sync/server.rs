//! The centre's sync endpoints (`/sync/v1/…`, see [`crate::wire::sync`]), served behind the
//! mutual-TLS listener, which names the calling gate by inserting its [`GateIdentity`].
//!
//! **Push by long poll.** A gate keeps one `GET /changes?since=V` open; it is answered the
//! moment the change log passes `V`. Long poll rather than server-sent events or WebSocket:
//! each answer is one ordinary request/response whose `version` the gate records only after it
//! has applied the data, so there is no stream state to resynchronise after a drop, any HTTP
//! load balancer passes it, and the same shape serves commands. Its cost — one request per
//! change burst — is nothing at campus scale.
//!
//! **Every instance sees every change, at once.** A watcher task per router publishes the
//! change log's head to the waiting polls and wakes the command poll of a gate a command is
//! queued for. Commits are pushed to it: on SQLite by the pool, as the connection that
//! committed comes back ([`crate::central::db::Db::committed_heads`]); on PostgreSQL by the
//! notifications the change-log and command triggers send at commit (migration 0003; the
//! payload is the sequence, or the gate), so a change made through another instance wakes
//! this one too. It also reads the heads every [`WATCH_FALLBACK`] (every [`WATCH_EVERY`] with
//! nothing pushing), the fallback if a notification is lost.
//!
//! **A change wakes every gate, cheaply** ([`super::fanout`]): a woken poll takes the head from
//! the watcher, not from a query; the step it asks for (`since` → head) is read once and its
//! answer shared by every gate asking for the same step, each gate's own settings apart; the
//! polls' "heard from" writes are gathered into one transaction every 200 ms.
//!
//! **Photos** (`/sync/v1/photos/…`): the gate asks which of its photos the centre lacks and
//! puts each; the centre stores a photo only under the SHA-256 of its bytes, once, in the
//! photo storage of [`crate::central::photos`], recording the gate its certificate names.
//!
//! What it never does: trust a gate id from a request body or path (only the certificate's),
//! let a gate read another gate's commands or write another gate's events (refused with 403
//! and audited), or keep state a restart would lose (everything is in the database).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::central::db::{DbKind, LogHeads, RepoError};
use crate::central::live::LiveMessage;
use crate::central::repo::sync as repo;
use crate::central::state::AppState;
use crate::sync::fanout;
use crate::tls::GateIdentity;
use crate::wire::command::GateCommand;
use crate::wire::sync::{
    Changes, CommandResult, EventAck, EventBatch, HealthAck, HealthReport, MAX_BATCH,
    MAX_PHOTO_BYTES, MAX_PHOTO_QUERY, MAX_WAIT_MS, PendingCommand, PhotoStored, PhotosMissing,
    PhotosQuery, RefusalBody, SnapshotLine,
};

/// How often the watcher re-reads the heads when nothing pushes them (PostgreSQL without a
/// LISTEN connection): the bound on push delay then.
pub const WATCH_EVERY: Duration = Duration::from_millis(25);

/// How often the watcher re-reads the heads when commits are pushed to it (SQLite's pool
/// announces them, PostgreSQL NOTIFYs them): only the fallback for a notification lost.
pub const WATCH_FALLBACK: Duration = Duration::from_millis(250);

/// The shortest time between two presence announcements. Presence is for anti-passback at the
/// other gates, which a vehicle reaches minutes later, never within a second; without a floor,
/// a thousand gates' uploads woke every gate's long poll for each upload (issue 22's fleet).
pub const PRESENCE_EVERY: Duration = Duration::from_millis(1000);

/// The largest upload body (a full batch of large events).
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The sync router's state.
#[derive(Debug, Clone)]
struct SyncState {
    app: AppState,
    /// The change log's head as committed (`None` until the watcher's first read).
    heads: watch::Receiver<Option<u64>>,
    /// Change-log steps read once for every gate asking for them.
    steps: Arc<fanout::Steps>,
    /// The long polls' contacts, written in batches.
    touches: Arc<fanout::Touches>,
    /// Per gate, what wakes its command poll.
    bells: Arc<fanout::CommandBells>,
    /// When this instance last wrote each gate's `last_seen`, and the data version it wrote.
    touched: std::sync::Arc<std::sync::Mutex<HashMap<i64, Touched>>>,
    /// Per gate journal, the highest event sequence this instance has published on its live hub.
    published: Published,
    /// Per gate, whether it was known and enabled when last asked ([`known_gate`]).
    known: KnownGates,
}

/// Per gate, when [`known_gate`] last asked and what it found (`None`: no such gate).
type KnownGates =
    std::sync::Arc<std::sync::Mutex<HashMap<i64, (tokio::time::Instant, Option<bool>)>>>;

/// Per (gate, journal number), the highest event sequence published on this instance's live
/// hub.
type Published = std::sync::Arc<std::sync::Mutex<HashMap<(i64, i64), u64>>>;

/// How often the watcher relays what other instances stored to this instance's live pages.
const RELAY_EVERY: Duration = Duration::from_millis(500);

/// Carries to this instance's live hub what gates did through other instances: their health
/// reports and gap alarms (as [`LiveMessage::GateStatus`]) and their events (as
/// [`LiveMessage::Events`], re-read from the database), so a browser connected to any instance
/// sees every gate. The first round only takes note of where things stand.
#[derive(Debug, Default)]
struct Relay {
    started: bool,
    status: HashMap<i64, String>,
}

impl Relay {
    async fn round(&mut self, app: &AppState, published: &Published) -> Result<(), RepoError> {
        for (gate, signature) in repo::gate_signatures(&app.db).await? {
            let changed = self.status.insert(gate, signature.clone()) != Some(signature);
            if changed && self.started {
                app.live.publish(LiveMessage::GateStatus { gate_id: gate });
            }
        }
        for (journal, watermark) in repo::watermarks(&app.db).await? {
            let known = {
                let mut p = published.lock().expect("published lock poisoned");
                let known = p.get(&journal).copied().unwrap_or(0);
                if !self.started {
                    p.insert(journal, known.max(watermark));
                    continue;
                }
                known
            };
            if watermark > known {
                let events = repo::events_between(&app.db, journal, known, watermark).await?;
                if let Some(top) = events.last().map(|e| e.seq) {
                    published
                        .lock()
                        .expect("published lock poisoned")
                        .entry(journal)
                        .and_modify(|v| *v = (*v).max(top))
                        .or_insert(top);
                    app.live.publish(LiveMessage::Events {
                        gate_id: journal.0,
                        events: events.into(),
                    });
                }
            }
        }
        self.started = true;
        Ok(())
    }
}

/// When an instance last wrote a gate's `last_seen`, and the data version it wrote.
type Touched = (tokio::time::Instant, Option<u64>);

/// `last_seen` is written at most this often per gate per instance (well under the 15 s after
/// which a gate counts as silent): every write is one more commit competing for SQLite's lock.
const TOUCH_EVERY: Duration = Duration::from_secs(2);

impl SyncState {
    /// Records that the gate was heard from, unless this instance did so moments ago.
    async fn touch(&self, gate: i64, version: Option<u64>) -> Result<(), RepoError> {
        let now = tokio::time::Instant::now();
        {
            let mut touched = self.touched.lock().expect("touch lock poisoned");
            if let Some((at, v)) = touched.get(&gate)
                && now.duration_since(*at) < TOUCH_EVERY
                && (version.is_none() || version == *v)
            {
                return Ok(());
            }
            touched.insert(gate, (now, version));
        }
        repo::touch(&self.app.db, gate, version).await
    }
}

/// Why a sync request failed. One error type for the boundary; messages in zh-CN and English.
#[derive(Debug, thiserror::Error)]
pub enum SyncRefusal {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    /// The centre cannot take it now (its photo storage is down or not configured); the gate
    /// tries again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Repo(#[from] RepoError),
}

impl IntoResponse for SyncRefusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            SyncRefusal::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            SyncRefusal::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            SyncRefusal::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            SyncRefusal::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", m.clone()),
            SyncRefusal::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone())
            }
            SyncRefusal::Repo(e) => {
                tracing::error!(error = %e, "sync request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "中心内部错误 / internal error at the centre".to_string(),
                )
            }
        };
        (
            status,
            Json(RefusalBody {
                code: code.into(),
                message,
            }),
        )
            .into_response()
    }
}

/// Announces the campus-wide presence that uploads queue
/// ([`crate::central::repo::sync::publish_presence`]):
/// once at start (what a crash left queued), then whenever an upload wakes it
/// ([`AppState::presence_queued`]); uploads committed while it works are announced together by
/// its next round. Stops with the router (when `heads` has no receiver left).
async fn publish_presence(app: AppState, heads: watch::Sender<Option<u64>>) {
    loop {
        let published_at = tokio::time::Instant::now();
        match crate::central::repo::sync::publish_presence(&app.db).await {
            Ok(_) => {
                tokio::select! {
                    _ = heads.closed() => return,
                    _ = app.presence_queued.notified() => {}
                }
                // What queues meanwhile goes out together: every gate's long poll answers each
                // presence entry, so a busy centre would otherwise wake all gates per upload.
                tokio::select! {
                    _ = heads.closed() => return,
                    _ = tokio::time::sleep_until(published_at + PRESENCE_EVERY) => {}
                }
            }
            Err(_) if app.db.pool().is_closed() => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot announce campus presence; trying again");
                tokio::select! {
                    _ = heads.closed() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

/// Spawns `task` supervised: one that panics is logged and started anew, never silently gone.
/// The router's tasks end when the router is dropped (no receiver of the heads left), so the
/// stop token is never cancelled.
fn supervised<F, Fut>(name: &'static str, task: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let task = Arc::new(task);
    tokio::spawn(crate::supervise::restarting(
        name,
        tokio_util::sync::CancellationToken::new(),
        crate::supervise::Backoff::default(),
        move || {
            let task = task.clone();
            async move {
                task().await;
                Ok(())
            }
        },
    ));
}

/// The sync endpoints as a router. Serve it behind the mTLS listener (which inserts
/// [`GateIdentity`]); a request without one is refused. Spawns the watcher, which stops when
/// the router is dropped. `database_url`: on PostgreSQL, the URL the watcher LISTENs with
/// (`None`: it only polls).
pub fn router(app: AppState, database_url: Option<String>) -> Router {
    let (tx, heads) = watch::channel(None);
    let published = Published::default();
    let bells = Arc::new(fanout::CommandBells::default());
    let touches = Arc::new(fanout::Touches::default());
    {
        let (app, tx) = (app.clone(), tx.clone());
        supervised("presence publisher", move || {
            publish_presence(app.clone(), tx.clone())
        });
    }
    {
        let (app, published, tx) = (app.clone(), published.clone(), tx.clone());
        supervised("live relay", move || {
            relay(app.clone(), published.clone(), tx.clone())
        });
    }
    {
        let (app, touches, tx) = (app.clone(), touches.clone(), tx.clone());
        supervised("sync contacts", move || {
            let (app, touches, tx) = (app.clone(), touches.clone(), tx.clone());
            async move { touches.flush(&app.db, tx.closed()).await }
        });
    }
    {
        let (app, bells) = (app.clone(), bells.clone());
        supervised("sync heads watcher", move || {
            watch_heads(app.clone(), database_url.clone(), tx.clone(), bells.clone())
        });
    }
    let state = SyncState {
        steps: Arc::new(fanout::Steps::new(app.db.clone())),
        app,
        heads,
        touches,
        bells,
        touched: Default::default(),
        known: Default::default(),
        published,
    };
    Router::new()
        .route("/sync/v1/snapshot", get(snapshot))
        .route("/sync/v1/changes", get(changes))
        .route("/sync/v1/events", post(events))
        .route("/sync/v1/commands", get(commands))
        .route("/sync/v1/commands/{id}/ack", post(ack_command))
        .route("/sync/v1/health", post(health))
        .route("/sync/v1/photos/missing", post(photos_missing))
        .route("/sync/v1/photos/{sha256}", put(photo_put))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Relays to this instance's live hub what gates did through other instances, every
/// [`RELAY_EVERY`] (its first round at once), until the router is gone. A task of its own, so
/// that its reads never delay the waking of the long polls.
async fn relay(app: AppState, published: Published, heads: watch::Sender<Option<u64>>) {
    let mut relay = Relay::default();
    let mut every = tokio::time::interval(RELAY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = heads.closed() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = relay.round(&app, &published).await {
            tracing::warn!(error = %e, "sync watcher cannot relay live messages");
        }
    }
}

/// What woke the watcher.
enum Woken {
    /// The fallback timer: read the heads.
    Tick,
    /// A PostgreSQL notification (`None`: the LISTEN connection failed).
    Notice(Option<sqlx::postgres::PgNotification>),
    /// SQLite's pool announced committed heads (`None`: it no longer can).
    Committed(Option<LogHeads>),
}

/// The heads as the watcher publishes them.
struct HeadsOut {
    tx: watch::Sender<Option<u64>>,
    bells: Arc<fanout::CommandBells>,
    /// The newest command id whose gates were woken (`None` before the first read).
    command: Option<i64>,
    /// A fallback read that found the change log's head below the published one; published
    /// if the next read finds it still there (a restored database), not before (the read may
    /// simply have started before a commit that was already announced).
    lower: Option<u64>,
}

impl HeadsOut {
    /// The change log reached `seq` (committed): the head only grows here.
    fn raise(&mut self, seq: u64) {
        self.lower = None;
        self.tx.send_if_modified(|h| {
            let newer = h.is_none_or(|h| seq > h);
            if newer {
                *h = Some(seq);
            }
            newer
        });
    }

    /// The head as a fallback read found it.
    fn read(&mut self, seq: u64) {
        let current = *self.tx.borrow();
        match current {
            Some(h) if seq < h => {
                if self.lower == Some(seq) {
                    self.lower = None;
                    self.tx.send_replace(Some(seq));
                } else {
                    self.lower = Some(seq);
                }
            }
            _ => self.raise(seq),
        }
    }

    /// The command queue reached `head`: wake the polls of the gates it concerns.
    async fn commands(&mut self, db: &crate::central::db::Db, head: i64) {
        match self.command {
            Some(known) if head == known => {}
            Some(known) if head > known => match repo::command_gates_after(db, known).await {
                Ok(gates) => {
                    gates.into_iter().for_each(|g| self.bells.ring(g));
                    self.command = Some(head);
                }
                Err(e) => tracing::warn!(error = %e, "sync watcher cannot read the command queue"),
            },
            _ => {
                self.bells.ring_all();
                self.command = Some(head);
            }
        }
    }
}

/// Publishes the change log's head for the long polls and wakes the command polls of the
/// gates a new command is for. Pushed to at once: on SQLite by the pool as the connection that
/// committed comes back ([`crate::central::db::Db::committed_heads`]), on PostgreSQL by the
/// NOTIFY of the change-log and command triggers (its payload is the sequence, or the gate).
/// Reads the heads itself every [`WATCH_FALLBACK`] (every [`WATCH_EVERY`] with nothing
/// pushing) in case a notification was lost.
async fn watch_heads(
    app: AppState,
    database_url: Option<String>,
    tx: watch::Sender<Option<u64>>,
    bells: Arc<fanout::CommandBells>,
) {
    let mut listener = match (app.db.kind(), database_url) {
        (DbKind::Postgres, Some(url)) => listen(&url).await,
        _ => None,
    };
    let mut committed = app.db.committed_heads();
    let pushed = listener.is_some() || committed.is_some();
    let mut every = tokio::time::interval(if pushed { WATCH_FALLBACK } else { WATCH_EVERY });
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = HeadsOut {
        tx,
        bells,
        command: None,
        lower: None,
    };
    loop {
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        let announced = async {
            match committed.as_mut() {
                Some(rx) => match rx.changed().await {
                    Ok(()) => Some(*rx.borrow_and_update()),
                    Err(_) => None,
                },
                None => std::future::pending().await,
            }
        };
        let woken = tokio::select! {
            _ = out.tx.closed() => return,
            _ = every.tick() => Woken::Tick,
            n = notified => Woken::Notice(n),
            h = announced => Woken::Committed(h),
        };
        match woken {
            Woken::Tick => {
                let heads = async {
                    Ok::<_, RepoError>((
                        repo::change_head(&app.db).await?,
                        repo::command_head(&app.db).await?,
                    ))
                };
                match heads.await {
                    Ok((change, command)) => {
                        out.read(change);
                        out.commands(&app.db, command).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "sync watcher cannot read the change log"),
                }
            }
            Woken::Notice(Some(n)) => match (n.channel(), n.payload().parse::<i64>()) {
                ("gatehouse_changes", Ok(seq)) => out.raise(seq.max(0) as u64),
                ("gatehouse_commands", Ok(gate)) => out.bells.ring(gate),
                _ => every.reset_immediately(),
            },
            Woken::Committed(Some(h)) => {
                out.raise(h.change);
                out.commands(&app.db, h.command).await;
            }
            Woken::Notice(None) | Woken::Committed(None) => {
                listener = None;
                committed = None;
                tracing::warn!("sync watcher: commits are no longer pushed; reading the heads");
                every = tokio::time::interval(WATCH_EVERY);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
        }
    }
}

/// A PostgreSQL listener on the sync channels, if the database URL is at hand.
async fn listen(url: &str) -> Option<sqlx::postgres::PgListener> {
    match sqlx::postgres::PgListener::connect(url).await {
        Ok(mut l) => match l
            .listen_all(["gatehouse_changes", "gatehouse_commands"])
            .await
        {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN; falling back to polling");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot open a LISTEN connection; falling back to polling");
            None
        }
    }
}

/// How old, at most, the answer that a gate is enabled may be: disabling a gate shuts it out
/// within a second. Asking the database on every request was the most frequent statement
/// with 1,000 gates polling (`gatehouse sim fleet`).
const KNOWN_FOR: Duration = Duration::from_secs(1);

/// Refuses a gate the centre does not know or has disabled. The mutual-TLS listener asked
/// already (it lets a request through only on an answer at most `checked_within` old): when
/// that is within [`KNOWN_FOR`], as it is by default, its answer stands and the database is
/// not asked twice for the same thing. A listener configured to recheck less often is
/// backed by this instance's own answer, reused for [`KNOWN_FOR`].
async fn known_gate(state: &SyncState, gate: GateIdentity) -> Result<(), SyncRefusal> {
    if gate.checked_within <= KNOWN_FOR {
        return Ok(());
    }
    let now = tokio::time::Instant::now();
    let remembered = state
        .known
        .lock()
        .expect("known gates lock poisoned")
        .get(&gate.gate_id)
        .filter(|(at, _)| now.duration_since(*at) < KNOWN_FOR)
        .map(|(_, enabled)| *enabled);
    let enabled = match remembered {
        Some(enabled) => enabled,
        None => {
            let enabled = repo::gate_enabled(&state.app.db, gate.gate_id).await?;
            state
                .known
                .lock()
                .expect("known gates lock poisoned")
                .insert(gate.gate_id, (now, enabled));
            enabled
        }
    };
    match enabled {
        Some(true) => Ok(()),
        Some(_) => Err(SyncRefusal::Forbidden(format!(
            "大门 {0} 已停用 / gate {0} is disabled",
            gate.gate_id
        ))),
        None => Err(SyncRefusal::Forbidden(format!(
            "中心不认识大门 {0} / the centre does not know gate {0}",
            gate.gate_id
        ))),
    }
}

/// Lines per chunk of the snapshot stream are gathered up to this many bytes.
const CHUNK: usize = 256 * 1024;

struct ChannelSink {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
}

impl ChannelSink {
    async fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.send(Ok(chunk)).await.is_ok()
    }
}

impl repo::SnapshotSink for ChannelSink {
    async fn put(&mut self, line: SnapshotLine) -> bool {
        serde_json::to_writer(&mut self.buf, &line).expect("wire lines always serialise");
        self.buf.push(b'\n');
        if self.buf.len() >= CHUNK || matches!(line, SnapshotLine::End { .. }) {
            self.flush().await
        } else {
            true
        }
    }
}

async fn snapshot(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
) -> Result<Response, SyncRefusal> {
    known_gate(&state, gate).await?;
    state.touch(gate.gate_id, None).await?;
    let (tx, mut rx) = mpsc::channel(8);
    let db = state.app.db.clone();
    tokio::spawn(async move {
        let mut sink = ChannelSink {
            buf: Vec::with_capacity(CHUNK),
            tx,
        };
        // A failure mid-stream ends the body without its `end` line; the gate discards it.
        if let Err(e) = repo::snapshot(&db, gate.gate_id, &mut sink).await {
            tracing::error!(gate = gate.gate_id, error = %e, "snapshot failed");
        }
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct ChangesQuery {
    since: u64,
    #[serde(default)]
    wait_ms: u64,
}

fn wait(ms: u64) -> Result<Duration, SyncRefusal> {
    if ms > MAX_WAIT_MS {
        return Err(SyncRefusal::BadRequest(format!(
            "wait_ms 不能超过 {MAX_WAIT_MS} / wait_ms must be at most {MAX_WAIT_MS}"
        )));
    }
    Ok(Duration::from_millis(ms))
}

/// `GET /sync/v1/changes?since=V&wait_ms=W`: the changes after data version `V`, as soon as
/// there are any (waiting up to `W`). The head comes from the watcher, never from a read of
/// the poll's own; the step's data is read once for every gate asking for it ([`fanout`]).
/// A step that brings this gate nothing (the announced head is not yet the poll's to see, or
/// is behind it) is not answered: the poll waits on.
async fn changes(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Query(q): Query<ChangesQuery>,
) -> Result<Response, SyncRefusal> {
    let deadline = tokio::time::Instant::now() + wait(q.wait_ms)?;
    known_gate(&state, gate).await?;
    state.touches.note(gate.gate_id, Some(q.since));
    let mut heads = state.heads.clone();
    loop {
        // Mark the head seen before acting on it, so a change committed meanwhile still
        // wakes the wait below.
        let head = *heads.borrow_and_update();
        if let Some(head) = head
            && head != q.since
        {
            let step = state.steps.get(q.since, head).await?;
            if !step.is_nothing_for(gate.gate_id, q.since) {
                return Ok((
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    step.json_for(gate.gate_id),
                )
                    .into_response());
            }
        }
        match tokio::time::timeout_at(deadline, heads.changed()).await {
            Ok(Ok(())) => {}
            // The wait is over, or the watcher is gone (the router is being dropped).
            Ok(Err(_)) | Err(_) => {
                return Ok(Json(Changes {
                    version: q.since,
                    ..Changes::default()
                })
                .into_response());
            }
        }
    }
}

async fn events(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    body: Bytes,
) -> Result<Json<EventAck>, SyncRefusal> {
    let batch: EventBatch = serde_json::from_slice(&body).map_err(|e| {
        SyncRefusal::BadRequest(format!("事件批次格式错误 / malformed event batch: {e}"))
    })?;
    if batch.gate_id != gate.gate_id {
        repo::audit_refusal(
            &state.app.db,
            gate.gate_id,
            "foreign_events_refused",
            serde_json::json!({
                "claimed_gate": batch.gate_id,
                "events": batch.events.len(),
                "first_seq": batch.events.first().map(|e| e.seq),
            }),
        )
        .await?;
        tracing::warn!(
            gate = gate.gate_id,
            claimed = batch.gate_id,
            "a gate posted another gate's events: refused"
        );
        return Err(SyncRefusal::Forbidden(format!(
            "大门 {0} 只能上传自己的事件，不能上传大门 {1} 的 / gate {0} may upload only its own \
             events, not gate {1}'s",
            gate.gate_id, batch.gate_id
        )));
    }
    if batch.events.len() > MAX_BATCH {
        return Err(SyncRefusal::BadRequest(format!(
            "每批最多 {MAX_BATCH} 个事件 / at most {MAX_BATCH} events per batch"
        )));
    }
    known_gate(&state, gate).await?;
    let outcome = crate::central::ingest::accept_from(
        &state.app,
        gate.gate_id,
        batch.journal.as_ref(),
        &batch.events,
    )
    .await
    .map_err(|e| match e {
        RepoError::Conflict(m) => {
            SyncRefusal::BadRequest(format!("事件批次无效 / invalid event batch: {m}"))
        }
        other => SyncRefusal::Repo(other),
    })?;
    state
        .published
        .lock()
        .expect("published lock poisoned")
        .entry((gate.gate_id, outcome.journal_no))
        .and_modify(|v| *v = (*v).max(outcome.highest_contiguous))
        .or_insert(outcome.highest_contiguous);
    // Written now, not noted for the next batch: the gap alarm below keeps its one-per-gap
    // mark in the gate's sync row, which must exist by then.
    state.touch(gate.gate_id, None).await?;
    let top = batch.events.iter().map(|e| e.seq).max().unwrap_or(0);
    if top > outcome.highest_contiguous
        && let Some((from, to)) = repo::alarm_gap(
            &state.app.db,
            gate.gate_id,
            outcome.journal_no,
            outcome.highest_contiguous as i64,
        )
        .await?
    {
        tracing::error!(
            gate = gate.gate_id,
            from,
            to,
            "events missing from a gate's upload"
        );
        state.app.live.publish(LiveMessage::GateStatus {
            gate_id: gate.gate_id,
        });
    }
    Ok(Json(EventAck {
        highest_contiguous: outcome.highest_contiguous,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
        conflicts: outcome.conflicts,
    }))
}

#[derive(Debug, Deserialize)]
struct CommandsQuery {
    #[serde(default)]
    wait_ms: u64,
}

/// `GET /sync/v1/commands?wait_ms=W`: the gate's pending commands, as soon as there are any
/// (waiting up to `W`). Woken only by a command for this gate ([`fanout::CommandBells`]).
async fn commands(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Query(q): Query<CommandsQuery>,
) -> Result<Json<Vec<PendingCommand>>, SyncRefusal> {
    let deadline = tokio::time::Instant::now() + wait(q.wait_ms)?;
    known_gate(&state, gate).await?;
    state.touches.note(gate.gate_id, None);
    let mut bell = state.bells.subscribe(gate.gate_id);
    loop {
        bell.borrow_and_update();
        let pending = repo::pending_commands(&state.app.db, gate.gate_id).await?;
        let commands: Vec<PendingCommand> = pending
            .into_iter()
            .filter_map(|(id, body)| {
                serde_json::from_value::<GateCommand>(body)
                    .ok()
                    .map(|command| PendingCommand { id, command })
            })
            .collect();
        if !commands.is_empty() {
            return Ok(Json(commands));
        }
        match tokio::time::timeout_at(deadline, bell.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Ok(Json(Vec::new())),
        }
    }
}

async fn ack_command(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Path(id): Path<i64>,
    Json(result): Json<CommandResult>,
) -> Result<StatusCode, SyncRefusal> {
    match repo::ack_command(&state.app.db, gate.gate_id, id, result.done, &result.detail).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(RepoError::NotFound) => Err(SyncRefusal::NotFound(format!(
            "大门 {0} 没有指令 {1} / gate {0} has no command {1}",
            gate.gate_id, id
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn health(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Json(report): Json<HealthReport>,
) -> Result<Json<HealthAck>, SyncRefusal> {
    known_gate(&state, gate).await?;
    let now = Utc::now();
    let offset = (report.gate_time - now).num_milliseconds();
    let json = serde_json::to_value(&report).expect("a report serialises");
    repo::record_health(
        &state.app.db,
        gate.gate_id,
        report.data_version,
        offset,
        &json,
    )
    .await?;
    // A journal that cannot write, a clock off, a device offline: an alarm at the office,
    // once per episode whichever instance receives the report.
    crate::central::alarms::from_health(
        &state.app.db,
        &state.app.live,
        gate.gate_id,
        &report,
        offset,
    )
    .await?;
    let warning = offset.abs() > repo::CLOCK_WARNING_MS;
    if warning {
        tracing::warn!(
            gate = gate.gate_id,
            offset_ms = offset,
            "gate clock is off by more than 5 s"
        );
    }
    state.app.live.publish(LiveMessage::GateStatus {
        gate_id: gate.gate_id,
    });
    Ok(Json(HealthAck {
        server_time: now,
        clock_offset_ms: offset,
        clock_warning: warning,
    }))
}

impl From<crate::central::photos::PhotoStoreError> for SyncRefusal {
    fn from(e: crate::central::photos::PhotoStoreError) -> SyncRefusal {
        use crate::central::photos::PhotoStoreError as E;
        match e {
            E::Repo(e) => SyncRefusal::Repo(e),
            E::NotConfigured => SyncRefusal::Unavailable(e.to_string()),
            E::Backend(b) => {
                tracing::error!(error = %b, "photo storage failed");
                SyncRefusal::Unavailable(
                    "中心照片存储暂不可用 / the centre's photo storage is unavailable".into(),
                )
            }
        }
    }
}

/// A photo's name must be its SHA-256 in lower-case hex.
fn photo_name(text: &str) -> Result<(), SyncRefusal> {
    if crate::central::photos::is_sha256(text) {
        return Ok(());
    }
    let shown: String = text.chars().take(80).collect();
    Err(SyncRefusal::BadRequest(format!(
        "照片名须为其 SHA-256（64 个小写十六进制字符），收到 {shown:?} / a photo is named by its \
         SHA-256 in 64 lower-case hex digits, got {shown:?}"
    )))
}

/// `POST /sync/v1/photos/missing`: which of the gate's photos the centre does not hold.
async fn photos_missing(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    body: Bytes,
) -> Result<Json<PhotosMissing>, SyncRefusal> {
    let query: PhotosQuery = serde_json::from_slice(&body).map_err(|e| {
        SyncRefusal::BadRequest(format!("照片查询格式错误 / malformed photo query: {e}"))
    })?;
    if query.sha256.len() > MAX_PHOTO_QUERY {
        return Err(SyncRefusal::BadRequest(format!(
            "每次最多询问 {MAX_PHOTO_QUERY} 张照片 / at most {MAX_PHOTO_QUERY} photos per query"
        )));
    }
    for sha in &query.sha256 {
        photo_name(sha)?;
    }
    known_gate(&state, gate).await?;
    let missing = state
        .app
        .photos
        .missing(&state.app.db, &query.sha256)
        .await?;
    Ok(Json(PhotosMissing { missing }))
}

/// `PUT /sync/v1/photos/{sha256}`: one photo's bytes, stored once by their hash.
async fn photo_put(
    State(state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Path(sha256): Path<String>,
    body: Bytes,
) -> Result<Json<PhotoStored>, SyncRefusal> {
    photo_name(&sha256)?;
    if body.is_empty() {
        return Err(SyncRefusal::BadRequest(
            "照片为空 / the photo is empty (0 bytes)".into(),
        ));
    }
    if body.len() > MAX_PHOTO_BYTES {
        return Err(SyncRefusal::TooLarge(format!(
            "照片 {} 字节，超过上限 {MAX_PHOTO_BYTES} 字节 / the photo is {} bytes, over the \
             {MAX_PHOTO_BYTES}-byte limit",
            body.len(),
            body.len()
        )));
    }
    let actual = crate::central::photos::sha256_of(&body);
    if actual != sha256 {
        return Err(SyncRefusal::BadRequest(format!(
            "照片内容的 SHA-256 为 {actual}，与名称 {sha256} 不符 / the photo's bytes hash to \
             {actual}, not to its name {sha256}"
        )));
    }
    known_gate(&state, gate).await?;
    let bytes = body.len() as u64;
    let stored = state
        .app
        .photos
        .store(
            &state.app.db,
            gate.gate_id,
            &sha256,
            body,
            crate::central::db::now_ms(),
        )
        .await?;
    Ok(Json(PhotoStored {
        sha256,
        bytes,
        created: stored.created,
    }))
}
