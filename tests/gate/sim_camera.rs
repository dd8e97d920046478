//! `gatehouse sim camera` and the camera simulator's posts over real HTTP: a small listener here
//! records what arrives at `/camera/<name>` (the gate's camera URL), so the test sees the bytes a
//! gate's listener would get. Parsing them back is the camera drivers' tests' business.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use gatehouse::domain::{Direction, PlateColour};
use gatehouse::sim::camera::{self, CameraKind, PlateShot, ShotImages};

/// One request the listener got: camera name, content type, body.
type Got = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A listener that records every push and answers `status`.
async fn listener(status: StatusCode) -> (SocketAddr, Got) {
    let got: Got = Arc::default();
    let app = axum::Router::new()
        .route(
            "/camera/{name}",
            post(
                move |State(got): State<Got>,
                      Path(name): Path<String>,
                      headers: HeaderMap,
                      body: axum::body::Bytes| async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    got.lock().unwrap().push((name, ct, body.to_vec()));
                    (status, r#"{"Response_AlarmInfoPlate":{"info":"ok"}}"#)
                },
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(got.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (addr, got)
}

#[tokio::test]
async fn a_hikvision_push_arrives_whole_at_the_cameras_url_with_its_boundary() {
    let (addr, got) = listener(StatusCode::OK).await;
    let shot = PlateShot {
        plate: "沪B8AB23".into(),
        colour: PlateColour::Yellow,
        confidence: 91,
        event_id: 7,
        channel: 2,
        direction: Some(Direction::Exit),
        at: chrono::Utc::now(),
    };
    let images = ShotImages::draw(&shot, "north-exit", 200 * 1024).unwrap();
    let payload = camera::payload(CameraKind::Hikvision, &shot, &images);
    let answer = camera::post(
        &camera::client(Duration::from_secs(10)),
        &camera::camera_url(&format!("http://{addr}"), "north-exit"),
        &payload,
    )
    .await
    .unwrap();
    assert!(answer.contains("ok"));
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (name, content_type, body) = &got[0];
    assert_eq!(name, "north-exit");
    assert_eq!(content_type, "multipart/form-data; boundary=MIME_boundary");
    assert_eq!(body, &payload.body);
    assert!(
        body.len() > 150 * 1024,
        "a photo of about 200 KB: {}",
        body.len()
    );
    let text = String::from_utf8_lossy(body);
    assert!(text.contains("<licensePlate>沪B8AB23</licensePlate>"));
    assert!(text.contains("<plateColor>yellow</plateColor>"));
    assert!(text.contains("<direction>reverse</direction>"));
}

#[tokio::test]
async fn a_gate_refusing_a_push_is_an_error_naming_the_status() {
    let (addr, _got) = listener(StatusCode::SERVICE_UNAVAILABLE).await;
    let shot = PlateShot {
        plate: "京A12345".into(),
        colour: PlateColour::Blue,
        confidence: 95,
        event_id: 1,
        channel: 1,
        direction: None,
        at: chrono::Utc::now(),
    };
    let images = ShotImages::draw(&shot, "cam", 4096).unwrap();
    let payload = camera::payload(CameraKind::AlarmInfoPlate, &shot, &images);
    let err = camera::post(
        &camera::client(Duration::from_secs(10)),
        &camera::camera_url(&format!("http://{addr}"), "cam"),
        &payload,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_camera_posts_count_reads_each_a_new_event_with_base64_jpegs() {
    let (addr, got) = listener(StatusCode::OK).await;
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["sim", "camera", "--gate"])
        .arg(format!("http://{addr}"))
        .args([
            "--camera",
            "south-both",
            "--kind",
            "alarm_info_plate",
            "--plate",
            "粤BD12345",
            "--colour",
            "green",
            "--confidence",
            "72",
            "--count",
            "3",
            "--rate",
            "20",
            "--scene-kb",
            "16",
        ])
        .stdout(std::process::Stdio::null())
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), status)
        .await
        .expect("the command ends")
        .unwrap();
    assert!(status.success());
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 3);
    let mut ids = Vec::new();
    for (name, content_type, body) in got.iter() {
        assert_eq!(name, "south-both");
        assert_eq!(content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        let r = &v["AlarmInfoPlate"]["result"]["PlateResult"];
        assert_eq!(r["license"], "粤BD12345");
        assert_eq!(r["colorType"], 5);
        assert_eq!(r["confidence"], 72);
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(r["imageFragmentFile"].as_str().unwrap())
            .unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]));
        ids.push(r["plateid"].as_u64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "each read is a new event: {ids:?}");
}

#[tokio::test]
async fn sim_camera_refuses_an_unknown_kind_and_colour() {
    for (kind, colour, refused) in [
        ("webhook", "blue", "webhook"),
        ("hikvision", "purple", "purple"),
    ] {
        let args = [
            "sim",
            "camera",
            "--gate",
            "http://127.0.0.1:9",
            "--camera",
            "c",
            "--plate",
            "京A12345",
            "--kind",
            kind,
            "--colour",
            colour,
        ];
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(refused), "{stderr}");
    }
}

/// What the simulator sends is what the gate's drivers read: both kinds, field by field, with
/// the photos byte for byte (the simulator is only worth its name if a gate accepts it).
#[test]
fn the_gates_drivers_read_the_simulators_pushes_back_field_by_field() {
    use gatehouse::gate::camera::{CameraMessage, parse};
    use gatehouse::gate::config::CameraKind as GateKind;
    use gatehouse::wire::journal::PhotoKind;

    for (sim_kind, gate_kind, event_id) in [
        (CameraKind::Hikvision, GateKind::Hikvision, 7_u64),
        (CameraKind::AlarmInfoPlate, GateKind::AlarmInfoPlate, 8),
    ] {
        let shot = PlateShot {
            plate: "粤B·D12345".into(),
            colour: PlateColour::Green,
            confidence: 88,
            event_id,
            channel: 2,
            direction: Some(Direction::Entry),
            at: chrono::Utc::now(),
        };
        let images = ShotImages::draw(&shot, "south", 20 * 1024).unwrap();
        let payload = camera::payload(sim_kind, &shot, &images);
        let message = parse(gate_kind, Some(&payload.content_type), &payload.body)
            .unwrap_or_else(|e| panic!("{sim_kind:?}: {e}"));
        let CameraMessage::Read(push) = message else {
            panic!("{sim_kind:?}: a heartbeat, not a read");
        };
        assert_eq!(push.plate_text, "粤B·D12345", "{sim_kind:?}");
        assert_eq!(push.colour, Some(PlateColour::Green), "{sim_kind:?}");
        assert_eq!(push.confidence, 88, "{sim_kind:?}");
        assert_eq!(push.channel, Some(2), "{sim_kind:?}");
        assert!(
            push.event_id.contains(&event_id.to_string()),
            "{sim_kind:?}: {}",
            push.event_id
        );
        let photo = |kind| {
            push.images
                .iter()
                .find(|i| i.kind == kind)
                .map(|i| i.jpeg.to_vec())
        };
        assert_eq!(
            photo(PhotoKind::Plate),
            Some(images.plate.clone()),
            "{sim_kind:?}"
        );
        assert_eq!(
            photo(PhotoKind::Scene),
            Some(images.scene.clone()),
            "{sim_kind:?}"
        );
    }
}
