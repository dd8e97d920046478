//! The fleet load test at CI size (issue 22): 50 simulated gates, each with its own certificate
//! and mutual-TLS connections, and 10 consoles against real `gatehouse server run` instances —
//! two on one PostgreSQL database when `DATABASE_URL` is set, else one on SQLite — for 60 s,
//! through the same library code as `gatehouse sim fleet`. It holds the correctness the
//! figures rest on: every event a gate made is stored exactly once, every gate got every
//! revocation, every console was shown its gates' vehicles, no upload lost.
//!
//! To see it fail: `GATEHOUSE_FLEET_FAULT=drop-revocations:7` makes gate 7 ignore the
//! withdrawals it is sent, `GATEHOUSE_FLEET_FAULT=lose-upload:7` makes it drop one batch
//! without uploading it.

use std::time::Duration;

use gatehouse::sim::fleet::{Fault, FleetOptions, run};

use crate::support::harness as central;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_fleet_of_fifty_gates_is_stored_once_and_every_gate_gets_every_revocation()
{
    let url = central::postgres_url();
    let instances = if url.is_some() { 2 } else { 1 };
    let fault = std::env::var("GATEHOUSE_FLEET_FAULT")
        .ok()
        .map(|f| Fault::parse(&f).expect("GATEHOUSE_FLEET_FAULT"));
    let options = FleetOptions {
        gates: vec![50],
        instances: vec![instances],
        consoles: 10,
        seconds: 60,
        passage_every: Duration::from_secs(10),
        lanes: 2,
        revocations: 5,
        permits: 1000,
        database_url: url,
        exe: env!("CARGO_BIN_EXE_gatehouse").into(),
        fault,
    };
    let reports = run(&options, |f| {
        eprintln!("{} {:.3} {}", f.name, f.value, f.unit)
    })
    .await
    .expect("the fleet runs");
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert!(
        r.problems.is_empty(),
        "the fleet's checks failed:\n{}",
        r.problems.join("\n")
    );
    // 50 gates × 2 lanes × one arrival per 10 s × 60 s: about 600 arrivals, 4 events each.
    assert!(r.events_made > 1000, "only {} events made", r.events_made);
    assert_eq!(r.events_stored, r.events_made, "an upload was lost");
    assert_eq!(r.revocations_received.len(), 50);
    for (gate, got) in &r.revocations_received {
        assert_eq!(*got, 5, "gate {gate} got {got} of the 5 revocations");
    }
    assert_eq!(r.console_seen.len(), 10);
    assert!(
        r.console_seen.iter().all(|&s| s > 0),
        "a console saw nothing: {:?}",
        r.console_seen
    );
    assert_eq!(r.figure("uploads_refused"), Some(0.0));
    assert!(r.figure("revocation_pairs") == Some(250.0));
}
