//! `GET /api/v1/notifications`: the notification outbox, newest first, for administrators —
//! what was sent, what is being retried and what was given up (`?status=failed`), with the
//! reason of the last failure. Read-only.
//!
//! What it never does: show a message's body (it may hold a visitor's pass link) or the
//! webhook's URL (never stored).

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiQuery, PageOf, PageQuery, paged};
use crate::central::notify::outbox::{self, Notification};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// `?status=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationSearch {
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
}

const STATUSES: [&str; 3] = ["pending", "sent", "failed"];

/// The notification outbox, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(NotificationSearch, PageQuery),
    responses((status = 200, body = PageOf<Notification>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_notifications(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<NotificationSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<Notification>>> {
    let mut f = Fields::new();
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        f.add(
            "status",
            "invalid",
            Msg::new(
                "状态须为 pending、sent 或 failed",
                "status must be pending, sent or failed",
            ),
        );
    }
    f.finish()?;
    let page = p.page()?;
    Ok(ApiJson(paged(
        outbox::search(&state.db, q.status.as_deref(), page).await?,
        &p,
    )))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_notifications))
}
