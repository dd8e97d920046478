//! `/admin/operators`: the operators who sign in and their roles — administrators, the security
//! office, guards (bound to gates), departments' approvers (bound to a department), viewers (the
//! administration) and applicants (staff and students, linked to their person record). Created,
//! disabled and re-enabled through `/api/v1/operators` (administrators only).
//!
//! What it never does: show or send a password hash.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::{badge, field, frame, given, page_number, page_of, pager, status_line};
use crate::central::api::auth::Role;
use crate::central::repo::operators;
use crate::central::state::AppState;
use crate::i18n::{Lang, t};
use crate::web::{PageError, Viewer};

/// `?q=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    q: Option<String>,
    page: Option<String>,
}

/// A role's name in words.
pub fn role_label(lang: Lang, role: &str) -> &'static str {
    match role {
        "admin" => t(lang, "系统管理员", "Administrator"),
        "security" => t(lang, "保卫处", "Security office"),
        "guard" => t(lang, "门卫", "Guard"),
        "approver" => t(lang, "部门审批人", "Department approver"),
        "viewer" => t(lang, "查看（行政）", "Viewer (administration)"),
        "applicant" => t(lang, "申请人（教职工/学生）", "Applicant (staff/student)"),
        _ => "?",
    }
}

/// `GET /admin/operators`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let number = page_number(p.page.as_deref());
    let found = operators::search(&state.db, given(&p.q).as_deref(), page_of(number)).await?;
    let body = html! {
        section.panel aria-labelledby="list-title" {
            h2 id="list-title" { (t(lang, "操作员", "Operators")) }
            form.search method="get" role="search" {
                (field("q", "q", t(lang, "用户名或姓名", "User or display name"), html! { input id="q" name="q" value=[p.q.as_deref()] autocomplete="off"; }))
                button.primary type="submit" { (t(lang, "查询", "Search")) }
            }
            table.data id="operators" {
                thead { tr {
                    th scope="col" { (t(lang, "用户名", "User name")) }
                    th scope="col" { (t(lang, "姓名", "Name")) }
                    th scope="col" { (t(lang, "角色", "Roles")) }
                    th scope="col" { (t(lang, "大门/部门", "Gates / department")) }
                    th scope="col" { (t(lang, "状态", "Status")) }
                    th scope="col" { (t(lang, "操作", "Actions")) }
                } }
                tbody {
                    @for op in &found.items {
                        tr data-operator=(op.username) {
                            td.mono { (op.username) }
                            td { (op.display_name) }
                            td { @for r in &op.roles { span.badge { (role_label(lang, r)) } " " } }
                            td {
                                @if !op.gates.is_empty() { (t(lang, "大门 ", "gates ")) @for g in &op.gates { "#" (g) " " } }
                                (op.department)
                            }
                            td { @if op.enabled { (badge("active", t(lang, "启用", "enabled"))) } @else { (badge("revoked", t(lang, "停用", "disabled"))) } }
                            td.actions {
                                @if op.id != viewer.authed.operator_id {
                                    form data-url={ "/api/v1/operators/" (op.id) } data-method="PUT" data-reload {
                                        @if op.enabled { button.warn type="submit" name="enabled" value="false" data-type="bool" { (t(lang, "停用", "Disable")) } }
                                        @else { button.ok type="submit" name="enabled" value="true" data-type="bool" { (t(lang, "启用", "Enable")) } }
                                        (status_line())
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, "/admin/operators", &[("q", p.q.clone())], number, found.total))
        }
        section.panel aria-labelledby="add-title" {
            h2 id="add-title" { (t(lang, "新建操作员", "New operator")) }
            form.grid id="operator-form" data-url="/api/v1/operators" data-reload novalidate {
                (field("o-username", "username", t(lang, "用户名", "User name"), html! { input id="o-username" name="username" required autocomplete="off"; }))
                (field("o-display", "display_name", t(lang, "姓名", "Display name"), html! { input id="o-display" name="display_name" autocomplete="off"; }))
                (field("o-password", "password", t(lang, "初始密码", "Initial password"), html! { input id="o-password" name="password" type="password" required autocomplete="new-password"; }))
                fieldset.wide {
                    legend { (t(lang, "角色", "Roles")) }
                    @for r in Role::ALL {
                        label { input type="checkbox" name="roles" value=(r.as_str()) data-type="list"; " " (role_label(lang, r.as_str())) }
                    }
                    span.error data-error-for="roles" {}
                }
                (field("o-gates", "gates", t(lang, "门卫的大门编号（逗号分隔）", "A guard's gate numbers (comma separated)"), html! { input id="o-gates" name="gates" data-type="numbers" autocomplete="off" placeholder="1,2"; }))
                (field("o-department", "department", t(lang, "审批人的部门", "An approver's department"), html! { input id="o-department" name="department" autocomplete="off"; }))
                (field("o-person", "person_id", t(lang, "申请人的人员编号", "An applicant's person no."), html! { input id="o-person" name="person_id" data-type="number" inputmode="numeric"; }))
                div.buttons { button.primary type="submit" { (t(lang, "创建", "Create")) } }
                (status_line())
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin/operators",
        t(lang, "操作员与角色", "Operators and roles"),
        body,
    ))
}
