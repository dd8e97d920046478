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
use crate::central::repo::{gates, operators};
use crate::central::state::AppState;
use crate::i18n::{Lang, t};
use crate::web::{PageError, Viewer};

/// `?q=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    q: Option<String>,
    page: Option<String>,
}

/// A role's name in words (see [`crate::i18n::role_label`]).
pub fn role_label(lang: Lang, role: &str) -> &'static str {
    crate::i18n::role_label(lang, role)
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
    let gate_names: std::collections::HashMap<i64, String> = gates::search(
        &state.db,
        &gates::GateQuery::default(),
        crate::central::db::Page {
            offset: 0,
            limit: crate::central::db::MAX_PAGE,
        },
    )
    .await?
    .items
    .into_iter()
    .map(|g| (g.id, g.name_in(lang).to_string()))
    .collect();
    let mut gate_list: Vec<(i64, String)> =
        gate_names.iter().map(|(id, n)| (*id, n.clone())).collect();
    gate_list.sort();
    let body = html! {
        section.panel aria-labelledby="list-title" {
            h2 id="list-title" { (t(lang, "操作员", "Operators")) }
            form.search method="get" role="search" {
                (field("q", "q", t(lang, "用户名或姓名", "User or display name"), html! { input id="q" name="q" value=[p.q.as_deref()] autocomplete="off"; }))
                button.primary type="submit" { (t(lang, "查询", "Search")) }
            }
            table.data id="operators" {
                thead { tr {
                    th scope="col" { (t(lang, "姓名", "Display name")) }
                    th scope="col" { (t(lang, "登录用户名", "Sign-in name")) }
                    th scope="col" { (t(lang, "角色", "Roles")) }
                    th scope="col" { (t(lang, "大门/部门", "Gates / department")) }
                    th scope="col" { (t(lang, "状态", "Status")) }
                    th scope="col" { (t(lang, "操作", "Actions")) }
                } }
                tbody {
                    @for op in &found.items {
                        tr data-operator=(op.username) {
                            td.display-name {
                                form.inline data-url={ "/api/v1/operators/" (op.id) } data-method="PUT" novalidate {
                                    label.sr-only for={ "dn-" (op.id) } { (t(lang, "姓名", "Display name")) }
                                    input id={ "dn-" (op.id) } name="display_name" value=(op.display_name) size="12" maxlength="64" required
                                        placeholder=(t(lang, "未填写，暂显示用户名", "Not set: the user name is shown"));
                                    button type="submit" { (t(lang, "保存", "Save")) }
                                    span.error data-error-for="display_name" {}
                                    (status_line())
                                }
                            }
                            td.mono.ident { (op.username) }
                            td { @for r in &op.roles { span.badge { (role_label(lang, r)) } " " } }
                            td {
                                @for g in &op.gates {
                                    span.gate { (gate_names.get(g).map_or_else(|| format!("{}{g}", t(lang, "大门 #", "Gate #")), String::clone)) } " "
                                }
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
                (field("o-display", "display_name", t(lang, "姓名（页面显示，如：门卫 李师傅）", "Display name (shown on the pages, e.g. Guard Li)"), html! { input id="o-display" name="display_name" required maxlength="64" autocomplete="off"; }))
                (field("o-password", "password", t(lang, "初始密码", "Initial password"), html! { input id="o-password" name="password" type="password" required autocomplete="new-password"; }))
                fieldset.wide {
                    legend { (t(lang, "角色", "Roles")) }
                    @for r in Role::ALL {
                        label { input type="checkbox" name="roles" value=(r.as_str()) data-type="list"; " " (role_label(lang, r.as_str())) }
                    }
                    span.error data-error-for="roles" {}
                }
                fieldset.wide {
                    legend { (t(lang, "门卫值守的大门", "A guard's gates")) }
                    @for (id, name) in &gate_list {
                        label { input type="checkbox" name="gates" value=(id) data-type="list" data-num; " " (name) }
                    }
                    span.error data-error-for="gates" {}
                }
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
