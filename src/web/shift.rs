//! The shift report page (交班报表): `/console/shift` (the viewer's current duty, else their
//! latest) and `/console/shift/{duty_id}` (any duty the viewer may read: their own, one at
//! their gate, or any for the office). On screen with print and export buttons; on paper (the
//! print stylesheet) an A4 page with a header naming the site, gate, guard and time range.
//!
//! What it never does: compute figures itself ([`crate::central::shift`] does, for the page
//! and the export alike), show a user name or a code, or change anything.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::Viewer;
use super::layout::{Nav, page as frame};
use super::names::Names;
use crate::central::repo::duty;
use crate::central::shift::{self, ShiftReport, alarm_label, outcome_label};
use crate::central::state::AppState;
use crate::i18n::{Lang, guard_reason_label, reason_label, t};

/// An instant on paper: `YYYY-MM-DD HH:MM`, in the site's zone.
pub fn paper_time(tz: chrono_tz::Tz, ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A duration in words: `7 小时 05 分`.
pub fn duration(lang: Lang, ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    match lang {
        Lang::Zh => format!("{} 小时 {:02} 分", minutes / 60, minutes % 60),
        Lang::En => format!("{} h {:02} min", minutes / 60, minutes % 60),
    }
}

/// The site's name on paper.
pub fn site_name(lang: Lang) -> &'static str {
    t(lang, "校园车辆门禁系统", "Campus vehicle access control")
}

fn nav_of(viewer: &Viewer) -> Nav {
    if viewer.is_office() {
        Nav::Office
    } else {
        Nav::Live
    }
}

/// `GET /console/shift`: the report of the viewer's current duty (or their latest).
pub async fn current(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, super::PageError> {
    let lang = viewer.lang;
    match duty::latest(&state.db, viewer.authed.operator_id).await? {
        Some(d) => render(&state, &viewer, d.id).await,
        None => Ok(frame(
            &viewer,
            t(lang, "交班报表", "Shift report"),
            nav_of(&viewer),
            None,
            html! {
                main.paper {
                    h1 { (t(lang, "交班报表", "Shift report")) }
                    p id="no-duty" { (t(lang, "您还没有值班记录：在实时车道页面签到上岗后即可查看本班报表。", "You have no duty yet: sign in to a booth on the live lanes page to see your shift's report.")) }
                    p { a href="/console" { (t(lang, "返回实时车道", "Back to the live lanes")) } }
                }
            },
        )
        .into_response()),
    }
}

/// `GET /console/shift/{duty_id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(duty_id): Path<String>,
) -> Result<Response, super::PageError> {
    match duty_id.parse::<i64>() {
        Ok(id) => render(&state, &viewer, id).await,
        Err(_) => Ok(missing(&viewer)),
    }
}

fn missing(viewer: &Viewer) -> Response {
    let lang = viewer.lang;
    (
        StatusCode::NOT_FOUND,
        frame(
            viewer,
            t(lang, "交班报表", "Shift report"),
            nav_of(viewer),
            None,
            html! { main.paper { h1 { (t(lang, "没有这条值班记录", "No such duty record")) } } },
        ),
    )
        .into_response()
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    duty_id: i64,
) -> Result<Response, super::PageError> {
    let lang = viewer.lang;
    let Ok(d) = duty::get(&state.db, duty_id).await else {
        return Ok(missing(viewer));
    };
    if !crate::central::api::duty::may_read(&viewer.authed, &d) {
        return Ok((
            StatusCode::FORBIDDEN,
            frame(
                viewer,
                t(lang, "无权访问", "Not allowed"),
                nav_of(viewer),
                None,
                html! { main.paper { h1 { (t(lang, "无权查看这份交班报表", "You may not read this shift report")) } } },
            ),
        )
            .into_response());
    }
    let report = shift::report(&state.db, duty_id).await?;
    let names = Names::load(&state.db).await?;
    Ok(frame(
        viewer,
        t(lang, "交班报表", "Shift report"),
        nav_of(viewer),
        None,
        body(state.site_tz, lang, &report, &names),
    )
    .into_response())
}

fn name_of(names: &Names, id: Option<i64>, recorded: &str) -> String {
    id.and_then(|id| names.of_id(id))
        .unwrap_or_else(|| names.of(recorded))
        .to_string()
}

fn body(tz: chrono_tz::Tz, lang: Lang, r: &ShiftReport, names: &Names) -> Markup {
    let api = format!("/api/v1/duty/{}/report", r.duty.id);
    let guard = name_of(names, Some(r.duty.operator_id), &r.duty.operator_name);
    let system = t(lang, "系统", "System");
    let none = t(lang, "无", "None");
    html! {
        link rel="stylesheet" href="/assets/paper.css";
        main.paper.shift data-duty=(r.duty.id) {
            div.paper-tools.no-print {
                button.primary type="button" data-print { (t(lang, "打印", "Print")) }
                a.button id="export-csv" href={ (api) "?format=csv" } download { (t(lang, "导出 CSV", "Export CSV")) }
                a.button id="export-xlsx" href={ (api) "?format=xlsx" } download { (t(lang, "导出 Excel", "Export Excel")) }
                a href="/console" { (t(lang, "返回实时车道", "Back to the live lanes")) }
            }
            header.paper-head {
                p.site { (site_name(lang)) }
                h1 { (r.gate.name_in(lang)) " " (t(lang, "交班报表", "shift report")) }
                dl.meta-grid {
                    dt { (t(lang, "大门", "Gate")) } dd id="report-gate" { (r.gate.name_in(lang)) }
                    dt { (t(lang, "值班门卫", "Guard on duty")) } dd id="report-guard" { (guard) }
                    dt { (t(lang, "时段", "Period")) }
                    dd id="report-period" {
                        (paper_time(tz, r.from_ms)) " – " (paper_time(tz, r.until_ms))
                        @if r.open { " " span.badge { (t(lang, "值班中，统计至此刻", "on duty: figures until now")) } }
                        " (" (duration(lang, r.until_ms - r.from_ms)) ")"
                    }
                }
            }
            section.totals aria-labelledby="totals-title" {
                h2 id="totals-title" { (t(lang, "本班合计", "Totals")) }
                table id="totals" {
                    tbody {
                        tr {
                            th scope="row" { (t(lang, "进场车次", "Entries")) } td data-total="entries" { (r.entries()) }
                            th scope="row" { (t(lang, "出场车次", "Exits")) } td data-total="exits" { (r.exits()) }
                            th scope="row" { (t(lang, "拒绝通行", "Denials")) } td data-total="denials" { (r.denied()) }
                        }
                        tr {
                            th scope="row" { (t(lang, "手动抬杆", "Manual opens")) } td data-total="manual_opens" { (r.opened_by_hand()) }
                            th scope="row" { (t(lang, "访客登记", "Visitors registered")) } td data-total="visitors" { (r.visitors.len()) }
                            th scope="row" { (t(lang, "报警（已确认）", "Alarms (acknowledged)")) }
                            td data-total="alarms" { (r.alarms_raised()) " (" (r.alarms_acknowledged()) ")" }
                        }
                    }
                }
            }
            section aria-labelledby="flows-title" {
                h2 id="flows-title" { (t(lang, "各车道进出", "In and out per lane")) }
                table id="flows" {
                    thead { tr { th scope="col" { (t(lang, "车道", "Lane")) } th scope="col" { (t(lang, "进", "In")) } th scope="col" { (t(lang, "出", "Out")) } } }
                    tbody {
                        @for f in &r.flows {
                            tr { td { (r.lane_name(lang, &f.lane)) } td.n { (f.entries) } td.n { (f.exits) } }
                        }
                        @if r.flows.is_empty() { tr { td colspan="3" { (none) } } }
                    }
                }
            }
            section aria-labelledby="denials-title" {
                h2 id="denials-title" { (t(lang, "拒绝通行（按原因）", "Denials by reason")) }
                table id="denials" {
                    thead { tr { th scope="col" { (t(lang, "原因", "Reason")) } th scope="col" { (t(lang, "次数", "Times")) } } }
                    tbody {
                        @for (reason, n) in &r.denials { tr { td { (reason_label(lang, reason)) } td.n { (n) } } }
                        @if r.denials.is_empty() { tr { td colspan="2" { (none) } } }
                    }
                }
            }
            section aria-labelledby="opens-title" {
                h2 id="opens-title" { (t(lang, "手动抬杆", "Manual opens")) }
                table id="manual-opens" {
                    thead { tr {
                        th scope="col" { (t(lang, "时间", "Time")) } th scope="col" { (t(lang, "车道", "Lane")) }
                        th scope="col" { (t(lang, "车牌", "Plate")) } th scope="col" { (t(lang, "操作人", "By")) }
                        th scope="col" { (t(lang, "原因", "Reason")) } th scope="col" { (t(lang, "结果", "Result")) }
                    } }
                    tbody {
                        @for m in &r.manual_opens {
                            tr {
                                td { (paper_time(tz, m.at_ms)) }
                                td { (r.lane_name(lang, &m.lane)) }
                                @match &m.plate { Some(p) => { td.plate { (p) } } None => { td { "—" } } }
                                td { (name_of(names, m.operator_id, &m.operator_name)) }
                                td { (guard_reason_label(lang, &m.reason)) @if let Some(n) = &m.note { "：" (n) } }
                                td { (outcome_label(lang, &m.outcome)) }
                            }
                        }
                        @if r.manual_opens.is_empty() { tr { td colspan="6" { (none) } } }
                    }
                }
            }
            section aria-labelledby="visitors-title" {
                h2 id="visitors-title" { (t(lang, "访客登记", "Visitors registered")) }
                table id="visitors" {
                    thead { tr {
                        th scope="col" { (t(lang, "到达", "Arrived")) } th scope="col" { (t(lang, "车牌", "Plate")) }
                        th scope="col" { (t(lang, "驾驶人", "Driver")) } th scope="col" { (t(lang, "被访人/部门", "Host / department")) }
                        th scope="col" { (t(lang, "登记人", "Registered by")) } th scope="col" { (t(lang, "离校", "Left")) }
                    } }
                    tbody {
                        @for v in &r.visitors {
                            tr {
                                td { (paper_time(tz, v.arrived_ms)) }
                                td.plate { (v.plate) }
                                td { (v.driver_name) }
                                td { (v.host_name) " / " (v.department) }
                                td { (name_of(names, v.registered_by, system)) }
                                td { @if let Some(l) = v.left_ms { (paper_time(tz, l)) } @else { (t(lang, "在校", "On campus")) } }
                            }
                        }
                        @if r.visitors.is_empty() { tr { td colspan="6" { (none) } } }
                    }
                }
            }
            section aria-labelledby="alarms-title" {
                h2 id="alarms-title" { (t(lang, "报警", "Alarms")) }
                table id="alarms" {
                    thead { tr {
                        th scope="col" { (t(lang, "时间", "Time")) } th scope="col" { (t(lang, "类型", "Kind")) }
                        th scope="col" { (t(lang, "报警人", "Raised by")) } th scope="col" { (t(lang, "确认", "Acknowledged")) }
                    } }
                    tbody {
                        @for a in &r.alarms {
                            tr {
                                td { (paper_time(tz, a.raised_ms)) }
                                td { (alarm_label(lang, &a.kind)) @if !a.note.is_empty() { " · " (a.note) } }
                                td { (name_of(names, a.raised_by, system)) }
                                td {
                                    @match a.acknowledged_ms {
                                        Some(at) => { (name_of(names, a.acknowledged_by, system)) " " (paper_time(tz, at)) }
                                        None => { (t(lang, "未确认", "Not yet")) }
                                    }
                                }
                            }
                        }
                        @if r.alarms.is_empty() { tr { td colspan="4" { (none) } } }
                    }
                }
            }
            footer.signatures {
                p { (t(lang, "交班人签字：", "Handed over by:")) span.line {} }
                p { (t(lang, "接班人签字：", "Taken over by:")) span.line {} }
            }
            script src="/assets/paper.js" defer {}
        }
    }
}
