//! `/api/v1/console/…`: what the guard booth console does besides visits, duty and alarms —
//! a guard's manual open / keep closed of a lane (sent to the gate through
//! [`crate::central::commands::send`], with a mandatory reason, audited), plate look-up with
//! near-match suggestions, and the security office's count of manual opens per guard.
//!
//! Guards act only on their own gates; admin and security on every gate.
//!
//! What it never does: open a barrier itself (the gate does, on the command), or treat a fuzzy
//! plate match as anything but a suggestion.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::central::commands::{self, CommandError};
use crate::central::db::{RepoError, audit, now_ms};
use crate::central::repo::bookings::{self, Booking, BookingQuery};
use crate::central::repo::{gates, visits};
use crate::central::state::AppState;
use crate::i18n::Msg;
use crate::i18n::is_guard_reason;
use crate::wire::command::{GateCommand, GuardAction};

/// Longest guard note.
const MAX_NOTE: usize = 200;

/// 403 unless the operator may act on this gate: admin and security anywhere, a guard at their
/// own gates.
pub(crate) fn may_act(authed: &Authed, gate_id: i64) -> ApiResult<()> {
    if authed.has(Role::Admin)
        || authed.has(Role::Security)
        || (authed.has(Role::Guard) && authed.gates.contains(&gate_id))
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The lane `lane` of gate `gate_id`, or 404.
pub(crate) async fn lane_of(state: &AppState, gate_id: i64, lane: &str) -> ApiResult<gates::Lane> {
    gates::lanes(&state.db, gate_id)
        .await?
        .into_iter()
        .find(|l| l.lane_key == lane)
        .ok_or_else(|| ApiError::NotFound(Msg::new("没有这个车道", "No such lane")))
}

/// A guard's command on a lane.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaneCommandInput {
    /// `open` or `keep_closed`.
    pub command: String,
    /// visitor_registered, permit_holder_without_tag, emergency_vehicle, official_business,
    /// device_fault or other.
    #[serde(default)]
    pub reason: String,
    /// Required with `other`; at most 200 characters.
    #[serde(default)]
    pub note: Option<String>,
    /// The plate of the vehicle the command is for, as the guard confirmed it (the console
    /// pre-fills the lane's last read plate): any spelling the plate parser takes (full-width,
    /// lower case, separators); empty or absent when the guard names none. Journalled with the
    /// override at the gate and written to the audit entry.
    #[serde(default)]
    pub plate: Option<String>,
}

/// What became of a command.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandOutcome {
    /// `done`: the gate carried it out.
    pub outcome: String,
    pub message: String,
}

/// Checks a guard's reason and note; returns the trimmed note.
pub(crate) fn check_guard_reason(
    reason: &str,
    note: Option<&str>,
    f: &mut Fields,
) -> Option<String> {
    let note = note
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if reason.is_empty() {
        f.add(
            "reason",
            "required",
            Msg::new(
                "请选择原因：手动操作必须说明原因",
                "Choose a reason: every manual command needs one",
            ),
        );
    } else if !is_guard_reason(reason) {
        f.add(
            "reason",
            "invalid_value",
            Msg::new("未知的原因", "Unknown reason"),
        );
    } else if reason == "other" && note.is_none() {
        f.add(
            "note",
            "required",
            Msg::new(
                "选择“其他”时须填写说明",
                "Explain the reason when choosing “Other”",
            ),
        );
    }
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE) {
        f.add(
            "note",
            "too_long",
            Msg::new(
                format!("说明最多 {MAX_NOTE} 个字符"),
                format!("The note is at most {MAX_NOTE} characters"),
            ),
        );
    }
    note
}

/// The guard's plate for a manual command: `None` when empty, else the normalised plate (or a
/// field error).
pub(crate) fn check_guard_plate(plate: Option<&str>, f: &mut Fields) -> Option<String> {
    let text = plate.map(str::trim).filter(|p| !p.is_empty())?;
    match crate::domain::Plate::parse(text) {
        Ok(p) => Some(p.as_str().to_string()),
        Err(e) => {
            f.plate("plate", &e);
            None
        }
    }
}

/// Sends a guard command (for the vehicle with `plate`, if named) to the gate and records the
/// request and its outcome in the audit log (`manual_command`, entity `lane`, id `GATE/LANE`).
/// Returns the outcome code and message; an undelivered command is not an error of the
/// request (the audit row says what happened).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_guard_command_for(
    state: &AppState,
    authed: &Authed,
    gate_id: i64,
    lane: &str,
    command: &str,
    reason: &str,
    note: Option<String>,
    plate: Option<String>,
) -> ApiResult<(String, Msg)> {
    let sent = commands::send(
        state,
        gate_id,
        GateCommand::Guard {
            lane: lane.to_string(),
            // The callers accept only the codes of guard actions.
            command: GuardAction::from_code(command).ok_or(ApiError::Internal)?,
            reason: reason.to_string(),
            note: note.clone(),
            operator: authed.username.clone(),
            plate: plate.clone(),
        },
        &authed.actor(),
    )
    .await;
    let (code, msg) = match &sent {
        Ok(_) => (
            "done",
            Msg::new("闸口已执行命令", "The gate carried out the command"),
        ),
        Err(CommandError::GateOffline) => (
            "gate_offline",
            Msg::new(
                "闸口离线：命令未送达。请使用岗亭本地页面或现场手动操作",
                "Gate offline: the command did not reach it. Use the booth's local page or operate the barrier by hand",
            ),
        ),
        Err(CommandError::Timeout) => (
            "timeout",
            Msg::new(
                "闸口未及时确认，命令可能稍后执行，请查看车道状态",
                "The gate did not confirm in time; it may still carry the command out — watch the lane",
            ),
        ),
        Err(CommandError::Refused(why)) => (
            "refused",
            Msg::new(
                format!("闸口拒绝了命令：{why}"),
                format!("The gate refused the command: {why}"),
            ),
        ),
        Err(CommandError::Repo(e)) => {
            tracing::error!(error = %e, "guard command: database error");
            return Err(ApiError::Internal);
        }
    };
    let mut conn = state.db.pool().acquire().await.map_err(RepoError::from)?;
    let after = serde_json::json!({
        "command": command, "reason": reason, "note": note, "plate": plate, "outcome": code,
    });
    audit(
        &mut conn,
        &authed.actor(),
        "manual_command",
        "lane",
        format!("{gate_id}/{lane}"),
        None,
        Some(&after),
    )
    .await?;
    Ok((code.to_string(), msg))
}

/// A guard's manual open or keep-closed on a lane, with a mandatory reason.
#[utoipa::path(post, path = "/api/v1/console/gates/{id}/lanes/{lane}/command", tag = "console",
    params(("id" = i64, Path), ("lane" = String, Path)), request_body = LaneCommandInput,
    responses((status = 200, body = CommandOutcome), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn lane_command(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath((gate_id, lane)): ApiPath<(i64, String)>,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<LaneCommandInput>,
) -> ApiResult<ApiJson<CommandOutcome>> {
    may_act(&authed, gate_id)?;
    let mut f = Fields::new();
    if !matches!(input.command.as_str(), "open" | "keep_closed") {
        f.add(
            "command",
            "invalid_value",
            Msg::new(
                "命令应为 open 或 keep_closed",
                "The command is open or keep_closed",
            ),
        );
    }
    let note = check_guard_reason(&input.reason, input.note.as_deref(), &mut f);
    let plate = check_guard_plate(input.plate.as_deref(), &mut f);
    f.finish()?;
    lane_of(&state, gate_id, &lane).await?;
    super::booth_rules::require_on_duty(&state, &authed, gate_id, &lane, &input.command).await?;
    let (outcome, msg) = send_guard_command_for(
        &state,
        &authed,
        gate_id,
        &lane,
        &input.command,
        &input.reason,
        note,
        plate,
    )
    .await?;
    if outcome == "done" {
        let lang = crate::i18n::Lang::from_headers(&headers);
        Ok(ApiJson(CommandOutcome {
            outcome,
            message: msg.get(lang).to_string(),
        }))
    } else {
        // Not carried out: the client must not think the barrier moved.
        Err(ApiError::Conflict(msg))
    }
}

/// Plate look-up parameters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlateLookup {
    /// A whole or partial plate, as typed.
    pub q: String,
}

/// Bookings for an exact plate, and near-match suggestions (suggestions only: nothing opens on
/// them).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlateLookupResult {
    /// The normalised plate, when the input is a whole valid plate.
    pub plate: Option<String>,
    /// Bookings of that plate that are pending, approved or arrived.
    pub bookings: Vec<Booking>,
    /// Known plates that contain the input, then near matches (O/0, I/1, B/8, S/5, Z/2, D/0, G/6).
    pub suggestions: Vec<String>,
}

/// Find a pre-booked visitor by plate; suggest near matches for partial or misread input.
#[utoipa::path(get, path = "/api/v1/console/plates", tag = "console", params(PlateLookup),
    responses((status = 200, body = PlateLookupResult), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn plate_lookup(
    State(state): State<AppState>,
    _authed: Authed,
    ApiQuery(q): ApiQuery<PlateLookup>,
) -> ApiResult<ApiJson<PlateLookupResult>> {
    let plate = crate::domain::Plate::parse(&q.q)
        .ok()
        .map(|p| p.as_str().to_string());
    let mut found = Vec::new();
    if let Some(plate) = &plate {
        let query = BookingQuery {
            plate: Some(plate.clone()),
            ..BookingQuery::default()
        };
        let page = crate::central::db::Page {
            limit: 20,
            offset: 0,
        };
        found = bookings::search(&state.db, &query, page)
            .await?
            .items
            .into_iter()
            .filter(|b| {
                &b.plate == plate && matches!(b.status.as_str(), "pending" | "approved" | "arrived")
            })
            .collect();
    }
    let known = visits::known_plates(&state.db).await?;
    let suggestions =
        crate::domain::plate_match::suggest(&q.q, known.iter().map(String::as_str), 8);
    Ok(ApiJson(PlateLookupResult {
        plate,
        bookings: found,
        suggestions,
    }))
}

/// Manual commands at the lanes by one guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ManualOpenCount {
    pub operator: String,
    /// Manual opens the gates recorded (override events), fallback-page ones included.
    pub opens: i64,
    /// Keep-closed commands the gates recorded.
    pub keep_closed: i64,
}

/// Manual opens per guard over the last `days` days (the gates' override events).
pub async fn manual_open_counts(
    db: &crate::central::db::Db,
    days: i64,
) -> Result<Vec<ManualOpenCount>, RepoError> {
    let rows =
        sqlx::query("SELECT body FROM passage_events WHERE kind = 'override' AND at_ms >= $1")
            .bind(now_ms() - days * 86_400_000)
            .fetch_all(db.pool())
            .await?;
    let mut counts: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for row in rows {
        let body: String = row.get(0);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
            continue;
        };
        let operator = v["operator"].as_str().unwrap_or("?").to_string();
        let entry = counts.entry(operator).or_default();
        match v["action"].as_str() {
            Some("open") => entry.0 += 1,
            Some("keep_closed") => entry.1 += 1,
            _ => {}
        }
    }
    let mut out: Vec<ManualOpenCount> = counts
        .into_iter()
        .map(|(operator, (opens, keep_closed))| ManualOpenCount {
            operator,
            opens,
            keep_closed,
        })
        .collect();
    out.sort_by(|a, b| b.opens.cmp(&a.opens).then(a.operator.cmp(&b.operator)));
    Ok(out)
}

/// Manual-open count parameters.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ManualOpenQuery {
    /// Days back from now (default 30, at most 366).
    pub days: Option<i64>,
}

/// The security office's view: manual opens per guard.
#[utoipa::path(get, path = "/api/v1/console/manual-opens", tag = "console", params(ManualOpenQuery),
    responses((status = 200, body = Vec<ManualOpenCount>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn manual_opens(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ManualOpenQuery>,
) -> ApiResult<ApiJson<Vec<ManualOpenCount>>> {
    let days = q.days.unwrap_or(30).clamp(1, 366);
    Ok(ApiJson(manual_open_counts(&state.db, days).await?))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(lane_command))
        .routes(routes!(plate_lookup))
        .routes(routes!(manual_opens))
}
