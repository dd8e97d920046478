//! The fleet's consoles: browser-like clients signed in as booth guards, each holding the
//! console's live stream (`GET /console/live`, server-sent events) as the booth page does.
//!
//! The live delay is measured by what the stream shows: a gate's granted decision carries its
//! vehicle's plate, which the lane's live part displays; the first `gate` event of that gate
//! whose data holds the plate is when the console shows it. A plate replaced on the lane by a
//! newer one before the console was sent the gate is not counted.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::gate::Shared;
use super::stats::Samples;

/// What the consoles measured and counted.
#[derive(Debug, Default)]
pub struct ConsoleFigures {
    /// Event made at a gate → shown in a console's stream.
    pub live_delay: Samples,
    /// `gate` events received, all consoles.
    pub updates: AtomicU64,
    /// Streams that failed (refused, cut off) and were opened again.
    pub reconnects: AtomicU64,
}

/// Holds console `index`'s live stream at `base` (the instance's web address) with `session`
/// until `stop`; returns how many of its gates' plates it saw.
pub async fn run(
    base: String,
    session: String,
    gates: Vec<i64>,
    shared: Arc<Shared>,
    figures: Arc<ConsoleFigures>,
    stop: CancellationToken,
) -> u64 {
    let http = plain_http();
    let mut credited: HashSet<(i64, String, Instant)> = HashSet::new();
    let mut seen = 0u64;
    loop {
        let request = http
            .get(format!("{base}/console/live"))
            .header(
                reqwest::header::COOKIE,
                format!("{}={session}", crate::central::api::auth::SESSION_COOKIE),
            )
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send();
        let response = tokio::select! {
            () = stop.cancelled() => return seen,
            r = request => r,
        };
        let mut response = match response.and_then(reqwest::Response::error_for_status) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "console stream refused; again");
                figures.reconnects.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = stop.cancelled() => return seen,
                    () = tokio::time::sleep(std::time::Duration::from_millis(500)) => continue,
                }
            }
        };
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = tokio::select! {
                () = stop.cancelled() => return seen,
                c = response.chunk() => c,
            };
            let Ok(Some(chunk)) = chunk else {
                figures.reconnects.fetch_add(1, Ordering::Relaxed);
                break;
            };
            let now = Instant::now();
            buf.extend_from_slice(&chunk);
            // One event per blank line.
            while let Some(end) = find(&buf, b"\n\n") {
                let event: Vec<u8> = buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&event);
                let data: String = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join("\n");
                if !text
                    .lines()
                    .any(|l| l.strip_prefix("event:").is_some_and(|k| k.trim() == "gate"))
                {
                    continue;
                }
                figures.updates.fetch_add(1, Ordering::Relaxed);
                let Some(gate_id) = serde_json::from_str::<serde_json::Value>(&data)
                    .ok()
                    .and_then(|v| v.get("gate_id").and_then(serde_json::Value::as_i64))
                else {
                    continue;
                };
                if !gates.contains(&gate_id) {
                    continue;
                }
                let recent = shared
                    .recent_plates
                    .lock()
                    .expect("plates lock poisoned")
                    .get(&gate_id)
                    .cloned()
                    .unwrap_or_default();
                for (plate, made) in recent {
                    if data.contains(&plate) && credited.insert((gate_id, plate, made)) {
                        seen += 1;
                        if shared.measured(made) {
                            figures.live_delay.push(now.saturating_duration_since(made));
                        }
                    }
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return seen,
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
}

/// A client for the centre's plain-HTTP web port (loopback). reqwest is built without a TLS
/// provider of its own, so it is given a ring configuration it will not use.
pub fn plain_http() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client builds")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
