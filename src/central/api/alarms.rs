//! `/api/v1/alarms`: the booth's one-button alarm (一键报警) and its withdrawal as a false
//! alarm (by the guard who raised it, within the site's `alarm_withdraw_s`), the office's list,
//! acknowledgement (saying what was done) and giving up a delivery that keeps failing, and the
//! alarm webhook's
//! setting (administrators: its address and signing secret). Raising goes through
//! [`crate::central::alarms::raise`], which stores, tells the office and delivers to the
//! webhook without making the guard wait.
//!
//! What it never does: return the webhook's signing secret (only whether one is set).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::console::may_act;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath};
use crate::central::live::LiveMessage;
use crate::central::repo::alarms::{self, Alarm};
use crate::central::repo::settings;
use crate::central::state::AppState;
use crate::i18n::Msg;

/// An alarm raised at a booth.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmInput {
    pub gate_id: i64,
    /// Optional words from the guard.
    #[serde(default)]
    pub note: String,
}

/// The office's acknowledgement: what it did about the alarm.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckInput {
    /// `dispatched` (已派人到场), `phoned` (已电话核实), `false_alarm` (误报) or `other` (其他,
    /// with a note).
    pub action: String,
    /// What was done, in words (required with `other`; at most 200 characters).
    #[serde(default)]
    pub note: String,
}

/// The longest acknowledgement note.
const MAX_NOTE_CHARS: usize = 200;

/// The alarm webhook setting as read back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookSetting {
    /// `https://host[:port]/path` (or `http://`), or `null`: not called.
    pub url: Option<String>,
    /// Whether a signing secret is set (the secret itself is never returned).
    pub secret_set: bool,
}

/// A change of the alarm webhook setting.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// `https://host[:port]/path` (or `http://`), or `null` to disable the call.
    pub url: Option<String>,
    /// The shared secret the calls are signed with (HMAC-SHA256, at least 16 characters);
    /// absent: the stored one is kept. Required once, before a webhook is enabled.
    #[serde(default)]
    pub secret: Option<String>,
}

/// The shortest signing secret accepted.
const MIN_SECRET_CHARS: usize = 16;

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
    let alarm = crate::central::alarms::raise(
        &state.db,
        &state.live,
        &authed.actor(),
        input.gate_id,
        crate::central::alarms::MANUAL,
        &note,
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(alarm)))
}

/// The latest alarms, unacknowledged first.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "alarms",
    responses((status = 200, body = Vec<Alarm>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<Alarm>>> {
    Ok(ApiJson(alarms::recent(&state.db, 50).await?))
}

/// The office acknowledges an alarm, saying what it did (audited). An alarm already
/// acknowledged or withdrawn is refused (409) with who did it.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/acknowledge", tag = "alarms", params(("id" = i64, Path)),
    request_body = AckInput,
    responses((status = 200, body = Alarm), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn acknowledge(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<AckInput>,
) -> ApiResult<ApiJson<Alarm>> {
    let action = input.action.trim();
    let note = input.note.trim();
    let mut f = Fields::new();
    if !alarms::ACK_ACTIONS
        .iter()
        .any(|(code, _, _)| *code == action)
    {
        f.add(
            "action",
            "unknown_action",
            Msg::new(
                "请选择处置情况：已派人到场、已电话核实、误报或其他",
                "Choose what was done: sent someone, checked by phone, false alarm or other",
            ),
        );
    } else if action == "other" && note.is_empty() {
        f.add(
            "note",
            "note_required",
            Msg::new(
                "选择“其他”时请写明处置情况",
                "With “other”, say what was done",
            ),
        );
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        f.add(
            "note",
            "too_long",
            Msg::new(
                format!("处置说明最多 {MAX_NOTE_CHARS} 个字"),
                format!("The note takes at most {MAX_NOTE_CHARS} characters"),
            ),
        );
    }
    f.finish()?;
    if !alarms::acknowledge(&state.db, &authed.actor(), id, action, note).await? {
        return Err(already_closed(&state, &alarms::get(&state.db, id).await?).await);
    }
    let alarm = alarms::get(&state.db, id).await?;
    state.live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
    Ok(ApiJson(alarm))
}

/// The 409 for an alarm that is no longer open: who acknowledged or withdrew it, and when.
async fn already_closed(state: &AppState, alarm: &Alarm) -> ApiError {
    let names = crate::central::names::Names::load(&state.db)
        .await
        .unwrap_or_default();
    let when = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&state.site_tz)
            .format("%m-%d %H:%M:%S")
            .to_string()
    };
    if let Some(at) = alarm.withdrawn_at {
        let who = names.of(alarm.withdrawn_by.as_deref().unwrap_or("?"));
        return ApiError::Conflict(Msg::new(
            format!("该报警已于 {} 由 {who} 撤销（误报）", when(at)),
            format!("{who} withdrew this alarm as false at {}", when(at)),
        ));
    }
    if let Some(at) = alarm.acknowledged_at {
        let who = names.of(alarm.acknowledged_by.as_deref().unwrap_or("?"));
        return ApiError::Conflict(Msg::new(
            format!("该报警已于 {} 由 {who} 确认", when(at)),
            format!("{who} acknowledged this alarm at {}", when(at)),
        ));
    }
    ApiError::Conflict(Msg::new(
        "该报警已处理",
        "This alarm was already dealt with",
    ))
}

/// Withdraws a booth alarm as false (误报), audited: by the operator who raised it, or by the
/// office, within the site setting `alarm_withdraw_s` of raising it. A delivery to the police
/// link still being retried stops. Refused (409) after the window, or once acknowledged.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/withdraw", tag = "alarms", params(("id" = i64, Path)),
    responses((status = 200, body = Alarm), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn withdraw(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Alarm>> {
    let alarm = alarms::get(&state.db, id).await?;
    let office = authed.has(Role::Admin) || authed.has(Role::Security);
    if !office && alarm.raised_by_id != Some(authed.operator_id) {
        return Err(ApiError::Forbidden);
    }
    if alarm.kind != crate::central::alarms::MANUAL {
        return Err(ApiError::Conflict(Msg::new(
            "只有岗亭的一键报警可以撤销；系统报警请在保卫处确认处置",
            "Only a booth alarm can be withdrawn; acknowledge a system alarm at the security office",
        )));
    }
    if !alarm.is_open() {
        return Err(already_closed(&state, &alarm).await);
    }
    let window_s = i64::from(settings::load(&state.db).await?.alarm_withdraw_s);
    let age_s = (crate::central::db::now_ms() - alarm.raised_at.timestamp_millis()) / 1000;
    if age_s > window_s {
        return Err(ApiError::Conflict(Msg::new(
            format!(
                "报警只能在 {window_s} 秒内撤销（已过去 {age_s} 秒）；如系误报，请联系保卫处确认为误报"
            ),
            format!(
                "An alarm can be withdrawn only within {window_s} s of raising it ({age_s} s have \
                 passed); if it was false, ask the security office to acknowledge it as a false alarm"
            ),
        )));
    }
    if !alarms::withdraw(&state.db, &authed.actor(), id).await? {
        return Err(already_closed(&state, &alarms::get(&state.db, id).await?).await);
    }
    let alarm = alarms::get(&state.db, id).await?;
    state.live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
    Ok(ApiJson(alarm))
}

/// The office stops retrying an alarm's delivery to the webhook (audited).
#[utoipa::path(post, path = "/api/v1/alarms/{id}/give-up", tag = "alarms", params(("id" = i64, Path)),
    responses((status = 200, body = Alarm), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn give_up(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Alarm>> {
    if !alarms::give_up(&state.db, &authed.actor(), id).await? {
        return Err(ApiError::Conflict(Msg::new(
            "该报警没有正在重试的报警联动",
            "This alarm has no delivery being retried",
        )));
    }
    let alarm = alarms::get(&state.db, id).await?;
    state.live.publish(LiveMessage::Alarm {
        gate_id: alarm.gate_id,
        alarm_id: alarm.id,
    });
    Ok(ApiJson(alarm))
}

/// The alarm webhook (administrators); the signing secret is never returned.
#[utoipa::path(get, path = "/api/v1/alarms/webhook", tag = "alarms",
    responses((status = 200, body = WebhookSetting), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_webhook(State(state): State<AppState>) -> ApiResult<ApiJson<WebhookSetting>> {
    Ok(ApiJson(WebhookSetting {
        url: alarms::webhook(&state.db).await?,
        secret_set: alarms::webhook_secret_set(&state.db).await?,
    }))
}

/// Set or disable the alarm webhook (administrators): an `http://` or `https://` address and
/// the shared secret its calls are signed with.
#[utoipa::path(put, path = "/api/v1/alarms/webhook", tag = "alarms", request_body = WebhookInput,
    responses((status = 200, body = WebhookSetting), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_webhook(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<WebhookInput>,
) -> ApiResult<ApiJson<WebhookSetting>> {
    let url = input
        .url
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    let mut f = Fields::new();
    if let Some(u) = &url {
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
    }
    match &input.secret {
        Some(secret) if secret.chars().count() < MIN_SECRET_CHARS => f.add(
            "secret",
            "secret_too_short",
            Msg::new(
                format!("签名密钥至少 {MIN_SECRET_CHARS} 个字符"),
                format!("The signing secret needs at least {MIN_SECRET_CHARS} characters"),
            ),
        ),
        None if url.is_some() && !alarms::webhook_secret_set(&state.db).await? => f.add(
            "secret",
            "secret_required",
            Msg::new(
                "请同时设置签名密钥（报警联动的每次调用都要签名）",
                "Set a signing secret too (every call to the police link is signed)",
            ),
        ),
        _ => {}
    }
    f.finish()?;
    if let Some(secret) = &input.secret {
        alarms::set_webhook_secret(&state.db, &authed.actor(), secret).await?;
    }
    alarms::set_webhook(&state.db, &authed.actor(), url.as_deref()).await?;
    Ok(ApiJson(WebhookSetting {
        url,
        secret_set: alarms::webhook_secret_set(&state.db).await?,
    }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(raise, list))
        .routes(routes!(acknowledge))
        .routes(routes!(withdraw))
        .routes(routes!(give_up))
        .routes(routes!(get_webhook, set_webhook))
}
