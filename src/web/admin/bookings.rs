//! `/admin/bookings`: visitor bookings (访客预约) — a host's department books a visitor's
//! vehicle for a slot, the department (or the security office) approves or rejects it, and an
//! approved booking opens the gate for that plate in its slot. An approver sees and decides
//! only their own department's bookings (the API's `read_scope` and `may_decide`).
//!
//! A contractor's booking needs the security office's approval after the department's: the
//! page shows when the department has approved and the booking waits for the office.
//!
//! An approved booking's visitor pass (issue 21) is shown in its row: what it is good for now
//! and a link to its page (to send to the visitor); the form sets where the pass opens and
//! whether once or any number of times.
//!
//! Every step is a call to `/api/v1/bookings/…`.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{Duration, DurationRound, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::permits::{gate_names, gate_rights_field};
use super::{
    OFFICE, PLATE_COLOURS, allowed, badge, coded, field, frame, given, label_of, options,
    page_number, page_of, pager, status_line, when,
};
use crate::central::api::bookings::{may_decide, pass_of, read_scope, shown};
use crate::central::passes::PassState;
use crate::central::repo::bookings::{self, BookingQuery, BookingStatus, needs_security};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::t;
use crate::web::layout::local_input;
use crate::web::{PageError, Viewer};

/// `?status=&plate=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    status: Option<String>,
    plate: Option<String>,
    page: Option<String>,
}

/// Booking categories (`repo::bookings::CATEGORIES`): (code, zh-CN, English).
const KINDS: &[(&str, &str, &str)] = &[
    ("visitor", "访客", "Visitor"),
    (
        "contractor",
        "施工/外包（须保卫处审批）",
        "Contractor (needs the security office)",
    ),
    ("official", "公务", "Official"),
];

/// `GET /admin/bookings`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let number = page_number(p.page.as_deref());
    let scope = read_scope(&viewer.authed).unwrap_or(Some(String::new()));
    let found = bookings::search(
        &state.db,
        &BookingQuery {
            plate: given(&p.plate).map(|s| normalise_fragment(&s)),
            status: p.status.as_deref().and_then(BookingStatus::from_code),
            scope_department: scope.clone(),
            ..BookingQuery::default()
        },
        page_of(number),
    )
    .await?;
    let office = allowed(&viewer, OFFICE);
    let gate_list = gate_names(&state.db, lang).await?;
    // The pass of each listed booking the viewer may decide (issued now if it is due).
    let mut passes = std::collections::HashMap::new();
    for b in &found.items {
        if may_decide(&viewer.authed, &b.department)
            && let Ok(Some(p)) = pass_of(&state, b).await
        {
            let (zh, en) = PassState::of(&p, b, Utc::now()).label();
            passes.insert(b.id, (p.link(), t(lang, zh, en)));
        }
    }
    let no_key = state.passes.kid().is_none();
    let names = crate::web::names::Names::load(&state.db).await?;
    let now = Utc::now()
        .duration_trunc(Duration::minutes(30))
        .unwrap_or_else(|_| Utc::now())
        + Duration::minutes(30);
    let body = html! {
        section.panel aria-labelledby="book-title" {
            h2 id="book-title" { (t(lang, "预约访客车辆", "Book a visitor's vehicle")) }
            form.grid id="booking-form" data-url="/api/v1/bookings" data-reload novalidate {
                (field("b-host", "host_id", t(lang, "被访人（人员编号）", "Host (person no.)"), html! { input id="b-host" name="host_id" data-type="number" inputmode="numeric" required; }))
                (field("b-plate", "plate", t(lang, "车牌号", "Plate"), html! { input id="b-plate" name="plate" required autocomplete="off" placeholder="京A12345"; }))
                (field("b-colour", "plate_colour", t(lang, "车牌颜色（可不填）", "Plate colour (optional)"), html! { select id="b-colour" name="plate_colour" data-optional { (options(lang, PLATE_COLOURS, None, Some(t(lang, "不限", "Any")))) } }))
                (field("b-driver", "driver_name", t(lang, "驾驶人姓名", "Driver's name"), html! { input id="b-driver" name="driver_name" required autocomplete="off"; }))
                (field("b-phone", "driver_phone", t(lang, "驾驶人手机", "Driver's phone"), html! { input id="b-phone" name="driver_phone" type="tel" required autocomplete="off" placeholder="13812345678"; }))
                (field("b-category", "category", t(lang, "类别", "Category"), html! { select id="b-category" name="category" { (options(lang, KINDS, Some("visitor"), None)) } }))
                (field("b-purpose", "purpose", t(lang, "来访事由", "Purpose"), html! { input id="b-purpose" name="purpose" autocomplete="off"; }))
                (field("b-from", "slot_from", t(lang, "预约开始", "Slot from"), html! { input id="b-from" name="slot_from" type="datetime-local" data-type="datetime" required value=(local_input(state.site_tz, now)); }))
                (field("b-until", "slot_until", t(lang, "预约结束", "Slot until"), html! { input id="b-until" name="slot_until" type="datetime-local" data-type="datetime" required value=(local_input(state.site_tz, now + Duration::hours(4))); }))
                (field("b-use", "single_use", t(lang, "通行码只用一次（进、出各一次）", "Pass used once (one entry, one exit)"), html! { input id="b-use" name="single_use" type="checkbox" checked; }))
                (gate_rights_field(lang, "b-gates", &gate_list, (true, true)))
                div.buttons { button.primary type="submit" { (t(lang, "提交预约", "Book")) } }
                (status_line())
            }
        }
        section.panel aria-labelledby="list-title" {
            h2 id="list-title" { (t(lang, "预约列表", "Bookings")) @if let Some(d) = &scope { " · " small { (d) } } }
            form.search method="get" role="search" {
                (field("f-plate", "plate", t(lang, "车牌（可输入部分）", "Plate (part is fine)"), html! { input id="f-plate" name="plate" value=[p.plate.as_deref()] autocomplete="off"; }))
                (field("f-status", "status", t(lang, "状态", "Status"), html! { select id="f-status" name="status" { (options(lang, &coded(&BookingStatus::ALL, BookingStatus::as_str, BookingStatus::label), p.status.as_deref(), Some(t(lang, "全部", "All")))) } }))
                button.primary type="submit" { (t(lang, "筛选", "Filter")) }
            }
            table.data id="bookings" {
                thead { tr {
                    th.num scope="col" { (t(lang, "编号", "No.")) }
                    th scope="col" { (t(lang, "车牌", "Plate")) }
                    th scope="col" { (t(lang, "驾驶人", "Driver")) }
                    th scope="col" { (t(lang, "被访人/部门", "Host / department")) }
                    th scope="col" { (t(lang, "时段", "Slot")) }
                    th scope="col" { (t(lang, "状态", "Status")) }
                    th scope="col" { (t(lang, "操作", "Actions")) }
                } }
                tbody {
                    @if found.items.is_empty() { tr { td colspan="7" { (t(lang, "暂无预约", "No bookings")) } } }
                    @for b in found.items.into_iter().map(|b| shown(&viewer.authed, b)) {
                        tr data-booking=(b.id) {
                            td.num { (b.id) }
                            td.plate { (b.plate) }
                            td { (b.driver_name) br; small.mono { (b.driver_phone) } }
                            td { (b.host_name) br; small { (b.department) } @if !b.purpose.is_empty() { br; small { (b.purpose) } } }
                            td { (when(state.site_tz, b.slot_from)) br; "→ " (when(state.site_tz, b.slot_until)) }
                            td {
                                @let (zh, en) = b.status.label();
                                (badge(b.status.as_str(), t(lang, zh, en)))
                                br; small { (label_of(lang, KINDS, &b.category)) }
                                @if let (BookingStatus::Pending, Some(by)) = (b.status, &b.department_approved_by) {
                                    br; small.dept-approved { (t(lang, "部门已批准（", "Department approved (")) (names.of(by)) (t(lang, "），待保卫处审批", "); waiting for the security office")) }
                                }
                                @if let Some((link, words)) = passes.get(&b.id) {
                                    br; small.pass-state { (t(lang, "通行码：", "Pass: ")) (words) " · " a.pass-link href=(link) target="_blank" rel="noopener noreferrer" { (t(lang, "打开通行码页面", "open the pass page")) } }
                                } @else if no_key && b.status == BookingStatus::Approved {
                                    br; small.pass-state { (t(lang, "未签发通行码：未配置通行码密钥", "No pass: no pass key is configured")) }
                                }
                            }
                            td.actions {
                                @if may_decide(&viewer.authed, &b.department) {
                                    @if b.status == BookingStatus::Pending && !(needs_security(&b.category) && b.department_approved_by.is_some() && !office) {
                                        form data-url={ "/api/v1/bookings/" (b.id) "/approve" } data-empty data-reload {
                                            button.ok type="submit" { (t(lang, "批准", "Approve")) }
                                            button.danger type="submit" data-url={ "/api/v1/bookings/" (b.id) "/reject" } { (t(lang, "拒绝", "Reject")) }
                                            button type="submit" data-url={ "/api/v1/bookings/" (b.id) "/cancel" } { (t(lang, "取消", "Cancel")) }
                                            (status_line())
                                        }
                                    } @else if b.status == BookingStatus::Approved {
                                        form data-url={ "/api/v1/bookings/" (b.id) "/cancel" } data-empty data-reload {
                                            button type="submit" { (t(lang, "取消预约", "Cancel")) }
                                            (status_line())
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, "/admin/bookings", &[("plate", p.plate.clone()), ("status", p.status.clone())], number, found.total))
        }
    };
    Ok(frame(
        &viewer,
        "/admin/bookings",
        t(lang, "访客预约", "Visitor bookings"),
        body,
    ))
}
