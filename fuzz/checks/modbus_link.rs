//! Check: the controller's production Modbus path — tokio-modbus's RTU client inside
//! `gate::io::IoLink`, over an in-memory duplex, into the lane's input decoding. The first input
//! byte picks the request (poll the inputs, OPEN, CLOSE); the rest is what the "module" answers
//! before the line goes quiet. Whatever it answers, the link never panics and never hangs: it
//! returns the inputs or an error. Where the answer is one clean frame, the result must be what
//! that frame says: the polled bits as lane inputs, the write acknowledged, or the module's
//! exception as [`IoError::Exception`] (which keeps the link in step).
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use std::time::Duration;

use firmware_protocols::lane_io::{LaneCoil, LaneIoMap};
use firmware_protocols::modbus::{Request, RequestDecoder, Response, ResponseDecoder};
use gatehouse::gate::io::{IoError, IoLink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the link returned.
#[derive(Debug)]
enum Outcome {
    Inputs(firmware_protocols::lane_io::LaneInputs),
    Written,
}

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    let Some((&op, reply)) = data.split_first() else {
        return;
    };
    // Paused time: a module that never answers costs no wall time (the timeout fires as soon
    // as everything is idle), so every input runs in microseconds.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async {
        let map = LaneIoMap::default();
        let (ours, theirs) = tokio::io::duplex(4096);
        let mut link = IoLink::attach(ours, map, Duration::from_millis(200));
        let (mut rx, mut tx) = tokio::io::split(theirs);
        let module = async move {
            let mut decoder = RequestDecoder::new();
            let mut buf = [0u8; 256];
            let request = loop {
                let n = rx.read(&mut buf).await.expect("an in-memory pipe reads");
                assert!(n > 0, "the link closed without sending its request");
                decoder.push(&buf[..n]);
                if let Some(frame) = decoder.next_frame() {
                    break frame;
                }
            };
            tx.write_all(reply).await.expect("an in-memory pipe writes");
            tx.shutdown().await.expect("an in-memory pipe shuts down");
            // Keep the read half open until the link is done with it.
            let mut rest = Vec::new();
            let _ = rx.read_to_end(&mut rest).await;
            request
        };
        let client = async {
            let result = match op % 3 {
                0 => link.read_inputs().await.map(Outcome::Inputs),
                1 => link
                    .write_coil(LaneCoil::Open, true)
                    .await
                    .map(|()| Outcome::Written),
                _ => link
                    .write_coil(LaneCoil::Close, false)
                    .await
                    .map(|()| Outcome::Written),
            };
            drop(link);
            result
        };
        let (result, request) = tokio::join!(client, module);
        judge(&map, &request.request, reply, &result);
    });
}

/// Where the reply is exactly one CRC-valid frame from the right slave, the result must match it.
fn judge(map: &LaneIoMap, request: &Request, reply: &[u8], result: &Result<Outcome, IoError>) {
    if let Err(IoError::Exception(_)) = result {
        assert!(
            !result.as_ref().unwrap_err().needs_reconnect(),
            "an exception answer keeps the link in step"
        );
    }
    let mut decoder = ResponseDecoder::new();
    decoder.push(reply);
    decoder.line_idle();
    let Some((frame, raw)) = decoder.next_frame_with_bytes() else {
        return;
    };
    if raw != reply || frame.slave != map.slave {
        return;
    }
    match (&frame.response, request) {
        (Response::Exception { function, code }, _) if *function == request.function_code() => {
            match result {
                Err(IoError::Exception(got)) => assert_eq!(u8::from(*got), u8::from(*code)),
                other => panic!("exception {code:?} answered as {other:?}"),
            }
        }
        (
            Response::ReadDiscreteInputs { bits },
            Request::ReadDiscreteInputs { address, quantity },
        ) if reply[2] == 1 && *quantity <= 8 => {
            let expected = map
                .inputs_from_bits(*address, bits)
                .expect("one byte of bits covers the default map's six inputs");
            match result {
                Ok(Outcome::Inputs(got)) => assert_eq!(*got, expected),
                other => panic!("inputs {bits:?} answered as {other:?}"),
            }
        }
        (
            Response::WriteSingleCoil { address, value },
            Request::WriteSingleCoil {
                address: asked,
                value: wanted,
            },
        ) if address == asked && value == wanted => {
            assert!(
                matches!(result, Ok(Outcome::Written)),
                "an echoed write answered as {result:?}"
            );
        }
        _ => {}
    }
}
