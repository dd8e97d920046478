//! Data to the gates: snapshot, deltas pushed by long poll, revocation and blacklist reaching an
//! online gate, and a second central instance on the same PostgreSQL.

use std::time::Duration;

use gatehouse::central::live::LiveMessage;
use gatehouse::domain::{Epc, PermitId, Plate, PlateColour, PlateIdentity, UtcMinute};
use gatehouse::gate::index::StatusRef;
use gatehouse::sync::client::Pulled;
use tokio::time::Instant;

use crate::support::gate::{LaneSpec, epc, hex, spawn_gate, wait_for};
use crate::support::harness::each_database;
use crate::support::{Central, Office, Syncing, wait_for_tag};

/// The GB 50396 bound the acceptance allows a change to reach an online gate.
const REACH: Duration = Duration::from_secs(5);

async fn wait_until_revoked(gate: &crate::support::gate::TestGate, permit: i64) -> Duration {
    let start = Instant::now();
    loop {
        let index = gate.handle().shared().index();
        if let Some(p) = index.permit(PermitId(permit as u32))
            && matches!(p.status(), StatusRef::Revoked(_))
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < REACH,
            "the revocation did not reach the gate within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Permits for holders 1 to `n`, each with a car 京A1234n and the tag `epc(n)`.
async fn issue_holders(central: &Central, n: u8) {
    for n in 1..=n {
        central
            .issue(&format!("持证人{n}"), &format!("京A1234{n}"), &hex(&epc(n)))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permit_revoked_and_a_plate_blacklisted_through_the_api_are_denied_at_an_online_gate() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let (_, permit) = central.issue("张三", "京A12345", &hex(&epc(1))).await;
        central.issue("李四", "京B23456", &hex(&epc(2))).await;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let mut sync = Syncing::connect(&central, 1).await;
        sync.run(&gate);
        wait_for_tag(&gate, &epc(2)).await;

        // Granted from the synced copy; then revoked centrally and refused at the lane.
        gate.drive_through("in", &epc(1)).await;
        central.revoke(permit).await;
        let took = wait_until_revoked(&gate, permit).await;
        println!(
            "revocation reached the gate in {} ms ({:?})",
            took.as_millis(),
            central.app.kind
        );
        let (_, decision) = gate.present("in", &epc(1)).await;
        assert_eq!(
            (decision.granted, decision.reason.as_str()),
            (false, "denied_revoked")
        );
        gate.back_away("in", &epc(1)).await;

        // A plate blacklisted centrally is refused, tag and all.
        let plate = PlateIdentity {
            plate: Plate::parse("京B23456").unwrap(),
            colour: PlateColour::Blue,
        };
        central.blacklist_plate("京B23456").await;
        let start = Instant::now();
        wait_for("the blacklist entry to reach the gate", || async {
            let now = UtcMinute::from_datetime(chrono::Utc::now());
            let index = gate.handle().shared().index();
            index
                .blacklist_for_plate(plate, now)
                .next()
                .is_some()
                .then_some(())
        })
        .await;
        assert!(start.elapsed() < REACH);
        let (_, decision) = gate.present("in", &epc(2)).await;
        assert_eq!(
            (decision.granted, decision.reason.as_str()),
            (false, "denied_blacklisted")
        );
        gate.lane("in").assert_no_close_over_vehicle();
        sync.stop().await;
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_gate_takes_a_snapshot_then_only_deltas_and_an_unchanged_poll_returns_nothing() {
    for t in each_database().await {
        let central = Central::start(t).await;
        issue_holders(&central, 5).await;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let sync = Syncing::connect(&central, 1).await;
        let h = gate.handle();
        let first = sync.client.pull_once(h, Duration::ZERO).await.unwrap();
        let Pulled::Snapshot { version, rows } = first else {
            panic!("a new gate must start from a snapshot, got {first:?}");
        };
        // 5 permits, 5 vehicles, 5 tags.
        assert_eq!(rows, 15);
        assert_eq!(h.shared().index().permit_count(), 5);
        assert_eq!(
            sync.client
                .pull_once(h, Duration::from_millis(200))
                .await
                .unwrap(),
            Pulled::Unchanged
        );
        let (_, permit) = central.issue("新人", "京C34567", &hex(&epc(9))).await;
        let Pulled::Delta { version: v2 } = sync.client.pull_once(h, Duration::ZERO).await.unwrap()
        else {
            panic!("expected a delta");
        };
        assert!(v2 > version);
        assert_eq!(h.shared().store.data_version().await.unwrap(), v2);
        let index = h.shared().index();
        assert!(index.permit(PermitId(permit as u32)).is_some());
        assert!(
            index
                .credential(&Epc::from_bytes(&epc(9)).unwrap())
                .is_some()
        );
        drop(index);
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_made_through_one_central_instance_is_denied_at_a_gate_connected_to_another() {
    let Some(url) = crate::support::harness::postgres_url() else {
        return;
    };
    let t = crate::support::harness::postgres(&url).await;
    let a = Central::start(t).await;
    // Instance B: its own pool, app state, live hub and mutual-TLS sync port on the same
    // database.
    let (_state_b, server_b) = a.second_instance().await;
    let (_, permit) = a.issue("张三", "京A12345", &hex(&epc(1))).await;
    // A browser on instance A listens; the gate talks only to instance B.
    let mut live_a = a.app.state.live.subscribe();
    let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
    let client = std::sync::Arc::new(a.client(1, &server_b.url()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runner = tokio::spawn(client.clone().run(gate.shared_handle(), shutdown.clone()));
    wait_for_tag(&gate, &epc(1)).await;
    gate.drive_through("in", &epc(1)).await;

    // What the gate uploaded through B, and its health, reach A's live pages.
    let (mut passage_seen, mut status_seen) = (false, false);
    let deadline = Instant::now() + REACH;
    while !(passage_seen && status_seen) {
        let message = tokio::time::timeout_at(deadline, live_a.recv())
            .await
            .expect("instance A's live pages hear of gate 1's passage and health")
            .unwrap();
        match &*message {
            LiveMessage::Events { gate_id: 1, events } => {
                passage_seen |= events
                    .iter()
                    .any(|e| matches!(e.body, gatehouse::wire::journal::EventBody::Passage { .. }));
            }
            LiveMessage::GateStatus { gate_id: 1 } => status_seen = true,
            _ => {}
        }
    }

    a.revoke(permit).await;
    let took = wait_until_revoked(&gate, permit).await;
    println!(
        "revocation through instance A reached a gate on instance B in {} ms",
        took.as_millis()
    );
    let (_, decision) = gate.present("in", &epc(1)).await;
    assert_eq!(
        (decision.granted, decision.reason.as_str()),
        (false, "denied_revoked")
    );
    shutdown.cancel();
    runner.await.unwrap();
    server_b.shutdown().await;
    gate.shutdown().await;
}

/// The centre's snapshot as bytes, fetched as gate 1.
async fn snapshot_bytes(central: &Central) -> String {
    let body = central
        .gate_http(1)
        .get(format!("{}/sync/v1/snapshot", central.sync.url()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Feeds `body` to the gate in chunks of 7 bytes, as a slow network would.
async fn feed(
    gate: &gatehouse::gate::runtime::GateHandle,
    body: &[u8],
) -> Result<gatehouse::sync::client::AppliedSnapshot, gatehouse::sync::client::LinkError> {
    let chunks: Vec<Result<Vec<u8>, std::convert::Infallible>> =
        body.chunks(7).map(|c| Ok(c.to_vec())).collect();
    gatehouse::sync::client::apply_snapshot_stream(gate, futures::stream::iter(chunks)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_miscounted_or_malformed_snapshot_changes_nothing_at_the_gate() {
    for t in each_database().await {
        let central = Central::start(t).await;
        issue_holders(&central, 3).await;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let sync = Syncing::connect(&central, 1).await;
        let h = gate.handle();
        sync.client.pull_once(h, Duration::ZERO).await.unwrap();
        let version = h.shared().store.data_version().await.unwrap();

        // The centre moves on: its snapshot now holds a fourth permit, vehicle and tag.
        let (vehicle, permit) = central.issue("新人", "京C34567", &hex(&epc(9))).await;
        let good = snapshot_bytes(&central).await;
        let end = r#"{"t":"end","d":{"rows":12}}"#;
        assert!(good.ends_with(&format!("{end}\n")), "{good}");
        let row = format!(r#"[{vehicle},"京C34567","blue",[{permit}]]"#);
        assert!(good.contains(&row), "{good}");
        let broken = [
            (
                "without its end line",
                good.replace(&format!("{end}\n"), ""),
            ),
            (
                "cut off mid-line",
                good.replace(&format!("{end}\n"), r#"{"t":"end","d":{"ro"#),
            ),
            (
                "with an end line counting other rows",
                good.replace(end, r#"{"t":"end","d":{"rows":13}}"#),
            ),
            (
                "with a row missing a field",
                good.replace(&row, &format!(r#"[{vehicle},"京C34567",[{permit}]]"#)),
            ),
            (
                "with an empty plate",
                good.replace(&row, &format!(r#"[{vehicle},"","blue",[{permit}]]"#)),
            ),
            (
                "with a vehicle holding a permit the snapshot lacks",
                good.replace(&row, &format!(r#"[{vehicle},"京C34567","blue",[999999]]"#)),
            ),
            (
                "with data after its end",
                format!("{good}{}\n", r#"{"t":"locks","d":[]}"#),
            ),
        ];
        for (what, body) in broken {
            let refused = feed(h, body.as_bytes()).await;
            assert!(refused.is_err(), "a snapshot {what} was applied");
            println!("a snapshot {what}: {}", refused.unwrap_err());
            assert_eq!(
                h.shared().store.data_version().await.unwrap(),
                version,
                "a snapshot {what} moved the data version"
            );
            assert_eq!(
                h.shared().store.counts().await.unwrap(),
                (3, 3, 3),
                "{what}"
            );
            let index = h.shared().index();
            assert_eq!(index.permit_count(), 3, "{what}");
            assert_eq!(index.data_version(), version, "{what}");
            assert!(index.permit(PermitId(permit as u32)).is_none(), "{what}");
        }

        // The whole stream, in the same small chunks, is applied.
        let applied = feed(h, good.as_bytes()).await.unwrap();
        assert_eq!(applied.rows, 12);
        assert!(applied.version > version);
        assert_eq!(h.shared().store.counts().await.unwrap(), (4, 4, 4));
        let index = h.shared().index();
        assert_eq!(index.data_version(), applied.version);
        assert!(index.permit(PermitId(permit as u32)).is_some());
        assert!(
            index
                .credential(&Epc::from_bytes(&epc(9)).unwrap())
                .is_some()
        );
        drop(index);
        gate.shutdown().await;
    }
}
