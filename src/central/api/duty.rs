//! `/api/v1/duty`: a guard signs in to a booth (a duty record at one of their gates), signs
//! off, and leaves handover notes for the next shift; a duty's shift report (交班报表) as CSV or
//! XLSX; and the serial number of a visitor's slip (临时通行单, `/api/v1/visits/{id}/slip`).
//!
//! What it never does: let a guard sign in at, or write notes for, a gate not theirs, or read
//! the report of a duty at a gate not theirs.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Datelike;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::console::may_act;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::stats::{check_format, render};
use crate::central::repo::duty::{self, Duty, HandoverNote};
use crate::central::repo::visits;
use crate::central::state::AppState;
use crate::central::{shift, unstaffed};
use crate::i18n::{Lang, Msg};

/// Longest handover note.
const MAX_NOTE: usize = 1000;

/// Which booth to sign in to.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyInput {
    pub gate_id: i64,
}

/// A handover note.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub gate_id: i64,
    #[serde(default)]
    pub note: String,
}

/// Sign in to a booth (ends any other duty of the caller).
#[utoipa::path(post, path = "/api/v1/duty/sign-in", tag = "duty", request_body = DutyInput,
    responses((status = 200, body = Duty), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No such gate")))]
async fn sign_in(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<DutyInput>,
) -> ApiResult<ApiJson<Duty>> {
    may_act(&authed, input.gate_id)?;
    let duty = duty::sign_in(&state.db, &authed.actor(), input.gate_id).await?;
    // The booth is staffed again: its unstaffed alarm, if raised, is over.
    unstaffed::staffed(&state.db, &state.live, input.gate_id).await?;
    Ok(ApiJson(duty))
}

/// Sign off duty.
#[utoipa::path(post, path = "/api/v1/duty/sign-off", tag = "duty",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn sign_off(State(state): State<AppState>, authed: Authed) -> ApiResult<StatusCode> {
    duty::sign_off(&state.db, &authed.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave a handover note for the next shift at a gate.
#[utoipa::path(post, path = "/api/v1/duty/notes", tag = "duty", request_body = NoteInput,
    responses((status = 201, body = HandoverNote), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No such gate"),
        (status = 422, body = ErrorBody)))]
async fn add_note(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<NoteInput>,
) -> ApiResult<(StatusCode, ApiJson<HandoverNote>)> {
    may_act(&authed, input.gate_id)?;
    let note = input.note.trim();
    let mut f = Fields::new();
    if note.is_empty() {
        f.add(
            "note",
            "required",
            Msg::new("交接内容不能为空", "The note is empty"),
        );
    } else if note.chars().count() > MAX_NOTE {
        f.add(
            "note",
            "too_long",
            Msg::new(
                format!("最多 {MAX_NOTE} 个字符"),
                format!("At most {MAX_NOTE} characters"),
            ),
        );
    }
    f.finish()?;
    Ok((
        StatusCode::CREATED,
        ApiJson(duty::add_note(&state.db, &authed.actor(), input.gate_id, note).await?),
    ))
}

/// The export's format.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `csv` or `xlsx`.
    pub format: String,
}

/// A duty's shift report as a CSV (UTF-8 with BOM) or XLSX file, in the pages' language when
/// downloaded from a page, else the request's `Accept-Language`:
/// passages per lane, denials by reason, manual opens, visitors registered, alarms. The guard
/// who held the duty, the guards of its gate (the next shift) and the office may read it.
#[utoipa::path(get, path = "/api/v1/duty/{id}/report", tag = "duty",
    params(("id" = i64, Path), ReportQuery),
    responses((status = 200, description = "The CSV or XLSX file"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    check_format(&q.format)?;
    let duty = duty::get(&state.db, id)
        .await
        .map_err(|_| ApiError::NotFound(Msg::new("没有这条值班记录", "No such duty record")))?;
    if !may_read(&authed, &duty) {
        return Err(ApiError::Forbidden);
    }
    // Downloaded from the report page (a browser session): in the pages' language (zh-CN
    // unless switched); a client with a token: as it asks.
    let lang = if crate::http_cookie::cookie(&headers, super::auth::SESSION_COOKIE).is_some() {
        crate::i18n::lang_of(&headers)
    } else {
        Lang::from_headers(&headers)
    };
    let report = shift::report(&state.db, id).await?;
    let names = crate::central::names::Names::load(&state.db).await?;
    let table = shift::table(&report, lang, state.site_tz, |id, recorded| {
        id.and_then(|id| names.of_id(id))
            .unwrap_or_else(|| names.of(recorded))
            .to_string()
    });
    let day = report
        .duty
        .started_at
        .with_timezone(&state.site_tz)
        .format("%Y%m%d");
    render(
        &table,
        &q.format,
        lang,
        &format!("gatehouse-shift-{day}-{}", report.duty.id),
    )
}

/// A visitor slip's serial.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Slip {
    pub visit_id: i64,
    /// As printed: `2026-000123`.
    pub serial: String,
    pub issued_at: chrono::DateTime<chrono::Utc>,
}

/// The serial number of a visitor's slip (临时通行单): given on the first call (the next of
/// the site's year, never reused, audited), the same on every later call.
#[utoipa::path(post, path = "/api/v1/visits/{id}/slip", tag = "duty", params(("id" = i64, Path)),
    responses((status = 200, body = Slip), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn issue_slip(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Slip>> {
    let visit = visits::get(&state.db, id)
        .await
        .map_err(|_| ApiError::NotFound(Msg::new("没有这次来访登记", "No such visit")))?;
    may_act(&authed, visit.gate_id)?;
    let year = i64::from(chrono::Utc::now().with_timezone(&state.site_tz).year());
    let slip = duty::issue_slip(&state.db, &authed.actor(), id, year).await?;
    Ok(ApiJson(Slip {
        visit_id: id,
        serial: slip.text(),
        issued_at: slip.issued_at,
    }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_off))
        .routes(routes!(add_note))
        .routes(routes!(report))
        .routes(routes!(issue_slip))
}

/// Whether `authed` may read the report of `duty`: the guard who held it, the guards of its
/// gate (the next shift opens it from the handover note), and the office.
pub fn may_read(authed: &Authed, duty: &crate::central::repo::duty::Duty) -> bool {
    use super::auth::Role;
    authed.operator_id == duty.operator_id
        || authed.has(Role::Admin)
        || authed.has(Role::Security)
        || (authed.has(Role::Guard) && authed.gates.contains(&duty.gate_id))
}
