//! The gate's photo upload: the camera photos the centre does not have yet, sent after their
//! events on a loop and HTTP connections of their own, so a slow or failing photo upload never
//! holds events up (the outbox is another task on another connection).
//!
//! One step ([`SyncClient::photos_once`]) takes the oldest photos not yet confirmed, asks the
//! centre which of them it lacks (`POST /sync/v1/photos/missing`), marks the others uploaded,
//! and sends each missing one (`PUT /sync/v1/photos/{sha256}`), marking it uploaded as soon as
//! the centre has confirmed it. An interrupted step resumes where it stopped: what was
//! confirmed stays marked, the rest is asked about again, and the centre stores a photo once by
//! its hash however often it arrives — exactly once at the centre.
//!
//! What it never does: mark a photo uploaded that the centre has not confirmed, or send a
//! photo whose bytes no longer hash to its name (a damaged file is recorded as lost at the
//! gate, not sent for ever).

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::client::{LinkError, SyncClient};
use crate::gate::photos::{PendingPhoto, PhotoError, PhotoStore};
use crate::wire::sync::{MAX_PHOTO_BYTES, PhotoStored, PhotosMissing, PhotosQuery};

/// Photos asked about per step.
pub const PHOTO_BATCH: usize = 100;

/// How long the photo loop waits before looking again when nothing is pending.
pub const PHOTOS_IDLE: Duration = Duration::from_millis(500);

/// How long one photo upload may take (a large photo over a slow campus link).
const PUT_TIMEOUT: Duration = Duration::from_secs(60);

/// What one photo step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoOutbox {
    /// Photos were confirmed: `sent` were uploaded now, `already` the centre had.
    Uploaded { sent: usize, already: usize },
    /// Nothing pending.
    Empty,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs a blocking call on the photo store off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<PhotoStore>,
    f: impl FnOnce(&PhotoStore) -> Result<T, PhotoError> + Send + 'static,
) -> Result<T, LinkError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| LinkError::Photos(format!("photo store task: {e}")))?
        .map_err(|e| LinkError::Photos(e.to_string()))
}

impl SyncClient {
    /// One photo step (see the module header).
    pub async fn photos_once(&self, store: &Arc<PhotoStore>) -> Result<PhotoOutbox, LinkError> {
        let pending: Vec<PendingPhoto> = blocking(store, |s| s.pending(PHOTO_BATCH)).await?;
        if pending.is_empty() {
            return Ok(PhotoOutbox::Empty);
        }
        let query = PhotosQuery {
            sha256: pending.iter().map(|p| p.sha256.clone()).collect(),
        };
        let response = self
            .photo_http
            .post(self.url("/photos/missing"))
            .json(&query)
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        let PhotosMissing { missing } = self.check(response).await?.json().await?;
        let had: Vec<String> = query
            .sha256
            .iter()
            .filter(|s| !missing.contains(s))
            .cloned()
            .collect();
        let already = had.len();
        if !had.is_empty() {
            blocking(store, move |s| s.mark_uploaded(&had, now_ms())).await?;
        }
        let mut sent = 0;
        for sha in missing {
            // Only what this gate asked about: a centre's answer names nothing else.
            if !query.sha256.contains(&sha) {
                continue;
            }
            let name = sha.clone();
            let bytes = blocking(store, move |s| Ok(s.get(&name))).await?;
            let why = match &bytes {
                None => Some("file missing"),
                Some(b) if b.len() > MAX_PHOTO_BYTES => Some("larger than the centre accepts"),
                Some(b) if hex::encode(Sha256::digest(b)) != sha => Some("file damaged"),
                Some(_) => None,
            };
            if let Some(why) = why {
                let name = sha.clone();
                blocking(store, move |s| s.forget(&name, now_ms(), why)).await?;
                continue;
            }
            let bytes = bytes.expect("checked above");
            let response = self
                .photo_http
                .put(self.url(&format!("/photos/{sha}")))
                .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
                .body(bytes)
                .timeout(PUT_TIMEOUT)
                .send()
                .await?;
            let stored: PhotoStored = self.check(response).await?.json().await?;
            if stored.sha256 != sha {
                return Err(LinkError::Photos(format!(
                    "the centre confirmed photo {} for an upload of {sha}",
                    stored.sha256
                )));
            }
            blocking(store, move |s| s.mark_uploaded(&[sha], now_ms())).await?;
            sent += 1;
        }
        Ok(PhotoOutbox::Uploaded { sent, already })
    }

    /// [`SyncClient::photos_once`] for the runner's loop: true when it did something; waits
    /// [`PHOTOS_IDLE`] when nothing is pending.
    pub async fn photos_step(&self, store: &Arc<PhotoStore>) -> Result<bool, LinkError> {
        match self.photos_once(store).await? {
            PhotoOutbox::Uploaded { .. } => Ok(true),
            PhotoOutbox::Empty => {
                tokio::time::sleep(PHOTOS_IDLE).await;
                Ok(false)
            }
        }
    }
}
