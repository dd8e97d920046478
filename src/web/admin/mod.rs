//! `/admin/…`: the administration pages of the security office, the administration, the
//! departments' approvers and the applicants — people, vehicles and permits; exit-pass
//! applications and one-off exit passes; visitor bookings; the blacklist and the lock list; gate
//! modes with campus-wide lockdown and evacuation; operators; the audit log; bulk import and
//! export; traffic statistics with server-rendered SVG charts and a printable daily report.
//!
//! One module per area. Each page reads through the same repository functions as the JSON API
//! and applies the API's own scoping (an approver's department, an applicant's own person);
//! every change is a `fetch` to the JSON API (`admin.js`, CSRF token in `X-CSRF-Token`), so the
//! API's validation, role table, audit and zh-CN/English messages apply unchanged.
//!
//! What it never does: change anything on a GET, decide a business rule the API does not (it
//! calls the API's checks where it must know them, e.g. who may decide an application), show a
//! full ID-card or phone number to a role that does not need it, or load anything from outside
//! the server.

pub mod applications;
pub mod audit;
pub mod bookings;
pub mod charts;
pub mod gates;
pub mod home;
pub mod host_visits;
pub mod import;
pub mod lists;
pub mod operators;
pub mod permits;
pub mod persons;
pub mod settings;
pub mod stats;
pub mod vehicles;

use axum::routing::get;
use maud::{Markup, html};

use super::Viewer;
use super::layout::{Nav, page};
use crate::central::api::policy::Access;
use crate::central::db::Page;
use crate::central::state::AppState;
use crate::i18n::{Lang, t};

pub use super::access::{ADMIN, APPLY, BOOKINGS, HOME, OFFICE, RECORDS, STATS};

/// One area of the side navigation: (path, zh-CN, English, who may see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub path: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub access: Access,
}

const fn area(path: &'static str, zh: &'static str, en: &'static str, access: Access) -> Area {
    Area {
        path,
        zh,
        en,
        access,
    }
}

/// Every administration page, in the side navigation's order (the page table in
/// [`super::PAGES`] names the same routes with the same access).
pub const AREAS: &[Area] = &[
    area("/admin", "概览", "Overview", HOME),
    area(
        "/admin/applications",
        "出门证申请",
        "Exit-pass applications",
        APPLY,
    ),
    area(
        "/admin/applications?kind=one_off",
        "一次性出门证",
        "One-off exit passes",
        APPLY,
    ),
    area("/admin/bookings", "访客预约", "Visitor bookings", BOOKINGS),
    area("/admin/persons", "人员", "People", RECORDS),
    area("/admin/vehicles", "车辆", "Vehicles", RECORDS),
    area("/admin/permits", "通行证", "Permits", RECORDS),
    area(
        "/admin/lists",
        "黑名单与锁车",
        "Blacklist and locks",
        OFFICE,
    ),
    area("/admin/gates", "大门模式", "Gate modes", OFFICE),
    area("/admin/import", "批量导入导出", "Import and export", OFFICE),
    area("/admin/stats", "通行统计", "Traffic statistics", STATS),
    area("/admin/audit", "审计日志", "Audit log", OFFICE),
    area(
        "/admin/operators",
        "操作员与角色",
        "Operators and roles",
        ADMIN,
    ),
    area("/admin/settings", "站点设置", "Site settings", OFFICE),
    area(
        "/admin/visits",
        "我的访客",
        "My visitors",
        host_visits::HOST,
    ),
];

/// The administration routes (their access is checked by [`super::enforce`] from
/// [`super::PAGES`]).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/admin", get(home::page))
        .route("/admin/persons", get(persons::page))
        .route("/admin/vehicles", get(vehicles::page))
        .route("/admin/permits", get(permits::page))
        .route("/admin/applications", get(applications::page))
        .route("/admin/bookings", get(bookings::page))
        .route("/admin/lists", get(lists::page))
        .route("/admin/gates", get(gates::page))
        .route("/admin/operators", get(operators::page))
        .route("/admin/audit", get(audit::page))
        .route("/admin/import", get(import::page))
        .route("/admin/stats", get(stats::page))
        .route("/admin/stats/daily", get(stats::daily))
        .route("/admin/settings", get(settings::page))
        .route("/admin/visits", get(host_visits::page))
}

/// Whether the viewer's roles pass `access`.
pub fn allowed(viewer: &Viewer, access: Access) -> bool {
    access.admits(&viewer.authed)
}

/// An administration page: the shared frame, the side navigation (only the areas the viewer's
/// roles may open), the page title and the body.
pub fn frame(viewer: &Viewer, current: &str, title: &str, body: Markup) -> Markup {
    let lang = viewer.lang;
    page(
        viewer,
        title,
        Nav::Admin,
        None,
        html! {
            link rel="stylesheet" href="/assets/admin.css";
            script src="/assets/admin.js" defer {}
            div.admin-shell {
                nav.sidebar aria-label=(t(lang, "管理功能", "Administration")) {
                    h2 { (t(lang, "管理与统计", "Administration")) }
                    @for a in AREAS {
                        @if allowed(viewer, a.access) {
                            a href=(a.path) aria-current=[(a.path == current).then_some("page")] { (t(lang, a.zh, a.en)) }
                        }
                    }
                }
                main.admin id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        },
    )
}

/// A labelled field: `label` for `id`, the input, and the slot where the API's error for the
/// field `name` appears.
pub fn field(id: &str, name: &str, label: &str, input: Markup) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            (input)
            span.error data-error-for=(name) {}
        }
    }
}

/// The line where a form's outcome is announced.
pub fn status_line() -> Markup {
    html! { p.form-status role="status" aria-live="polite" {} }
}

/// Rows per page of the lists.
pub const PER_PAGE: i64 = 25;

/// The 1-based page number of a `?page=` parameter (1 when absent or not a number).
pub fn page_number(text: Option<&str>) -> i64 {
    text.and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1 && *p <= 100_000)
        .unwrap_or(1)
}

/// The repository page for a page number.
pub fn page_of(number: i64) -> Page {
    Page {
        limit: PER_PAGE,
        offset: (number - 1) * PER_PAGE,
    }
}

/// Previous/next links that keep the other parameters of the query.
pub fn pager(
    lang: Lang,
    path: &str,
    params: &[(&str, Option<String>)],
    number: i64,
    total: i64,
) -> Markup {
    pager_named(lang, path, params, "page", number, total)
}

/// [`pager`] for a page number carried in the parameter `key` (two lists on one page).
pub fn pager_named(
    lang: Lang,
    path: &str,
    params: &[(&str, Option<String>)],
    key: &str,
    number: i64,
    total: i64,
) -> Markup {
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |n: i64| {
        let mut q: Vec<String> = params
            .iter()
            .filter_map(|(k, v)| {
                v.as_ref()
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}", super::urlencode(v)))
            })
            .collect();
        q.push(format!("{key}={n}"));
        format!("{path}?{}", q.join("&"))
    };
    html! {
        nav.pager aria-label=(t(lang, "分页", "Pages")) {
            @if number > 1 { a href=(link(number - 1)) rel="prev" { "‹ " (t(lang, "上一页", "Previous")) } }
            span {
                @match lang {
                    Lang::Zh => { "共 " (total) " 条 · 第 " (number) " / " (pages) " 页" }
                    Lang::En => { (total) " rows · page " (number) " of " (pages) }
                }
            }
            @if number < pages { a href=(link(number + 1)) rel="next" { (t(lang, "下一页", "Next")) " ›" } }
        }
    }
}

/// `Some(text)` unless empty or blank.
pub fn given(text: &Option<String>) -> Option<String> {
    text.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// An instant as the office reads it: in the site's zone `tz`, `YYYY-MM-DD HH:MM`.
pub fn when(tz: chrono_tz::Tz, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// The permit and person categories: (code, zh-CN, English).
pub const CATEGORIES: &[(&str, &str, &str)] = &[
    ("staff", "教职工", "Staff"),
    ("student", "学生", "Student"),
    ("family", "家属", "Family"),
    ("contractor", "施工/外包", "Contractor"),
    ("official", "公务", "Official"),
    ("visitor", "访客", "Visitor"),
];

/// Plate colours: (code, zh-CN, English).
pub const PLATE_COLOURS: &[(&str, &str, &str)] = &[
    ("blue", "蓝牌", "Blue"),
    ("green", "绿牌（新能源）", "Green (new energy)"),
    ("yellow", "黄牌", "Yellow"),
    ("yellow_green", "黄绿牌", "Yellow-green"),
    ("white", "白牌", "White"),
    ("black", "黑牌", "Black"),
];

/// The label of a (code, zh, en) entry, or the code.
pub fn label_of(lang: Lang, table: &[(&str, &'static str, &'static str)], code: &str) -> String {
    table.iter().find(|(c, _, _)| *c == code).map_or_else(
        || code.to_string(),
        |(_, zh, en)| t(lang, zh, en).to_string(),
    )
}

/// A (code, zh, en) table from every value of a coded kind (a status), its code and its label.
pub fn coded<S: Copy>(
    all: &[S],
    code: fn(S) -> &'static str,
    label: fn(S) -> (&'static str, &'static str),
) -> Vec<(&'static str, &'static str, &'static str)> {
    all.iter()
        .map(|&s| {
            let (zh, en) = label(s);
            (code(s), zh, en)
        })
        .collect()
}

/// A `<select>`'s options from a (code, zh, en) table, with an optional "any" first.
pub fn options(
    lang: Lang,
    table: &[(&str, &'static str, &'static str)],
    selected: Option<&str>,
    any: Option<&str>,
) -> Markup {
    html! {
        @if let Some(any) = any { option value="" { (any) } }
        @for (code, zh, en) in table {
            option value=(code) selected[selected == Some(*code)] { (t(lang, zh, en)) }
        }
    }
}

/// A status badge.
pub fn badge(code: &str, text: &str) -> Markup {
    html! { span.badge.(code) { (text) } }
}
