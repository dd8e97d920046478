//! Camera photos at the centre: stored by hash in either backend — files on disk, and a real
//! S3-compatible server (moto's, started by `.ci/run`; `GATEHOUSE_TEST_S3` names it) — served
//! by `GET /api/v1/photos/{sha256}` to whoever sees events (a guard only their gates'), and gone
//! after `[photos] retention_days`, from the API at once and from the backend and the table at
//! the purge, while passage events keep their 365 days.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use gatehouse::central::api::auth::Role;
use gatehouse::central::db::{Actor, now_ms};
use gatehouse::central::photos::s3::S3Store;
use gatehouse::central::photos::{PhotoBackend, Photos, S3Config, sha256_of};
use gatehouse::central::retention;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::harness::{TestApp, ci, count, each_database, sqlite};

const DAY_MS: i64 = 86_400_000;

/// The S3-compatible server to test against, if any. Under CI its absence is a failure.
fn s3_endpoint() -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_S3") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if ci() => panic!(
            "CI=true but GATEHOUSE_TEST_S3 is not set: the S3 photo backend must be tested in CI"
        ),
        _ => None,
    }
}

/// Creates a bucket on the test server (moto accepts an unsigned `PUT /<bucket>`).
async fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "create bucket: {answer}"
    );
}

/// A fresh bucket on the test server, as the S3 backend's configuration.
async fn s3_config(endpoint: &str) -> S3Config {
    let bucket = format!("gatehouse-test-{}", uuid_ish());
    create_bucket(endpoint, &bucket).await;
    toml::from_str(&format!(
        "endpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\nprefix = \"evidence/\"\n\
         access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n"
    ))
    .unwrap()
}

fn uuid_ish() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        now_ms(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A JPEG-looking photo, different for each `n`.
fn jpeg(n: u8, size: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..size).map(|i| (i as u8).wrapping_mul(n)).collect();
    v[..2].copy_from_slice(&[0xff, 0xd8]);
    v
}

/// `GET /api/v1/photos/{sha}` as `role`: status, the body's bytes, `Cache-Control`.
async fn get_photo(app: &TestApp, sha: &str, role: Option<Role>) -> (StatusCode, Vec<u8>, String) {
    let mut b = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/v1/photos/{sha}"));
    if let Some(role) = role {
        b = b.header("authorization", format!("Bearer {}", app.token(role)));
    }
    let response = gatehouse::web::site(app.state.clone())
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let cache = headers
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    if status == StatusCode::OK {
        assert_eq!(headers["content-type"], "image/jpeg");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    (status, bytes, cache)
}

/// The whole life of photos in one backend: stored once, served by role, expired.
async fn photos_live_and_expire_in(app: TestApp, photos: Photos, what: &str) {
    let app = app.with_state(|s| s.photos = photos.clone());
    let db = &app.db;
    let now = now_ms();
    let fresh = b"\xff\xd8 plate close-up".repeat(100);
    let fresh_sha = sha256_of(&fresh);
    let aging = jpeg(3, 2_000);
    let aging_sha = sha256_of(&aging);
    let expired = jpeg(5, 2_000);
    let expired_sha = sha256_of(&expired);
    let south = jpeg(7, 500);
    let south_sha = sha256_of(&south);

    let first = photos
        .store(db, 1, &fresh_sha, Bytes::from(fresh.clone()), now)
        .await
        .unwrap();
    assert!(first.created, "{what}");
    let again = photos
        .store(db, 1, &fresh_sha, Bytes::from(fresh.clone()), now)
        .await
        .unwrap();
    assert!(!again.created, "{what}: a repeat is not stored twice");
    photos
        .store(db, 1, &aging_sha, Bytes::from(aging), now - 89 * DAY_MS)
        .await
        .unwrap();
    photos
        .store(db, 1, &expired_sha, Bytes::from(expired), now - 91 * DAY_MS)
        .await
        .unwrap();
    photos
        .store(db, 2, &south_sha, Bytes::from(south), now)
        .await
        .unwrap();
    assert_eq!(count(db, "SELECT COUNT(*) FROM photos").await, 4, "{what}");
    assert_eq!(
        photos
            .missing(db, &[fresh_sha.clone(), "ab".repeat(32), fresh_sha.clone()])
            .await
            .unwrap(),
        vec!["ab".repeat(32)]
    );

    // Everyone who sees events gets it, a guard too (gate 1 is theirs), privately cached.
    for role in [Role::Admin, Role::Security, Role::Guard, Role::Viewer] {
        let (status, bytes, cache) = get_photo(&app, &fresh_sha, Some(role)).await;
        assert_eq!(status, StatusCode::OK, "{what}: {role:?}");
        assert_eq!(bytes, fresh, "{what}: {role:?}");
        assert!(cache.starts_with("private, max-age="), "{cache}");
    }
    for role in [Role::Approver, Role::Applicant] {
        let (status, ..) = get_photo(&app, &fresh_sha, Some(role)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {role:?}");
    }
    assert_eq!(
        get_photo(&app, &fresh_sha, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A guard of gate 1 does not see gate 2's photo; the office does.
    assert_eq!(
        get_photo(&app, &south_sha, Some(Role::Guard)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_photo(&app, &south_sha, Some(Role::Security)).await.0,
        StatusCode::OK
    );
    // Unknown, malformed and path-like names are 404s.
    for name in [
        "cd".repeat(32),
        "ABCD".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
    ] {
        assert_eq!(
            get_photo(&app, &name, Some(Role::Admin)).await.0,
            StatusCode::NOT_FOUND,
            "{what}: {name}"
        );
    }

    // Retention (default 90 days): 89 days old is served, 91 days old is not, even before the
    // purge.
    assert_eq!(
        get_photo(&app, &aging_sha, Some(Role::Security)).await.0,
        StatusCode::OK,
        "{what}"
    );
    let (status, body, _) = get_photo(&app, &expired_sha, Some(Role::Security)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
    assert!(
        String::from_utf8_lossy(&body).contains("已过保存期"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // The purge deletes it from the backend and the table, audited, and nothing else.
    let purged = retention::purge_photos(db, &photos, &Actor::system(), now)
        .await
        .unwrap();
    assert_eq!((purged.deleted, purged.failed), (1, 0), "{what}");
    assert_eq!(count(db, "SELECT COUNT(*) FROM photos").await, 3, "{what}");
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'purge' AND entity = 'photos'"
        )
        .await,
        1,
        "{what}"
    );
    assert!(
        photos
            .missing(db, std::slice::from_ref(&expired_sha))
            .await
            .unwrap()
            .contains(&expired_sha)
    );
    // Two days on, the 89-day-old photo goes too; the fresh one stays.
    let later = retention::purge_photos(db, &photos, &Actor::system(), now + 2 * DAY_MS)
        .await
        .unwrap();
    assert_eq!(later.deleted, 1, "{what}");
    assert_eq!(
        get_photo(&app, &aging_sha, Some(Role::Security)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_photo(&app, &fresh_sha, Some(Role::Guard)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn photos_on_disk_are_served_to_who_sees_events_and_gone_after_their_retention() {
    for t in each_database().await {
        let dir = tempfile::tempdir().unwrap();
        let photos = Photos::disk(dir.path(), 90).unwrap();
        let app = TestApp::spawn(t).await;
        let what = format!("disk on {:?}", app.kind);
        photos_live_and_expire_in(app, photos, &what).await;
        // The purge removed the files, not just the rows.
        let files = walk(dir.path());
        assert_eq!(files, 2, "{what}: the fresh photo and gate 2's are left");
    }
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn photos_in_a_real_s3_compatible_store_are_served_and_gone_after_their_retention() {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("GATEHOUSE_TEST_S3 not set: skipping the S3 photo backend test");
        return;
    };
    let config = s3_config(&endpoint).await;
    let store = Arc::new(S3Store::open(&config).unwrap());
    let shown = format!("{store:?} {}", store.describe());
    assert!(!shown.contains("testing"), "credentials shown: {shown}");
    let photos = Photos::new(store.clone(), 90);
    let app = TestApp::spawn(sqlite().await).await;
    photos_live_and_expire_in(app, photos, "s3").await;
    // What the purge deleted is gone from the bucket; what it kept is there.
    let gone = sha256_of(&jpeg(5, 2_000));
    assert_eq!(store.get(&gone).await.unwrap(), None);
    let kept = sha256_of(&jpeg(7, 500));
    assert_eq!(store.get(&kept).await.unwrap().unwrap().len(), 500);
    // Deleting what is not there is not an error; a name that is no hash is refused.
    store.delete(&gone).await.unwrap();
    assert!(store.put("../x", Bytes::from_static(b"x")).await.is_err());
}

#[tokio::test]
async fn an_s3_store_that_cannot_be_reached_fails_with_a_message_and_no_credentials() {
    let config: S3Config = toml::from_str(
        "endpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\naccess_key_id = \"AKIDSECRETLOOKING\"\n\
         secret_access_key = \"s3cr3t-never-shown\"\n",
    )
    .unwrap();
    let store = S3Store::open(&config).unwrap();
    let err = store
        .put(&"ab".repeat(32), Bytes::from_static(b"\xff\xd8"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("object store put"), "{err}");
    assert!(!err.contains("s3cr3t-never-shown"), "{err}");
}
