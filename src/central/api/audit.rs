//! `GET /api/v1/audit`: the audit log, newest first (admin, security).
//!
//! What it never does: change or delete an entry — there is no such route, by design.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::blacklist::check_time;
use super::error::{ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiQuery, PageOf, PageQuery, paged};
use crate::central::repo::audit::{self, AuditEntry, AuditQuery};
use crate::central::state::AppState;

/// `?entity=&entity_id=&operator=&action=&from=&until=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditSearch {
    /// `blacklist`, `vehicle_lock`, `gate`, `lane`, `permit`, …
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// The operator's username (case-insensitive).
    pub operator: Option<String>,
    /// `create`, `update`, `delete`, `lift`, `set_mode`, …
    pub action: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
}

/// Search the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditSearch, PageQuery),
    responses((status = 200, body = PageOf<AuditEntry>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<AuditEntry>>> {
    let mut f = Fields::new();
    let from_ms = check_time("from", q.from.as_deref(), &mut f);
    let until_ms = check_time("until", q.until.as_deref(), &mut f);
    f.finish()?;
    let page = p.page()?;
    let query = AuditQuery {
        entity: q.entity,
        entity_id: q.entity_id,
        operator: q.operator,
        action: q.action,
        from_ms,
        until_ms,
    };
    Ok(ApiJson(paged(
        audit::search(&state.db, &query, page).await?,
        &p,
    )))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}
