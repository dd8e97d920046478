//! The booth fallback page, served by the gate controller itself: when the central server
//! cannot be reached, the guard can still open (or keep closed) a lane with a reason.
//!
//! - Authentication without the centre: the guards' user names and argon2 password hashes are
//!   configured at the gate (`[[booth.guard]]` entries of `gate.toml`, see [`BoothConfig`];
//!   hashes from `gatehouse gate hash-password`, never plain passwords). Sessions live in
//!   memory: a random token in an `HttpOnly; SameSite=Strict` cookie, stored as its SHA-256.
//!   Five consecutive failures lock sign-in for a minute; an unknown user name costs the same
//!   argon2 verification as a wrong password.
//! - Served by `gatehouse gate run` on the gate's `[http]` listener beside `/metrics`
//!   ([`crate::gate::http::local_router`]) when at least one guard is configured.
//! - Every form that changes something carries the session's CSRF token; sign-in carries a
//!   pre-session token (double submit), so a foreign page cannot sign the booth in either.
//! - The override goes through [`GateHandle::command`] with [`LaneCommand::Guard`], so it is
//!   journalled like every event and reaches the centre with the others when the link returns.
//! - The page is minimal and bilingual (中文 / English side by side), all inline: no assets.
//!
//! What it never does: open without a reason, log a password or a token, or talk to the centre.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::gate::config::BoothConfig;
use crate::gate::lane::{GuardCommand, GuardOpenReason};
use crate::gate::runtime::{GateHandle, LaneCommand};
use crate::http_cookie::cookie;
use crate::i18n::{GUARD_REASONS, Lang, mode_label, reason_label, state_label};

/// The session cookie of the booth page.
const COOKIE: &str = "gh_booth";
/// The pre-session cookie for the sign-in form.
const PRE_COOKIE: &str = "gh_booth_pre";
/// How long a booth session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failures before sign-in is locked, and for how long.
const LOCK_AFTER: u32 = 5;
const LOCK_FOR: Duration = Duration::from_secs(60);

/// A hash to verify against when the user name is unknown, so that a wrong name takes as long
/// as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::password::hash_password_blocking(&random_token()))
}

#[derive(Debug)]
struct Session {
    username: String,
    csrf: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Sessions {
    by_hash: HashMap<String, Session>,
    failures: u32,
    locked_until: Option<Instant>,
}

#[derive(Clone)]
struct Booth {
    gate: Arc<GateHandle>,
    config: Arc<BoothConfig>,
    sessions: Arc<Mutex<Sessions>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The booth page's routes (`/` and its forms), to mount on the gate's local HTTP listener.
pub fn routes(gate: Arc<GateHandle>, config: BoothConfig) -> axum::Router {
    let booth = Booth {
        gate,
        config: Arc::new(config),
        sessions: Arc::default(),
    };
    axum::Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/command", post(command))
        .with_state(booth)
}

impl Booth {
    /// The signed-in guard and their CSRF token.
    fn session(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let token = cookie(headers, COOKIE)?;
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.by_hash.retain(|_, v| v.expires > now);
        s.by_hash
            .get(&sha(&token))
            .map(|v| (v.username.clone(), v.csrf.clone()))
    }
}

/// A label in Chinese and English side by side (the page is bilingual).
fn both(label: fn(Lang, &str) -> String, code: &str) -> String {
    let (zh, en) = (label(Lang::Zh, code), label(Lang::En, code));
    if zh == en { zh } else { format!("{zh} {en}") }
}

fn frame(body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "岗亭应急页面 Booth fallback" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header { h1 { "岗亭应急页面 " span.en { "Booth fallback page" } } }
                (body)
            }
        }
    }
}

const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC','WenQuanYi Zen Hei',sans-serif;margin:0;background:#f4f6fa;color:#14213d;font-size:16px;line-height:1.4}\
header{background:#7a0000;color:#fff;padding:8px 16px}h1{margin:0;font-size:22px}.en{font-weight:400;font-size:16px;opacity:.85}\
main{padding:12px 16px;max-width:980px}.lane{background:#fff;border-radius:8px;padding:10px 14px;margin-bottom:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}\
.lane h2{margin:0 0 6px;font-size:20px}.row{display:grid;grid-template-columns:11em 1fr;gap:6px;align-items:center;margin:6px 0}\
select,input,button{font:inherit;padding:8px;min-width:0}.row select,.row input{width:100%}button{border-radius:6px;cursor:pointer}\
.open,.keep{font-size:19px;font-weight:700;padding:10px 22px;min-height:48px;margin-top:4px}.open{background:#0b7a3e;color:#fff;border:1px solid #0b7a3e}\
.keep{background:#fff;color:#b00020;border:2px solid #b00020}.msg{padding:10px 14px;border-radius:6px;font-weight:700;font-size:18px}\
.ok{background:#d9f5e5;color:#0b7a3e}.bad{background:#fde2e4;color:#b00020}.note{color:#5c677d;font-size:14px}\
.status{display:flex;flex-wrap:wrap;gap:4px 16px;margin:4px 0}.up{color:#0b7a3e}.down{color:#b00020;font-weight:700}\
.last{padding:6px 10px;border-radius:6px;font-size:17px;margin:6px 0}.who{display:flex;flex-wrap:wrap;align-items:center;gap:8px 16px}.who p{margin:0}\
:focus-visible{outline:3px solid #f4a261;outline-offset:2px}form.login{display:grid;gap:6px;max-width:340px}form.login input{font-size:18px}\
@media(max-width:640px){.row{grid-template-columns:1fr}}";

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

fn login_page(message: Option<&str>) -> Response {
    let pre = random_token();
    let page = frame(html! {
        main {
            p.note { "中心服务器不可用时使用。操作会记录在闸口日志中，并在连接恢复后上传。"
                br; "For use when the central server cannot be reached. Every action is journalled at the gate and uploaded when the link returns." }
            @if let Some(m) = message { p.msg.bad role="alert" { (m) } }
            form.login method="post" action="/login" {
                input type="hidden" name="pre" value=(pre);
                label for="username" { "用户名 User name" }
                input id="username" name="username" autocomplete="username" required autofocus;
                label for="password" { "密码 Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button.open type="submit" { "登录 Sign in" }
            }
        }
    });
    with_cookie(
        Html(page.into_string()).into_response(),
        format!("{PRE_COOKIE}={pre}; HttpOnly; SameSite=Strict; Path=/"),
    )
}

/// Flash messages carried in the redirect's query.
#[derive(Debug, Deserialize)]
struct Flash {
    ok: Option<String>,
    err: Option<String>,
}

async fn index(
    State(booth): State<Booth>,
    headers: HeaderMap,
    axum::extract::Query(flash): axum::extract::Query<Flash>,
) -> Response {
    let Some((username, csrf)) = booth.session(&headers) else {
        return login_page(None);
    };
    let lanes = booth.gate.status();
    let flash_text = |code: &str| match code {
        "opened" => "已抬杆，已记录 · Opened and recorded",
        "kept_closed" => "已保持关闭，已记录 · Kept closed and recorded",
        "reason" => "请选择原因 · Choose a reason",
        "note" => "选择“其他”时须填写说明 · Explain the reason when choosing “Other”",
        "lane" => "没有这个车道 · No such lane",
        "failed" => "闸口控制器未执行命令 · The controller did not carry the command out",
        _ => "",
    };
    let page = frame(html! {
        main {
            div.who {
                p { "值班门卫 Guard: " strong { (username) } }
                form method="post" action="/logout" { input type="hidden" name="csrf" value=(csrf); button type="submit" { "退出 Sign out" } }
            }
            p.note { "中心服务器不可用时使用；每次操作都记录在闸口日志中，连接恢复后上传。"
                br; "For use while the central server is unreachable; every command is journalled at the gate and uploaded when the link returns." }
            @if let Some(ok) = &flash.ok { p.msg.ok role="status" id="booth-result" { (flash_text(ok)) } }
            @if let Some(err) = &flash.err { p.msg.bad role="alert" id="booth-result" { (flash_text(err)) } }
            @for lane in &lanes {
                section.lane id={ "lane-" (lane.lane) } {
                    h2 { "车道 Lane " (lane.lane) }
                    p.status {
                        span { "状态 State: " strong { (both(state_label, &lane.state)) } }
                        span { "模式 Mode: " strong { (both(mode_label, &lane.mode)) } }
                        span.(if lane.reader_online { "up" } else { "down" }) { "读卡器 Reader: " (if lane.reader_online { "在线 online" } else { "离线 OFFLINE" }) }
                        span.(if lane.io_online { "up" } else { "down" }) { "道闸IO Barrier I/O: " (if lane.io_online { "在线 online" } else { "离线 OFFLINE" }) }
                    }
                    @if let Some(d) = &lane.last_decision {
                        p.last.(if d.granted { "ok" } else { "bad" }) {
                            "最近 Last: " strong { (d.plate.clone().unwrap_or_else(|| "—".into())) } " · "
                            (both(reason_label, d.reason.as_str()))
                        }
                    }
                    form method="post" action="/command" novalidate {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="lane" value=(lane.lane);
                        div.row {
                            label for={ "reason-" (lane.lane) } { "原因 Reason" }
                            select id={ "reason-" (lane.lane) } name="reason" required {
                                option value="" { "— 请选择 choose —" }
                                @for (code, zh, en) in GUARD_REASONS { option value=(code) { (zh) " · " (en) } }
                            }
                        }
                        div.row {
                            label for={ "note-" (lane.lane) } { "说明 Note" }
                            input id={ "note-" (lane.lane) } name="note" maxlength="200";
                        }
                        button.open type="submit" name="action" value="open" { "抬杆 Open" }
                        " "
                        button.keep type="submit" name="action" value="keep_closed" { "保持关闭 Keep closed" }
                    }
                }
            }
        }
    });
    Html(page.into_string()).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    pre: String,
    username: String,
    password: String,
}

async fn login(
    State(booth): State<Booth>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if cookie(&headers, PRE_COOKIE).as_deref() != Some(form.pre.as_str()) {
        return (
            StatusCode::FORBIDDEN,
            "请重新打开页面 / Reload the page and try again",
        )
            .into_response();
    }
    {
        let s = booth.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.locked_until.is_some_and(|t| t > Instant::now()) {
            return login_page(Some(
                "登录失败次数过多，请 1 分钟后再试 · Too many failures; try again in a minute",
            ));
        }
    }
    let guard = booth
        .config
        .guard
        .iter()
        .find(|g| g.username == form.username.trim())
        .cloned();
    let password = form.password;
    let ok = tokio::task::spawn_blocking(move || {
        let known = guard.is_some();
        let hash = guard.map_or_else(|| dummy_hash().to_string(), |g| g.password_hash);
        let verified = crate::password::verify_password_blocking(&password, &hash);
        known && verified
    })
    .await
    .unwrap_or(false);
    let mut s = booth.sessions.lock().unwrap_or_else(|p| p.into_inner());
    if !ok {
        s.failures += 1;
        if s.failures >= LOCK_AFTER {
            s.locked_until = Some(Instant::now() + LOCK_FOR);
            tracing::warn!("booth page: {LOCK_AFTER} failed sign-ins, locked for a minute");
        }
        drop(s);
        return login_page(Some("用户名或密码错误 · Wrong user name or password"));
    }
    s.failures = 0;
    let token = random_token();
    s.by_hash.insert(
        sha(&token),
        Session {
            username: form.username.trim().to_string(),
            csrf: random_token(),
            expires: Instant::now() + SESSION_TTL,
        },
    );
    tracing::info!(username = %form.username.trim(), "booth page: guard signed in");
    with_cookie(
        Redirect::to("/").into_response(),
        format!(
            "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            SESSION_TTL.as_secs()
        ),
    )
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(booth): State<Booth>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(token) = cookie(&headers, COOKIE) {
        let mut s = booth.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let matches = s
            .by_hash
            .get(&sha(&token))
            .is_some_and(|v| v.csrf == form.csrf);
        if matches {
            s.by_hash.remove(&sha(&token));
        }
    }
    with_cookie(
        Redirect::to("/").into_response(),
        format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    )
}

#[derive(Deserialize)]
struct CommandForm {
    csrf: String,
    lane: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    action: String,
}

/// The gate's open reason for a guard reason code.
fn open_reason(code: &str) -> GuardOpenReason {
    match code {
        "visitor_registered" => GuardOpenReason::VisitorRegistered,
        "permit_holder_without_tag" => GuardOpenReason::PermitChecked,
        "emergency_vehicle" => GuardOpenReason::EmergencyVehicle,
        "device_fault" => GuardOpenReason::EquipmentFault,
        _ => GuardOpenReason::Other,
    }
}

async fn command(
    State(booth): State<Booth>,
    headers: HeaderMap,
    Form(form): Form<CommandForm>,
) -> Response {
    let Some((username, csrf)) = booth.session(&headers) else {
        return (StatusCode::UNAUTHORIZED, "请先登录 / Sign in first").into_response();
    };
    if form.csrf != csrf {
        return (
            StatusCode::FORBIDDEN,
            "请重新打开页面 / Reload the page and try again",
        )
            .into_response();
    }
    let note = Some(form.note.trim().to_string()).filter(|n| !n.is_empty());
    let err = if !crate::i18n::is_guard_reason(&form.reason) {
        Some("reason")
    } else if form.reason == "other" && note.is_none() {
        Some("note")
    } else if !booth.gate.status().iter().any(|l| l.lane == form.lane) {
        Some("lane")
    } else {
        None
    };
    if let Some(err) = err {
        return Redirect::to(&format!("/?err={err}")).into_response();
    }
    let (guard_command, done) = match form.action.as_str() {
        "open" => (GuardCommand::Open(open_reason(&form.reason)), "opened"),
        _ => (GuardCommand::KeepClosed, "kept_closed"),
    };
    let result = booth
        .gate
        .command(
            &form.lane,
            LaneCommand::Guard {
                operator: username.clone(),
                command: guard_command,
                reason: form.reason.clone(),
                note: note.map(|n| n.chars().take(200).collect()),
                plate: None,
                done: None,
            },
        )
        .await;
    match result {
        Ok(()) => {
            tracing::info!(%username, lane = %form.lane, action = %form.action, reason = %form.reason, "booth page: guard command");
            Redirect::to(&format!("/?ok={done}")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, lane = %form.lane, "booth page: command failed");
            Redirect::to("/?err=failed").into_response()
        }
    }
}
