//! Retention of passage events: GA/T 1742 requires passage records to be kept at least 365
//! days, so the centre deletes events only when they are older than the configured
//! `[retention] keep_days` (never fewer than [`MIN_KEEP_DAYS`]: a smaller value is refused when
//! the configuration is read). The server purges once a day ([`run_daily`]); an administrator
//! can purge on demand (`POST /api/v1/retention/purge`). Each purge is audited.
//!
//! Photos have a retention of their own, shorter: `[photos] retention_days` (default 90) from
//! their arrival at the centre. The daily run also deletes the photos past it from the photo
//! backend and the `photos` table ([`purge_photos`]); the events that refer to them stay their
//! 365 days or more (a photo's hash in an old event then leads to a 404).
//!
//! What it never does: touch the statistics tables (they are aggregates and hold no single
//! passage), the audit log, or the gates' watermarks (a purged event is still acknowledged).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::central::db::{Actor, Db, RepoError, audit, now_ms};
use crate::central::photos::{PhotoStoreError, Photos, PhotosPurged};

/// The legal floor: GA/T 1742-2020 keeps passage records for at least 365 days.
pub const MIN_KEEP_DAYS: u32 = 365;

const DAY_MS: i64 = 86_400_000;

/// `[retention]` in `server.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRetention")]
pub struct RetentionConfig {
    /// Days passage events are kept; at least 365. Default 365.
    pub keep_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> RetentionConfig {
        RetentionConfig {
            keep_days: MIN_KEEP_DAYS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(default = "min_keep_days")]
    keep_days: u32,
}

fn min_keep_days() -> u32 {
    MIN_KEEP_DAYS
}

impl TryFrom<RawRetention> for RetentionConfig {
    type Error = String;

    fn try_from(raw: RawRetention) -> Result<RetentionConfig, String> {
        if raw.keep_days < MIN_KEEP_DAYS {
            return Err(format!(
                "retention.keep_days is {}, but passage events must be kept at least {MIN_KEEP_DAYS} days (GA/T 1742)",
                raw.keep_days
            ));
        }
        Ok(RetentionConfig {
            keep_days: raw.keep_days,
        })
    }
}

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Purged {
    /// Events deleted.
    pub deleted: u64,
    /// Events before this instant (by the gate's clock) were deleted.
    pub cutoff: chrono::DateTime<chrono::Utc>,
    pub keep_days: u32,
}

/// Deletes the passage events older than `keep_days` before `now_ms`, audited as `purge` on
/// `passage_events`. `keep_days` below [`MIN_KEEP_DAYS`] is raised to it.
pub async fn purge(
    db: &Db,
    actor: &Actor,
    keep_days: u32,
    now_ms: i64,
) -> Result<Purged, RepoError> {
    let keep_days = keep_days.max(MIN_KEEP_DAYS);
    let cutoff = now_ms - i64::from(keep_days) * DAY_MS;
    let mut tx = db.begin().await?;
    let deleted = sqlx::query("DELETE FROM passage_events WHERE at_ms < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let purged = Purged {
        deleted,
        cutoff: crate::central::repo::audit::at(cutoff),
        keep_days,
    };
    audit(
        &mut tx,
        actor,
        "purge",
        "passage_events",
        "",
        None,
        Some(&serde_json::to_value(&purged).unwrap_or_default()),
    )
    .await?;
    tx.commit().await?;
    Ok(purged)
}

/// Deletes the photos past `[photos] retention_days` before `now_ms` (from the backend, then
/// the table), audited as `purge` on `photos` when any went. Events are not touched.
pub async fn purge_photos(
    db: &Db,
    photos: &Photos,
    actor: &Actor,
    now_ms: i64,
) -> Result<PhotosPurged, PhotoStoreError> {
    let purged = photos.purge(db, now_ms).await?;
    if purged.deleted > 0 || purged.failed > 0 {
        let mut tx = db.begin().await?;
        audit(
            &mut tx,
            actor,
            "purge",
            "photos",
            "",
            None,
            Some(&serde_json::to_value(purged).unwrap_or_default()),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(purged)
}

/// Purges once now and then every 24 hours, until the task is dropped: passage events past
/// `config.keep_days`, photos past their own retention. Failures are logged and retried the
/// next day.
pub async fn run_daily(db: Db, config: RetentionConfig, photos: Photos) {
    let mut tick = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        tick.tick().await;
        match purge(&db, &Actor::system(), config.keep_days, now_ms()).await {
            Ok(p) => tracing::info!(
                deleted = p.deleted,
                keep_days = p.keep_days,
                "passage events purged"
            ),
            Err(e) => tracing::error!(error = %e, "passage event purge failed"),
        }
        match purge_photos(&db, &photos, &Actor::system(), now_ms()).await {
            Ok(p) => tracing::info!(
                deleted = p.deleted,
                failed = p.failed,
                retention_days = p.retention_days,
                "photos purged"
            ),
            Err(e) => tracing::error!(error = %e, "photo purge failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_than_365_days_of_retention_is_refused_and_the_default_is_365() {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            retention: RetentionConfig,
        }
        let d: Doc = toml::from_str("").unwrap();
        assert_eq!(d.retention.keep_days, 365);
        let d: Doc = toml::from_str("[retention]\nkeep_days = 730\n").unwrap();
        assert_eq!(d.retention.keep_days, 730);
        let err = toml::from_str::<Doc>("[retention]\nkeep_days = 90\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("at least 365 days"), "{err}");
        assert!(toml::from_str::<Doc>("[retention]\nkeep = 400\n").is_err());
    }
}
