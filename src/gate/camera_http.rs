//! The gate's camera listener (`[camera_listener]` in gate.toml): plate cameras on the cabinet
//! network push each read to `POST /camera/<name>`, and the camera is answered 200 only once the
//! lane has durably journalled what it did with the read, so a camera that gets no 200 (a
//! timeout, a 503) pushes again and nothing is lost. Repeats are answered 200 too (the lane
//! de-duplicates on the camera's event id).
//!
//! Per push: the camera must be configured (404), come from its `from` address when one is set
//! (403), and fit in `max_body_bytes` (413, refused from `Content-Length` before the body is read,
//! or as soon as a chunked body passes the limit); its driver ([`crate::gate::camera`]) parses it
//! (400 with the driver's reason); its channel picks the lane; the lane gets a [`PlateSighting`]
//! and decides while its JPEGs are stored durably ([`crate::gate::photos`]). A lane or disk that
//! cannot take the read is a 503: the camera retries.
//!
//! Health: each camera's last push from its address is tracked (a read, a heartbeat, or even a
//! push refused as malformed: the camera is there, and the refusals counter says it is
//! misconfigured); a camera silent for more than its `silent_after_s` is journalled as a device
//! going `offline` (`camera:<name>`) on its lane, and `online` again at its next push, like a
//! reader. A camera is given `silent_after_s` from the listener's start before it counts as
//! silent. `gatehouse_camera_online` and `gatehouse_camera_pushes_total` are exported on the
//! gate's `/metrics`.
//!
//! Photos are written (fsynced) while the lane decides, not before: they are named by their
//! SHA-256, known at once, and the disk must not stand between a plate and the barrier. The
//! camera gets its 200 only once they are on disk too; if a crash loses them first, the camera
//! pushes the read again, the lane answers it as a repeat, and the photos are written then.
//!
//! What it never does: decide (the lane does), or keep a read only in memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use futures::StreamExt as _;

use crate::gate::camera::{
    CameraMessage, CameraPush, PlateSighting, SightingOutcome, alarm_info, parse,
};
use crate::gate::config::{CameraConfig, CameraKind, GateConfig};
use crate::gate::photos::PhotoStore;
use crate::gate::runtime::GateHandle;
use crate::wire::journal::{EventBody, PhotoRef};

/// How often silent cameras are looked for.
const HEALTH_EVERY: Duration = Duration::from_millis(250);

/// How long a push's body may take to arrive (a camera uploads a few hundred KB on a LAN; a
/// connection trickling bytes must not hold the listener's memory for ever).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// One configured camera and what the listener knows of its health.
#[derive(Debug)]
struct Camera {
    config: CameraConfig,
    health: Mutex<Health>,
}

#[derive(Debug)]
struct Health {
    /// The last push (or the listener's start, giving a new camera `silent_after_s` to speak).
    last_seen: Instant,
    /// Whether `offline` was journalled and `online` not since.
    reported_offline: bool,
}

/// The listener's state: the gate, its cameras by name, the body limit.
#[derive(Debug)]
struct Listener {
    gate: Arc<GateHandle>,
    gate_id: u16,
    cameras: HashMap<String, Camera>,
    max_body: usize,
}

/// `POST /camera/{name}` for every `[[camera]]` of `config`. Serve it with
/// [`serve`] (or `into_make_service_with_connect_info::<SocketAddr>()`): without the peer address
/// a camera with `from` set is refused. Starts the health watch on the current Tokio runtime; it
/// ends when the router is dropped.
pub fn router(gate: Arc<GateHandle>, config: &GateConfig) -> axum::Router {
    let gate_id = gate.shared().gate.0;
    let now = Instant::now();
    let cameras = config
        .cameras
        .iter()
        .map(|c| {
            crate::metrics::camera_online(gate_id, &c.name, true);
            gate.shared().set_camera(&c.name, &c.lane, true);
            (
                c.name.clone(),
                Camera {
                    config: c.clone(),
                    health: Mutex::new(Health {
                        last_seen: now,
                        reported_offline: false,
                    }),
                },
            )
        })
        .collect();
    let listener = Arc::new(Listener {
        gate,
        gate_id,
        cameras,
        max_body: config
            .camera_listener
            .as_ref()
            .map_or(8 * 1024 * 1024, |l| l.max_body_bytes),
    });
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(watch_health(Arc::downgrade(&listener)));
    }
    axum::Router::new()
        .route("/camera/{name}", post(push))
        .with_state(listener)
}

/// Binds `[camera_listener] listen`, with a one-line error naming the address when it is taken.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("camera_listener.listen: cannot listen on {listen}"))
}

/// Serves `router` (from [`router`]) on `listener`, with each request's peer address, until
/// `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// A refusal or failure: a status and a zh-CN + English message.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

fn answer(status: StatusCode, zh: &str, en: &str) -> Refusal {
    Refusal {
        status,
        message: format!("{zh} / {en}\n"),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

async fn push(
    State(listener): State<Arc<Listener>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, Refusal> {
    let Some(camera) = listener.cameras.get(&name) else {
        return Err(answer(
            StatusCode::NOT_FOUND,
            &format!("没有名为 {name:?} 的摄像机（见 gate.toml 的 [[camera]]）"),
            &format!("no camera named {name:?} ([[camera]] in gate.toml)"),
        ));
    };
    let gate_id = listener.gate_id;
    let count = |result: &'static str| crate::metrics::camera_push(gate_id, &name, result);
    if let Some(from) = camera.config.from {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        if peer != Some(from.to_canonical()) {
            count("refused");
            let seen = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
            tracing::warn!(camera = %name, from = %seen, "camera push from the wrong address refused");
            return Err(answer(
                StatusCode::FORBIDDEN,
                &format!("摄像机 {name} 只接受来自 {from} 的推送（本次来自 {seen}）"),
                &format!(
                    "camera {name} accepts pushes from {from} only (this one came from {seen})"
                ),
            ));
        }
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match tokio::time::timeout(BODY_TIMEOUT, read_body(request, listener.max_body))
        .await
        .unwrap_or_else(|_| {
            Err(answer(
                StatusCode::REQUEST_TIMEOUT,
                "推送未在时限内送达",
                &format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ))
        }) {
        Ok(body) => body,
        Err(refusal) => {
            count("refused");
            return Err(refusal);
        }
    };
    listener.seen(camera).await;
    let push = match parse(camera.config.kind, content_type.as_deref(), &body) {
        Ok(CameraMessage::Heartbeat) => {
            count("heartbeat");
            return Ok(ok(camera.config.kind, None));
        }
        Ok(CameraMessage::Read(push)) => push,
        Err(e) => {
            count("refused");
            tracing::warn!(camera = %name, error = %e, "camera push refused");
            return Err(answer(
                StatusCode::BAD_REQUEST,
                "推送内容无法解析",
                &format!("bad push: {e}"),
            ));
        }
    };
    drop(body);
    match listener.read(camera, push).await {
        Ok(outcome) => {
            count("read");
            Ok(ok(camera.config.kind, Some(&outcome)))
        }
        Err(failure) => {
            count("failed");
            Err(failure)
        }
    }
}

/// The body, at most `max` bytes: refused from `Content-Length` before reading, or as soon as the
/// bytes received pass the limit; a body the client did not finish sending is a 400.
async fn read_body(request: Request, max: usize) -> Result<bytes::Bytes, Refusal> {
    let too_large = |n: &str| {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("推送过大（{n} 字节，上限 {max} 字节，见 [camera_listener] max_body_bytes）"),
            &format!(
                "push too large ({n} bytes; the limit is {max} bytes, [camera_listener] max_body_bytes)"
            ),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > max as u64) {
        return Err(too_large(&n.to_string()));
    }
    let mut stream = request.into_body().into_data_stream();
    // Grown as bytes arrive: an announced length is not yet a body worth reserving memory for.
    let mut body =
        bytes::BytesMut::with_capacity(declared.map_or(64 * 1024, |n| n.min(1 << 20) as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            answer(
                StatusCode::BAD_REQUEST,
                "推送未完整送达",
                &format!("the body was cut off: {e}"),
            )
        })?;
        if body.len() + chunk.len() > max {
            return Err(too_large(&format!("more than {max}")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// 200 in the form each kind of camera expects.
fn ok(kind: CameraKind, outcome: Option<&SightingOutcome>) -> Response {
    match kind {
        CameraKind::AlarmInfoPlate => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            alarm_info::RESPONSE_OK,
        )
            .into_response(),
        CameraKind::Hikvision => (StatusCode::OK, "OK").into_response(),
        CameraKind::Webhook => {
            let body = match outcome {
                None => serde_json::json!({ "ok": true, "outcome": "heartbeat" }),
                Some(SightingOutcome::Decided { granted, reason }) => serde_json::json!({
                    "ok": true, "outcome": "decided", "granted": granted, "reason": reason.as_str(),
                }),
                Some(SightingOutcome::Held) => serde_json::json!({ "ok": true, "outcome": "held" }),
                Some(SightingOutcome::Ignored(why)) => {
                    serde_json::json!({ "ok": true, "outcome": "ignored", "why": why })
                }
                Some(SightingOutcome::Duplicate) => {
                    serde_json::json!({ "ok": true, "outcome": "duplicate" })
                }
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
    }
}

impl Listener {
    /// Hands the read to its lane while its photos are written, and answers once both the
    /// lane's journal entry and the photos are durable.
    ///
    /// The photos' names are their SHA-256, known before they are written, so the lane decides
    /// (and opens) without waiting for the disk: writing two photos (fsync included) took about
    /// 2 ms of a plate read's 2.3 ms to OPEN when it came first (benches/README.md). Should
    /// the photos fail to be written, the camera is answered 503 and pushes again: the lane
    /// recognises the repeat (nothing decided twice) and the photos are written then.
    async fn read(&self, camera: &Camera, push: CameraPush) -> Result<SightingOutcome, Refusal> {
        let name = &camera.config.name;
        let photos = self.gate.shared().photos.clone();
        let references: Vec<PhotoRef> = push
            .images
            .iter()
            .map(|image| PhotoStore::reference(image.kind, &image.jpeg))
            .collect();
        let images = push.images.clone();
        let stored = tokio::task::spawn_blocking(move || {
            images
                .iter()
                .map(|image| photos.put(image.kind, &image.jpeg))
                .collect::<Result<Vec<PhotoRef>, _>>()
        });
        let lane = lane_of(&camera.config, push.channel);
        let sighting = PlateSighting::new(name, &push, camera.config.min_confidence, references);
        let outcome = self.gate.camera_read(lane, sighting).await;
        let stored = match stored.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            tracing::error!(camera = %name, error = %e, "cannot store a camera read's photos");
            return Err(answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "照片无法保存，请重试",
                &format!("cannot store the photos, retry: {e}"),
            ));
        }
        match outcome {
            Ok(outcome) => {
                tracing::debug!(camera = %name, lane, event = %push.event_id, ?outcome, "camera read");
                Ok(outcome)
            }
            Err(e) => {
                tracing::error!(camera = %name, lane, error = %e, "lane cannot take a camera read");
                Err(answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("车道 {lane} 暂不能处理，请重试"),
                    &format!("lane {lane} cannot take the read now, retry: {e}"),
                ))
            }
        }
    }

    /// A push from `camera` arrived: it is online (journalled if it had been reported offline).
    async fn seen(&self, camera: &Camera) {
        let silent_for = {
            let mut health = camera.health.lock().expect("camera health lock");
            let silent_for = health.last_seen.elapsed();
            health.last_seen = Instant::now();
            if !health.reported_offline {
                return;
            }
            health.reported_offline = false;
            silent_for
        };
        crate::metrics::camera_online(self.gate_id, &camera.config.name, true);
        self.gate
            .shared()
            .set_camera(&camera.config.name, &camera.config.lane, true);
        self.journal_device(
            camera,
            "online",
            format!("pushing again after {} s silent", silent_for.as_secs()),
        )
        .await;
    }

    /// Cameras silent past their limit and not yet reported: marks and returns them.
    fn newly_silent(&self) -> Vec<(&Camera, Duration)> {
        let mut silent = Vec::new();
        for camera in self.cameras.values() {
            let limit = camera.config.silent_after_s;
            if limit == 0 {
                continue;
            }
            let mut health = camera.health.lock().expect("camera health lock");
            let quiet = health.last_seen.elapsed();
            if !health.reported_offline && quiet > Duration::from_secs(limit) {
                health.reported_offline = true;
                silent.push((camera, quiet));
            }
        }
        silent
    }

    async fn journal_device(&self, camera: &Camera, status: &str, detail: String) {
        let body = EventBody::Device {
            device: format!("camera:{}", camera.config.name),
            status: status.into(),
            detail,
        };
        if let Err(e) = self
            .gate
            .journal()
            .append_batch(Utc::now(), &camera.config.lane, &[body])
            .await
        {
            tracing::error!(camera = %camera.config.name, error = %e, "cannot journal the camera's health");
        }
    }
}

/// The lane a read belongs to: its channel's, when `channels` names it, else the camera's.
fn lane_of(config: &CameraConfig, channel: Option<u32>) -> &str {
    channel
        .and_then(|c| config.channels.get(&c.to_string()))
        .unwrap_or(&config.lane)
}

/// Journals cameras going silent, until the listener is dropped. Holds the listener only while
/// something is to be journalled.
async fn watch_health(listener: Weak<Listener>) {
    let mut every = tokio::time::interval(HEALTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(listener) = listener.upgrade() else {
            return;
        };
        for (camera, quiet) in listener.newly_silent() {
            tracing::warn!(camera = %camera.config.name, silent_s = quiet.as_secs(), "camera silent");
            crate::metrics::camera_online(listener.gate_id, &camera.config.name, false);
            listener
                .gate
                .shared()
                .set_camera(&camera.config.name, &camera.config.lane, false);
            listener
                .journal_device(
                    camera,
                    "offline",
                    format!(
                        "no push or heartbeat for {} s (silent_after_s = {})",
                        quiet.as_secs(),
                        camera.config.silent_after_s
                    ),
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_goes_to_its_channel_s_lane_and_otherwise_to_the_camera_s() {
        let config: CameraConfig = toml::from_str(
            "name = \"north\"\nkind = \"webhook\"\nlane = \"in\"\nchannels = { \"2\" = \"out\" }\n",
        )
        .unwrap();
        assert_eq!(lane_of(&config, Some(2)), "out");
        assert_eq!(lane_of(&config, Some(1)), "in");
        assert_eq!(lane_of(&config, None), "in");
    }
}
