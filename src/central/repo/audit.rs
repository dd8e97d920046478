//! The audit log (who did what, when, to which record, and what it looked like before and
//! after): reading it, newest first, by entity, operator, action and time.
//!
//! What it never does: change or delete an entry. Entries are written only by
//! [`crate::central::db::audit`], inside the transaction of the change they describe; this module
//! has no function that updates or deletes them, and neither has the API.
//!
//! Also here: [`at`], the millisecond-to-time conversion the list repositories share.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::central::db::{Db, Filter, Page, Paged, RepoError};

/// One audit entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// When the change was committed.
    pub at: DateTime<Utc>,
    /// The operator, or `null` for the system itself (imports, gates, the scheduler).
    pub operator_id: Option<i64>,
    /// The operator's username at the time (or `system`).
    pub operator_name: String,
    /// `create`, `update`, `delete` or a named action (`lift`, `set_mode`, …).
    pub action: String,
    /// The kind of record (`blacklist`, `vehicle_lock`, `gate`, `lane`, …).
    pub entity: String,
    /// The record's id, as text.
    pub entity_id: String,
    /// The record before the change (`null` for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The record after the change (`null` for a deletion).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// Filters for [`search`]; every field is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exact entity kind.
    pub entity: Option<String>,
    /// Exact entity id (as text).
    pub entity_id: Option<String>,
    /// The operator's username, compared case-insensitively.
    pub operator: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// From this instant (inclusive), UTC milliseconds.
    pub from_ms: Option<i64>,
    /// Until this instant (exclusive), UTC milliseconds.
    pub until_ms: Option<i64>,
}

/// Audit entries matching `q`, newest first.
pub async fn search(db: &Db, q: &AuditQuery, page: Page) -> Result<Paged<AuditEntry>, RepoError> {
    let mut w = Filter::new();
    if let Some(entity) = &q.entity {
        w.eq("entity", entity.as_str());
    }
    if let Some(id) = &q.entity_id {
        w.eq("entity_id", id.as_str());
    }
    if let Some(op) = &q.operator {
        let p = w.arg(op.as_str());
        w.and(format!("LOWER(operator_name) = LOWER({p})"));
    }
    if let Some(action) = &q.action {
        w.eq("action", action.as_str());
    }
    w.between("at_ms", q.from_ms, q.until_ms);
    let select = "SELECT id, at_ms, operator_id, operator_name, action, entity, entity_id, \
                  before_json, after_json FROM audit_log";
    w.paged(
        db,
        ("audit_log", select),
        "at_ms DESC, id DESC",
        page,
        entry,
    )
    .await
}

fn entry(r: &AnyRow) -> Result<AuditEntry, RepoError> {
    let json = |col: &str| -> Result<Option<serde_json::Value>, RepoError> {
        let text: Option<String> = r.try_get(col)?;
        // The log only ever holds JSON written by `db::audit`; text that is not JSON (written
        // by hand) is shown as a string rather than hidden.
        Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(serde_json::Value::String(t))))
    };
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at: at(r.try_get("at_ms")?),
        operator_id: r.try_get("operator_id")?,
        operator_name: r.try_get("operator_name")?,
        action: r.try_get("action")?,
        entity: r.try_get("entity")?,
        entity_id: r.try_get("entity_id")?,
        before: json("before_json")?,
        after: json("after_json")?,
    })
}

/// UTC milliseconds as an instant (the epoch for the impossible out-of-range value).
pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
