//! `/admin/permits`: permits (exit passes) — search by plate, filter by department, status and
//! category, a page at a time; the security office suspends, revokes (with a reason) and
//! reactivates them here (`POST /api/v1/permits/{id}/suspend|revoke|reactivate`, with the
//! permit's version as `If-Match`, so a permit changed meanwhile is not overwritten), and
//! issues a new one directly (`POST /api/v1/permits`) with the same pickers as the
//! application form: the holder and the vehicle found by name and plate, the gates ticked per
//! gate and direction — never a database id or a gate-rights code. A vehicle that already
//! holds a live pass of the same kind is shown before submitting, and the second pass needs a
//! reason (the API refuses it without one).
//!
//! Most permits come from issued applications (`/admin/applications`) or a bulk import.
//!
//! The pickers and the gate checkboxes are shared with the application page
//! ([`person_picker`], [`vehicle_picker`], [`gate_rights_field`]); `admin.js` drives them.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{Duration, DurationRound, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    CATEGORIES, OFFICE, allowed, badge, field, frame, given, label_of, options, page_number,
    page_of, pager, status_line, when,
};
use crate::central::db::{Db, MAX_PAGE, Page, RepoError};
use crate::central::repo::gates::{self, GateQuery};
use crate::central::repo::permits::{self, PermitQuery, PermitStatus};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::{Lang, gate_rights_words, schedule_words, t};
use crate::web::layout::local_input;
use crate::web::{PageError, Viewer};

/// The campus's gates as (id, name in `lang`), by id: for the gate checkboxes and for gate
/// rights in words. One query.
pub(super) async fn gate_names(db: &Db, lang: Lang) -> Result<BTreeMap<i64, String>, RepoError> {
    Ok(gates::search(
        db,
        &GateQuery::default(),
        Page {
            offset: 0,
            limit: MAX_PAGE,
        },
    )
    .await?
    .items
    .iter()
    .map(|g| (g.id, g.name_in(lang).to_string()))
    .collect())
}

/// An instant as [`when`] gives it, its date and its time each kept on one line (a narrow
/// table column breaks between them, never inside a date).
pub(super) fn when_cell(tz: chrono_tz::Tz, at: chrono::DateTime<Utc>) -> Markup {
    let text = when(tz, at);
    let (date, time) = text.split_once(' ').unwrap_or((&text, ""));
    html! { span.nowrap { (date) } " " span.nowrap { (time) } }
}

/// Gate rights in words, with the gates' names.
pub(super) fn rights_words(lang: Lang, names: &BTreeMap<i64, String>, text: &str) -> String {
    gate_rights_words(lang, text, |id| names.get(&id).cloned())
}

/// A person picker: a search box (name, number, phone digits for the office) whose matches
/// are a keyboard-usable list (`role=listbox`: type, arrow keys, Enter), and the hidden field
/// `name` that carries the chosen person's id to the API.
pub(super) fn person_picker(lang: Lang, id: &str, name: &str, label: &str) -> Markup {
    picker(
        lang,
        PickerSpec {
            id,
            name,
            label,
            url: "/api/v1/pickers/persons",
            kind: "person",
            placeholder: t(lang, "输入姓名或编号搜索", "Type a name or number"),
            owner_from: None,
        },
    )
}

/// A vehicle picker: a search box for any part of the plate (full-width and lower case are
/// fine), the hidden field `name` with the chosen vehicle's id; with `owner_from`, only the
/// vehicles of the person chosen in that field. The live passes of the chosen vehicle are shown
/// in the form's `.live-warning`.
pub(super) fn vehicle_picker(
    lang: Lang,
    id: &str,
    name: &str,
    label: &str,
    owner_from: Option<&str>,
) -> Markup {
    picker(
        lang,
        PickerSpec {
            id,
            name,
            label,
            url: "/api/v1/pickers/vehicles",
            kind: "vehicle",
            placeholder: t(
                lang,
                "输入车牌（可只输部分，如 am12）",
                "Type a plate (part is fine)",
            ),
            owner_from,
        },
    )
}

struct PickerSpec<'a> {
    id: &'a str,
    name: &'a str,
    label: &'a str,
    url: &'a str,
    kind: &'a str,
    placeholder: &'a str,
    owner_from: Option<&'a str>,
}

fn picker(lang: Lang, p: PickerSpec<'_>) -> Markup {
    let list = format!("{}-list", p.id);
    html! {
        div.field.picker data-picker=(p.kind) data-url=(p.url) data-owner-from=[p.owner_from]
            data-none=(t(lang, "没有找到，请换个写法", "Nothing found; try another spelling"))
            data-choose=(t(lang, "请从列表中选择", "Choose one from the list")) {
            label for=(p.id) { (p.label) }
            input id=(p.id) type="text" role="combobox" aria-autocomplete="list" aria-expanded="false"
                aria-controls=(list) autocomplete="off" spellcheck="false" placeholder=(p.placeholder);
            // A `…_ids` field (the permit's `vehicle_ids`) is a list of one.
            input type="hidden" name=(p.name) data-type=(if p.name.ends_with("_ids") { "numbers" } else { "number" });
            ul.picker-list id=(list) role="listbox" aria-label=(p.label) hidden {}
            span.error data-error-for=(p.name) {}
        }
    }
}

/// The gate rights as checkboxes per gate and direction (入 / 出), with 全部大门 on top; the
/// hidden field `gates` carries the API's text form, the `output` says it in words.
/// `default_all`: the directions ticked for all gates at first (entry, exit).
pub(super) fn gate_rights_field(
    lang: Lang,
    id: &str,
    gates: &BTreeMap<i64, String>,
    default_all: (bool, bool),
) -> Markup {
    let row = |key: String, name: &str, entry: bool, exit: bool| {
        html! {
            tr data-gate=(key) data-name=(name) {
                th scope="row" { (name) }
                td { label { input type="checkbox" data-dir="entry" checked[entry] aria-label={ (name) " " (t(lang, "入", "in")) }; " " (t(lang, "入", "In")) } }
                td { label { input type="checkbox" data-dir="exit" checked[exit] aria-label={ (name) " " (t(lang, "出", "out")) }; " " (t(lang, "出", "Out")) } }
            }
        }
    };
    html! {
        fieldset.gate-rights.wide id=(id)
            data-all=(t(lang, "全部大门", "All gates"))
            data-all-entry=(t(lang, "仅进门（全部大门）", "Entry only (all gates)"))
            data-all-exit=(t(lang, "仅出门（全部大门）", "Exit only (all gates)"))
            data-in=(t(lang, "入", "in")) data-out=(t(lang, "出", "out"))
            data-both=(t(lang, "入、出", "in, out")) data-sep=(t(lang, "；", "; "))
            data-none=(t(lang, "未选择任何大门", "No gate chosen")) {
            legend { (t(lang, "大门权限（按大门和方向勾选）", "Gates (tick each gate and direction)")) }
            table.gate-grid {
                tbody {
                    (row("all".into(), t(lang, "全部大门", "All gates"), default_all.0, default_all.1))
                    @for (gid, name) in gates { (row(gid.to_string(), name, false, false)) }
                }
            }
            input type="hidden" name="gates" value=(match default_all { (true, false) => "all:entry", (false, true) => "all:exit", _ => "all" });
            p.hint { (t(lang, "将授予：", "Grants: ")) output.rights-words for=(id) {
                (match default_all { (true, false) => t(lang, "仅进门（全部大门）", "Entry only (all gates)"), (false, true) => t(lang, "仅出门（全部大门）", "Exit only (all gates)"), _ => t(lang, "全部大门", "All gates") })
            } }
            span.error data-error-for="gates" {}
        }
    }
}

/// Where a form shows the live passes its chosen vehicle already holds (filled by `admin.js`
/// from the vehicle picker), and, with `reason`, the reason field a second pass needs.
pub(super) fn live_warning(lang: Lang, single_use: Option<bool>, reason: bool) -> Markup {
    html! {
        div.live-warning.wide role="alert" hidden data-single-use=[single_use.map(|s| if s { "true" } else { "false" })]
            data-intro=(t(lang, "该车已有同类有效通行证：", "This vehicle already holds a live pass of this kind: "))
            data-holder=(t(lang, "持证人", "holder")) data-no=(t(lang, "号", "")) {
            p.intro {}
            ul {}
            @if reason {
                label for="override-reason" { (t(lang, "重复发证原因（必填）", "Why a second pass (required)")) }
                textarea id="override-reason" name="override_reason" rows="2" maxlength="200" data-optional disabled {}
                span.error data-error-for="override_reason" {}
            } @else {
                p.hint { (t(lang, "如仍需申请，请在申请事由中说明；保卫处发证时须填写重复发证原因。", "To apply anyway, say why in the purpose: the security office must give a reason to issue a second pass.")) }
            }
        }
    }
}

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
    let ids: Vec<i64> = found
        .items
        .iter()
        .flat_map(|p| p.vehicle_ids.iter().copied())
        .collect();
    // One query for every listed permit's plates (the live passes carry them).
    let plates: std::collections::HashMap<i64, String> = permits::plates(&state.db, &ids).await?;
    let gate_list = gate_names(&state.db, lang).await?;
    let office = allowed(&viewer, OFFICE);
    let now = Utc::now()
        .duration_trunc(Duration::minutes(1))
        .unwrap_or_else(|_| Utc::now());
    let body = html! {
        @if office {
            details.panel.new-permit id="new-permit-panel" open[found.items.is_empty()] {
                summary { h2 { (t(lang, "新发通行证", "Issue a permit")) } }
                form.grid id="permit-form" data-url="/api/v1/permits" data-reload novalidate
                    data-done=(t(lang, "通行证已发放", "Permit issued")) {
                    (person_picker(lang, "p-holder", "holder_id", t(lang, "持证人", "Holder")))
                    (vehicle_picker(lang, "p-vehicle", "vehicle_ids", t(lang, "车辆", "Vehicle"), None))
                    (field("p-category", "category", t(lang, "类别", "Category"), html! {
                        select id="p-category" name="category" { (options(lang, CATEGORIES, Some("staff"), None)) }
                    }))
                    (field("p-from", "valid_from", t(lang, "生效时间", "Valid from"), html! { input id="p-from" name="valid_from" type="datetime-local" data-type="datetime" required value=(local_input(state.site_tz, now)); }))
                    (field("p-until", "valid_until", t(lang, "失效时间", "Valid until"), html! { input id="p-until" name="valid_until" type="datetime-local" data-type="datetime" required value=(local_input(state.site_tz, now + Duration::days(365))); }))
                    div.field.check {
                        label { input id="p-single" type="checkbox" name="single_use"; " " (t(lang, "一次性出门证（通过一次即失效）", "One-off pass (used up by one passage)")) }
                    }
                    (gate_rights_field(lang, "p-gates", &gate_list, (true, true)))
                    (live_warning(lang, None, true))
                    div.buttons { button.primary type="submit" { (t(lang, "发放通行证", "Issue the permit")) } }
                    (status_line())
                }
            }
        }
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
                            td.nowrap { (label_of(lang, CATEGORIES, &permit.category))
                                @if permit.single_use { br; span.badge { (t(lang, "一次性", "single use")) } } }
                            td { @for id in &permit.vehicle_ids { span.plate { (plates.get(id).cloned().unwrap_or_else(|| format!("#{id}"))) } " " } }
                            td { (when_cell(state.site_tz, permit.valid_from)) br; "→ " (when_cell(state.site_tz, permit.valid_until)) }
                            td.rights { (rights_words(lang, &gate_list, &permit.gates)) @if !permit.schedule.is_empty() { br; small { (schedule_words(lang, &permit.schedule)) } } }
                            td {
                                @let (zh, en) = permit.status.label();
                                (badge(permit.status.as_str(), t(lang, zh, en)))
                                @if !permit.status_reason.is_empty() { br; small { (permit.status_reason) } }
                                @if !permit.override_reason.is_empty() { br; small.override { (t(lang, "重复发证：", "Second pass: ")) (permit.override_reason) } }
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
