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
//! **Every instance sees every change.** A watcher task per router reads the change log's head
//! and the newest command id every [`WATCH_EVERY`] and wakes the waiting polls; on PostgreSQL
//! it also LISTENs for the notifications the change-log and command triggers send at commit
//! (migration 0003), so a change made through another instance wakes this one at once; the
//! periodic read is the fallback that bounds the delay if a notification is lost.
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

use crate::central::db::{DbKind, RepoError};
use crate::central::live::LiveMessage;
use crate::central::repo::sync as repo;
use crate::central::state::AppState;
use crate::tls::GateIdentity;
use crate::wire::command::GateCommand;
use crate::wire::sync::{
    Changes, CommandResult, EventAck, EventBatch, HealthAck, HealthReport, MAX_BATCH,
    MAX_PHOTO_BYTES, MAX_PHOTO_QUERY, MAX_WAIT_MS, PendingCommand, PhotoStored, PhotosMissing,
    PhotosQuery, RefusalBody, SnapshotLine,
};

/// How often the watcher re-reads the heads (the bound on push delay without notifications).
pub const WATCH_EVERY: Duration = Duration::from_millis(25);

/// The largest upload body (a full batch of large events).
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What the waiting polls are woken by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Heads {
    change: u64,
    command: i64,
}

/// The sync router's state.
#[derive(Debug, Clone)]
struct SyncState {
    app: AppState,
    heads: watch::Receiver<Heads>,
    /// When this instance last wrote each gate's `last_seen`, and the data version it wrote.
    touched: std::sync::Arc<std::sync::Mutex<HashMap<i64, Touched>>>,
    /// Per gate journal, the highest event sequence this instance has published on its live hub.
    published: Published,
}

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
async fn publish_presence(app: AppState, heads: watch::Sender<Heads>) {
    loop {
        match crate::central::repo::sync::publish_presence(&app.db).await {
            Ok(_) => {
                tokio::select! {
                    _ = heads.closed() => return,
                    _ = app.presence_queued.notified() => {}
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

/// The sync endpoints as a router. Serve it behind the mTLS listener (which inserts
/// [`GateIdentity`]); a request without one is refused. Spawns the watcher, which stops when
/// the router is dropped. `database_url`: on PostgreSQL, the URL the watcher LISTENs with
/// (`None`: it only polls).
pub fn router(app: AppState, database_url: Option<String>) -> Router {
    let (tx, heads) = watch::channel(Heads::default());
    let published = Published::default();
    // Supervised: a watcher that panics is logged and started anew, never silently gone. They
    // end when the router is dropped (no receiver left), so the stop token is never cancelled.
    let never = tokio_util::sync::CancellationToken::new();
    {
        let (app, tx) = (app.clone(), tx.clone());
        tokio::spawn(crate::supervise::restarting(
            "presence publisher",
            never.clone(),
            crate::supervise::Backoff::default(),
            move || {
                let (app, tx) = (app.clone(), tx.clone());
                async move {
                    publish_presence(app, tx).await;
                    Ok(())
                }
            },
        ));
    }
    {
        let (app, published) = (app.clone(), published.clone());
        tokio::spawn(crate::supervise::restarting(
            "sync heads watcher",
            never,
            crate::supervise::Backoff::default(),
            move || {
                let (app, url, published, tx) = (
                    app.clone(),
                    database_url.clone(),
                    published.clone(),
                    tx.clone(),
                );
                async move {
                    watch_heads(app, url, published, tx).await;
                    Ok(())
                }
            },
        ));
    }
    let state = SyncState {
        app,
        heads,
        touched: Default::default(),
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

async fn watch_heads(
    app: AppState,
    database_url: Option<String>,
    published: Published,
    tx: watch::Sender<Heads>,
) {
    let mut listener = match (app.db.kind(), database_url) {
        (DbKind::Postgres, Some(url)) => listen(&url).await,
        _ => None,
    };
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut relay = Relay::default();
    // The first round runs at once: it takes note of where things stand when this instance
    // starts, and whatever happens after must be relayed. Half a second later, it would take
    // a gate's first health report and first events as already known and never relay them.
    let mut last_relay: Option<tokio::time::Instant> = None;
    loop {
        if last_relay.is_none_or(|at| at.elapsed() >= RELAY_EVERY) {
            last_relay = Some(tokio::time::Instant::now());
            if let Err(e) = relay.round(&app, &published).await {
                tracing::warn!(error = %e, "sync watcher cannot relay live messages");
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tx.closed() => return,
            _ = every.tick() => {}
            ok = notified => if !ok { listener = None; },
        }
        let heads = async {
            Ok::<_, RepoError>(Heads {
                change: repo::change_head(&app.db).await?,
                command: repo::command_head(&app.db).await?,
            })
        };
        match heads.await {
            Ok(h) => {
                tx.send_if_modified(|old| {
                    let moved = *old != h;
                    *old = h;
                    moved
                });
            }
            Err(e) => tracing::warn!(error = %e, "sync watcher cannot read the change log"),
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

/// Refuses a gate the centre does not know or has disabled.
async fn known_gate(state: &SyncState, gate: GateIdentity) -> Result<(), SyncRefusal> {
    match repo::gate_enabled(&state.app.db, gate.gate_id).await? {
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

async fn changes(
    State(mut state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<Changes>, SyncRefusal> {
    let deadline = tokio::time::Instant::now() + wait(q.wait_ms)?;
    known_gate(&state, gate).await?;
    state.touch(gate.gate_id, Some(q.since)).await?;
    loop {
        // Mark the current heads seen before reading, so a change committed in between still
        // wakes the wait below.
        state.heads.borrow_and_update();
        let head = repo::change_head(&state.app.db).await?;
        if head != q.since {
            return Ok(Json(
                repo::changes_since(&state.app.db, gate.gate_id, q.since).await?,
            ));
        }
        if tokio::time::timeout_at(deadline, state.heads.changed())
            .await
            .is_err()
        {
            return Ok(Json(Changes {
                version: q.since,
                ..Changes::default()
            }));
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

async fn commands(
    State(mut state): State<SyncState>,
    Extension(gate): Extension<GateIdentity>,
    Query(q): Query<CommandsQuery>,
) -> Result<Json<Vec<PendingCommand>>, SyncRefusal> {
    let deadline = tokio::time::Instant::now() + wait(q.wait_ms)?;
    known_gate(&state, gate).await?;
    loop {
        state.heads.borrow_and_update();
        state.touch(gate.gate_id, None).await?;
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
        if tokio::time::timeout_at(deadline, state.heads.changed())
            .await
            .is_err()
        {
            return Ok(Json(Vec::new()));
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
