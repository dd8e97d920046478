//! The lane's reader task: keeps the UHF reader open and inventorying, forwards its tag reads
//! to the lane task, and journals it going offline and online. It never decides.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::device::{Backoff, LinkStatus};
use super::status::LaneStatus;
use crate::gate::config::LaneConfig;
use crate::gate::journal::Journal;
use crate::gate::reader::{ReaderEvent, ReaderLink, TidNeeded};

/// Keeps one lane's reader open and inventorying; journals it going offline and online.
pub(super) async fn reader_loop(
    config: LaneConfig,
    journal: Arc<Journal>,
    events: mpsc::Sender<ReaderEvent>,
    status: watch::Sender<LaneStatus>,
    tid_needed: TidNeeded,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new();
    let mut link_status = LinkStatus::new("reader", &config.id, journal);
    let timeout = Duration::from_millis(config.reader.timeout_ms);
    loop {
        let outcome = match crate::gate::reader::open_port(&config.reader.port, config.reader.baud)
        {
            Ok(port) => {
                link_status.online().await;
                status.send_modify(|s| s.reader_online = true);
                backoff.reset();
                let mut link = ReaderLink::new(port, config.reader.address, timeout)
                    .with_tid_needed(tid_needed.clone());
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
        link_status.offline(outcome).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.take()) => {}
        }
    }
}
