//! `/admin/applications`: the exit-pass application flow (出门证申请) on one page, for whoever
//! takes part in it — an applicant (staff member or student) applies for a vehicle pass or a
//! one-off exit pass for their own vehicle; their department's approver approves or rejects it
//! with a comment; the security office issues it and binds the windscreen tag, after which the
//! permit reaches the gates through sync. `?kind=one_off` shows the one-off exit passes (single
//! use, at most 7 days, e.g. taking a vehicle out during the holidays).
//!
//! The page lists what the API's own scope lets the viewer see (`api::applications::scope`)
//! and offers a step only where the API would allow it; every step is a call to
//! `/api/v1/applications/…`.
//!
//! Nobody types a database id or a gate-rights code: the office and approvers find the
//! applicant and the vehicle with the pickers (by name or number, by any part of the plate),
//! an applicant chooses among their own vehicles, and the gates are ticked per gate and
//! direction; gate rights, kinds and statuses are shown in words. A vehicle that already
//! holds a live pass of the same kind is flagged on the form and on its application's row, and
//! issuing a second one needs a reason.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{Duration, DurationRound, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::permits::{
    gate_names, gate_rights_field, live_warning, person_picker, rights_words, vehicle_picker,
    when_cell,
};
use super::{
    CATEGORIES, OFFICE, allowed, badge, coded, field, frame, label_of, options, page_number,
    page_of, pager, status_line, when,
};
use crate::central::api::applications::{ONE_OFF_MAX_DAYS, Scope, may_decide, scope};
use crate::central::db::now_ms;
use crate::central::repo::applications::{
    self, ApplicationKind, ApplicationQuery, ApplicationStatus,
};
use crate::central::repo::permits::{LivePass, live_passes};
use crate::central::repo::{persons, vehicles};
use crate::central::state::AppState;
use crate::i18n::{pass_kind_label, t};
use crate::web::layout::local_input;
use crate::web::names::Names;
use crate::web::{PageError, Viewer};

/// `?status=&kind=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    status: Option<String>,
    kind: Option<String>,
    page: Option<String>,
}

/// `GET /admin/applications`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let one_off = p.kind.as_deref() == Some("one_off");
    let scope = scope(&state, &viewer.authed).await.unwrap_or_else(|e| {
        tracing::error!(error = ?e, "application scope");
        Scope::Nothing
    });
    let status = p.status.as_deref().and_then(ApplicationStatus::from_code);
    let number = page_number(p.page.as_deref());
    let mut query = ApplicationQuery {
        status,
        kind: one_off.then_some(ApplicationKind::OneOff),
        ..ApplicationQuery::default()
    };
    match &scope {
        Scope::All => {}
        Scope::Department(d) => query.department = Some(d.clone()),
        Scope::Person(me) => query.applicant_id = Some(*me),
        Scope::Nothing => query.applicant_id = Some(-1),
    }
    let found = applications::search(&state.db, &query, page_of(number)).await?;
    // An applicant applies for themselves, for their own vehicles.
    let me = match &scope {
        Scope::Person(id) => Some(persons::get(&state.db, *id).await?),
        _ => None,
    };
    let my_vehicles = match &me {
        Some(person) => {
            vehicles::search(
                &state.db,
                &vehicles::VehicleSearch {
                    owner_id: Some(person.id),
                    ..Default::default()
                },
                page_of(1),
            )
            .await?
            .items
        }
        None => Vec::new(),
    };
    let office = allowed(&viewer, OFFICE);
    let gate_list = gate_names(&state.db, lang).await?;
    let names = Names::load(&state.db).await?;
    // The live passes the open applications' vehicles already hold (one query): a second pass
    // of the same kind is flagged on the row and needs a reason to be issued.
    let open_vehicles: Vec<i64> = found
        .items
        .iter()
        .filter(|a| {
            matches!(
                a.status,
                ApplicationStatus::Pending | ApplicationStatus::Approved
            )
        })
        .map(|a| a.vehicle_id)
        .collect();
    let live = live_passes(&state.db, &open_vehicles, now_ms()).await?;
    let duplicates = |a: &applications::Application| -> Vec<&LivePass> {
        live.iter()
            .filter(|p| {
                p.vehicle_id == a.vehicle_id
                    && p.single_use == (a.kind == ApplicationKind::OneOff)
                    && p.valid_from < a.valid_until
                    && a.valid_from < p.valid_until
            })
            .collect()
    };
    let now = Utc::now()
        .duration_trunc(Duration::minutes(1))
        .unwrap_or_else(|_| Utc::now());
    let until = if one_off {
        now + Duration::days(1)
    } else {
        now + Duration::days(365)
    };
    let title = if one_off {
        t(lang, "一次性出门证", "One-off exit passes")
    } else {
        t(lang, "出门证申请", "Exit-pass applications")
    };
    let current = if one_off {
        "/admin/applications?kind=one_off"
    } else {
        "/admin/applications"
    };
    let can_apply = scope != Scope::Nothing;
    let body = html! {
        @if can_apply {
            section.panel aria-labelledby="apply-title" {
                h2 id="apply-title" {
                    @if one_off { (t(lang, "申请一次性出门证", "Apply for a one-off exit pass")) }
                    @else { (t(lang, "申请车辆通行证", "Apply for a vehicle pass")) }
                }
                @if one_off {
                    p.hint { (t(lang, "一次性出门证：仅限出校一次，有效期最长 ", "A one-off exit pass lets the vehicle out once, within at most ")) (ONE_OFF_MAX_DAYS) (t(lang, " 天（如假期将车辆开出校园）。", " days (e.g. taking a vehicle out during the holidays).")) }
                }
                form.grid id="apply-form" data-url="/api/v1/applications" data-reload novalidate
                    data-done=(t(lang, "申请已提交，等待部门审批", "Applied: waiting for the department's approval")) {
                    input type="hidden" name="kind" value=(if one_off { "one_off" } else { "permit" });
                    @if let Some(person) = &me {
                        input type="hidden" name="applicant_id" value=(person.id) data-type="number";
                        div.field {
                            span { (t(lang, "申请人", "Applicant")) }
                            strong { (person.name) " · " (person.department) }
                        }
                        (field("a-vehicle", "vehicle_id", t(lang, "车辆", "Vehicle"), html! {
                            select id="a-vehicle" name="vehicle_id" data-type="number" required {
                                @for v in &my_vehicles { option value=(v.id) { (v.plate) } }
                            }
                        }))
                        @if my_vehicles.is_empty() {
                            p.hint.wide { (t(lang, "您名下没有登记车辆，请先到保卫处登记车辆。", "No vehicle is registered to you: register it with the security office first.")) }
                        }
                    } @else {
                        (person_picker(lang, "a-applicant", "applicant_id", t(lang, "申请人", "Applicant")))
                        (vehicle_picker(lang, "a-vehicle", "vehicle_id", t(lang, "车辆（申请人名下）", "Vehicle (the applicant's)"), Some("applicant_id")))
                    }
                    (field("a-category", "category", t(lang, "通行证类别", "Pass category"), html! {
                        select id="a-category" name="category" { (options(lang, CATEGORIES, Some(me.as_ref().map_or("staff", |m| m.category.as_str())), None)) }
                    }))
                    (field("a-from", "valid_from", t(lang, "生效时间", "Valid from"), html! { input id="a-from" name="valid_from" type="datetime-local" data-type="datetime" required value=(local_input(state.site_tz, now)); }))
                    (field("a-until", "valid_until", t(lang, "失效时间", "Valid until"), html! { input id="a-until" name="valid_until" type="datetime-local" data-type="datetime" required value=(local_input(state.site_tz, until)); }))
                    (gate_rights_field(lang, "a-gates", &gate_list, if one_off { (false, true) } else { (true, true) }))
                    (live_warning(lang, Some(one_off), false))
                    (field("a-purpose", "purpose", t(lang, "申请事由", "Purpose"), html! { textarea id="a-purpose" name="purpose" rows="2" maxlength="500" {} }))
                    div.buttons { button.primary type="submit" { (t(lang, "提交申请", "Apply")) } }
                    (status_line())
                }
            }
        }
        section.panel aria-labelledby="list-title" {
            h2 id="list-title" {
                (t(lang, "申请列表", "Applications"))
                @match &scope {
                    Scope::Department(d) => { " · " small { (d) } }
                    Scope::Person(_) => { " · " small { (t(lang, "我的申请", "mine")) } }
                    _ => {}
                }
            }
            form.search method="get" role="search" {
                @if one_off { input type="hidden" name="kind" value="one_off"; }
                (field("f-status", "status", t(lang, "状态", "Status"), html! { select id="f-status" name="status" { (options(lang, &coded(&ApplicationStatus::ALL, ApplicationStatus::as_str, ApplicationStatus::label), p.status.as_deref(), Some(t(lang, "全部", "All")))) } }))
                button.primary type="submit" { (t(lang, "筛选", "Filter")) }
            }
            table.data id="applications" {
                thead { tr {
                    th.num scope="col" { (t(lang, "编号", "No.")) }
                    th scope="col" { (t(lang, "类型", "Kind")) }
                    th scope="col" { (t(lang, "申请人", "Applicant")) }
                    th scope="col" { (t(lang, "车辆", "Vehicle")) }
                    th scope="col" { (t(lang, "有效期", "Valid")) }
                    th scope="col" { (t(lang, "状态", "Status")) }
                    th scope="col" { (t(lang, "审批意见", "Decision")) }
                    th scope="col" { (t(lang, "操作", "Actions")) }
                } }
                tbody {
                    @if found.items.is_empty() { tr { td colspan="8" { (t(lang, "暂无申请", "No applications")) } } }
                    @for a in &found.items {
                        tr data-application=(a.id) data-status=(a.status.as_str()) {
                            td.num { (a.id) }
                            td.nowrap { @match a.kind { ApplicationKind::Permit => (t(lang, "车辆通行证", "Vehicle pass")), ApplicationKind::OneOff => (t(lang, "一次性出门证", "One-off exit pass")) }
                                br; small { (label_of(lang, CATEGORIES, &a.category)) } }
                            td { (a.applicant_name) br; small { (a.department) } }
                            td { span.plate { (a.plate) } }
                            td { (when_cell(state.site_tz, a.valid_from)) br; "→ " (when_cell(state.site_tz, a.valid_until)) br; small.rights { (rights_words(lang, &gate_list, &a.gates)) } }
                            td {
                                @let (zh, en) = a.status.label();
                                (badge(a.status.as_str(), t(lang, zh, en)))
                                @if let Some(pid) = a.permit_id { br; small { (t(lang, "通行证 #", "permit #")) (pid) } }
                            }
                            td {
                                @if let Some(by) = &a.decided_by { (names.of(by)) @if let Some(at) = a.decided_at { " · " small { (when(state.site_tz, at)) } } }
                                @if !a.decision_comment.is_empty() { br; q { (a.decision_comment) } }
                                @if !a.purpose.is_empty() { br; small { (t(lang, "事由：", "Purpose: ")) (a.purpose) } }
                            }
                            td.actions {
                                @let dups = duplicates(a);
                                @if !dups.is_empty() {
                                    div.live-note role="note" {
                                        strong { (t(lang, "该车已有同类有效通行证：", "The vehicle already holds a live pass of this kind: ")) }
                                        @for p in &dups {
                                            span { (pass_kind_label(lang, p.single_use)) " " (p.permit_id) (t(lang, "号", "")) " · " (p.holder_name) " · " (when(state.site_tz, p.valid_from)) " → " (when(state.site_tz, p.valid_until)) }
                                        }
                                    }
                                }
                                @if a.status == ApplicationStatus::Pending && may_decide(&viewer.authed, &a.department) {
                                    form id={ "decide-" (a.id) } data-url={ "/api/v1/applications/" (a.id) "/approve" } data-reload novalidate {
                                        label.sr-only for={ "comment-" (a.id) } { (t(lang, "审批意见", "Comment")) }
                                        textarea id={ "comment-" (a.id) } name="comment" rows="1" placeholder=(t(lang, "审批意见（驳回时必填）", "Comment (required to reject)")) {}
                                        button.ok type="submit" { (t(lang, "批准", "Approve")) }
                                        button.danger type="submit" data-url={ "/api/v1/applications/" (a.id) "/reject" } { (t(lang, "驳回", "Reject")) }
                                        span.error data-error-for="comment" {}
                                        (status_line())
                                    }
                                }
                                @if a.status == ApplicationStatus::Approved && office {
                                    form id={ "issue-" (a.id) } data-url={ "/api/v1/applications/" (a.id) "/issue" } data-reload novalidate {
                                        label for={ "epc-" (a.id) } { (t(lang, "标签 EPC", "Tag EPC")) }
                                        input.mono id={ "epc-" (a.id) } name="epc" data-optional size="26" autocomplete="off" placeholder="E200…";
                                        label for={ "tid-" (a.id) } { "TID" }
                                        input.mono id={ "tid-" (a.id) } name="tid" data-optional size="12" autocomplete="off";
                                        @if !dups.is_empty() {
                                            label for={ "override-" (a.id) } { (t(lang, "重复发证原因（必填）", "Why a second pass (required)")) }
                                            input id={ "override-" (a.id) } name="override_reason" data-optional required maxlength="200" autocomplete="off";
                                        }
                                        button.primary type="submit" { (t(lang, "发证并绑定标签", "Issue and bind the tag")) }
                                        span.error data-error-for="epc" {}
                                        span.error data-error-for="tid" {}
                                        span.error data-error-for="override_reason" {}
                                        (status_line())
                                    }
                                }
                                @if matches!(a.status, ApplicationStatus::Pending | ApplicationStatus::Approved) && scope.covers(&a.department, a.applicant_id) {
                                    form data-url={ "/api/v1/applications/" (a.id) "/cancel" } data-empty data-reload {
                                        button type="submit" { (t(lang, "撤销", "Withdraw")) }
                                        (status_line())
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, "/admin/applications", &[("status", p.status.clone()), ("kind", p.kind.clone())], number, found.total))
        }
    };
    Ok(frame(&viewer, current, title, body))
}
