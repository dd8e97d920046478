//! `/admin/audit`: the audit log — every change with its operator, time, before and after —
//! filtered by kind of record, record number, action, operator and day range, newest first.
//!
//! What it never does: change or delete an entry (no route does), or show the log to anyone
//! but the security office and administrators.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;

use super::{field, frame, given, page_number, page_of, pager, when};
use crate::central::repo::audit::{self, AuditQuery};
use crate::central::state::AppState;
use crate::central::traffic::day_start_ms;
use crate::i18n::t;
use crate::web::{PageError, Viewer};

/// `?entity=&entity_id=&action=&operator=&from=&to=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    entity: Option<String>,
    entity_id: Option<String>,
    action: Option<String>,
    operator: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
}

/// Kinds of record in the log: (code, zh-CN, English).
const ENTITIES: &[(&str, &str, &str)] = &[
    ("person", "人员", "Person"),
    ("vehicle", "车辆", "Vehicle"),
    ("credential", "标签", "Tag"),
    ("permit", "通行证", "Permit"),
    (
        "exit_pass_application",
        "出门证申请",
        "Exit-pass application",
    ),
    ("visitor_booking", "访客预约", "Visitor booking"),
    ("blacklist", "黑名单", "Blacklist"),
    ("vehicle_lock", "锁车", "Vehicle lock"),
    ("gate", "大门", "Gate"),
    ("lane", "车道", "Lane"),
    ("operator", "操作员", "Operator"),
    ("import", "批量导入", "Import"),
];

fn day(text: &Option<String>) -> Option<NaiveDate> {
    given(text).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
}

fn summary(value: &Option<serde_json::Value>) -> String {
    let text = value.as_ref().map(|v| v.to_string()).unwrap_or_default();
    if text.chars().count() > 240 {
        format!("{}…", text.chars().take(240).collect::<String>())
    } else {
        text
    }
}

/// `GET /admin/audit`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let number = page_number(p.page.as_deref());
    let found = audit::search(
        &state.db,
        &AuditQuery {
            entity: given(&p.entity),
            entity_id: given(&p.entity_id),
            operator: given(&p.operator),
            action: given(&p.action),
            from_ms: day(&p.from).map(|d| day_start_ms(state.site_tz, d)),
            until_ms: day(&p.to)
                .map(|d| day_start_ms(state.site_tz, d + chrono::Duration::days(1))),
        },
        page_of(number),
    )
    .await?;
    let body = html! {
        section.panel aria-labelledby="find-title" {
            h2 id="find-title" { (t(lang, "筛选", "Filter")) }
            form.search method="get" role="search" {
                (field("entity", "entity", t(lang, "记录类型", "Kind of record"), html! {
                    select id="entity" name="entity" { (super::options(lang, ENTITIES, p.entity.as_deref(), Some(t(lang, "全部", "All")))) }
                }))
                (field("entity_id", "entity_id", t(lang, "记录编号", "Record no."), html! { input id="entity_id" name="entity_id" size="8" value=[p.entity_id.as_deref()]; }))
                (field("action", "action", t(lang, "操作", "Action"), html! { input id="action" name="action" size="12" value=[p.action.as_deref()] placeholder="set_mode"; }))
                (field("operator", "operator", t(lang, "操作员", "Operator"), html! { input id="operator" name="operator" size="12" value=[p.operator.as_deref()]; }))
                (field("from", "from", t(lang, "起始日期", "From"), html! { input id="from" name="from" type="date" value=[p.from.as_deref()]; }))
                (field("to", "to", t(lang, "截止日期", "To"), html! { input id="to" name="to" type="date" value=[p.to.as_deref()]; }))
                button.primary type="submit" { (t(lang, "查询", "Search")) }
            }
        }
        table.data id="audit" {
            thead { tr {
                th scope="col" { (t(lang, "时间", "Time")) }
                th scope="col" { (t(lang, "操作员", "Operator")) }
                th scope="col" { (t(lang, "操作", "Action")) }
                th scope="col" { (t(lang, "记录", "Record")) }
                th scope="col" { (t(lang, "变更前", "Before")) }
                th scope="col" { (t(lang, "变更后", "After")) }
            } }
            tbody {
                @if found.items.is_empty() { tr { td colspan="6" { (t(lang, "没有符合条件的记录", "No entries match")) } } }
                @for e in &found.items {
                    tr data-action=(e.action) data-entity=(e.entity) {
                        td { (when(state.site_tz, e.at)) }
                        td { (e.operator_name) }
                        td.mono { (e.action) }
                        td { (super::label_of(lang, ENTITIES, &e.entity)) " #" (e.entity_id) }
                        td { pre.json { (summary(&e.before)) } }
                        td { pre.json { (summary(&e.after)) } }
                    }
                }
            }
        }
        (pager(lang, "/admin/audit", &[("entity", p.entity.clone()), ("entity_id", p.entity_id.clone()), ("action", p.action.clone()), ("operator", p.operator.clone()), ("from", p.from.clone()), ("to", p.to.clone())], number, found.total))
    };
    Ok(frame(
        &viewer,
        "/admin/audit",
        t(lang, "审计日志", "Audit log"),
        body,
    ))
}
