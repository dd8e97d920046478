//! Live updates inside one central instance: what the guard console and the office pages push
//! to browsers as it happens — passage events as they are ingested, and (added by the features
//! that produce them) gate health and alarms.
//!
//! A [`LiveHub`] is a `tokio::sync::broadcast` channel: publishing never blocks and never fails
//! for lack of listeners; a listener that falls behind loses the oldest messages and is told so
//! (`RecvError::Lagged`), so a slow browser can never hold up ingest. Several central instances
//! on one PostgreSQL each have their own hub; carrying messages between instances is the sync
//! layer's job, not this module's.
//!
//! What it never does: store anything (the database is the record; the hub only says "look
//! again"), or decide who may see a message (each subscriber filters by the viewer's gates).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::wire::journal::JournalEvent;

/// Messages kept for a listener that falls behind before it starts losing the oldest.
const CAPACITY: usize = 4096;

/// Something that just happened, as the live pages are told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// Events a gate uploaded that the centre had not stored before, in sequence order.
    Events {
        gate_id: i64,
        events: Arc<[JournalEvent]>,
    },
    /// A gate's health or sync state changed (a health report, a gap in its events, a mode
    /// acknowledged): re-read it (`GET /api/v1/sync/gates`). With several central instances,
    /// each instance publishes this for the gates whose reports it sees change in the
    /// database, so a browser on any instance is told.
    GateStatus { gate_id: i64 },
    /// A booth's one-button alarm was raised, or changed (webhook outcome, acknowledged).
    Alarm { gate_id: i64, alarm_id: i64 },
}

impl LiveMessage {
    /// The gate the message is about, for per-viewer filtering.
    pub fn gate_id(&self) -> Option<i64> {
        match self {
            LiveMessage::Events { gate_id, .. }
            | LiveMessage::GateStatus { gate_id }
            | LiveMessage::Alarm { gate_id, .. } => Some(*gate_id),
        }
    }
}

/// The instance's live channel. Cheap to clone (one shared sender).
#[derive(Debug, Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<LiveMessage>>,
}

impl Default for LiveHub {
    fn default() -> LiveHub {
        LiveHub::new()
    }
}

impl LiveHub {
    pub fn new() -> LiveHub {
        let (tx, _) = broadcast::channel(CAPACITY);
        LiveHub { tx }
    }

    /// Sends to every current listener; with none, the message is simply dropped.
    pub fn publish(&self, message: LiveMessage) {
        let _ = self.tx.send(Arc::new(message));
    }

    /// A listener that receives every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMessage>> {
        self.tx.subscribe()
    }
}
