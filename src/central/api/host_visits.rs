//! `/api/v1/host/visits`: a host books their own visitor directly (预约访客). The host is an
//! applicant account linked to their person record (`operators.person_id`); the booking is
//! made with them as host and their department, then approved at once through the bookings
//! API's own step ([`super::bookings::step`]), so whatever an approval does (the pass, the
//! notices) happens exactly as when an approver approves.
//!
//! Decided: a host's direct booking of a visitor or an official needs no further approval (the
//! host is who a visitor's request would ask). A contractor's needs the security office's
//! after: the host's approval counts as the department's, and the booking stays pending until
//! the office approves it (as every contractor booking does).
//!
//! What it never does: book for another host, or for an account not linked to a person.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::bookings::step;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::ApiJson;
use super::public_visits::{TypedVisit, check_visit};
use crate::central::repo::bookings::{self, Booking, NewBooking, Transition};
use crate::central::repo::permits::person_department;
use crate::central::repo::{operators, visit_requests};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// A host's own booking of a visitor.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostVisitInput {
    /// The province picked beside the plate; empty when the plate is typed whole.
    #[serde(default)]
    pub province: String,
    #[schema(example = "浙AM1205")]
    pub plate: String,
    #[schema(example = "李娜")]
    pub visitor_name: String,
    #[schema(example = "13912345678")]
    pub visitor_phone: String,
    #[serde(default)]
    pub visitor_email: String,
    #[serde(default)]
    pub purpose: String,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` in the site's time zone; a whole minute.
    pub slot_from: String,
    pub slot_until: String,
    /// `visitor` (default), `contractor` (then the security office approves too) or `official`.
    #[serde(default)]
    pub category: Option<String>,
}

/// The person the signed-in host is, or 403 with why.
pub(crate) async fn host_person(state: &AppState, authed: &Authed) -> ApiResult<i64> {
    operators::person_of(&state.db, authed.operator_id)
        .await?
        .ok_or(ApiError::Forbidden)
}

/// Book a visitor as their host (approved at once; a contractor then waits for the security
/// office).
#[utoipa::path(post, path = "/api/v1/host/visits", tag = "self-booking",
    request_body = HostVisitInput,
    responses((status = 201, body = Booking), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn book_own_visitor(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<HostVisitInput>,
) -> ApiResult<(StatusCode, ApiJson<Booking>)> {
    let host_id = host_person(&state, &authed).await?;
    let mut f = Fields::new();
    let category = input
        .category
        .clone()
        .unwrap_or_else(|| "visitor".to_string());
    if !bookings::CATEGORIES.contains(&category.as_str()) {
        f.add(
            "category",
            "invalid_category",
            Msg::new(
                "类别应为 visitor（访客）、contractor（施工/外包）或 official（公务）",
                "category must be visitor, contractor or official",
            ),
        );
    }
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
    let visit = visit.ok_or(ApiError::Internal)?;
    let department = person_department(&state.db, host_id)
        .await?
        .unwrap_or_default();
    let new = NewBooking {
        host_id,
        department,
        purpose: visit.purpose,
        plate: visit.plate,
        plate_colour: None,
        driver_name: visit.visitor_name,
        driver_phone: visit.visitor_phone,
        slot_from: visit.slot_from,
        slot_until: visit.slot_until,
        walk_in: false,
    };
    let booking = bookings::create_in_category(&state.db, &authed.actor(), &new, &category).await?;
    if !visit.visitor_email.is_empty() {
        visit_requests::set_visitor_email(&state.db, booking.id, &visit.visitor_email).await?;
    }
    let ApiJson(approved) = step(&state, &authed, booking.id, Transition::Approve).await?;
    Ok((StatusCode::CREATED, ApiJson(approved)))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(book_own_visitor))
}
