//! `/visit` and `/visit/s/{token}`: self-booking on a phone (访客自助预约), no sign-in. A
//! visitor names their host by staff/student number or phone, gives the plate (province picker
//! plus the rest typed any way), their name and phone, the purpose and the time; the page sends
//! it to `POST /api/v1/public/visit-requests` (`visit.js`) and goes to the status link it gets.
//!
//! The status page says in plain words where the request stands — waiting for the host,
//! approved (with the link to the pass, or, without one, what to do at the gate), rejected,
//! cancelled, expired — and reloads itself every 30 s while it can still change (a `<meta refresh>`, no script).
//!
//! Phone first (390 px wide and up), zh-CN first with English through the language switch.
//!
//! A link whose token this site did not make reads "no such request" (a page, status 200: the
//! server's error layer would turn a 404 page into JSON); the JSON status endpoint answers 404.
//!
//! What it never does: show anything of the booking beyond its state, slot and pass link, say
//! whether a host exists, or answer a status read over the source's limit.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, DurationRound, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::central::api::auth::ClientAddr;
use crate::central::api::public_visits::{VisitState, status_of};
use crate::central::rate_limit::{Kind, retry_after_secs};
use crate::central::repo::settings;
use crate::central::state::AppState;
use crate::domain::plate::PROVINCES;
use crate::i18n::{Lang, html_lang, lang_of, t};

use super::PageError;

/// Seconds between two reloads of a status that can still change.
const REFRESH_SECS: u32 = 30;

/// The document around a public page of this module.
fn document(lang: Lang, title: &str, here: &str, refresh: bool, body: Markup) -> Markup {
    let (other, other_label) = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    html! {
        (DOCTYPE)
        html lang=(html_lang(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content=(REFRESH_SECS); }
                title { (title) " · " (t(lang, "访客预约", "Visit booking")) }
                link rel="icon" href="/assets/icon.svg";
                link rel="stylesheet" href="/assets/visit.css";
                script src="/assets/visit.js" defer {}
            }
            body.visit {
                header.visit-top {
                    span.brand { img src="/assets/icon.svg" alt="" width="24" height="24"; " " (t(lang, "校园访客预约", "Campus visit booking")) }
                    a.lang id="lang-switch" href={ "/lang?to=" (other) "&next=" (super::urlencode(here)) } lang=(other) { (other_label) }
                }
                main.visit-main { (body) }
            }
        }
    }
}

/// `GET /visit`: the request form.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let lang = lang_of(&headers);
    let site = settings::load(&state.db).await?;
    let local_now = Utc::now().with_timezone(&state.site_tz);
    let start = Utc::now()
        .duration_trunc(Duration::minutes(30))
        .unwrap_or_else(|_| Utc::now())
        + Duration::minutes(30);
    let start_local = start.with_timezone(&state.site_tz);
    let end_local = (start + Duration::hours(2)).with_timezone(&state.site_tz);
    let offset = {
        use chrono::Offset;
        local_now.offset().fix().to_string()
    };
    let body = html! {
        h1 { (t(lang, "预约来访", "Request a visit")) }
        p.lead { (t(lang, "填写后由被访人确认；确认后本页会显示通行码。", "Your host confirms the visit; then your pass appears on the status page.")) }
        form id="visit-form" data-url="/api/v1/public/visit-requests" data-utc-offset=(offset) novalidate {
            fieldset {
                legend { (t(lang, "被访人", "Host")) }
                div.field {
                    label for="v-host" { (t(lang, "被访人工号/学号或手机号", "Host's staff/student no. or phone")) }
                    input id="v-host" name="host" required autocomplete="off" maxlength="64" placeholder=(t(lang, "如 T2003117 或 138 1234 5678", "e.g. T2003117 or 138 1234 5678"));
                    span.error data-error-for="host" {}
                }
            }
            fieldset {
                legend { (t(lang, "车辆与访客", "Vehicle and visitor")) }
                div.field {
                    label for="v-plate" { (t(lang, "车牌号", "Plate")) }
                    div.plate-input {
                        label.sr-only for="v-province" { (t(lang, "省份简称", "Province")) }
                        select id="v-province" name="province" {
                            @for p in PROVINCES { option value=(p) selected[p.to_string() == site.province] { (p) } }
                            option value="" { (t(lang, "其他", "Other")) }
                        }
                        input id="v-plate" name="plate" required autocomplete="off" autocapitalize="characters" maxlength="20" placeholder="A12345" aria-describedby="v-plate-help";
                    }
                    small id="v-plate-help" { (t(lang, "选择省份后输入其余字符；小写、空格和“·”均可", "Pick the province, then type the rest; lower case, spaces and “·” are fine")) }
                    span.error data-error-for="plate" {}
                }
                div.field {
                    label for="v-name" { (t(lang, "访客姓名", "Your name")) }
                    input id="v-name" name="visitor_name" required autocomplete="name" maxlength="50";
                    span.error data-error-for="visitor_name" {}
                }
                div.field {
                    label for="v-phone" { (t(lang, "手机号", "Mobile phone")) }
                    input id="v-phone" name="visitor_phone" type="tel" inputmode="tel" required autocomplete="tel" placeholder="13912345678";
                    span.error data-error-for="visitor_phone" {}
                }
                div.field {
                    label for="v-email" { (t(lang, "邮箱（可不填）", "E-mail (optional)")) }
                    input id="v-email" name="visitor_email" type="email" inputmode="email" autocomplete="email";
                    span.error data-error-for="visitor_email" {}
                }
                div.field {
                    label for="v-purpose" { (t(lang, "来访事由", "Purpose")) }
                    input id="v-purpose" name="purpose" autocomplete="off" maxlength="200" placeholder=(t(lang, "如 学术交流", "e.g. a meeting"));
                    span.error data-error-for="purpose" {}
                }
            }
            fieldset {
                legend { (t(lang, "来访时间（北京时间）", "Time (Beijing time)")) }
                div.field {
                    label for="v-date" { (t(lang, "日期", "Date")) }
                    input id="v-date" name="date" type="date" required value=(start_local.format("%Y-%m-%d").to_string()) data-skip;
                }
                div.times {
                    div.field {
                        label for="v-from" { (t(lang, "从", "From")) }
                        input id="v-from" name="from" type="time" step="60" required value=(start_local.format("%H:%M").to_string()) data-skip;
                    }
                    div.field {
                        label for="v-until" { (t(lang, "到", "Until")) }
                        input id="v-until" name="until" type="time" step="60" required value=(end_local.format("%H:%M").to_string()) data-skip;
                    }
                }
                span.error data-error-for="slot_from" {}
                span.error data-error-for="slot_until" {}
            }
            p.form-status role="status" aria-live="polite" {}
            button.primary type="submit" { (t(lang, "提交预约", "Send request")) }
        }
        p.note { (t(lang, "提交后请保存状态页面链接，凭它查看审核结果和通行码。", "Keep the status page's link: it shows the decision and your pass.")) }
    };
    Ok(document(
        lang,
        t(lang, "预约来访", "Request a visit"),
        "/visit",
        false,
        body,
    )
    .into_response())
}

/// The words for a state: (heading zh, heading en, explanation zh, explanation en).
fn words(state: VisitState) -> (&'static str, &'static str, &'static str, &'static str) {
    match state {
        VisitState::Pending => (
            "等待被访人确认",
            "Waiting for your host",
            "您的预约已提交，被访人确认后这里会显示通行码。本页每 30 秒自动刷新。",
            "Your request was sent. Once your host confirms it, your pass appears here. This page refreshes every 30 seconds.",
        ),
        VisitState::Approved => (
            "预约已通过",
            "Approved",
            "被访人已同意您的来访。到校门时出示通行码即可。",
            "Your host approved the visit. Show the pass at the gate.",
        ),
        VisitState::Visited => (
            "已到访",
            "Visited",
            "您已按预约来访。",
            "You have made this visit.",
        ),
        VisitState::Rejected => (
            "预约未通过",
            "Not approved",
            "被访人未同意这次来访。如有疑问，请直接联系被访人。",
            "Your host did not approve this visit. Please contact your host.",
        ),
        VisitState::Cancelled => (
            "预约已取消",
            "Cancelled",
            "这次预约已被取消。",
            "This visit was cancelled.",
        ),
        VisitState::Expired => (
            "预约已过期",
            "Expired",
            "预约的时间已过。如需来访，请重新预约。",
            "The visit's time has passed. Please request a new visit.",
        ),
    }
}

/// `GET /visit/s/{token}`: where the request stands.
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    addr: ClientAddr,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let lang = lang_of(&headers);
    if let Err(wait) = state
        .public_limits
        .check_at(Kind::Read, &addr.0, std::time::Instant::now())
    {
        let secs = retry_after_secs(wait);
        let body = document(
            lang,
            t(lang, "请稍后再试", "Please wait"),
            "/visit",
            false,
            html! {
                h1 { (t(lang, "请稍后再试", "Please wait")) }
                p { (t(lang, "刷新太频繁了，请过一会儿再打开本页。", "This page was opened too often; please try again in a moment.")) }
            },
        );
        let mut response = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(response);
    }
    let here = format!("/visit/s/{token}");
    let Some(status) = status_of(&state, &token).await? else {
        let body = document(
            lang,
            t(lang, "没有这个预约", "No such request"),
            "/visit",
            false,
            html! {
                h1 { (t(lang, "没有这个预约", "No such request")) }
                p { (t(lang, "请检查链接是否完整，或重新预约。", "Check that the link is complete, or request a new visit.")) }
                p { a.button href="/visit" { (t(lang, "重新预约", "Request a visit")) } }
            },
        );
        // A page, not a 404: the server's error layer answers every non-JSON 404 with the
        // API's JSON body, which a visitor's phone would show raw. (The JSON status endpoint
        // answers 404.)
        return Ok(body.into_response());
    };
    let (h_zh, h_en, p_zh, p_en) = words(status.state);
    let waiting_for_pass = status.state == VisitState::Approved && status.pass_url.is_none();
    let tz = state.site_tz;
    let from = status.slot_from.with_timezone(&tz);
    let until = status.slot_until.with_timezone(&tz);
    let same_day = from.date_naive() == until.date_naive();
    let body = html! {
        section.status-card.(status_class(status.state)) id="visit-status" data-state=(state_code(status.state)) {
            h1 { (t(lang, h_zh, h_en)) }
            p { (t(lang, p_zh, p_en)) }
            dl {
                dt { (t(lang, "来访时间", "Time")) }
                dd {
                    (from.format("%Y-%m-%d %H:%M").to_string()) " – "
                    @if same_day { (until.format("%H:%M").to_string()) } @else { (until.format("%Y-%m-%d %H:%M").to_string()) }
                }
            }
            @if status.state == VisitState::Approved {
                @match &status.pass_url {
                    Some(url) => { p { a.button.primary id="pass-link" href=(url) { (t(lang, "查看通行码", "Show my pass")) } } }
                    None => { p.pass-pending id="pass-pending" { (t(lang, "暂无通行码：到校时请向门卫报车牌号，核对预约后放行。", "No pass yet: at the gate, give the guard your plate; your booking is checked and you are let in.")) } }
                }
            }
        }
        @if !status.state.is_final() {
            p.note { (t(lang, "请保存本页链接。", "Keep this page's link.")) }
        } @else {
            p { a href="/visit" { (t(lang, "重新预约", "Request another visit")) } }
        }
    };
    let refresh = status.state == VisitState::Pending || waiting_for_pass;
    Ok(document(lang, t(lang, h_zh, h_en), &here, refresh, body).into_response())
}

fn state_code(state: VisitState) -> &'static str {
    match state {
        VisitState::Pending => "pending",
        VisitState::Approved => "approved",
        VisitState::Visited => "visited",
        VisitState::Rejected => "rejected",
        VisitState::Cancelled => "cancelled",
        VisitState::Expired => "expired",
    }
}

fn status_class(state: VisitState) -> &'static str {
    match state {
        VisitState::Pending => "is-waiting",
        VisitState::Approved | VisitState::Visited => "is-ok",
        VisitState::Rejected | VisitState::Cancelled | VisitState::Expired => "is-over",
    }
}
