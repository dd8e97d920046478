//! The sync bench's many-gate half: change and event latency with 4 gates online at once, on
//! SQLite, PostgreSQL and two central instances over one PostgreSQL; and the fan-out of one
//! revocation to many long polls (default 1,000), each its own gate over mutual TLS with its
//! own certificate, without the gates behind them (the whole fleet is `gatehouse sim fleet`).
//!
//! Figures, per store (`sqlite`, `postgres`, `postgres_2_instances`):
//! - `<store>_revocation_to_4_gates_p50`, `_p99`, `_max` (ms): from a revocation's commit at
//!   the centre to each of the 4 gates deciding from an index that has it, over every
//!   (gate, revocation) pair; the gates long-poll at once, each through its own runner;
//! - `<store>_event_to_centre_4_gates_p50`, `_p99`, `_max` (ms): the 4 gates each journal an
//!   event at the same moment; from each commit to its row at the centre;
//! - `<store>_fanout_<n>_polls_revocation_p50`, `_p99`, `_max` (ms): `n` long polls wait; from a
//!   revocation's commit to each poll's answer carrying it, parsed, over every (poll,
//!   revocation) pair; `_all_answered` counts the pairs that got it (must be `n` × revocations);
//! - `<store>_fanout_<n>_polls_connect` (s): the `n` connections' mutual-TLS handshakes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use gatehouse::central::db::{Actor, Db, DbKind};
use gatehouse::central::repo::permits::{self, Action};
use gatehouse::central::state::AppState;
use gatehouse::domain::PermitId;
use gatehouse::gate::config::GateConfig;
use gatehouse::gate::index::StatusRef;
use gatehouse::gate::runtime::GateHandle;
use gatehouse::sync::client::ClientOptions;
use gatehouse::wire::journal::EventBody;
use gatehouse::wire::sync::Changes;
use tokio_util::sync::CancellationToken;

use super::{line, percentile, seed};
use crate::sync_link::{SitePki, SyncServer};

/// The sizes of one run of this half.
pub(crate) struct Sizes {
    /// Permits at the centre of the 4-gate runs.
    pub permits: usize,
    pub revocations: usize,
    /// Events journalled per gate in the 4-gate runs.
    pub events: usize,
    /// Long polls in the fan-out.
    pub polls: usize,
    pub fanout_revocations: usize,
}

/// Where a run's centre keeps its data: a store name for the figures, and the database URL.
struct Store {
    name: &'static str,
    url: String,
    instances: usize,
    /// PostgreSQL: the database to drop afterwards.
    pg_admin: Option<(String, String)>,
}

/// A fresh database for one run: a SQLite file in `dir`, or a database of its own beside
/// `DATABASE_URL`'s.
async fn fresh(kind: DbKind, dir: &std::path::Path, tag: &str) -> Option<(Db, Store)> {
    match kind {
        DbKind::Sqlite => {
            let path = dir.join(format!("{tag}.db"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let db = Db::open(&url).await.unwrap();
            Some((
                db,
                Store {
                    name: "sqlite",
                    url,
                    instances: 1,
                    pg_admin: None,
                },
            ))
        }
        DbKind::Postgres => {
            let admin_url = std::env::var("DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())?;
            let name = format!("gatehouse_bench_gates_{}_{tag}", std::process::id());
            let admin = Db::connect(&admin_url).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(admin.pool())
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(admin.pool())
                .await
                .unwrap();
            admin.close().await;
            let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
            let url = format!("{base}/{name}");
            let db = Db::open(&url).await.unwrap();
            Some((
                db,
                Store {
                    name: "postgres",
                    url,
                    instances: 1,
                    pg_admin: Some((admin_url, name)),
                },
            ))
        }
    }
}

impl Store {
    async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.pg_admin {
            let admin = Db::connect(admin_url).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(admin.pool())
                .await;
            admin.close().await;
        }
    }

    /// The central instances' sync servers, each on its own pool (as separate processes
    /// would be), and their databases.
    async fn servers(&self, db: &Db, pki: &SitePki) -> Vec<(Db, SyncServer)> {
        let listen = self.pg_admin.is_some().then(|| self.url.clone());
        let mut out = Vec::new();
        for i in 0..self.instances {
            let db = if i == 0 {
                db.clone()
            } else {
                Db::open(&self.url).await.unwrap()
            };
            let server = SyncServer::start(AppState::new(db.clone()), listen.clone(), pki).await;
            out.push((db, server));
        }
        out
    }

    fn figure(&self) -> String {
        if self.instances > 1 {
            format!("{}_{}_instances", self.name, self.instances)
        } else {
            self.name.to_string()
        }
    }
}

/// Inserts gates `1..=n`.
async fn insert_gates(db: &Db, n: usize) {
    let ids: Vec<usize> = (1..=n).collect();
    for chunk in ids.chunks(200) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("({i}, '门{i}', 0, 0)"))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO gates (id, name, created_ms, updated_ms) VALUES {}",
            values.join(",")
        ))
        .execute(db.pool())
        .await
        .unwrap();
    }
}

async fn gate(dir: &std::path::Path, id: i64) -> GateHandle {
    let toml = format!(
        "[gate]\nid = {id}\ndata_dir = \"{}\"\n[[lane]]\nid = \"in\"\ndirection = \"entry\"\n\
         [lane.reader]\nport = \"{0}/no-reader\"\n[lane.io]\nport = \"{0}/no-io\"\n",
        dir.display()
    );
    GateHandle::start(GateConfig::parse(&toml).unwrap())
        .await
        .unwrap()
}

fn summary(prefix: &str, mut times: Vec<Duration>) {
    times.sort();
    if times.is_empty() {
        return;
    }
    line(&format!("{prefix}_p50"), percentile(&times, 0.5), "ms");
    line(&format!("{prefix}_p99"), percentile(&times, 0.99), "ms");
    line(&format!("{prefix}_max"), percentile(&times, 1.0), "ms");
}

/// Every store this machine can run: SQLite with one instance; with `DATABASE_URL`,
/// PostgreSQL with one and with two.
fn stores() -> Vec<(DbKind, usize)> {
    let mut out = vec![(DbKind::Sqlite, 1)];
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        out.push((DbKind::Postgres, 1));
        out.push((DbKind::Postgres, 2));
    }
    out
}

/// Runs this half: the 4-gate latencies and the fan-out, on every store.
pub(crate) async fn run(dir: &std::path::Path, pki: &SitePki, sizes: &Sizes) {
    for (kind, instances) in stores() {
        let tag = format!("four{instances}");
        let Some((db, mut store)) = fresh(kind, dir, &tag).await else {
            continue;
        };
        store.instances = instances;
        eprintln!("4 gates on {}", store.figure());
        four_gates(&db, &store, pki, dir, sizes).await;
        db.close().await;
        store.drop_database().await;
    }
    for (kind, instances) in stores() {
        let tag = format!("fan{instances}");
        let Some((db, mut store)) = fresh(kind, dir, &tag).await else {
            continue;
        };
        store.instances = instances;
        eprintln!("{} long polls on {}", sizes.polls, store.figure());
        fanout(&db, &store, pki, sizes).await;
        db.close().await;
        store.drop_database().await;
    }
}

/// 4 gates online (runner, long poll, outbox), spread over the store's instances: revocations
/// to all of them, then events from all of them at once.
async fn four_gates(db: &Db, store: &Store, pki: &SitePki, dir: &std::path::Path, sizes: &Sizes) {
    const GATES: i64 = 4;
    insert_gates(db, GATES as usize).await;
    seed(db, sizes.permits).await;
    let servers = store.servers(db, pki).await;
    let shutdown = CancellationToken::new();
    let mut handles = Vec::new();
    let mut runners = Vec::new();
    for g in 1..=GATES {
        let handle = Arc::new(gate(&dir.join(format!("{}-gate{g}", store.figure())), g).await);
        let (_, server) = &servers[(g as usize - 1) % servers.len()];
        let client = Arc::new(pki.client(g, &server.url(), ClientOptions::default()));
        client.pull_once(&handle, Duration::ZERO).await.unwrap();
        runners.push(tokio::spawn(
            client.clone().run(handle.clone(), shutdown.clone()),
        ));
        handles.push(handle);
    }
    // Let each runner's first long poll reach its centre before the first revocation.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let actor = Actor::system();
    let mut reach = Vec::new();
    for i in 0..sizes.revocations {
        let id = (i * (sizes.permits / sizes.revocations.max(1)).max(1)) % sizes.permits + 1;
        let id = id as i64;
        permits::act(db, &actor, id, None, Action::Revoke, "bench")
            .await
            .unwrap();
        let committed = Instant::now();
        let mut pending: Vec<usize> = (0..handles.len()).collect();
        while !pending.is_empty() {
            pending.retain(|&g| {
                let index = handles[g].shared().index();
                let revoked = index
                    .permit(PermitId(id as u32))
                    .is_some_and(|p| matches!(p.status(), StatusRef::Revoked(_)));
                if revoked {
                    reach.push(committed.elapsed());
                }
                !revoked
            });
            assert!(
                committed.elapsed() < Duration::from_secs(30),
                "a revocation did not reach every gate"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        // Revocations a little apart, as an office makes them.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    summary(&format!("{}_revocation_to_4_gates", store.figure()), reach);

    let mut up = Vec::new();
    for _ in 0..sizes.events {
        let mut seqs = Vec::new();
        for (g, handle) in handles.iter().enumerate() {
            let body = EventBody::LaneFault {
                fault: "bench".into(),
                detail: String::new(),
            };
            let seq = handle
                .journal()
                .append(Utc::now(), "in", body)
                .await
                .unwrap();
            seqs.push((g as i64 + 1, seq, Instant::now()));
        }
        while !seqs.is_empty() {
            let mut left = Vec::new();
            for (g, seq, at) in seqs {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM passage_events WHERE gate_id = $1 AND seq = $2",
                )
                .bind(g)
                .bind(seq as i64)
                .fetch_one(db.pool())
                .await
                .unwrap();
                if n == 1 {
                    up.push(at.elapsed());
                } else {
                    left.push((g, seq, at));
                }
            }
            seqs = left;
            if !seqs.is_empty() {
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    summary(&format!("{}_event_to_centre_4_gates", store.figure()), up);

    shutdown.cancel();
    for r in runners {
        r.await.unwrap();
    }
    for handle in handles {
        match Arc::try_unwrap(handle) {
            Ok(h) => h.shutdown().await,
            Err(_) => panic!("gate still shared"),
        }
    }
    close(servers).await;
}

/// Stops the instances' sync servers and closes the pools of the instances after the first.
async fn close(servers: Vec<(Db, SyncServer)>) {
    for (i, (db, server)) in servers.into_iter().enumerate() {
        server.shutdown().await;
        if i > 0 {
            db.close().await;
        }
    }
}

/// `sizes.polls` long polls, each its own gate over its own mutual-TLS connection, spread over
/// the store's instances; revocations one after another, each timed to every poll's answer.
async fn fanout(db: &Db, store: &Store, pki: &SitePki, sizes: &Sizes) {
    let n = sizes.polls;
    insert_gates(db, n).await;
    seed(db, sizes.fanout_revocations.max(1)).await;
    {
        let mut tx = db.begin().await.unwrap();
        gatehouse::central::db::record_change(&mut tx, "sync", 0, "upsert")
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let since = gatehouse::central::repo::sync::change_head(db)
        .await
        .unwrap();
    let servers = store.servers(db, pki).await;
    let t = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for g in 1..=n as i64 {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(pki.client_tls(g))
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (_, server) = &servers[(g as usize - 1) % servers.len()];
        clients.push((g, http, server.url()));
    }
    eprintln!(
        "{n} gate certificates in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Each poll reports (its revocation round, when its answer carrying it was parsed).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (_, http, url) in clients {
        let (tx, stop, ready) = (tx.clone(), stop.clone(), ready_tx.clone());
        tasks.spawn(async move {
            // The handshake first (a poll that answers at once), then the long polls.
            let mut since = since;
            let first = http
                .get(format!("{url}/sync/v1/changes?since={since}&wait_ms=0"))
                .send()
                .await
                .unwrap();
            assert!(first.status().is_success());
            let _ = first.bytes().await;
            let _ = ready.send(());
            let mut round = 0usize;
            loop {
                let answer = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = http
                        .get(format!("{url}/sync/v1/changes?since={since}&wait_ms=20000"))
                        .send() => a,
                };
                let Ok(answer) = answer else { return };
                let Ok(bytes) = answer.bytes().await else {
                    return;
                };
                let changes: Changes = serde_json::from_slice(&bytes).unwrap();
                let at = Instant::now();
                since = changes.version;
                for p in &changes.urgent.permits {
                    // Revocation r revokes permit r + 1.
                    if p.status == "revoked" && (p.id as usize) > round {
                        round = p.id as usize;
                        let _ = tx.send((round - 1, at));
                    }
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..n {
        ready_rx.recv().await.unwrap();
    }
    line(
        &format!("{}_fanout_{n}_polls_connect", store.figure()),
        t.elapsed().as_secs_f64(),
        "s",
    );
    // Every poll waiting again after its first answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let actor = Actor::system();
    let mut reach = Vec::new();
    let mut answered = 0usize;
    for r in 0..sizes.fanout_revocations {
        permits::act(db, &actor, r as i64 + 1, None, Action::Revoke, "bench")
            .await
            .unwrap();
        let committed = Instant::now();
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((round, at))) if round == r => {
                    reach.push(at.saturating_duration_since(committed));
                    got += 1;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        answered += got;
        // The polls back and waiting before the next revocation.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let prefix = format!("{}_fanout_{n}_polls_revocation", store.figure());
    line(
        &format!("{prefix}_all_answered"),
        answered as f64,
        "answers",
    );
    summary(&prefix, reach);
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    close(servers).await;
}
