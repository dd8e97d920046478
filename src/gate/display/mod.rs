//! What the lane tells the driver: the lane display page (for the Android screens at lanes),
//! the RS-485 LED/voice screen and the signal light, all fed by the lane's decisions and
//! worded by per-outcome templates.
//!
//! (Foundation stub: filled in by the lane-display work of issue 21.)

use std::path::PathBuf;

use serde::Deserialize;

/// `[display]`: the words the lane shows and speaks per outcome (templates with `{plate}`,
/// `{name}`, `{reason}`). Default: the built-in zh-CN wording.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {}

/// `[lane.screen]`: an RS-485 LED/voice lane screen. Absent: the lane has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenConfig {
    /// Serial port path.
    pub port: PathBuf,
}

/// `[lane.light]`: the signal light on the I/O module's light coil. Default: driven (green while
/// granted or open, red otherwise).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalLightConfig {}
