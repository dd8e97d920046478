//! The lane's QR pass scanner (二维码扫描器): a serial module in UART mode that sends each
//! decoded code as text ended by CR or CRLF (docs/protocols.md §3), read by a thin driver over
//! the sans-IO line codec in `firmware_protocols::qr`.
//!
//! The scanner only talks: the driver never writes to it. [`QrLink`] takes any `AsyncRead`
//! (a serial port opened by [`open_port`], a pseudo-terminal, an in-memory pipe) and hands out
//! each decoded text as a [`QrScan`]; noise and overlong lines are dropped and counted by the
//! codec and never end the link. A hang-up (end of file, `EIO` from an unplugged adaptor) or a
//! read error ends it, so the runtime can mark the scanner offline and reopen it with backoff,
//! as it does the reader. This module never decides what a text means.

use std::path::{Path, PathBuf};
use std::time::Instant;

use firmware_protocols::qr::{LineCounters, LineDecoder};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// `[lane.qr]`: the lane's QR pass scanner. Absent: the lane has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrConfig {
    /// Serial port path (e.g. `/dev/ttyUSB2`, or a simulator's link).
    pub port: PathBuf,
    /// Default 9600 (8N1), what these modules ship with.
    #[serde(default = "default_qr_baud")]
    pub baud: u32,
    /// On a two-way lane, the direction the scanner faces (`entry` or `exit`); default entry.
    /// Ignored on one-way lanes (their direction is the lane's).
    #[serde(default)]
    pub direction: Option<QrDirection>,
}

/// The direction a two-way lane's scanner faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QrDirection {
    /// Vehicles coming in.
    Entry,
    /// Vehicles going out.
    Exit,
}

fn default_qr_baud() -> u32 {
    9600
}

/// One decoded text off the scanner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrScan {
    /// The text, without its line end.
    pub text: String,
    /// When the driver decoded it (the last byte of its line had arrived).
    pub at: Instant,
}

/// Why a [`QrLink`] ended (the runtime reopens the port with backoff).
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The port cannot be opened.
    #[error("cannot open QR scanner port {path}: {source}")]
    Open {
        path: String,
        source: tokio_serial::Error,
    },
    /// The scanner hung up (end of file, or the adaptor went away).
    #[error("QR scanner hung up")]
    HungUp,
    /// Reading failed.
    #[error("QR scanner link failed: {0}")]
    Transport(#[from] std::io::Error),
}

/// Opens the scanner's serial port (8N1 at `baud`). The only place the driver touches a port.
pub fn open_port(path: &Path, baud: u32) -> Result<tokio_serial::SerialStream, QrError> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(path.to_string_lossy(), baud)
        .open_native_async()
        .map_err(|source| QrError::Open {
            path: path.display().to_string(),
            source,
        })
}

/// An open link to one scanner.
#[derive(Debug)]
pub struct QrLink<T> {
    transport: T,
    decoder: LineDecoder,
}

impl<T: AsyncRead + Unpin> QrLink<T> {
    /// Wraps any transport.
    pub fn new(transport: T) -> QrLink<T> {
        QrLink {
            transport,
            decoder: LineDecoder::new(),
        }
    }

    /// The codec's counters so far (lines, bytes dropped as noise, overlong lines).
    pub fn counters(&self) -> LineCounters {
        self.decoder.counters()
    }

    /// The next decoded text; waits for it as long as it takes (a scanner is silent between
    /// codes). Ends only on a hang-up or a read error.
    pub async fn next_scan(&mut self) -> Result<QrScan, QrError> {
        let mut buf = [0u8; 256];
        loop {
            if let Some(text) = self.decoder.next_line() {
                return Ok(QrScan {
                    text,
                    at: Instant::now(),
                });
            }
            let n = match self.transport.read(&mut buf).await {
                Ok(0) => return Err(QrError::HungUp),
                Ok(n) => n,
                Err(e) if crate::serial::pty::is_hangup(&e) => return Err(QrError::HungUp),
                Err(e) => return Err(QrError::Transport(e)),
            };
            self.decoder.push(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn texts_arrive_one_by_one_noise_is_counted_and_a_hang_up_ends_the_link() {
        let (mut scanner, gate) = tokio::io::duplex(64);
        let mut link = QrLink::new(gate);
        scanner.write_all(b"GHP1.abc\r\n\x00\x01").await.unwrap();
        assert_eq!(link.next_scan().await.unwrap().text, "GHP1.abc");
        scanner.write_all(b"second\r").await.unwrap();
        assert_eq!(link.next_scan().await.unwrap().text, "second");
        assert_eq!(link.counters().dropped_bytes, 2);
        drop(scanner);
        assert!(matches!(link.next_scan().await, Err(QrError::HungUp)));
    }
}
