//! `/admin/gates`: every gate's mode (正常 / 锁闭 / 常开) with what the gate itself last reported
//! (its lanes' modes, devices, when it was last heard from), a per-gate mode change with a
//! reason, and the campus-wide modes — lockdown (全校封闭: every lane locked closed, nothing opens
//! but a guard's manual open) and evacuation (全校疏散: every barrier held open) — each behind a
//! confirmation dialog that states the consequence and asks for a reason and an explicit
//! confirmation before `POST /api/v1/sync/campus-mode` is called.
//!
//! What it never does: talk to a gate (gates learn their mode from the change log through
//! sync), or change a mode without a reason (the API refuses one, and audits each gate).

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::{badge, field, frame, status_line, when};
use crate::central::api::auth::Role;
use crate::central::db::Page;
use crate::central::repo::gates::{self, GATE_MODES, GateQuery};
use crate::central::repo::sync as sync_repo;
use crate::central::state::AppState;
use crate::i18n::{direction_label, mode_label, t};
use crate::web::{PageError, Viewer};

/// `GET /admin/gates`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Markup, PageError> {
    let lang = viewer.lang;
    let all = gates::search(
        &state.db,
        &GateQuery::default(),
        Page {
            offset: 0,
            limit: crate::central::db::MAX_PAGE,
        },
    )
    .await?
    .items;
    let health = sync_repo::health(&state.db).await?;
    let mut lanes = Vec::new();
    for g in &all {
        lanes.push(gates::lanes(&state.db, g.id).await?);
    }
    let n = all.len();
    let locked = all.iter().filter(|g| g.mode == "locked_closed").count();
    let open = all.iter().filter(|g| g.mode == "locked_open").count();
    let body = html! {
        section.panel aria-labelledby="campus-title" {
            h2 id="campus-title" { (t(lang, "全校模式", "Campus-wide mode")) }
            p {
                @match lang {
                    crate::i18n::Lang::Zh => { "共 " (n) " 个大门：" (locked) " 个锁闭，" (open) " 个常开，" (n - locked - open) " 个正常。" }
                    crate::i18n::Lang::En => { (n) " gates: " (locked) " locked closed, " (open) " held open, " (n - locked - open) " normal." }
                }
            }
            div.campus-modes {
                button.danger type="button" id="campus-lockdown" data-dialog="campus-dialog" data-set-mode="locked_closed"
                    data-set-what=(t(lang, "全校封闭：所有大门的所有车道锁闭，任何车辆（含持证车辆）都不会自动放行，只有门卫手动抬杆（须填写原因）。", "Campus lockdown: every lane of every gate is locked closed; no vehicle opens a barrier by itself, permitted or not — only a guard's manual open (with a reason)."))
                    data-set-title=(t(lang, "确认全校封闭", "Confirm campus lockdown")) {
                    (t(lang, "全校封闭…", "Lock down the campus…"))
                }
                button.warn type="button" id="campus-evacuate" data-dialog="campus-dialog" data-set-mode="locked_open"
                    data-set-what=(t(lang, "全校疏散：所有大门的道闸保持抬起常开，任何车辆都可通行（含黑名单车辆），直到恢复正常。", "Campus evacuation: every barrier of every gate is held open and every vehicle passes (blacklisted ones too) until normal mode returns."))
                    data-set-title=(t(lang, "确认全校疏散常开", "Confirm campus evacuation")) {
                    (t(lang, "全校疏散常开…", "Evacuate (hold all open)…"))
                }
                button.ok type="button" id="campus-normal" data-dialog="campus-dialog" data-set-mode="normal"
                    data-set-what=(t(lang, "恢复正常：所有大门恢复按通行证自动判断。", "Back to normal: every gate decides from permits again."))
                    data-set-title=(t(lang, "确认全校恢复正常", "Confirm normal mode everywhere")) {
                    (t(lang, "全校恢复正常…", "Back to normal…"))
                }
            }
            dialog id="campus-dialog" aria-labelledby="campus-dialog-title" {
                form.stack id="campus-form" data-url="/api/v1/sync/campus-mode" data-reload novalidate {
                    h2 id="campus-dialog-title" data-fill="title" {}
                    p.consequence data-fill="what" {}
                    input type="hidden" name="mode" data-fill="mode";
                    (field("campus-reason", "reason", t(lang, "原因（记入审计日志）", "Reason (kept in the audit log)"), html! { textarea id="campus-reason" name="reason" rows="2" required autofocus {} }))
                    div.field {
                        label {
                            input type="checkbox" id="campus-confirm" data-skip required;
                            " "
                            @match lang {
                                crate::i18n::Lang::Zh => { "我确认对全部 " (n) " 个大门执行此操作" }
                                crate::i18n::Lang::En => { "I confirm this for all " (n) " gates" }
                            }
                        }
                    }
                    div.buttons {
                        button type="button" data-close { (t(lang, "取消", "Cancel")) }
                        button.danger type="submit" id="campus-submit" { (t(lang, "确认执行", "Confirm")) }
                    }
                    (status_line())
                }
            }
        }
        section.panel aria-labelledby="gates-title" {
            h2 id="gates-title" { (t(lang, "各大门", "Gates")) }
            table.data id="gates" {
                thead { tr {
                    th scope="col" { (t(lang, "大门", "Gate")) }
                    th scope="col" { (t(lang, "模式", "Mode")) }
                    th scope="col" { (t(lang, "车道（大门上报）", "Lanes (as the gate reports)")) }
                    th scope="col" { (t(lang, "最近联系", "Last heard")) }
                    th scope="col" { (t(lang, "更改模式", "Change mode")) }
                } }
                tbody {
                    @for (i, g) in all.iter().enumerate() {
                        @let h = health.iter().find(|h| h.gate_id == g.id);
                        tr data-gate=(g.id) data-mode=(g.mode) {
                            td { strong { (g.name_in(lang)) } " #" (g.id) @if !g.enabled { br; (badge("revoked", t(lang, "已停用", "disabled"))) } }
                            td { (badge(&g.mode, &mode_label(lang, &g.mode))) }
                            td {
                                @for l in &lanes[i] {
                                    @let reported = h.and_then(|h| h.report.get("lanes")).and_then(|ls| ls.as_array()).and_then(|ls| ls.iter().find(|x| x.get("lane").and_then(|v| v.as_str()) == Some(l.lane_key.as_str()))).and_then(|x| x.get("mode")).and_then(|m| m.as_str()).map(str::to_string);
                                    div data-lane=(l.lane_key) data-reported=[reported.as_deref()] {
                                        (l.name_in(lang)) (paren(lang, direction_label(lang, &l.direction))) (t(lang, "：", ": "))
                                        @match &reported {
                                            Some(m) => (badge(m, &mode_label(lang, m))),
                                            None => small { (t(lang, "未上报", "no report")) },
                                        }
                                    }
                                }
                            }
                            td {
                                @if let Some(h) = h {
                                    @if h.silent { (badge("revoked", t(lang, "失联", "silent"))) br; }
                                    @if let Some(at) = h.last_seen_at { small { (when(state.site_tz, at)) } }
                                } @else {
                                    (t(lang, "从未", "never"))
                                }
                            }
                            td.actions {
                                form data-url={ "/api/v1/gates/" (g.id) "/mode" } data-reload novalidate {
                                    label.sr-only for={ "mode-" (g.id) } { (t(lang, "模式", "Mode")) }
                                    select id={ "mode-" (g.id) } name="mode" {
                                        @for m in GATE_MODES { option value=(m) selected[m == g.mode.as_str()] { (mode_label(lang, m)) } }
                                    }
                                    label.sr-only for={ "mode-reason-" (g.id) } { (t(lang, "原因", "Reason")) }
                                    input id={ "mode-reason-" (g.id) } name="reason" placeholder=(t(lang, "原因", "Reason")) size="12";
                                    button type="submit" { (t(lang, "设置", "Set")) }
                                    span.error data-error-for="reason" {}
                                    (status_line())
                                }
                            }
                        }
                    }
                }
            }
        }
        @if viewer.authed.has(Role::Admin) {
            section.panel aria-labelledby="names-title" {
                h2 id="names-title" { (t(lang, "大门与车道名称", "Gate and lane names")) }
                p.hint { (t(lang, "中文名称显示在中文页面；填写英文名称后，英文页面显示英文名称。大门控制器不使用名称，改名不影响通行。", "The Chinese name shows on the Chinese pages; with an English name, the English pages show that. The gate controllers never use names: renaming changes nothing at the lanes.")) }
                table.data id="gate-names" {
                    thead { tr {
                        th scope="col" { (t(lang, "大门 / 车道", "Gate / lane")) }
                        th scope="col" { (t(lang, "中文名称", "Chinese name")) }
                        th scope="col" { (t(lang, "英文名称", "English name")) }
                        th scope="col" { (t(lang, "保存", "Save")) }
                    } }
                    tbody {
                        @for (i, g) in all.iter().enumerate() {
                            (names_row(lang, &format!("/api/v1/gates/{}/names", g.id), &format!("gate-{}", g.id), html! { strong { (t(lang, "大门 #", "Gate #")) (g.id) } }, &g.name, &g.name_en, true))
                            @for l in &lanes[i] {
                                (names_row(lang, &format!("/api/v1/gates/{}/lanes/{}/names", g.id, l.id), &format!("lane-{}", l.id), html! { span.lane-of { "↳ " (t(lang, "车道", "Lane")) " " span.ident { (l.lane_key) } (paren(lang, direction_label(lang, &l.direction))) } }, &l.name, &l.name_en, false))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        &viewer,
        "/admin/gates",
        t(lang, "大门模式", "Gate modes"),
        body,
    ))
}

/// One row of the names table: what it names, the Chinese and English names and a save button
/// (`PUT` to `url`, the API checks and audits it).
fn names_row(
    lang: crate::i18n::Lang,
    url: &str,
    key: &str,
    what: Markup,
    name: &str,
    name_en: &str,
    required: bool,
) -> Markup {
    let form = format!("names-{key}");
    html! {
        tr data-names=(key) {
            td { (what) }
            td {
                label.sr-only for={ (form) "-zh" } { (t(lang, "中文名称", "Chinese name")) }
                input id={ (form) "-zh" } form=(form) name="name" value=(name) size="14" maxlength="100" required[required];
            }
            td {
                label.sr-only for={ (form) "-en" } { (t(lang, "英文名称", "English name")) }
                input id={ (form) "-en" } form=(form) name="name_en" value=(name_en) size="18" maxlength="100" lang="en"
                    placeholder=(t(lang, "可不填", "Optional"));
            }
            td {
                form id=(form) data-url=(url) data-method="PUT" novalidate {
                    button type="submit" { (t(lang, "保存", "Save")) }
                    span.error data-error-for="name" {}
                    span.error data-error-for="name_en" {}
                    (status_line())
                }
            }
        }
    }
}

/// `text` in brackets as `lang` writes them (（入） / " (In)").
fn paren(lang: crate::i18n::Lang, text: &str) -> String {
    match lang {
        crate::i18n::Lang::Zh => format!("（{text}）"),
        crate::i18n::Lang::En => format!(" ({text})"),
    }
}
