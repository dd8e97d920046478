//! The emulated lane I/O module against the Modbus client the gate controller uses
//! (tokio-modbus RTU): byte-exact over `tokio::io::duplex`, and end to end through a real
//! pseudo-terminal opened with tokio-serial.

use std::io::Write as _;
use std::time::Duration;

use firmware_protocols::lane_io::{LaneCoil, LaneInputs, LaneIoMap};
use firmware_protocols::modbus::ResponseDecoder;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::lane_io::{LaneIoModule, LaneIoModuleConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::{Instant, timeout};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

/// Every client call is bounded: a missing answer fails the test instead of hanging it.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// The travel time the end-to-end tests give the arm.
const TRAVEL: Duration = Duration::from_millis(300);

fn module(travel: Duration) -> LaneIoModule {
    LaneIoModule::new(LaneIoModuleConfig {
        travel,
        ..LaneIoModuleConfig::default()
    })
    .unwrap()
}

/// Carries one request from the client to the module and its answer back, checking the request
/// bytes; returns the answer's bytes (found with our own response decoder).
async fn relay(
    from_client: &mut DuplexStream,
    to_module: &mut DuplexStream,
    request: &[u8],
) -> Vec<u8> {
    let mut sent = vec![0u8; request.len()];
    from_client.read_exact(&mut sent).await.unwrap();
    assert_eq!(sent, request, "tokio-modbus request bytes");
    to_module.write_all(&sent).await.unwrap();
    let mut decoder = ResponseDecoder::new();
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    while decoder.next_frame().is_none() {
        let n = to_module.read(&mut buf).await.unwrap();
        assert!(n > 0, "module hung up");
        answer.extend_from_slice(&buf[..n]);
        decoder.push(&buf[..n]);
    }
    assert_eq!(decoder.dropped_bytes(), 0);
    from_client.write_all(&answer).await.unwrap();
    answer
}

#[tokio::test]
async fn tokio_modbus_emits_the_spec_request_bytes_and_decodes_the_emulators_answers() {
    let module = module(Duration::from_secs(10));
    let (client_io, mut from_client) = tokio::io::duplex(1024);
    let (mut to_module, module_io) = tokio::io::duplex(1024);
    let server = tokio::spawn({
        let module = module.clone();
        async move { module.serve(module_io).await }
    });
    let mut ctx = tokio_modbus::client::rtu::attach_slave(client_io, Slave(1));

    macro_rules! exchange {
        ($call:expr, $request:expr) => {{
            let (result, answer) = tokio::join!(
                timeout(CALL_TIMEOUT, $call),
                relay(&mut from_client, &mut to_module, &$request)
            );
            (result.expect("call timed out"), answer)
        }};
    }

    // Coil 0 (OPEN) on: the echo is the request itself.
    let on = [0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A];
    let (result, answer) = exchange!(ctx.write_single_coil(0, true), on);
    result.unwrap().unwrap();
    assert_eq!(answer, on);
    assert_eq!(module.arm(), ArmState::Opening);

    // STOP on (not a §2 vector) freezes the arm between the limits, so that the reads below
    // answer exactly the §2 example replies.
    let stop = [0x01, 0x05, 0x00, 0x02, 0xFF, 0x00, 0x2D, 0xFA];
    let (result, answer) = exchange!(ctx.write_single_coil(2, true), stop);
    result.unwrap().unwrap();
    assert_eq!(answer, stop);
    assert_eq!(module.arm(), ArmState::Stopped);

    // Read 8 coils: 0 (OPEN) and 2 (STOP) on.
    let (result, answer) = exchange!(
        ctx.read_coils(0, 8),
        [0x01, 0x01, 0x00, 0x00, 0x00, 0x08, 0x3D, 0xCC]
    );
    assert_eq!(answer, [0x01, 0x01, 0x01, 0x05, 0x91, 0x8B]);
    assert_eq!(
        result.unwrap().unwrap(),
        [true, false, true, false, false, false, false, false]
    );

    // Read 8 inputs with both loops occupied and the arm between its limits.
    module.set_presence(true);
    module.set_safety(true);
    let (result, answer) = exchange!(
        ctx.read_discrete_inputs(0, 8),
        [0x01, 0x02, 0x00, 0x00, 0x00, 0x08, 0x79, 0xCC]
    );
    assert_eq!(answer, [0x01, 0x02, 0x01, 0x03, 0xE1, 0x89]);
    let bits = result.unwrap().unwrap();
    let inputs = LaneIoMap::default().inputs_from_bits(0, &bits).unwrap();
    assert_eq!(
        inputs,
        LaneInputs {
            presence: true,
            safety: true,
            ..LaneInputs::default()
        }
    );

    // Coil 0 off, coil 1 (CLOSE) on.
    let off = [0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA];
    let (result, answer) = exchange!(ctx.write_single_coil(0, false), off);
    result.unwrap().unwrap();
    assert_eq!(answer, off);
    let close = [0x01, 0x05, 0x00, 0x01, 0xFF, 0x00, 0xDD, 0xFA];
    let (result, answer) = exchange!(ctx.write_single_coil(1, true), close);
    result.unwrap().unwrap();
    assert_eq!(answer, close);

    // Write 4 coils 0b1111.
    let (result, answer) = exchange!(
        ctx.write_multiple_coils(0, &[true; 4]),
        [0x01, 0x0F, 0x00, 0x00, 0x00, 0x04, 0x01, 0x0F, 0x7E, 0x92]
    );
    result.unwrap().unwrap();
    assert_eq!(answer, [0x01, 0x0F, 0x00, 0x00, 0x00, 0x04, 0x54, 0x08]);

    // Read coils past the module's 8: exception 02, the §2 exception vector.
    let (result, answer) = exchange!(
        ctx.read_coils(8, 1),
        [0x01, 0x01, 0x00, 0x08, 0x00, 0x01, 0x7C, 0x08]
    );
    assert_eq!(answer, [0x01, 0x81, 0x02, 0xC1, 0x91]);
    assert_eq!(
        result.unwrap(),
        Err(tokio_modbus::ExceptionCode::IllegalDataAddress)
    );

    // Read holding registers: a function the module does not have.
    let (result, answer) = exchange!(
        ctx.read_holding_registers(0, 1),
        [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A]
    );
    assert_eq!(&answer[..3], &[0x01, 0x83, 0x01]);
    assert_eq!(
        result.unwrap(),
        Err(tokio_modbus::ExceptionCode::IllegalFunction)
    );

    let log = module.coil_log();
    let opens: Vec<_> = log
        .iter()
        .filter(|c| c.coil == Some(LaneCoil::Open))
        .map(|c| c.on)
        .collect();
    assert_eq!(opens, [Some(true), Some(false), Some(true)]);
    assert_eq!(module.dropped_bytes(), 0);
    server.abort();
}

/// A module served on a real pseudo-terminal, and a tokio-modbus client that opened the tty
/// with tokio-serial, as the gate controller opens its USB–RS-485 adaptor.
struct PtyLane {
    module: LaneIoModule,
    ctx: Context,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// A second writer on the line, opened before the controller (which opens exclusively).
    noise: std::fs::File,
}

impl PtyLane {
    async fn start(module: LaneIoModule) -> PtyLane {
        let pty = PtyDevice::create(None).unwrap();
        let pty_path = pty.path().to_path_buf();
        let noise = std::fs::OpenOptions::new()
            .write(true)
            .open(&pty_path)
            .unwrap();
        let serial =
            tokio_serial::SerialStream::open(&tokio_serial::new(pty_path.to_string_lossy(), 19200))
                .unwrap();
        let server = tokio::spawn({
            let module = module.clone();
            async move { module.serve(pty).await }
        });
        let ctx = tokio_modbus::client::rtu::attach_slave(serial, Slave(1));
        PtyLane {
            module,
            ctx,
            server,
            noise,
        }
    }

    async fn inputs(&mut self) -> LaneInputs {
        let span = self.module.config().map.input_span();
        let bits = timeout(
            CALL_TIMEOUT,
            self.ctx.read_discrete_inputs(span.start, span.count),
        )
        .await
        .expect("read inputs timed out")
        .expect("transport or protocol error")
        .expect("exception");
        self.module
            .config()
            .map
            .inputs_from_bits(span.start, &bits)
            .unwrap()
    }

    async fn write_coil(&mut self, coil: LaneCoil, on: bool) {
        let address = self.module.config().map.coil_address(coil);
        timeout(CALL_TIMEOUT, self.ctx.write_single_coil(address, on))
            .await
            .expect("write timed out")
            .expect("transport or protocol error")
            .expect("exception");
    }

    /// An OPEN or CLOSE pulse of the configured length; returns when the module logged the
    /// rising edge.
    async fn pulse(&mut self, coil: LaneCoil) -> Instant {
        self.write_coil(coil, true).await;
        let at = self
            .module
            .coil_log()
            .iter()
            .rev()
            .find(|c| c.coil == Some(coil) && c.on == Some(true))
            .expect("the module logged the pulse")
            .at;
        tokio::time::sleep(self.module.config().map.pulse()).await;
        self.write_coil(coil, false).await;
        at
    }

    /// Polls the inputs until `done` holds, failing at `deadline`.
    async fn poll_until(
        &mut self,
        deadline: Instant,
        mut check: impl FnMut(&LaneInputs, Instant) -> bool,
    ) {
        loop {
            let inputs = self.inputs().await;
            let now = Instant::now();
            if check(&inputs, now) {
                return;
            }
            assert!(now < deadline, "deadline passed, inputs {inputs:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for PtyLane {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn fast_module() -> LaneIoModule {
    LaneIoModule::new(LaneIoModuleConfig {
        map: LaneIoMap {
            pulse_ms: 50,
            ..LaneIoMap::default()
        },
        travel: TRAVEL,
        ..LaneIoModuleConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn an_open_pulse_through_a_real_pty_reaches_the_open_limit_after_the_travel_time_and_not_before()
 {
    let mut lane = PtyLane::start(fast_module()).await;
    assert!(lane.inputs().await.closed_limit);
    let opened_at = lane.pulse(LaneCoil::Open).await;
    let mut reads_before_travel = 0;
    lane.poll_until(
        opened_at + TRAVEL + Duration::from_secs(2),
        |inputs, now| {
            // Answered before the travel time had passed: the module read its limit earlier still.
            if now < opened_at + TRAVEL {
                reads_before_travel += 1;
                assert!(
                    !inputs.open_limit,
                    "at the open limit before the travel time"
                );
            }
            assert!(!inputs.closed_limit || now < opened_at + TRAVEL);
            inputs.open_limit
        },
    )
    .await;
    assert!(reads_before_travel > 0, "no read landed inside the travel");
    assert!(Instant::now() >= opened_at + TRAVEL);
    assert_eq!(lane.module.arm(), ArmState::Open);
}

#[tokio::test]
async fn close_while_the_presence_loop_is_occupied_does_not_lower_the_arm() {
    let mut lane = PtyLane::start(fast_module()).await;
    let opened_at = lane.pulse(LaneCoil::Open).await;
    lane.poll_until(opened_at + TRAVEL + Duration::from_secs(2), |i, _| {
        i.open_limit
    })
    .await;
    lane.module.set_presence(true);
    assert!(lane.inputs().await.presence);
    let closed_at = lane.pulse(LaneCoil::Close).await;
    // Watch for twice the travel time: the arm must stay on its open limit all along.
    lane.poll_until(closed_at + 2 * TRAVEL, |inputs, now| {
        assert!(inputs.open_limit && !inputs.closed_limit, "{inputs:?}");
        now >= closed_at + 2 * TRAVEL
    })
    .await;
    assert_eq!(lane.module.arm(), ArmState::Open);
    // The vehicle leaves; now CLOSE lowers it.
    lane.module.set_presence(false);
    let closed_at = lane.pulse(LaneCoil::Close).await;
    lane.poll_until(closed_at + TRAVEL + Duration::from_secs(2), |i, _| {
        i.closed_limit
    })
    .await;
}

#[tokio::test]
async fn reading_an_unmapped_address_gets_the_illegal_data_address_exception() {
    let mut lane = PtyLane::start(fast_module()).await;
    let result = timeout(CALL_TIMEOUT, lane.ctx.read_discrete_inputs(8, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(ExceptionCode::IllegalDataAddress));
    let result = timeout(CALL_TIMEOUT, lane.ctx.write_single_coil(12, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Err(ExceptionCode::IllegalDataAddress));
    assert!(lane.inputs().await.closed_limit, "still answering");
}

#[tokio::test]
async fn a_garbage_burst_on_the_line_is_survived() {
    let mut lane = PtyLane::start(fast_module()).await;
    assert!(lane.inputs().await.closed_limit);

    // Another talker on the bus: 64 bytes of noise reach the module, some of them looking like
    // the start of long frames.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = (0..64)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .chain([0x01, 0x0F, 0x00, 0x00, 0x04, 0x00, 0x80])
        .collect();
    lane.noise.write_all(&noise).unwrap();
    assert!(lane.inputs().await.closed_limit);
    assert_eq!(lane.module.dropped_bytes(), noise.len() as u64);

    // Noise toward the controller: tokio-modbus drops it and finds the answer behind it.
    lane.module.inject_garbage(&[0xFF; 16]);
    lane.module.set_presence(true);
    assert!(lane.inputs().await.presence);
    assert_eq!(lane.module.garbage_sent(), 16);
}

#[tokio::test]
async fn a_reply_with_a_bad_crc_fails_that_call_and_the_next_call_is_answered() {
    let mut lane = PtyLane::start(fast_module()).await;
    lane.module.corrupt_next_replies(1);
    let span = lane.module.config().map.input_span();
    let first = timeout(
        Duration::from_millis(300),
        lane.ctx.read_discrete_inputs(span.start, span.count),
    )
    .await;
    assert!(
        !matches!(first, Ok(Ok(Ok(_)))),
        "a corrupted reply was accepted: {first:?}"
    );
    assert!(lane.inputs().await.closed_limit);
}

#[tokio::test]
async fn a_silent_module_times_out_and_nothing_it_missed_is_executed() {
    let mut lane = PtyLane::start(fast_module()).await;
    lane.module.set_silent(true);
    let write = timeout(
        Duration::from_millis(200),
        lane.ctx.write_single_coil(0, true),
    )
    .await;
    assert!(write.is_err(), "a silent module answered: {write:?}");
    assert!(lane.module.coil_log().is_empty());
    lane.module.set_silent(false);
    assert!(lane.inputs().await.closed_limit);
    assert!(!lane.module.coil(LaneCoil::Open));
}

#[tokio::test]
async fn module_state_survives_a_reconnect() {
    let module = fast_module();
    {
        let mut lane = PtyLane::start(module.clone()).await;
        lane.write_coil(LaneCoil::Light, true).await;
    }
    let mut lane = PtyLane::start(module).await;
    let coils = timeout(CALL_TIMEOUT, lane.ctx.read_coils(0, 4))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(coils, [false, false, false, true]);
}

#[test]
fn a_lane_io_map_is_read_from_toml_with_defaults_for_what_is_left_out() {
    let map: LaneIoMap = toml::from_str(
        r#"
        slave = 3
        [inputs]
        presence = 6
        "#,
    )
    .unwrap();
    assert_eq!(map.slave, 3);
    assert_eq!(map.inputs.presence, 6);
    assert_eq!(map.inputs.safety, 1);
    assert_eq!(map.coils, LaneIoMap::default().coils);
    assert_eq!(map.pulse_ms, 500);
    map.validate().unwrap();
    assert!(
        toml::from_str::<LaneIoMap>("slaev = 3").is_err(),
        "typos are refused"
    );
}
