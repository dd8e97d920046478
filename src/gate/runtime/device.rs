//! What the reader and I/O tasks share about their device links: the backoff between attempts
//! to reopen one, and the journal event of a device going offline or online. Never opens a
//! port itself.

use std::time::Duration;

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
