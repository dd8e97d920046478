//! The visitor slip (临时通行单) `/console/visitors/{visit_id}/slip`: a printable half-A4 pass
//! for a registered visitor — plate, driver, host and department, purpose, the time window
//! (arrival to expected departure, in the site's zone), gate and lane, the registering guard's
//! display name, and a serial number unique per site and year (`2026-000123`).
//!
//! The serial is given the first time the slip is shown: the page asks
//! `POST /api/v1/visits/{id}/slip` (`paper.js`), which hands out the next number once and the
//! same number on every later print.
//!
//! When the visit came on an approved booking with a visitor pass (issue 21), the slip prints
//! the pass's QR code, so the driver can scan it at the lanes on the way out and back.
//!
//! What it never does: give a serial on a GET, or show a slip of a gate the guard is not at.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::Viewer;
use super::layout::{Nav, page as frame};
use super::names::Names;
use super::shift::{paper_time, site_name};
use crate::central::repo::{duty, gates, visits};
use crate::central::state::AppState;
use crate::i18n::t;

/// The pass of booking `booking_id` if it is approved (or arrived) and has one that is still
/// good; issued now if it is due. `None` otherwise, or on any error (the slip prints without).
async fn slip_pass(
    state: &AppState,
    booking_id: i64,
) -> Option<(
    crate::central::passes::StoredPass,
    crate::central::repo::bookings::Booking,
)> {
    use crate::central::passes::PassState;
    let booking = crate::central::repo::bookings::get(&state.db, booking_id)
        .await
        .ok()?;
    let pass = crate::central::api::bookings::pass_of(state, &booking)
        .await
        .ok()??;
    let good = matches!(
        PassState::of(&pass, &booking, chrono::Utc::now()),
        PassState::Valid | PassState::NotYetValid
    );
    good.then_some((pass, booking))
}

/// `GET /console/visitors/{visit_id}/slip`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(visit_id): Path<String>,
) -> Result<Response, super::PageError> {
    let lang = viewer.lang;
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            frame(
                &viewer,
                t(lang, "临时通行单", "Visitor slip"),
                Nav::Visitors,
                None,
                html! { main.paper { h1 { (t(lang, "没有这次来访登记", "No such visit")) } } },
            ),
        )
            .into_response()
    };
    let Ok(id) = visit_id.parse::<i64>() else {
        return Ok(not_found());
    };
    let Ok(visit) = visits::get(&state.db, id).await else {
        return Ok(not_found());
    };
    if !viewer.authed.can_see_gate(visit.gate_id) {
        return Ok(not_found());
    }
    let gate = gates::get(&state.db, visit.gate_id).await?;
    let lanes = gates::lanes(&state.db, visit.gate_id).await?;
    let lane = lanes
        .iter()
        .find(|l| l.lane_key == visit.lane)
        .map_or(visit.lane.clone(), |l| l.name_in(lang).to_string());
    let registered_by: Option<i64> =
        sqlx::query_scalar("SELECT registered_by FROM visits WHERE id = $1")
            .bind(id)
            .fetch_one(state.db.pool())
            .await
            .map_err(crate::central::db::RepoError::from)?;
    let names = Names::load(&state.db).await?;
    let guard = registered_by
        .and_then(|g| names.of_id(g))
        .unwrap_or(t(lang, "系统", "System"))
        .to_string();
    let serial = duty::slip_serial(&state.db, id).await?;
    // Issue 21: the visit's booking's pass, printed as its QR code for the lane's scanner.
    let pass = match visit.booking_id {
        Some(b) => slip_pass(&state, b).await,
        None => None,
    };
    let tz = state.site_tz;
    Ok(frame(
        &viewer,
        t(lang, "临时通行单", "Visitor slip"),
        Nav::Visitors,
        None,
        html! {
            link rel="stylesheet" href="/assets/paper.css";
            main.paper.slip data-visit=(id) {
                div.paper-tools.no-print {
                    button.primary type="button" data-print { (t(lang, "打印通行单", "Print the slip")) }
                    a href="/console/visitors" { (t(lang, "返回访客登记", "Back to visitors")) }
                }
                article.slip-card {
                    header.paper-head {
                        p.site { (site_name(lang)) }
                        h1 { (t(lang, "临时通行单", "Temporary vehicle pass")) }
                        p.serial {
                            (t(lang, "编号 ", "No. "))
                            @match &serial {
                                Some(s) => { strong id="slip-serial" { (s.text()) } }
                                None => {
                                    strong id="slip-serial" data-issue={ "/api/v1/visits/" (id) "/slip" }
                                        data-failed=(t(lang, "编号未能生成，请重试", "No number yet: try again")) { "……" }
                                }
                            }
                        }
                    }
                    dl.slip-grid {
                        dt { (t(lang, "车牌号", "Plate")) } dd.plate.big id="slip-plate" { (visit.plate) }
                        dt { (t(lang, "驾驶人", "Driver")) } dd id="slip-driver" { (visit.driver_name) }
                        dt { (t(lang, "被访人", "Host")) } dd id="slip-host" { (visit.host_name) " · " (visit.department) }
                        dt { (t(lang, "来访事由", "Purpose")) } dd { (visit.purpose) }
                        dt { (t(lang, "有效时段", "Valid")) }
                        dd id="slip-window" {
                            (paper_time(tz, visit.arrived_at.timestamp_millis())) " – " (paper_time(tz, visit.expected_departure.timestamp_millis()))
                        }
                        dt { (t(lang, "入口", "Entrance")) } dd id="slip-gate" { (gate.name_in(lang)) " · " (lane) }
                        dt { (t(lang, "登记门卫", "Registered by")) } dd id="slip-guard" { (guard) }
                    }
                    @if let Some((pass, booking)) = &pass {
                        div.slip-pass id="slip-pass" {
                            @if let Some(svg) = super::pass::qr_svg(&pass.token) {
                                div.slip-qr { (maud::PreEscaped(svg)) }
                            }
                            p { (t(lang, "访客通行码：出入时请将二维码对准车道扫码器", "Visitor pass: hold the QR code up to the lane's scanner"))
                                " · " (t(lang, if booking.single_use { "进、出各一次" } else { "时段内不限次数" }, if booking.single_use { "one entry, one exit" } else { "any number within the slot" })) }
                        }
                    }
                    p.slip-rules {
                        (t(lang, "请将本单放在挡风玻璃后可见处，按时离校，出校时交回门卫。",
                            "Keep this slip visible behind the windscreen, leave on time and hand it back at the gate on the way out."))
                    }
                }
                script src="/assets/paper.js" defer {}
            }
        },
    )
    .into_response())
}
