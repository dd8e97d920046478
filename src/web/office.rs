//! `/office`: the security office's page — alarms (the booths' one-button alarms and the ones
//! the system raises: fire input, tailgating, journal failure, device offline, gate clock off;
//! pushed the moment they are raised, acknowledged here with what was done, withdrawals shown
//! with who and when, their police-link delivery shown and, when it keeps failing, given up
//! here; the alert and its sound are the banner every page of the office has, see
//! [`super::alarms`]), manual opens per guard (by display name), and the outside
//! vehicles' statistics (校外车辆: per day, gate, province, dwell, overstays, repeat visitors).
//!
//! What it never does: show it to anyone but the office (admin, security).

use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use maud::{Markup, html};
use tokio::sync::broadcast::error::RecvError;

use super::Viewer;
use super::alarms::{
    Places, acknowledged_words, kind_words, note_words, webhook_words, withdrawn_words,
};
use super::layout::{Nav, local_time, page as frame};
use super::names::Names;
use crate::central::api::console::manual_open_counts;
use crate::central::db::RepoError;
use crate::central::live::LiveMessage;
use crate::central::repo::alarms;
use crate::central::repo::alarms::ACK_ACTIONS;
use crate::central::state::AppState;
use crate::i18n::{Lang, t};

async fn alarms_part(state: &AppState, lang: Lang) -> Result<Markup, RepoError> {
    let list = alarms::recent(&state.db, 20).await?;
    let names = Names::load(&state.db).await?;
    let places = Places::load(state, &list).await?;
    Ok(html! {
        @if list.is_empty() { p { (t(lang, "暂无报警", "No alarms")) } }
        ul.alarms {
            @for a in &list {
                @let state_code = if a.withdrawn_at.is_some() { "withdrawn" } else if a.acknowledged_at.is_some() { "acknowledged" } else { "open" };
                li.open[a.is_open()] data-alarm=(a.id) data-kind=(a.kind) data-state=(state_code) {
                    strong.kind { (kind_words(lang, &a.kind)) " · " (places.of(lang, a)) }
                    " · " span.who {
                        @if a.raised_by_id.is_some() { (names.of(&a.raised_by)) } @else { (t(lang, "系统", "system")) }
                    }
                    " · " (local_time(state.site_tz, a.raised_at))
                    @let note = note_words(lang, a, &places);
                    @if !note.is_empty() { " — " span.note { (note) } }
                    @if a.cleared_at.is_some() {
                        " · " span.cleared { (t(lang, "已恢复", "cleared")) }
                    }
                    " · " span.webhook.(a.webhook_status) data-status=(a.webhook_status) {
                        (t(lang, "报警联动：", "Police link: ")) (webhook_words(lang, &a.webhook_status))
                        @if a.webhook_status == "pending" && a.delivery_attempts > 0 {
                            " (" (t(lang, "已尝试 ", "tried ")) (a.delivery_attempts)
                            (t(lang, " 次，重试中", " times, retrying"))
                            @if !a.last_error.is_empty() { ": " (a.last_error) }
                            ")"
                        }
                    }
                    @if a.webhook_status == "pending" {
                        form.inline.give-up data-api={ "/api/v1/alarms/" (a.id) "/give-up" } {
                            button type="submit" { (t(lang, "停止重试", "Stop retrying")) }
                        }
                    }
                    @if a.withdrawn_at.is_some() {
                        div.outcome.withdrawn { (withdrawn_words(state, lang, &names, a)) }
                    } @else if a.acknowledged_at.is_some() {
                        div.outcome.acknowledged { (acknowledged_words(state, lang, &names, a)) }
                    } @else {
                        (ack_form(lang, a.id))
                    }
                }
            }
        }
    })
}

/// The acknowledgement form: what was done (required) and a note (required with 其他).
fn ack_form(lang: Lang, id: i64) -> Markup {
    html! {
        form.ack data-api={ "/api/v1/alarms/" (id) "/acknowledge" } novalidate {
            label for={ "ack-action-" (id) } { (t(lang, "处置情况", "What was done")) }
            select id={ "ack-action-" (id) } name="action" required {
                option value="" { (t(lang, "请选择…", "Choose…")) }
                @for (code, zh, en) in ACK_ACTIONS {
                    option value=(code) { (t(lang, zh, en)) }
                }
            }
            span.error data-error-for="action" {}
            label for={ "ack-note-" (id) } { (t(lang, "说明", "Note")) }
            input id={ "ack-note-" (id) } name="note" maxlength="200" autocomplete="off"
                placeholder=(t(lang, "选“其他”时必填", "required with “other”"));
            span.error data-error-for="note" {}
            button type="submit" { (t(lang, "确认处置", "Acknowledge")) }
            p.form-status role="status" {}
        }
    }
}

async fn manual_part(state: &AppState, lang: Lang) -> Result<Markup, RepoError> {
    let counts = manual_open_counts(&state.db, 30).await?;
    let names = Names::load(&state.db).await?;
    Ok(html! {
        table id="manual-opens" {
            caption { (t(lang, "近 30 天手动抬杆（按门卫）", "Manual opens in the last 30 days, by guard")) }
            thead { tr {
                th scope="col" { (t(lang, "门卫", "Guard")) }
                th scope="col" { (t(lang, "手动抬杆", "Manual opens")) }
                th scope="col" { (t(lang, "保持关闭", "Kept closed")) }
            } }
            tbody {
                @if counts.is_empty() { tr { td colspan="3" { (t(lang, "暂无", "None")) } } }
                @for c in &counts {
                    tr data-guard=(c.operator) { td { (names.of(&c.operator)) } td.opens { (c.opens) } td { (c.keep_closed) } }
                }
            }
        }
    })
}

/// The words the outside-vehicle tables' script needs, as one JSON object.
fn outside_labels(lang: Lang) -> String {
    serde_json::json!({
        "none": t(lang, "暂无", "None"),
        "unknown": t(lang, "未知", "unknown"),
        "failed": t(lang, "统计读取失败：", "Could not read the statistics: "),
        // The dwell buckets' names (the API sends their codes).
        "dwell": crate::central::repo::passages::DWELL_BUCKETS
            .iter()
            .map(|(code, _, zh, en)| (code.to_string(), serde_json::Value::from(t(lang, zh, en))))
            .collect::<serde_json::Map<_, _>>(),
    })
    .to_string()
}

/// A table the outside-vehicle script fills: `id`, caption, column heads.
fn outside_table(id: &str, caption: &str, heads: &[&str]) -> Markup {
    html! {
        table.outside id=(id) {
            caption { (caption) }
            thead { tr { @for h in heads { th scope="col" { (h) } } } }
            tbody {}
        }
    }
}

/// Outside vehicles (校外车辆): visits per day, gate, province of registration and dwell
/// time, overstays and repeat visitors over a range of site days (the last 30 by default),
/// read by the page's script from `GET /api/v1/stats/outside-vehicles`, with exports.
fn outside_part(state: &AppState, lang: Lang) -> Markup {
    let today = chrono::Utc::now()
        .with_timezone(&state.site_tz)
        .date_naive();
    let from = today - chrono::Duration::days(29);
    html! {
        section id="outside-vehicles" aria-labelledby="outside-title"
            data-outside-api="/api/v1/stats/outside-vehicles" data-labels=(outside_labels(lang)) {
            h2 id="outside-title" { (t(lang, "校外车辆", "Outside vehicles")) }
            form id="outside-range" {
                label for="outside-from" { (t(lang, "从", "From")) }
                input id="outside-from" name="from" type="date" value=(from.format("%Y-%m-%d").to_string());
                label for="outside-to" { (t(lang, "到", "to")) }
                input id="outside-to" name="to" type="date" value=(today.format("%Y-%m-%d").to_string());
                button type="submit" { (t(lang, "查看", "Show")) }
                " " a href="/passages?outside=true" { (t(lang, "查询校外车辆通行记录", "Search outside vehicles' passages")) }
            }
            p id="outside-status" role="status" {}
            div.figures {
                div.figure { span.label { (t(lang, "来访车次", "Visits")) } strong id="outside-visits" { "—" } }
                div.figure.alert { span.label { (t(lang, "超时滞留", "Overstays")) } strong id="outside-overstays" { "—" } }
            }
            div.outside-tables {
                (outside_table("outside-per-day", t(lang, "每日", "Per day"),
                    &[t(lang, "日期", "Day"), t(lang, "车辆数", "Vehicles"), t(lang, "车次", "Visits")]))
                (outside_table("outside-per-province", t(lang, "按号牌省份", "By province of registration"),
                    &[t(lang, "省份", "Province"), t(lang, "车次", "Visits")]))
                (outside_table("outside-per-gate", t(lang, "按大门", "By gate"),
                    &[t(lang, "大门", "Gate"), t(lang, "车次", "Visits")]))
                (outside_table("outside-dwell", t(lang, "停留时长", "Time on campus"),
                    &[t(lang, "时长", "Dwell"), t(lang, "车次", "Visits")]))
                (outside_table("outside-repeat", t(lang, "多次来访车辆", "Repeat visitors"),
                    &[t(lang, "车牌", "Plate"), t(lang, "车次", "Visits")]))
            }
            p.exports {
                (t(lang, "导出：", "Export: "))
                a id="outside-export-csv" href="/api/v1/stats/outside-vehicles/export?format=csv" { "CSV" }
                " · "
                a id="outside-export-xlsx" href="/api/v1/stats/outside-vehicles/export?format=xlsx" { "Excel (XLSX)" }
            }
        }
    }
}

/// `GET /office`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, super::PageError> {
    let lang = viewer.lang;
    let alarms = alarms_part(&state, lang).await?;
    let manual = manual_part(&state, lang).await?;
    Ok(frame(
        &viewer,
        t(lang, "保卫处", "Security office"),
        Nav::Office,
        None,
        html! {
            main.office data-live-url="/office/live" {
                section aria-labelledby="alarms-title" {
                    h2 id="alarms-title" { (t(lang, "报警", "Alarms")) }
                    div id="alarms" { (alarms) }
                }
                section aria-labelledby="manual-title" {
                    h2 id="manual-title" { (t(lang, "手动操作统计", "Manual commands")) }
                    div id="manual" { (manual) }
                }
                (outside_part(&state, lang))
            }
        },
    ))
}

/// `GET /office/live`: the alarm list as alarms are raised and change, manual opens as they
/// arrive. The alert and its sound are the banner's (`/alarms/live`, on every page).
pub async fn live(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live.subscribe();
    let stream = futures::stream::unfold(
        (rx, state, viewer, true),
        |(mut rx, state, viewer, first)| async move {
            let lang = viewer.lang;
            if first {
                // Tells the page it is connected (and brings it up to date).
                let html = alarms_part(&state, lang)
                    .await
                    .map(|m| m.into_string())
                    .unwrap_or_default();
                let data = serde_json::json!({ "parts": [{ "id": "alarms", "html": html }], "alert": null });
                let event = Event::default().event("gate").data(data.to_string());
                return Some((Ok(event), (rx, state, viewer, false)));
            }
            loop {
                let message = match rx.recv().await {
                    Ok(m) => m,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                };
                let part = match &*message {
                    LiveMessage::Alarm { .. } => "alarms",
                    // Gate health is shown on the console, not on this page.
                    LiveMessage::GateStatus { .. } => continue,
                    LiveMessage::Events { events, .. } => {
                        if !events.iter().any(|e| e.body.kind() == "override") {
                            continue;
                        }
                        "manual"
                    }
                };
                let html = if part == "alarms" {
                    alarms_part(&state, lang).await
                } else {
                    manual_part(&state, lang).await
                };
                let Ok(html) = html else { continue };
                let data = serde_json::json!({ "parts": [{ "id": part, "html": html.into_string() }], "alert": null });
                let event = Event::default().event("gate").data(data.to_string());
                return Some((Ok(event), (rx, state, viewer, false)));
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
