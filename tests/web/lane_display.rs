//! The lane display page in a real headless Chromium, served by the gate's own listener
//! (`gate::http::local_router`, what `gatehouse gate run` serves) with no centre: a tap unlocks
//! the voice, a decision arrives over server-sent events, the plate and verdict appear in the
//! right colour, the page speaks in zh-CN (observed by wrapping `speechSynthesis.speak` in the
//! page), screenshots are written in landscape (1280×800) and portrait (800×1280), and the page
//! reconnects by itself when the gate restarts on the same address.

use crate::support::browser;
use crate::support::gate::{epc, permit, vehicle_with_tag};
use crate::support::site::spawn_web_gate;

/// Records every utterance the page asks for, instead of sounding it (headless has no audio).
const RECORD_SPEECH: &str = "window.__spoken = []; \
    window.speechSynthesis.speak = function (u) { window.__spoken.push({text: u.text, lang: u.lang}); }; \
    window.speechSynthesis.cancel = function () {}; return true;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_display_page_shows_and_speaks_a_decision_from_the_gate_with_no_centre() {
    let Some(b) = browser::open("lane display page").await else {
        return;
    };
    let gate = spawn_web_gate().await;
    assert!(gate.config.central.is_none());
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;
    let router = gatehouse::gate::http::local_router(gate.shared_handle(), &gate.config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(gatehouse::gate::http::serve(listener, router, stop.clone()));

    b.set_viewport(1280, 800).await;
    b.goto(&format!("{url}/display/entry")).await;
    b.wait_live().await;
    b.wait_text("#unlock", "点击启用语音").await;
    b.screenshot("lane-display-idle-landscape").await;
    b.js(RECORD_SPEECH).await;
    b.find("#unlock").await.click().await.unwrap();
    b.wait_for("the overlay gone", || async {
        (b.js("return document.getElementById('unlock').classList.contains('gone')")
            .await
            == true)
            .then_some(())
    })
    .await;

    // A granted read at the lane.
    let (_, decision) = gate.present("entry", &epc(1)).await;
    assert!(decision.granted);
    b.wait_text("#plate", "京A12345").await;
    b.wait_text("#verdict", "欢迎光临").await;
    let class = b
        .js("return document.getElementById('screen').className")
        .await;
    assert_eq!(class, "v-green");
    let spoken = b
        .wait_for("the page to speak the grant", || async {
            let s = b.js("return window.__spoken").await;
            s.as_array()
                .unwrap()
                .iter()
                .any(|u| u["text"] == "京A12345，欢迎光临")
                .then_some(s)
        })
        .await;
    for u in spoken.as_array().unwrap() {
        assert_eq!(u["lang"], "zh-CN", "{spoken}");
    }
    let (scroll, width, offenders) = b.horizontal_overflow().await;
    assert!(scroll <= width, "sideways scroll: {offenders:?}");
    b.screenshot("lane-display-granted-landscape").await;
    b.set_viewport(800, 1280).await;
    let (scroll, width, offenders) = b.horizontal_overflow().await;
    assert!(
        scroll <= width,
        "sideways scroll in portrait: {offenders:?}"
    );
    b.screenshot("lane-display-granted-portrait").await;

    // The vehicle leaves; an unknown tag is refused: red, told plainly, spoken.
    gate.lane("entry").tag_out_of_field(&epc(1));
    gate.lane("entry").set_presence(false);
    gate.wait_lane_state("entry", "idle").await;
    let (_, refused) = gate.present("entry", &epc(9)).await;
    assert!(!refused.granted);
    b.wait_text("#verdict", "禁止通行").await;
    b.wait_text("#reason", "未登记车辆").await;
    let class = b
        .js("return document.getElementById('screen').className")
        .await;
    assert_eq!(
        class, "v-red no-plate",
        "red, and no empty plate box for a tag without a plate"
    );
    b.wait_for("the page to speak the refusal", || async {
        let s = b.js("return window.__spoken").await;
        s.as_array()
            .unwrap()
            .iter()
            .any(|u| u["text"] == "禁止通行，请联系门卫")
            .then_some(())
    })
    .await;
    b.screenshot("lane-display-refused-portrait").await;
    b.set_viewport(1280, 800).await;
    b.screenshot("lane-display-refused-landscape").await;

    // The gate restarts (a new process on the same address): the page notices, reconnects by
    // itself and shows the new process's decisions.
    stop.cancel();
    gate.shutdown_lenient().await;
    server.await.unwrap().unwrap();
    b.wait_for("the page to notice the gate is gone", || async {
        (b.js("return document.body.dataset.live || ''").await != "connected").then_some(())
    })
    .await;
    let gate = spawn_web_gate().await;
    gate.seed(vehicle_with_tag(2, "沪B54321", permit(2), &epc(2)))
        .await;
    let router = gatehouse::gate::http::local_router(gate.shared_handle(), &gate.config);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(gatehouse::gate::http::serve(listener, router, stop.clone()));
    b.wait_live().await;
    let (_, decision) = gate.present("entry", &epc(2)).await;
    assert!(decision.granted);
    b.wait_text("#plate", "沪B54321").await;

    b.close().await;
    stop.cancel();
    gate.shutdown_lenient().await;
    let _ = server.await;
}
