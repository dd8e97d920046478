//! `/api/v1/bookings`: visitor bookings (访客预约) — search, book, read, edit while pending, and
//! the lifecycle steps `approve`, `reject`, `cancel`, `arrive`, `leave`, `no-show`.
//!
//! Who:
//! - read: admin, security, guard, viewer; an approver only their department's bookings;
//! - book: admin, security, an approver for their own department; a guard registers walk-ins
//!   only (`walk_in: true`, stored as already arrived) — admin and security may too;
//! - a contractor's booking (`category: contractor`) needs two approvals: the department's
//!   approver's (recorded, the booking stays pending) and then the security office's;
//! - edit (pending only), approve, reject, cancel: admin, security, an approver for their own
//!   department;
//! - arrive, leave, no-show: admin, security, guard.
//!
//! A step that does not apply to the booking's status is a 409 whose message names the current
//! status. The driver's phone is shown in full to roles that act on the visit (admin, security,
//! guard, approver) and masked (`138****5678`) for viewers.
//!
//! Slots are whole minutes (as permit validity, see [`super::permits`]), end after they start,
//! last at most 7 days and must not have ended already. `?date=YYYY-MM-DD` is a day in the
//! site's time zone (`server.timezone`).
//!
//! Visitor passes: an approval issues the booking's pass ([`crate::central::passes::issue`])
//! and queues `BookingApproved` and `PassIssued`; a rejection queues `BookingRejected`; a
//! rejection or cancellation revokes the pass. `gates` (permits' form, default `all`) and
//! `single_use` (default true) say where and how often the pass opens.
//! `GET /api/v1/bookings/{id}/pass` gives the pass's link, state and token to those who may
//! decide the booking.
//!
//! What it never does: write anything when any field is invalid, or show a viewer a full phone.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use super::permits::{check_len, check_minute, check_window, query_plate, query_status};
use crate::central::db::Db;
use crate::central::notify::{self, Notice};
use crate::central::passes;
use crate::central::repo::bookings::{
    self, Booking, BookingInput, BookingQuery, BookingStatus, NewBooking, PassRights, Transition,
    TransitionError,
};
use crate::central::repo::permits::{person_department, unknown_gate_ids};
use crate::central::repo::persons::mask_phone;
use crate::central::state::AppState;
use crate::domain::permit::{DirectionSet, GateRights};
use crate::domain::text::parse_gate_rights;
use crate::domain::{Plate, PlateColour};
use crate::i18n::Msg;

/// The longest slot.
const MAX_SLOT_DAYS: i64 = 7;

/// Search filters for `GET /api/v1/bookings`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingSearch {
    /// A plate or part of one (normalised).
    pub plate: Option<String>,
    /// The host's person id.
    pub host_id: Option<i64>,
    /// The department (case-insensitive, exact).
    pub department: Option<String>,
    /// pending, approved, rejected, cancelled, arrived, left or no_show.
    pub status: Option<String>,
    /// `YYYY-MM-DD` in the site's time zone: bookings whose slot overlaps that day.
    pub date: Option<String>,
}

/// Normalises a mainland phone number: an 11-digit mobile (`+86` allowed) becomes its 11 digits,
/// a landline becomes `AREA-NUMBER` (`010-62345678`, `0755-2345678`). `None` if it is neither.
pub(crate) fn normalise_phone(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let had_plus86 = trimmed.starts_with("+86");
    let digits: String = trimmed
        .trim_start_matches("+86")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let b = digits.as_bytes();
    if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
        return Some(digits);
    }
    if had_plus86 || b.first() != Some(&b'0') {
        return None;
    }
    // 3-digit area codes are 010 and 020–029; all others have 4 digits.
    let area = if b.len() > 1 && (b[1] == b'1' || b[1] == b'2') {
        3
    } else {
        4
    };
    let number = &digits[area.min(digits.len())..];
    let ok = (7..=8).contains(&number.len()) && !number.starts_with(['0', '1']);
    ok.then(|| format!("{}-{number}", &digits[..area]))
}

pub(crate) fn sees_phone(authed: &Authed) -> bool {
    [Role::Admin, Role::Security, Role::Guard, Role::Approver]
        .iter()
        .any(|r| authed.has(*r))
}

pub(crate) fn shown(authed: &Authed, mut b: Booking) -> Booking {
    if !sees_phone(authed) {
        b.driver_phone = mask_phone(&b.driver_phone);
    }
    b
}

/// `None` for roles that read every booking; an approver's department otherwise.
pub(crate) fn read_scope(authed: &Authed) -> ApiResult<Option<String>> {
    if [Role::Admin, Role::Security, Role::Guard, Role::Viewer]
        .iter()
        .any(|r| authed.has(*r))
    {
        return Ok(None);
    }
    authed.require(&[Role::Approver])?;
    Ok(Some(authed.department.clone()))
}

/// Admin and security for any department, an approver for their own. (A host deciding their
/// own visitors' requests is [`host_decides`]: it needs the database.)
pub(crate) fn may_decide(authed: &Authed, department: &str) -> bool {
    authed.has(Role::Admin)
        || authed.has(Role::Security)
        || (authed.has(Role::Approver) && authed.department == department)
}

/// Checks the pass's gates and use; `None` fields take the defaults (every gate both ways,
/// single use).
async fn validate_rights(db: &Db, f: &mut Fields, input: &BookingInput) -> ApiResult<PassRights> {
    let gates = input
        .gates
        .as_deref()
        .map(str::trim)
        .unwrap_or("all")
        .to_string();
    match parse_gate_rights(&gates) {
        Ok(GateRights::All(d)) if d == DirectionSet::NONE => f.add(
            "gates",
            "invalid_gates",
            Msg::new(
                "通行码至少应允许一个方向（进或出）",
                "gates: the pass must allow at least one direction",
            ),
        ),
        Ok(GateRights::All(_)) => {}
        Ok(GateRights::Only(rights)) => {
            let ids: Vec<i64> = rights.iter().map(|r| i64::from(r.gate.0)).collect();
            let unknown = unknown_gate_ids(db, &ids).await?;
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
                        format!("通行码的大门不存在：{list}"),
                        format!("gates: no such gate: {list}"),
                    ),
                );
            } else if rights.len() > 255 {
                f.add(
                    "gates",
                    "too_many_gates",
                    Msg::new(
                        "通行码最多列出 255 个大门",
                        "gates: a pass lists at most 255 gates",
                    ),
                );
            }
        }
        Err(e) => f.add(
            "gates",
            "invalid_gates",
            Msg::new(
                format!(
                    "通行大门格式不正确（应为 all、all:entry 或 1;2:exit）：{}",
                    e.0
                ),
                format!(
                    "gates (all, all:entry, or gate ids such as 1;2:exit): {}",
                    e.0
                ),
            ),
        ),
    }
    Ok(PassRights {
        gates,
        single_use: input.single_use.unwrap_or(true),
    })
}

/// A host (an applicant account linked to their person record) approves or rejects the
/// bookings whose host they are — nobody else's, and nothing but those two steps. A
/// contractor's booking approved by its host still waits for the security office (the host's
/// approval is the department's).
pub(crate) async fn host_decides(
    state: &AppState,
    authed: &Authed,
    booking: &Booking,
    step: Transition,
) -> ApiResult<bool> {
    if !authed.has(Role::Applicant) || !matches!(step, Transition::Approve | Transition::Reject) {
        return Ok(false);
    }
    let person = crate::central::repo::operators::person_of(&state.db, authed.operator_id).await?;
    Ok(person == Some(booking.host_id))
}

/// Checks every field and builds the booking to store. Writes nothing.
async fn validate(
    db: &Db,
    input: BookingInput,
    creating: bool,
) -> ApiResult<(NewBooking, PassRights)> {
    let mut f = Fields::new();
    let rights = validate_rights(db, &mut f, &input).await?;
    let host_department = person_department(db, input.host_id).await?;
    if host_department.is_none() {
        f.add(
            "host_id",
            "unknown_person",
            Msg::new(
                format!("接待人 {} 不存在", input.host_id),
                format!("no such person: {}", input.host_id),
            ),
        );
    }
    let department = match &input.department {
        Some(d) => d.trim().to_string(),
        None => host_department.unwrap_or_default(),
    };
    check_len(&mut f, "department", &department, 100);
    let purpose = input.purpose.trim().to_string();
    check_len(&mut f, "purpose", &purpose, 200);
    let plate = match Plate::parse(&input.plate) {
        Ok(p) => p.as_str().to_string(),
        Err(e) => {
            f.plate("plate", &e);
            String::new()
        }
    };
    let plate_colour = match input.plate_colour.as_deref().map(str::trim) {
        None => None,
        Some(code) => {
            if PlateColour::from_code(code).is_none() {
                f.add(
                    "plate_colour",
                    "invalid_plate_colour",
                    Msg::new(
                        "车牌颜色应为 blue、yellow、green、yellow_green、white 或 black",
                        "plate_colour must be blue, yellow, green, yellow_green, white or black",
                    ),
                );
            }
            Some(code.to_string())
        }
    };
    let driver_name = input.driver_name.trim().to_string();
    if driver_name.is_empty() {
        f.add(
            "driver_name",
            "required",
            Msg::new("请填写驾驶人姓名", "driver_name is required"),
        );
    }
    check_len(&mut f, "driver_name", &driver_name, 50);
    let driver_phone = normalise_phone(&input.driver_phone).unwrap_or_else(|| {
        f.add(
            "driver_phone",
            "invalid_phone",
            Msg::new(
                "驾驶人电话须为 11 位手机号或带区号的固定电话（如 010-62345678）",
                "driver_phone must be an 11-digit mainland mobile or a landline with its area code (e.g. 010-62345678)",
            ),
        );
        String::new()
    });
    check_minute(&mut f, "slot_from", input.slot_from);
    check_minute(&mut f, "slot_until", input.slot_until);
    if input.slot_until <= input.slot_from {
        check_window(
            &mut f,
            "slot_from",
            "slot_until",
            input.slot_from,
            input.slot_until,
        );
    } else if input.slot_until - input.slot_from > Duration::days(MAX_SLOT_DAYS) {
        f.add(
            "slot_until",
            "slot_too_long",
            Msg::new(
                format!("预约时段最长 {MAX_SLOT_DAYS} 天"),
                format!("a slot lasts at most {MAX_SLOT_DAYS} days"),
            ),
        );
    } else if input.slot_until <= Utc::now() {
        f.add(
            "slot_until",
            "slot_in_past",
            Msg::new("预约时段已经结束", "the slot has already ended"),
        );
    }
    if let Some(c) = input.category.as_deref()
        && !bookings::CATEGORIES.contains(&c)
    {
        f.add(
            "category",
            "invalid_category",
            Msg::new(
                format!("预约类别“{c}”无效，应为 visitor（访客）、contractor（施工/外包）或 official（公务）"),
                format!("booking category {c:?} is not one of visitor, contractor, official"),
            ),
        );
    }
    if input.category.is_some() && !creating {
        f.add(
            "category",
            "not_allowed",
            Msg::new(
                "预约类别只能在登记时填写",
                "the category is set only when booking",
            ),
        );
    }
    if input.walk_in && !creating {
        f.add(
            "walk_in",
            "not_allowed",
            Msg::new(
                "walk_in 只能在登记时使用",
                "walk_in applies only when registering",
            ),
        );
    }
    f.finish()?;
    let new = NewBooking {
        host_id: input.host_id,
        department,
        purpose,
        plate,
        plate_colour,
        driver_name,
        driver_phone,
        slot_from: input.slot_from,
        slot_until: input.slot_until,
        walk_in: input.walk_in,
    };
    Ok((new, rights))
}

/// Search bookings.
#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", params(BookingSearch, PageQuery),
    responses((status = 200, body = PageOf<Booking>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_bookings(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(s): ApiQuery<BookingSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<Booking>>> {
    let scope_department = read_scope(&authed)?;
    let mut f = Fields::new();
    let status = query_status(
        &mut f,
        s.status.as_deref(),
        BookingStatus::from_code,
        || {
            Msg::new(
                "status 应为 pending、approved、rejected、cancelled、arrived、left 或 no_show",
                "status must be pending, approved, rejected, cancelled, arrived, left or no_show",
            )
        },
    );
    let plate = query_plate(&mut f, s.plate.as_deref());
    let overlapping = match s.date.as_deref() {
        None => None,
        Some(text) => {
            let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .ok()
                .and_then(|d| {
                    let start = state
                        .site_tz
                        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                        .earliest()?;
                    let end = state
                        .site_tz
                        .from_local_datetime(&d.succ_opt()?.and_hms_opt(0, 0, 0)?)
                        .earliest()?;
                    Some((start.with_timezone(&Utc), end.with_timezone(&Utc)))
                });
            if day.is_none() {
                f.add(
                    "date",
                    "invalid_date",
                    Msg::new(
                        "date 须为 YYYY-MM-DD 格式的日期",
                        "date must be a date YYYY-MM-DD",
                    ),
                );
            }
            day
        }
    };
    let page = p.page();
    f.finish()?;
    let query = BookingQuery {
        plate,
        host_id: s.host_id,
        department: s.department.map(|d| d.trim().to_string()),
        status,
        overlapping,
        scope_department,
    };
    let mut result = bookings::search(&state.db, &query, page?).await?;
    result.items = result
        .items
        .into_iter()
        .map(|b| shown(&authed, b))
        .collect();
    Ok(ApiJson(paged(result, &p)))
}

/// Book a visit (pending), or register a walk-in (`walk_in: true`, stored as arrived).
#[utoipa::path(post, path = "/api/v1/bookings", tag = "bookings", request_body = BookingInput,
    responses((status = 201, body = Booking), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_booking(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<BookingInput>,
) -> ApiResult<(StatusCode, ApiJson<Booking>)> {
    if input.walk_in {
        authed.require(&[Role::Admin, Role::Security, Role::Guard])?;
    } else {
        authed.require(&[Role::Admin, Role::Security, Role::Approver])?;
    }
    let category = input
        .category
        .clone()
        .unwrap_or_else(|| "visitor".to_string());
    let (new, rights) = validate(&state.db, input, true).await?;
    if !new.walk_in && !may_decide(&authed, &new.department) {
        return Err(ApiError::Forbidden);
    }
    let booking =
        bookings::create_with_rights(&state.db, &authed.actor(), &new, &category, &rights).await?;
    Ok((StatusCode::CREATED, ApiJson(shown(&authed, booking))))
}

/// One booking.
#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", params(("id" = i64, Path)),
    responses((status = 200, body = Booking), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_booking(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Booking>> {
    let scope = read_scope(&authed)?;
    let booking = bookings::get(&state.db, id).await?;
    if scope.is_some_and(|d| d != booking.department) {
        return Err(ApiError::Forbidden);
    }
    Ok(ApiJson(shown(&authed, booking)))
}

fn illegal(current: BookingStatus, step: Transition) -> ApiError {
    let (zh, en) = current.label();
    let (verb_zh, verb_en) = step.label();
    ApiError::Conflict(Msg::new(
        format!("预约当前状态为“{zh}”，不能{verb_zh}"),
        format!("The booking is {en}; it cannot be {verb_en}"),
    ))
}

/// Edit a pending booking.
#[utoipa::path(put, path = "/api/v1/bookings/{id}", tag = "bookings", params(("id" = i64, Path)),
    request_body = BookingInput,
    responses((status = 200, body = Booking), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_booking(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<BookingInput>,
) -> ApiResult<ApiJson<Booking>> {
    let current = bookings::get(&state.db, id).await?;
    if !may_decide(&authed, &current.department) {
        return Err(ApiError::Forbidden);
    }
    let (new, rights) = validate(&state.db, input, false).await?;
    if !may_decide(&authed, &new.department) {
        return Err(ApiError::Forbidden);
    }
    match bookings::update_with_rights(&state.db, &authed.actor(), id, &new, &rights).await {
        Ok(b) => Ok(ApiJson(shown(&authed, b))),
        Err(TransitionError::Repo(e)) => Err(e.into()),
        Err(TransitionError::Illegal { current }) => {
            let (zh, en) = current.label();
            Err(ApiError::Conflict(Msg::new(
                format!("预约当前状态为“{zh}”，只有待审批的预约可以修改"),
                format!("The booking is {en}; only a pending booking can be edited"),
            )))
        }
    }
}

pub(crate) async fn step(
    state: &AppState,
    authed: &Authed,
    id: i64,
    step: Transition,
) -> ApiResult<ApiJson<Booking>> {
    match step {
        Transition::Approve | Transition::Reject | Transition::Cancel => {
            let current = bookings::get(&state.db, id).await?;
            if !may_decide(authed, &current.department)
                && !host_decides(state, authed, &current, step).await?
            {
                return Err(ApiError::Forbidden);
            }
            if step == Transition::Approve
                && bookings::needs_security(&current.category)
                && current.status == BookingStatus::Pending
                && !authed.has(Role::Admin)
            {
                if !authed.has(Role::Security) {
                    // The department's approval: the booking waits for the security office.
                    return match bookings::approve_for_department(&state.db, &authed.actor(), id)
                        .await
                    {
                        Ok(b) => Ok(ApiJson(shown(authed, b))),
                        Err(TransitionError::Repo(e)) => Err(e.into()),
                        Err(TransitionError::Illegal { .. }) => Err(ApiError::Conflict(Msg::new(
                            "部门已批准该预约，等待保卫处审批",
                            "The department has approved this booking; it waits for the security office",
                        ))),
                    };
                }
                if current.department_approved_by.is_none() {
                    return Err(ApiError::Conflict(Msg::new(
                        "施工/外包车辆预约须先经部门审批，再由保卫处审批",
                        "A contractor's booking needs the department's approval before the security office's",
                    )));
                }
            }
        }
        Transition::Arrive | Transition::Leave | Transition::NoShow => {}
    }
    match bookings::transition(&state.db, &authed.actor(), id, step).await {
        Ok(b) => {
            after_step(state, id, step).await;
            Ok(ApiJson(shown(authed, b)))
        }
        Err(TransitionError::Repo(e)) => Err(e.into()),
        Err(TransitionError::Illegal { current }) => Err(illegal(current, step)),
    }
}

/// What follows a step once it committed: an approval issues the visitor's pass (signed with
/// the current key) and tells the visitor; a rejection or cancellation revokes the pass (the
/// booking's own change-log entry carries the status to the gates). A pass that cannot be
/// issued now is logged; it is issued when the pass is next asked for
/// ([`pass_of`]).
async fn after_step(state: &AppState, id: i64, step: Transition) {
    match step {
        Transition::Approve => {
            let issued = match passes::issue(&state.db, &state.passes, id).await {
                Ok(p) => p.is_some(),
                Err(e) => {
                    tracing::error!(booking = id, error = %e, "cannot issue the visitor pass");
                    false
                }
            };
            // One message: a visitor whose pass is ready is told of the approval with it.
            let notice = if issued {
                Notice::PassIssued { booking_id: id }
            } else {
                Notice::BookingApproved { booking_id: id }
            };
            notify::queue(&state.db, notice).await;
        }
        Transition::Reject | Transition::Cancel => {
            if let Err(e) = passes::revoke(&state.db, id).await {
                tracing::error!(booking = id, error = %e, "cannot mark the visitor pass revoked");
            }
            if step == Transition::Reject {
                notify::queue(&state.db, Notice::BookingRejected { booking_id: id }).await;
            }
        }
        Transition::Arrive | Transition::Leave | Transition::NoShow => {}
    }
}

/// A booking's pass as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PassInfo {
    pub booking_id: i64,
    /// valid, not_yet_valid, used, revoked, expired; `none` when no pass was issued.
    pub state: String,
    /// The state in words, in the request's language.
    pub state_text: String,
    /// The pass page (`/pass/{secret}`), to send to the visitor.
    pub link: Option<String>,
    /// The pass text the QR code holds.
    pub token: Option<String>,
    pub key_id: Option<i64>,
    pub issued_at: Option<chrono::DateTime<Utc>>,
    /// Why there is no pass, when there is none.
    pub note: Option<String>,
}

/// The pass of `booking`, issued now if the booking is approved and has none yet (approved
/// before the site had a key, or by a path that does not issue).
pub(crate) async fn pass_of(
    state: &AppState,
    booking: &Booking,
) -> Result<Option<passes::StoredPass>, crate::central::db::RepoError> {
    match passes::for_booking(&state.db, booking.id).await? {
        Some(p) => Ok(Some(p)),
        None => passes::issue(&state.db, &state.passes, booking.id).await,
    }
}

/// The visitor pass of a booking: its link, state and token.
#[utoipa::path(get, path = "/api/v1/bookings/{id}/pass", tag = "bookings", params(("id" = i64, Path)),
    responses((status = 200, body = PassInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_pass(
    State(state): State<AppState>,
    authed: Authed,
    headers: axum::http::HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<PassInfo>> {
    let lang = crate::i18n::Lang::from_headers(&headers);
    let booking = bookings::get(&state.db, id).await?;
    if !may_decide(&authed, &booking.department) {
        return Err(ApiError::Forbidden);
    }
    let pick = |zh: &str, en: &str| match lang {
        crate::i18n::Lang::Zh => zh.to_string(),
        crate::i18n::Lang::En => en.to_string(),
    };
    let pass = pass_of(&state, &booking).await?;
    let info = match pass {
        Some(p) => {
            let s = passes::PassState::of(&p, &booking, Utc::now());
            let (zh, en) = s.label();
            PassInfo {
                booking_id: id,
                state: serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                state_text: pick(zh, en),
                link: Some(p.link()),
                token: Some(p.token.clone()),
                key_id: Some(p.kid),
                issued_at: Some(p.issued_at),
                note: None,
            }
        }
        None => {
            let note = if state.passes.kid().is_none() {
                pick(
                    "未配置通行码密钥，未签发通行码（gatehouse pki pass-key new）",
                    "no pass key is configured, so no pass was issued (gatehouse pki pass-key new)",
                )
            } else {
                pick(
                    "预约批准后才签发通行码",
                    "a pass is issued once the booking is approved",
                )
            };
            PassInfo {
                booking_id: id,
                state: "none".into(),
                state_text: pick("无通行码", "no pass"),
                link: None,
                token: None,
                key_id: None,
                issued_at: None,
                note: Some(note),
            }
        }
    };
    Ok(ApiJson(info))
}

macro_rules! step_handler {
    ($name:ident, $path:literal, $step:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "bookings", params(("id" = i64, Path)),
            responses((status = 200, body = Booking), (status = 401, body = ErrorBody),
                (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
                (status = 409, body = ErrorBody, description = "The step does not apply to the current status")))]
        async fn $name(
            State(state): State<AppState>,
            authed: Authed,
            ApiPath(id): ApiPath<i64>,
        ) -> ApiResult<ApiJson<Booking>> {
            step(&state, &authed, id, $step).await
        }
    };
}

step_handler!(
    approve_booking,
    "/api/v1/bookings/{id}/approve",
    Transition::Approve,
    "Approve a pending booking (admin, security, the department's approver)."
);
step_handler!(
    reject_booking,
    "/api/v1/bookings/{id}/reject",
    Transition::Reject,
    "Reject a pending booking (admin, security, the department's approver)."
);
step_handler!(
    cancel_booking,
    "/api/v1/bookings/{id}/cancel",
    Transition::Cancel,
    "Cancel a pending or approved booking (admin, security, the department's approver)."
);
step_handler!(
    arrive_booking,
    "/api/v1/bookings/{id}/arrive",
    Transition::Arrive,
    "Record an approved visitor's arrival (admin, security, guard)."
);
step_handler!(
    leave_booking,
    "/api/v1/bookings/{id}/leave",
    Transition::Leave,
    "Record an arrived visitor's departure (admin, security, guard)."
);
step_handler!(
    no_show_booking,
    "/api/v1/bookings/{id}/no-show",
    Transition::NoShow,
    "Record that an approved visitor did not come (admin, security, guard)."
);

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_bookings, create_booking))
        .routes(routes!(get_booking, update_booking))
        .routes(routes!(approve_booking))
        .routes(routes!(reject_booking))
        .routes(routes!(cancel_booking))
        .routes(routes!(arrive_booking))
        .routes(routes!(leave_booking))
        .routes(routes!(no_show_booking))
        .routes(routes!(get_pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_mobiles_and_landlines_are_normalised_and_anything_else_is_refused() {
        assert_eq!(
            normalise_phone("138 1234 5678").as_deref(),
            Some("13812345678")
        );
        assert_eq!(
            normalise_phone("+86 138-1234-5678").as_deref(),
            Some("13812345678")
        );
        assert_eq!(
            normalise_phone("010-62345678").as_deref(),
            Some("010-62345678")
        );
        assert_eq!(
            normalise_phone("01062345678").as_deref(),
            Some("010-62345678")
        );
        assert_eq!(
            normalise_phone("(0755)2345678").as_deref(),
            Some("0755-2345678")
        );
        for bad in [
            "",
            "12812345678",
            "1381234567",
            "138123456789",
            "abc",
            "010-0234567",
            "010-12345678",
            "+86 010-62345678",
        ] {
            assert_eq!(normalise_phone(bad), None, "{bad}");
        }
    }
}
