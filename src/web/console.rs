//! `/console`: the guard's live view of their gates — each lane with the vehicle just decided
//! (plate, tag, holder and category, permit validity), the decision and its reason in large
//! text and colour with its age (faded once older than the site's `verdict_fade_s`: an old red
//! 禁止通行 must not look live), tailgating, lane faults, fire and lost devices on the lane in
//! their own styles, device health and mode, the manual 抬杆 / 保持落杆 form with its mandatory
//! reason and the lane's last read plate (editable), the recent passages, duty and handover
//! notes. A guard on duty sees the booth's gate first and in full, their other gates compact
//! beside it (each lane's verdict, plate and age). Beside a plate camera's
//! decision: its plate close-up and scene photo, raw read and confidence, the corrected plate
//! and the correction form ([`super::evidence`]); a read the lane held for its low confidence
//! stands out in amber with the near matches, for the guard to open or keep closed.
//! `/console/live` pushes re-rendered lane parts as server-sent events the moment the centre
//! ingests a gate's events (or a plate of one is corrected).
//!
//! What it never does: show a gate the viewer may not see (guards: their own gates only), or
//! act by itself (every action is a `fetch` to the JSON API).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use maud::{Markup, html};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::Viewer;
use super::evidence::{self, Size};
use super::layout::{Nav, local_time, page as frame};
use super::names::Names;
use crate::central::db::RepoError;
use crate::central::live::LiveMessage;
use crate::central::repo::events::{self, EventQuery, PassageEvent};
use crate::central::repo::gates::{self, Gate, Lane};
use crate::central::repo::sync::SILENT_AFTER_MS;
use crate::central::repo::{corrections, duty, permits, settings, visits};
use crate::central::state::AppState;
use crate::domain::plate_match;
use crate::i18n::{
    GUARD_REASONS, Lang, category_label, direction_label, mode_label, reason_label, t,
};
use crate::wire::journal::{EventBody, JournalEvent};

/// Recent passages shown per gate.
const RECENT: i64 = 8;

/// Lane faults looked at per lane render (the newest fault the guard must see, and whether the
/// fire input is active, are among them).
const FAULTS: i64 = 20;

pub use super::visible_gates;

/// The id of a lane's live status element.
fn status_id(gate_id: i64, lane: &str) -> String {
    format!("lane-status-{gate_id}-{lane}")
}

/// The id of a lane's device health element.
fn health_id(gate_id: i64, lane: &str) -> String {
    format!("lane-health-{gate_id}-{lane}")
}

/// A gate's last health report (its devices and lane modes, sent every few seconds over the
/// sync), or `None` when the gate has not reported for [`SILENT_AFTER_MS`].
async fn health_report(
    state: &AppState,
    gate_id: i64,
) -> Result<Option<serde_json::Value>, RepoError> {
    let row = sqlx::query("SELECT last_seen_ms, health FROM sync_gates WHERE gate_id = $1")
        .bind(gate_id)
        .fetch_optional(state.db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let seen: i64 = row.try_get("last_seen_ms")?;
    if crate::central::db::now_ms() - seen > SILENT_AFTER_MS {
        return Ok(None);
    }
    Ok(row
        .try_get::<Option<String>, _>("health")?
        .and_then(|h| serde_json::from_str(&h).ok()))
}

/// A lane's device health and mode, from its gate's last health report; a lost device or a
/// silent gate, and an evacuation (arm held open), as a banner across the lane.
fn lane_health(lang: Lang, lane: &Lane, report: Option<&serde_json::Value>) -> Markup {
    let reported = report.and_then(|r| {
        r["lanes"]
            .as_array()?
            .iter()
            .find(|l| l["lane"].as_str() == Some(lane.lane_key.as_str()))
            .cloned()
    });
    let device = |key: &str| reported.as_ref().and_then(|l| l[key].as_bool());
    let mode = reported
        .as_ref()
        .and_then(|l| l["mode"].as_str().map(str::to_string))
        .unwrap_or_else(|| lane.mode.clone());
    let cameras: Vec<serde_json::Value> = reported
        .as_ref()
        .and_then(|l| l["cameras"].as_array().cloned())
        .unwrap_or_default();
    // What the guard has lost on this lane, in words.
    let mut lost: Vec<String> = Vec::new();
    let headline = if report.is_none() {
        t(lang, "闸口失联", "GATE OFFLINE")
    } else {
        t(lang, "设备失联", "DEVICE LOST")
    };
    if report.is_none() {
        lost.push(t(lang, "闸口未连接中心", "gate not reporting").to_string());
    } else {
        if device("reader_online") == Some(false) {
            lost.push(t(lang, "读卡器离线", "reader offline").to_string());
        }
        if device("io_online") == Some(false) {
            lost.push(t(lang, "道闸IO离线", "barrier I/O offline").to_string());
        }
        for camera in &cameras {
            if camera["online"].as_bool() != Some(true) {
                lost.push(format!(
                    "{}{}{}",
                    t(lang, "相机 ", "camera "),
                    camera["name"].as_str().unwrap_or("?"),
                    t(lang, " 离线", " offline")
                ));
            }
        }
    }
    let evacuation = matches!(mode.as_str(), "locked_open" | "evacuation");
    let health = |label: &'static str, state: Option<bool>| {
        html! {
            span.dev.(match state { Some(true) => "ok", Some(false) => "bad", None => "unknown" }) {
                (label) " "
                (match state {
                    Some(true) => t(lang, "在线", "online"),
                    Some(false) => t(lang, "离线", "OFFLINE"),
                    None => t(lang, "未知", "unknown"),
                })
            }
        }
    };
    html! {
        @if !lost.is_empty() {
            div.lane-alert.device-loss role="alert" {
                strong { (headline) } " "
                (lost.join(t(lang, "，", ", ")))
                span.meta { (t(lang, "：请现场核实车辆并手动操作", ": check vehicles on site and operate by hand")) }
            }
        }
        @if evacuation {
            div.lane-alert.evacuation role="alert" {
                strong { (t(lang, "紧急疏散", "EVACUATION")) } " "
                (t(lang, "道闸保持抬起", "the arm is held open"))
            }
        }
        @if report.is_some() {
            (health(t(lang, "读卡器", "Reader"), device("reader_online")))
            (health(t(lang, "道闸IO", "Barrier I/O"), device("io_online")))
            @for camera in &cameras {
                span.dev.(if camera["online"].as_bool() == Some(true) { "ok" } else { "bad" }) {
                    (t(lang, "相机 ", "Camera ")) (camera["name"].as_str().unwrap_or("?")) " "
                    (if camera["online"].as_bool() == Some(true) { t(lang, "在线", "online") } else { t(lang, "离线", "OFFLINE") })
                }
            }
        }
        span.mode { (t(lang, "模式：", "Mode: ")) (mode_label(lang, &mode)) }
    }
}

/// Every lane's health part of a gate (its `lanes`), as (element id, HTML).
async fn health_parts(
    state: &AppState,
    lang: Lang,
    gate_id: i64,
    lanes: &[Lane],
) -> Result<Vec<Part>, RepoError> {
    let report = health_report(state, gate_id).await?;
    Ok(lanes
        .iter()
        .map(|lane| Part {
            id: health_id(gate_id, &lane.lane_key),
            html: lane_health(lang, lane, report.as_ref()).into_string(),
        })
        .collect())
}

/// A lane fault the guard must see on the lane: (style, headline, what happened). `None` for
/// the lane's own bookkeeping (a denial, a guard's command, a recovery), shown otherwise or not
/// at all, and for the fire input (its own banner, [`fire_active`]).
fn fault_shown(lang: Lang, code: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let barrier = t(lang, "道闸故障", "BARRIER FAULT");
    Some(match code {
        "unauthorized_passage" => (
            "tailgate",
            t(lang, "尾随/未授权通过", "TAILGATING / NO GRANT"),
            t(
                lang,
                "未经放行的车辆通过（尾随前车，或从未落下的杆下通过）",
                "A vehicle passed without a grant (following another, or under an arm held up for safety)",
            ),
        ),
        "arm_did_not_open" => (
            "fault",
            barrier,
            t(lang, "抬杆未到位", "The arm did not open"),
        ),
        "arm_did_not_close" => (
            "fault",
            barrier,
            t(lang, "落杆未到位", "The arm did not close"),
        ),
        "io_read_failed" => (
            "fault",
            barrier,
            t(lang, "道闸IO读取失败", "The barrier I/O could not be read"),
        ),
        "command_failed" => (
            "fault",
            barrier,
            t(lang, "道闸命令执行失败", "A barrier command failed"),
        ),
        "tamper" => (
            "fault",
            t(lang, "防拆报警", "TAMPER"),
            t(
                lang,
                "设备箱被打开或线路被改动",
                "The cabinet was opened or its wiring changed",
            ),
        ),
        _ => return None,
    })
}

/// Whether the lane's fire input is active: its newest fire event (among `faults`, newest
/// first) raised it and none cleared it since.
fn fire_active(faults: &[PassageEvent]) -> bool {
    faults
        .iter()
        .find_map(|e| match e.body["fault"].as_str() {
            Some("fire_alarm") => Some(true),
            Some("fire_alarm_cleared") => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

/// The newest fault (among `faults`, newest first) the lane must show: one of
/// [`fault_shown`]'s, except a barrier I/O fault the I/O has recovered from since.
fn shown_fault(lang: Lang, faults: &[PassageEvent]) -> Option<&PassageEvent> {
    let mut recovered = false;
    faults.iter().find(|e| {
        let code = e.body["fault"].as_str().unwrap_or("");
        if code == "io_recovered" {
            recovered = true;
        }
        let io = matches!(code, "io_read_failed" | "command_failed");
        !(recovered && io) && fault_shown(lang, code).is_some()
    })
}

/// An event's order within its gate: journal, then sequence number.
fn order(e: &PassageEvent) -> (i64, i64) {
    (e.journal_no, e.seq)
}

/// An event's age as the booth reads it ("32 秒前"); the page's script keeps it current.
fn age_text(lang: Lang, at: chrono::DateTime<chrono::Utc>) -> String {
    let s = (chrono::Utc::now() - at).num_seconds().max(0);
    match lang {
        Lang::Zh if s < 60 => format!("{s} 秒前"),
        Lang::Zh if s < 3600 => format!("{} 分钟前", s / 60),
        Lang::Zh => format!("{} 小时前", s / 3600),
        Lang::En if s < 60 => format!("{s} s ago"),
        Lang::En if s < 3600 => format!("{} min ago", s / 60),
        Lang::En => format!("{} h ago", s / 3600),
    }
}

/// The box of what the lane shows now, with its instant for the script's age and fade
/// (`fade_s`: the site's `verdict_fade_s`; already stale when rendered that late).
fn current_box(at: chrono::DateTime<chrono::Utc>, fade_s: u32, kind: &str, body: Markup) -> Markup {
    let stale = (chrono::Utc::now() - at).num_seconds() >= i64::from(fade_s);
    html! {
        div.current.stale[stale] data-at=(at.timestamp_millis()) data-kind=(kind) {
            (body)
        }
    }
}

/// The age and the "old" mark of a lane's verdict.
fn age_line(lang: Lang, at: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        span.when {
            span.age { (age_text(lang, at)) }
            span.stale-mark { (t(lang, "（已过时）", " (old)")) }
        }
    }
}

/// What a guard's command did, in the verdict's words.
fn override_word(lang: Lang, action: &str) -> &'static str {
    match action {
        "open" => t(lang, "手动抬杆", "MANUAL OPEN"),
        "keep_closed" => t(lang, "保持落杆", "KEPT DOWN"),
        _ => t(lang, "恢复自动", "BACK TO AUTOMATIC"),
    }
}

/// A lane's live part: fire, then the newest of the vehicle just decided, the guard's last
/// command and the last fault the guard must see, with its age; and the lane's last read
/// plate for the command form (`data-last-plate`).
async fn lane_status(
    state: &AppState,
    lang: Lang,
    names: &Names,
    fade_s: u32,
    lane: &Lane,
) -> Result<(Markup, Option<String>), RepoError> {
    let (decision, override_, faults) =
        events::lane_latest(&state.db, lane.gate_id, &lane.lane_key, FAULTS).await?;
    let fire = fire_active(&faults);
    let fault = shown_fault(lang, &faults);
    // The newest of the last decision, the last guard command and the last fault is what the
    // lane shows.
    let newest = [
        decision.as_ref().map(|e| (order(e), 0)),
        override_.as_ref().map(|e| (order(e), 1)),
        fault.map(|e| (order(e), 2)),
    ]
    .into_iter()
    .flatten()
    .max()
    .map(|(_, which)| which);
    let permit = match decision.as_ref().and_then(|d| d.permit_id) {
        Some(id) => permits::get_without_vehicles(&state.db, id).await.ok(),
        None => None,
    };
    let camera = decision.as_ref().and_then(|d| evidence::camera_of(&d.body));
    let correction = match &decision {
        Some(d) if camera.is_some() => {
            corrections::get(&state.db, (d.gate_id, d.journal_no, d.seq)).await?
        }
        _ => None,
    };
    // The plate the guard's command form starts with: the last read, as corrected — none when a
    // fault came after it (a tailgater is not the vehicle that was read).
    let fault_after_read = match (fault, &decision) {
        (Some(f), Some(d)) => order(f) > order(d),
        _ => false,
    };
    let last_plate = match (&correction, &decision) {
        _ if fault_after_read => None,
        (Some(c), _) => Some(c.plate.clone()),
        (None, Some(d)) => d
            .plate
            .clone()
            .or_else(|| camera.as_ref().map(|c| c.raw_plate.clone()))
            .filter(|p| !p.is_empty()),
        _ => None,
    };
    // A held read shows the guard the plates it may have been (suggestions only).
    let near = match (&decision, &camera) {
        (Some(d), Some(cam)) if d.reason.as_deref() == Some("held_low_confidence") => {
            let known = visits::known_plates(&state.db).await?;
            plate_match::suggest(&cam.raw_plate, known.iter().map(String::as_str), 6)
        }
        _ => Vec::new(),
    };
    let markup = html! {
        @if fire {
            div.lane-alert.fire role="alert" {
                strong { (t(lang, "火警", "FIRE ALARM")) } " "
                (t(lang, "消防联动：道闸抬起供疏散", "fire linkage: the arm is up for evacuation"))
            }
        }
        @match (newest, &override_, fault, &decision) {
            (Some(1), Some(o), _, _) => {
                @let plate = o.plate.as_deref().or(o.body["plate"].as_str());
                (current_box(o.at, fade_s, "override", html! {
                    div.verdict.manual data-seq=(o.seq) {
                        (override_word(lang, o.body["action"].as_str().unwrap_or("")))
                    }
                    div.plate-line {
                        span.plate-big.plate { (plate.unwrap_or("—")) }
                        (age_line(lang, o.at))
                    }
                    p.reason {
                        (crate::i18n::guard_reason_label(lang, o.body["reason"].as_str().unwrap_or("")))
                        @if let Some(note) = o.body["note"].as_str() {
                    " — "
                    @if let Some(visit) = crate::central::outside::registration_of(note) {
                        (t(lang, "访客登记 #", "visitor registration #")) (visit)
                    } @else { (note) }
                }
                    }
                    p.meta { (names.of(o.body["operator"].as_str().unwrap_or(""))) " · " (local_time(state.site_tz, o.at)) }
                }))
            }
            (Some(2), _, Some(f), _) => {
                @let (class, headline, what) = fault_shown(lang, f.body["fault"].as_str().unwrap_or("")).unwrap_or(("fault", "", ""));
                (current_box(f.at, fade_s, "fault", html! {
                    div.verdict.(class) data-seq=(f.seq) data-fault=(f.body["fault"].as_str().unwrap_or("")) { (headline) }
                    div.plate-line {
                        span.plate-unknown { (t(lang, "未识别车牌", "No plate read")) }
                        (age_line(lang, f.at))
                    }
                    p.reason { (what) }
                    p.meta { (t(lang, "请查看现场与录像", "Check the lane and its video")) " · " (local_time(state.site_tz, f.at)) }
                }))
            }
            (_, _, _, Some(d)) => {
                @let granted = d.granted == Some(true);
                @let reason = d.reason.clone().unwrap_or_default();
                @let held = reason == "held_low_confidence";
                @let class = if reason == "denied_blacklisted" { "blacklist" } else if granted { "granted" } else if held { "held" } else { "denied" };
                (current_box(d.at, fade_s, "decision", html! {
                    div.verdict.(class) data-seq=(d.seq) data-reason=(reason) {
                        (if granted { t(lang, "放行", "GRANTED") } else if class == "blacklist" { t(lang, "黑名单", "BLACKLIST") } else if held { t(lang, "待人工确认", "HELD: CHECK") } else { t(lang, "禁止通行", "DENIED") })
                    }
                    div.plate-line {
                        span.plate-big { (evidence::plate(lang, names, d.plate.as_deref(), correction.as_ref())) }
                        (age_line(lang, d.at))
                    }
                    p.reason { (reason_label(lang, &reason)) }
                    // Granted under the "flag" policy although the tag's plate is not the camera's.
                    @if granted && d.body["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == "plate_mismatch")) {
                        p.flag-warn { (t(lang, "注意：标签登记车牌与相机识别不符（已放行并记录）",
                            "Note: the tag's plate is not the camera's (let through and recorded)")) }
                    }
                    @if let Some(cam) = &camera {
                        div.evidence.held[held] {
                            (evidence::photos(lang, cam, Size::Card))
                            (evidence::read_line(lang, cam, held))
                            @if held {
                                (evidence::suggestions(lang, &near))
                            }
                        }
                    }
                    dl.vehicle {
                        // A plate read without a tag: no empty tag and permit rows pushing the
                        // guard's buttons down.
                        @let plate_only = camera.is_some() && d.body["epc"].is_null();
                        @if !plate_only { dt { (t(lang, "标签", "Tag")) } dd.tag { (d.body["epc"].as_str().unwrap_or("—")) } }
                        dt { (t(lang, "持证人", "Holder")) }
                        dd { (d.body["holder"].as_str().unwrap_or("—"))
                            @if let Some(c) = d.body["category"].as_str() { " · " (category_label(lang, c)) } }
                        @if !(plate_only && d.permit_id.is_none()) {
                            dt { (t(lang, "通行证", "Permit")) }
                            dd {
                                @if let Some(p) = &permit {
                                    "#" (p.id) " " (local_day(state.site_tz, p.valid_from)) " → " (local_day(state.site_tz, p.valid_until))
                                    " · " (crate::i18n::permit_status_label(lang, p.status.as_str()))
                                } @else if let Some(id) = d.permit_id { "#" (id) } @else { "—" }
                            }
                        }
                        dt { (t(lang, "方向/时间", "Direction / time")) }
                        dd { (direction_label(lang, d.direction.as_deref().unwrap_or(""))) " · " (local_time(state.site_tz, d.at)) }
                    }
                    @if let Some(cam) = &camera {
                        @let current = correction.as_ref().map_or_else(|| d.plate.clone().unwrap_or_else(|| cam.raw_plate.clone()), |c| c.plate.clone());
                        (evidence::correction_form(lang, (d.gate_id, d.journal_no, d.seq), &current))
                    }
                }))
            }
            _ => {
                div.verdict.idle { (t(lang, "暂无车辆", "No vehicle yet")) }
            }
        }
        span.last-plate hidden data-last-plate=(last_plate.as_deref().unwrap_or_default()) {}
    };
    Ok((markup, last_plate))
}

/// A permit's validity bound as the booth reads it: the day (and the minute unless midnight),
/// in the site's zone `tz`, with the year.
fn local_day(tz: chrono_tz::Tz, at: chrono::DateTime<chrono::Utc>) -> String {
    let local = at.with_timezone(&tz);
    if local.format("%H:%M").to_string() == "00:00" {
        local.format("%Y-%m-%d").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// Whether `e` is the anonymous passage a tailgating alarm in `rows` was journalled with (the
/// gate writes the two together): the table shows the alarm, not an ordinary passage.
fn tailgate_passage(e: &PassageEvent, rows: &[PassageEvent]) -> bool {
    e.kind == "passage"
        && e.plate.is_none()
        && rows.iter().any(|f| {
            f.kind == "lane_fault"
                && f.lane == e.lane
                && f.journal_no == e.journal_no
                && f.seq > e.seq
                && f.seq <= e.seq + 3
                && f.body["fault"].as_str() == Some("unauthorized_passage")
        })
}

/// The recent passages of a gate (its `lanes` name them), with tailgating and lane faults in
/// their own rows.
async fn recent(
    state: &AppState,
    lang: Lang,
    names: &Names,
    gate_id: i64,
    lanes: &[Lane],
) -> Result<Markup, RepoError> {
    let lane_name = |key: &str| {
        lanes
            .iter()
            .find(|l| l.lane_key == key)
            .map_or_else(|| key.to_string(), |l| l.name_in(lang).to_string())
    };
    let q = EventQuery {
        gate_id: Some(gate_id),
        ..EventQuery::default()
    };
    let all = events::newest(&state.db, &q, 40).await?;
    let rows: Vec<&PassageEvent> = all
        .iter()
        .filter(|e| match e.kind.as_str() {
            "decision" | "override" => true,
            "passage" => !tailgate_passage(e, &all),
            "lane_fault" => fault_shown(lang, e.body["fault"].as_str().unwrap_or("")).is_some(),
            _ => false,
        })
        .take(RECENT as usize)
        .collect();
    let keys: Vec<_> = rows
        .iter()
        .map(|e| (e.gate_id, e.journal_no, e.seq))
        .collect();
    let fixed = corrections::for_events(&state.db, &keys).await?;
    Ok(html! {
        table.recent {
            caption { (t(lang, "最近通行", "Recent passages")) }
            thead { tr {
                th scope="col" { (t(lang, "时间", "Time")) }
                th scope="col" { (t(lang, "车道", "Lane")) }
                th scope="col" { (t(lang, "车牌", "Plate")) }
                th scope="col" { (t(lang, "照片", "Photo")) }
                th scope="col" { (t(lang, "结果", "Result")) }
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="5" { (t(lang, "暂无记录", "Nothing yet")) } } }
                @for e in &rows {
                    @let camera = evidence::camera_of(&e.body);
                    @let fault = fault_shown(lang, e.body["fault"].as_str().unwrap_or(""));
                    @let class = match (e.kind.as_str(), fault) {
                        ("lane_fault", Some((style, _, _))) => format!("fault {style}"),
                        (kind, _) => kind.to_string(),
                    };
                    tr class=(class) data-seq=(e.seq) {
                        td { (local_time(state.site_tz, e.at)) }
                        td { (lane_name(&e.lane)) }
                        td.plate-cell { (evidence::plate(lang, names, e.plate.as_deref(), fixed.get(&(e.gate_id, e.journal_no, e.seq)))) }
                        td.photo-cell {
                            @if let Some(cam) = &camera {
                                (evidence::photos(lang, cam, Size::Thumb))
                                span.meta { (cam.confidence) "%" }
                            }
                        }
                        td {
                            @match e.kind.as_str() {
                                "decision" => {
                                    span.(if e.granted == Some(true) { "ok" } else if e.reason.as_deref() == Some("held_low_confidence") { "warn" } else { "bad" }) {
                                        (reason_label(lang, e.reason.as_deref().unwrap_or("")))
                                    }
                                }
                                "override" => {
                                    span.manual {
                                        (override_word(lang, e.body["action"].as_str().unwrap_or(""))) (t(lang, "：", ": "))
                                        (crate::i18n::guard_reason_label(lang, e.body["reason"].as_str().unwrap_or("")))
                                    }
                                    (t(lang, "（", " (")) (names.of(e.body["operator"].as_str().unwrap_or(""))) (t(lang, "）", ")"))
                                }
                                "lane_fault" => {
                                    @if let Some((style, headline, _)) = fault {
                                        span class={ "bad " (style) } { (headline) }
                                    }
                                }
                                _ => { (t(lang, "已通过", "Passed")) }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// A lane's manual command form: reason, a note and the vehicle's plate (the lane's last read,
/// editable; after the note, so the keyboard goes reason → note → Enter as before), then
/// 抬杆 / 保持落杆. "保持落杆" rather than a bare 落杆: the command holds
/// the barrier down whatever is read; it never lowers an arm onto a vehicle (the lane closes
/// only when the loops are clear).
fn command_form(lang: Lang, lane: &Lane, last_plate: Option<&str>) -> Markup {
    let id = format!("{}-{}", lane.gate_id, lane.lane_key);
    html! {
        form.command data-api={ "/api/v1/console/gates/" (lane.gate_id) "/lanes/" (lane.lane_key) "/command" } novalidate {
            div.fields {
                div.field.reason-field {
                    label for={ "reason-" (id) } { (t(lang, "手动操作原因", "Manual reason")) }
                    select id={ "reason-" (id) } name="reason" required data-lane-reason {
                        option value="" { (t(lang, "— 请选择原因 —", "— choose a reason —")) }
                        @for (code, zh, en) in GUARD_REASONS { option value=(code) { (t(lang, zh, en)) } }
                    }
                    span.error data-error-for="reason" {}
                }
                div.field.note-field {
                    label for={ "note-" (id) } { (t(lang, "说明", "Note")) }
                    input id={ "note-" (id) } name="note" maxlength="200" autocomplete="off";
                    span.error data-error-for="note" {}
                }
                div.field.plate-field {
                    label for={ "plate-" (id) } { (t(lang, "车牌（可改）", "Plate (editable)")) }
                    input id={ "plate-" (id) } name="plate" value=(last_plate.unwrap_or("")) maxlength="12"
                        autocomplete="off" spellcheck="false" data-lane-plate;
                    span.error data-error-for="plate" {}
                }
            }
            div.buttons {
                button.open type="submit" name="command" value="open" { (t(lang, "抬杆", "Raise (open)")) }
                button.keep type="submit" name="command" value="keep_closed" { (t(lang, "保持落杆", "Keep down")) }
            }
            p.form-status role="status" {}
        }
    }
}

/// How a gate is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Panel {
    /// Everything: lanes with their evidence and command forms, recent passages.
    Full,
    /// The on-duty booth's gate: as [`Panel::Full`], its recent passages drawn apart (below
    /// the other gates on a narrow screen) by the page.
    Booth,
    /// Another gate of an on-duty guard: each lane's verdict, plate and age, no forms.
    Compact,
}

/// One gate's panel: its lanes (live part, command form) and, when full, recent passages.
async fn gate_panel(
    state: &AppState,
    lang: Lang,
    names: &Names,
    fade_s: u32,
    gate: &Gate,
    panel: Panel,
) -> Result<Markup, RepoError> {
    let lanes = gates::lanes(&state.db, gate.id).await?;
    let report = health_report(state, gate.id).await?;
    let mut cards = Vec::new();
    for lane in &lanes {
        let (status, plate) = lane_status(state, lang, names, fade_s, lane).await?;
        cards.push((lane, status, plate));
    }
    let recent = match panel {
        Panel::Full => Some(recent(state, lang, names, gate.id, &lanes).await?),
        _ => None,
    };
    let class = match panel {
        Panel::Full => "gate",
        Panel::Booth => "gate booth",
        Panel::Compact => "gate compact",
    };
    Ok(html! {
        section class=(class) id={ "gate-" (gate.id) } aria-labelledby={ "gate-title-" (gate.id) } data-gate=(gate.id) {
            h2 id={ "gate-title-" (gate.id) } {
                (gate.name_in(lang))
                @if panel == Panel::Booth { span.badge { (t(lang, "本岗", "My booth")) } }
                span.mode { (mode_label(lang, &gate.mode)) }
            }
            div.lanes {
                @for (lane, status, plate) in &cards {
                    article.lane {
                        h3 { (lane.name_in(lang)) " · " (direction_label(lang, &lane.direction)) }
                        div.health id=(health_id(gate.id, &lane.lane_key)) { (lane_health(lang, lane, report.as_ref())) }
                        div.status id=(status_id(gate.id, &lane.lane_key)) aria-live="polite" { (status) }
                        @if panel != Panel::Compact { (command_form(lang, lane, plate.as_deref())) }
                    }
                }
                @if lanes.is_empty() { p { (t(lang, "此大门尚未配置车道", "This gate has no lanes configured")) } }
            }
            @if let Some(recent) = &recent { div id={ "recent-" (gate.id) } { (recent) } }
        }
    })
}

/// The gate the guard is signed in on duty at, if they may see it.
async fn duty_gate(state: &AppState, viewer: &Viewer, gates: &[Gate]) -> Option<i64> {
    duty::current(&state.db, viewer.authed.operator_id)
        .await
        .ok()
        .flatten()
        .map(|d| d.gate_id)
        .filter(|id| gates.iter().any(|g| g.id == *id))
}

/// The gate the alarm button raises at: the one on duty, else the first visible.
pub async fn alarm_gate(state: &AppState, viewer: &Viewer, gates: &[Gate]) -> Option<i64> {
    let on_duty = duty::current(&state.db, viewer.authed.operator_id)
        .await
        .ok()
        .flatten()
        .map(|d| d.gate_id);
    on_duty.or(gates.first().map(|g| g.id))
}

/// `GET /console`. A guard on duty sees the booth's gate first and in full, with the other
/// gates they may see compact beside it (below it on a narrow screen) and the booth's recent
/// passages after both; everyone else sees every gate in full, in id order.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, super::PageError> {
    let lang = viewer.lang;
    let mut gates = visible_gates(&state, &viewer).await?;
    let names = Names::load(&state.db).await?;
    let fade_s = settings::load(&state.db).await?.verdict_fade_s;
    let booth = duty_gate(&state, &viewer, &gates).await;
    if let Some(b) = booth {
        // The booth's gate first; the others keep their order.
        gates.sort_by_key(|g| (g.id != b, g.id));
    }
    let booth_layout = booth.is_some() && gates.len() > 1;
    let mut panels = Vec::new();
    for g in &gates {
        let panel = match (booth_layout, Some(g.id) == booth) {
            (false, _) => Panel::Full,
            (true, true) => Panel::Booth,
            (true, false) => Panel::Compact,
        };
        panels.push(gate_panel(&state, lang, &names, fade_s, g, panel).await?);
    }
    let booth_recent = match booth {
        Some(b) if booth_layout => {
            let lanes = gates::lanes(&state.db, b).await?;
            Some((b, recent(&state, lang, &names, b, &lanes).await?))
        }
        _ => None,
    };
    let figures = super::duty::figures(&state, &viewer, &gates).await?;
    let duty = super::duty::panel(&state, &viewer, &gates).await?;
    let alarm = alarm_gate(&state, &viewer, &gates).await;
    Ok(frame(
        &viewer,
        t(lang, "实时车道", "Live lanes"),
        Nav::Live,
        alarm,
        html! {
            main.console data-live-url="/console/live" data-fade-s=(fade_s) {
                div id="alert" role="alert" hidden {}
                @if gates.is_empty() { p { (t(lang, "您还没有分配大门，请联系管理员。", "No gate is assigned to you; ask an administrator.")) } }
                @if booth_layout {
                    div.booth-layout {
                        @if let Some(first) = panels.first() { (first) }
                        aside.other-gates aria-labelledby="other-gates-title" {
                            h2 id="other-gates-title" { (t(lang, "其他大门（简要）", "Other gates (brief)")) }
                            @for p in panels.iter().skip(1) { (p) }
                        }
                    }
                    @if let Some((b, recent)) = &booth_recent {
                        section.gate-recent { div id={ "recent-" (b) } { (recent) } }
                    }
                } @else {
                    @for p in &panels { (p) }
                }
                (figures)
                (duty)
                p.keys { (t(lang, "快捷键：F2 实时车道 · F4 访客登记 · F9 一键报警 · Alt+1…9 选择车道原因 · Alt+L 切换语言",
                    "Keys: F2 live lanes · F4 visitors · F9 alarm · Alt+1…9 a lane's reason · Alt+L language")) }
            }
        },
    ))
}

/// One pushed update: new HTML for some elements, and an alert if a blacklisted vehicle came.
#[derive(Debug, Serialize)]
struct Update {
    gate_id: i64,
    parts: Vec<Part>,
    alert: Option<String>,
}

#[derive(Debug, Serialize)]
struct Part {
    id: String,
    html: String,
}

/// A whole gate's update as JSON, with the blacklist alert `events` (just ingested) call for,
/// and its health parts' HTML (to tell later health reports that change nothing). The gate's
/// lanes are read once for every part: this runs for every upload a console's gate makes.
async fn gate_update(
    state: &AppState,
    lang: Lang,
    (names, fade_s): (&Names, u32),
    gate_id: i64,
    lanes: &[Lane],
    events: &[JournalEvent],
) -> Result<(String, String), RepoError> {
    let alert = blacklist_alert(lang, events, lanes);
    let mut parts = Vec::new();
    for lane in lanes {
        parts.push(Part {
            id: status_id(gate_id, &lane.lane_key),
            html: lane_status(state, lang, names, fade_s, lane)
                .await?
                .0
                .into_string(),
        });
    }
    parts.push(Part {
        id: format!("recent-{gate_id}"),
        html: recent(state, lang, names, gate_id, lanes)
            .await?
            .into_string(),
    });
    let health = health_parts(state, lang, gate_id, lanes).await?;
    let health_html: String = health.iter().map(|p| p.html.as_str()).collect();
    parts.extend(health);
    let data = serde_json::to_string(&Update {
        gate_id,
        parts,
        alert,
    })
    .unwrap_or_default();
    Ok((data, health_html))
}

fn blacklist_alert(lang: Lang, events: &[JournalEvent], lanes: &[Lane]) -> Option<String> {
    events.iter().find_map(|e| match &e.body {
        EventBody::Decision(d) if d.reason == crate::domain::ReasonCode::DeniedBlacklisted => {
            Some(format!(
                "{} {} — {}",
                t(lang, "黑名单车辆！", "BLACKLISTED VEHICLE!"),
                d.plate
                    .clone()
                    .unwrap_or_else(|| d.epc.clone().unwrap_or_default()),
                t(lang, "车道：", "lane: ").to_string()
                    + lanes
                        .iter()
                        .find(|l| l.lane_key == e.lane)
                        .map_or(e.lane.as_str(), |l| l.name_in(lang))
            ))
        }
        _ => None,
    })
}

/// `GET /console/live`: server-sent events. First the current state of every visible gate,
/// then an update whenever the centre ingests events of one of them, and the devices' health
/// whenever a gate's health report changes it.
pub async fn live(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live.subscribe();
    let mut live = Live {
        rx,
        state,
        viewer,
        owed: VecDeque::new(),
        health_sent: HashMap::new(),
        lanes: HashMap::new(),
        shared: None,
    };
    live.owe_every_gate().await;
    let stream = futures::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok(event), live))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// How long a live stream that is kept busy reuses the operators' names and the verdict fade.
const SHARED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// What a viewer's stream still owes a gate.
#[derive(Debug)]
enum Owed {
    /// The whole gate, and the events ingested since it was last sent (for the alert).
    Whole(Vec<JournalEvent>),
    /// Its devices' health only.
    Health,
}

/// One viewer's live stream.
///
/// Messages that arrive while a gate is rendered are folded into what is owed, not rendered
/// one by one: a gate that uploads twice meanwhile is rendered once, with the newest state.
/// So a console that falls behind (a busy centre, a slow link) catches up by doing less, not
/// by queueing renders of states already gone; a quiet console renders each upload at once.
struct Live {
    rx: tokio::sync::broadcast::Receiver<std::sync::Arc<LiveMessage>>,
    state: AppState,
    viewer: Viewer,
    /// Gates owed an update, oldest first, each once.
    owed: VecDeque<(i64, Owed)>,
    /// The health parts last sent per gate: a health report that changes nothing sends nothing.
    health_sent: HashMap<i64, String>,
    /// Each gate's lanes as its last whole update read them: a health report (every few
    /// seconds a gate) renders from them without reading them again.
    lanes: HashMap<i64, Vec<Lane>>,
    /// The operators' names and the verdict fade, read once for the updates owed at a time
    /// (and at most [`SHARED_FOR`] ago), with when they were read.
    shared: Option<(std::time::Instant, Names, u32)>,
}

impl Live {
    /// Owes every visible gate its whole state (at the start, and after falling so far behind
    /// that messages were lost), keeping the events owed already.
    async fn owe_every_gate(&mut self) {
        let gates = visible_gates(&self.state, &self.viewer)
            .await
            .map(|g| g.iter().map(|g| g.id).collect::<Vec<_>>())
            .unwrap_or_default();
        for gate_id in gates {
            self.owe(gate_id, Owed::Whole(Vec::new()));
        }
    }

    /// Folds `owed` into what gate `gate_id` is owed already.
    fn owe(&mut self, gate_id: i64, owed: Owed) {
        match self.owed.iter_mut().find(|(g, _)| *g == gate_id) {
            None => self.owed.push_back((gate_id, owed)),
            Some((_, Owed::Whole(had))) => {
                if let Owed::Whole(events) = owed {
                    had.extend(events);
                }
            }
            Some((_, health)) => {
                if let Owed::Whole(_) = owed {
                    *health = owed;
                }
            }
        }
    }

    /// Takes one message from the centre into what is owed.
    fn take(&mut self, message: &LiveMessage) {
        match message {
            LiveMessage::Events { gate_id, events }
                if self.viewer.authed.can_see_gate(*gate_id) =>
            {
                self.owe(*gate_id, Owed::Whole(events.to_vec()))
            }
            LiveMessage::GateStatus { gate_id } if self.viewer.authed.can_see_gate(*gate_id) => {
                self.owe(*gate_id, Owed::Health)
            }
            _ => {}
        }
    }

    /// Takes every message already waiting, without waiting. `false` once the centre's
    /// channel is closed.
    async fn take_waiting(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(m) => self.take(&m),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Lagged(_)) => self.owe_every_gate().await,
                Err(TryRecvError::Closed) => return false,
            }
        }
    }

    /// A whole gate's update (after `events` were ingested); remembers its health parts as
    /// sent.
    async fn gate(&mut self, gate_id: i64, events: &[JournalEvent]) -> Option<Event> {
        let lang = self.viewer.lang;
        if self
            .shared
            .as_ref()
            .is_none_or(|(read, _, _)| read.elapsed() > SHARED_FOR)
        {
            let loaded = async {
                let names = Names::load(&self.state.db).await?;
                let fade_s = settings::load(&self.state.db).await?.verdict_fade_s;
                Ok::<_, RepoError>((std::time::Instant::now(), names, fade_s))
            };
            match loaded.await {
                Ok(shared) => self.shared = Some(shared),
                Err(e) => {
                    tracing::error!(error = %e, "live view: cannot read the operators' names");
                    return None;
                }
            }
        }
        let lanes = match gates::lanes(&self.state.db, gate_id).await {
            Ok(lanes) => self.lanes.entry(gate_id).insert_entry(lanes).into_mut(),
            Err(e) => {
                tracing::error!(error = %e, "live view: cannot read a gate's lanes");
                return None;
            }
        };
        let (_, names, fade_s) = self.shared.as_ref().expect("loaded above");
        match gate_update(&self.state, lang, (names, *fade_s), gate_id, lanes, events).await {
            Ok((data, health)) => {
                self.health_sent.insert(gate_id, health);
                Some(Event::default().event("gate").data(data))
            }
            Err(e) => {
                tracing::error!(error = %e, "live view: cannot render a gate");
                None
            }
        }
    }

    /// A gate's health parts, if they changed since last sent.
    async fn health(&mut self, gate_id: i64) -> Option<Event> {
        let lanes = match self.lanes.entry(gate_id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(gates::lanes(&self.state.db, gate_id).await.ok()?)
            }
        };
        let parts = health_parts(&self.state, self.viewer.lang, gate_id, lanes)
            .await
            .ok()?;
        let html: String = parts.iter().map(|p| p.html.as_str()).collect();
        if self.health_sent.get(&gate_id) == Some(&html) {
            return None;
        }
        self.health_sent.insert(gate_id, html);
        let data = serde_json::to_string(&Update {
            gate_id,
            parts,
            alert: None,
        })
        .unwrap_or_default();
        Some(Event::default().event("gate").data(data))
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            let open = self.take_waiting().await;
            if let Some((gate_id, owed)) = self.owed.pop_front() {
                let event = match owed {
                    Owed::Whole(events) => self.gate(gate_id, &events).await,
                    Owed::Health => self.health(gate_id).await,
                };
                if event.is_some() {
                    return event;
                }
                continue;
            }
            if !open {
                return None;
            }
            // Nothing owed: names and the fade are read again for the next updates.
            self.shared = None;
            match self.rx.recv().await {
                Ok(m) => self.take(&m),
                Err(RecvError::Lagged(_)) => self.owe_every_gate().await,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, seq: i64, plate: Option<&str>, body: serde_json::Value) -> PassageEvent {
        PassageEvent {
            gate_id: 1,
            journal_no: 1,
            seq,
            lane: "entry".into(),
            kind: kind.into(),
            at: chrono::Utc::now(),
            received_at: chrono::Utc::now(),
            plate: plate.map(str::to_string),
            vehicle_id: None,
            permit_id: None,
            direction: None,
            granted: None,
            reason: None,
            body,
        }
    }

    fn fault(seq: i64, code: &str) -> PassageEvent {
        event(
            "lane_fault",
            seq,
            None,
            serde_json::json!({ "fault": code }),
        )
    }

    #[test]
    fn the_fire_input_is_active_until_a_later_clear() {
        // Newest first, as the lane's faults are read.
        assert!(fire_active(&[fault(3, "tamper"), fault(2, "fire_alarm")]));
        assert!(!fire_active(&[
            fault(4, "fire_alarm_cleared"),
            fault(2, "fire_alarm")
        ]));
        assert!(!fire_active(&[fault(1, "arm_did_not_open")]));
    }

    #[test]
    fn only_faults_a_guard_must_act_on_show_on_the_lane() {
        for code in [
            "unauthorized_passage",
            "arm_did_not_open",
            "arm_did_not_close",
            "io_read_failed",
            "tamper",
        ] {
            assert!(fault_shown(Lang::Zh, code).is_some(), "{code}");
        }
        for code in ["denied", "guard_opened", "io_recovered", "fire_alarm", ""] {
            assert!(fault_shown(Lang::Zh, code).is_none(), "{code}");
        }
        assert_eq!(
            fault_shown(Lang::Zh, "unauthorized_passage").map(|f| (f.0, f.1)),
            Some(("tailgate", "尾随/未授权通过"))
        );
    }

    #[test]
    fn a_barrier_io_fault_the_io_recovered_from_no_longer_shows() {
        let faults = [fault(5, "io_recovered"), fault(4, "io_read_failed")];
        assert!(shown_fault(Lang::Zh, &faults).is_none());
        let faults = [
            fault(6, "io_read_failed"),
            fault(5, "io_recovered"),
            fault(4, "io_read_failed"),
        ];
        assert_eq!(shown_fault(Lang::Zh, &faults).map(|f| f.seq), Some(6));
        let faults = [fault(5, "io_recovered"), fault(3, "unauthorized_passage")];
        assert_eq!(shown_fault(Lang::Zh, &faults).map(|f| f.seq), Some(3));
    }

    #[test]
    fn the_anonymous_passage_of_a_tailgating_alarm_is_not_a_row_of_its_own() {
        let anonymous = event("passage", 10, None, serde_json::json!({}));
        let identified = event("passage", 7, Some("京A12345"), serde_json::json!({}));
        let rows = vec![
            fault(11, "unauthorized_passage"),
            anonymous.clone(),
            identified.clone(),
        ];
        assert!(tailgate_passage(&anonymous, &rows));
        assert!(!tailgate_passage(&identified, &rows));
        // Without the alarm, an anonymous passage (a guard's open) is an ordinary row.
        assert!(!tailgate_passage(&anonymous, &rows[1..]));
    }
}
