//! `/api/v1/blacklist`: the blacklist (黑名单). Read: admin, security, guard, viewer; write
//! (create, replace, delete, lift): admin, security.
//!
//! Also here, shared with the other list endpoints: checks of plates, colours, reasons and
//! validity windows that name each wrong field in zh-CN and English.
//! What it never does: store anything without checking every field first, or send SQL or
//! internal errors to a client.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::DateTime;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::db::now_ms;
use crate::central::repo::blacklist::{
    self, BlacklistEntryRow, BlacklistInput, BlacklistQuery, Lifted, NewBlacklistEntry, Subject,
    parse_alarm,
};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::domain::{AlarmLevel, Epc, Plate, PlateColour};
use crate::i18n::Msg;

/// Longest reason accepted, in characters.
const MAX_REASON: usize = 500;

/// A plate field: parsed and normalised, or one field error.
pub(crate) fn check_plate(field: &str, text: Option<&str>, f: &mut Fields) -> Option<Plate> {
    let Some(text) = text else {
        f.add(
            field,
            "required",
            Msg::new("车牌号必填", "The plate is required"),
        );
        return None;
    };
    match Plate::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            f.plate(field, &e);
            None
        }
    }
}

/// An optional plate colour code.
pub(crate) fn check_colour(field: &str, code: Option<&str>, f: &mut Fields) -> Option<PlateColour> {
    let code = code?;
    let colour = PlateColour::from_code(code);
    if colour.is_none() {
        f.add(
            field,
            "invalid_colour",
            Msg::new(
                format!(
                    "车牌颜色“{code}”无效，应为 blue、yellow、green、yellow_green、white 或 black"
                ),
                format!(
                    "plate colour {code:?} is not blue, yellow, green, yellow_green, white or black"
                ),
            ),
        );
    }
    colour
}

/// A required reason: trimmed, non-empty, at most 500 characters.
pub(crate) fn check_reason(field: &str, text: Option<&str>, f: &mut Fields) -> String {
    let reason = text.unwrap_or("").trim().to_string();
    if reason.is_empty() {
        f.add(
            field,
            "required",
            Msg::new("原因必填", "A reason is required"),
        );
    } else if reason.chars().count() > MAX_REASON {
        f.add(
            field,
            "too_long",
            Msg::new(
                format!("原因最多 {MAX_REASON} 个字符"),
                format!("The reason is at most {MAX_REASON} characters"),
            ),
        );
    }
    reason
}

/// An optional RFC 3339 instant, as UTC milliseconds.
pub(crate) fn check_time(field: &str, text: Option<&str>, f: &mut Fields) -> Option<i64> {
    let text = text?;
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.timestamp_millis()),
        Err(_) => {
            f.add(
                field,
                "invalid_time",
                Msg::new(
                    format!("“{text}”不是 RFC 3339 时间（例如 2026-03-01T08:00:00+08:00）"),
                    format!("{text:?} is not an RFC 3339 time (e.g. 2026-03-01T08:00:00+08:00)"),
                ),
            );
            None
        }
    }
}

/// `valid_from` (default now) and an optional `valid_until` that must come after it.
pub(crate) fn check_window(
    from: Option<&str>,
    until: Option<&str>,
    f: &mut Fields,
) -> (i64, Option<i64>) {
    let from_ms = check_time("valid_from", from, f).unwrap_or_else(now_ms);
    let until_ms = check_time("valid_until", until, f);
    if let Some(u) = until_ms
        && u <= from_ms
    {
        f.add(
            "valid_until",
            "reversed_window",
            Msg::new(
                "结束时间须晚于开始时间",
                "valid_until must be after valid_from",
            ),
        );
    }
    (from_ms, until_ms)
}

/// Checks every field of `input`, including that a blacklisted person exists.
async fn check(state: &AppState, input: BlacklistInput) -> ApiResult<NewBlacklistEntry> {
    let mut f = Fields::new();
    let subject_text = input.subject.as_deref().map(str::trim);
    if subject_text.is_none_or(str::is_empty) {
        f.add(
            "subject",
            "required",
            Msg::new("对象必填", "The subject is required"),
        );
    }
    let subject = match input.subject_kind.as_deref() {
        None => {
            f.add(
                "subject_kind",
                "required",
                Msg::new(
                    "对象类型必填（plate、tag 或 person）",
                    "subject_kind is required (plate, tag or person)",
                ),
            );
            None
        }
        Some("plate") => {
            let colour = check_colour("plate_colour", input.plate_colour.as_deref(), &mut f);
            match subject_text.filter(|s| !s.is_empty()) {
                Some(text) => check_plate("subject", Some(text), &mut f)
                    .map(|plate| Subject::Plate { plate, colour }),
                None => None,
            }
        }
        Some(kind @ ("tag" | "person")) => {
            if input.plate_colour.is_some() {
                f.add(
                    "plate_colour",
                    "not_allowed",
                    Msg::new(
                        "只有车牌对象才有车牌颜色",
                        "Only a plate subject has a plate colour",
                    ),
                );
            }
            match subject_text.filter(|s| !s.is_empty()) {
                Some(text) if kind == "tag" => match Epc::from_hex(text) {
                    Ok(epc) => Some(Subject::Tag(epc)),
                    Err(e) => {
                        f.add(
                            "subject",
                            "invalid_epc",
                            Msg::new(
                                format!("标签 EPC 须为 1 到 16 字节的十六进制：{e}"),
                                format!("The tag EPC must be 1 to 16 bytes of hex: {e}"),
                            ),
                        );
                        None
                    }
                },
                Some(text) => match text.parse::<i64>() {
                    Ok(id) if id > 0 => Some(Subject::Person(id)),
                    _ => {
                        f.add(
                            "subject",
                            "invalid_person",
                            Msg::new(
                                format!("“{text}”不是人员编号"),
                                format!("{text:?} is not a person id"),
                            ),
                        );
                        None
                    }
                },
                None => None,
            }
        }
        Some(other) => {
            f.add(
                "subject_kind",
                "invalid_kind",
                Msg::new(
                    format!("对象类型“{other}”无效，应为 plate、tag 或 person"),
                    format!("subject_kind {other:?} is not plate, tag or person"),
                ),
            );
            None
        }
    };
    let reason = check_reason("reason", input.reason.as_deref(), &mut f);
    let alarm_level = match input.alarm_level.as_deref() {
        None => AlarmLevel::Guard,
        Some(code) => parse_alarm(code).unwrap_or_else(|| {
            f.add(
                "alarm_level",
                "invalid_alarm_level",
                Msg::new(
                    format!("报警级别“{code}”无效，应为 silent、guard 或 urgent"),
                    format!("alarm_level {code:?} is not silent, guard or urgent"),
                ),
            );
            AlarmLevel::Guard
        }),
    };
    let (valid_from_ms, valid_until_ms) = check_window(
        input.valid_from.as_deref(),
        input.valid_until.as_deref(),
        &mut f,
    );
    if let Some(Subject::Person(id)) = subject {
        let mut conn = state.db.pool().acquire().await.map_err(|e| {
            tracing::error!(error = %e, "database error");
            ApiError::Internal
        })?;
        if !blacklist::person_exists(&mut conn, id).await? {
            f.add(
                "subject",
                "unknown_person",
                Msg::new(
                    format!("没有编号为 {id} 的人员"),
                    format!("There is no person {id}"),
                ),
            );
        }
    }
    f.finish()?;
    Ok(NewBlacklistEntry {
        subject: subject.ok_or(ApiError::Internal)?,
        reason,
        alarm_level,
        valid_from_ms,
        valid_until_ms,
    })
}

/// `?subject=&kind=&active_at=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlacklistSearch {
    /// Part of the subject (a plate fragment in any spelling, EPC hex, person id).
    pub subject: Option<String>,
    /// `plate`, `tag` or `person`.
    pub kind: Option<String>,
    /// RFC 3339: only entries in force at this instant.
    pub active_at: Option<String>,
}

/// Search the blacklist, newest first.
#[utoipa::path(get, path = "/api/v1/blacklist", tag = "blacklist", params(BlacklistSearch, PageQuery),
    responses((status = 200, body = PageOf<BlacklistEntryRow>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_blacklist(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<BlacklistSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<BlacklistEntryRow>>> {
    let mut f = Fields::new();
    let active_at_ms = check_time("active_at", q.active_at.as_deref(), &mut f);
    if let Some(kind) = q.kind.as_deref()
        && !matches!(kind, "plate" | "tag" | "person")
    {
        f.add(
            "kind",
            "invalid_kind",
            Msg::new(
                format!("对象类型“{kind}”无效，应为 plate、tag 或 person"),
                format!("kind {kind:?} is not plate, tag or person"),
            ),
        );
    }
    f.finish()?;
    let page = p.page()?;
    let query = BlacklistQuery {
        subject: q.subject.as_deref().map(normalise_fragment),
        kind: q.kind,
        active_at_ms,
    };
    Ok(ApiJson(paged(
        blacklist::search(&state.db, &query, page).await?,
        &p,
    )))
}

/// Add a blacklist entry.
#[utoipa::path(post, path = "/api/v1/blacklist", tag = "blacklist", request_body = BlacklistInput,
    responses((status = 201, body = BlacklistEntryRow), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_blacklist(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<BlacklistInput>,
) -> ApiResult<(StatusCode, ApiJson<BlacklistEntryRow>)> {
    let new = check(&state, input).await?;
    let row = blacklist::create(&state.db, &authed.actor(), new).await?;
    Ok((StatusCode::CREATED, ApiJson(row)))
}

/// One blacklist entry.
#[utoipa::path(get, path = "/api/v1/blacklist/{id}", tag = "blacklist", params(("id" = i64, Path)),
    responses((status = 200, body = BlacklistEntryRow), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_blacklist(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<BlacklistEntryRow>> {
    Ok(ApiJson(blacklist::get(&state.db, id).await?))
}

/// Replace a blacklist entry.
#[utoipa::path(put, path = "/api/v1/blacklist/{id}", tag = "blacklist", params(("id" = i64, Path)),
    request_body = BlacklistInput,
    responses((status = 200, body = BlacklistEntryRow), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_blacklist(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<BlacklistInput>,
) -> ApiResult<ApiJson<BlacklistEntryRow>> {
    let new = check(&state, input).await?;
    Ok(ApiJson(
        blacklist::update(&state.db, &authed.actor(), id, new).await?,
    ))
}

/// Delete a blacklist entry made in error (lift one that served its purpose instead).
#[utoipa::path(delete, path = "/api/v1/blacklist/{id}", tag = "blacklist", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_blacklist(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    blacklist::delete(&state.db, &authed.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End a blacklist entry now (audited as `lift`).
#[utoipa::path(post, path = "/api/v1/blacklist/{id}/lift", tag = "blacklist", params(("id" = i64, Path)),
    responses((status = 200, body = BlacklistEntryRow), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn lift_blacklist(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<BlacklistEntryRow>> {
    match blacklist::lift(&state.db, &authed.actor(), id).await? {
        Lifted::Lifted(row) => Ok(ApiJson(row)),
        Lifted::AlreadyEnded(_) => Err(ApiError::Conflict(Msg::new(
            "该黑名单条目已经结束",
            "This blacklist entry has already ended",
        ))),
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_blacklist, create_blacklist))
        .routes(routes!(get_blacklist, update_blacklist, delete_blacklist))
        .routes(routes!(lift_blacklist))
}
