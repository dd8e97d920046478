//! Alarms: the booth's one-button alarm (一键报警) and the ones the system raises, the security
//! office's acknowledgement, the alarm webhook's setting (the police link) and its durable
//! delivery queue, and the episodes that keep a system condition to one alarm.
//!
//! **Delivery queue.** An alarm for the police link is stored `pending`, due at once. An
//! instance claims a due alarm with one compare-and-set UPDATE (its own `claim_token` and a
//! lease), calls the webhook, and records the outcome only while its claim holds: two central
//! instances on one database never both deliver an alarm, a crashed instance's claim runs out
//! after [`crate::central::alarms::LEASE_MS`], and a restart forgets nothing (the queue is
//! these rows).
//!
//! **Episodes.** A system condition (a journal that cannot write, a clock off, a device
//! offline, a fire input) raises one alarm when it begins, whichever instance sees it first and
//! however often it is reported: [`open_episode`] turns the episode's `open` from 0 to 1 and
//! stores the alarm in the same transaction; [`close_episode`] turns it back and marks the
//! alarm cleared.
//!
//! What it never does: call the webhook (the service [`crate::central::alarms`] does), return
//! the webhook's secret, or write the webhook's URL or secret into the audit log (only the
//! URL's scheme and host).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::audit::at;
use crate::central::db::{Actor, Db, Op, RepoError, now_ms, write_change};

/// An alarm as the office sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Alarm {
    pub id: i64,
    pub gate_id: i64,
    pub gate_name: String,
    /// What raised it: `manual` (the booth's button) or a system kind (see
    /// [`crate::central::alarms`]).
    pub kind: String,
    /// Who pressed the button (`system` for a system alarm).
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
    pub note: String,
    /// The police link: `none` (not sent: no webhook configured, or a kind the police are not
    /// called for), `pending` (being delivered, retried until it is), `sent`, `given_up` (an
    /// operator stopped the retries) or `failed` (before retries existed).
    pub webhook_status: String,
    /// Calls made so far.
    pub delivery_attempts: i64,
    /// The next call, while `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last call failed (empty once sent).
    pub last_error: String,
    pub delivered_at: Option<DateTime<Utc>>,
    /// A system alarm's condition ended (the device is back, the clock corrected).
    pub cleared_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it (user name), once acknowledged.
    pub acknowledged_by: Option<String>,
    /// What the office did (see [`ACK_ACTIONS`]); empty until acknowledged.
    pub ack_action: String,
    /// The office's words on what it did.
    pub ack_note: String,
    /// Who withdrew it as a false alarm (user name), if withdrawn.
    pub withdrawn_by: Option<String>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// The operator who raised it (`None`: the system).
    pub raised_by_id: Option<i64>,
}

impl Alarm {
    /// Whether the alarm still waits for the office: neither acknowledged nor withdrawn.
    pub fn is_open(&self) -> bool {
        self.acknowledged_at.is_none() && self.withdrawn_at.is_none()
    }
}

/// What an acknowledgement says the office did: (code, 中文, English).
pub const ACK_ACTIONS: &[(&str, &str, &str)] = &[
    ("dispatched", "已派人到场", "Sent someone to the spot"),
    ("phoned", "已电话核实", "Checked by phone"),
    ("false_alarm", "误报", "False alarm"),
    ("other", "其他", "Other"),
];

/// The SQL condition of an open alarm (alias `a`).
const OPEN: &str = "a.acknowledged_ms IS NULL AND a.withdrawn_ms IS NULL";

const SELECT: &str = "SELECT a.id, a.gate_id, g.name, COALESCE(o.username, 'system'), \
    a.raised_ms, a.note, a.webhook_status, a.acknowledged_ms, a.kind, a.delivery_attempts, \
    a.next_attempt_ms, a.last_error, a.delivered_ms, a.cleared_ms, k.username, a.ack_action, \
    a.ack_note, w.username, a.withdrawn_ms, a.raised_by FROM alarms a \
    JOIN gates g ON g.id = a.gate_id LEFT JOIN operators o ON o.id = a.raised_by \
    LEFT JOIN operators k ON k.id = a.acknowledged_by LEFT JOIN operators w ON w.id = a.withdrawn_by";

fn row_to_alarm(r: &AnyRow) -> Alarm {
    let pending = r.get::<String, _>(6) == "pending";
    Alarm {
        id: r.get(0),
        gate_id: r.get(1),
        gate_name: r.get(2),
        raised_by: r.get(3),
        raised_at: at(r.get(4)),
        note: r.get(5),
        webhook_status: r.get(6),
        acknowledged_at: r.get::<Option<i64>, _>(7).map(at),
        kind: r.get(8),
        delivery_attempts: r.get(9),
        next_attempt_at: r.get::<Option<i64>, _>(10).filter(|_| pending).map(at),
        last_error: r.get(11),
        delivered_at: r.get::<Option<i64>, _>(12).map(at),
        cleared_at: r.get::<Option<i64>, _>(13).map(at),
        acknowledged_by: r.get(14),
        ack_action: r.get(15),
        ack_note: r.get(16),
        withdrawn_by: r.get(17),
        withdrawn_at: r.get::<Option<i64>, _>(18).map(at),
        raised_by_id: r.get(19),
    }
}

/// Raises an alarm of `kind` at `gate_id` (and writes its audit entry). Callers go through
/// [`crate::central::alarms::raise`], which also tells the office and delivers it.
/// `webhook_status` is `pending` (due at once) or `none`.
pub async fn raise(
    db: &Db,
    actor: &Actor,
    gate_id: i64,
    kind: &str,
    note: &str,
    webhook_status: &str,
) -> Result<Alarm, RepoError> {
    let mut tx = db.begin().await?;
    let id = insert(&mut tx, actor, gate_id, kind, note, webhook_status).await?;
    tx.commit().await?;
    get(db, id).await
}

async fn insert(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    gate_id: i64,
    kind: &str,
    note: &str,
    webhook_status: &str,
) -> Result<i64, RepoError> {
    let now = now_ms();
    let due = (webhook_status == "pending").then_some(now);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO alarms (gate_id, raised_by, raised_ms, note, webhook_status, kind, \
         next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(gate_id)
    .bind(actor.operator_id)
    .bind(now)
    .bind(note)
    .bind(webhook_status)
    .bind(kind)
    .bind(due)
    .fetch_one(&mut *tx)
    .await?;
    let after = serde_json::json!({ "gate_id": gate_id, "kind": kind, "note": note });
    write_change(
        tx,
        actor,
        Op::Audit("raise"),
        "alarm",
        id,
        None,
        Some(&after),
    )
    .await?;
    Ok(id)
}

/// One alarm.
pub async fn get(db: &Db, id: i64) -> Result<Alarm, RepoError> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(RepoError::NotFound)?;
    Ok(row_to_alarm(&row))
}

/// Sets what the webhook answered, whatever the queue holds (a test's or a tool's shortcut;
/// the deliverer records through [`delivered`] and [`retry_later`]).
pub async fn set_webhook_status(db: &Db, id: i64, status: &str) -> Result<(), RepoError> {
    sqlx::query("UPDATE alarms SET webhook_status = $1 WHERE id = $2")
        .bind(status)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Claims a due `pending` alarm for delivery (`only`: that alarm, if due) for `lease_ms`
/// under `token`, counting the attempt. `None`: nothing is due or another instance holds it.
pub async fn claim(
    db: &Db,
    only: Option<i64>,
    now: i64,
    lease_ms: i64,
    token: &str,
) -> Result<Option<Alarm>, RepoError> {
    const DUE: &str = "webhook_status = 'pending' AND next_attempt_ms <= $1 \
        AND (claimed_until_ms IS NULL OR claimed_until_ms < $1)";
    let candidates: Vec<i64> = match only {
        Some(id) => {
            sqlx::query_scalar(&format!("SELECT id FROM alarms WHERE {DUE} AND id = $2"))
                .bind(now)
                .bind(id)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query_scalar(&format!(
                "SELECT id FROM alarms WHERE {DUE} ORDER BY next_attempt_ms, id LIMIT 8"
            ))
            .bind(now)
            .fetch_all(db.pool())
            .await?
        }
    };
    for id in candidates {
        // Compare-and-set: of two instances, the second finds the claim taken (PostgreSQL
        // re-reads the row once the first commits; SQLite has one writer).
        let won = sqlx::query(&format!(
            "UPDATE alarms SET claim_token = $2, claimed_until_ms = $3, \
             delivery_attempts = delivery_attempts + 1 WHERE id = $4 AND {DUE}"
        ))
        .bind(now)
        .bind(token)
        .bind(now + lease_ms)
        .bind(id)
        .execute(db.pool())
        .await?
        .rows_affected()
            == 1;
        if won {
            return get(db, id).await.map(Some);
        }
    }
    Ok(None)
}

/// Records a delivered alarm (while `token`'s claim holds). Returns whether it did.
pub async fn delivered(db: &Db, id: i64, token: &str, now: i64) -> Result<bool, RepoError> {
    let done = sqlx::query(
        "UPDATE alarms SET webhook_status = 'sent', delivered_ms = $1, last_error = '', \
         next_attempt_ms = NULL, claim_token = NULL, claimed_until_ms = NULL \
         WHERE id = $2 AND claim_token = $3",
    )
    .bind(now)
    .bind(id)
    .bind(token)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Records a failed call and when to try again (while `token`'s claim holds and the alarm is
/// still `pending`). Returns whether it did.
pub async fn retry_later(
    db: &Db,
    id: i64,
    token: &str,
    next_ms: i64,
    why: &str,
) -> Result<bool, RepoError> {
    let done = sqlx::query(
        "UPDATE alarms SET next_attempt_ms = $1, last_error = $2, claim_token = NULL, \
         claimed_until_ms = NULL WHERE id = $3 AND claim_token = $4 \
         AND webhook_status = 'pending'",
    )
    .bind(next_ms)
    .bind(why)
    .bind(id)
    .bind(token)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// When the next pending delivery is due (a claimed one: when its claim runs out), if any.
pub async fn next_due(db: &Db) -> Result<Option<i64>, RepoError> {
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(CASE WHEN claimed_until_ms IS NOT NULL AND claimed_until_ms > next_attempt_ms \
         THEN claimed_until_ms ELSE next_attempt_ms END) FROM alarms \
         WHERE webhook_status = 'pending'",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(due)
}

/// An operator stops the retries of an alarm's delivery (audited). `Ok(false)` if it was not
/// being delivered.
pub async fn give_up(db: &Db, actor: &Actor, id: i64) -> Result<bool, RepoError> {
    let alarm = get(db, id).await?;
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE alarms SET webhook_status = 'given_up', next_attempt_ms = NULL \
         WHERE id = $1 AND webhook_status IN ('pending', 'failed')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        let before = serde_json::json!({
            "webhook_status": alarm.webhook_status,
            "delivery_attempts": alarm.delivery_attempts,
        });
        let after = serde_json::json!({ "webhook_status": "given_up" });
        write_change(
            &mut tx,
            actor,
            Op::Audit("give_up_delivery"),
            "alarm",
            id,
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// The office acknowledges an alarm, saying what it did (`action`, one of [`ACK_ACTIONS`]
/// codes, and `note`), audited. `Ok(false)` if it was already acknowledged or withdrawn.
pub async fn acknowledge(
    db: &Db,
    actor: &Actor,
    id: i64,
    action: &str,
    note: &str,
) -> Result<bool, RepoError> {
    get(db, id).await?;
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE alarms SET acknowledged_by = $1, acknowledged_ms = $2, ack_action = $3, \
         ack_note = $4 WHERE id = $5 AND acknowledged_ms IS NULL AND withdrawn_ms IS NULL",
    )
    .bind(actor.operator_id)
    .bind(now_ms())
    .bind(action)
    .bind(note)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        let after = serde_json::json!({ "action": action, "note": note });
        write_change(
            &mut tx,
            actor,
            Op::Audit("acknowledge"),
            "alarm",
            id,
            None,
            Some(&after),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Withdraws an alarm as false (audited): it is no longer open, and a police-link delivery
/// still being retried stops (`withdrawn`; one already sent stays `sent`). Whether the
/// operator may (the one who raised it, within the site's window) is the caller's to decide.
/// `Ok(false)` if it was already acknowledged or withdrawn.
pub async fn withdraw(db: &Db, actor: &Actor, id: i64) -> Result<bool, RepoError> {
    let alarm = get(db, id).await?;
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE alarms SET withdrawn_by = $1, withdrawn_ms = $2, \
         webhook_status = CASE WHEN webhook_status = 'pending' THEN 'withdrawn' \
         ELSE webhook_status END, \
         next_attempt_ms = CASE WHEN webhook_status = 'pending' THEN NULL \
         ELSE next_attempt_ms END \
         WHERE id = $3 AND acknowledged_ms IS NULL AND withdrawn_ms IS NULL",
    )
    .bind(actor.operator_id)
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        let before = serde_json::json!({ "webhook_status": alarm.webhook_status });
        let after = serde_json::json!({ "withdrawn": true, "reason": "false_alarm" });
        write_change(
            &mut tx,
            actor,
            Op::Audit("withdraw"),
            "alarm",
            id,
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// The latest alarm operator `operator_id` raised at or after `since_ms`, if any (the booth's
/// alarm status).
pub async fn latest_raised_by(
    db: &Db,
    operator_id: i64,
    since_ms: i64,
) -> Result<Option<Alarm>, RepoError> {
    let row = sqlx::query(&format!(
        "{SELECT} WHERE a.raised_by = $1 AND a.raised_ms >= $2 ORDER BY a.raised_ms DESC, \
         a.id DESC LIMIT 1"
    ))
    .bind(operator_id)
    .bind(since_ms)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.as_ref().map(row_to_alarm))
}

/// The open alarms (neither acknowledged nor withdrawn): how many, and the newest `limit`.
pub async fn open(db: &Db, limit: i64) -> Result<(i64, Vec<Alarm>), RepoError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM alarms a WHERE {OPEN}"))
        .fetch_one(db.pool())
        .await?;
    if count == 0 {
        return Ok((0, Vec::new()));
    }
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE {OPEN} ORDER BY a.raised_ms DESC, a.id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok((count, rows.iter().map(row_to_alarm).collect()))
}

/// The latest alarms, open ones (neither acknowledged nor withdrawn) first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Alarm>, RepoError> {
    let rows = sqlx::query(&format!(
        "{SELECT} ORDER BY CASE WHEN {OPEN} THEN 0 ELSE 1 END, a.raised_ms DESC, a.id DESC \
         LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(row_to_alarm).collect())
}

/// The newest alarm's id (0 if none).
pub async fn newest_id(db: &Db) -> Result<i64, RepoError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM alarms")
        .fetch_one(db.pool())
        .await?;
    Ok(id.unwrap_or(0))
}

/// (id, gate id) of the alarms after `id`, oldest first (at most 100).
pub async fn since(db: &Db, id: i64) -> Result<Vec<(i64, i64)>, RepoError> {
    let rows = sqlx::query("SELECT id, gate_id FROM alarms WHERE id > $1 ORDER BY id LIMIT 100")
        .bind(id)
        .fetch_all(db.pool())
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Every alarm of `kind` at `gate_id`, oldest first.
pub async fn of_kind(db: &Db, gate_id: i64, kind: &str) -> Result<Vec<Alarm>, RepoError> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE a.gate_id = $1 AND a.kind = $2 ORDER BY a.id"
    ))
    .bind(gate_id)
    .bind(kind)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(row_to_alarm).collect())
}

/// Where and how the webhook is called.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// The shared HMAC secret; empty: calls are unsigned.
    pub secret: String,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &redact_url(&self.url))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The webhook's URL and secret, if one is configured and enabled.
pub async fn webhook_target(db: &Db) -> Result<Option<WebhookTarget>, RepoError> {
    let row = sqlx::query("SELECT url, enabled, secret FROM alarm_webhook WHERE id = 1")
        .fetch_optional(db.pool())
        .await?;
    Ok(row.and_then(|r| {
        (r.get::<i64, _>(1) != 0).then(|| WebhookTarget {
            url: r.get(0),
            secret: r.get(2),
        })
    }))
}

/// The webhook's URL, if one is configured and enabled.
pub async fn webhook(db: &Db) -> Result<Option<String>, RepoError> {
    Ok(webhook_target(db).await?.map(|t| t.url))
}

/// Whether a signing secret is stored.
pub async fn webhook_secret_set(db: &Db) -> Result<bool, RepoError> {
    let secret: Option<String> =
        sqlx::query_scalar("SELECT secret FROM alarm_webhook WHERE id = 1")
            .fetch_optional(db.pool())
            .await?;
    Ok(secret.is_some_and(|s| !s.is_empty()))
}

/// `scheme://host[:port]/…`: the URL without its path and query (which may carry a key).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}/…", u.scheme()),
                None => format!("{}://{host}/…", u.scheme()),
            }
        }
        Err(_) => "…".to_string(),
    }
}

/// Audits a change of the webhook settings as `after` (only what may be shown of them), and
/// commits.
async fn audit_webhook(
    mut tx: Transaction<'static, Any>,
    actor: &Actor,
    after: serde_json::Value,
) -> Result<(), RepoError> {
    let op = Op::Audit("update");
    write_change(&mut tx, actor, op, "alarm_webhook", 1, None, Some(&after)).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets (or, with `None`, disables) the webhook; the audit log gets its scheme and host only.
pub async fn set_webhook(db: &Db, actor: &Actor, url: Option<&str>) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO alarm_webhook (id, url, enabled, updated_ms) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET url = $1, enabled = $2, updated_ms = $3",
    )
    .bind(url.unwrap_or(""))
    .bind(i64::from(url.is_some()))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let after = serde_json::json!({ "url": url.map(redact_url), "enabled": url.is_some() });
    audit_webhook(tx, actor, after).await
}

/// Replaces the webhook's signing secret; the audit log says only that it changed.
pub async fn set_webhook_secret(db: &Db, actor: &Actor, secret: &str) -> Result<(), RepoError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO alarm_webhook (id, url, enabled, updated_ms, secret) VALUES (1, '', 0, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET secret = $2, updated_ms = $1",
    )
    .bind(now_ms())
    .bind(secret)
    .execute(&mut *tx)
    .await?;
    let after = serde_json::json!({ "secret": "changed" });
    audit_webhook(tx, actor, after).await
}

/// Opens the episode of `kind` about `subject` at `gate_id` unless it is open, and then raises
/// its alarm (as the system) in the same transaction. `seq`: the gate event that began it
/// (an older or repeated event opens nothing); 0 for a condition read from a health report.
/// `Ok(None)`: the episode was open already (or the event was seen before).
#[allow(clippy::too_many_arguments)]
pub async fn open_episode(
    db: &Db,
    gate_id: i64,
    kind: &str,
    subject: &str,
    seq: i64,
    note: &str,
    webhook_status: &str,
) -> Result<Option<Alarm>, RepoError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let opened = sqlx::query(
        "INSERT INTO alarm_episodes (gate_id, kind, subject, open, changed_ms, last_seq) \
         VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (gate_id, kind, subject) DO UPDATE \
         SET open = 1, changed_ms = $4, last_seq = $5 \
         WHERE alarm_episodes.open = 0 AND (alarm_episodes.last_seq < $5 OR $5 = 0) \
         RETURNING gate_id",
    )
    .bind(gate_id)
    .bind(kind)
    .bind(subject)
    .bind(now)
    .bind(seq)
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    if !opened {
        tx.rollback().await?;
        return Ok(None);
    }
    let id = insert(
        &mut tx,
        &Actor::system(),
        gate_id,
        kind,
        note,
        webhook_status,
    )
    .await?;
    sqlx::query(
        "UPDATE alarm_episodes SET alarm_id = $1 WHERE gate_id = $2 AND kind = $3 AND subject = $4",
    )
    .bind(id)
    .bind(gate_id)
    .bind(kind)
    .bind(subject)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    get(db, id).await.map(Some)
}

/// Closes the episode of `kind` about `subject` at `gate_id` if it is open (`seq` as for
/// [`open_episode`]) and marks its alarm cleared. Returns the cleared alarm's id.
pub async fn close_episode(
    db: &Db,
    gate_id: i64,
    kind: &str,
    subject: &str,
    seq: i64,
) -> Result<Option<i64>, RepoError> {
    let mut tx = db.begin().await?;
    let now = now_ms();
    let alarm: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE alarm_episodes SET open = 0, changed_ms = $1, last_seq = $2 \
         WHERE gate_id = $3 AND kind = $4 AND subject = $5 AND open = 1 \
         AND (last_seq < $2 OR $2 = 0) RETURNING alarm_id",
    )
    .bind(now)
    .bind(seq)
    .bind(gate_id)
    .bind(kind)
    .bind(subject)
    .fetch_optional(&mut *tx)
    .await?;
    let alarm = alarm.flatten();
    if let Some(id) = alarm {
        sqlx::query("UPDATE alarms SET cleared_ms = $1 WHERE id = $2 AND cleared_ms IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(alarm)
}

/// The (kind, subject) of every open episode at `gate_id`.
pub async fn open_subjects_of_gate(
    db: &Db,
    gate_id: i64,
) -> Result<Vec<(String, String)>, RepoError> {
    let rows =
        sqlx::query("SELECT kind, subject FROM alarm_episodes WHERE gate_id = $1 AND open = 1")
            .bind(gate_id)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
