//! The lane's reader task: keeps the UHF reader open and inventorying, forwards its tag reads
//! to the lane task, and journals it going offline and online. It never decides.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::device::{Backoff, device_event};
use super::status::LaneStatus;
use crate::gate::config::LaneConfig;
use crate::gate::journal::Journal;
use crate::gate::reader::{ReaderEvent, ReaderLink};

/// Keeps one lane's reader open and inventorying; journals it going offline and online.
pub(super) async fn reader_loop(
    config: LaneConfig,
    journal: Arc<Journal>,
    events: mpsc::Sender<ReaderEvent>,
    status: watch::Sender<LaneStatus>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new();
    let mut was_online: Option<bool> = None;
    let timeout = Duration::from_millis(config.reader.timeout_ms);
    loop {
        let outcome = match crate::gate::reader::open_port(&config.reader.port, config.reader.baud)
        {
            Ok(port) => {
                if was_online != Some(true) {
                    let _ = journal
                        .append(
                            Utc::now(),
                            &config.id,
                            device_event("reader", "online", String::new()),
                        )
                        .await;
                    was_online = Some(true);
                }
                status.send_modify(|s| s.reader_online = true);
                backoff.reset();
                let mut link = ReaderLink::new(port, config.reader.address, timeout);
                let status = status.clone();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = link.run(&events, |c| status.send_modify(|s| s.reader_dropped_bytes = c.dropped_bytes)) => e.to_string(),
                }
            }
            Err(e) => e.to_string(),
        };
        if events.is_closed() {
            return;
        }
        status.send_modify(|s| s.reader_online = false);
        if was_online != Some(false) {
            tracing::warn!(lane = %config.id, error = %outcome, "reader offline");
            let _ = journal
                .append(
                    Utc::now(),
                    &config.id,
                    device_event("reader", "offline", outcome),
                )
                .await;
            was_online = Some(false);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.take()) => {}
        }
    }
}
