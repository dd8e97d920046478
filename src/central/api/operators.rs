//! Operators and their roles: administrators only. Passwords are set here (hashed before they
//! reach the repository) and are never returned.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role, check_password, hash_password};
use super::error::{ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageOf, PageQuery, paged};
use crate::central::repo::operators::{self, NewOperator, Operator, OperatorChange};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// Creating an operator.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorInput {
    pub username: String,
    /// The name the pages show (门卫 李师傅): when given, 1–64 characters. Left out (older
    /// clients, scripts), the pages show the user name instead.
    #[serde(default)]
    pub display_name: Option<String>,
    pub password: String,
    pub roles: Vec<Role>,
    /// Gates a guard works at.
    #[serde(default)]
    pub gates: Vec<i64>,
    /// An approver's department.
    #[serde(default)]
    pub department: String,
    /// An applicant's person record (a staff member or student): required with the
    /// `applicant` role, whose holder applies for passes for this person's vehicles only.
    #[serde(default)]
    pub person_id: Option<i64>,
}

/// Changing an operator; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorUpdate {
    /// When given, 1–64 characters (a display name cannot be blanked).
    pub display_name: Option<String>,
    /// A new password (ends the operator's sessions).
    pub password: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub gates: Option<Vec<i64>>,
    pub department: Option<String>,
    /// false disables the account and ends its sessions.
    pub enabled: Option<bool>,
}

/// `?q=` searches user and display names.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OperatorQuery {
    pub q: Option<String>,
}

fn check_roles(roles: &[Role], gates: &[i64], department: &str, f: &mut Fields) {
    if roles.is_empty() {
        f.add(
            "roles",
            "required",
            Msg::new("至少需要一个角色", "At least one role is needed"),
        );
    }
    if roles.contains(&Role::Guard) && gates.is_empty() {
        f.add(
            "gates",
            "required",
            Msg::new(
                "门卫须绑定至少一个大门",
                "A guard must be bound to at least one gate",
            ),
        );
    }
    if roles.contains(&Role::Approver) && department.trim().is_empty() {
        f.add(
            "department",
            "required",
            Msg::new("审批人须指定所属部门", "An approver needs a department"),
        );
    }
}

/// A given display name: trimmed, 1–64 characters, no control characters.
fn check_display_name(text: Option<&str>, f: &mut Fields) -> Option<String> {
    let name = text?.trim().to_string();
    if name.is_empty() {
        f.add(
            "display_name",
            "required",
            Msg::new(
                "姓名必填（页面上显示的名称，如：门卫 李师傅）",
                "A display name is required (the name the pages show, e.g. Guard Li)",
            ),
        );
    } else if name.chars().count() > 64 {
        f.add(
            "display_name",
            "too_long",
            Msg::new(
                "姓名最多 64 个字符",
                "A display name is at most 64 characters",
            ),
        );
    } else if name.chars().any(char::is_control) {
        f.add(
            "display_name",
            "invalid_value",
            Msg::new(
                "姓名不能包含换行等控制字符",
                "A display name may not contain control characters",
            ),
        );
    }
    Some(name)
}

fn role_names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_string()).collect()
}

/// List operators.
#[utoipa::path(get, path = "/api/v1/operators", tag = "operators", params(OperatorQuery, PageQuery),
    responses((status = 200, body = PageOf<Operator>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_operators(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OperatorQuery>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<Operator>>> {
    let result = operators::search(&state.db, q.q.as_deref(), p.page()?).await?;
    Ok(ApiJson(paged(result, &p)))
}

/// Create an operator.
#[utoipa::path(post, path = "/api/v1/operators", tag = "operators", request_body = OperatorInput,
    responses((status = 201, body = Operator), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_operator(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(input): ApiJson<OperatorInput>,
) -> ApiResult<(StatusCode, ApiJson<Operator>)> {
    let mut f = Fields::new();
    let username = input.username.trim().to_string();
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        f.add(
            "username",
            "invalid_username",
            Msg::new(
                "用户名须为 1–64 位字母、数字或 . _ -",
                "A user name is 1-64 letters, digits or . _ -",
            ),
        );
    }
    check_password(
        &input.password,
        &input.username,
        &state.auth.site_words,
        "password",
        &mut f,
    );
    let display_name = check_display_name(input.display_name.as_deref(), &mut f);
    check_roles(&input.roles, &input.gates, &input.department, &mut f);
    let person_known = match input.person_id {
        Some(id) => crate::central::repo::persons::exists(&state.db, id).await?,
        None => false,
    };
    if input.roles.contains(&Role::Applicant) {
        match input.person_id {
            None => f.add(
                "person_id",
                "required",
                Msg::new(
                    "申请人账号须关联本人的人员编号",
                    "An applicant account needs the person it belongs to",
                ),
            ),
            Some(id) if !person_known => f.add(
                "person_id",
                "unknown_person",
                Msg::new(
                    format!("人员 {id} 不存在"),
                    format!("person {id} does not exist"),
                ),
            ),
            Some(_) => {}
        }
    }
    f.finish()?;
    let person_id = input.person_id;
    let password_hash = hash_password(input.password).await?;
    let op = operators::create(
        &state.db,
        &authed.actor(),
        NewOperator {
            username,
            display_name: display_name.unwrap_or_default(),
            password_hash,
            roles: role_names(&input.roles),
            gates: input.gates,
            department: input.department,
        },
    )
    .await?;
    if let Some(person) = person_id {
        operators::link_person(&state.db, &authed.actor(), op.id, person).await?;
    }
    Ok((StatusCode::CREATED, ApiJson(op)))
}

/// One operator.
#[utoipa::path(get, path = "/api/v1/operators/{id}", tag = "operators", params(("id" = i64, Path)),
    responses((status = 200, body = Operator), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_operator(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<ApiJson<Operator>> {
    Ok(ApiJson(operators::get(&state.db, id).await?))
}

/// Change an operator.
#[utoipa::path(put, path = "/api/v1/operators/{id}", tag = "operators", params(("id" = i64, Path)), request_body = OperatorUpdate,
    responses((status = 200, body = Operator), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_operator(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
    ApiJson(input): ApiJson<OperatorUpdate>,
) -> ApiResult<ApiJson<Operator>> {
    let current = operators::get(&state.db, id).await?;
    let mut f = Fields::new();
    let display_name = check_display_name(input.display_name.as_deref(), &mut f);
    if let Some(p) = &input.password {
        check_password(
            p,
            &current.username,
            &state.auth.site_words,
            "password",
            &mut f,
        );
    }
    let roles = input.roles.clone().unwrap_or_else(|| {
        current
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect()
    });
    let gates = input.gates.clone().unwrap_or(current.gates.clone());
    let department = input
        .department
        .clone()
        .unwrap_or(current.department.clone());
    check_roles(&roles, &gates, &department, &mut f);
    if id == authed.operator_id && (input.enabled == Some(false) || !roles.contains(&Role::Admin)) {
        f.add(
            "roles",
            "self_lockout",
            Msg::new(
                "不能停用自己或撤销自己的管理员角色",
                "You cannot disable yourself or drop your own admin role",
            ),
        );
    }
    f.finish()?;
    let password_hash = match input.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let op = operators::update(
        &state.db,
        &authed.actor(),
        id,
        OperatorChange {
            display_name,
            password_hash,
            roles: input.roles.map(|r| role_names(&r)),
            gates: input.gates,
            department: input.department,
            enabled: input.enabled,
        },
    )
    .await?;
    Ok(ApiJson(op))
}

/// Delete an operator.
#[utoipa::path(delete, path = "/api/v1/operators/{id}", tag = "operators", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn delete_operator(
    State(state): State<AppState>,
    authed: Authed,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    if id == authed.operator_id {
        let mut f = Fields::new();
        f.add(
            "id",
            "self_lockout",
            Msg::new("不能删除自己", "You cannot delete yourself"),
        );
        f.finish()?;
    }
    operators::delete(&state.db, &authed.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_operators, create_operator))
        .routes(routes!(get_operator, update_operator, delete_operator))
}
