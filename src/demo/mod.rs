//! `gatehouse demo`: the whole system in one process, with no hardware and no database server.
//!
//! It starts the central server on the embedded default (SQLite in `--data-dir`), seeds the demo
//! campus on first run ([`data`]; a version marker makes a second run reuse it), starts two
//! gate controllers — north (an entry and an exit lane) and south (one two-way lane) — whose
//! lanes open simulated UHF readers and lane I/O modules over real pseudo-terminals
//! ([`crate::sim::lane::SimLane`]), makes the site PKI on first run and syncs each gate with
//! the centre over real mutual TLS ([`crate::sync`], on a loopback port), and sends simulated
//! traffic through every lane: grants, each kind of denial, visitors and the occasional device
//! fault. Each lane has a plate camera ([`camera`]) that reads every car's plate (the two push
//! kinds across lanes; some reads unsure or misread); visitors come by plate, and now and then a
//! cloned tag arrives on another car, whose plate the camera sees.
//!
//! One shutdown token ends everything; [`run`] returns when every task has ended.
//!
//! What it never does: touch a directory it did not create as a demo directory (`--reset`
//! refuses to delete anything else), or run on PostgreSQL.

mod camera;
pub mod data;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::supervise::{Backoff, Ended, essential, restarting};

use crate::central::db::Db;
use crate::central::state::AppState;
use crate::domain::{Direction, Plate, PlateColour};
use crate::gate::config::GateConfig;
use crate::gate::runtime::GateHandle;
use crate::sim::camera::CameraKind;
use crate::sim::lane::{SimLane, SimLaneConfig};
use crate::sim::uhf_reader::FieldTag;
use crate::sim::vehicle::{Vehicle, VehicleTiming};
use crate::web::site as app;
use data::{Kind, Plan};

/// Prints a line of the banner. A closed standard output (`gatehouse demo | head -3`) does not
/// stop the demo: it keeps serving, and Ctrl-C stops it as usual.
macro_rules! show {
    ($($arg:tt)*) => {
        let _ = crate::stdout::print_line(format_args!($($arg)*));
    };
}

/// The demo data's version; data seeded by another version is not reused.
pub const DATA_VERSION: &str = "1";
/// The marker file in the data directory.
const MARKER: &str = "demo-data-version";

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the central database, the gates' files and the pty links live.
    pub data_dir: PathBuf,
    /// The central server's address (port 0: any free port).
    pub listen: SocketAddr,
    /// Delete the data directory first.
    pub reset: bool,
    /// Mean time between vehicles on each lane.
    pub every: Duration,
}

/// A lane of the demo: gate number, key, direction.
struct LaneSpec {
    gate: i64,
    key: &'static str,
    direction: &'static str,
    camera: CameraKind,
}

const LANES: [LaneSpec; 3] = [
    LaneSpec {
        gate: data::NORTH,
        key: "entry",
        direction: "entry",
        camera: CameraKind::Hikvision,
    },
    LaneSpec {
        gate: data::NORTH,
        key: "exit",
        direction: "exit",
        camera: CameraKind::AlarmInfoPlate,
    },
    LaneSpec {
        gate: data::SOUTH,
        key: "both",
        direction: "two_way",
        camera: CameraKind::AlarmInfoPlate,
    },
];

/// Runs the demo until `shutdown` completes, then stops everything and returns.
pub async fn run(options: DemoOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let dir = &options.data_dir;
    if options.reset {
        reset(dir)?;
    }
    std::fs::create_dir_all(dir.join("dev"))
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    // Bind first: a port in use is refused before anything is seeded.
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {}", options.listen))?;
    let central_addr = listener.local_addr()?;
    let marker = dir.join(MARKER);
    let seeded = std::fs::read_to_string(&marker).ok();
    let db_path = dir.join("central.db");
    if seeded.is_none() && db_path.exists() {
        anyhow::bail!(
            "{} holds a database without a finished demo seed; run `gatehouse demo --reset` to start over",
            dir.display()
        );
    }
    if let Some(version) = &seeded
        && version.trim() != DATA_VERSION
    {
        anyhow::bail!(
            "{} holds demo data of version {}, this binary seeds version {DATA_VERSION}; run `gatehouse demo --reset`",
            dir.display(),
            version.trim()
        );
    }
    let db = Db::open_sqlite(&db_path).await?;
    let plan = Arc::new(data::plan());
    if seeded.is_none() {
        show!("首次运行，正在生成演示数据 First run: seeding the demo campus (a few seconds)…");
        data::seed(&db, &plan)
            .await
            .context("seeding the demo data")?;
        let tmp = marker.with_extension("tmp");
        std::fs::write(&tmp, DATA_VERSION).and_then(|()| std::fs::rename(&tmp, &marker))?;
    }

    let stop = CancellationToken::new();
    let mut state = AppState::new(db.clone());
    state.photos = crate::central::photos::Photos::disk(&dir.join("central-photos"), 90)?;
    // Issue 21: the demo's visitor-pass key, made on first run beside its PKI.
    let pass_keys = crate::pki::pass_key_dir(&dir.join("pki"));
    if crate::pki::current_pass_key(&crate::pki::list_pass_keys(&pass_keys)?).is_none() {
        crate::pki::new_pass_key(&pass_keys, chrono::Utc::now())
            .context("making the demo's visitor-pass key")?;
    }
    state.passes = crate::central::passes::start(&db, &pass_keys, true).await?;
    // Every task is supervised (crate::supervise): a listener that ends stops the demo with one
    // line saying which and why; the traffic is made anew after a panic or an error.
    let mut tasks: JoinSet<Ended> = JoinSet::new();
    {
        let stop = stop.clone();
        let router = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tasks.spawn(essential("the central server", async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .context("serving HTTP")
        }));
    }

    {
        // The alarm webhook's deliveries (none unless one is configured).
        let (db, live, stop) = (db.clone(), state.live.clone(), stop.clone());
        tasks.spawn(async move {
            restarting(
                "alarm webhook deliveries",
                stop.clone(),
                Backoff::default(),
                move || {
                    let (db, live, stop) = (db.clone(), live.clone(), stop.clone());
                    async move {
                        crate::central::alarms::run_deliveries(db, live, stop).await;
                        Ok(())
                    }
                },
            )
            .await;
            Ended::Returned {
                task: "the alarm webhook's deliveries".to_string(),
            }
        });
    }

    // The site PKI, made on first run and reused: a CA, the sync port's certificate, one
    // certificate per gate. Gates and centre talk mutual TLS exactly as on a real site.
    let pki_dir = dir.join("pki");
    ensure_pki(&pki_dir)?;
    let ca_path = crate::pki::ca_paths(&pki_dir).cert;
    let sync_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open the demo's sync port")?;
    let sync_addr = sync_listener.local_addr()?;
    {
        let server = crate::pki::server_paths(&pki_dir, SYNC_HOST);
        let tls = Arc::new(crate::tls::server_config(
            &crate::tls::load_ca(&ca_path)?,
            &crate::tls::load_identity(&server.cert, &server.key)?,
        )?);
        let router = crate::sync::server::router(state.clone(), None);
        let check = Arc::new(crate::central::gate_auth::DbGateCheck::new(db.clone()));
        let stop = stop.clone();
        tasks.spawn(essential("the sync port", async move {
            crate::tls::serve_mtls(sync_listener, tls, router, check, stop.cancelled_owned()).await;
            Ok(())
        }));
    }

    let mut gates = Vec::new();
    let mut sims = Vec::new();
    let mut banner = Vec::new();
    for (gate_no, name) in [
        (data::NORTH, "北门 North gate"),
        (data::SOUTH, "南门 South gate"),
    ] {
        let mut toml = format!(
            "[gate]\nid = {gate_no}\nname = \"{name}\"\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
            dir.join(format!("gate-{gate_no}")).display()
        );
        let mut lane_sims = Vec::new();
        let camera_listener = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot open a camera listener port")?;
            toml.push_str(&camera::listener_toml(listener.local_addr()?));
            Some(listener)
        };
        let camera_addr = camera_listener.as_ref().and_then(|l| l.local_addr().ok());
        let mut cameras = Vec::new();
        for lane in LANES.iter().filter(|l| l.gate == gate_no) {
            let reader = dir
                .join("dev")
                .join(format!("gate{gate_no}-{}-reader", lane.key));
            let io = dir
                .join("dev")
                .join(format!("gate{gate_no}-{}-io", lane.key));
            let mut config = SimLaneConfig::new(&reader, &io);
            // A fault keeps the device away long enough to be seen in the console.
            config.replug_delay = Duration::from_secs(3);
            let sim = SimLane::start(config)?;
            toml.push_str(&format!(
                "\n[[lane]]\nid = \"{}\"\ndirection = \"{}\"\n[lane.reader]\nport = \"{}\"\n{}[lane.io]\nport = \"{}\"\n",
                lane.key,
                lane.direction,
                reader.display(),
                if lane.direction == "two_way" {
                    "antennas = { 0 = \"entry\", 1 = \"exit\" }\n"
                } else {
                    ""
                },
                io.display()
            ));
            banner.push(format!(
                "    lane {:<5} reader {} · I/O {}",
                lane.key,
                reader.display(),
                io.display()
            ));
            let cam = camera::DemoCamera::new(gate_no, lane.key, lane.camera, camera_addr);
            toml.push_str(&cam.toml());
            cameras.push(Arc::new(cam));
            lane_sims.push((lane, Arc::new(sim)));
        }
        // The booth fallback page on the gate's own listener, with the demo's guard login (the
        // same user name and password as at the centre, so the banner names one login).
        let booth_guard = data::LOGINS
            .iter()
            .find(|l| l.role == "guard")
            .expect("the demo has a guard login");
        let booth_hash = {
            let password = booth_guard.password.to_string();
            tokio::task::spawn_blocking(move || crate::password::hash_password_blocking(&password))
                .await?
        };
        toml.push_str(&format!(
            "\n[[booth.guard]]\nusername = \"{}\"\npassword_hash = \"{booth_hash}\"\n",
            booth_guard.username
        ));
        let identity = crate::pki::gate_paths(&pki_dir, gate_no);
        toml.push_str(&format!(
            "\n[central]\nurl = \"https://127.0.0.1:{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            sync_addr.port(),
            ca_path.display(),
            identity.cert.display(),
            identity.key.display()
        ));
        let config = GateConfig::parse(&toml)?;
        config.validate()?;
        let http = crate::gate::http::bind(config.http.listen).await?;
        let http_addr = http.local_addr()?;
        let handle = Arc::new(GateHandle::start(config.clone()).await?);
        let local = crate::gate::http::local_router(handle.clone(), &config);
        if let Some(listener) = camera_listener {
            let (handle, config, stop) = (handle.clone(), config.clone(), stop.clone());
            tasks.spawn(essential(
                format!("gate {gate_no}'s camera listener"),
                async move { camera::serve_listener(listener, handle, &config, stop).await },
            ));
        }
        {
            let stop = stop.clone();
            tasks.spawn(essential(
                format!("gate {gate_no}'s HTTP listener"),
                async move {
                    crate::gate::http::serve(http, local, stop)
                        .await
                        .context("serving HTTP")
                },
            ));
        }
        {
            let central = config.central.as_ref().expect("written above");
            let tls = crate::sync::client::client_tls(&central.ca, &central.cert, &central.key)?;
            let client = Arc::new(crate::sync::client::SyncClient::new(
                gate_no,
                &central.url,
                Some(tls),
                crate::sync::client::ClientOptions::default(),
            )?);
            let (handle, stop) = (handle.clone(), stop.clone());
            // The runner supervises its own directions; should it end by itself, the gate
            // would stop syncing without a word, so it stops the demo instead.
            tasks.spawn(essential(
                format!("gate {gate_no}'s sync runner"),
                async move {
                    client.run(handle, stop).await;
                    Ok(())
                },
            ));
        }
        banner.insert(
            banner.len() - lane_sims.len(),
            format!(
                "  gate {gate_no} {name}: http://{http_addr}/metrics · 岗亭应急页面 booth fallback http://{http_addr}/ ({} / {}) · 车道屏 lane displays http://{http_addr}/display",
                booth_guard.username, booth_guard.password
            ),
        );
        let inside = Arc::new(Mutex::new(HashSet::new()));
        for (n, ((lane, sim), cam)) in lane_sims.iter().zip(&cameras).enumerate() {
            let (sim, cam, handle, plan, inside, stop) = (
                sim.clone(),
                cam.clone(),
                handle.clone(),
                plan.clone(),
                inside.clone(),
                stop.clone(),
            );
            let (key, direction, every) = (lane.key, lane.direction, options.every);
            let mut run = 0u64;
            tasks.spawn(async move {
                restarting(
                    "demo traffic",
                    stop.clone(),
                    Backoff::default(),
                    move || {
                        run += 1;
                        traffic(
                            sim.clone(),
                            cam.clone(),
                            handle.clone(),
                            key,
                            direction,
                            gate_no,
                            plan.clone(),
                            inside.clone(),
                            every,
                            // Another run, other dice.
                            (gate_no as u64) << 8 | n as u64 | run << 16,
                            stop.clone(),
                        )
                    },
                )
                .await;
                Ended::Returned {
                    task: format!("the traffic of gate {gate_no} lane {key}"),
                }
            });
        }
        gates.push(handle);
        sims.extend(lane_sims.into_iter().map(|(_, s)| s));
    }

    show!("Gatehouse 演示 demo — running; Ctrl-C stops it.");
    show!(
        "  data:    {} (a second run reuses it; --reset starts over)",
        dir.display()
    );
    show!(
        "  central: http://{central_addr} (admin API /api/v1, OpenAPI /api/v1/openapi.json, /metrics)"
    );
    show!(
        "  岗亭控制台 guard console: http://{central_addr}/console · 保卫处 security office: http://{central_addr}/office"
    );
    for line in &banner {
        show!("{line}");
    }
    // The staff login's own person: a visitor names them on the self-booking page.
    let host_no: String = sqlx::query_scalar(
        "SELECT p.staff_no FROM operators o JOIN persons p ON p.id = o.person_id \
         WHERE o.username = 'staff'",
    )
    .fetch_optional(db.pool())
    .await?
    .unwrap_or_default();
    show!(
        "  访客自助预约 visitor self-booking: http://{central_addr}/visit (被访人工号 host's staff number {host_no}: the staff login approves at /admin/visits)"
    );
    show!(
        "  pages:   http://{central_addr}/admin (管理与统计 administration: applications, bookings, \
         lists, gate modes, import/export, statistics), /console (booth), /office"
    );
    show!("  logins (demo only):");
    for login in &data::LOGINS {
        let start = match login.role {
            "guard" => "/console",
            _ => "/admin",
        };
        show!(
            "    {:<9} {:<19} {} ({}) → http://{central_addr}{start}",
            login.username,
            login.password,
            login.display_name,
            login.role
        );
    }
    show!(
        "  gate sync: https://127.0.0.1:{} (mutual TLS; site PKI in {})",
        sync_addr.port(),
        pki_dir.display()
    );

    // Why the demo stops: Ctrl-C (None), or a task or lane that ended by itself.
    let failure = {
        let watched = gates.clone();
        let lane_failure = async move {
            let failures = watched.iter().map(|g| Box::pin(g.lane_failure()));
            futures::future::select_all(failures).await.0
        };
        tokio::select! {
            () = shutdown => None,
            Some(ended) = tasks.join_next() => Some(match ended {
                Ok(Ended::Returned { task }) => anyhow::anyhow!("{task} stopped unexpectedly"),
                Ok(ended) => ended.into(),
                Err(e) => e.into(),
            }),
            why = lane_failure => Some(anyhow::anyhow!(why)),
        }
    };
    if let Some(why) = failure {
        stop.cancel();
        finish(tasks, gates, sims, db).await;
        return Err(why);
    }
    show!("stopping…");
    stop.cancel();
    let mut failure = None;
    while let Some(ended) = tasks.join_next().await {
        match ended {
            Ok(Ended::Returned { .. }) => {}
            Ok(ended) => failure = Some(ended.into()),
            Err(e) => failure = Some(e.into()),
        }
    }
    finish(tasks, gates, sims, db).await;
    match failure {
        Some(e) => Err(e),
        None => {
            show!("stopped.");
            Ok(())
        }
    }
}

/// Waits for the remaining tasks, then stops the gates, the simulators and the database.
async fn finish(
    mut tasks: JoinSet<Ended>,
    gates: Vec<Arc<GateHandle>>,
    sims: Vec<Arc<SimLane>>,
    db: Db,
) {
    while tasks.join_next().await.is_some() {}
    for gate in gates {
        if let Ok(gate) = Arc::try_unwrap(gate) {
            gate.shutdown().await;
        }
    }
    for sim in sims {
        if let Ok(sim) = Arc::try_unwrap(sim) {
            sim.shutdown().await;
        }
    }
    db.close().await;
}

/// Deletes a demo data directory; refuses a directory that is not one.
fn reset(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir)?.next().is_none();
    if !empty && !dir.join(MARKER).exists() && !dir.join("central.db").exists() {
        anyhow::bail!(
            "--reset: {} is not a demo data directory (no {MARKER}); refusing to delete it",
            dir.display()
        );
    }
    std::fs::remove_dir_all(dir)
        .with_context(|| format!("--reset: cannot delete {}", dir.display()))
}

/// A small deterministic generator for the traffic (see `data::Rng`).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// What the next vehicle at a lane is.
enum Arrival {
    /// A vehicle of the plan (an index into `Plan::vehicles`) with its tag.
    Tag {
        vehicle: usize,
        epc: Vec<u8>,
    },
    /// Vehicle `vehicle`'s tag copied onto another car, whose plate the camera reads.
    Cloned {
        epc: Vec<u8>,
        plate: String,
    },
    /// A tag nobody registered: no vehicle of the plan, so never counted inside.
    Unregistered {
        epc: Vec<u8>,
    },
    Visitor {
        plate: String,
    },
    Fault,
}

/// Sends vehicles through one lane, one at a time (never two on the loops: no tailgating),
/// a vehicle every `every` on average, until `stop`.
#[allow(clippy::too_many_arguments)]
async fn traffic(
    sim: Arc<SimLane>,
    cam: Arc<camera::DemoCamera>,
    gate: Arc<GateHandle>,
    lane: &'static str,
    lane_direction: &'static str,
    gate_no: i64,
    plan: Arc<Plan>,
    inside: Arc<Mutex<HashSet<usize>>>,
    every: Duration,
    seed: u64,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut dice = Dice(seed ^ 0x5EED);
    // Denied drivers back out after a few seconds, so the lane keeps moving.
    let timing = VehicleTiming {
        patience: Duration::from_millis(2500),
        ..VehicleTiming::default()
    };
    // Wait for the controller to open both devices before the first vehicle.
    let mut status = gate.watch_lane(lane).context("the demo lane exists")?;
    tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = status.wait_for(|s| s.reader_online && s.io_online) => { r?; }
    }
    loop {
        let direction = match lane_direction {
            "entry" => Direction::Entry,
            "exit" => Direction::Exit,
            _ if dice.roll(2) == 0 => Direction::Entry,
            _ => Direction::Exit,
        };
        let arrival = choose(&mut dice, &plan, &inside, direction);
        let antenna = u8::from(direction == Direction::Exit && lane_direction == "two_way");
        // What the camera will see of this car's plate: mostly right, now and then unsure or
        // a digit off.
        let (seen_roll, seen_digit) = (dice.roll(100), dice.roll(1000));
        let camera_read = |plate: String| {
            let cam = cam.clone();
            async move {
                // The plate camera reads the plate a moment after the car stops.
                tokio::time::sleep(Duration::from_millis(300)).await;
                let (text, confidence) = camera::as_seen(&plate, seen_roll, seen_digit);
                cam.read(&text, PlateColour::Blue, confidence, direction)
                    .await
            }
        };
        let drive = async {
            match &arrival {
                Arrival::Tag { epc, vehicle } => {
                    let tag = FieldTag::new(epc.clone(), antenna, -50);
                    let car = Vehicle::tagged(tag)?.with_timing(timing);
                    let plate = plan.vehicles[*vehicle].plate.clone();
                    let (passage, read) = tokio::join!(sim.drive(&car), camera_read(plate));
                    if let Err(e) = read {
                        tracing::warn!(gate = gate_no, lane, error = %e, "demo camera read failed");
                    }
                    Ok::<_, anyhow::Error>(passage.passed())
                }
                Arrival::Cloned { epc, plate } => {
                    // The copy answers with its own chip's TID, not the original's.
                    let tag = FieldTag::new(epc.clone(), antenna, -50)
                        .with_tid([0xE2, 0x80, 0x11, 0x60, 0xC1, 0x0E, 0xD0, 0x00, 0, 0, 0, 1]);
                    let car = Vehicle::tagged(tag)?.with_timing(timing);
                    let (passage, read) = tokio::join!(sim.drive(&car), camera_read(plate.clone()));
                    if let Err(e) = read {
                        tracing::warn!(gate = gate_no, lane, error = %e, "demo camera read failed");
                    }
                    Ok(passage.passed())
                }
                Arrival::Unregistered { epc } => {
                    let tag = FieldTag::new(epc.clone(), antenna, -50);
                    let vehicle = Vehicle::tagged(tag)?.with_timing(timing);
                    Ok(sim.drive(&vehicle).await.passed())
                }
                Arrival::Visitor { plate } => {
                    let vehicle = Vehicle::untagged().with_timing(timing);
                    Plate::parse(plate).map_err(|e| anyhow::anyhow!("{plate}: {e}"))?;
                    let (passage, read) =
                        tokio::join!(sim.drive(&vehicle), camera_read(plate.clone()));
                    read?;
                    Ok(passage.passed())
                }
                Arrival::Fault => {
                    // The reader's cable is pulled; it comes back after the replug delay.
                    tracing::info!(gate = gate_no, lane, "demo: unplugging the reader");
                    sim.reader_port().unplug();
                    Ok(false)
                }
            }
        };
        let passed = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            passed = drive => passed?,
        };
        after_passage(&inside, &arrival, direction, passed);
        // A minimum headway of a second, the rest random around `every`.
        let ms = every.as_millis() as u64;
        let gap = Duration::from_millis(1000 + dice.roll(ms.max(1)));
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(gap) => {}
        }
    }
}

/// Keeps the demo's idea of who is inside up to date after a vehicle drove (or backed out).
fn after_passage(
    inside: &Mutex<HashSet<usize>>,
    arrival: &Arrival,
    direction: Direction,
    passed: bool,
) {
    if let (Arrival::Tag { vehicle, .. }, true) = (arrival, passed) {
        let mut inside = inside.lock().expect("inside set");
        if direction == Direction::Entry {
            inside.insert(*vehicle);
        } else {
            inside.remove(vehicle);
        }
    }
}

fn choose(
    dice: &mut Dice,
    plan: &Plan,
    inside: &Mutex<HashSet<usize>>,
    direction: Direction,
) -> Arrival {
    let of_kind = |dice: &mut Dice, kind: Kind| -> usize {
        let all: Vec<usize> = (0..plan.vehicles.len())
            .filter(|i| plan.vehicles[*i].kind == kind)
            .collect();
        all[dice.roll(all.len() as u64) as usize]
    };
    let tag = |i: usize| Arrival::Tag {
        vehicle: i,
        epc: hex::decode(&plan.vehicles[i].epc).expect("planned EPCs are hex"),
    };
    let inside_set = inside.lock().expect("inside set").clone();
    // Sorted: the same dice give the same choice (a HashSet's order differs per process).
    let mut now_inside: Vec<usize> = inside_set.iter().copied().collect();
    now_inside.sort_unstable();
    let roll = dice.roll(100);
    match roll {
        // Regular holders: in from outside, out from inside.
        0..=51 => {
            if direction == Direction::Exit && !now_inside.is_empty() {
                return tag(now_inside[dice.roll(now_inside.len() as u64) as usize]);
            }
            // A regular holder who is outside (drawn from those, so no loop waits for one).
            let outside: Vec<usize> = (0..plan.vehicles.len())
                .filter(|i| plan.vehicles[*i].kind == Kind::Regular && !inside_set.contains(i))
                .collect();
            if outside.is_empty() {
                return tag(of_kind(dice, Kind::NoPermit));
            }
            tag(outside[dice.roll(outside.len() as u64) as usize])
        }
        52..=56 => tag(of_kind(dice, Kind::NoPermit)),
        57..=61 => tag(of_kind(dice, Kind::Expired)),
        // A north-only permit at the south gate is a wrong gate; at the north gate it passes.
        62..=66 => tag(of_kind(dice, Kind::NorthOnly)),
        // An exit-only permit at an entry is the wrong direction.
        67..=71 => tag(of_kind(dice, Kind::ExitOnly)),
        72..=75 => tag(of_kind(dice, Kind::Blacklisted)),
        // A locked vehicle may enter but not leave.
        76..=80 => tag(of_kind(dice, Kind::Locked)),
        // Anti-passback: a vehicle already inside tries to enter again.
        81..=84 if direction == Direction::Entry && !now_inside.is_empty() => {
            tag(now_inside[dice.roll(now_inside.len() as u64) as usize])
        }
        // A tag nobody registered.
        81..=86 => Arrival::Unregistered {
            epc: {
                let mut epc = hex::decode("E2801160600002FF00000000").expect("hex");
                epc[11] = dice.roll(256) as u8;
                epc[10] = dice.roll(256) as u8;
                epc
            },
        },
        87..=96 => {
            let v = &plan.visitors[dice.roll(plan.visitors.len() as u64) as usize];
            Arrival::Visitor {
                plate: v.plate.clone(),
            }
        }
        // A regular holder's tag copied onto a visitor's car: the camera sees the visitor's
        // plate, the reader the holder's EPC (with the copy's own TID).
        97 => {
            let owner = of_kind(dice, Kind::Regular);
            let v = &plan.visitors[dice.roll(plan.visitors.len() as u64) as usize];
            Arrival::Cloned {
                epc: hex::decode(&plan.vehicles[owner].epc).expect("planned EPCs are hex"),
                plate: v.plate.clone(),
            }
        }
        _ => Arrival::Fault,
    }
}

/// The demo's sync certificate's name (it also carries 127.0.0.1, which the gates dial).
const SYNC_HOST: &str = "localhost";

/// Makes the demo's site PKI on first run; later runs reuse it (and issue what is missing).
fn ensure_pki(dir: &std::path::Path) -> anyhow::Result<()> {
    use crate::pki;
    if !pki::ca_paths(dir).cert.exists() {
        pki::init_ca(dir, "Gatehouse Demo").context("creating the demo's site CA")?;
    }
    let validity = pki::Validity::days(pki::DEFAULT_VALIDITY_DAYS)?;
    if !pki::server_paths(dir, SYNC_HOST).cert.exists() {
        pki::issue_server(dir, SYNC_HOST, &["127.0.0.1".to_string()], validity)
            .context("issuing the demo's sync certificate")?;
    }
    for gate in [data::NORTH, data::SOUTH] {
        if !pki::gate_paths(dir, gate).cert.exists() {
            pki::issue_gate(dir, gate, validity)
                .with_context(|| format!("issuing gate {gate}'s certificate"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every vehicle let through on entry (a guard opening by hand, a lane locked open), an
    /// unregistered tag among them, then they try to leave: the traffic generator keeps
    /// choosing vehicles of the plan and never panics.
    #[test]
    fn vehicles_let_through_by_hand_including_unknown_tags_never_crash_the_traffic() {
        let plan = data::plan();
        let inside = Mutex::new(HashSet::new());
        let mut dice = Dice(7);
        for _ in 0..300 {
            let arrival = choose(&mut dice, &plan, &inside, Direction::Entry);
            after_passage(&inside, &arrival, Direction::Entry, true);
        }
        // They all try to leave (and are held at the exit, so the set stays as it is).
        for _ in 0..3000 {
            let arrival = choose(&mut dice, &plan, &inside, Direction::Exit);
            after_passage(&inside, &arrival, Direction::Exit, false);
        }
    }

    /// With every regular holder inside, an entry still gets a vehicle at once (drawing regular
    /// holders until one is outside would never end).
    #[test]
    fn an_entry_with_every_regular_holder_inside_chooses_without_spinning() {
        let plan = data::plan();
        let inside: HashSet<usize> = (0..plan.vehicles.len())
            .filter(|i| plan.vehicles[*i].kind == Kind::Regular)
            .collect();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let inside = Mutex::new(inside);
            let mut dice = Dice(11);
            for _ in 0..200 {
                let _ = choose(&mut dice, &plan, &inside, Direction::Entry);
            }
            let _ = done_tx.send(());
        });
        done.recv_timeout(std::time::Duration::from_secs(30))
            .expect("200 entries chosen within 30 s");
    }
}
