//! `/console`: the guard's live view of their gates — each lane with the vehicle just decided
//! (plate, tag, holder and category, permit validity), the decision and its reason in large
//! text and colour, device health and mode, the manual open / keep-closed form with its
//! mandatory reason, the recent passages, duty and handover notes. Beside a plate camera's
//! decision: its plate close-up and scene photo, raw read and confidence, the corrected plate
//! and the correction form ([`super::evidence`]); a read the lane held for its low confidence
//! stands out in amber with the near matches, for the guard to open or keep closed.
//! `/console/live` pushes re-rendered lane parts as server-sent events the moment the centre
//! ingests a gate's events (or a plate of one is corrected).
//!
//! What it never does: show a gate the viewer may not see (guards: their own gates only), or
//! act by itself (every action is a `fetch` to the JSON API).

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use maud::{Markup, html};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::broadcast::error::RecvError;

use super::Viewer;
use super::evidence::{self, Size};
use super::layout::{Nav, local_time, page as frame};
use crate::central::db::{Page, RepoError};
use crate::central::live::LiveMessage;
use crate::central::repo::events::{self, EventQuery, PassageEvent};
use crate::central::repo::gates::{self, Gate, GateQuery, Lane};
use crate::central::repo::sync::SILENT_AFTER_MS;
use crate::central::repo::{corrections, duty, permits, visits};
use crate::central::state::AppState;
use crate::domain::plate_match;
use crate::i18n::{
    GUARD_REASONS, Lang, category_label, direction_label, mode_label, reason_label, t,
};
use crate::wire::journal::EventBody;

/// Recent passages shown per gate.
const RECENT: i64 = 8;

/// The gates the viewer may see, in id order.
pub async fn visible_gates(state: &AppState, viewer: &Viewer) -> Result<Vec<Gate>, RepoError> {
    let query = GateQuery {
        only: (!viewer.sees_all_gates()).then(|| viewer.authed.gates.clone()),
        ..GateQuery::default()
    };
    let mut gates = gates::search(
        &state.db,
        &query,
        Page {
            limit: 100,
            offset: 0,
        },
    )
    .await?
    .items;
    gates.sort_by_key(|g| g.id);
    Ok(gates)
}

async fn latest(
    state: &AppState,
    gate_id: i64,
    lane: Option<&str>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<PassageEvent>, RepoError> {
    let q = EventQuery {
        gate_id: Some(gate_id),
        lane: lane.map(str::to_string),
        kind: kind.map(str::to_string),
        ..EventQuery::default()
    };
    Ok(events::search(&state.db, &q, Page { limit, offset: 0 })
        .await?
        .items)
}

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

/// A lane's device health and mode, from its gate's last health report.
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
        @if report.is_none() {
            span.dev.bad { (t(lang, "闸口未连接中心", "Gate not reporting")) }
        }
        (health(t(lang, "读卡器", "Reader"), device("reader_online")))
        (health(t(lang, "道闸IO", "Barrier I/O"), device("io_online")))
        @for camera in reported.as_ref().and_then(|l| l["cameras"].as_array()).into_iter().flatten() {
            span.dev.(if camera["online"].as_bool() == Some(true) { "ok" } else { "bad" }) {
                (t(lang, "相机 ", "Camera ")) (camera["name"].as_str().unwrap_or("?")) " "
                (if camera["online"].as_bool() == Some(true) { t(lang, "在线", "online") } else { t(lang, "离线", "OFFLINE") })
            }
        }
        span.mode { (t(lang, "模式：", "Mode: ")) (mode_label(lang, &mode)) }
    }
}

/// Every lane's health part of a gate, as (element id, HTML).
async fn health_parts(state: &AppState, lang: Lang, gate_id: i64) -> Result<Vec<Part>, RepoError> {
    let report = health_report(state, gate_id).await?;
    Ok(gates::lanes(&state.db, gate_id)
        .await?
        .iter()
        .map(|lane| Part {
            id: health_id(gate_id, &lane.lane_key),
            html: lane_health(lang, lane, report.as_ref()).into_string(),
        })
        .collect())
}

/// A lane's live part: the vehicle just decided and the decision (or the guard's command).
async fn lane_status(state: &AppState, lang: Lang, lane: &Lane) -> Result<Markup, RepoError> {
    let decision = latest(
        state,
        lane.gate_id,
        Some(&lane.lane_key),
        Some("decision"),
        1,
    )
    .await?
    .into_iter()
    .next();
    let override_ = latest(
        state,
        lane.gate_id,
        Some(&lane.lane_key),
        Some("override"),
        1,
    )
    .await?
    .into_iter()
    .next();
    // The newer of the last decision and the last guard command is what the lane shows.
    let shown_override = match (&decision, &override_) {
        (Some(d), Some(o)) if o.seq > d.seq => Some(o),
        (None, Some(o)) => Some(o),
        _ => None,
    };
    let permit = match decision.as_ref().and_then(|d| d.permit_id) {
        Some(id) => permits::get(&state.db, id).await.ok(),
        None => None,
    };
    let camera = decision.as_ref().and_then(|d| evidence::camera_of(&d.body));
    let correction = match &decision {
        Some(d) if camera.is_some() => {
            corrections::get(&state.db, (d.gate_id, d.journal_no, d.seq)).await?
        }
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
    Ok(html! {
        @if let Some(o) = shown_override {
            div.verdict.manual data-seq=(o.seq) {
                (if o.body["action"].as_str() == Some("open") { t(lang, "手动抬杆", "MANUAL OPEN") } else { t(lang, "手动保持关闭", "KEPT CLOSED BY GUARD") })
            }
            p.reason {
                (crate::i18n::guard_reason_label(lang, o.body["reason"].as_str().unwrap_or("")))
                @if let Some(note) = o.body["note"].as_str() { " — " (note) }
            }
            p.meta { (o.body["operator"].as_str().unwrap_or("")) " · " (local_time(state.site_tz, o.at)) }
        } @else if let Some(d) = &decision {
            @let granted = d.granted == Some(true);
            @let reason = d.reason.clone().unwrap_or_default();
            @let held = reason == "held_low_confidence";
            @let class = if reason == "denied_blacklisted" { "blacklist" } else if granted { "granted" } else if held { "held" } else { "denied" };
            div.verdict.(class) data-seq=(d.seq) data-reason=(reason) {
                (if granted { t(lang, "放行", "GRANTED") } else if class == "blacklist" { t(lang, "黑名单", "BLACKLIST") } else if held { t(lang, "待人工确认", "HELD: CHECK") } else { t(lang, "禁止通行", "DENIED") })
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
                dt { (t(lang, "车牌", "Plate")) } dd.plate { (evidence::plate(lang, d.plate.as_deref(), correction.as_ref())) }
                // A plate read without a tag: no empty tag and permit rows pushing the guard's
                // buttons down.
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
        } @else {
            div.verdict.idle { (t(lang, "暂无车辆", "No vehicle yet")) }
        }
    })
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

/// The recent passages of a gate.
async fn recent(state: &AppState, lang: Lang, gate_id: i64) -> Result<Markup, RepoError> {
    let lanes = gates::lanes(&state.db, gate_id).await?;
    let lane_name = |key: &str| {
        lanes
            .iter()
            .find(|l| l.lane_key == key && !l.name.is_empty())
            .map_or_else(|| key.to_string(), |l| l.name.clone())
    };
    let rows: Vec<PassageEvent> = latest(state, gate_id, None, None, 40)
        .await?
        .into_iter()
        .filter(|e| matches!(e.kind.as_str(), "decision" | "override" | "passage"))
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
                    tr.(e.kind.as_str()) data-seq=(e.seq) {
                        td { (local_time(state.site_tz, e.at)) }
                        td { (lane_name(&e.lane)) }
                        td.plate-cell { (evidence::plate(lang, e.plate.as_deref(), fixed.get(&(e.gate_id, e.journal_no, e.seq)))) }
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
                                    (t(lang, "手动：", "Manual: "))
                                    (crate::i18n::guard_reason_label(lang, e.body["reason"].as_str().unwrap_or("")))
                                    " (" (e.body["operator"].as_str().unwrap_or("")) ")"
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

fn command_form(lang: Lang, lane: &Lane) -> Markup {
    let id = format!("{}-{}", lane.gate_id, lane.lane_key);
    html! {
        form.command data-api={ "/api/v1/console/gates/" (lane.gate_id) "/lanes/" (lane.lane_key) "/command" } novalidate {
            div.row {
                label for={ "reason-" (id) } { (t(lang, "手动操作原因", "Manual reason")) }
                select id={ "reason-" (id) } name="reason" required data-lane-reason {
                    option value="" { (t(lang, "— 请选择原因 —", "— choose a reason —")) }
                    @for (code, zh, en) in GUARD_REASONS { option value=(code) { (t(lang, zh, en)) } }
                }
                span.error data-error-for="reason" {}
            }
            div.row {
                label for={ "note-" (id) } { (t(lang, "说明", "Note")) }
                input id={ "note-" (id) } name="note" maxlength="200" autocomplete="off";
                span.error data-error-for="note" {}
            }
            div.buttons {
                button.open type="submit" name="command" value="open" { (t(lang, "抬杆放行", "Open")) }
                button.keep type="submit" name="command" value="keep_closed" { (t(lang, "保持关闭", "Keep closed")) }
            }
            p.form-status role="status" {}
        }
    }
}

/// One gate's panel: its lanes (live part, command form) and recent passages.
async fn gate_panel(state: &AppState, lang: Lang, gate: &Gate) -> Result<Markup, RepoError> {
    let lanes = gates::lanes(&state.db, gate.id).await?;
    let report = health_report(state, gate.id).await?;
    let mut cards = Vec::new();
    for lane in &lanes {
        cards.push((lane, lane_status(state, lang, lane).await?));
    }
    let recent = recent(state, lang, gate.id).await?;
    Ok(html! {
        section.gate id={ "gate-" (gate.id) } aria-labelledby={ "gate-title-" (gate.id) } {
            h2 id={ "gate-title-" (gate.id) } { (gate.name) span.mode { (mode_label(lang, &gate.mode)) } }
            div.lanes {
                @for (lane, status) in &cards {
                    article.lane {
                        h3 { (if lane.name.is_empty() { &lane.lane_key } else { &lane.name })
                            " · " (direction_label(lang, &lane.direction)) }
                        div.health id=(health_id(gate.id, &lane.lane_key)) { (lane_health(lang, lane, report.as_ref())) }
                        div.status id=(status_id(gate.id, &lane.lane_key)) aria-live="polite" { (status) }
                        (command_form(lang, lane))
                    }
                }
                @if lanes.is_empty() { p { (t(lang, "此大门尚未配置车道", "This gate has no lanes configured")) } }
            }
            div id={ "recent-" (gate.id) } { (recent) }
        }
    })
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

/// `GET /console`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, super::PageError> {
    let lang = viewer.lang;
    let gates = visible_gates(&state, &viewer).await?;
    let mut panels = Vec::new();
    for g in &gates {
        panels.push(gate_panel(&state, lang, g).await?);
    }
    let figures = super::duty::figures(&state, &viewer, &gates).await?;
    let duty = super::duty::panel(&state, &viewer, &gates).await?;
    let alarm = alarm_gate(&state, &viewer, &gates).await;
    Ok(frame(
        &viewer,
        t(lang, "实时车道", "Live lanes"),
        Nav::Live,
        alarm,
        html! {
            main.console data-live-url="/console/live" {
                div id="alert" role="alert" hidden {}
                @if gates.is_empty() { p { (t(lang, "您还没有分配大门，请联系管理员。", "No gate is assigned to you; ask an administrator.")) } }
                @for p in &panels { (p) }
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

/// A whole gate's update as JSON, and its health parts' HTML (to tell later health reports
/// that change nothing).
async fn gate_update(
    state: &AppState,
    lang: Lang,
    gate_id: i64,
    alert: Option<String>,
) -> Result<(String, String), RepoError> {
    let mut parts = Vec::new();
    for lane in gates::lanes(&state.db, gate_id).await? {
        parts.push(Part {
            id: status_id(gate_id, &lane.lane_key),
            html: lane_status(state, lang, &lane).await?.into_string(),
        });
    }
    parts.push(Part {
        id: format!("recent-{gate_id}"),
        html: recent(state, lang, gate_id).await?.into_string(),
    });
    let health = health_parts(state, lang, gate_id).await?;
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

fn blacklist_alert(
    lang: Lang,
    events: &[crate::wire::journal::JournalEvent],
    lanes: &[Lane],
) -> Option<String> {
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
                        .find(|l| l.lane_key == e.lane && !l.name.is_empty())
                        .map_or(e.lane.as_str(), |l| l.name.as_str())
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
    let initial: Vec<i64> = visible_gates(&state, &viewer)
        .await
        .map(|g| g.iter().map(|g| g.id).collect())
        .unwrap_or_default();
    let stream = futures::stream::unfold(
        Live {
            rx,
            state,
            viewer,
            initial,
            health_sent: HashMap::new(),
        },
        |mut live| async move {
            let event = live.next().await?;
            Some((Ok(event), live))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One viewer's live stream.
struct Live {
    rx: tokio::sync::broadcast::Receiver<std::sync::Arc<LiveMessage>>,
    state: AppState,
    viewer: Viewer,
    /// Gates whose whole state is still to be sent.
    initial: Vec<i64>,
    /// The health parts last sent per gate: a health report that changes nothing sends nothing.
    health_sent: HashMap<i64, String>,
}

impl Live {
    /// A whole gate's update; remembers its health parts as sent.
    async fn gate(&mut self, gate_id: i64, alert: Option<String>) -> Option<Event> {
        let lang = self.viewer.lang;
        match gate_update(&self.state, lang, gate_id, alert).await {
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

    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(gate_id) = self.initial.pop() {
                if let Some(event) = self.gate(gate_id, None).await {
                    return Some(event);
                }
                continue;
            }
            let message = match self.rx.recv().await {
                Ok(m) => m,
                Err(RecvError::Lagged(_)) => {
                    // Fell behind: start over with every gate's current state.
                    self.initial = visible_gates(&self.state, &self.viewer)
                        .await
                        .map(|g| g.iter().map(|g| g.id).collect())
                        .unwrap_or_default();
                    continue;
                }
                Err(RecvError::Closed) => return None,
            };
            let lang = self.viewer.lang;
            match &*message {
                LiveMessage::Events { gate_id, events } => {
                    if !self.viewer.authed.can_see_gate(*gate_id) {
                        continue;
                    }
                    let lanes = gates::lanes(&self.state.db, *gate_id)
                        .await
                        .unwrap_or_default();
                    let alert = blacklist_alert(lang, events, &lanes);
                    if let Some(event) = self.gate(*gate_id, alert).await {
                        return Some(event);
                    }
                }
                LiveMessage::GateStatus { gate_id } => {
                    if !self.viewer.authed.can_see_gate(*gate_id) {
                        continue;
                    }
                    let Ok(parts) = health_parts(&self.state, lang, *gate_id).await else {
                        continue;
                    };
                    let html: String = parts.iter().map(|p| p.html.as_str()).collect();
                    if self.health_sent.get(gate_id) == Some(&html) {
                        continue;
                    }
                    self.health_sent.insert(*gate_id, html);
                    let data = serde_json::to_string(&Update {
                        gate_id: *gate_id,
                        parts,
                        alert: None,
                    })
                    .unwrap_or_default();
                    return Some(Event::default().event("gate").data(data));
                }
                LiveMessage::Alarm { .. } => continue,
            }
        }
    }
}
