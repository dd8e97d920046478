//! `/admin/stats`: the campus traffic statistics for a range of days — passages by hour with the
//! peak hours, flows per gate × direction × vehicle category (and per gate × direction × hour),
//! visitors per day, vehicles on campus now by category, overstaying visitors, denials by
//! reason, manual opens by guard and reason, this week against last week — as SVG charts drawn
//! on the server and the tables behind them, each with CSV/XLSX export links
//! (`/api/v1/stats/export`). `/admin/stats/daily?date=` is the printable daily report for the
//! security office (print CSS: no navigation, A4).
//!
//! Every figure comes from the statistics tables the ingest keeps (`repo::stats`), never from a
//! scan of the passage events. Each table beside a chart lists its rows in the chart's order
//! (largest first where the bars are), gates by their names in the page's language and guards
//! by their display names.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{Datelike, Duration, NaiveDate};
use maud::{Markup, html};
use serde::Deserialize;

use super::charts::{Series, bars, columns};
use super::{field, frame, given, when};
use crate::central::api::stats::MAX_DAYS;
use crate::central::db::{Db, Page, RepoError, now_ms};
use crate::central::repo::gates::{self, GateQuery};
use crate::central::repo::stats::{
    self, Days, DenialRow, FlowRow, ManualOpenRow, Occupancy, Overstay, PeakHours, VisitorDay,
    WeekComparison,
};
use crate::central::state::AppState;
use crate::central::traffic::site_today;
use crate::i18n::{Lang, category_label, direction_label, guard_reason_label, reason_label, t};
use crate::web::names::Names;
use crate::web::{PageError, Viewer};

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
}

/// `?date=YYYY-MM-DD`.
#[derive(Debug, Default, Deserialize)]
pub struct DayParams {
    date: Option<String>,
}

/// Every figure of a range of days.
struct Figures {
    days: Days,
    gate_names: BTreeMap<i64, String>,
    /// Operators' display names.
    names: Names,
    flows: Vec<FlowRow>,
    occupancy: Occupancy,
    overstays: Vec<Overstay>,
    visitors: Vec<VisitorDay>,
    denials: Vec<DenialRow>,
    opens: Vec<ManualOpenRow>,
    peaks: PeakHours,
    weekly: WeekComparison,
}

async fn figures(db: &Db, days: Days, lang: Lang) -> Result<Figures, RepoError> {
    let gate_names = gates::search(
        db,
        &GateQuery::default(),
        Page {
            offset: 0,
            limit: crate::central::db::MAX_PAGE,
        },
    )
    .await?
    .items
    .into_iter()
    .map(|g| (g.id, g.name_in(lang).to_string()))
    .collect();
    Ok(Figures {
        days,
        gate_names,
        names: Names::load(db).await?,
        flows: stats::flows(db, days, None).await?,
        occupancy: stats::occupancy(db).await?,
        overstays: stats::overstays(db, now_ms()).await?,
        visitors: stats::visitors(db, days).await?,
        denials: stats::denials(db, days).await?,
        opens: stats::manual_opens(db, days).await?,
        peaks: stats::peak_hours(db, days).await?,
        weekly: stats::week_comparison(db, days.to).await?,
    })
}

fn parse(text: &Option<String>) -> Option<NaiveDate> {
    given(text).and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
}

const WEEKDAYS: [(&str, &str); 7] = [
    ("周一", "Mon"),
    ("周二", "Tue"),
    ("周三", "Wed"),
    ("周四", "Thu"),
    ("周五", "Fri"),
    ("周六", "Sat"),
    ("周日", "Sun"),
];

impl Figures {
    fn gate(&self, id: i64) -> String {
        self.gate_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    fn range_query(&self) -> String {
        format!("from={}&to={}", self.days.from, self.days.to)
    }
}

fn exports(f: &Figures, table: &str) -> Markup {
    let q = f.range_query();
    html! {
        span.exports.no-print {
            a href={ "/api/v1/stats/export?table=" (table) "&format=csv&" (q) } download { "CSV" }
            a href={ "/api/v1/stats/export?table=" (table) "&format=xlsx&" (q) } download { "XLSX" }
        }
    }
}

fn heading(id: &str, title: &str, f: &Figures, table: Option<&str>) -> Markup {
    html! {
        h2 id=(id) { (title) " " @if let Some(table) = table { (exports(f, table)) } }
    }
}

/// The sections every statistics view shows.
fn sections(lang: Lang, tz: chrono_tz::Tz, f: &Figures) -> Markup {
    let entries: i64 = f.peaks.hours.iter().map(|h| h.entries).sum();
    let exits: i64 = f.peaks.hours.iter().map(|h| h.exits).sum();
    let visitor_entries: i64 = f.visitors.iter().map(|v| v.entries).sum();
    let denials: i64 = f.denials.iter().map(|d| d.denials).sum();
    let opens: i64 = f.opens.iter().map(|o| o.opens).sum();
    let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let peak_index: Vec<usize> = f.peaks.peaks.iter().map(|h| *h as usize).collect();
    // Flows by gate × direction (rows) and category (columns), summed over the range.
    let mut by_lane: BTreeMap<(i64, String), BTreeMap<String, i64>> = BTreeMap::new();
    let mut by_hour: BTreeMap<(i64, String), [i64; 24]> = BTreeMap::new();
    let mut categories: Vec<String> = Vec::new();
    for r in &f.flows {
        *by_lane
            .entry((r.gate_id, r.direction.clone()))
            .or_default()
            .entry(r.category.clone())
            .or_default() += r.passages;
        by_hour
            .entry((r.gate_id, r.direction.clone()))
            .or_insert([0; 24])[r.hour.clamp(0, 23) as usize] += r.passages;
        if !categories.contains(&r.category) {
            categories.push(r.category.clone());
        }
    }
    categories.sort();
    let lane_labels: Vec<String> = by_lane
        .keys()
        .map(|(g, d)| format!("{} {}", f.gate(*g), direction_label(lang, d)))
        .collect();
    let category_names: Vec<String> = categories.iter().map(|c| category_label(lang, c)).collect();
    let lane_series: Vec<Series<'_>> = categories
        .iter()
        .zip(&category_names)
        .map(|(c, name)| Series {
            name,
            values: by_lane
                .values()
                .map(|m| m.get(c).copied().unwrap_or(0))
                .collect(),
        })
        .collect();
    let mut denial_reasons: BTreeMap<&str, i64> = BTreeMap::new();
    for d in &f.denials {
        *denial_reasons.entry(d.reason.as_str()).or_default() += d.denials;
    }
    // Largest first, in the chart and in the table.
    let mut denial_rows: Vec<(&str, String, i64)> = denial_reasons
        .iter()
        .map(|(r, n)| (*r, reason_label(lang, r), *n))
        .collect();
    denial_rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    let denial_items: Vec<(String, i64)> = denial_rows
        .iter()
        .map(|(_, l, n)| (l.clone(), *n))
        .collect();
    let mut guards: BTreeMap<&str, i64> = BTreeMap::new();
    let mut guard_reasons: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for o in &f.opens {
        *guards.entry(o.operator.as_str()).or_default() += o.opens;
        *guard_reasons
            .entry((o.operator.as_str(), o.reason.as_str()))
            .or_default() += o.opens;
    }
    // Guards largest first (the chart's order); in the table each guard's reasons follow,
    // largest first.
    let mut guard_order: Vec<(&str, i64)> = guards.iter().map(|(g, n)| (*g, *n)).collect();
    guard_order.sort_by(|a, b| b.1.cmp(&a.1).then(f.names.of(a.0).cmp(f.names.of(b.0))));
    let guard_items: Vec<(String, i64)> = guard_order
        .iter()
        .map(|(g, n)| (f.names.of(g).to_string(), *n))
        .collect();
    let mut guard_rows: Vec<(&str, &str, i64)> = guard_reasons
        .iter()
        .map(|((g, r), n)| (*g, *r, *n))
        .collect();
    let rank = |g: &str| guard_order.iter().position(|(x, _)| *x == g);
    guard_rows.sort_by(|a, b| {
        rank(a.0)
            .cmp(&rank(b.0))
            .then(b.2.cmp(&a.2))
            .then(a.1.cmp(b.1))
    });
    let occupancy_items: Vec<(String, i64)> = f
        .occupancy
        .by_category
        .iter()
        .map(|c| (category_label(lang, &c.category), c.vehicles))
        .collect();
    let day_labels: Vec<String> = f
        .visitors
        .iter()
        .map(|v| v.day.get(5..).unwrap_or(&v.day).to_string())
        .collect();
    let weekday_labels: Vec<String> = f
        .weekly
        .days
        .iter()
        .map(|d| {
            let (zh, en) = WEEKDAYS[(d.weekday.clamp(1, 7) - 1) as usize];
            t(lang, zh, en).to_string()
        })
        .collect();
    html! {
        dl.figures id="figures" {
            div { dt { (t(lang, "入校", "Entries")) } dd data-figure="entries" { (entries) } }
            div { dt { (t(lang, "出校", "Exits")) } dd data-figure="exits" { (exits) } }
            div { dt { (t(lang, "当前在校车辆", "On campus now")) } dd data-figure="occupancy" { (f.occupancy.total) } }
            div { dt { (t(lang, "访客入校", "Visitor entries")) } dd data-figure="visitors" { (visitor_entries) } }
            div { dt { (t(lang, "超时访客", "Overstays")) } dd data-figure="overstays" { (f.overstays.len()) } }
            div { dt { (t(lang, "拒绝通行", "Denials")) } dd data-figure="denials" { (denials) } }
            div { dt { (t(lang, "手动抬杆", "Manual opens")) } dd data-figure="manual_opens" { (opens) } }
        }
        section.panel aria-labelledby="hours-title" {
            (heading("hours-title", t(lang, "分时段通行量与高峰时段", "Passages by hour and peak hours"), f, Some("peak_hours")))
            (columns(t(lang, "各小时入校与出校车次", "Entries and exits by hour"), &hours,
                &[Series { name: t(lang, "入校", "entries"), values: f.peaks.hours.iter().map(|h| h.entries).collect() },
                  Series { name: t(lang, "出校", "exits"), values: f.peaks.hours.iter().map(|h| h.exits).collect() }],
                &peak_index, 760.0))
            p id="peaks" {
                strong { (t(lang, "高峰时段：", "Peak hours: ")) }
                @if f.peaks.peaks.is_empty() { (t(lang, "无通行", "no traffic")) }
                @for h in &f.peaks.peaks { span.badge.pending { (format!("{h:02}:00–{h:02}:59")) } " " }
            }
        }
        div.panels {
            section.panel aria-labelledby="flows-title" {
                (heading("flows-title", t(lang, "各大门·方向·车辆类别通行量", "Flows by gate, direction and vehicle category"), f, Some("flows")))
                @if by_lane.is_empty() { p { (t(lang, "所选日期内无通行", "No passages in these days")) } }
                @else {
                    (columns(t(lang, "各大门方向按类别的车次", "Passages per gate and direction by category"), &lane_labels, &lane_series, &[], 420.0))
                    table.data id="flows" {
                        thead { tr {
                            th scope="col" { (t(lang, "大门·方向", "Gate · direction")) }
                            @for name in &category_names { th.num scope="col" { (name) } }
                            th.num scope="col" { (t(lang, "合计", "Total")) }
                        } }
                        tbody {
                            @for ((label, row), (g, d)) in lane_labels.iter().zip(by_lane.values()).zip(by_lane.keys()) {
                                tr data-gate=(g) data-direction=(d) {
                                    th scope="row" { (label) }
                                    @for c in &categories { td.num data-category=(c) { (row.get(c).copied().unwrap_or(0)) } }
                                    td.num { (row.values().sum::<i64>()) }
                                }
                            }
                        }
                    }
                }
            }
            section.panel aria-labelledby="occupancy-title" {
                (heading("occupancy-title", t(lang, "当前在校车辆（按类别）", "Vehicles on campus now, by category"), f, Some("occupancy")))
                @if occupancy_items.is_empty() { p { (t(lang, "当前无车辆在校", "No vehicle on campus")) } }
                @else { (bars(t(lang, "在校车辆按类别", "Vehicles on campus by category"), &occupancy_items, 2, 420.0)) }
                table.data id="occupancy" {
                    thead { tr { th scope="col" { (t(lang, "类别", "Category")) } th.num scope="col" { (t(lang, "车辆", "Vehicles")) } } }
                    tbody {
                        @for c in &f.occupancy.by_category { tr data-category=(c.category) { td { (category_label(lang, &c.category)) } td.num { (c.vehicles) } } }
                        tr { th scope="row" { (t(lang, "合计", "Total")) } td.num { (f.occupancy.total) } }
                    }
                }
            }
        }
        section.panel aria-labelledby="hourly-title" {
            (heading("hourly-title", t(lang, "各大门·方向分时段通行量", "Flows per gate and direction by hour"), f, Some("flows")))
            @if by_hour.is_empty() { p { (t(lang, "所选日期内无通行", "No passages in these days")) } }
            @else {
                div.scroll-x {
                    table.data id="hourly" {
                        thead { tr {
                            th scope="col" { (t(lang, "大门·方向", "Gate · direction")) }
                            @for h in 0..24 { th.num scope="col" { (h) } }
                        } }
                        tbody {
                            @for ((g, d), row) in &by_hour {
                                tr { th scope="row" { (f.gate(*g)) " " (direction_label(lang, d)) }
                                    @for v in row { td.num { @if *v > 0 { (v) } @else { span.hint { "·" } } } } }
                            }
                        }
                    }
                }
            }
        }
        div.panels {
            section.panel aria-labelledby="visitors-title" {
                (heading("visitors-title", t(lang, "每日访客", "Visitors per day"), f, Some("visitors")))
                (columns(t(lang, "每日访客入校次数与车辆数", "Visitor entries and vehicles per day"), &day_labels,
                    &[Series { name: t(lang, "入校次数", "entries"), values: f.visitors.iter().map(|v| v.entries).collect() },
                      Series { name: t(lang, "车辆数", "vehicles"), values: f.visitors.iter().map(|v| v.vehicles).collect() }], &[], 420.0))
            }
            section.panel aria-labelledby="weekly-title" {
                (heading("weekly-title", t(lang, "本周与上周对比", "This week against last week"), f, Some("weekly")))
                (columns(t(lang, "本周与上周每日车次", "Passages per weekday, this week and last"), &weekday_labels,
                    &[Series { name: t(lang, "本周", "this week"), values: f.weekly.days.iter().map(|d| d.this_week).collect() },
                      Series { name: t(lang, "上周", "last week"), values: f.weekly.days.iter().map(|d| d.last_week).collect() }], &[], 420.0))
                p id="weekly" {
                    (t(lang, "本周（", "This week (")) (f.weekly.this_week_from) (t(lang, " 起）共 ", " on): ")) strong { (f.weekly.this_week_total) }
                    (t(lang, " 车次；上周共 ", " passages; last week: ")) strong { (f.weekly.last_week_total) } (t(lang, " 车次", " passages"))
                }
            }
        }
        div.panels {
            section.panel aria-labelledby="denials-title" {
                (heading("denials-title", t(lang, "拒绝通行（按原因）", "Denials by reason"), f, Some("denials")))
                @if denial_items.is_empty() { p { (t(lang, "无拒绝", "No denials")) } }
                @else { (bars(t(lang, "拒绝通行按原因", "Denials by reason"), &denial_items, 1, 420.0)) }
                table.data id="denials" {
                    thead { tr { th scope="col" { (t(lang, "原因", "Reason")) } th.num scope="col" { (t(lang, "次数", "Denials")) } } }
                    tbody { @for (r, label, n) in &denial_rows { tr data-reason=(r) { td { (label) } td.num { (n) } } } }
                }
            }
            section.panel aria-labelledby="opens-title" {
                (heading("opens-title", t(lang, "手动抬杆（按门卫与原因）", "Manual opens by guard and reason"), f, Some("manual_opens")))
                @if guard_items.is_empty() { p { (t(lang, "无手动抬杆", "No manual opens")) } }
                @else { (bars(t(lang, "手动抬杆按门卫", "Manual opens by guard"), &guard_items, 3, 420.0)) }
                table.data id="manual-opens" {
                    thead { tr { th scope="col" { (t(lang, "门卫", "Guard")) } th scope="col" { (t(lang, "原因", "Reason")) } th.num scope="col" { (t(lang, "次数", "Opens")) } } }
                    tbody { @for (g, r, n) in &guard_rows { tr data-guard=(g) data-reason=(r) { td { (f.names.of(g)) } td { (guard_reason_label(lang, r)) } td.num { (n) } } } }
                }
            }
        }
        section.panel aria-labelledby="overstays-title" {
            (heading("overstays-title", t(lang, "超时未离校访客", "Overstaying visitors"), f, Some("overstays")))
            table.data id="overstays" {
                thead { tr {
                    th scope="col" { (t(lang, "车牌", "Plate")) }
                    th scope="col" { (t(lang, "入口大门", "Entered by")) }
                    th scope="col" { (t(lang, "进入时间", "Entered")) }
                    th scope="col" { (t(lang, "应离开时间", "Expected out")) }
                    th.num scope="col" { (t(lang, "超时（分钟）", "Overdue (min)")) }
                } }
                tbody {
                    @if f.overstays.is_empty() { tr { td colspan="5" { (t(lang, "无", "None")) } } }
                    @for o in &f.overstays {
                        tr.overstay {
                            td.plate { (o.plate.clone().unwrap_or_else(|| o.vehicle_key.clone())) }
                            td { (f.gate(o.gate_id)) }
                            td { (o.entered_at.map(|t| when(tz, t)).unwrap_or_default()) }
                            td { (when(tz, o.expected_leave_at)) }
                            td.num { (o.overdue_minutes) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /admin/stats`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let today = site_today(state.site_tz, now_ms());
    let to = parse(&p.to).unwrap_or(today);
    let from = parse(&p.from).unwrap_or(to - Duration::days(6));
    let problem = if from > to {
        Some(t(
            lang,
            "开始日期晚于结束日期，已显示最近 7 天",
            "The start is after the end: showing the last 7 days",
        ))
    } else if (to - from).num_days() >= MAX_DAYS {
        Some(t(
            lang,
            "范围超过 366 天，已显示最近 7 天",
            "More than 366 days: showing the last 7 days",
        ))
    } else {
        None
    };
    let days = if problem.is_some() {
        Days {
            from: today - Duration::days(6),
            to: today,
        }
    } else {
        Days { from, to }
    };
    let f = figures(&state.db, days, lang).await?;
    let body = html! {
        form.search.no-print method="get" role="search" {
            (field("from", "from", t(lang, "开始日期", "From"), html! { input id="from" name="from" type="date" value=(days.from); }))
            (field("to", "to", t(lang, "结束日期", "To"), html! { input id="to" name="to" type="date" value=(days.to); }))
            button.primary type="submit" { (t(lang, "查看", "Show")) }
            a href={ "/admin/stats/daily?date=" (days.to) } { (t(lang, "打印日报", "Printable daily report")) }
        }
        @if let Some(problem) = problem { p.form-status.bad role="alert" { (problem) } }
        p.hint { (t(lang, "统计范围：", "Days: ")) (days.from) " — " (days.to) (t(lang, "（", " (")) (if lang == Lang::Zh && state.site_tz == chrono_tz::Asia::Shanghai { "北京时间" } else { state.site_tz.name() }) (t(lang, "）", ")")) }
        (sections(lang, state.site_tz, &f))
    };
    Ok(frame(
        &viewer,
        "/admin/stats",
        t(lang, "通行统计", "Traffic statistics"),
        body,
    ))
}

/// `GET /admin/stats/daily?date=`: the printable daily report.
pub async fn daily(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<DayParams>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let day = parse(&p.date).unwrap_or_else(|| site_today(state.site_tz, now_ms()));
    let f = figures(&state.db, Days { from: day, to: day }, lang).await?;
    let (zh, en) = WEEKDAYS[day.weekday().num_days_from_monday() as usize];
    let title = t(
        lang,
        "校园车辆通行日报",
        "Campus vehicle traffic daily report",
    );
    let body = html! {
        div.report {
            form.search.no-print method="get" {
                (field("date", "date", t(lang, "日期", "Date"), html! { input id="date" name="date" type="date" value=(day); }))
                button.primary type="submit" { (t(lang, "查看", "Show")) }
                button type="button" data-print { (t(lang, "打印", "Print")) }
            }
            p.report-day { strong { (day) " " (t(lang, zh, en)) } " · " (t(lang, "生成时间 ", "generated ")) (when(state.site_tz, chrono::Utc::now())) }
            (sections(lang, state.site_tz, &f))
        }
    };
    Ok(frame(&viewer, "/admin/stats", title, body))
}
