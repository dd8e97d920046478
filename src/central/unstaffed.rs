//! The unstaffed booth alert: a booth (an enabled gate with lanes) that has had no guard on
//! duty for longer than the site setting `unstaffed_alert_min` raises one `booth_unstaffed`
//! alarm to the office per unstaffed period; the alarm is cleared when a guard signs in there.
//!
//! [`check_once`] is one step over every booth at a given `now` (tests call it with chosen
//! times); [`run`] calls it once a minute until the server stops. "Once per period" holds across
//! central instances: the alarm is an episode ([`alarms::open_episode`]) that only one caller
//! can open, and signing in ([`staffed`]) or a later check closes it.
//!
//! When the period starts: at the end of the booth's last duty, or, for a booth nobody has ever
//! signed in to, when the gate was created.
//!
//! What it never does: call the police link (an empty booth is the office's to handle), raise
//! anything while the setting is 0, or sleep inside a step.

use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::central::db::{Db, RepoError};
use crate::central::live::{LiveHub, LiveMessage};
use crate::central::repo::{alarms, duty, settings};

/// The alarm kind.
pub const BOOTH_UNSTAFFED: &str = "booth_unstaffed";

/// How often [`run`] checks.
const EVERY: Duration = Duration::from_secs(60);

/// What one check did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The setting was 0: nothing was raised.
    pub off: bool,
    /// Gates whose alarm this check raised.
    pub raised: Vec<i64>,
    /// Gates whose alarm this check cleared (a guard is on duty again).
    pub cleared: Vec<i64>,
}

/// Checks every booth at `now_ms`: raises the alarm of each one unstaffed for longer than the
/// setting (once per period) and clears the alarm of each one staffed again.
pub async fn check_once(db: &Db, live: &LiveHub, now_ms: i64) -> Result<Checked, RepoError> {
    let minutes = i64::from(settings::load(db).await?.unstaffed_alert_min);
    let booths: Vec<(i64, i64)> = sqlx::query(
        "SELECT g.id, g.created_ms FROM gates g WHERE g.enabled = 1 \
         AND EXISTS (SELECT 1 FROM lanes l WHERE l.gate_id = g.id) ORDER BY g.id",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, RepoError>>()?;
    let staffing = duty::staffing(db).await?;
    let open: Vec<i64> = sqlx::query_scalar(
        "SELECT gate_id FROM alarm_episodes WHERE kind = $1 AND subject = '' AND open = 1",
    )
    .bind(BOOTH_UNSTAFFED)
    .fetch_all(db.pool())
    .await?;
    let mut done = Checked {
        off: minutes == 0,
        ..Checked::default()
    };
    for (gate_id, created_ms) in booths {
        let s = staffing.iter().find(|s| s.gate_id == gate_id);
        let on_duty = s.is_some_and(|s| s.on_duty);
        if on_duty {
            if open.contains(&gate_id) && staffed(db, live, gate_id).await? {
                done.cleared.push(gate_id);
            }
            continue;
        }
        if minutes == 0 || open.contains(&gate_id) {
            continue;
        }
        let since = s.and_then(|s| s.last_ended_ms).unwrap_or(created_ms);
        if now_ms - since < minutes * 60_000 {
            continue;
        }
        let note = format!("岗亭无人值班已超过 {minutes} 分钟");
        if let Some(alarm) =
            alarms::open_episode(db, gate_id, BOOTH_UNSTAFFED, "", 0, &note, "none").await?
        {
            tracing::warn!(gate = gate_id, alarm = alarm.id, "booth unstaffed");
            live.publish(LiveMessage::Alarm {
                gate_id,
                alarm_id: alarm.id,
            });
            done.raised.push(gate_id);
        }
    }
    Ok(done)
}

/// A guard is on duty at `gate_id`: its unstaffed alarm, if raised, is cleared (and the office
/// told). Whether there was one to clear.
pub async fn staffed(db: &Db, live: &LiveHub, gate_id: i64) -> Result<bool, RepoError> {
    match alarms::close_episode(db, gate_id, BOOTH_UNSTAFFED, "", 0).await? {
        Some(alarm_id) => {
            tracing::info!(gate = gate_id, alarm = alarm_id, "booth staffed again");
            live.publish(LiveMessage::Alarm { gate_id, alarm_id });
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Checks once a minute until `stop`; a failed check is logged and the next one tries again.
pub async fn run(db: Db, live: LiveHub, stop: CancellationToken) {
    loop {
        if let Err(e) = check_once(&db, &live, crate::central::db::now_ms()).await {
            tracing::error!(error = %e, "unstaffed booth check failed");
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = stop.cancelled() => return,
        }
    }
}
