//! Site settings an administrator changes at run time (站点设置): the province plate inputs
//! start with, whether a guard must be signed in on duty before opening a barrier, how long
//! a lane's verdict stays bright, how long a guard may withdraw a false alarm, and after how
//! long an unstaffed booth raises an alert. One row per setting (`site_settings`); a missing
//! row is the default here, so a new setting needs no migration.
//!
//! What it never does: change a setting without an audit entry, or fail a
//! page because a stored value no longer parses (the default stands in, and the next save
//! writes a good value).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::central::db::{Actor, Db, Op, RepoError, now_ms, write_change};

/// Every site setting, with its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SiteSettings {
    /// The province abbreviation plate inputs default to (京, 浙, …).
    pub province: String,
    /// A guard (not admin or security) must be signed in on duty at a gate before they may
    /// open or keep closed one of its lanes by hand.
    pub require_duty_for_open: bool,
    /// Seconds after which a lane's verdict fades on the console (it stays readable, but no
    /// longer looks live).
    pub verdict_fade_s: u32,
    /// Seconds during which the guard who raised an alarm may withdraw it as false.
    pub alarm_withdraw_s: u32,
    /// Minutes a booth (a gate with lanes) may be without a guard on duty before the office
    /// is alerted; 0 turns the alert off.
    pub unstaffed_alert_min: u32,
}

impl Default for SiteSettings {
    fn default() -> SiteSettings {
        SiteSettings {
            province: "京".into(),
            require_duty_for_open: true,
            verdict_fade_s: 30,
            alarm_withdraw_s: 120,
            unstaffed_alert_min: 30,
        }
    }
}

/// The current settings (defaults for any not stored, or stored but unreadable).
pub async fn load(db: &Db) -> Result<SiteSettings, RepoError> {
    let rows = sqlx::query("SELECT key, value FROM site_settings")
        .fetch_all(db.pool())
        .await?;
    let mut settings =
        serde_json::to_value(SiteSettings::default()).unwrap_or(serde_json::Value::Null);
    for row in rows {
        let key: String = row.try_get(0)?;
        let value: String = row.try_get(1)?;
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&value) else {
            continue;
        };
        if let Some(slot) = settings.get_mut(&key) {
            // Only a value of the default's JSON type replaces it.
            if std::mem::discriminant(slot) == std::mem::discriminant(&value) {
                *slot = value;
            }
        }
    }
    Ok(serde_json::from_value(settings).unwrap_or_default())
}

/// Stores `new` (every setting), audited with the settings before and after.
pub async fn save(db: &Db, actor: &Actor, new: &SiteSettings) -> Result<SiteSettings, RepoError> {
    let before = load(db).await?;
    let mut tx = db.begin().await?;
    let now = now_ms();
    let values = serde_json::to_value(new).unwrap_or(serde_json::Value::Null);
    for (key, value) in values.as_object().into_iter().flatten() {
        sqlx::query(
            "INSERT INTO site_settings (key, value, updated_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    write_change(
        &mut tx,
        actor,
        Op::Audit("update"),
        "site_settings",
        "site",
        Some(&before),
        Some(new),
    )
    .await?;
    tx.commit().await?;
    Ok(new.clone())
}
