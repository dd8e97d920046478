//! The floor: a minimal lane controller on the same device ends, so that what the real lane
//! adds can be told from what the pseudo-terminals, the bench's own wake-ups and the machine's
//! idle states cost (the outside measurement was stated against such a floor).
//!
//! Two plain threads with blocking reads and writes on the ports, no runtime, no journal, no
//! index: the reader thread keeps real-time inventories running and, the moment a tag report is
//! decoded, writes the OPEN coil on the I/O module's line (taking the line from a poll in
//! flight, as the real lane must); the I/O thread polls the inputs every 50 ms (every 200 ms
//! while a vehicle waits on the loop, like the shipped `poll_pause_ms`) and writes CLOSE once
//! the vehicle has crossed the safety loop. Nothing is decided: every tag opens.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firmware_protocols::modbus::{
    CoilValue, Request, RequestFrame, Response, ResponseDecoder, ResponseFrame,
};
use firmware_protocols::uhf::{
    HostCommand, HostFrame, InventoryCmd, ReaderDecoder, ReaderReply, UhfFrame,
};

/// Sends one request and reads until its answer is decoded; `None` if the line closed.
fn transact(io: &mut File, request: Request) -> Option<ResponseFrame> {
    let bytes = RequestFrame { slave: 1, request }.encode().unwrap();
    io.write_all(&bytes).ok()?;
    let mut decoder = ResponseDecoder::new();
    let mut buf = [0u8; 64];
    loop {
        let n = io.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        decoder.push(&buf[..n]);
        if let Some(frame) = decoder.next_frame() {
            return Some(frame);
        }
    }
}

fn open_port(path: &Path) -> File {
    File::options().read(true).write(true).open(path).unwrap()
}

/// Starts the floor controller on the ports at `reader` and `io`; its threads end when the
/// device ends close the lines.
pub(crate) fn start(reader: &Path, io: &Path) {
    let io = Arc::new(Mutex::new(open_port(io)));
    let opened = Arc::new(AtomicBool::new(false));
    let mut reader_port = open_port(reader);
    {
        let io = io.clone();
        let opened = opened.clone();
        std::thread::spawn(move || {
            let mut decoder = ReaderDecoder::new();
            let mut buf = [0u8; 256];
            let mut inventory = Vec::new();
            HostFrame {
                address: 1,
                command: HostCommand::RealTimeInventory { repeat: 1 },
            }
            .encode(&mut inventory)
            .unwrap();
            if reader_port.write_all(&inventory).is_err() {
                return;
            }
            loop {
                let Ok(n) = reader_port.read(&mut buf) else {
                    return;
                };
                if n == 0 {
                    return;
                }
                decoder.push(&buf[..n]);
                while let Some(frame) = decoder.next_frame() {
                    match frame.reply {
                        ReaderReply::Tag { .. } => {
                            let mut io = io.lock().unwrap();
                            let open = Request::WriteSingleCoil {
                                address: 0,
                                value: CoilValue::On,
                            };
                            if transact(&mut io, open).is_none() {
                                return;
                            }
                            opened.store(true, Ordering::SeqCst);
                        }
                        // The round is over: start the next.
                        ReaderReply::InventoryDone {
                            cmd: InventoryCmd::RealTime,
                            ..
                        } if reader_port.write_all(&inventory).is_err() => return,
                        _ => {}
                    }
                }
            }
        });
    }
    std::thread::spawn(move || {
        let mut crossed = false;
        let mut vehicle = false;
        loop {
            let pause = if vehicle && !opened.load(Ordering::SeqCst) {
                200
            } else {
                50
            };
            std::thread::sleep(Duration::from_millis(pause));
            let mut io = io.lock().unwrap();
            let poll = Request::ReadDiscreteInputs {
                address: 0,
                quantity: 8,
            };
            let Some(answer) = transact(&mut io, poll) else {
                return;
            };
            let Response::ReadDiscreteInputs { bits } = answer.response else {
                continue;
            };
            let (presence, safety) = (bits[0], bits[1]);
            vehicle = presence;
            if !opened.load(Ordering::SeqCst) {
                continue;
            }
            if safety {
                crossed = true;
            } else if crossed && !presence {
                let close = Request::WriteSingleCoil {
                    address: 1,
                    value: CoilValue::On,
                };
                if transact(&mut io, close).is_none() {
                    return;
                }
                crossed = false;
                opened.store(false, Ordering::SeqCst);
            }
        }
    });
}

/// Holds `/dev/cpu_dma_latency` at 0 while the returned file is open (what the gate's
/// `[realtime] cpu_wake_latency_us = 0` does); `None` if this user may not.
pub(crate) fn hold_cpus_awake() -> Option<File> {
    let mut file = File::options()
        .write(true)
        .open("/dev/cpu_dma_latency")
        .ok()?;
    file.write_all(&0i32.to_ne_bytes()).ok()?;
    Some(file)
}
