//! The gate controller's configuration: one TOML file (`gate.toml`), every key documented in
//! `examples/gate.toml` with its default.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default at a barrier), and
//! [`GateConfig::validate`] checks what TOML cannot: ids, directions against antennas, timings,
//! and that each serial port exists. This module never opens a port or a database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argon2::password_hash::PasswordHash;
use firmware_protocols::lane_io::LaneIoMap;
use serde::Deserialize;

pub use crate::config_file::ConfigError;

/// The whole gate configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    pub gate: GateSection,
    #[serde(default)]
    pub journal: JournalSection,
    #[serde(rename = "lane", default)]
    pub lanes: Vec<LaneConfig>,
    #[serde(default)]
    pub http: HttpSection,
    /// `[central]`: where the centre is. Absent: the gate runs standalone (CSV imports only).
    #[serde(default)]
    pub central: Option<CentralSection>,
    /// `[booth]`: the guards who may use the booth fallback page on the `[http]` listener.
    /// Default: none (the page is not served).
    #[serde(default)]
    pub booth: BoothConfig,
    /// `[camera_listener]`: where plate cameras push their reads. Default: not listening.
    #[serde(default)]
    pub camera_listener: Option<CameraListenerSection>,
    /// `[[camera]]`: the plate cameras that push to this gate.
    #[serde(rename = "camera", default)]
    pub cameras: Vec<CameraConfig>,
    /// `[photos]`: how much of the cameras' photos the gate keeps (default 20 GiB, 30 days).
    #[serde(default)]
    pub photos: crate::gate::photos::PhotoLimits,
    /// `[display]`: what the lanes show and speak per outcome.
    #[serde(default)]
    pub display: crate::gate::display::DisplayConfig,
    /// `[realtime]`: real-time scheduling of the lane threads (all off by default).
    #[serde(default)]
    pub realtime: RealtimeSection,
}

/// `[realtime]`: real-time choices for the lane threads, applied at start
/// (`gate::runtime::realtime`; a choice the system refuses is warned about, not fatal). Their
/// measured effect is in `benches/README.md` (gate_latency).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSection {
    /// SCHED_FIFO priority 1-99 for every lane thread (needs CAP_SYS_NICE); 0 (the default):
    /// the normal scheduler.
    #[serde(default)]
    pub lane_priority: u8,
    /// Lock the process's memory at start (`mlockall`; needs CAP_IPC_LOCK). Default false.
    #[serde(default)]
    pub lock_memory: bool,
    /// The CPUs the lane threads run on; empty (the default): any.
    #[serde(default)]
    pub lane_cpus: Vec<usize>,
    /// The longest a CPU may take to wake from idle, in µs, held for the controller's life
    /// through `/dev/cpu_dma_latency` (needs root or write access to it). 0 keeps idle CPUs
    /// polling instead of halting; unset (the default): the kernel's own choice.
    #[serde(default)]
    pub cpu_wake_latency_us: Option<u32>,
}

impl RealtimeSection {
    /// A priority SCHED_FIFO has, and CPUs this process may run on, each once.
    pub fn validate(&self) -> Result<(), String> {
        if self.lane_priority > 99 {
            return Err(format!(
                "realtime.lane_priority {} is not a SCHED_FIFO priority (1-99; 0 turns it off)",
                self.lane_priority
            ));
        }
        if let Some(us) = self.cpu_wake_latency_us
            && i32::try_from(us).is_err()
        {
            return Err(format!(
                "realtime.cpu_wake_latency_us {us} is too large (0-2147483647; leave it out for the kernel's choice)"
            ));
        }
        let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
        let mut seen = std::collections::BTreeSet::new();
        for &cpu in &self.lane_cpus {
            if !seen.insert(cpu) {
                return Err(format!("realtime.lane_cpus: CPU {cpu} is listed twice"));
            }
            let usable = allowed
                .as_ref()
                .is_some_and(|set| set.is_set(cpu).unwrap_or(false));
            if !usable {
                return Err(format!(
                    "realtime.lane_cpus: CPU {cpu} is not one this process may run on (see `nproc`, `taskset -p $$`)"
                ));
            }
        }
        Ok(())
    }
}

/// `[camera_listener]`: the HTTP listener plate cameras push to, on the cabinet network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraListenerSection {
    /// Address and port cameras push to (e.g. `0.0.0.0:8088`).
    pub listen: std::net::SocketAddr,
    /// The largest push accepted, in bytes (photos included). Default 8 MiB.
    #[serde(default = "default_camera_max_body")]
    pub max_body_bytes: usize,
}

fn default_camera_max_body() -> usize {
    8 * 1024 * 1024
}

/// Which payload a camera pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraKind {
    /// Hikvision ISAPI listening mode: multipart with `EventNotificationAlert` XML and JPEGs.
    Hikvision,
    /// The `AlarmInfoPlate` JSON push of the common Chinese all-in-one plate cameras.
    AlarmInfoPlate,
    /// A plain JSON webhook (anything else, e.g. a middleware in front of a camera).
    Webhook,
}

/// `[[camera]]`: one plate camera.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// The camera's name (in the journal, the console and its push URL `/camera/<name>`).
    pub name: String,
    pub kind: CameraKind,
    /// The address its pushes come from; pushes from elsewhere are refused. Absent: any.
    #[serde(default)]
    pub from: Option<std::net::IpAddr>,
    /// The lane a push without a known channel belongs to.
    pub lane: String,
    /// Channel number → lane id, for a camera watching several lanes.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    /// Reads below this confidence (0–100) never open by themselves. Default 80.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: u8,
    /// Seconds without a push (or heartbeat) after which the camera is reported silent (a
    /// device fault, like a reader). Default 600; 0 turns the check off.
    #[serde(default = "default_camera_silent_after_s")]
    pub silent_after_s: u64,
}

fn default_min_confidence() -> u8 {
    80
}

fn default_camera_silent_after_s() -> u64 {
    600
}

/// What a lane does when a tag's registered plate is not the camera's (`[lane.plate]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateMismatchPolicy {
    /// Deny (`denied_plate_mismatch`) and raise an alarm.
    #[default]
    Deny,
    /// Let the vehicle through, flag the decision and raise an alarm.
    Flag,
}

/// `[lane.plate]`: how the lane uses plate camera reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanePlateConfig {
    /// A plate read this many milliseconds before the vehicle reaches the presence loop still
    /// counts for it (cameras often read the plate before the loop). Default 3000.
    #[serde(default = "default_plate_window_ms")]
    pub presence_window_ms: u64,
    /// A tag read and a plate read of one vehicle within this many milliseconds are
    /// cross-checked (dual identification). Default 5000.
    #[serde(default = "default_cross_check_window_ms")]
    pub cross_check_window_ms: u64,
    /// Deny or flag a mismatch. Default deny.
    #[serde(default)]
    pub on_mismatch: PlateMismatchPolicy,
}

impl Default for LanePlateConfig {
    fn default() -> LanePlateConfig {
        LanePlateConfig {
            presence_window_ms: default_plate_window_ms(),
            cross_check_window_ms: default_cross_check_window_ms(),
            on_mismatch: PlateMismatchPolicy::Deny,
        }
    }
}

fn default_plate_window_ms() -> u64 {
    3000
}

fn default_cross_check_window_ms() -> u64 {
    5000
}

/// `[http]`: the local listener for `/healthz`, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address and port. Default 127.0.0.1:9180 (loopback: the cabinet's own scraper).
    #[serde(default = "default_http_listen")]
    pub listen: std::net::SocketAddr,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: default_http_listen(),
        }
    }
}

fn default_http_listen() -> std::net::SocketAddr {
    "127.0.0.1:9180".parse().expect("a valid default")
}

/// `[central]`: the connection to the central server's sync port (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralSection {
    /// The sync port's base URL, e.g. `https://central.example.edu.cn:8443`.
    pub url: String,
    /// The site CA certificate (PEM) the server's certificate must chain to.
    pub ca: PathBuf,
    /// This gate's certificate (PEM), issued by `gatehouse pki issue-gate`.
    pub cert: PathBuf,
    /// This gate's private key (PEM).
    pub key: PathBuf,
    /// TCP + TLS connect timeout. Default 3000 ms.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a change or command long poll waits at the centre. Default 20000 ms.
    #[serde(default = "default_poll_wait_ms")]
    pub poll_wait_ms: u64,
    /// Events per upload. Default 1000.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// How often the gate reports its health. Default 5000 ms.
    #[serde(default = "default_health_every_ms")]
    pub health_every_ms: u64,
    /// After this long without reaching the centre the gate applies its offline policy
    /// (`cached`, `locked_closed`, `locked_open`, set centrally per gate). Default 10000 ms.
    #[serde(default = "default_offline_after_ms")]
    pub offline_after_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    3000
}

fn default_poll_wait_ms() -> u64 {
    20_000
}

fn default_batch() -> u32 {
    1000
}

fn default_health_every_ms() -> u64 {
    5000
}

fn default_offline_after_ms() -> u64 {
    10_000
}

/// `[gate]`: who this controller is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// The gate's number, as the centre knows it (1–65535).
    pub id: u16,
    /// Display name (e.g. `北门`).
    #[serde(default)]
    pub name: String,
    /// Where the local store and journal live.
    pub data_dir: PathBuf,
    /// The site's time zone, for permit schedules. Default `Asia/Shanghai`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Anti-passback at this gate: `off`, `hard`, `soft`, or `timed:MINUTES`. Default `hard`.
    #[serde(default = "default_anti_passback")]
    pub anti_passback: String,
}

/// `[journal]`: the event journal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Events kept at least (only delivered ones are ever pruned). Default 1,000,000.
    #[serde(default = "default_capacity")]
    pub capacity: u64,
}

impl Default for JournalSection {
    fn default() -> Self {
        JournalSection {
            capacity: default_capacity(),
        }
    }
}

/// Which way a lane lets vehicles through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaneDirection {
    Entry,
    Exit,
    /// Both; the reader antenna that saw the tag tells which way the vehicle faces.
    TwoWay,
}

/// `[[lane]]`: one lane, its reader and its I/O module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneConfig {
    /// The lane's id within the gate (e.g. `entry`).
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub direction: LaneDirection,
    /// Milliseconds the arm stays up after the vehicle clears the safety loop. Default 1000.
    #[serde(default = "default_close_delay_ms")]
    pub close_delay_ms: u64,
    /// Milliseconds the arm may take to reach a limit before it is a fault. Default 6000.
    #[serde(default = "default_arm_timeout_ms")]
    pub arm_timeout_ms: u64,
    pub reader: ReaderConfig,
    pub io: IoConfig,
    /// `[lane.plate]`: plate camera reads at this lane.
    #[serde(default)]
    pub plate: LanePlateConfig,
    /// `[lane.qr]`: the lane's QR pass scanner, if it has one.
    #[serde(default)]
    pub qr: Option<crate::gate::qr::QrConfig>,
    /// `[lane.screen]`: the lane's RS-485 LED/voice screen, if it has one.
    #[serde(default)]
    pub screen: Option<crate::gate::display::ScreenConfig>,
    /// `[lane.light]`: the signal light on the I/O module.
    #[serde(default)]
    pub light: crate::gate::display::SignalLightConfig,
}

/// `[lane.reader]`: the long-range UHF reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderConfig {
    /// Serial port path (e.g. `/dev/ttyUSB0`, or a simulator's link).
    pub port: PathBuf,
    /// Default 115200.
    #[serde(default = "default_reader_baud")]
    pub baud: u32,
    /// Reader address; 255 = broadcast. Default 255.
    #[serde(default = "default_reader_address")]
    pub address: u8,
    /// Reads weaker than this are ignored (dBm). Default -75.
    #[serde(default = "default_rssi_floor")]
    pub rssi_floor_dbm: i16,
    /// A tag seen again within this many milliseconds is the same read. Default 3000.
    #[serde(default = "default_tag_hold_ms")]
    pub tag_hold_ms: u64,
    /// Which way a tag seen on each antenna faces, for two-way lanes: `{ "0" = "entry", "1" =
    /// "exit" }`. One-way lanes may leave it empty: every antenna faces the lane's direction.
    #[serde(default)]
    pub antennas: BTreeMap<u8, AntennaDirection>,
    /// Milliseconds to wait for an answer before the reader counts as silent. Default 1000.
    #[serde(default = "default_reader_timeout_ms")]
    pub timeout_ms: u64,
}

/// The direction a reader antenna faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntennaDirection {
    Entry,
    Exit,
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// `[lane.io]`: the Modbus RTU lane I/O module (barrier contacts, loops, fire, tamper).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoConfig {
    pub port: PathBuf,
    /// Default 9600 (what cheap boards ship with; the Modbus spec default is 19200 8E1).
    #[serde(default = "default_io_baud")]
    pub baud: u32,
    /// Default `none`.
    #[serde(default = "default_parity")]
    pub parity: Parity,
    /// Milliseconds between input polls. Default 50.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Milliseconds to wait for each Modbus answer. Default 200.
    #[serde(default = "default_io_timeout_ms")]
    pub timeout_ms: u64,
    /// While a vehicle on the loop waits for its read, the inputs are polled every this many
    /// milliseconds instead of every `poll_ms`, so its OPEN finds the line free
    /// (`gate::runtime::io_task`). 0: never pause.
    /// Default 200.
    #[serde(default = "default_poll_pause_ms")]
    pub poll_pause_ms: u64,
    /// Extra attempts for a command that timed out or was answered "busy". Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The I/O map: slave address, coil and input addresses, OPEN pulse length.
    #[serde(default)]
    pub map: LaneIoMap,
}

/// One guard who may use the booth page.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoothGuard {
    pub username: String,
    /// An argon2 PHC string (`$argon2id$v=19$...`).
    pub password_hash: String,
}

impl std::fmt::Debug for BoothGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoothGuard")
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// `[booth]` of `gate.toml`: the guards who may use the fallback page. With none (the
/// default) the gate does not serve the page at all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoothConfig {
    /// `[[booth.guard]]` entries.
    #[serde(default)]
    pub guard: Vec<BoothGuard>,
}

impl BoothConfig {
    /// Whether the page is served: at least one guard is configured.
    pub fn enabled(&self) -> bool {
        !self.guard.is_empty()
    }

    /// Checks every guard: a user name, not twice, and an argon2 PHC hash (never a plain
    /// password). The message names the guard, never the hash.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, guard) in self.guard.iter().enumerate() {
            let name = guard.username.trim();
            if name.is_empty() {
                return Err(format!("booth.guard #{}: username is empty", i + 1));
            }
            if !seen.insert(name) {
                return Err(format!(
                    "booth.guard {name:?}: configured twice (user names are unique)"
                ));
            }
            let argon2 = PasswordHash::new(&guard.password_hash)
                .is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"));
            if !argon2 {
                return Err(format!(
                    "booth.guard {name:?}: password_hash is not an argon2 hash \
                     (make one with `gatehouse gate hash-password`; never put the password itself here)"
                ));
            }
        }
        Ok(())
    }
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}
fn default_anti_passback() -> String {
    "hard".into()
}
fn default_capacity() -> u64 {
    crate::gate::journal::DEFAULT_CAPACITY
}
fn default_close_delay_ms() -> u64 {
    1000
}
fn default_arm_timeout_ms() -> u64 {
    6000
}
fn default_reader_baud() -> u32 {
    115_200
}
fn default_reader_address() -> u8 {
    0xFF
}
fn default_rssi_floor() -> i16 {
    -75
}
fn default_tag_hold_ms() -> u64 {
    3000
}
fn default_reader_timeout_ms() -> u64 {
    1000
}
fn default_io_baud() -> u32 {
    9600
}
fn default_parity() -> Parity {
    Parity::None
}
fn default_poll_ms() -> u64 {
    50
}
fn default_poll_pause_ms() -> u64 {
    200
}
fn default_io_timeout_ms() -> u64 {
    200
}
fn default_retries() -> u32 {
    2
}

impl GateConfig {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<GateConfig, ConfigError> {
        let mut config: GateConfig = crate::config_file::read(path)?;
        config.apply_env(crate::config_file::process_env)?;
        config.validate()?;
        Ok(config)
    }

    /// Applies the environment overrides: `GATEHOUSE_GATE_DATA_DIR` (gate.data_dir) and
    /// `GATEHOUSE_GATE_HTTP_LISTEN` (http.listen).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(dir) = var("GATEHOUSE_GATE_DATA_DIR") {
            self.gate.data_dir = PathBuf::from(dir);
        }
        if let Some(listen) =
            crate::config_file::listen_override(&var, "GATEHOUSE_GATE_HTTP_LISTEN")?
        {
            self.http.listen = listen;
        }
        Ok(())
    }

    /// Parses TOML text without validating it (tests build configurations this way).
    pub fn parse(text: &str) -> Result<GateConfig, ConfigError> {
        crate::config_file::parse(text)
    }

    /// Checks what the types cannot: ids, timings, time zone, antennas, and that ports exist.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.gate.id == 0 {
            return bad("gate.id must be a gate number from 1".into());
        }
        if self.gate.timezone.parse::<chrono_tz::Tz>().is_err() {
            return bad(format!(
                "gate.timezone: unknown time zone {:?} (e.g. Asia/Shanghai)",
                self.gate.timezone
            ));
        }
        parse_anti_passback(&self.gate.anti_passback).map_err(ConfigError::Invalid)?;
        if self.journal.capacity < 1000 {
            return bad("journal.capacity must be at least 1000 events".into());
        }
        if self.lanes.is_empty() {
            return bad("at least one [[lane]] is required".into());
        }
        let mut ids = std::collections::BTreeSet::new();
        for lane in &self.lanes {
            let at = format!("lane {:?}", lane.id);
            if lane.id.trim().is_empty() {
                return bad("lane.id must not be empty".into());
            }
            if !ids.insert(lane.id.as_str()) {
                return bad(format!("{at}: two lanes share this id"));
            }
            if lane.direction == LaneDirection::TwoWay && lane.reader.antennas.is_empty() {
                return bad(format!(
                    "{at}: a two_way lane needs reader.antennas to say which antenna faces which way"
                ));
            }
            if let Some(a) = lane.reader.antennas.keys().find(|a| **a > 7) {
                return bad(format!(
                    "{at}: reader.antennas: antenna {a} does not exist (0-7)"
                ));
            }
            if lane.io.poll_ms == 0 || lane.io.poll_ms > 50 {
                return bad(format!(
                    "{at}: io.poll_ms must be 1-50 (loops are polled at least every 50 ms)"
                ));
            }
            if lane.io.poll_pause_ms > 1000 {
                return bad(format!(
                    "{at}: io.poll_pause_ms must be 0-1000 (the fire input is read at most this late while a vehicle waits for its read)"
                ));
            }
            if lane.close_delay_ms > 10_000 {
                return bad(format!(
                    "{at}: close_delay_ms over 10 s lets a second vehicle through"
                ));
            }
            lane.io
                .map
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("{at}: io.map: {e}")))?;
            for (what, port) in [
                ("reader.port", &lane.reader.port),
                ("io.port", &lane.io.port),
            ] {
                if !port.exists() {
                    return bad(format!(
                        "{at}: {what}: serial port {} not found",
                        port.display()
                    ));
                }
            }
        }
        self.booth.validate().map_err(ConfigError::Invalid)?;
        self.realtime.validate().map_err(ConfigError::Invalid)?;
        self.validate_cameras(&ids).map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Checks `[camera_listener]` and every `[[camera]]`: names unique and usable in a URL, lanes
    /// and channel lanes that exist, confidences that are percentages, a listener to push to.
    fn validate_cameras(&self, lanes: &std::collections::BTreeSet<&str>) -> Result<(), String> {
        if let Some(listener) = &self.camera_listener
            && !(1024..=64 * 1024 * 1024).contains(&listener.max_body_bytes)
        {
            return Err(format!(
                "camera_listener.max_body_bytes: {} is not 1024 to 67108864 (64 MiB)",
                listener.max_body_bytes
            ));
        }
        if !self.cameras.is_empty() && self.camera_listener.is_none() {
            return Err(
                "[[camera]] is configured but [camera_listener] is not: cameras would have nowhere to push"
                    .into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for camera in &self.cameras {
            let name = camera.name.as_str();
            let url_safe = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !url_safe {
                return Err(format!(
                    "camera {name:?}: name must be 1-64 letters, digits, - or _ (it is the push URL /camera/<name>)"
                ));
            }
            if !names.insert(name) {
                return Err(format!("camera {name:?}: two cameras share this name"));
            }
            if !lanes.contains(camera.lane.as_str()) {
                return Err(format!(
                    "camera {name:?}: lane {:?} is not a [[lane]] of this gate",
                    camera.lane
                ));
            }
            for (channel, lane) in &camera.channels {
                if channel.parse::<u32>().is_err() {
                    return Err(format!(
                        "camera {name:?}: channels: {channel:?} is not a channel number"
                    ));
                }
                if !lanes.contains(lane.as_str()) {
                    return Err(format!(
                        "camera {name:?}: channels: channel {channel} goes to lane {lane:?}, which is not a [[lane]] of this gate"
                    ));
                }
            }
            if camera.min_confidence > 100 {
                return Err(format!(
                    "camera {name:?}: min_confidence {} is over 100 (a percentage)",
                    camera.min_confidence
                ));
            }
        }
        Ok(())
    }
}

/// Parses an anti-passback setting: `off`, `hard`, `soft` or `timed:MINUTES`.
pub fn parse_anti_passback(text: &str) -> Result<AntiPassbackSetting, String> {
    match text {
        "off" => Ok(AntiPassbackSetting::Off),
        "hard" => Ok(AntiPassbackSetting::Hard),
        "soft" => Ok(AntiPassbackSetting::Soft),
        other => match other.strip_prefix("timed:").map(str::parse::<u32>) {
            Some(Ok(minutes)) if minutes > 0 => Ok(AntiPassbackSetting::Timed(minutes)),
            _ => Err(format!(
                "gate.anti_passback: {other:?} is not off, hard, soft or timed:MINUTES"
            )),
        },
    }
}

/// The anti-passback setting as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AntiPassbackSetting {
    Off,
    Hard,
    Soft,
    Timed(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(reader: &str, io: &str) -> String {
        format!(
            r#"
            [gate]
            id = 1
            data_dir = "/tmp/gatehouse-test"
            [[lane]]
            id = "entry"
            direction = "entry"
            [lane.reader]
            port = "{reader}"
            [lane.io]
            port = "{io}"
            "#
        )
    }

    #[test]
    fn a_minimal_configuration_gets_the_documented_defaults() {
        let config = GateConfig::parse(&example("/dev/null", "/dev/null")).unwrap();
        config.validate().unwrap();
        assert_eq!(config.gate.timezone, "Asia/Shanghai");
        assert_eq!(config.journal.capacity, 1_000_000);
        let lane = &config.lanes[0];
        assert_eq!(lane.close_delay_ms, 1000);
        assert_eq!(lane.reader.baud, 115_200);
        assert_eq!(lane.io.poll_ms, 50);
    }

    #[test]
    fn the_documented_central_section_states_the_real_defaults() {
        let documented = GateConfig::parse(include_str!("../../examples/gate.toml")).unwrap();
        let minimal = GateConfig::parse(&format!(
            "{}\n[central]\nurl = \"https://c:8443\"\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n",
            example("/dev/ttyUSB0", "/dev/ttyUSB1")
        ))
        .unwrap();
        let (d, m) = (documented.central.unwrap(), minimal.central.unwrap());
        assert_eq!(
            (
                d.connect_timeout_ms,
                d.poll_wait_ms,
                d.batch,
                d.health_every_ms,
                d.offline_after_ms
            ),
            (
                m.connect_timeout_ms,
                m.poll_wait_ms,
                m.batch,
                m.health_every_ms,
                m.offline_after_ms
            )
        );
        let standalone = GateConfig::parse(&example("/dev/ttyUSB0", "/dev/ttyUSB1")).unwrap();
        assert!(standalone.central.is_none());
    }

    #[test]
    fn the_documented_example_parses_and_states_the_real_defaults() {
        let documented = GateConfig::parse(include_str!("../../examples/gate.toml")).unwrap();
        let minimal = GateConfig::parse(&example("/dev/ttyUSB0", "/dev/ttyUSB1")).unwrap();
        let (d, m) = (&documented.lanes[0], &minimal.lanes[0]);
        assert_eq!(documented.gate.timezone, minimal.gate.timezone);
        assert_eq!(documented.gate.anti_passback, minimal.gate.anti_passback);
        assert_eq!(documented.journal.capacity, minimal.journal.capacity);
        assert_eq!(
            (d.close_delay_ms, d.arm_timeout_ms),
            (m.close_delay_ms, m.arm_timeout_ms)
        );
        let (dr, mr) = (&d.reader, &m.reader);
        assert_eq!(
            (
                dr.baud,
                dr.address,
                dr.rssi_floor_dbm,
                dr.tag_hold_ms,
                dr.timeout_ms
            ),
            (
                mr.baud,
                mr.address,
                mr.rssi_floor_dbm,
                mr.tag_hold_ms,
                mr.timeout_ms
            )
        );
        let (di, mi) = (&d.io, &m.io);
        assert_eq!(
            (
                di.baud,
                di.parity,
                di.poll_ms,
                di.poll_pause_ms,
                di.timeout_ms,
                di.retries,
                di.map
            ),
            (
                mi.baud,
                mi.parity,
                mi.poll_ms,
                mi.poll_pause_ms,
                mi.timeout_ms,
                mi.retries,
                mi.map
            )
        );
    }

    #[test]
    fn the_realtime_keys_are_off_by_default_parsed_and_refused_with_a_clear_error_when_invalid() {
        let documented = GateConfig::parse(include_str!("../../examples/gate.toml")).unwrap();
        let minimal = GateConfig::parse(&example("/dev/null", "/dev/null")).unwrap();
        assert_eq!(documented.realtime, minimal.realtime);
        assert_eq!(minimal.realtime, RealtimeSection::default());
        assert!(!minimal.realtime.lock_memory && minimal.realtime.lane_priority == 0);
        assert_eq!(minimal.lanes[0].io.poll_pause_ms, 200);

        let with = |table: &str| {
            GateConfig::parse(&format!(
                "{}\n[realtime]\n{table}\n",
                example("/dev/null", "/dev/null")
            ))
        };
        let ok = with(
            "lane_priority = 20\nlock_memory = true\nlane_cpus = [0]\ncpu_wake_latency_us = 0",
        )
        .unwrap();
        ok.validate().unwrap();
        assert_eq!(
            ok.realtime,
            RealtimeSection {
                lane_priority: 20,
                lock_memory: true,
                lane_cpus: vec![0],
                cpu_wake_latency_us: Some(0),
            }
        );
        // Beyond u32: refused by the parser, naming the value.
        let too_big = with("cpu_wake_latency_us = 5000000000")
            .unwrap_err()
            .to_string();
        assert!(too_big.contains("5000000000"), "{too_big}");
        let refused = |table: &str| with(table).unwrap().validate().unwrap_err().to_string();
        assert!(
            refused("cpu_wake_latency_us = 2147483648").contains("cpu_wake_latency_us 2147483648")
        );
        assert!(refused("lane_priority = 100").contains("lane_priority 100"));
        assert!(refused("lane_cpus = [0, 0]").contains("listed twice"));
        assert!(refused("lane_cpus = [1000]").contains("CPU 1000"));
        // Not a number, or a key that does not exist: refused by the parser, naming the key.
        assert!(with("lane_priority = -1").is_err());
        assert!(
            with("lane_prio = 5")
                .unwrap_err()
                .to_string()
                .contains("lane_prio")
        );
        // The example's last table is [lane.io].
        let pause = GateConfig::parse(&format!(
            "{}\npoll_pause_ms = 1001\n",
            example("/dev/null", "/dev/null")
        ))
        .unwrap();
        assert!(
            pause
                .validate()
                .unwrap_err()
                .to_string()
                .contains("poll_pause_ms")
        );
    }

    #[test]
    fn the_documented_camera_keys_state_the_real_defaults() {
        let documented = GateConfig::parse(include_str!("../../examples/gate.toml")).unwrap();
        let minimal = GateConfig::parse(&format!(
            "{}\n[camera_listener]\nlisten = \"0.0.0.0:8088\"\n\
             [[camera]]\nname = \"c\"\nkind = \"webhook\"\nlane = \"entry\"\n",
            example("/dev/null", "/dev/null")
        ))
        .unwrap();
        minimal.validate().unwrap();
        let (d, m) = (&documented.cameras[0], &minimal.cameras[0]);
        assert_eq!(
            (d.min_confidence, d.silent_after_s, d.channels.len()),
            (m.min_confidence, m.silent_after_s, m.channels.len())
        );
        assert_eq!(
            documented.camera_listener.unwrap().max_body_bytes,
            minimal.camera_listener.unwrap().max_body_bytes
        );
        let (dp, mp) = (&documented.lanes[0].plate, &minimal.lanes[0].plate);
        assert_eq!(
            (
                dp.presence_window_ms,
                dp.cross_check_window_ms,
                dp.on_mismatch
            ),
            (
                mp.presence_window_ms,
                mp.cross_check_window_ms,
                mp.on_mismatch
            )
        );
    }

    #[test]
    fn camera_settings_that_cannot_work_are_refused_naming_the_camera() {
        let base = format!(
            "{}\n[camera_listener]\nlisten = \"0.0.0.0:8088\"\n",
            example("/dev/null", "/dev/null")
        );
        let camera = |extra: &str| {
            format!("\n[[camera]]\nkind = \"alarm_info_plate\"\nlane = \"entry\"\n{extra}\n")
        };
        let refused = |text: String| {
            GateConfig::parse(&text)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (
                base.clone() + &camera("name = \"a/b\""),
                "camera \"a/b\": name must be 1-64 letters, digits, - or _",
            ),
            (
                base.clone() + &camera("name = \"a\"") + &camera("name = \"a\""),
                "camera \"a\": two cameras share this name",
            ),
            (
                base.clone() + &camera("name = \"a\"").replace("\"entry\"", "\"side\""),
                "camera \"a\": lane \"side\" is not a [[lane]] of this gate",
            ),
            (
                base.clone() + &camera("name = \"a\"\nchannels = { \"2\" = \"exit\" }"),
                "channel 2 goes to lane \"exit\", which is not a [[lane]] of this gate",
            ),
            (
                base.clone() + &camera("name = \"a\"\nchannels = { \"two\" = \"entry\" }"),
                "channels: \"two\" is not a channel number",
            ),
            (
                base.clone() + &camera("name = \"a\"\nmin_confidence = 101"),
                "min_confidence 101 is over 100",
            ),
            (
                example("/dev/null", "/dev/null") + &camera("name = \"a\""),
                "[camera_listener] is not",
            ),
            (
                base.replace("8088\"", "8088\"\nmax_body_bytes = 10"),
                "camera_listener.max_body_bytes: 10 is not 1024 to 67108864",
            ),
        ];
        for (text, expected) in cases {
            let err = refused(text);
            assert!(err.contains(expected), "{err} does not say {expected:?}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let text = example("/dev/null", "/dev/null")
            .replace("direction = \"entry\"", "direction = \"entry\"\nspeed = 3");
        let err = GateConfig::parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `speed`"), "{err}");
    }

    #[test]
    fn a_missing_serial_port_is_refused_with_its_path() {
        let config = GateConfig::parse(&example("/dev/does-not-exist", "/dev/null")).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("reader.port: serial port /dev/does-not-exist not found"),
            "{err}"
        );
    }

    #[test]
    fn a_two_way_lane_without_antenna_directions_is_refused() {
        let text = example("/dev/null", "/dev/null").replace("\"entry\"\n", "\"two_way\"\n");
        let config = GateConfig::parse(&text).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("two_way lane needs reader.antennas"), "{err}");
    }

    #[test]
    fn anti_passback_settings_parse_and_nonsense_is_refused() {
        assert_eq!(
            parse_anti_passback("timed:30"),
            Ok(AntiPassbackSetting::Timed(30))
        );
        assert_eq!(parse_anti_passback("soft"), Ok(AntiPassbackSetting::Soft));
        assert!(parse_anti_passback("timed:0").is_err());
        assert!(parse_anti_passback("strict").is_err());
    }
}
