//! Alarms as a service: every alarm — the booth's button or one the system raises (a journal
//! that cannot write, a fire input, an event conflict, a lost device, a gate clock off) — is
//! stored with its kind, told to the office's live pages at once ([`LiveMessage::Alarm`]) and,
//! for the kinds the police are called for ([`calls_police`]), delivered to the alarm webhook
//! (the police link) until it answers 2xx or an operator gives up.
//!
//! **Delivery you can trust.** The delivery queue is the `alarms` table (see
//! [`crate::central::repo::alarms`]): [`raise`] stores the alarm `pending` and makes a first
//! attempt at once off the caller's path; [`run_deliveries`] (one per central instance) retries
//! with exponential backoff ([`backoff_ms`]: 2 s doubling to 60 s) until the webhook answers
//! 2xx or an operator gives up. Each attempt is claimed atomically in the database, so two
//! instances never both deliver; a restart forgets nothing. Delivery is at least once: a
//! receiver that answered too late to be heard may see an alarm twice and tells them apart by
//! `alarm.id`.
//!
//! **Signed.** With a shared secret set by the administrator, each call carries
//! `X-Gatehouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, signed
//! at the moment of the call, so the receiver can check both origin and freshness.
//!
//! **System alarms.** [`from_health`], [`from_events`], [`from_decisions`] (a tag/plate
//! mismatch, a cloned tag) and [`from_lane_faults`] (tailgating) turn what gates report into alarms, one per episode of a condition
//! however many reports show it and however many instances receive them (the episode is
//! opened by a compare-and-set in the database).
//!
//! The webhook may be `http://` or `https://` (the police link usually is HTTPS): the client is
//! reqwest over rustls with the ring provider, verifying the server against the system's root
//! certificates (Debian's `ca-certificates`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), with
//! certificate and host name checks always on.
//!
//! What it never does: make the caller wait for the webhook, log or audit the webhook's URL
//! (it may carry a key) or its secret, or accept a certificate the roots do not vouch for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::central::db::{Actor, Db, RepoError, now_ms};
use crate::central::live::{LiveHub, LiveMessage};
use crate::central::repo::alarms::{self, Alarm, WebhookTarget};
use crate::domain::ReasonCode;
use crate::wire::journal::{EventBody, JournalEvent};
use crate::wire::sync::HealthReport;

/// The booth's one-button alarm (一键报警).
pub const MANUAL: &str = "manual";
/// A gate's fire-alarm input went active (消防联动).
pub const FIRE: &str = "fire";
/// A gate's journal cannot write (disk full, read-only): passages are not being recorded.
pub const JOURNAL_FAILURE: &str = "journal_failure";
/// A gate's clock is more than 5 s off the centre's (GB 50396).
pub const CLOCK_OFFSET: &str = "clock_offset";
/// A lane's reader or I/O module is offline.
pub const DEVICE_OFFLINE: &str = "device_offline";
/// A gate uploaded an event that contradicts the one stored under its sequence number.
pub const EVENT_CONFLICT: &str = "event_conflict";
/// A tag read whose vehicle's registered plate is not the plate the camera read with it
/// (`denied_plate_mismatch`, or granted with the `plate_mismatch` flag): a cloned or moved tag.
pub const PLATE_MISMATCH: &str = "plate_mismatch";
/// A tag bound to a factory TID read with another TID (`denied_tag_tid_mismatch`): a cloned tag.
pub const CLONED_TAG: &str = "cloned_tag";
/// A vehicle passed a lane without a grant (the gate's `unauthorized_passage` lane fault):
/// tailgating under a raised arm, or under an arm held up for safety (尾随/未授权通过). The
/// alarm's note is the lane's key.
pub const TAILGATING: &str = "tailgating";

/// Whether alarms of `kind` call the police link: the booth's button and a fire input, which
/// need people on the spot now. Technical faults (journal, clock, devices, event conflicts) are
/// the office's and maintenance's to handle: sending them to the police would bury the alarms
/// that matter and teach the receiver to ignore the link.
pub fn calls_police(kind: &str) -> bool {
    matches!(kind, MANUAL | FIRE)
}

/// How long the webhook may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a claimed delivery is held by the instance that claimed it: well above
/// `WEBHOOK_TIMEOUT`, so it runs out only for an instance that died mid-call.
pub const LEASE_MS: i64 = 30_000;

/// The first retry's delay, doubled per failed call up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 2_000;
/// The longest wait between two calls: an alarm keeps being tried at least once a minute.
pub const MAX_BACKOFF_MS: i64 = 60_000;

/// How often an idle deliverer looks for due deliveries (other instances' alarms, a lost
/// wake-up); it also wakes when an alarm is raised or answered on this instance.
const POLL: Duration = Duration::from_secs(5);

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-gatehouse-signature";

/// The wait after the `attempts`-th failed call: 2 s, 4 s, 8 s, … up to 60 s.
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = attempts.clamp(1, 16) - 1;
    (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS)
}

/// Raises an alarm of `kind` at `gate_id`: stores it (with its audit entry), tells the office's
/// live pages, and starts its delivery to the webhook when one is configured and the kind calls
/// the police, without waiting for it.
pub async fn raise(
    db: &Db,
    live: &LiveHub,
    actor: &Actor,
    gate_id: i64,
    kind: &str,
    note: &str,
) -> Result<Alarm, RepoError> {
    let status = delivery_status(db, kind).await?;
    let alarm = alarms::raise(db, actor, gate_id, kind, note, status).await?;
    raised(db, live, &alarm);
    Ok(alarm)
}

/// `pending` when the alarm is for the police link and one is configured, else `none`.
async fn delivery_status(db: &Db, kind: &str) -> Result<&'static str, RepoError> {
    Ok(
        if calls_police(kind) && alarms::webhook_target(db).await?.is_some() {
            "pending"
        } else {
            "none"
        },
    )
}

/// Tells the office about a new alarm and makes its first delivery attempt off the caller's
/// path (a failure is retried by [`run_deliveries`]).
fn raised(db: &Db, live: &LiveHub, alarm: &Alarm) {
    tracing::warn!(alarm = alarm.id, gate = alarm.gate_id, kind = %alarm.kind, by = %alarm.raised_by, "alarm raised");
    announce(live, alarm);
    if alarm.webhook_status == "pending" {
        let (db, live, id) = (db.clone(), live.clone(), alarm.id);
        tokio::spawn(async move {
            if let Err(e) = attempt(&db, &live, shared_client(), Some(id), now_ms()).await {
                tracing::error!(alarm = id, error = %e, "alarm delivery: cannot record the attempt");
            }
        });
    }
}

fn announce(live: &LiveHub, alarm: &Alarm) {
    live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
}

/// What one delivery step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The webhook answered 2xx.
    Sent { alarm_id: i64 },
    /// The call failed; it is due again at `retry_at_ms`.
    Failed {
        alarm_id: i64,
        retry_at_ms: i64,
        why: String,
    },
    /// Nothing is due (or no webhook is configured, or another instance holds the due ones).
    Idle,
}

/// One delivery step at time `now_ms`: claims one due alarm, calls the webhook with `client`
/// and records the outcome. Tests call it with chosen times instead of sleeping.
pub async fn deliver_once(
    db: &Db,
    live: &LiveHub,
    client: &reqwest::Client,
    now_ms: i64,
) -> Result<Delivery, RepoError> {
    attempt(db, live, client, None, now_ms).await
}

async fn attempt(
    db: &Db,
    live: &LiveHub,
    client: &reqwest::Client,
    only: Option<i64>,
    now: i64,
) -> Result<Delivery, RepoError> {
    // No webhook (any more): pending alarms wait for one, or for an operator to give up.
    let Some(target) = alarms::webhook_target(db).await? else {
        return Ok(Delivery::Idle);
    };
    let token = claim_token();
    let Some(alarm) = alarms::claim(db, only, now, LEASE_MS, &token).await? else {
        return Ok(Delivery::Idle);
    };
    let outcome = call_webhook_with(client, &target, &alarm, chrono::Utc::now().timestamp()).await;
    let step = match outcome {
        Ok(()) => {
            alarms::delivered(db, alarm.id, &token, crate::central::db::now_ms()).await?;
            tracing::info!(
                alarm = alarm.id,
                attempts = alarm.delivery_attempts,
                "alarm delivered to the webhook"
            );
            Delivery::Sent { alarm_id: alarm.id }
        }
        Err(e) => {
            let why = e.to_string();
            let retry_at_ms = now + backoff_ms(alarm.delivery_attempts);
            alarms::retry_later(db, alarm.id, &token, retry_at_ms, &why).await?;
            tracing::error!(
                alarm = alarm.id,
                attempts = alarm.delivery_attempts,
                retry_in_ms = retry_at_ms - now,
                %why,
                "alarm webhook call failed; retrying"
            );
            Delivery::Failed {
                alarm_id: alarm.id,
                retry_at_ms,
                why,
            }
        }
    };
    announce(live, &alarm);
    Ok(step)
}

/// A claim token no other attempt shares.
fn claim_token() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// Delivers due alarms until `stop`: steps while there is work, then sleeps until the next is
/// due (at most `POLL`) or an alarm is raised or answered on this instance.
///
/// It also relays to this instance's live pages the alarms other instances raised (a gate's
/// report reaches one instance; the office's browser may be on another), within
/// [`RELAY_EVERY`].
pub async fn run_deliveries(db: Db, live: LiveHub, stop: CancellationToken) {
    let mut rx = live.subscribe();
    let client = shared_client();
    let mut relay = Relay::default();
    loop {
        if let Err(e) = relay.round(&db, &live).await {
            tracing::error!(error = %e, "alarm relay: cannot read new alarms");
        }
        let wait = match attempt(&db, &live, client, None, now_ms()).await {
            Ok(Delivery::Idle) => match alarms::next_due(&db).await {
                // Without a webhook, due alarms wait for one (or for an operator to give
                // up): look again at the poll interval, not at once.
                Ok(Some(_)) if matches!(alarms::webhook_target(&db).await, Ok(None)) => POLL,
                Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(20, 5_000) as u64),
                Ok(None) => POLL,
                Err(e) => {
                    tracing::error!(error = %e, "alarm delivery: cannot read the queue");
                    POLL
                }
            },
            Ok(_) => continue,
            Err(e) => {
                tracing::error!(error = %e, "alarm delivery: cannot claim or record");
                POLL
            }
        };
        let woken = async {
            loop {
                match rx.recv().await {
                    Ok(m) if matches!(*m, LiveMessage::Alarm { .. }) => return,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait.min(RELAY_EVERY)) => {}
            _ = woken => {}
        }
    }
}

/// How often the alarms other instances raised are relayed to this instance's live pages.
pub const RELAY_EVERY: Duration = Duration::from_secs(1);

/// The newest alarms this instance's live pages were told of.
#[derive(Debug, Default)]
struct Relay {
    head: Option<i64>,
    /// The ids relayed within [`RELAY_LOOKBACK`] of `head`: on PostgreSQL an alarm may commit
    /// after one with a higher id, so each round looks that far back and skips these.
    relayed: std::collections::BTreeSet<i64>,
}

/// How far below the newest relayed id a round looks for late commits.
const RELAY_LOOKBACK: i64 = 64;

impl Relay {
    /// Publishes the alarms stored since the last round (the first round only takes note).
    async fn round(&mut self, db: &Db, live: &LiveHub) -> Result<(), RepoError> {
        let Some(head) = self.head else {
            let newest = alarms::newest_id(db).await?;
            self.head = Some(newest);
            self.relayed
                .extend((newest - RELAY_LOOKBACK).max(1)..=newest);
            return Ok(());
        };
        for (id, gate_id) in alarms::since(db, head - RELAY_LOOKBACK).await? {
            if !self.relayed.insert(id) {
                continue;
            }
            live.publish(LiveMessage::Alarm {
                gate_id,
                alarm_id: id,
            });
            self.head = Some(self.head.unwrap_or(0).max(id));
        }
        let floor = self.head.unwrap_or(0) - RELAY_LOOKBACK;
        self.relayed = self.relayed.split_off(&floor);
        Ok(())
    }
}

/// The production client (system roots), built once.
fn shared_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| webhook_client(&[]))
}

/// What the webhook receives (JSON, POST).
#[derive(Debug, Clone, Serialize)]
struct WebhookCall<'a> {
    event: &'static str,
    alarm: WebhookAlarm<'a>,
}

/// The alarm as the police link sees it (no delivery bookkeeping).
#[derive(Debug, Clone, Serialize)]
struct WebhookAlarm<'a> {
    id: i64,
    gate_id: i64,
    gate_name: &'a str,
    kind: &'a str,
    raised_by: &'a str,
    raised_at: chrono::DateTime<chrono::Utc>,
    note: &'a str,
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256 over "<timestamp>.<body>" with secret>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The webhook's HTTP client: plain HTTP, or HTTPS verified against the system's root
/// certificates plus `extra_roots` (a site's own CA, or a test's).
pub fn webhook_client(extra_roots: &[CertificateDer<'static>]) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "alarm webhook: a system root certificate could not be read");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(
            "alarm webhook: no system root certificates (install ca-certificates): https:// calls will fail"
        );
    }
    for root in extra_roots {
        if let Err(e) = roots.add(root.clone()) {
            tracing::warn!(error = %e, "alarm webhook: an extra root certificate is unusable");
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client with a preconfigured rustls configuration builds")
}

/// Why the webhook did not take an alarm; its text is the short reason kept with the alarm's
/// delivery (never the URL, which may carry a key).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No answer: timed out or could not reach it, with the cause chain (refused, certificate).
    #[error("{0}")]
    Unreachable(String),
    /// An answer that is not 2xx.
    #[error("answered {0}")]
    Refused(reqwest::StatusCode),
}

/// POSTs the alarm to the webhook with the system's roots; `Err` with a short reason when it
/// did not answer 2xx.
pub async fn call_webhook(target: &WebhookTarget, alarm: &Alarm) -> Result<(), WebhookError> {
    call_webhook_with(
        shared_client(),
        target,
        alarm,
        chrono::Utc::now().timestamp(),
    )
    .await
}

/// POSTs the alarm to the webhook with `client` (see [`webhook_client`]), signed at
/// `timestamp` (unix seconds) when the target has a secret.
pub async fn call_webhook_with(
    client: &reqwest::Client,
    target: &WebhookTarget,
    alarm: &Alarm,
    timestamp: i64,
) -> Result<(), WebhookError> {
    let body = serde_json::to_vec(&WebhookCall {
        event: "alarm",
        alarm: WebhookAlarm {
            id: alarm.id,
            gate_id: alarm.gate_id,
            gate_name: &alarm.gate_name,
            kind: &alarm.kind,
            raised_by: &alarm.raised_by,
            raised_at: alarm.raised_at,
            note: &alarm.note,
        },
    })
    .expect("an alarm serialises");
    let mut request = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if !target.secret.is_empty() {
        request = request.header(
            SIGNATURE_HEADER,
            signature(&target.secret, timestamp, &body),
        );
    }
    let response = request.body(body).send().await.map_err(|e| {
        // The error's chain names the cause (refused, certificate, timeout); its URL part
        // is dropped, since the URL may carry a key.
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
        WebhookError::Unreachable(why)
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(WebhookError::Refused(status))
    }
}

/// Raises (once per episode) the alarms a gate's health report shows: its journal cannot
/// write, its clock is off by more than 5 s (cleared below 2.5 s, so an offset hovering at the
/// limit does not raise one alarm per report), a lane's reader or I/O module is offline; and
/// clears the episodes the report shows over. One read of the gate's open episodes per report;
/// writes only on a change.
pub async fn from_health(
    db: &Db,
    live: &LiveHub,
    gate_id: i64,
    report: &HealthReport,
    clock_offset_ms: i64,
) -> Result<(), RepoError> {
    use crate::central::repo::sync::CLOCK_WARNING_MS;
    // (kind, subject, condition: Some(true) on, Some(false) over, None: unchanged, note)
    let mut checks: Vec<(&str, String, Option<bool>, String)> = Vec::new();
    checks.push((
        JOURNAL_FAILURE,
        String::new(),
        Some(report.journal.write_failing),
        format!("write failures: {}", report.journal.write_failures),
    ));
    let off = clock_offset_ms.abs();
    checks.push((
        CLOCK_OFFSET,
        String::new(),
        if off > CLOCK_WARNING_MS {
            Some(true)
        } else if off <= CLOCK_WARNING_MS / 2 {
            Some(false)
        } else {
            None
        },
        format!("{:+.1} s", clock_offset_ms as f64 / 1000.0),
    ));
    let mut devices = Vec::new();
    for lane in &report.lanes {
        for (device, online) in [("reader", lane.reader_online), ("io", lane.io_online)] {
            let subject = format!("{}/{device}", lane.lane);
            devices.push(subject.clone());
            checks.push((
                DEVICE_OFFLINE,
                subject,
                Some(!online),
                format!("{} · {device}", lane.lane),
            ));
        }
        // A silent plate camera is a device fault like a reader.
        for camera in &lane.cameras {
            let subject = format!("{}/camera:{}", lane.lane, camera.name);
            devices.push(subject.clone());
            checks.push((
                DEVICE_OFFLINE,
                subject,
                Some(!camera.online),
                format!("{} · camera {}", lane.lane, camera.name),
            ));
        }
    }
    let open = alarms::open_subjects_of_gate(db, gate_id).await?;
    // A lane the gate no longer reports has no device to be offline.
    for (kind, subject) in &open {
        if kind == DEVICE_OFFLINE && !devices.contains(subject) {
            checks.push((DEVICE_OFFLINE, subject.clone(), Some(false), String::new()));
        }
    }
    for (kind, subject, on, note) in checks {
        let is_open = open.iter().any(|(k, s)| k == kind && *s == subject);
        match on {
            Some(true) if !is_open => {
                let status = delivery_status(db, kind).await?;
                if let Some(alarm) =
                    alarms::open_episode(db, gate_id, kind, &subject, 0, &note, status).await?
                {
                    raised(db, live, &alarm);
                }
            }
            Some(false) if is_open => {
                if let Some(id) = alarms::close_episode(db, gate_id, kind, &subject, 0).await? {
                    tracing::info!(alarm = id, gate = gate_id, kind, "alarm condition over");
                    live.publish(LiveMessage::Alarm {
                        gate_id,
                        alarm_id: id,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Raises a fire alarm (once per episode, at the gate) for a lane's fire input going active in
/// `events` and clears it when an input clears. Idempotent: an upload tried again after a
/// failure raises nothing twice (an episode remembers the last event sequence it saw).
pub async fn from_events(
    db: &Db,
    live: &LiveHub,
    gate_id: i64,
    events: &[JournalEvent],
) -> Result<(), RepoError> {
    let mut fire: Vec<&JournalEvent> = events
        .iter()
        .filter(|e| {
            matches!(&e.body, EventBody::LaneFault { fault, .. }
                if fault == "fire_alarm" || fault == "fire_alarm_cleared")
        })
        .collect();
    fire.sort_by_key(|e| e.seq);
    for e in fire {
        let EventBody::LaneFault { fault, .. } = &e.body else {
            continue;
        };
        let seq = e.seq as i64;
        if fault == "fire_alarm" {
            let status = delivery_status(db, FIRE).await?;
            if let Some(alarm) =
                alarms::open_episode(db, gate_id, FIRE, "", seq, &e.lane, status).await?
            {
                raised(db, live, &alarm);
            }
        } else if let Some(id) = alarms::close_episode(db, gate_id, FIRE, "", seq).await? {
            live.publish(LiveMessage::Alarm {
                gate_id,
                alarm_id: id,
            });
        }
    }
    Ok(())
}

/// The alarms the office sees for suspicious credentials in a gate's uploaded decisions (of its
/// journal `journal_no`): a tag/plate mismatch ([`PLATE_MISMATCH`]: the reason
/// `denied_plate_mismatch`, or a grant flagged `plate_mismatch`) and a cloned tag
/// ([`CLONED_TAG`]: `denied_tag_tid_mismatch`). One alarm per decision, however often the
/// upload is sent and however many instances receive it (an episode per event, opened once).
pub async fn from_decisions(
    db: &Db,
    live: &LiveHub,
    gate_id: i64,
    journal_no: i64,
    events: &[JournalEvent],
) -> Result<(), RepoError> {
    for e in events {
        let EventBody::Decision(d) = &e.body else {
            continue;
        };
        let mismatch = d.reason == ReasonCode::DeniedPlateMismatch
            || d.flags.iter().any(|f| f == "plate_mismatch");
        let cloned = d.reason == ReasonCode::DeniedTagTidMismatch;
        if !mismatch && !cloned {
            continue;
        }
        let tag = d.epc.as_deref().unwrap_or("-");
        let registered = d.plate.as_deref().unwrap_or("-");
        let read = d.camera.as_ref().map_or("-", |c| c.raw_plate.as_str());
        let (kind, note) = if mismatch {
            (
                PLATE_MISMATCH,
                format!(
                    "标签与车牌不符（疑似套用或挪用标签）：车道 {lane}，标签 {tag}，登记车牌 \
                     {registered}，摄像机读到 {read}{granted_zh} / tag/plate mismatch (suspected \
                     cloned or moved tag): lane {lane}, tag {tag}, registered plate {registered}, \
                     camera read {read}{granted_en}",
                    lane = e.lane,
                    granted_zh = if d.granted {
                        "（已放行并标记）"
                    } else {
                        "（已拒绝）"
                    },
                    granted_en = if d.granted {
                        " (let in, flagged)"
                    } else {
                        " (denied)"
                    },
                ),
            )
        } else {
            (
                CLONED_TAG,
                format!(
                    "疑似克隆标签：车道 {lane}，标签 {tag} 的 TID {tid} 与绑定的不符（已拒绝）/ \
                     suspected cloned tag: lane {lane}, tag {tag} read with TID {tid}, not the \
                     one it is bound to (denied)",
                    lane = e.lane,
                    tid = d.tid.as_deref().unwrap_or("-"),
                ),
            )
        };
        let subject = format!("{journal_no}:{}", e.seq);
        let status = delivery_status(db, kind).await?;
        if let Some(alarm) =
            alarms::open_episode(db, gate_id, kind, &subject, e.seq as i64, &note, status).await?
        {
            raised(db, live, &alarm);
        }
    }
    Ok(())
}

/// The office's alarm for each vehicle that passed a lane without a grant in `events` (the
/// lane fault `unauthorized_passage`: tailgating, [`TAILGATING`]), uploaded from journal
/// `journal_no`: one alarm per event, however often the upload is sent and however many
/// instances receive it (an episode per event, opened once). The note is the lane's key.
pub async fn from_lane_faults(
    db: &Db,
    live: &LiveHub,
    gate_id: i64,
    journal_no: i64,
    events: &[JournalEvent],
) -> Result<(), RepoError> {
    for e in events {
        if !matches!(&e.body, EventBody::LaneFault { fault, .. } if fault == "unauthorized_passage")
        {
            continue;
        }
        let subject = format!("{journal_no}:{}", e.seq);
        let status = delivery_status(db, TAILGATING).await?;
        if let Some(alarm) = alarms::open_episode(
            db,
            gate_id,
            TAILGATING,
            &subject,
            e.seq as i64,
            &e.lane,
            status,
        )
        .await?
        {
            raised(db, live, &alarm);
        }
    }
    Ok(())
}
