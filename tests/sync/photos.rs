//! Camera photos from the gate to the centre: each reaches the centre exactly once by its hash,
//! an interrupted upload resumes where it stopped, the centre refuses a photo that is not what
//! its name says with a precise message, and a photo upload that hangs never holds events up.
//! A real gate (its photo store, its journal), the real sync router over mutual TLS, and the
//! centre's real photo storage (files on disk, or an S3 client talking to a store that hangs).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use gatehouse::central::photos::s3::S3Store;
use gatehouse::central::photos::{Photos, S3Config, sha256_of};
use gatehouse::gate::photos::PhotoStore;
use gatehouse::sync::client::SyncClient;
use gatehouse::sync::photos::PhotoOutbox;
use gatehouse::wire::journal::{EventBody, PhotoKind, PhotoRef, PlateReadRecord};
use gatehouse::wire::sync::MAX_PHOTO_BYTES;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::support::gate::{LaneSpec, spawn_gate};
use crate::support::harness::{TestApp, TestDb, count, each_database, sqlite};
use crate::support::sync_link::{SitePki, SyncServer};
use crate::support::{Proxy, test_options};

/// A centre whose photo storage the test chooses, its sync port on mutual TLS.
struct PhotoCentre {
    app: TestApp,
    pki: SitePki,
    sync: SyncServer,
    photos_dir: tempfile::TempDir,
    _pki_dir: tempfile::TempDir,
}

impl PhotoCentre {
    async fn start(t: TestDb, photos: impl FnOnce(&Path) -> Photos) -> PhotoCentre {
        let photos_dir = tempfile::tempdir().unwrap();
        let pki_dir = tempfile::tempdir().unwrap();
        let storage = photos(photos_dir.path());
        let app = TestApp::spawn(t).await.with_state(|s| s.photos = storage);
        let pki = SitePki::create(pki_dir.path());
        let sync = SyncServer::start(app.state.clone(), app.listen_url(), &pki).await;
        PhotoCentre {
            app,
            pki,
            sync,
            photos_dir,
            _pki_dir: pki_dir,
        }
    }

    fn on_disk(t: TestDb) -> impl Future<Output = PhotoCentre> {
        PhotoCentre::start(t, |dir| Photos::disk(dir, 90).unwrap())
    }

    /// Gate 1's sync client, through `proxy`.
    fn client(&self, proxy: &Proxy) -> SyncClient {
        self.pki.client(1, &proxy.url(), test_options())
    }

    /// An HTTPS client with gate 1's certificate, for the endpoints by hand.
    fn gate_http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.pki.client_tls(1))
            .build()
            .unwrap()
    }

    async fn put(&self, name: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .gate_http()
            .put(format!("{}/sync/v1/photos/{name}", self.sync.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The photos the centre holds: (sha256, bytes, gate).
    async fn held(&self) -> Vec<(String, i64, i64)> {
        sqlx::query("SELECT sha256, bytes, gate_id FROM photos ORDER BY sha256")
            .fetch_all(self.app.db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("sha256"), r.get("bytes"), r.get("gate_id")))
            .collect()
    }
}

/// A JPEG-looking photo, different for each `n`.
fn jpeg(n: u8, size: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..size).map(|i| (i as u8) ^ n).collect();
    v[..2].copy_from_slice(&[0xff, 0xd8]);
    v
}

fn put_photos(store: &PhotoStore, range: std::ops::Range<u8>) -> Vec<PhotoRef> {
    range
        .map(|n| store.put(PhotoKind::Scene, &jpeg(n, 20_000)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gates_photos_reach_the_centre_exactly_once_and_an_interrupted_upload_resumes() {
    for t in each_database().await {
        let centre = PhotoCentre::on_disk(t).await;
        let kind = centre.app.kind;
        let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
        let store = gate.handle().shared().photos.clone();
        let proxy = Proxy::to(centre.sync.addr).await;
        let client = centre.client(&proxy);
        let photos = put_photos(&store, 1..6);

        // The network is down: the step fails and nothing is marked uploaded.
        proxy.cut();
        assert!(client.photos_once(&store).await.is_err());
        assert_eq!(store.pending(100).unwrap().len(), 5, "{kind:?}");
        proxy.restore();

        // An earlier step was cut off after the centre stored two photos but before the gate
        // heard back: the centre has them, the gate still counts them as pending.
        for p in &photos[..2] {
            let (status, body) = centre.put(&p.sha256, store.get(&p.sha256).unwrap()).await;
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("\"created\":true"), "{body}");
        }
        assert_eq!(store.pending(100).unwrap().len(), 5);

        // The resumed step sends only the three the centre lacks, and marks all five.
        assert_eq!(
            client.photos_once(&store).await.unwrap(),
            PhotoOutbox::Uploaded {
                sent: 3,
                already: 2
            },
            "{kind:?}"
        );
        assert!(store.pending(100).unwrap().is_empty());
        assert_eq!(
            client.photos_once(&store).await.unwrap(),
            PhotoOutbox::Empty
        );

        // Each is at the centre once, from gate 1, byte for byte.
        let mut expected: Vec<(String, i64, i64)> = photos
            .iter()
            .map(|p| (p.sha256.clone(), 20_000, 1))
            .collect();
        expected.sort();
        assert_eq!(centre.held().await, expected, "{kind:?}");
        for p in &photos {
            let (gate_id, bytes) = centre
                .app
                .state
                .photos
                .fetch(&centre.app.db, &p.sha256, Utc::now().timestamp_millis())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(gate_id, 1);
            assert_eq!(sha256_of(&bytes), p.sha256);
        }

        // The same photo pushed again at the gate is not pending again.
        store.put(PhotoKind::Scene, &jpeg(1, 20_000)).unwrap();
        assert_eq!(
            client.photos_once(&store).await.unwrap(),
            PhotoOutbox::Empty
        );
        gate.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_centre_refuses_a_photo_that_is_not_what_its_name_says_with_a_precise_message() {
    let centre = PhotoCentre::on_disk(sqlite().await).await;
    let photo = jpeg(9, 1_000);
    let sha = sha256_of(&photo);

    let (status, body) = centre.put(&sha, jpeg(8, 1_000)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(&format!("not to its name {sha}")), "{body}");

    let (status, body) = centre.put("not-a-hash", photo.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("64 lower-case hex digits"), "{body}");
    let (status, body) = centre.put(&sha.to_uppercase(), photo.clone()).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = centre.put(&sha256_of(b""), Vec::new()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("empty"), "{body}");

    let big = vec![0u8; MAX_PHOTO_BYTES + 1];
    let (status, body) = centre.put(&sha256_of(&big), big).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains(&format!("{MAX_PHOTO_BYTES}-byte limit")),
        "{body}"
    );
    assert!(centre.held().await.is_empty(), "nothing refused is stored");

    // The right bytes are stored once; a repeat is answered as stored.
    let (status, body) = centre.put(&sha, photo.clone()).await;
    assert_eq!(
        (status, body.contains("\"created\":true")),
        (200, true),
        "{body}"
    );
    let (status, body) = centre.put(&sha, photo).await;
    assert_eq!(
        (status, body.contains("\"created\":false")),
        (200, true),
        "{body}"
    );
    assert_eq!(centre.held().await.len(), 1);
    assert_eq!(
        std::fs::read_dir(centre.photos_dir.path().join(&sha[..2]))
            .unwrap()
            .count(),
        1
    );

    // A question about too many photos, or a malformed name, is refused.
    let ask = |names: Vec<String>| {
        let http = centre.gate_http();
        let url = format!("{}/sync/v1/photos/missing", centre.sync.url());
        async move {
            let r = http
                .post(url)
                .json(&serde_json::json!({ "sha256": names }))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = ask(vec!["ab".repeat(32); 1001]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 1000"), "{body}");
    let (status, body) = ask(vec!["../../etc/passwd".into()]).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = ask(vec![sha.clone(), "cd".repeat(32)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["missing"],
        serde_json::json!(["cd".repeat(32)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_centre_without_photo_storage_leaves_the_gates_photos_pending() {
    let centre = PhotoCentre::start(sqlite().await, |_| Photos::unconfigured()).await;
    let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
    let store = gate.handle().shared().photos.clone();
    put_photos(&store, 1..3);
    let proxy = Proxy::to(centre.sync.addr).await;
    let err = centre
        .client(&proxy)
        .photos_once(&store)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("503") && err.contains("no photo storage"),
        "{err}"
    );
    assert_eq!(store.pending(10).unwrap().len(), 2);
    gate.shutdown().await;
}

/// An "object store" that accepts connections and never answers; counts the connections.
async fn hanging_store() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://{addr}"), accepted, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_upload_is_not_held_up_by_a_photo_upload_that_hangs() {
    let (endpoint, tried, hang) = hanging_store().await;
    let config: S3Config = toml::from_str(&format!(
        "endpoint = \"{endpoint}\"\nbucket = \"stuck\"\naccess_key_id = \"a\"\n\
         secret_access_key = \"b\"\n"
    ))
    .unwrap();
    let centre = PhotoCentre::start(sqlite().await, move |_| {
        Photos::new(Arc::new(S3Store::open(&config).unwrap()), 90)
    })
    .await;
    let gate = spawn_gate(&[LaneSpec::entry("in")]).await;
    let store = gate.handle().shared().photos.clone();
    let proxy = Proxy::to(centre.sync.addr).await;
    let client = Arc::new(centre.client(&proxy));
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(client.clone().run(gate.shared_handle(), shutdown.clone()));

    // Camera reads with their photos, one after the other; each event must reach the centre
    // promptly while the photos stay stuck on their way.
    let journal = gate.handle().journal();
    let mut slowest = Duration::ZERO;
    for n in 0..10u8 {
        let photos = vec![
            store.put(PhotoKind::Plate, &jpeg(n, 30_000)).unwrap(),
            store
                .put(PhotoKind::Scene, &jpeg(n + 100, 200_000))
                .unwrap(),
        ];
        let body = EventBody::PlateIgnored {
            camera: PlateReadRecord {
                camera: "north".into(),
                event_id: format!("ev-{n}"),
                raw_plate: "京A12345".into(),
                colour: Some("blue".into()),
                confidence: 95,
                photos,
            },
            why: "no_vehicle".into(),
        };
        let sent = Instant::now();
        let seq = journal.append(Utc::now(), "in", body).await.unwrap();
        loop {
            let at_centre = count(
                &centre.app.db,
                &format!("SELECT COUNT(*) FROM passage_events WHERE gate_id = 1 AND seq = {seq}"),
            )
            .await;
            if at_centre == 1 {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "event {seq} did not reach the centre while photos hung"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        slowest = slowest.max(sent.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(2),
        "an event took {slowest:?} to reach the centre"
    );
    // The photos are on their way (the centre is trying to store the first), stuck: none
    // confirmed, none at the centre. The photo loop runs beside the events, so the events may
    // all be in before it has made its first try: it is given a few seconds.
    let waiting = Instant::now();
    while tried.load(Ordering::SeqCst) == 0 && waiting.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        tried.load(Ordering::SeqCst) >= 1,
        "the photo upload never started"
    );
    assert_eq!(store.stats().unwrap().pending, 20);
    assert!(centre.held().await.is_empty());

    shutdown.cancel();
    runner.await.unwrap();
    hang.abort();
    gate.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_gate_store_evicts_photos_the_centre_confirmed_before_any_it_has_not_sent() {
    let centre = PhotoCentre::on_disk(sqlite().await).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        PhotoStore::open_with(
            dir.path(),
            gatehouse::gate::photos::PhotoLimits {
                max_bytes: 100_000,
                max_age_days: 30,
            },
        )
        .unwrap(),
    );
    let proxy = Proxy::to(centre.sync.addr).await;
    let client = centre.client(&proxy);
    let t0 = Utc::now().timestamp_millis();
    let sent: Vec<PhotoRef> = (1..4)
        .map(|n| {
            store
                .put_at(PhotoKind::Scene, &jpeg(n, 30_000), t0 + i64::from(n))
                .unwrap()
        })
        .collect();
    assert_eq!(
        client.photos_once(&store).await.unwrap(),
        PhotoOutbox::Uploaded {
            sent: 3,
            already: 0
        }
    );
    // The centre is unreachable now; two more reads arrive and the store is over its size.
    proxy.cut();
    let unsent: Vec<PhotoRef> = (4..6)
        .map(|n| {
            store
                .put_at(PhotoKind::Scene, &jpeg(n, 30_000), t0 + i64::from(n))
                .unwrap()
        })
        .collect();
    let kept = |p: &PhotoRef| store.get(&p.sha256).is_some();
    assert!(
        !kept(&sent[0]) && !kept(&sent[1]),
        "the two oldest uploaded ones went"
    );
    assert!(kept(&sent[2]));
    assert!(
        unsent.iter().all(kept),
        "nothing unsent is evicted while space allows"
    );
    let stats = store.stats().unwrap();
    assert_eq!((stats.photos, stats.pending, stats.lost), (3, 2, 0));
    // Back online, the unsent ones reach the centre.
    proxy.restore();
    assert_eq!(
        client.photos_once(&store).await.unwrap(),
        PhotoOutbox::Uploaded {
            sent: 2,
            already: 0
        }
    );
    assert_eq!(centre.held().await.len(), 5);
}
