//! Plate camera benchmark. Measures, does not assert; prints one `name value unit` line per
//! figure. Run: `cargo bench --bench camera` (`-- --smoke` for a few iterations).
//!
//! A real gate controller (two lanes) with minimal byte-level device ends on real
//! pseudo-terminals (as in `gate_latency`: the reader answers inventories and the driver's TID
//! read, the I/O module answers Modbus and records when OPEN arrives), and the gate's real camera
//! listener (`gate::camera_http`) on a loopback socket, pushed to over HTTP/1.1 by the simulated
//! cameras' client and Hikvision multipart payloads (`sim::camera`) with real JPEGs. The client,
//! the listener and the device ends share this process's two-worker runtime on the same machine,
//! so every camera figure includes the loopback hop, the body's upload and the listener's parse.
//!
//! - (a) `plate_to_open_*`: from just before the POST is sent (a ~200 KB scene and the close-up
//!   in one multipart push) to the first byte of OPEN on the I/O line, the vehicle already on the
//!   presence loop; `plate_to_camera_200_*`: to the camera's 200, which comes once the lane's
//!   journal entry and both photos are durable (what the camera waits for);
//! - (b) `tag_to_open_*`: last byte of the tag report → first byte of OPEN on lane `entry`,
//!   alone, then while ≥ 50 pushes a second with photos are POSTed to the same gate's listener for
//!   its other lane `side` (no vehicle there: each is stored and journalled as a read waiting for
//!   its vehicle, then superseded), and the ratio of the p99s, same run;
//! - (c) `state_*_per_10k_passages`: journal bytes and photo bytes per 10,000 camera passages.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use firmware_protocols::modbus::{CoilValue, Request, RequestDecoder, Response, ResponseFrame};
use firmware_protocols::uhf::{
    FreqAnt, HostCommand, HostDecoder, InventoryCmd, InventoryDone, ReaderFrame, ReaderReply, Rssi,
    TagData, TagReport, UhfFrame, pc_for_epc_len,
};
use gatehouse::domain::{Direction, PlateColour};
use gatehouse::gate::camera_http;
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::runtime::GateHandle;
use gatehouse::gate::store::Store;
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::camera::{self as cam, Payload, PlateShot, ShotImages};
use gatehouse::sim::plate_image::{plate_jpeg, scene_jpeg_of_about};
use gatehouse::wire::rows::{CredentialRecord, PermitRecord, Update, VehicleRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

const VEHICLES: u32 = 10_000;
const SCENE_BYTES: usize = 200 * 1024;

fn epc(n: u32) -> [u8; 12] {
    let mut epc = [0xE2, 0x00, 0x30, 0x98, 0, 0, 0, 0, 0x21, 0x40, 0x36, 0x9E];
    epc[4..8].copy_from_slice(&n.to_be_bytes());
    epc
}

fn plate(n: u32) -> String {
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    format!(
        "京{}{:05}",
        letters[(n / 100_000) as usize % letters.len()] as char,
        n % 100_000
    )
}

fn line(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// What one lane's fake devices share with the bench loop.
#[derive(Default)]
struct Devices {
    pending_tag: Mutex<Option<[u8; 12]>>,
    tag_sent: Mutex<Option<Instant>>,
    open_seen: Mutex<Option<Instant>>,
    inputs: Mutex<[bool; 8]>,
    input_reads: AtomicU64,
    opened: Notify,
    closed: Notify,
}

fn encode(reply: ReaderReply, out: &mut Vec<u8>) {
    ReaderFrame { address: 1, reply }.encode(out).unwrap();
}

async fn reader_end(mut dev: PtyDevice, d: Arc<Devices>) {
    let mut decoder = HostDecoder::new();
    let mut buf = [0u8; 256];
    let mut out = Vec::new();
    let mut last: Option<[u8; 12]> = None;
    loop {
        let Ok(n) = dev.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            out.clear();
            match frame.command {
                HostCommand::ReadTag(_) => {
                    let Some(tag) = last else { continue };
                    let pc = pc_for_epc_len(12).unwrap();
                    let mut tid = vec![0xE2, 0x80, 0x11, 0x60];
                    tid.extend_from_slice(&tag[4..12]);
                    encode(
                        ReaderReply::TagData(TagData {
                            tag_count: 1,
                            pc,
                            epc: tag.to_vec(),
                            tag_crc: TagData::crc_for(pc, &tag),
                            data: tid,
                            freq_ant: FreqAnt::new(7, 0),
                            read_count: 1,
                        }),
                        &mut out,
                    );
                    dev.write_all(&out).await.unwrap();
                }
                HostCommand::RealTimeInventory { .. } => {
                    let tag = d.pending_tag.lock().unwrap().take();
                    last = tag;
                    if let Some(tag) = tag {
                        encode(
                            ReaderReply::Tag {
                                cmd: InventoryCmd::RealTime,
                                report: TagReport {
                                    freq_ant: FreqAnt::new(7, 0),
                                    pc: pc_for_epc_len(12).unwrap(),
                                    epc: tag.to_vec(),
                                    rssi: Rssi::from_dbm(-50, false),
                                    phase: None,
                                },
                            },
                            &mut out,
                        );
                        *d.tag_sent.lock().unwrap() = Some(Instant::now());
                        dev.write_all(&out).await.unwrap();
                        out.clear();
                    } else {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    encode(
                        ReaderReply::InventoryDone {
                            cmd: InventoryCmd::RealTime,
                            done: InventoryDone {
                                antenna: 0,
                                read_rate: 40,
                                total_read: 1,
                                trailing: None,
                            },
                        },
                        &mut out,
                    );
                    dev.write_all(&out).await.unwrap();
                }
                _ => {}
            }
        }
    }
}

async fn io_end(mut dev: PtyDevice, d: Arc<Devices>) {
    let mut decoder = RequestDecoder::new();
    let mut buf = [0u8; 256];
    loop {
        let Ok(n) = dev.read(&mut buf).await else {
            return;
        };
        let arrived = Instant::now();
        if n == 0 {
            return;
        }
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let response = match frame.request {
                Request::ReadDiscreteInputs { quantity, .. } => {
                    d.input_reads.fetch_add(1, Ordering::SeqCst);
                    let inputs = *d.inputs.lock().unwrap();
                    Response::ReadDiscreteInputs {
                        bits: inputs.iter().copied().take(usize::from(quantity)).collect(),
                    }
                }
                Request::WriteSingleCoil { address, value } => {
                    let on = value == CoilValue::On;
                    let mut inputs = d.inputs.lock().unwrap();
                    match (address, on) {
                        (0, true) => {
                            *d.open_seen.lock().unwrap() = Some(arrived);
                            inputs[2] = true;
                            inputs[3] = false;
                            d.opened.notify_one();
                        }
                        (1, true) => {
                            inputs[2] = false;
                            inputs[3] = true;
                            d.closed.notify_one();
                        }
                        _ => {}
                    }
                    Response::WriteSingleCoil { address, value }
                }
                other => Response::Exception {
                    function: other.function_code(),
                    code: firmware_protocols::modbus::ExceptionCode::IllegalFunction,
                },
            };
            let bytes = ResponseFrame {
                slave: frame.slave,
                response,
            }
            .encode()
            .unwrap();
            dev.write_all(&bytes).await.unwrap();
        }
    }
}

async fn two_polls(d: &Devices) {
    let start = d.input_reads.load(Ordering::SeqCst);
    while d.input_reads.load(Ordering::SeqCst) < start + 2 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The vehicle drives through: presence clears, the safety loop is crossed, the arm closes.
async fn drive_on(d: &Devices) {
    {
        let mut inputs = d.inputs.lock().unwrap();
        inputs[0] = false;
        inputs[1] = true;
    }
    two_polls(d).await;
    d.inputs.lock().unwrap()[1] = false;
    let _ = tokio::time::timeout(Duration::from_secs(2), d.closed.notified()).await;
}

/// A JPEG made unique by a comment segment after its start marker, so the store's content
/// addressing never skips a write the bench should pay for.
fn unique(jpeg: &[u8], n: u64) -> Vec<u8> {
    let text = format!("gatehouse bench {n}");
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A Hikvision push of read `n` of `plate_text`, both photos made unique.
fn push(n: u64, plate_text: &str, images: &(Vec<u8>, Vec<u8>)) -> Payload {
    let shot = PlateShot {
        plate: plate_text.to_string(),
        colour: PlateColour::Blue,
        confidence: 95,
        event_id: n,
        channel: 1,
        direction: Some(Direction::Entry),
        at: chrono::Utc::now(),
    };
    let photos = ShotImages {
        plate: unique(&images.0, n),
        scene: unique(&images.1, n),
    };
    cam::payload(cam::CameraKind::Hikvision, &shot, &photos)
}

/// POSTs `payload` (moved into the request, not copied) and reads the answer; true on a 200.
async fn post(client: &reqwest::Client, url: &str, payload: Payload) -> bool {
    let Ok(response) = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, payload.content_type)
        .body(payload.body)
        .send()
        .await
    else {
        return false;
    };
    let ok = response.status() == reqwest::StatusCode::OK;
    response.bytes().await.is_ok() && ok
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let runs: usize = if smoke { 20 } else { 1_000 };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let store = Store::open(&data.join("store.db")).await.unwrap();
        let mut update = Update {
            data_version: 1,
            ..Update::default()
        };
        for n in 1..=VEHICLES {
            update.permits.push(PermitRecord {
                id: n,
                category: "staff".into(),
                holder_id: n,
                holder_name: format!("教职工{n}"),
                department: "计算机学院".into(),
                status: "active".into(),
                status_reason: String::new(),
                valid_from: 0,
                valid_until: u32::MAX,
                gates: "all".into(),
                schedule: String::new(),
                single_use: false,
                max_inside: None,
                version: 1,
            });
            update.vehicles.push(VehicleRecord {
                id: n,
                plate: plate(n),
                colour: "blue".into(),
                permit_ids: vec![n],
            });
            update.credentials.push(CredentialRecord {
                epc: hex::encode_upper(epc(n)),
                tid: None,
                vehicle_id: n,
            });
        }
        store.apply(&update).await.unwrap();
    }

    let mut lanes = String::new();
    let mut devices = Vec::new();
    for lane in ["entry", "side"] {
        let reader = PtyDevice::create(Some(&dir.path().join(format!("{lane}-reader")))).unwrap();
        let io = PtyDevice::create(Some(&dir.path().join(format!("{lane}-io")))).unwrap();
        lanes.push_str(&format!(
            "[[lane]]\nid = \"{lane}\"\ndirection = \"entry\"\nclose_delay_ms = 0\n[lane.reader]\nport = \"{}\"\ntag_hold_ms = 1\n[lane.io]\nport = \"{}\"\nbaud = 115200\npoll_ms = 1\n[lane.io.map]\npulse_ms = 1\n",
            reader.path().display(),
            io.path().display()
        ));
        let d = Arc::new(Devices::default());
        d.inputs.lock().unwrap()[3] = true;
        tokio::spawn(reader_end(reader, d.clone()));
        tokio::spawn(io_end(io, d.clone()));
        devices.push(d);
    }
    let cameras = "[camera_listener]\nlisten = \"127.0.0.1:0\"\n\
        [[camera]]\nname = \"cam-entry\"\nkind = \"hikvision\"\nlane = \"entry\"\n\
        [[camera]]\nname = \"cam-side\"\nkind = \"hikvision\"\nlane = \"side\"\n";
    let config = GateConfig::parse(&format!(
        "[gate]\nid = 1\ndata_dir = \"{}\"\nanti_passback = \"off\"\n{lanes}{cameras}",
        data.display()
    ))
    .unwrap();
    config.validate().unwrap();
    let gate = Arc::new(GateHandle::start(config.clone()).await.unwrap());
    let socket = camera_http::bind(config.camera_listener.as_ref().unwrap().listen)
        .await
        .unwrap();
    let base = format!("http://{}", socket.local_addr().unwrap());
    let stop_listener = tokio_util::sync::CancellationToken::new();
    let listener = tokio::spawn(camera_http::serve(
        socket,
        camera_http::router(gate.clone(), &config),
        stop_listener.clone(),
    ));
    let client = cam::client(Duration::from_secs(10));
    let entry = devices[0].clone();

    let scene =
        scene_jpeg_of_about("京A00001", PlateColour::Blue, "cam-entry", SCENE_BYTES, 1).unwrap();
    let close_up = plate_jpeg("京A00001", PlateColour::Blue).unwrap();
    line("photo_scene_bytes", scene.len() as f64, "B");
    line("photo_plate_bytes", close_up.len() as f64, "B");
    let images = Arc::new((close_up, scene));
    let us = |ns: u64| ns as f64 / 1000.0;

    // (a) Plate read → OPEN over HTTP, and the camera's 200.
    let entry_url = cam::camera_url(&base, "cam-entry");
    let journal_before = dir_bytes(&data) - dir_bytes(&data.join("photos"));
    let photos_before = dir_bytes(&data.join("photos"));
    let mut plate_lat = Vec::with_capacity(runs);
    let mut answer_lat = Vec::with_capacity(runs);
    let mut misses = 0u64;
    for i in 0..runs {
        let n = (i as u32 % VEHICLES) + 1;
        entry.inputs.lock().unwrap()[0] = true;
        two_polls(&entry).await;
        *entry.open_seen.lock().unwrap() = None;
        let payload = push(i as u64, &plate(n), &images);
        let t0 = Instant::now();
        let answered = post(&client, &entry_url, payload).await;
        let answered_after = t0.elapsed();
        let opened = tokio::time::timeout(Duration::from_secs(2), entry.opened.notified()).await;
        match (answered, opened, entry.open_seen.lock().unwrap().take()) {
            (true, Ok(()), Some(seen)) => {
                plate_lat.push(seen.saturating_duration_since(t0).as_nanos() as u64);
                answer_lat.push(answered_after.as_nanos() as u64);
            }
            _ => misses += 1,
        }
        drive_on(&entry).await;
    }
    // Let the last journal writes and checkpoints land before sizing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let journal_after = dir_bytes(&data) - dir_bytes(&data.join("photos"));
    let photos_after = dir_bytes(&data.join("photos"));
    plate_lat.sort_unstable();
    answer_lat.sort_unstable();
    line("plate_to_open_reads", plate_lat.len() as f64, "count");
    line("plate_to_open_missed", misses as f64, "count");
    line("plate_to_open_p50", us(percentile(&plate_lat, 0.5)), "us");
    line("plate_to_open_p99", us(percentile(&plate_lat, 0.99)), "us");
    line(
        "plate_to_open_max",
        us(plate_lat.last().copied().unwrap_or(0)),
        "us",
    );
    line(
        "plate_to_camera_200_p50",
        us(percentile(&answer_lat, 0.5)),
        "us",
    );
    line(
        "plate_to_camera_200_p99",
        us(percentile(&answer_lat, 0.99)),
        "us",
    );
    line(
        "plate_to_camera_200_max",
        us(answer_lat.last().copied().unwrap_or(0)),
        "us",
    );

    // (c) State storage per 10,000 passages (each with a camera read and its two photos).
    let per_10k = |bytes: u64| bytes as f64 * 10_000.0 / runs as f64 / 1024.0 / 1024.0;
    line(
        "state_journal_per_10k_passages",
        per_10k(journal_after.saturating_sub(journal_before)),
        "MiB",
    );
    line(
        "state_photos_per_10k_passages",
        per_10k(photos_after.saturating_sub(photos_before)),
        "MiB",
    );

    // (b) Tag → OPEN on lane `entry` alone, then while ≥ 50 pushes a second go to the same
    // gate's listener for lane `side`.
    let side_url = cam::camera_url(&base, "cam-side");
    let mut ratio = [0.0f64; 2];
    for (k, loaded) in [false, true].into_iter().enumerate() {
        let stop = tokio_util::sync::CancellationToken::new();
        let posted = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let load = loaded.then(|| {
            let (client, url, images, stop, posted, failed) = (
                client.clone(),
                side_url.clone(),
                images.clone(),
                stop.clone(),
                posted.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                // 60 a second, each a fresh push with both photos, each on its own task so a
                // slow answer (a photo's fsync) does not hold back the next push.
                let mut every = tokio::time::interval(Duration::from_micros(16_667));
                let mut pushes = tokio::task::JoinSet::new();
                let mut n = 1_000_000u64;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = every.tick() => {}
                    }
                    n += 1;
                    let payload = push(n, "京Z99999", &images);
                    let (client, url, posted, failed) =
                        (client.clone(), url.clone(), posted.clone(), failed.clone());
                    pushes.spawn(async move {
                        let counter = if post(&client, &url, payload).await {
                            posted
                        } else {
                            failed
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    });
                    while pushes.try_join_next().is_some() {}
                }
                pushes.join_all().await;
            })
        });
        let started = Instant::now();
        let mut lat = Vec::with_capacity(runs);
        for i in 0..runs {
            // Vehicles whose plates (a) did not just read (no cross-check with a recent read).
            let n = ((i as u32 * 7 + VEHICLES / 2) % VEHICLES) + 1;
            entry.inputs.lock().unwrap()[0] = true;
            two_polls(&entry).await;
            *entry.open_seen.lock().unwrap() = None;
            *entry.pending_tag.lock().unwrap() = Some(epc(n));
            let opened =
                tokio::time::timeout(Duration::from_secs(2), entry.opened.notified()).await;
            let sent = entry.tag_sent.lock().unwrap().take();
            let seen = entry.open_seen.lock().unwrap().take();
            if let (Ok(()), Some(sent), Some(seen)) = (opened, sent, seen)
                && seen >= sent
            {
                lat.push(seen.duration_since(sent).as_nanos() as u64);
            }
            drive_on(&entry).await;
        }
        let elapsed = started.elapsed();
        let answered = posted.load(Ordering::Relaxed);
        stop.cancel();
        if let Some(load) = load {
            load.await.unwrap();
        }
        lat.sort_unstable();
        let name = if loaded {
            "tag_to_open_with_camera_load"
        } else {
            "tag_to_open_alone"
        };
        line(&format!("{name}_decisions"), lat.len() as f64, "count");
        line(&format!("{name}_p50"), us(percentile(&lat, 0.5)), "us");
        line(&format!("{name}_p99"), us(percentile(&lat, 0.99)), "us");
        if loaded {
            line(
                "camera_load_reads_per_second",
                answered as f64 / elapsed.as_secs_f64(),
                "1/s",
            );
            line(
                "camera_load_failed",
                failed.load(Ordering::Relaxed) as f64,
                "count",
            );
        }
        ratio[k] = percentile(&lat, 0.99) as f64;
    }
    line(
        "tag_to_open_p99_ratio_loaded_over_alone",
        ratio[1] / ratio[0].max(1.0),
        "x",
    );
    drop(client);
    stop_listener.cancel();
    listener.await.unwrap().unwrap();
    if let Ok(gate) = Arc::try_unwrap(gate) {
        gate.shutdown().await;
    }
}
