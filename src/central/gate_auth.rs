//! The centre's answer to "may gate N use the sync endpoints?" for the mutual-TLS listener
//! ([`crate::tls::serve_mtls`]): a gate row with `enabled = 1`. A disabled or deleted gate's
//! certificate is refused — this is how a lost or stolen gate controller is shut out without a
//! certificate revocation list.
//!
//! What it never does: change a gate (enabling and disabling go through the gates API and its
//! audit log) or decide anything from what the client sends.

use futures::future::BoxFuture;

use crate::central::db::{Db, RepoError};
use crate::central::repo::gates;
use crate::tls::{GateCheck, GateCheckError, GateStatus};

/// Reads `gates.enabled` in the central database.
#[derive(Debug, Clone)]
pub struct DbGateCheck {
    db: Db,
}

impl DbGateCheck {
    /// A check against `db`.
    pub fn new(db: Db) -> DbGateCheck {
        DbGateCheck { db }
    }
}

impl GateCheck for DbGateCheck {
    fn status(&self, gate_id: i64) -> BoxFuture<'_, Result<GateStatus, GateCheckError>> {
        Box::pin(async move {
            match gates::get(&self.db, gate_id).await {
                Ok(gate) if gate.enabled => Ok(GateStatus::Enabled),
                Ok(_) => Ok(GateStatus::Disabled),
                Err(RepoError::NotFound) => Ok(GateStatus::Unknown),
                Err(e) => Err(GateCheckError {
                    gate_id,
                    message: e.to_string(),
                }),
            }
        })
    }
}
