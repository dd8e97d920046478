//! `/api/v1/sync/…`: the office's view of gate sync — every gate's health (devices, lane modes,
//! journal fill, data version against the centre's, clock offset, silence, gaps in its events)
//! and the campus-wide mode (lockdown / evacuation for every gate at once).
//!
//! Read: admin, security, viewer, and guards for their own gates (the list is filtered). The
//! campus-wide mode: admin, security — each gate's change is audited as `set_mode` with the
//! reason and reaches the gate through its sync connection like any other change.
//!
//! What it never does: talk to a gate (gates learn modes from the change log; commands go
//! through [`crate::central::commands`]).

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::blacklist::check_reason;
use super::error::{ApiResult, ErrorBody, Fields};
use super::extract::ApiJson;
use crate::central::repo::gates::{self, GATE_MODES, Gate, GateQuery, ModeInput};
use crate::central::repo::sync::{self as repo, GateHealth};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// Every gate's sync health, by gate id; a guard sees only their own gates.
#[utoipa::path(get, path = "/api/v1/sync/gates", tag = "sync",
    responses((status = 200, body = Vec<GateHealth>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn gate_health(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<ApiJson<Vec<GateHealth>>> {
    let all = repo::health(&state.db).await?;
    Ok(ApiJson(
        all.into_iter()
            .filter(|g| authed.can_see_gate(g.gate_id))
            .collect(),
    ))
}

/// Set every gate's mode at once (campus-wide lockdown `locked_closed`, evacuation
/// `locked_open`, or back to `normal`), with a reason, in one transaction. Returns the gates
/// (the first 500).
#[utoipa::path(post, path = "/api/v1/sync/campus-mode", tag = "sync", request_body = ModeInput,
    responses((status = 200, body = Vec<Gate>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn campus_mode(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<ModeInput>,
) -> ApiResult<ApiJson<Vec<Gate>>> {
    let mut f = Fields::new();
    let mode = input.mode.unwrap_or_default();
    if mode.is_empty() {
        f.add("mode", "required", Msg::new("模式必填", "mode is required"));
    } else if !GATE_MODES.contains(&mode.as_str()) {
        let list = GATE_MODES.join(", ");
        f.add(
            "mode",
            "invalid_value",
            Msg::new(
                format!("“{mode}”无效，应为以下之一：{list}"),
                format!("{mode:?} is not one of: {list}"),
            ),
        );
    }
    let reason = check_reason("reason", input.reason.as_deref(), &mut f);
    f.finish()?;
    repo::set_campus_mode(&state.db, &authed.actor(), &mode, &reason).await?;
    let changed = gates::search(
        &state.db,
        &GateQuery::default(),
        crate::central::db::Page {
            offset: 0,
            limit: crate::central::db::MAX_PAGE,
        },
    )
    .await?
    .items;
    Ok(ApiJson(changed))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(gate_health))
        .routes(routes!(campus_mode))
}
