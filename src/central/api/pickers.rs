//! `/api/v1/pickers/…`: the searches behind the person and vehicle pickers of the permit and
//! exit-pass application forms, so nobody types a database id: persons by name, number or
//! (for the office) phone digits; vehicles by any part of the plate in any spelling (full-width,
//! lower case, separators — normalised like the plate parser does), each with the live passes
//! it already holds, so the form can warn before a second pass of the same kind is asked for.
//!
//! Who: the roles that fill those forms (the route table), each within the scope the
//! applications API gives them (`applications::scope`): the office everyone, a department's
//! approver their department's people and the vehicles they own, an applicant themselves and
//! their own vehicles.
//!
//! What it never does: change anything, return more than a short list (at most 20 rows), or
//! show a phone number or ID-card number (a picker shows name, department and plate only).

use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::applications::{Scope, scope};
use super::auth::Authed;
use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use super::permits::validity_text;
use crate::central::db::now_ms;
use crate::central::repo::permits::{
    LivePass, PickScope, PickedPerson, live_passes, pick_persons, pick_vehicles,
};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::{category_label, lang_of, pass_kind_label};

/// The most rows a picker offers.
const LIMIT: i64 = 20;

/// `?q=`: what was typed.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PersonPick {
    /// Part of the name, the person's number, or (office only) phone digits.
    #[serde(default)]
    pub q: String,
}

/// `?q=&owner_id=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VehiclePick {
    /// Part of the plate in any spelling (`浙ａｍ１２`, `zhe am-12` after the province).
    #[serde(default)]
    pub q: String,
    /// Only this person's vehicles.
    pub owner_id: Option<i64>,
}

/// A person as a picker offers them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonChoice {
    pub id: i64,
    pub name: String,
    pub department: String,
    /// The category code (staff, student, …) and its words in the caller's language.
    pub category: String,
    pub category_label: String,
}

/// A live pass a vehicle already holds, as the form's warning shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LivePassShown {
    pub permit_id: i64,
    /// A one-off exit pass rather than a period pass.
    pub single_use: bool,
    /// The kind in the caller's language.
    pub kind_label: String,
    pub holder_name: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// `2026-12-06 08:00 — 2027-12-06 08:00` in the site's time zone.
    pub validity: String,
}

/// A vehicle as a picker offers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VehicleChoice {
    pub id: i64,
    pub plate: String,
    pub plate_colour: String,
    pub owner_id: Option<i64>,
    pub owner_name: Option<String>,
    pub owner_department: Option<String>,
    /// Its live passes (active, not expired), oldest first.
    pub live_passes: Vec<LivePassShown>,
}

/// The picker's scope for the caller. A caller who may name nobody (an approver without a
/// department, an applicant account linked to no person) finds nobody, as the applications
/// list shows them nothing.
async fn pick_scope(state: &AppState, authed: &Authed) -> ApiResult<PickScope> {
    Ok(match scope(state, authed).await? {
        Scope::All => PickScope::All,
        Scope::Department(d) => PickScope::Department(d),
        Scope::Person(p) => PickScope::Person(p),
        Scope::Nothing => PickScope::Person(-1),
    })
}

/// A live pass as the pickers and the pages show it.
pub(crate) fn shown(lang: crate::i18n::Lang, tz: chrono_tz::Tz, p: &LivePass) -> LivePassShown {
    LivePassShown {
        permit_id: p.permit_id,
        single_use: p.single_use,
        kind_label: pass_kind_label(lang, p.single_use).into(),
        holder_name: p.holder_name.clone(),
        valid_from: p.valid_from,
        valid_until: p.valid_until,
        validity: validity_text(tz, p.valid_from, p.valid_until),
    }
}

/// Find a person for a form
///
/// At most 20 persons whose name contains the text, whose number is it, or (admin and security)
/// whose phone contains it; within the caller's scope, by name.
#[utoipa::path(get, path = "/api/v1/pickers/persons", tag = "pickers", params(PersonPick),
    responses((status = 200, body = Vec<PersonChoice>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn pick_person(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PersonPick>,
) -> ApiResult<ApiJson<Vec<PersonChoice>>> {
    let scope = pick_scope(&state, &authed).await?;
    let lang = lang_of(&headers);
    let found: Vec<PickedPerson> =
        pick_persons(&state.db, &q.q, authed.sees_personal_ids(), &scope, LIMIT).await?;
    Ok(ApiJson(
        found
            .into_iter()
            .map(|p| PersonChoice {
                category_label: category_label(lang, &p.category),
                id: p.id,
                name: p.name,
                department: p.department,
                category: p.category,
            })
            .collect(),
    ))
}

/// Find a vehicle for a form
///
/// At most 20 vehicles whose plate contains the typed text (normalised: full-width, lower case
/// and separators are fine), of one owner when `owner_id` is given, within the caller's scope;
/// each with the live passes it already holds.
#[utoipa::path(get, path = "/api/v1/pickers/vehicles", tag = "pickers", params(VehiclePick),
    responses((status = 200, body = Vec<VehicleChoice>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn pick_vehicle(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<VehiclePick>,
) -> ApiResult<ApiJson<Vec<VehicleChoice>>> {
    let scope = pick_scope(&state, &authed).await?;
    let lang = lang_of(&headers);
    let fragment = normalise_fragment(&q.q);
    let found = pick_vehicles(&state.db, &fragment, q.owner_id, &scope, LIMIT).await?;
    let ids: Vec<i64> = found.iter().map(|v| v.id).collect();
    let live = live_passes(&state.db, &ids, now_ms()).await?;
    Ok(ApiJson(
        found
            .into_iter()
            .map(|v| VehicleChoice {
                live_passes: live
                    .iter()
                    .filter(|p| p.vehicle_id == v.id)
                    .map(|p| shown(lang, state.site_tz, p))
                    .collect(),
                id: v.id,
                plate: v.plate,
                plate_colour: v.plate_colour,
                owner_id: v.owner_id,
                owner_name: v.owner_name,
                owner_department: v.owner_department,
            })
            .collect(),
    ))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pick_person))
        .routes(routes!(pick_vehicle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_reads_in_the_site_zone() {
        let from = DateTime::from_timestamp(1_767_225_600, 0).unwrap(); // 2026-01-01 00:00Z
        let until = DateTime::from_timestamp(1_767_229_200, 0).unwrap();
        assert_eq!(
            validity_text(chrono_tz::Asia::Shanghai, from, until),
            "2026-01-01 08:00 — 2026-01-01 09:00"
        );
    }
}
