//! PostgreSQL going away under a running centre while a gate uploads: every backend of the
//! centre's database is terminated (`pg_terminate_backend`) in the middle of uploads, round
//! after round. Nothing is lost, nothing doubled, and uploads resume by themselves.
//!
//! "In the middle" is made certain, not hoped for: the test holds the gate journal's watermark
//! row locked from a connection of its own, so the centre's ingest transaction stops inside
//! (it has begun and read, nothing is committed), waits until PostgreSQL shows that backend
//! waiting for the lock, and only then terminates every backend of the database but its own.
//!
//! PostgreSQL only: skipped without `DATABASE_URL` on a developer's machine; under CI
//! (`CI=true`) a missing `DATABASE_URL` fails (see `support::harness::postgres_url`).

use std::time::Duration;

use chrono::Utc;
use gatehouse::sync::client::Outbox;
use gatehouse::wire::journal::EventBody;
use sqlx::{Connection, PgConnection, Row};

use super::journal_rewind::start_gate;
use crate::support::gate::wait_for;
use crate::support::harness::{postgres, postgres_url};
use crate::support::{Central, Syncing};

/// Rounds of (journal, upload cut off by the termination, drain).
const ROUNDS: usize = 6;
/// Events journalled per round: several uploads' worth at the harness's batch of 1,000.
const PER_ROUND: usize = 1_500;
/// Uploads a drain may need; far more than it should (a failed upload is retried at once).
const MAX_TRIES: usize = 200;

/// The database's name, the last path segment of its URL.
fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap();
    path.split('?').next().unwrap().to_string()
}

/// Terminates every backend of `db` but `keep`; returns how many.
async fn terminate_all(admin: &mut PgConnection, db: &str, keep: i32) -> usize {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2",
    )
    .bind(db)
    .bind(keep)
    .fetch_all(&mut *admin)
    .await
    .unwrap()
    .iter()
    .filter(|r| r.get::<bool, _>("done"))
    .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminating_the_centres_connections_mid_upload_loses_nothing_and_uploads_resume()
{
    let Some(admin_url) = postgres_url() else {
        eprintln!("DATABASE_URL is not set: PostgreSQL outage test skipped");
        return;
    };
    let t = postgres(&admin_url).await;
    let name = database_name(&t.url);
    let url = t.url.clone();
    let central = Central::start(t).await;
    let db = central.app.state.db.clone();
    let dir = tempfile::tempdir().unwrap();
    let gate = std::sync::Arc::new(start_gate(&dir.path().join("data")).await);
    let sync = Syncing::connect(&central, 1).await;
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let mut locker = PgConnection::connect(&url).await.unwrap();
    let locker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut locker)
        .await
        .unwrap();

    let bodies: Vec<EventBody> = (0..PER_ROUND)
        .map(|i| EventBody::LaneFault {
            fault: "test".into(),
            detail: i.to_string(),
        })
        .collect();
    // A first upload, so that the journal's watermark row exists to be held.
    gate.journal()
        .append_batch(Utc::now(), "in", &bodies[..10])
        .await
        .unwrap();
    assert!(matches!(
        sync.client.sync_once(&gate).await.unwrap(),
        Outbox::Synced { .. }
    ));

    let (mut terminated, mut failed) = (0, 0);
    for round in 0..ROUNDS {
        gate.journal()
            .append_batch(Utc::now(), "in", &bodies)
            .await
            .unwrap();
        // Hold the watermark row: the next upload stops inside its transaction.
        let mut hold = locker.begin().await.unwrap();
        sqlx::query(
            "SELECT contiguous_seq FROM passage_event_watermarks WHERE gate_id = 1 FOR UPDATE",
        )
        .fetch_all(&mut *hold)
        .await
        .unwrap();
        let upload = tokio::spawn({
            let (client, gate) = (sync.client.clone(), gate.clone());
            async move { client.sync_once(&gate).await }
        });
        wait_for("the centre's ingest waiting on the held row", || {
            let url = admin_url.clone();
            let name = name.clone();
            async move {
                let mut c = PgConnection::connect(&url).await.unwrap();
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 \
                     AND wait_event_type = 'Lock'",
                )
                .bind(&name)
                .fetch_one(&mut c)
                .await
                .unwrap();
                (waiting > 0).then_some(())
            }
        })
        .await;
        // PostgreSQL goes away under the centre: every connection of its pool and of its
        // watcher, the one mid-upload included.
        terminated += terminate_all(&mut admin, &name, locker_pid).await;
        hold.rollback().await.unwrap();
        let cut = upload.await.unwrap();
        assert!(
            cut.is_err(),
            "round {round}: the cut-off upload fails: {cut:?}"
        );
        failed += 1;
        // And again, while idle: the pool holds only dead connections now.
        terminated += terminate_all(&mut admin, &name, locker_pid).await;

        // Uploads resume: the gate's outbox drains without anyone restarting anything.
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= MAX_TRIES, "round {round}: uploads did not resume");
            match sync.client.sync_once(&gate).await {
                Ok(Outbox::Empty) => break,
                Ok(Outbox::Synced { .. }) => {}
                Err(_) => {
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    assert!(terminated >= 2 * ROUNDS, "{terminated} backends terminated");

    // Every event stored exactly once, contiguous, and acknowledged.
    let last = gate.journal_stats().await.last_seq as i64;
    assert_eq!(last, (10 + ROUNDS * PER_ROUND) as i64);
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS d, MIN(seq) AS lo, MAX(seq) AS hi \
         FROM passage_events WHERE gate_id = 1",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    let (n, d, lo, hi): (i64, i64, i64, i64) =
        (row.get("n"), row.get("d"), row.get("lo"), row.get("hi"));
    assert_eq!(
        (n, d, lo, hi),
        (last, last, 1, last),
        "{failed} uploads failed"
    );
    assert_eq!(
        gatehouse::central::repo::events::watermark(&db, 1)
            .await
            .unwrap() as i64,
        last
    );
    assert_eq!(gate.journal_stats().await.acked_seq as i64, last);
    drop(sync);
    match std::sync::Arc::try_unwrap(gate) {
        Ok(gate) => gate.shutdown().await,
        Err(_) => panic!("the gate is still shared"),
    }
}
