//! The lane's LED/voice screen: a small trait ([`LaneScreen`]: show lines, speak a text), its
//! RS-485 driver ([`SerialScreen`], over any `AsyncWrite`), and the task that feeds it the lane's
//! announcements ([`run`], one per lane with `[lane.screen]`).
//!
//! The frame is known (docs/protocols.md §4, [`firmware_protocols::led`]); what DATA holds for
//! the text and voice commands is not. The driver's guesses, configurable in `[lane.screen]`
//! and kept behind the trait so that another screen's driver can replace them:
//! - show: one frame per line, `show_command` (0x62), DATA = line number (0–3), then the line
//!   in GBK;
//! - speak: `voice_command` (0x30), DATA = `0x01`, then the text in GBK (the capture's
//!   `01 31` read as an option byte and the text "1");
//! - connect: `0x00` with the password in ASCII, sent once each time the port opens.
//!
//! What it never does: hold up the lane. The screen runs on the gate's main runtime, fed by
//! the lane's live status; a screen that is unplugged or slow costs only its own words.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use firmware_protocols::led::{Command, Frame, MAX_DATA, PN_NONE, encode_gbk};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Announcement, Follower, LaneView, ScreenConfig, Templates};
use crate::serial::queued::Queued;

/// The lines an LED lane screen has.
pub const LINES: usize = 4;

/// How long one write to the screen may take before the link counts as broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the screen could not be told something.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The serial port cannot be opened.
    #[error("cannot open the lane screen's port {path}: {reason}")]
    Open { path: String, reason: String },
    /// Writing to it failed.
    #[error("lane screen link failed: {0}")]
    Io(#[from] std::io::Error),
    /// Writing to it took too long.
    #[error("lane screen did not take the frame within {0:?}")]
    Timeout(Duration),
}

/// A lane screen: what the lane asks of any make.
pub trait LaneScreen: Send {
    /// Shows `lines` (at most [`LINES`]; the rest are cleared).
    fn show(&mut self, lines: &[String]) -> impl Future<Output = Result<(), ScreenError>> + Send;
    /// Speaks `text`.
    fn speak(&mut self, text: &str) -> impl Future<Output = Result<(), ScreenError>> + Send;
}

/// The frames' layouts, from `[lane.screen]`.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub address: u8,
    pub show_command: u8,
    pub voice_command: u8,
}

impl Layout {
    /// The layout `[lane.screen]` names.
    pub fn of(config: &ScreenConfig) -> Layout {
        Layout {
            address: config.address,
            show_command: config.show_command,
            voice_command: config.voice_command,
        }
    }

    /// The frame that shows `text` on line `line`.
    pub fn show_frame(&self, line: u8, text: &str) -> Frame {
        let mut data = vec![line];
        data.extend(encode_gbk(text, MAX_DATA - 1).bytes);
        Frame::new(
            self.address,
            PN_NONE,
            Command::from_byte(self.show_command),
            data,
        )
        .expect("one byte plus at most 254")
    }

    /// The frame that speaks `text`.
    pub fn voice_frame(&self, text: &str) -> Frame {
        let mut data = vec![0x01];
        data.extend(encode_gbk(text, MAX_DATA - 1).bytes);
        Frame::new(
            self.address,
            PN_NONE,
            Command::from_byte(self.voice_command),
            data,
        )
        .expect("one byte plus at most 254")
    }

    /// The connect frame with `password`.
    pub fn connect_frame(&self, password: &str) -> Frame {
        let bytes = password.as_bytes();
        Frame::new(
            self.address,
            PN_NONE,
            Command::Connect,
            bytes[..bytes.len().min(MAX_DATA)].to_vec(),
        )
        .expect("cut to fit")
    }
}

/// The RS-485 screen on any byte transport (a serial port, a pty, an in-memory pipe).
#[derive(Debug)]
pub struct SerialScreen<T> {
    io: T,
    layout: Layout,
}

impl<T: AsyncWrite + Unpin + Send> SerialScreen<T> {
    /// Wraps `io`, sending the connect frame first when `password` is not empty.
    pub async fn attach(io: T, layout: Layout, password: &str) -> Result<Self, ScreenError> {
        let mut screen = SerialScreen { io, layout };
        if !password.is_empty() {
            let frame = layout.connect_frame(password);
            screen.send(&frame).await?;
        }
        Ok(screen)
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), ScreenError> {
        let bytes = frame.to_bytes();
        tokio::time::timeout(WRITE_TIMEOUT, async {
            self.io.write_all(&bytes).await?;
            self.io.flush().await
        })
        .await
        .map_err(|_| ScreenError::Timeout(WRITE_TIMEOUT))??;
        Ok(())
    }
}

impl<T: AsyncWrite + Unpin + Send> LaneScreen for SerialScreen<T> {
    async fn show(&mut self, lines: &[String]) -> Result<(), ScreenError> {
        for line in 0..LINES {
            let text = lines.get(line).map_or("", String::as_str);
            let frame = self.layout.show_frame(line as u8, text);
            self.send(&frame).await?;
        }
        Ok(())
    }

    async fn speak(&mut self, text: &str) -> Result<(), ScreenError> {
        let frame = self.layout.voice_frame(text);
        self.send(&frame).await
    }
}

/// The screen's lines for an announcement: the plate first (when known), then the outcome's
/// lines, four at most.
pub fn lines_of(announcement: &Announcement) -> Vec<String> {
    announcement
        .plate
        .iter()
        .cloned()
        .chain(announcement.screen.iter().cloned())
        .take(LINES)
        .collect()
}

/// Tells `screen` an announcement: the lines, then the voice (unless `voice` is off).
pub async fn tell<S: LaneScreen>(
    screen: &mut S,
    announcement: &Announcement,
    voice: bool,
) -> Result<(), ScreenError> {
    screen.show(&lines_of(announcement)).await?;
    if voice && !announcement.voice.is_empty() {
        screen.speak(&announcement.voice).await?;
    }
    Ok(())
}

/// Opens the screen's port, 8N1 at the configured baud.
fn open(config: &ScreenConfig) -> Result<tokio_serial::SerialStream, ScreenError> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(config.port.to_string_lossy(), config.baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .stop_bits(tokio_serial::StopBits::One)
        .parity(tokio_serial::Parity::None)
        .open_native_async()
        .map_err(|e| ScreenError::Open {
            path: config.port.display().to_string(),
            reason: e.to_string(),
        })
}

/// Opens the screen's port and connects; logs the first failure of an outage only.
async fn connect(
    lane: &str,
    config: &ScreenConfig,
    layout: Layout,
    down: &mut bool,
) -> Option<SerialScreen<Queued<tokio_serial::SerialStream>>> {
    let opened = match open(config) {
        // `Queued`: the port's own flush would block a worker of the gate's runtime until the
        // frame left the wire, out of the write timeout's reach (crate::serial::queued).
        Ok(port) => SerialScreen::attach(Queued(port), layout, &config.password).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(s) => {
            if *down {
                tracing::info!(lane, "lane screen back online");
            }
            *down = false;
            Some(s)
        }
        Err(e) => {
            if !*down {
                tracing::warn!(lane, error = %e, "lane screen offline; the lane carries on without it");
            }
            *down = true;
            None
        }
    }
}

/// Feeds lane `lane`'s screen until `shutdown`: each new decision (and a fault) is shown and
/// spoken. The port is opened when the task starts and again, after a failure, with the next
/// announcement; a screen that is down only loses words, and says so once in the log.
pub async fn run(
    lane: String,
    config: ScreenConfig,
    templates: Arc<Templates>,
    mut status: watch::Receiver<impl LaneView + Send + Sync>,
    shutdown: CancellationToken,
) {
    let layout = Layout::of(&config);
    let mut follower = Follower::new(&*status.borrow_and_update());
    let mut down = false;
    let mut screen = connect(&lane, &config, layout, &mut down).await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let next = follower.next(&*status.borrow_and_update(), &templates);
                let Some(announcement) = next else { continue };
                if screen.is_none() {
                    screen = connect(&lane, &config, layout, &mut down).await;
                }
                if let Some(s) = screen.as_mut()
                    && let Err(e) = tell(s, &announcement, config.voice).await
                {
                    tracing::warn!(lane, error = %e, "lane screen write failed; reopening with the next announcement");
                    screen = None;
                    down = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use firmware_protocols::led::{Decoder, decode_gbk};
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::domain::ReasonCode;
    use crate::gate::display::DisplayConfig;

    fn layout() -> Layout {
        Layout {
            address: 0,
            show_command: 0x62,
            voice_command: 0x30,
        }
    }

    #[tokio::test]
    async fn the_driver_connects_then_shows_four_lines_and_speaks_in_gbk() {
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let mut screen = SerialScreen::attach(ours, layout(), "159753")
            .await
            .unwrap();
        let t = Templates::from_config(&DisplayConfig::default()).unwrap();
        let a = t.announce(&crate::gate::display::tests::decision(
            ReasonCode::DeniedExpired,
            "entry",
            Some("京A12345"),
        ));
        tell(&mut screen, &a, true).await.unwrap();
        drop(screen);
        let mut bytes = Vec::new();
        theirs.read_to_end(&mut bytes).await.unwrap();
        let mut d = Decoder::new();
        d.push(&bytes);
        let frames: Vec<Frame> = std::iter::from_fn(|| d.next_frame()).collect();
        assert_eq!(frames.len(), 1 + 4 + 1);
        assert_eq!(frames[0].command, Command::Connect);
        assert_eq!(frames[0].data(), b"159753");
        let lines: Vec<(u8, String)> = frames[1..5]
            .iter()
            .map(|f| (f.data()[0], decode_gbk(&f.data()[1..])))
            .collect();
        assert_eq!(
            lines,
            [
                (0, "京A12345".to_string()),
                (1, "禁止通行".into()),
                (2, "通行证已过期".into()),
                (3, String::new())
            ]
        );
        assert_eq!(frames[5].command, Command::Voice);
        assert_eq!(frames[5].data()[0], 0x01);
        assert_eq!(
            decode_gbk(&frames[5].data()[1..]),
            "京A12345，通行证已过期，禁止通行"
        );
    }

    #[test]
    fn an_overlong_line_is_cut_to_one_frame() {
        let text = "很".repeat(300);
        let f = layout().show_frame(0, &text);
        assert_eq!(f.data().len(), 1 + 254);
    }
}
