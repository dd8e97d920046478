//! The visitor's pass page (访客通行码) `GET /pass/{secret}`: public, reached only by the
//! unguessable link sent to the visitor, made for a phone held up to the lane's scanner — the
//! QR code big and first, then the plate, host, time window (in the site's zone), gates,
//! single or multiple use, and what the pass is good for now in words (有效 / 已使用 / 已作废 /
//! 已过期 / 未生效). zh-CN first; English through the language switch.
//!
//! The QR code is an inline SVG rendered here ([`qr_svg`], the `qrcode` crate): no script, no
//! outside asset, nothing the visitor's phone must fetch from elsewhere.
//!
//! What it never does: tell an unknown secret from a malformed one or from a pass that is gone
//! (one 404 that reveals nothing), show the driver's phone, or change anything.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::central::passes::{self, PassState};
use crate::central::repo::bookings::Booking;
use crate::central::state::AppState;
use crate::i18n::{Lang, gate_rights_words, html_lang, lang_of, t};

/// The QR code of `text` as an inline `<svg>` element (black modules on white, a quiet zone of
/// four modules, scaled by the page's CSS). `None` if the text does not fit a QR code.
pub fn qr_svg(text: &str) -> Option<String> {
    use qrcode::render::svg;
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The renderer writes a standalone document; the page needs the element alone.
    let start = image.find("<svg")?;
    Some(image[start..].to_string())
}

fn shell(lang: Lang, title: &str, here: &str, body: Markup) -> Markup {
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
                meta name="robots" content="noindex";
                meta name="referrer" content="no-referrer";
                title { (title) " · " (t(lang, "Gatehouse 校园门禁", "Gatehouse")) }
                link rel="icon" href="/assets/icon.svg";
                link rel="stylesheet" href="/assets/pass.css";
            }
            body.pass-page {
                main.pass { (body) }
                footer.pass-foot {
                    a.lang id="lang-switch" lang=(other)
                        href={ "/lang?to=" (other) "&next=" (super::urlencode(here)) } { (other_label) }
                }
            }
        }
    }
}

fn not_found(lang: Lang) -> Response {
    let body = html! {
        h1 { (t(lang, "通行码不存在", "No such pass")) }
        p.pass-help { (t(lang, "请核对链接，或联系被访人重新发送。", "Check the link, or ask your host to send it again.")) }
    };
    let page = shell(lang, t(lang, "通行码", "Pass"), "/", body);
    let mut response = (StatusCode::NOT_FOUND, page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    response
}

/// A time window in the site's zone: `2026-12-07 07:20 – 12:20` within a day, both dates
/// otherwise.
fn window(tz: chrono_tz::Tz, from: chrono::DateTime<Utc>, until: chrono::DateTime<Utc>) -> String {
    let (from, until) = (from.with_timezone(&tz), until.with_timezone(&tz));
    let end = if from.date_naive() == until.date_naive() {
        until.format("%H:%M")
    } else {
        until.format("%Y-%m-%d %H:%M")
    };
    format!("{} – {end}", from.format("%Y-%m-%d %H:%M"))
}

/// The pass's card: QR code, status, details. Shared with the printable slip.
pub fn card(
    lang: Lang,
    tz: chrono_tz::Tz,
    pass: &passes::StoredPass,
    booking: &Booking,
    gate_names: &BTreeMap<i64, String>,
    state: PassState,
) -> Markup {
    let (zh, en) = state.label();
    let status = t(lang, zh, en);
    let class = match state {
        PassState::Valid => "ok",
        PassState::NotYetValid => "wait",
        _ => "off",
    };
    let usable = matches!(state, PassState::Valid | PassState::NotYetValid);
    html! {
        section.pass-card.(class) id="pass-card" data-state=(class) {
            p.pass-status id="pass-status" { (status) }
            @if usable {
                @match qr_svg(&pass.token) {
                    Some(svg) => { div.pass-qr id="pass-qr" role="img" aria-label=(t(lang, "通行二维码", "Pass QR code")) { (PreEscaped(svg)) } }
                    None => { p { (t(lang, "二维码无法生成，请联系门卫", "The QR code cannot be drawn: ask the guard")) } }
                }
                p.pass-help id="pass-instruction" { (t(lang, "请将二维码对准车道扫码器", "Hold the QR code up to the lane's scanner")) }
            } @else {
                p.pass-help id="pass-instruction" { (t(lang, "此通行码现在不能使用，请联系被访人或门卫", "This pass cannot be used now: contact your host or the guard")) }
            }
            dl.pass-facts {
                dt { (t(lang, "车牌号", "Plate")) } dd.plate id="pass-plate" { (booking.plate) }
                dt { (t(lang, "被访人", "Host")) } dd id="pass-host" { (booking.host_name) @if !booking.department.is_empty() { " · " (booking.department) } }
                dt { (t(lang, "有效时段", "Valid")) }
                dd id="pass-window" { (window(tz, booking.slot_from, booking.slot_until)) }
                dt { (t(lang, "通行大门", "Gates")) } dd id="pass-gates" { (gate_rights_words(lang, &booking.gates, |id| gate_names.get(&id).cloned())) }
                dt { (t(lang, "使用次数", "Use")) }
                dd id="pass-use" {
                    @if booking.single_use { (t(lang, "一次（进、出各一次）", "once (one entry, one exit)")) }
                    @else { (t(lang, "时段内不限次数", "any number of times within the window")) }
                }
            }
            details.pass-details {
                summary { (t(lang, "详情", "Details")) }
                p { (t(lang, "通行码内容（扫码器读不出时可交门卫核对）：", "The pass text (for the guard, if the scanner cannot read it):")) }
                textarea id="pass-token" readonly rows="4" aria-label=(t(lang, "通行码内容", "Pass text")) { (pass.token) }
                p.pass-meta { (t(lang, "预约编号 ", "Booking no. ")) (booking.id) " · " (t(lang, "密钥 ", "key ")) (pass.kid) }
            }
        }
    }
}

/// The site's gate names, for the gates' words (none if they cannot be read: ids are shown).
pub async fn gate_names(state: &AppState, lang: Lang) -> BTreeMap<i64, String> {
    use crate::central::db::{MAX_PAGE, Page};
    use crate::central::repo::gates::{self, GateQuery};
    let page = Page {
        limit: MAX_PAGE,
        offset: 0,
    };
    match gates::search(&state.db, &GateQuery::default(), page).await {
        Ok(p) => p
            .items
            .iter()
            .map(|g| (g.id, g.name_in(lang).to_string()))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// `GET /pass/{secret}`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(secret): Path<String>,
) -> Response {
    let lang = lang_of(&headers);
    let Ok(Some((pass, booking))) = passes::by_secret(&state.db, &secret).await else {
        return not_found(lang);
    };
    let now = Utc::now();
    let pass_state = PassState::of(&pass, &booking, now);
    let names = gate_names(&state, lang).await;
    let body = html! {
        header.pass-head {
            p.site { (t(lang, "校园访客通行码", "Campus visitor pass")) }
            h1 { (booking.plate) }
        }
        (card(lang, state.site_tz, &pass, &booking, &names, pass_state))
    };
    let here = format!("/pass/{secret}");
    let mut response =
        shell(lang, t(lang, "访客通行码", "Visitor pass"), &here, body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_token_renders_as_an_svg_qr_code_without_the_xml_header() {
        let svg = qr_svg("GHP1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2Rl").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("<path") || svg.contains("<rect"));
        assert!(!svg.contains("<?xml"));
    }
}
