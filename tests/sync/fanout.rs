//! Many gates long-polling one centre at once. A change wakes them all together, and the
//! centre reads the step once and shares it between them (`sync/fanout.rs`): these tests hold
//! that every waiting gate gets the change, and that the sharing never hands one gate's own
//! part (its settings, its lanes) to another. Each gate polls over mutual TLS with its own
//! certificate, as a gate does; the gates are the polls alone (no lanes), so that many fit.

use std::collections::BTreeMap;

use gatehouse::central::db::{Actor, Db};
use gatehouse::central::repo::gates::{self, NewGate, NewLane};
use gatehouse::central::repo::sync as repo;
use gatehouse::wire::sync::Changes;
use tokio::task::JoinSet;

use crate::support::gate::{epc, hex, wait_for};
use crate::support::harness::each_database;
use crate::support::{Central, Office};

/// Gates long-polling at once.
const GATES: i64 = 24;

/// Gates `3..=GATES` besides the harness's gates 1 and 2; every gate gets one lane of its own,
/// `g<id>`. Returns every gate's id.
async fn many_gates(db: &Db) -> Vec<i64> {
    let actor = Actor::system();
    for n in 3..=GATES {
        let new = NewGate {
            name: format!("门{n}"),
            name_en: String::new(),
            anti_passback: "off".into(),
            offline_policy: "cached".into(),
            enabled: true,
        };
        assert_eq!(gates::create(db, &actor, new).await.unwrap().id, n);
    }
    for id in 1..=GATES {
        gates::create_lane(db, &actor, id, lane(id, "{}"))
            .await
            .unwrap();
    }
    (1..=GATES).collect()
}

fn lane(gate: i64, settings: &str) -> NewLane {
    NewLane {
        lane_key: format!("g{gate}"),
        name: format!("{gate}号门车道"),
        name_en: String::new(),
        direction: "entry".into(),
        mode: "normal".into(),
        settings: serde_json::from_str(settings).unwrap(),
    }
}

/// Every gate's long poll from `since`, started at once; answered by gate. `urls` are the
/// sync ports the gates are spread over (one central instance, or two).
async fn poll_all(
    central: &Central,
    urls: &[String],
    gates: &[i64],
    since: u64,
) -> JoinSet<(i64, Changes)> {
    let mut polls = JoinSet::new();
    for (i, &gate) in gates.iter().enumerate() {
        let http = central.gate_http(gate);
        let url = format!(
            "{}/sync/v1/changes?since={since}&wait_ms=20000",
            urls[i % urls.len()]
        );
        polls.spawn(async move {
            let response = http.get(&url).send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            (gate, response.json::<Changes>().await.unwrap())
        });
    }
    // Every poll has reached its centre and waits (each noted its contact at `since`).
    wait_for("every gate's long poll to wait", || async {
        let waiting: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sync_gates WHERE data_version = $1")
                .bind(since as i64)
                .fetch_one(central.app.db.pool())
                .await
                .unwrap();
        (waiting == gates.len() as i64).then_some(())
    })
    .await;
    polls
}

async fn answers_of(mut polls: JoinSet<(i64, Changes)>) -> BTreeMap<i64, Changes> {
    let mut out = BTreeMap::new();
    while let Some(answer) = polls.join_next().await {
        let (gate, changes) = answer.unwrap();
        out.insert(gate, changes);
    }
    out
}

async fn head(db: &Db) -> u64 {
    repo::change_head(db).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_wakes_every_long_polling_gate_and_each_gets_it() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let gates = many_gates(&central.app.db).await;
        let (_, permit) = central.issue("张三", "京A12345", &hex(&epc(1))).await;
        // On PostgreSQL half the gates wait on a second instance, woken by NOTIFY.
        let mut urls = vec![central.sync.url()];
        let second = if central.app.listen_url().is_some() {
            let (_, server) = central.second_instance().await;
            urls.push(server.url());
            Some(server)
        } else {
            None
        };
        let since = head(&central.app.db).await;
        let polls = poll_all(&central, &urls, &gates, since).await;
        central.revoke(permit).await;
        let answers = answers_of(polls).await;
        assert_eq!(answers.len(), gates.len());
        for (gate, changes) in &answers {
            assert!(changes.version > since, "gate {gate}: {changes:?}");
            assert!(
                changes
                    .urgent
                    .permits
                    .iter()
                    .any(|p| i64::from(p.id) == permit && p.status == "revoked"),
                "gate {gate} did not get the revocation: {changes:?}"
            );
            assert_eq!(
                changes.gate, None,
                "gate {gate} got settings it did not need"
            );
        }
        if let Some(server) = second {
            server.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gates_woken_by_the_same_change_each_get_their_own_settings_and_no_other_gates() {
    for t in each_database().await {
        let central = Central::start(t).await;
        let db = central.app.db.clone();
        let gates = many_gates(&db).await;
        let urls = [central.sync.url()];

        // One gate's mode changes: that gate gets its settings, no other gate gets any.
        let since = head(&db).await;
        let polls = poll_all(&central, &urls, &gates, since).await;
        gates::set_mode(&db, &Actor::system(), 3, "locked_closed", "演练")
            .await
            .unwrap();
        let answers = answers_of(polls).await;
        let version = answers[&1].version;
        assert!(version > since);
        for (gate, changes) in &answers {
            assert_eq!(changes.version, version, "gate {gate}");
            if *gate == 3 {
                let settings = changes.gate.as_ref().expect("gate 3 gets its settings");
                assert_eq!(settings.mode, "locked_closed");
                assert_eq!(settings.lanes.len(), 1);
                assert_eq!(settings.lanes[0].lane, "g3");
            } else {
                assert_eq!(changes.gate, None, "gate {gate} was sent gate 3's settings");
            }
        }

        // A lane changes: every gate gets its settings, each exactly its own (its lanes, its
        // mode), as that gate's settings read on their own.
        let since = head(&db).await;
        let polls = poll_all(&central, &urls, &gates, since).await;
        let lane_id: i64 = sqlx::query_scalar("SELECT id FROM lanes WHERE gate_id = 4")
            .fetch_one(db.pool())
            .await
            .unwrap();
        gates::update_lane(
            &db,
            &Actor::system(),
            4,
            lane_id,
            lane(4, r#"{"poll_ms":20}"#),
        )
        .await
        .unwrap();
        let answers = answers_of(polls).await;
        let mut conn = db.pool().acquire().await.unwrap();
        for (gate, changes) in &answers {
            let own = repo::gate_settings(&mut conn, *gate).await.unwrap();
            assert_eq!(
                changes.gate, own,
                "gate {gate} did not get its own settings"
            );
            let settings = changes.gate.as_ref().unwrap();
            let lanes: Vec<&str> = settings.lanes.iter().map(|l| l.lane.as_str()).collect();
            assert_eq!(lanes, [format!("g{gate}")], "gate {gate}'s lanes");
            let mode = if *gate == 3 {
                "locked_closed"
            } else {
                "normal"
            };
            assert_eq!(settings.mode, mode, "gate {gate}'s mode");
        }
        assert!(
            answers[&4].gate.as_ref().unwrap().lanes[0]
                .settings
                .contains("poll_ms"),
            "gate 4 got its lane's new settings"
        );
    }
}

#[tokio::test]
async fn the_gathered_contacts_of_many_gates_are_written_at_once_and_keep_a_version_only_where_one_was_named()
 {
    for t in each_database().await {
        let central = Central::start(t).await;
        let db = &central.app.db;
        let gates = many_gates(db).await;
        // First contact: every gate gets its row; those that named a data version keep it,
        // the others start at 0.
        let first: Vec<(i64, Option<u64>)> = gates
            .iter()
            .map(|&g| (g, (g % 2 == 0).then_some(g as u64 * 10)))
            .collect();
        repo::touch_many(db, &first).await.unwrap();
        let versions = |db: Db| async move {
            let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT gate_id, data_version, last_seen_ms FROM sync_gates ORDER BY gate_id",
            )
            .fetch_all(db.pool())
            .await
            .unwrap();
            rows
        };
        let seen = versions(db.clone()).await;
        assert_eq!(seen.len(), gates.len(), "one row per gate: {seen:?}");
        for &(g, v, _) in &seen {
            assert_eq!(v, if g % 2 == 0 { g * 10 } else { 0 }, "gate {g}");
        }
        // Again, the even gates without a version and the odd ones with one: a contact
        // without a version keeps the one stored; last contact moves for every gate.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let second: Vec<(i64, Option<u64>)> = gates
            .iter()
            .map(|&g| (g, (g % 2 == 1).then_some(g as u64 * 100)))
            .collect();
        repo::touch_many(db, &second).await.unwrap();
        for (&(g, v, at), &(_, _, before)) in versions(db.clone()).await.iter().zip(&seen) {
            assert_eq!(v, if g % 2 == 0 { g * 10 } else { g * 100 }, "gate {g}");
            assert!(at > before, "gate {g}'s last contact did not move");
        }
        repo::touch_many(db, &[]).await.unwrap();
    }
}
