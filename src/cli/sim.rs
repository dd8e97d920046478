//! `gatehouse sim …`: simulated lane devices on pseudo-terminals, and a simulated plate camera
//! that posts to a gate's camera listener.
//!
//! Each device command publishes its emulators' pseudo-terminals at the links given, runs until Ctrl-C
//! (or, for `sim lane`, until its vehicles are done) and then closes them, removing the links.
//! The SIGINT handler is installed before any link appears, so a Ctrl-C that arrives as soon as a
//! link exists still shuts down cleanly. Nothing here talks to a gate controller.

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use crate::domain::PlateColour;
use crate::sim::camera::{self, CameraKind, PlateShot, ShotImages};
use crate::sim::lane::{DEFAULT_REPLUG_DELAY, ServedPort, SimLane, SimLaneConfig, Traffic};
use crate::sim::lane_io::{LaneIoModule, LaneIoModuleConfig};
use crate::sim::uhf_reader::{FieldTag, ReaderControl};
use crate::sim::vehicle::{VehicleOutcome, hex};

/// Antenna a `--tag` is seen on when it does not say.
const DEFAULT_ANTENNA: u8 = 0;
/// RSSI a `--tag` is read at when it does not say: a car a few metres from the antenna.
const DEFAULT_DBM: i16 = -55;

#[derive(Debug, Subcommand)]
pub(super) enum SimCommand {
    /// Run a UHF reader emulator (0xA0 protocol) on a pseudo-terminal until Ctrl-C.
    Reader(ReaderArgs),
    /// Run a lane I/O module emulator (Modbus RTU slave with a barrier) until Ctrl-C.
    Io(IoArgs),
    /// Run a whole lane (reader + I/O module) with a stream of simulated vehicles.
    Lane(LaneArgs),
    /// Post plate reads to a gate's camera listener as a plate camera does, with generated JPEGs.
    Camera(CameraArgs),
    /// Run an RS-485 LED/voice lane screen emulator on a pseudo-terminal, printing what it is
    /// told (lines shown, texts spoken), until Ctrl-C.
    Led(LedArgs),
    /// Run a QR pass scanner (UART mode: text then CR or CRLF) on a pseudo-terminal: sends
    /// --text or --file once, or each line typed on standard input, until Ctrl-C.
    Qr(QrArgs),
    /// Load test: N simulated gates (each its own certificate and mutual-TLS connections) and
    /// M consoles against one or two `gatehouse server run` instances on loopback, for a
    /// bounded time; prints `name value unit` figures (benches/README.md, "fleet").
    Fleet(FleetArgs),
}

#[derive(Debug, Args)]
pub(super) struct FleetArgs {
    /// Simulated gates; a list (e.g. 100,250,500,1000) runs each size in turn.
    #[arg(
        long,
        value_name = "N[,N…]",
        value_delimiter = ',',
        default_value = "1000"
    )]
    gates: Vec<u32>,
    /// Central instances on one database: 1 or 2 (2 needs PostgreSQL); a list runs each.
    #[arg(
        long,
        value_name = "1|2[,…]",
        value_delimiter = ',',
        default_value = "1"
    )]
    instances: Vec<u32>,
    /// Console clients holding the booth's live stream.
    #[arg(long, value_name = "M", default_value_t = 50)]
    consoles: u32,
    /// Seconds of measured traffic per run (after the fleet has connected).
    #[arg(long, value_name = "S", default_value_t = 120)]
    seconds: u64,
    /// Seconds between passages on each lane.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    passage_every_s: f64,
    /// Lanes per gate.
    #[arg(long, value_name = "L", default_value_t = 2)]
    lanes: u32,
    /// Permits revoked during each run, spread over it.
    #[arg(long, value_name = "K", default_value_t = 10)]
    revocations: u32,
    /// Permits (with a person, vehicle and tag each) seeded at the centre.
    #[arg(long, value_name = "P", default_value_t = 3000)]
    permits: u32,
    /// The database server: postgres://… (a role that may create databases; a database is
    /// made and dropped per run), or unset for SQLite (one instance only).
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Small and short: 20 gates, 5 consoles, about 15 s (CI's smoke run).
    #[arg(long)]
    smoke: bool,
    /// Fault injection, to see the checks fail: drop-revocations:GATE or lose-upload:GATE.
    #[arg(long, value_name = "FAULT", value_parser = parse_fault, hide = true)]
    fault: Option<crate::sim::fleet::Fault>,
}

fn parse_fault(text: &str) -> anyhow::Result<crate::sim::fleet::Fault> {
    crate::sim::fleet::Fault::parse(text).map_err(anyhow::Error::msg)
}

async fn run_fleet(
    args: FleetArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    use crate::sim::fleet::{FleetOptions, run};
    if !(args.passage_every_s.is_finite() && args.passage_every_s > 0.0) {
        bail!("--passage-every-s must be a positive number of seconds");
    }
    let mut options = FleetOptions {
        gates: args.gates,
        instances: args.instances,
        consoles: args.consoles,
        seconds: args.seconds,
        passage_every: Duration::from_secs_f64(args.passage_every_s),
        lanes: args.lanes,
        revocations: args.revocations,
        permits: args.permits,
        database_url: args.database_url.filter(|u| !u.is_empty()),
        exe: std::env::current_exe().context("where is this binary?")?,
        fault: args.fault,
    };
    if args.smoke {
        options.gates = vec![20];
        options.consoles = 5;
        options.seconds = 15;
        options.revocations = options.revocations.min(3);
        options.permits = options.permits.min(500);
    }
    if options.gates.is_empty() || options.gates.contains(&0) {
        bail!("--gates: at least one gate");
    }
    if options.consoles == 0 || options.lanes == 0 || options.seconds == 0 {
        bail!("--consoles, --lanes and --seconds must be at least 1");
    }
    let fleet = run(&options, |f| {
        let _ = say!("{} {:.3} {}", f.name, f.value, f.unit);
    });
    let reports = tokio::select! {
        r = fleet => r?,
        // Dropping the run kills the instances it started (kill_on_drop) and removes its
        // temporary directory; a PostgreSQL database it made stays (gatehouse_fleet_PID_…).
        signal = ctrl_c => {
            signal.context("listening for Ctrl-C")?;
            bail!("interrupted");
        }
    };
    let problems: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(move |p| format!("n{}_i{}: {p}", r.gates, r.instances))
        })
        .collect();
    if !problems.is_empty() {
        bail!("the fleet's checks failed:\n{}", problems.join("\n"));
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(super) struct LedArgs {
    /// Path of the symlink to publish the screen's pseudo-terminal at (`[lane.screen] port`).
    #[arg(long, value_name = "PATH")]
    link: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct QrArgs {
    /// Path of the symlink to publish the scanner's pseudo-terminal at (the lane's `[lane.qr]
    /// port`).
    #[arg(long, value_name = "PATH")]
    link: PathBuf,
    /// A text to send as a scanned code (a pass's `GHP1.…` text).
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    text: Option<String>,
    /// A file whose content (trimmed) is sent as one scanned code.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// End each text with CRLF instead of CR.
    #[arg(long)]
    crlf: bool,
    /// Milliseconds to wait before sending --text/--file (time for the gate to open the port).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    after_ms: u64,
}

#[derive(Debug, Args)]
pub(super) struct CameraArgs {
    /// The gate's camera listener, e.g. http://127.0.0.1:8088 (reads go to <gate>/camera/<name>).
    #[arg(long, value_name = "URL")]
    gate: String,
    /// The camera's name in the gate's gate.toml ([[camera]] name).
    #[arg(long, value_name = "NAME")]
    camera: String,
    /// The payload kind: hikvision (ISAPI multipart) or alarm_info_plate (JSON).
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: CameraKind,
    /// The plate read, e.g. 京A12345.
    #[arg(long, value_name = "PLATE")]
    plate: String,
    /// The plate's colour: blue, yellow, green, yellow_green, white or black.
    #[arg(long, value_name = "COLOUR", default_value = "blue", value_parser = parse_colour)]
    colour: PlateColour,
    /// The camera's confidence, 0–100.
    #[arg(long, value_name = "N", default_value_t = 95, value_parser = clap::value_parser!(u8).range(0..=100))]
    confidence: u8,
    /// How many reads to post (each a new event).
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: u64,
    /// Reads per second when posting more than one.
    #[arg(long, value_name = "R", default_value_t = 1.0)]
    rate: f64,
    /// The camera's channel.
    #[arg(long, value_name = "N", default_value_t = 1)]
    channel: u32,
    /// Size of the scene photo, in kilobytes (about).
    #[arg(long, value_name = "KB", default_value_t = 200)]
    scene_kb: usize,
}

#[derive(Debug, Args)]
pub(super) struct ReaderArgs {
    /// Path of the symlink to publish the reader's pseudo-terminal at (the port a gate opens).
    #[arg(long, value_name = "PATH")]
    link: PathBuf,
    /// A tag kept in the reader's field: hex EPC, optionally its antenna (0–7, default 0),
    /// RSSI in dBm (default -55) and hex TID (answered to the gate's TID read; give another
    /// tag's EPC with a TID of its own for a cloned tag). Repeatable.
    #[arg(long = "tag", value_name = "EPC[:ANTENNA[:DBM[:TID]]]", value_parser = parse_tag)]
    tags: Vec<FieldTag>,
}

#[derive(Debug, Args)]
pub(super) struct IoArgs {
    /// Path of the symlink to publish the module's pseudo-terminal at (the port a gate opens).
    #[arg(long, value_name = "PATH")]
    link: PathBuf,
    /// Time the barrier arm takes between its limits, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 1500)]
    travel_ms: u64,
}

#[derive(Debug, Args)]
pub(super) struct LaneArgs {
    /// Path of the symlink to publish the reader's pseudo-terminal at.
    #[arg(long, value_name = "PATH")]
    reader_link: PathBuf,
    /// Path of the symlink to publish the I/O module's pseudo-terminal at.
    #[arg(long, value_name = "PATH")]
    io_link: PathBuf,
    /// A tag carried by the simulated vehicles, in turn (hex EPC, optionally :ANTENNA[:DBM[:TID]]).
    /// Repeatable; after each round of tags one vehicle comes without a tag.
    #[arg(long = "tag", value_name = "EPC[:ANTENNA[:DBM[:TID]]]", value_parser = parse_tag)]
    tags: Vec<FieldTag>,
    /// Milliseconds between one vehicle's arrival and the next (the next also waits for the
    /// previous one to leave).
    #[arg(long, value_name = "N", default_value_t = 3000)]
    every_ms: u64,
    /// Stop after this many vehicles; 0 sends none and keeps the devices up until Ctrl-C.
    /// Without it, vehicles come until Ctrl-C.
    #[arg(long, value_name = "N")]
    vehicles: Option<u64>,
    /// Time the barrier arm takes between its limits, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 1500)]
    travel_ms: u64,
    /// Milliseconds a driver waits for the arm before backing out.
    #[arg(long, value_name = "N", default_value_t = 8000)]
    patience_ms: u64,
}

pub(super) async fn run(cmd: SimCommand) -> anyhow::Result<()> {
    // Install the SIGINT handler now, before any link exists: polling `ctrl_c` once registers
    // it, and a SIGINT from then on is delivered to the future instead of killing the process.
    let mut ctrl_c = pin!(tokio::signal::ctrl_c());
    if let Poll::Ready(signal) = futures::poll!(ctrl_c.as_mut()) {
        signal.context("listening for Ctrl-C")?;
        return Ok(());
    }
    match cmd {
        SimCommand::Reader(args) => run_reader(args, ctrl_c).await,
        SimCommand::Io(args) => run_io(args, ctrl_c).await,
        SimCommand::Lane(args) => run_lane(args, ctrl_c).await,
        SimCommand::Camera(args) => run_camera(args, ctrl_c).await,
        SimCommand::Led(args) => run_led(args, ctrl_c).await,
        SimCommand::Qr(args) => run_qr(args, ctrl_c).await,
        SimCommand::Fleet(args) => run_fleet(args, ctrl_c).await,
    }
}

async fn run_reader(
    args: ReaderArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    let reader = ReaderControl::new();
    for tag in args.tags {
        reader.put_tag(tag).context("--tag")?;
    }
    let port = ServedPort::reader(reader, &args.link, DEFAULT_REPLUG_DELAY)
        .with_context(|| format!("cannot create the reader's port at {}", args.link.display()))?;
    say!(
        "reader emulator on {} (Ctrl-C to stop)",
        port.link().display()
    )?;
    let signal = ctrl_c.await;
    port.shutdown().await;
    signal.context("listening for Ctrl-C")
}

async fn run_io(
    args: IoArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    let module = LaneIoModule::new(LaneIoModuleConfig {
        travel: Duration::from_millis(args.travel_ms),
        ..LaneIoModuleConfig::default()
    })?;
    let port =
        ServedPort::io_module(module, &args.link, DEFAULT_REPLUG_DELAY).with_context(|| {
            format!(
                "cannot create the I/O module's port at {}",
                args.link.display()
            )
        })?;
    say!(
        "lane I/O module emulator on {} (Ctrl-C to stop)",
        port.link().display()
    )?;
    let signal = ctrl_c.await;
    port.shutdown().await;
    signal.context("listening for Ctrl-C")
}

async fn run_led(
    args: LedArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    let device = crate::serial::pty::PtyDevice::create(Some(&args.link)).with_context(|| {
        format!(
            "cannot create the lane screen's port at {}",
            args.link.display()
        )
    })?;
    say!(
        "LED lane screen emulator on {} (Ctrl-C to stop)",
        device.path().display()
    )?;
    let screen = crate::sim::led_screen::LedScreen::default();
    let serve = screen.serve(device, |line| {
        let _ = say!("{line}");
    });
    tokio::select! {
        signal = ctrl_c => signal.context("listening for Ctrl-C"),
        served = serve => served.context("reading the lane screen's port"),
    }
}

async fn run_lane(
    args: LaneArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    let mut config = SimLaneConfig::new(&args.reader_link, &args.io_link);
    config.io.travel = Duration::from_millis(args.travel_ms);
    let mut mix: Vec<Option<FieldTag>> = args.tags.into_iter().map(Some).collect();
    mix.push(None);
    let mut traffic = Traffic::new(mix, Duration::from_millis(args.every_ms)).context("--tag")?;
    traffic.count = args.vehicles;
    traffic.timing.patience = Duration::from_millis(args.patience_ms);

    let lane = SimLane::start(config)?;
    say!(
        "lane: reader on {}, I/O module on {} (Ctrl-C to stop)",
        lane.reader_port().link().display(),
        lane.io_port().link().display()
    )?;
    let signal = if args.vehicles == Some(0) {
        ctrl_c.await
    } else {
        let vehicles = lane.run_traffic(&traffic, |report| {
            let who = report
                .epc
                .as_deref()
                .map_or_else(|| "no tag".to_owned(), |epc| format!("tag {}", hex(epc)));
            let line = match report.passage.outcome {
                VehicleOutcome::Passed { waited } => {
                    format!(
                        "passed, the arm was open after {:.2} s",
                        waited.as_secs_f64()
                    )
                }
                VehicleOutcome::GaveUp => format!(
                    "gave up after {:.2} s",
                    report
                        .passage
                        .left_at
                        .duration_since(report.passage.arrived_at)
                        .as_secs_f64()
                ),
            };
            // A closed standard output shows at the tally, which ends the command.
            let _ = say!("vehicle {} ({who}): {line}", report.index + 1);
        });
        tokio::select! {
            tally = vehicles => {
                say!("{} passed, {} gave up", tally.passed, tally.gave_up)?;
                Ok(())
            }
            signal = ctrl_c => signal,
        }
    };
    lane.shutdown().await;
    signal.context("listening for Ctrl-C")
}

async fn run_qr(
    args: QrArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    use crate::sim::qr_scanner::{LineEnding, QrScanner};
    use tokio::io::AsyncBufReadExt;
    let once = match (&args.text, &args.file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    let ending = if args.crlf {
        LineEnding::CrLf
    } else {
        LineEnding::Cr
    };
    let mut scanner = QrScanner::create(&args.link, ending).with_context(|| {
        format!(
            "cannot create the scanner's port at {}",
            args.link.display()
        )
    })?;
    say!(
        "QR scanner on {} (Ctrl-C to stop)",
        scanner.path().display()
    )?;
    let sending = async {
        if let Some(text) = once {
            tokio::time::sleep(Duration::from_millis(args.after_ms)).await;
            scanner.scan(&text).await.context("sending the text")?;
            say!("sent {} characters", text.chars().count())?;
            std::future::pending::<()>().await;
        }
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await.context("reading standard input")? {
            let text = line.trim();
            if !text.is_empty() {
                scanner.scan(text).await.context("sending the text")?;
                say!("sent {} characters", text.chars().count())?;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        done = sending => done,
        signal = ctrl_c => signal.context("listening for Ctrl-C"),
    }
}

fn parse_kind(text: &str) -> anyhow::Result<CameraKind> {
    CameraKind::from_name(text)
        .with_context(|| format!("{text:?}: expected hikvision or alarm_info_plate"))
}

fn parse_colour(text: &str) -> anyhow::Result<PlateColour> {
    PlateColour::from_code(text).with_context(|| {
        format!("{text:?}: expected blue, yellow, green, yellow_green, white or black")
    })
}

async fn run_camera(
    args: CameraArgs,
    ctrl_c: impl Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of reads a second");
    }
    let url = camera::camera_url(&args.gate, &args.camera);
    let client = camera::client(Duration::from_secs(10));
    let every = Duration::from_secs_f64(1.0 / args.rate);
    // Event ids a repeat of this command does not reuse: the start time in milliseconds.
    let first_id = chrono::Utc::now().timestamp_millis() as u64;
    let posts = async {
        let mut ticks = tokio::time::interval(every);
        for n in 0..args.count {
            ticks.tick().await;
            let shot = PlateShot {
                plate: args.plate.clone(),
                colour: args.colour,
                confidence: args.confidence,
                event_id: first_id + n,
                channel: args.channel,
                direction: None,
                at: chrono::Utc::now(),
            };
            let images = ShotImages::draw(&shot, &args.camera, args.scene_kb * 1024)
                .context("drawing the photos")?;
            let payload = camera::payload(args.kind, &shot, &images);
            let started = std::time::Instant::now();
            let answer = camera::post(&client, &url, &payload).await?;
            say!(
                "read {} ({} {}, {} bytes) → {url}: {} in {:.1} ms",
                n + 1,
                args.plate,
                args.colour.as_str(),
                payload.body.len(),
                answer.trim(),
                started.elapsed().as_secs_f64() * 1000.0
            )?;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        done = posts => done,
        signal = ctrl_c => signal.context("listening for Ctrl-C"),
    }
}

/// Parses `EPC[:ANTENNA[:DBM[:TID]]]`; EPC and TID are hex, spaces and dashes allowed.
fn parse_tag(text: &str) -> anyhow::Result<FieldTag> {
    let mut parts = text.split(':');
    let epc_text: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let epc = hex::decode(&epc_text).with_context(|| format!("EPC {epc_text:?} is not hex"))?;
    let antenna = match parts.next() {
        Some(a) => a.parse().with_context(|| format!("antenna {a:?}"))?,
        None => DEFAULT_ANTENNA,
    };
    let dbm = match parts.next() {
        Some(d) => d.parse().with_context(|| format!("RSSI {d:?}"))?,
        None => DEFAULT_DBM,
    };
    let tid = match parts.next() {
        Some(t) => {
            let t: String = t.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            Some(hex::decode(&t).with_context(|| format!("TID {t:?} is not hex"))?)
        }
        None => None,
    };
    if parts.next().is_some() {
        bail!("expected EPC[:ANTENNA[:DBM[:TID]]], got {text:?}");
    }
    let mut tag = FieldTag::new(epc, antenna, dbm);
    if let Some(tid) = tid {
        tag = tag.with_tid(tid);
    }
    // The reader's own rules (even EPC length ≤ 62 bytes, antenna 0–7, RSSI range).
    ReaderControl::new().put_tag(tag.clone())?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_argument_gives_the_epc_and_defaults_antenna_and_rssi() {
        let tag = parse_tag("E2003098-88190072").unwrap();
        assert_eq!(
            tag,
            FieldTag::new(
                [0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72],
                DEFAULT_ANTENNA,
                DEFAULT_DBM
            )
        );
        let tag = parse_tag("30141234:2:-61").unwrap();
        assert_eq!(tag, FieldTag::new([0x30, 0x14, 0x12, 0x34], 2, -61));
        let tag = parse_tag("30141234:2:-61:E280-1160").unwrap();
        assert_eq!(
            tag,
            FieldTag::new([0x30, 0x14, 0x12, 0x34], 2, -61).with_tid([0xE2, 0x80, 0x11, 0x60])
        );
    }

    #[test]
    fn a_tag_argument_no_reader_could_report_is_refused() {
        assert!(parse_tag("E20030").is_err(), "odd number of bytes");
        assert!(parse_tag("30141234:9").is_err(), "antenna 9");
        assert!(parse_tag("30141234:0:-1").is_err(), "RSSI above -2 dBm");
        assert!(parse_tag("zz").is_err());
        assert!(parse_tag("30141234:0:-50:x").is_err());
        assert!(parse_tag("30141234:0:-50:E28011:1").is_err(), "odd TID");
        assert!(parse_tag("30141234:0:-50:E2801160:9").is_err());
    }
}
