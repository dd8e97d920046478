//! The lane display page, served by the gate itself on its `[http]` listener, for the Android
//! screens mounted at lanes: `GET /display` (the lanes), `GET /display/{lane}` (a full-screen
//! page: big plate, big verdict in green/red/amber, the reason in plain words, the time) and
//! `GET /display/{lane}/events` (server-sent events from the lane's live status: one event per
//! decision, so the page works with the centre down). The page speaks through the browser's
//! speech synthesis in zh-CN once a tap has unlocked audio, reconnects after the gate restarts,
//! and closes its connection on `pagehide`.
//!
//! Who may open it: the page is read-only and shows what the lane's LED shows anyone standing
//! at the lane — the plate, the verdict, the driver's reason (never a guard-facing reason, see
//! [`super::driver_reason`]) and, only when `[display] name = "surname"`, a surname. So it is
//! open on the `[http]` listener, which a site binds to the cabinet network; a site whose
//! screens share a network with others sets `[display] token`, and the screens open
//! `/display/{lane}?token=…`. Everything is inline: no outside assets, no cookies.
//!
//! What it never does: command a lane, or poll — each stream waits on the lane's watch channel.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono_tz::Tz;
use futures::Stream;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Announcement, DisplayToken, Follower, LaneView, Templates};

/// What the display routes read.
#[derive(Debug)]
struct DisplayState<S> {
    lanes: Arc<BTreeMap<String, (String, watch::Receiver<S>)>>,
    templates: Arc<Templates>,
    token: Option<DisplayToken>,
    tz: Tz,
}

impl<S> Clone for DisplayState<S> {
    fn clone(&self) -> Self {
        DisplayState {
            lanes: self.lanes.clone(),
            templates: self.templates.clone(),
            token: self.token.clone(),
            tz: self.tz,
        }
    }
}

/// The display routes (merged into the gate's local router, [`crate::gate::http::local_router`]):
/// `lanes` are (id, name shown, live status) of the gate's lanes.
pub fn routes<S>(
    lanes: Vec<(String, String, watch::Receiver<S>)>,
    templates: Arc<Templates>,
    token: Option<DisplayToken>,
    tz: Tz,
) -> Router
where
    S: LaneView + Clone + Send + Sync + 'static,
{
    let lanes = lanes
        .into_iter()
        .map(|(id, name, rx)| (id, (name, rx)))
        .collect();
    let state = DisplayState {
        lanes: Arc::new(lanes),
        templates,
        token,
        tz,
    };
    Router::new()
        .route("/display", get(index::<S>))
        .route("/display/{lane}", get(page::<S>))
        .route("/display/{lane}/events", get(events::<S>))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// A refusal, in zh-CN first and English.
fn refuse(status: StatusCode, zh: &str, en: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{zh} / {en}\n"),
    )
        .into_response()
}

/// `None` when the request may see the page, else the refusal.
fn check_token<S>(state: &DisplayState<S>, query: &TokenQuery) -> Option<Response> {
    match &state.token {
        None => None,
        Some(t) if query.token.as_deref().is_some_and(|q| t.matches(q)) => None,
        Some(_) => Some(refuse(
            StatusCode::UNAUTHORIZED,
            "缺少或错误的车道屏令牌（gate.toml [display] token）",
            "Missing or wrong display token ([display] token in gate.toml)",
        )),
    }
}

fn no_lane(lane: &str) -> Response {
    let lane: String = lane.chars().take(40).collect();
    refuse(
        StatusCode::NOT_FOUND,
        &format!("本大门没有车道 {lane:?}"),
        &format!("No lane {lane:?} at this gate"),
    )
}

/// What the page is sent: one announcement, with the time in the gate's zone.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    announcement: &'a Announcement,
    /// `HH:MM:SS` in the gate's time zone.
    time: String,
    /// Sent on (re)connection: shown, not spoken again.
    replay: bool,
}

fn shown_event(a: &Announcement, tz: Tz, replay: bool) -> Event {
    let shown = Shown {
        announcement: a,
        time: a.at.with_timezone(&tz).format("%H:%M:%S").to_string(),
        replay,
    };
    Event::default()
        .event("announce")
        .data(serde_json::to_string(&shown).unwrap_or_default())
}

async fn index<S>(State(state): State<DisplayState<S>>, Query(q): Query<TokenQuery>) -> Response {
    if let Some(r) = check_token(&state, &q) {
        return r;
    }
    let suffix = q
        .token
        .as_deref()
        .filter(|_| state.token.is_some())
        .map(|t| format!("?token={}", urlencode(t)))
        .unwrap_or_default();
    let body = frame(
        "车道屏 / Lane display",
        html! {
            main.index {
                h1 { "车道屏" small { "Lane display" } }
                ul {
                    @for (id, (name, _)) in state.lanes.iter() {
                        li { a href={ "/display/" (urlencode(id)) (suffix) } { (name) } }
                    }
                }
            }
        },
    );
    html_response(body)
}

async fn page<S>(
    State(state): State<DisplayState<S>>,
    Path(lane): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(r) = check_token(&state, &q) {
        return r;
    }
    let Some((name, _)) = state.lanes.get(&lane) else {
        return no_lane(&lane);
    };
    let events = format!(
        "/display/{}/events{}",
        urlencode(&lane),
        q.token
            .as_deref()
            .filter(|_| state.token.is_some())
            .map(|t| format!("?token={}", urlencode(t)))
            .unwrap_or_default()
    );
    let body = frame(
        &format!("{name} · 车道屏"),
        html! {
            main #screen.v-idle data-events=(events) data-tz=(state.tz.name()) {
                header {
                    span.lane { (name) }
                    span #link.link { "连接中…" }
                    span #clock.clock {}
                }
                section.plate-row { div #plate.plate { "—" } }
                section #verdict.verdict { "欢迎" }
                section #reason.reason {}
                footer { span #time.time {} }
            }
            div #unlock.unlock role="button" tabindex="0" {
                div { "点击启用语音" }
                small { "Tap to enable voice" }
            }
            script { (PreEscaped(SCRIPT)) }
        },
    );
    html_response(body)
}

async fn events<S>(
    State(state): State<DisplayState<S>>,
    Path(lane): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response
where
    S: LaneView + Clone + Send + Sync + 'static,
{
    if let Some(r) = check_token(&state, &q) {
        return r;
    }
    let Some((_, rx)) = state.lanes.get(&lane) else {
        return no_lane(&lane);
    };
    let mut rx = rx.clone();
    let current = rx.borrow_and_update().clone();
    let follower = Follower::new(&current);
    // On (re)connection the page shows the lane's last decision, without speaking it.
    let first = current
        .last_decision()
        .map(|d| state.templates.announce(d))
        .or_else(|| (current.state() == "fault").then(|| state.templates.fault()));
    let hello = Event::default()
        .event("hello")
        .retry(Duration::from_secs(2))
        .data(current.state());
    let replay = first.map(|a| shown_event(&a, state.tz, true));
    let start = futures::stream::iter(
        std::iter::once(hello)
            .chain(replay)
            .map(Ok::<Event, Infallible>),
    );
    let live = futures::stream::unfold(
        (rx, follower, state.templates.clone(), state.tz),
        |(mut rx, mut follower, templates, tz)| async move {
            loop {
                // The lane's sender is dropped when the gate stops: the stream ends, the page
                // reconnects to the next gate process.
                rx.changed().await.ok()?;
                let next = follower.next(&*rx.borrow_and_update(), &templates);
                if let Some(a) = next {
                    let event = shown_event(&a, tz, false);
                    return Some((Ok(event), (rx, follower, templates, tz)));
                }
            }
        },
    );
    sse(futures::StreamExt::chain(start, live))
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html_response(body: Markup) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn frame(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

const STYLE: &str = r#"
*{box-sizing:border-box;margin:0;padding:0}
html,body{height:100%;background:#0b0f14;color:#f4f6f8;font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;overflow:hidden}
main.index{padding:6vmin;overflow:auto;height:100%}
main.index h1{font-size:7vmin;margin-bottom:4vmin}
main.index h1 small{font-size:3.5vmin;opacity:.7;margin-left:2vmin}
main.index li{list-style:none;margin:2vmin 0}
main.index a{color:#8fd3ff;font-size:6vmin}
#screen{position:relative;height:100%;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:12vmin 4vmin 6vmin;gap:3vmin}
header{position:absolute;top:0;left:0;right:0;padding:3vmin 4vmin;display:flex;justify-content:space-between;align-items:center;font-size:3.6vmin;opacity:.85;gap:2vmin}
header .link{font-size:2.6vmin;padding:.4vmin 1.6vmin;border-radius:1vmin;background:#333}
body[data-live=connected] header .link{background:#1f5130}
body[data-live=lost] header .link{background:#7a1f1f}
footer{min-height:1.2em}
.v-idle .plate-row,.no-plate .plate-row{display:none}
.plate{font-size:min(16vmin,13vw);font-weight:700;letter-spacing:.06em;padding:1.2vmin 4vmin;border:.8vmin solid #e8eef5;border-radius:2vmin;background:#1747a6;color:#fff;white-space:nowrap;line-height:1.15}
.verdict{font-size:min(17vmin,14vw);font-weight:800;line-height:1.1;text-align:center;white-space:pre-line}
.reason{font-size:min(6.5vmin,6vw);text-align:center;min-height:1.2em;opacity:.95}
.time{font-size:3.6vmin;opacity:.75}
.v-idle .verdict{color:#c9d3dd}
.v-green{background:#0b3d1c}.v-green .verdict{color:#5cff8a}
.v-red{background:#4a0b0b}.v-red .verdict{color:#ff5f5f}
.v-amber{background:#4a3500}.v-amber .verdict{color:#ffc53d}
.unlock{position:fixed;inset:0;display:flex;flex-direction:column;align-items:center;justify-content:center;gap:2vmin;background:rgba(0,0,0,.72);font-size:7vmin;cursor:pointer;text-align:center}
.unlock small{font-size:3.5vmin;opacity:.8}
.unlock.gone{display:none}
@media (orientation:portrait){
 #screen{gap:5vmin}
 .plate{font-size:14vw}
 .verdict{font-size:16vw}
 .reason{font-size:7vw}
}
"#;

/// The page's script: the stream, the words, the voice. Inline (no outside assets).
const SCRIPT: &str = r#"
(function () {
  var screen = document.getElementById('screen');
  var url = screen.dataset.events;
  var audio = false, es = null, retry = null, idleTimer = null;
  var $ = function (id) { return document.getElementById(id); };
  function live(state, text) { document.body.dataset.live = state; $('link').textContent = text; }
  function speak(text) {
    if (!audio || !text || !('speechSynthesis' in window)) return;
    try {
      window.speechSynthesis.cancel();
      var u = new SpeechSynthesisUtterance(text);
      u.lang = 'zh-CN';
      u.rate = 0.95;
      window.speechSynthesis.speak(u);
    } catch (e) {}
  }
  function idle() {
    screen.className = 'v-idle';
    $('plate').textContent = '—';
    $('verdict').textContent = '欢迎';
    $('reason').textContent = '';
    $('time').textContent = '';
  }
  function show(a) {
    screen.className = 'v-' + a.colour + (a.plate ? '' : ' no-plate');
    screen.dataset.outcome = a.outcome;
    $('plate').textContent = a.plate || '—';
    // The first line is the verdict; the others (or else the reason, for a refusal) below it.
    var lines = a.screen || [];
    $('verdict').textContent = lines[0] || '';
    var rest = lines.slice(1).join(' ');
    $('reason').textContent = rest || (a.colour === 'green' ? '' : (a.reason || ''));
    $('time').textContent = a.time || '';
    clearTimeout(idleTimer);
    idleTimer = setTimeout(idle, 30000);
    if (!a.replay) speak(a.voice);
  }
  function connect() {
    clearTimeout(retry);
    if (es) es.close();
    live('connecting', '连接中…');
    es = new EventSource(url);
    es.addEventListener('hello', function () { live('connected', '已连接'); });
    es.addEventListener('announce', function (e) {
      try { show(JSON.parse(e.data)); } catch (err) {}
    });
    es.onerror = function () {
      live('lost', '连接中断，重连中…');
      // A refused or closed stream is not retried by the browser: try again ourselves.
      if (es.readyState === EventSource.CLOSED) retry = setTimeout(connect, 3000);
    };
  }
  function unlock() {
    audio = true;
    $('unlock').classList.add('gone');
    speak('语音已启用');
  }
  $('unlock').addEventListener('click', unlock);
  $('unlock').addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') unlock(); });
  window.addEventListener('pagehide', function () { clearTimeout(retry); if (es) { es.close(); es = null; } });
  window.addEventListener('pageshow', function (e) { if (e.persisted || !es) connect(); });
  // The gate's time zone, as the events' times, whatever the screen's own setting.
  function tick() {
    var now = new Date(), text;
    try {
      text = now.toLocaleTimeString('zh-CN', {timeZone: screen.dataset.tz, hour12: false});
    } catch (e) {
      text = now.toLocaleTimeString('zh-CN', {hour12: false});
    }
    $('clock').textContent = text;
  }
  tick();
  setInterval(tick, 1000);
  if (!es) connect();
})();
"#;
