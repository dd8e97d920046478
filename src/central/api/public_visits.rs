//! `/api/v1/public/visit-requests`: self-booking (访客自助预约) — a visitor, with no account,
//! asks to visit a host named by staff/student number or phone; the host decides in `/admin`.
//!
//! No enumeration: a submit whose form is valid is answered `202` with a status link, the same
//! status, body shape, headers and timing class (never sooner than
//! [`crate::central::rate_limit::RateLimits::answer_floor`]) whether the host exists or not. With a
//! host, a pending booking (category visitor) and its `visit_requests` row are stored and the
//! host is notified; without one, nothing is stored at all.
//!
//! The status token: 16 random bytes, the slot's start and end (minutes since 1970), and an
//! HMAC-SHA256 over them with the site's secret (`visit_request_secret`), in hex. So a made-up
//! or altered token is unknown (404), while a token issued for a request that was never stored
//! reads exactly like a stored one nobody has decided yet — 等待被访人确认 — until its slot
//! ends, and then, like an undecided stored one, 已过期.
//!
//! Every public endpoint is rate-limited per source ([`crate::central::rate_limit`]): submits and
//! status reads separately.
//!
//! What it never does: store anything for an invalid form or an unknown host, say whether a
//! host exists, or show a visitor anything of the booking but its state, slot and pass link.

use std::time::Instant;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::ClientAddr;
use super::bookings::normalise_phone;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath};
use crate::central::db::{Actor, RepoError};
use crate::central::notify::{self, Notice};
use crate::central::rate_limit::{Kind, retry_after_secs};
use crate::central::repo::bookings::{self, BookingStatus, NewBooking};
use crate::central::repo::permits::person_department;
use crate::central::repo::{persons, visit_requests};
use crate::central::state::AppState;
use crate::central::validate::check_email;
use crate::domain::Plate;
use crate::i18n::Msg;

/// The longest visit a visitor may ask for.
pub const MAX_SLOT_DAYS: i64 = 7;
/// How far ahead a visitor may book.
pub const MAX_AHEAD_DAYS: i64 = 30;

/// A visitor's request, as the self-booking page sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitRequestInput {
    /// The host: their staff/student number (工号/学号) or phone number, typed any way.
    #[schema(example = "T2003117")]
    pub host: String,
    /// The province picked beside the plate (`浙`); empty or omitted when the plate is typed
    /// whole.
    #[serde(default)]
    #[schema(example = "浙")]
    pub province: String,
    /// The plate, any way people type it (`am1205`, `浙A·M1205`).
    #[schema(example = "AM1205")]
    pub plate: String,
    #[schema(example = "李娜")]
    pub visitor_name: String,
    /// 11-digit mainland mobile (`+86` and spaces allowed) or landline with area code.
    #[schema(example = "13912345678")]
    pub visitor_phone: String,
    /// For the visitor's own notices; optional.
    #[serde(default)]
    pub visitor_email: String,
    #[serde(default)]
    #[schema(example = "学术交流")]
    pub purpose: String,
    /// RFC 3339 (`2026-12-08T09:00:00+08:00`), or `YYYY-MM-DDTHH:MM` in the site's time zone;
    /// a whole minute.
    #[schema(example = "2026-12-08T09:00")]
    pub slot_from: String,
    /// As `slot_from`; after it, at most 7 days later.
    #[schema(example = "2026-12-08T12:00")]
    pub slot_until: String,
}

/// The answer to every valid request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VisitRequestAnswer {
    /// The visitor's status page (keep it: it is the only way back to the request).
    #[schema(example = "/visit/s/0a1b…")]
    pub status_url: String,
}

/// Where a request stands, as its visitor may know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitState {
    /// Waiting for the host (等待被访人确认).
    Pending,
    /// Approved: the pass, once issued, is linked.
    Approved,
    /// The visitor came (arrived or left).
    Visited,
    Rejected,
    Cancelled,
    /// The slot ended before anyone decided (or the visitor did not come).
    Expired,
}

impl VisitState {
    /// Whether the state can no longer change (the status page stops refreshing).
    pub fn is_final(self) -> bool {
        !matches!(self, VisitState::Pending | VisitState::Approved)
    }
}

/// A request's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VisitStatus {
    pub state: VisitState,
    pub slot_from: DateTime<Utc>,
    pub slot_until: DateTime<Utc>,
    /// The pass page, once the approved booking's pass is issued.
    pub pass_url: Option<String>,
}

/// The fields of a visit, checked: shared by the public request and a host's own booking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VisitFields {
    pub plate: String,
    pub visitor_name: String,
    pub visitor_phone: String,
    pub visitor_email: String,
    pub purpose: String,
    pub slot_from: DateTime<Utc>,
    pub slot_until: DateTime<Utc>,
}

/// The visit fields as typed, before checking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypedVisit<'a> {
    pub province: &'a str,
    pub plate: &'a str,
    pub visitor_name: &'a str,
    pub visitor_phone: &'a str,
    pub visitor_email: &'a str,
    pub purpose: &'a str,
    pub slot_from: &'a str,
    pub slot_until: &'a str,
}

fn too_long(f: &mut Fields, field: &str, text: &str, max: usize) {
    if text.chars().count() > max {
        f.add(
            field,
            "too_long",
            Msg::new(
                format!("{} 最多 {max} 个字符", zh_field(field)),
                format!("{field} has more than {max} characters"),
            ),
        );
    }
}

fn zh_field(field: &str) -> &'static str {
    match field {
        "host" => "被访人",
        "visitor_name" => "访客姓名",
        "purpose" => "来访事由",
        "province" => "省份",
        _ => "该项",
    }
}

/// A time as the page or a client sends it: RFC 3339, or a local `YYYY-MM-DDTHH:MM` in `tz`.
fn parse_time(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .ok()?;
    Some(
        tz.from_local_datetime(&local)
            .earliest()?
            .with_timezone(&Utc),
    )
}

/// Checks every field of a visit at `now`, reporting every problem at once (422); writes
/// nothing.
pub(crate) fn check_visit(
    f: &mut Fields,
    v: TypedVisit<'_>,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<VisitFields> {
    too_long(f, "province", v.province, 2);
    let plate = if v.plate.trim().is_empty() {
        f.add(
            "plate",
            "required",
            Msg::new("请填写车牌号", "the plate is required"),
        );
        None
    } else if v.plate.chars().count() > 20 {
        f.add(
            "plate",
            "too_long",
            Msg::new("车牌号过长", "the plate is too long"),
        );
        None
    } else {
        match Plate::parse_with_province(v.province, v.plate) {
            Ok(p) => Some(p.as_str().to_string()),
            Err(e) => {
                f.plate("plate", &e);
                None
            }
        }
    };
    let visitor_name = v.visitor_name.trim().to_string();
    if visitor_name.is_empty() {
        f.add(
            "visitor_name",
            "required",
            Msg::new("请填写访客姓名", "the visitor's name is required"),
        );
    }
    too_long(f, "visitor_name", &visitor_name, 50);
    let visitor_phone = normalise_phone(v.visitor_phone);
    if visitor_phone.is_none() {
        f.add(
            "visitor_phone",
            "invalid_phone",
            Msg::new(
                "手机号须为 11 位手机号或带区号的固定电话（如 010-62345678）",
                "the phone must be an 11-digit mainland mobile or a landline with its area code (e.g. 010-62345678)",
            ),
        );
    }
    let visitor_email = match check_email(v.visitor_email) {
        Ok(e) => e,
        Err(message) => {
            f.add("visitor_email", "invalid_email", message);
            String::new()
        }
    };
    let purpose = v.purpose.trim().to_string();
    too_long(f, "purpose", &purpose, 200);
    let times = [("slot_from", v.slot_from), ("slot_until", v.slot_until)].map(|(field, text)| {
        let t = parse_time(text, tz);
        match t {
            None => f.add(
                field,
                "invalid_time",
                Msg::new(
                    "时间格式不正确，请选择日期和时间",
                    format!("{field} must be a date and time (YYYY-MM-DDTHH:MM or RFC 3339)"),
                ),
            ),
            Some(t) if t.timestamp() % 60 != 0 || t.timestamp_subsec_nanos() != 0 => f.add(
                field,
                "not_whole_minute",
                Msg::new("时间须为整分钟", format!("{field} must be a whole minute")),
            ),
            Some(_) => {}
        }
        t
    });
    let (slot_from, slot_until) = match times {
        [Some(from), Some(until)] => (from, until),
        _ => {
            return None;
        }
    };
    if slot_until <= slot_from {
        f.add(
            "slot_until",
            "reversed_window",
            Msg::new("结束时间须晚于开始时间", "the end must be after the start"),
        );
    } else if slot_until - slot_from > Duration::days(MAX_SLOT_DAYS) {
        f.add(
            "slot_until",
            "slot_too_long",
            Msg::new(
                format!("来访时段最长 {MAX_SLOT_DAYS} 天"),
                format!("a visit lasts at most {MAX_SLOT_DAYS} days"),
            ),
        );
    } else if slot_until <= now {
        f.add(
            "slot_until",
            "slot_in_past",
            Msg::new("来访时段已经结束", "the visit's time has already passed"),
        );
    }
    if slot_from > now + Duration::days(MAX_AHEAD_DAYS) {
        f.add(
            "slot_from",
            "too_far_ahead",
            Msg::new(
                format!("最多可预约 {MAX_AHEAD_DAYS} 天内的来访"),
                format!("a visit can be booked at most {MAX_AHEAD_DAYS} days ahead"),
            ),
        );
    }
    Some(VisitFields {
        plate: plate?,
        visitor_name,
        visitor_phone: visitor_phone?,
        visitor_email,
        purpose,
        slot_from,
        slot_until,
    })
}

type HmacSha256 = Hmac<Sha256>;

/// The bytes of a token: nonce, slot start and end in minutes, MAC.
const NONCE: usize = 16;
const MAC: usize = 16;
const TOKEN_BYTES: usize = NONCE + 4 + 4 + MAC;

fn mac_of(secret: &[u8], body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(b"gatehouse visit request v1");
    mac.update(body);
    Some(mac)
}

/// A new status token for a request with this slot.
pub fn mint_token(secret: &[u8], from: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let mut body = [0u8; NONCE + 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut body[..NONCE]);
    let minutes = |t: DateTime<Utc>| u32::try_from(t.timestamp().div_euclid(60)).unwrap_or(0);
    body[NONCE..NONCE + 4].copy_from_slice(&minutes(from).to_be_bytes());
    body[NONCE + 4..].copy_from_slice(&minutes(until).to_be_bytes());
    let tag = mac_of(secret, &body)
        .map(|m| m.finalize().into_bytes().to_vec())
        .unwrap_or_default();
    let mut token = body.to_vec();
    token.extend_from_slice(&tag[..MAC.min(tag.len())]);
    hex::encode(token)
}

/// The slot a token was issued for, if the token is one this site made (the MAC checked in
/// constant time); `None` for anything else.
pub fn read_token(secret: &[u8], token: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if token.len() != TOKEN_BYTES * 2
        || !token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let bytes = hex::decode(token).ok()?;
    let (body, tag) = bytes.split_at(NONCE + 8);
    mac_of(secret, body)?.verify_truncated_left(tag).ok()?;
    let minutes = |b: &[u8]| -> Option<DateTime<Utc>> {
        let m = u32::from_be_bytes(b.try_into().ok()?);
        DateTime::from_timestamp(i64::from(m) * 60, 0)
    };
    Some((
        minutes(&body[NONCE..NONCE + 4])?,
        minutes(&body[NONCE + 4..])?,
    ))
}

/// The status of the request behind `token` (`None`: not a token of this site). A token whose
/// request was never stored reads as pending until its slot ends, then as expired — exactly
/// like a stored request nobody decided.
pub async fn status_of(state: &AppState, token: &str) -> Result<Option<VisitStatus>, RepoError> {
    let secret = visit_requests::secret(&state.db).await?;
    let Some((slot_from, slot_until)) = read_token(&secret, token) else {
        return Ok(None);
    };
    let now = Utc::now();
    let undecided = if now < slot_until {
        VisitState::Pending
    } else {
        VisitState::Expired
    };
    let mut pass_url = None;
    let visit_state = match visit_requests::booking_of(&state.db, token).await? {
        None => undecided,
        Some(id) => {
            let booking = bookings::get(&state.db, id).await?;
            match booking.status {
                BookingStatus::Pending => undecided,
                BookingStatus::Approved => {
                    pass_url = crate::central::passes::link_for_booking(&state.db, id).await?;
                    if now < slot_until {
                        VisitState::Approved
                    } else {
                        VisitState::Expired
                    }
                }
                BookingStatus::Arrived | BookingStatus::Left => VisitState::Visited,
                BookingStatus::Rejected => VisitState::Rejected,
                BookingStatus::Cancelled => VisitState::Cancelled,
                BookingStatus::NoShow => VisitState::Expired,
            }
        }
    };
    Ok(Some(VisitStatus {
        state: visit_state,
        slot_from,
        slot_until,
        pass_url,
    }))
}

/// The actor self-booked requests are stored as in the audit log.
fn visitor_actor() -> Actor {
    Actor {
        operator_id: None,
        name: "visitor".into(),
    }
}

/// One submit counted against the source's limit, before the body is read.
#[derive(Debug)]
pub struct SubmitAllowed(pub ClientAddr);

impl FromRequestParts<AppState> for SubmitAllowed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(addr) = ClientAddr::from_request_parts(parts, state).await;
        state
            .public_limits
            .check_at(Kind::Submit, &addr.0, Instant::now())
            .map_err(too_many)?;
        Ok(SubmitAllowed(addr))
    }
}

/// One status read counted against the source's limit.
#[derive(Debug)]
pub struct ReadAllowed;

impl FromRequestParts<AppState> for ReadAllowed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(addr) = ClientAddr::from_request_parts(parts, state).await;
        state
            .public_limits
            .check_at(Kind::Read, &addr.0, Instant::now())
            .map_err(too_many)?;
        Ok(ReadAllowed)
    }
}

/// Stores a valid request for its host, when there is one. Failures are logged, never
/// answered: the answer must not differ.
async fn store(state: &AppState, host: &str, v: &VisitFields, token: &str, source: &str) {
    let result: Result<(), RepoError> = async {
        let Some(host_id) = persons::find_host(&state.db, host).await? else {
            return Ok(());
        };
        let department = person_department(&state.db, host_id)
            .await?
            .unwrap_or_default();
        let new = NewBooking {
            host_id,
            department,
            purpose: v.purpose.clone(),
            plate: v.plate.clone(),
            plate_colour: None,
            driver_name: v.visitor_name.clone(),
            driver_phone: v.visitor_phone.clone(),
            slot_from: v.slot_from,
            slot_until: v.slot_until,
            walk_in: false,
        };
        let booking = bookings::create(&state.db, &visitor_actor(), &new).await?;
        visit_requests::attach(&state.db, token, booking.id, &v.visitor_email, source).await?;
        notify::queue(
            &state.db,
            Notice::VisitRequested {
                booking_id: booking.id,
            },
        )
        .await;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "storing a visit request failed");
    }
}

/// Ask to visit a host (no sign-in). The same `202` whether or not the host exists.
#[utoipa::path(post, path = "/api/v1/public/visit-requests", tag = "self-booking",
    request_body = VisitRequestInput,
    responses((status = 202, body = VisitRequestAnswer,
            description = "Received; follow status_url (the same answer whether or not the host exists)"),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody,
            description = "Too many requests from this source; see Retry-After")))]
async fn submit_visit_request(
    State(state): State<AppState>,
    SubmitAllowed(addr): SubmitAllowed,
    ApiJson(input): ApiJson<VisitRequestInput>,
) -> ApiResult<Response> {
    let started = Instant::now();
    let mut f = Fields::new();
    let host = input.host.trim().to_string();
    if host.is_empty() {
        f.add(
            "host",
            "required",
            Msg::new(
                "请填写被访人的工号/学号或手机号",
                "name the host by staff/student number or phone",
            ),
        );
    }
    too_long(&mut f, "host", &host, 64);
    let typed = TypedVisit {
        province: &input.province,
        plate: &input.plate,
        visitor_name: &input.visitor_name,
        visitor_phone: &input.visitor_phone,
        visitor_email: &input.visitor_email,
        purpose: &input.purpose,
        slot_from: &input.slot_from,
        slot_until: &input.slot_until,
    };
    let visit = check_visit(&mut f, typed, state.site_tz, Utc::now());
    f.finish()?;
    let Some(visit) = visit else {
        return Err(ApiError::Internal);
    };
    let secret = visit_requests::secret(&state.db).await?;
    let token = mint_token(&secret, visit.slot_from, visit.slot_until);
    store(&state, &host, &visit, &token, &addr.0).await;
    let floor = state.public_limits.limits().answer_floor;
    if let Some(left) = floor.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let status_url = format!("/visit/s/{token}");
    let mut response = (
        StatusCode::ACCEPTED,
        ApiJson(VisitRequestAnswer {
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Where a visit request stands (no sign-in; the token is the status link's).
#[utoipa::path(get, path = "/api/v1/public/visit-requests/{token}", tag = "self-booking",
    params(("token" = String, Path, description = "The token of the status link")),
    responses((status = 200, body = VisitStatus), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "Too many requests from this source; see Retry-After")))]
async fn get_visit_request(
    State(state): State<AppState>,
    _allowed: ReadAllowed,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<ApiJson<VisitStatus>> {
    match status_of(&state, &token).await? {
        Some(status) => Ok(ApiJson(status)),
        None => Err(unknown_token()),
    }
}

/// The 429 for a source that must wait `wait`, with `Retry-After` in whole seconds.
pub fn too_many(wait: std::time::Duration) -> Response {
    let secs = retry_after_secs(wait);
    let mut response = ApiError::TooManyRequests(Msg::new(
        format!("请求过于频繁，请在 {secs} 秒后重试"),
        format!("Too many requests; try again in {secs} s"),
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// The 404 of a token this site did not make.
pub fn unknown_token() -> ApiError {
    ApiError::NotFound(Msg::new(
        "没有这个预约申请，请检查链接是否完整",
        "No such visit request; check that the link is complete",
    ))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_visit_request))
        .routes(routes!(get_visit_request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_its_slot_and_any_changed_character_makes_it_unknown() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let from = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let until = from + Duration::hours(3);
        let token = mint_token(secret, from, until);
        assert_eq!(read_token(secret, &token), Some((from, until)));
        assert_eq!(read_token(b"another secret", &token), None);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(read_token(secret, &changed), None, "position {i}");
        }
        assert_eq!(read_token(secret, ""), None);
        assert_eq!(read_token(secret, &token.to_uppercase()), None);
        assert_eq!(read_token(secret, &format!("{token}00")), None);
    }

    #[test]
    fn local_and_offset_times_are_read_in_the_site_zone() {
        let tz = chrono_tz::Asia::Shanghai;
        let a = parse_time("2026-12-08T09:00", tz).unwrap();
        let b = parse_time("2026-12-08T09:00:00+08:00", tz).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-12-08T01:00:00+00:00");
        assert_eq!(parse_time("tomorrow", tz), None);
    }
}
