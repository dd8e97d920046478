//! `/console/visitors`: registering an outside vehicle in one form (province picker + plate,
//! driver, phone, host and department, purpose, expected departure, gate and lane), finding a
//! pre-booked visitor by plate (with near-match suggestions), and the visitors on campus now —
//! overstays first — with the button that closes a visit when the vehicle leaves.
//!
//! The guard's booth is the context: once the guard is signed in on duty
//! ([`duty::current`]), that booth's entry lanes are listed first and the first of them is
//! chosen; a guard not on duty is told to sign in first (with the site setting
//! `require_duty_for_open`, the API refuses them). The province picker starts at the site's
//! province (`settings.province`). Right after a registration, and on every row of the
//! visitors on campus, a link prints the visitor's slip (临时通行单).
//!
//! What it never does: register or open on a suggestion (a suggestion only fills the search
//! box), or save anything itself (the form posts to `POST /api/v1/visits`).

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::Viewer;
use super::layout::{Nav, local_input, local_time, page as frame};
use crate::central::api::auth::Role;
use crate::central::repo::bookings::BookingStatus;
use crate::central::repo::{duty, gates, settings, visits};
use crate::central::state::AppState;
use crate::domain::plate::PROVINCES as PROVINCE_CHARS;
use crate::i18n::{Lang, direction_label, t};

/// How long after a registration the page offers that visitor's slip at the top of the form.
const JUST_REGISTERED_MS: i64 = 10 * 60_000;

/// The address of a visit's printable slip (临时通行单).
pub fn slip_url(visit_id: i64) -> String {
    format!("/console/visitors/{visit_id}/slip")
}

/// The bookings' statuses in words, for the look-up's results (`{"approved": "已批准", …}`).
fn booking_statuses(lang: Lang) -> String {
    let map: serde_json::Map<String, serde_json::Value> = BookingStatus::ALL
        .iter()
        .map(|s| {
            let (zh, en) = s.label();
            (s.as_str().to_string(), t(lang, zh, en).into())
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn field(lang: Lang, id: &str, zh: &'static str, en: &'static str, input: Markup) -> Markup {
    html! {
        div.field {
            label for=(id) { (t(lang, zh, en)) }
            (input)
            span.error data-error-for=(id) {}
        }
    }
}

/// `GET /console/visitors`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, super::PageError> {
    let lang = viewer.lang;
    let gates = super::console::visible_gates(&state, &viewer).await?;
    let site = settings::load(&state.db).await?;
    let on_duty = duty::current(&state.db, viewer.authed.operator_id)
        .await?
        .map(|d| d.gate_id)
        .filter(|g| gates.iter().any(|x| x.id == *g));
    // Entry lanes, the booth's (where the guard is on duty) first: its first lane is the default.
    let mut booth_lanes = Vec::new();
    let mut other_lanes = Vec::new();
    for g in &gates {
        for l in gates::lanes(&state.db, g.id).await? {
            if l.direction == "exit" {
                continue;
            }
            if Some(g.id) == on_duty {
                booth_lanes.push((g.clone(), l));
            } else {
                other_lanes.push((g.clone(), l));
            }
        }
    }
    let booth_name = on_duty
        .and_then(|id| gates.iter().find(|g| g.id == id))
        .map(|g| g.name_in(lang).to_string());
    // Only a guard needs a booth: administrators and the security office act anywhere.
    let needs_duty = !(viewer.authed.has(Role::Admin) || viewer.authed.has(Role::Security));
    let ids: Vec<i64> = gates.iter().map(|g| g.id).collect();
    let open = visits::open(&state.db, Some(&ids)).await?;
    let overstays: Vec<&visits::Visit> = open.iter().filter(|v| v.overstay).collect();
    let just_registered = visits::latest_registered_by(
        &state.db,
        viewer.authed.operator_id,
        crate::central::db::now_ms() - JUST_REGISTERED_MS,
    )
    .await?;
    let default_departure = local_input(
        state.site_tz,
        chrono::Utc::now() + chrono::Duration::hours(2),
    );
    let lane_option = |g: &gates::Gate, l: &gates::Lane| {
        html! {
            option value={ (g.id) "/" (l.lane_key) } { (g.name_in(lang)) " · " (l.name_in(lang)) " (" (direction_label(lang, &l.direction)) ")" }
        }
    };
    let alarm = super::console::alarm_gate(&state, &viewer, &gates).await;
    Ok(frame(
        &viewer,
        t(lang, "访客登记", "Visitor registration"),
        Nav::Visitors,
        alarm,
        html! {
            main.visitors {
                section.lookup aria-labelledby="lookup-title" {
                    h2 id="lookup-title" { (t(lang, "查找预约 / 车牌", "Find a booking / plate")) }
                    form id="lookup-form" role="search" {
                        label for="lookup" { (t(lang, "车牌（可输入部分）", "Plate (part is fine)")) }
                        input id="lookup" name="q" autocomplete="off" placeholder="京A1234";
                        button type="submit" { (t(lang, "查找", "Find")) }
                    }
                    div id="lookup-result" aria-live="polite"
                        data-none=(t(lang, "没有找到预约", "No booking found"))
                        data-use=(t(lang, "按此预约登记", "Register from this booking"))
                        data-near=(t(lang, "相近车牌（仅供核对，不会自动放行）：", "Similar plates (to check only; nothing opens on them):"))
                        data-statuses=(booking_statuses(lang)) {}
                }
                section.register aria-labelledby="register-title" {
                    h2 id="register-title" { (t(lang, "外来车辆登记", "Register a visitor vehicle")) }
                    @if let Some(name) = &booth_name {
                        p.duty-context id="duty-context" data-gate=[on_duty] {
                            (t(lang, "当前岗亭：", "Your booth: ")) strong { (name) }
                            (t(lang, "（已签到上岗，默认使用本岗亭车道）", " (on duty; its lanes come first)"))
                        }
                    } @else if needs_duty {
                        p.duty-hint.warn id="duty-hint" role="note" {
                            @if site.require_duty_for_open {
                                (t(lang, "您尚未签到上岗：请先在", "You are not on duty: sign in on the "))
                                a href="/console" { (t(lang, "岗亭控制台", "booth console")) }
                                (t(lang, "签到。未签到不能登记放行或手动抬杆。", " first. Until then you may not register-and-open or open by hand."))
                            } @else {
                                (t(lang, "您尚未签到上岗：在", "You are not on duty: sign in on the "))
                                a href="/console" { (t(lang, "岗亭控制台", "booth console")) }
                                (t(lang, "签到后，登记默认使用本岗亭的车道。", " and registrations default to your booth's lanes."))
                            }
                        }
                    }
                    @if let Some(v) = &just_registered {
                        p.just-registered.form-status.ok id="just-registered" role="status" {
                            (t(lang, "刚登记：", "Just registered: ")) strong.plate { (v.plate) } " · " (v.driver_name) " · "
                            a.slip href=(slip_url(v.id)) { (t(lang, "打印临时通行单", "Print the visitor slip")) }
                        }
                    }
                    form id="visit-form" data-api="/api/v1/visits" data-reload-after="1500" novalidate {
                        input type="hidden" name="booking_id" id="booking_id" data-type="number";
                        div.field.plate {
                            label for="plate" { (t(lang, "车牌号", "Plate")) }
                            div.plate-input {
                                label.sr-only for="province" { (t(lang, "省份简称", "Province")) }
                                select id="province" name="province" {
                                    @for p in PROVINCE_CHARS { option value=(p) selected[p.to_string() == site.province] { (p) } }
                                    option value="" { (t(lang, "其他（军警等）", "other (army, police)")) }
                                }
                                input id="plate" name="plate" required autocomplete="off" maxlength="10"
                                    placeholder="A12345" aria-describedby="plate-help" autofocus;
                            }
                            small id="plate-help" { (t(lang, "选择省份后输入其余字符；全角、小写、空格和“·”均可；已输入省份简称时以输入为准", "Pick the province, then type the rest; full-width, lower case, spaces and “·” are fine; a province typed first wins")) }
                            span.error data-error-for="plate" {}
                        }
                        (field(lang, "driver_name", "驾驶人姓名", "Driver's name", html! { input id="driver_name" name="driver_name" required autocomplete="off"; }))
                        (field(lang, "driver_phone", "手机号", "Phone", html! { input id="driver_phone" name="driver_phone" type="tel" required autocomplete="off" placeholder="13812345678"; }))
                        (field(lang, "host_name", "被访人", "Host", html! { input id="host_name" name="host_name" required autocomplete="off"; }))
                        (field(lang, "department", "被访部门", "Department", html! { input id="department" name="department" required autocomplete="off"; }))
                        (field(lang, "purpose", "来访事由", "Purpose", html! { input id="purpose" name="purpose" required autocomplete="off"; }))
                        (field(lang, "expected_departure", "预计离开时间", "Expected departure", html! {
                            input id="expected_departure" name="expected_departure" type="datetime-local" required value=(default_departure);
                        }))
                        div.field {
                            label for="lane" { (t(lang, "进入车道", "Entry lane")) }
                            select id="lane" name="lane_choice" required {
                                @if let Some(name) = &booth_name {
                                    @if !booth_lanes.is_empty() {
                                        optgroup label=(format!("{}{}", t(lang, "本岗亭：", "This booth: "), name)) {
                                            @for (g, l) in &booth_lanes { (lane_option(g, l)) }
                                        }
                                    }
                                    @if !other_lanes.is_empty() {
                                        optgroup label=(t(lang, "其他大门", "Other gates")) {
                                            @for (g, l) in &other_lanes { (lane_option(g, l)) }
                                        }
                                    }
                                } @else {
                                    @for (g, l) in &other_lanes { (lane_option(g, l)) }
                                }
                            }
                            span.error data-error-for="lane" {}
                            span.error data-error-for="gate_id" {}
                        }
                        div.buttons {
                            button.primary type="submit" { (t(lang, "登记并抬杆", "Register and open")) }
                        }
                        p.form-status role="status" {}
                    }
                }
                section.overstays aria-labelledby="overstays-title" {
                    h2 id="overstays-title" { (t(lang, "超时未离校", "Overstaying")) " (" (overstays.len()) ")" }
                    @if overstays.is_empty() { p.meta { (t(lang, "暂无超时访客", "No visitor has overstayed")) } }
                    ul id="overstays" {
                        @for v in &overstays {
                            li data-plate=(v.plate) {
                                strong.plate { (v.plate) }
                                (v.driver_name) " · " (v.host_name) " / " (v.department)
                                br;
                                span.meta { (t(lang, "应于 ", "Due out at ")) (local_time(state.site_tz, v.expected_departure)) }
                            }
                        }
                    }
                }
                section.onsite aria-labelledby="onsite-title" {
                    h2 id="onsite-title" { (t(lang, "在校访客车辆", "Visitor vehicles on campus")) }
                    table id="open-visits" {
                        thead { tr {
                            th scope="col" { (t(lang, "车牌", "Plate")) }
                            th scope="col" { (t(lang, "驾驶人", "Driver")) }
                            th scope="col" { (t(lang, "被访人/部门", "Host / department")) }
                            th scope="col" { (t(lang, "到达", "Arrived")) }
                            th scope="col" { (t(lang, "预计离开", "Expected out")) }
                            th scope="col" { }
                        } }
                        tbody {
                            @if open.is_empty() { tr { td colspan="6" { (t(lang, "暂无", "None")) } } }
                            @for v in &open {
                                tr.overstay[v.overstay] data-visit=(v.id) data-plate=(v.plate) {
                                    td.plate { (v.plate) }
                                    td { (v.driver_name) }
                                    td { (v.host_name) " / " (v.department) }
                                    td { (local_time(state.site_tz, v.arrived_at)) }
                                    td { (local_time(state.site_tz, v.expected_departure)) @if v.overstay { " " strong.bad { (t(lang, "超时", "OVERSTAY")) } } }
                                    td.actions {
                                        a.slip href=(slip_url(v.id)) { (t(lang, "打印临时通行单", "Print slip")) }
                                        " "
                                        form.inline data-api={ "/api/v1/visits/" (v.id) "/leave" } data-reload {
                                            button type="submit" { (t(lang, "离校", "Left")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
