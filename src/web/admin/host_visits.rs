//! `/admin/visits` (我的访客): a host's visitors — the requests visitors made on their phones
//! naming this host, and the bookings the host made — with approve and reject for those still
//! waiting (the bookings API's own approve/reject, which lets a host decide only their own),
//! and a form to book a visitor directly (`POST /api/v1/host/visits`: approved at once, a
//! contractor then waits for the security office).
//!
//! The host is an applicant account linked to their person record; an account not linked
//! sees a plain sentence saying so.
//!
//! What it never does: show another host's visitors, or change anything on a GET.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{Duration, DurationRound, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::{badge, field, frame, page_number, page_of, pager, status_line, when};
use crate::central::api::auth::Role;
use crate::central::api::policy::Access;
use crate::central::repo::bookings::{self, BookingQuery, BookingStatus, needs_security};
use crate::central::repo::operators;
use crate::central::state::AppState;
use crate::i18n::t;
use crate::web::layout::local_input;
use crate::web::{PageError, Viewer};

/// Hosts: applicants (staff and students) linked to their person record.
pub const HOST: Access = Access::Roles(&[Role::Applicant]);

/// Booking categories a host may choose: (code, zh-CN, English).
const KINDS: &[(&str, &str, &str)] = &[
    ("visitor", "访客", "Visitor"),
    (
        "contractor",
        "施工/外包（须保卫处审批）",
        "Contractor (needs the security office)",
    ),
    ("official", "公务", "Official"),
];

/// `?page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    page: Option<String>,
}

/// `GET /admin/visits`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let title = t(lang, "我的访客", "My visitors");
    let Some(person) = operators::person_of(&state.db, viewer.authed.operator_id).await? else {
        let body = html! {
            section.panel {
                p { (t(lang, "您的账号尚未关联人员信息，暂时不能接待访客。请联系保卫处关联。", "Your account is not linked to a person record yet, so you cannot host visitors. Ask the security office to link it.")) }
            }
        };
        return Ok(frame(&viewer, "/admin/visits", title, body));
    };
    let number = page_number(p.page.as_deref());
    let found = bookings::search(
        &state.db,
        &BookingQuery {
            host_id: Some(person),
            ..BookingQuery::default()
        },
        page_of(number),
    )
    .await?;
    let start = Utc::now()
        .duration_trunc(Duration::minutes(30))
        .unwrap_or_else(|_| Utc::now())
        + Duration::minutes(30);
    let tz = state.site_tz;
    let body = html! {
        section.panel aria-labelledby="visits-title" {
            h2 id="visits-title" { (t(lang, "来访申请与预约", "Requests and bookings")) }
            table.data id="host-visits" {
                thead { tr {
                    th scope="col" { (t(lang, "车牌", "Plate")) }
                    th scope="col" { (t(lang, "访客", "Visitor")) }
                    th scope="col" { (t(lang, "事由", "Purpose")) }
                    th scope="col" { (t(lang, "时段", "Time")) }
                    th scope="col" { (t(lang, "状态", "Status")) }
                    th scope="col" { (t(lang, "操作", "Actions")) }
                } }
                tbody {
                    @if found.items.is_empty() { tr { td colspan="6" { (t(lang, "暂无访客", "No visitors yet")) } } }
                    @for b in &found.items {
                        tr data-booking=(b.id) {
                            td.plate { (b.plate) }
                            td { (b.driver_name) br; small.mono { (b.driver_phone) } }
                            td { (b.purpose) }
                            td { (when(tz, b.slot_from)) br; "→ " (when(tz, b.slot_until)) }
                            td {
                                @let (zh, en) = b.status.label();
                                (badge(b.status.as_str(), t(lang, zh, en)))
                                @if b.status == BookingStatus::Pending && b.department_approved_by.is_some() {
                                    br; small { (t(lang, "您已批准，待保卫处审批", "You approved; waiting for the security office")) }
                                }
                            }
                            td.actions {
                                @if b.status == BookingStatus::Pending && !(needs_security(&b.category) && b.department_approved_by.is_some()) {
                                    form data-url={ "/api/v1/bookings/" (b.id) "/approve" } data-empty data-reload {
                                        button.ok type="submit" { (t(lang, "同意", "Approve")) }
                                        button.danger type="submit" data-url={ "/api/v1/bookings/" (b.id) "/reject" } { (t(lang, "拒绝", "Reject")) }
                                        (status_line())
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, "/admin/visits", &[], number, found.total))
        }
        section.panel aria-labelledby="host-book-title" {
            h2 id="host-book-title" { (t(lang, "预约访客", "Book a visitor")) }
            p { (t(lang, "您预约的访客无需再审批（施工/外包车辆还须保卫处审批）。", "Visitors you book need no further approval (contractors still need the security office).")) }
            form.grid id="host-visit-form" data-url="/api/v1/host/visits" data-reload novalidate {
                (field("h-plate", "plate", t(lang, "车牌号", "Plate"), html! { input id="h-plate" name="plate" required autocomplete="off" placeholder="京A12345"; }))
                (field("h-name", "visitor_name", t(lang, "访客姓名", "Visitor's name"), html! { input id="h-name" name="visitor_name" required autocomplete="off"; }))
                (field("h-phone", "visitor_phone", t(lang, "访客手机", "Visitor's phone"), html! { input id="h-phone" name="visitor_phone" type="tel" required autocomplete="off" placeholder="13912345678"; }))
                (field("h-email", "visitor_email", t(lang, "访客邮箱（可不填）", "Visitor's e-mail (optional)"), html! { input id="h-email" name="visitor_email" type="email" autocomplete="off" data-optional; }))
                (field("h-category", "category", t(lang, "类别", "Category"), html! { select id="h-category" name="category" { (super::options(lang, KINDS, Some("visitor"), None)) } }))
                (field("h-purpose", "purpose", t(lang, "来访事由", "Purpose"), html! { input id="h-purpose" name="purpose" autocomplete="off"; }))
                (field("h-from", "slot_from", t(lang, "开始", "From"), html! { input id="h-from" name="slot_from" type="datetime-local" data-type="datetime" required value=(local_input(tz, start)); }))
                (field("h-until", "slot_until", t(lang, "结束", "Until"), html! { input id="h-until" name="slot_until" type="datetime-local" data-type="datetime" required value=(local_input(tz, start + Duration::hours(2))); }))
                div.buttons { button.primary type="submit" { (t(lang, "预约", "Book")) } }
                (status_line())
            }
        }
    };
    Ok(frame(&viewer, "/admin/visits", title, body))
}
