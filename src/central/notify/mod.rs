//! Notifications: hosts, applicants and visitors are told what concerns them (a new visit
//! request, approved, rejected, pass issued, visitor arrived) by e-mail and by an
//! enterprise-chat group robot webhook. Both optional; queued durably, retried, and never in
//! the way of the request that caused them.
//!
//! (Foundation stub: filled in by the notification work of issue 21.)

use serde::Deserialize;

use crate::central::db::Db;

/// `[notify]` of server.toml. Default: nothing is sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {}

/// Something someone should be told about. Recipients and wording are worked out from the
/// booking when the notice is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A visitor asked to visit (self-booking): the host is asked to decide.
    VisitRequested { booking_id: i64 },
    /// A booking was approved (the visitor and whoever booked are told).
    BookingApproved { booking_id: i64 },
    /// A booking was rejected.
    BookingRejected { booking_id: i64 },
    /// A pass was issued for a booking (the visitor gets its link).
    PassIssued { booking_id: i64 },
    /// The visitor entered at a gate (the host is told).
    VisitorArrived {
        booking_id: i64,
        gate_id: i64,
        at_ms: i64,
    },
}

/// Queues `notice` for delivery. Never fails the caller and never waits for a mail server or
/// a webhook: a failure to queue is logged.
pub async fn queue(db: &Db, notice: Notice) {
    let _ = (db, notice);
}
