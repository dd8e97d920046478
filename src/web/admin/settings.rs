//! `/admin/settings`: the site settings (站点设置), each with what it means and its bounds in the
//! viewer's language — the province plate inputs start with, whether a guard must be on duty
//! before opening by hand, how long a verdict stays bright, how long a false alarm may be
//! withdrawn, after how long an unstaffed booth alerts the office. Administrators change them
//! (`PUT /api/v1/settings`, audited); the security office sees them read-only.
//!
//! What it never does: save anything itself (the form goes to the API, which checks every
//! value), or show a setting by its code name on the Chinese page.

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::{frame, status_line};
use crate::central::api::auth::Role;
use crate::central::api::settings::{ALARM_WITHDRAW_S, UNSTAFFED_ALERT_MIN, VERDICT_FADE_S};
use crate::central::repo::settings;
use crate::central::state::AppState;
use crate::domain::plate::PROVINCES;
use crate::i18n::{Lang, t};
use crate::web::{PageError, Viewer};

/// One setting as a row of the table: its name (the input's label), then its value with what
/// it means below.
fn setting(
    lang: Lang,
    id: &str,
    label: (&'static str, &'static str),
    meaning: (&'static str, &'static str),
    input: Markup,
) -> Markup {
    html! {
        tr.setting data-setting=(id) {
            th scope="row" { label for=(id) { (t(lang, label.0, label.1)) } }
            td.value {
                (input)
                span.error data-error-for=(id) {}
                div.hint id={ (id) "-meaning" } { (t(lang, meaning.0, meaning.1)) }
            }
        }
    }
}

/// A number of seconds or minutes within `bounds`.
fn number(id: &str, value: u32, (lo, hi): (i64, i64), locked: bool) -> Markup {
    html! {
        input id=(id) name=(id) type="number" data-type="number" min=(lo) max=(hi) step="1"
            value=(value) required disabled[locked] aria-describedby={ (id) "-meaning" };
    }
}

/// `GET /admin/settings`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let s = settings::load(&state.db).await?;
    let locked = !viewer.authed.has(Role::Admin);
    let body = html! {
        section.panel aria-labelledby="settings-title" {
            h2 id="settings-title" { (t(lang, "全部设置（保存后立即生效，并记入审计日志）", "Every setting (takes effect on saving, and is audited)")) }
            @if locked {
                p.hint id="settings-read-only" { (t(lang, "只有系统管理员可以修改这些设置；保卫处可查看。", "Only an administrator may change these settings; the security office may read them.")) }
            }
            form.stack id="settings-form" data-url="/api/v1/settings" data-method="PUT" novalidate {
                table.data.settings {
                    thead { tr {
                        th scope="col" { (t(lang, "设置", "Setting")) }
                        th scope="col" { (t(lang, "取值与含义", "Value and what it means")) }
                    } }
                    tbody {
                        (setting(lang, "province", ("默认省份简称", "Default province"),
                            ("登记访客等输入车牌时，省份选择框默认选中的省份（本校所在省份）。输入的车牌已带省份简称时以输入为准。",
                             "The province the plate pickers start at (the campus's own). A plate typed with its province keeps that one."),
                            html! {
                                select id="province" name="province" disabled[locked] aria-describedby="province-meaning" {
                                    @for p in PROVINCES { option value=(p) selected[p.to_string() == s.province] { (p) } }
                                }
                            }))
                        (setting(lang, "require_duty_for_open", ("门卫须签到上岗后才能抬杆", "Guards must be on duty to open"),
                            ("开启后，门卫须在本岗亭签到上岗，才能手动抬杆、落杆或登记访客并抬杆；被拒绝的操作记入审计日志。系统管理员和保卫处不受此限。",
                             "When on, a guard must be signed in on duty at that gate to open or keep closed a lane by hand or to register a visitor and open; refusals are audited. Administrators and the security office are exempt."),
                            html! {
                                input type="checkbox" id="require_duty_for_open" name="require_duty_for_open"
                                    checked[s.require_duty_for_open] disabled[locked] aria-describedby="require_duty_for_open-meaning";
                            }))
                        (setting(lang, "verdict_fade_s", ("判定结果淡出时间（秒）", "Verdict fades after (seconds)"),
                            ("岗亭控制台上车道的放行/禁止结果在多少秒后变淡，以免旧结果看起来像刚发生的（5–3600 秒）。",
                             "Seconds after which a lane's verdict fades on the booth console, so an old verdict does not look live (5–3600 s)."),
                            number("verdict_fade_s", s.verdict_fade_s, VERDICT_FADE_S, locked)))
                        (setting(lang, "alarm_withdraw_s", ("误报撤回时限（秒）", "False alarm may be withdrawn within (seconds)"),
                            ("门卫一键报警后，在多少秒内可以撤回误报（撤回记入审计，保卫处可见；10–1800 秒）。",
                             "Seconds during which the guard who raised an alarm may withdraw it as false (audited, shown to the office; 10–1800 s)."),
                            number("alarm_withdraw_s", s.alarm_withdraw_s, ALARM_WITHDRAW_S, locked)))
                        (setting(lang, "unstaffed_alert_min", ("岗亭无人值班提醒（分钟）", "Unstaffed booth alert after (minutes)"),
                            ("有车道的大门连续多少分钟无人签到值班时提醒保卫处；0 表示不提醒（0–1440 分钟）。",
                             "Minutes a gate with lanes may be without a guard on duty before the office is alerted; 0 turns the alert off (0–1440 min)."),
                            number("unstaffed_alert_min", s.unstaffed_alert_min, UNSTAFFED_ALERT_MIN, locked)))
                    }
                }
                @if !locked {
                    div.buttons {
                        button.primary type="submit" id="settings-save" { (t(lang, "保存设置", "Save settings")) }
                    }
                }
                (status_line())
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin/settings",
        t(lang, "站点设置", "Site settings"),
        body,
    ))
}
