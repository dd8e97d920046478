//! `POST /api/v1/events/{gate_id}/{journal_no}/{seq}/plate`: a guard (at their own gates), the
//! security office or an administrator corrects the plate of a stored passage event the camera
//! misread. The plate is checked with the plate rules every route uses (refused with the same
//! code and zh-CN/English message), the correction is audited with what it replaced
//! ([`crate::central::repo::corrections`]), and the live console re-reads the gate so every
//! booth sees the corrected plate.
//!
//! What it never does: change the event (its body keeps the camera's original read), or let a
//! guard correct an event of a gate that is not theirs.

use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::console::may_act;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath};
use crate::central::live::LiveMessage;
use crate::central::repo::corrections::{self, Correction, CorrectionError, NewCorrection};
use crate::central::state::AppState;
use crate::domain::{Plate, PlateColour};
use crate::i18n::Msg;

/// Longest note on a correction, in characters.
const MAX_NOTE: usize = 200;

/// A plate correction.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlateCorrectionInput {
    /// The plate the vehicle really has, any spelling (normalised).
    pub plate: String,
    /// Its colour code (`blue`, `yellow`, `green`, `yellow_green`, `white`, `black`), if known.
    #[serde(default)]
    pub colour: Option<String>,
    /// Why (at most 200 characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// Checks a correction's fields, reporting every problem at once.
fn validated(input: &PlateCorrectionInput) -> ApiResult<NewCorrection> {
    let mut f = Fields::new();
    let plate = match Plate::parse(&input.plate) {
        Ok(p) => Some(p),
        Err(e) => {
            f.plate("plate", &e);
            None
        }
    };
    let colour = match input.colour.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(code) => {
            let colour = PlateColour::from_code(code);
            if colour.is_none() {
                f.add(
                    "colour",
                    "invalid_plate_colour",
                    Msg::new(
                        format!(
                            "车牌颜色“{code}”无效，应为 blue、yellow、green、yellow_green、white 或 black"
                        ),
                        format!(
                            "plate colour {code:?} is not one of blue, yellow, green, yellow_green, white, black"
                        ),
                    ),
                );
            }
            colour
        }
    };
    let note = input.note.as_deref().unwrap_or("").trim().to_string();
    if note.chars().count() > MAX_NOTE {
        f.add(
            "note",
            "too_long",
            Msg::new(
                format!("说明最多 {MAX_NOTE} 个字符"),
                format!("The note is at most {MAX_NOTE} characters"),
            ),
        );
    }
    f.finish()?;
    Ok(NewCorrection {
        plate: plate.ok_or(ApiError::Internal)?,
        colour,
        note,
    })
}

/// Correct the plate of a passage event (the original stays in the event). A second
/// correction replaces the first; both are audited.
#[utoipa::path(post, path = "/api/v1/events/{gate_id}/{journal_no}/{seq}/plate", tag = "events",
    params(("gate_id" = i64, Path), ("journal_no" = i64, Path), ("seq" = i64, Path)),
    request_body = PlateCorrectionInput,
    responses((status = 200, body = Correction), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn correct_plate(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath((gate_id, journal_no, seq)): ApiPath<(i64, i64, i64)>,
    ApiJson(input): ApiJson<PlateCorrectionInput>,
) -> ApiResult<ApiJson<Correction>> {
    may_act(&authed, gate_id)?;
    let new = validated(&input)?;
    let corrected = match corrections::correct(
        &state.db,
        &authed.actor(),
        (gate_id, journal_no, seq),
        &new,
    )
    .await
    {
        Ok(c) => c,
        Err(CorrectionError::NoSuchEvent) => {
            return Err(ApiError::NotFound(Msg::new(
                "没有这条通行记录",
                "No such passage event",
            )));
        }
        Err(CorrectionError::NotCorrectable(kind)) => {
            return Err(ApiError::Conflict(Msg::new(
                format!("这条记录（{kind}）不涉及车牌，无法更正：只有识别和通行记录可以更正"),
                format!(
                    "This event ({kind}) names no plate: only decisions and passages can be corrected"
                ),
            )));
        }
        Err(CorrectionError::Repo(e)) => return Err(e.into()),
    };
    // No event is new: the gate's consoles re-read it and show the corrected plate.
    state.live.publish(LiveMessage::Events {
        gate_id,
        events: Arc::from(Vec::new()),
    });
    Ok(ApiJson(corrected))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(correct_plate))
}
