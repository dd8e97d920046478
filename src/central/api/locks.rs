//! `/api/v1/locks`: vehicle locks (锁车, must not leave). Read: admin, security, guard, viewer;
//! write (create, replace, delete, lift): admin, security.
//!
//! What it never does: store a lock before every field is checked.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::blacklist::{check_colour, check_plate, check_reason, check_time, check_window};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::repo::locks::{
    self, Lifted, LockQuery, NewVehicleLock, VehicleLock, VehicleLockInput,
};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::Msg;

fn check(input: VehicleLockInput) -> ApiResult<NewVehicleLock> {
    let mut f = Fields::new();
    let plate = check_plate("plate", input.plate.as_deref(), &mut f);
    let colour = check_colour("plate_colour", input.plate_colour.as_deref(), &mut f);
    let reason = check_reason("reason", input.reason.as_deref(), &mut f);
    let (valid_from_ms, valid_until_ms) = check_window(
        input.valid_from.as_deref(),
        input.valid_until.as_deref(),
        &mut f,
    );
    f.finish()?;
    Ok(NewVehicleLock {
        plate: plate.ok_or(ApiError::Internal)?,
        colour,
        reason,
        valid_from_ms,
        valid_until_ms,
    })
}

/// `?plate=&active_at=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LockSearch {
    /// Part of the plate, any spelling.
    pub plate: Option<String>,
    /// RFC 3339: only locks in force at this instant.
    pub active_at: Option<String>,
}

/// Search vehicle locks, newest first.
#[utoipa::path(get, path = "/api/v1/locks", tag = "locks", params(LockSearch, PageQuery),
    responses((status = 200, body = PageOf<VehicleLock>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_locks(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LockSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<VehicleLock>>> {
    let mut f = Fields::new();
    let active_at_ms = check_time("active_at", q.active_at.as_deref(), &mut f);
    f.finish()?;
    let page = p.page()?;
    let query = LockQuery {
        plate: q.plate.as_deref().map(normalise_fragment),
        active_at_ms,
    };
    Ok(ApiJson(paged(
        locks::search(&state.db, &query, page).await?,
        &p,
    )))
}

/// Lock a vehicle.
#[utoipa::path(post, path = "/api/v1/locks", tag = "locks", request_body = VehicleLockInput,
    responses((status = 201, body = VehicleLock), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_lock(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<VehicleLockInput>,
) -> ApiResult<(StatusCode, ApiJson<VehicleLock>)> {
    let new = check(input)?;
    let row = locks::create(&state.db, &authed.actor(), new).await?;
    Ok((StatusCode::CREATED, ApiJson(row)))
}

/// One vehicle lock.
#[utoipa::path(get, path = "/api/v1/locks/{id}", tag = "locks", params(("id" = i64, Path)),
    responses((status = 200, body = VehicleLock), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_lock(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<VehicleLock>> {
    Ok(ApiJson(locks::get(&state.db, id).await?))
}

/// Replace a vehicle lock.
#[utoipa::path(put, path = "/api/v1/locks/{id}", tag = "locks", params(("id" = i64, Path)),
    request_body = VehicleLockInput,
    responses((status = 200, body = VehicleLock), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_lock(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<VehicleLockInput>,
) -> ApiResult<ApiJson<VehicleLock>> {
    let new = check(input)?;
    Ok(ApiJson(
        locks::update(&state.db, &authed.actor(), id, new).await?,
    ))
}

/// Delete a lock made in error (lift one that served its purpose instead).
#[utoipa::path(delete, path = "/api/v1/locks/{id}", tag = "locks", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_lock(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    locks::delete(&state.db, &authed.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End a vehicle lock now (audited as `lift`).
#[utoipa::path(post, path = "/api/v1/locks/{id}/lift", tag = "locks", params(("id" = i64, Path)),
    responses((status = 200, body = VehicleLock), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn lift_lock(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<VehicleLock>> {
    match locks::lift(&state.db, &authed.actor(), id).await? {
        Lifted::Lifted(row) => Ok(ApiJson(row)),
        Lifted::AlreadyEnded(_) => Err(ApiError::Conflict(Msg::new(
            "该锁车记录已经结束",
            "This vehicle lock has already ended",
        ))),
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_locks, create_lock))
        .routes(routes!(get_lock, update_lock, delete_lock))
        .routes(routes!(lift_lock))
}
