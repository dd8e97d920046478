//! The gate's camera listener end to end: a real gate (lanes on emulated devices over ptys, see
//! `support`) serving `gate::camera_http::router` on a real socket, cameras played by an HTTP
//! client posting the makes' payloads (`camera_payloads`). What a camera is answered, what the
//! lane journals, what reaches the I/O module.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::camera_payloads::*;
use crate::support::*;
use gatehouse::gate::camera_http;
use gatehouse::gate::config::{CameraConfig, CameraKind, CameraListenerSection, GateConfig};
use gatehouse::sim::barrier::ArmState;
use gatehouse::wire::journal::{EventBody, JournalEvent, PhotoKind};
use gatehouse::wire::sync::CameraHealth;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

const PLATE: &str = "京A12345";

/// A camera of `kind` named `name` at lane `lane`.
fn camera(name: &str, kind: CameraKind, lane: &str) -> CameraConfig {
    CameraConfig {
        name: name.into(),
        kind,
        from: None,
        lane: lane.into(),
        channels: Default::default(),
        min_confidence: 80,
        silent_after_s: 600,
    }
}

/// The gate's listener for `cameras`, serving on a free loopback port.
struct Listener {
    url: String,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    http: reqwest::Client,
}

impl Listener {
    async fn start(gate: &TestGate, cameras: Vec<CameraConfig>) -> Listener {
        let mut config: GateConfig = gate.config.clone();
        config.camera_listener = Some(CameraListenerSection {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_body_bytes: 8 * 1024 * 1024,
        });
        config.cameras = cameras;
        config
            .validate()
            .expect("the camera configuration is valid");
        let socket = camera_http::bind(config.camera_listener.as_ref().unwrap().listen)
            .await
            .unwrap();
        let addr: SocketAddr = socket.local_addr().unwrap();
        let router = camera_http::router(gate.shared_handle(), &config);
        let stop = CancellationToken::new();
        let server = tokio::spawn(camera_http::serve(socket, router, stop.clone()));
        let http = http_client();
        Listener {
            url: format!("http://{addr}"),
            stop,
            server,
            http,
        }
    }

    /// POSTs `body` to `/camera/<name>`; returns the status and the answer's text.
    async fn post(&self, name: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}/camera/{name}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the listener answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Stops serving (the router and its hold on the gate go).
    async fn stop(self) {
        drop(self.http);
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }
}

/// A plain HTTP client (reqwest is built without a default TLS provider: it gets ring's, though
/// it only speaks HTTP here).
fn http_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap()
}

/// Events that carry a camera read with `event_id`.
/// The journal's events once one carries camera event `event_id`: a read no vehicle claims is
/// journalled (ignored) when its window for a vehicle has passed (`[lane.plate]`), not at once.
async fn events_with(gate: &TestGate, event_id: &str) -> Vec<JournalEvent> {
    wait_for("the camera read in the journal", || async {
        let events = gate.events().await;
        (!camera_events(&events, event_id).is_empty()).then_some(events)
    })
    .await
}

fn camera_events<'a>(events: &'a [JournalEvent], event_id: &str) -> Vec<&'a JournalEvent> {
    events
        .iter()
        .filter(|e| match &e.body {
            EventBody::Decision(d) => d.camera.as_ref().is_some_and(|c| c.event_id == event_id),
            EventBody::PlateIgnored { camera, .. } => camera.event_id == event_id,
            _ => false,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hikvision_read_of_a_registered_plate_on_the_loop_is_granted_and_opens_the_barrier() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    gate.seed(vehicle_with_tag(1, PLATE, permit(1), &epc(1)))
        .await;
    let cams = Listener::start(&gate, vec![camera("north", CameraKind::Hikvision, "entry")]).await;
    let lane = gate.lane("entry");
    gate.arrive("entry").await;

    let (plate_jpeg, scene_jpeg) = (jpeg(4_000, 1), jpeg(200_000, 2));
    // The camera reads the plate full-width, with a separator: the same plate.
    let xml = hik_alert("anpr-0001", "京Ａ·12345", "blue", 97, 1);
    let (content_type, body) = hik_multipart(
        &xml,
        &[
            ("licensePlatePicture", &plate_jpeg),
            ("detectionPicture", &scene_jpeg),
        ],
    );
    let after = gate.last_seq().await;
    let (status, text) = cams.post("north", &content_type, body).await;
    assert_eq!((status, text.as_str()), (200, "OK"));

    // Answered only once journalled: the decision is there already, granted, with the read.
    let events = gate.events().await;
    let decision = events
        .iter()
        .filter(|e| e.seq > after)
        .find_map(|e| match &e.body {
            EventBody::Decision(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no decision journalled before the 200: {events:#?}"));
    assert!(decision.granted, "{decision:?}");
    assert_eq!(decision.plate.as_deref(), Some(PLATE));
    let read = decision
        .camera
        .expect("the decision carries the camera read");
    assert_eq!(read.camera, "north");
    assert_eq!(read.event_id, "anpr-0001");
    assert_eq!(read.raw_plate, "京Ａ·12345");
    assert_eq!(read.colour.as_deref(), Some("blue"));
    assert_eq!(read.confidence, 97);
    assert_eq!(read.photos.len(), 2);
    assert_eq!(read.photos[0].kind, PhotoKind::Plate);
    assert_eq!(read.photos[1].kind, PhotoKind::Scene);
    assert_eq!(read.photos[1].bytes, scene_jpeg.len() as u64);
    // The photos are on disk under their hashes.
    let photos = &gate.handle().shared().photos;
    assert_eq!(photos.get(&read.photos[0].sha256).unwrap(), plate_jpeg);
    assert_eq!(photos.get(&read.photos[1].sha256).unwrap(), scene_jpeg);

    // And the barrier: OPEN written to the I/O module.
    lane.wait_arm(ArmState::Open).await;
    assert_eq!(lane.opens().len(), 1, "{:?}", lane.io.coil_log());
    cams.stop().await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_info_plate_read_without_a_vehicle_is_journalled_and_answered_in_its_own_format() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let cams = Listener::start(
        &gate,
        vec![camera("yard", CameraKind::AlarmInfoPlate, "entry")],
    )
    .await;
    let body = alarm_info(41, "粤B·D12345", 93, &jpeg(20_000, 3), &jpeg(1_500, 4));
    let (status, text) = cams
        .post("yard", "application/json", body.into_bytes())
        .await;
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"Response_AlarmInfoPlate": {"info": "ok"}})
    );
    let events = events_with(&gate, "e1b5bd45-8a5e2c6c:41").await;
    let found = camera_events(&events, "e1b5bd45-8a5e2c6c:41");
    assert_eq!(found.len(), 1, "{events:#?}");
    match &found[0].body {
        EventBody::PlateIgnored { camera, why } => {
            assert_eq!(why, "no_vehicle_within_window");
            assert_eq!(camera.raw_plate, "粤B·D12345");
            assert_eq!(camera.photos.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    gate.lane("entry").assert_never_opened();
    cams.stop().await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_with_several_channels_reaches_the_lane_its_channel_names() {
    let gate = spawn_gate(&[LaneSpec::entry("in"), LaneSpec::exit("out")]).await;
    let mut both = camera("pair", CameraKind::Webhook, "in");
    both.channels.insert("2".into(), "out".into());
    let cams = Listener::start(&gate, vec![both]).await;
    let (status, text) = cams
        .post(
            "pair",
            "application/json",
            webhook("w-2", PLATE, Some(2), &jpeg(800, 5)).into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["outcome"], "ignored", "{text}");
    let events = events_with(&gate, "w-2").await;
    let found = camera_events(&events, "w-2");
    assert_eq!(found.len(), 1, "{events:#?}");
    assert_eq!(found[0].lane, "out");
    cams.stop().await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_push_is_answered_200_again_and_its_photos_are_stored_once() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let cams = Listener::start(&gate, vec![camera("again", CameraKind::Webhook, "entry")]).await;
    let photo = jpeg(5_000, 6);
    for _ in 0..2 {
        let (status, text) = cams
            .post(
                "again",
                "application/json",
                webhook("dup-1", PLATE, None, &photo).into_bytes(),
            )
            .await;
        assert_eq!(status, 200, "{text}");
    }
    let photo_files = walk(&gate.config.gate.data_dir.join("photos"));
    assert_eq!(photo_files, 1, "one photo, stored once by its hash");
    cams.stop().await;
    gate.shutdown().await;
}

/// The lane de-duplicates on the camera's event id (issue 19, the lane's part): the second push
/// of one event is answered 200 and journals nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_id_journals_nothing_new() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let cams = Listener::start(&gate, vec![camera("dedupe", CameraKind::Webhook, "entry")]).await;
    let body = webhook("dup-2", PLATE, None, &jpeg(900, 7));
    let (status, _) = cams
        .post("dedupe", "application/json", body.clone().into_bytes())
        .await;
    assert_eq!(status, 200);
    let after_first = gate.last_seq().await;
    let (status, text) = cams
        .post("dedupe", "application/json", body.into_bytes())
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        gate.last_seq().await,
        after_first,
        "{:#?}",
        gate.events().await
    );
    assert_eq!(
        camera_events(&events_with(&gate, "dup-2").await, "dup-2").len(),
        1
    );
    cams.stop().await;
    gate.shutdown().await;
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        usize::from(e.path().extension().is_some_and(|x| x == "jpg"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_pushes_get_their_status_and_reason_and_journal_nothing() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let mut fenced = camera("fenced", CameraKind::Webhook, "entry");
    // The test connects from 127.0.0.1: not the camera's address.
    fenced.from = Some("127.0.0.2".parse().unwrap());
    let mut trusted = camera("trusted", CameraKind::Hikvision, "entry");
    trusted.from = Some("127.0.0.1".parse().unwrap());
    let cams = Listener::start(&gate, vec![fenced, trusted]).await;
    let before = gate.last_seq().await;

    let (status, text) = cams
        .post(
            "fenced",
            "application/json",
            webhook("f-1", PLATE, None, &jpeg(600, 8)).into_bytes(),
        )
        .await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("accepts pushes from 127.0.0.2 only (this one came from 127.0.0.1)"),
        "{text}"
    );

    let (status, text) = cams
        .post("nobody", "application/json", b"{}".to_vec())
        .await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no camera named \"nobody\""), "{text}");

    // A push cut off inside its scene picture (the camera lost the link mid-upload).
    let xml = hik_alert("t-1", PLATE, "blue", 97, 1);
    let (content_type, body) = hik_multipart(&xml, &[("detectionPicture", &jpeg(50_000, 9))]);
    let (status, text) = cams
        .post(
            "trusted",
            &content_type,
            body[..body.len() - 5_000].to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("bad push: the body is truncated"), "{text}");

    // A picture that is not a JPEG.
    let (content_type, body) = hik_multipart(&xml, &[("detectionPicture", b"GIF89a....")]);
    let (status, text) = cams.post("trusted", &content_type, body).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("is not a JPEG"), "{text}");

    assert_eq!(gate.last_seq().await, before, "{:#?}", gate.events().await);
    gate.lane("entry").assert_never_opened();
    cams.stop().await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_mb_push_is_refused_with_413_before_its_body_is_read() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let cams = Listener::start(&gate, vec![camera("big", CameraKind::Hikvision, "entry")]).await;
    let before = gate.last_seq().await;
    // Only the head is sent: the answer must come without the 10 MB.
    let mut socket = tokio::net::TcpStream::connect(cams.url.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(
            b"POST /camera/big HTTP/1.1\r\nHost: gate\r\n\
              Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10485760\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("push too large (10485760 bytes; the limit is 8388608 bytes"),
        "{answer}"
    );

    // A body just over the limit with no length announced (chunked) is refused too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..9).map(|_| Ok(vec![b'x'; 1024 * 1024])).collect();
    let response = cams
        .http
        .post(format!("{}/camera/big", cams.url))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(response) = response {
        // The client may instead see the connection closed while it still sends: also a refusal.
        assert_eq!(response.status().as_u16(), 413);
    }
    assert_eq!(gate.last_seq().await, before);
    cams.stop().await;
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_camera_is_journalled_offline_and_online_again_at_its_next_push() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let mut quiet = camera("quiet", CameraKind::AlarmInfoPlate, "entry");
    quiet.silent_after_s = 1;
    let cams = Listener::start(&gate, vec![quiet]).await;
    let device = |e: &JournalEvent, status: &str| {
        e.lane == "entry"
            && matches!(&e.body, EventBody::Device { device, status: s, .. }
                if device == "camera:quiet" && s == status)
    };
    let offline = gate
        .wait_event("camera offline", |e| device(e, "offline"))
        .await
        .seq;
    let metrics = gatehouse::metrics::encode_gate(|| {});
    assert!(
        metrics.contains("gatehouse_camera_online{gate=\"1\",camera=\"quiet\"} 0"),
        "{metrics}"
    );
    // The health report the centre gets says so too (its office raises a device alarm).
    let health = |gate: &TestGate| gate.handle().shared().cameras_of("entry");
    assert_eq!(
        health(&gate),
        vec![CameraHealth {
            name: "quiet".into(),
            online: false
        }]
    );
    // Its heartbeat brings it back.
    let (status, _) = cams
        .post(
            "quiet",
            "application/json",
            br#"{"heartbeat":{"countid":7,"serialno":"e1b5"}}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    let events = gate.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.seq > offline && device(e, "online")),
        "{events:#?}"
    );
    let metrics = gatehouse::metrics::encode_gate(|| {});
    assert!(
        metrics.contains("gatehouse_camera_online{gate=\"1\",camera=\"quiet\"} 1"),
        "{metrics}"
    );
    assert!(health(&gate)[0].online);
    assert!(
        metrics.contains(
            "gatehouse_camera_pushes_total{gate=\"1\",camera=\"quiet\",result=\"heartbeat\"} 1"
        ),
        "{metrics}"
    );
    cams.stop().await;
    gate.shutdown().await;
}

/// A free loopback port below Linux's ephemeral range (32768–60999). gate.toml must name the
/// camera listener's port before the controller binds it; a port from a `:0` bind, released
/// for it, could meanwhile be handed to any other test's `:0` listener in this process. (CI
/// saw the controller exit 1 once after its camera listener had answered; a port taken under
/// it is the likely cause, and its log is now in the failure message.) A port below the range
/// is never handed out that way.
fn port_outside_the_ephemeral_range() -> u16 {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    (start..32_000)
        .chain(20_000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 32000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatehouse_gate_run_serves_the_camera_listener_named_in_gate_toml() {
    let dir = tempfile::tempdir().unwrap();
    let port = port_outside_the_ephemeral_range();
    let config = dir.path().join("gate.toml");
    // The devices are absent (the lane retries them): the camera read is journalled anyway.
    std::fs::write(
        &config,
        format!(
            "[gate]\nid = 1\ndata_dir = \"{data}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [[lane]]\nid = \"entry\"\ndirection = \"entry\"\n\
             [lane.reader]\nport = \"/dev/null\"\n[lane.io]\nport = \"/dev/null\"\n\
             [camera_listener]\nlisten = \"127.0.0.1:{port}\"\n\
             [[camera]]\nname = \"gate-cam\"\nkind = \"alarm_info_plate\"\nlane = \"entry\"\n\
             from = \"127.0.0.1\"\n",
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["gate", "run", "--config"])
        .arg(&config)
        .env("GATEHOUSE_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("gate.log")).unwrap())
        .spawn()
        .expect("the gatehouse binary starts");
    let http = http_client();
    let body = alarm_info(7, "京A12345", 96, &jpeg(10_000, 1), &jpeg(900, 2));
    let url = format!("http://127.0.0.1:{port}/camera/gate-cam");
    let answer = wait_for("the camera listener to answer", || async {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .ok()?;
        Some((response.status().as_u16(), response.text().await.ok()?))
    })
    .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        answer,
        (
            200,
            r#"{"Response_AlarmInfoPlate":{"info":"ok"}}"#.to_string()
        )
    );
    assert!(
        status.success(),
        "{status:?}; its log:\n{}",
        std::fs::read_to_string(dir.path().join("gate.log")).unwrap_or_default()
    );
    let journal = gatehouse::gate::journal::Journal::open(
        &dir.path().join("data").join("journal.db"),
        1_000_000,
    )
    .await
    .unwrap();
    let events = journal.read_after(0, u32::MAX).await.unwrap();
    assert_eq!(
        camera_events(&events, "e1b5bd45-8a5e2c6c:7").len(),
        1,
        "{events:#?}"
    );
}
