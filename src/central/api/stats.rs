//! `GET /api/v1/stats/…`: the traffic statistics (flows per hour, vehicles on campus now,
//! overstaying visitors, visitors per day, denials by reason, manual opens by guard, peak hours,
//! this week against last week) as JSON, as CSV/XLSX exports, and as a printable daily report
//! (HTML with inline SVG charts, no scripts, no external resources).
//!
//! For the security office, the administration (the `viewer` role) and administrators (see
//! [`super::policy`]). Days are the site's calendar days (`server.timezone`), `YYYY-MM-DD`; a range
//! is inclusive and at most [`MAX_DAYS`] long.
//!
//! What it never does: compute a figure from the events (every figure comes from the
//! incremental tables through [`crate::central::repo::stats`]), or show a personal ID or phone
//! number (the statistics hold none).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiQuery};
use crate::central::db::now_ms;
use crate::central::export::Table;
use crate::central::repo::stats::{
    self, Days, DenialRow, FlowRow, ManualOpenRow, Occupancy, Overstay, PeakHours, VisitorDay,
    WeekComparison,
};
use crate::central::state::AppState;
use crate::central::traffic::site_today;
use crate::i18n::{Lang, Msg};

/// The longest range one query may ask for.
pub const MAX_DAYS: i64 = 366;

/// `?from=&to=&gate_id=`: site days, inclusive; both default to today.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD` (default today).
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`, inclusive (default `from`).
    pub to: Option<String>,
    /// Only this gate (hourly flows only).
    pub gate_id: Option<i64>,
}

/// `?date=`: one site day (default today).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// `YYYY-MM-DD` (default today).
    pub date: Option<String>,
}

/// `?table=&format=&from=&to=&gate_id=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `flows`, `occupancy`, `overstays`, `visitors`, `denials`, `manual_opens`, `peak_hours`
    /// or `weekly`.
    pub table: String,
    /// `csv` (UTF-8 with BOM) or `xlsx`.
    pub format: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub gate_id: Option<i64>,
}

fn parse_day(field: &str, text: Option<&str>, f: &mut Fields) -> Option<NaiveDate> {
    let text = text?;
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            f.add(
                field,
                "invalid_date",
                Msg::new(
                    format!("{field} 须为日期，格式 YYYY-MM-DD（收到 {text:?}）"),
                    format!("{field} must be a date, YYYY-MM-DD (got {text:?})"),
                ),
            );
            None
        }
    }
}

pub(crate) fn range(tz: Tz, from: Option<&str>, to: Option<&str>) -> ApiResult<Days> {
    let mut f = Fields::new();
    let today = site_today(tz, now_ms());
    let from_day = parse_day("from", from, &mut f);
    let to_day = parse_day("to", to, &mut f);
    f.finish()?;
    let from = from_day.unwrap_or(today);
    let to = to_day.unwrap_or(from);
    let mut f = Fields::new();
    if to < from {
        f.add(
            "to",
            "reversed_range",
            Msg::new("结束日期早于开始日期", "to is before from"),
        );
    } else if (to - from).num_days() >= MAX_DAYS {
        f.add(
            "to",
            "range_too_long",
            Msg::new(
                format!("查询范围最多 {MAX_DAYS} 天"),
                format!("a range is at most {MAX_DAYS} days"),
            ),
        );
    }
    f.finish()?;
    Ok(Days { from, to })
}

fn one_day(tz: Tz, date: Option<&str>) -> ApiResult<NaiveDate> {
    let mut f = Fields::new();
    let d = parse_day("date", date, &mut f);
    f.finish()?;
    Ok(d.unwrap_or_else(|| site_today(tz, now_ms())))
}

/// Hourly passages by gate, direction and vehicle category.
#[utoipa::path(get, path = "/api/v1/stats/flows", tag = "stats", params(RangeQuery),
    responses((status = 200, body = Vec<FlowRow>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_flows(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<ApiJson<Vec<FlowRow>>> {
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    Ok(ApiJson(stats::flows(&state.db, days, q.gate_id).await?))
}

/// Vehicles on campus now, by category.
#[utoipa::path(get, path = "/api/v1/stats/occupancy", tag = "stats",
    responses((status = 200, body = Occupancy), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn get_occupancy(State(state): State<AppState>) -> ApiResult<ApiJson<Occupancy>> {
    Ok(ApiJson(stats::occupancy(&state.db).await?))
}

/// Visitors still inside after their booking's slot (or pass) ended.
#[utoipa::path(get, path = "/api/v1/stats/overstays", tag = "stats",
    responses((status = 200, body = Vec<Overstay>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn get_overstays(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<Overstay>>> {
    Ok(ApiJson(stats::overstays(&state.db, now_ms()).await?))
}

/// Visitor entries and distinct visitor vehicles per day.
#[utoipa::path(get, path = "/api/v1/stats/visitors", tag = "stats", params(RangeQuery),
    responses((status = 200, body = Vec<VisitorDay>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_visitors(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<ApiJson<Vec<VisitorDay>>> {
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    Ok(ApiJson(stats::visitors(&state.db, days).await?))
}

/// Denied decisions by day, gate and reason.
#[utoipa::path(get, path = "/api/v1/stats/denials", tag = "stats", params(RangeQuery),
    responses((status = 200, body = Vec<DenialRow>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_denials(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<ApiJson<Vec<DenialRow>>> {
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    Ok(ApiJson(stats::denials(&state.db, days).await?))
}

/// Guard manual opens by day, gate, guard and reason.
#[utoipa::path(get, path = "/api/v1/stats/manual-opens", tag = "stats", params(RangeQuery),
    responses((status = 200, body = Vec<ManualOpenRow>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_manual_opens(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<ApiJson<Vec<ManualOpenRow>>> {
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    Ok(ApiJson(stats::manual_opens(&state.db, days).await?))
}

/// Passages by hour of the day over a range, and the busiest hours.
#[utoipa::path(get, path = "/api/v1/stats/peak-hours", tag = "stats", params(RangeQuery),
    responses((status = 200, body = PeakHours), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_peak_hours(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<ApiJson<PeakHours>> {
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    Ok(ApiJson(stats::peak_hours(&state.db, days).await?))
}

/// The week of `date` (Monday to Sunday) against the week before, per weekday.
#[utoipa::path(get, path = "/api/v1/stats/weekly", tag = "stats", params(DayQuery),
    responses((status = 200, body = WeekComparison), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_weekly(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> ApiResult<ApiJson<WeekComparison>> {
    let day = one_day(state.site_tz, q.date.as_deref())?;
    Ok(ApiJson(stats::week_comparison(&state.db, day).await?))
}

fn m(zh: &'static str, en: &'static str) -> Msg {
    Msg::new(zh, en)
}

/// The named statistics table over `days` (and gate), ready to export.
async fn table(state: &AppState, name: &str, days: Days, gate: Option<i64>) -> ApiResult<Table> {
    let db = &state.db;
    Ok(match name {
        "flows" => Table {
            name: "flows",
            columns: vec![
                m("日期", "day"),
                m("小时", "hour"),
                m("大门", "gate"),
                m("方向", "direction"),
                m("车辆类别", "category"),
                m("通行次数", "passages"),
            ],
            rows: stats::flows(db, days, gate)
                .await?
                .into_iter()
                .map(|r| {
                    vec![
                        r.day.into(),
                        r.hour.into(),
                        r.gate_id.into(),
                        r.direction.into(),
                        r.category.into(),
                        r.passages.into(),
                    ]
                })
                .collect(),
        },
        "occupancy" => Table {
            name: "occupancy",
            columns: vec![m("车辆类别", "category"), m("在校车辆", "vehicles")],
            rows: stats::occupancy(db)
                .await?
                .by_category
                .into_iter()
                .map(|c| vec![c.category.into(), c.vehicles.into()])
                .collect(),
        },
        "overstays" => Table {
            name: "overstays",
            columns: vec![
                m("车牌", "plate"),
                m("车辆类别", "category"),
                m("入口大门", "gate"),
                m("进入时间", "entered at"),
                m("应离开时间", "expected to leave"),
                m("超时（分钟）", "overdue (minutes)"),
                m("预约编号", "booking"),
            ],
            rows: stats::overstays(db, now_ms())
                .await?
                .into_iter()
                .map(|o| {
                    vec![
                        o.plate.into(),
                        o.category.into(),
                        o.gate_id.into(),
                        o.entered_at.map(|t| local(state.site_tz, t)).into(),
                        local(state.site_tz, o.expected_leave_at).into(),
                        o.overdue_minutes.into(),
                        o.booking_id.into(),
                    ]
                })
                .collect(),
        },
        "visitors" => Table {
            name: "visitors",
            columns: vec![
                m("日期", "day"),
                m("访客入校次数", "visitor entries"),
                m("访客车辆数", "visitor vehicles"),
            ],
            rows: stats::visitors(db, days)
                .await?
                .into_iter()
                .map(|v| vec![v.day.into(), v.entries.into(), v.vehicles.into()])
                .collect(),
        },
        "denials" => Table {
            name: "denials",
            columns: vec![
                m("日期", "day"),
                m("大门", "gate"),
                m("拒绝原因", "reason"),
                m("次数", "denials"),
            ],
            rows: stats::denials(db, days)
                .await?
                .into_iter()
                .map(|d| {
                    vec![
                        d.day.into(),
                        d.gate_id.into(),
                        d.reason.into(),
                        d.denials.into(),
                    ]
                })
                .collect(),
        },
        "manual_opens" => Table {
            name: "manual_opens",
            columns: vec![
                m("日期", "day"),
                m("大门", "gate"),
                m("门卫", "guard"),
                m("原因", "reason"),
                m("手动抬杆次数", "manual opens"),
            ],
            rows: stats::manual_opens(db, days)
                .await?
                .into_iter()
                .map(|o| {
                    vec![
                        o.day.into(),
                        o.gate_id.into(),
                        o.operator.into(),
                        o.reason.into(),
                        o.opens.into(),
                    ]
                })
                .collect(),
        },
        "peak_hours" => Table {
            name: "peak_hours",
            columns: vec![
                m("小时", "hour"),
                m("入校", "entries"),
                m("出校", "exits"),
                m("合计", "passages"),
            ],
            rows: stats::peak_hours(db, days)
                .await?
                .hours
                .into_iter()
                .map(|h| {
                    vec![
                        h.hour.into(),
                        h.entries.into(),
                        h.exits.into(),
                        h.passages.into(),
                    ]
                })
                .collect(),
        },
        "weekly" => Table {
            name: "weekly",
            columns: vec![
                m("星期", "weekday"),
                m("本周", "this week"),
                m("上周", "last week"),
            ],
            rows: stats::week_comparison(db, days.to)
                .await?
                .days
                .into_iter()
                .map(|d| {
                    vec![
                        i64::from(d.weekday).into(),
                        d.this_week.into(),
                        d.last_week.into(),
                    ]
                })
                .collect(),
        },
        other => {
            let mut f = Fields::new();
            f.add(
                "table",
                "unknown_table",
                Msg::new(
                    format!(
                        "没有统计表 {other:?}；可选 flows、occupancy、overstays、visitors、denials、manual_opens、peak_hours、weekly"
                    ),
                    format!(
                        "no statistics table {other:?}; one of flows, occupancy, overstays, visitors, denials, manual_opens, peak_hours, weekly"
                    ),
                ),
            );
            f.finish()?;
            unreachable!("finish fails when a field was added")
        }
    })
}

fn local(tz: Tz, t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// A file download response.
pub(crate) fn download(bytes: Vec<u8>, content_type: &'static str, file_name: &str) -> Response {
    let mut r = bytes.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// 422 unless `format` is `csv` or `xlsx`.
pub(crate) fn check_format(format: &str) -> ApiResult<()> {
    if matches!(format, "csv" | "xlsx") {
        return Ok(());
    }
    let mut f = Fields::new();
    f.add(
        "format",
        "unknown_format",
        Msg::new(
            format!("导出格式须为 csv 或 xlsx（收到 {format:?}）"),
            format!("format must be csv or xlsx (got {format:?})"),
        ),
    );
    f.finish()
}

/// Renders `table` as `format` (`csv` or `xlsx`, checked by [`check_format`]) in `lang`.
pub(crate) fn render(table: &Table, format: &str, lang: Lang, stem: &str) -> ApiResult<Response> {
    let failed = |e: crate::central::export::ExportError| {
        tracing::error!(error = %e, "export failed");
        ApiError::Internal
    };
    match format {
        "csv" => Ok(download(
            table.to_csv(lang).map_err(failed)?,
            "text/csv; charset=utf-8",
            &format!("{stem}.csv"),
        )),
        "xlsx" => Ok(download(
            table.to_xlsx(lang).map_err(failed)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("{stem}.xlsx"),
        )),
        other => {
            check_format(other)?;
            Err(ApiError::Internal)
        }
    }
}

/// One statistics table as a CSV (UTF-8 with BOM, header row) or XLSX file; headers in the
/// request's language.
#[utoipa::path(get, path = "/api/v1/stats/export", tag = "stats", params(ExportQuery),
    responses((status = 200, description = "The CSV or XLSX file"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let lang = Lang::from_headers(&headers);
    check_format(&q.format)?;
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    let t = table(&state, &q.table, days, q.gate_id).await?;
    let stem = format!("gatehouse-{}-{}-{}", t.name, days.from, days.to);
    render(&t, &q.format, lang, &stem)
}

/// The security office's printable daily report: the day's flows by hour, vehicles on campus
/// now, visitors, overstays, denials and manual opens, with inline SVG charts; no script and no
/// external resource, with print CSS.
#[utoipa::path(get, path = "/api/v1/stats/daily-report", tag = "stats", params(DayQuery),
    responses((status = 200, description = "The report as an HTML page", content_type = "text/html"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn daily_report(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> ApiResult<Response> {
    let lang = Lang::from_headers(&headers);
    let day = one_day(state.site_tz, q.date.as_deref())?;
    let days = Days { from: day, to: day };
    let db = &state.db;
    let peaks = stats::peak_hours(db, days).await?;
    let occupancy = stats::occupancy(db).await?;
    let visitors = stats::visitors(db, days).await?;
    let overstays = stats::overstays(db, now_ms()).await?;
    let denials = stats::denials(db, days).await?;
    let opens = stats::manual_opens(db, days).await?;
    let html = report::render(
        lang,
        day,
        &report::Figures {
            peaks: &peaks,
            occupancy: &occupancy,
            visitors: &visitors,
            overstays: &overstays,
            denials: &denials,
            opens: &opens,
            tz: state.site_tz,
        },
    );
    let mut r = html.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // A page of its own: one inline <style>, no script, nothing loaded from anywhere.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ),
    );
    Ok(r)
}

/// The daily report's HTML and its SVG charts.
mod report {
    use super::*;

    pub(super) struct Figures<'a> {
        pub(super) peaks: &'a PeakHours,
        pub(super) occupancy: &'a Occupancy,
        pub(super) visitors: &'a [VisitorDay],
        pub(super) overstays: &'a [Overstay],
        pub(super) denials: &'a [DenialRow],
        pub(super) opens: &'a [ManualOpenRow],
        /// The site's time zone, for the times shown.
        pub(super) tz: Tz,
    }

    pub(super) fn esc(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    /// A bar chart: one group per label, one bar per series (at most two), values on top.
    pub(super) fn bars(labels: &[String], series: &[(&str, &[i64])]) -> String {
        let colours = ["#2b6cb0", "#dd6b20"];
        let max = series
            .iter()
            .flat_map(|(_, v)| v.iter())
            .copied()
            .max()
            .unwrap_or(0)
            .max(1);
        let group = 28.0_f64;
        let width = 40.0 + group * labels.len() as f64;
        let height = 180.0_f64;
        let base = 150.0_f64;
        let bar = (group - 6.0) / series.len().max(1) as f64;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
             width=\"{width}\" height=\"{height}\" role=\"img\">"
        );
        svg.push_str(&format!(
            "<line x1=\"30\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#444\"/>"
        ));
        for (i, label) in labels.iter().enumerate() {
            let x0 = 32.0 + group * i as f64;
            for (s, (_, values)) in series.iter().enumerate() {
                let v = values.get(i).copied().unwrap_or(0);
                let h = 130.0 * v as f64 / max as f64;
                let x = x0 + bar * s as f64;
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{v}</title></rect>",
                    base - h,
                    bar - 1.0,
                    colours[s % 2]
                ));
                if v > 0 {
                    svg.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"8\" text-anchor=\"middle\">{v}</text>",
                        x + bar / 2.0,
                        base - h - 2.0
                    ));
                }
            }
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
                x0 + (group - 6.0) / 2.0,
                base + 12.0,
                esc(label)
            ));
        }
        for (s, (name, _)) in series.iter().enumerate() {
            let y = 168.0;
            let x = 32.0 + 90.0 * s as f64;
            svg.push_str(&format!(
                "<rect x=\"{x}\" y=\"{}\" width=\"8\" height=\"8\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\" font-size=\"9\">{}</text>",
                y - 7.0,
                colours[s % 2],
                x + 11.0,
                esc(name)
            ));
        }
        svg.push_str("</svg>");
        svg
    }

    fn table_html(head: &[&str], rows: Vec<Vec<String>>, empty: &str) -> String {
        if rows.is_empty() {
            return format!("<p class=\"empty\">{}</p>", esc(empty));
        }
        let mut out = String::from("<table><thead><tr>");
        for h in head {
            out.push_str(&format!("<th>{}</th>", esc(h)));
        }
        out.push_str("</tr></thead><tbody>");
        for row in rows {
            out.push_str("<tr>");
            for c in row {
                out.push_str(&format!("<td>{}</td>", esc(&c)));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        out
    }

    pub(super) fn render(lang: Lang, day: NaiveDate, f: &Figures<'_>) -> String {
        let t = |zh: &'static str, en: &'static str| -> &'static str {
            match lang {
                Lang::Zh => zh,
                Lang::En => en,
            }
        };
        let weekday = [
            ("星期一", "Monday"),
            ("星期二", "Tuesday"),
            ("星期三", "Wednesday"),
            ("星期四", "Thursday"),
            ("星期五", "Friday"),
            ("星期六", "Saturday"),
            ("星期日", "Sunday"),
        ][day.weekday().num_days_from_monday() as usize];
        let entries: i64 = f.peaks.hours.iter().map(|h| h.entries).sum();
        let exits: i64 = f.peaks.hours.iter().map(|h| h.exits).sum();
        let visitor = f.visitors.first();
        let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
        let entry_values: Vec<i64> = f.peaks.hours.iter().map(|h| h.entries).collect();
        let exit_values: Vec<i64> = f.peaks.hours.iter().map(|h| h.exits).collect();
        let mut denial_by_reason: std::collections::BTreeMap<&str, i64> = Default::default();
        for d in f.denials {
            *denial_by_reason.entry(d.reason.as_str()).or_default() += d.denials;
        }
        let mut html = String::new();
        html.push_str(&format!(
            "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} {}</title>\
             <style>body{{font-family:sans-serif;margin:1.5em;color:#111}}h1{{font-size:1.4em}}\
             h2{{font-size:1.1em;border-bottom:1px solid #999;margin-top:1.2em}}\
             table{{border-collapse:collapse;margin:.4em 0}}td,th{{border:1px solid #999;padding:2px 8px;text-align:left}}\
             .figures td{{font-size:1.1em}}.empty{{color:#555}}svg{{max-width:100%;height:auto}}\
             @media print{{body{{margin:0}}section{{page-break-inside:avoid}}}}</style></head><body>",
            t("zh-CN", "en"),
            t("校园车辆通行日报", "Campus vehicle traffic daily report"),
            day
        ));
        html.push_str(&format!(
            "<h1>{} — {} {}</h1>",
            t("校园车辆通行日报", "Campus vehicle traffic daily report"),
            day,
            t(weekday.0, weekday.1)
        ));
        html.push_str(&format!(
            "<section><table class=\"figures\"><tr><th>{}</th><td>{entries}</td><th>{}</th><td>{exits}</td>\
             <th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td><th>{}</th><td>{}</td><th>{}</th><td>{}</td></tr></table></section>",
            t("入校", "Entries"),
            t("出校", "Exits"),
            t("当前在校车辆", "Vehicles on campus now"),
            f.occupancy.total,
            t("访客入校次数", "Visitor entries"),
            visitor.map_or(0, |v| v.entries),
            t("拒绝通行", "Denials"),
            f.denials.iter().map(|d| d.denials).sum::<i64>(),
            t("手动抬杆", "Manual opens"),
            f.opens.iter().map(|o| o.opens).sum::<i64>(),
        ));
        html.push_str(&format!(
            "<section><h2>{}</h2>{}<p>{}: {}</p></section>",
            t("分时段通行量", "Passages by hour"),
            bars(
                &hours,
                &[
                    (t("入校", "entries"), &entry_values),
                    (t("出校", "exits"), &exit_values)
                ]
            ),
            t("高峰时段", "Peak hours"),
            if f.peaks.peaks.is_empty() {
                t("无", "none").to_string()
            } else {
                f.peaks
                    .peaks
                    .iter()
                    .map(|h| format!("{h:02}:00–{h:02}:59"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        let cats: Vec<String> = f
            .occupancy
            .by_category
            .iter()
            .map(|c| c.category.clone())
            .collect();
        let cat_values: Vec<i64> = f.occupancy.by_category.iter().map(|c| c.vehicles).collect();
        html.push_str(&format!(
            "<section><h2>{}</h2>{}</section>",
            t(
                "当前在校车辆（按类别）",
                "Vehicles on campus now, by category"
            ),
            if cats.is_empty() {
                format!("<p class=\"empty\">{}</p>", t("无", "none"))
            } else {
                bars(&cats, &[(t("车辆", "vehicles"), &cat_values)])
            }
        ));
        html.push_str(&format!(
            "<section><h2>{}</h2>{}</section>",
            t("超时未离校访客", "Overstaying visitors"),
            table_html(
                &[
                    t("车牌", "Plate"),
                    t("入口大门", "Gate"),
                    t("进入时间", "Entered"),
                    t("应离开时间", "Expected to leave"),
                    t("超时（分钟）", "Overdue (min)"),
                ],
                f.overstays
                    .iter()
                    .map(|o| {
                        vec![
                            o.plate.clone().unwrap_or_default(),
                            o.gate_id.to_string(),
                            o.entered_at.map(|t| local(f.tz, t)).unwrap_or_default(),
                            local(f.tz, o.expected_leave_at),
                            o.overdue_minutes.to_string(),
                        ]
                    })
                    .collect(),
                t("无", "none"),
            )
        ));
        let reasons: Vec<String> = denial_by_reason.keys().map(|r| r.to_string()).collect();
        let reason_values: Vec<i64> = denial_by_reason.values().copied().collect();
        html.push_str(&format!(
            "<section><h2>{}</h2>{}{}</section>",
            t("拒绝通行（按原因）", "Denials by reason"),
            if reasons.is_empty() {
                String::new()
            } else {
                bars(&reasons, &[(t("次数", "denials"), &reason_values)])
            },
            table_html(
                &[t("大门", "Gate"), t("原因", "Reason"), t("次数", "Denials")],
                f.denials
                    .iter()
                    .map(|d| vec![
                        d.gate_id.to_string(),
                        d.reason.clone(),
                        d.denials.to_string()
                    ])
                    .collect(),
                t("无", "none"),
            )
        ));
        html.push_str(&format!(
            "<section><h2>{}</h2>{}</section>",
            t(
                "手动抬杆（按门卫与原因）",
                "Manual opens by guard and reason"
            ),
            table_html(
                &[
                    t("大门", "Gate"),
                    t("门卫", "Guard"),
                    t("原因", "Reason"),
                    t("次数", "Opens"),
                ],
                f.opens
                    .iter()
                    .map(|o| {
                        vec![
                            o.gate_id.to_string(),
                            o.operator.clone(),
                            o.reason.clone(),
                            o.opens.to_string(),
                        ]
                    })
                    .collect(),
                t("无", "none"),
            )
        ));
        html.push_str(&format!(
            "<footer><p>{} {}</p></footer></body></html>",
            t("生成时间", "Generated"),
            local(f.tz, chrono::Utc::now())
        ));
        html
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_flows))
        .routes(routes!(get_occupancy))
        .routes(routes!(get_overstays))
        .routes(routes!(get_visitors))
        .routes(routes!(get_denials))
        .routes(routes!(get_manual_opens))
        .routes(routes!(get_peak_hours))
        .routes(routes!(get_weekly))
        .routes(routes!(export))
        .routes(routes!(daily_report))
}
