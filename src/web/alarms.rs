//! Alarms on every signed-in page (issue 20, item 4): the security officers' banner (how many
//! alarms are open, the newest, a link to `/office`; cleared once every alarm is acknowledged
//! or withdrawn, wherever that happened) and the booth's status of the guard's own alarm
//! (已送达 when stored, then who acknowledged it, when and what was done, or its withdrawal,
//! with the withdraw button while the site's window lasts). Both are pushed by one
//! server-sent event stream, `GET /alarms/live`, which `assets/alarms.js` opens on every page
//! of the booth roles; the words shared with `/office` (alarm kinds, what was done, the police
//! link's states, where) are here too.
//!
//! What it never does: change anything (acknowledging and withdrawing go through
//! `/api/v1/alarms`), show a user name where the operator has a display name, or tell a guard
//! about anyone else's alarm.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use maud::html;
use tokio::sync::broadcast::error::RecvError;

use super::Viewer;
use super::names::Names;
use crate::central::db::{RepoError, now_ms};
use crate::central::live::LiveMessage;
use crate::central::repo::alarms::{self, ACK_ACTIONS, Alarm};
use crate::central::repo::{gates, settings};
use crate::central::state::AppState;
use crate::i18n::{Lang, t};

/// An alarm's kind in words (`i18n::alarm_kind_label`).
pub fn kind_words(lang: Lang, kind: &str) -> String {
    crate::i18n::alarm_kind_label(lang, kind)
}

/// What an acknowledgement says was done, in words (see [`ACK_ACTIONS`]).
pub fn action_words(lang: Lang, code: &str) -> String {
    ACK_ACTIONS.iter().find(|(c, _, _)| *c == code).map_or_else(
        || code.to_string(),
        |(_, zh, en)| t(lang, zh, en).to_string(),
    )
}

/// The police link's state in words, with `withdrawn` (a false alarm withdrawn while its
/// delivery was being retried).
pub fn webhook_words(lang: Lang, status: &str) -> String {
    match status {
        "withdrawn" => t(lang, "已撤销，停止发送", "withdrawn, not sent").to_string(),
        other => crate::i18n::webhook_status_label(lang, other),
    }
}

/// Gate and lane names of the gates some alarms are at, read once per rendering (two small
/// queries per gate).
#[derive(Debug, Default)]
pub struct Places {
    gates: HashMap<i64, (gates::Gate, Vec<gates::Lane>)>,
}

impl Places {
    /// The names of every gate in `list`.
    pub async fn load(state: &AppState, list: &[Alarm]) -> Result<Places, RepoError> {
        let mut places = Places::default();
        for a in list {
            if places.gates.contains_key(&a.gate_id) {
                continue;
            }
            let Ok(gate) = gates::get(&state.db, a.gate_id).await else {
                continue;
            };
            let lanes = gates::lanes(&state.db, a.gate_id).await.unwrap_or_default();
            places.gates.insert(a.gate_id, (gate, lanes));
        }
        Ok(places)
    }

    /// Where `a` was raised: the gate, and for a lane's alarm (fire, tailgating: the note is
    /// the lane's key) the lane.
    pub fn of(&self, lang: Lang, a: &Alarm) -> String {
        let Some((gate, lanes)) = self.gates.get(&a.gate_id) else {
            return a.gate_name.clone();
        };
        let gate_name = gate.name_in(lang).to_string();
        if lane_in_note(&a.kind)
            && let Some(lane) = lanes.iter().find(|l| l.lane_key == a.note)
        {
            return format!("{gate_name} · {}", lane.name_in(lang));
        }
        gate_name
    }
}

impl Places {
    /// The name of lane `key` of gate `gate_id` in `lang` (the key when unknown).
    pub fn lane(&self, lang: Lang, gate_id: i64, key: &str) -> String {
        self.gates
            .get(&gate_id)
            .and_then(|(_, lanes)| lanes.iter().find(|l| l.lane_key == key))
            .map_or_else(|| key.to_string(), |l| l.name_in(lang).to_string())
    }
}

/// An alarm's note in words, in `lang`: a lane's device for a device offline ("入口 · 读卡器"),
/// the `zh / en` halves of a system note in the page's language, nothing where the note is
/// the lane (shown with the place), the guard's own words otherwise.
pub fn note_words(lang: Lang, a: &Alarm, places: &Places) -> String {
    use crate::central::alarms::{DEVICE_OFFLINE, JOURNAL_FAILURE};
    if lane_in_note(&a.kind) {
        return String::new();
    }
    match a.kind.as_str() {
        DEVICE_OFFLINE => {
            let Some((lane, device)) = a.note.split_once(" · ") else {
                return a.note.clone();
            };
            let device = match device {
                "reader" => t(lang, "读卡器", "reader").to_string(),
                "io" => t(lang, "道闸控制模块", "I/O module").to_string(),
                other => match other.strip_prefix("camera ") {
                    Some(name) => format!("{} {name}", t(lang, "车牌摄像机", "plate camera")),
                    None => other.to_string(),
                },
            };
            format!("{} · {device}", places.lane(lang, a.gate_id, lane))
        }
        JOURNAL_FAILURE => match a.note.strip_prefix("write failures: ") {
            Some(n) => format!("{}{n}", t(lang, "写入失败次数：", "write failures: ")),
            None => a.note.clone(),
        },
        _ if a.raised_by_id.is_none() => match a.note.split_once(" / ") {
            Some((zh, en)) => match lang {
                Lang::Zh => zh.trim().to_string(),
                Lang::En => en.trim().to_string(),
            },
            None => a.note.clone(),
        },
        _ => a.note.clone(),
    }
}

/// Whether an alarm's note is the key of the lane it was raised at.
pub fn lane_in_note(kind: &str) -> bool {
    matches!(
        kind,
        crate::central::alarms::FIRE | crate::central::alarms::TAILGATING
    )
}

/// `HH:MM` in the site's zone.
fn hm(state: &AppState, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&state.site_tz).format("%H:%M").to_string()
}

/// The acknowledgement in words: "保卫处 刘科长 14:32 已确认：已派人到场（note）".
pub fn acknowledged_words(state: &AppState, lang: Lang, names: &Names, a: &Alarm) -> String {
    let Some(at) = a.acknowledged_at else {
        return String::new();
    };
    let who = names.of(a.acknowledged_by.as_deref().unwrap_or("?"));
    let mut s = format!(
        "{who} {} {}",
        hm(state, at),
        t(lang, "已确认", "acknowledged")
    );
    if !a.ack_action.is_empty() {
        s.push_str(t(lang, "：", ": "));
        s.push_str(&action_words(lang, &a.ack_action));
    }
    if !a.ack_note.is_empty() {
        s.push_str(t(lang, "（", " ("));
        s.push_str(&a.ack_note);
        s.push_str(t(lang, "）", ")"));
    }
    s
}

/// The withdrawal in words: "已撤销（误报）· 门卫 李师傅 14:31".
pub fn withdrawn_words(state: &AppState, lang: Lang, names: &Names, a: &Alarm) -> String {
    let Some(at) = a.withdrawn_at else {
        return String::new();
    };
    let who = names.of(a.withdrawn_by.as_deref().unwrap_or("?"));
    format!(
        "{} · {who} {}",
        t(lang, "已撤销（误报）", "Withdrawn (false alarm)"),
        hm(state, at)
    )
}

/// The officers' banner: how many alarms are open and the newest. `None` when none is open.
async fn banner(state: &AppState, lang: Lang, names: &Names) -> Result<Option<Banner>, RepoError> {
    let (open, newest) = alarms::open(&state.db, 1).await?;
    let Some(a) = newest.first() else {
        return Ok(None);
    };
    let places = Places::load(state, &newest).await?;
    let who = if a.raised_by_id.is_some() {
        names.of(&a.raised_by).to_string()
    } else {
        t(lang, "系统", "system").to_string()
    };
    let html = html! {
        strong.count { (t(lang, "未处置报警 ", "Open alarms: ")) (open) (t(lang, " 条", "")) }
        " · " span.newest {
            (t(lang, "最新：", "newest: ")) (kind_words(lang, &a.kind)) " · " (places.of(lang, a))
            " · " (who) " · " (super::layout::local_time(state.site_tz, a.raised_at))
        }
        " " a href="/office" { (t(lang, "前往保卫处处置 →", "Deal with it at the security office →")) }
    };
    Ok(Some(Banner {
        open,
        newest: a.id,
        html: html.into_string(),
    }))
}

/// The banner as the page's script receives it.
#[derive(Debug, PartialEq, serde::Serialize)]
struct Banner {
    /// How many alarms are open.
    open: i64,
    /// The newest open alarm's id: the page sounds once for each newer one.
    newest: i64,
    html: String,
}

/// The viewer's own alarm status as the page's script receives it.
#[derive(Debug, PartialEq, serde::Serialize)]
struct Mine {
    id: i64,
    /// `stored`, `acknowledged` or `withdrawn`.
    state: &'static str,
    /// How much longer it may be withdrawn (0: no more).
    withdraw_left_ms: i64,
    html: String,
}

/// How long the booth shows an alarm after it was acknowledged or withdrawn.
const SHOW_CLOSED_MS: i64 = 30 * 60_000;
/// How far back the booth looks for the guard's own alarm (a long shift).
const LOOK_BACK_MS: i64 = 12 * 3_600_000;

/// The viewer's latest alarm: open, or closed in the last half hour.
async fn mine(state: &AppState, viewer: &Viewer, names: &Names) -> Result<Option<Mine>, RepoError> {
    let now = now_ms();
    let Some(a) =
        alarms::latest_raised_by(&state.db, viewer.authed.operator_id, now - LOOK_BACK_MS).await?
    else {
        return Ok(None);
    };
    let closed_at = a.acknowledged_at.or(a.withdrawn_at);
    if closed_at.is_some_and(|at| now - at.timestamp_millis() > SHOW_CLOSED_MS) {
        return Ok(None);
    }
    let lang = viewer.lang;
    let window_ms = i64::from(settings::load(&state.db).await?.alarm_withdraw_s) * 1000;
    let withdraw_left_ms = if a.is_open() {
        (a.raised_at.timestamp_millis() + window_ms - now).max(0)
    } else {
        0
    };
    let places = Places::load(state, std::slice::from_ref(&a)).await?;
    let state_code = if a.withdrawn_at.is_some() {
        "withdrawn"
    } else if a.acknowledged_at.is_some() {
        "acknowledged"
    } else {
        "stored"
    };
    let html = html! {
        strong.what { (kind_words(lang, &a.kind)) " · " (places.of(lang, &a)) " · " (hm(state, a.raised_at)) }
        " "
        @if state_code == "withdrawn" {
            span.state.withdrawn { (withdrawn_words(state, lang, names, &a)) }
        } @else if state_code == "acknowledged" {
            span.state.acknowledged { (acknowledged_words(state, lang, names, &a)) }
        } @else {
            span.state.stored { (t(lang, "已送达", "Stored at the centre")) }
            " " span.wait { (t(lang, "保卫处已收到，等待确认", "the security office has it; awaiting acknowledgement")) }
        }
        @if withdraw_left_ms > 0 {
            " " button.withdraw type="button" data-withdraw={ "/api/v1/alarms/" (a.id) "/withdraw" }
                data-confirm=(t(lang, "再点一次确认撤销", "Click again to withdraw"))
                data-done=(t(lang, "报警已撤销（误报）", "Alarm withdrawn (false alarm)")) {
                (t(lang, "撤销（误报）", "Withdraw (false alarm)"))
            }
        }
    };
    Ok(Some(Mine {
        id: a.id,
        state: state_code,
        withdraw_left_ms,
        html: html.into_string(),
    }))
}

/// What one push carries: the officers' banner and the viewer's own alarm.
#[derive(Debug, PartialEq, serde::Serialize)]
struct Snapshot {
    banner: Option<Banner>,
    mine: Option<Mine>,
}

async fn snapshot(state: &AppState, viewer: &Viewer) -> Result<Snapshot, RepoError> {
    let names = Names::load(&state.db).await?;
    let banner = if viewer.is_office() {
        banner(state, viewer.lang, &names).await?
    } else {
        None
    };
    Ok(Snapshot {
        banner,
        mine: mine(state, viewer, &names).await?,
    })
}

/// `GET /alarms/live`: the banner (officers) and the viewer's own alarm status, at once and
/// whenever an alarm is raised or changes (event `alarms`, JSON [`Snapshot`]).
pub async fn live(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.live.subscribe();
    let stream = futures::stream::unfold(
        (rx, state, viewer, None::<String>),
        |(mut rx, state, viewer, last)| async move {
            if last.is_some() {
                loop {
                    match rx.recv().await {
                        Ok(m) => {
                            let LiveMessage::Alarm { gate_id, .. } = &*m else {
                                continue;
                            };
                            // A guard hears only of alarms at their own gates.
                            if viewer.is_office() || viewer.authed.gates.contains(gate_id) {
                                break;
                            }
                        }
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
            let data = match snapshot(&state, &viewer).await {
                Ok(s) => serde_json::to_string(&s).unwrap_or_default(),
                Err(e) => {
                    tracing::error!(error = %e, "alarm status: cannot read the alarms");
                    last.clone().unwrap_or_else(|| "{}".into())
                }
            };
            let event = Event::default().event("alarms").data(data.clone());
            Some((Ok(event), (rx, state, viewer, Some(data))))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
