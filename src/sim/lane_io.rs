//! An emulated lane I/O module: a Modbus RTU slave with relay outputs (coils) wired to a
//! simulated boom barrier and discrete inputs reporting the loops, the arm's limit switches, the
//! fire linkage and the cabinet tamper switch, as mapped by a [`LaneIoMap`].
//!
//! It serves any `AsyncRead + AsyncWrite + Unpin` transport: the master end of a pseudo-terminal
//! ([`crate::serial::pty::PtyDevice`]) that the controller opens with tokio-serial, or one end of
//! `tokio::io::duplex`. Frames are read with Gatehouse's own sans-IO codec
//! ([`firmware_protocols::modbus`]), not tokio-modbus's RTU server: that server only runs on a
//! `tokio_serial::SerialStream` and ends its serve loop on the first undecodable frame, while a
//! module on a noisy RS-485 line resynchronises and keeps answering. (The controller itself uses
//! the tokio-modbus RTU client; the integration tests cross-check the two.)
//!
//! Behaviour, as a typical relay/input board:
//! - coil writes drive the barrier: a rising edge on OPEN is an open pulse, a rising edge on
//!   CLOSE a close pulse, STOP is a level (held = hold), the light coil is only stored;
//! - reads or writes outside the module's points ([`LaneIoModuleConfig::coils`],
//!   [`LaneIoModuleConfig::inputs`], 8 each by default) get exception 02, a quantity out of the
//!   spec's range or a coil value other than 0xFF00/0x0000 gets 03, any other function 01;
//! - a request for another slave address gets no answer; a broadcast write is executed silently;
//! - when the line has been silent for [`LaneIoModuleConfig::frame_gap`] with a partial frame
//!   buffered, the partial frame is dropped (the 3.5-character rule, loosened for a pty).
//!
//! [`LaneIoModule`] is a cloneable handle: tests set the loops, fire and tamper, read the arm,
//! read the log of every coil command with its time, and inject faults (stop answering, corrupt
//! replies, garbage on the line). State lives in the handle, so it survives the transport being
//! replaced (a pty unplugged and plugged back in): call [`LaneIoModule::serve`] again. Only one
//! `serve` should run at a time.
//!
//! Time comes from `tokio::time`, so tests over `tokio::io::duplex` may pause the clock. This
//! module never opens a port itself and never reads real hardware.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use firmware_protocols::lane_io::{LaneCoil, LaneInput, LaneIoMap, LaneIoMapError};
use firmware_protocols::modbus::{
    BROADCAST, CoilValue, ExceptionCode, FC_READ_COILS, FC_READ_DISCRETE_INPUTS,
    FC_WRITE_MULTIPLE_COILS, FC_WRITE_SINGLE_COIL, MAX_READ_BITS, Request, RequestDecoder,
    RequestFrame, Response, ResponseFrame,
};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::barrier::{ArmState, Barrier, DEFAULT_TRAVEL};

/// How the emulated module is built.
#[derive(Debug, Clone)]
pub struct LaneIoModuleConfig {
    /// Slave address and what each point means.
    pub map: LaneIoMap,
    /// How many coils the board has (addresses `0..coils`); default 8.
    pub coils: u16,
    /// How many discrete inputs the board has (addresses `0..inputs`); default 8.
    pub inputs: u16,
    /// The barrier's travel time between limits; default 1.5 s.
    pub travel: Duration,
    /// Silence after which a partial frame is dropped. The RTU spec says 3.5 characters
    /// (1.75 ms at 19200 baud and above); the default 20 ms leaves room for a pty's scheduling.
    pub frame_gap: Duration,
}

impl Default for LaneIoModuleConfig {
    fn default() -> LaneIoModuleConfig {
        LaneIoModuleConfig {
            map: LaneIoMap::default(),
            coils: 8,
            inputs: 8,
            travel: DEFAULT_TRAVEL,
            frame_gap: Duration::from_millis(20),
        }
    }
}

/// Why a module cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LaneIoModuleError {
    /// The I/O map itself is invalid.
    #[error(transparent)]
    Map(#[from] LaneIoMapError),
    /// A mapped coil lies beyond the board's coils.
    #[error("coil {coil:?} is mapped to address {address}, but the module has {count} coils")]
    CoilOutOfRange {
        /// The coil.
        coil: LaneCoil,
        /// Its address.
        address: u16,
        /// The board's coil count.
        count: u16,
    },
    /// A mapped input lies beyond the board's inputs.
    #[error("input {input:?} is mapped to address {address}, but the module has {count} inputs")]
    InputOutOfRange {
        /// The input.
        input: LaneInput,
        /// Its address.
        address: u16,
        /// The board's input count.
        count: u16,
    },
}

/// One coil write the module received and acted on (or refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoilCommand {
    /// When the module processed it.
    pub at: Instant,
    /// The coil address.
    pub address: u16,
    /// The lane signal mapped there, if any.
    pub coil: Option<LaneCoil>,
    /// The value written (`None` for an illegal single-coil value).
    pub on: Option<bool>,
    /// The exception the module answered instead of executing it, if any.
    pub refused: Option<ExceptionCode>,
}

#[derive(Debug)]
struct State {
    barrier: Barrier,
    coils: Vec<bool>,
    tamper: bool,
    log: Vec<CoilCommand>,
    silent: bool,
    corrupt_replies: u32,
    pending_garbage: Vec<u8>,
    garbage_sent: u64,
    dropped_bytes: u64,
    requests: u64,
    /// Injected refusals: the next this many reads / coil writes get this exception.
    refuse_reads: Option<(ExceptionCode, u32)>,
    refuse_writes: Option<(ExceptionCode, u32)>,
}

/// Which requests an injected refusal ([`LaneIoModule::refuse`]) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// Input and coil reads (the controller's polls).
    Reads,
    /// Coil writes (the controller's OPEN, CLOSE, STOP and their releases).
    CoilWrites,
}

/// Called with every coil write as the module receives it, before it answers.
pub type CoilHook = Arc<dyn Fn(&CoilCommand) + Send + Sync>;

struct Shared {
    config: LaneIoModuleConfig,
    state: Mutex<State>,
    /// See [`LaneIoModule::on_coil_write`].
    hook: Mutex<Option<CoilHook>>,
    /// Wakes `serve` when there is garbage to put on the line.
    wake: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The emulated module: a cloneable handle on its state, and its server loop.
#[derive(Debug, Clone)]
pub struct LaneIoModule {
    shared: Arc<Shared>,
}

impl LaneIoModule {
    /// Builds a module with a closed barrier and every coil and input off.
    pub fn new(config: LaneIoModuleConfig) -> Result<LaneIoModule, LaneIoModuleError> {
        config.map.validate()?;
        for coil in LaneCoil::ALL {
            let address = config.map.coil_address(coil);
            if address >= config.coils {
                return Err(LaneIoModuleError::CoilOutOfRange {
                    coil,
                    address,
                    count: config.coils,
                });
            }
        }
        for input in LaneInput::ALL {
            let address = config.map.input_address(input);
            if address >= config.inputs {
                return Err(LaneIoModuleError::InputOutOfRange {
                    input,
                    address,
                    count: config.inputs,
                });
            }
        }
        let state = State {
            barrier: Barrier::new(config.travel, Instant::now()),
            coils: vec![false; usize::from(config.coils)],
            tamper: false,
            log: Vec::new(),
            silent: false,
            corrupt_replies: 0,
            pending_garbage: Vec::new(),
            garbage_sent: 0,
            dropped_bytes: 0,
            requests: 0,
            refuse_reads: None,
            refuse_writes: None,
        };
        Ok(LaneIoModule {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                hook: Mutex::new(None),
                wake: Notify::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from a bug here; the state is still
        // consistent enough for a simulator, so carry on rather than poison every test.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The module's configuration.
    pub fn config(&self) -> &LaneIoModuleConfig {
        &self.shared.config
    }

    /// Answers requests on `transport` until it reaches end of file (`Ok`) or fails (`Err`).
    pub async fn serve<T>(&self, mut transport: T) -> io::Result<()>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let mut decoder = RequestDecoder::new();
        let mut counted_drops = 0;
        let mut buf = [0u8; 512];
        loop {
            let garbage = std::mem::take(&mut self.state().pending_garbage);
            if !garbage.is_empty() {
                transport.write_all(&garbage).await?;
                transport.flush().await?;
                self.state().garbage_sent += garbage.len() as u64;
            }
            let gap = self.shared.config.frame_gap;
            let partial = decoder.buffered() > 0;
            tokio::select! {
                read = transport.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return Ok(());
                    }
                    decoder.push(&buf[..n]);
                }
                () = tokio::time::sleep(gap), if partial => decoder.line_idle(),
                () = self.shared.wake.notified() => {}
            }
            let dropped = decoder.dropped_bytes();
            self.state().dropped_bytes += dropped - counted_drops;
            counted_drops = dropped;
            while let Some(frame) = decoder.next_frame() {
                if let Some(reply) = self.answer(frame, Instant::now()) {
                    transport.write_all(&reply).await?;
                    transport.flush().await?;
                }
            }
        }
    }

    /// Executes one request and returns the bytes to send back, if any.
    fn answer(&self, frame: RequestFrame, now: Instant) -> Option<Vec<u8>> {
        let slave = self.shared.config.map.slave;
        if frame.slave != slave && frame.slave != BROADCAST {
            return None;
        }
        let mut state = self.state();
        if state.silent {
            return None;
        }
        state.requests += 1;
        let function = frame.request.function_code();
        let response = match Self::injected_refusal(
            &mut state,
            &frame.request,
            &self.shared.config.map,
            now,
        ) {
            Some(code) => Response::Exception { function, code },
            None => self
                .execute(&mut state, frame.request, now)
                .unwrap_or_else(|code| Response::Exception { function, code }),
        };
        if frame.slave == BROADCAST {
            return None;
        }
        let mut bytes = ResponseFrame { slave, response }
            .encode()
            .expect("the module only builds encodable responses");
        if state.corrupt_replies > 0 {
            state.corrupt_replies -= 1;
            let last = bytes.len() - 1;
            bytes[last] ^= 0xFF;
        }
        Some(bytes)
    }

    /// Takes one injected refusal that applies to `request`, logging a refused coil write.
    fn injected_refusal(
        state: &mut State,
        request: &Request,
        map: &LaneIoMap,
        now: Instant,
    ) -> Option<ExceptionCode> {
        let slot = match request {
            Request::ReadCoils { .. } | Request::ReadDiscreteInputs { .. } => {
                &mut state.refuse_reads
            }
            Request::WriteSingleCoil { .. } | Request::WriteMultipleCoils { .. } => {
                &mut state.refuse_writes
            }
            Request::Other { .. } => return None,
        };
        let (code, left) = slot.as_mut()?;
        let code = *code;
        *left -= 1;
        if *left == 0 {
            *slot = None;
        }
        if let Request::WriteSingleCoil { address, value } = request {
            state.log.push(CoilCommand {
                at: now,
                address: *address,
                coil: map.coil_at(*address),
                on: value.as_bool(),
                refused: Some(code),
            });
        }
        Some(code)
    }

    fn execute(
        &self,
        state: &mut State,
        request: Request,
        now: Instant,
    ) -> Result<Response, ExceptionCode> {
        let config = &self.shared.config;
        match request {
            Request::ReadCoils { address, quantity } => {
                check_read(address, quantity, config.coils)?;
                let start = usize::from(address);
                Ok(Response::ReadCoils {
                    bits: state.coils[start..start + usize::from(quantity)].to_vec(),
                })
            }
            Request::ReadDiscreteInputs { address, quantity } => {
                check_read(address, quantity, config.inputs)?;
                state.barrier.advance(now);
                let inputs = self.input_bits(state);
                let start = usize::from(address);
                Ok(Response::ReadDiscreteInputs {
                    bits: inputs[start..start + usize::from(quantity)].to_vec(),
                })
            }
            Request::WriteSingleCoil { address, value } => {
                let refused = match value.as_bool() {
                    None => Some(ExceptionCode::IllegalDataValue),
                    Some(_) if address >= config.coils => Some(ExceptionCode::IllegalDataAddress),
                    Some(_) => None,
                };
                let command = CoilCommand {
                    at: now,
                    address,
                    coil: config.map.coil_at(address),
                    on: value.as_bool(),
                    refused,
                };
                state.log.push(command);
                self.call_hook(&command);
                if let Some(code) = refused {
                    return Err(code);
                }
                self.set_coil(state, address, value == CoilValue::On, now);
                Ok(Response::WriteSingleCoil { address, value })
            }
            Request::WriteMultipleCoils { address, values } => {
                let end = u32::from(address) + values.len() as u32;
                let refused =
                    (end > u32::from(config.coils)).then_some(ExceptionCode::IllegalDataAddress);
                for (offset, on) in values.iter().enumerate() {
                    let address = address.wrapping_add(offset as u16);
                    state.log.push(CoilCommand {
                        at: now,
                        address,
                        coil: config.map.coil_at(address),
                        on: Some(*on),
                        refused,
                    });
                }
                if let Some(code) = refused {
                    return Err(code);
                }
                for (offset, on) in values.iter().enumerate() {
                    self.set_coil(state, address + offset as u16, *on, now);
                }
                Ok(Response::WriteMultipleCoils {
                    address,
                    quantity: values.len() as u16,
                })
            }
            // A write-multiple-coils request whose quantity and byte count disagree, or a read
            // the decoder could not type: a value problem, not an unknown function.
            Request::Other {
                function:
                    FC_READ_COILS
                    | FC_READ_DISCRETE_INPUTS
                    | FC_WRITE_SINGLE_COIL
                    | FC_WRITE_MULTIPLE_COILS,
                ..
            } => Err(ExceptionCode::IllegalDataValue),
            Request::Other { .. } => Err(ExceptionCode::IllegalFunction),
        }
    }

    fn set_coil(&self, state: &mut State, address: u16, on: bool, now: Instant) {
        let was = std::mem::replace(&mut state.coils[usize::from(address)], on);
        match self.shared.config.map.coil_at(address) {
            Some(LaneCoil::Open) if on && !was => state.barrier.pulse_open(now),
            Some(LaneCoil::Close) if on && !was => state.barrier.pulse_close(now),
            Some(LaneCoil::Stop) if on != was => state.barrier.set_stop(on, now),
            _ => {}
        }
    }

    fn input_bits(&self, state: &State) -> Vec<bool> {
        let map = &self.shared.config.map;
        let mut bits = vec![false; usize::from(self.shared.config.inputs)];
        let barrier = &state.barrier;
        for input in LaneInput::ALL {
            bits[usize::from(map.input_address(input))] = match input {
                LaneInput::Presence => barrier.presence(),
                LaneInput::Safety => barrier.safety(),
                LaneInput::OpenLimit => barrier.open_limit(),
                LaneInput::ClosedLimit => barrier.closed_limit(),
                LaneInput::Fire => barrier.fire(),
                LaneInput::Tamper => state.tamper,
            };
        }
        bits
    }

    /// Puts a vehicle on (or takes it off) the presence loop.
    pub fn set_presence(&self, occupied: bool) {
        self.state().barrier.set_presence(occupied, Instant::now());
    }

    /// Puts a vehicle on (or takes it off) the safety loop.
    pub fn set_safety(&self, occupied: bool) {
        self.state().barrier.set_safety(occupied, Instant::now());
    }

    /// Raises or clears the fire-alarm linkage input.
    pub fn set_fire(&self, active: bool) {
        self.state().barrier.set_fire(active, Instant::now());
    }

    /// Opens or closes the cabinet.
    pub fn set_tamper(&self, open: bool) {
        self.state().tamper = open;
    }

    /// The arm's state now.
    pub fn arm(&self) -> ArmState {
        let mut state = self.state();
        state.barrier.advance(Instant::now());
        state.barrier.state()
    }

    /// A copy of the barrier model, advanced to now.
    pub fn barrier(&self) -> Barrier {
        let mut state = self.state();
        state.barrier.advance(Instant::now());
        state.barrier.clone()
    }

    /// A coil's current state.
    pub fn coil(&self, coil: LaneCoil) -> bool {
        let address = self.shared.config.map.coil_address(coil);
        self.state().coils[usize::from(address)]
    }

    /// Calls `hook` with every single-coil write the moment it arrives, before the module acts
    /// on it or answers (the crash test kills the controller there: the instant an OPEN is on
    /// the wire).
    pub fn on_coil_write(&self, hook: impl Fn(&CoilCommand) + Send + Sync + 'static) {
        *self
            .shared
            .hook
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(hook));
    }

    fn call_hook(&self, command: &CoilCommand) {
        let hook = self
            .shared
            .hook
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook(command);
        }
    }

    /// Every coil write received so far (executed or refused), oldest first.
    pub fn coil_log(&self) -> Vec<CoilCommand> {
        self.state().log.clone()
    }

    /// Stops (`true`) or resumes answering. A silent module ignores every request, as if its
    /// power or its RS-485 transceiver had failed: nothing is executed or logged.
    pub fn set_silent(&self, silent: bool) {
        self.state().silent = silent;
    }

    /// Sends the next `count` replies with a corrupted CRC (the requests are still executed,
    /// as when the reply is hit by noise on its way back).
    pub fn corrupt_next_replies(&self, count: u32) {
        self.state().corrupt_replies = count;
    }

    /// Answers the next `count` requests of kind `requests` with exception `code` instead of
    /// executing them, as a module that is busy (06) or has failed (04) does. A refused coil
    /// write is logged with `refused` set and changes nothing.
    pub fn refuse(&self, requests: Requests, code: ExceptionCode, count: u32) {
        let refusal = (count > 0).then_some((code, count));
        match requests {
            Requests::Reads => self.state().refuse_reads = refusal,
            Requests::CoilWrites => self.state().refuse_writes = refusal,
        }
    }

    /// Writes `bytes` onto the line toward the controller as soon as the server loop can.
    pub fn inject_garbage(&self, bytes: &[u8]) {
        self.state().pending_garbage.extend_from_slice(bytes);
        self.shared.wake.notify_one();
    }

    /// How many injected garbage bytes have been written so far.
    pub fn garbage_sent(&self) -> u64 {
        self.state().garbage_sent
    }

    /// How many received bytes the module dropped while resynchronising (noise, broken frames).
    pub fn dropped_bytes(&self) -> u64 {
        self.state().dropped_bytes
    }

    /// How many requests addressed to this module (or broadcast) it has executed.
    pub fn requests_executed(&self) -> u64 {
        self.state().requests
    }
}

/// The checks of a read, in the spec's order: quantity (03), then address range (02).
fn check_read(address: u16, quantity: u16, points: u16) -> Result<(), ExceptionCode> {
    if quantity == 0 || quantity > MAX_READ_BITS {
        return Err(ExceptionCode::IllegalDataValue);
    }
    if u32::from(address) + u32::from(quantity) > u32::from(points) {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok(())
}
