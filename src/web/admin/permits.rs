//! `/admin/permits`: permits (exit passes) — search by plate, filter by department, status and
//! category, a page at a time; the security office suspends, revokes (with a reason) and
//! reactivates them here (`POST /api/v1/permits/{id}/suspend|revoke|reactivate`, with the
//! permit's version as `If-Match`, so a permit changed meanwhile is not overwritten).
//!
//! New permits come from issued applications (`/admin/applications`) or a bulk import.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    CATEGORIES, OFFICE, allowed, badge, field, frame, given, label_of, options, page_number,
    page_of, pager, status_line, when,
};
use crate::central::repo::permits::{self, PermitQuery, PermitStatus};
use crate::central::repo::vehicles;
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::t;
use crate::web::{PageError, Viewer};

/// `?plate=&department=&status=&category=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    plate: Option<String>,
    department: Option<String>,
    status: Option<String>,
    category: Option<String>,
    page: Option<String>,
}

const STATUSES: &[(&str, &str, &str)] = &[
    ("active", "有效", "Active"),
    ("suspended", "已暂停", "Suspended"),
    ("revoked", "已吊销", "Revoked"),
];

/// `GET /admin/permits`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let number = page_number(p.page.as_deref());
    let found = permits::search(
        &state.db,
        &PermitQuery {
            plate: given(&p.plate).map(|s| normalise_fragment(&s)),
            department: given(&p.department),
            status: given(&p.status).and_then(|s| PermitStatus::from_code(&s)),
            category: given(&p.category),
            ..PermitQuery::default()
        },
        page_of(number),
    )
    .await?;
    let mut plates = std::collections::HashMap::new();
    for permit in &found.items {
        for id in &permit.vehicle_ids {
            if let Ok(v) = vehicles::get(&state.db, *id).await {
                plates.insert(*id, v.plate);
            }
        }
    }
    let office = allowed(&viewer, OFFICE);
    let body = html! {
        section.panel aria-labelledby="find-title" {
            h2 id="find-title" { (t(lang, "查找通行证", "Find permits")) }
            form.search method="get" role="search" {
                (field("plate", "plate", t(lang, "车牌（可输入部分）", "Plate (part is fine)"), html! { input id="plate" name="plate" value=[p.plate.as_deref()] autocomplete="off"; }))
                (field("department", "department", t(lang, "部门", "Department"), html! { input id="department" name="department" value=[p.department.as_deref()]; }))
                (field("status", "status", t(lang, "状态", "Status"), html! { select id="status" name="status" { (options(lang, STATUSES, p.status.as_deref(), Some(t(lang, "全部", "All")))) } }))
                (field("category", "category", t(lang, "类别", "Category"), html! { select id="category" name="category" { (options(lang, CATEGORIES, p.category.as_deref(), Some(t(lang, "全部", "All")))) } }))
                button.primary type="submit" { (t(lang, "查询", "Search")) }
            }
            table.data id="permits" {
                thead { tr {
                    th.num scope="col" { (t(lang, "编号", "No.")) }
                    th scope="col" { (t(lang, "持证人", "Holder")) }
                    th scope="col" { (t(lang, "类别", "Category")) }
                    th scope="col" { (t(lang, "车辆", "Vehicles")) }
                    th scope="col" { (t(lang, "有效期", "Valid")) }
                    th scope="col" { (t(lang, "大门/时段", "Gates / hours")) }
                    th scope="col" { (t(lang, "状态", "Status")) }
                    @if office { th scope="col" { (t(lang, "操作", "Actions")) } }
                } }
                tbody {
                    @if found.items.is_empty() { tr { td colspan="8" { (t(lang, "没有符合条件的通行证", "No permit matches")) } } }
                    @for permit in &found.items {
                        tr data-permit=(permit.id) {
                            td.num { (permit.id) }
                            td { (permit.holder_name) br; small { (permit.holder_department) } }
                            td { (label_of(lang, CATEGORIES, &permit.category))
                                @if permit.single_use { br; span.badge { (t(lang, "一次性", "single use")) } } }
                            td.plate { @for id in &permit.vehicle_ids { (plates.get(id).cloned().unwrap_or_else(|| format!("#{id}"))) " " } }
                            td { (when(state.site_tz, permit.valid_from)) br; "→ " (when(state.site_tz, permit.valid_until)) }
                            td.mono { (permit.gates) @if !permit.schedule.is_empty() { br; (permit.schedule) } }
                            td {
                                @let (zh, en) = permit.status.label();
                                (badge(permit.status.as_str(), t(lang, zh, en)))
                                @if !permit.status_reason.is_empty() { br; small { (permit.status_reason) } }
                            }
                            @if office {
                                td.actions {
                                    form data-url={ "/api/v1/permits/" (permit.id) "/suspend" } data-if-match=(permit.version) data-reload novalidate {
                                        label.sr-only for={ "reason-" (permit.id) } { (t(lang, "原因", "Reason")) }
                                        input id={ "reason-" (permit.id) } name="reason" placeholder=(t(lang, "原因", "Reason")) size="10";
                                        @if permit.status == PermitStatus::Active {
                                            button.warn type="submit" { (t(lang, "暂停", "Suspend")) }
                                        }
                                        @if permit.status != PermitStatus::Revoked {
                                            button.danger type="submit" data-url={ "/api/v1/permits/" (permit.id) "/revoke" } { (t(lang, "吊销", "Revoke")) }
                                        }
                                        @if permit.status == PermitStatus::Suspended {
                                            button.ok type="submit" data-url={ "/api/v1/permits/" (permit.id) "/reactivate" } { (t(lang, "恢复", "Reactivate")) }
                                        }
                                        span.error data-error-for="reason" {}
                                        (status_line())
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, "/admin/permits", &[("plate", p.plate.clone()), ("department", p.department.clone()), ("status", p.status.clone()), ("category", p.category.clone())], number, found.total))
        }
    };
    Ok(frame(
        &viewer,
        "/admin/permits",
        t(lang, "通行证", "Permits"),
        body,
    ))
}
