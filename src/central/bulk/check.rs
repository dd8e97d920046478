//! Checking every row of a read file against the same rules as the API, the database (read
//! once, before, into [`Lookups`]) and the rest of the file (duplicates), reporting each bad row
//! with its line, column and reason. CPU-bound once the lookups are read.
//!
//! What it never does: write anything, or stop at the first bad row.

use std::collections::{HashMap, HashSet};

use chrono_tz::Tz;
use sqlx::Row;

use super::cells::{
    Cells, bool_cell, category, category_error, colour, header_index, id_card_cell, time_cell,
    vehicle_type,
};
use super::{Kind, PermitImportRow, Prepared, Progress, RowError, Sheet, VehicleImportRow};
use crate::central::db::{Db, RepoError};
use crate::central::repo::persons::NewPerson;
use crate::central::validate;
use crate::domain::text::{parse_gate_rights, parse_schedule};
use crate::domain::{GateRights, Plate};
use crate::i18n::Msg;

/// The ID-card numbers of every person (normalised) → person id.
async fn people_by_id_card(db: &Db) -> Result<HashMap<String, i64>, RepoError> {
    let rows = sqlx::query("SELECT id, id_card FROM persons WHERE id_card <> ''")
        .fetch_all(db.pool())
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        out.insert(r.try_get("id_card")?, r.try_get("id")?);
    }
    Ok(out)
}

/// What checking rows needs from the database, read (async) before the rows are checked.
#[derive(Debug, Default)]
pub struct Lookups {
    /// ID-card number → person id.
    people: HashMap<String, i64>,
    /// (plate, colour) of every registered vehicle (vehicles).
    vehicles: HashSet<(String, String)>,
    /// Plate → vehicle ids (permits).
    plates: HashMap<String, Vec<i64>>,
    /// Gate ids (permits).
    gates: HashSet<i64>,
}

/// Reads what [`check`] compares `kind` rows against.
pub async fn lookups(db: &Db, kind: Kind) -> Result<Lookups, RepoError> {
    let mut out = Lookups {
        people: people_by_id_card(db).await?,
        ..Lookups::default()
    };
    match kind {
        Kind::Persons => {}
        Kind::Vehicles => {
            for r in sqlx::query("SELECT plate, plate_colour FROM vehicles")
                .fetch_all(db.pool())
                .await?
            {
                out.vehicles
                    .insert((r.try_get("plate")?, r.try_get("plate_colour")?));
            }
        }
        Kind::Permits => {
            for r in sqlx::query("SELECT id, plate FROM vehicles")
                .fetch_all(db.pool())
                .await?
            {
                out.plates
                    .entry(r.try_get("plate")?)
                    .or_default()
                    .push(r.try_get("id")?);
            }
            out.gates = sqlx::query("SELECT id FROM gates")
                .fetch_all(db.pool())
                .await?
                .iter()
                .map(|r| r.try_get("id"))
                .collect::<Result<_, _>>()?;
        }
    }
    Ok(out)
}

/// Checks every row of `sheet` as `kind` against `lookups` and the rest of the file (times read
/// in the site's zone `tz`): the rows ready to write, and every error found. CPU-bound (no IO):
/// callers on an async runtime run it with `spawn_blocking`.
pub fn check(
    kind: Kind,
    sheet: &Sheet,
    lookups: &Lookups,
    tz: Tz,
    progress: &Progress,
) -> (Prepared, Vec<RowError>) {
    let mut errors = Vec::new();
    let index = header_index(kind, &sheet.header, &mut errors);
    if !errors.is_empty() {
        return (Prepared::Persons(vec![]), errors);
    }
    progress.set_phase("checking");
    let prepared = match kind {
        Kind::Persons => persons(sheet, &index, lookups, progress, &mut errors),
        Kind::Vehicles => vehicles(sheet, &index, lookups, progress, &mut errors),
        Kind::Permits => permits(sheet, &index, lookups, tz, progress, &mut errors),
    };
    (prepared, errors)
}

/// Runs `check` on each row of `sheet`, its cells read (and its errors recorded) through a
/// [`Cells`]; ticks `progress` after each.
fn each_row(
    sheet: &Sheet,
    index: &HashMap<&'static str, usize>,
    progress: &Progress,
    errors: &mut Vec<RowError>,
    mut check: impl FnMut(Cells<'_>),
) {
    for (line, cells) in &sheet.rows {
        check(Cells {
            line: *line,
            index,
            cells,
            errors: &mut *errors,
        });
        progress.tick();
    }
}

/// The person whose ID-card number is in the required cell `key` (`label`: its name for the
/// message), looked up in `people`; an unknown one is recorded as `unknown_code`.
fn person_cell(
    c: &mut Cells<'_>,
    (key, label): (&'static str, &'static str),
    unknown_code: &'static str,
    people: &HashMap<String, i64>,
) -> Option<i64> {
    let number = c.required(key, label)?;
    let number = id_card_cell(c, key, &number)?;
    let id = people.get(&number).copied();
    if id.is_none() {
        c.error(
            key,
            unknown_code,
            Msg::new(
                "没有持此身份证号的人员：请先导入人员",
                "no person has this ID-card number: import the people first",
            ),
        );
    }
    id
}

/// Person rows: each checked like the API's, its ID-card number new to the database and the file.
fn persons(
    sheet: &Sheet,
    index: &HashMap<&'static str, usize>,
    lookups: &Lookups,
    progress: &Progress,
    errors: &mut Vec<RowError>,
) -> Prepared {
    let existing = &lookups.people;
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut out = Vec::with_capacity(sheet.rows.len());
    each_row(sheet, index, progress, errors, |mut c| {
        let cat = c.get("category");
        let code = category(&cat);
        if code.is_none() {
            category_error(&mut c, &cat);
        }
        let new = NewPerson {
            name: c.get("name"),
            category: code.unwrap_or("staff").to_string(),
            department: c.get("department"),
            phone: c.get("phone"),
            id_card: c.get("id_card"),
            staff_no: c.get("staff_no"),
            email: c.get("email"),
        };
        match validate::person(new) {
            Ok(p) => {
                if !p.id_card.is_empty() {
                    if let Some(id) = existing.get(&p.id_card) {
                        c.error(
                            "id_card",
                            "already_registered",
                            Msg::new(
                                format!("身份证号已登记（人员 {id}）"),
                                format!("this ID-card number is already registered (person {id})"),
                            ),
                        );
                    } else if let Some(first) = seen.insert(p.id_card.clone(), c.line) {
                        c.error(
                            "id_card",
                            "duplicate_in_file",
                            Msg::new(
                                format!("身份证号与第 {first} 行重复"),
                                format!("the same ID-card number as line {first}"),
                            ),
                        );
                    }
                }
                out.push(p);
            }
            Err(fields) => {
                for f in fields {
                    c.error(&f.field, f.code, f.message);
                }
            }
        }
    });
    Prepared::Persons(out)
}

/// Vehicle rows: plate, colour, type and an owner known by ID-card number; new to the database and
/// the file.
fn vehicles(
    sheet: &Sheet,
    index: &HashMap<&'static str, usize>,
    lookups: &Lookups,
    progress: &Progress,
    errors: &mut Vec<RowError>,
) -> Prepared {
    let (owners, taken) = (&lookups.people, &lookups.vehicles);
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut out = Vec::with_capacity(sheet.rows.len());
    each_row(sheet, index, progress, errors, |mut c| {
        let before = c.errors.len();
        let plate = c
            .required("plate", "车牌号")
            .and_then(|text| match Plate::parse(&text) {
                Ok(p) => Some(p.as_str().to_string()),
                Err(e) => {
                    c.error("plate", e.code(), Msg::plate(&e));
                    None
                }
            });
        let colour_text = c.get("plate_colour");
        let colour = colour(&colour_text);
        if colour.is_none() {
            c.error(
                "plate_colour",
                "invalid_plate_colour",
                Msg::new(
                    format!("车牌颜色“{colour_text}”无效，应为蓝、黄、绿、黄绿、白、黑（或 blue、yellow、green、yellow_green、white、black）"),
                    format!("plate colour {colour_text:?} is not one of blue, yellow, green, yellow_green, white, black"),
                ),
            );
        }
        let type_text = c.get("vehicle_type");
        let vtype = vehicle_type(&type_text);
        if vtype.is_none() {
            c.error(
                "vehicle_type",
                "invalid_vehicle_type",
                Msg::new(
                    format!("车辆类型“{type_text}”无效，应为 car/轿车、suv、van/面包车、truck/货车、bus/客车、motorcycle/摩托车 或 other/其他"),
                    format!("vehicle type {type_text:?} is not one of car, suv, van, truck, bus, motorcycle, other"),
                ),
            );
        }
        let owner = person_cell(
            &mut c,
            ("owner_id_card", "车主身份证号"),
            "unknown_owner",
            owners,
        );
        let note = c.get("note");
        if note.chars().count() > 500 {
            c.error(
                "note",
                "too_long",
                Msg::new(
                    "备注最多 500 个字符",
                    "the note has more than 500 characters",
                ),
            );
        }
        if let (Some(plate), Some(colour)) = (&plate, colour) {
            let key = (plate.clone(), colour.to_string());
            if taken.contains(&key) {
                c.error(
                    "plate",
                    "already_registered",
                    Msg::new(
                        format!("车辆 {plate}（{}）已登记", validate::colour_zh(colour)),
                        format!("vehicle {plate} ({colour}) is already registered"),
                    ),
                );
            } else if let Some(first) = seen.insert(key, c.line) {
                c.error(
                    "plate",
                    "duplicate_in_file",
                    Msg::new(
                        format!("与第 {first} 行的车辆重复"),
                        format!("the same vehicle as line {first}"),
                    ),
                );
            }
        }
        if c.errors.len() == before
            && let (Some(plate), Some(colour), Some(vtype), Some(owner)) =
                (plate, colour, vtype, owner)
        {
            out.push(VehicleImportRow {
                plate,
                plate_colour: colour.into(),
                vehicle_type: vtype.into(),
                owner_id: owner,
                note,
            });
        }
    });
    Prepared::Vehicles(out)
}

/// Permit rows: a known holder and vehicle, a window to the minute, known gates, a schedule.
fn permits(
    sheet: &Sheet,
    index: &HashMap<&'static str, usize>,
    lookups: &Lookups,
    tz: Tz,
    progress: &Progress,
    errors: &mut Vec<RowError>,
) -> Prepared {
    let (holders, plates, gates) = (&lookups.people, &lookups.plates, &lookups.gates);
    let mut out = Vec::with_capacity(sheet.rows.len());
    each_row(sheet, index, progress, errors, |mut c| {
        let before = c.errors.len();
        let holder = person_cell(
            &mut c,
            ("holder_id_card", "持证人身份证号"),
            "unknown_person",
            holders,
        );
        let vehicle = c.required("plate", "车牌号").and_then(|text| {
            let plate = match Plate::parse(&text) {
                Ok(p) => p.as_str().to_string(),
                Err(e) => {
                    c.error("plate", e.code(), Msg::plate(&e));
                    return None;
                }
            };
            match plates.get(&plate).map(Vec::as_slice) {
                Some([one]) => Some(*one),
                Some(_) => {
                    c.error(
                        "plate",
                        "ambiguous_plate",
                        Msg::new(
                            format!("车牌 {plate} 登记了多辆（颜色不同）的车辆，请在系统中单独办理"),
                            format!("plate {plate} is registered for several vehicles (colours); issue this permit in the console"),
                        ),
                    );
                    None
                }
                None => {
                    c.error(
                        "plate",
                        "unknown_vehicle",
                        Msg::new(
                            format!("车辆 {plate} 未登记：请先导入车辆"),
                            format!("vehicle {plate} is not registered: import the vehicles first"),
                        ),
                    );
                    None
                }
            }
        });
        let cat_text = c.get("category");
        let cat = category(&cat_text);
        if cat.is_none() {
            category_error(&mut c, &cat_text);
        }
        let from = time_cell(&mut c, tz, "valid_from", "生效时间");
        let until = time_cell(&mut c, tz, "valid_until", "失效时间");
        if let (Some(f), Some(u)) = (from, until)
            && u <= f
        {
            c.error(
                "valid_until",
                "reversed_window",
                Msg::new(
                    "失效时间须晚于生效时间",
                    "valid_until must be after valid_from",
                ),
            );
        }
        let mut gate_text = c.get("gates");
        if gate_text.is_empty() {
            gate_text = "all".into();
        }
        match parse_gate_rights(&gate_text) {
            Ok(GateRights::All(_)) => {}
            Ok(GateRights::Only(rights)) => {
                let unknown: Vec<String> = rights
                    .iter()
                    .map(|r| i64::from(r.gate.0))
                    .filter(|g| !gates.contains(g))
                    .map(|g| g.to_string())
                    .collect();
                if !unknown.is_empty() {
                    let list = unknown.join(", ");
                    c.error(
                        "gates",
                        "unknown_gate",
                        Msg::new(
                            format!("不存在的大门：{list}"),
                            format!("no such gate: {list}"),
                        ),
                    );
                }
            }
            Err(e) => c.error(
                "gates",
                "invalid_gates",
                Msg::new(
                    format!("大门权限格式不正确（应为 all 或 1;2:exit）：{}", e.0),
                    format!("gates (all, or gate ids such as 1;2:exit): {}", e.0),
                ),
            ),
        }
        let schedule = c.get("schedule");
        if let Err(e) = parse_schedule(&schedule) {
            c.error(
                "schedule",
                "invalid_schedule",
                Msg::new(
                    format!("时段格式不正确（应为 mon-fri 07:00-22:00 之类）：{}", e.0),
                    format!("schedule (e.g. mon-fri 07:00-22:00): {}", e.0),
                ),
            );
        }
        let single_use = bool_cell(&mut c, "single_use");
        if c.errors.len() == before
            && let (Some(holder_id), Some(vehicle_id), Some(cat), Some(f), Some(u)) =
                (holder, vehicle, cat, from, until)
        {
            out.push(PermitImportRow {
                category: cat.into(),
                holder_id,
                vehicle_id,
                valid_from_ms: f,
                valid_until_ms: u,
                gates: gate_text,
                schedule,
                single_use,
            });
        }
    });
    Prepared::Permits(out)
}
