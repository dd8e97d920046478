//! `GET /api/v1/events`: passage events, newest first. Admin, security and viewers see every
//! gate; guards only their own (a filter on another gate is a 403, no filter means their gates).
//!
//! What it never does: store events (the gates' sync does, through
//! [`crate::central::repo::events::ingest`]).

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::blacklist::{check_plate, check_time};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiQuery, PageOf, PageQuery, paged};
use crate::central::repo::events::{self, EventQuery, PassageEvent};
use crate::central::state::AppState;

/// `?plate=&gate_id=&lane=&kind=&granted=&reason=&from=&until=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventSearch {
    /// A whole plate, any spelling (normalised before the search).
    pub plate: Option<String>,
    pub gate_id: Option<i64>,
    /// The lane's key.
    pub lane: Option<String>,
    /// `decision`, `passage`, `override`, `barrier`, …
    pub kind: Option<String>,
    pub granted: Option<bool>,
    /// A reason code (`denied_revoked`, …).
    pub reason: Option<String>,
    /// RFC 3339, inclusive (by the gate's clock).
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
}

/// Search passage events, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventSearch, PageQuery),
    responses((status = 200, body = PageOf<PassageEvent>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(q): ApiQuery<EventSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<PassageEvent>>> {
    let all_gates =
        authed.has(Role::Admin) || authed.has(Role::Security) || authed.has(Role::Viewer);
    if let Some(gate) = q.gate_id
        && !authed.can_see_gate(gate)
    {
        return Err(ApiError::Forbidden);
    }
    let mut f = Fields::new();
    let plate = match q.plate.as_deref() {
        Some(text) => check_plate("plate", Some(text), &mut f).map(|p| p.as_str().to_string()),
        None => None,
    };
    let from_ms = check_time("from", q.from.as_deref(), &mut f);
    let until_ms = check_time("until", q.until.as_deref(), &mut f);
    f.finish()?;
    let page = p.page()?;
    let query = EventQuery {
        plate,
        gate_id: q.gate_id,
        only_gates: (!all_gates).then(|| authed.gates.clone()),
        lane: q.lane,
        kind: q.kind,
        granted: q.granted,
        reason: q.reason,
        from_ms,
        until_ms,
    };
    Ok(ApiJson(paged(
        events::search(&state.db, &query, page).await?,
        &p,
    )))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}
