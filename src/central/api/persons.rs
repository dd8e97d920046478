//! `/api/v1/persons`: persons (人员) — search, read, create, replace, delete.
//!
//! Owner roles: admin and security write; admin, security, guard and viewer read every person;
//! a department approver reads the persons of their own department only. 身份证号 and phone
//! numbers are shown in full to admin and security only and masked (`1101**********1234`,
//! `138****5678`) for everyone else, and only those two roles can find a person by phone digits.
//!
//! What it never does: write anything when the input is invalid (every field is checked first and
//! all problems are reported together), or show an unmasked number to a role that may not see it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::db::RepoError;
use crate::central::repo::persons::{
    self, CATEGORIES, NewPerson, Person, PersonSearch, mask_id_card, mask_phone,
};
use crate::central::state::AppState;
use crate::central::validate;
use crate::i18n::Msg;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_persons, create_person))
        .routes(routes!(get_person, update_person, delete_person))
}

/// Query parameters of `GET /api/v1/persons`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PersonParams {
    /// A substring of the name (case-insensitive); for admin and security also of the phone.
    q: Option<String>,
    /// staff, student, family, contractor, official or visitor.
    category: Option<String>,
    /// Exact department.
    department: Option<String>,
    /// Page number, from 1.
    page: Option<i64>,
    /// Items per page, 1 to 500 (default 50).
    per_page: Option<i64>,
}

/// Which persons the caller may read: all (`None`) or one department's (an approver who holds
/// no other reading role).
fn department_scope(authed: &Authed) -> ApiResult<Option<String>> {
    if [Role::Admin, Role::Security, Role::Guard, Role::Viewer]
        .into_iter()
        .any(|r| authed.has(r))
    {
        return Ok(None);
    }
    if authed.department.is_empty() {
        // An approver of no department approves for nobody.
        return Err(ApiError::Forbidden);
    }
    Ok(Some(authed.department.clone()))
}

/// The person as this caller may see them.
fn shown(mut p: Person, authed: &Authed) -> Person {
    if !authed.sees_personal_ids() {
        p.id_card = mask_id_card(&p.id_card);
        p.phone = mask_phone(&p.phone);
        p.email = mask_email(&p.email);
    }
    p
}

/// An e-mail address for roles that must not see it: the domain stays, the local part keeps
/// its first character (`z***@example.edu.cn`).
fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => String::new(),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(Msg::new(
        format!("人员 {id} 不存在"),
        format!("person {id} does not exist"),
    ))
}

fn repo_error(id: i64) -> impl FnOnce(RepoError) -> ApiError {
    move |e| match e {
        RepoError::NotFound => not_found(id),
        e => e.into(),
    }
}

/// Search persons
///
/// By name (or phone, for admin and security) substring, category and department, a page at a
/// time, ordered by id.
#[utoipa::path(
    get,
    path = "/api/v1/persons",
    tag = "persons",
    params(PersonParams),
    responses(
        (status = 200, description = "One page of persons", body = PageOf<Person>),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read persons (or not this department)", body = ErrorBody),
        (status = 422, description = "A bad filter or page", body = ErrorBody),
    )
)]
async fn search_persons(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(params): ApiQuery<PersonParams>,
) -> ApiResult<ApiJson<PageOf<Person>>> {
    let scope = department_scope(&authed)?;
    let page_query = PageQuery {
        page: params.page,
        per_page: params.per_page,
    };
    let page = page_query.page()?;
    let mut f = Fields::new();
    if let Some(c) = &params.category
        && !CATEGORIES.contains(&c.as_str())
    {
        f.add(
            "category",
            "invalid_category",
            validate::category_message(c),
        );
    }
    f.finish()?;
    let department = match (scope, params.department) {
        (None, d) => d,
        (Some(own), None) => Some(own),
        (Some(own), Some(d)) if d == own => Some(own),
        (Some(_), Some(_)) => return Err(ApiError::Forbidden),
    };
    let query = PersonSearch {
        text: params.q.map(|q| q.trim().to_string()),
        text_matches_phone: authed.sees_personal_ids(),
        category: params.category,
        department,
    };
    let mut found = persons::search(&state.db, &query, page).await?;
    found.items = found.items.into_iter().map(|p| shown(p, &authed)).collect();
    Ok(ApiJson(paged(found, &page_query)))
}

/// Read a person
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}",
    tag = "persons",
    params(("id" = i64, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person", body = Person),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "The role may not read this person", body = ErrorBody),
        (status = 404, description = "No such person", body = ErrorBody),
    )
)]
async fn get_person(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Person>> {
    let scope = department_scope(&authed)?;
    let p = persons::get(&state.db, id).await.map_err(repo_error(id))?;
    if let Some(own) = scope
        && p.department != own
    {
        return Err(ApiError::Forbidden);
    }
    Ok(ApiJson(shown(p, &authed)))
}

/// Create a person
#[utoipa::path(
    post,
    path = "/api/v1/persons",
    tag = "persons",
    request_body = NewPerson,
    responses(
        (status = 201, description = "Created", body = Person),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security create persons", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    )
)]
async fn create_person(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(new): ApiJson<NewPerson>,
) -> ApiResult<(StatusCode, ApiJson<Person>)> {
    let new = validate::person(new).map_err(ApiError::Validation)?;
    let p = persons::create(&state.db, &authed.actor(), new).await?;
    Ok((StatusCode::CREATED, ApiJson(shown(p, &authed))))
}

/// Replace a person
///
/// Every field is replaced (omitted optional fields become empty).
#[utoipa::path(
    put,
    path = "/api/v1/persons/{id}",
    tag = "persons",
    params(("id" = i64, Path, description = "Person id")),
    request_body = NewPerson,
    responses(
        (status = 200, description = "Replaced", body = Person),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security change persons", body = ErrorBody),
        (status = 404, description = "No such person", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ErrorBody),
    )
)]
async fn update_person(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(new): ApiJson<NewPerson>,
) -> ApiResult<ApiJson<Person>> {
    let new = validate::person(new).map_err(ApiError::Validation)?;
    let p = persons::update(&state.db, &authed.actor(), id, new)
        .await
        .map_err(repo_error(id))?;
    Ok(ApiJson(shown(p, &authed)))
}

/// Delete a person
///
/// Refused (409) while the person holds permits or vehicles or hosts visitor bookings.
#[utoipa::path(
    delete,
    path = "/api/v1/persons/{id}",
    tag = "persons",
    params(("id" = i64, Path, description = "Person id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 403, description = "Only admin and security delete persons", body = ErrorBody),
        (status = 404, description = "No such person", body = ErrorBody),
        (status = 409, description = "The person still holds permits, vehicles or bookings", body = ErrorBody),
    )
)]
async fn delete_person(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    match persons::delete(&state.db, &authed.actor(), id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(RepoError::Reference(_)) => {
            let h = persons::holdings(&state.db, id).await?;
            Err(ApiError::Conflict(Msg::new(
                format!(
                    "人员 {id} 仍持有 {} 张通行证、{} 辆车、{} 个访客预约，不能删除；请先移除它们",
                    h.permits, h.vehicles, h.bookings
                ),
                format!(
                    "person {id} still holds {} permits, {} vehicles and {} visitor bookings; \
                     remove those first",
                    h.permits, h.vehicles, h.bookings
                ),
            )))
        }
        Err(e) => Err(repo_error(id)(e)),
    }
}
