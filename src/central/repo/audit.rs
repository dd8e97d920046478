//! The audit log (who did what, when, to which record, and what it looked like before and
//! after): reading it, newest first, by entity, operator, action and time.
//!
//! What it never does: change or delete an entry. Entries are written only by
//! [`crate::central::db::audit`], inside the transaction of the change they describe; this module
//! has no function that updates or deletes them, and neither has the API.
//!
//! Also here, because every list repository of the central server needs it: [`Where`], a small
//! filter builder that numbers its `$n` placeholders itself. (sqlx's `QueryBuilder<Any>` writes
//! `?` for every bind, which PostgreSQL refuses, so it cannot be used with `push_bind` here.)

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::central::db::{Db, Page, Paged, RepoError};

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
    let mut w = Where::default();
    if let Some(entity) = &q.entity {
        let p = w.arg(entity.clone());
        w.and(format!("entity = {p}"));
    }
    if let Some(id) = &q.entity_id {
        let p = w.arg(id.clone());
        w.and(format!("entity_id = {p}"));
    }
    if let Some(op) = &q.operator {
        let p = w.arg(op.clone());
        w.and(format!("LOWER(operator_name) = LOWER({p})"));
    }
    if let Some(action) = &q.action {
        let p = w.arg(action.clone());
        w.and(format!("action = {p}"));
    }
    if let Some(from) = q.from_ms {
        let p = w.arg(from);
        w.and(format!("at_ms >= {p}"));
    }
    if let Some(until) = q.until_ms {
        let p = w.arg(until);
        w.and(format!("at_ms < {p}"));
    }
    let total = w.count(db, "audit_log").await?;
    let sql = format!(
        "SELECT id, at_ms, operator_id, operator_name, action, entity, entity_id, before_json, \
         after_json FROM audit_log{} ORDER BY at_ms DESC, id DESC {}",
        w.sql(),
        w.limit(page)
    );
    let rows = w.bind(sqlx::query(&sql)).fetch_all(db.pool()).await?;
    let items = rows.iter().map(entry).collect::<Result<_, _>>()?;
    Ok(Paged { items, total })
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

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_string()))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}

/// A WHERE clause under construction: conditions joined with AND, and the values of their
/// `$1, $2, …` placeholders in order. Conditions are SQL text written by the repository; user
/// input only ever enters as bound values.
#[derive(Debug, Clone, Default)]
pub struct Where {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Where {
    /// Adds a value and returns its placeholder (`$3`).
    pub fn arg(&mut self, value: impl Into<Arg>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    /// Adds a condition.
    pub fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// ` WHERE a AND b`, or nothing.
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// `LIMIT $n OFFSET $m` for `page` (adds the two values).
    pub fn limit(&mut self, page: Page) -> String {
        let l = self.arg(page.limit);
        let o = self.arg(page.offset);
        format!("LIMIT {l} OFFSET {o}")
    }

    /// Binds every value to `q`, in order.
    pub fn bind<'q>(
        &self,
        mut q: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        for a in &self.args {
            q = match a.clone() {
                Arg::Int(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
            };
        }
        q
    }

    /// `SELECT COUNT(*) FROM table WHERE …` with the conditions so far. Call it before
    /// [`Where::limit`] adds the paging values.
    pub async fn count(&self, db: &Db, table: &str) -> Result<i64, RepoError> {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}{}", self.sql());
        let row = self.bind(sqlx::query(&sql)).fetch_one(db.pool()).await?;
        Ok(row.try_get("n")?)
    }
}

/// `%text%` for `LIKE … ESCAPE '\'`, with the wildcards in `text` escaped.
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
