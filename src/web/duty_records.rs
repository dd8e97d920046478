//! `/office/duty`: the duty records (值班记录) the security office reads — who was on duty at
//! which gate, from when to when, for how long, with each duty's shift report — filtered by
//! gate and by date (the site's calendar days). Beside the office page because checking the
//! booths' attendance is the office's work, not the booths'.
//!
//! What it never does: change a record (duties start and end only by the guards' sign-in and
//! sign-off), or show a user name.

use axum::Extension;
use axum::extract::{Query, State};
use chrono::{Duration, NaiveDate};
use maud::{Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::layout::{Nav, page as frame};
use super::names::Names;
use super::shift::{duration, paper_time};
use crate::central::db::now_ms;
use crate::central::repo::duty::{self, DutyQuery};
use crate::central::state::AppState;
use crate::central::traffic::day_start_ms;
use crate::i18n::t;

/// Rows shown at most.
const LIMIT: i64 = 200;

/// The filter, as the form sends it (empty fields: no filter).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub gate: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

fn date(text: Option<&str>) -> Result<Option<NaiveDate>, ()> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ()),
    }
}

/// `GET /office/duty`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<Filter>,
) -> Result<Markup, super::PageError> {
    let lang = viewer.lang;
    let gates = super::console::visible_gates(&state, &viewer).await?;
    let gate_id = f.gate.as_deref().and_then(|g| g.trim().parse::<i64>().ok());
    let (from, to) = (date(f.from.as_deref()), date(f.to.as_deref()));
    let bad_date = from.is_err() || to.is_err();
    let (from, to) = (from.unwrap_or(None), to.unwrap_or(None));
    let q = DutyQuery {
        gate_id,
        from_ms: from.map(|d| day_start_ms(state.site_tz, d)),
        until_ms: to.map(|d| day_start_ms(state.site_tz, d + Duration::days(1))),
    };
    let records = duty::list(&state.db, q, LIMIT).await?;
    let names = Names::load(&state.db).await?;
    let now = now_ms();
    let gate_name = |id: i64| {
        gates
            .iter()
            .find(|g| g.id == id)
            .map_or_else(|| id.to_string(), |g| g.name_in(lang).to_string())
    };
    Ok(frame(
        &viewer,
        t(lang, "值班记录", "Duty records"),
        Nav::Office,
        None,
        html! {
            link rel="stylesheet" href="/assets/paper.css";
            main.paper.duty-records {
                h1 { (t(lang, "值班记录", "Duty records")) }
                form.filters.no-print method="get" action="/office/duty" {
                    div.field {
                        label for="f-gate" { (t(lang, "大门", "Gate")) }
                        select id="f-gate" name="gate" {
                            option value="" { (t(lang, "全部大门", "All gates")) }
                            @for g in &gates { option value=(g.id) selected[gate_id == Some(g.id)] { (g.name_in(lang)) } }
                        }
                    }
                    div.field {
                        label for="f-from" { (t(lang, "自", "From")) }
                        input id="f-from" name="from" type="date" value=[from.map(|d| d.to_string())];
                    }
                    div.field {
                        label for="f-to" { (t(lang, "至", "To")) }
                        input id="f-to" name="to" type="date" value=[to.map(|d| d.to_string())];
                    }
                    button type="submit" { (t(lang, "查询", "Show")) }
                }
                @if bad_date { p.error role="alert" { (t(lang, "日期格式应为 年-月-日，已忽略", "A date must be YYYY-MM-DD; it was ignored")) } }
                table id="duty-records" {
                    thead { tr {
                        th scope="col" { (t(lang, "门卫", "Guard")) }
                        th scope="col" { (t(lang, "大门", "Gate")) }
                        th scope="col" { (t(lang, "上岗", "From")) }
                        th scope="col" { (t(lang, "下岗", "To")) }
                        th scope="col" { (t(lang, "时长", "Duration")) }
                        th scope="col" { (t(lang, "交班报表", "Shift report")) }
                    } }
                    tbody {
                        @for d in &records {
                            @let start = d.started_at.timestamp_millis();
                            @let end = d.ended_at.map(|e| e.timestamp_millis());
                            tr data-duty=(d.id) data-gate=(d.gate_id) {
                                td { (names.of_id(d.operator_id).unwrap_or(names.of(&d.operator_name))) }
                                td { (gate_name(d.gate_id)) }
                                td { (paper_time(state.site_tz, start)) }
                                td { @match end { Some(e) => { (paper_time(state.site_tz, e)) } None => { strong { (t(lang, "值班中", "On duty")) } } } }
                                td { (duration(lang, end.unwrap_or(now) - start)) }
                                td { a href={ "/console/shift/" (d.id) } { (t(lang, "查看", "Open")) } }
                            }
                        }
                        @if records.is_empty() { tr { td colspan="6" { (t(lang, "没有符合条件的值班记录", "No duty record matches")) } } }
                    }
                }
                @if records.len() as i64 == LIMIT { p.meta { (t(lang, "仅显示最近 200 条，请缩小日期范围", "Only the latest 200 are shown: narrow the dates")) } }
            }
        },
    ))
}
