//! Notifications: hosts, applicants and visitors are told what concerns them (a new visit
//! request, approved, rejected, pass issued, visitor arrived) by e-mail (SMTP) and by an
//! enterprise-chat group robot webhook (WeCom / DingTalk style). Both optional; queued durably,
//! retried, and never in the way of the request that caused them.
//!
//! - [`queue`] — called by the flows right after their change committed: works out the
//!   recipients and the words from the booking **then** and writes one outbox row per channel
//!   and recipient ([`outbox`]). It never fails the caller and never talks to a mail server.
//! - [`run`] — the delivery worker (one per central instance, started by `gatehouse server
//!   run`): claims due rows ([`outbox::claim`], safe with several instances on one PostgreSQL),
//!   sends them ([`Deliverer`]), retries with backoff ([`backoff_ms`]: 30 s, 2 min, 10 min, 1 h,
//!   3 h, 6 h) and gives a row up as `failed` after its last attempt or a day. Tests drive
//!   [`Deliverer::deliver_once`] with chosen times instead of sleeping.
//! - [`words`] — the messages, zh-CN first with an English line.
//! - [`install`] — at start, the server records in the database which channels `[notify]`
//!   configures, so [`queue`] (which has only the database) queues nothing when `[notify]` is
//!   empty.
//!
//! What it never does: block or fail a request, log a message's body, a recipient's address,
//! the SMTP password, the webhook's URL (it carries the robot's key) or its signing secret, or
//! send a pass link to the group chat.

mod deliver;
pub mod outbox;
pub mod words;

use serde::Deserialize;

pub use deliver::{
    Deliverer, GIVE_UP_AFTER_MS, LEASE_MS, MAX_ATTEMPTS, NotifyError, Step, backoff_ms,
    dingtalk_sign, run,
};

use crate::central::db::Db;

/// A string that must never reach a log or an error message (the SMTP password, the robot's
/// URL and secret). Its own type, not `config::Secret`: `config` names this module's config.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[notify]` of server.toml. Default: nothing is sent (and nothing is queued).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The public base URL of the centre's pages (`https://gate.example.edu.cn`): links in
    /// messages (the visitor's pass) start with it. Empty: messages carry no links.
    pub public_url: String,
    /// `[notify.smtp]`: e-mail. Absent: no e-mail.
    pub smtp: Option<SmtpConfig>,
    /// `[notify.webhook]`: the group robot. Absent: no group messages.
    pub webhook: Option<WebhookConfig>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465 by default).
    Tls,
    /// No TLS at all: only for a relay on the same host or a trusted network (port 25).
    None,
}

/// `[notify.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The mail server's host name (checked against its certificate).
    pub host: String,
    /// Default by `security`: 587 (starttls), 465 (tls), 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Empty: no authentication (a local relay).
    #[serde(default)]
    pub username: String,
    /// Never logged, never shown (Debug prints `Secret(***)`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender, with its display name: `校园车辆门禁 <gate@example.edu.cn>`.
    pub from: String,
    /// Seconds one delivery may take, from connecting to the server's last answer. Default 30.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
    /// The name given in EHLO. Default: lettre's (`localhost` literal).
    #[serde(default)]
    pub hello_name: Option<String>,
}

fn default_smtp_timeout() -> u64 {
    30
}

impl SmtpConfig {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

/// `[notify.webhook]`: an enterprise-chat group robot taking `{"msgtype":"text",...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The robot's URL; it carries the robot's key, so it is a secret (never logged or stored).
    pub url: Secret,
    /// DingTalk's "加签" secret (`SEC…`): each call carries `timestamp` and `sign`
    /// (HMAC-SHA256) in its query. Absent: unsigned (WeCom, or a keyword-protected robot).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// A keyword the robot requires in each message (DingTalk's "自定义关键词"); put first.
    #[serde(default)]
    pub keyword: String,
    /// Which notices the group is told of. Default: new visit requests only.
    #[serde(default = "default_webhook_notices")]
    pub notices: Vec<String>,
}

fn default_webhook_notices() -> Vec<String> {
    vec![VISIT_REQUESTED.to_string()]
}

/// The notice kinds, as stored and as named in `notices`.
pub const VISIT_REQUESTED: &str = "visit_requested";
pub const BOOKING_APPROVED: &str = "booking_approved";
pub const BOOKING_REJECTED: &str = "booking_rejected";
pub const PASS_ISSUED: &str = "pass_issued";
pub const VISITOR_ARRIVED: &str = "visitor_arrived";
/// Every notice kind.
pub const NOTICE_KINDS: [&str; 5] = [
    VISIT_REQUESTED,
    BOOKING_APPROVED,
    BOOKING_REJECTED,
    PASS_ISSUED,
    VISITOR_ARRIVED,
];

impl NotifyConfig {
    /// Whether any channel is configured.
    pub fn is_empty(&self) -> bool {
        self.smtp.is_none() && self.webhook.is_none()
    }

    /// Checks what parsing cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.public_url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err("notify.public_url must start with https:// or http://".into());
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                return Err("notify.smtp.host must not be empty".into());
            }
            if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(format!(
                    "notify.smtp.from: {:?} is not an address like \"校园车辆门禁 <gate@example.edu.cn>\"",
                    smtp.from
                ));
            }
            if smtp.port == Some(0) {
                return Err("notify.smtp.port must be 1-65535".into());
            }
            if !(1..=300).contains(&smtp.timeout_secs) {
                return Err("notify.smtp.timeout_secs must be 1-300".into());
            }
            if smtp.username.is_empty() != smtp.password.is_none() {
                return Err("notify.smtp: username and password go together".into());
            }
        }
        if let Some(hook) = &self.webhook {
            let u = hook.url.expose();
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                // The URL is a secret: the message does not repeat it.
                return Err("notify.webhook.url must start with https:// or http://".into());
            }
            if let Some(bad) = hook
                .notices
                .iter()
                .find(|n| !NOTICE_KINDS.contains(&n.as_str()))
            {
                return Err(format!(
                    "notify.webhook.notices: unknown notice {bad:?} (known: {})",
                    NOTICE_KINDS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

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

impl Notice {
    /// The stored kind ([`NOTICE_KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::VisitRequested { .. } => VISIT_REQUESTED,
            Notice::BookingApproved { .. } => BOOKING_APPROVED,
            Notice::BookingRejected { .. } => BOOKING_REJECTED,
            Notice::PassIssued { .. } => PASS_ISSUED,
            Notice::VisitorArrived { .. } => VISITOR_ARRIVED,
        }
    }

    /// The booking it is about.
    pub fn booking_id(&self) -> i64 {
        match *self {
            Notice::VisitRequested { booking_id }
            | Notice::BookingApproved { booking_id }
            | Notice::BookingRejected { booking_id }
            | Notice::PassIssued { booking_id }
            | Notice::VisitorArrived { booking_id, .. } => booking_id,
        }
    }
}

/// How long [`queue`] may take before it gives up (and logs): a locked database must not hold
/// the request that caused the notice.
const QUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Queues `notice` for delivery. Never fails the caller and never waits for a mail server or
/// a webhook: a failure to queue is logged. Queueing the same notice again queues nothing.
pub async fn queue(db: &Db, notice: Notice) {
    match tokio::time::timeout(QUEUE_TIMEOUT, outbox::queue_notice(db, notice)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(queued)) => {
            tracing::info!(
                notice = notice.kind(),
                booking = notice.booking_id(),
                queued,
                "notifications queued"
            );
            deliver::wake();
        }
        Ok(Err(e)) => tracing::error!(
            notice = notice.kind(),
            booking = notice.booking_id(),
            error = %e,
            "notifications: cannot queue"
        ),
        Err(_) => tracing::error!(
            notice = notice.kind(),
            booking = notice.booking_id(),
            "notifications: queueing timed out; nothing queued"
        ),
    }
}

/// Records in the database which channels `config` configures (and the public URL and time
/// zone messages use), for [`queue`]. Called by `gatehouse server run` at start; an empty
/// `[notify]` turns queueing off.
pub async fn install(
    db: &Db,
    config: &NotifyConfig,
    tz: chrono_tz::Tz,
) -> Result<(), crate::central::db::RepoError> {
    outbox::install(db, config, tz).await
}
