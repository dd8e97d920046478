//! A serial port whose `flush` does not wait for the wire.
//!
//! Why: tokio-serial's `poll_flush` calls `tcdrain(3)`, a *blocking* system call that returns
//! only once the UART has shifted every queued byte out. At the shipped 9600 baud an 8-byte
//! Modbus request takes about 8 ms to send, and tokio-modbus flushes after every request, so
//! each input poll blocked the lane's thread (its reader, its decisions, its OPEN) for that
//! long; a lane-screen frame of a few hundred bytes blocked a worker of the gate's shared
//! runtime for a few hundred milliseconds, where no timeout can reach it. Pseudo-terminals
//! drain at once, which is why no bench saw it.
//!
//! Bytes a `write` has returned for are already the kernel's: they go out on the wire in order
//! whether or not anyone waits, and nothing in the controller needs to know when the last one
//! left (a Modbus client waits for the answer, which can only come after the request; RS-485
//! direction is switched by the adaptor or the kernel's RS-485 mode, not by us). So
//! [`Queued`] answers `flush` at once and leaves everything else to the port.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A transport whose `flush` and `shutdown` return at once (module header).
#[derive(Debug)]
pub struct Queued<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for Queued<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Queued<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::Queued;
    use crate::serial::pty::PtyDevice;

    /// A port whose own flush never finishes (a UART that never drains).
    struct NeverDrains(Vec<u8>);

    impl AsyncWrite for NeverDrains {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_queued_port_is_flushed_without_waiting_for_the_port_to_drain() {
        let mut port = Queued(NeverDrains(Vec::new()));
        port.write_all(b"\x01\x05\x00\x00\xff\x00").await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), port.flush())
            .await
            .expect("flush waited for the port")
            .unwrap();
        assert_eq!(port.0.0.len(), 6);
    }

    #[tokio::test]
    async fn bytes_written_through_a_queued_port_arrive_in_order_and_flush_returns() {
        let mut device = PtyDevice::create(None).unwrap();
        let port = tokio_serial::SerialPortBuilderExt::open_native_async(tokio_serial::new(
            device.tty_path().to_string_lossy(),
            9600,
        ))
        .unwrap();
        let mut port = Queued(port);
        port.write_all(b"first ").await.unwrap();
        port.flush().await.unwrap();
        port.write_all(b"second").await.unwrap();
        port.flush().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 12 {
            let n = device.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"first second");
        device.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        port.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
    }
}
