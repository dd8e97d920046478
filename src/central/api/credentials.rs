//! `/api/v1/credentials`: the UHF windscreen tags issued to vehicles — search (by EPC prefix,
//! vehicle, status), read, issue, replace (e.g. report lost, revoke, bind a TID), delete.
//!
//! Owner roles: admin and security write; admin, security, guard and viewer read (the guard's
//! booth looks a read tag up).
//!
//! What it never does: store an EPC or TID that is not hexadecimal of at most 16 bytes, or in any
//! form but upper-case hex; issue one EPC twice; or write anything when any field is invalid.

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
use crate::central::repo::credentials::{
    self, Credential, CredentialSearch, NewCredential, STATUSES,
};
use crate::central::repo::vehicles;
use crate::central::state::AppState;
use crate::domain::tag::{Epc, MAX_TAG_BYTES, TagBytesError, Tid};
use crate::i18n::Msg;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_credentials, create_credential))
        .routes(routes!(
            get_credential,
            update_credential,
            delete_credential
        ))
}

/// Adds the field error for tag hex that did not parse.
fn tag_error(f: &mut Fields, field: &'static str, e: &TagBytesError) {
    let name = if field == "tid" { "TID" } else { "EPC" };
    let (code, zh, en) = match e {
        TagBytesError::Empty => (
            "tag_empty",
            format!("{name} 不能为空"),
            format!("the {name} is empty"),
        ),
        TagBytesError::TooLong(n) => (
            "tag_too_long",
            format!("{name} 有 {n} 字节，最多 {MAX_TAG_BYTES} 字节"),
            format!("the {name} has {n} bytes; at most {MAX_TAG_BYTES} are supported"),
        ),
        TagBytesError::NotHex => (
            "tag_not_hex",
            format!("{name} 须为十六进制（0-9、A-F，偶数位）"),
            format!("the {name} must be hexadecimal (0-9, A-F, an even number of digits)"),
        ),
    };
    f.add(field, code, Msg::new(zh, en));
}

fn status_error(f: &mut Fields, found: &str) {
    f.add(
        "status",
        "invalid_status",
        Msg::new(
            format!("标签状态“{found}”无效，应为 active、lost 或 revoked"),
            format!("status {found:?} is not one of active, lost, revoked"),
        ),
    );
}

/// Checks and normalises a credential's fields, reporting every problem at once.
pub(crate) async fn validated(state: &AppState, new: NewCredential) -> ApiResult<NewCredential> {
    let mut f = Fields::new();
    let epc = match Epc::from_hex(&new.epc) {
        Ok(e) => e.to_string(),
        Err(e) => {
            tag_error(&mut f, "epc", &e);
            String::new()
        }
    };
    // An empty TID is the same as none: the credential is not bound.
    let tid = match new.tid.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => match Tid::from_hex(text) {
            Ok(t) => Some(t.to_string()),
            Err(e) => {
                tag_error(&mut f, "tid", &e);
                None
            }
        },
    };
    if !STATUSES.contains(&new.status.as_str()) {
        status_error(&mut f, &new.status);
    }
    if !vehicles::exists(&state.db, new.vehicle_id).await? {
        f.add(
            "vehicle_id",
            "unknown_vehicle",
            Msg::new(
                format!("车辆 {} 不存在", new.vehicle_id),
                format!("vehicle {} does not exist", new.vehicle_id),
            ),
        );
    }
    f.finish()?;
    Ok(NewCredential {
        epc,
        tid,
        vehicle_id: new.vehicle_id,
        status: new.status,
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(Msg::new(
        format!("标签凭证 {id} 不存在"),
        format!("credential {id} does not exist"),
    ))
}

/// Maps a repository error, naming the EPC on a uniqueness conflict and the credential when it is
/// missing.
fn repo_error(id: Option<i64>, epc: &str) -> impl FnOnce(RepoError) -> ApiError + '_ {
    move |e| match (e, id) {
        (RepoError::Conflict(_), _) => ApiError::Conflict(Msg::new(
            format!("EPC {epc} 已发给另一个标签凭证"),
            format!("EPC {epc} is already issued as another credential"),
        )),
        (RepoError::NotFound, Some(id)) => not_found(id),
        (e, _) => e.into(),
    }
}

/// Query parameters of `GET /api/v1/credentials`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CredentialParams {
    /// The start of the EPC (hex, either case).
    epc: Option<String>,
    /// The vehicle's id.
    vehicle_id: Option<i64>,
    /// active, lost or revoked.
    status: Option<String>,
    /// Page number, from 1.
    page: Option<i64>,
    /// Items per page, 1 to 500 (default 50).
    per_page: Option<i64>,
}

/// Search credentials
///
/// By EPC prefix, vehicle and status, a page at a time, ordered by id.
#[utoipa::path(
    get,
    path = "/api/v1/credentials",
    tag = "credentials",
    params(CredentialParams),
    responses(
        (status = 200, description = "One page of credentials", body = PageOf<Credential>),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read credentials", body = ErrorBody),
        (status = 422, description = "A bad filter or page", body = ErrorBody),
    )
)]
async fn search_credentials(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<CredentialParams>,
) -> ApiResult<ApiJson<PageOf<Credential>>> {
    let page_query = PageQuery {
        page: params.page,
        per_page: params.per_page,
    };
    let page = page_query.page()?;
    let mut f = Fields::new();
    let prefix: Option<String> = params
        .epc
        .as_deref()
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect());
    if let Some(p) = &prefix
        && (!p.chars().all(|c| c.is_ascii_hexdigit()) || p.len() > 2 * MAX_TAG_BYTES)
    {
        f.add(
            "epc",
            "tag_not_hex",
            Msg::new(
                "EPC 前缀须为十六进制（0-9、A-F），最多 32 位",
                "the EPC prefix must be hexadecimal (0-9, A-F), at most 32 digits",
            ),
        );
    }
    if let Some(s) = &params.status
        && !STATUSES.contains(&s.as_str())
    {
        status_error(&mut f, s);
    }
    f.finish()?;
    let query = CredentialSearch {
        epc_prefix: prefix.map(|p| p.to_ascii_uppercase()),
        vehicle_id: params.vehicle_id,
        status: params.status,
    };
    let found = credentials::search(&state.db, &query, page).await?;
    Ok(ApiJson(paged(found, &page_query)))
}

/// Read a credential
#[utoipa::path(
    get,
    path = "/api/v1/credentials/{id}",
    tag = "credentials",
    params(("id" = i64, Path, description = "Credential id")),
    responses(
        (status = 200, description = "The credential", body = Credential),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read credentials", body = ErrorBody),
        (status = 404, description = "No such credential", body = ErrorBody),
    )
)]
async fn get_credential(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Credential>> {
    match credentials::get(&state.db, id).await {
        Ok(c) => Ok(ApiJson(c)),
        Err(RepoError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

/// Issue a credential
#[utoipa::path(
    post,
    path = "/api/v1/credentials",
    tag = "credentials",
    request_body = NewCredential,
    responses(
        (status = 201, description = "Issued", body = Credential),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security issue credentials", body = ErrorBody),
        (status = 409, description = "The EPC is already issued", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    )
)]
async fn create_credential(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(new): ApiJson<NewCredential>,
) -> ApiResult<(StatusCode, ApiJson<Credential>)> {
    let new = validated(&state, new).await?;
    let c = credentials::create(&state.db, &authed.actor(), new.clone())
        .await
        .map_err(repo_error(None, &new.epc))?;
    Ok((StatusCode::CREATED, ApiJson(c)))
}

/// Replace a credential
///
/// Every field is replaced: report a tag lost or revoke it by its status, bind or unbind its TID.
#[utoipa::path(
    put,
    path = "/api/v1/credentials/{id}",
    tag = "credentials",
    params(("id" = i64, Path, description = "Credential id")),
    request_body = NewCredential,
    responses(
        (status = 200, description = "Replaced", body = Credential),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security change credentials", body = ErrorBody),
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "The EPC is another credential's", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    )
)]
async fn update_credential(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(new): ApiJson<NewCredential>,
) -> ApiResult<ApiJson<Credential>> {
    let new = validated(&state, new).await?;
    let c = credentials::update(&state.db, &authed.actor(), id, new.clone())
        .await
        .map_err(repo_error(Some(id), &new.epc))?;
    Ok(ApiJson(c))
}

/// Delete a credential
///
/// To stop a tag working while keeping its record, set its status to lost or revoked instead.
#[utoipa::path(
    delete,
    path = "/api/v1/credentials/{id}",
    tag = "credentials",
    params(("id" = i64, Path, description = "Credential id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security delete credentials", body = ErrorBody),
        (status = 404, description = "No such credential", body = ErrorBody),
    )
)]
async fn delete_credential(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    match credentials::delete(&state.db, &authed.actor(), id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(RepoError::NotFound) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}
