//! `/api/v1/alarms`: the booth's one-button alarm (一键报警). Raising one stores it, tells the
//! security office's live page at once ([`LiveMessage::Alarm`]) and calls the alarm webhook
//! (the police link), off the request path, recording whether the call succeeded. The office
//! acknowledges alarms; administrators set the webhook.
//!
//! What it never does: wait for the webhook before answering the guard, or log the webhook's
//! URL (it may carry a key).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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
    /// `http://host[:port]/path`, or `null` to disable the call.
    pub url: Option<String>,
}

/// What the webhook receives (JSON, POST).
#[derive(Debug, Clone, Serialize)]
struct WebhookCall<'a> {
    event: &'static str,
    alarm: &'a Alarm,
}

/// POSTs the alarm to the webhook; `Err` with a short reason when it did not answer 2xx.
pub async fn call_webhook(url: &str, alarm: &Alarm) -> Result<(), String> {
    let body = serde_json::to_vec(&WebhookCall {
        event: "alarm",
        alarm,
    })
    .map_err(|e| e.to_string())?;
    let request = axum::http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(WEBHOOK_TIMEOUT, client.request(request))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let _ = response.into_body().collect().await;
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

/// Set or disable the alarm webhook (administrators). Plain `http://` for now: HTTPS links
/// come with the rustls stack of the sync work.
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
            uri.scheme_str() == Some("http") && uri.host().is_some_and(|h| !h.is_empty())
        });
        if !ok {
            f.add(
                "url",
                "invalid_url",
                Msg::new(
                    "请填写 http:// 开头的完整地址（暂不支持 https）",
                    "Enter a full http:// address (https is not supported yet)",
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
