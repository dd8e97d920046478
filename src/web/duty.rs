//! The guard's shift at the console (值班): signing in at a booth and off again, the handover
//! notes one shift leaves the next (交接班, each with a link to the shift report of the duty it
//! closes), and the booth's figures — vehicles on campus now by category (`/console/figures`
//! re-renders them for `paper.js`, which refreshes them when the live lanes change and once a
//! minute).
//!
//! Vehicles inside: every vehicle whose latest passage was an entry (`stats_presence`, by the
//! category it entered with: staff, student, visitor, unregistered outside vehicles, …), plus
//! the visitors registered at a booth who are still on campus but whose entry has not reached
//! the centre yet (an open `visits` row with no presence row inside for its plate). Campus-wide
//! first; then how many of them came in by the guard's booth (the gate they are on duty at,
//! or their only gate).
//!
//! What it never does: decide who may sign in where (the API checks the guard's gates).

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};
use sqlx::Row;

use super::Viewer;
use super::layout::local_time;
use super::names::Names;
use crate::central::db::{Db, RepoError};
use crate::central::repo::duty;
use crate::central::repo::gates::Gate;
use crate::central::state::AppState;
use crate::central::traffic::{UNREGISTERED, VISITOR};
use crate::i18n::{Lang, category_label, t};

/// The duty panel of the console: who is on duty where, sign-in / sign-off, handover notes.
pub async fn panel(state: &AppState, viewer: &Viewer, gates: &[Gate]) -> Result<Markup, RepoError> {
    let lang = viewer.lang;
    let current = duty::current(&state.db, viewer.authed.operator_id).await?;
    let note_gate = current
        .as_ref()
        .map(|d| d.gate_id)
        .or(gates.first().map(|g| g.id));
    let notes = match note_gate {
        Some(g) => duty::notes(&state.db, g, 5).await?,
        None => Vec::new(),
    };
    let names = Names::load(&state.db).await?;
    let gate_name = |id: i64| {
        gates
            .iter()
            .find(|g| g.id == id)
            .map_or_else(|| id.to_string(), |g| g.name_in(lang).to_string())
    };
    Ok(html! {
        section.duty aria-labelledby="duty-title" {
            h2 id="duty-title" { (t(lang, "值班与交接班", "Duty and handover")) }
            @if let Some(d) = &current {
                p id="duty-status" {
                    (t(lang, "当前值班：", "On duty at: ")) strong { (gate_name(d.gate_id)) } " · " (t(lang, "自 ", "since ")) (local_time(state.site_tz, d.started_at))
                    " · " a id="shift-report-link" href="/console/shift" { (t(lang, "本班交班报表", "This shift's report")) }
                }
                form data-api="/api/v1/duty/sign-off" data-reload { button type="submit" { (t(lang, "下班签退", "Sign off duty")) } p.form-status role="status" {} }
            } @else {
                p id="duty-status" { (t(lang, "尚未签到上岗", "Not signed in to a booth")) }
                @for g in gates {
                    form.inline data-api="/api/v1/duty/sign-in" data-reload {
                        input type="hidden" name="gate_id" value=(g.id) data-type="number";
                        button type="submit" { (t(lang, "签到上岗：", "Sign in at: ")) (g.name_in(lang)) }
                    }
                }
            }
            @if let Some(g) = note_gate {
                h3 { (t(lang, "交接班记录", "Handover notes")) " · " (gate_name(g)) }
                ul.notes {
                    @for n in &notes {
                        li data-note=(n.id) {
                            span.meta { (local_time(state.site_tz, n.at)) " " (names.of(&n.operator_name)) }
                            " "
                            @if n.note.is_empty() { span.meta { (t(lang, "（签退，未留言）", "(signed off, no note)")) } } @else { (n.note) }
                            @if let Some(d) = n.duty_id {
                                " " a.report href={ "/console/shift/" (d) } { (t(lang, "交班报表", "Shift report")) }
                            }
                        }
                    }
                    @if notes.is_empty() { li { (t(lang, "暂无", "None yet")) } }
                }
                form data-api="/api/v1/duty/notes" data-reload novalidate {
                    input type="hidden" name="gate_id" value=(g) data-type="number";
                    label for="handover-note" { (t(lang, "留言给下一班", "Note for the next shift")) }
                    textarea id="handover-note" name="note" rows="2" maxlength="1000" {}
                    span.error data-error-for="note" {}
                    button type="submit" { (t(lang, "保存交接记录", "Save note")) }
                    p.form-status role="status" {}
                }
            }
        }
    })
}

/// Vehicles on campus now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inside {
    /// Campus-wide, by category code.
    pub by_category: BTreeMap<String, i64>,
    /// By the gate they came in by.
    pub by_gate: BTreeMap<i64, i64>,
}

impl Inside {
    pub fn total(&self) -> i64 {
        self.by_category.values().sum()
    }
}

/// Counts the vehicles on campus now (two queries, whatever the number of vehicles).
pub async fn inside(db: &Db) -> Result<Inside, RepoError> {
    let mut out = Inside::default();
    let rows = sqlx::query(
        "SELECT category, gate_id, COUNT(*) FROM stats_presence WHERE inside = 1 \
         GROUP BY category, gate_id",
    )
    .fetch_all(db.pool())
    .await?;
    for r in &rows {
        let n: i64 = r.try_get(2)?;
        *out.by_category.entry(r.try_get(0)?).or_default() += n;
        *out.by_gate.entry(r.try_get(1)?).or_default() += n;
    }
    // Registered at a booth, on campus, but their entry not (yet) seen by the centre.
    let rows = sqlx::query(
        "SELECT v.gate_id, COUNT(DISTINCT v.plate) FROM visits v WHERE v.left_ms IS NULL \
         AND NOT EXISTS (SELECT 1 FROM stats_presence s WHERE s.vehicle_key = 'p:' || v.plate \
         AND s.inside = 1) GROUP BY v.gate_id",
    )
    .fetch_all(db.pool())
    .await?;
    for r in &rows {
        let n: i64 = r.try_get(1)?;
        *out.by_category.entry(VISITOR.to_string()).or_default() += n;
        *out.by_gate.entry(r.try_get(0)?).or_default() += n;
    }
    Ok(out)
}

/// The categories always shown (zeros included), in this order; others follow.
const SHOWN: [&str; 4] = ["staff", "student", VISITOR, UNREGISTERED];

/// The booth whose share the figures show: the gate the viewer is on duty at, else their only
/// gate.
async fn booth(state: &AppState, viewer: &Viewer, gates: &[Gate]) -> Option<Gate> {
    let on_duty = duty::current(&state.db, viewer.authed.operator_id)
        .await
        .ok()
        .flatten()
        .map(|d| d.gate_id);
    match on_duty {
        Some(id) => gates.iter().find(|g| g.id == id).cloned(),
        None if gates.len() == 1 && !viewer.sees_all_gates() => gates.first().cloned(),
        None => None,
    }
}

fn render_figures(lang: Lang, tz: chrono_tz::Tz, inside: &Inside, booth: Option<&Gate>) -> Markup {
    let mut cats: Vec<(String, i64)> = SHOWN
        .iter()
        .map(|c| {
            (
                c.to_string(),
                inside.by_category.get(*c).copied().unwrap_or(0),
            )
        })
        .collect();
    let mut others: Vec<(String, i64)> = inside
        .by_category
        .iter()
        .filter(|(c, n)| !SHOWN.contains(&c.as_str()) && **n > 0)
        .map(|(c, n)| (c.clone(), *n))
        .collect();
    others.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // Outside vehicles last, after the registered categories.
    let last = cats.pop();
    cats.extend(others);
    cats.extend(last);
    html! {
        section.figures id="figures" data-refresh="/console/figures" aria-labelledby="figures-title" {
            link rel="stylesheet" href="/assets/paper.css";
            h2 id="figures-title" {
                (t(lang, "在校车辆", "Vehicles on campus")) " "
                strong.total id="inside-total" { (inside.total()) }
            }
            ul.cats {
                @for (c, n) in &cats {
                    li data-category=(c) {
                        span.label { (category_label(lang, c)) }
                        " "
                        strong.n { (n) }
                    }
                }
            }
            p.meta {
                @if let Some(g) = booth {
                    span id="inside-booth" {
                        (t(lang, "其中经", "Of them came in by ")) (g.name_in(lang)) (t(lang, "进入：", ": "))
                        strong { (inside.by_gate.get(&g.id).copied().unwrap_or(0)) }
                    }
                    " · "
                }
                (t(lang, "更新于 ", "Updated ")) (local_time(tz, chrono::Utc::now()))
            }
            script src="/assets/paper.js" defer {}
        }
    }
}

/// The booth's figures shown on the console beside the lanes: vehicles on campus now by
/// category, and how many came in by the guard's booth.
pub async fn figures(
    state: &AppState,
    viewer: &Viewer,
    gates: &[Gate],
) -> Result<Markup, RepoError> {
    let inside = inside(&state.db).await?;
    let booth = booth(state, viewer, gates).await;
    Ok(render_figures(
        viewer.lang,
        state.site_tz,
        &inside,
        booth.as_ref(),
    ))
}

/// `GET /console/figures`: the figures alone, for the console's refresh.
pub async fn figures_part(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, super::PageError> {
    let gates = super::visible_gates(&state, &viewer).await?;
    Ok(figures(&state, &viewer, &gates).await?)
}
