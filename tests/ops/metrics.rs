//! `/metrics`, `/healthz` and `/readyz` on a real gate (lanes on pseudo-terminals) and a real
//! central server (SQLite), after real traffic and a real ingest of the gate's journal.

use std::net::SocketAddr;

use gatehouse::central::db::Db;
use gatehouse::central::state::AppState;
use gatehouse::gate::http::{GateView, router, serve};
use gatehouse::web::site as app;
use tokio_util::sync::CancellationToken;

use crate::gate_support::{GateOptions, LaneSpec, epc, permit, spawn_gate_with, vehicle_with_tag};
use crate::http::{get, sample};

async fn serve_on_port_zero(router: axum::Router, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, router, stop));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_and_central_metrics_count_decisions_devices_journal_lag_ingest_and_requests() {
    // Gate 41: a number no other test in this binary uses, since the registry is per process.
    let gate = spawn_gate_with(
        &[LaneSpec::entry("entry")],
        GateOptions {
            gate_id: 41,
            ..GateOptions::default()
        },
    )
    .await;
    gate.wait_ready().await;
    gate.seed(vehicle_with_tag(1, "京A12345", permit(1), &epc(1)))
        .await;
    gate.drive_through("entry", &epc(1)).await;
    let (_, denied) = gate.present("entry", &epc(99)).await;
    assert!(!denied.granted, "an unknown tag is denied");

    let stop = CancellationToken::new();
    let gate_addr = serve_on_port_zero(
        router(GateView::new(gate.handle(), &gate.config.gate.data_dir)),
        stop.clone(),
    )
    .await;
    assert_eq!(get(gate_addr, "/healthz").await.status, 200);
    let ready = get(gate_addr, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let scrape = get(gate_addr, "/metrics").await;
    assert_eq!(scrape.status, 200);
    let text = scrape.body;
    let lane = [("gate", "41"), ("lane", "entry")];
    let decisions = |reason: &str, outcome: &str| {
        sample(
            &text,
            "gatehouse_decisions_total",
            &[lane[0], lane[1], ("reason", reason), ("outcome", outcome)],
        )
    };
    assert_eq!(decisions("granted", "granted"), Some(1.0), "{text}");
    assert_eq!(decisions("denied_unknown_tag", "denied"), Some(1.0));
    assert_eq!(
        decisions("denied_expired", "denied"),
        Some(0.0),
        "every reason starts at 0"
    );
    assert_eq!(
        sample(&text, "gatehouse_decision_latency_seconds_count", &lane),
        Some(2.0)
    );
    let latency_sum = sample(&text, "gatehouse_decision_latency_seconds_sum", &lane).unwrap();
    assert!(
        latency_sum > 0.0 && latency_sum < 0.01,
        "two decisions take microseconds, not {latency_sum} s"
    );
    // The granted tag opened: its decision and commit, from the report's decoding, counted
    // once (the denied one sent no OPEN).
    assert_eq!(
        sample(&text, "gatehouse_tag_to_open_seconds_count", &lane),
        Some(1.0),
        "{text}"
    );
    let to_open = sample(&text, "gatehouse_tag_to_open_seconds_sum", &lane).unwrap();
    assert!(
        to_open > 0.0 && to_open < 1.0,
        "one tag to OPEN inside the controller takes well under a second, not {to_open} s"
    );
    for device in ["reader", "io"] {
        assert_eq!(
            sample(
                &text,
                "gatehouse_device_online",
                &[lane[0], lane[1], ("device", device)]
            ),
            Some(1.0),
            "{device} online"
        );
    }
    let stats = gate.handle().journal_stats().await;
    assert!(stats.pending > 2, "the journal holds the traffic's events");
    let fill = sample(&text, "gatehouse_journal_fill_ratio", &[lane[0]]).unwrap();
    assert!(
        (fill - stats.stored as f64 / stats.capacity as f64).abs() < 1e-9 && fill > 0.0,
        "fill {fill}"
    );
    assert_eq!(
        sample(&text, "gatehouse_sync_lag_events", &[lane[0]]),
        Some(stats.pending as f64),
        "nothing is acknowledged yet"
    );

    // The centre ingests the journal; the gate, acknowledged, has no lag left.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("central.db"))
        .await
        .unwrap();
    let state = AppState::new(db.clone());
    let events = gate.handle().journal().read_after(0, 10_000).await.unwrap();
    let outcome = gatehouse::central::ingest::accept(&state, 41, &events)
        .await
        .unwrap();
    assert_eq!(outcome.stored, events.len() as u64);
    gate.handle()
        .journal()
        .acknowledge(outcome.highest_contiguous)
        .await
        .unwrap();
    let text = get(gate_addr, "/metrics").await.body;
    assert_eq!(
        sample(&text, "gatehouse_sync_lag_events", &[lane[0]]),
        Some(0.0)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let central = listener.local_addr().unwrap();
    let central_stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { central_stop.cancelled().await })
        .await
    });
    assert_eq!(get(central, "/healthz").await.status, 200);
    assert_eq!(get(central, "/readyz").await.status, 200);
    assert_eq!(
        get(central, "/api/v1/persons").await.status,
        401,
        "the API still needs a sign-in"
    );
    let text = get(central, "/metrics").await.body;
    assert_eq!(
        sample(&text, "gatehouse_ingest_events_total", &[("gate", "41")]),
        Some(events.len() as f64),
        "{text}"
    );
    for (route, status) in [("/healthz", "200"), ("/api/v1/persons", "401")] {
        let count = sample(
            &text,
            "gatehouse_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", route), ("status", status)],
        );
        assert!(count >= Some(1.0), "{route} timed: {text}");
    }
    stop.cancel();
    gate.shutdown().await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_central_health_endpoints_answer_on_every_database_without_a_sign_in() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    for t in crate::harness::each_database().await {
        let app = crate::harness::TestApp::spawn(t).await;
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let (status, _, body) = app.send(get("/healthz")).await;
        assert_eq!(status, StatusCode::OK, "{:?}: {body}", app.kind);
        let (status, _, body) = app.send(get("/readyz")).await;
        assert_eq!(status, StatusCode::OK, "{:?}: {body}", app.kind);
        let (status, headers, body) = app.send(get("/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[axum::http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let text = body.as_str().unwrap();
        assert!(
            sample(
                text,
                "gatehouse_http_request_duration_seconds_count",
                &[("route", "/readyz"), ("status", "200")]
            ) >= Some(1.0),
            "{text}"
        );
    }
}
