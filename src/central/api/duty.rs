//! `/api/v1/duty`: a guard signs in to a booth (a duty record at one of their gates), signs
//! off, and leaves handover notes for the next shift.
//!
//! What it never does: let a guard sign in at, or write notes for, a gate not theirs.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::console::may_act;
use super::error::{ApiResult, ErrorBody, Fields};
use super::extract::ApiJson;
use crate::central::repo::duty::{self, Duty, HandoverNote};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// Longest handover note.
const MAX_NOTE: usize = 1000;

/// Which booth to sign in to.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyInput {
    pub gate_id: i64,
}

/// A handover note.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub gate_id: i64,
    #[serde(default)]
    pub note: String,
}

/// Sign in to a booth (ends any other duty of the caller).
#[utoipa::path(post, path = "/api/v1/duty/sign-in", tag = "duty", request_body = DutyInput,
    responses((status = 200, body = Duty), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No such gate")))]
async fn sign_in(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<DutyInput>,
) -> ApiResult<ApiJson<Duty>> {
    may_act(&authed, input.gate_id)?;
    Ok(ApiJson(
        duty::sign_in(&state.db, &authed.actor(), input.gate_id).await?,
    ))
}

/// Sign off duty.
#[utoipa::path(post, path = "/api/v1/duty/sign-off", tag = "duty",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn sign_off(State(state): State<AppState>, authed: Authed) -> ApiResult<StatusCode> {
    duty::sign_off(&state.db, &authed.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave a handover note for the next shift at a gate.
#[utoipa::path(post, path = "/api/v1/duty/notes", tag = "duty", request_body = NoteInput,
    responses((status = 201, body = HandoverNote), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "No such gate"),
        (status = 422, body = ErrorBody)))]
async fn add_note(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<NoteInput>,
) -> ApiResult<(StatusCode, ApiJson<HandoverNote>)> {
    may_act(&authed, input.gate_id)?;
    let note = input.note.trim();
    let mut f = Fields::new();
    if note.is_empty() {
        f.add(
            "note",
            "required",
            Msg::new("交接内容不能为空", "The note is empty"),
        );
    } else if note.chars().count() > MAX_NOTE {
        f.add(
            "note",
            "too_long",
            Msg::new(
                format!("最多 {MAX_NOTE} 个字符"),
                format!("At most {MAX_NOTE} characters"),
            ),
        );
    }
    f.finish()?;
    Ok((
        StatusCode::CREATED,
        ApiJson(duty::add_note(&state.db, &authed.actor(), input.gate_id, note).await?),
    ))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_off))
        .routes(routes!(add_note))
}
