//! `/api/v1/gates` and `/api/v1/gates/{id}/lanes`: gates and their lanes. Read: admin,
//! security, viewer, and guards for their own gates only (the list is filtered; another gate is
//! a 403). Create, replace and delete gates and lanes: admin. Mode changes
//! (`POST /gates/{id}/mode`): admin, security — audited as `set_mode` with the reason.
//! Names (`PUT /gates/{id}/names`, `PUT /gates/{id}/lanes/{lane_id}/names`): admin — the
//! Chinese name and an optional English one (`name_en`) the English pages show; the gates
//! themselves never receive names, so renaming leaves their sync untouched.
//!
//! What it never does: change a gate's mode through PUT, or store anything unchecked.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::blacklist::check_reason;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::db::RepoError;
use crate::central::repo::gates::{
    self, DIRECTIONS, GATE_MODES, Gate, GateInput, GateQuery, LANE_MODES, Lane, LaneInput,
    ModeInput, NamesInput, NewGate, NewLane, OFFLINE_POLICIES,
};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// 403 unless the operator may read gates at all and this one in particular.
fn may_see(authed: &Authed, gate_id: i64) -> ApiResult<()> {
    if authed.can_see_gate(gate_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str], f: &mut Fields) {
    if !allowed.contains(&value) {
        let list = allowed.join(", ");
        f.add(
            field,
            "invalid_value",
            Msg::new(
                format!("“{value}”无效，应为以下之一：{list}"),
                format!("{value:?} is not one of: {list}"),
            ),
        );
    }
}

fn check_name(text: Option<&str>, required: bool, f: &mut Fields) -> String {
    let name = text.unwrap_or("").trim().to_string();
    if required && name.is_empty() {
        f.add(
            "name",
            "required",
            Msg::new("名称必填", "A name is required"),
        );
    } else if name.chars().count() > 100 {
        f.add(
            "name",
            "too_long",
            Msg::new("名称最多 100 个字符", "The name is at most 100 characters"),
        );
    }
    name
}

/// The optional English name: trimmed, at most 100 characters, no control characters.
fn check_name_en(text: Option<&str>, f: &mut Fields) -> String {
    let name = text.unwrap_or("").trim().to_string();
    if name.chars().count() > 100 {
        f.add(
            "name_en",
            "too_long",
            Msg::new(
                "英文名称最多 100 个字符",
                "The English name is at most 100 characters",
            ),
        );
    } else if name.chars().any(char::is_control) {
        f.add(
            "name_en",
            "invalid_value",
            Msg::new(
                "英文名称不能包含换行等控制字符",
                "The English name may not contain line breaks or other control characters",
            ),
        );
    }
    name
}

fn check_gate(input: GateInput) -> ApiResult<NewGate> {
    let mut f = Fields::new();
    let name = check_name(input.name.as_deref(), true, &mut f);
    let name_en = check_name_en(input.name_en.as_deref(), &mut f);
    let anti_passback = input.anti_passback.unwrap_or_else(|| "hard".into());
    let timed_ok = anti_passback
        .strip_prefix("timed:")
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| (1..=1440).contains(&m));
    if !matches!(anti_passback.as_str(), "off" | "hard" | "soft") && !timed_ok {
        f.add(
            "anti_passback",
            "invalid_anti_passback",
            Msg::new(
                format!("防潜回设置“{anti_passback}”无效，应为 off、hard、soft 或 timed:分钟数（1-1440）"),
                format!("anti_passback {anti_passback:?} is not off, hard, soft or timed:MINUTES (1-1440)"),
            ),
        );
    }
    let offline_policy = input.offline_policy.unwrap_or_else(|| "cached".into());
    one_of("offline_policy", &offline_policy, &OFFLINE_POLICIES, &mut f);
    f.finish()?;
    Ok(NewGate {
        name,
        name_en,
        anti_passback,
        offline_policy,
        enabled: input.enabled.unwrap_or(true),
    })
}

fn check_lane(input: LaneInput) -> ApiResult<NewLane> {
    let mut f = Fields::new();
    let lane_key = input.lane_key.unwrap_or_default();
    if lane_key.is_empty() {
        f.add(
            "lane_key",
            "required",
            Msg::new("车道标识必填", "lane_key is required"),
        );
    } else if lane_key.len() > 32
        || !lane_key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        f.add(
            "lane_key",
            "invalid_lane_key",
            Msg::new(
                "车道标识须为 1-32 个小写字母、数字、- 或 _",
                "lane_key must be 1-32 characters of a-z, 0-9, - and _",
            ),
        );
    }
    let name = check_name(input.name.as_deref(), false, &mut f);
    let name_en = check_name_en(input.name_en.as_deref(), &mut f);
    let direction = match input.direction {
        Some(d) => {
            one_of("direction", &d, &DIRECTIONS, &mut f);
            d
        }
        None => {
            f.add(
                "direction",
                "required",
                Msg::new(
                    "方向必填（entry、exit 或 two_way）",
                    "direction is required (entry, exit or two_way)",
                ),
            );
            String::new()
        }
    };
    let mode = input.mode.unwrap_or_else(|| "normal".into());
    one_of("mode", &mode, &LANE_MODES, &mut f);
    let settings = match input.settings {
        None => Default::default(),
        Some(serde_json::Value::Object(map)) => map,
        Some(_) => {
            f.add(
                "settings",
                "not_an_object",
                Msg::new("设备设置须为 JSON 对象", "settings must be a JSON object"),
            );
            Default::default()
        }
    };
    f.finish()?;
    Ok(NewLane {
        lane_key,
        name,
        name_en,
        direction,
        mode,
        settings,
    })
}

/// A lane key the gate already has.
fn lane_conflict(e: RepoError) -> ApiError {
    match e {
        RepoError::Conflict(_) => ApiError::Conflict(Msg::new(
            "该大门已有相同标识的车道",
            "This gate already has a lane with this lane_key",
        )),
        other => other.into(),
    }
}

/// `?name=&mode=&enabled=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateSearch {
    /// Part of the name.
    pub name: Option<String>,
    pub mode: Option<String>,
    pub enabled: Option<bool>,
}

/// List gates (guards: their own).
#[utoipa::path(get, path = "/api/v1/gates", tag = "gates", params(GateSearch, PageQuery),
    responses((status = 200, body = PageOf<Gate>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_gates(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(q): ApiQuery<GateSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<Gate>>> {
    let page = p.page()?;
    let all = authed.has(Role::Admin) || authed.has(Role::Security) || authed.has(Role::Viewer);
    let query = GateQuery {
        name: q.name,
        mode: q.mode,
        enabled: q.enabled,
        only: (!all).then(|| authed.gates.clone()),
    };
    Ok(ApiJson(paged(
        gates::search(&state.db, &query, page).await?,
        &p,
    )))
}

/// Add a gate (in mode `normal`).
#[utoipa::path(post, path = "/api/v1/gates", tag = "gates", request_body = GateInput,
    responses((status = 201, body = Gate), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_gate(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<GateInput>,
) -> ApiResult<(StatusCode, ApiJson<Gate>)> {
    let new = check_gate(input)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(gates::create(&state.db, &authed.actor(), new).await?),
    ))
}

/// One gate.
#[utoipa::path(get, path = "/api/v1/gates/{id}", tag = "gates", params(("id" = i64, Path)),
    responses((status = 200, body = Gate), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_gate(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Gate>> {
    may_see(&authed, id)?;
    Ok(ApiJson(gates::get(&state.db, id).await?))
}

/// Replace a gate's settings (not its mode).
#[utoipa::path(put, path = "/api/v1/gates/{id}", tag = "gates", params(("id" = i64, Path)),
    request_body = GateInput,
    responses((status = 200, body = Gate), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_gate(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<GateInput>,
) -> ApiResult<ApiJson<Gate>> {
    let new = check_gate(input)?;
    Ok(ApiJson(
        gates::update(&state.db, &authed.actor(), id, new).await?,
    ))
}

/// Delete a gate and its lanes (409 while operators are bound to it).
#[utoipa::path(delete, path = "/api/v1/gates/{id}", tag = "gates", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_gate(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    match gates::delete(&state.db, &authed.actor(), id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(RepoError::Reference(_)) => Err(ApiError::Conflict(Msg::new(
            "仍有操作员绑定到该大门，请先解除绑定",
            "Operators are still bound to this gate; unbind them first",
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Set a gate's mode, with a reason (audited as `set_mode`).
#[utoipa::path(post, path = "/api/v1/gates/{id}/mode", tag = "gates", params(("id" = i64, Path)),
    request_body = ModeInput,
    responses((status = 200, body = Gate), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_gate_mode(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<ModeInput>,
) -> ApiResult<ApiJson<Gate>> {
    let mut f = Fields::new();
    let mode = input.mode.unwrap_or_default();
    if mode.is_empty() {
        f.add("mode", "required", Msg::new("模式必填", "mode is required"));
    } else {
        one_of("mode", &mode, &GATE_MODES, &mut f);
    }
    let reason = check_reason("reason", input.reason.as_deref(), &mut f);
    f.finish()?;
    Ok(ApiJson(
        gates::set_mode(&state.db, &authed.actor(), id, &mode, &reason).await?,
    ))
}

/// The lanes of a gate.
#[utoipa::path(get, path = "/api/v1/gates/{id}/lanes", tag = "gates", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Lane>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_lanes(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Vec<Lane>>> {
    may_see(&authed, id)?;
    Ok(ApiJson(gates::lanes(&state.db, id).await?))
}

/// Add a lane to a gate.
#[utoipa::path(post, path = "/api/v1/gates/{id}/lanes", tag = "gates", params(("id" = i64, Path)),
    request_body = LaneInput,
    responses((status = 201, body = Lane), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_lane(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<LaneInput>,
) -> ApiResult<(StatusCode, ApiJson<Lane>)> {
    let new = check_lane(input)?;
    let lane = gates::create_lane(&state.db, &authed.actor(), id, new)
        .await
        .map_err(lane_conflict)?;
    Ok((StatusCode::CREATED, ApiJson(lane)))
}

/// One lane of a gate.
#[utoipa::path(get, path = "/api/v1/gates/{id}/lanes/{lane_id}", tag = "gates",
    params(("id" = i64, Path), ("lane_id" = i64, Path)),
    responses((status = 200, body = Lane), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_lane(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath((id, lane_id)): ApiPath<(i64, i64)>,
) -> ApiResult<ApiJson<Lane>> {
    may_see(&authed, id)?;
    Ok(ApiJson(gates::get_lane(&state.db, id, lane_id).await?))
}

/// Replace a lane.
#[utoipa::path(put, path = "/api/v1/gates/{id}/lanes/{lane_id}", tag = "gates",
    params(("id" = i64, Path), ("lane_id" = i64, Path)), request_body = LaneInput,
    responses((status = 200, body = Lane), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_lane(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath((id, lane_id)): ApiPath<(i64, i64)>,
    ApiJson(input): ApiJson<LaneInput>,
) -> ApiResult<ApiJson<Lane>> {
    let new = check_lane(input)?;
    let lane = gates::update_lane(&state.db, &authed.actor(), id, lane_id, new)
        .await
        .map_err(lane_conflict)?;
    Ok(ApiJson(lane))
}

/// Rename a gate: its Chinese name (required) and English name (empty: none), nothing else
/// (audited as `rename`; the gates' own settings are unchanged).
#[utoipa::path(put, path = "/api/v1/gates/{id}/names", tag = "gates", params(("id" = i64, Path)),
    request_body = NamesInput,
    responses((status = 200, body = Gate), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rename_gate(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<NamesInput>,
) -> ApiResult<ApiJson<Gate>> {
    let mut f = Fields::new();
    let name = check_name(input.name.as_deref(), true, &mut f);
    let name_en = check_name_en(input.name_en.as_deref(), &mut f);
    f.finish()?;
    Ok(ApiJson(
        gates::rename_gate(&state.db, &authed.actor(), id, &name, &name_en).await?,
    ))
}

/// Rename a lane: its Chinese name (empty: the lane key is shown) and English name, nothing
/// else (audited as `rename`).
#[utoipa::path(put, path = "/api/v1/gates/{id}/lanes/{lane_id}/names", tag = "gates",
    params(("id" = i64, Path), ("lane_id" = i64, Path)), request_body = NamesInput,
    responses((status = 200, body = Lane), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rename_lane(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath((id, lane_id)): ApiPath<(i64, i64)>,
    ApiJson(input): ApiJson<NamesInput>,
) -> ApiResult<ApiJson<Lane>> {
    let mut f = Fields::new();
    let name = check_name(input.name.as_deref(), false, &mut f);
    let name_en = check_name_en(input.name_en.as_deref(), &mut f);
    f.finish()?;
    let lane = gates::rename_lane(&state.db, &authed.actor(), id, lane_id, &name, &name_en).await?;
    Ok(ApiJson(lane))
}

/// Delete a lane.
#[utoipa::path(delete, path = "/api/v1/gates/{id}/lanes/{lane_id}", tag = "gates",
    params(("id" = i64, Path), ("lane_id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_lane(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath((id, lane_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    gates::delete_lane(&state.db, &authed.actor(), id, lane_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_gates, create_gate))
        .routes(routes!(get_gate, update_gate, delete_gate))
        .routes(routes!(set_gate_mode))
        .routes(routes!(list_lanes, create_lane))
        .routes(routes!(get_lane, update_lane, delete_lane))
        .routes(routes!(rename_gate))
        .routes(routes!(rename_lane))
}
