//! Visitor passes at the centre (访客通行码): issued when a booking is approved, signed with the
//! site's pass key, shown on a page reachable by an unguessable link, revoked with their booking,
//! and consumed (single use) when a gate journals a granted passage on one.
//!
//! - [`PassSigner`]: the current private key, loaded once at start from `<pki>/pass-keys/`
//!   ([`crate::pki::list_pass_keys`]) and held in [`crate::central::state::AppState`].
//! - [`start`]: loads the keys and upserts their public halves into `pass_keys`; a key that is
//!   new, rotated out or gone writes a `pass_key` change-log entry, so every connected gate gets
//!   its settings (with [`crate::wire::sync::GateSettings::pass_keys`]) again in its next delta.
//! - [`issue`] / [`revoke`]: the pass of one booking (`visitor_passes`), called by the bookings
//!   API after the approval / cancellation committed. Idempotent.
//! - [`consume`]: at ingest, in the ingest transaction (its SQL, like the keys sent to the
//!   gates, is in [`crate::central::repo::passes`], which the sync and ingest code reach).
//!
//! No key: the centre still runs and approves bookings; they simply get no pass (the admin
//! page and `GET /api/v1/bookings/{id}/pass` say why), unless `[passes] require_key` makes
//! `gatehouse server run` refuse to start.
//!
//! What it never does: decide whether a pass opens (the gate does, offline), write a private key
//! anywhere, or show a pass to anyone without its link secret or the right role.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::signature::Ed25519KeyPair;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::central::db::{Db, RepoError, now_ms, record_change};
use crate::central::repo::bookings::{self, Booking, BookingStatus};
use crate::domain::permit::GateRights;
use crate::domain::text::parse_gate_rights;
use crate::domain::{GateId, UtcMinute};
use crate::wire::pass::{PassClaims, PassGates};

pub use crate::central::repo::passes::{PASS_KEY, PassArrival, consume, keys_for_gates};

/// `[passes]` of server.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassesConfig {
    /// The folder of the pass keys (`gatehouse pki pass-key new --dir PKI` writes
    /// `PKI/pass-keys/`). Default: `<data_dir>/pki/pass-keys`.
    pub key_dir: Option<PathBuf>,
    /// Refuse to start without a current pass key. Default false: bookings are approved
    /// without a pass, and the pages say why.
    pub require_key: bool,
}

impl PassesConfig {
    /// The key folder, `data_dir`'s default applied.
    pub fn key_dir(&self, data_dir: &Path) -> PathBuf {
        self.key_dir
            .clone()
            .unwrap_or_else(|| crate::pki::pass_key_dir(&data_dir.join("pki")))
    }
}

struct SigningKey {
    kid: u16,
    pair: Ed25519KeyPair,
}

/// The key new passes are signed with, if the site has one.
#[derive(Clone, Default)]
pub struct PassSigner(Option<Arc<SigningKey>>);

impl std::fmt::Debug for PassSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(k) => write!(f, "PassSigner(key {})", k.kid),
            None => f.write_str("PassSigner(none)"),
        }
    }
}

impl PassSigner {
    /// No key: no passes are issued.
    pub fn none() -> PassSigner {
        PassSigner(None)
    }

    /// Signs with `pair` as key `kid`.
    pub fn new(kid: u16, pair: Ed25519KeyPair) -> PassSigner {
        PassSigner(Some(Arc::new(SigningKey { kid, pair })))
    }

    /// The current key's id, if any.
    pub fn kid(&self) -> Option<u16> {
        self.0.as_ref().map(|k| k.kid)
    }

    fn sign(&self, claims: &PassClaims) -> Option<Result<String, crate::wire::pass::PassError>> {
        self.0
            .as_ref()
            .map(|k| crate::wire::pass::sign(claims, &k.pair))
    }
}

/// Why the pass keys could not be put to use at start.
#[derive(Debug, thiserror::Error)]
pub enum PassKeyError {
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(
        "[passes] require_key is set but {0} holds no current pass key (make one: gatehouse pki pass-key new --dir PKI)"
    )]
    Missing(PathBuf),
}

/// Loads the keys of `dir`, stores their public halves for the gates, and returns the signer
/// of the current key (none if the folder has no current key, unless `require` refuses).
pub async fn start(db: &Db, dir: &Path, require: bool) -> Result<PassSigner, PassKeyError> {
    let keys = {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || crate::pki::list_pass_keys(&dir))
            .await
            .map_err(|e| RepoError::Conflict(format!("loading the pass keys: {e}")))??
    };
    store_keys(db, &keys).await?;
    let now = Utc::now();
    match crate::pki::current_pass_key(&keys).filter(|k| k.live_at(now)) {
        Some(k) => {
            let pair = crate::pki::read_key_pair(&k.key_path)?;
            tracing::info!(kid = k.meta.kid, "visitor passes are signed with this key");
            Ok(PassSigner::new(k.meta.kid, pair))
        }
        None if require => Err(PassKeyError::Missing(dir.to_path_buf())),
        None => {
            tracing::warn!(
                dir = %dir.display(),
                "no visitor pass key: approved bookings get no pass (gatehouse pki pass-key new)"
            );
            Ok(PassSigner::none())
        }
    }
}

/// Upserts the public halves of `keys` into `pass_keys`; a stored key whose file is gone is
/// retired now. Each change writes a `pass_key` change-log entry. Returns how many changed.
pub async fn store_keys(db: &Db, keys: &[crate::pki::PassKeyFile]) -> Result<usize, RepoError> {
    let mut tx = db.begin().await?;
    let stored = sqlx::query("SELECT kid, public_key, retire_after_ms FROM pass_keys")
        .fetch_all(&mut *tx)
        .await?;
    let mut changed = 0;
    let now = now_ms();
    for k in keys {
        let kid = i64::from(k.meta.kid);
        let retire = k.meta.retire_after.map(|t| t.timestamp_millis());
        let same = stored.iter().any(|r| {
            r.try_get::<i64, _>("kid").ok() == Some(kid)
                && r.try_get::<String, _>("public_key").ok().as_deref() == Some(&k.public_key)
                && r.try_get::<Option<i64>, _>("retire_after_ms").ok() == Some(retire)
        });
        if same {
            continue;
        }
        sqlx::query("DELETE FROM pass_keys WHERE kid = $1")
            .bind(kid)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO pass_keys (kid, public_key, created_ms, retire_after_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(kid)
        .bind(&k.public_key)
        .bind(k.meta.created.timestamp_millis())
        .bind(retire)
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, PASS_KEY, kid, "upsert").await?;
        changed += 1;
    }
    for r in &stored {
        let kid: i64 = r.try_get("kid")?;
        let retire: Option<i64> = r.try_get("retire_after_ms")?;
        let on_disk = keys.iter().any(|k| i64::from(k.meta.kid) == kid);
        if !on_disk && retire.is_none_or(|t| t > now) {
            sqlx::query("UPDATE pass_keys SET retire_after_ms = $2 WHERE kid = $1")
                .bind(kid)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            record_change(&mut tx, PASS_KEY, kid, "upsert").await?;
            changed += 1;
        }
    }
    tx.commit().await?;
    Ok(changed)
}

/// A booking's pass as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredPass {
    pub booking_id: i64,
    /// The pass text (what the QR code holds, `GHP1.…`).
    pub token: String,
    /// The pass page's secret (`/pass/{secret}`).
    #[serde(skip)]
    pub link_secret: String,
    /// The key that signed it.
    pub kid: i64,
    pub issued_at: DateTime<Utc>,
    /// `issued` or `revoked`.
    pub status: String,
}

impl StoredPass {
    /// The pass page's path.
    pub fn link(&self) -> String {
        format!("/pass/{}", self.link_secret)
    }
}

fn stored(r: &sqlx::any::AnyRow) -> Result<StoredPass, RepoError> {
    Ok(StoredPass {
        booking_id: r.try_get("booking_id")?,
        token: r.try_get("token")?,
        link_secret: r.try_get("link_secret")?,
        kid: r.try_get("kid")?,
        issued_at: crate::central::repo::permits::from_ms(r.try_get("issued_ms")?),
        status: r.try_get("status")?,
    })
}

const PASS_SELECT: &str =
    "SELECT booking_id, token, link_secret, kid, issued_ms, status FROM visitor_passes";

/// The pass of a booking, if one was issued.
pub async fn for_booking(db: &Db, booking_id: i64) -> Result<Option<StoredPass>, RepoError> {
    sqlx::query(&format!("{PASS_SELECT} WHERE booking_id = $1"))
        .bind(booking_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(stored)
        .transpose()
}

/// The pass whose page secret is `secret`, with its booking.
pub async fn by_secret(db: &Db, secret: &str) -> Result<Option<(StoredPass, Booking)>, RepoError> {
    // Only what a secret can look like is looked up (22 base64url characters).
    if secret.len() != 22
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    let row = sqlx::query(&format!("{PASS_SELECT} WHERE link_secret = $1"))
        .bind(secret)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let pass = stored(&row)?;
    let booking = bookings::get(db, pass.booking_id).await?;
    Ok(Some((pass, booking)))
}

/// The public page of a booking's pass (`/pass/{secret}`), if a pass has been issued for it.
pub async fn link_for_booking(db: &Db, booking_id: i64) -> Result<Option<String>, RepoError> {
    Ok(for_booking(db, booking_id).await?.map(|p| p.link()))
}

/// The claims a booking's pass carries.
pub fn claims_for(booking: &Booking, kid: u16) -> Option<PassClaims> {
    let booking_id = u32::try_from(booking.id).ok()?;
    let minute = |t: DateTime<Utc>| u32::try_from(t.timestamp().div_euclid(60)).ok();
    let gates = match parse_gate_rights(&booking.gates).ok()? {
        GateRights::All(d) => PassGates::Every(d),
        GateRights::Only(list) => PassGates::Some(
            list.iter()
                .map(|r| (GateId(r.gate.0), r.directions))
                .collect(),
        ),
    };
    Some(PassClaims {
        key_id: kid,
        booking_id,
        plate: booking.plate.clone(),
        valid_from: UtcMinute(minute(booking.slot_from)?),
        valid_until: UtcMinute(minute(booking.slot_until)?),
        single_use: booking.single_use,
        gates,
    })
}

fn new_secret() -> String {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Issues the pass of an approved booking: signed with the current key and
/// stored with a fresh link secret. An existing pass is returned as it is; `None` when the
/// site has no key or the booking is not approved.
pub async fn issue(
    db: &Db,
    signer: &PassSigner,
    booking_id: i64,
) -> Result<Option<StoredPass>, RepoError> {
    if let Some(p) = for_booking(db, booking_id).await? {
        return Ok(Some(p));
    }
    let booking = bookings::get(db, booking_id).await?;
    // Only an approved booking: a walk-in (registered as arrived at the gate) gets none.
    if booking.status != BookingStatus::Approved {
        return Ok(None);
    }
    let Some(kid) = signer.kid() else {
        return Ok(None);
    };
    let Some(claims) = claims_for(&booking, kid) else {
        tracing::error!(booking = booking_id, "a booking's pass cannot be encoded");
        return Ok(None);
    };
    let token = match signer.sign(&claims) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            tracing::error!(booking = booking_id, error = %e, "a booking's pass cannot be signed");
            return Ok(None);
        }
        None => return Ok(None),
    };
    sqlx::query(
        "INSERT INTO visitor_passes (booking_id, token, link_secret, kid, issued_ms, status) \
         VALUES ($1, $2, $3, $4, $5, 'issued') ON CONFLICT (booking_id) DO NOTHING",
    )
    .bind(booking_id)
    .bind(&token)
    .bind(new_secret())
    .bind(i64::from(kid))
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    for_booking(db, booking_id).await
}

/// Marks a booking's pass revoked (its booking was cancelled or rejected). The gates learn it
/// from the booking row's status, which already reaches them with the booking's change.
pub async fn revoke(db: &Db, booking_id: i64) -> Result<bool, RepoError> {
    let n = sqlx::query(
        "UPDATE visitor_passes SET status = 'revoked', revoked_ms = $2 \
         WHERE booking_id = $1 AND status = 'issued'",
    )
    .bind(booking_id)
    .bind(now_ms())
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// What a pass is good for now, as the pass page and the admin pages say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PassState {
    /// Opens within its window.
    Valid,
    /// Its window has not begun.
    NotYetValid,
    /// Single use, and both directions (or the entry, with no exit left) consumed.
    Used,
    /// Its booking was cancelled, rejected, or ended.
    Revoked,
    /// Its window has ended.
    Expired,
}

impl PassState {
    /// The words for it: (zh-CN, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            PassState::Valid => ("有效", "valid"),
            PassState::NotYetValid => ("未生效", "not yet valid"),
            PassState::Used => ("已使用", "used"),
            PassState::Revoked => ("已作废", "revoked"),
            PassState::Expired => ("已过期", "expired"),
        }
    }

    /// The state of `pass` of `booking` at `now`.
    pub fn of(pass: &StoredPass, booking: &Booking, now: DateTime<Utc>) -> PassState {
        let revoked = pass.status == "revoked"
            || matches!(
                booking.status,
                BookingStatus::Cancelled
                    | BookingStatus::Rejected
                    | BookingStatus::NoShow
                    | BookingStatus::Pending
            );
        if revoked {
            return PassState::Revoked;
        }
        if booking.single_use && booking.pass_used_exit_at.is_some() {
            return PassState::Used;
        }
        if booking.status == BookingStatus::Left {
            return PassState::Used;
        }
        if now >= booking.slot_until {
            return PassState::Expired;
        }
        if now < booking.slot_from {
            return PassState::NotYetValid;
        }
        PassState::Valid
    }
}
