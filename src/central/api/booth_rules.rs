//! The booth's rules for opening by hand: with the site setting `require_duty_for_open` (on by
//! default), a guard may open or keep closed a lane, or register a visitor and open for them,
//! only at the gate where they are signed in on duty (`duty_records`). Administrators and the
//! security office are exempt: they are not at a booth, and the office must be able to act on
//! any gate in an emergency (their commands are audited like every other).
//!
//! A refusal is `409 conflict` with a message saying what to do (sign in at this booth), not
//! `403`: the guard's role and gate rights do allow the command, and it is a state of theirs
//! (not on duty here) that they can change at once. Every refusal is audited
//! (`manual_command_refused`, entity `lane`, id `GATE/LANE`).
//!
//! What it never does: decide whether the operator may act at this gate at all (that is
//! `console::may_act`, checked first), or sign anybody in.

use super::auth::{Authed, Role};
use super::error::{ApiError, ApiResult};
use crate::central::db::{RepoError, audit};
use crate::central::repo::{duty, settings};
use crate::central::state::AppState;
use crate::i18n::Msg;

/// What the guard is refused.
fn refusal(on_duty_at: Option<i64>) -> Msg {
    match on_duty_at {
        None => Msg::new(
            "请先在本岗亭签到上岗：未签到的门卫不能手动抬杆、落杆或登记放行（在岗亭控制台“值班与交接班”栏点“签到上岗”）",
            "Sign in on duty at this booth first: a guard who is not on duty may not open, keep closed or register-and-open (on the booth console, under “Duty and handover”, press “Sign in at”)",
        ),
        Some(_) => Msg::new(
            "请先在本岗亭签到上岗：您当前在其他大门值班，不能操作本大门的道闸",
            "Sign in on duty at this booth first: you are on duty at another gate and may not operate this gate's barriers",
        ),
    }
}

/// `Ok` when `authed` may command `lane` of `gate_id` by hand as far as duty goes: an
/// administrator or security officer, the setting switched off, or a guard on duty at this
/// very gate. Otherwise audits the refusal (`what` is the command: `open`, `keep_closed`,
/// `register_visitor`) and answers `409` with [`refusal`]'s message.
pub async fn require_on_duty(
    state: &AppState,
    authed: &Authed,
    gate_id: i64,
    lane: &str,
    what: &str,
) -> ApiResult<()> {
    if authed.has(Role::Admin) || authed.has(Role::Security) {
        return Ok(());
    }
    if !settings::load(&state.db).await?.require_duty_for_open {
        return Ok(());
    }
    let on_duty_at = duty::current(&state.db, authed.operator_id)
        .await?
        .map(|d| d.gate_id);
    if on_duty_at == Some(gate_id) {
        return Ok(());
    }
    let mut conn = state.db.pool().acquire().await.map_err(RepoError::from)?;
    let after = serde_json::json!({
        "command": what,
        "gate_id": gate_id,
        "lane": lane,
        "on_duty_at": on_duty_at,
        "outcome": "refused_not_on_duty",
    });
    audit(
        &mut conn,
        &authed.actor(),
        "manual_command_refused",
        "lane",
        format!("{gate_id}/{lane}"),
        None,
        Some(&after),
    )
    .await?;
    Err(ApiError::Conflict(refusal(on_duty_at)))
}
