//! Alarms as a service: every alarm — the booth's button or one the system raises (a journal
//! that cannot write, a fire input, an event conflict, a lost device) — is stored with its
//! kind, told to the office's live pages at once ([`LiveMessage::Alarm`]) and sent to the alarm
//! webhook (the police link) off the caller's path, recording the outcome.
//!
//! The webhook may be `http://` or `https://` (the police link usually is HTTPS): the client is
//! reqwest over rustls with the ring provider, verifying the server against the system's root
//! certificates (Debian's `ca-certificates`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), with
//! certificate and host name checks always on.
//!
//! What it never does: make the caller wait for the webhook, log the webhook's URL (it may
//! carry a key), or accept a certificate the roots do not vouch for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::central::db::{Actor, Db, RepoError};
use crate::central::live::{LiveHub, LiveMessage};
use crate::central::repo::alarms::{self, Alarm};

/// The booth's one-button alarm (一键报警).
pub const MANUAL: &str = "manual";

/// How long the webhook may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Raises an alarm of `kind` at `gate_id`: stores it (with its audit entry), tells the office's
/// live pages, and calls the webhook when one is configured, without waiting for it.
pub async fn raise(
    db: &Db,
    live: &LiveHub,
    actor: &Actor,
    gate_id: i64,
    kind: &str,
    note: &str,
) -> Result<Alarm, RepoError> {
    let webhook = alarms::webhook(db).await?;
    let status = if webhook.is_some() { "pending" } else { "none" };
    let alarm = alarms::raise(db, actor, gate_id, kind, note, status).await?;
    tracing::warn!(alarm = alarm.id, gate = alarm.gate_id, kind, by = %alarm.raised_by, "alarm raised");
    live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
    if let Some(url) = webhook {
        let db = db.clone();
        let live = live.clone();
        let alarm = alarm.clone();
        tokio::spawn(async move {
            let outcome = call_webhook(&url, &alarm).await;
            let status = match &outcome {
                Ok(()) => "sent",
                Err(why) => {
                    tracing::error!(alarm = alarm.id, %why, "alarm webhook call failed");
                    "failed"
                }
            };
            if let Err(e) = alarms::set_webhook_status(&db, alarm.id, status).await {
                tracing::error!(alarm = alarm.id, error = %e, "cannot record the webhook outcome");
            }
            live.publish(LiveMessage::Alarm {
                gate_id: alarm.gate_id,
                alarm_id: alarm.id,
            });
        });
    }
    Ok(alarm)
}

/// What the webhook receives (JSON, POST).
#[derive(Debug, Clone, Serialize)]
struct WebhookCall<'a> {
    event: &'static str,
    alarm: &'a Alarm,
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

/// POSTs the alarm to the webhook with the system's roots; `Err` with a short reason when it
/// did not answer 2xx.
pub async fn call_webhook(url: &str, alarm: &Alarm) -> Result<(), String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    call_webhook_with(CLIENT.get_or_init(|| webhook_client(&[])), url, alarm).await
}

/// POSTs the alarm to the webhook with `client` (see [`webhook_client`]).
pub async fn call_webhook_with(
    client: &reqwest::Client,
    url: &str,
    alarm: &Alarm,
) -> Result<(), String> {
    let response = client
        .post(url)
        .json(&WebhookCall {
            event: "alarm",
            alarm,
        })
        .send()
        .await
        .map_err(|e| {
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
            why
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}
