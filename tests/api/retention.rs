//! Retention: the purge deletes only passage events older than the kept days (365 by default,
//! never fewer), keeps the statistics and the gates' watermarks, and is audited.

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::Actor;
use gatehouse::central::ingest::accept;
use gatehouse::central::repo::events;
use gatehouse::central::retention;
use gatehouse::central::state::AppState;
use gatehouse::wire::journal::{EventBody, JournalEvent};

use crate::harness::{TestApp, count, each_database};

fn entry(seq: u64, days_ago: i64) -> JournalEvent {
    JournalEvent {
        seq,
        at: Utc::now() - Duration::days(days_ago),
        lane: "entry".into(),
        body: EventBody::Passage {
            direction: "entry".into(),
            plate: Some(format!("京A1234{seq}")),
            vehicle_id: None,
            permit_id: None,
        },
    }
}

#[tokio::test]
async fn the_purge_deletes_only_events_past_365_days_and_keeps_the_statistics() {
    for t in each_database().await {
        let app = TestApp::spawn(t).await;
        let state = AppState::new(app.db.clone());
        let batch = vec![entry(1, 500), entry(2, 366), entry(3, 364), entry(4, 0)];
        accept(&state, 1, &batch).await.unwrap();
        let flows = "SELECT CAST(SUM(passages) AS BIGINT) FROM stats_flows";
        assert_eq!(count(&app.db, flows).await, 4);

        // Asked for 30 days, it still keeps 365.
        let p = retention::purge(
            &app.db,
            &Actor::system(),
            30,
            gatehouse::central::db::now_ms(),
        )
        .await
        .unwrap();
        assert_eq!((p.deleted, p.keep_days), (2, 365));
        let left: Vec<i64> = sqlx::query_scalar("SELECT seq FROM passage_events ORDER BY seq")
            .fetch_all(app.db.pool())
            .await
            .unwrap();
        assert_eq!(left, [3, 4]);
        assert_eq!(count(&app.db, flows).await, 4, "statistics are kept");
        assert_eq!(events::watermark(&app.db, 1).await.unwrap(), 4);
        // A purged event re-sent is below the watermark: not stored or counted again.
        let again = accept(&state, 1, &batch[..1]).await.unwrap();
        assert_eq!((again.stored, again.duplicates), (0, 1));
        assert_eq!(count(&app.db, flows).await, 4);

        // On demand by an administrator, audited; nothing more is old enough.
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/retention/purge",
                Some(Role::Admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["deleted"], 0);
        assert_eq!(body["keep_days"], 365);
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/retention/purge",
                Some(Role::Security),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            count(
                &app.db,
                "SELECT COUNT(*) FROM audit_log WHERE action = 'purge' AND entity = 'passage_events'"
            )
            .await,
            2
        );
    }
}
