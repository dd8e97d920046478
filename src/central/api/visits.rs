//! `/api/v1/visits`: outside vehicles registered at the booth — one form (plate, driver, phone,
//! host and department, purpose, expected departure), which records the visit and opens the
//! lane for it (`visitor_registered`); the visit is closed when the vehicle leaves; open visits
//! are listed with overstays flagged. Guards register and close visits at their own gates,
//! and register (which opens) only where they are on duty when the site requires it
//! ([`super::booth_rules`]). A plate may come with the province picked beside it
//! (`province`): it is put in front unless the plate already starts with a province.
//!
//! What it never does: save anything when a field is wrong (every error is reported at once,
//! in zh-CN or English), or open a lane when saving failed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::blacklist::check_plate;
use super::bookings::{normalise_phone, sees_phone};
use super::booth_rules::require_on_duty;
use super::console::{lane_of, may_act, send_guard_command_for};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath};
use crate::central::db::{RepoError, now_ms};
use crate::central::repo::bookings::{self, Transition};
use crate::central::repo::persons::mask_phone;
use crate::central::repo::visits::{self, NewVisit, Visit};
use crate::central::state::AppState;
use crate::domain::plate::{is_province, with_province};
use crate::i18n::{Lang, Msg};

/// Longest free-text field.
const MAX_TEXT: usize = 100;
/// Longest stay a guard can register (7 days).
const MAX_STAY_MS: i64 = 7 * 86_400_000;

/// A visitor vehicle as the booth registers it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    pub gate_id: Option<i64>,
    /// The lane the vehicle is in (its key, e.g. `entry`).
    #[serde(default)]
    pub lane: String,
    /// Any way people type it (`京A·12345`, `京ａ12345`, `ａｍ１２０５` with `province`);
    /// stored normalised.
    #[serde(default)]
    pub plate: String,
    /// The province picked beside the plate (浙): put in front of `plate` unless the plate
    /// already starts with a province abbreviation (or 使). Empty or absent: the plate as typed.
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub driver_name: String,
    /// 11-digit mainland mobile or a landline (`010-62345678`).
    #[serde(default)]
    pub driver_phone: String,
    #[serde(default)]
    pub host_name: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub purpose: String,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` in the site's time zone (`server.timezone`).
    #[serde(default)]
    pub expected_departure: String,
    /// The booking, for a pre-booked visitor (it is marked arrived).
    #[serde(default)]
    pub booking_id: Option<i64>,
}

/// A registered visit, and what the lane did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VisitRegistered {
    pub visit: Visit,
    /// `done` (the barrier opened), `gate_offline`, `timeout` or `refused`.
    pub barrier: String,
    pub message: String,
}

fn required(
    field: &'static str,
    text: &str,
    zh: &'static str,
    en: &'static str,
    f: &mut Fields,
) -> String {
    let text = text.trim().to_string();
    if text.is_empty() {
        f.add(field, "required", Msg::new(zh, en));
    } else if text.chars().count() > MAX_TEXT {
        f.add(
            field,
            "too_long",
            Msg::new(
                format!("最多 {MAX_TEXT} 个字符"),
                format!("At most {MAX_TEXT} characters"),
            ),
        );
    }
    text
}

/// Parses an expected departure: RFC 3339, or a `YYYY-MM-DDTHH:MM` in the site's zone `tz`.
pub(crate) fn parse_departure(tz: Tz, text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .ok()?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.timestamp_millis())
}

fn check(input: &VisitInput, tz: Tz) -> Result<NewVisit, ApiError> {
    let mut f = Fields::new();
    let gate_id = input.gate_id.unwrap_or(0);
    if input.gate_id.is_none() {
        f.add(
            "gate_id",
            "required",
            Msg::new("请选择大门", "Choose the gate"),
        );
    }
    let lane = required("lane", &input.lane, "请选择车道", "Choose the lane", &mut f);
    let plate = if input.plate.trim().is_empty() {
        f.add(
            "plate",
            "required",
            Msg::new("车牌号必填", "The plate is required"),
        );
        None
    } else {
        let typed = match input.province.as_deref() {
            Some(p) if !p.trim().is_empty() => {
                let p = p.trim();
                if p.chars().count() != 1 || !p.chars().all(is_province) {
                    f.add(
                        "province",
                        "invalid_value",
                        Msg::new(
                            format!("“{p}”不是省份简称"),
                            format!("“{p}” is not a province abbreviation"),
                        ),
                    );
                }
                with_province(p, &input.plate)
            }
            _ => input.plate.clone(),
        };
        check_plate("plate", Some(&typed), &mut f)
    };
    let driver_name = required(
        "driver_name",
        &input.driver_name,
        "请填写驾驶人姓名",
        "Enter the driver's name",
        &mut f,
    );
    let driver_phone = match normalise_phone(&input.driver_phone) {
        Some(p) => p,
        None => {
            f.add(
                "driver_phone",
                "invalid_phone",
                Msg::new(
                    "请填写 11 位手机号或带区号的座机号（如 010-62345678）",
                    "Enter an 11-digit mobile or a landline with its area code (010-62345678)",
                ),
            );
            String::new()
        }
    };
    let host_name = required(
        "host_name",
        &input.host_name,
        "请填写被访人",
        "Enter the host",
        &mut f,
    );
    let department = required(
        "department",
        &input.department,
        "请填写被访部门",
        "Enter the host's department",
        &mut f,
    );
    let purpose = required(
        "purpose",
        &input.purpose,
        "请填写来访事由",
        "Enter the purpose of the visit",
        &mut f,
    );
    let now = now_ms();
    let expected = match parse_departure(tz, &input.expected_departure) {
        None => {
            f.add(
                "expected_departure",
                "invalid_time",
                Msg::new("请填写预计离开时间", "Enter the expected departure time"),
            );
            0
        }
        Some(t) if t <= now => {
            f.add(
                "expected_departure",
                "in_the_past",
                Msg::new(
                    "预计离开时间须晚于现在",
                    "The expected departure must be later than now",
                ),
            );
            t
        }
        Some(t) if t > now + MAX_STAY_MS => {
            f.add(
                "expected_departure",
                "too_late",
                Msg::new(
                    "登记访问最长 7 天",
                    "A registered visit lasts at most 7 days",
                ),
            );
            t
        }
        Some(t) => t,
    };
    f.finish()?;
    Ok(NewVisit {
        booking_id: input.booking_id,
        gate_id,
        lane,
        plate: plate.map(|p| p.as_str().to_string()).unwrap_or_default(),
        driver_name,
        driver_phone,
        host_name,
        department,
        purpose,
        expected_departure_ms: expected,
    })
}

/// Register a visitor vehicle at the booth: records the visit, then opens its lane.
#[utoipa::path(post, path = "/api/v1/visits", tag = "visits", request_body = VisitInput,
    responses((status = 201, body = VisitRegistered), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    ApiJson(input): ApiJson<VisitInput>,
) -> ApiResult<(StatusCode, ApiJson<VisitRegistered>)> {
    // Another gate's guard learns nothing, not even which fields are wrong.
    if let Some(gate_id) = input.gate_id {
        may_act(&authed, gate_id)?;
    }
    let new = check(&input, state.site_tz)?;
    lane_of(&state, new.gate_id, &new.lane).await?;
    // Registering opens the lane: the same duty rule as a manual open, before anything is saved.
    require_on_duty(&state, &authed, new.gate_id, &new.lane, "register_visitor").await?;
    if let Some(id) = new.booking_id {
        let booking = bookings::get(&state.db, id).await?;
        if booking.plate != new.plate {
            let mut f = Fields::new();
            f.add(
                "booking_id",
                "plate_mismatch",
                Msg::new(
                    "预约的车牌与登记车牌不一致",
                    "The booking is for another plate",
                ),
            );
            f.finish()?;
        }
    }
    let visit = visits::create(&state.db, &authed.actor(), &new).await?;
    if let Some(id) = new.booking_id {
        // An approved booking is now arrived; any other status is left as the office set it.
        if let Err(e) =
            bookings::transition(&state.db, &authed.actor(), id, Transition::Arrive).await
        {
            tracing::info!(booking = id, error = %e, "visit registered without marking the booking arrived");
        }
    }
    let (barrier, msg) = send_guard_command_for(
        &state,
        &authed,
        new.gate_id,
        &new.lane,
        "open",
        "visitor_registered",
        // The note names the registration, so the passage it opens for is linked to it.
        Some(crate::central::outside::registration_note(visit.id)),
        // The plate travels with the open: the lane, its passage and the audit show it.
        Some(visit.plate.clone()),
    )
    .await?;
    let lang = Lang::from_headers(&headers);
    let message = if barrier == "done" {
        Msg::new("已登记，道闸已抬起", "Registered; the barrier is open")
    } else {
        Msg::new(
            format!("已登记。{}", msg.zh),
            format!("Registered. {}", msg.en),
        )
    };
    Ok((
        StatusCode::CREATED,
        ApiJson(VisitRegistered {
            visit,
            barrier,
            message: message.get(lang).to_string(),
        }),
    ))
}

/// Visits still on campus at the caller's gates, overstays first.
#[utoipa::path(get, path = "/api/v1/visits", tag = "visits",
    responses((status = 200, body = Vec<Visit>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_open(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<ApiJson<Vec<Visit>>> {
    let all = authed.has(Role::Admin) || authed.has(Role::Security) || authed.has(Role::Viewer);
    let gates = (!all).then(|| authed.gates.clone());
    let mut open = visits::open(&state.db, gates.as_deref()).await?;
    // Those who call the driver back see the number; a viewer sees it masked, as in bookings.
    if !sees_phone(&authed) {
        for v in &mut open {
            v.driver_phone = mask_phone(&v.driver_phone);
        }
    }
    Ok(ApiJson(open))
}

/// The visitor left: close the visit.
#[utoipa::path(post, path = "/api/v1/visits/{id}/leave", tag = "visits", params(("id" = i64, Path)),
    responses((status = 200, body = Visit), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn leave(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Visit>> {
    let visit = visits::get(&state.db, id).await?;
    may_act(&authed, visit.gate_id)?;
    match visits::close(&state.db, &authed.actor(), id).await {
        Ok(Some(v)) => {
            if let Some(b) = v.booking_id
                && let Err(e) =
                    bookings::transition(&state.db, &authed.actor(), b, Transition::Leave).await
            {
                tracing::info!(booking = b, error = %e, "visit closed; booking not marked left");
            }
            Ok(ApiJson(v))
        }
        Ok(None) => Err(ApiError::Conflict(Msg::new(
            "该访客已离开",
            "This visitor has already left",
        ))),
        Err(RepoError::NotFound) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, list_open))
        .routes(routes!(leave))
}
