//! `/admin`: the administration overview — what waits for the viewer (applications to decide or
//! issue, bookings to approve), the gates' modes and the vehicles on campus now, each a link to
//! its page; only what the viewer's roles may open.

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::{APPLY, AREAS, BOOKINGS, OFFICE, STATS, allowed, frame};
use crate::central::api::applications::{Scope, scope};
use crate::central::api::bookings::read_scope;
use crate::central::db::Page;
use crate::central::repo::applications::{self, ApplicationQuery, ApplicationStatus};
use crate::central::repo::bookings::{self, BookingQuery, BookingStatus};
use crate::central::repo::gates::{self, GateQuery};
use crate::central::repo::stats;
use crate::central::state::AppState;
use crate::i18n::t;
use crate::web::{PageError, Viewer};

const ONE: Page = Page {
    limit: 1,
    offset: 0,
};

/// `GET /admin`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let db = &state.db;
    let mut cards: Vec<(&str, String, &str, &str)> = Vec::new();
    if allowed(&viewer, APPLY) {
        let scope = scope(&state, &viewer.authed)
            .await
            .unwrap_or(Scope::Nothing);
        let mut q = ApplicationQuery::default();
        match &scope {
            Scope::All => {}
            Scope::Department(d) => q.department = Some(d.clone()),
            Scope::Person(p) => q.applicant_id = Some(*p),
            Scope::Nothing => q.applicant_id = Some(-1),
        }
        q.status = Some(ApplicationStatus::Pending);
        let pending = applications::search(db, &q, ONE).await?.total;
        q.status = Some(ApplicationStatus::Approved);
        let approved = applications::search(db, &q, ONE).await?.total;
        cards.push((
            "/admin/applications?status=pending",
            pending.to_string(),
            t(
                lang,
                "待审批的出门证申请",
                "Applications awaiting a decision",
            ),
            if pending > 0 { "warn" } else { "ok" },
        ));
        cards.push((
            "/admin/applications?status=approved",
            approved.to_string(),
            t(lang, "已批准待发证", "Approved, to be issued"),
            if approved > 0 { "warn" } else { "ok" },
        ));
    }
    if allowed(&viewer, BOOKINGS) {
        let pending = bookings::search(
            db,
            &BookingQuery {
                status: Some(BookingStatus::Pending),
                scope_department: read_scope(&viewer.authed).unwrap_or(Some(String::new())),
                ..BookingQuery::default()
            },
            ONE,
        )
        .await?
        .total;
        cards.push((
            "/admin/bookings?status=pending",
            pending.to_string(),
            t(lang, "待审批的访客预约", "Bookings awaiting approval"),
            if pending > 0 { "warn" } else { "ok" },
        ));
    }
    if allowed(&viewer, OFFICE) {
        let all = gates::search(
            db,
            &GateQuery::default(),
            Page {
                limit: crate::central::db::MAX_PAGE,
                offset: 0,
            },
        )
        .await?
        .items;
        let special = all.iter().filter(|g| g.mode != "normal").count();
        cards.push((
            "/admin/gates",
            format!("{special} / {}", all.len()),
            t(lang, "非正常模式的大门", "Gates not in normal mode"),
            if special > 0 { "bad" } else { "ok" },
        ));
    }
    if allowed(&viewer, STATS) {
        let occupancy = stats::occupancy(db).await?;
        let overstays = stats::overstays(db, crate::central::db::now_ms()).await?;
        cards.push((
            "/admin/stats",
            occupancy.total.to_string(),
            t(lang, "当前在校车辆", "Vehicles on campus now"),
            "",
        ));
        cards.push((
            "/admin/stats#overstays-title",
            overstays.len().to_string(),
            t(lang, "超时未离校访客", "Overstaying visitors"),
            if overstays.is_empty() { "ok" } else { "bad" },
        ));
    }
    let body = html! {
        div.cards {
            @for (href, figure, label, class) in &cards {
                a.card.(class) href=(href) { div.figure { (figure) } div.label { (label) } }
            }
        }
        section.panel aria-labelledby="areas-title" {
            h2 id="areas-title" { (t(lang, "功能", "Pages")) }
            ul {
                @for a in AREAS.iter().skip(1) {
                    @if allowed(&viewer, a.access) { li { a href=(a.path) { (t(lang, a.zh, a.en)) } } }
                }
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin",
        t(lang, "管理概览", "Administration"),
        body,
    ))
}
