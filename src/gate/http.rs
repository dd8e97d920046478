//! The gate controller's small local HTTP listener (`[http] listen` in gate.toml, default
//! 127.0.0.1:9180): `/healthz` (the process answers), `/readyz` (every lane's reader and I/O
//! module answer, the journal file opens for writing and the journal's last commit did not fail),
//! `/metrics` (Prometheus, see [`crate::metrics`]).
//!
//! [`local_router`] is what `gatehouse gate run` (and the demo) serve: those three plus, when
//! `[booth]` names guards, the booth fallback page at `/` ([`crate::gate::booth`], behind its
//! own sign-in). The three status routes need no sign-in: the listener binds to loopback by
//! default and the series carry no personal data; a site that scrapes from another host, or
//! whose booth PC uses the fallback page, binds it to the cabinet's management network only.
//!
//! The lane display page (`/display/{lane}` and its events, [`crate::gate::display::page`]) is
//! always there too: read-only, optionally behind `[display] token`.
//!
//! What it never does: command a lane or change data from the status routes; only the booth
//! page's signed-in, CSRF-checked forms command a lane.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::gate::config::GateConfig;
use crate::gate::runtime::{GateHandle, LaneStatus, Shared};

/// What the endpoints read: the gate's shared state and each lane's live status.
#[derive(Debug, Clone)]
pub struct GateView {
    shared: Arc<Shared>,
    journal_file: PathBuf,
    lanes: Vec<watch::Receiver<LaneStatus>>,
}

impl GateView {
    /// A view of a running gate whose files are in `data_dir`.
    pub fn new(handle: &GateHandle, data_dir: &Path) -> GateView {
        let lanes = handle
            .status()
            .iter()
            .filter_map(|s| handle.watch_lane(&s.lane))
            .collect();
        GateView {
            shared: handle.shared().clone(),
            journal_file: data_dir.join("journal.db"),
            lanes,
        }
    }

    /// Every lane's status, by lane id.
    fn lanes(&self) -> Vec<LaneStatus> {
        self.lanes.iter().map(|rx| rx.borrow().clone()).collect()
    }
}

/// `/healthz`, `/readyz` and `/metrics` for one gate.
pub fn router(view: GateView) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(view)
}

/// The gate's local listener: [`router`] plus the booth fallback page when `config.booth`
/// names at least one guard.
pub fn local_router(gate: Arc<GateHandle>, config: &GateConfig) -> axum::Router {
    let status = router(GateView::new(&gate, &config.gate.data_dir));
    // The lane display page and its events (`/display/…`): read-only, see its module.
    let status = status.merge(display_routes(&gate, config));
    if config.booth.enabled() {
        status.merge(crate::gate::booth::routes(gate, config.booth.clone()))
    } else {
        status
    }
}

/// The lane display page's routes over this gate's lanes.
fn display_routes(gate: &GateHandle, config: &GateConfig) -> axum::Router {
    let lanes = config
        .lanes
        .iter()
        .filter_map(|l| {
            let name = if l.name.trim().is_empty() {
                l.id.clone()
            } else {
                l.name.clone()
            };
            gate.watch_lane(&l.id).map(|rx| (l.id.clone(), name, rx))
        })
        .collect();
    crate::gate::display::page::routes(
        lanes,
        gate.display_templates(),
        config.display.token.clone(),
        gate.shared().tz,
    )
}

async fn readyz(State(view): State<GateView>) -> Response {
    let mut problems = Vec::new();
    for lane in view.lanes() {
        if !lane.reader_online {
            problems.push(format!("lane {}: reader offline", lane.lane));
        }
        if !lane.io_online {
            problems.push(format!("lane {}: I/O module offline", lane.lane));
        }
    }
    // A commit failed (disk full, read-only): the lanes carry on, the events wait in memory.
    let journal = view.shared.journal.stats().await;
    if journal.write_failing {
        problems.push(format!(
            "journal cannot write ({} events waiting in memory, {} lost)",
            journal.waiting, journal.lost
        ));
    }
    // Opening the journal file for writing checks what an operator can break (permissions, a
    // read-only remount) without writing an event.
    if let Err(e) = std::fs::OpenOptions::new()
        .append(true)
        .open(&view.journal_file)
    {
        tracing::warn!(error = %e, "readiness check: journal cannot write");
        problems.push("journal cannot write".into());
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

async fn metrics(State(view): State<GateView>) -> Response {
    let stats = view.shared.journal.stats().await;
    let gauges = crate::metrics::GateGauges {
        gate: view.shared.gate.0,
        devices: view
            .lanes()
            .into_iter()
            .map(|l| (l.lane, l.reader_online, l.io_online))
            .collect(),
        journal_stored: stats.stored,
        journal_capacity: stats.capacity,
        journal_pending: stats.pending,
        journal_write_failing: stats.write_failing,
        journal_write_failures: stats.write_failures,
        journal_waiting: stats.waiting,
        journal_lost: stats.lost,
    };
    let body = crate::metrics::encode_gate(|| crate::metrics::refresh_gate(&gauges));
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// Binds `listen`, with a one-line error naming the address when it is taken.
pub async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {listen}"))
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
