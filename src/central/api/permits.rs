//! `/api/v1/permits`: exit passes (出门证 / 通行证) — list and search, create, read (with an
//! `ETag`), replace (with `If-Match`), suspend / revoke / reactivate, delete.
//!
//! Who: admin and security write; admin, security, viewer and guard (lookup at the booth) read
//! every permit; a department approver reads only permits whose holder is in their department.
//! Deleting is admin-only — revoking keeps the history and is preferred.
//!
//! **Concurrency.** `GET` answers `ETag: "<version>"`; `PUT` must send it back in `If-Match`
//! (the one way to name the version — the body has no version field). A stale `If-Match` is a
//! 409 `stale_version` carrying `current_version`; a missing one is a 400. The actions and
//! `DELETE` honour `If-Match` when it is sent.
//!
//! **Minutes.** Validity instants must be whole minutes (seconds and fractions zero): gates
//! decide in whole UTC minutes, and a value silently truncated would not be the value the
//! client sent back in its next `PUT`. Such input is a 422 `not_whole_minute`.
//!
//! What it never does: write anything when any field is invalid (every check runs, and all
//! field errors are answered together, before the repository is called).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::db::Db;
use crate::central::repo::permits::{
    self, Action, ActionError, LivePass, Permit, PermitInput, PermitQuery, PermitStatus,
};
use crate::central::state::AppState;
use crate::domain::GateRights;
use crate::domain::plate::normalise_fragment;
use crate::domain::text::{parse_category, parse_gate_rights, parse_schedule};
use crate::i18n::Msg;

/// Roles that read every permit.
const READ_ALL: &[Role] = &[Role::Admin, Role::Security, Role::Viewer, Role::Guard];
/// The most vehicles one permit covers.
const MAX_VEHICLES: usize = 50;
/// The longest status reason, in characters.
const MAX_REASON: usize = 200;

/// Search filters for `GET /api/v1/permits`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermitSearch {
    /// The holder's person id.
    pub holder_id: Option<i64>,
    /// A covered vehicle's id.
    pub vehicle_id: Option<i64>,
    /// A plate or part of one (normalised: `京a·123` finds `京A12345`).
    pub plate: Option<String>,
    /// The holder's department (case-insensitive, exact).
    pub department: Option<String>,
    /// active, suspended or revoked.
    pub status: Option<String>,
    /// staff, student, family, contractor, official or visitor.
    pub category: Option<String>,
    /// RFC 3339 instant (`2025-06-01T08:00:00Z`): permits valid then.
    pub valid_at: Option<String>,
}

/// The body of suspend / revoke / reactivate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    /// Why (required to suspend or revoke, at most 200 characters; kept in the audit log).
    #[serde(default)]
    pub reason: String,
}

/// A new permit: the fields of [`PermitInput`] and, when a vehicle already holds a live pass of
/// the same kind, why a second one is issued.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPermit {
    /// Holder category code: staff, student, family, contractor, official, visitor.
    pub category: String,
    /// The holding person; must exist.
    pub holder_id: i64,
    /// RFC 3339; must be a whole minute (seconds and fractions 0).
    pub valid_from: DateTime<Utc>,
    /// RFC 3339, after `valid_from`; must be a whole minute.
    pub valid_until: DateTime<Utc>,
    /// Gate rights in text form; default `all`.
    #[serde(default = "all_gates")]
    pub gates: String,
    /// Schedule in text form; default empty (always).
    #[serde(default)]
    pub schedule: String,
    #[serde(default)]
    pub single_use: bool,
    /// At least 1, or `null` for no limit.
    #[serde(default)]
    pub max_inside: Option<i64>,
    /// Vehicles covered; each must exist, none twice.
    #[serde(default)]
    pub vehicle_ids: Vec<i64>,
    /// Required when a covered vehicle already holds a live pass (active, not expired) of the
    /// same kind whose validity overlaps this one's: why a second pass is issued (at most 200
    /// characters; stored with the permit and audited). Without it such a permit is a 409.
    #[serde(default)]
    pub override_reason: String,
}

fn all_gates() -> String {
    "all".into()
}

impl NewPermit {
    fn split(self) -> (PermitInput, String) {
        (
            PermitInput {
                category: self.category,
                holder_id: self.holder_id,
                valid_from: self.valid_from,
                valid_until: self.valid_until,
                gates: self.gates,
                schedule: self.schedule,
                single_use: self.single_use,
                max_inside: self.max_inside,
                vehicle_ids: self.vehicle_ids,
            },
            self.override_reason,
        )
    }
}

/// One live pass per vehicle and kind: the reason to store with a new pass of kind
/// `single_use` for `vehicle_ids` over `[from, until)` — empty when it duplicates nothing —
/// or a 409 naming each live pass it would duplicate when no `override_reason` is given.
pub(crate) async fn check_duplicates(
    state: &AppState,
    vehicle_ids: &[i64],
    single_use: bool,
    (from, until): (DateTime<Utc>, DateTime<Utc>),
    override_reason: &str,
) -> ApiResult<String> {
    let reason = override_reason.trim();
    let mut f = Fields::new();
    check_len(&mut f, "override_reason", reason, MAX_REASON);
    f.finish()?;
    let live = permits::duplicated_passes(&state.db, vehicle_ids, single_use, from, until).await?;
    if live.is_empty() {
        return Ok(String::new());
    }
    if reason.is_empty() {
        return Err(ApiError::Conflict(duplicate_message(state.site_tz, &live)));
    }
    Ok(reason.to_string())
}

/// `YYYY-MM-DD HH:MM — YYYY-MM-DD HH:MM` in `tz`.
pub(crate) fn validity_text(
    tz: chrono_tz::Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> String {
    let f = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    format!("{} — {}", f(from), f(until))
}

/// "The vehicle already holds …" for each live pass, in both languages.
fn duplicate_message(tz: chrono_tz::Tz, live: &[LivePass]) -> Msg {
    let zh: Vec<String> = live
        .iter()
        .map(|p| {
            format!(
                "车辆 {} 已有有效的{} {}号（持证人 {}，有效期 {}）",
                p.plate,
                crate::i18n::pass_kind_label(crate::i18n::Lang::Zh, p.single_use),
                p.permit_id,
                p.holder_name,
                validity_text(tz, p.valid_from, p.valid_until)
            )
        })
        .collect();
    let en: Vec<String> = live
        .iter()
        .map(|p| {
            format!(
                "vehicle {} already holds live {} no. {} (holder {}, valid {})",
                p.plate,
                crate::i18n::pass_kind_label(crate::i18n::Lang::En, p.single_use).to_lowercase(),
                p.permit_id,
                p.holder_name,
                validity_text(tz, p.valid_from, p.valid_until)
            )
        })
        .collect();
    Msg::new(
        format!(
            "{}。同一车辆同类通行证只能有一张有效；如确需再发，请填写重复发证原因",
            zh.join("；")
        ),
        format!(
            "{}. A vehicle holds one live pass of a kind; to issue another, give the reason in \
             override_reason",
            en.join("; ")
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Shared input checks (also used by the bookings API).

/// Checks that `t` is a whole minute within 1970–9999 (the range gates store).
pub(crate) fn check_minute(f: &mut Fields, field: &str, t: DateTime<Utc>) {
    if !(1970..=9999).contains(&t.year()) {
        f.add(
            field,
            "out_of_range",
            Msg::new(
                format!("{field} 须在 1970 年至 9999 年之间"),
                format!("{field} must lie between the years 1970 and 9999"),
            ),
        );
    } else if t.second() != 0 || t.nanosecond() != 0 {
        f.add(
            field,
            "not_whole_minute",
            Msg::new(
                format!("{field} 须精确到分钟（秒和毫秒为 0），如 2025-03-01T08:30:00Z"),
                format!(
                    "{field} must be a whole minute (seconds and fractions 0), e.g. 2025-03-01T08:30:00Z"
                ),
            ),
        );
    }
}

/// Checks `until > from` (reported on `until_field`).
pub(crate) fn check_window(
    f: &mut Fields,
    from_field: &str,
    until_field: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) {
    if until <= from {
        f.add(
            until_field,
            "reversed_window",
            Msg::new(
                format!("{until_field} 须晚于 {from_field}"),
                format!("{until_field} must be after {from_field}"),
            ),
        );
    }
}

/// Normalises a typed plate fragment for searching (see [`normalise_fragment`]). `None` when
/// nothing is left.
fn plate_fragment(text: &str) -> Option<String> {
    let s = normalise_fragment(text);
    (!s.is_empty()).then_some(s)
}

/// The `plate` search parameter as a fragment to search for, or records that it is empty.
pub(crate) fn query_plate(f: &mut Fields, text: Option<&str>) -> Option<String> {
    let fragment = plate_fragment(text?);
    if fragment.is_none() {
        f.add(
            "plate",
            "plate_empty",
            Msg::new("车牌查询不能为空", "plate must not be empty"),
        );
    }
    fragment
}

/// Parses an RFC 3339 query parameter, or records why not.
pub(crate) fn query_instant(f: &mut Fields, field: &str, text: &str) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            f.add(
                field,
                "invalid_instant",
                Msg::new(
                    format!("{field} 须为 RFC 3339 时间，如 2025-06-01T08:00:00Z"),
                    format!("{field} must be an RFC 3339 instant, e.g. 2025-06-01T08:00:00Z"),
                ),
            );
            None
        }
    }
}

/// The `status` search parameter parsed by `parse` (after trimming), or records `msg` (what the
/// valid codes are) when it is not one.
pub(crate) fn query_status<T>(
    f: &mut Fields,
    code: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    msg: impl FnOnce() -> Msg,
) -> Option<T> {
    let status = parse(code?.trim());
    if status.is_none() {
        f.add("status", "invalid_status", msg());
    }
    status
}

/// Records a text that is longer than `max` characters.
pub(crate) fn check_len(f: &mut Fields, field: &str, text: &str, max: usize) {
    if text.chars().count() > max {
        f.add(
            field,
            "too_long",
            Msg::new(
                format!("{field} 最多 {max} 个字符"),
                format!("{field} has at most {max} characters"),
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------

/// An approver who reads only their department's permits; `None` for roles that read all.
fn read_scope(authed: &Authed) -> ApiResult<Option<String>> {
    if READ_ALL.iter().any(|r| authed.has(*r)) {
        return Ok(None);
    }
    authed.require(&[Role::Approver])?;
    Ok(Some(authed.department.clone()))
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The version named by `If-Match` (`"3"`, `W/"3"`), if the header is present.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    text.parse::<i64>().map(Some).map_err(|_| {
        ApiError::BadRequest(Msg::new(
            "If-Match 须为该通行证的 ETag，如 \"3\"",
            "If-Match must be the permit's ETag, e.g. \"3\"",
        ))
    })
}

/// Checks every field; trims gates and schedule in place. Writes nothing.
pub(crate) async fn validate(db: &Db, input: &mut PermitInput) -> ApiResult<()> {
    let mut f = Fields::new();
    if let Err(e) = parse_category(&input.category) {
        f.add(
            "category",
            "invalid_category",
            Msg::new(
                format!(
                    "类别“{}”无效，应为 staff、student、family、contractor、official 或 visitor",
                    input.category
                ),
                e.0,
            ),
        );
    }
    check_minute(&mut f, "valid_from", input.valid_from);
    check_minute(&mut f, "valid_until", input.valid_until);
    check_window(
        &mut f,
        "valid_from",
        "valid_until",
        input.valid_from,
        input.valid_until,
    );
    input.gates = input.gates.trim().to_string();
    match parse_gate_rights(&input.gates) {
        Ok(GateRights::All(_)) => {}
        Ok(GateRights::Only(rights)) => {
            let ids: Vec<i64> = rights.iter().map(|r| i64::from(r.gate.0)).collect();
            let unknown = permits::unknown_gate_ids(db, &ids).await?;
            if !unknown.is_empty() {
                let list = unknown
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                f.add(
                    "gates",
                    "unknown_gate",
                    Msg::new(
                        format!("不存在的大门：{list}"),
                        format!("no such gate: {list}"),
                    ),
                );
            }
        }
        Err(e) => f.add(
            "gates",
            "invalid_gates",
            Msg::new(
                format!("大门权限格式不正确（应为 all 或 1;2:exit）：{}", e.0),
                format!("gates (all, or gate ids such as 1;2:exit): {}", e.0),
            ),
        ),
    }
    input.schedule = input.schedule.trim().to_string();
    if let Err(e) = parse_schedule(&input.schedule) {
        f.add(
            "schedule",
            "invalid_schedule",
            Msg::new(
                format!("时段格式不正确（应为 mon-fri 07:00-22:00 之类）：{}", e.0),
                format!("schedule (e.g. mon-fri 07:00-22:00): {}", e.0),
            ),
        );
    }
    if let Some(n) = input.max_inside
        && !(1..=i64::from(u16::MAX)).contains(&n)
    {
        f.add(
            "max_inside",
            "out_of_range",
            Msg::new(
                "max_inside 须为 1 到 65535 之间的整数，或为 null（不限）",
                "max_inside must be 1 to 65535, or null for no limit",
            ),
        );
    }
    if input.vehicle_ids.len() > MAX_VEHICLES {
        f.add(
            "vehicle_ids",
            "too_many",
            Msg::new(
                format!("一张通行证最多绑定 {MAX_VEHICLES} 辆车"),
                format!("a permit covers at most {MAX_VEHICLES} vehicles"),
            ),
        );
    } else {
        let unknown = permits::unknown_vehicle_ids(db, &input.vehicle_ids).await?;
        for (i, id) in input.vehicle_ids.iter().enumerate() {
            let field = format!("vehicle_ids[{i}]");
            if input.vehicle_ids[..i].contains(id) {
                f.add(
                    field,
                    "duplicate_vehicle",
                    Msg::new(
                        format!("车辆 {id} 重复列出"),
                        format!("vehicle {id} is listed twice"),
                    ),
                );
            } else if unknown.contains(id) {
                f.add(
                    field,
                    "unknown_vehicle",
                    Msg::new(
                        format!("车辆 {id} 不存在"),
                        format!("no such vehicle: {id}"),
                    ),
                );
            }
        }
    }
    if permits::person_department(db, input.holder_id)
        .await?
        .is_none()
    {
        f.add(
            "holder_id",
            "unknown_person",
            Msg::new(
                format!("持证人 {} 不存在", input.holder_id),
                format!("no such person: {}", input.holder_id),
            ),
        );
    }
    f.finish()
}

/// Search permits.
#[utoipa::path(get, path = "/api/v1/permits", tag = "permits", params(PermitSearch, PageQuery),
    responses((status = 200, body = PageOf<Permit>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_permits(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(s): ApiQuery<PermitSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<Permit>>> {
    let scope_department = read_scope(&authed)?;
    let mut f = Fields::new();
    let status = query_status(&mut f, s.status.as_deref(), PermitStatus::from_code, || {
        Msg::new(
            "status 应为 active、suspended 或 revoked",
            "status must be active, suspended or revoked",
        )
    });
    if let Some(c) = &s.category
        && let Err(e) = parse_category(c)
    {
        f.add(
            "category",
            "invalid_category",
            Msg::new(
                "category 应为 staff、student、family、contractor、official 或 visitor",
                e.0,
            ),
        );
    }
    let plate = query_plate(&mut f, s.plate.as_deref());
    let valid_at = s
        .valid_at
        .as_deref()
        .and_then(|t| query_instant(&mut f, "valid_at", t));
    let page = p.page();
    f.finish()?;
    let query = PermitQuery {
        holder_id: s.holder_id,
        vehicle_id: s.vehicle_id,
        plate,
        department: s.department.map(|d| d.trim().to_string()),
        status,
        category: s.category.map(|c| c.trim().to_string()),
        valid_at,
        scope_department,
    };
    let result = permits::search(&state.db, &query, page?).await?;
    Ok(ApiJson(paged(result, &p)))
}

/// Create a permit (active, version 1). A vehicle holds one live pass of a kind: a permit for
/// a vehicle that already holds a live one of the same kind (period or single use) with an
/// overlapping validity is a 409 naming it, unless `override_reason` says why.
#[utoipa::path(post, path = "/api/v1/permits", tag = "permits", request_body = NewPermit,
    responses((status = 201, body = Permit, headers(("ETag" = String, description = "\"<version>\""))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A covered vehicle already holds a live pass of this kind"),
        (status = 422, body = ErrorBody)))]
async fn create_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(new): ApiJson<NewPermit>,
) -> ApiResult<(
    StatusCode,
    [(header::HeaderName, HeaderValue); 1],
    ApiJson<Permit>,
)> {
    let (mut input, override_reason) = new.split();
    validate(&state.db, &mut input).await?;
    let reason = check_duplicates(
        &state,
        &input.vehicle_ids,
        input.single_use,
        (input.valid_from, input.valid_until),
        &override_reason,
    )
    .await?;
    let permit = permits::create_overriding(&state.db, &authed.actor(), &input, &reason).await?;
    Ok((
        StatusCode::CREATED,
        [(header::ETAG, etag(permit.version))],
        ApiJson(permit),
    ))
}

/// One permit, with its version as `ETag`.
#[utoipa::path(get, path = "/api/v1/permits/{id}", tag = "permits", params(("id" = i64, Path)),
    responses((status = 200, body = Permit, headers(("ETag" = String, description = "\"<version>\""))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], ApiJson<Permit>)> {
    let scope = read_scope(&authed)?;
    let permit = permits::get(&state.db, id).await?;
    if scope.is_some_and(|d| d != permit.holder_department) {
        return Err(ApiError::Forbidden);
    }
    Ok(([(header::ETAG, etag(permit.version))], ApiJson(permit)))
}

/// Replace a permit's fields and vehicles (its status has its own actions). Requires
/// `If-Match: "<version>"`.
#[utoipa::path(put, path = "/api/v1/permits/{id}", tag = "permits",
    params(("id" = i64, Path), ("If-Match" = String, Header, description = "The ETag from GET, e.g. \"3\"")),
    request_body = PermitInput,
    responses((status = 200, body = Permit, headers(("ETag" = String, description = "\"<version>\""))),
        (status = 400, body = ErrorBody, description = "If-Match missing or malformed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "stale_version, with current_version"),
        (status = 422, body = ErrorBody)))]
async fn update_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(mut input): ApiJson<PermitInput>,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], ApiJson<Permit>)> {
    let Some(version) = if_match(&headers)? else {
        return Err(ApiError::BadRequest(Msg::new(
            "修改通行证须带 If-Match 头（取自 GET 返回的 ETag，如 \"3\"）",
            "Changing a permit needs an If-Match header (the ETag from GET, e.g. \"3\")",
        )));
    };
    // 404 before 422: there is nothing to validate against for a permit that does not exist.
    permits::get(&state.db, id).await?;
    validate(&state.db, &mut input).await?;
    let permit = permits::update(&state.db, &authed.actor(), id, version, &input).await?;
    Ok(([(header::ETAG, etag(permit.version))], ApiJson(permit)))
}

/// Delete a permit and its vehicle links (admin only; prefer revoking). Honours `If-Match`.
#[utoipa::path(delete, path = "/api/v1/permits/{id}", tag = "permits", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let version = if_match(&headers)?;
    permits::delete(&state.db, &authed.actor(), id, version).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn act(
    state: &AppState,
    authed: &Authed,
    id: i64,
    headers: &HeaderMap,
    action: Action,
    input: ActionInput,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], ApiJson<Permit>)> {
    let version = if_match(headers)?;
    let reason = input.reason.trim();
    let mut f = Fields::new();
    if action != Action::Reactivate && reason.is_empty() {
        f.add(
            "reason",
            "required",
            Msg::new(
                "暂停或吊销通行证须填写原因",
                "A reason is required to suspend or revoke a permit",
            ),
        );
    }
    check_len(&mut f, "reason", reason, MAX_REASON);
    f.finish()?;
    match permits::act(&state.db, &authed.actor(), id, version, action, reason).await {
        Ok(permit) => Ok(([(header::ETAG, etag(permit.version))], ApiJson(permit))),
        Err(ActionError::Repo(e)) => Err(e.into()),
        Err(ActionError::Illegal { current }) => {
            let (zh, en) = current.label();
            let (verb_zh, verb_en) = match action {
                Action::Suspend => ("暂停", "suspended"),
                Action::Revoke => ("吊销", "revoked"),
                Action::Reactivate => ("恢复", "reactivated"),
            };
            Err(ApiError::Conflict(Msg::new(
                format!("通行证当前状态为“{zh}”，不能{verb_zh}"),
                format!("The permit is {en}; it cannot be {verb_en}"),
            )))
        }
    }
}

/// Suspend an active permit (reason required).
#[utoipa::path(post, path = "/api/v1/permits/{id}/suspend", tag = "permits", params(("id" = i64, Path)),
    request_body = ActionInput,
    responses((status = 200, body = Permit), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn suspend_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ActionInput>,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], ApiJson<Permit>)> {
    act(&state, &authed, id, &headers, Action::Suspend, input).await
}

/// Revoke an active or suspended permit for good (reason required).
#[utoipa::path(post, path = "/api/v1/permits/{id}/revoke", tag = "permits", params(("id" = i64, Path)),
    request_body = ActionInput,
    responses((status = 200, body = Permit), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn revoke_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ActionInput>,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], ApiJson<Permit>)> {
    act(&state, &authed, id, &headers, Action::Revoke, input).await
}

/// Reactivate a suspended permit (a revoked one stays revoked).
#[utoipa::path(post, path = "/api/v1/permits/{id}/reactivate", tag = "permits", params(("id" = i64, Path)),
    request_body = ActionInput,
    responses((status = 200, body = Permit), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reactivate_permit(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ActionInput>,
) -> ApiResult<([(header::HeaderName, HeaderValue); 1], ApiJson<Permit>)> {
    act(&state, &authed, id, &headers, Action::Reactivate, input).await
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_permits, create_permit))
        .routes(routes!(get_permit, update_permit, delete_permit))
        .routes(routes!(suspend_permit))
        .routes(routes!(revoke_permit))
        .routes(routes!(reactivate_permit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plate_fragment_is_normalised_like_a_plate() {
        assert_eq!(plate_fragment("京ａ·12 3").as_deref(), Some("京A123"));
        assert_eq!(plate_fragment(" - "), None);
    }

    #[test]
    fn if_match_takes_strong_and_weak_etags_and_refuses_anything_else() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h), Ok(None));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"3\""));
        assert_eq!(if_match(&h), Ok(Some(3)));
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"4\""));
        assert_eq!(if_match(&h), Ok(Some(4)));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(if_match(&h).is_err());
    }
}
