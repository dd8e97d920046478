//! `/passages`: the passage search (通行记录查询) for guards, the security office and
//! administrators — filters by plate (a fragment), time range, gate, outcome and outside
//! vehicles only; results with the camera's photos as thumbnails (a click opens the full size),
//! a corrected plate beside the camera's read (and the form to correct it), pages, and CSV/XLSX
//! export links.
//!
//! The page is the form and an empty result table; the page's script reads the filters from the
//! address, asks `GET /api/v1/passages` with them (the API scopes a guard to their own gates and
//! uses the corrected plate) and draws the rows with DOM calls (no HTML from data). The labels
//! the rows need (reasons, directions, categories) travel in the page as data attributes.
//!
//! What it never does: query the database for the results itself (the API's scoping and
//! validation apply, as for any client), or change anything.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::Viewer;
use super::layout::{Nav, page as frame};
use crate::central::repo::gates::{Gate, Lane};
use crate::central::state::AppState;
use crate::i18n::{Lang, category_label, direction_label, reason_label, t};

/// The filters as the form sends them (the page echoes them back into the form; the script
/// reads them from the address itself). Anything else in the address is ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    plate: Option<String>,
    from: Option<String>,
    to: Option<String>,
    gate_id: Option<String>,
    outcome: Option<String>,
    outside: Option<String>,
}

/// Reason codes whose labels the rows may need.
const REASONS: &[&str] = &[
    "granted",
    "granted_visitor",
    "denied_blacklisted",
    "denied_expired",
    "denied_not_yet_valid",
    "denied_suspended",
    "denied_revoked",
    "denied_wrong_gate",
    "denied_wrong_direction",
    "denied_outside_schedule",
    "denied_single_use_consumed",
    "denied_passback",
    "denied_permit_quota",
    "denied_locked_vehicle",
    "denied_tag_tid_mismatch",
    "denied_no_permit",
    "denied_visitor_outside_slot",
    "denied_visitor_not_approved",
    "denied_unknown_tag",
    "denied_unknown_plate",
    "denied_lane_locked",
    "guard_open",
    "opened_for_evacuation",
    "denied_plate_mismatch",
    "held_low_confidence",
    "granted_pass",
    "denied_pass_malformed",
    "denied_pass_forged",
    "denied_pass_not_yet_valid",
    "denied_pass_expired",
    "denied_pass_wrong_gate",
    "denied_pass_wrong_direction",
    "denied_pass_used",
    "denied_pass_revoked",
    "denied_pass_plate_mismatch",
];

const CATEGORIES: &[&str] = &[
    "staff",
    "student",
    "family",
    "contractor",
    "official",
    "visitor",
];

/// The words the page's script puts into the rows, as one JSON object: with the gates' and
/// lanes' names in `lang` (`gates`: by id; `lanes`: by `gate_id/lane_key`).
fn labels(lang: Lang, gates: &[Gate], lanes: &[Lane]) -> String {
    let map = |codes: &[&str], f: &dyn Fn(&str) -> String| -> serde_json::Map<_, _> {
        codes
            .iter()
            .map(|c| (c.to_string(), serde_json::Value::String(f(c))))
            .collect()
    };
    let gate_names: serde_json::Map<_, _> = gates
        .iter()
        .map(|g| (g.id.to_string(), g.name_in(lang).into()))
        .collect();
    let lane_names: serde_json::Map<_, _> = lanes
        .iter()
        .map(|l| {
            (
                format!("{}/{}", l.gate_id, l.lane_key),
                l.name_in(lang).into(),
            )
        })
        .collect();
    serde_json::json!({
        "gates": gate_names,
        "lanes": lane_names,
        "reasons": map(REASONS, &|c| reason_label(lang, c)),
        "categories": map(CATEGORIES, &|c| category_label(lang, c)),
        "directions": map(&["entry", "exit"], &|c| direction_label(lang, c).to_string()),
        "granted": t(lang, "放行", "Granted"),
        "denied": t(lang, "禁止", "Denied"),
        "held": t(lang, "待确认", "Held"),
        "outside": t(lang, "校外车辆", "Outside vehicle"),
        "readAs": t(lang, "原识别 ", "read as "),
        "uploading": t(lang, "照片上传中…", "Photo uploading…"),
        "plateKind": t(lang, "车牌特写", "Plate close-up"),
        "sceneKind": t(lang, "场景图", "Scene"),
        "none": t(lang, "没有符合条件的通行记录", "No passages match"),
        "total": t(lang, "共 {n} 条", "{n} passages"),
        "page": t(lang, "第 {p} / {n} 页", "Page {p} of {n}"),
        "prev": t(lang, "上一页", "Previous"),
        "next": t(lang, "下一页", "Next"),
        "failed": t(lang, "查询失败：", "Search failed: "),
        "loading": t(lang, "查询中…", "Searching…"),
        "correct": t(lang, "更正车牌", "Correct the plate"),
        "correctPlate": t(lang, "正确车牌", "Correct plate"),
        "note": t(lang, "说明", "Note"),
        "save": t(lang, "保存更正", "Save correction"),
        "corrected": t(lang, "车牌已更正", "Plate corrected"),
    })
    .to_string()
}

/// `GET /passages`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    filters: Result<Query<Filters>, QueryRejection>,
) -> Result<Markup, super::PageError> {
    let lang = viewer.lang;
    // A malformed address shows the empty form (the script reports what the API says).
    let f = filters.map(|Query(f)| f).unwrap_or_default();
    let gates = super::console::visible_gates(&state, &viewer).await?;
    let lanes = crate::central::repo::gates::all_lanes(&state.db).await?;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let outcome = value(&f.outcome);
    let gate = value(&f.gate_id);
    // The alarm button (F9) stays within reach on every booth page.
    let alarm = super::console::alarm_gate(&state, &viewer, &gates).await;
    Ok(frame(
        &viewer,
        t(lang, "通行记录查询", "Passage search"),
        Nav::Passages,
        alarm,
        html! {
            main.passages data-api="/api/v1/passages" data-labels=(labels(lang, &gates, &lanes)) {
                h1 { (t(lang, "通行记录查询", "Passage search")) }
                form id="passage-filters" method="get" action="/passages" {
                    div.field {
                        label for="f-plate" { (t(lang, "车牌（可输入部分）", "Plate (or part of it)")) }
                        input id="f-plate" name="plate" value=(value(&f.plate)) maxlength="12" autocomplete="off";
                    }
                    div.field {
                        label for="f-from" { (t(lang, "开始时间", "From")) }
                        input id="f-from" name="from" type="datetime-local" value=(value(&f.from));
                    }
                    div.field {
                        label for="f-to" { (t(lang, "结束时间", "To")) }
                        input id="f-to" name="to" type="datetime-local" value=(value(&f.to));
                    }
                    div.field {
                        label for="f-gate" { (t(lang, "大门", "Gate")) }
                        select id="f-gate" name="gate_id" {
                            option value="" { (t(lang, "全部大门", "All gates")) }
                            @for g in &gates {
                                option value=(g.id) selected[gate == g.id.to_string()] { (g.name_in(lang)) }
                            }
                        }
                    }
                    div.field {
                        label for="f-outcome" { (t(lang, "结果", "Outcome")) }
                        select id="f-outcome" name="outcome" {
                            option value="" { (t(lang, "全部", "Any")) }
                            option value="granted" selected[outcome == "granted"] { (t(lang, "放行", "Granted")) }
                            option value="denied" selected[outcome == "denied"] { (t(lang, "禁止", "Denied")) }
                            option value="held" selected[outcome == "held"] { (t(lang, "待确认（低置信度）", "Held (low confidence)")) }
                        }
                    }
                    div.field.check {
                        input id="f-outside" name="outside" type="checkbox" value="true" checked[f.outside.as_deref() == Some("true")];
                        label for="f-outside" { (t(lang, "只看校外车辆", "Outside vehicles only")) }
                    }
                    div.buttons {
                        button.primary type="submit" { (t(lang, "查询", "Search")) }
                        a href="/passages" { (t(lang, "清除条件", "Clear")) }
                    }
                }
                div.exports {
                    (t(lang, "导出当前条件：", "Export these results: "))
                    a id="export-csv" href="/api/v1/passages/export?format=csv" { "CSV" }
                    " · "
                    a id="export-xlsx" href="/api/v1/passages/export?format=xlsx" { "Excel (XLSX)" }
                }
                p id="passage-status" role="status" {}
                table id="passage-results" {
                    caption.sr-only { (t(lang, "通行记录", "Passages")) }
                    thead { tr {
                        th scope="col" { (t(lang, "时间", "Time")) }
                        th scope="col" { (t(lang, "大门 / 车道", "Gate / lane")) }
                        th scope="col" { (t(lang, "方向", "Direction")) }
                        th scope="col" { (t(lang, "车牌", "Plate")) }
                        th scope="col" { (t(lang, "照片", "Photos")) }
                        th scope="col" { (t(lang, "结果", "Outcome")) }
                        th scope="col" { (t(lang, "车主 / 类别", "Holder / category")) }
                    } }
                    tbody {}
                }
                nav id="passage-pages" aria-label=(t(lang, "翻页", "Pages")) {}
            }
        },
    ))
}
