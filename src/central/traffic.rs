//! Traffic statistics kept **incrementally**: [`apply`] folds the events an ingest has just
//! stored into small aggregate tables, inside the ingest's own transaction, so a figure is
//! current the moment its event is stored and an event counts exactly once (a re-sent event is
//! not stored again, so it is not counted again). The dashboard queries
//! ([`crate::central::repo::stats`]) read only these tables, never the events.
//!
//! What is kept (migration `0005_stats.sql`), by the site's calendar (its time zone is
//! `server.timezone`, Asia/Shanghai by default, passed in as `tz`):
//! - `stats_flows`: passages per hour × gate × direction (`entry`/`exit`) × vehicle category;
//! - `stats_presence`: each known vehicle's latest passage — inside or not, since when, with
//!   which category, and for visitors when they were expected to leave;
//! - `stats_visitor_days`: distinct visitor vehicles that entered each day;
//! - `stats_denials`: denied decisions per day × gate × reason code;
//! - `stats_overrides`: guard manual opens (override events whose action is `open`) per day ×
//!   gate × guard × reason code.
//!
//! Rules:
//! - A **passage** counts in the flows; its direction is the one the gate journalled (`entry`
//!   or `exit`; a passage with any other direction is not counted).
//! - A passage's **vehicle** is its plate (`p:<plate>`), or its vehicle id (`v:<id>`) when it
//!   has no plate; a passage the guard let through has the plate the ingest identified it by
//!   ([`crate::central::outside::identify`]: the camera read it followed, or its booth registration); a passage
//!   with neither counts in the flows but not in presence.
//! - Its **category**: for an exit of a vehicle recorded inside, the category it entered with;
//!   otherwise the category of its permit (the event's permit, else the lowest-numbered permit
//!   covering its vehicle); otherwise `visitor` when it came on a booth registration (expected
//!   to leave at the registration's departure) or an approved (or arrived, or left) visitor
//!   booking for the plate has a slot covering the passage; otherwise `unregistered`.
//! - **Presence** follows the latest passage by the gate's clock (last writer wins on
//!   `at`), so late or out-of-order uploads from several gates still leave the right answer.
//! - A visitor's **expected departure** is the end of the booking's slot, or the end of the
//!   permit for a `visitor`-category permit; a visitor inside after it is overstaying.
//!
//! What it never does: read or rescan `passage_events`, commit (the caller owns the
//! transaction), or decide what a gate may upload.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::central::db::{Arg, DbKind, Filter, RepoError, kind_of};
use crate::central::outside::{Identities, Resolved};
use crate::wire::journal::{EventBody, JournalEvent};

/// The category of a vehicle with no permit and no booking.
pub const UNREGISTERED: &str = "unregistered";
/// The category of a vehicle let in on a visitor booking.
pub const VISITOR: &str = "visitor";

/// Rows per multi-row statement on SQLite (at most 9 values a row: well under its bound).
/// PostgreSQL takes an upload's lookups and upserts in one statement each (see [`select_in`],
/// [`upsert`]).
const SQLITE_ROWS: usize = 100;

/// The site's calendar position of an instant in the site's zone `tz`: (UTC start of its hour,
/// 'YYYY-MM-DD', hour).
pub fn site_hour(tz: Tz, at_ms: i64) -> (i64, String, i64) {
    let at = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
    let local = at.with_timezone(&tz);
    let start = local
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local);
    (
        start.timestamp_millis(),
        local.date_naive().format("%Y-%m-%d").to_string(),
        i64::from(local.hour()),
    )
}

/// The UTC instant the site's day `day` starts, in the site's zone `tz`.
pub fn day_start_ms(tz: Tz, day: NaiveDate) -> i64 {
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// The site's date today, in the site's zone `tz`.
pub fn site_today(tz: Tz, now_ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .date_naive()
}

/// A vehicle's presence row, as read and as it will be written.
#[derive(Debug, Clone)]
struct Presence {
    plate: Option<String>,
    category: String,
    inside: bool,
    last_ms: i64,
    entered_ms: Option<i64>,
    gate_id: i64,
    expected_leave_ms: Option<i64>,
    booking_id: Option<i64>,
    dirty: bool,
}

/// What a passage's permit or booking says about its vehicle.
#[derive(Debug, Clone)]
struct PermitInfo {
    category: String,
    valid_until_ms: i64,
}

#[derive(Debug, Clone)]
struct BookingInfo {
    id: i64,
    slot_from_ms: i64,
    slot_until_ms: i64,
}

/// One passage, as the statistics see it.
struct Passage<'a> {
    at_ms: i64,
    entry: bool,
    plate: Option<&'a str>,
    vehicle_id: Option<i64>,
    permit_id: Option<i64>,
}

/// Folds `events` (just stored for `gate_id`, each exactly once) into the statistics by the
/// calendar of the site's zone `tz`, on the caller's transaction, knowing nothing more of
/// their passages than the events say (see [`apply_with`]).
pub async fn apply(
    conn: &mut AnyConnection,
    tz: Tz,
    gate_id: i64,
    events: &[&JournalEvent],
) -> Result<(), RepoError> {
    apply_with(conn, tz, gate_id, events, &Identities::new())
        .await
        .map(|_| ())
}

/// [`apply`], with what the ingest found out about the passages ([`crate::central::outside::identify`]): a
/// passage without a plate counts under the plate it was identified by, and one that came on
/// a booth registration is a `visitor` expected to leave when the registration says. Returns
/// what it made of each passage (category, expected departure, booking), by sequence number.
pub async fn apply_with(
    conn: &mut AnyConnection,
    tz: Tz,
    gate_id: i64,
    events: &[&JournalEvent],
    ids: &Identities,
) -> Result<HashMap<u64, Resolved>, RepoError> {
    let mut resolved = HashMap::new();
    if events.is_empty() {
        return Ok(resolved);
    }
    // The gate's order: by its clock, then its sequence.
    let mut events: Vec<&JournalEvent> = events.to_vec();
    events.sort_by_key(|e| (e.at.timestamp_millis(), e.seq));

    let mut passages = Vec::new();
    for e in &events {
        if let EventBody::Passage {
            direction,
            plate,
            vehicle_id,
            permit_id,
        } = &e.body
        {
            let entry = match direction.as_str() {
                "entry" => true,
                "exit" => false,
                _ => continue,
            };
            passages.push((
                *e,
                Passage {
                    at_ms: e.at.timestamp_millis(),
                    entry,
                    plate: plate.as_deref(),
                    vehicle_id: *vehicle_id,
                    permit_id: *permit_id,
                },
            ));
        }
    }
    // Plates as the events table stores them (normalised), so a key is the same however the
    // gate spelled it.
    let plates: Vec<Option<String>> = passages
        .iter()
        .map(|(e, p)| {
            p.plate
                .map(normalise_plate)
                .or_else(|| ids.get(&e.seq).and_then(|i| i.plate.clone()))
        })
        .collect();

    let lookups = Lookups::load(conn, &passages, &plates).await?;
    let mut presence = lookups.presence;

    let mut flows: BTreeMap<(i64, String, i64, &'static str, String), i64> = BTreeMap::new();
    let mut visitor_days: Vec<(String, String)> = Vec::new();
    for ((e, p), plate) in passages.iter().zip(&plates) {
        let key = vehicle_key(plate.as_deref(), p.vehicle_id);
        let current = key.as_ref().and_then(|k| presence.get(k));
        let inside_category = current
            .filter(|c| c.inside && !p.entry && c.last_ms <= p.at_ms)
            .map(|c| (c.category.clone(), c.expected_leave_ms, c.booking_id));
        let booth = ids.get(&e.seq).and_then(|i| i.booth.as_ref());
        let (category, expected_leave_ms, booking_id) = match (inside_category, booth) {
            (Some(known), _) => known,
            // Let in on a booth registration: a visitor until the registration's departure.
            (None, Some(b)) => (
                VISITOR.to_string(),
                Some(b.expected_departure_ms),
                b.booking_id,
            ),
            (None, None) => resolve(
                &lookups.permits,
                &lookups.vehicle_permits,
                &lookups.bookings,
                p,
                plate.as_deref(),
            ),
        };
        resolved.insert(
            e.seq,
            Resolved {
                visitor: category == VISITOR,
                category: category.clone(),
                expected_leave_ms,
                booking_id,
            },
        );
        let (hour_ms, day, hour) = site_hour(tz, p.at_ms);
        let direction = if p.entry { "entry" } else { "exit" };
        *flows
            .entry((hour_ms, day.clone(), hour, direction, category.clone()))
            .or_default() += 1;
        let Some(key) = key else { continue };
        if p.entry && category == VISITOR {
            visitor_days.push((day, key.clone()));
        }
        let newer = presence.get(&key).is_none_or(|c| c.last_ms <= p.at_ms);
        if newer {
            let previous = presence.remove(&key);
            let row = Presence {
                plate: plate.clone(),
                category: category.clone(),
                inside: p.entry,
                last_ms: p.at_ms,
                entered_ms: if p.entry {
                    Some(p.at_ms)
                } else {
                    previous.as_ref().and_then(|c| c.entered_ms)
                },
                gate_id,
                expected_leave_ms,
                booking_id,
                dirty: true,
            };
            presence.insert(key, row);
        }
    }

    let mut denials: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut opens: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for e in &events {
        match &e.body {
            EventBody::Decision(d) if !d.granted => {
                let (_, day, _) = site_hour(tz, e.at.timestamp_millis());
                *denials
                    .entry((day, d.reason.as_str().to_string()))
                    .or_default() += 1;
            }
            EventBody::Override {
                operator,
                action,
                reason,
                ..
            } if action == "open" => {
                let (_, day, _) = site_hour(tz, e.at.timestamp_millis());
                *opens
                    .entry((day, operator.clone(), reason.clone()))
                    .or_default() += 1;
            }
            _ => {}
        }
    }

    // Writes: additive upserts for the counters, last-writer-wins for presence.
    let flow_rows: Vec<Vec<Arg>> = flows
        .into_iter()
        .map(|((hour_ms, day, hour, direction, category), n)| {
            vec![
                hour_ms.into(),
                day.into(),
                hour.into(),
                gate_id.into(),
                direction.into(),
                category.into(),
                n.into(),
            ]
        })
        .collect();
    upsert(
        conn,
        "stats_flows (hour_ms, day, hour, gate_id, direction, category, passages)",
        &flow_rows,
        "ON CONFLICT (hour_ms, gate_id, direction, category) DO UPDATE SET \
         passages = stats_flows.passages + excluded.passages",
    )
    .await?;
    let denial_rows: Vec<Vec<Arg>> = denials
        .into_iter()
        .map(|((day, reason), n)| vec![day.into(), gate_id.into(), reason.into(), n.into()])
        .collect();
    upsert(
        conn,
        "stats_denials (day, gate_id, reason, denials)",
        &denial_rows,
        "ON CONFLICT (day, gate_id, reason) DO UPDATE SET \
         denials = stats_denials.denials + excluded.denials",
    )
    .await?;
    let open_rows: Vec<Vec<Arg>> = opens
        .into_iter()
        .map(|((day, operator, reason), n)| {
            vec![
                day.into(),
                gate_id.into(),
                operator.into(),
                reason.into(),
                n.into(),
            ]
        })
        .collect();
    upsert(
        conn,
        "stats_overrides (day, gate_id, operator, reason, opens)",
        &open_rows,
        "ON CONFLICT (day, gate_id, operator, reason) DO UPDATE SET \
         opens = stats_overrides.opens + excluded.opens",
    )
    .await?;
    visitor_days.sort();
    visitor_days.dedup();
    let visitor_rows: Vec<Vec<Arg>> = visitor_days
        .into_iter()
        .map(|(day, key)| vec![day.into(), key.into()])
        .collect();
    upsert(
        conn,
        "stats_visitor_days (day, vehicle_key)",
        &visitor_rows,
        "ON CONFLICT (day, vehicle_key) DO NOTHING",
    )
    .await?;
    let presence_rows: Vec<Vec<Arg>> = presence
        .into_iter()
        .filter(|(_, p)| p.dirty)
        .map(|(key, p)| {
            vec![
                key.into(),
                p.plate.into(),
                p.category.into(),
                i64::from(p.inside).into(),
                p.last_ms.into(),
                p.entered_ms.into(),
                p.gate_id.into(),
                p.expected_leave_ms.into(),
                p.booking_id.into(),
            ]
        })
        .collect();
    // The WHERE keeps a newer row written meanwhile by another gate's upload.
    upsert(
        conn,
        "stats_presence (vehicle_key, plate, category, inside, last_ms, entered_ms, gate_id, \
         expected_leave_ms, booking_id)",
        &presence_rows,
        "ON CONFLICT (vehicle_key) DO UPDATE SET plate = excluded.plate, \
         category = excluded.category, inside = excluded.inside, last_ms = excluded.last_ms, \
         entered_ms = excluded.entered_ms, gate_id = excluded.gate_id, \
         expected_leave_ms = excluded.expected_leave_ms, booking_id = excluded.booking_id \
         WHERE stats_presence.last_ms <= excluded.last_ms",
    )
    .await?;
    Ok(resolved)
}

fn normalise_plate(text: &str) -> String {
    crate::domain::Plate::parse(text)
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|_| text.to_string())
}

fn vehicle_key(plate: Option<&str>, vehicle_id: Option<i64>) -> Option<String> {
    match (plate, vehicle_id) {
        (Some(p), _) if !p.is_empty() => Some(format!("p:{p}")),
        (_, Some(id)) => Some(format!("v:{id}")),
        _ => None,
    }
}

/// (category, expected departure, booking) of a passage from its permit or booking.
fn resolve(
    permits: &HashMap<i64, PermitInfo>,
    vehicle_permits: &HashMap<i64, PermitInfo>,
    bookings: &HashMap<String, Vec<BookingInfo>>,
    p: &Passage<'_>,
    plate: Option<&str>,
) -> (String, Option<i64>, Option<i64>) {
    let permit = p
        .permit_id
        .and_then(|id| permits.get(&id))
        .or_else(|| p.vehicle_id.and_then(|id| vehicle_permits.get(&id)));
    if let Some(permit) = permit {
        let leave = (permit.category == VISITOR).then_some(permit.valid_until_ms);
        return (permit.category.clone(), leave, None);
    }
    if let Some(b) = plate
        .and_then(|plate| bookings.get(plate))
        .and_then(|list| {
            list.iter()
                .find(|b| b.slot_from_ms <= p.at_ms && p.at_ms < b.slot_until_ms)
        })
    {
        return (VISITOR.into(), Some(b.slot_until_ms), Some(b.id));
    }
    (UNREGISTERED.into(), None, None)
}

/// Everything the passages of one upload need from the database, read in a few statements.
struct Lookups {
    permits: HashMap<i64, PermitInfo>,
    vehicle_permits: HashMap<i64, PermitInfo>,
    bookings: HashMap<String, Vec<BookingInfo>>,
    presence: HashMap<String, Presence>,
}

impl Lookups {
    async fn load(
        conn: &mut AnyConnection,
        passages: &[(&JournalEvent, Passage<'_>)],
        plates: &[Option<String>],
    ) -> Result<Lookups, RepoError> {
        let mut permit_ids: Vec<i64> = passages.iter().filter_map(|(_, p)| p.permit_id).collect();
        permit_ids.sort_unstable();
        permit_ids.dedup();
        let mut vehicle_ids: Vec<i64> = passages
            .iter()
            .filter(|(_, p)| p.permit_id.is_none())
            .filter_map(|(_, p)| p.vehicle_id)
            .collect();
        vehicle_ids.sort_unstable();
        vehicle_ids.dedup();
        let mut plate_list: Vec<String> = plates.iter().flatten().cloned().collect();
        plate_list.sort_unstable();
        plate_list.dedup();
        let mut keys: Vec<String> = passages
            .iter()
            .zip(plates)
            .filter_map(|((_, p), plate)| vehicle_key(plate.as_deref(), p.vehicle_id))
            .collect();
        keys.sort_unstable();
        keys.dedup();

        let mut permits = HashMap::new();
        let ids: Vec<Arg> = permit_ids.iter().map(|id| Arg::Int(*id)).collect();
        for r in select_in(
            conn,
            "SELECT id, category, valid_until_ms FROM permits WHERE",
            "id",
            &ids,
            "",
        )
        .await?
        {
            permits.insert(
                r.try_get::<i64, _>("id")?,
                PermitInfo {
                    category: r.try_get("category")?,
                    valid_until_ms: r.try_get("valid_until_ms")?,
                },
            );
        }
        let mut vehicle_permits = HashMap::new();
        let ids: Vec<Arg> = vehicle_ids.iter().map(|id| Arg::Int(*id)).collect();
        // Descending, so the lowest-numbered permit is inserted last and wins.
        for r in select_in(
            conn,
            "SELECT pv.vehicle_id, p.category, p.valid_until_ms FROM permit_vehicles pv \
             JOIN permits p ON p.id = pv.permit_id WHERE",
            "pv.vehicle_id",
            &ids,
            " ORDER BY p.id DESC",
        )
        .await?
        {
            vehicle_permits.insert(
                r.try_get::<i64, _>("vehicle_id")?,
                PermitInfo {
                    category: r.try_get("category")?,
                    valid_until_ms: r.try_get("valid_until_ms")?,
                },
            );
        }
        let mut bookings: HashMap<String, Vec<BookingInfo>> = HashMap::new();
        let texts: Vec<Arg> = plate_list.into_iter().map(Arg::Text).collect();
        for r in select_in(
            conn,
            "SELECT id, plate, slot_from_ms, slot_until_ms FROM visitor_bookings \
             WHERE status IN ('approved', 'arrived', 'left') AND",
            "plate",
            &texts,
            " ORDER BY id",
        )
        .await?
        {
            bookings
                .entry(r.try_get("plate")?)
                .or_default()
                .push(BookingInfo {
                    id: r.try_get("id")?,
                    slot_from_ms: r.try_get("slot_from_ms")?,
                    slot_until_ms: r.try_get("slot_until_ms")?,
                });
        }
        let mut presence = HashMap::new();
        let texts: Vec<Arg> = keys.into_iter().map(Arg::Text).collect();
        const COLUMNS: &str = "vehicle_key, plate, category, inside, last_ms, entered_ms, \
             gate_id, expected_leave_ms, booking_id";
        let rows = match kind_of(conn) {
            // An upload without passages (a decision and the barrier opening) has no vehicle
            // to look up: no statement.
            _ if texts.is_empty() => Vec::new(),
            // One primary-key probe per vehicle. As `vehicle_key = ANY($1)` the planner
            // scans the whole table instead whenever it is small next to the list (an upload
            // names a few hundred vehicles; a campus has tens of thousands), and a cached plan
            // made while the table was empty keeps scanning it as it grows. A LIMIT inside
            // LATERAL cannot be turned into such a join.
            DbKind::Postgres => {
                sqlx::query(&format!(
                    "SELECT p.* FROM unnest($1::text[]) AS k(key) CROSS JOIN LATERAL \
                     (SELECT {COLUMNS} FROM stats_presence WHERE vehicle_key = k.key LIMIT 1) p"
                ))
                .bind(pg_array(&texts))
                .fetch_all(&mut *conn)
                .await?
            }
            DbKind::Sqlite => {
                select_in(
                    conn,
                    &format!("SELECT {COLUMNS} FROM stats_presence WHERE"),
                    "vehicle_key",
                    &texts,
                    "",
                )
                .await?
            }
        };
        for r in rows {
            presence.insert(
                r.try_get::<String, _>("vehicle_key")?,
                Presence {
                    plate: r.try_get("plate")?,
                    category: r.try_get("category")?,
                    inside: r.try_get::<i64, _>("inside")? != 0,
                    last_ms: r.try_get("last_ms")?,
                    entered_ms: r.try_get("entered_ms")?,
                    gate_id: r.try_get("gate_id")?,
                    expected_leave_ms: r.try_get("expected_leave_ms")?,
                    booking_id: r.try_get("booking_id")?,
                    dirty: false,
                },
            );
        }
        Ok(Lookups {
            permits,
            vehicle_permits,
            bookings,
            presence,
        })
    }
}

/// The rows of `head column IN (values) tail`. On SQLite in chunks of [`SQLITE_ROWS`] (an
/// IN list of placeholders); on PostgreSQL in one statement whose text never changes (`column =
/// ANY($1)`, the values as one array literal), so each connection prepares it once and the
/// server plans it once, however many values an upload has. `values` are all of one kind
/// (all [`Arg::Int`] or all [`Arg::Text`]).
async fn select_in(
    conn: &mut AnyConnection,
    head: &str,
    column: &str,
    values: &[Arg],
    tail: &str,
) -> Result<Vec<AnyRow>, RepoError> {
    let mut out = Vec::new();
    if values.is_empty() {
        return Ok(out);
    }
    match kind_of(conn) {
        DbKind::Postgres => {
            let ty = if matches!(values[0], Arg::Text(_) | Arg::OptText(_)) {
                "text"
            } else {
                "bigint"
            };
            let sql = format!("{head} {column} = ANY($1::{ty}[]){tail}");
            out = sqlx::query(&sql)
                .bind(pg_array(values))
                .fetch_all(&mut *conn)
                .await?;
        }
        DbKind::Sqlite => {
            for chunk in values.chunks(SQLITE_ROWS) {
                let mut f = Filter::new();
                let ps: Vec<String> = chunk.iter().map(|v| f.arg(v.clone())).collect();
                let sql = format!("{head} {column} IN ({}){tail}", ps.join(", "));
                out.extend(f.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await?);
            }
        }
    }
    Ok(out)
}

/// A PostgreSQL array literal (`{1,2}`, `{"a","b\"c"}`) of `values`; NULLs as `NULL`.
fn pg_array(values: &[Arg]) -> String {
    let mut out = String::from("{");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Arg::Int(n) | Arg::OptInt(Some(n)) => out.push_str(&n.to_string()),
            Arg::Text(t) | Arg::OptText(Some(t)) => {
                out.push('"');
                for c in t.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            Arg::OptInt(None) | Arg::OptText(None) => out.push_str("NULL"),
        }
    }
    out.push('}');
    out
}

/// `INSERT INTO table (columns) … conflict` of `rows` (each in `columns`' order, a column's
/// values all of one kind). On SQLite as multi-row VALUES in statements of [`SQLITE_ROWS`]; on
/// PostgreSQL as one statement whose text never changes: the rows as one JSON parameter,
/// unpacked by `json_to_recordset` in their order (so rows are still taken in the caller's
/// order).
async fn upsert(
    conn: &mut AnyConnection,
    target: &str,
    rows: &[Vec<Arg>],
    conflict: &str,
) -> Result<(), RepoError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    match kind_of(conn) {
        DbKind::Postgres => {
            let (table, columns) = target.split_once('(').unwrap_or((target, ")"));
            let columns: Vec<&str> = columns
                .trim_end()
                .trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .collect();
            let types: Vec<String> = columns
                .iter()
                .zip(first)
                .map(|(c, a)| {
                    let ty = match a {
                        Arg::Text(_) | Arg::OptText(_) => "text",
                        Arg::Int(_) | Arg::OptInt(_) => "bigint",
                    };
                    format!("{c} {ty}")
                })
                .collect();
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        columns
                            .iter()
                            .zip(row)
                            .map(|(c, a)| {
                                let v = match a {
                                    Arg::Int(n) | Arg::OptInt(Some(n)) => (*n).into(),
                                    Arg::Text(t) | Arg::OptText(Some(t)) => t.as_str().into(),
                                    Arg::OptInt(None) | Arg::OptText(None) => {
                                        serde_json::Value::Null
                                    }
                                };
                                ((*c).to_string(), v)
                            })
                            .collect(),
                    )
                })
                .collect();
            let cols = columns.join(", ");
            let sql = format!(
                "INSERT INTO {table}({cols}) SELECT {cols} FROM json_to_recordset($1::json) \
                 AS x({}) {conflict}",
                types.join(", ")
            );
            sqlx::query(&sql)
                .bind(serde_json::Value::Array(json).to_string())
                .execute(&mut *conn)
                .await?;
        }
        DbKind::Sqlite => {
            crate::central::db::insert_values(conn, target, rows, SQLITE_ROWS, conflict).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_hour_and_day_are_shanghai_time() {
        // 2026-03-02 23:30 UTC is 2026-03-03 07:30 in Shanghai.
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 23, 30, 0).unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        let (hour_ms, day, hour) = site_hour(tz, at.timestamp_millis());
        assert_eq!(day, "2026-03-03");
        assert_eq!(hour, 7);
        assert_eq!(
            hour_ms,
            Utc.with_ymd_and_hms(2026, 3, 2, 23, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            day_start_ms(tz, NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()),
            Utc.with_ymd_and_hms(2026, 3, 2, 16, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn the_site_hour_and_day_follow_the_zone_they_are_given() {
        // 2026-03-02 23:30 UTC is 2026-03-03 05:30 in Urumqi (UTC+6), 2026-03-02 in London.
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 23, 30, 0).unwrap();
        let (_, day, hour) = site_hour(chrono_tz::Asia::Urumqi, at.timestamp_millis());
        assert_eq!((day.as_str(), hour), ("2026-03-03", 5));
        let (_, day, hour) = site_hour(chrono_tz::Europe::London, at.timestamp_millis());
        assert_eq!((day.as_str(), hour), ("2026-03-02", 23));
        assert_eq!(
            site_today(chrono_tz::Asia::Urumqi, at.timestamp_millis()),
            NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()
        );
    }
}
