//! An emulated RS-485 LED/voice lane screen: it reads the controller's frames with the sans-IO
//! decoder ([`firmware_protocols::led`]), resynchronising on noise and counting dropped bytes,
//! and records what it was told — the connect, the four lines it shows, the texts it speaks —
//! decoded from GBK under the same layout guesses as the driver
//! ([`crate::gate::display::screen`]: show = line number then text, voice = option byte then
//! text).
//!
//! It serves any `AsyncRead` transport: the master end of a pseudo-terminal that the gate opens
//! with tokio-serial ([`crate::serial::pty::PtyDevice`]), or `tokio::io::duplex`. A real screen
//! does not answer these commands (none of the captures shows a reply), so neither does this.
//! [`LedScreen`] is a cloneable handle: tests read the lines, the spoken texts and every frame,
//! and wait for a frame count. This module never opens a port itself.

use std::sync::{Arc, Mutex, MutexGuard};

use firmware_protocols::led::{Command, Decoder, Frame, decode_gbk};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

/// What the screen has been told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScreenState {
    /// The four lines as shown now.
    pub lines: [String; 4],
    /// Every text spoken, oldest first.
    pub spoken: Vec<String>,
    /// Connect frames received, with their passwords.
    pub connects: Vec<String>,
    /// Every frame received, oldest first.
    pub frames: Vec<Frame>,
    /// Bytes dropped while resynchronising.
    pub dropped_bytes: u64,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<ScreenState>,
    changed: Notify,
}

/// The emulated screen: a handle on what it recorded, and its serve loop.
#[derive(Debug, Clone)]
pub struct LedScreen {
    inner: Arc<Inner>,
    show_command: u8,
    voice_command: u8,
}

impl Default for LedScreen {
    fn default() -> LedScreen {
        LedScreen::new(0x62, 0x30)
    }
}

impl LedScreen {
    /// A blank screen that reads `show_command` frames as lines and `voice_command` frames as
    /// speech.
    pub fn new(show_command: u8, voice_command: u8) -> LedScreen {
        LedScreen {
            inner: Arc::new(Inner::default()),
            show_command,
            voice_command,
        }
    }

    fn state(&self) -> MutexGuard<'_, ScreenState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of what it has been told.
    pub fn snapshot(&self) -> ScreenState {
        self.state().clone()
    }

    /// The lines shown now.
    pub fn lines(&self) -> [String; 4] {
        self.state().lines.clone()
    }

    /// Every text spoken so far.
    pub fn spoken(&self) -> Vec<String> {
        self.state().spoken.clone()
    }

    /// Waits until `check` accepts the state (woken by each frame; no polling).
    pub async fn wait_until(&self, mut check: impl FnMut(&ScreenState) -> bool) -> ScreenState {
        loop {
            let notified = self.inner.changed.notified();
            {
                let state = self.state();
                if check(&state) {
                    return state.clone();
                }
            }
            notified.await;
        }
    }

    /// Takes one frame into the state; returns a line for the log, if it is worth one.
    fn take(&self, frame: Frame) -> Option<String> {
        let mut state = self.state();
        let data = frame.data();
        let said = match frame.command {
            Command::Connect => {
                let password = String::from_utf8_lossy(data).into_owned();
                state.connects.push(password.clone());
                Some(format!("connect (password {password:?})"))
            }
            c if c.byte() == self.show_command && !data.is_empty() => {
                let line = usize::from(data[0]);
                let text = decode_gbk(&data[1..]);
                let shown = format!("line {line}: {text}");
                if let Some(slot) = state.lines.get_mut(line) {
                    *slot = text;
                }
                Some(shown)
            }
            c if c.byte() == self.voice_command && !data.is_empty() => {
                let text = decode_gbk(&data[1..]);
                state.spoken.push(text.clone());
                Some(format!("voice: {text}"))
            }
            other => Some(format!(
                "command 0x{:02X}, {} data bytes",
                other.byte(),
                data.len()
            )),
        };
        state.frames.push(frame);
        said
    }

    /// Reads frames from `transport` until it ends; `log` gets one line per frame.
    pub async fn serve<T>(&self, mut transport: T, log: impl Fn(&str)) -> std::io::Result<()>
    where
        T: AsyncRead + Unpin,
    {
        let mut decoder = Decoder::new();
        let mut buf = [0u8; 512];
        loop {
            let n = transport.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            decoder.push(&buf[..n]);
            while let Some(frame) = decoder.next_frame() {
                if let Some(line) = self.take(frame) {
                    log(&line);
                }
            }
            self.state().dropped_bytes = decoder.dropped_bytes();
            self.inner.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use firmware_protocols::led::{PN_NONE, encode_gbk};
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn the_screen_records_lines_and_speech_through_noise() {
        let screen = LedScreen::default();
        let (mut controller, device) = tokio::io::duplex(4096);
        let serve = tokio::spawn({
            let screen = screen.clone();
            async move { screen.serve(device, |_| {}).await }
        });
        let mut line = vec![1u8];
        line.extend(encode_gbk("欢迎光临", 254).bytes);
        let mut voice = vec![1u8];
        voice.extend(encode_gbk("京A12345，欢迎光临", 254).bytes);
        let mut bytes = vec![0xAA, 0x55];
        bytes.extend(
            Frame::new(0, PN_NONE, Command::Text62, line)
                .unwrap()
                .to_bytes(),
        );
        bytes.push(0x00);
        bytes.extend(
            Frame::new(0, PN_NONE, Command::Voice, voice)
                .unwrap()
                .to_bytes(),
        );
        controller.write_all(&bytes).await.unwrap();
        let state = screen.wait_until(|s| !s.spoken.is_empty()).await;
        assert_eq!(state.lines[1], "欢迎光临");
        assert_eq!(state.spoken, ["京A12345，欢迎光临"]);
        assert_eq!(state.dropped_bytes, 3);
        drop(controller);
        serve.await.unwrap().unwrap();
    }
}
