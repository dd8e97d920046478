//! A simulated QR/barcode scanner in UART mode (docs/protocols.md §3): it "reads" a code and
//! sends its text and then CR (or CRLF), as the modules at the lanes do at 9600 8N1.
//!
//! It holds the master end of a pseudo-terminal published at a link; the gate opens the link
//! as its `[lane.qr]` port with tokio-serial, exactly as it opens the real module's USB–serial
//! adaptor (a pty has no baud rate: the bytes arrive as fast as they are written, which is
//! what the lane's latency bench wants). Dropping the scanner unplugs it (the gate reads a
//! hang-up and reopens the link with backoff). Raw bytes can be sent too, for line noise.

use std::io;
use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::serial::pty::PtyDevice;

/// What the scanner sends after each text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\r` (the modules' factory setting).
    #[default]
    Cr,
    /// `\r\n`.
    CrLf,
}

impl LineEnding {
    fn bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Cr => b"\r",
            LineEnding::CrLf => b"\r\n",
        }
    }
}

/// A simulated scanner on a pseudo-terminal.
#[derive(Debug)]
pub struct QrScanner {
    device: PtyDevice,
    ending: LineEnding,
}

impl QrScanner {
    /// Creates the scanner's pty, published at `link` (the path a gate's `[lane.qr] port`
    /// names). Must be called inside a Tokio runtime.
    pub fn create(link: &Path, ending: LineEnding) -> io::Result<QrScanner> {
        Ok(QrScanner {
            device: PtyDevice::create(Some(link))?,
            ending,
        })
    }

    /// The path a gate opens.
    pub fn path(&self) -> &Path {
        self.device.path()
    }

    /// Sends one scanned code: its text, then the line ending.
    pub async fn scan(&mut self, text: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(self.ending.bytes());
        self.send_raw(&bytes).await
    }

    /// Sends bytes as they are (noise, a line split across writes).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.device.write_all(bytes).await?;
        self.device.flush().await
    }

    /// Frees the port after a controller died holding it (see [`PtyDevice::release_exclusive`]).
    pub fn release_exclusive(&self) -> io::Result<()> {
        self.device.release_exclusive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::qr::{QrLink, open_port};

    #[tokio::test]
    async fn what_the_scanner_sends_is_what_the_gates_driver_reads_over_a_real_pty() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("qr");
        let mut scanner = QrScanner::create(&link, LineEnding::CrLf).unwrap();
        let mut gate = QrLink::new(open_port(&link, 9600).unwrap());
        scanner.scan("GHP1.first").await.unwrap();
        scanner.send_raw(b"\x00\x00GHP1.sec").await.unwrap();
        scanner.send_raw(b"ond\r").await.unwrap();
        assert_eq!(gate.next_scan().await.unwrap().text, "GHP1.first");
        assert_eq!(gate.next_scan().await.unwrap().text, "GHP1.second");
        assert_eq!(gate.counters().dropped_bytes, 2);
        drop(scanner);
        assert!(gate.next_scan().await.is_err(), "unplugged: the link ends");
    }
}
