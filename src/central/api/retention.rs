//! `POST /api/v1/retention/purge`: an administrator purges, now, the passage events older than
//! the configured kept days (`[retention] keep_days`, never under 365) — what the server also
//! does once a day. Audited.
//!
//! What it never does: take the number of days from the request (only the configuration sets
//! it), or delete statistics or audit entries.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::error::{ApiResult, ErrorBody};
use super::extract::ApiJson;
use crate::central::db::now_ms;
use crate::central::retention::{self, Purged};
use crate::central::state::AppState;

/// Delete the passage events older than the configured kept days.
#[utoipa::path(post, path = "/api/v1/retention/purge", tag = "retention",
    responses((status = 200, body = Purged), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn purge(State(state): State<AppState>, authed: Authed) -> ApiResult<ApiJson<Purged>> {
    Ok(ApiJson(
        retention::purge(
            &state.db,
            &authed.actor(),
            state.retention.keep_days,
            now_ms(),
        )
        .await?,
    ))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(purge))
}
