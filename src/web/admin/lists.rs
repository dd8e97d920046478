//! `/admin/lists`: the blacklist (黑名单: plates, tags or people that must never be let in, with
//! the alarm the booth raises) and the lock-vehicle list (锁车: vehicles that must not leave).
//! The security office adds entries and lifts them here (`/api/v1/blacklist`, `/api/v1/locks`);
//! both reach every gate through sync, blacklist entries first.
//!
//! What it never does: delete an entry (lifting ends it and keeps the record).

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    PLATE_COLOURS, badge, field, frame, given, label_of, options, page_number, page_of, pager,
    pager_named, status_line, when,
};
use crate::central::db::now_ms;
use crate::central::repo::blacklist::{self, BlacklistQuery};
use crate::central::repo::locks::{self, LockQuery};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::t;
use crate::web::{PageError, Viewer};

/// `?q=&active=&page=&lock_page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    q: Option<String>,
    /// `all` shows ended entries too.
    show: Option<String>,
    page: Option<String>,
    lock_page: Option<String>,
}

const KINDS: &[(&str, &str, &str)] = &[
    ("plate", "车牌", "Plate"),
    ("tag", "标签 EPC", "Tag EPC"),
    ("person", "人员编号", "Person no."),
];

const ALARMS: &[(&str, &str, &str)] = &[
    ("guard", "提醒门卫", "Alert the guard"),
    ("urgent", "紧急报警", "Urgent alarm"),
    ("silent", "静默记录", "Silent"),
];

/// `GET /admin/lists`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let all = p.show.as_deref() == Some("all");
    let active_at_ms = (!all).then(now_ms);
    let number = page_number(p.page.as_deref());
    let lock_number = page_number(p.lock_page.as_deref());
    let q = given(&p.q);
    let banned = blacklist::search(
        &state.db,
        &BlacklistQuery {
            subject: q.as_deref().map(normalise_fragment),
            kind: None,
            active_at_ms,
        },
        page_of(number),
    )
    .await?;
    let locked = locks::search(
        &state.db,
        &LockQuery {
            plate: q.as_deref().map(normalise_fragment),
            active_at_ms,
        },
        page_of(lock_number),
    )
    .await?;
    let body = html! {
        form.search method="get" role="search" {
            (field("q", "q", t(lang, "车牌/标签/人员（可输入部分）", "Plate / tag / person (part is fine)"), html! { input id="q" name="q" value=[p.q.as_deref()] autocomplete="off"; }))
            (field("show", "show", t(lang, "范围", "Show"), html! {
                select id="show" name="show" {
                    option value="" selected[!all] { (t(lang, "仅当前生效", "In force now")) }
                    option value="all" selected[all] { (t(lang, "含已解除", "Including lifted")) }
                }
            }))
            button.primary type="submit" { (t(lang, "查询", "Search")) }
        }
        div.panels {
            section.panel aria-labelledby="bl-title" {
                h2 id="bl-title" { (t(lang, "黑名单", "Blacklist")) }
                table.data id="blacklist" {
                    thead { tr {
                        th scope="col" { (t(lang, "对象", "Subject")) }
                        th scope="col" { (t(lang, "原因", "Reason")) }
                        th scope="col" { (t(lang, "期限", "Period")) }
                        th scope="col" { (t(lang, "操作", "Actions")) }
                    } }
                    tbody {
                        @if banned.items.is_empty() { tr { td colspan="4" { (t(lang, "无", "None")) } } }
                        @for e in &banned.items {
                            tr data-blacklist=(e.id) {
                                td { small { (label_of(lang, KINDS, &e.subject_kind)) } br; strong.mono { (e.subject) }
                                    @if let Some(c) = &e.plate_colour { " " small { (label_of(lang, PLATE_COLOURS, c)) } } }
                                td { (e.reason) br; small { (label_of(lang, ALARMS, &e.alarm_level)) } }
                                td { (when(state.site_tz, e.valid_from)) br; "→ " @match e.valid_until { Some(u) => (when(state.site_tz, u)), None => (t(lang, "解除为止", "until lifted")) } }
                                td.actions {
                                    @if e.active {
                                        form data-url={ "/api/v1/blacklist/" (e.id) "/lift" } data-empty data-reload {
                                            button.warn type="submit" { (t(lang, "解除", "Lift")) }
                                            (status_line())
                                        }
                                    } @else { (badge("expired", t(lang, "已解除", "lifted"))) }
                                }
                            }
                        }
                    }
                }
                (pager(lang, "/admin/lists", &[("q", p.q.clone()), ("show", p.show.clone()), ("lock_page", Some(lock_number.to_string()))], number, banned.total))
                h3 { (t(lang, "加入黑名单", "Add to the blacklist")) }
                form.grid id="blacklist-form" data-url="/api/v1/blacklist" data-reload novalidate {
                    (field("bl-kind", "subject_kind", t(lang, "类型", "Kind"), html! { select id="bl-kind" name="subject_kind" { (options(lang, KINDS, Some("plate"), None)) } }))
                    (field("bl-subject", "subject", t(lang, "车牌/EPC/人员编号", "Plate / EPC / person no."), html! { input id="bl-subject" name="subject" required autocomplete="off"; }))
                    (field("bl-colour", "plate_colour", t(lang, "车牌颜色（可不填）", "Plate colour (optional)"), html! { select id="bl-colour" name="plate_colour" data-optional { (options(lang, PLATE_COLOURS, None, Some(t(lang, "不限", "Any")))) } }))
                    (field("bl-alarm", "alarm_level", t(lang, "报警级别", "Alarm"), html! { select id="bl-alarm" name="alarm_level" { (options(lang, ALARMS, Some("guard"), None)) } }))
                    (field("bl-until", "valid_until", t(lang, "截止（可不填）", "Until (optional)"), html! { input id="bl-until" name="valid_until" type="datetime-local" data-type="datetime"; }))
                    div.field.wide { label for="bl-reason" { (t(lang, "原因", "Reason")) } textarea id="bl-reason" name="reason" rows="2" required {} span.error data-error-for="reason" {} }
                    div.buttons { button.danger type="submit" { (t(lang, "加入黑名单", "Blacklist")) } }
                    (status_line())
                }
            }
            section.panel aria-labelledby="lock-title" {
                h2 id="lock-title" { (t(lang, "锁车名单（禁止驶出）", "Locked vehicles (may not leave)")) }
                table.data id="locks" {
                    thead { tr {
                        th scope="col" { (t(lang, "车牌", "Plate")) }
                        th scope="col" { (t(lang, "原因", "Reason")) }
                        th scope="col" { (t(lang, "期限", "Period")) }
                        th scope="col" { (t(lang, "操作", "Actions")) }
                    } }
                    tbody {
                        @if locked.items.is_empty() { tr { td colspan="4" { (t(lang, "无", "None")) } } }
                        @for l in &locked.items {
                            tr data-lock=(l.id) {
                                td.plate { (l.plate) @if let Some(c) = &l.plate_colour { " " small { (label_of(lang, PLATE_COLOURS, c)) } } }
                                td { (l.reason) }
                                td { (when(state.site_tz, l.valid_from)) br; "→ " @match l.valid_until { Some(u) => (when(state.site_tz, u)), None => (t(lang, "解除为止", "until lifted")) } }
                                td.actions {
                                    @if l.active {
                                        form data-url={ "/api/v1/locks/" (l.id) "/lift" } data-empty data-reload {
                                            button.warn type="submit" { (t(lang, "解除", "Lift")) }
                                            (status_line())
                                        }
                                    } @else { (badge("expired", t(lang, "已解除", "lifted"))) }
                                }
                            }
                        }
                    }
                }
                (pager_named(lang, "/admin/lists", &[("q", p.q.clone()), ("show", p.show.clone()), ("page", Some(number.to_string()))], "lock_page", lock_number, locked.total))
                h3 { (t(lang, "锁定车辆", "Lock a vehicle")) }
                form.grid id="lock-form" data-url="/api/v1/locks" data-reload novalidate {
                    (field("lk-plate", "plate", t(lang, "车牌号", "Plate"), html! { input id="lk-plate" name="plate" required autocomplete="off"; }))
                    (field("lk-colour", "plate_colour", t(lang, "车牌颜色（可不填）", "Plate colour (optional)"), html! { select id="lk-colour" name="plate_colour" data-optional { (options(lang, PLATE_COLOURS, None, Some(t(lang, "不限", "Any")))) } }))
                    (field("lk-until", "valid_until", t(lang, "截止（可不填）", "Until (optional)"), html! { input id="lk-until" name="valid_until" type="datetime-local" data-type="datetime"; }))
                    div.field.wide { label for="lk-reason" { (t(lang, "原因", "Reason")) } textarea id="lk-reason" name="reason" rows="2" required {} span.error data-error-for="reason" {} }
                    div.buttons { button.warn type="submit" { (t(lang, "锁车", "Lock")) } }
                    (status_line())
                }
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin/lists",
        t(lang, "黑名单与锁车", "Blacklist and locks"),
        body,
    ))
}
