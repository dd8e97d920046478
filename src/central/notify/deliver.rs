//! Delivery: the worker that sends the outbox's due messages by SMTP (lettre, over rustls with
//! the ring provider) and to the group robot webhook (the alarm webhook's reqwest client), and
//! retries the ones that failed.
//!
//! One step is [`Deliverer::deliver_once`] at a given time (tests choose it); [`run`] loops it,
//! sleeping until the next message is due (at most [`POLL`]) or a notice is queued on this
//! instance. Delivery is at least once: a message whose server answered after the lease ran
//! out may be sent twice.
//!
//! What it never does: log a recipient, a body, the SMTP password, or the webhook's URL or
//! secret (a failure's reason is the cause chain without the URL).

use std::sync::OnceLock;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use super::outbox::{self, Claimed};
use super::{NotifyConfig, Secret, SmtpSecurity};
use crate::central::db::{Db, RepoError, now_ms};

/// The waits after the 1st, 2nd, … failed attempt; after the last one the message is given up.
const BACKOFF_MS: [i64; 6] = [
    30_000,     // 30 s
    120_000,    // 2 min
    600_000,    // 10 min
    3_600_000,  // 1 h
    10_800_000, // 3 h
    21_600_000, // 6 h
];

/// Attempts before a message is given up (the first and one after each wait).
pub const MAX_ATTEMPTS: i64 = BACKOFF_MS.len() as i64 + 1;

/// A message not delivered within a day of being queued is given up whatever its attempts.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3_600_000;

/// How long a claim is held: well above a whole SMTP conversation's timeouts, so it runs out
/// only for an instance that died mid-send.
pub const LEASE_MS: i64 = 300_000;

/// How often an idle worker looks for due messages (other instances' notices).
const POLL: Duration = Duration::from_secs(5);

/// The wait after the `attempts`-th failed attempt, or `None` when it was the last.
pub fn backoff_ms(attempts: i64) -> Option<i64> {
    if !(1..MAX_ATTEMPTS).contains(&attempts) {
        return None;
    }
    BACKOFF_MS.get(attempts as usize - 1).copied()
}

/// Why the delivery worker cannot start, or why one message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `[notify]` is unusable (the message names the key).
    #[error("{0}")]
    Config(String),
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP: {0}")]
    Smtp(String),
    /// A malformed address or message (a retry would not help, but costs nothing).
    #[error("message: {0}")]
    Message(String),
    /// The webhook did not answer, answered non-2xx, or answered `errcode` ≠ 0.
    #[error("webhook: {0}")]
    Webhook(String),
    /// No channel of this kind is configured here.
    #[error("no {0} channel is configured")]
    NoChannel(String),
}

/// What one delivery step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Delivered.
    Sent { id: i64 },
    /// Failed; due again at `retry_at_ms`.
    Retry {
        id: i64,
        retry_at_ms: i64,
        why: String,
    },
    /// Failed for the last time: given up (`failed`).
    GaveUp { id: i64, why: String },
    /// Nothing due (for the channels configured here).
    Idle,
}

/// Sends messages over the configured channels.
#[derive(Clone)]
pub struct Deliverer {
    smtp: Option<Smtp>,
    webhook: Option<Webhook>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("smtp", &self.smtp.is_some())
            .field("webhook", &self.webhook.is_some())
            .finish()
    }
}

#[derive(Clone)]
struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The whole conversation's limit.
    timeout: Duration,
}

#[derive(Clone)]
struct Webhook {
    client: reqwest::Client,
    url: Secret,
    secret: Option<Secret>,
    keyword: String,
}

impl Deliverer {
    /// The channels of `config` (checked by [`NotifyConfig::validate`] first).
    pub fn new(config: &NotifyConfig) -> Result<Deliverer, NotifyError> {
        config.validate().map_err(NotifyError::Config)?;
        let smtp = match &config.smtp {
            None => None,
            Some(c) => {
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.trim())
                    .port(c.port())
                    .timeout(Some(Duration::from_secs(c.timeout_secs)));
                if c.security != SmtpSecurity::None {
                    let tls = TlsParameters::new_rustls(c.host.trim().to_string())
                        .map_err(|e| NotifyError::Config(format!("notify.smtp: TLS: {e}")))?;
                    b = b.tls(match c.security {
                        SmtpSecurity::Tls => Tls::Wrapper(tls),
                        _ => Tls::Required(tls),
                    });
                }
                if let Some(password) = &c.password {
                    b = b.credentials(Credentials::new(
                        c.username.clone(),
                        password.expose().to_string(),
                    ));
                }
                if let Some(name) = &c.hello_name {
                    b = b.hello_name(ClientId::Domain(name.clone()));
                }
                let from = c.from.parse().map_err(|_| {
                    NotifyError::Config("notify.smtp.from is not an address".into())
                })?;
                Some(Smtp {
                    transport: b.build(),
                    from,
                    timeout: Duration::from_secs(c.timeout_secs),
                })
            }
        };
        let webhook = config.webhook.as_ref().map(|w| Webhook {
            client: shared_client().clone(),
            url: w.url.clone(),
            secret: w.secret.clone(),
            keyword: w.keyword.clone(),
        });
        Ok(Deliverer { smtp, webhook })
    }

    /// Whether no channel is configured (the worker has nothing to do).
    pub fn is_empty(&self) -> bool {
        self.smtp.is_none() && self.webhook.is_none()
    }

    /// One step at time `now_ms`: claims one due message of a channel configured here, sends
    /// it and records the outcome (sent, due again after [`backoff_ms`], or given up).
    pub async fn deliver_once(&self, db: &Db, now_ms: i64) -> Result<Step, RepoError> {
        let token = claim_token();
        let Some(m) = outbox::claim(
            db,
            self.smtp.is_some(),
            self.webhook.is_some(),
            now_ms,
            LEASE_MS,
            &token,
        )
        .await?
        else {
            return Ok(Step::Idle);
        };
        match self.send(&m).await {
            Ok(()) => {
                outbox::sent(db, m.id, &token, now_ms).await?;
                tracing::info!(
                    notification = m.id,
                    channel = %m.channel,
                    attempts = m.attempts,
                    "notification sent"
                );
                Ok(Step::Sent { id: m.id })
            }
            Err(e) => {
                let why = e.to_string();
                let retry_at = backoff_ms(m.attempts)
                    .map(|wait| now_ms + wait)
                    .filter(|at| *at - m.created_ms <= GIVE_UP_AFTER_MS);
                outbox::failed(db, m.id, &token, retry_at, &why).await?;
                // A server's answer may quote the address; the log does not repeat it.
                let why = if m.recipient.is_empty() {
                    why
                } else {
                    why.replace(&m.recipient, "<recipient>")
                };
                match retry_at {
                    Some(retry_at_ms) => {
                        tracing::warn!(
                            notification = m.id,
                            channel = %m.channel,
                            attempts = m.attempts,
                            retry_in_ms = retry_at_ms - now_ms,
                            %why,
                            "notification not delivered; retrying"
                        );
                        Ok(Step::Retry {
                            id: m.id,
                            retry_at_ms,
                            why,
                        })
                    }
                    None => {
                        tracing::error!(
                            notification = m.id,
                            channel = %m.channel,
                            attempts = m.attempts,
                            %why,
                            "notification given up after its last attempt"
                        );
                        Ok(Step::GaveUp { id: m.id, why })
                    }
                }
            }
        }
    }

    async fn send(&self, m: &Claimed) -> Result<(), NotifyError> {
        match m.channel.as_str() {
            "email" => {
                let smtp = self
                    .smtp
                    .as_ref()
                    .ok_or_else(|| NotifyError::NoChannel("email".into()))?;
                smtp.send(m).await
            }
            "webhook" => {
                let hook = self
                    .webhook
                    .as_ref()
                    .ok_or_else(|| NotifyError::NoChannel("webhook".into()))?;
                hook.send(m, chrono::Utc::now().timestamp_millis()).await
            }
            other => Err(NotifyError::NoChannel(other.to_string())),
        }
    }
}

impl Smtp {
    async fn send(&self, m: &Claimed) -> Result<(), NotifyError> {
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|e| NotifyError::Message(format!("recipient: {e}")))?;
        // Base64 keeps the Chinese text intact through any relay.
        let body = Body::new_with_encoding(m.body.clone(), ContentTransferEncoding::Base64)
            .map_err(|_| NotifyError::Message("body cannot be encoded".into()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| NotifyError::Message(e.to_string()))?;
        // lettre bounds only the connect: a server that stops answering mid-conversation is
        // bounded here, as a whole.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(sent) => sent
                .map(|_| ())
                .map_err(|e| NotifyError::Smtp(e.to_string())),
            Err(_) => Err(NotifyError::Smtp(format!(
                "no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }
}

/// What a robot answers: `{"errcode":0,"errmsg":"ok"}`.
#[derive(Debug, serde::Deserialize)]
struct RobotAnswer {
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: String,
}

/// DingTalk's signature: base64 of HMAC-SHA256 over `"<timestamp>\n<secret>"` keyed with the
/// secret (the caller URL-encodes it into the query).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    use base64::Engine as _;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl Webhook {
    async fn send(&self, m: &Claimed, timestamp_ms: i64) -> Result<(), NotifyError> {
        let mut content = String::new();
        if !self.keyword.is_empty() {
            content.push_str(&self.keyword);
            content.push(' ');
        }
        content.push_str(&m.subject);
        content.push('\n');
        content.push_str(&m.body);
        let body = serde_json::json!({"msgtype": "text", "text": {"content": content}});
        let mut url = reqwest::Url::parse(self.url.expose())
            .map_err(|_| NotifyError::Webhook("the URL is malformed".into()))?;
        if let Some(secret) = &self.secret {
            url.query_pairs_mut()
                .append_pair("timestamp", &timestamp_ms.to_string())
                .append_pair("sign", &dingtalk_sign(secret.expose(), timestamp_ms));
        }
        let request = self.client.post(url).json(&body);
        let response = request.send().await.map_err(|e| {
            // The cause chain (refused, certificate, timeout) without reqwest's own line,
            // which names the URL (it carries the robot's key).
            let mut why = if e.is_timeout() {
                "timed out".to_string()
            } else {
                "cannot reach it".to_string()
            };
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                why = format!("{why}: {cause}");
                source = cause.source();
            }
            NotifyError::Webhook(why)
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(NotifyError::Webhook(format!("answered {status}")));
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<RobotAnswer>(&text) {
            Ok(RobotAnswer {
                errcode: Some(code),
                errmsg,
            }) if code != 0 => Err(NotifyError::Webhook(format!(
                "errcode {code}: {}",
                errmsg.chars().take(200).collect::<String>()
            ))),
            _ => Ok(()),
        }
    }
}

/// The alarm webhook's client (system roots, ring, no redirects, 5 s timeout), built once.
fn shared_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| crate::central::alarms::webhook_client(&[]))
}

fn claim_token() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// Wakes this instance's worker (a notice was queued).
pub(super) fn wake() {
    waker().notify_one();
}

fn waker() -> &'static tokio::sync::Notify {
    static WAKE: OnceLock<tokio::sync::Notify> = OnceLock::new();
    WAKE.get_or_init(tokio::sync::Notify::new)
}

/// Delivers due messages until `stop`: steps while there is work, then sleeps until the next
/// is due (at most [`POLL`]) or a notice is queued on this instance. Returns at once when
/// `[notify]` configures no channel (or is unusable: logged).
pub async fn run(db: Db, config: NotifyConfig, stop: CancellationToken) {
    let deliverer = match Deliverer::new(&config) {
        Ok(d) if d.is_empty() => return,
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "notifications: cannot start the delivery worker");
            return;
        }
    };
    let (smtp, webhook) = (deliverer.smtp.is_some(), deliverer.webhook.is_some());
    loop {
        if stop.is_cancelled() {
            return;
        }
        let wait = match deliverer.deliver_once(&db, now_ms()).await {
            Ok(Step::Idle) => match outbox::next_due(&db, smtp, webhook).await {
                // Due already but not claimable: another instance holds it.
                Ok(Some(due)) if due <= now_ms() => Duration::from_secs(1),
                Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(20, 5_000) as u64),
                Ok(None) => POLL,
                Err(e) => {
                    tracing::error!(error = %e, "notifications: cannot read the outbox");
                    POLL
                }
            },
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "notifications: cannot claim or record");
                POLL
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait.min(POLL)) => {}
            _ = waker().notified() => {}
        }
    }
}
