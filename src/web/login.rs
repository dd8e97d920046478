//! `/login` (the sign-in page; it signs in through `POST /api/v1/auth/login`, which sets the
//! `HttpOnly; SameSite=Strict` session cookie) and `/lang` (the language switch, a cookie).

use axum::extract::Query;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::bare;
use crate::i18n::{LANG_COOKIE, lang_of, t};

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a local path (never `//host` or a URL): no open redirect. Every character must be
/// printable ASCII: browsers drop tabs and line breaks from a `Location` (so `/\t/evil.example/`
/// would go off-site as `//evil.example/`), and a header value cannot carry control characters
/// or raw non-ASCII at all (axum's `Redirect` would panic). Anything else falls back to `/`.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            p
        }
        _ => "/",
    }
}

/// `GET /login`.
pub async fn page(headers: HeaderMap, Query(q): Query<Next>) -> Response {
    let lang = lang_of(&headers);
    let next = local_path(q.next.as_deref());
    let other = if lang == crate::i18n::Lang::Zh {
        ("en", "English")
    } else {
        ("zh", "中文")
    };
    bare(
        lang,
        t(lang, "登录", "Sign in"),
        html! {
            main.narrow.login {
                h1 { img src="/assets/icon.svg" alt="" width="40" height="40"; " " (t(lang, "Gatehouse 校园车辆门禁", "Gatehouse campus vehicle access")) }
                form id="login-form" data-next=(next) novalidate {
                    label for="username" { (t(lang, "用户名", "User name")) }
                    input id="username" name="username" autocomplete="username" required autofocus;
                    label for="password" { (t(lang, "密码", "Password")) }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    p.error id="login-error" role="alert" {}
                    button.primary type="submit" { (t(lang, "登录", "Sign in")) }
                }
                p { a.lang id="lang-switch" href={ "/lang?to=" (other.0) "&next=" (super::urlencode(&format!("/login?next={}", super::urlencode(next)))) } lang=(other.0) { (other.1) } }
            }
        },
    )
    .into_response()
}

/// The language switch's parameters.
#[derive(Debug, Deserialize)]
pub struct Switch {
    to: String,
    next: Option<String>,
}

/// `GET /lang?to=en|zh&next=/path`: remembers the language for a year and goes back.
/// (A preference, not data: harmless on a GET.)
pub async fn switch_language(Query(q): Query<Switch>) -> Response {
    let lang = if q.to == "en" { "en" } else { "zh" };
    let cookie = format!("{LANG_COOKIE}={lang}; Path=/; Max-Age=31536000; SameSite=Lax");
    let mut response = Redirect::to(local_path(q.next.as_deref())).into_response();
    if let Ok(v) = cookie.parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
