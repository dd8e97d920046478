//! `/admin/audit`: the audit log — every change with its operator, time, before and after —
//! filtered by kind of record, record number, action, operator and day range, newest first.
//! Everything is in words (issue 20): the operator by display name (a gate, the system), the
//! action and the kind of record by their labels, what changed field by field with codes as
//! labels; the raw before/after JSON stays behind a collapsed "详情" toggle (`details.raw`).
//!
//! What it never does: change or delete an entry (no route does), show a code or JSON outside
//! the toggle, or show the log to anyone but the security office and administrators.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;

use super::{field, frame, given, page_number, page_of, pager, when};
use crate::central::repo::audit::{self, AuditQuery};
use crate::central::state::AppState;
use crate::central::traffic::day_start_ms;
use crate::i18n::{
    Lang, action_label, actor_label, anti_passback_label, category_label, direction_label,
    entity_label, field_label, guard_reason_label, is_guard_reason, mode_label,
    offline_policy_label, permit_status_label, role_label, t,
};
use crate::web::names::Names;
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

/// Kinds of record the filter offers (their words from [`entity_label`]).
const ENTITIES: &[&str] = &[
    "person",
    "vehicle",
    "credential",
    "permit",
    "exit_pass_application",
    "visitor_booking",
    "visit",
    "blacklist",
    "vehicle_lock",
    "gate",
    "lane",
    "alarm",
    "duty",
    "handover_note",
    "operator",
    "site_settings",
    "import",
];

/// Actions the filter offers (their words from [`action_label`]).
const ACTIONS: &[&str] = &[
    "create",
    "update",
    "delete",
    "rename",
    "set_mode",
    "manual_command",
    "raise",
    "acknowledge",
    "apply",
    "approve",
    "reject",
    "issue",
    "cancel",
    "suspend",
    "revoke",
    "reactivate",
    "lift",
    "duty_start",
    "duty_end",
    "plate_correction",
    "sign_in",
    "sign_in_failed",
    "bulk_import",
];

fn day(text: &Option<String>) -> Option<NaiveDate> {
    given(text).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
}

/// What the words of an entry need: the language, operators' display names, the site's zone.
struct Words<'a> {
    lang: Lang,
    names: &'a Names,
    tz: chrono_tz::Tz,
}

/// A JSON value in words, short: text as itself (an operator by display name, an instant in
/// the site's zone, a code by its label), numbers, yes/no, a list joined.
fn value_words(w: &Words<'_>, key: &str, v: &serde_json::Value) -> String {
    let lang = w.lang;
    use serde_json::Value;
    let text = match v {
        Value::Null => t(lang, "（空）", "(none)").to_string(),
        Value::Bool(b) => t(
            lang,
            if *b { "是" } else { "否" },
            if *b { "yes" } else { "no" },
        )
        .to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if key.ends_with("_by") || key == "operator" => {
            actor_label(lang, s, |n| w.names.of(n))
        }
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            chrono::DateTime::parse_from_rfc3339(s).map_or_else(
                |_| s.clone(),
                |at| when(w.tz, at.with_timezone(&chrono::Utc)),
            )
        }
        Value::String(s) => match key {
            "mode" => mode_label(lang, s),
            "status" => status_words(lang, s),
            "direction" => direction_label(lang, s).to_string(),
            "offline_policy" => offline_policy_label(lang, s),
            "anti_passback" => anti_passback_label(lang, s),
            "category" => category_label(lang, s),
            "reason" => {
                if is_guard_reason(s) {
                    guard_reason_label(lang, s)
                } else {
                    s.clone()
                }
            }
            _ => s.clone(),
        },
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) if key == "roles" => role_label(lang, s).to_string(),
                other => value_words(w, "", other),
            })
            .collect::<Vec<_>>()
            .join(t(lang, "、", ", ")),
        Value::Object(_) => t(lang, "（见详情）", "(see details)").to_string(),
    };
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// A status code of any record in words.
fn status_words(lang: Lang, code: &str) -> String {
    use crate::central::repo::{applications::ApplicationStatus, bookings::BookingStatus};
    if let Some(s) = ApplicationStatus::from_code(code) {
        let (zh, en) = s.label();
        return t(lang, zh, en).to_string();
    }
    if let Some(s) = BookingStatus::from_code(code) {
        let (zh, en) = s.label();
        return t(lang, zh, en).to_string();
    }
    permit_status_label(lang, code)
}

/// Fields never worth naming in a summary (they change with every write).
const QUIET: &[&str] = &[
    "updated_at",
    "updated_ms",
    "created_at",
    "created_ms",
    "id",
    "version",
];

/// What an entry changed, in words: for a change, each changed field "名称：北门 → 北门（东）";
/// for a creation or an action, the after's reason, mode, status or note.
fn summary(
    w: &Words<'_>,
    before: &Option<serde_json::Value>,
    after: &Option<serde_json::Value>,
) -> Vec<String> {
    let lang = w.lang;
    let empty = serde_json::Map::new();
    let b = before
        .as_ref()
        .and_then(|v| v.as_object())
        .unwrap_or(&empty);
    let a = after.as_ref().and_then(|v| v.as_object()).unwrap_or(&empty);
    let mut lines = Vec::new();
    if !b.is_empty() && !a.is_empty() {
        for (k, new) in a {
            if QUIET.contains(&k.as_str()) {
                continue;
            }
            match b.get(k) {
                Some(old) if old == new => {}
                Some(old) => lines.push(format!(
                    "{}：{} → {}",
                    field_label(lang, k),
                    value_words(w, k, old),
                    value_words(w, k, new)
                )),
                None => lines.push(format!(
                    "{}：{}",
                    field_label(lang, k),
                    value_words(w, k, new)
                )),
            }
        }
    } else {
        for k in [
            "name", "plate", "mode", "status", "reason", "note", "command", "message", "source",
        ] {
            if let Some(v) = a.get(k).filter(|v| !v.is_null() && !v.is_object()) {
                lines.push(format!(
                    "{}：{}",
                    field_label(lang, k),
                    value_words(w, k, v)
                ));
            }
        }
    }
    lines.truncate(6);
    lines
}

/// The raw before/after JSON, pretty-printed, for the details toggle.
fn raw(before: &Option<serde_json::Value>, after: &Option<serde_json::Value>) -> String {
    let pretty = |v: &Option<serde_json::Value>| {
        v.as_ref().map_or("null".to_string(), |v| {
            serde_json::to_string_pretty(v).unwrap_or_default()
        })
    };
    format!("before: {}\nafter: {}", pretty(before), pretty(after))
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
    let names = Names::load(&state.db).await?;
    let words = Words {
        lang,
        names: &names,
        tz: state.site_tz,
    };
    let operators: Vec<(String, String)> =
        sqlx::query_as("SELECT username, display_name FROM operators ORDER BY id")
            .fetch_all(state.db.pool())
            .await
            .map_err(crate::central::db::RepoError::from)?;
    let labelled = |codes: &[&'static str], f: fn(Lang, &str) -> String| -> Vec<(String, String)> {
        codes.iter().map(|c| (c.to_string(), f(lang, c))).collect()
    };
    let entities = labelled(ENTITIES, entity_label);
    let actions = labelled(ACTIONS, action_label);
    let select = |id: &str, list: &[(String, String)], chosen: Option<&str>| {
        html! {
            select id=(id) name=(id) {
                option value="" { (t(lang, "全部", "All")) }
                @for (code, label) in list {
                    option value=(code) selected[chosen == Some(code.as_str())] { (label) }
                }
            }
        }
    };
    let people: Vec<(String, String)> = operators
        .iter()
        .map(|(u, d)| (u.clone(), crate::web::names::shown(d, u).to_string()))
        .collect();
    let body = html! {
        section.panel aria-labelledby="find-title" {
            h2 id="find-title" { (t(lang, "筛选", "Filter")) }
            form.search method="get" role="search" {
                (field("entity", "entity", t(lang, "记录类型", "Kind of record"), select("entity", &entities, p.entity.as_deref())))
                (field("entity_id", "entity_id", t(lang, "记录编号", "Record no."), html! { input id="entity_id" name="entity_id" size="8" value=[p.entity_id.as_deref()]; }))
                (field("action", "action", t(lang, "操作", "Action"), select("action", &actions, p.action.as_deref())))
                (field("operator", "operator", t(lang, "操作员", "Operator"), select("operator", &people, p.operator.as_deref())))
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
                th scope="col" { (t(lang, "变更内容", "What changed")) }
            } }
            tbody {
                @if found.items.is_empty() { tr { td colspan="5" { (t(lang, "没有符合条件的记录", "No entries match")) } } }
                @for e in &found.items {
                    @let lines = summary(&words, &e.before, &e.after);
                    tr data-action=(e.action) data-entity=(e.entity) {
                        td { (when(state.site_tz, e.at)) }
                        td.who { (actor_label(lang, &e.operator_name, |n| names.of(n))) }
                        td { (action_label(lang, &e.action)) }
                        td {
                            (entity_label(lang, &e.entity))
                            @if e.entity_id.chars().all(|c| c.is_ascii_digit()) && !e.entity_id.is_empty() { " #" (e.entity_id) }
                        }
                        td.changes {
                            @for l in &lines { div { (l) } }
                            details.raw {
                                summary { (t(lang, "详情", "Details")) }
                                pre.json { (raw(&e.before, &e.after)) }
                            }
                        }
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
