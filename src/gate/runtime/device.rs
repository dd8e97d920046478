//! What the device tasks (reader, QR scanner, I/O module) share about their links: the backoff
//! between attempts to reopen one, and the journal event of a device going offline or online,
//! journalled once per change. Never opens a port itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::gate::journal::Journal;
use crate::wire::journal::EventBody;

/// Reopening a device link: 100 ms, doubling up to 5 s, back to 100 ms once it works.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(super) fn new() -> Backoff {
        Backoff {
            next: Backoff::FIRST,
        }
    }

    pub(super) fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }

    pub(super) fn take(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Backoff::MAX);
        wait
    }
}

/// The journal event of a device (`reader`, `io`) changing status.
pub(super) fn device_event(device: &str, status: &str, detail: String) -> EventBody {
    EventBody::Device {
        device: device.into(),
        status: status.into(),
        detail,
    }
}

/// A device link's last journalled status: each change is journalled once (and logged when the
/// device goes offline), so a device that stays unplugged is not journalled at every retry.
pub(super) struct LinkStatus {
    device: &'static str,
    lane: String,
    journal: Arc<Journal>,
    online: Option<bool>,
}

impl LinkStatus {
    /// `device` as the journal names it (`reader`, `qr`).
    pub(super) fn new(device: &'static str, lane: &str, journal: Arc<Journal>) -> LinkStatus {
        LinkStatus {
            device,
            lane: lane.to_string(),
            journal,
            online: None,
        }
    }

    /// The link opened.
    pub(super) async fn online(&mut self) {
        if self.online != Some(true) {
            self.append("online", String::new()).await;
            self.online = Some(true);
        }
    }

    /// The link could not be opened or ended, for `why`.
    pub(super) async fn offline(&mut self, why: String) {
        if self.online != Some(false) {
            tracing::warn!(lane = %self.lane, device = self.device, error = %why, "device offline");
            self.append("offline", why).await;
            self.online = Some(false);
        }
    }

    async fn append(&self, status: &str, detail: String) {
        let _ = self
            .journal
            .append(
                Utc::now(),
                &self.lane,
                device_event(self.device, status, detail),
            )
            .await;
    }
}
