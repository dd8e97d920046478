//! The notification outbox in the database (`notifications`, migration 0024): queueing a
//! notice (its recipients and words resolved from the booking at that moment), the delivery
//! worker's claim and outcomes, and the administrator's read-only list. Also the record of
//! which channels the running server configures (`notify_settings`).
//!
//! **Claiming.** A due row is claimed with one conditional `UPDATE … RETURNING` that writes
//! the claimer's token and a lease and counts the attempt; on PostgreSQL the row is picked with
//! `FOR UPDATE SKIP LOCKED`, so instances sharing the database take different rows instead of
//! queueing behind each other, and the outer condition is checked again on the locked row. The
//! outcome is written only while the claim holds; a crashed instance's lease runs out and the
//! row is due again. SQLite has one writer: the same statement is atomic there.
//!
//! What it never does: send anything (see `deliver`), store the webhook's URL, or return a
//! message's body to the API (it may hold a pass link).

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::words::{self, Audience, Facts};
use super::{Notice, NotifyConfig};
use crate::central::db::{Db, DbKind, Page, Paged, RepoError, now_ms};

/// What the running server configures (`notify_settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub email: bool,
    pub webhook: bool,
    /// The notice kinds the group is told of.
    pub webhook_notices: Vec<String>,
    pub public_url: String,
    pub tz: chrono_tz::Tz,
}

/// Records `config`'s channels (see [`super::install`]).
pub async fn install(db: &Db, config: &NotifyConfig, tz: chrono_tz::Tz) -> Result<(), RepoError> {
    let notices = config
        .webhook
        .as_ref()
        .map(|w| w.notices.join(","))
        .unwrap_or_default();
    sqlx::query(
        "INSERT INTO notify_settings (id, email, webhook, webhook_notices, public_url, timezone, updated_ms) \
         VALUES (1, $1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
         webhook = excluded.webhook, webhook_notices = excluded.webhook_notices, \
         public_url = excluded.public_url, timezone = excluded.timezone, updated_ms = excluded.updated_ms",
    )
    .bind(i64::from(config.smtp.is_some()))
    .bind(i64::from(config.webhook.is_some()))
    .bind(notices)
    .bind(config.public_url.trim().trim_end_matches('/').to_string())
    .bind(tz.name().to_string())
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// What the running server configures; `None` before any server recorded it.
pub async fn settings(db: &Db) -> Result<Option<Settings>, RepoError> {
    let row = sqlx::query(
        "SELECT email, webhook, webhook_notices, public_url, timezone FROM notify_settings WHERE id = 1",
    )
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| Settings {
        email: r.get::<i64, _>("email") != 0,
        webhook: r.get::<i64, _>("webhook") != 0,
        webhook_notices: r
            .get::<String, _>("webhook_notices")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        public_url: r.get("public_url"),
        tz: r
            .get::<String, _>("timezone")
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai),
    }))
}

/// One message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub notice: String,
    pub booking_id: Option<i64>,
    /// `email` or `webhook`.
    pub channel: &'static str,
    /// The e-mail address; empty for the webhook.
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// The same key again stores nothing.
    pub dedup_key: String,
}

/// Stores `rows` (due at `now`); returns how many were new.
pub async fn insert(db: &Db, rows: &[Outgoing], now: i64) -> Result<u64, RepoError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut added = 0;
    for o in rows {
        added += sqlx::query(
            "INSERT INTO notifications (notice, booking_id, channel, recipient, subject, body, \
             dedup_key, status, attempts, next_attempt_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8) \
             ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(&o.notice)
        .bind(o.booking_id)
        .bind(o.channel)
        .bind(&o.recipient)
        .bind(&o.subject)
        .bind(&o.body)
        .bind(&o.dedup_key)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(added)
}

/// The booking's facts and the addresses of the people it concerns.
struct Booking {
    facts: Facts,
    visitor_email: String,
    host_email: String,
    booker_email: Option<String>,
}

async fn booking(db: &Db, id: i64) -> Result<Booking, RepoError> {
    let r = sqlx::query(
        "SELECT b.plate, b.driver_name, b.purpose, b.department, b.slot_from_ms, b.slot_until_ms, \
         b.visitor_email, p.name AS host_name, p.email AS host_email \
         FROM visitor_bookings b JOIN persons p ON p.id = b.host_id WHERE b.id = $1",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    // Whoever booked: the operator who created it, through their person record's e-mail.
    let booker_email: Option<String> = sqlx::query_scalar(
        "SELECT pe.email FROM audit_log a JOIN operators o ON o.id = a.operator_id \
         JOIN persons pe ON pe.id = o.person_id \
         WHERE a.entity = 'visitor_booking' AND a.entity_id = $1 AND a.action = 'create' \
         ORDER BY a.id LIMIT 1",
    )
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    Ok(Booking {
        facts: Facts {
            booking_id: id,
            plate: r.get("plate"),
            visitor_name: r.get("driver_name"),
            host_name: r.get("host_name"),
            department: r.get("department"),
            purpose: r.get("purpose"),
            slot_from_ms: r.get("slot_from_ms"),
            slot_until_ms: r.get("slot_until_ms"),
            ..Facts::default()
        },
        visitor_email: r.get("visitor_email"),
        host_email: r.get("host_email"),
        booker_email,
    })
}

/// A usable e-mail address, lower-cased for comparison; `None` for an empty or malformed one.
fn address(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && t.parse::<lettre::Address>().is_ok()).then(|| t.to_string())
}

/// Resolves `notice` (recipients, words) and stores its messages; returns how many were new.
/// Nothing when no server configured a channel.
pub async fn queue_notice(db: &Db, notice: Notice) -> Result<u64, RepoError> {
    let Some(settings) = settings(db).await? else {
        return Ok(0);
    };
    let kind = notice.kind();
    let group = settings.webhook && settings.webhook_notices.iter().any(|n| n == kind);
    if !settings.email && !group {
        return Ok(0);
    }
    let id = notice.booking_id();
    let b = booking(db, id).await?;
    let mut facts = b.facts;
    let mut scope = String::new();
    if let Notice::VisitorArrived { gate_id, at_ms, .. } = notice {
        facts.gate_name = sqlx::query_scalar("SELECT name FROM gates WHERE id = $1")
            .bind(gate_id)
            .fetch_optional(db.pool())
            .await?
            .unwrap_or_else(|| format!("#{gate_id}"));
        facts.at_ms = at_ms;
        scope = format!(":{gate_id}:{at_ms}");
    }
    if matches!(
        notice,
        Notice::BookingApproved { .. } | Notice::PassIssued { .. }
    ) && !settings.public_url.is_empty()
        && let Some(path) = crate::central::passes::link_for_booking(db, id).await?
    {
        facts.link = Some(
            if path.starts_with("http://") || path.starts_with("https://") {
                path
            } else {
                format!("{}/{}", settings.public_url, path.trim_start_matches('/'))
            },
        );
    }
    let mut people: Vec<(Audience, String)> = Vec::new();
    match notice {
        Notice::VisitRequested { .. } | Notice::VisitorArrived { .. } => {
            people.push((Audience::Host, b.host_email.clone()));
        }
        Notice::BookingApproved { .. }
        | Notice::BookingRejected { .. }
        | Notice::PassIssued { .. } => {
            people.push((Audience::Visitor, b.visitor_email.clone()));
            // Whoever booked; a visit booked by no operator (self-booking) was the host's.
            match b.booker_email.as_deref().and_then(address) {
                Some(booker) => people.push((Audience::Booker, booker)),
                None => people.push((Audience::Host, b.host_email.clone())),
            }
        }
    }
    let mut rows = Vec::new();
    if settings.email {
        let mut seen: Vec<String> = Vec::new();
        for (audience, email) in people {
            let Some(email) = address(&email) else {
                continue;
            };
            let key = email.to_lowercase();
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let w = words::compose(kind, audience, &facts, settings.tz);
            rows.push(Outgoing {
                notice: kind.to_string(),
                booking_id: Some(id),
                channel: "email",
                recipient: email,
                subject: w.subject,
                body: w.body,
                dedup_key: format!("{kind}:{id}{scope}:email:{key}"),
            });
        }
    }
    if group {
        let w = words::compose(kind, Audience::Group, &facts, settings.tz);
        rows.push(Outgoing {
            notice: kind.to_string(),
            booking_id: Some(id),
            channel: "webhook",
            recipient: String::new(),
            subject: w.subject,
            body: w.body,
            dedup_key: format!("{kind}:{id}{scope}:webhook"),
        });
    }
    insert(db, &rows, now_ms()).await
}

/// A claimed message, to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub created_ms: i64,
}

const DUE: &str = "status = 'pending' AND next_attempt_ms <= $1 \
    AND (claimed_until_ms IS NULL OR claimed_until_ms < $1) \
    AND ((channel = 'email' AND $4 = 1) OR (channel = 'webhook' AND $5 = 1))";

/// Claims the most overdue message of the given channels due at `now` for `lease_ms` under
/// `token`, counting the attempt.
pub async fn claim(
    db: &Db,
    email: bool,
    webhook: bool,
    now: i64,
    lease_ms: i64,
    token: &str,
) -> Result<Option<Claimed>, RepoError> {
    let lock = match db.kind() {
        DbKind::Postgres => " FOR UPDATE SKIP LOCKED",
        DbKind::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "UPDATE notifications SET claim_token = $2, claimed_until_ms = $3, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM notifications WHERE {DUE} ORDER BY next_attempt_ms, id LIMIT 1{lock}) \
         AND {DUE} \
         RETURNING id, channel, recipient, subject, body, attempts, created_ms"
    ))
    .bind(now)
    .bind(token)
    .bind(now + lease_ms)
    .bind(i64::from(email))
    .bind(i64::from(webhook))
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| Claimed {
        id: r.get("id"),
        channel: r.get("channel"),
        recipient: r.get("recipient"),
        subject: r.get("subject"),
        body: r.get("body"),
        attempts: r.get("attempts"),
        created_ms: r.get("created_ms"),
    }))
}

/// Records a delivered message (while `token`'s claim holds). Returns whether it did.
pub async fn sent(db: &Db, id: i64, token: &str, now: i64) -> Result<bool, RepoError> {
    let n = sqlx::query(
        "UPDATE notifications SET status = 'sent', sent_ms = $1, last_error = '', \
         next_attempt_ms = NULL, claim_token = NULL, claimed_until_ms = NULL \
         WHERE id = $2 AND claim_token = $3",
    )
    .bind(now)
    .bind(id)
    .bind(token)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a failed attempt: due again at `retry_at` (`Some`) or given up for good (`None`).
pub async fn failed(
    db: &Db,
    id: i64,
    token: &str,
    retry_at: Option<i64>,
    why: &str,
) -> Result<bool, RepoError> {
    let status = if retry_at.is_some() {
        "pending"
    } else {
        "failed"
    };
    let n = sqlx::query(
        "UPDATE notifications SET status = $1, next_attempt_ms = $2, last_error = $3, \
         claim_token = NULL, claimed_until_ms = NULL WHERE id = $4 AND claim_token = $5",
    )
    .bind(status)
    .bind(retry_at)
    .bind(why.chars().take(500).collect::<String>())
    .bind(id)
    .bind(token)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// When the next pending message of the given channels is due, if any.
pub async fn next_due(db: &Db, email: bool, webhook: bool) -> Result<Option<i64>, RepoError> {
    Ok(sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MIN(next_attempt_ms) FROM notifications WHERE status = 'pending' \
         AND ((channel = 'email' AND $1 = 1) OR (channel = 'webhook' AND $2 = 1))",
    )
    .bind(i64::from(email))
    .bind(i64::from(webhook))
    .fetch_one(db.pool())
    .await?)
}

/// A message as the administrator sees it (without its body, which may hold a pass link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: i64,
    /// `visit_requested`, `booking_approved`, `booking_rejected`, `pass_issued`,
    /// `visitor_arrived`.
    pub notice: String,
    pub booking_id: Option<i64>,
    /// `email` or `webhook`.
    pub channel: String,
    /// The e-mail address; empty for the webhook.
    pub recipient: String,
    pub subject: String,
    /// `pending` (being delivered, retried), `sent`, or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    /// The next attempt, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn notification(r: &AnyRow) -> Notification {
    Notification {
        id: r.get("id"),
        notice: r.get("notice"),
        booking_id: r.get("booking_id"),
        channel: r.get("channel"),
        recipient: r.get("recipient"),
        subject: r.get("subject"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        next_attempt_at: r.get::<Option<i64>, _>("next_attempt_ms").map(at),
        last_error: r.get("last_error"),
        created_at: at(r.get("created_ms")),
        sent_at: r.get::<Option<i64>, _>("sent_ms").map(at),
    }
}

/// The outbox, newest first, optionally of one status.
pub async fn search(
    db: &Db,
    status: Option<&str>,
    page: Page,
) -> Result<Paged<Notification>, RepoError> {
    let filter = if status.is_some() {
        "WHERE status = $1"
    } else {
        "WHERE $1 = ''"
    };
    let status = status.unwrap_or("").to_string();
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM notifications {filter}"))
        .bind(&status)
        .fetch_one(db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT id, notice, booking_id, channel, recipient, subject, status, attempts, \
         next_attempt_ms, last_error, created_ms, sent_ms FROM notifications {filter} \
         ORDER BY id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(&status)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(db.pool())
    .await?;
    Ok(Paged {
        items: rows.iter().map(notification).collect(),
        total,
    })
}
