//! The lane I/O module driver: the controller's side of the Modbus RTU link to the relay/input
//! board that makes the barrier's contacts and reads the loops (docs/protocols.md#lane-io-module).
//!
//! It speaks through the tokio-modbus RTU client over any `AsyncRead + AsyncWrite` transport;
//! only [`IoLink::open`] touches a real serial port. Every request is bounded by a timeout.
//!
//! After a timeout the link is out of step: RTU has no transaction ids, so an answer that comes
//! late would be taken as the answer to the next request (tokio-modbus even asserts on it in
//! debug builds). So [`IoError::needs_reconnect`] is true after a timeout as after a transport or
//! protocol error (a decoding error ends a tokio-util `Framed` stream for good): the caller drops
//! the link, and [`IoLink::open`] discards whatever the port received before it. Retrying is the
//! caller's business (the lane's I/O task retries commands — writing a coil is idempotent — on a
//! fresh link; a failed poll is simply followed by the next one). This module never decides when
//! the barrier moves: it carries out commands.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use firmware_protocols::lane_io::{LaneCoil, LaneInputs, LaneIoMap};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_modbus::client::Context;
use tokio_modbus::{ExceptionCode, Slave};

use crate::gate::config::{IoConfig, Parity};

/// Why a request to the I/O module failed.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("cannot open I/O module port {path}: {source}")]
    Open {
        path: String,
        source: tokio_serial::Error,
    },
    #[error("I/O module did not answer within {0:?}")]
    Timeout(Duration),
    #[error("I/O module link failed: {0}")]
    Transport(#[from] std::io::Error),
    #[error("I/O module answered out of protocol: {0}")]
    Protocol(String),
    #[error("I/O module refused the request: {0:?}")]
    Exception(ExceptionCode),
}

impl IoError {
    /// Must the link be dropped and opened again before the next request? Yes after anything
    /// but an exception answer, which is a whole, in-step reply.
    pub fn needs_reconnect(&self) -> bool {
        !matches!(self, IoError::Exception(_) | IoError::Open { .. })
    }
}

/// An open link to one lane's I/O module.
pub struct IoLink {
    ctx: Context,
    map: LaneIoMap,
    timeout: Duration,
}

impl fmt::Debug for IoLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoLink")
            .field("slave", &self.map.slave)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl IoLink {
    /// Opens the configured serial port (8 data bits, 1 stop bit, the configured parity) and
    /// discards what it had received: a late answer to a request of an earlier link.
    pub fn open(config: &IoConfig) -> Result<IoLink, IoError> {
        use tokio_serial::SerialPort as _;
        let port = open_serial(&config.port, config.baud, config.parity)?;
        port.clear(tokio_serial::ClearBuffer::Input)
            .map_err(|source| IoError::Open {
                path: config.port.display().to_string(),
                source,
            })?;
        // tokio-modbus flushes after every request; the port's own flush would block this
        // lane's thread until the request left the wire (crate::serial::queued).
        Ok(IoLink::attach(
            crate::serial::queued::Queued(port),
            config.map,
            Duration::from_millis(config.timeout_ms),
        ))
    }

    /// Wraps any transport (a serial port, a pseudo-terminal, an in-memory pipe).
    pub fn attach<T>(transport: T, map: LaneIoMap, timeout: Duration) -> IoLink
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug + 'static,
    {
        IoLink {
            ctx: tokio_modbus::client::rtu::attach_slave(transport, Slave(map.slave)),
            map,
            timeout,
        }
    }

    /// The I/O map in use.
    pub fn map(&self) -> &LaneIoMap {
        &self.map
    }

    /// Reads every mapped input in one request.
    pub async fn read_inputs(&mut self) -> Result<LaneInputs, IoError> {
        use tokio_modbus::client::Client as _;
        use tokio_modbus::{Request, Response};
        let span = self.map.input_span();
        // Through `call`, like `write_coil`: a short answer is a protocol error, where
        // tokio-modbus's `read_discrete_inputs` would `debug_assert` (panic) on it.
        let response = flatten(
            tokio::time::timeout(
                self.timeout,
                self.ctx
                    .call(Request::ReadDiscreteInputs(span.start, span.count)),
            )
            .await
            .map_err(|_| IoError::Timeout(self.timeout))?,
        )?;
        let bits = match response {
            Response::ReadDiscreteInputs(mut bits) if bits.len() >= usize::from(span.count) => {
                bits.truncate(usize::from(span.count));
                bits
            }
            other => {
                return Err(IoError::Protocol(format!(
                    "read {} inputs, got {other:?}",
                    span.count
                )));
            }
        };
        self.map
            .inputs_from_bits(span.start, &bits)
            .map_err(|e| IoError::Protocol(e.to_string()))
    }

    /// Sets one coil on or off.
    ///
    /// The module echoes the coil and value it wrote; an echo of another coil is a late answer
    /// to an earlier request (one that timed out, its answer arriving after the port was
    /// cleared): a protocol error, so the caller reconnects and retries. (tokio-modbus's
    /// `write_single_coil` only `debug_assert`s the echo — a panic that ended the lane's thread
    /// in debug builds — so the request goes through `call` and the echo is checked here.)
    pub async fn write_coil(&mut self, coil: LaneCoil, on: bool) -> Result<(), IoError> {
        use tokio_modbus::client::Client as _;
        use tokio_modbus::{Request, Response};
        let address = self.map.coil_address(coil);
        let response = tokio::time::timeout(
            self.timeout,
            self.ctx.call(Request::WriteSingleCoil(address, on)),
        )
        .await
        .map_err(|_| IoError::Timeout(self.timeout))
        .and_then(flatten)?;
        match response {
            Response::WriteSingleCoil(echo_address, echo_on)
                if echo_address == address && echo_on == on =>
            {
                Ok(())
            }
            Response::WriteSingleCoil(echo_address, echo_on) => Err(IoError::Protocol(format!(
                "wrote coil {address} = {on}, the echo says coil {echo_address} = {echo_on} \
                 (a late answer to an earlier request)"
            ))),
            other => Err(IoError::Protocol(format!(
                "wrote coil {address}, got {other:?}"
            ))),
        }
    }

    /// Releases the OPEN and CLOSE contacts. Run at start: a controller killed in the middle of
    /// a pulse must not leave a contact made.
    pub async fn release_pulse_contacts(&mut self) -> Result<(), IoError> {
        self.write_coil(LaneCoil::Open, false).await?;
        self.write_coil(LaneCoil::Close, false).await
    }
}

/// Opens a serial port the way the controller does for every device: 8 data bits, 1 stop bit.
pub fn open_serial(
    path: &Path,
    baud: u32,
    parity: Parity,
) -> Result<tokio_serial::SerialStream, IoError> {
    use tokio_serial::SerialPortBuilderExt;
    let parity = match parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    tokio_serial::new(path.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .stop_bits(tokio_serial::StopBits::One)
        .parity(parity)
        .open_native_async()
        .map_err(|source| IoError::Open {
            path: path.display().to_string(),
            source,
        })
}

fn flatten<T>(result: tokio_modbus::Result<T>) -> Result<T, IoError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(code)) => Err(IoError::Exception(code)),
        Err(tokio_modbus::Error::Transport(e)) => Err(IoError::Transport(e)),
        Err(tokio_modbus::Error::Protocol(e)) => Err(IoError::Protocol(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A write-single-coil echo (function 0x05) for `address`, with its CRC.
    fn echo(address: u16, on: bool) -> Vec<u8> {
        let mut frame = vec![1, 0x05];
        frame.extend_from_slice(&address.to_be_bytes());
        frame.extend_from_slice(if on { &[0xFF, 0x00] } else { &[0x00, 0x00] });
        let crc = firmware_protocols::checksum::crc16_modbus(&frame);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame
    }

    #[tokio::test]
    async fn a_late_echo_of_another_coil_is_a_protocol_error_that_reconnects_not_a_panic() {
        let (ours, mut module) = tokio::io::duplex(256);
        let map = LaneIoMap::default();
        let mut link = IoLink::attach(ours, map, Duration::from_secs(5));
        let asked = map.coil_address(LaneCoil::Open);
        let other = map.coil_address(LaneCoil::Close);
        assert_ne!(asked, other);
        let answer = tokio::spawn(async move {
            let mut request = [0u8; 8];
            module.read_exact(&mut request).await.unwrap();
            // The answer to an earlier write of the other coil arrives now.
            module.write_all(&echo(other, true)).await.unwrap();
            module
        });
        let result = link.write_coil(LaneCoil::Open, false).await;
        let _module = answer.await.unwrap();
        let error = result.expect_err("a mismatched echo is refused");
        assert!(
            matches!(error, IoError::Protocol(_)) && error.needs_reconnect(),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_echo_of_the_coil_written_is_success() {
        let (ours, mut module) = tokio::io::duplex(256);
        let map = LaneIoMap::default();
        let mut link = IoLink::attach(ours, map, Duration::from_secs(5));
        let asked = map.coil_address(LaneCoil::Open);
        let answer = tokio::spawn(async move {
            let mut request = [0u8; 8];
            module.read_exact(&mut request).await.unwrap();
            module.write_all(&echo(asked, true)).await.unwrap();
            module
        });
        link.write_coil(LaneCoil::Open, true).await.unwrap();
        let _module = answer.await.unwrap();
    }
}
