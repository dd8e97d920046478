//! `/api/v1/applications`: the exit-pass application flow (出门证申请) — apply, the department
//! approver's decision, the security office's issue, which creates the permit (and binds a tag)
//! that reaches the gates through the change log like any permit.
//!
//! Who may do what (the route table in [`super::policy`] plus the department checks here):
//! - apply, read, cancel: admin and security for anyone; an approver only for people of their
//!   own department; an applicant (a staff member or student signed in with the `applicant`
//!   role, linked to their person record) only for themselves and a vehicle registered to them;
//! - approve, reject (with a comment; required to reject): the applicant's department's
//!   approver, or an administrator;
//! - issue: the security office or an administrator.
//!
//! A step that does not apply to the application's status is a 409 naming the status.
//!
//! What it never does: change an issued permit (the permits API does), or let an approver see
//! another department's applications.

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult, ErrorBody, FieldError, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use super::permits::check_len;
use crate::central::repo::applications::{
    self, Application, ApplicationKind, ApplicationQuery, ApplicationStatus, Issued,
    NewApplication, TransitionError,
};
use crate::central::repo::credentials::NewCredential;
use crate::central::repo::permits::{PermitInput, person_department};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// The longest a one-off exit pass may run.
pub const ONE_OFF_MAX_DAYS: i64 = 7;

/// What an application is made with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationInput {
    /// `permit` (a vehicle pass for a period) or `one_off` (single use, at most 7 days).
    pub kind: ApplicationKind,
    /// The staff member or student; must exist.
    pub applicant_id: i64,
    /// Their vehicle; must exist.
    pub vehicle_id: i64,
    /// Permit category: staff, student, family, contractor, official, visitor.
    pub category: String,
    /// Gate rights in text form; default `all` for a permit, `all:exit` for a one-off pass.
    #[serde(default)]
    pub gates: Option<String>,
    /// RFC 3339, a whole minute.
    pub valid_from: DateTime<Utc>,
    /// RFC 3339, a whole minute, after `valid_from`.
    pub valid_until: DateTime<Utc>,
    /// Why the pass is needed (at most 500 characters).
    #[serde(default)]
    pub purpose: String,
}

/// An approver's decision.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The approver's comment; required when rejecting (at most 500 characters).
    #[serde(default)]
    pub comment: String,
}

/// The tag to bind when issuing (optional: a pass for a plate-read lane needs none).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueInput {
    /// The windscreen tag's EPC, hex.
    #[serde(default)]
    pub epc: Option<String>,
    /// The tag's factory TID, hex, to bind the credential to the tag.
    #[serde(default)]
    pub tid: Option<String>,
    /// Required when the vehicle already holds a live pass of the same kind with an
    /// overlapping validity: why a second one is issued (stored with the permit, audited).
    #[serde(default)]
    pub override_reason: String,
}

/// `?status=&department=&applicant_id=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationSearch {
    /// pending, approved, rejected, issued or cancelled.
    pub status: Option<String>,
    /// Exact department (an approver always sees only their own).
    pub department: Option<String>,
    pub applicant_id: Option<i64>,
    /// `permit` or `one_off`.
    pub kind: Option<String>,
}

/// Whose applications the caller may see, enter and withdraw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Admin and security: every department.
    All,
    /// An approver: their own department's.
    Department(String),
    /// An applicant (a staff member or student): their own.
    Person(i64),
    /// Anyone else (an approver without a department, an applicant not linked to a person).
    Nothing,
}

impl Scope {
    pub(crate) fn covers(&self, department: &str, applicant_id: i64) -> bool {
        match self {
            Scope::All => true,
            Scope::Department(d) => d == department,
            Scope::Person(p) => *p == applicant_id,
            Scope::Nothing => false,
        }
    }
}

/// The caller's [`Scope`] (the pages use it too, so they show what the API allows).
pub(crate) async fn scope(state: &AppState, authed: &Authed) -> ApiResult<Scope> {
    if authed.has(Role::Admin) || authed.has(Role::Security) {
        return Ok(Scope::All);
    }
    if authed.has(Role::Approver) && !authed.department.is_empty() {
        return Ok(Scope::Department(authed.department.clone()));
    }
    if authed.has(Role::Applicant)
        && let Some(person) =
            crate::central::repo::operators::person_of(&state.db, authed.operator_id).await?
    {
        return Ok(Scope::Person(person));
    }
    Ok(Scope::Nothing)
}

/// The department's approver, or an administrator.
pub(crate) fn may_decide(authed: &Authed, department: &str) -> bool {
    authed.has(Role::Admin)
        || (authed.has(Role::Approver)
            && !authed.department.is_empty()
            && authed.department == department)
}

fn wrong_status(current: ApplicationStatus, verb: (&str, &str)) -> ApiError {
    let (zh, en) = current.label();
    ApiError::Conflict(Msg::new(
        format!("该申请当前状态为“{zh}”，不能{}", verb.0),
        format!("The application is {en}; it cannot be {}", verb.1),
    ))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(Msg::new(
        format!("出门证申请 {id} 不存在"),
        format!("exit-pass application {id} does not exist"),
    ))
}

async fn load(state: &AppState, id: i64) -> ApiResult<Application> {
    applications::get(&state.db, id).await.map_err(|e| match e {
        crate::central::db::RepoError::NotFound => not_found(id),
        e => e.into(),
    })
}

/// Checks the input with the permits API's rules (the permit it becomes must be valid), plus
/// the one-off limit. Writes nothing.
async fn validate(state: &AppState, input: ApplicationInput) -> ApiResult<NewApplication> {
    let gates = input.gates.clone().unwrap_or_else(|| {
        match input.kind {
            ApplicationKind::Permit => "all",
            ApplicationKind::OneOff => "all:exit",
        }
        .to_string()
    });
    let mut permit = PermitInput {
        category: input.category.trim().to_string(),
        holder_id: input.applicant_id,
        valid_from: input.valid_from,
        valid_until: input.valid_until,
        gates,
        schedule: String::new(),
        single_use: input.kind == ApplicationKind::OneOff,
        max_inside: None,
        vehicle_ids: vec![input.vehicle_id],
    };
    let mut errors: Vec<FieldError> = match super::permits::validate(&state.db, &mut permit).await {
        Ok(()) => vec![],
        Err(ApiError::Validation(fields)) => fields,
        Err(e) => return Err(e),
    };
    // The permit's field names, as this request names them.
    for e in &mut errors {
        if e.field == "holder_id" {
            e.field = "applicant_id".into();
        } else if e.field == "vehicle_ids[0]" {
            e.field = "vehicle_id".into();
        }
    }
    let mut f = Fields::new();
    if input.kind == ApplicationKind::OneOff
        && input.valid_until - input.valid_from > Duration::days(ONE_OFF_MAX_DAYS)
    {
        f.add(
            "valid_until",
            "one_off_too_long",
            Msg::new(
                format!("一次性出门证的有效期最长 {ONE_OFF_MAX_DAYS} 天"),
                format!("a one-off exit pass lasts at most {ONE_OFF_MAX_DAYS} days"),
            ),
        );
    }
    check_len(&mut f, "purpose", &input.purpose, 500);
    let department = person_department(&state.db, input.applicant_id)
        .await?
        .unwrap_or_default();
    if let Err(ApiError::Validation(more)) = f.finish() {
        errors.extend(more);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(NewApplication {
        kind: input.kind,
        applicant_id: input.applicant_id,
        department,
        vehicle_id: input.vehicle_id,
        category: permit.category,
        gates: permit.gates,
        valid_from: input.valid_from,
        valid_until: input.valid_until,
        purpose: input.purpose.trim().to_string(),
    })
}

/// Search applications, newest first (an approver sees only their department's).
#[utoipa::path(get, path = "/api/v1/applications", tag = "applications",
    params(ApplicationSearch, PageQuery),
    responses((status = 200, body = PageOf<Application>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_applications(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(q): ApiQuery<ApplicationSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<Application>>> {
    let mut f = Fields::new();
    let status = match q.status.as_deref() {
        None => None,
        Some(code) => {
            let s = ApplicationStatus::from_code(code);
            if s.is_none() {
                f.add(
                    "status",
                    "invalid_status",
                    Msg::new(
                        format!(
                            "状态“{code}”无效，应为 pending、approved、rejected、issued 或 cancelled"
                        ),
                        format!(
                            "status {code:?} is not one of pending, approved, rejected, issued, cancelled"
                        ),
                    ),
                );
            }
            s
        }
    };
    f.finish()?;
    let page = p.page()?;
    let (department, applicant_id) = match scope(&state, &authed).await? {
        Scope::All => (q.department, q.applicant_id),
        Scope::Department(d) => (Some(d), q.applicant_id),
        Scope::Person(p) => (q.department, Some(p)),
        // Nobody's applications: an empty list (an approver without a department, an
        // applicant account not linked to a person).
        Scope::Nothing => (None, Some(-1)),
    };
    if q.applicant_id.is_some_and(|id| Some(id) != applicant_id) && applicant_id != Some(-1) {
        // An applicant asking for someone else's: nothing to show.
        return Err(ApiError::Forbidden);
    }
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some("permit") => Some(ApplicationKind::Permit),
        Some("one_off") => Some(ApplicationKind::OneOff),
        Some(other) => {
            let mut f = Fields::new();
            f.add(
                "kind",
                "invalid_kind",
                Msg::new(
                    format!("类型“{other}”无效，应为 permit 或 one_off"),
                    format!("kind {other:?} is not permit or one_off"),
                ),
            );
            return Err(f.finish().unwrap_err());
        }
    };
    let query = ApplicationQuery {
        status,
        department,
        applicant_id,
        kind,
    };
    Ok(ApiJson(paged(
        applications::search(&state.db, &query, page).await?,
        &p,
    )))
}

/// Apply for a vehicle pass or a one-off exit pass on a staff member's or student's behalf.
#[utoipa::path(post, path = "/api/v1/applications", tag = "applications",
    request_body = ApplicationInput,
    responses((status = 201, body = Application), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_application(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<ApplicationInput>,
) -> ApiResult<(axum::http::StatusCode, ApiJson<Application>)> {
    let scope = scope(&state, &authed).await?;
    if scope == Scope::Nothing {
        return Err(ApiError::Forbidden);
    }
    if let Scope::Person(me) = scope {
        // An applicant applies for themselves, for a vehicle registered to them.
        let mut f = Fields::new();
        if input.applicant_id != me {
            f.add(
                "applicant_id",
                "not_yourself",
                Msg::new("只能为本人申请", "You can apply only for yourself"),
            );
        }
        let owner = crate::central::repo::vehicles::get(&state.db, input.vehicle_id)
            .await
            .ok()
            .and_then(|v| v.owner_id);
        if owner.is_some_and(|o| o != me) {
            f.add(
                "vehicle_id",
                "not_your_vehicle",
                Msg::new(
                    "只能为登记在本人名下的车辆申请",
                    "You can apply only for a vehicle registered to you",
                ),
            );
        }
        f.finish()?;
    }
    let new = validate(&state, input).await?;
    if !scope.covers(&new.department, new.applicant_id) {
        return Err(ApiError::Forbidden);
    }
    let app = applications::create(&state.db, &authed.actor(), &new).await?;
    Ok((axum::http::StatusCode::CREATED, ApiJson(app)))
}

/// One application.
#[utoipa::path(get, path = "/api/v1/applications/{id}", tag = "applications",
    params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_application(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Application>> {
    let app = load(&state, id).await?;
    if !scope(&state, &authed)
        .await?
        .covers(&app.department, app.applicant_id)
    {
        return Err(ApiError::Forbidden);
    }
    Ok(ApiJson(app))
}

async fn decide(
    state: &AppState,
    authed: &Authed,
    id: i64,
    approve: bool,
    decision: Decision,
) -> ApiResult<ApiJson<Application>> {
    let current = load(state, id).await?;
    if !may_decide(authed, &current.department) {
        return Err(ApiError::Forbidden);
    }
    let comment = decision.comment.trim().to_string();
    let mut f = Fields::new();
    if !approve && comment.is_empty() {
        f.add(
            "comment",
            "comment_required",
            Msg::new("驳回申请须填写意见", "a rejection needs a comment"),
        );
    }
    check_len(&mut f, "comment", &comment, 500);
    f.finish()?;
    let verb = if approve {
        ("批准", "approved")
    } else {
        ("驳回", "rejected")
    };
    match applications::decide(&state.db, &authed.actor(), id, approve, &comment).await {
        Ok(app) => Ok(ApiJson(app)),
        Err(TransitionError::WrongStatus(s)) => Err(wrong_status(s, verb)),
        Err(TransitionError::Repo(e)) => Err(e.into()),
    }
}

/// Approve a pending application (the applicant's department's approver, or an administrator).
#[utoipa::path(post, path = "/api/v1/applications/{id}/approve", tag = "applications",
    params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = Application), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn approve_application(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(decision): ApiJson<Decision>,
) -> ApiResult<ApiJson<Application>> {
    decide(&state, &authed, id, true, decision).await
}

/// Reject a pending application with a comment (the department's approver, or an
/// administrator).
#[utoipa::path(post, path = "/api/v1/applications/{id}/reject", tag = "applications",
    params(("id" = i64, Path)), request_body = Decision,
    responses((status = 200, body = Application), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reject_application(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(decision): ApiJson<Decision>,
) -> ApiResult<ApiJson<Application>> {
    decide(&state, &authed, id, false, decision).await
}

/// Withdraw a pending or approved application.
#[utoipa::path(post, path = "/api/v1/applications/{id}/cancel", tag = "applications",
    params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn cancel_application(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Application>> {
    let current = load(&state, id).await?;
    if !scope(&state, &authed)
        .await?
        .covers(&current.department, current.applicant_id)
    {
        return Err(ApiError::Forbidden);
    }
    match applications::cancel(&state.db, &authed.actor(), id).await {
        Ok(app) => Ok(ApiJson(app)),
        Err(TransitionError::WrongStatus(s)) => Err(wrong_status(s, ("撤销", "cancelled"))),
        Err(TransitionError::Repo(e)) => Err(e.into()),
    }
}

/// Issue an approved application: create its permit (single use for a one-off pass) and bind
/// the tag, if given, to the vehicle — one transaction; the gates receive the permit through
/// the change log. A vehicle that already holds a live pass of the same kind with an
/// overlapping validity gets a second one only with an `override_reason` (else 409).
#[utoipa::path(post, path = "/api/v1/applications/{id}/issue", tag = "applications",
    params(("id" = i64, Path)), request_body = IssueInput,
    responses((status = 200, body = Issued), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn issue_application(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<IssueInput>,
) -> ApiResult<ApiJson<Issued>> {
    let current = load(&state, id).await?;
    if current.status != ApplicationStatus::Approved {
        return Err(wrong_status(current.status, ("发证", "issued")));
    }
    let reason = super::permits::check_duplicates(
        &state,
        &[current.vehicle_id],
        current.kind == ApplicationKind::OneOff,
        (current.valid_from, current.valid_until),
        &input.override_reason,
    )
    .await?;
    let tag = match input
        .epc
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(epc) => Some(
            super::credentials::validated(
                &state,
                NewCredential {
                    epc: epc.to_string(),
                    tid: input.tid.clone(),
                    vehicle_id: current.vehicle_id,
                    status: "active".into(),
                },
            )
            .await?,
        ),
        None => None,
    };
    let epc = tag.as_ref().map(|t| t.epc.clone()).unwrap_or_default();
    match applications::issue(&state.db, &authed.actor(), id, tag, &reason).await {
        Ok(issued) => Ok(ApiJson(issued)),
        Err(TransitionError::WrongStatus(s)) => Err(wrong_status(s, ("发证", "issued"))),
        Err(TransitionError::Repo(crate::central::db::RepoError::Conflict(_))) => {
            Err(ApiError::Conflict(Msg::new(
                format!("EPC {epc} 已发给另一个标签凭证"),
                format!("EPC {epc} is already issued to another credential"),
            )))
        }
        Err(TransitionError::Repo(e)) => Err(e.into()),
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(get_application))
        .routes(routes!(approve_application))
        .routes(routes!(reject_application))
        .routes(routes!(cancel_application))
        .routes(routes!(issue_application))
}
