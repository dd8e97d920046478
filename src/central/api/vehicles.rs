//! `/api/v1/vehicles`: registered vehicles — search, read, exact plate lookup for the gate booth,
//! register, replace, delete.
//!
//! Owner roles: admin and security write; admin, security, guard and viewer read (the guard's
//! booth looks plates up). A vehicle is its plate and plate colour together: registering the
//! same pair twice is a 409 naming the plate.
//!
//! What it never does: store a plate that [`Plate::parse`] refused, or one in any spelling but
//! the normalised one (full-width, lower-case and separated input is accepted and normalised);
//! or write anything when any field is invalid.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Authed;
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::db::RepoError;
use crate::central::repo::vehicles::{NewVehicle, VEHICLE_TYPES, Vehicle, VehicleSearch};
use crate::central::repo::{persons, vehicles};
use crate::central::state::AppState;
use crate::central::validate;
use crate::domain::plate::normalise_fragment;
use crate::domain::{Plate, PlateColour};
use crate::i18n::Msg;

/// Longest note accepted, in characters.
const MAX_NOTE: usize = 500;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_vehicles, create_vehicle))
        .routes(routes!(get_vehicle, update_vehicle, delete_vehicle))
        .routes(routes!(vehicles_by_plate))
}

fn colour_error(f: &mut Fields, field: &'static str, found: &str) {
    f.add(
        field,
        "invalid_plate_colour",
        Msg::new(
            format!("车牌颜色“{found}”无效，应为 blue、yellow、green、yellow_green、white 或 black"),
            format!(
                "plate colour {found:?} is not one of blue, yellow, green, yellow_green, white, black"
            ),
        ),
    );
}

fn type_error(f: &mut Fields, field: &'static str, found: &str) {
    f.add(
        field,
        "invalid_vehicle_type",
        Msg::new(
            format!("车辆类型“{found}”无效，应为 car、suv、van、truck、bus、motorcycle 或 other"),
            format!(
                "vehicle type {found:?} is not one of car, suv, van, truck, bus, motorcycle, other"
            ),
        ),
    );
}

/// Checks and normalises a vehicle's fields, reporting every problem at once.
async fn validated(state: &AppState, new: NewVehicle) -> ApiResult<NewVehicle> {
    let mut f = Fields::new();
    let plate = match Plate::parse(&new.plate) {
        Ok(p) => p.as_str().to_string(),
        Err(e) => {
            f.plate("plate", &e);
            String::new()
        }
    };
    if PlateColour::from_code(&new.plate_colour).is_none() {
        colour_error(&mut f, "plate_colour", &new.plate_colour);
    }
    if !VEHICLE_TYPES.contains(&new.vehicle_type.as_str()) {
        type_error(&mut f, "vehicle_type", &new.vehicle_type);
    }
    if !persons::exists(&state.db, new.owner_id).await? {
        f.add(
            "owner_id",
            "unknown_owner",
            Msg::new(
                format!("车主（人员 {}）不存在", new.owner_id),
                format!("the owner, person {}, does not exist", new.owner_id),
            ),
        );
    }
    let note = new.note.trim().to_string();
    if note.chars().count() > MAX_NOTE {
        f.add(
            "note",
            "too_long",
            Msg::new(
                format!("备注最多 {MAX_NOTE} 个字符"),
                format!("the note has more than {MAX_NOTE} characters"),
            ),
        );
    }
    f.finish()?;
    Ok(NewVehicle {
        plate,
        plate_colour: new.plate_colour,
        vehicle_type: new.vehicle_type,
        owner_id: new.owner_id,
        note,
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(Msg::new(
        format!("车辆 {id} 不存在"),
        format!("vehicle {id} does not exist"),
    ))
}

/// Maps a repository error, naming the plate on a uniqueness conflict and the vehicle when it is
/// missing.
fn repo_error(id: Option<i64>, new: &NewVehicle) -> impl FnOnce(RepoError) -> ApiError + '_ {
    move |e| match (e, id) {
        (RepoError::Conflict(_), _) => ApiError::Conflict(Msg::new(
            format!(
                "车牌 {}（{}）已登记为另一辆车",
                new.plate,
                validate::colour_zh(&new.plate_colour)
            ),
            format!(
                "plate {} ({}) is already registered to another vehicle",
                new.plate, new.plate_colour
            ),
        )),
        (RepoError::NotFound, Some(id)) => not_found(id),
        (e, _) => e.into(),
    }
}

/// Query parameters of `GET /api/v1/vehicles`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VehicleParams {
    /// Part of a plate, in any spelling (normalised like a full plate).
    plate: Option<String>,
    /// The owner's person id.
    owner_id: Option<i64>,
    /// car, suv, van, truck, bus, motorcycle or other.
    vehicle_type: Option<String>,
    /// Page number, from 1.
    page: Option<i64>,
    /// Items per page, 1 to 500 (default 50).
    per_page: Option<i64>,
}

/// Query parameters of `GET /api/v1/vehicles/by-plate/{plate}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ByPlateParams {
    /// Only the vehicle with this plate colour.
    plate_colour: Option<String>,
}

/// Search vehicles
///
/// By partial plate (normalised: `京a·123` finds 京A12345), owner and type, a page at a time,
/// ordered by id.
#[utoipa::path(
    get,
    path = "/api/v1/vehicles",
    tag = "vehicles",
    params(VehicleParams),
    responses(
        (status = 200, description = "One page of vehicles", body = PageOf<Vehicle>),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read vehicles", body = ErrorBody),
        (status = 422, description = "A bad filter or page", body = ErrorBody),
    )
)]
async fn search_vehicles(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<VehicleParams>,
) -> ApiResult<ApiJson<PageOf<Vehicle>>> {
    let page_query = PageQuery {
        page: params.page,
        per_page: params.per_page,
    };
    let page = page_query.page()?;
    let mut f = Fields::new();
    if let Some(t) = &params.vehicle_type
        && !VEHICLE_TYPES.contains(&t.as_str())
    {
        type_error(&mut f, "vehicle_type", t);
    }
    f.finish()?;
    let query = VehicleSearch {
        plate: params.plate.as_deref().map(normalise_fragment),
        owner_id: params.owner_id,
        vehicle_type: params.vehicle_type,
    };
    let found = vehicles::search(&state.db, &query, page).await?;
    Ok(ApiJson(paged(found, &page_query)))
}

/// Look a plate up
///
/// The vehicles registered with exactly this plate (normally one; the same plate in another
/// colour is another vehicle). The plate may be typed in any spelling. 404 when none is.
#[utoipa::path(
    get,
    path = "/api/v1/vehicles/by-plate/{plate}",
    tag = "vehicles",
    params(("plate" = String, Path, description = "The plate, e.g. 京A12345"), ByPlateParams),
    responses(
        (status = 200, description = "The vehicles with this plate", body = Vec<Vehicle>),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read vehicles", body = ErrorBody),
        (status = 404, description = "No vehicle has this plate", body = ErrorBody),
        (status = 422, description = "Not a valid plate, or a bad colour", body = ErrorBody),
    )
)]
async fn vehicles_by_plate(
    State(state): State<AppState>,
    ApiPath(plate): ApiPath<String>,
    ApiQuery(params): ApiQuery<ByPlateParams>,
) -> ApiResult<ApiJson<Vec<Vehicle>>> {
    let mut f = Fields::new();
    let parsed = Plate::parse(&plate);
    if let Err(e) = &parsed {
        f.plate("plate", e);
    }
    if let Some(c) = &params.plate_colour
        && PlateColour::from_code(c).is_none()
    {
        colour_error(&mut f, "plate_colour", c);
    }
    f.finish()?;
    let Ok(plate) = parsed else {
        // Cannot happen: finish() has just refused the plate's error.
        return Err(ApiError::Internal);
    };
    let found =
        vehicles::by_plate(&state.db, plate.as_str(), params.plate_colour.as_deref()).await?;
    if found.is_empty() {
        return Err(ApiError::NotFound(Msg::new(
            format!("车牌 {plate} 未登记"),
            format!("no vehicle is registered with plate {plate}"),
        )));
    }
    Ok(ApiJson(found))
}

/// Read a vehicle
#[utoipa::path(
    get,
    path = "/api/v1/vehicles/{id}",
    tag = "vehicles",
    params(("id" = i64, Path, description = "Vehicle id")),
    responses(
        (status = 200, description = "The vehicle", body = Vehicle),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read vehicles", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
    )
)]
async fn get_vehicle(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Vehicle>> {
    match vehicles::get(&state.db, id).await {
        Ok(v) => Ok(ApiJson(v)),
        Err(RepoError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

/// Register a vehicle
#[utoipa::path(
    post,
    path = "/api/v1/vehicles",
    tag = "vehicles",
    request_body = NewVehicle,
    responses(
        (status = 201, description = "Registered", body = Vehicle),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security register vehicles", body = ErrorBody),
        (status = 409, description = "The plate and colour are already registered", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    )
)]
async fn create_vehicle(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(new): ApiJson<NewVehicle>,
) -> ApiResult<(StatusCode, ApiJson<Vehicle>)> {
    let new = validated(&state, new).await?;
    let v = vehicles::create(&state.db, &authed.actor(), new.clone())
        .await
        .map_err(repo_error(None, &new))?;
    Ok((StatusCode::CREATED, ApiJson(v)))
}

/// Replace a vehicle
///
/// Every field is replaced.
#[utoipa::path(
    put,
    path = "/api/v1/vehicles/{id}",
    tag = "vehicles",
    params(("id" = i64, Path, description = "Vehicle id")),
    request_body = NewVehicle,
    responses(
        (status = 200, description = "Replaced", body = Vehicle),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security change vehicles", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
        (status = 409, description = "The plate and colour belong to another vehicle", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    )
)]
async fn update_vehicle(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(new): ApiJson<NewVehicle>,
) -> ApiResult<ApiJson<Vehicle>> {
    let new = validated(&state, new).await?;
    let v = vehicles::update(&state.db, &authed.actor(), id, new.clone())
        .await
        .map_err(repo_error(Some(id), &new))?;
    Ok(ApiJson(v))
}

/// Delete a vehicle
///
/// Refused (409) while credentials are issued to it or permits name it.
#[utoipa::path(
    delete,
    path = "/api/v1/vehicles/{id}",
    tag = "vehicles",
    params(("id" = i64, Path, description = "Vehicle id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security delete vehicles", body = ErrorBody),
        (status = 404, description = "No such vehicle", body = ErrorBody),
        (status = 409, description = "Credentials or permits still refer to the vehicle", body = ErrorBody),
    )
)]
async fn delete_vehicle(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    match vehicles::delete(&state.db, &authed.actor(), id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(RepoError::NotFound) => Err(not_found(id)),
        Err(RepoError::Reference(_)) => {
            let h = vehicles::holdings(&state.db, id).await?;
            Err(ApiError::Conflict(Msg::new(
                format!(
                    "车辆 {id} 仍有 {} 个标签、在 {} 张通行证上，不能删除；请先移除它们",
                    h.credentials, h.permits
                ),
                format!(
                    "vehicle {id} still has {} credentials and is on {} permits; remove those \
                     first",
                    h.credentials, h.permits
                ),
            )))
        }
        Err(e) => Err(e.into()),
    }
}
