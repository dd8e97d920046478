//! What the lane tells the driver: the lane display page (for the Android screens at lanes),
//! the RS-485 LED/voice screen and the signal light, all fed by the lane's decisions and
//! worded by per-outcome templates.
//!
//! This module holds the words: `[display]` of gate.toml, one template pair (screen text,
//! voice text) per [`Outcome`], with `{plate}`, `{name}` and `{reason}`, checked when the gate
//! starts ([`Templates::from_config`]: an unknown placeholder is a configuration error). An
//! [`Announcement`] is what one decision becomes for the driver; a [`Follower`] turns a lane's
//! live status into announcements, once per decision. The page is [`page`], the LED screen
//! driver [`screen`], the signal light's rule [`light`].
//!
//! It never names the lane runtime: a lane's live status reaches it through [`LaneView`]
//! (which the runtime implements), so the runtime may start the screen and drive the light
//! without an import cycle.
//!
//! What the driver is never told: the guard-facing reasons that accuse (blacklist, cloned tag,
//! plate mismatch, anti-passback) — those outcomes say 请联系门卫; nor a person's full name —
//! `{name}` is a surname and an honorific at most, and nothing by default.

pub mod light;
pub mod page;
pub mod screen;

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ReasonCode;
use crate::i18n::{Lang, reason_label};
use crate::wire::journal::DecisionRecord;

/// `[display]`: the words the lane shows and speaks per outcome (templates with `{plate}`,
/// `{name}`, `{reason}`). Default: the built-in zh-CN wording.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    /// What `{name}` says: `none` (default: nothing) or `surname` (the holder's or visitor's
    /// surname and [`DisplayConfig::honorific`], e.g. 张先生/女士).
    pub name: NameStyle,
    /// Put after the surname when `name = "surname"`. Default `先生/女士`.
    pub honorific: Option<String>,
    /// When set, `GET /display/{lane}` and its events need `?token=` with this value (a lane
    /// screen on a network shared with others). Absent: the page is open on the `[http]`
    /// listener (it shows what the lane's LED shows anyone standing there: plate and verdict).
    pub token: Option<DisplayToken>,
    /// A permit holder let in.
    pub granted: Option<MessageConfig>,
    /// A permit holder let out.
    pub granted_exit: Option<MessageConfig>,
    /// A booked visitor or a visitor pass let through.
    pub visitor: Option<MessageConfig>,
    /// The guard opened by hand, or the lane is open for an evacuation.
    pub guard_open: Option<MessageConfig>,
    /// An unknown tag, plate or code; a vehicle without a permit.
    pub not_registered: Option<MessageConfig>,
    /// A permit or booking not valid now (expired, not yet, suspended, revoked, outside hours).
    pub expired: Option<MessageConfig>,
    /// Refusals the driver is not told the reason of (blacklist, cloned tag, plate mismatch,
    /// anti-passback, locked vehicle, quota): 请联系门卫.
    pub contact_guard: Option<MessageConfig>,
    /// Not valid at this gate or in this direction.
    pub wrong_gate: Option<MessageConfig>,
    /// A visitor pass used, forged or revoked.
    pub pass_refused: Option<MessageConfig>,
    /// The lane is locked closed or manual-only.
    pub lane_locked: Option<MessageConfig>,
    /// A plate read waiting for the guard.
    pub held: Option<MessageConfig>,
    /// The lane is in a fault.
    pub fault: Option<MessageConfig>,
}

/// One outcome's words; an absent one keeps the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// The screen text; `\n` separates lines (an LED screen has four, the first shows the
    /// plate).
    pub screen: Option<String>,
    /// The spoken text.
    pub voice: Option<String>,
}

/// What `{name}` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStyle {
    /// Nothing.
    #[default]
    None,
    /// The surname and the honorific.
    Surname,
}

/// The display page's token: compared in constant time, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DisplayToken(String);

impl fmt::Debug for DisplayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DisplayToken(…)")
    }
}

impl DisplayToken {
    /// Whether `given` is the token (constant time in the token's length).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// `[lane.screen]`: an RS-485 LED/voice lane screen. Absent: the lane has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenConfig {
    /// Serial port path.
    pub port: PathBuf,
    /// Default 9600 (8N1).
    #[serde(default = "default_screen_baud")]
    pub baud: u32,
    /// The screen's address (DA). Default 0.
    #[serde(default)]
    pub address: u8,
    /// The connect command's password, sent when the port opens; empty: none sent.
    /// Default `159753` (the verified capture, docs/protocols.md §4).
    #[serde(default = "default_screen_password")]
    pub password: String,
    /// The command byte that shows a line of text: 0x62 (default) or 0x6F. Its DATA layout is
    /// a guess (docs/protocols.md §4): line number, then GBK text.
    #[serde(default = "default_show_command")]
    pub show_command: u8,
    /// The command byte that speaks: default 0x30 (capture: DATA `01 31`; read as an option
    /// byte 0x01, then the GBK text).
    #[serde(default = "default_voice_command")]
    pub voice_command: u8,
    /// Whether the screen speaks. Default true.
    #[serde(default = "yes")]
    pub voice: bool,
}

fn default_screen_baud() -> u32 {
    9600
}
fn default_screen_password() -> String {
    "159753".into()
}
fn default_show_command() -> u8 {
    0x62
}
fn default_voice_command() -> u8 {
    0x30
}
fn yes() -> bool {
    true
}

/// `[lane.light]`: the signal light on the I/O module's light coil. Default: driven (green
/// while granted or open, red otherwise).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalLightConfig {
    /// Whether the gate drives the light coil at all. Default true.
    pub enabled: bool,
    /// When the light is green: `granted_or_open` (default: from a grant's OPEN until the arm
    /// starts to close) or `open` (only while the arm is up).
    pub green_when: GreenWhen,
    /// What the coil made means: `green` (default) or `red`.
    pub coil_on_means: LightColour,
}

impl Default for SignalLightConfig {
    fn default() -> SignalLightConfig {
        SignalLightConfig {
            enabled: true,
            green_when: GreenWhen::GrantedOrOpen,
            coil_on_means: LightColour::Green,
        }
    }
}

/// When the light is green.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GreenWhen {
    /// While the arm is up (open, passing, about to close).
    Open,
    /// As [`GreenWhen::Open`], and from the moment a grant sends OPEN.
    GrantedOrOpen,
}

/// A signal light's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LightColour {
    Green,
    Red,
}

/// What a decision is, for the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Granted,
    GrantedExit,
    Visitor,
    GuardOpen,
    NotRegistered,
    Expired,
    ContactGuard,
    WrongGate,
    PassRefused,
    LaneLocked,
    Held,
    Fault,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 12] = [
        Outcome::Granted,
        Outcome::GrantedExit,
        Outcome::Visitor,
        Outcome::GuardOpen,
        Outcome::NotRegistered,
        Outcome::Expired,
        Outcome::ContactGuard,
        Outcome::WrongGate,
        Outcome::PassRefused,
        Outcome::LaneLocked,
        Outcome::Held,
        Outcome::Fault,
    ];

    /// Its key in `[display]`.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Granted => "granted",
            Outcome::GrantedExit => "granted_exit",
            Outcome::Visitor => "visitor",
            Outcome::GuardOpen => "guard_open",
            Outcome::NotRegistered => "not_registered",
            Outcome::Expired => "expired",
            Outcome::ContactGuard => "contact_guard",
            Outcome::WrongGate => "wrong_gate",
            Outcome::PassRefused => "pass_refused",
            Outcome::LaneLocked => "lane_locked",
            Outcome::Held => "held",
            Outcome::Fault => "fault",
        }
    }

    /// The outcome of a decision with `reason` in `direction` (`entry`/`exit`).
    pub fn of(reason: ReasonCode, direction: &str) -> Outcome {
        use ReasonCode as R;
        match reason {
            R::Granted if direction == "exit" => Outcome::GrantedExit,
            R::Granted => Outcome::Granted,
            R::GrantedVisitor | R::GrantedPass => Outcome::Visitor,
            R::GuardOpen | R::OpenedForEvacuation => Outcome::GuardOpen,
            R::DeniedUnknownTag | R::DeniedUnknownPlate | R::DeniedNoPermit => {
                Outcome::NotRegistered
            }
            R::DeniedPassMalformed => Outcome::NotRegistered,
            R::DeniedExpired
            | R::DeniedNotYetValid
            | R::DeniedSuspended
            | R::DeniedRevoked
            | R::DeniedOutsideSchedule
            | R::DeniedSingleUseConsumed
            | R::DeniedVisitorOutsideSlot
            | R::DeniedVisitorNotApproved
            | R::DeniedPassNotYetValid
            | R::DeniedPassExpired => Outcome::Expired,
            R::DeniedBlacklisted
            | R::DeniedTagTidMismatch
            | R::DeniedPlateMismatch
            | R::DeniedPassPlateMismatch
            | R::DeniedPassback
            | R::DeniedPermitQuota
            | R::DeniedLockedVehicle => Outcome::ContactGuard,
            R::DeniedWrongGate
            | R::DeniedWrongDirection
            | R::DeniedPassWrongGate
            | R::DeniedPassWrongDirection => Outcome::WrongGate,
            R::DeniedPassUsed | R::DeniedPassForged | R::DeniedPassRevoked => Outcome::PassRefused,
            R::DeniedLaneLocked => Outcome::LaneLocked,
            R::HeldLowConfidence => Outcome::Held,
        }
    }

    /// The page's colour for it.
    pub fn colour(self) -> Colour {
        match self {
            Outcome::Granted | Outcome::GrantedExit | Outcome::Visitor | Outcome::GuardOpen => {
                Colour::Green
            }
            Outcome::LaneLocked | Outcome::Held | Outcome::Fault => Colour::Amber,
            _ => Colour::Red,
        }
    }

    /// The built-in zh-CN words: (screen, voice).
    fn default_words(self) -> (&'static str, &'static str) {
        match self {
            Outcome::Granted => ("欢迎光临", "{plate}，欢迎光临"),
            Outcome::GrantedExit => ("一路顺风", "{plate}，一路顺风"),
            Outcome::Visitor => ("欢迎来访", "{plate}，{name}欢迎来访"),
            Outcome::GuardOpen => ("请通行", "请通行"),
            Outcome::NotRegistered => ("禁止通行\n{reason}", "{plate}，禁止通行，请联系门卫"),
            Outcome::Expired => ("禁止通行\n{reason}", "{plate}，{reason}，禁止通行"),
            Outcome::ContactGuard => ("禁止通行\n请联系门卫", "禁止通行，请联系门卫"),
            Outcome::WrongGate => ("禁止通行\n{reason}", "{reason}，禁止通行"),
            Outcome::PassRefused => ("禁止通行\n{reason}", "{reason}，请联系门卫"),
            Outcome::LaneLocked => ("车道关闭\n请走其他车道", "车道关闭，请走其他车道"),
            Outcome::Held => ("请稍候\n门卫确认中", "请稍候"),
            Outcome::Fault => ("暂停服务\n请联系门卫", "请联系门卫"),
        }
    }
}

/// The page's colour class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    Green,
    Red,
    Amber,
}

/// The reason as the driver may hear it: the product's plain words, except where they accuse
/// or tell more than a driver needs (those say 请联系门卫).
pub fn driver_reason(reason: ReasonCode) -> String {
    match Outcome::of(reason, "entry") {
        Outcome::ContactGuard => "请联系门卫".into(),
        _ => match reason {
            ReasonCode::DeniedPassForged => "通行码无效".into(),
            ReasonCode::DeniedUnknownTag | ReasonCode::DeniedUnknownPlate => "未登记车辆".into(),
            other => reason_label(Lang::Zh, other.as_str()),
        },
    }
}

/// A placeholder in a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Plate,
    Name,
    Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Slot),
}

/// A checked template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Part>);

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("a '}}' without its '{{' in {text:?}"));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("a '{{' without its '}}' in {text:?}"))?;
            let slot = match &after[..close] {
                "plate" => Slot::Plate,
                "name" => Slot::Name,
                "reason" => Slot::Reason,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}} in {text:?} (known: {{plate}}, {{name}}, {{reason}})"
                    ));
                }
            };
            parts.push(Part::Slot(slot));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    fn render(&self, plate: &str, name: &str, reason: &str) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Slot(Slot::Plate) => out.push_str(plate),
                Part::Slot(Slot::Name) => out.push_str(name),
                Part::Slot(Slot::Reason) => out.push_str(reason),
            }
        }
        tidy(&out)
    }
}

/// Takes off the separators an empty placeholder leaves at either end (`，欢迎光临`), and
/// collapses doubled ones.
fn tidy(text: &str) -> String {
    const SEP: &[char] = &['，', ',', '、', ' ', '　'];
    let mut out = String::new();
    for line in text.split('\n') {
        let mut clean = String::new();
        let mut last_sep = true;
        for c in line.trim_matches(SEP).chars() {
            let sep = SEP.contains(&c);
            if !(sep && last_sep) {
                clean.push(c);
            }
            last_sep = sep;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(clean.trim_matches(SEP));
    }
    out
}

/// `[display]`, checked: every outcome's templates, parsed.
#[derive(Debug, Clone)]
pub struct Templates {
    name: NameStyle,
    honorific: String,
    words: Vec<(Outcome, Template, Template)>,
}

/// Why `[display]` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("display.{key}.{field}: {why}")]
pub struct DisplayConfigError {
    key: &'static str,
    field: &'static str,
    why: String,
}

impl Templates {
    /// Checks `[display]` and parses every template (defaults for those not given).
    pub fn from_config(config: &DisplayConfig) -> Result<Templates, DisplayConfigError> {
        let mut words = Vec::new();
        for outcome in Outcome::ALL {
            let given = match outcome {
                Outcome::Granted => &config.granted,
                Outcome::GrantedExit => &config.granted_exit,
                Outcome::Visitor => &config.visitor,
                Outcome::GuardOpen => &config.guard_open,
                Outcome::NotRegistered => &config.not_registered,
                Outcome::Expired => &config.expired,
                Outcome::ContactGuard => &config.contact_guard,
                Outcome::WrongGate => &config.wrong_gate,
                Outcome::PassRefused => &config.pass_refused,
                Outcome::LaneLocked => &config.lane_locked,
                Outcome::Held => &config.held,
                Outcome::Fault => &config.fault,
            };
            let (screen, voice) = outcome.default_words();
            let parse = |field: &'static str, text: Option<&String>, default: &str| {
                let text = text.map_or(default, |t| t.as_str());
                if field == "screen" && text.split('\n').count() > 3 {
                    return Err(DisplayConfigError {
                        key: outcome.key(),
                        field,
                        why: "at most 3 lines (the LED screen's first line shows the plate)".into(),
                    });
                }
                Template::parse(text).map_err(|why| DisplayConfigError {
                    key: outcome.key(),
                    field,
                    why,
                })
            };
            let screen = parse(
                "screen",
                given.as_ref().and_then(|g| g.screen.as_ref()),
                screen,
            )?;
            let voice = parse(
                "voice",
                given.as_ref().and_then(|g| g.voice.as_ref()),
                voice,
            )?;
            words.push((outcome, screen, voice));
        }
        let honorific = config
            .honorific
            .clone()
            .unwrap_or_else(|| "先生/女士".into());
        if honorific.chars().count() > 8 {
            return Err(DisplayConfigError {
                key: "honorific",
                field: "value",
                why: "at most 8 characters".into(),
            });
        }
        Ok(Templates {
            name: config.name,
            honorific,
            words,
        })
    }

    fn words(&self, outcome: Outcome) -> (&Template, &Template) {
        let (_, screen, voice) = self
            .words
            .iter()
            .find(|(o, _, _)| *o == outcome)
            .expect("every outcome has its words");
        (screen, voice)
    }

    /// What a decision becomes for the driver.
    pub fn announce(&self, decision: &DecisionRecord) -> Announcement {
        let outcome = Outcome::of(decision.reason, &decision.direction);
        let name = match self.name {
            NameStyle::None => String::new(),
            NameStyle::Surname => decision
                .holder
                .as_deref()
                .and_then(surname)
                .map(|s| format!("{s}{}", self.honorific))
                .unwrap_or_default(),
        };
        let reason = driver_reason(decision.reason);
        self.make(outcome, decision.plate.clone(), &name, &reason)
    }

    /// What the lane says while it is in a fault.
    pub fn fault(&self) -> Announcement {
        self.make(Outcome::Fault, None, "", "")
    }

    fn make(
        &self,
        outcome: Outcome,
        plate: Option<String>,
        name: &str,
        reason: &str,
    ) -> Announcement {
        let (screen, voice) = self.words(outcome);
        let p = plate.as_deref().unwrap_or("");
        Announcement {
            outcome,
            colour: outcome.colour(),
            screen: screen
                .render(p, name, reason)
                .split('\n')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            voice: voice.render(p, name, reason),
            reason: reason.to_string(),
            plate,
            at: Utc::now(),
        }
    }
}

/// What one decision (or a fault) tells the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Announcement {
    pub outcome: Outcome,
    pub colour: Colour,
    /// The plate, when the decision knew one.
    pub plate: Option<String>,
    /// The screen's lines (the plate not included).
    pub screen: Vec<String>,
    /// The reason in the driver's words.
    pub reason: String,
    /// What is spoken.
    pub voice: String,
    /// When the lane announced it.
    pub at: DateTime<Utc>,
}

/// Compound surnames common enough to matter (复姓); any other name's surname is its first
/// character.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "令狐", "夏侯",
    "司徒", "宇文", "轩辕", "端木", "独孤", "南宫", "西门", "澹台",
];

/// A Chinese name's surname; `None` for a name that is not written in Chinese characters (a
/// foreign name is better left unsaid than cut wrongly).
fn surname(name: &str) -> Option<String> {
    let name = name.trim();
    let han = |c: char| ('\u{4E00}'..='\u{9FFF}').contains(&c);
    if name.chars().count() < 2 || !name.chars().all(han) {
        return None;
    }
    if let Some(c) = COMPOUND_SURNAMES.iter().find(|c| name.starts_with(**c))
        && name.chars().count() > 2
    {
        return Some((*c).to_string());
    }
    name.chars().next().map(String::from)
}

/// What the display needs of a lane's live status (the runtime's `LaneStatus` implements it).
pub trait LaneView {
    /// Decisions made so far (it moves by one per decision).
    fn decisions(&self) -> u64;
    /// The lane's state, snake_case (`idle`, `open`, `fault`, …).
    fn state(&self) -> &str;
    /// The latest decision.
    fn last_decision(&self) -> Option<&DecisionRecord>;
}

/// Turns a lane's live status into announcements: one per new decision (the `decisions`
/// counter moving), and one when the lane falls into a fault. It never replays what happened
/// before it was made.
#[derive(Debug, Clone)]
pub struct Follower {
    decisions: u64,
    fault: bool,
}

impl Follower {
    /// Starts from the lane's current status (nothing to announce yet).
    pub fn new(status: &impl LaneView) -> Follower {
        Follower {
            decisions: status.decisions(),
            fault: status.state() == "fault",
        }
    }

    /// The announcement `status` brings, if any.
    pub fn next(&mut self, status: &impl LaneView, templates: &Templates) -> Option<Announcement> {
        let fault = status.state() == "fault";
        let entered_fault = fault && !self.fault;
        self.fault = fault;
        if status.decisions() != self.decisions {
            self.decisions = status.decisions();
            if let Some(d) = status.last_decision() {
                return Some(templates.announce(d));
            }
        }
        entered_fault.then(|| templates.fault())
    }
}

#[cfg(test)]
mod tests;
