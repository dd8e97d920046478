//! The lane's QR pass scanner (二维码扫描器): a serial module in UART mode that sends each
//! decoded code as text ended by CR or CRLF (docs/protocols.md §3), read by a thin driver over
//! the sans-IO line codec in `firmware_protocols::qr`.
//!
//! (Foundation stub: the driver is filled in by the QR work of issue 21.)

use std::path::PathBuf;

use serde::Deserialize;

/// `[lane.qr]`: the lane's QR pass scanner. Absent: the lane has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrConfig {
    /// Serial port path (e.g. `/dev/ttyUSB2`, or a simulator's link).
    pub port: PathBuf,
    /// Default 9600 (8N1), what these modules ship with.
    #[serde(default = "default_qr_baud")]
    pub baud: u32,
}

fn default_qr_baud() -> u32 {
    9600
}
