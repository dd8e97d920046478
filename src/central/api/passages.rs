//! The checkpoint's records and the outside vehicles, for the booth and the security office:
//! - `GET /api/v1/passages` (+ `/export`): every vehicle a lane saw — plate fragment, time
//!   range, gate, outcome, outside vehicles only — with the read's photos and the guard's
//!   corrected plate. Guards see their own gates; the security office and administrators all.
//! - `GET /api/v1/outside-vehicles`: visits of outside vehicles (entry to exit, dwell, whether
//!   they came as visitors, overstays), for the security office.
//! - `GET /api/v1/stats/outside-vehicles` (+ `/export`): per day, gate, province of
//!   registration and dwell time, overstays and repeat visitors, for the security office.
//!
//! Times are RFC 3339, or `YYYY-MM-DDTHH:MM` / `YYYY-MM-DD` in the site's zone
//! (`server.timezone`); a `to` given as a date includes that whole day.
//!
//! What it never does: compute a figure from the events (the ingest keeps the visits,
//! [`crate::central::outside`]), or show a driver's name or phone (the visits hold none; the
//! booth registration is named by its id).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult, ErrorBody, Fields};
use super::extract::{ApiJson, ApiQuery, PageOf, PageQuery, paged};
use super::stats::{check_format, range, render};
use super::visits::parse_departure;
use crate::central::db::{Page, now_ms};
use crate::central::export::{Cell, Table};
use crate::central::repo::passages::{
    self, DEFAULT_OVERSTAY_HOURS, DWELL_BUCKETS, Outcome, OutsideQuery, OutsideStats, OutsideVisit,
    PassageItem, PassageQuery,
};
use crate::central::state::AppState;
use crate::i18n::{Lang, Msg};

/// The most rows one export carries; narrow the search for more.
pub const MAX_EXPORT_ROWS: i64 = 50_000;

/// `?plate=&from=&to=&gate_id=&outcome=&outside=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PassageSearch {
    /// Part of a plate (`A123`, `京A`), any spelling; matched anywhere in the plate.
    pub plate: Option<String>,
    /// RFC 3339, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD` (site time), inclusive.
    pub from: Option<String>,
    /// As `from`, exclusive (a date: through that day).
    pub to: Option<String>,
    pub gate_id: Option<i64>,
    /// `granted`, `denied`, `held` or `ignored` (a camera read the lane did not act on).
    pub outcome: Option<String>,
    /// Only outside vehicles.
    pub outside: Option<bool>,
    /// Only `decision`s, `plate_ignored` reads or `passage`s (default all three).
    pub kind: Option<String>,
}

/// `?format=` plus the search's filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `csv` (UTF-8 with BOM) or `xlsx`.
    pub format: String,
}

/// `?from=&to=&plate=&inside=&overstay=&overstay_hours=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutsideSearch {
    /// As in the passage search: visits that came in (or, entry unseen, went out) from then.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Part of a plate.
    pub plate: Option<String>,
    /// Only vehicles still inside.
    pub inside: Option<bool>,
    /// Only visits that overstayed.
    pub overstay: Option<bool>,
    /// How many hours an outside vehicle with no expected departure may stay (1–168, default 8).
    pub overstay_hours: Option<i64>,
}

/// `?from=&to=&min_visits=&overstay_hours=&table=`: site days, inclusive (default today).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutsideStatsQuery {
    /// First day, `YYYY-MM-DD` (default today).
    pub from: Option<String>,
    /// Last day, inclusive (default `from`).
    pub to: Option<String>,
    /// Visits in the range that make a repeat visitor (2–1000, default 3).
    pub min_visits: Option<i64>,
    /// As in the visit list (1–168, default 8).
    pub overstay_hours: Option<i64>,
    /// Exports only: `visits` (default), `per_day`, `per_gate`, `per_province`, `dwell` or
    /// `repeat_visitors`.
    pub table: Option<String>,
    /// Exports only: `csv` or `xlsx`.
    pub format: Option<String>,
}

/// A plate fragment as plates are stored: upper case, without separators.
fn plate_fragment(text: Option<&str>, f: &mut Fields) -> Option<String> {
    let text = text?;
    if text.chars().any(char::is_control) {
        f.add(
            "plate",
            "control_character",
            Msg::new(
                "车牌片段含有不可见的控制字符",
                "The plate fragment contains an invisible control character",
            ),
        );
        return None;
    }
    // Typed any way (full width, lower case, separators): normalised like a whole plate.
    let frag = crate::domain::plate::normalise_fragment(text);
    if frag.chars().count() > 12 {
        f.add(
            "plate",
            "too_long",
            Msg::new(
                "车牌片段最多 12 个字符",
                "A plate fragment is at most 12 characters",
            ),
        );
        return None;
    }
    Some(frag).filter(|f| !f.is_empty())
}

/// An instant: RFC 3339, `YYYY-MM-DDTHH:MM` or a date (its start; with `end`, the next day's
/// start) in the site's zone `tz`.
fn instant(tz: Tz, field: &str, text: Option<&str>, end: bool, f: &mut Fields) -> Option<i64> {
    let text = text?.trim();
    if let Some(t) = parse_departure(tz, text) {
        return Some(t);
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let d = if end { d.succ_opt() } else { Some(d) };
        if let Some(t) = d
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| tz.from_local_datetime(&t).earliest())
        {
            return Some(t.timestamp_millis());
        }
    }
    f.add(
        field,
        "invalid_time",
        Msg::new(
            format!("{field} 须为时间：RFC 3339、YYYY-MM-DDTHH:MM 或 YYYY-MM-DD（收到 {text:?}）"),
            format!(
                "{field} must be a time: RFC 3339, YYYY-MM-DDTHH:MM or YYYY-MM-DD (got {text:?})"
            ),
        ),
    );
    None
}

fn bounded(field: &str, v: Option<i64>, default: i64, lo: i64, hi: i64, f: &mut Fields) -> i64 {
    let v = v.unwrap_or(default);
    if !(lo..=hi).contains(&v) {
        f.add(
            field,
            "out_of_range",
            Msg::new(
                format!("{field} 须在 {lo}–{hi} 之间"),
                format!("{field} must be {lo}–{hi}"),
            ),
        );
    }
    v
}

/// The validated passage search for `authed` (a guard: their gates only; another gate is 403).
fn passage_query(state: &AppState, authed: &Authed, q: &PassageSearch) -> ApiResult<PassageQuery> {
    if let Some(gate) = q.gate_id
        && !authed.can_see_gate(gate)
    {
        return Err(ApiError::Forbidden);
    }
    let all_gates =
        authed.has(Role::Admin) || authed.has(Role::Security) || authed.has(Role::Viewer);
    let mut f = Fields::new();
    let plate = plate_fragment(q.plate.as_deref(), &mut f);
    let from_ms = instant(state.site_tz, "from", q.from.as_deref(), false, &mut f);
    let until_ms = instant(state.site_tz, "to", q.to.as_deref(), true, &mut f);
    let outcome = match q.outcome.as_deref() {
        None | Some("") => None,
        Some(code) => {
            let o = Outcome::from_code(code);
            if o.is_none() {
                f.add(
                    "outcome",
                    "unknown_outcome",
                    Msg::new(
                        format!("outcome 须为 granted、denied、held 或 ignored（收到 {code:?}）"),
                        format!("outcome must be granted, denied, held or ignored (got {code:?})"),
                    ),
                );
            }
            o
        }
    };
    let kind = match q.kind.as_deref() {
        None | Some("") => None,
        Some(k @ ("decision" | "plate_ignored" | "passage")) => Some(k.to_string()),
        Some(other) => {
            f.add(
                "kind",
                "unknown_kind",
                Msg::new(
                    format!("kind 须为 decision、plate_ignored 或 passage（收到 {other:?}）"),
                    format!("kind must be decision, plate_ignored or passage (got {other:?})"),
                ),
            );
            None
        }
    };
    f.finish()?;
    Ok(PassageQuery {
        kind,
        plate,
        from_ms,
        until_ms,
        gate_id: q.gate_id,
        only_gates: (!all_gates).then(|| authed.gates.clone()),
        outcome,
        outside_only: q.outside.unwrap_or(false),
    })
}

/// Search the vehicles the lanes saw, newest first.
#[utoipa::path(get, path = "/api/v1/passages", tag = "passages", params(PassageSearch, PageQuery),
    responses((status = 200, body = PageOf<PassageItem>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn search_passages(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(q): ApiQuery<PassageSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<PassageItem>>> {
    let query = passage_query(&state, &authed, &q)?;
    let page = p.page()?;
    Ok(ApiJson(paged(
        passages::search(&state.db, &query, page).await?,
        &p,
    )))
}

fn m(zh: &'static str, en: &'static str) -> Msg {
    Msg::new(zh, en)
}

fn local(tz: Tz, t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn photo_list(photos: &[crate::central::outside::PhotoBrief]) -> String {
    photos
        .iter()
        .map(|p| format!("{}:{}", p.kind, p.sha256))
        .collect::<Vec<_>>()
        .join(" ")
}

fn yes_no(lang: Lang, v: bool) -> String {
    match (lang, v) {
        (Lang::Zh, true) => "是".into(),
        (Lang::Zh, false) => "否".into(),
        (_, true) => "yes".into(),
        (_, false) => "no".into(),
    }
}

/// The passage search's matches (at most [`MAX_EXPORT_ROWS`]) as a CSV or XLSX file.
#[utoipa::path(get, path = "/api/v1/passages/export", tag = "passages",
    params(FormatQuery, PassageSearch),
    responses((status = 200, description = "The CSV or XLSX file"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn export_passages(
    State(state): State<AppState>,
    authed: Authed,
    headers: HeaderMap,
    ApiQuery(fmt): ApiQuery<FormatQuery>,
    ApiQuery(q): ApiQuery<PassageSearch>,
) -> ApiResult<Response> {
    let lang = Lang::from_headers(&headers);
    check_format(&fmt.format)?;
    let query = passage_query(&state, &authed, &q)?;
    let page = Page {
        limit: MAX_EXPORT_ROWS,
        offset: 0,
    };
    let found = passages::search(&state.db, &query, page).await?;
    let tz = state.site_tz;
    let table = Table {
        name: "passages",
        columns: vec![
            m("时间", "time"),
            m("大门", "gate"),
            m("车道", "lane"),
            m("方向", "direction"),
            m("记录类型", "kind"),
            m("凭证", "credential"),
            m("车牌", "plate"),
            m("更正车牌", "corrected plate"),
            m("车牌颜色", "colour"),
            m("放行", "granted"),
            m("原因", "reason"),
            m("持有人", "holder"),
            m("车辆类别", "category"),
            m("外来车辆", "outside"),
            m("置信度", "confidence"),
            m("照片", "photos"),
        ],
        rows: found
            .items
            .into_iter()
            .map(|i| {
                vec![
                    local(tz, i.at).into(),
                    i.gate_name.unwrap_or_else(|| i.gate_id.to_string()).into(),
                    i.lane.into(),
                    i.direction.into(),
                    i.kind.into(),
                    i.credential.into(),
                    i.plate.into(),
                    i.corrected_plate.into(),
                    i.colour.into(),
                    i.granted.map(|g| yes_no(lang, g)).into(),
                    i.reason.into(),
                    i.holder.into(),
                    i.category.into(),
                    yes_no(lang, i.outside).into(),
                    i.confidence.map(i64::from).into(),
                    Cell::Text(photo_list(&i.photos)),
                ]
            })
            .collect(),
    };
    render(&table, &fmt.format, lang, "gatehouse-passages")
}

/// The validated outside-vehicle visit search and its overstay threshold (ms).
fn outside_query(state: &AppState, q: &OutsideSearch) -> ApiResult<(OutsideQuery, i64)> {
    let mut f = Fields::new();
    let plate = plate_fragment(q.plate.as_deref(), &mut f);
    let from_ms = instant(state.site_tz, "from", q.from.as_deref(), false, &mut f);
    let until_ms = instant(state.site_tz, "to", q.to.as_deref(), true, &mut f);
    let hours = bounded(
        "overstay_hours",
        q.overstay_hours,
        DEFAULT_OVERSTAY_HOURS,
        1,
        168,
        &mut f,
    );
    f.finish()?;
    Ok((
        OutsideQuery {
            from_ms,
            until_ms,
            plate,
            inside_only: q.inside.unwrap_or(false),
            overstay_only: q.overstay.unwrap_or(false),
        },
        hours * 3_600_000,
    ))
}

/// Visits of outside vehicles, newest first.
#[utoipa::path(get, path = "/api/v1/outside-vehicles", tag = "passages",
    params(OutsideSearch, PageQuery),
    responses((status = 200, body = PageOf<OutsideVisit>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_outside(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OutsideSearch>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> ApiResult<ApiJson<PageOf<OutsideVisit>>> {
    let (query, threshold) = outside_query(&state, &q)?;
    let page = p.page()?;
    let found = passages::outside_visits(&state.db, &query, now_ms(), threshold, page).await?;
    Ok(ApiJson(paged(found, &p)))
}

/// The statistics' parameters: (days, overstay threshold ms, repeat visits).
fn stats_params(
    state: &AppState,
    q: &OutsideStatsQuery,
) -> ApiResult<(crate::central::repo::stats::Days, i64, i64)> {
    let days = range(state.site_tz, q.from.as_deref(), q.to.as_deref())?;
    let mut f = Fields::new();
    let hours = bounded(
        "overstay_hours",
        q.overstay_hours,
        DEFAULT_OVERSTAY_HOURS,
        1,
        168,
        &mut f,
    );
    let min_visits = bounded("min_visits", q.min_visits, 3, 2, 1000, &mut f);
    f.finish()?;
    Ok((days, hours * 3_600_000, min_visits))
}

/// Outside vehicles per day, gate, province of registration and dwell time; overstays; repeat
/// visitors.
#[utoipa::path(get, path = "/api/v1/stats/outside-vehicles", tag = "stats",
    params(OutsideStatsQuery),
    responses((status = 200, body = OutsideStats), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn outside_stats(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OutsideStatsQuery>,
) -> ApiResult<ApiJson<OutsideStats>> {
    let (days, threshold, min_visits) = stats_params(&state, &q)?;
    Ok(ApiJson(
        passages::outside_stats(&state.db, days, now_ms(), threshold, min_visits).await?,
    ))
}

/// One outside-vehicle table of the range (`table`, default the visits) as CSV or XLSX.
#[utoipa::path(get, path = "/api/v1/stats/outside-vehicles/export", tag = "stats",
    params(OutsideStatsQuery),
    responses((status = 200, description = "The CSV or XLSX file"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn export_outside(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<OutsideStatsQuery>,
) -> ApiResult<Response> {
    let lang = Lang::from_headers(&headers);
    let format = q.format.clone().unwrap_or_default();
    check_format(&format)?;
    let (days, threshold, min_visits) = stats_params(&state, &q)?;
    let db = &state.db;
    let now = now_ms();
    let tz = state.site_tz;
    let name = q.table.as_deref().unwrap_or("visits");
    let pick = |zh: Option<String>, en: Option<String>| match lang {
        Lang::Zh => zh,
        _ => en,
    };
    let table = if name == "visits" {
        let start = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| tz.from_local_datetime(&t).earliest())
                .map(|t| t.timestamp_millis())
        };
        let query = OutsideQuery {
            from_ms: start(days.from),
            until_ms: days.to.succ_opt().and_then(start),
            ..OutsideQuery::default()
        };
        let page = Page {
            limit: MAX_EXPORT_ROWS,
            offset: 0,
        };
        let found = passages::outside_visits(db, &query, now, threshold, page).await?;
        Table {
            name: "outside_vehicles",
            columns: vec![
                m("车牌", "plate"),
                m("车牌颜色", "colour"),
                m("归属地", "province"),
                m("入口大门", "gate in"),
                m("入场时间", "in"),
                m("出口大门", "gate out"),
                m("离场时间", "out"),
                m("停留（分钟）", "stay (min)"),
                m("访客", "visitor"),
                m("登记编号", "registration"),
                m("超时", "overstay"),
            ],
            rows: found
                .items
                .into_iter()
                .map(|v| {
                    vec![
                        v.plate.into(),
                        v.colour.into(),
                        pick(v.province_zh, v.province_en)
                            .unwrap_or(v.province)
                            .into(),
                        v.gate_in_name.or(v.gate_in.map(|g| g.to_string())).into(),
                        v.at_in.map(|t| local(tz, t)).into(),
                        v.gate_out_name.or(v.gate_out.map(|g| g.to_string())).into(),
                        v.at_out.map(|t| local(tz, t)).into(),
                        v.dwell_s.map(|s| s / 60).into(),
                        yes_no(lang, v.visitor).into(),
                        v.visit_id.into(),
                        yes_no(lang, v.overstay).into(),
                    ]
                })
                .collect(),
        }
    } else {
        let s = passages::outside_stats(db, days, now, threshold, min_visits).await?;
        match name {
            "per_day" => Table {
                name: "outside_per_day",
                columns: vec![
                    m("日期", "day"),
                    m("车辆数", "vehicles"),
                    m("到访次数", "visits"),
                    m("访客到访", "visitor visits"),
                ],
                rows: s
                    .per_day
                    .into_iter()
                    .map(|d| {
                        vec![
                            d.day.into(),
                            d.vehicles.into(),
                            d.visits.into(),
                            d.visitors.into(),
                        ]
                    })
                    .collect(),
            },
            "per_gate" => Table {
                name: "outside_per_gate",
                columns: vec![m("大门", "gate"), m("到访次数", "visits")],
                rows: s
                    .per_gate
                    .into_iter()
                    .map(|g| {
                        vec![
                            g.gate_name.unwrap_or_else(|| g.gate_id.to_string()).into(),
                            g.visits.into(),
                        ]
                    })
                    .collect(),
            },
            "per_province" => Table {
                name: "outside_per_province",
                columns: vec![m("归属地", "province"), m("到访次数", "visits")],
                rows: s
                    .per_province
                    .into_iter()
                    .map(|p| {
                        vec![
                            pick(p.name_zh, p.name_en).unwrap_or(p.province).into(),
                            p.visits.into(),
                        ]
                    })
                    .collect(),
            },
            "dwell" => Table {
                name: "outside_dwell",
                columns: vec![m("停留时长", "stay"), m("到访次数", "visits")],
                rows: s
                    .dwell
                    .into_iter()
                    .map(|b| {
                        let label = DWELL_BUCKETS
                            .iter()
                            .find(|(code, ..)| *code == b.bucket)
                            .map(|(_, _, zh, en)| Msg::new(*zh, *en).get(lang).to_string())
                            .unwrap_or(b.bucket);
                        vec![label.into(), b.visits.into()]
                    })
                    .collect(),
            },
            "repeat_visitors" => Table {
                name: "outside_repeat_visitors",
                columns: vec![m("车牌", "plate"), m("到访次数", "visits")],
                rows: s
                    .repeat_visitors
                    .into_iter()
                    .map(|r| vec![r.plate.into(), r.visits.into()])
                    .collect(),
            },
            other => {
                let mut f = Fields::new();
                f.add(
                    "table",
                    "unknown_table",
                    Msg::new(
                        format!(
                            "table 须为 visits、per_day、per_gate、per_province、dwell 或 \
                             repeat_visitors（收到 {other:?}）"
                        ),
                        format!(
                            "table must be visits, per_day, per_gate, per_province, dwell or \
                             repeat_visitors (got {other:?})"
                        ),
                    ),
                );
                f.finish()?;
                return Err(ApiError::Internal);
            }
        }
    };
    let stem = format!("gatehouse-{}-{}-{}", table.name, days.from, days.to);
    render(&table, &format, lang, &stem)
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_passages))
        .routes(routes!(export_passages))
        .routes(routes!(list_outside))
        .routes(routes!(outside_stats))
        .routes(routes!(export_outside))
}
