//! Pseudo-terminal pairs that stand in for serial ports.
//!
//! A simulated device (UHF reader, lane I/O module) holds the *master* end of a pseudo-terminal;
//! the gate controller opens the *slave* end by its path with tokio-serial, exactly as it opens a
//! USB–RS-485 adaptor on a real gate. Nothing in the controller knows it is talking to a
//! simulator, so the tests exercise the real serial code path (termios set-up, exclusive open,
//! non-blocking reads, hang-ups).
//!
//! A [`PtyDevice`] can publish a stable symlink (for example `/run/gatehouse/north-entry-reader`)
//! so a gate configuration can name the port before the simulator exists. Creating a device
//! again at the same link re-points it atomically: that is how a simulator "unplugs" a port
//! (drop the device — the controller's reads end) and "plugs it back in" (create it again).
//!
//! This module never interprets the bytes it carries.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// The device side of a pseudo-terminal pair.
///
/// It reads what the controller writes to the tty and writes what the controller will read.
/// Dropping it closes the master, which the controller sees as a hang-up (EOF or `EIO`), and
/// removes the symlink if it still points at this device's tty.
#[derive(Debug)]
pub struct PtyDevice {
    /// The master, read side. Tokio's pipe types take any non-blocking character device (a tty
    /// is one) without `unsafe`; the master is `dup`ed so reading and writing each get one.
    reader: pipe::Receiver,
    /// The master, write side (a `dup` of the same descriptor).
    writer: pipe::Sender,
    /// A slave descriptor held open for the device's whole life, so that the master does not
    /// read `EIO` while no controller has the port open (between a controller's close and its
    /// reopen, or before it first opens).
    slave: OwnedFd,
    tty: PathBuf,
    link: Option<PathBuf>,
}

impl PtyDevice {
    /// Creates a raw-mode pseudo-terminal pair; with `link`, also a symlink to its tty there,
    /// replacing whatever the link pointed to before.
    ///
    /// Must be called inside a Tokio runtime (the master is registered with its reactor).
    pub fn create(link: Option<&Path>) -> io::Result<PtyDevice> {
        let pair = openpty(None, None).map_err(io::Error::from)?;
        // Raw mode before anyone opens the slave: no echo, no line discipline, 8-bit clean.
        let mut termios = tcgetattr(&pair.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
        let flags = fcntl(&pair.master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pair.master, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        let tty = nix::unistd::ttyname(pair.slave.as_fd()).map_err(io::Error::from)?;
        if let Some(link) = link {
            replace_symlink(&tty, link)?;
        }
        let write_fd = pair.master.try_clone()?;
        Ok(PtyDevice {
            reader: pipe::Receiver::from_owned_fd_unchecked(pair.master)?,
            writer: pipe::Sender::from_owned_fd_unchecked(write_fd)?,
            slave: pair.slave,
            tty,
            link: link.map(Path::to_path_buf),
        })
    }

    /// The path a controller opens: the symlink if one was asked for, else the tty itself.
    pub fn path(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.tty)
    }

    /// Clears the tty's exclusive-open flag (TIOCEXCL).
    ///
    /// tokio-serial opens ports exclusively and clears the flag when it closes them; a controller
    /// killed with SIGKILL never does, and because this device keeps a slave open the flag
    /// outlives it, so only root could reopen the port. A real adaptor is freed when its last user
    /// dies; call this after the controller died to get the same. (A second live opener is still
    /// refused by serialport's `flock`, which the kernel releases when its holder dies.)
    pub fn release_exclusive(&self) -> io::Result<()> {
        rustix::termios::ioctl_tiocnxcl(&self.slave).map_err(io::Error::from)
    }

    /// A handle that can [`PortReleaser::release`] the port later, after the device itself has
    /// been moved into a simulator's serve loop.
    pub fn releaser(&self) -> io::Result<PortReleaser> {
        Ok(PortReleaser {
            slave: self.slave.try_clone()?,
        })
    }

    /// The pseudo-terminal's own device path (`/dev/pts/N`).
    pub fn tty_path(&self) -> &Path {
        &self.tty
    }
}

impl Drop for PtyDevice {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            // Only remove the link if it is still ours: a newer device may have re-pointed it.
            if std::fs::read_link(link).is_ok_and(|target| target == self.tty) {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

/// Frees a pseudo-terminal's exclusive-open flag; see [`PtyDevice::release_exclusive`].
#[derive(Debug)]
pub struct PortReleaser {
    slave: OwnedFd,
}

impl PortReleaser {
    /// Clears TIOCEXCL so the next controller can open the port.
    pub fn release(&self) -> io::Result<()> {
        rustix::termios::ioctl_tiocnxcl(&self.slave).map_err(io::Error::from)
    }
}

/// Points `link` at `target` atomically (a new symlink renamed over the old one), so a
/// controller reopening the link never finds it missing halfway.
fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    if let Some(parent) = link.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

impl AsyncRead for PtyDevice {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for PtyDevice {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

/// Is this read error what a serial port reports when the other end hung up?
///
/// On Linux a tty whose master closed reads `EIO`; some paths report EOF (`Ok(0)`) instead,
/// which callers check separately.
pub fn is_hangup(err: &io::Error) -> bool {
    err.raw_os_error() == Some(Errno::EIO as i32)
        || matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::UnexpectedEof
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_serial::SerialPortBuilderExt;

    #[tokio::test]
    async fn bytes_cross_a_pty_opened_with_tokio_serial_in_both_directions() {
        let mut device = PtyDevice::create(None).unwrap();
        let mut port = tokio_serial::new(device.path().to_string_lossy(), 115_200)
            .open_native_async()
            .unwrap();
        // Every byte value, to prove the line is raw (no echo, no CR/LF mapping, no XON/XOFF).
        let all: Vec<u8> = (0..=255).collect();
        port.write_all(&all).await.unwrap();
        let mut got = vec![0; 256];
        device.read_exact(&mut got).await.unwrap();
        assert_eq!(got, all);
        device.write_all(&all).await.unwrap();
        let mut got = vec![0; 256];
        port.read_exact(&mut got).await.unwrap();
        assert_eq!(got, all);
    }

    #[tokio::test]
    async fn dropping_the_device_is_a_hangup_and_a_new_device_at_the_link_can_be_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("reader");
        let device = PtyDevice::create(Some(&link)).unwrap();
        let first_tty = device.tty_path().to_path_buf();
        assert_eq!(std::fs::read_link(&link).unwrap(), first_tty);
        let mut port = tokio_serial::new(link.to_string_lossy(), 115_200)
            .open_native_async()
            .unwrap();

        drop(device);
        let mut buf = [0u8; 8];
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), port.read(&mut buf))
            .await
            .expect("a hang-up must end the read, not hang it");
        match outcome {
            Ok(0) => {}
            Ok(n) => panic!("read {n} bytes from a hung-up port"),
            Err(e) => assert!(is_hangup(&e), "unexpected error {e}"),
        }
        assert!(!link.exists(), "the link of a dropped device is removed");
        drop(port);

        let mut device = PtyDevice::create(Some(&link)).unwrap();
        let mut port = tokio_serial::new(link.to_string_lossy(), 115_200)
            .open_native_async()
            .unwrap();
        port.write_all(b"back").await.unwrap();
        let mut got = [0u8; 4];
        device.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"back");
    }
}
