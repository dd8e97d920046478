//! The lane's QR scanner task: keeps the scanner's port open, hands each scanned text to the
//! lane task ([`LaneCommand::Pass`]), and journals the scanner going offline and online. A lost
//! device (hang-up, read error, a port that cannot be opened) is reopened with the reader's
//! backoff. It never decides: what a text means is the lane's business (`pass_lane`).

use std::sync::Arc;

use tokio::io::AsyncRead;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::device::{Backoff, LinkStatus};
use super::lane_task::LaneCommand;
use super::lane_task::pass_lane::{PassReply, PassScan};
use super::status::LaneStatus;
use crate::gate::config::LaneConfig;
use crate::gate::journal::Journal;
use crate::gate::qr::{QrError, QrLink, open_port};

/// Keeps one lane's QR scanner open; journals it going offline and online. Returns at
/// shutdown, or when the lane task has gone.
pub(super) async fn qr_loop(
    config: LaneConfig,
    journal: Arc<Journal>,
    lane: mpsc::Sender<LaneCommand>,
    status: watch::Sender<LaneStatus>,
    shutdown: CancellationToken,
) {
    let Some(qr) = config.qr.clone() else {
        return;
    };
    let mut backoff = Backoff::new();
    let mut link_status = LinkStatus::new("qr", &config.id, journal);
    // Dropped bytes of the links before this one (the status counts since the gate started).
    let mut dropped_before = 0;
    loop {
        let outcome = match open_port(&qr.port, qr.baud) {
            Ok(port) => {
                link_status.online().await;
                status.send_modify(|s| s.qr_online = true);
                backoff.reset();
                let mut link = QrLink::new(port);
                let outcome = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = forward(&mut link, &lane, &status, dropped_before) => e,
                };
                dropped_before += link.counters().dropped_bytes;
                match outcome {
                    Some(e) => e.to_string(),
                    None => return,
                }
            }
            Err(e) => e.to_string(),
        };
        if lane.is_closed() {
            return;
        }
        status.send_modify(|s| s.qr_online = false);
        link_status.offline(outcome).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff.take()) => {}
        }
    }
}

/// Hands every text off `link` to the lane until the link ends (`Some(why)`) or the lane has
/// gone (`None`). A scan that waits for the camera's read is sent again when its wait is over.
pub(super) async fn forward<T: AsyncRead + Unpin>(
    link: &mut QrLink<T>,
    lane: &mpsc::Sender<LaneCommand>,
    status: &watch::Sender<LaneStatus>,
    dropped_before: u64,
) -> Option<QrError> {
    loop {
        let scan = match link.next_scan().await {
            Ok(scan) => scan,
            Err(e) => return Some(e),
        };
        let dropped = dropped_before + link.counters().dropped_bytes;
        status.send_modify(|s| {
            s.qr_scans += 1;
            s.qr_dropped_bytes = dropped;
        });
        let (reply, answer) = oneshot::channel();
        let command = LaneCommand::Pass(PassScan {
            text: scan.text.clone(),
            camera_wait_over: false,
            reply: Some(reply),
        });
        if lane.send(command).await.is_err() {
            return None;
        }
        if let Ok(PassReply::WaitCamera(wait)) = answer.await {
            let lane = lane.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = lane
                    .send(LaneCommand::Pass(PassScan {
                        text: scan.text,
                        camera_wait_over: true,
                        reply: None,
                    }))
                    .await;
            });
        }
    }
}
