//! The guard's shift at the console (值班): signing in at a booth and off again, the handover
//! notes one shift leaves the next (交接班), and the booth's figures and paperwork.
//!
//! What it never does: decide who may sign in where (the API checks the guard's gates).

use maud::{Markup, html};

use super::Viewer;
use super::layout::local_time;
use crate::central::db::RepoError;
use crate::central::repo::duty;
use crate::central::repo::gates::Gate;
use crate::central::state::AppState;
use crate::i18n::t;

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
    let gate_name = |id: i64| {
        gates
            .iter()
            .find(|g| g.id == id)
            .map_or_else(|| id.to_string(), |g| g.name.clone())
    };
    Ok(html! {
        section.duty aria-labelledby="duty-title" {
            h2 id="duty-title" { (t(lang, "值班与交接班", "Duty and handover")) }
            @if let Some(d) = &current {
                p id="duty-status" { (t(lang, "当前值班：", "On duty at: ")) strong { (gate_name(d.gate_id)) } " · " (t(lang, "自 ", "since ")) (local_time(state.site_tz, d.started_at)) }
                form data-api="/api/v1/duty/sign-off" data-reload { button type="submit" { (t(lang, "下班签退", "Sign off duty")) } p.form-status role="status" {} }
            } @else {
                p id="duty-status" { (t(lang, "尚未签到上岗", "Not signed in to a booth")) }
                @for g in gates {
                    form.inline data-api="/api/v1/duty/sign-in" data-reload {
                        input type="hidden" name="gate_id" value=(g.id) data-type="number";
                        button type="submit" { (t(lang, "签到上岗：", "Sign in at: ")) (g.name) }
                    }
                }
            }
            @if let Some(g) = note_gate {
                h3 { (t(lang, "交接班记录", "Handover notes")) " · " (gate_name(g)) }
                ul.notes {
                    @for n in &notes { li { span.meta { (local_time(state.site_tz, n.at)) " " (n.operator_name) } " " (n.note) } }
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

/// The booth's figures shown on the console beside the lanes (vehicles inside now, by
/// category). Empty until the figures are built (issue 20, item 7).
pub async fn figures(
    _state: &AppState,
    _viewer: &Viewer,
    _gates: &[Gate],
) -> Result<Markup, RepoError> {
    Ok(html! {})
}
