//! The lane shows and speaks: the signal light on the I/O module's light coil, the RS-485 LED
//! screen (its simulator on a real pty decoding the controller's GBK frames) and the lane
//! display page's event stream from the gate's own listener — all with no centre configured.

use std::sync::Arc;
use std::time::Duration;

use firmware_protocols::lane_io::LaneCoil;
use firmware_protocols::led::{Command, encode_gbk};
use gatehouse::serial::pty::PtyDevice;
use gatehouse::sim::barrier::ArmState;
use gatehouse::sim::led_screen::LedScreen;
use tokio::time::Instant;

use crate::support::{
    DEADLINE, GateOptions, LaneSpec, epc, permit, spawn_gate, spawn_gate_with, vehicle_with_tag,
    wait_for,
};

/// Every write of the light coil so far: (value, when).
fn light_writes(lane: &crate::support::TestLane) -> Vec<(bool, Instant)> {
    lane.io
        .coil_log()
        .into_iter()
        .filter(|c| c.coil == Some(LaneCoil::Light))
        .filter_map(|c| c.on.map(|on| (on, c.at)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_turns_the_light_green_and_it_is_red_again_once_the_arm_is_down() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;
    let lane = gate.lane("entry");
    // The light is set red (coil off: it is wired as "on means green") once the link is up.
    wait_for("the light set red at start", || async {
        (light_writes(lane).first().map(|w| w.0) == Some(false)).then_some(())
    })
    .await;

    let (_, decision) = gate.present("entry", &epc(1)).await;
    assert!(decision.granted);
    wait_for("the light green", || async {
        lane.io.coil(LaneCoil::Light).then_some(())
    })
    .await;
    lane.wait_arm(ArmState::Open).await;
    assert!(lane.io.coil(LaneCoil::Light), "green while the arm is up");
    lane.tag_out_of_field(&epc(1));
    lane.set_safety(true);
    gate.wait_lane_state("entry", "passing").await;
    lane.set_presence(false);
    lane.wait_polls(2).await;
    lane.set_safety(false);
    lane.wait_arm(ArmState::Closed).await;
    gate.wait_lane_state("entry", "idle").await;
    assert!(!lane.io.coil(LaneCoil::Light), "red once the arm is down");

    // Written only on change: red, green, red — not at every poll.
    lane.wait_polls(20).await;
    let writes = light_writes(lane);
    let values: Vec<bool> = writes.iter().map(|w| w.0).collect();
    assert_eq!(values, [false, true, false], "{writes:?}");
    // The barrier first: the green came after the OPEN was on the bus.
    let open = lane.opens()[0].at;
    assert!(writes[1].1 >= open, "the light was written before the OPEN");
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_with_the_light_disabled_never_writes_the_light_coil() {
    let options = GateOptions {
        lane_extra: "[lane.light]\nenabled = false\n",
        ..GateOptions::default()
    };
    let gate = spawn_gate_with(&[LaneSpec::entry("entry")], options).await;
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;
    gate.drive_through("entry", &epc(1)).await;
    assert!(light_writes(gate.lane("entry")).is_empty());
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_led_screen_shows_and_speaks_the_zh_templates_in_gbk_for_a_grant_and_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("entry-screen");
    let device = PtyDevice::create(Some(&link)).unwrap();
    let screen = LedScreen::default();
    let serve = tokio::spawn({
        let screen = screen.clone();
        async move {
            let _ = screen.serve(device, |_| {}).await;
        }
    });
    let extra = format!("[lane.screen]\nport = \"{}\"\n", link.display());
    let options = GateOptions {
        lane_extra: Box::leak(extra.into_boxed_str()),
        ..GateOptions::default()
    };
    let gate = spawn_gate_with(&[LaneSpec::entry("entry")], options).await;
    assert!(gate.config.central.is_none());
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;

    within(screen.wait_until(|s| !s.connects.is_empty()))
        .await
        .expect("the gate connects to the screen");
    gate.drive_through("entry", &epc(1)).await;
    let s = within(screen.wait_until(|s| !s.spoken.is_empty()))
        .await
        .expect("the grant is spoken");
    assert_eq!(s.connects, ["159753"]);
    assert_eq!(s.lines, ["京A12345", "欢迎光临", "", ""]);
    assert_eq!(s.spoken, ["京A12345，欢迎光临"]);
    // The bytes on the wire are GBK: 欢迎光临 as the screen's font table wants it.
    let line1 = s
        .frames
        .iter()
        .find(|f| f.command == Command::Text62 && f.data().first() == Some(&1))
        .unwrap();
    assert_eq!(&line1.data()[1..], &encode_gbk("欢迎光临", 254).bytes[..]);
    assert_eq!(
        line1.data()[1..],
        [0xBB, 0xB6, 0xD3, 0xAD, 0xB9, 0xE2, 0xC1, 0xD9]
    );

    // An unknown tag: refused, told plainly, nothing about why beyond "not registered".
    let (_, refused) = gate.present("entry", &epc(9)).await;
    assert!(!refused.granted);
    let s = within(screen.wait_until(|s| s.spoken.len() == 2))
        .await
        .expect("the refusal is spoken");
    assert_eq!(s.lines, ["禁止通行", "未登记车辆", "", ""]);
    assert_eq!(s.spoken[1], "禁止通行，请联系门卫");
    assert_eq!(s.dropped_bytes, 0);
    gate.back_away("entry", &epc(9)).await;
    gate.shutdown().await;
    serve.abort();
}

/// Fails after [`DEADLINE`].
async fn within<T>(
    f: impl std::future::Future<Output = T>,
) -> Result<T, tokio::time::error::Elapsed> {
    tokio::time::timeout(DEADLINE, f).await
}

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

/// Serves the gate's local router (what `gatehouse gate run` serves) on a free port.
async fn serve_local(
    gate: &crate::support::TestGate,
    config: &gatehouse::gate::config::GateConfig,
) -> (String, tokio::task::JoinHandle<()>) {
    let router = gatehouse::gate::http::local_router(gate.shared_handle(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, task)
}

/// Reads the stream until its text contains `needle`; returns everything read.
async fn read_until(response: &mut reqwest::Response, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_stream_delivers_a_decision_within_a_second_with_no_centre() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    assert!(gate.config.central.is_none(), "no centre anywhere");
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;
    let (url, task) = serve_local(&gate, &gate.config).await;
    let http = http_client();
    let mut events = http
        .get(format!("{url}/display/entry/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut seen = String::new();
    tokio::time::timeout(DEADLINE, read_until(&mut events, &mut seen, "event: hello"))
        .await
        .expect("the stream says hello");

    let after = gate.last_seq().await;
    gate.arrive("entry").await;
    gate.lane("entry").tag_in_field(&epc(1));
    gate.wait_decision("entry", after).await;
    let decided = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(1),
        read_until(&mut events, &mut seen, "event: announce"),
    )
    .await
    .expect("the decision reaches the page within a second");
    tokio::time::timeout(DEADLINE, read_until(&mut events, &mut seen, "\n\n"))
        .await
        .unwrap();
    let data = seen
        .split("event: announce")
        .nth(1)
        .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(shown["plate"], "京A12345");
    assert_eq!(shown["colour"], "green");
    assert_eq!(shown["outcome"], "granted");
    assert_eq!(shown["voice"], "京A12345，欢迎光临");
    assert_eq!(shown["replay"], false);
    assert!(decided.elapsed() < Duration::from_secs(1));
    drop(events);
    task.abort();
    gate.shutdown_lenient().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_page_is_self_contained_and_a_configured_token_is_required() {
    let gate = spawn_gate(&[LaneSpec::entry("entry")]).await;
    let (url, task) = serve_local(&gate, &gate.config).await;
    let http = http_client();
    let page = http
        .get(format!("{url}/display/entry"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"zh-CN\"") && html.contains("点击启用语音"));
    assert!(html.contains("zh-CN") && html.contains("speechSynthesis"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no outside assets"
    );
    let missing = http
        .get(format!("{url}/display/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("没有车道"));
    task.abort();

    let mut config = gate.config.clone();
    let with_token = gatehouse::gate::config::GateConfig::parse(
        "[gate]\nid = 1\ndata_dir = \"x\"\n[display]\ntoken = \"lane-screen-7f3a\"\n",
    )
    .unwrap();
    config.display = with_token.display;
    let (url, task) = serve_local(&gate, &config).await;
    for path in ["/display/entry", "/display/entry/events", "/display"] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = http
            .get(format!("{url}{path}?token=wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = http
        .get(format!("{url}/display/entry?token=lane-screen-7f3a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("/display/entry/events?token=lane-screen-7f3a"),
        "the page's stream carries the token"
    );
    task.abort();
    gate.shutdown_lenient().await;
}
