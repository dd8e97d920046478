//! `/admin/vehicles`: registered vehicles — search by plate (any spelling: `京a·123` finds
//! 京A12345), filter by type or owner, a page at a time; the security office registers vehicles
//! here (`POST /api/v1/vehicles`).
//!
//! What it never does: store a plate itself (the API normalises and checks it).

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::{
    OFFICE, PLATE_COLOURS, allowed, field, frame, given, label_of, options, page_number, page_of,
    pager, status_line,
};
use crate::central::repo::vehicles::{self, VehicleSearch};
use crate::central::state::AppState;
use crate::domain::plate::normalise_fragment;
use crate::i18n::{Lang, t};
use crate::web::{PageError, Viewer};

/// Vehicle types (`repo::vehicles::VEHICLE_TYPES`): (code, zh-CN, English).
pub const TYPES: &[(&str, &str, &str)] = &[
    ("car", "小型汽车", "Car"),
    ("suv", "SUV", "SUV"),
    ("van", "面包车", "Van"),
    ("truck", "货车", "Truck"),
    ("bus", "客车", "Bus"),
    ("motorcycle", "摩托车", "Motorcycle"),
    ("other", "其他", "Other"),
];

/// `?plate=&vehicle_type=&owner_id=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    plate: Option<String>,
    vehicle_type: Option<String>,
    owner_id: Option<String>,
    page: Option<String>,
}

fn type_label(lang: Lang, code: &str) -> String {
    label_of(lang, TYPES, code)
}

/// `GET /admin/vehicles`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(p): Query<Params>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let number = page_number(p.page.as_deref());
    let found = vehicles::search(
        &state.db,
        &VehicleSearch {
            plate: given(&p.plate).map(|s| normalise_fragment(&s)),
            owner_id: given(&p.owner_id).and_then(|s| s.parse().ok()),
            vehicle_type: given(&p.vehicle_type),
        },
        page_of(number),
    )
    .await?;
    let body = html! {
        section.panel aria-labelledby="find-title" {
            h2 id="find-title" { (t(lang, "查找车辆", "Find vehicles")) }
            form.search method="get" role="search" {
                (field("plate", "plate", t(lang, "车牌（可输入部分）", "Plate (part is fine)"), html! { input id="plate" name="plate" value=[p.plate.as_deref()] autocomplete="off" placeholder="京A1"; }))
                (field("vehicle_type", "vehicle_type", t(lang, "车辆类型", "Type"), html! { select id="vehicle_type" name="vehicle_type" { (options(lang, TYPES, p.vehicle_type.as_deref(), Some(t(lang, "全部", "All")))) } }))
                (field("owner_id", "owner_id", t(lang, "车主编号", "Owner no."), html! { input id="owner_id" name="owner_id" inputmode="numeric" value=[p.owner_id.as_deref()]; }))
                button.primary type="submit" { (t(lang, "查询", "Search")) }
            }
            table.data id="vehicles" {
                thead { tr {
                    th.num scope="col" { (t(lang, "编号", "No.")) }
                    th scope="col" { (t(lang, "车牌", "Plate")) }
                    th scope="col" { (t(lang, "颜色", "Colour")) }
                    th scope="col" { (t(lang, "类型", "Type")) }
                    th scope="col" { (t(lang, "车主", "Owner")) }
                    th scope="col" { (t(lang, "备注", "Note")) }
                } }
                tbody {
                    @if found.items.is_empty() { tr { td colspan="6" { (t(lang, "没有符合条件的车辆", "No vehicle matches")) } } }
                    @for v in &found.items {
                        tr data-vehicle=(v.id) {
                            td.num { (v.id) }
                            td.plate { (v.plate) }
                            td { (label_of(lang, PLATE_COLOURS, &v.plate_colour)) }
                            td { (type_label(lang, &v.vehicle_type)) }
                            td { @if let Some(o) = v.owner_id { (v.owner_name.clone().unwrap_or_default()) " (#" (o) ")" } }
                            td { (v.note) }
                        }
                    }
                }
            }
            (pager(lang, "/admin/vehicles", &[("plate", p.plate.clone()), ("vehicle_type", p.vehicle_type.clone()), ("owner_id", p.owner_id.clone())], number, found.total))
        }
        @if allowed(&viewer, OFFICE) {
            section.panel aria-labelledby="add-title" {
                h2 id="add-title" { (t(lang, "登记车辆", "Register a vehicle")) }
                form.grid id="vehicle-form" data-url="/api/v1/vehicles" data-reload novalidate {
                    (field("v-plate", "plate", t(lang, "车牌号", "Plate"), html! { input id="v-plate" name="plate" required autocomplete="off" placeholder="京A12345"; }))
                    (field("v-colour", "plate_colour", t(lang, "车牌颜色", "Plate colour"), html! { select id="v-colour" name="plate_colour" { (options(lang, PLATE_COLOURS, Some("blue"), None)) } }))
                    (field("v-type", "vehicle_type", t(lang, "车辆类型", "Type"), html! { select id="v-type" name="vehicle_type" { (options(lang, TYPES, Some("car"), None)) } }))
                    (field("v-owner", "owner_id", t(lang, "车主编号（人员编号）", "Owner (person no.)"), html! { input id="v-owner" name="owner_id" data-type="number" inputmode="numeric" required; }))
                    (field("v-note", "note", t(lang, "备注", "Note"), html! { input id="v-note" name="note" autocomplete="off"; }))
                    div.buttons { button.primary type="submit" { (t(lang, "保存", "Save")) } }
                    (status_line())
                }
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin/vehicles",
        t(lang, "车辆", "Vehicles"),
        body,
    ))
}
