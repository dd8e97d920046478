//! `/api/v1/alarms`: the booth's one-button alarm (一键报警). Raising one stores it, tells the
//! security office's live page at once ([`LiveMessage::Alarm`]) and calls the alarm webhook
//! (the police link), off the request path, recording whether the call succeeded. The office
//! acknowledges alarms; administrators set the webhook.
//!
//! The webhook may be `http://` or `https://` (the police link usually is HTTPS): the client is
//! reqwest over rustls with the ring provider, verifying the server against the system's root
//! certificates (Debian's `ca-certificates`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), with
//! certificate and host name checks always on.
//!
//! What it never does: wait for the webhook before answering the guard, log the webhook's URL
//! (it may carry a key), or accept a certificate the roots do not vouch for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Authed, Role};
use super::console::may_act;
use super::error::{ApiResult, ErrorBody, Fields, Msg};
use super::extract::ApiJson;
use crate::central::live::LiveMessage;
use crate::central::repo::alarms::{self, Alarm};

/// How long the webhook may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// An alarm raised at a booth.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmInput {
    pub gate_id: i64,
    /// Optional words from the guard.
    #[serde(default)]
    pub note: String,
}

/// The alarm webhook setting.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSetting {
    /// `https://host[:port]/path` (or `http://`), or `null` to disable the call.
    pub url: Option<String>,
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

/// Press the alarm button at a gate.
#[utoipa::path(post, path = "/api/v1/alarms", tag = "alarms", request_body = AlarmInput,
    responses((status = 201, body = Alarm), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn raise(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<AlarmInput>,
) -> ApiResult<(StatusCode, ApiJson<Alarm>)> {
    may_act(&authed, input.gate_id)?;
    crate::central::repo::gates::get(&state.db, input.gate_id).await?;
    let note: String = input.note.trim().chars().take(200).collect();
    let webhook = alarms::webhook(&state.db).await?;
    let status = if webhook.is_some() { "pending" } else { "none" };
    let alarm = alarms::raise(&state.db, &authed.actor(), input.gate_id, &note, status).await?;
    tracing::warn!(alarm = alarm.id, gate = alarm.gate_id, by = %alarm.raised_by, "one-button alarm raised");
    state.live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
    if let Some(url) = webhook {
        let db = state.db.clone();
        let live = state.live.clone();
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
    Ok((StatusCode::CREATED, ApiJson(alarm)))
}

/// The latest alarms, unacknowledged first.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms",
    responses((status = 200, body = Vec<Alarm>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>, authed: Authed) -> ApiResult<ApiJson<Vec<Alarm>>> {
    authed.require(&[Role::Admin, Role::Security])?;
    Ok(ApiJson(alarms::recent(&state.db, 50).await?))
}

/// The office acknowledges an alarm.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/acknowledge", tag = "alarms", params(("id" = i64, Path)),
    responses((status = 200, body = Alarm), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn acknowledge(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<i64>,
) -> ApiResult<ApiJson<Alarm>> {
    authed.require(&[Role::Admin, Role::Security])?;
    alarms::acknowledge(&state.db, &authed.actor(), id).await?;
    let alarm = alarms::get(&state.db, id).await?;
    state.live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
    Ok(ApiJson(alarm))
}

/// The alarm webhook (administrators).
#[utoipa::path(get, path = "/api/v1/alarms/webhook", tag = "alarms",
    responses((status = 200, body = WebhookSetting), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_webhook(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<ApiJson<WebhookSetting>> {
    authed.require(&[Role::Admin])?;
    Ok(ApiJson(WebhookSetting {
        url: alarms::webhook(&state.db).await?,
    }))
}

/// Set or disable the alarm webhook (administrators): an `http://` or `https://` address.
#[utoipa::path(put, path = "/api/v1/alarms/webhook", tag = "alarms", request_body = WebhookSetting,
    responses((status = 200, body = WebhookSetting), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_webhook(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<WebhookSetting>,
) -> ApiResult<ApiJson<WebhookSetting>> {
    authed.require(&[Role::Admin])?;
    let url = input
        .url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    if let Some(u) = &url {
        let mut f = Fields::new();
        let ok = u.parse::<axum::http::Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some_and(|h| !h.is_empty())
        });
        if !ok {
            f.add(
                "url",
                "invalid_url",
                Msg::new(
                    "请填写 https:// 或 http:// 开头的完整地址",
                    "Enter a full https:// or http:// address",
                ),
            );
        }
        f.finish()?;
    }
    alarms::set_webhook(&state.db, &authed.actor(), url.as_deref()).await?;
    Ok(ApiJson(WebhookSetting { url }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(raise, list))
        .routes(routes!(acknowledge))
        .routes(routes!(get_webhook, set_webhook))
}
