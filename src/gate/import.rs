//! `gatehouse gate import-permits`: loads permits from a CSV file into the gate's local store, so
//! an installer can commission a lane before any central server exists.
//!
//! One row per permit × vehicle × tag, UTF-8 (a BOM is accepted), with this header:
//!
//! ```text
//! permit_id,holder_id,holder_name,department,category,plate,plate_colour,epc,tid,valid_from,valid_until,gates,schedule,single_use,max_inside
//! ```
//!
//! - `valid_from` / `valid_until`: `YYYY-MM-DD HH:MM` (or a date) in the site's time zone; the
//!   permit works from the first minute up to, not including, the second.
//! - `gates`, `schedule`: the text forms of `domain::text` (`all`, `1;2:exit`; `mon-fri
//!   07:00-22:00`, empty for always). `tid` may be empty; `single_use` is `true`/`false` (or
//!   `1`/`0`, 是/否); `max_inside` may be empty (no limit).
//! - A permit covering two vehicles takes two rows with the same permit columns.
//!
//! Every bad row is reported with its line number and what is wrong; if any row is bad, nothing is
//! imported. This module never talks to devices.

use std::collections::HashMap;
use std::io::Read;

use chrono_tz::Tz;

use crate::domain::text::parse_local_minute;
use crate::domain::{Epc, Plate};
use crate::gate::store::{Store, StoreError};
use crate::wire::rows::{CredentialRecord, PermitRecord, Update, VehicleRecord};

/// The header an import file must have, in this order.
pub const COLUMNS: [&str; 15] = [
    "permit_id",
    "holder_id",
    "holder_name",
    "department",
    "category",
    "plate",
    "plate_colour",
    "epc",
    "tid",
    "valid_from",
    "valid_until",
    "gates",
    "schedule",
    "single_use",
    "max_inside",
];

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} bad row(s); nothing was imported:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rows(Vec<RowError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub permits: usize,
    pub vehicles: usize,
    pub credentials: usize,
}

/// Parses a CSV file into an [`Update`] against what the store already holds, or every error.
pub async fn plan(input: impl Read, tz: Tz, store: &Store) -> Result<Update, ImportError> {
    let existing = store.load().await?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut errors = Vec::new();
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_string())
            .collect(),
        Err(e) => {
            return Err(ImportError::Rows(vec![RowError {
                line: 1,
                message: format!("the header cannot be read: {e}"),
            }]));
        }
    };
    if header != COLUMNS {
        return Err(ImportError::Rows(vec![RowError {
            line: 1,
            message: format!(
                "wrong columns: expected {}, found {}",
                COLUMNS.join(","),
                header.join(",")
            ),
        }]));
    }

    // Vehicles by plate + colour: existing ones keep their ids; new ones get the next free id.
    let mut vehicles: HashMap<(String, String), VehicleRecord> = existing
        .vehicles
        .iter()
        .map(|v| {
            let row = VehicleRecord {
                id: v.id.0,
                plate: v.plate.plate.as_str().to_string(),
                colour: v.plate.colour.as_str().to_string(),
                permit_ids: v.permit_ids.iter().map(|p| p.0).collect(),
            };
            ((row.plate.clone(), row.colour.clone()), row)
        })
        .collect();
    let mut next_vehicle = existing.vehicles.iter().map(|v| v.id.0).max().unwrap_or(0) + 1;
    let mut tag_owner: HashMap<Epc, (u32, u64)> = existing
        .credentials
        .iter()
        .map(|c| (c.epc, (c.vehicle_id.0, 0)))
        .collect();
    let mut permits: HashMap<u32, (PermitRecord, u64)> = HashMap::new();
    let mut credentials = Vec::new();
    let mut touched_vehicles = std::collections::BTreeSet::new();

    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 2;
        let mut fail = |message: String| errors.push(RowError { line, message });
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                fail(format!("cannot be read: {e}"));
                continue;
            }
        };
        if record.len() != COLUMNS.len() {
            fail(format!(
                "has {} fields; expected {}",
                record.len(),
                COLUMNS.len()
            ));
            continue;
        }
        let field = |name: &str| {
            record
                .get(COLUMNS.iter().position(|c| *c == name).unwrap())
                .unwrap_or("")
        };
        let number = |name: &str| -> Result<u32, String> {
            field(name)
                .parse::<u32>()
                .map_err(|_| format!("{name} {:?} is not a whole number", field(name)))
        };
        let row_result =
            (|| -> Result<(PermitRecord, String, String, CredentialRecord), String> {
                let permit_id = number("permit_id")?;
                let holder_id = number("holder_id")?;
                let valid_from = parse_local_minute(field("valid_from"), tz)
                    .map_err(|e| format!("valid_from: {e}"))?;
                let valid_until = parse_local_minute(field("valid_until"), tz)
                    .map_err(|e| format!("valid_until: {e}"))?;
                if valid_until <= valid_from {
                    return Err(format!(
                        "valid_until {} is not after valid_from {}",
                        field("valid_until"),
                        field("valid_from")
                    ));
                }
                let single_use = match field("single_use") {
                    "" | "false" | "0" | "否" => false,
                    "true" | "1" | "是" => true,
                    other => return Err(format!("single_use {other:?} is not true or false")),
                };
                let max_inside = match field("max_inside") {
                    "" => None,
                    n => Some(
                        n.parse::<u16>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("max_inside {n:?} is not a number from 1"))?,
                    ),
                };
                let permit = PermitRecord {
                    id: permit_id,
                    category: field("category").to_string(),
                    holder_id,
                    holder_name: field("holder_name").to_string(),
                    department: field("department").to_string(),
                    status: "active".into(),
                    status_reason: String::new(),
                    valid_from: valid_from.0,
                    valid_until: valid_until.0,
                    gates: field("gates").to_string(),
                    schedule: field("schedule").to_string(),
                    single_use,
                    max_inside,
                    version: 1,
                };
                if permit.holder_name.is_empty() {
                    return Err("holder_name is empty".into());
                }
                permit.to_domain().map_err(|e| e.to_string())?;
                let plate = Plate::parse(field("plate"))
                    .map_err(|e| format!("plate {:?}: {e}", field("plate")))?;
                let colour = field("plate_colour");
                if crate::domain::PlateColour::from_code(colour).is_none() {
                    return Err(format!(
                        "plate_colour {colour:?} is not blue, yellow, green, yellow_green, white or black"
                    ));
                }
                let credential = CredentialRecord {
                    epc: field("epc").to_ascii_uppercase(),
                    tid: Some(field("tid").to_ascii_uppercase()).filter(|t| !t.is_empty()),
                    vehicle_id: 0,
                };
                credential.to_domain().map_err(|e| e.to_string())?;
                Ok((
                    permit,
                    plate.as_str().to_string(),
                    colour.to_string(),
                    credential,
                ))
            })();
        let (permit, plate, colour, mut credential) = match row_result {
            Ok(parts) => parts,
            Err(message) => {
                fail(message);
                continue;
            }
        };
        match permits.get(&permit.id) {
            Some((earlier, earlier_line)) if *earlier != permit => {
                fail(format!(
                    "permit {} is described differently on line {earlier_line}",
                    permit.id
                ));
                continue;
            }
            Some(_) => {}
            None => {
                permits.insert(permit.id, (permit.clone(), line));
            }
        }
        let vehicle = vehicles
            .entry((plate.clone(), colour.clone()))
            .or_insert_with(|| {
                let row = VehicleRecord {
                    id: next_vehicle,
                    plate,
                    colour,
                    permit_ids: Vec::new(),
                };
                next_vehicle += 1;
                row
            });
        if !vehicle.permit_ids.contains(&permit.id) {
            vehicle.permit_ids.push(permit.id);
        }
        touched_vehicles.insert((vehicle.plate.clone(), vehicle.colour.clone()));
        credential.vehicle_id = vehicle.id;
        let epc = credential.to_domain().expect("checked above").epc;
        match tag_owner.get(&epc) {
            Some((owner, owner_line)) if *owner != vehicle.id => {
                let at = if *owner_line == 0 {
                    "already issued to another vehicle in the store".to_string()
                } else {
                    format!("already used for another vehicle on line {owner_line}")
                };
                fail(format!("tag {} is {at}", credential.epc));
                continue;
            }
            _ => {
                tag_owner.insert(epc, (vehicle.id, line));
            }
        }
        credentials.push(credential);
    }
    if !errors.is_empty() {
        return Err(ImportError::Rows(errors));
    }
    let mut permits: Vec<PermitRecord> = permits.into_values().map(|(p, _)| p).collect();
    permits.sort_by_key(|p| p.id);
    let vehicles: Vec<VehicleRecord> = vehicles
        .into_iter()
        .filter(|(key, _)| touched_vehicles.contains(key))
        .map(|(_, v)| v)
        .collect();
    Ok(Update {
        data_version: existing.data_version + 1,
        permits,
        vehicles,
        credentials,
        ..Update::default()
    })
}

/// Plans the import and, if every row is good, applies it in one transaction.
pub async fn import(input: impl Read, tz: Tz, store: &Store) -> Result<ImportSummary, ImportError> {
    let update = plan(input, tz, store).await?;
    store.apply(&update).await?;
    Ok(ImportSummary {
        permits: update.permits.len(),
        vehicles: update.vehicles.len(),
        credentials: update.credentials.len(),
    })
}
