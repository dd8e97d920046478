//! The page frame every page shares: `<head>` with the embedded CSS/JS, the header with the
//! navigation, the language switch, the signed-in operator and (at the booth) the alarm button.

use maud::{DOCTYPE, Markup, html};

use super::Viewer;
use crate::i18n::{Lang, html_lang, t};

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Live,
    Visitors,
    Passages,
    Office,
    Admin,
}

fn head(lang: Lang, title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(csrf) = csrf { meta name="csrf-token" content=(csrf); }
            title { (title) " · " (t(lang, "Gatehouse 校园门禁", "Gatehouse")) }
            link rel="icon" href="/assets/icon.svg";
            link rel="stylesheet" href="/assets/gatehouse.css";
            link rel="stylesheet" href="/assets/print.css" media="print";
            script src="/assets/gatehouse.js" defer {}
            script src="/assets/alarms.js" defer {}
        }
    }
}

/// A page without the signed-in frame (sign-in, errors).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(html_lang(lang)) {
            (head(lang, title, None))
            body { (body) }
        }
    }
}

/// A page of the signed-in frame. `alarm_gate`: the gate the alarm button raises at (booth).
pub fn page(
    viewer: &Viewer,
    title: &str,
    nav: Nav,
    alarm_gate: Option<i64>,
    body: Markup,
) -> Markup {
    let lang = viewer.lang;
    let (other, other_label) = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    let here = match nav {
        Nav::Live => "/console",
        Nav::Visitors => "/console/visitors",
        Nav::Passages => "/passages",
        Nav::Office => "/office",
        Nav::Admin => "/admin",
    };
    let booth = viewer.authed.has(crate::central::api::auth::Role::Guard) || viewer.is_office();
    html! {
        (DOCTYPE)
        html lang=(html_lang(lang)) {
            (head(lang, title, Some(&viewer.csrf)))
            body data-utc-offset=(viewer.utc_offset) {
                header.top {
                    a.brand href="/" { img src="/assets/icon.svg" alt="" width="28" height="28"; span { (t(lang, "Gatehouse 岗亭", "Gatehouse booth")) } }
                    nav aria-label=(t(lang, "主导航", "Main")) {
                        @if booth {
                            a href="/console" aria-current=[(nav == Nav::Live).then_some("page")] {
                                (t(lang, "实时车道", "Live lanes")) kbd { "F2" }
                            }
                            a href="/console/visitors" aria-current=[(nav == Nav::Visitors).then_some("page")] {
                                (t(lang, "访客登记", "Visitors")) kbd { "F4" }
                            }
                            a href="/passages" aria-current=[(nav == Nav::Passages).then_some("page")] {
                                (t(lang, "通行记录", "Passages"))
                            }
                        }
                        @if viewer.is_office() {
                            a href="/office" aria-current=[(nav == Nav::Office).then_some("page")] {
                                (t(lang, "保卫处", "Security office"))
                            }
                        }
                        @if super::access::HOME.admits(&viewer.authed) {
                            a href="/admin" aria-current=[(nav == Nav::Admin).then_some("page")] {
                                (t(lang, "管理与统计", "Administration"))
                            }
                        }
                    }
                    div.tools {
                        a.lang id="lang-switch" href={ "/lang?to=" (other) "&next=" (super::urlencode(here)) } lang=(other) { (other_label) }
                        span.who title=(viewer.authed.username) { (viewer.display_name) }
                        button.link type="button" id="logout" { (t(lang, "退出", "Sign out")) }
                        @if let Some(gate) = alarm_gate {
                            button.alarm type="button" id="alarm-button" data-gate=(gate)
                                data-confirm=(t(lang, "再按一次 F9 或回车确认报警（Esc 取消）", "Press F9 again or Enter to raise the alarm (Esc cancels)"))
                                data-cancelled=(t(lang, "已取消报警", "Alarm cancelled"))
                                data-stored=(t(lang, "一键报警 · 已送达 · 保卫处已收到，等待确认", "Booth alarm · stored at the centre · awaiting acknowledgement"))
                                aria-keyshortcuts="F9" {
                                (t(lang, "一键报警", "ALARM")) kbd { "F9" }
                            }
                        }
                    }
                }
                div id="flash" role="status" aria-live="assertive" {}
                (body)
            }
        }
    }
}

/// An instant as the booth reads it: in the site's zone `tz`, `MM-DD HH:MM:SS`.
pub fn local_time(tz: chrono_tz::Tz, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&tz).format("%m-%d %H:%M:%S").to_string()
}

/// An instant as a form's `datetime-local` value, in the site's zone `tz`.
pub fn local_input(tz: chrono_tz::Tz, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}
