//! The change log read as deltas: every entity that changed after a data version, as its
//! current row or its removal, urgent withdrawals apart.
//!
//! A step (`since` → the head) is the same for every gate but for one part: the gate's own
//! settings, sent when that gate, any lane or a pass key changed in the step. So the step is
//! read once ([`changes_step`]) with the settings of every gate that gets them, and each gate's
//! answer is taken from it ([`ChangesStep::for_gate`]): with a thousand gates long-polling, a
//! revocation costs one read of the step, not a thousand.
//!
//! What it never does: write the change log (the repositories do, with each write).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::Row;

use super::{
    BLACKLIST_SELECT, BOOKING_SELECT, LOCK_SELECT, MAX_DELTA, PERMIT_SELECT, PRESENCE,
    PRESENCE_BATCH, all_gate_settings, blacklist_row, booking_row, credential_row, gate_settings,
    head, lock_row, permit_row, presence_row,
};
use crate::central::db::{Db, DbKind, RepoError};
use crate::wire::rows::VehicleRecord;
use crate::wire::sync::{Changes, GateSettings};

/// What changed after data version `since`, for gate `gate_id`: at most [`MAX_DELTA`]
/// change-log entries (the answer's `version` says how far it got; ask again from there).
pub async fn changes_since(db: &Db, gate_id: i64, since: u64) -> Result<Changes, RepoError> {
    Ok(changes_step(db, since).await?.for_gate(gate_id))
}

/// One step of the change log (`since` → what was committed when it was read), for every gate:
/// the data all gates get alike, and the settings of the gates that get theirs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangesStep {
    /// The answer without any gate's settings (`gate` is `None`).
    pub shared: Changes,
    /// Which gates get their settings with this step, and those settings.
    pub settings: StepSettings,
}

/// Which gates' settings a step carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StepSettings {
    /// None: no gate, lane or pass key changed in the step.
    #[default]
    None,
    /// A lane or a pass key changed: every gate gets its settings (a gate not in the map no
    /// longer exists).
    All(HashMap<i64, GateSettings>),
    /// These gates changed: each of them gets its settings (`None`: it no longer exists).
    Gates(HashMap<i64, Option<GateSettings>>),
}

impl ChangesStep {
    /// The settings gate `gate_id` gets with this step, if any.
    pub fn settings_for(&self, gate_id: i64) -> Option<&GateSettings> {
        match &self.settings {
            StepSettings::None => None,
            StepSettings::All(all) => all.get(&gate_id),
            StepSettings::Gates(some) => some.get(&gate_id).and_then(Option::as_ref),
        }
    }

    /// Gate `gate_id`'s answer: the shared part with its own settings.
    pub fn for_gate(&self, gate_id: i64) -> Changes {
        Changes {
            gate: self.settings_for(gate_id).cloned(),
            ..self.shared.clone()
        }
    }
}

/// Reads one step of the change log after `since` (at most [`MAX_DELTA`] entries), in one
/// read transaction, with the settings of every gate that gets them.
pub async fn changes_step(db: &Db, since: u64) -> Result<ChangesStep, RepoError> {
    let mut tx = db.begin().await?;
    if db.kind() == DbKind::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let current = head(&mut tx).await?;
    let reset = |version| ChangesStep {
        shared: Changes {
            version,
            reset: true,
            ..Changes::default()
        },
        settings: StepSettings::None,
    };
    if since > current {
        return Ok(reset(current));
    }
    let entries = sqlx::query(
        "SELECT seq, entity, entity_id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(since as i64)
    .bind(MAX_DELTA + 1)
    .fetch_all(&mut *tx)
    .await?;
    if entries.len() as i64 > MAX_DELTA {
        return Ok(reset(current));
    }
    let mut version = since;
    let mut changed: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut presence: BTreeSet<i64> = BTreeSet::new();
    for e in &entries {
        version = version.max(e.try_get::<i64, _>("seq")? as u64);
        let id: String = e.try_get("entity_id")?;
        let entity: String = e.try_get("entity")?;
        if entity == PRESENCE_BATCH {
            presence.extend(id.split(',').filter_map(|v| v.parse::<i64>().ok()));
            continue;
        }
        let Ok(id) = id.parse::<i64>() else { continue };
        changed.entry(entity).or_default().insert(id);
    }
    let mut out = Changes {
        version,
        ..Changes::default()
    };
    out.urgent.data_version = since;
    out.update.data_version = version;
    let empty = BTreeSet::new();
    let ids = |entity: &str| changed.get(entity).unwrap_or(&empty);

    let mut permits: BTreeSet<i64> = ids("permit").clone();
    for person in ids("person") {
        let held: Vec<i64> = sqlx::query_scalar("SELECT id FROM permits WHERE holder_id = $1")
            .bind(person)
            .fetch_all(&mut *tx)
            .await?;
        permits.extend(held);
    }
    let mut vehicles: BTreeSet<i64> = ids("vehicle").clone();
    for id in &permits {
        match sqlx::query(&format!("{PERMIT_SELECT} WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => {
                let row = permit_row(&r)?;
                if row.status == "active" {
                    out.update.permits.push(row);
                } else {
                    out.urgent.permits.push(row);
                }
                let holders: Vec<i64> = sqlx::query_scalar(
                    "SELECT vehicle_id FROM permit_vehicles WHERE permit_id = $1",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                vehicles.extend(holders);
            }
            None => out.urgent.delete_permits.push(*id as u32),
        }
    }
    for id in &vehicles {
        match sqlx::query("SELECT id, plate, plate_colour FROM vehicles WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => {
                let permit_ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT permit_id FROM permit_vehicles WHERE vehicle_id = $1 ORDER BY permit_id",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                out.update.vehicles.push(VehicleRecord {
                    id: *id as u32,
                    plate: r.try_get("plate")?,
                    colour: r.try_get("plate_colour")?,
                    permit_ids: permit_ids.into_iter().map(|p| p as u32).collect(),
                });
            }
            None => out.urgent.delete_vehicles.push(*id as u32),
        }
    }
    for id in ids("credential") {
        match sqlx::query("SELECT epc, tid, vehicle_id, status FROM credentials WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) if r.try_get::<String, _>("status")? == "active" => {
                out.update.credentials.push(credential_row(&r)?)
            }
            Some(r) => out.urgent.delete_credentials.push(r.try_get("epc")?),
            // Deleted: its EPC is in the audit entry written with the deletion.
            None => {
                let before: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT before_json FROM audit_log WHERE entity = 'credential' \
                     AND entity_id = $1 AND action = 'delete' ORDER BY id DESC LIMIT 1",
                )
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(epc) = before
                    .flatten()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                    .and_then(|b| b.get("epc").and_then(|e| e.as_str()).map(str::to_string))
                {
                    out.urgent.delete_credentials.push(epc);
                }
            }
        }
    }
    for id in ids("blacklist") {
        match sqlx::query(&format!("{BLACKLIST_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => out.urgent.blacklist.push(blacklist_row(&r)?),
            None => out.update.delete_blacklist.push(*id as u32),
        }
    }
    for id in ids("vehicle_lock") {
        match sqlx::query(&format!("{LOCK_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => out.urgent.locks.push(lock_row(&r)?),
            None => out.update.delete_locks.push(*id as u32),
        }
    }
    for id in ids("visitor_booking") {
        match sqlx::query(&format!("{BOOKING_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(r) => out.update.bookings.push(booking_row(&r)?),
            None => out.update.delete_bookings.push(*id as u32),
        }
    }
    presence.extend(ids(PRESENCE));
    let presence: Vec<i64> = presence.into_iter().collect();
    for chunk in presence.chunks(PRESENCE_READ_CHUNK) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT vehicle_id, inside, since_ms, gate_id FROM vehicle_presence \
             WHERE vehicle_id IN ({list}) ORDER BY vehicle_id"
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            out.presence.push(presence_row(&r)?);
        }
    }
    let lane_touched = !ids("lane").is_empty();
    // A pass key added, rotated out or retired: every gate gets its settings (with the keys).
    let keys_touched = !ids(crate::central::repo::passes::PASS_KEY).is_empty();
    let settings = if lane_touched || keys_touched {
        StepSettings::All(all_gate_settings(&mut tx).await?)
    } else if ids("gate").is_empty() {
        StepSettings::None
    } else if ids("gate").len() <= SETTINGS_ONE_BY_ONE {
        let mut some = HashMap::new();
        for gate in ids("gate") {
            some.insert(*gate, gate_settings(&mut tx, *gate).await?);
        }
        StepSettings::Gates(some)
    } else {
        // Many gates at once (a campus-wide mode): every gate's settings in three reads.
        let all = all_gate_settings(&mut tx).await?;
        StepSettings::Gates(
            ids("gate")
                .iter()
                .map(|g| (*g, all.get(g).cloned()))
                .collect(),
        )
    };
    tx.commit().await?;
    Ok(ChangesStep {
        shared: out,
        settings,
    })
}

/// Up to this many changed gates in a step, their settings are read gate by gate; more, all
/// gates' at once.
const SETTINGS_ONE_BY_ONE: usize = 8;

/// Vehicles per presence read of a delta (one bound id each).
const PRESENCE_READ_CHUNK: usize = 500;
